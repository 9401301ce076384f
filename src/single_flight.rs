//! Single flight: one shared run of a piece of work per key, with a deadline of its own.
//!
//! The three shared fetches of this crate use it: the JWKS refresh (`maskinporten/key_store.rs`),
//! a PDP decision (`pdp/cache.rs`) and the refresh of the PDP credentials
//! (`pdp/credentials/refresh.rs`). The rule:
//!
//! - **One run per key.** The first caller for a key starts the work; callers that come while it
//!   runs join it and get its result, good or bad. Errors are cloned to every caller, so keep
//!   them cheap to clone.
//! - **Its own deadline.** The work runs in a task of its own, with a deadline set when it
//!   starts, from the budget the [`SingleFlight`] was made with. When the deadline passes, the
//!   work is dropped (abandoned: its connections are closed), every caller still waiting gets
//!   the timeout error, and the slot is freed, so the next caller starts a fresh attempt. A
//!   stalled upstream therefore holds a key for at most one budget, however many callers keep
//!   arriving.
//! - **Giving up does not cancel.** A caller that stops waiting (its own time budget, a client
//!   that hung up) just leaves: the work goes on for the others and for whoever comes next. So
//!   callers that give up never cause a burst of retries.
//! - **No reuse after the end.** A finished run's slot is removed: its result goes to the
//!   callers that waited for it and to the run's `done` hook, never to later callers. Caching is
//!   the caller's job: the `done` hook runs before the slot is freed, so that a later caller
//!   finds either the cached result or the run (never neither), and the `instead` check of
//!   [`SingleFlight::run_unless`], made under the map's lock, can answer from that cache instead
//!   of starting a run.
//! - **No lock across I/O.** A `std` mutex guards only the map's lookup and insert (and the
//!   removal of a finished slot); the work itself runs unlocked.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either, Ready, Shared, ready};
use tokio::time::Instant;

/// Longest deadline ever set: budgets beyond it (a configured `Duration::MAX`) are cut to it
/// rather than overflow the clock.
const MAX_BUDGET: Duration = Duration::from_secs(365 * 24 * 3600);

/// The instant `budget` from now, on Tokio's clock, never overflowing.
pub(crate) fn deadline_in(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget.min(MAX_BUDGET)).unwrap_or(now)
}

type Running<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;
type Slots<K, T, E> = Mutex<HashMap<K, Slot<T, E>>>;

struct Slot<T, E> {
    /// Tells this run from a later one under the same key.
    id: u64,
    running: Running<T, E>,
}

/// Runs of shared work, at most one per key; see the [module docs](self) for the rule.
pub(crate) struct SingleFlight<K, T, E> {
    slots: Arc<Slots<K, T, E>>,
    next_id: AtomicU64,
    budget: Duration,
    timed_out: fn() -> E,
}

impl<K, T, E> fmt::Debug for SingleFlight<K, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight").field("budget", &self.budget).finish_non_exhaustive()
    }
}

