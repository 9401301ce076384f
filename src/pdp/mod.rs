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
mod builder;
mod cache;
mod call;
mod credentials;
pub(crate) mod decision;
mod error;
mod limiter;
mod readiness;
pub(crate) mod request;
mod resource_registry;
pub(crate) mod xacml;

pub use breaker::BreakerState;
pub use builder::AltinnPdpBuilder;
pub use credentials::{
    AUTHORIZE_SCOPE, AltinnToken, AltinnTokenSource, AssertionSigner, KeyReference, MaskinportenCredentials,
    MaskinportenCredentialsBuilder, RsaSigner, SignFuture, SignerError, SignerHandle,
};
pub use decision::Decision;
pub use error::{PdpError, PdpErrorKind};
pub use readiness::{CheckError, CheckStep};
pub use request::{Action, DecisionRequest, ResourceId, TargetError};

pub(crate) use cache::DecisionSource;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::single_flight::deadline_in;
use crate::telemetry::metrics::{self, CacheResult};
use breaker::Breaker;
use cache::DecisionCache;
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
    /// The credentials and exchange URL, for a check that bypasses the token cache; `None`
    /// with a custom token source.
    fresh_credentials: Option<(MaskinportenCredentials, url::Url)>,
    /// What [`AltinnPdp::check_credentials`] asks.
    readiness_question: DecisionKey,
    /// `{platform}/resourceregistry/api/v1/resource/`, for [`AltinnPdp::check_resource`].
    resource_registry_url: String,
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
        self.decide_sourced(req).await.0
    }

    /// [`decide`](Self::decide), and how the decision was found: from the cache, by a PDP call
    /// of its own, or shared with an identical question in flight (`None`: refused before any
    /// call, by the breaker or the limit). Known when the question is asked, at no cost.
    pub(crate) async fn decide_sourced(&self, req: &DecisionRequest) -> (Result<Decision, PdpError>, Option<DecisionSource>) {
        if let Some(d) = self.inner.cache.get_for(req) {
            metrics::decision_cache(CacheResult::Hit);
            return (Ok(d), Some(DecisionSource::Cache));
        }
        self.decide_key(DecisionKey::of(req), req.valid_until()).await
    }

    /// The cached decision for `req`, if there is one: no I/O, no allocation, no waiting.
    ///
    /// `None` means that [`decide`](Self::decide) would have to ask the PDP (or that the cache
    /// is off). The system-user layer answers from here when it can.
    pub fn cached_decision(&self, req: &DecisionRequest) -> Option<Decision> {
        let found = self.inner.cache.get_for(req);
        if found.is_some() {
            metrics::decision_cache(CacheResult::Hit);
        }
        found
    }

    async fn decide_key(&self, key: DecisionKey, valid_until: Option<SystemTime>) -> (Result<Decision, PdpError>, Option<DecisionSource>) {
        if let Some(refused) = self.inner.breaker.refusal() {
            let refused = Err(refused);
            metrics::decision_cache(CacheResult::Miss);
            metrics::pdp_result(&refused, 1);
            return (refused, None);
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
        let (pending, source) = inner.cache.start(key, valid_until, admit, fetch);
        let result = match tokio::time::timeout_at(deadline, pending).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(budget_ms = inner.timeout.as_millis() as u64, "Altinn PDP decision timed out");
                Err(PdpError::timeout())
            }
        };
        (result, source)
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
                metrics::decision_cache(CacheResult::Hit);
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
        // A question asked twice in one call shares the one answer.
        metrics::decision_cache_n(CacheResult::Shared, pending.len() - misses.len());
        let answers = match misses.len() {
            0 => Vec::new(),
            // Counted as a lookup and a PDP question by `decide_key`.
            1 => vec![self.decide_key(misses[0].clone(), bounds[0]).await.0?],
            _ => {
                let questions = misses.len();
                metrics::decision_cache_n(CacheResult::Miss, questions);
                let refused = match self.inner.breaker.refusal() {
                    Some(refused) => Err(refused),
                    // One token per distinct question asked, of its system user's bucket.
                    None => self.inner.limiter.take_for(misses.iter().map(|k| k.subject)),
                };
                if let Err(e) = refused {
                    metrics::pdp_result(&Err(e.clone()), questions);
                    return Err(e);
                }
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
                let answers = tokio::time::timeout_at(deadline, fetch)
                    .await
                    .unwrap_or_else(|_| Err(PdpError::timeout()))
                    .inspect(|answers| answers.iter().for_each(|d| metrics::pdp_result(&Ok(*d), 1)))
                    .inspect_err(|e| metrics::pdp_result(&Err(e.clone()), questions))?;
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
