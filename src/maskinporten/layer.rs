//! [`MaskinportenLayer`] and its builder.

use super::algorithm::Algorithm;
use super::cache::TokenCache;
use super::issuer::{AltinnAudience, AltinnLifetime, AltinnTokens, Profile, TokenIssuer, altinn_issuer};
use super::key_store::{KeySource, KeyStore, KeyStoreConfig};
use super::service::{Config, MaskinportenService, ScopeRule};
use super::token::MaskinportenToken;
use super::validate::{AudiencePolicy, Validator};
use crate::ConfigError;
use crate::error::check_url;
use crate::reject::{ProblemResponder, RefusalForm, RejectionKind, RejectionResponder};
use std::sync::Arc;
use std::time::Duration;
use tower_layer::Layer;

/// Maskinporten's production issuer.
pub const PRODUCTION_ISSUER: &str = "https://maskinporten.no/";
/// Maskinporten's test issuer (pairs with Altinn TT02).
pub const TEST_ISSUER: &str = "https://test.maskinporten.no/";

/// Largest accepted token, checked before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A tower layer that validates Maskinporten access tokens.
///
/// Build it once with [`MaskinportenLayer::builder`] and apply it to a router or service.
/// Cloning is cheap: clones share the key store and the token cache.
#[derive(Clone)]
pub struct MaskinportenLayer {
    config: Arc<Config>,
}

impl MaskinportenLayer {
    /// Starts configuring a layer. Issuer and at least one required scope must be set.
    pub fn builder() -> MaskinportenLayerBuilder {
        MaskinportenLayerBuilder::default()
    }

    /// Maskinporten's key store, to wait for keys at startup (`layer.keys().ready().await`) or
    /// to answer a readiness probe (`layer.keys().is_ready()`).
    pub fn keys(&self) -> &KeyStore {
        &self.config.profiles[0].keys
    }

    /// The key store of Altinn-issued tokens, when they are trusted
    /// ([`MaskinportenLayerBuilder::altinn_tokens`]).
    pub fn altinn_keys(&self) -> Option<&KeyStore> {
        self.config.profiles.iter().find(|p| p.kind == TokenIssuer::Altinn).map(|p| &p.keys)
    }

    /// Every trusted issuer's key store, Maskinporten's first (for readiness).
    pub fn key_stores(&self) -> impl Iterator<Item = (TokenIssuer, &KeyStore)> {
        self.config.profiles.iter().map(|p| (p.kind, &p.keys))
    }

    /// Checks one token (the part after `Bearer `) exactly as this layer checks a request's:
    /// shape, header, the issuer's key (fetched from that issuer if not loaded yet), signature,
    /// claims, then the required scopes. The verified token, or the [`RejectionKind`] the layer
    /// would refuse the request with. For diagnostics (`altinn-pep explain`) and tools; requests
    /// go through the layer.
    ///
    /// Nothing but the issuer's metadata and keys is fetched; the token itself is sent nowhere.
    pub async fn check_token(&self, token: &str) -> Result<MaskinportenToken, RejectionKind> {
        self.config.check_token(token).await
    }
}

impl std::fmt::Debug for MaskinportenLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskinportenLayer")
            .field(
                "issuers",
                &self.config.profiles.iter().map(|p| &*p.validator.issuer).collect::<Vec<_>>(),
            )
            .field("scopes", &self.config.scopes)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for MaskinportenLayer {
    type Service = MaskinportenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MaskinportenService::new(inner, self.config.clone())
    }
}

/// Builder for [`MaskinportenLayer`]. Nothing is fetched until the first request (or
/// [`KeyStore::ready`]); `build` only checks the configuration.
#[must_use]
pub struct MaskinportenLayerBuilder {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    all_of: Vec<String>,
    any_of: Vec<String>,
    allow_any_scope: bool,
    audience: Vec<String>,
    leeway: Duration,
    max_lifetime: Option<Duration>,
    algorithms: Vec<Algorithm>,
    client: Option<reqwest::Client>,
    keys: KeyStoreConfig,
    shared_keys: Option<KeyStore>,
    cache_capacity: u64,
    responder: Arc<dyn RejectionResponder>,
    form: RefusalForm,
    refusal_level: tracing::Level,
    altinn: Option<AltinnTokens>,
}

