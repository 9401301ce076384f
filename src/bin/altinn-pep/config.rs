//! The configuration file (`altinn-pep.toml`): listeners, the Maskinporten layer, the PDP
//! client and the routes, read with the library's configuration types and checked once by
//! their builders. Every error names its key (`routes[2].path`, `pdp.credentials.client_id`).

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use altinn_systemuser::ConfigError;
use altinn_systemuser::config::{MaskinportenConfig, PdpConfig, SystemUserConfig};
use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::pdp::AltinnPdp;
use altinn_systemuser::reject::RefusalForm;
use altinn_systemuser::systemuser::{SystemUserLayer, action_for_method};
use http::{HeaderName, Method};
use serde::Deserialize;

use crate::principal::PRINCIPAL_HEADERS;
use crate::routes::RouteTemplate;

/// The most routes a file may hold.
pub(crate) const MAX_ROUTES: usize = 1000;

/// The whole file. Unknown keys are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PepConfig {
    /// `[listen]`: the addresses.
    pub(crate) listen: ListenConfig,
    /// `[maskinporten]`: the library's [`MaskinportenConfig`].
    #[serde(default)]
    pub(crate) maskinporten: MaskinportenConfig,
    /// `[pdp]` and `[pdp.credentials]`: the library's [`PdpConfig`].
    #[serde(default)]
    pub(crate) pdp: PdpConfig,
    /// `[[routes]]`, in order: the first that matches a request decides it.
    #[serde(default)]
    pub(crate) routes: Vec<RouteConfig>,
}

/// `[listen]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenConfig {
    /// The decision listener (`GET /auth`), for the proxy only. Port 0 picks a free port.
    pub(crate) decision: String,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub(crate) admin: String,
    /// The ext_authz listener (gRPC `envoy.service.auth.v3.Authorization/Check`, for Envoy
    /// and Istio), if any.
    pub(crate) ext_authz: Option<String>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteConfig {
    /// The methods this route answers, e.g. `["GET", "HEAD"]`.
    pub(crate) methods: Vec<String>,
    /// The path template: literal segments, `{name}` segments, and a last `{*rest}`.
    pub(crate) path: String,
    /// The resource id in Altinn's resource registry.
    pub(crate) resource: String,
    /// The action; by default from the method (GET/HEAD `read`, POST/PUT/PATCH `write`,
    /// DELETE `delete`).
    pub(crate) action: Option<String>,
    /// Where the party comes from: `"system_user"` (the default), `"path"` (the template's one
    /// `{name}` segment) or `{ header = "X-Party" }`.
    pub(crate) party: Option<PartyConfig>,
}

/// `party = "system_user" | "path"` or `party = { header = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum PartyConfig {
    /// `"system_user"` or `"path"`.
    Named(String),
    /// `{ header = "X-Party" }`.
    Header {
        /// The request header holding the party.
        header: String,
    },
}

/// A configuration that cannot be used: the key and why. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigFailure {
    pub(crate) key: String,
    pub(crate) reason: String,
}

impl ConfigFailure {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigFailure {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// A library error, with `prefix` before its key (`maskinporten`, `pdp`).
    fn library(prefix: &str, e: &ConfigError) -> Self {
        ConfigFailure::new(format!("{prefix}.{}", e.key()), e.reason())
    }
}

impl fmt::Display for ConfigFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.key, self.reason)
    }
}

/// Everything built from the file: one Maskinporten layer, one PDP client, one system-user
/// layer per route (all sharing the client and its decision cache).
pub(crate) struct Built {
    pub(crate) decision_addr: SocketAddr,
    pub(crate) admin_addr: SocketAddr,
    pub(crate) ext_authz_addr: Option<SocketAddr>,
    pub(crate) maskinporten: MaskinportenLayer,
    pub(crate) pdp: AltinnPdp,
    pub(crate) routes: Vec<BuiltRoute>,
}

/// One route, ready to be asked about.
pub(crate) struct BuiltRoute {
    pub(crate) methods: Vec<Method>,
    pub(crate) template: RouteTemplate,
    pub(crate) system_user: SystemUserLayer,
}

