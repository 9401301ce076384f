//! [`SystemUserConfig`]: the system-user layer's settings as a document.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::refusal_form;
use crate::ConfigError;
use crate::pdp::AltinnPdp;
use crate::systemuser::{SystemUserLayer, SystemUserLayerBuilder};

/// The settings of [`SystemUserLayer`]; each key is the builder method of the same name.
///
/// ```toml
/// resource = "kravogbetaling"
/// party_from_path = "/krav/{orgnr}"   # the action comes from the method unless `action` is set
/// ```
///
/// For gRPC, `grpc_method` maps each method's path to its action:
///
/// ```toml
/// [grpc_method]
/// "/krav.v1.Krav/Get" = "read"
/// "/krav.v1.Krav/Pay" = "write"
/// ```
///
/// The PDP client is given to [`build`](Self::build); closures (`resource_with`, `action_with`,
/// `party_with`) and `rejection_responder` are set on the builder from [`builder`](Self::builder).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SystemUserConfig {
    /// [`SystemUserLayerBuilder::resource`].
    pub resource: Option<String>,
    /// [`SystemUserLayerBuilder::action`].
    pub action: Option<String>,
    /// [`SystemUserLayerBuilder::action_from_method`] when `true` (the default when no action is
    /// given).
    #[serde(default)]
    pub action_from_method: bool,
    /// [`SystemUserLayerBuilder::grpc_method`], each path with its action.
    #[serde(default)]
    pub grpc_method: BTreeMap<String, String>,
    /// [`SystemUserLayerBuilder::party_from_system_user`] when `true` (the default when no party
    /// source is given).
    #[serde(default)]
    pub party_from_system_user: bool,
    /// [`SystemUserLayerBuilder::party_from_path`].
    pub party_from_path: Option<String>,
    /// [`SystemUserLayerBuilder::party_from_path_segment`].
    pub party_from_path_segment: Option<usize>,
    /// [`SystemUserLayerBuilder::party_from_header`].
    pub party_from_header: Option<String>,
    /// [`SystemUserLayerBuilder::refusal_form`]: `"auto"`, `"http"` or `"grpc"`.
    pub refusal_form: Option<String>,
    /// [`SystemUserLayerBuilder::audit_party_key`], a [`Secret`](super::Secret) (at least 32
    /// bytes).
    pub audit_party_key: Option<super::Secret>,
}

impl SystemUserConfig {
    /// A builder with these settings and `pdp`, for settings only code can give.
    pub fn builder(&self, pdp: AltinnPdp) -> Result<SystemUserLayerBuilder, ConfigError> {
        let parties = [
            self.party_from_system_user,
            self.party_from_path.is_some(),
            self.party_from_path_segment.is_some(),
            self.party_from_header.is_some(),
        ];
        if parties.iter().filter(|p| **p).count() > 1 {
            return Err(ConfigError::conflict(
                "party_from_path",
                "give one of party_from_system_user, party_from_path, party_from_path_segment, party_from_header",
            ));
        }
        let actions = [self.action.is_some(), self.action_from_method, !self.grpc_method.is_empty()];
        if actions.iter().filter(|a| **a).count() > 1 {
            return Err(ConfigError::conflict(
                "action",
                "give one of action, action_from_method, grpc_method",
            ));
        }
        let mut b = SystemUserLayer::builder().pdp(pdp);
        if let Some(v) = &self.resource {
            b = b.resource(v);
        }
        if let Some(v) = &self.action {
            b = b.action(v);
        }
        if self.action_from_method {
            b = b.action_from_method();
        }
        for (path, action) in &self.grpc_method {
            b = b.grpc_method(path, action);
        }
        if self.party_from_system_user {
            b = b.party_from_system_user();
        }
        if let Some(v) = &self.party_from_path {
            b = b.party_from_path(v);
        }
        if let Some(v) = self.party_from_path_segment {
            b = b.party_from_path_segment(v);
        }
        if let Some(v) = &self.party_from_header {
            b = b.party_from_header(v);
        }
        if let Some(v) = &self.refusal_form {
            b = b.refusal_form(refusal_form(v)?);
        }
        if let Some(key) = &self.audit_party_key {
            b = b.audit_party_key(key.read("audit_party_key")?.as_bytes());
        }
        Ok(b)
    }

    /// The layer, checked as [`SystemUserLayerBuilder::build`] checks it.
    pub fn build(&self, pdp: AltinnPdp) -> Result<SystemUserLayer, ConfigError> {
        self.builder(pdp)?.build()
    }
}
