//! [`SystemUser`]: the authorized principal handed to the handler.

use crate::maskinporten::MaskinportenToken;
use crate::org::{OrgNumber, Organisation, Party};
use crate::pdp::{Action, ResourceId};
use std::fmt;
use std::time::SystemTime;
use uuid::Uuid;

/// A system user that the Altinn PDP permitted to do [`action`](Self::action) on
/// [`resource`](Self::resource) for [`party`](Self::party).
///
/// Put in the request extensions by [`SystemUserLayer`](super::SystemUserLayer); with the
/// `axum` feature it is an extractor, and tonic handlers read it with
/// `request.extensions().get::<SystemUser>()`. Cheap to clone (it shares the verified token's
/// claims; building one allocates nothing). It never holds the raw token, and its `Debug`
/// output never shows a person identifier.
#[derive(Clone)]
pub struct SystemUser {
    /// Verified claims (never the raw token); has a system user, checked in [`SystemUser::new`].
    token: MaskinportenToken,
    id: Uuid,
    owner_org: OrgNumber,
    resource: ResourceId,
    action: Action,
    party: Party,
}

impl SystemUser {
    pub(crate) fn new(token: &MaskinportenToken, resource: ResourceId, action: Action, party: Party) -> Option<Self> {
        let su = token.system_user()?;
        Some(SystemUser {
            id: su.id(),
            owner_org: su.owner_org(),
            token: token.clone(),
            resource,
            action,
            party,
        })
    }

    /// Which issuer vouched for the caller: Maskinporten, or Altinn's platform.
    pub fn token_issuer(&self) -> crate::maskinporten::TokenIssuer {
        self.token.token_issuer()
    }

    /// The system user's id (`systemuser_id[0]`), the subject the PDP authorized.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The organisation that owns the system user (`systemuser_org`): the vendor's customer.
    pub fn owner_org(&self) -> OrgNumber {
        self.owner_org
    }

    /// The vendor's system in Altinn's system register (`system_id`).
    pub fn system_id(&self) -> &str {
        self.token.system_user().map_or("", |su| su.system_id())
    }

    /// The vendor's reference for this system user (`externalRef`).
    pub fn external_ref(&self) -> Option<&str> {
        self.token.system_user().and_then(|su| su.external_ref())
    }

    /// The vendor: the organisation that authenticated to Maskinporten (`consumer`).
    pub fn vendor(&self) -> Option<&Organisation> {
        self.token.consumer()
    }

    /// The vendor's organisation number, when it is Norwegian.
    pub fn vendor_org(&self) -> Option<OrgNumber> {
        self.token.consumer().and_then(Organisation::org_number)
    }

    /// The vendor's Maskinporten client (`client_id`).
    pub fn client_id(&self) -> Option<&str> {
        self.token.client_id()
    }

    /// The token's scopes.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.token.scopes()
    }

    /// When the token this request came with expires.
    pub fn token_expires_at(&self) -> SystemTime {
        self.token.expires_at()
    }

    /// The resource that was authorized.
    pub fn resource(&self) -> &ResourceId {
        &self.resource
    }

    /// The action that was authorized.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The party the access was authorized for: the system user's own organisation, or a
    /// client of an agent system user. A person identifier here is personal data.
    pub fn party(&self) -> Party {
        self.party
    }
}

impl fmt::Debug for SystemUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemUser")
            .field("id", &self.id)
            .field("owner_org", &self.owner_org)
            .field("system_id", &self.system_id())
            .field("vendor", &self.vendor().map(ToString::to_string))
            .field("client_id", &self.client_id())
            .field("resource", &self.resource)
            .field("action", &self.action)
            // Party's Debug redacts person identifiers.
            .field("party", &self.party)
            .finish_non_exhaustive()
    }
}
