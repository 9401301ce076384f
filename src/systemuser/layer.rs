//! [`SystemUserLayer`] and its builder.

use super::service::{Config, SystemUserService};
use super::target::{ActionSource, PartySource, ResourceSource, Target, template_segment};
use crate::error::ConfigError;
use crate::maskinporten::MaskinportenToken;
use crate::org::Party;
use crate::pdp::{Action, AltinnPdp, ResourceId};
use crate::reject::{ProblemResponder, RejectionResponder};
use http::HeaderName;
use http::request::Parts;
use std::collections::HashMap;
use std::sync::Arc;
use tower_layer::Layer;

/// A tower layer that asks the Altinn PDP about every request's system user.
///
/// One layer per route or route group is the normal use: each names its resource, and how
/// the action and the party are found. Clones share the PDP client and its decision cache.
#[derive(Clone)]
pub struct SystemUserLayer {
    config: Arc<Config>,
}

impl SystemUserLayer {
    /// Starts configuring a layer. A PDP client and a resource are required.
    pub fn builder() -> SystemUserLayerBuilder {
        SystemUserLayerBuilder::default()
    }
}

impl std::fmt::Debug for SystemUserLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemUserLayer")
            .field("target", &self.config.target)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SystemUserLayer {
    type Service = SystemUserService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SystemUserService::new(inner, self.config.clone())
    }
}

/// Builder for [`SystemUserLayer`].
#[must_use]
pub struct SystemUserLayerBuilder {
    pdp: Option<AltinnPdp>,
    resource: Option<Result<ResourceSource, ConfigError>>,
    action: Result<ActionSource, ConfigError>,
    grpc: HashMap<Box<str>, Action>,
    party: Result<PartySource, ConfigError>,
    responder: Arc<dyn RejectionResponder>,
}

impl Default for SystemUserLayerBuilder {
    fn default() -> Self {
        SystemUserLayerBuilder {
            pdp: None,
            resource: None,
            action: Ok(ActionSource::FromMethod),
            grpc: HashMap::new(),
            party: Ok(PartySource::SystemUserOrg),
            responder: Arc::new(ProblemResponder),
        }
    }
}

impl SystemUserLayerBuilder {
    /// The PDP client to ask (shared with other layers by cloning it).
    pub fn pdp(mut self, pdp: AltinnPdp) -> Self {
        self.pdp = Some(pdp);
        self
    }

    /// The resource id in Altinn's resource registry, e.g. `kravogbetaling`. Checked at build
    /// against `^[a-z0-9_-]{4,}$`.
    pub fn resource(mut self, id: &str) -> Self {
        self.resource = Some(ResourceId::new(id).map(ResourceSource::Fixed).map_err(ConfigError::from));
        self
    }

    /// Compute the resource id from the request; `None` refuses the request (400).
    pub fn resource_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<ResourceId> + Send + Sync + 'static,
    {
        self.resource = Some(Ok(ResourceSource::Computed(Arc::new(f))));
        self
    }

    /// Ask about this action for every request, whatever the method.
    pub fn action(mut self, action: &str) -> Self {
        self.action = Action::new(action).map(ActionSource::Fixed).map_err(ConfigError::from);
        self
    }

    /// Derive the action from the HTTP method (the default): GET/HEAD `read`,
    /// POST/PUT/PATCH `write`, DELETE `delete`; other methods are refused (400).
    pub fn action_from_method(mut self) -> Self {
        self.action = Ok(ActionSource::FromMethod);
        self
    }

    /// Compute the action from the request; `None` refuses the request (400).
    pub fn action_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<Action> + Send + Sync + 'static,
    {
        self.action = Ok(ActionSource::Computed(Arc::new(f)));
        self
    }

    /// For gRPC: ask about `action` for calls to `path` (`/package.Service/Method`). Once any
    /// method is listed, the action comes from this table and unlisted methods are refused.
    pub fn grpc_method(mut self, path: &str, action: &str) -> Self {
        match Action::new(action) {
            Ok(a) if path.starts_with('/') && path[1..].contains('/') => {
                self.grpc.insert(path.into(), a);
            }
            Ok(_) => self.action = Err(ConfigError::new("grpc_method", format!("not a gRPC method path: {path:?}"))),
            Err(e) => self.action = Err(e.into()),
        }
        self
    }

    /// The party is the system user's own organisation (`systemuser_org`). The default.
    pub fn party_from_system_user(mut self) -> Self {
        self.party = Ok(PartySource::SystemUserOrg);
        self
    }

    /// The party is the `{param}` segment of this path template, e.g. `/krav/{orgnr}`: nine
    /// digits for an organisation, eleven for a person. Use the path as this layer sees it
    /// (inside `Router::nest`, without the prefix).
    pub fn party_from_path(mut self, template: &str) -> Self {
        self.party = template_segment(template)
            .map(PartySource::PathSegment)
            .ok_or_else(|| ConfigError::new("party_from_path", "template needs exactly one {param} segment and a leading '/'"));
        self
    }

    /// The party is path segment `index` (0 is the first after the leading `/`).
    pub fn party_from_path_segment(mut self, index: usize) -> Self {
        self.party = Ok(PartySource::PathSegment(index));
        self
    }

    /// The party is the value of this request header (exactly one such header).
    pub fn party_from_header(mut self, name: &str) -> Self {
        self.party = HeaderName::from_bytes(name.as_bytes())
            .map(PartySource::Header)
            .map_err(|_| ConfigError::new("party_from_header", "not a valid header name"));
        self
    }

    /// Compute the party from the request and the verified token; `None` refuses it (400).
    /// For client-delegated ("agent") system users, whose party is the client.
    pub fn party_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts, &MaskinportenToken) -> Option<Party> + Send + Sync + 'static,
    {
        self.party = Ok(PartySource::Computed(Arc::new(f)));
        self
    }

    /// Replace the rejection response (default: [`Rejection::to_response`](crate::Rejection::to_response)).
    pub fn rejection_responder(mut self, responder: impl RejectionResponder) -> Self {
        self.responder = Arc::new(responder);
        self
    }

    /// Checks the configuration and builds the layer. No network I/O.
    pub fn build(self) -> Result<SystemUserLayer, ConfigError> {
        let pdp = self.pdp.ok_or_else(|| ConfigError::new("pdp", "not set"))?;
        let resource = self.resource.ok_or_else(|| ConfigError::new("resource", "not set"))??;
        let mut action = self.action?;
        if !self.grpc.is_empty() {
            action = ActionSource::GrpcMethods(Arc::new(self.grpc));
        }
        let party = self.party?;
        Ok(SystemUserLayer {
            config: Arc::new(Config {
                pdp,
                target: Target { resource, action, party },
                responder: self.responder,
            }),
        })
    }
}
