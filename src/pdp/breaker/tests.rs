//! The state machine alone, on Tokio's paused clock (no I/O here). What the client does with
//! it against `FakeAltinn` is in `tests/pdp/breaker.rs`.

use super::*;

const BUDGET: Duration = Duration::from_secs(5);

fn breaker(threshold: u32, cool_down_ms: u64, max_ms: u64) -> Breaker {
    let settings = BreakerSettings {
        on: true,
        failure_threshold: threshold,
        cool_down: Duration::from_millis(cool_down_ms),
        max_cool_down: Duration::from_millis(max_ms),
    };
    settings.check().unwrap();
    Breaker::new(settings)
}

fn failure() -> Outcome {
    Outcome::Failure {
        trip: false,
        retry_after: None,
    }
}

fn too_many(retry_after: Option<u64>) -> Outcome {
    Outcome::Failure {
        trip: true,
        retry_after: retry_after.map(Duration::from_secs),
    }
}

/// One call through `b` that ends with `outcome`; panics if it is refused.
fn call(b: &Breaker, outcome: Outcome) {
    b.admit(Instant::now() + BUDGET).expect("let through").finish(outcome);
}

fn refused_for(b: &Breaker) -> Duration {
    let e = b.admit(Instant::now() + BUDGET).err().expect("refused");
    assert_eq!(e.kind(), PdpErrorKind::CircuitOpen);
    let quick = b.refusal().expect("refused without taking the probe");
    assert_eq!(quick.kind(), PdpErrorKind::CircuitOpen);
    e.retry_after().expect("a refusal says when to come back")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_run_of_failures_opens_it_and_a_success_in_between_resets_the_count() {
    let b = breaker(3, 1000, 8000);
    call(&b, failure());
    call(&b, failure());
    call(&b, Outcome::Success);
    call(&b, failure());
    call(&b, failure());
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.refusal().is_none());
    call(&b, failure());
    assert_eq!(b.state(), BreakerState::Open { retry_after: ms(1000) });
    assert_eq!(refused_for(&b), ms(1000));
    tokio::time::advance(ms(400)).await;
    assert_eq!(refused_for(&b), ms(600));
    assert_eq!(b.state(), BreakerState::Open { retry_after: ms(600) });
}

