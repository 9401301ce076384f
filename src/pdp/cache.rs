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
//! the store is bounded by its capacity (`quick_cache`, CLOCK-Pro eviction) whatever happens.
//!
//! [`PdpErrorKind::Timeout`]: super::PdpErrorKind::Timeout

use std::future::Future;
use std::sync::Arc;
#[cfg(test)]
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::request::{DecisionKey, DecisionRequest};
use super::{Decision, PdpError};
use crate::single_flight::{SingleFlight, deadline_in};

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

    /// The cached decision, or the one `fetch` produces (cached as its kind allows).
    ///
    /// `fetch` is given its deadline (one budget from its start) and builds the PDP call.
    /// Concurrent callers with the same key share one call (see the [module docs](self)): it
    /// runs in a task of its own until it answers or its deadline passes, whoever stops
    /// waiting; if it fails or times out, every caller waiting for it gets the error. With the
    /// cache off, each caller runs its own call, bounded by the same budget.
    pub(crate) async fn get_or_fetch<W, F>(&self, key: DecisionKey, valid_until: Option<SystemTime>, fetch: W) -> Result<Decision, PdpError>
    where
        W: FnOnce(tokio::time::Instant) -> F,
        F: Future<Output = Result<Decision, PdpError>> + Send + 'static,
    {
        let Some(store) = &self.store else {
            let deadline = deadline_in(self.budget);
            return tokio::time::timeout_at(deadline, fetch(deadline))
                .await
                .unwrap_or_else(|_| Err(PdpError::timeout()));
        };
        let (permit_ttl, deny_ttl) = (self.permit_ttl, self.deny_ttl);
        let (stored, stored_key) = (store.clone(), key.clone());
        // Checked under the flights' lock: a call stores its answer before its slot is freed.
        let cached = || store.get(&key).map(Ok);
        let flight = self.flights.run_unless(key.clone(), cached, fetch, move |result| {
            if let Ok(decision) = *result
                && let Some(ttl) = ttl(permit_ttl, deny_ttl, decision, valid_until, SystemTime::now())
            {
                stored.insert(stored_key, decision, ttl);
            }
        });
        flight.await
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
mod tests {
    use super::*;
    use crate::org::Party;
    use crate::pdp::PdpErrorKind;
    use crate::pdp::request::{Action, ResourceId};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use uuid::Uuid;

    const SU: &str = "47caea5b-a80b-4343-b1d3-31eb523a4e28";
    /// The time budget of a shared call.
    const BUDGET: Duration = Duration::from_secs(5);

    fn org(s: &str) -> Party {
        Party::Organisation(s.parse().unwrap())
    }

    fn ask(subject: Uuid, action: Action, resource: &str, party: Party) -> DecisionRequest {
        DecisionRequest::new(subject, action, ResourceId::new(resource).unwrap(), party)
    }

    fn req(resource: &str) -> DecisionRequest {
        ask(SU.parse().unwrap(), Action::read(), resource, org("910459880"))
    }

    #[test]
    fn ttls() {
        let c = DecisionCache::new(10, Duration::from_secs(30), Duration::from_secs(5), BUDGET);
        let now = SystemTime::now();
        assert_eq!(c.ttl(Decision::Permit, None, now), Some(Duration::from_secs(30)));
        assert_eq!(
            c.ttl(Decision::Permit, Some(now + Duration::from_secs(10)), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            c.ttl(Decision::Permit, Some(now + Duration::from_secs(100)), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(c.ttl(Decision::Permit, Some(now), now), None);
        assert_eq!(c.ttl(Decision::Permit, Some(now - Duration::from_secs(1)), now), None);
        for d in [Decision::Deny, Decision::NotApplicable, Decision::ObligationNotMet] {
            assert_eq!(c.ttl(d, Some(now), now), Some(Duration::from_secs(5)));
        }
        assert_eq!(c.ttl(Decision::Indeterminate, None, now), None);
        let no_deny = DecisionCache::new(10, Duration::from_secs(30), Duration::ZERO, BUDGET);
        assert_eq!(no_deny.ttl(Decision::Deny, None, now), None);
    }

    type Fetch = futures_util::future::BoxFuture<'static, Result<Decision, PdpError>>;

    /// A fetch that counts its start and answers `result` after 20 ms.
    fn fetch_counting(calls: &Arc<AtomicUsize>, result: Result<Decision, PdpError>) -> impl FnOnce(tokio::time::Instant) -> Fetch + use<> {
        let calls = calls.clone();
        move |_| {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                result
            })
        }
    }

    #[tokio::test]
    async fn what_is_cached() {
        let c = DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5), BUDGET);
        let calls = Arc::new(AtomicUsize::new(0));
        for (resource, decision, cached) in [
            ("permit", Decision::Permit, true),
            ("deny", Decision::Deny, true),
            ("notapplicable", Decision::NotApplicable, true),
            ("obligation", Decision::ObligationNotMet, true),
            ("indeterminate", Decision::Indeterminate, false),
        ] {
            let k = DecisionKey::of(&req(resource));
            assert_eq!(
                c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Ok(decision))).await,
                Ok(decision)
            );
            assert_eq!(c.get(&k), cached.then_some(decision), "{resource}");
        }
        // Errors are not cached.
        let k = DecisionKey::of(&req("error"));
        let err = PdpError::new(PdpErrorKind::Connect);
        assert_eq!(
            c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Err(err.clone()))).await,
            Err(err)
        );
        assert_eq!(c.get(&k), None);
        // A permit whose token has expired is not cached.
        let k = DecisionKey::of(&req("expired"));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(
            c.get_or_fetch(k.clone(), Some(past), fetch_counting(&calls, Ok(Decision::Permit)))
                .await,
            Ok(Decision::Permit)
        );
        assert_eq!(c.get(&k), None);
        // A hit does not fetch.
        let before = calls.load(Ordering::SeqCst);
        let k = DecisionKey::of(&req("permit"));
        assert_eq!(
            c.get_or_fetch(k, None, fetch_counting(&calls, Ok(Decision::Deny))).await,
            Ok(Decision::Permit)
        );
        assert_eq!(calls.load(Ordering::SeqCst), before);
    }

    #[test]
    fn entries_expire() {
        // The cache's own clock is moved (see `Store::now`), so the boundaries can be tight;
        // the only real time that matters is the few microseconds between an insert and the
        // next check, against a second of slack.
        let c = DecisionCache::new(100, Duration::from_secs(60), Duration::from_secs(10), BUDGET);
        let p = DecisionKey::of(&req("permit"));
        let d = DecisionKey::of(&req("deny"));
        let short = DecisionKey::of(&req("short"));
        c.insert(p.clone(), Decision::Permit, None);
        c.insert(d.clone(), Decision::Deny, None);
        // A permit bounded by its request's `valid_until`, between the two TTLs.
        c.insert(short.clone(), Decision::Permit, Some(SystemTime::now() + Duration::from_secs(20)));
        let at = |c: &DecisionCache| (c.get(&p), c.get(&d), c.get(&short));
        let (permit, deny) = (Some(Decision::Permit), Some(Decision::Deny));
        assert_eq!(at(&c), (permit, deny, permit));
        c.advance(Duration::from_secs(9));
        assert_eq!(at(&c), (permit, deny, permit));
        c.advance(Duration::from_secs(2)); // 11 s
        assert_eq!(at(&c), (permit, None, permit));
        // The expired entry was dropped when it was met.
        assert_eq!(c.len(), 2);
        c.advance(Duration::from_secs(8)); // 19 s
        assert_eq!(at(&c), (permit, None, permit));
        c.advance(Duration::from_secs(2)); // 21 s
        assert_eq!(at(&c), (permit, None, None));
        c.advance(Duration::from_secs(38)); // 59 s
        assert_eq!(c.get(&p), permit);
        c.advance(Duration::from_secs(2)); // 61 s
        assert_eq!(c.get(&p), None);
        assert_eq!(c.len(), 0);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let c = Arc::new(DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5), BUDGET));
        for decision in [Decision::Permit, Decision::Indeterminate] {
            let calls = Arc::new(AtomicUsize::new(0));
            let resource = if decision.is_permit() {
                "shared-permit"
            } else {
                "shared-indeterminate"
            };
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (c, calls) = (c.clone(), calls.clone());
                    tokio::spawn(async move {
                        let k = DecisionKey::of(&req(resource));
                        let counted = calls.clone();
                        c.get_or_fetch(k, None, move |_| async move {
                            counted.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Ok(decision)
                        })
                        .await
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), Ok(decision));
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{decision:?}");
        }
    }

    #[tokio::test]
    async fn capacity_zero_disables_the_cache() {
        let c = DecisionCache::new(0, Duration::from_secs(30), Duration::from_secs(5), BUDGET);
        let k = DecisionKey::of(&req("permit"));
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            assert_eq!(
                c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Ok(Decision::Permit))).await,
                Ok(Decision::Permit)
            );
        }
        c.insert(k.clone(), Decision::Permit, None);
        assert_eq!(c.get(&k), None);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn capacity_is_bounded() {
        let c = DecisionCache::new(10, Duration::from_secs(30), Duration::from_secs(5), BUDGET);
        for i in 0..200 {
            c.insert(DecisionKey::of(&req(&format!("resource-{i}"))), Decision::Permit, None);
        }
        assert!(c.len() <= 10, "{}", c.len());
        assert!(c.len() > 0);
    }

    #[test]
    fn a_request_finds_the_key_it_would_make() {
        let c = DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5), BUDGET);
        let su: Uuid = SU.parse().unwrap();
        let asked = ask(su, Action::read(), "resource-a", org("910459880")).with_valid_until(SystemTime::now() + Duration::from_secs(60));
        assert_eq!(c.get_for(&asked), None);
        c.insert(DecisionKey::of(&asked), Decision::Permit, asked.valid_until());
        assert_eq!(c.get_for(&asked), Some(Decision::Permit));
        // The same question without a bound, or asked again from scratch, finds it too.
        assert_eq!(c.get_for(&req("resource-a")), Some(Decision::Permit));
        // Each of the four parts still tells requests apart.
        for other in [
            ask(su, Action::write(), "resource-a", org("910459880")),
            ask(su, Action::read(), "resource-b", org("910459880")),
            ask(Uuid::new_v4(), Action::read(), "resource-a", org("910459880")),
            ask(su, Action::read(), "resource-a", org("923609016")),
        ] {
            assert_eq!(c.get_for(&other), None, "{other:?}");
        }
    }

    /// A fetch that counts its start and its end, and permits after `after`.
    fn slow_permit(
        calls: &Arc<AtomicUsize>,
        finished: &Arc<AtomicUsize>,
        after: Duration,
    ) -> impl FnOnce(tokio::time::Instant) -> Fetch + use<> {
        let (calls, finished) = (calls.clone(), finished.clone());
        move |_| {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(after).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(Decision::Permit)
            })
        }
    }

    // Paused time: the timers fire in order however busy the machine is. This replaces the
    // rule before the single-flight primitive (a call everyone gave up on was cancelled):
    // a call now runs for the callers still to come, until it answers or its deadline passes.
    #[tokio::test(start_paused = true)]
    async fn a_fetch_everyone_gave_up_on_runs_on_and_stores_its_answer() {
        let c = Arc::new(DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5), BUDGET));
        let (calls, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let k = DecisionKey::of(&req("abandoned"));
        let fetch = slow_permit(&calls, &finished, Duration::from_millis(200));
        // Two callers share the fetch; one gives up, the other still gets the answer.
        let (a, b) = tokio::join!(
            tokio::time::timeout(Duration::from_millis(50), c.get_or_fetch(k.clone(), None, fetch)),
            c.get_or_fetch(k.clone(), None, |_| async { Ok(Decision::Deny) }),
        );
        assert!(a.is_err());
        assert_eq!(b, Ok(Decision::Permit));
        assert_eq!((calls.load(Ordering::SeqCst), finished.load(Ordering::SeqCst)), (1, 1));

        // The only caller gives up: the fetch is not cancelled, it runs to its end and stores
        // its answer, which the next caller finds without a fetch of its own.
        let k = DecisionKey::of(&req("abandoned-by-all"));
        let fetch = slow_permit(&calls, &finished, Duration::from_millis(200));
        let first = tokio::time::timeout(Duration::from_millis(50), c.get_or_fetch(k.clone(), None, fetch)).await;
        assert!(first.is_err());
        assert!(c.flights.is_running(&k));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!((calls.load(Ordering::SeqCst), finished.load(Ordering::SeqCst)), (2, 2));
        assert!(!c.flights.is_running(&k));
        assert_eq!(c.get(&k), Some(Decision::Permit));
        let next = c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Ok(Decision::Deny))).await;
        assert_eq!(next, Ok(Decision::Permit));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_past_its_deadline_is_abandoned_and_the_next_caller_starts_afresh() {
        let c = Arc::new(DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5), BUDGET));
        let (calls, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let k = DecisionKey::of(&req("stalled"));
        // A PDP call that would take an hour, joined by a caller every second.
        let start = tokio::time::Instant::now();
        let first = c.get_or_fetch(k.clone(), None, slow_permit(&calls, &finished, Duration::from_secs(3600)));
        let joiners = futures_util::future::join_all((1..=4).map(|i| {
            let (c, k, fetch) = (c.clone(), k.clone(), fetch_counting(&calls, Ok(Decision::Deny)));
            async move {
                tokio::time::sleep(Duration::from_secs(i)).await;
                c.get_or_fetch(k, None, fetch).await
            }
        }));
        let (first, joined) = tokio::join!(first, joiners);
        // Everyone waiting gets the timeout when the call's own deadline passes.
        assert_eq!(first.unwrap_err().kind(), PdpErrorKind::Timeout);
        assert_eq!(start.elapsed(), BUDGET);
        assert!(
            joined.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == PdpErrorKind::Timeout)),
            "{joined:?}"
        );
        assert_eq!((calls.load(Ordering::SeqCst), finished.load(Ordering::SeqCst)), (1, 0));
        assert!(!c.flights.is_running(&k));
        // The next caller starts a fresh call, which answers.
        let next = c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Ok(Decision::Deny))).await;
        assert_eq!(next, Ok(Decision::Deny));
        assert_eq!((calls.load(Ordering::SeqCst), finished.load(Ordering::SeqCst)), (2, 0));
    }
}
