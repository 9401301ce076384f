//! The decision cache, and the sharing of identical PDP calls.
//!
//! Keyed on exactly (system user, action, resource, party). A `Permit` lives the permit TTL,
//! but never past the request's `valid_until`; `Deny`, `NotApplicable` and `ObligationNotMet`
//! live the deny TTL; `Indeterminate` and errors are never cached.
//!
//! Concurrent misses for the same key share one PDP call, run by [`SingleFlight`]: the call
//! runs in a task of its own with a deadline of one time budget from its start. Callers that
//! give up (their own budget ran out, their client hung up) leave without cancelling it; when
//! its deadline passes it is abandoned, its waiters get [`PdpErrorKind::Timeout`], and the
//! next caller starts a fresh call. A call's answer is stored before its slot is freed, so a
//! caller finds either the cached decision or the call in flight, never neither.
//!
//! Lookups are synchronous and allocation-free (a hash, a shard read lock, a clock read): the
//! system-user layer answers a cached decision without an `await`. Entries hold their own
//! expiry instant and are never answered past it; expired entries are dropped when met, and
//! the store is bounded by its capacity whatever happens.
//!
//! # Admission: a flood of one-hit questions does not push out the decisions in use
//!
//! The store is `quick_cache` (0.7), whose eviction is S3-FIFO (a CLOCK-Pro relative): once the
//! cache is full, a new entry goes to a small probation queue (about 3% of the capacity) and
//! is evicted from there unless it is read again while there; only then does it move to the
//! main queue, which evicts by a clock over recent reads. One system user asking about 10 000
//! distinct parties once each (with the default capacity, 10 000) therefore cycles through
//! probation, and the decisions that other system users read more than once stay (the test
//! `decisions_used_again_survive_a_flood_of_one_hit_entries`). So admission needs no policy of
//! its own here; the limit on new PDP questions per system user (`limiter.rs`) bounds how
//! fast anyone can fill probation in the first place. While the cache is still filling up,
//! every entry is kept.
//!
//! [`PdpErrorKind::Timeout`]: super::PdpErrorKind::Timeout

use std::future::Future;
use std::sync::Arc;
#[cfg(test)]
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either};

use super::request::{DecisionKey, DecisionRequest};
use super::{Decision, PdpError};
use crate::single_flight::{Flight, Role, SingleFlight, deadline_in};
use crate::telemetry::metrics::{self, CacheResult};

/// How a decision was found, known as soon as the question is asked: for the audit trail and
/// the request span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecisionSource {
    /// The decision cache.
    Cache,
    /// A PDP call this question started.
    Pdp,
    /// An identical question's PDP call in flight, joined.
    Shared,
}

impl DecisionSource {
    /// The value of the `decision_source` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DecisionSource::Cache => "cache",
            DecisionSource::Pdp => "pdp",
            DecisionSource::Shared => "shared",
        }
    }
}

/// The wait for a decision that was not in the cache when asked: a flight (shared call), or
/// the caller's own call when the cache is off.
pub(crate) type Pending = Either<Flight<Decision, PdpError>, BoxFuture<'static, Result<Decision, PdpError>>>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    decision: Decision,
    expires: Instant,
}

struct Store {
    decisions: quick_cache::sync::Cache<DecisionKey, Entry>,
    /// Unit tests only: how far the cache's clock has been moved ahead of the real one.
    #[cfg(test)]
    skew: Mutex<Duration>,
}

impl Store {
    /// The clock entries expire by: `Instant::now()`, one clock read on the warm path.
    #[cfg(not(test))]
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// The clock entries expire by, in unit tests: the real one plus how far
    /// [`DecisionCache::advance`] moved it, so that expiry is tested exactly and without
    /// sleeping. (Real sleeps of a few seconds, with margins for a busy CI machine, were slow
    /// and still timing-dependent.) A `cfg(test)` offset rather than a `now` function pointer
    /// or tokio's pausable clock: the build anyone else gets reads `Instant::now()` directly,
    /// with no indirection, lock or runtime-context lookup.
    #[cfg(test)]
    fn now(&self) -> Instant {
        Instant::now() + *self.skew.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &DecisionKey) -> Option<Decision> {
        let entry = self.decisions.get(key)?;
        let now = self.now();
        if now < entry.expires {
            return Some(entry.decision);
        }
        self.decisions.remove_if(key, |e| now >= e.expires);
        None
    }