#[tokio::test(start_paused = true)]
async fn neutral_outcomes_neither_count_nor_reset() {
    let b = breaker(2, 1000, 8000);
    call(&b, failure());
    call(&b, Outcome::Neutral);
    call(&b, Outcome::Neutral);
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, failure());
    assert!(matches!(b.state(), BreakerState::Open { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_429_opens_it_at_once_for_its_retry_after_or_the_cool_down() {
    let b = breaker(5, 1000, 8000);
    call(&b, too_many(Some(7)));
    assert_eq!(refused_for(&b), Duration::from_secs(7));

    let b = breaker(5, 1000, 8000);
    call(&b, too_many(None));
    assert_eq!(refused_for(&b), ms(1000));
}

#[tokio::test(start_paused = true)]
async fn after_the_cool_down_one_probe_goes_through_and_its_success_closes_it() {
    let b = breaker(1, 1000, 8000);
    call(&b, failure());
    tokio::time::advance(ms(1000)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.refusal().is_none(), "the probe may go");
    let probe = b.admit(Instant::now() + BUDGET).expect("the probe");
    // While the probe is out, everyone else is refused at once.
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(refused_for(&b), PROBING_RETRY_AFTER);
    assert_eq!(refused_for(&b), PROBING_RETRY_AFTER);
    probe.finish(Outcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, Outcome::Success);
    call(&b, Outcome::Success);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_it_again_for_twice_as_long_up_to_the_max_and_closing_resets() {
    let b = breaker(1, 1000, 3000);
    call(&b, failure());
    for expected in [2000, 3000, 3000] {
        tokio::time::advance(ms(5000)).await;
        call(&b, failure()); // the probe
        assert_eq!(refused_for(&b), ms(expected));
    }
    // A probe's own Retry-After wins.
    tokio::time::advance(ms(5000)).await;
    call(&b, too_many(Some(9)));
    assert_eq!(refused_for(&b), Duration::from_secs(9));
    // Closing starts the cool-downs afresh.
    tokio::time::advance(Duration::from_secs(9)).await;
    call(&b, Outcome::Success);
    call(&b, failure());
    assert_eq!(refused_for(&b), ms(1000));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_says_nothing_hands_the_probe_to_the_next_caller() {
    let b = breaker(1, 1000, 8000);
    call(&b, failure());
    tokio::time::advance(ms(1000)).await;
    call(&b, Outcome::Neutral); // the probe got no token, say
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // A probe whose caller gave up before its deadline: the same.
    drop(b.admit(Instant::now() + BUDGET).expect("the next probe"));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    call(&b, Outcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_call_abandoned_at_its_deadline_counts_as_a_failure() {
    let b = breaker(2, 1000, 8000);
    for _ in 0..2 {
        let ticket = b.admit(Instant::now() + BUDGET).unwrap();
        tokio::time::advance(BUDGET).await;
        drop(ticket);
    }
    assert!(matches!(b.state(), BreakerState::Open { .. }));
    // A stalled probe re-opens it, for twice as long.
    tokio::time::advance(ms(1000)).await;
    let probe = b.admit(Instant::now() + BUDGET).unwrap();
    tokio::time::advance(BUDGET).await;
    drop(probe);
    assert_eq!(refused_for(&b), ms(2000));
}

#[tokio::test(start_paused = true)]
async fn late_answers_of_calls_let_through_before_it_opened_do_not_close_it() {
    let b = breaker(1, 1000, 8000);
    let early = b.admit(Instant::now() + BUDGET).unwrap();
    let late_429 = b.admit(Instant::now() + BUDGET).unwrap();
    call(&b, failure());
    early.finish(Outcome::Success);
    assert_eq!(refused_for(&b), ms(1000), "only the probe closes it");
    // But a late 429 that asks for longer is honoured.
    late_429.finish(too_many(Some(4)));
    assert_eq!(refused_for(&b), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn off_never_refuses() {
    let b = Breaker::new(BreakerSettings {
        on: false,
        ..BreakerSettings::default()
    });
    for _ in 0..20 {
        call(&b, too_many(Some(60)));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.refusal().is_none());
}

#[test]
fn what_counts() {
    let e = |kind| PdpError::new(kind);
    let failure = |retry_after| Outcome::Failure { trip: false, retry_after };
    assert_eq!(
        Outcome::of_error(&e(PdpErrorKind::Status(429)).with_retry_after(ms(3000))),
        Outcome::Failure {
            trip: true,
            retry_after: Some(ms(3000))
        }
    );
    assert_eq!(Outcome::of_error(&e(PdpErrorKind::Status(500))), failure(None));
    assert_eq!(
        Outcome::of_error(&e(PdpErrorKind::Status(503)).with_retry_after(ms(2000))),
        failure(Some(ms(2000)))
    );
    for kind in [
        PdpErrorKind::Status(502),
        PdpErrorKind::Timeout,
        PdpErrorKind::Connect,
        PdpErrorKind::Malformed,
        PdpErrorKind::TooLarge,
    ] {
        assert_eq!(Outcome::of_error(&e(kind)), failure(None), "{kind:?}");
    }
    for kind in [
        PdpErrorKind::Unauthorized,
        PdpErrorKind::Credentials,
        PdpErrorKind::Status(400),
        PdpErrorKind::Status(415),
        PdpErrorKind::CircuitOpen,
    ] {
        assert_eq!(Outcome::of_error(&e(kind)), Outcome::Neutral, "{kind:?}");
    }
}

#[test]
fn settings_are_bounded_and_name_the_method() {
    let with = |f: fn(&mut BreakerSettings)| {
        let mut s = BreakerSettings::default();
        f(&mut s);
        s.check().err().map(|e| (e.field(), e.kind()))
    };
    use crate::ConfigErrorKind::{Conflict, Invalid};
    assert_eq!(with(|_| {}), None);
    assert_eq!(with(|s| s.failure_threshold = 0), Some(("breaker_failure_threshold", Invalid)));
    assert_eq!(with(|s| s.failure_threshold = 1001), Some(("breaker_failure_threshold", Invalid)));
    assert_eq!(with(|s| s.cool_down = Duration::ZERO), Some(("breaker_cool_down", Invalid)));
    assert_eq!(with(|s| s.cool_down = Duration::MAX), Some(("breaker_cool_down", Invalid)));
    assert_eq!(with(|s| s.max_cool_down = Duration::MAX), Some(("breaker_max_cool_down", Invalid)));
    assert_eq!(with(|s| s.max_cool_down = ms(4999)), Some(("breaker_max_cool_down", Conflict)));
    // Off: nothing else is checked.
    assert_eq!(
        with(|s| {
            s.on = false;
            s.failure_threshold = 0;
        }),
        None
    );
    assert_eq!(
        format!("{:?}", BreakerSettings::default()),
        "Breaker { failure_threshold: 5, cool_down: 5s, max_cool_down: 60s }"
    );
}
