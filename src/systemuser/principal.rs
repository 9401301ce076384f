//! [`SystemUser`]: the authorized principal handed to the handler.

use crate::maskinporten::MaskinportenToken;
use crate::org::{OrgNumber, Organisation, Party};
use crate::pdp::{Action, ResourceId};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;
use uuid::Uuid;

/// A system user that the Altinn PDP permitted to do [`action`](Self::action) on
/// [`resource`](Self::resource) for [`party`](Self::party).
///
/// Put in the request extensions by [`SystemUserLayer`](super::SystemUserLayer); with the
/// `axum` feature it is an extractor, and tonic handlers read it with
/// `request.extensions().get::<SystemUser>()`. Cheap to clone. It never holds the raw token,
/// and its `Debug` output never shows a person identifier.
#[derive(Clone)]
pub struct SystemUser {
    inner: Arc<Data>,
}

struct Data {
    id: Uuid,
    owner_org: OrgNumber,
    system_id: Box<str>,
    external_ref: Option<Box<str>>,
    vendor: Option<Organisation>,
    client_id: Option<Box<str>>,
    scopes: Box<[Box<str>]>,
    token_expires_at: SystemTime,
    resource: ResourceId,
    action: Action,
    party: Party,
}

impl SystemUser {
    pub(crate) fn new(token: &MaskinportenToken, resource: ResourceId, action: Action, party: Party) -> Option<Self> {
        let su = token.system_user()?;
        Some(SystemUser {
            inner: Arc::new(Data {
                id: su.id(),
                owner_org: su.owner_org(),
                system_id: su.system_id().into(),
                external_ref: su.external_ref().map(Into::into),
                vendor: token.consumer().cloned(),
                client_id: token.client_id().map(Into::into),
                scopes: token.scopes().map(Into::into).collect(),
                token_expires_at: token.expires_at(),
                resource,
                action,
                party,
            }),
        })
    }

    /// The system user's id (`systemuser_id[0]`), the subject the PDP authorized.
    pub fn id(&self) -> Uuid {
        self.inner.id
    }

    /// The organisation that owns the system user (`systemuser_org`): the vendor's customer.
    pub fn owner_org(&self) -> OrgNumber {
        self.inner.owner_org
    }

    /// The vendor's system in Altinn's system register (`system_id`).
    pub fn system_id(&self) -> &str {
        &self.inner.system_id
    }

    /// The vendor's reference for this system user (`externalRef`).
    pub fn external_ref(&self) -> Option<&str> {
        self.inner.external_ref.as_deref()
    }

    /// The vendor: the organisation that authenticated to Maskinporten (`consumer`).
    pub fn vendor(&self) -> Option<&Organisation> {
        self.inner.vendor.as_ref()
    }

    /// The vendor's organisation number, when it is Norwegian.
    pub fn vendor_org(&self) -> Option<OrgNumber> {
        self.inner.vendor.as_ref().and_then(Organisation::org_number)
    }

    /// The vendor's Maskinporten client (`client_id`).
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// The token's scopes.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.inner.scopes.iter().map(|s| &**s)
    }

    /// When the token this request came with expires.
    pub fn token_expires_at(&self) -> SystemTime {
        self.inner.token_expires_at
    }

    /// The resource that was authorized.
    pub fn resource(&self) -> &ResourceId {
        &self.inner.resource
    }

    /// The action that was authorized.
    pub fn action(&self) -> &Action {
        &self.inner.action
    }

    /// The party the access was authorized for: the system user's own organisation, or a
    /// client of an agent system user. A person identifier here is personal data.
    pub fn party(&self) -> Party {
        self.inner.party
    }
}

impl fmt::Debug for SystemUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.inner;
        f.debug_struct("SystemUser")
            .field("id", &d.id)
            .field("owner_org", &d.owner_org)
            .field("system_id", &d.system_id)
            .field("vendor", &d.vendor.as_ref().map(ToString::to_string))
            .field("client_id", &d.client_id)
            .field("resource", &d.resource)
            .field("action", &d.action)
            // Party's Debug redacts person identifiers.
            .field("party", &d.party)
            .finish_non_exhaustive()
    }
}