impl Default for MaskinportenLayerBuilder {
    fn default() -> Self {
        MaskinportenLayerBuilder {
            issuer: None,
            jwks_uri: None,
            all_of: Vec::new(),
            any_of: Vec::new(),
            allow_any_scope: false,
            audience: Vec::new(),
            leeway: Duration::from_secs(10),
            max_lifetime: None,
            algorithms: vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
            client: None,
            keys: KeyStoreConfig::default(),
            shared_keys: None,
            cache_capacity: 10_000,
            responder: Arc::new(ProblemResponder),
            form: RefusalForm::Auto,
            refusal_level: tracing::Level::DEBUG,
            altinn: None,
        }
    }
}

impl std::fmt::Debug for MaskinportenLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskinportenLayerBuilder")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .field("require_scope", &self.all_of)
            .field("require_any_scope", &self.any_of)
            .field("allow_any_scope", &self.allow_any_scope)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("max_token_lifetime", &self.max_lifetime)
            .field("algorithms", &self.algorithms)
            .field("http_client", &self.client.as_ref().map(|_| "<custom>"))
            .field("jwks", &self.keys)
            .field("key_store", &self.shared_keys)
            .field("token_cache_capacity", &self.cache_capacity)
            .field("refusal_form", &self.form)
            .field("refusal_log_level", &self.refusal_level)
            .field("altinn_tokens", &self.altinn)
            .finish_non_exhaustive()
    }
}

impl MaskinportenLayerBuilder {
    /// Production Maskinporten (`https://maskinporten.no/`).
    pub fn production(self) -> Self {
        self.issuer(PRODUCTION_ISSUER)
    }

    /// Test Maskinporten (`https://test.maskinporten.no/`), which pairs with Altinn TT02.
    pub fn test_environment(self) -> Self {
        self.issuer(TEST_ISSUER)
    }

