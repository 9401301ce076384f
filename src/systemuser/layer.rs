//! [`SystemUserLayer`] and its builder.

use super::service::{Config, SystemUserService};
use super::target::{ActionSource, PartySource, PathTemplate, ResourceSource, TEMPLATE_RULES, Target};
use crate::ConfigError;
use crate::maskinporten::MaskinportenToken;
use crate::org::Party;
use crate::pdp::{Action, AltinnPdp, ResourceId};
use crate::reject::{ProblemResponder, RefusalForm, RejectionResponder};
use crate::telemetry::audit::PartyKey;
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

/// Builder for [`SystemUserLayer`]. Setters never fail; [`build`](Self::build) reports the
/// first setting that was wrong, even if a later setter replaced it.
#[must_use]
pub struct SystemUserLayerBuilder {
    pdp: Option<AltinnPdp>,
    resource: Option<ResourceSource>,
    action: ActionSource,
    grpc: HashMap<Box<str>, Action>,
    party: PartySource,
    responder: Arc<dyn RejectionResponder>,
    form: RefusalForm,
    party_key: Option<PartyKey>,
    /// The first setter error; never erased by a later setter.
    error: Option<ConfigError>,
}

impl Default for SystemUserLayerBuilder {
    fn default() -> Self {
        SystemUserLayerBuilder {
            pdp: None,
            resource: None,
            action: ActionSource::FromMethod,
            grpc: HashMap::new(),
            party: PartySource::SystemUserOrg,
            responder: Arc::new(ProblemResponder),
            form: RefusalForm::Auto,
            party_key: None,
            error: None,
        }
    }
}

