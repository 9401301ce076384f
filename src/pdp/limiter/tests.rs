//! The buckets on paused Tokio time: refills, waits and sweeps happen exactly when the clock
//! says, however busy the machine is.

use super::*;
use crate::pdp::PdpErrorKind;

const MS: Duration = Duration::from_millis(1);

/// `per_second` and `burst`, with room for `cap` system users.
fn limiter(per_second: u32, burst: u32, cap: usize) -> DecisionLimiter {
    DecisionLimiter::with_cap(Some((per_second, burst)), cap)
}

/// How long until `r` may be asked again, if it was refused.
fn wait(r: Result<(), PdpError>) -> Option<Duration> {
    r.err().map(|e| {
        assert_eq!(e.kind(), PdpErrorKind::TooManyDecisions);
        e.retry_after().expect("a refusal within the burst says when")
    })
}

#[tokio::test(start_paused = true)]
async fn a_burst_then_the_rate_and_the_wait_is_exact() {
    let l = limiter(10, 5, 100);
    let su = Uuid::new_v4();
    for _ in 0..5 {
        assert_eq!(wait(l.take(su)), None);
    }
    // Empty: the next token is back in 1 s / 10.
    assert_eq!(wait(l.take(su)), Some(100 * MS));
    tokio::time::sleep(60 * MS).await;
    assert_eq!(wait(l.take(su)), Some(40 * MS));
    tokio::time::sleep(40 * MS).await;
    assert_eq!(wait(l.take(su)), None);
    assert_eq!(wait(l.take(su)), Some(100 * MS));
    // Refused questions cost nothing: after a second of refusals, ten new tokens are back.
    for _ in 0..10 {
        tokio::time::sleep(50 * MS).await;
        let _ = l.take(su);
    }
    // Over any stretch: at most the burst plus the rate times its length.
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut granted = 0;
    while start.elapsed() <= Duration::from_secs(13) {
        granted += usize::from(l.take(su).is_ok());
        tokio::time::sleep(10 * MS).await;
    }
    // Full after 10 s (5), then 3 s at 10 a second (30).
    assert_eq!(granted, 5 + 30);
}

#[tokio::test(start_paused = true)]
async fn system_users_have_buckets_of_their_own() {
    let l = limiter(1, 3, 100);
    let (flood, other) = (Uuid::new_v4(), Uuid::new_v4());
    let refused = (0..1000).filter(|_| l.take(flood).is_err()).count();
    assert_eq!(refused, 997);
    for _ in 0..3 {
        assert_eq!(wait(l.take(other)), None);
    }
    assert!(l.take(other).is_err());
}

#[tokio::test(start_paused = true)]
async fn many_at_once_is_all_or_nothing_and_more_than_the_burst_never() {
    let l = limiter(10, 5, 100);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(wait(l.take_each(&[(a, 3), (b, 5)])), None);
    // `a` has 2 left, `b` none: neither is charged.
    assert_eq!(wait(l.take_each(&[(a, 2), (b, 1)])), Some(100 * MS));
    assert_eq!(wait(l.take_each(&[(a, 2)])), None);
    assert_eq!(wait(l.take(a)), Some(100 * MS));
    // Three of `a` wanted, none there: the wait is until three are back.
    assert_eq!(wait(l.take_each(&[(a, 3)])), Some(300 * MS));
    // More than the burst can never be paid for: refused, without a time to come back.
    let never = l.take_each(&[(Uuid::new_v4(), 6)]).unwrap_err();
    assert_eq!((never.kind(), never.retry_after()), (PdpErrorKind::TooManyDecisions, None));
    // Counting questions per system user.
    let c = Uuid::new_v4();
    assert_eq!(wait(l.take_for([c, a, c, c].into_iter().filter(|s| *s == c))), None);
    assert_eq!(wait(l.take_for([c, c, c].into_iter())), Some(100 * MS));
    assert_eq!(wait(l.take_for([c, c].into_iter())), None);
}

#[tokio::test(start_paused = true)]
async fn off_means_off() {
    let l = DecisionLimiter::new(None);
    let su = Uuid::new_v4();
    for _ in 0..10_000 {
        assert!(l.take(su).is_ok());
    }
    assert!(l.take_each(&[(su, u32::MAX)]).is_ok());
    assert_eq!(l.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn full_buckets_are_dropped_and_the_map_never_exceeds_its_cap() {
    let l = limiter(10, 2, 50);
    for _ in 0..50 {
        l.take(Uuid::new_v4()).unwrap();
    }
    assert_eq!(l.len(), 50);
    // At the cap, with no full bucket: newcomers share the overflow bucket (burst 2), and the
    // map does not grow, even through a multi-request of many newcomers.
    let newcomers: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    assert!(l.take(newcomers[0]).is_ok());
    assert!(l.take(newcomers[1]).is_ok());
    assert_eq!(wait(l.take(newcomers[2])), Some(100 * MS));
    let each: Vec<(Uuid, u32)> = newcomers.iter().map(|&s| (s, 1)).collect();
    assert!(l.take_each(&each).is_err());
    assert_eq!(l.len(), 50);
    // Once the buckets are full again they are swept out at the next question (at most once a
    // second while at the cap; the last sweep was when the limiter was made).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(l.take(newcomers[3]).is_ok());
    assert_eq!(l.len(), 1);
    // Sweeps at the cap happen at most once a second: a flood of newcomers at the cap costs
    // no sweep per question.
    for _ in 0..49 {
        l.take(Uuid::new_v4()).unwrap();
    }
    assert_eq!(l.len(), 50);
    tokio::time::sleep(200 * MS).await;
    assert!(l.take(Uuid::new_v4()).is_ok(), "overflow bucket, refilled");
    assert_eq!(l.len(), 50, "no sweep within a second of the last");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(l.take(Uuid::new_v4()).is_ok());
    assert_eq!(l.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_buckets_are_swept_once_a_minute_below_the_cap_too() {
    let l = limiter(10, 2, 100_000);
    for _ in 0..1000 {
        l.take(Uuid::new_v4()).unwrap();
    }
    assert_eq!(l.len(), 1000);
    tokio::time::sleep(Duration::from_secs(30)).await;
    l.take(Uuid::new_v4()).unwrap();
    assert_eq!(l.len(), 1001, "not yet a minute");
    tokio::time::sleep(Duration::from_secs(31)).await;
    l.take(Uuid::new_v4()).unwrap();
    assert_eq!(l.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_bucket_is_the_same_as_none() {
    let l = limiter(10, 3, 100);
    let su = Uuid::new_v4();
    for _ in 0..3 {
        l.take(su).unwrap();
    }
    // 300 ms later the bucket is full again: three more, not more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for _ in 0..3 {
        assert_eq!(wait(l.take(su)), None);
    }
    assert_eq!(wait(l.take(su)), Some(100 * MS));
}

#[test]
fn rates_round_towards_slower() {
    // 1 s / 3 is not a whole number of nanoseconds: the interval is rounded up, never down,
    // so the rate is never above the configured one.
    let l = limiter(3, 1, 10);
    assert_eq!(l.limit.unwrap().interval, Duration::from_nanos(333_333_334));
    assert!(l.limit.unwrap().interval * 3 >= Duration::from_secs(1));
}
