//! The Altinn PDP client, usable on its own.
//!
//! [`AltinnPdp`] asks Altinn Authorization's policy decision point whether a system user may do
//! an action on a resource for a party, and reads the answer the way a deny-biased PEP must:
//! only a clean `Permit` authorizes (see [`Decision`]).
//!
//! - **Credentials.** The PDP does not accept the caller's token. The client authenticates as
//!   the API provider: a Maskinporten JWT grant ([`MaskinportenCredentials`]), exchanged for an
//!   Altinn token, cached, and refreshed once for all callers. Or plug in your own
//!   [`AltinnTokenSource`].
//! - **Bounded.** Every decision has a total time budget (default 5 s) that covers getting a
//!   token, the call and at most one retry (after a connection error or a `5xx`); answers are
//!   capped in size (default 256 KiB). A `401` forces one token refresh and one more try. The
//!   budget holds end to end: the grant, the exchange and each PDP call have a total timeout
//!   within it, and a failure that arrives once the budget is spent is reported as
//!   [`PdpErrorKind::Timeout`].
//! - **Cached.** Decisions are cached on exactly (system user, action, resource, party): a
//!   `Permit` for 30 s but never past the request's `valid_until` (the caller's token `exp`),
//!   `Deny`, `NotApplicable` and `ObligationNotMet` for 5 s; `Indeterminate` and errors never.
//!   Altinn caches delegations for about five minutes itself, so a short local cache adds
//!   little staleness.
//! - **Shared, never held hostage.** Concurrent identical misses share one PDP call, and
//!   concurrent callers share one token refresh. A shared call has a deadline of its own, one
//!   budget from its start: callers that give up leave without cancelling it, and when the
//!   deadline passes it is abandoned and the next caller starts afresh. So a PDP (or a token
//!   endpoint) that keeps a connection open without answering holds a question for at most
//!   one budget, however many identical questions keep arriving.
//! - **Limited.** Each system user may start at most 20 new PDP questions a second, with a
//!   burst of 100 ([`AltinnPdpBuilder::decision_rate_limit`], or
//!   [`no_decision_rate_limit`](AltinnPdpBuilder::no_decision_rate_limit)): a token bucket per
//!   system-user id, shared by every clone, layer, [`decide`](AltinnPdp::decide) and
//!   [`decide_many`](AltinnPdp::decide_many). Only a question that starts a new PDP call costs
//!   a token; a cached decision, or joining the same question already in flight, costs nothing.
//!   Over the limit the answer is [`PdpErrorKind::TooManyDecisions`] with the time until a
//!   token is back in [`PdpError::retry_after`] (the system-user layer answers `429`). So one
//!   system user asking about every organisation number cannot spend the provider's PDP quota
//!   for everyone else. The buckets are bounded (see the `limiter` module).
//! - **Breaker.** After a `429` (for its `Retry-After`, at most 60 s) or 5 failed calls in a
//!   row (`5xx`, timeouts, connection errors, malformed answers), the PDP is not called for a
//!   cool-down (5 s, doubling up to 60 s): uncached decisions fail at once with
//!   [`PdpErrorKind::CircuitOpen`] and its time left, cached ones are still served. Then one
//!   probe call goes through; its success closes the breaker. Its state is
//!   [`AltinnPdp::breaker_state`]; its settings are the builder's `breaker_*` methods.
//! - **Several at once.** [`AltinnPdp::decide_many`] asks several questions in one call
//!   (XACML `MultiRequests`) and matches each answer to its question by the attributes the PDP
//!   echoes, never by position.
//!
//! ```
//! use altinn_systemuser::pdp::{Action, AltinnEnvironment, AltinnPdp, DecisionRequest, MaskinportenCredentials, ResourceId};
//! use altinn_systemuser::org::Party;
//! use std::time::Duration;
//!
//! # fn key_pem() -> Vec<u8> { Vec::new() }
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credentials = MaskinportenCredentials::builder()
//!     .issuer("https://test.maskinporten.no/")
//!     .client_id("c9b9a2b1-0b0e-4c83-a6d0-2d2a1d0c3f5e")
//!     .private_key_pem(&key_pem())
//!     .key_id("my-registered-key")
//!     .build()?;
//! let pdp = AltinnPdp::builder()
//!     .environment(AltinnEnvironment::Tt02)
//!     .subscription_key("...")
//!     .credentials(credentials)
//!     .permit_ttl(Duration::from_secs(30))
//!     .build()?;
//! # Ok(()) }
//!
//! async fn may_read(pdp: &AltinnPdp, system_user: uuid::Uuid, org: Party) -> bool {
//!     let req = DecisionRequest::new(system_user, Action::read(), ResourceId::new("kravogbetaling").unwrap(), org);
//!     matches!(pdp.decide(&req).await, Ok(d) if d.is_permit())
//! }
//! # assert!(run().is_err()); // no key here
//! ```

mod breaker;
mod cache;
mod call;
mod credentials;
mod decision;
mod error;
mod limiter;
mod request;
mod xacml;