/// Reads and parses the file (no secrets are read yet).
pub(crate) fn load(path: &Path) -> Result<PepConfig, ConfigFailure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigFailure::new("--config", format!("{} cannot be read: {}", path.display(), e.kind())))?;
    parse(&text)
}

/// Parses a document. The TOML error names the key and shows the line.
pub(crate) fn parse(text: &str) -> Result<PepConfig, ConfigFailure> {
    toml::from_str(text).map_err(|e| {
        let key = toml_error_key(&e, text);
        ConfigFailure::new(key, e.to_string().trim_end().to_owned())
    })
}

/// The key a TOML error is about: the name on the line it points at, or `(document)`.
fn toml_error_key(e: &toml::de::Error, text: &str) -> String {
    let Some(span) = e.span() else { return "(document)".to_owned() };
    let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or_default();
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() && !key.trim_start().starts_with('[') => key.trim().to_owned(),
        _ => line.trim().to_owned(),
    }
}

impl PepConfig {
    /// Builds the layers and the PDP client through the library's builders: secrets are read
    /// now, no network I/O.
    pub(crate) fn build(&self) -> Result<Built, ConfigFailure> {
        let decision_addr = socket_addr("listen.decision", &self.listen.decision)?;
        let admin_addr = socket_addr("listen.admin", &self.listen.admin)?;
        if decision_addr == admin_addr && decision_addr.port() != 0 {
            return Err(ConfigFailure::new(
                "listen.admin",
                "the admin listener needs an address of its own (a 200 on the decision listener means allowed)",
            ));
        }
        let ext_authz_addr = match &self.listen.ext_authz {
            Some(value) => {
                let addr = socket_addr("listen.ext_authz", value)?;
                if addr.port() != 0 && (addr == decision_addr || addr == admin_addr) {
                    return Err(ConfigFailure::new(
                        "listen.ext_authz",
                        "the ext_authz listener (gRPC) needs an address of its own",
                    ));
                }
                Some(addr)
            }
            None => None,
        };
        // Refusals are always in HTTP form: a proxy reads the status, and a client must not be
        // able to turn a refusal into a 200 by sending `content-type: application/grpc`.
        if let Some(form) = &self.maskinporten.refusal_form
            && form != "http"
        {
            return Err(ConfigFailure::new(
                "maskinporten.refusal_form",
                "altinn-pep always answers in HTTP form; leave this out or set \"http\"",
            ));
        }
        let maskinporten = self
            .maskinporten
            .builder()
            .and_then(|b| b.refusal_form(RefusalForm::Http).build())
            .map_err(|e| ConfigFailure::library("maskinporten", &e))?;
        let pdp = self.pdp.build().map_err(|e| ConfigFailure::library("pdp", &e))?;
        if self.routes.is_empty() {
            return Err(ConfigFailure::new(
                "routes",
                "no [[routes]]: every request would be refused; add at least one",
            ));
        }
        if self.routes.len() > MAX_ROUTES {
            return Err(ConfigFailure::new("routes", format!("at most {MAX_ROUTES} routes")));
        }
        let mut seen = HashSet::new();
        let mut routes = Vec::with_capacity(self.routes.len());
        for (i, route) in self.routes.iter().enumerate() {
            let built = route.build(i, &pdp)?;
            for m in &built.methods {
                if !seen.insert((m.clone(), route.path.clone())) {
                    return Err(ConfigFailure::new(
                        format!("routes[{i}].methods"),
                        format!("{m} {} is already in an earlier route, which would always decide it", route.path),
                    ));
                }
            }
            routes.push(built);
        }
        Ok(Built {
            decision_addr,
            admin_addr,
            ext_authz_addr,
            maskinporten,
            pdp,
            routes,
        })
    }
}

fn socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigFailure> {
    value.parse().map_err(|_| {
        ConfigFailure::new(
            key,
            format!("{value:?} is not an IP address with a port, such as \"127.0.0.1:8081\""),
        )
    })
}