    /// Stores `decision` for `ttl` from now.
    fn insert(&self, key: DecisionKey, decision: Decision, ttl: Duration) {
        let entry = Entry {
            decision,
            expires: self.now() + ttl,
        };
        self.decisions.insert(key, entry);
    }
}

pub(crate) struct DecisionCache {
    store: Option<Arc<Store>>,
    /// The PDP calls in flight, one per key.
    flights: SingleFlight<DecisionKey, Decision, PdpError>,
    /// How long one PDP call may take, from its start: the decision's time budget.
    budget: Duration,
    permit_ttl: Duration,
    deny_ttl: Duration,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions, whose shared PDP calls each get `budget`; `0`
    /// disables caching (and call sharing).
    pub(crate) fn new(capacity: u64, permit_ttl: Duration, deny_ttl: Duration, budget: Duration) -> Self {
        let store = (capacity > 0).then(|| {
            Arc::new(Store {
                decisions: quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
                #[cfg(test)]
                skew: Mutex::new(Duration::ZERO),
            })
        });
        DecisionCache {
            store,
            flights: SingleFlight::new(budget, PdpError::timeout),
            budget,
            permit_ttl,
            deny_ttl,
        }
    }

    pub(crate) fn permit_ttl(&self) -> Duration {
        self.permit_ttl
    }

    pub(crate) fn deny_ttl(&self) -> Duration {
        self.deny_ttl
    }

    /// How long `decision` may be cached; `None` means not at all.
    pub(crate) fn ttl(&self, decision: Decision, valid_until: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
        ttl(self.permit_ttl, self.deny_ttl, decision, valid_until, now)
    }