pub use breaker::BreakerState;
pub use credentials::{AUTHORIZE_SCOPE, AltinnToken, AltinnTokenSource, MaskinportenCredentials, MaskinportenCredentialsBuilder};
pub use decision::Decision;
pub use error::{PdpError, PdpErrorKind};
pub use request::{Action, DecisionRequest, ResourceId, TargetError};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::ConfigError;
use crate::error::check_url;
use crate::single_flight::deadline_in;
use breaker::{Breaker, BreakerSettings};
use cache::DecisionCache;
use credentials::MaskinportenTokenSource;
use limiter::DecisionLimiter;
use request::DecisionKey;
use xacml::RequestBody;

const SUBSCRIPTION_KEY: HeaderName = HeaderName::from_static("ocp-apim-subscription-key");
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time budget accepted (deadlines are computed from it).
const MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;
const DEFAULT_PERMIT_TTL: Duration = Duration::from_secs(30);
const DEFAULT_DENY_TTL: Duration = Duration::from_secs(5);
const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
/// Longest TTL accepted: Altinn caches delegations for about 5 minutes itself.
const MAX_TTL: Duration = Duration::from_secs(4 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A retry is only started with at least this much of the budget left; otherwise the first
/// failure is reported as it is, not as a timeout.
const MIN_RETRY_BUDGET: Duration = Duration::from_millis(100);

/// An Altinn environment, for its platform URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AltinnEnvironment {
    /// Production: `https://platform.altinn.no`. Pairs with Maskinporten `https://maskinporten.no/`.
    Production,
    /// TT02, the external test environment: `https://platform.tt02.altinn.no`. Pairs with
    /// Maskinporten `https://test.maskinporten.no/`.
    Tt02,
    /// AT22: `https://platform.at22.altinn.cloud`.
    At22,
    /// AT23: `https://platform.at23.altinn.cloud`.
    At23,
    /// AT24: `https://platform.at24.altinn.cloud`.
    At24,
    /// YT01: `https://platform.yt01.altinn.cloud`.
    Yt01,
}

impl AltinnEnvironment {
    /// The platform base URL (no trailing slash).
    pub fn platform_url(self) -> &'static str {
        match self {
            AltinnEnvironment::Production => "https://platform.altinn.no",
            AltinnEnvironment::Tt02 => "https://platform.tt02.altinn.no",
            AltinnEnvironment::At22 => "https://platform.at22.altinn.cloud",
            AltinnEnvironment::At23 => "https://platform.at23.altinn.cloud",
            AltinnEnvironment::At24 => "https://platform.at24.altinn.cloud",
            AltinnEnvironment::Yt01 => "https://platform.yt01.altinn.cloud",
        }
    }
}

/// A client for Altinn's PDP. Cheap to clone; clones share the token and decision caches.
///
/// Built with [`AltinnPdp::builder`]. `Debug` never shows the subscription key or tokens.
#[derive(Clone)]
pub struct AltinnPdp {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    authorize_url: url::Url,
    subscription_key: Option<HeaderValue>,
    tokens: Arc<dyn AltinnTokenSource>,
    timeout: Duration,
    max_response_bytes: usize,
    cache: DecisionCache,
    /// New PDP questions per system user.
    limiter: DecisionLimiter,
    breaker: Breaker,
}

impl AltinnPdp {
    /// A builder. A platform (environment or URL) and credentials (or a token source) are
    /// required.
    pub fn builder() -> AltinnPdpBuilder {
        AltinnPdpBuilder::default()
    }

    /// The decision for one question, from the cache or from the PDP.
    ///
    /// `Ok` carries what the PDP decided, read deny-biased; only [`Decision::Permit`]
    /// authorizes. `Err` means no decision could be had (treat it as a refusal you may retry).
    pub async fn decide(&self, req: &DecisionRequest) -> Result<Decision, PdpError> {
        if let Some(d) = self.inner.cache.get_for(req) {
            return Ok(d);
        }
        self.decide_key(DecisionKey::of(req), req.valid_until()).await
    }

    /// The cached decision for `req`, if there is one: no I/O, no allocation, no waiting.
    ///
    /// `None` means that [`decide`](Self::decide) would have to ask the PDP (or that the cache
    /// is off). The system-user layer answers from here when it can.
    pub fn cached_decision(&self, req: &DecisionRequest) -> Option<Decision> {
        self.inner.cache.get_for(req)
    }