impl RouteConfig {
    fn build(&self, i: usize, pdp: &AltinnPdp) -> Result<BuiltRoute, ConfigFailure> {
        let key = |k: &str| format!("routes[{i}].{k}");
        if self.methods.is_empty() {
            return Err(ConfigFailure::new(
                key("methods"),
                "give at least one method, such as [\"GET\", \"HEAD\"]",
            ));
        }
        let mut methods = Vec::with_capacity(self.methods.len());
        for m in &self.methods {
            let method = Method::from_bytes(m.as_bytes())
                .ok()
                .filter(|_| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| ConfigFailure::new(key("methods"), format!("{m:?} is not an HTTP method in capitals")))?;
            if self.action.is_none() && action_for_method(&method).is_none() {
                return Err(ConfigFailure::new(
                    key("action"),
                    format!("{m} has no default action (GET/HEAD read, POST/PUT/PATCH write, DELETE delete): give action"),
                ));
            }
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        let template = RouteTemplate::parse(&self.path).map_err(|reason| ConfigFailure::new(key("path"), reason))?;

        let mut su = SystemUserConfig::default();
        su.resource = Some(self.resource.clone());
        su.action = self.action.clone();
        match &self.party {
            None => su.party_from_system_user = true,
            Some(PartyConfig::Named(n)) if n == "system_user" => su.party_from_system_user = true,
            Some(PartyConfig::Named(n)) if n == "path" => {
                if template.params() != 1 || template.has_rest() {
                    return Err(ConfigFailure::new(
                        key("path"),
                        "party = \"path\" needs a template with exactly one {name} segment and no {*rest}",
                    ));
                }
                su.party_from_path = Some(self.path.clone());
            }
            Some(PartyConfig::Named(n)) => {
                return Err(ConfigFailure::new(
                    key("party"),
                    format!("{n:?}: give \"system_user\", \"path\" or {{ header = \"X-Party\" }}"),
                ));
            }
            Some(PartyConfig::Header { header }) => {
                let name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| ConfigFailure::new(key("party"), format!("{header:?} is not a header name")))?;
                if name.as_str().starts_with("x-altinn-") || PRINCIPAL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name.as_str())) {
                    return Err(ConfigFailure::new(
                        key("party"),
                        "X-Altinn-* headers are altinn-pep's answer, which the proxy removes from requests: name another header",
                    ));
                }
                su.party_from_header = Some(header.clone());
            }
        }
        let system_user = su
            .builder(pdp.clone())
            .and_then(|b| b.refusal_form(RefusalForm::Http).build())
            .map_err(|e| {
                let field = match e.field() {
                    "party_from_path" => "path",
                    "party_from_header" => "party",
                    other => other,
                };
                ConfigFailure::new(key(field), e.reason())
            })?;
        Ok(BuiltRoute {
            methods,
            template,
            system_user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use altinn_systemuser::test_util::{KeyRole, TestKey};

    /// A document that builds, but for its routes.
    fn base() -> String {
        let pem = TestKey::for_role(KeyRole::Provider).private_key_pkcs8_pem();
        format!(
            r#"
[listen]
decision = "127.0.0.1:0"
admin = "127.0.0.1:0"

[maskinporten]
issuer = "http://127.0.0.1:9/"
require_scope = ["skatteetaten:kravogbetalinger"]

[pdp]
platform_url = "http://127.0.0.1:9"
subscription_key = "not-a-real-key"

[pdp.credentials]
issuer = "http://127.0.0.1:9/"
client_id = "provider"
key_id = "k1"
private_key_pem = """
{pem}"""
"#
        )
    }

    fn with_route(route: &str) -> String {
        format!("{}\n[[routes]]\n{route}\n", base())
    }

    /// The key of the first error in `doc`, or `(none)`.
    fn key_of(doc: &str) -> String {
        match parse(doc) {
            Err(e) => e.key,
            Ok(c) => match c.build() {
                Err(e) => e.key,
                Ok(_) => "(none)".into(),
            },
        }
    }

    #[test]
    fn errors_name_their_key() {
        let ok_route = "methods = [\"GET\"]\npath = \"/krav/{orgnr}\"\nresource = \"kravogbetaling\"\nparty = \"path\"";
        assert_eq!(key_of(&with_route(ok_route)), "(none)");
        let cases = [
            ("methods = []\npath = \"/a\"\nresource = \"kravogbetaling\"", "routes[0].methods"),
            (
                "methods = [\"get\"]\npath = \"/a\"\nresource = \"kravogbetaling\"",
                "routes[0].methods",
            ),
            (
                "methods = [\"OPTIONS\"]\npath = \"/a\"\nresource = \"kravogbetaling\"",
                "routes[0].action",
            ),
            ("methods = [\"GET\"]\npath = \"a\"\nresource = \"kravogbetaling\"", "routes[0].path"),
            (
                "methods = [\"GET\"]\npath = \"/a/../b\"\nresource = \"kravogbetaling\"",
                "routes[0].path",
            ),
            (
                "methods = [\"GET\"]\npath = \"/a/{x}/{y}\"\nresource = \"kravogbetaling\"\nparty = \"path\"",
                "routes[0].path",
            ),
            ("methods = [\"GET\"]\npath = \"/a\"\nresource = \"Krav\"", "routes[0].resource"),
            (
                "methods = [\"GET\"]\npath = \"/a\"\nresource = \"kravogbetaling\"\naction = \"Read\"",
                "routes[0].action",
            ),
            (
                "methods = [\"GET\"]\npath = \"/a\"\nresource = \"kravogbetaling\"\nparty = \"caller\"",
                "routes[0].party",
            ),
            (
                "methods = [\"GET\"]\npath = \"/a\"\nresource = \"kravogbetaling\"\nparty = { header = \"X-Altinn-Party\" }",
                "routes[0].party",
            ),
            ("methods = [\"GET\"]\npath = \"/a\"\nresource = \"kravogbetaling\"\nfoo = 1", "foo"),
        ];
        for (route, key) in cases {
            assert_eq!(key_of(&with_route(route)), key, "{route}");
        }
        // The same method and path twice: the second could never decide anything.
        let twice = format!("{}\n[[routes]]\n{ok_route}\n", with_route(ok_route));
        assert_eq!(key_of(&twice), "routes[1].methods");
        // No routes at all: everything would be refused.
        assert_eq!(key_of(&base()), "routes");
        // A secret that cannot be read.
        let unset = with_route(ok_route).replace(
            "subscription_key = \"not-a-real-key\"",
            "subscription_key = { env = \"ALTINN_PEP_TEST_NOT_SET\" }",
        );
        assert_eq!(key_of(&unset), "pdp.subscription_key");
        // The library's own keys, with their section.
        assert_eq!(
            key_of(&with_route(ok_route).replace("issuer = \"http://127.0.0.1:9/\"\nrequire", "require")),
            "maskinporten.issuer"
        );
        assert_eq!(
            key_of(&with_route(ok_route).replace("[maskinporten]", "[maskinporten]\nrefusal_form = \"grpc\"")),
            "maskinporten.refusal_form"
        );
        assert_eq!(
            key_of(&with_route(ok_route).replace("127.0.0.1:0\"\nadmin", "localhost\"\nadmin")),
            "listen.decision"
        );
        assert_eq!(key_of(&with_route(ok_route).replace("[listen]", "[listen]\nextra = 1")), "extra");
        // The ext_authz listener: optional, an address of its own.
        let ext_authz = |value: &str| with_route(ok_route).replace("[listen]", &format!("[listen]\next_authz = \"{value}\""));
        assert_eq!(key_of(&ext_authz("127.0.0.1:0")), "(none)");
        assert_eq!(key_of(&ext_authz("localhost:9191")), "listen.ext_authz");
        let taken = ext_authz("127.0.0.1:9191").replace("admin = \"127.0.0.1:0\"", "admin = \"127.0.0.1:9191\"");
        assert_eq!(key_of(&taken), "listen.ext_authz");
        let built = parse(&ext_authz("127.0.0.1:9191")).unwrap().build().unwrap();
        assert_eq!(built.ext_authz_addr, Some("127.0.0.1:9191".parse().unwrap()));
        assert_eq!(parse(&with_route(ok_route)).unwrap().build().unwrap().ext_authz_addr, None);
    }

    #[test]
    fn a_toml_error_points_at_its_line() {
        let e = parse("[listen]\ndecision = 5\nadmin = \"127.0.0.1:0\"\n").unwrap_err();
        assert_eq!(e.key, "decision");
        assert!(e.reason.contains("string"), "{}", e.reason);
    }
}