    /// Any issuer, exactly as it appears in `iss` (with the trailing slash). Keys are found
    /// through `{issuer}.well-known/oauth-authorization-server` unless [`jwks_uri`](Self::jwks_uri)
    /// is set. Must be `https`, or `http` to a loopback host (fakes, local setups).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Skip discovery and fetch keys from this JWKS URL.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Require this scope (all scopes given this way are required). Exact element match on the
    /// space-separated `scope` claim.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.all_of.push(scope.into());
        self
    }

    /// Require at least one of these scopes.
    pub fn require_any_scope<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.any_of.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Accept tokens whatever their scope. Off by default: `build` refuses a layer without a
    /// required scope unless this is called, so a forgotten scope cannot open an API.
    pub fn allow_any_scope(mut self) -> Self {
        self.allow_any_scope = true;
        self
    }

    /// Require this audience in `aud` (string or array). Repeat to accept several. Without it,
    /// only tokens with no `aud` or `aud = "unspecified"` are accepted.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience.push(aud.into());
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 10 s, at most 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Refuse tokens whose `exp - iat` is longer than this.
    pub fn max_token_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// The accepted signature algorithms (default RS256, RS384, RS512).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    /// The HTTP client for discovery and JWKS fetches. Its own timeouts apply in addition to
    /// ours (connect 3 s, total 10 s per fetch).
    ///
    /// `reqwest` is a public dependency: its major version (0.13) is part of this crate's
    /// semver (see [`AltinnPdpBuilder::http_client`](crate::pdp::AltinnPdpBuilder::http_client)).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Use the key store of another layer (same issuer), so that several layers with different
    /// scopes share one JWKS cache.
    pub fn key_store(mut self, keys: KeyStore) -> Self {
        self.shared_keys = Some(keys);
        self
    }

    /// Least time between two refetches caused by an unknown `kid` (default 30 s).
    pub fn unknown_kid_refetch_interval(mut self, every: Duration) -> Self {
        self.keys.unknown_kid_interval = every;
        self
    }

    /// Key-set lifetime when the JWKS response has no `Cache-Control: max-age` (default 10 min).
    /// `max-age` is honoured within 1 min to 24 h.
    pub fn jwks_ttl(mut self, ttl: Duration) -> Self {
        self.keys.default_ttl = ttl;
        self
    }

    /// Bounds for the `max-age` of the JWKS response (default 1 min to 24 h).
    pub fn jwks_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.keys.min_ttl = min;
        self.keys.max_ttl = max;
        self
    }

    /// How long the last good keys keep serving past their TTL while the JWKS cannot be
    /// fetched (default 24 h).
    pub fn jwks_max_stale(mut self, stale: Duration) -> Self {
        self.keys.max_stale = stale;
        self
    }

    /// Backoff between failed fetches: doubles from `min` up to `max` (default 1 s to 60 s).
    pub fn jwks_retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.keys.min_backoff = min;
        self.keys.max_backoff = max;
        self
    }

    /// Timeouts of one discovery or JWKS fetch (default 3 s to connect, 10 s in all).
    pub fn jwks_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.keys.connect_timeout = connect;
        self.keys.fetch_timeout = total;
        self
    }

    /// Capacity of the verified-token cache (default 10,000 tokens; 0 turns it off). The cache
    /// is sharded for concurrency, so it may start evicting a little before it holds exactly
    /// this many; it never holds more.
    pub fn token_cache_capacity(mut self, capacity: u64) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Replace the rejection response (the default is [`Rejection::to_response`](crate::reject::Rejection::to_response)).
    pub fn rejection_responder(mut self, responder: impl RejectionResponder) -> Self {
        self.responder = Arc::new(responder);
        self
    }

    /// The form of this layer's refusals (default [`RefusalForm::Auto`]: gRPC for requests
    /// with `content-type: application/grpc…`, HTTP otherwise). Set [`RefusalForm::Http`] on
    /// plain HTTP routes, so that a client cannot turn a refusal into an HTTP 200 by claiming to
    /// speak gRPC; [`RefusalForm::Grpc`] on a gRPC-only server. Set the same form on the
    /// [`SystemUserLayer`](crate::systemuser::SystemUserLayer) behind it. See
    /// [`crate::reject`](crate::reject#the-form-of-a-refusal).
    pub fn refusal_form(mut self, form: RefusalForm) -> Self {
        self.form = form;
        self
    }

    /// The level of the audit event for each refused token (default `DEBUG`): an event on the
    /// target `altinn_systemuser::audit` with `outcome` `refused` and the refusal's `reason`
    /// only, nothing read from the token. Kept below `INFO` by default so that a client sending
    /// garbage cannot flood the logs; raise it where refusals must be on the record. See
    /// [`crate::telemetry::audit`].
    pub fn refusal_log_level(mut self, level: tracing::Level) -> Self {
        self.refusal_level = level;
        self
    }

    /// Also trusts tokens that Altinn's platform issues (after the Maskinporten → Altinn
    /// exchange): a second issuer with its own key store (OpenID Connect discovery) and its own
    /// audience and lifetime rules (see [`AltinnTokens`]). Without it, Altinn tokens are refused
    /// (`wrong-issuer`). The presets must pair with the Maskinporten environment: test with TT02,
    /// production with production (`ConfigError` field `altinn_tokens`).
    pub fn altinn_tokens(mut self, tokens: AltinnTokens) -> Self {
        self.altinn = Some(tokens);
        self
    }

    /// Checks the configuration and builds the layer. No network I/O.
    pub fn build(self) -> Result<MaskinportenLayer, ConfigError> {
        let issuer = self
            .issuer
            .ok_or_else(|| ConfigError::missing("issuer", "required: production(), test_environment() or issuer(...)"))?;
        let issuer_url = check_url("issuer", &issuer)?;
        if !issuer.ends_with('/') {
            return Err(ConfigError::new("issuer", "must end with '/' (Maskinporten's iss does)"));
        }
        if self.all_of.is_empty() && self.any_of.is_empty() && !self.allow_any_scope {
            return Err(ConfigError::missing(
                "require_scope",
                "no required scope; call allow_any_scope() if that is meant",
            ));
        }
        let bad_scope = |s: &String| {
            s.is_empty()
                || s.bytes()
                    .any(|b| b == b' ' || b == b'"' || b == b'\\' || !(0x21..0x7f).contains(&b))
        };
        for (field, scopes) in [("require_scope", &self.all_of), ("require_any_scope", &self.any_of)] {
            if let Some(s) = scopes.iter().find(|s| bad_scope(s)) {
                return Err(ConfigError::new(field, format!("not a valid scope token: {s:?}")));
            }
        }
        if self.leeway > Duration::from_secs(60) {
            return Err(ConfigError::new("leeway", "at most 60 s"));
        }
        // Upper bounds, so that no deadline computed from them (now + TTL + stale) can overflow.
        const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
        const HOUR: Duration = Duration::from_secs(3600);
        let bounded = [
            ("jwks_ttl", self.keys.default_ttl, WEEK, "at most 7 days"),
            ("jwks_ttl_bounds", self.keys.max_ttl, WEEK, "the maximum is at most 7 days"),
            ("jwks_max_stale", self.keys.max_stale, WEEK, "at most 7 days"),
            ("jwks_retry_backoff", self.keys.max_backoff, HOUR, "the maximum is at most 1 hour"),
            ("jwks_timeouts", self.keys.fetch_timeout, HOUR, "at most 1 hour"),
            (
                "unknown_kid_refetch_interval",
                self.keys.unknown_kid_interval,
                HOUR,
                "at most 1 hour",
            ),
            ("max_token_lifetime", self.max_lifetime.unwrap_or_default(), WEEK, "at most 7 days"),
        ];
        if let Some((field, _, _, reason)) = bounded.into_iter().find(|(_, value, max, _)| value > max) {
            return Err(ConfigError::new(field, reason));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::new("algorithms", "at least one algorithm is required"));
        }
        if self.keys.min_ttl > self.keys.max_ttl {
            return Err(ConfigError::new("jwks_ttl_bounds", "minimum above maximum"));
        }
        if self.keys.min_backoff > self.keys.max_backoff {
            return Err(ConfigError::new("jwks_retry_backoff", "minimum above maximum"));
        }
        if self.keys.fetch_timeout.is_zero() {
            return Err(ConfigError::new("jwks_timeouts", "the total timeout must be more than zero"));
        }
        let client = match self.client {
            Some(c) => c,
            None => crate::outbound::default_client(self.keys.connect_timeout, Some(self.keys.fetch_timeout))
                .map_err(|_| ConfigError::new("http_client", "the default HTTP client could not be built"))?,
        };
        let keys = match self.shared_keys {
            Some(k) => {
                if k.issuer() != issuer {
                    return Err(ConfigError::conflict("key_store", "belongs to another issuer"));
                }
                k
            }
            None => {
                let source = match &self.jwks_uri {
                    Some(u) => KeySource::Jwks(check_url("jwks_uri", u)?),
                    None => KeySource::Discovery(
                        issuer_url
                            .join(".well-known/oauth-authorization-server")
                            .map_err(|e| ConfigError::new("issuer", e.to_string()))?,
                    ),
                };
                KeyStore::new(issuer.clone(), TokenIssuer::Maskinporten, source, client.clone(), self.keys.clone())
            }
        };
        let algorithms = Validator::allowed_bits(&self.algorithms);
        let leeway_secs = self.leeway.as_secs() as i64;
        let validator = Validator {
            issuer: issuer.clone().into(),
            kind: TokenIssuer::Maskinporten,
            audience: if self.audience.is_empty() {
                AudiencePolicy::Unrestricted
            } else {
                AudiencePolicy::Require(self.audience.iter().map(|a| a.as_str().into()).collect())
            },
            leeway_secs,
            max_lifetime_secs: self.max_lifetime.map(|d| d.as_secs() as i64),
            algorithms,
            max_token_bytes: MAX_TOKEN_BYTES,
        };
        let mut profiles = vec![Profile {
            kind: TokenIssuer::Maskinporten,
            validator,
            keys,
        }];
        if let Some(altinn) = &self.altinn {
            let (validator, keys) = altinn_profile(
                altinn,
                &issuer,
                !self.audience.is_empty(),
                self.max_lifetime.is_some(),
                &client,
                self.keys,
            )?;
            let validator = Validator {
                leeway_secs,
                algorithms,
                ..validator
            };
            profiles.push(Profile {
                kind: TokenIssuer::Altinn,
                validator,
                keys,
            });
        }
        let cache = match self.cache_capacity {
            0 => None,
            capacity => {
                let cache = TokenCache::new(capacity);
                if cache.is_none() {
                    tracing::warn!(
                        target: "altinn_systemuser",
                        "no key for the token cache could be drawn from the operating system's random source: every token is verified"
                    );
                }
                cache
            }
        };
        Ok(MaskinportenLayer {
            config: Arc::new(Config {
                profiles: profiles.into(),
                scopes: ScopeRule::new(self.all_of, self.any_of),
                cache,
                headers: Default::default(),
                responder: self.responder,
                form: self.form,
                refusal_level: self.refusal_level,
            }),
        })
    }
}