    async fn decide_key(&self, key: DecisionKey, valid_until: Option<SystemTime>) -> Result<Decision, PdpError> {
        if let Some(refused) = self.inner.breaker.refusal() {
            return Err(refused);
        }
        let deadline = deadline_in(self.inner.timeout);
        let client = self.clone();
        let asked = key.clone();
        // Owned: the call runs in a task of its own, for every caller waiting for it, until it
        // answers or its own deadline (one budget from its start) passes.
        let fetch = move |run_deadline: Instant| async move {
            let inner = &*client.inner;
            let body = RequestBody::single(&asked).to_vec();
            let d = inner
                .call(body, run_deadline, |answer| {
                    decision::single(&xacml::parse_response(answer)?).inspect_err(|e| tracing::warn!(error = %e, "unusable PDP answer"))
                })
                .await?;
            tracing::debug!(resource = asked.resource.as_str(), action = asked.action.as_str(), decision = ?d, "Altinn PDP decided");
            Ok(d)
        };
        let inner = &*self.inner;
        let subject = key.subject;
        // A token only when a new call starts: not for a cached decision, not to join a call.
        let admit = || inner.limiter.take(subject);
        match tokio::time::timeout_at(deadline, inner.cache.get_or_fetch_admitted(key, valid_until, admit, fetch)).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(budget_ms = inner.timeout.as_millis() as u64, "Altinn PDP decision timed out");
                Err(PdpError::timeout())
            }
        }
    }

    /// The decisions for several questions, in the order asked.
    ///
    /// Cached decisions are used; the rest are asked in one PDP call (XACML `MultiRequests`
    /// when two or more distinct questions remain). Each answer is matched to its question by
    /// the attributes the PDP echoes; an answer that cannot be matched, a missing answer or a
    /// question answered twice fails the whole call as [`PdpErrorKind::Malformed`].
    pub async fn decide_many(&self, reqs: &[DecisionRequest]) -> Result<Vec<Decision>, PdpError> {
        let mut out: Vec<Option<Decision>> = vec![None; reqs.len()];
        let mut misses: Vec<DecisionKey> = Vec::new();
        let mut bounds: Vec<Option<SystemTime>> = Vec::new();
        let mut index: HashMap<DecisionKey, usize> = HashMap::new();
        let mut pending: Vec<(usize, usize)> = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            if let Some(d) = self.inner.cache.get_for(req) {
                out[i] = Some(d);
                continue;
            }
            let key = DecisionKey::of(req);
            let m = *index.entry(key).or_insert_with_key(|key| {
                misses.push(key.clone());
                bounds.push(req.valid_until());
                misses.len() - 1
            });
            bounds[m] = earliest(bounds[m], req.valid_until());
            pending.push((i, m));
        }
        let answers = match misses.len() {
            0 => Vec::new(),
            1 => vec![self.decide_key(misses[0].clone(), bounds[0]).await?],
            _ => {
                if let Some(refused) = self.inner.breaker.refusal() {
                    return Err(refused);
                }
                // One token per distinct question asked, of its system user's bucket.
                self.inner.limiter.take_for(misses.iter().map(|k| k.subject))?;
                let deadline = deadline_in(self.inner.timeout);
                let inner = &*self.inner;
                let fetch = async {
                    let body = RequestBody::multi(&misses).to_vec();
                    let decisions = inner
                        .call(body, deadline, |answer| {
                            decision::multi(&xacml::parse_response(answer)?, &misses)
                                .inspect_err(|e| tracing::warn!(error = %e, "unusable PDP answer"))
                        })
                        .await?;
                    tracing::debug!(questions = misses.len(), "Altinn PDP decided several");
                    Ok(decisions)
                };
                let answers = tokio::time::timeout_at(deadline, fetch).await.map_err(|_| PdpError::timeout())??;
                for ((key, d), bound) in misses.iter().zip(&answers).zip(&bounds) {
                    self.inner.cache.insert(key.clone(), *d, *bound);
                }
                answers
            }
        };
        for (i, m) in pending {
            out[i] = Some(answers[m]);
        }
        // Every slot is either a hit or a pending question that now has its answer.
        out.into_iter()
            .map(|d| d.ok_or_else(|| PdpError::malformed("a question is not answered")))
            .collect()
    }
}

fn earliest(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl fmt::Debug for AltinnPdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        f.debug_struct("AltinnPdp")
            .field("authorize_url", &i.authorize_url.as_str())
            .field("subscription_key", &i.subscription_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &i.timeout)
            .field("max_response_bytes", &i.max_response_bytes)
            .field("permit_ttl", &i.cache.permit_ttl())
            .field("deny_ttl", &i.cache.deny_ttl())
            .field("limiter", &i.limiter)
            .field("breaker", i.breaker.settings())
            .finish_non_exhaustive()
    }
}

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
    breaker: BreakerSettings,
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
    /// question it asks the PDP. Over the limit, [`PdpErrorKind::TooManyDecisions`] (a `429`
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
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! What only the inside can see; everything the client does on the wire is tested against
    //! `FakeMaskinporten` and `FakeAltinn` in `tests/pdp/`.

    use super::*;

    struct StaticToken;

    impl AltinnTokenSource for StaticToken {
        fn token(&self, _force: bool) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
            Box::pin(async { Ok(AltinnToken::new("static-token", SystemTime::now() + Duration::from_secs(600))) })
        }
    }

    /// The stored header value is marked sensitive (HTTP/2 never indexes it; `Debug` of the header
    /// hides it), which no answer of a fake can show.
    #[test]
    fn the_subscription_key_header_is_sensitive() {
        let pdp = AltinnPdp::builder()
            .environment(AltinnEnvironment::Tt02)
            .subscription_key("very-secret-sub-key")
            .token_source(StaticToken)
            .build()
            .unwrap();
        assert!(pdp.inner.subscription_key.as_ref().unwrap().is_sensitive());
    }
}
