//! The limit on new PDP questions per system user, against FakeAltinn: one system user asking
//! about every organisation costs at most `burst + rate × duration` PDP calls, the rest are
//! refused as `TooManyDecisions` with the time to wait, and other system users are unaffected.
//! Cache hits and joining a question in flight cost nothing; `decide_many` costs one per
//! distinct question it asks.
//!
//! Real time, real HTTP: the bounds are checked against the time each test actually took, so
//! a slow machine makes them looser, never wrong.

use crate::support::{OWNER_ORG, RESOURCE, valid_org_numbers};
use crate::{question, setup_with};
use altinn_systemuser::ConfigErrorKind;
use altinn_systemuser::pdp::{AltinnPdp, Decision, DecisionRequest, PdpError, PdpErrorKind};
use altinn_systemuser::test_util::PdpAnswer;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The most PDP calls a limit of `per_second` with `burst` allows over `elapsed`.
fn allowed(per_second: u32, burst: u32, elapsed: Duration) -> usize {
    burst as usize + (f64::from(per_second) * elapsed.as_secs_f64()).floor() as usize
}

/// A refusal of the limit, with a wait of at most one token's interval.
fn assert_limited(r: &Result<Decision, PdpError>, per_second: u32) {
    let e = r.as_ref().expect_err("refused");
    assert_eq!(e.kind(), PdpErrorKind::TooManyDecisions, "{e}");
    let after = e.retry_after().expect("a refusal says when to come back");
    assert!(after > Duration::ZERO && after <= Duration::from_secs(1) / per_second, "{after:?}");
}