impl std::fmt::Debug for SystemUserLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemUserLayerBuilder")
            .field("pdp", &self.pdp)
            .field("resource", &self.resource)
            .field("action", &self.action)
            .field("grpc_methods", &self.grpc)
            .field("party", &self.party)
            .field("refusal_form", &self.form)
            .field("audit_party_key", &self.party_key)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl SystemUserLayerBuilder {
    /// Keeps the first error: a later setter never hides an earlier mistake.
    fn fail(mut self, e: ConfigError) -> Self {
        self.error.get_or_insert(e);
        self
    }

    /// The PDP client to ask (shared with other layers by cloning it).
    pub fn pdp(mut self, pdp: AltinnPdp) -> Self {
        self.pdp = Some(pdp);
        self
    }

    /// The resource id in Altinn's resource registry, e.g. `kravogbetaling`. Checked against
    /// `^[a-z0-9_-]{4,}$`.
    pub fn resource(mut self, id: &str) -> Self {
        match ResourceId::new(id) {
            Ok(r) => {
                self.resource = Some(ResourceSource::Fixed(r));
                self
            }
            Err(e) => self.fail(ConfigError::new("resource", e.to_string())),
        }
    }

    /// Compute the resource id from the request; `None` refuses the request (400).
    pub fn resource_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<ResourceId> + Send + Sync + 'static,
    {
        self.resource = Some(ResourceSource::Computed(Arc::new(f)));
        self
    }

    /// Ask about this action for every request, whatever the method.
    pub fn action(mut self, action: &str) -> Self {
        match Action::new(action) {
            Ok(a) => {
                self.action = ActionSource::Fixed(a);
                self
            }
            Err(e) => self.fail(ConfigError::new("action", e.to_string())),
        }
    }

    /// Derive the action from the HTTP method (the default): GET/HEAD `read`,
    /// POST/PUT/PATCH `write`, DELETE `delete`; other methods are refused (400).
    pub fn action_from_method(mut self) -> Self {
        self.action = ActionSource::FromMethod;
        self
    }

    /// Compute the action from the request; `None` refuses the request (400).
    pub fn action_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<Action> + Send + Sync + 'static,
    {
        self.action = ActionSource::Computed(Arc::new(f));
        self
    }

    /// For gRPC: ask about `action` for calls to `path` (`/package.Service/Method`). Once any
    /// method is listed, the action comes from this table and unlisted methods are refused; a
    /// fixed or computed action as well is a configuration error.
    pub fn grpc_method(mut self, path: &str, action: &str) -> Self {
        if !(path.starts_with('/') && path[1..].contains('/')) {
            return self.fail(ConfigError::new("grpc_method", format!("not a gRPC method path: {path:?}")));
        }
        match Action::new(action) {
            Ok(a) => {
                self.grpc.insert(path.into(), a);
                self
            }
            Err(e) => self.fail(ConfigError::new("grpc_method", e.to_string())),
        }
    }

    /// The party is the system user's own organisation (`systemuser_org`). The default.
    pub fn party_from_system_user(mut self) -> Self {
        self.party = PartySource::SystemUserOrg;
        self
    }

    /// The party is the `{param}` segment of this path template, e.g. `/krav/{orgnr}`: exactly
    /// nine ASCII digits for an organisation, eleven for a person
    /// ([`Party::parse_canonical`]).
    ///
    /// The request path must have the template's shape: as many segments, and every literal
    /// segment equal (byte for byte, no percent-decoding). Any other path, including one with a
    /// trailing slash or an empty segment, is refused with `400 invalid-party` without asking
    /// the PDP. Use the path as this layer sees it: a `route_layer` inside `Router::nest` sees
    /// it without the prefix. The template has exactly one `{param}` segment; wildcards
    /// (`{*rest}`) and partial segments (`nr-{id}`) are refused by [`build`](Self::build). See
    /// the [module docs](super) on the spellings refused.
    pub fn party_from_path(mut self, template: &str) -> Self {
        match PathTemplate::parse(template) {
            Some(t) => {
                self.party = PartySource::PathTemplate(t);
                self
            }
            None => self.fail(ConfigError::new("party_from_path", TEMPLATE_RULES)),
        }
    }

    /// The party is path segment `index` (0 is the first after the leading `/`), in its
    /// canonical spelling ([`Party::parse_canonical`]); anything else is refused (400).
    ///
    /// The other segments are not checked: prefer [`party_from_path`](Self::party_from_path),
    /// which also checks that the path has the shape the route expects.
    pub fn party_from_path_segment(mut self, index: usize) -> Self {
        self.party = PartySource::PathSegment(index);
        self
    }

    /// The party is the value of this request header: exactly one such header, whose whole
    /// value is the canonical spelling ([`Party::parse_canonical`]; nothing is trimmed).
    pub fn party_from_header(mut self, name: &str) -> Self {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => {
                self.party = PartySource::Header(h);
                self
            }
            Err(_) => self.fail(ConfigError::new("party_from_header", "not a valid header name")),
        }
    }

    /// Compute the party from the request and the verified token; `None` refuses it (400).
    /// For client-delegated ("agent") system users, whose party is the client.
    pub fn party_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts, &MaskinportenToken) -> Option<Party> + Send + Sync + 'static,
    {
        self.party = PartySource::Computed(Arc::new(f));
        self
    }

    /// Replace the rejection response (default: [`Rejection::to_response`](crate::reject::Rejection::to_response)).
    pub fn rejection_responder(mut self, responder: impl RejectionResponder) -> Self {
        self.responder = Arc::new(responder);
        self
    }

    /// The form of this layer's refusals (default [`RefusalForm::Auto`]: gRPC for requests
    /// with `content-type: application/grpc…`, HTTP otherwise). Set [`RefusalForm::Http`] on
    /// plain HTTP routes, so that a client cannot turn a refusal into an HTTP 200 by claiming to
    /// speak gRPC; [`RefusalForm::Grpc`] on a gRPC-only server. Set the same form on the
    /// [`MaskinportenLayer`](crate::maskinporten::MaskinportenLayer) in front. See
    /// [`crate::reject`](crate::reject#the-form-of-a-refusal).
    pub fn refusal_form(mut self, form: RefusalForm) -> Self {
        self.form = form;
        self
    }

    /// Pseudonymise persons in the audit trail and the request span under this secret key
    /// (at least 32 bytes, from your secret store), instead of writing `redacted`.
    ///
    /// A party that is a person (an 11-digit national identity number) is never written in
    /// clear. Without a key it is `redacted`; with one it is `hmac-sha256:` followed by the
    /// first 128 bits of HMAC-SHA256(key, identifier) in hex, the same for every request of
    /// that person under that key, so an investigation can find them together (and, with the
    /// key, check whether a given person was the party), while the logs alone do not name
    /// anyone. Keep the key as secret as the logs are sensitive: the identifier space is small
    /// enough to search without it being secret. Organisation numbers are always in clear.
    /// The key is never shown (`Debug` redacts it). See [`crate::telemetry::audit`].
    pub fn audit_party_key(mut self, key: &[u8]) -> Self {
        match PartyKey::new(key) {
            Ok(k) => {
                self.party_key = Some(k);
                self
            }
            Err(e) => self.fail(e),
        }
    }

    /// Checks the configuration and builds the layer. No network I/O.
    pub fn build(self) -> Result<SystemUserLayer, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let pdp = self.pdp.ok_or_else(|| ConfigError::missing("pdp", "required"))?;
        let resource = self
            .resource
            .ok_or_else(|| ConfigError::missing("resource", "required (or resource_with)"))?;
        let action = match (self.grpc.is_empty(), self.action) {
            (true, action) => action,
            (false, ActionSource::FromMethod) => ActionSource::GrpcMethods(Arc::new(self.grpc)),
            // A fixed or computed action would be silently ignored by the method table.
            (false, _) => {
                return Err(ConfigError::conflict(
                    "grpc_method",
                    "give grpc_method(...) or action(...)/action_with(...), not both",
                ));
            }
        };
        let party = self.party;
        Ok(SystemUserLayer {
            config: Arc::new(Config {
                pdp,
                target: Target { resource, action, party },
                responder: self.responder,
                form: self.form,
                party_key: self.party_key,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigErrorKind;
    use crate::pdp::{AltinnToken, AltinnTokenSource, PdpError, PdpErrorKind};
    use std::future::Future;
    use std::pin::Pin;

    /// Never asked: building a layer does no I/O.
    struct NoTokens;

    impl AltinnTokenSource for NoTokens {
        fn token(&self, _force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
            Box::pin(async { Err(PdpError::new(PdpErrorKind::Credentials)) })
        }
    }

    fn ok() -> SystemUserLayerBuilder {
        let pdp = AltinnPdp::builder()
            .platform_url("http://127.0.0.1:9")
            .token_source(NoTokens)
            .build()
            .unwrap();
        SystemUserLayer::builder().pdp(pdp).resource("kravogbetaling")
    }

    fn err(b: SystemUserLayerBuilder) -> (ConfigErrorKind, &'static str) {
        let e = b.build().unwrap_err();
        (e.kind(), e.field())
    }

    #[test]
    fn configuration_errors_name_the_builder_method() {
        assert!(ok().build().is_ok());
        assert_eq!(
            err(SystemUserLayer::builder().resource("kravogbetaling")),
            (ConfigErrorKind::Missing, "pdp")
        );
        assert_eq!(err(ok().pdp_only()), (ConfigErrorKind::Missing, "resource"));
        assert_eq!(err(ok().resource("Krav")), (ConfigErrorKind::Invalid, "resource"));
        assert_eq!(err(ok().action("Read")), (ConfigErrorKind::Invalid, "action"));
        assert_eq!(err(ok().grpc_method("no-slash", "read")), (ConfigErrorKind::Invalid, "grpc_method"));
        assert_eq!(err(ok().grpc_method("/a.B/C", "Read")), (ConfigErrorKind::Invalid, "grpc_method"));
        for bad in ["/krav", "/krav/{*rest}", "/krav/nr-{orgnr}", "/krav/{a}/{b}", "krav/{orgnr}"] {
            assert_eq!(
                err(ok().party_from_path(bad)),
                (ConfigErrorKind::Invalid, "party_from_path"),
                "{bad}"
            );
        }
        assert_eq!(
            err(ok().party_from_header("bad header")),
            (ConfigErrorKind::Invalid, "party_from_header")
        );
    }

    #[test]
    fn a_later_setter_never_erases_an_earlier_error() {
        assert_eq!(err(ok().resource("Krav").resource("kravogbetaling")).1, "resource");
        assert_eq!(err(ok().action("Read").action_from_method()).1, "action");
        assert_eq!(err(ok().grpc_method("x", "read").action("read")).1, "grpc_method");
        assert_eq!(err(ok().party_from_path("/krav").party_from_system_user()).1, "party_from_path");
        assert_eq!(
            err(ok().party_from_header("bad header").party_from_path("/krav/{orgnr}")).1,
            "party_from_header"
        );
        // A method table and a fixed action contradict each other.
        assert_eq!(
            err(ok().grpc_method("/a.B/C", "read").action("sign")),
            (ConfigErrorKind::Conflict, "grpc_method")
        );
        assert!(ok().grpc_method("/a.B/C", "read").action_from_method().build().is_ok());
        // The first of two errors is the one reported.
        assert_eq!(err(ok().action("Read").resource("Krav")).1, "action");
        // A party key too short to be a key.
        assert_eq!(
            err(ok().audit_party_key(b"short").audit_party_key(&[9; 32])),
            (ConfigErrorKind::Invalid, "audit_party_key")
        );
        assert!(ok().audit_party_key(&[9; 32]).build().is_ok());
    }

    #[test]
    fn builder_debug_never_shows_the_party_key() {
        let key = b"party-key-0123456789-abcdefghijkl";
        let shown = format!("{:?}", ok().audit_party_key(key));
        assert!(shown.contains("audit_party_key: Some(<redacted>)"), "{shown}");
        assert!(!shown.contains("party-key-0123"), "{shown}");
        // Nor in the error of a key that is too short.
        let shown = format!("{:?}", ok().audit_party_key(b"secret-but-short").build().unwrap_err());
        assert!(!shown.contains("secret-but-short"), "{shown}");
    }

    #[test]
    fn builder_debug_shows_the_target() {
        let shown = format!("{:?}", ok().party_from_path("/krav/{orgnr}").action("sign"));
        assert!(
            shown.contains("kravogbetaling") && shown.contains("sign") && shown.contains("<path /krav/{party}>"),
            "{shown}"
        );
    }

    impl SystemUserLayerBuilder {
        /// The builder with its PDP but without a resource.
        fn pdp_only(self) -> Self {
            SystemUserLayerBuilder { resource: None, ..self }
        }
    }
}
