//! [`AltinnPdpBuilder`]: every setting of the PDP client, checked once in `build()`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;

use super::breaker::{Breaker, BreakerSettings};
use super::cache::DecisionCache;
use super::credentials::MaskinportenTokenSource;
use super::limiter::{self, DecisionLimiter};
use super::readiness;
use super::request::DecisionKey;
use super::{
    AltinnEnvironment, AltinnPdp, AltinnTokenSource, CONNECT_TIMEOUT, DEFAULT_CACHE_CAPACITY, DEFAULT_DENY_TTL, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_PERMIT_TTL, DEFAULT_TIMEOUT, DecisionRequest, Inner, MAX_TIMEOUT, MAX_TTL, MaskinportenCredentials,
};
use crate::ConfigError;
use crate::error::check_url;

/// Builds an [`AltinnPdp`]. Setters never fail; [`build`](Self::build) checks everything once.
#[must_use]
pub struct AltinnPdpBuilder {
    environment: Option<AltinnEnvironment>,
    platform_url: Option<String>,
    subscription_key: Option<String>,
    credentials: Option<MaskinportenCredentials>,
    token_source: Option<Arc<dyn AltinnTokenSource>>,
    http: Option<reqwest::Client>,
    timeout: Duration,
    max_response_bytes: usize,
    permit_ttl: Duration,
    deny_ttl: Duration,
    cache_capacity: u64,
    /// `(per_second, burst)` of new PDP questions per system user; `None`: no limit.
    decision_limit: Option<(u32, u32)>,
    pub(super) breaker: BreakerSettings,
    readiness_question: Option<DecisionRequest>,
}

impl Default for AltinnPdpBuilder {
    fn default() -> Self {
        AltinnPdpBuilder {
            environment: None,
            platform_url: None,
            subscription_key: None,
            credentials: None,
            token_source: None,
            http: None,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            permit_ttl: DEFAULT_PERMIT_TTL,
            deny_ttl: DEFAULT_DENY_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            decision_limit: Some((limiter::DEFAULT_PER_SECOND, limiter::DEFAULT_BURST)),
            breaker: BreakerSettings::default(),
            readiness_question: None,
        }
    }
}

impl AltinnPdpBuilder {
    /// The Altinn environment; sets the platform URL unless [`platform_url`](Self::platform_url)
    /// is given.
    pub fn environment(mut self, env: AltinnEnvironment) -> Self {
        self.environment = Some(env);
        self
    }

    /// The platform base URL, for example `https://platform.tt02.altinn.no`. Must be `https`
    /// (plain `http` only to a loopback host, for fakes). Wins over
    /// [`environment`](Self::environment).
    pub fn platform_url(mut self, url: impl Into<String>) -> Self {
        self.platform_url = Some(url.into());
        self
    }

    /// The API Management subscription key (`Ocp-Apim-Subscription-Key`).
    pub fn subscription_key(mut self, key: impl Into<String>) -> Self {
        self.subscription_key = Some(key.into());
        self
    }

    /// The provider's Maskinporten client, used to get Altinn tokens.
    pub fn credentials(mut self, credentials: MaskinportenCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Another source of Altinn tokens, instead of [`credentials`](Self::credentials).
    pub fn token_source(mut self, source: impl AltinnTokenSource) -> Self {
        self.token_source = Some(Arc::new(source));
        self
    }

    /// The HTTP client for the PDP, the Maskinporten token endpoint and the token exchange.
    ///
    /// The default has a 2 s connect timeout, follows no redirects and uses rustls; the
    /// decision's time budget ([`timeout`](Self::timeout)) bounds each decision, and each
    /// grant, exchange and PDP call within it. A client you give is used as is: give it a
    /// connect timeout and no redirect policy (its own total timeout, if any, is not needed).
    ///
    /// `reqwest` is a public dependency: its major version (0.13) is part of this crate's
    /// semver, so that you can share your own client (proxy, root certificates, connection
    /// pool) without a wrapper. A `reqwest` upgrade is a breaking release of this crate.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The total time budget of one decision, including getting a token and the one retry.
    /// Default 5 s. A PDP call or token refresh shared by several callers is abandoned one
    /// budget after it started. At most 5 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest PDP (or token) response read. Default 256 KiB.
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// How long a `Permit` is cached (never past the request's `valid_until`). Default 30 s,
    /// at most 4 minutes; zero turns `Permit` caching off.
    pub fn permit_ttl(mut self, ttl: Duration) -> Self {
        self.permit_ttl = ttl;
        self
    }

    /// How long `Deny`, `NotApplicable` and `ObligationNotMet` are cached. Default 5 s, at most
    /// 4 minutes; zero turns their caching off.
    pub fn deny_ttl(mut self, ttl: Duration) -> Self {
        self.deny_ttl = ttl;
        self
    }

    /// How many decisions the cache holds. Default 10 000; zero turns the cache (and the sharing
    /// of concurrent identical calls) off. The cache is sharded for concurrency, so it may start
    /// evicting a little before it holds exactly this many; it never holds more.
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// How many new PDP questions one system user may start: `per_second` on average, up to
    /// `burst` at once. Default 20 a second with a burst of 100; each at least 1 and at most
    /// 100 000.
    ///
    /// Only a question that starts a PDP call costs one: a cached decision, or joining the same
    /// question already in flight, is free; [`AltinnPdp::decide_many`] costs one per distinct
    /// question it asks the PDP. Over the limit, [`PdpErrorKind::TooManyDecisions`](super::PdpErrorKind::TooManyDecisions) (a `429`
    /// from the system-user layer) with the time until the next may be asked. A
    /// `decide_many` with more distinct new questions of one system user than `burst` is
    /// refused at once, without `retry_after`: split it.
    pub fn decision_rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.decision_limit = Some((per_second, burst));
        self
    }