/// The Altinn profile's validator (issuer, audience, lifetime; leeway and algorithms are set by
/// the caller) and key store. `maskinporten_issuer` must pair with it; when the Maskinporten
/// profile requires an audience or limits the lifetime, this profile must state its own rule.
fn altinn_profile(
    altinn: &AltinnTokens,
    maskinporten_issuer: &str,
    audience_required: bool,
    lifetime_limited: bool,
    client: &reqwest::Client,
    keys: KeyStoreConfig,
) -> Result<(Validator, KeyStore), ConfigError> {
    let platform = check_url("altinn_tokens", &altinn.platform)?;
    if platform.query().is_some() || platform.fragment().is_some() {
        return Err(ConfigError::new(
            "altinn_tokens",
            "the platform URL must not have a query or fragment",
        ));
    }
    let issuer = altinn_issuer(platform.as_str());
    let issuer_url = check_url("altinn_tokens", &issuer)?;
    // Production Maskinporten pairs with Altinn production only: a test platform's key (TT02,
    // AT22-24, YT01, whose tools mint tokens with any claims) must never vouch for a caller of a
    // production API. Test Maskinporten never pairs with Altinn production.
    let production_altinn = altinn_issuer("https://platform.altinn.no");
    let paired = match maskinporten_issuer {
        PRODUCTION_ISSUER => issuer == production_altinn,
        TEST_ISSUER => issuer != production_altinn,
        _ => true,
    };
    if !paired {
        return Err(ConfigError::conflict(
            "altinn_tokens",
            format!(
                "{maskinporten_issuer} does not pair with {issuer}: production Maskinporten with https://platform.altinn.no only, test Maskinporten with TT02 or another test platform"
            ),
        ));
    }
    let audience = match &altinn.audience {
        AltinnAudience::Unstated if audience_required => {
            return Err(ConfigError::missing(
                "altinn_tokens",
                "Maskinporten tokens must name an audience: say the rule for Altinn tokens too (require_audience or without_audience)",
            ));
        }
        AltinnAudience::Unstated | AltinnAudience::NoneRequired => AudiencePolicy::Unrestricted,
        AltinnAudience::Require(list) => {
            if list.iter().any(String::is_empty) {
                return Err(ConfigError::new("altinn_tokens", "an empty audience"));
            }
            AudiencePolicy::Require(list.iter().map(|a| a.as_str().into()).collect())
        }
    };
    let max_lifetime = match altinn.lifetime {
        AltinnLifetime::Unstated if lifetime_limited => {
            return Err(ConfigError::missing(
                "altinn_tokens",
                "Maskinporten tokens have a maximum lifetime: say the rule for Altinn tokens too (max_token_lifetime or any_lifetime; they live 30 minutes)",
            ));
        }
        AltinnLifetime::Unstated | AltinnLifetime::Unlimited => None,
        AltinnLifetime::AtMost(d) if d > Duration::from_secs(7 * 24 * 3600) => {
            return Err(ConfigError::new("altinn_tokens", "the maximum lifetime is at most 7 days"));
        }
        AltinnLifetime::AtMost(d) => Some(d.as_secs() as i64),
    };
    let source = match &altinn.jwks_uri {
        Some(u) => KeySource::Jwks(check_url("altinn_tokens", u)?),
        None => KeySource::Discovery(
            issuer_url
                .join(".well-known/openid-configuration")
                .map_err(|e| ConfigError::new("altinn_tokens", e.to_string()))?,
        ),
    };
    let keys = KeyStore::new(issuer.clone(), TokenIssuer::Altinn, source, client.clone(), keys);
    let validator = Validator {
        issuer: issuer.into(),
        kind: TokenIssuer::Altinn,
        audience,
        leeway_secs: 0,
        max_lifetime_secs: max_lifetime,
        algorithms: 0,
        max_token_bytes: MAX_TOKEN_BYTES,
    };
    Ok((validator, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigErrorKind;

    fn err(b: MaskinportenLayerBuilder) -> (ConfigErrorKind, &'static str) {
        let e = b.build().unwrap_err();
        (e.kind(), e.field())
    }

    #[test]
    fn configuration_errors_name_the_builder_method() {
        let ok = || MaskinportenLayer::builder().issuer("http://127.0.0.1:9/").require_scope("a:b");
        assert!(ok().build().is_ok());
        assert_eq!(
            err(MaskinportenLayer::builder().require_scope("a:b")),
            (ConfigErrorKind::Missing, "issuer")
        );
        assert_eq!(err(ok().issuer("http://example.com/")), (ConfigErrorKind::Invalid, "issuer"));
        assert_eq!(err(ok().issuer("http://127.0.0.1:9")), (ConfigErrorKind::Invalid, "issuer"));
        assert_eq!(
            err(MaskinportenLayer::builder().issuer("http://127.0.0.1:9/")),
            (ConfigErrorKind::Missing, "require_scope")
        );
        assert_eq!(err(ok().require_scope("a b")), (ConfigErrorKind::Invalid, "require_scope"));
        assert_eq!(
            err(ok().require_any_scope(["a:b", "c\"d"])),
            (ConfigErrorKind::Invalid, "require_any_scope")
        );
        assert_eq!(err(ok().leeway(Duration::from_secs(61))), (ConfigErrorKind::Invalid, "leeway"));
        assert_eq!(err(ok().algorithms([])), (ConfigErrorKind::Invalid, "algorithms"));
        let (s1, s2) = (Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(err(ok().jwks_ttl_bounds(s2, s1)), (ConfigErrorKind::Invalid, "jwks_ttl_bounds"));
        assert_eq!(
            err(ok().jwks_retry_backoff(s2, s1)),
            (ConfigErrorKind::Invalid, "jwks_retry_backoff")
        );
        assert_eq!(
            err(ok().jwks_timeouts(s1, Duration::ZERO)),
            (ConfigErrorKind::Invalid, "jwks_timeouts")
        );
        assert_eq!(err(ok().jwks_uri("ftp://127.0.0.1/jwks")), (ConfigErrorKind::Invalid, "jwks_uri"));
        let forever = Duration::MAX;
        assert_eq!(err(ok().jwks_ttl(forever)).1, "jwks_ttl");
        assert_eq!(err(ok().jwks_ttl_bounds(s1, forever)).1, "jwks_ttl_bounds");
        assert_eq!(err(ok().jwks_max_stale(forever)).1, "jwks_max_stale");
        assert_eq!(err(ok().jwks_retry_backoff(s1, forever)).1, "jwks_retry_backoff");
        assert_eq!(err(ok().jwks_timeouts(s1, forever)).1, "jwks_timeouts");
        assert_eq!(err(ok().unknown_kid_refetch_interval(forever)).1, "unknown_kid_refetch_interval");
        assert_eq!(err(ok().max_token_lifetime(forever)).1, "max_token_lifetime");
        let other = MaskinportenLayer::builder()
            .issuer("http://127.0.0.1:8/")
            .allow_any_scope()
            .build()
            .unwrap();
        assert_eq!(err(ok().key_store(other.keys().clone())), (ConfigErrorKind::Conflict, "key_store"));
    }

    #[test]
    fn builder_debug_shows_settings() {
        let b = MaskinportenLayer::builder().issuer("http://127.0.0.1:9/").require_scope("a:b");
        let shown = format!("{b:?}");
        assert!(shown.contains("127.0.0.1:9") && shown.contains("a:b"), "{shown}");
    }
}