#[tokio::test]
async fn a_flood_from_one_system_user_is_limited_and_another_system_user_is_not() {
    const PER_SECOND: u32 = 10;
    const BURST: u32 = 20;
    const FLOOD: usize = 10_000;
    /// The flood is spread over about this long, so that the rate shows, not only the burst.
    const SPREAD: Duration = Duration::from_secs(1);
    let (fakes, pdp) = setup_with(|b| b.decision_rate_limit(PER_SECOND, BURST)).await;
    let altinn = &fakes.altinn;
    // Another system user's decisions, asked before the flood and cached.
    let other = Uuid::new_v4();
    let mine = valid_org_numbers(810_000_000, 5);
    for party in &mine {
        altinn.permit(other, "read", RESOURCE, party);
        assert_eq!(pdp.decide(&question(other, "read", party)).await, Ok(Decision::Permit));
    }
    assert_eq!(altinn.pdp_request_count(), 5);

    // One system user asks about 10 000 distinct organisations, 100 every 10 ms.
    let flooder = Uuid::new_v4();
    let parties = valid_org_numbers(900_000_000, FLOOD);
    let start = Instant::now();
    let (mut answered, mut last_asked) = (0, start);
    for (i, party) in parties.iter().enumerate() {
        if i % 100 == 0 {
            tokio::time::sleep_until((start + SPREAD * i as u32 / FLOOD as u32).into()).await;
        }
        last_asked = Instant::now();
        let r = pdp.decide(&question(flooder, "read", party)).await;
        match r {
            Ok(d) => {
                assert_eq!(d, Decision::NotApplicable);
                answered += 1;
            }
            Err(_) => assert_limited(&r, PER_SECOND),
        }
    }
    let elapsed = start.elapsed();
    let calls = altinn.pdp_request_count() - 5;
    eprintln!(
        "flood: {FLOOD} distinct questions from one system user in {:.2} s, {calls} PDP calls, {} refused \
         (rate {PER_SECOND}/s, burst {BURST}: at most {})",
        elapsed.as_secs_f64(),
        FLOOD - answered,
        allowed(PER_SECOND, BURST, elapsed)
    );
    assert_eq!(calls, answered, "one PDP call per answered question");
    assert!(calls <= allowed(PER_SECOND, BURST, elapsed), "{calls} calls in {elapsed:?}");
    // And no fewer: questions keep coming, so every token back before the last one is used
    // (the first is taken within microseconds of `start`: hence the one spare).
    let by_last = allowed(PER_SECOND, BURST, last_asked - start);
    assert!(calls + 1 >= by_last, "{calls} calls, {by_last} tokens by the last question");

    // The other system user: its cached decisions are still there (no PDP call) ...
    for party in &mine {
        assert_eq!(pdp.decide(&question(other, "read", party)).await, Ok(Decision::Permit));
    }
    assert_eq!(altinn.pdp_request_count(), 5 + calls);
    // ... and a new question of its own goes through.
    altinn.permit(other, "write", RESOURCE, OWNER_ORG);
    assert_eq!(pdp.decide(&question(other, "write", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(altinn.pdp_request_count(), 5 + calls + 1);
}

/// Asks distinct new questions of `su` until one is refused; how many were answered.
async fn answered_until_refused(pdp: &AltinnPdp, su: Uuid, from: u32, per_second: u32) -> usize {
    for (i, party) in valid_org_numbers(from, 1000).iter().enumerate() {
        let r = pdp.decide(&question(su, "read", party)).await;
        if r.is_err() {
            assert_limited(&r, per_second);
            return i;
        }
    }
    panic!("never refused");
}

#[tokio::test]
async fn cache_hits_and_joining_a_question_in_flight_cost_nothing() {
    let (fakes, pdp) = setup_with(|b| b.decision_rate_limit(1, 2)).await;
    let altinn = &fakes.altinn;
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    // The tokens first, so that the questions below take only a PDP call.
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    altinn.set_delay(Duration::from_millis(100));
    let su = Uuid::new_v4();
    let start = Instant::now();
    // Ten callers at once with the same question, with a burst of two: one call, and all ten
    // are answered (nine joined it; had each cost a token, eight would be refused).
    let q = question(su, "read", OWNER_ORG);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (pdp, q) = (pdp.clone(), q.clone());
            tokio::spawn(async move { pdp.decide(&q).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Decision::Permit));
    }
    assert_eq!(altinn.pdp_request_count(), 2);
    // A hundred cache hits, free as well.
    for _ in 0..100 {
        assert_eq!(pdp.decide(&q).await, Ok(Decision::Permit));
    }
    assert_eq!(altinn.pdp_request_count(), 2);
    // One token of two is spent: new questions go through until the bucket is empty.
    altinn.set_delay(Duration::ZERO);
    let answered = answered_until_refused(&pdp, su, 820_000_000, 1).await;
    assert!(answered >= 1, "the second token was left");
    // One token for the shared question, one per answered new question.
    let spent = 1 + answered;
    assert!(spent <= allowed(1, 2, start.elapsed()), "{spent} tokens spent");
    assert_eq!(altinn.pdp_request_count(), 2 + answered);
}

#[tokio::test]
async fn decide_many_costs_one_per_distinct_question_it_asks() {
    let (fakes, pdp) = setup_with(|b| b.decision_rate_limit(1, 5)).await;
    let altinn = &fakes.altinn;
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let su = Uuid::new_v4();
    let p = valid_org_numbers(830_000_000, 10);
    let ask = |i: usize| question(su, "read", &p[i]);
    let start = Instant::now();
    // Three distinct questions (one asked twice): three tokens, one PDP call.
    let asked: Vec<DecisionRequest> = [0, 0, 1, 2].map(ask).into();
    assert_eq!(pdp.decide_many(&asked).await.map(|d| d.len()), Ok(4));
    assert_eq!(altinn.pdp_request_count(), 1);
    // Two cached, two new: two tokens (the last two of five).
    let asked: Vec<DecisionRequest> = [0, 1, 3, 4].map(ask).into();
    assert_eq!(pdp.decide_many(&asked).await.map(|d| d.len()), Ok(4));
    assert_eq!(altinn.pdp_request_count(), 2);
    // All cached: free.
    let asked: Vec<DecisionRequest> = [4, 3, 2, 1, 0].map(ask).into();
    assert_eq!(pdp.decide_many(&asked).await.map(|d| d.len()), Ok(5));
    // Two new with the bucket (nearly) empty: refused, nothing asked, and told when two are
    // back (at one a second, at most 2 s).
    let asked: Vec<DecisionRequest> = [5, 6].map(ask).into();
    let r = pdp.decide_many(&asked).await;
    if start.elapsed() < Duration::from_secs(1) {
        let e = r.expect_err("two tokens are not back within a second");
        assert_eq!(e.kind(), PdpErrorKind::TooManyDecisions);
        let after = e.retry_after().unwrap();
        assert!(after > Duration::from_secs(1) && after <= Duration::from_secs(2), "{after:?}");
        assert_eq!(altinn.pdp_request_count(), 2);
    }
    // More distinct new questions of one system user than the burst can never be paid for:
    // refused at once, without a time to come back, and the bucket is left as it was.
    let fresh = Uuid::new_v4();
    let asked: Vec<DecisionRequest> = (0..6).map(|i| question(fresh, "read", &p[i])).collect();
    let e = pdp.decide_many(&asked).await.unwrap_err();
    assert_eq!((e.kind(), e.retry_after()), (PdpErrorKind::TooManyDecisions, None));
    let calls = altinn.pdp_request_count();
    assert_eq!(pdp.decide_many(&asked[..5]).await.map(|d| d.len()), Ok(5));
    assert_eq!(altinn.pdp_request_count(), calls + 1);
}

#[tokio::test]
async fn the_limit_is_on_by_default_and_can_be_turned_off() {
    use futures_util::StreamExt;
    const QUESTIONS: usize = 300;
    let parties = valid_org_numbers(840_000_000, QUESTIONS);
    for off in [false, true] {
        let (fakes, pdp) = setup_with(|b| if off { b.no_decision_rate_limit() } else { b }).await;
        let su = Uuid::new_v4();
        let start = Instant::now();
        let answered = futures_util::stream::iter(&parties)
            .map(|party| {
                let pdp = pdp.clone();
                async move { pdp.decide(&question(su, "read", party)).await }
            })
            .buffer_unordered(16)
            .filter(|r| std::future::ready(r.is_ok()))
            .count()
            .await;
        let elapsed = start.elapsed();
        assert_eq!(fakes.altinn.pdp_request_count(), answered);
        if off {
            assert_eq!(answered, QUESTIONS);
        } else {
            // The default: 20 a second, a burst of 100.
            assert!(
                answered >= 100 && answered <= allowed(20, 100, elapsed),
                "{answered} in {elapsed:?}"
            );
            assert!(answered < QUESTIONS, "all {QUESTIONS} answered in {elapsed:?}");
        }
    }
}

#[tokio::test]
async fn the_limit_is_checked_at_build() {
    let (fakes, _) = setup_with(|b| b).await;
    for (per_second, burst) in [(0, 10), (10, 0), (100_001, 10), (10, 100_001)] {
        let e = fakes.pdp_builder().decision_rate_limit(per_second, burst).build().unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ConfigErrorKind::Invalid, "decision_rate_limit"),
            "{per_second}/{burst}"
        );
    }
    for (per_second, burst) in [(1, 1), (100_000, 100_000)] {
        assert!(fakes.pdp_builder().decision_rate_limit(per_second, burst).build().is_ok());
    }
    // Turning it off wins over an earlier setting, and the other way round.
    assert!(
        fakes
            .pdp_builder()
            .decision_rate_limit(0, 0)
            .no_decision_rate_limit()
            .build()
            .is_ok()
    );
    assert!(
        fakes
            .pdp_builder()
            .no_decision_rate_limit()
            .decision_rate_limit(0, 0)
            .build()
            .is_err()
    );
}