    /// A cached decision, if there is one. No allocation, no I/O, no `await`.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &DecisionKey) -> Option<Decision> {
        self.store.as_ref()?.get(key)
    }

    /// The cached decision for what `req` asks, if there is one. No allocation, no I/O, no
    /// `await`: the request holds its key.
    pub(crate) fn get_for(&self, req: &DecisionRequest) -> Option<Decision> {
        self.store.as_ref()?.get(req.key())
    }

    /// The cached decision, or the one `fetch` produces, with no limit on new calls.
    #[cfg(test)]
    pub(crate) async fn get_or_fetch<W, F>(&self, key: DecisionKey, valid_until: Option<SystemTime>, fetch: W) -> Result<Decision, PdpError>
    where
        W: FnOnce(tokio::time::Instant) -> F,
        F: Future<Output = Result<Decision, PdpError>> + Send + 'static,
    {
        self.start(key, valid_until, || Ok(()), fetch).0.await
    }

    /// The cached decision, or the one `fetch` produces (cached as its kind allows), and how
    /// it is found (`None`: refused before any call, by `admit`).
    ///
    /// `fetch` is given its deadline (one budget from its start) and builds the PDP call.
    /// Concurrent callers with the same key share one call (see the [module docs](self)): it
    /// runs in a task of its own until it answers or its deadline passes, whoever stops
    /// waiting; if it fails or times out, every caller waiting for it gets the error. With the
    /// cache off, each caller runs its own call, bounded by the same budget.
    ///
    /// `admit` is asked only when a new call would start (not for a cached decision, nor for a
    /// caller that joins a call in flight); its error is the answer instead of a call. It runs
    /// under the flights' lock: it must be quick.
    ///
    /// Counts the lookup (hit, miss, shared) and, once per call, the call's result.
    pub(crate) fn start<A, W, F>(
        &self,
        key: DecisionKey,
        valid_until: Option<SystemTime>,
        admit: A,
        fetch: W,
    ) -> (Pending, Option<DecisionSource>)
    where
        A: FnOnce() -> Result<(), PdpError>,
        W: FnOnce(tokio::time::Instant) -> F,
        F: Future<Output = Result<Decision, PdpError>> + Send + 'static,
    {
        let Some(store) = &self.store else {
            metrics::decision_cache(CacheResult::Miss);
            if let Err(refused) = admit() {
                let refused = Err(refused);
                metrics::pdp_result(&refused, 1);
                return (Either::Right(std::future::ready(refused).boxed()), None);
            }
            let deadline = deadline_in(self.budget);
            let call = tokio::time::timeout_at(deadline, fetch(deadline)).map(|r| {
                let r = r.unwrap_or_else(|_| Err(PdpError::timeout()));
                metrics::pdp_result(&r, 1);
                r
            });
            return (Either::Right(call.boxed()), Some(DecisionSource::Pdp));
        };
        let (permit_ttl, deny_ttl) = (self.permit_ttl, self.deny_ttl);
        let (stored, stored_key) = (store.clone(), key.clone());
        // Checked under the flights' lock: a call stores its answer before its slot is freed.
        // Nothing cached and nothing in flight: a new call, if `admit` lets it start. Whether
        // the cache answered is noted here and counted after the lock is released.
        let mut hit = false;
        let instead = || match store.get(&key) {
            Some(d) => {
                hit = true;
                Some(Ok(d))
            }
            None => admit().err().map(Err),
        };
        let flight = self.flights.run_unless(key.clone(), instead, fetch, move |result| {
            metrics::pdp_result(result, 1);
            if let Ok(decision) = *result
                && let Some(ttl) = ttl(permit_ttl, deny_ttl, decision, valid_until, SystemTime::now())
            {
                stored.insert(stored_key, decision, ttl);
            }
        });
        let source = match flight.role() {
            Role::Instead if hit => {
                metrics::decision_cache(CacheResult::Hit);
                Some(DecisionSource::Cache)
            }
            Role::Instead => {
                // Refused by `admit`: the system user is over its limit.
                metrics::decision_cache(CacheResult::Miss);
                metrics::pdp_result(&Err(PdpError::too_many_decisions(None)), 1);
                None
            }
            Role::Started => {
                metrics::decision_cache(CacheResult::Miss);
                Some(DecisionSource::Pdp)
            }
            Role::Joined => {
                metrics::decision_cache(CacheResult::Shared);
                Some(DecisionSource::Shared)
            }
        };
        (Either::Left(flight), source)
    }

    /// Stores a decision fetched elsewhere (a multi-request), as its kind allows.
    pub(crate) fn insert(&self, key: DecisionKey, decision: Decision, valid_until: Option<SystemTime>) {
        if let (Some(store), Some(ttl)) = (&self.store, self.ttl(decision, valid_until, SystemTime::now())) {
            store.insert(key, decision, ttl);
        }
    }

    /// Moves the cache's clock ahead by `by`.
    #[cfg(test)]
    fn advance(&self, by: Duration) {
        if let Some(store) = &self.store {
            *store.skew.lock().unwrap_or_else(PoisonError::into_inner) += by;
        }
    }

    /// How many decisions are stored (expired ones not yet dropped included).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.store.as_ref().map_or(0, |s| s.decisions.len())
    }
}

/// How long `decision` may be cached; `None` means not at all.
fn ttl(permit_ttl: Duration, deny_ttl: Duration, decision: Decision, valid_until: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    let ttl = match decision {
        Decision::Permit => {
            let left = match valid_until {
                Some(until) => until.duration_since(now).unwrap_or(Duration::ZERO),
                None => Duration::MAX,
            };
            permit_ttl.min(left)
        }
        Decision::Deny | Decision::NotApplicable | Decision::ObligationNotMet => deny_ttl,
        Decision::Indeterminate => Duration::ZERO,
    };
    (!ttl.is_zero()).then_some(ttl)
}

#[cfg(test)]
mod tests;