    /// No limit on new PDP questions per system user (see
    /// [`decision_rate_limit`](Self::decision_rate_limit)).
    pub fn no_decision_rate_limit(mut self) -> Self {
        self.decision_limit = None;
        self
    }

    /// The question [`AltinnPdp::check_credentials`] and [`Readiness`](crate::readiness::Readiness)
    /// ask the PDP to prove the path works. Default: the nil system user reading resource
    /// `altinn-systemuser-readiness` for organisation 310702641, which nobody may do; any
    /// well-formed answer proves the path, `NotApplicable` included. Set it to a question about
    /// one of your own resources if the PDP should also prove that the resource exists.
    pub fn readiness_question(mut self, question: DecisionRequest) -> Self {
        self.readiness_question = Some(question);
        self
    }

    /// Checks the configuration. No network I/O; never panics.
    pub fn build(self) -> Result<AltinnPdp, ConfigError> {
        let platform = match (&self.platform_url, self.environment) {
            (Some(url), _) => url.clone(),
            (None, Some(env)) => env.platform_url().to_owned(),
            (None, None) => return Err(ConfigError::missing("platform_url", "required (or an environment)")),
        };
        let platform = check_url("platform_url", &platform)?;
        if platform.query().is_some() || platform.fragment().is_some() {
            return Err(ConfigError::new("platform_url", "must not have a query or fragment"));
        }
        let base = platform.as_str().trim_end_matches('/');
        let authorize_url = check_url("platform_url", &format!("{base}/authorization/api/v1/authorize"))?;
        let exchange_url = check_url("platform_url", &format!("{base}/authentication/api/v1/exchange/maskinporten"))?;
        let resource_registry_url = format!("{base}/resourceregistry/api/v1/resource/");

        let subscription_key = match self.subscription_key {
            None => None,
            Some(k) => {
                let mut v = HeaderValue::from_str(&k)
                    .ok()
                    .filter(|_| !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| ConfigError::new("subscription_key", "must be non-empty visible ASCII"))?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(ConfigError::new("timeout", "more than zero and at most 5 minutes"));
        }
        if self.max_response_bytes == 0 {
            return Err(ConfigError::new("max_response_bytes", "must be more than zero"));
        }
        if self.permit_ttl > MAX_TTL {
            return Err(ConfigError::new(
                "permit_ttl",
                "at most 4 minutes (Altinn caches delegations for about 5)",
            ));
        }
        if self.deny_ttl > MAX_TTL {
            return Err(ConfigError::new("deny_ttl", "at most 4 minutes"));
        }
        if let Some((per_second, burst)) = self.decision_limit
            && !((1..=limiter::MAX_PER_SECOND).contains(&per_second) && (1..=limiter::MAX_BURST).contains(&burst))
        {
            return Err(ConfigError::new(
                "decision_rate_limit",
                "per_second and burst at least 1 and at most 100 000 (or no_decision_rate_limit)",
            ));
        }
        self.breaker.check()?;
        let http = match self.http {
            Some(c) => c,
            None => crate::outbound::default_client(CONNECT_TIMEOUT, None)
                .map_err(|_| ConfigError::new("http_client", "the default HTTP client could not be built"))?,
        };
        let fresh_credentials = self.credentials.clone().map(|c| (c, exchange_url.clone()));
        let tokens: Arc<dyn AltinnTokenSource> = match (self.credentials, self.token_source) {
            (Some(_), Some(_)) => return Err(ConfigError::conflict("credentials", "give credentials or a token source, not both")),
            (Some(creds), None) => Arc::new(MaskinportenTokenSource::new(
                creds,
                http.clone(),
                exchange_url,
                self.max_response_bytes,
                self.timeout,
            )),
            (None, Some(source)) => source,
            (None, None) => return Err(ConfigError::missing("credentials", "required (or a token source)")),
        };
        Ok(AltinnPdp {
            inner: Arc::new(Inner {
                http,
                authorize_url,
                subscription_key,
                tokens,
                timeout: self.timeout,
                max_response_bytes: self.max_response_bytes,
                cache: DecisionCache::new(self.cache_capacity, self.permit_ttl, self.deny_ttl, self.timeout),
                limiter: DecisionLimiter::new(self.decision_limit),
                breaker: Breaker::new(self.breaker),
                fresh_credentials,
                readiness_question: self
                    .readiness_question
                    .as_ref()
                    .map_or_else(readiness::default_question, DecisionKey::of),
                resource_registry_url,
            }),
        })
    }
}

impl fmt::Debug for AltinnPdpBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AltinnPdpBuilder")
            .field("environment", &self.environment)
            .field("platform_url", &self.platform_url)
            .field("subscription_key", &self.subscription_key.as_ref().map(|_| "<redacted>"))
            .field("credentials", &self.credentials)
            .field("token_source", &self.token_source.as_ref().map(|_| "<custom>"))
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("permit_ttl", &self.permit_ttl)
            .field("deny_ttl", &self.deny_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("decision_limit", &self.decision_limit)
            .field("breaker", &self.breaker)
            .field("readiness_question", &self.readiness_question)
            .finish_non_exhaustive()
    }
}