impl<K, T, E> SingleFlight<K, T, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Runs that each get `budget` from their start; `timed_out` is the error of a run that
    /// did not finish in time (or whose task failed).
    pub(crate) fn new(budget: Duration, timed_out: fn() -> E) -> Self {
        SingleFlight {
            slots: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(0),
            budget,
            timed_out,
        }
    }

    /// Joins the run in flight for `key`, or starts `work` (see [`run_unless`](Self::run_unless)).
    #[cfg(test)]
    pub(crate) fn run<W, F, D>(&self, key: K, work: W, done: D) -> Flight<T, E>
    where
        W: FnOnce(Instant) -> F,
        F: Future<Output = Result<T, E>> + Send + 'static,
        D: FnOnce(&Result<T, E>) + Send + 'static,
    {
        self.run_unless(key, || None, work, done)
    }

    /// Joins the run in flight for `key`; if there is none, answers with what `instead` gives,
    /// if anything (a cached result, a backoff), and otherwise starts a run of `work`.
    ///
    /// `work` is given the run's deadline and builds the future to run; `done` sees the run's
    /// result (the timeout error included) in its task, before the slot is freed. `instead` and
    /// `work` are called under the map's lock: they must be quick and must not start a run of
    /// this `SingleFlight`.
    pub(crate) fn run_unless<C, W, F, D>(&self, key: K, instead: C, work: W, done: D) -> Flight<T, E>
    where
        C: FnOnce() -> Option<Result<T, E>>,
        W: FnOnce(Instant) -> F,
        F: Future<Output = Result<T, E>> + Send + 'static,
        D: FnOnce(&Result<T, E>) + Send + 'static,
    {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get(&key) {
            return Flight::new(Either::Right(slot.running.clone()), Role::Joined);
        }
        if let Some(answer) = instead() {
            return Flight::new(Either::Left(ready(answer)), Role::Instead);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime: shared work cannot be started");
            return Flight::new(Either::Left(ready(Err((self.timed_out)()))), Role::Started);
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let deadline = deadline_in(self.budget);
        let work = work(deadline);
        let timed_out = self.timed_out;
        let guard = SlotGuard {
            slots: self.slots.clone(),
            key: key.clone(),
            id,
        };
        let task = runtime.spawn(async move {
            // Dropped last, even when `work` or `done` panics: the slot is freed whatever happens.
            let _guard = guard;
            let result = tokio::time::timeout_at(deadline, work).await.unwrap_or_else(|_| Err(timed_out()));
            done(&result);
            result
        });
        let running = async move { task.await.unwrap_or_else(|_| Err(timed_out())) }.boxed().shared();
        slots.insert(
            key,
            Slot {
                id,
                running: running.clone(),
            },
        );
        Flight::new(Either::Right(running), Role::Started)
    }

    /// Whether a run for `key` is in flight.
    #[cfg(test)]
    pub(crate) fn is_running(&self, key: &K) -> bool {
        lock(&self.slots).contains_key(key)
    }
}

/// Frees a run's slot when its task ends (or is dropped).
struct SlotGuard<K: Eq + Hash, T, E> {
    slots: Arc<Slots<K, T, E>>,
    key: K,
    id: u64,
}

impl<K: Eq + Hash, T, E> Drop for SlotGuard<K, T, E> {
    fn drop(&mut self) {
        let mut slots = lock(&self.slots);
        if slots.get(&self.key).is_some_and(|s| s.id == self.id) {
            slots.remove(&self.key);
        }
    }
}

/// Locks the map. Nothing panics while it is held; a poisoned map is still a consistent map.
fn lock<K, T, E>(slots: &Slots<K, T, E>) -> MutexGuard<'_, HashMap<K, Slot<T, E>>> {
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a caller came by its [`Flight`]: known as soon as [`SingleFlight::run_unless`] returns,
/// without waiting, locking or allocating (the PDP client reports it as the decision's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `instead` answered: no run was started or joined.
    Instead,
    /// This caller started the run (or tried to: without a runtime it fails at once).
    Started,
    /// This caller joined a run in flight.
    Joined,
}

/// One caller's wait for a run's result. Dropping it leaves the run alone.
pub(crate) struct Flight<T, E> {
    wait: Either<Ready<Result<T, E>>, Running<T, E>>,
    role: Role,
}

impl<T, E> Flight<T, E> {
    fn new(wait: Either<Ready<Result<T, E>>, Running<T, E>>, role: Role) -> Self {
        Flight { wait, role }
    }

    /// Whether this caller started the run, joined it, or was answered by `instead`.
    pub(crate) fn role(&self) -> Role {
        self.role
    }
}

impl<T: Clone, E: Clone> Future for Flight<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.wait.poll_unpin(cx)
    }
}

impl<T, E> fmt::Debug for Flight<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.wait {
            Either::Left(_) => "ready",
            Either::Right(_) => "running",
        };
        f.debug_struct("Flight").field("state", &state).field("role", &self.role).finish()
    }
}

#[cfg(test)]
mod tests {
    //! The rule, on paused Tokio time: the timers fire in order however busy the machine is, and
    //! no real I/O is involved.

    use super::*;
    use futures_util::future::join_all;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Failure {
        TimedOut,
        Upstream,
    }

    fn flights(budget_ms: u64) -> Arc<SingleFlight<&'static str, u32, Failure>> {
        Arc::new(SingleFlight::new(Duration::from_millis(budget_ms), || Failure::TimedOut))
    }

    /// How often work was built, started, finished and dropped (finished or abandoned).
    #[derive(Default, Clone)]
    struct Counts(Arc<[AtomicUsize; 4]>);

    impl Counts {
        fn get(&self) -> [usize; 4] {
            [0, 1, 2, 3].map(|i| self.0[i].load(Ordering::SeqCst))
        }

        /// Work that answers `result` after `after`.
        fn work(
            &self,
            after: Duration,
            result: Result<u32, Failure>,
        ) -> impl FnOnce(Instant) -> BoxFuture<'static, Result<u32, Failure>> + use<> {
            let counts = self.clone();
            move |_deadline| {
                counts.0[0].fetch_add(1, Ordering::SeqCst);
                async move {
                    let _dropped = OnDrop(counts.clone());
                    counts.0[1].fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(after).await;
                    counts.0[2].fetch_add(1, Ordering::SeqCst);
                    result
                }
                .boxed()
            }
        }
    }

    struct OnDrop(Counts);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.0[3].fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A `done` hook that keeps what it saw.
    type Log = Arc<Mutex<Vec<Result<u32, Failure>>>>;

    fn seen() -> (Log, impl FnOnce(&Result<u32, Failure>) + Send + 'static) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hook = {
            let log = log.clone();
            move |r: &Result<u32, Failure>| log.lock().unwrap().push(r.clone())
        };
        (log, hook)
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn joiners_share_one_run_and_its_result_good_or_bad() {
        let f = flights(1000);
        for result in [Ok(7), Err(Failure::Upstream)] {
            let counts = Counts::default();
            let waits: Vec<_> = (0..8).map(|_| f.run("k", counts.work(100 * MS, result.clone()), |_| {})).collect();
            assert!(f.is_running(&"k"));
            for got in join_all(waits).await {
                assert_eq!(got, result);
            }
            assert_eq!(counts.get(), [1, 1, 1, 1], "built, started, finished, dropped");
            assert!(!f.is_running(&"k"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_does_not_cancel_the_run() {
        let f = flights(1000);
        let counts = Counts::default();
        let (log, done) = seen();
        let start = Instant::now();
        // The only caller gives up after 50 ms.
        let first = f.run("k", counts.work(200 * MS, Ok(1)), done);
        assert!(tokio::time::timeout(50 * MS, first).await.is_err());
        // The run goes on: a caller that comes later joins it and gets its result.
        assert!(f.is_running(&"k"));
        let late = f.run("k", counts.work(MS, Ok(2)), |_| {}).await;
        assert_eq!(late, Ok(1));
        assert_eq!(start.elapsed(), 200 * MS);
        assert_eq!(counts.get(), [1, 1, 1, 1]);
        assert_eq!(*log.lock().unwrap(), [Ok(1)]);
        // Nobody waits at all: it still runs to its end.
        let alone = Counts::default();
        drop(f.run("alone", alone.work(100 * MS, Ok(3)), |_| {}));
        tokio::time::sleep(150 * MS).await;
        assert_eq!(alone.get(), [1, 1, 1, 1]);
        assert!(!f.is_running(&"alone"));
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_deadline_the_work_is_dropped_and_a_new_caller_starts_afresh() {
        let f = flights(300);
        let stalled = Counts::default();
        let (log, done) = seen();
        let start = Instant::now();
        // Work that would take an hour; callers keep joining it until the deadline.
        let first = f.run("k", stalled.work(Duration::from_secs(3600), Ok(1)), done);
        let mut joiners = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(50 * MS).await;
            joiners.push(f.run("k", stalled.work(MS, Ok(2)), |_| {}));
        }
        assert_eq!(first.await, Err(Failure::TimedOut));
        assert_eq!(start.elapsed(), 300 * MS, "the deadline is set when the work starts");
        for got in join_all(joiners).await {
            assert_eq!(got, Err(Failure::TimedOut));
        }
        // Abandoned: dropped without finishing, and its slot is free.
        assert_eq!(stalled.get(), [1, 1, 0, 1]);
        assert_eq!(*log.lock().unwrap(), [Err(Failure::TimedOut)]);
        assert!(!f.is_running(&"k"));
        // The next caller starts a fresh attempt, with a fresh deadline.
        let fresh = Counts::default();
        tokio::time::sleep(10 * MS).await;
        assert_eq!(f.run("k", fresh.work(250 * MS, Ok(3)), |_| {}).await, Ok(3));
        assert_eq!(fresh.get(), [1, 1, 1, 1]);
        assert_eq!(stalled.get(), [1, 1, 0, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_run_is_not_reused() {
        let f = flights(1000);
        let counts = Counts::default();
        assert_eq!(f.run("k", counts.work(10 * MS, Ok(1)), |_| {}).await, Ok(1));
        assert!(!f.is_running(&"k"));
        assert_eq!(
            f.run("k", counts.work(10 * MS, Err(Failure::Upstream)), |_| {}).await,
            Err(Failure::Upstream)
        );
        assert_eq!(f.run("k", counts.work(10 * MS, Ok(3)), |_| {}).await, Ok(3));
        assert_eq!(counts.get(), [3, 3, 3, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn done_runs_before_the_slot_is_freed_and_instead_can_answer_from_what_it_stored() {
        let f = flights(1000);
        let counts = Counts::default();
        let cache: Arc<Mutex<Option<u32>>> = Arc::default();
        let slot_held_in_done = Arc::new(AtomicBool::new(false));
        let cached = |cache: &Arc<Mutex<Option<u32>>>| {
            let cache = cache.clone();
            move || cache.lock().unwrap().map(Ok)
        };
        let done = {
            let (f, cache, held) = (f.clone(), cache.clone(), slot_held_in_done.clone());
            move |r: &Result<u32, Failure>| {
                held.store(f.is_running(&"k"), Ordering::SeqCst);
                *cache.lock().unwrap() = r.clone().ok();
            }
        };
        let first = f.run_unless("k", cached(&cache), counts.work(100 * MS, Ok(5)), done);
        // While the run is in flight, callers join it whatever `instead` would say.
        *cache.lock().unwrap() = Some(99);
        let joined = f.run_unless("k", cached(&cache), counts.work(MS, Ok(6)), |_| {});
        // Each caller knows at once how it came by its flight.
        assert_eq!((first.role(), joined.role()), (Role::Started, Role::Joined));
        assert_eq!((first.await, joined.await), (Ok(5), Ok(5)));
        assert!(slot_held_in_done.load(Ordering::SeqCst));
        // Afterwards `instead` answers from what `done` stored, without a run.
        let answered = f.run_unless("k", cached(&cache), counts.work(MS, Ok(7)), |_| {});
        assert_eq!(answered.role(), Role::Instead);
        assert_eq!(answered.await, Ok(5));
        assert_eq!(counts.get(), [1, 1, 1, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_run_apart() {
        let f = flights(300);
        let (a, b) = (Counts::default(), Counts::default());
        let stalled = f.run("a", a.work(Duration::from_secs(3600), Ok(1)), |_| {});
        assert_eq!(f.run("b", b.work(10 * MS, Ok(2)), |_| {}).await, Ok(2));
        assert!(f.is_running(&"a"));
        assert_eq!(stalled.await, Err(Failure::TimedOut));
        assert_eq!((a.get(), b.get()), ([1, 1, 0, 1], [1, 1, 1, 1]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_panics_frees_its_slot() {
        let f = flights(1000);
        let boom = f.run("k", |_| async { panic!("the work failed") }, |_| {});
        assert_eq!(boom.await, Err(Failure::TimedOut));
        assert!(!f.is_running(&"k"));
        let counts = Counts::default();
        assert_eq!(f.run("k", counts.work(MS, Ok(1)), |_| {}).await, Ok(1));
    }

    #[test]
    fn without_a_runtime_nothing_starts() {
        let f = flights(1000);
        let counts = Counts::default();
        let got = f.run("k", counts.work(MS, Ok(1)), |_| {}).now_or_never();
        assert_eq!(got, Some(Err(Failure::TimedOut)));
        assert_eq!(counts.get(), [0, 0, 0, 0]);
        assert!(!f.is_running(&"k"));
    }

    #[test]
    fn deadlines_never_overflow() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let now = Instant::now();
            assert!(deadline_in(Duration::MAX) > now);
            assert!(deadline_in(Duration::from_secs(5)) >= now + Duration::from_secs(5));
        });
    }
}
