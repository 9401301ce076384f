//! The circuit breaker in front of the PDP, against FakeAltinn: it opens on a `429` (for its
//! `Retry-After`) and on a run of failures, answers at once without calling the PDP while
//! open, still serves cached decisions, lets one probe through after the cool-down (closing on
//! its success, opening again on its failure), ignores what is not the PDP's health, and is a
//! `503` with `Retry-After` through the layers.
//!
//! Real time: cool-downs of 600 ms, waited out with 200 ms or more to spare; the checks made
//! while the breaker is open come within a few milliseconds of its opening.

use crate::support::{self, Fakes, OTHER_ORG, OWNER_ORG, RESOURCE, THIRD_ORG};
use crate::{pdp_with_fixed_token, question, setup_with};
use altinn_systemuser::ConfigErrorKind;
use altinn_systemuser::pdp::{AltinnPdp, AltinnPdpBuilder, BreakerState, Decision, PdpError, PdpErrorKind};
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::test_util::{EndpointMode, PdpAnswer};
use axum::Router;
use axum::routing::get;
use std::time::{Duration, Instant};
use uuid::Uuid;

const COOL_DOWN: Duration = Duration::from_millis(600);
/// Longer than [`COOL_DOWN`], with room to spare.
const PAST_COOL_DOWN: Duration = Duration::from_millis(800);

fn fast_breaker(threshold: u32) -> impl FnOnce(AltinnPdpBuilder) -> AltinnPdpBuilder {
    move |b| b.breaker_failure_threshold(threshold).breaker_cool_down(COOL_DOWN)
}

/// A new question (a new system user), so that nothing comes from the cache.
async fn ask(pdp: &AltinnPdp) -> Result<Decision, PdpError> {
    pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await
}

/// Asserts `r` is the breaker's refusal, with a `retry_after` of at most `max`; returns it.
fn refused(r: Result<Decision, PdpError>, max: Duration) -> Duration {
    let e = r.expect_err("refused by the breaker");
    assert_eq!(e.kind(), PdpErrorKind::CircuitOpen, "{e}");
    let after = e.retry_after().expect("the time left");
    assert!(!after.is_zero() && after <= max, "{after:?}");
    after
}

fn open_for(pdp: &AltinnPdp) -> Duration {
    match pdp.breaker_state() {
        BreakerState::Open { retry_after } => retry_after,
        other => panic!("not open: {other:?}"),
    }
}

#[tokio::test]
async fn a_429_opens_it_for_its_retry_after_and_nothing_reaches_the_pdp_while_open() {
    let (fakes, pdp) = setup_with(|p| p).await;
    let altinn = &fakes.altinn;
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(ask(&pdp).await, Ok(Decision::Permit));
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);

    altinn.push_answer(PdpAnswer::Raw {
        status: 429,
        headers: vec![("retry-after".into(), "7".into())],
        body: String::new(),
    });
    let e = ask(&pdp).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (PdpErrorKind::Status(429), Some(Duration::from_secs(7)))
    );
    assert_eq!(altinn.pdp_request_count(), 2);
    // One 429 is enough (the threshold is for other failures), and its Retry-After is the
    // cool-down, not the default 5 s.
    assert!(open_for(&pdp) > Duration::from_secs(6), "{:?}", pdp.breaker_state());

    let started = Instant::now();
    for _ in 0..20 {
        let after = refused(ask(&pdp).await, Duration::from_secs(7));
        assert!(after > Duration::from_secs(6), "{after:?}");
    }
    let many = [
        question(Uuid::new_v4(), "read", OWNER_ORG),
        question(Uuid::new_v4(), "read", OTHER_ORG),
    ];
    let e = pdp.decide_many(&many).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::CircuitOpen);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(altinn.pdp_request_count(), 2, "no call while open");
}

#[tokio::test]
async fn a_run_of_5xx_opens_it_and_after_the_cool_down_a_successful_probe_closes_it() {
    let fakes = Fakes::start().await;
    let altinn = &fakes.altinn;
    let pdp = pdp_with_fixed_token(altinn, fast_breaker(3));
    altinn.set_answer(PdpAnswer::Status(500));
    for failures in 1..=3 {
        assert_eq!(pdp.breaker_state(), BreakerState::Closed, "after {}", failures - 1);
        assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Status(500));
    }
    assert_eq!(altinn.pdp_request_count(), 6, "three calls, each retried once");
    assert!(open_for(&pdp) <= COOL_DOWN);
    refused(ask(&pdp).await, COOL_DOWN);
    assert_eq!(altinn.pdp_request_count(), 6);

    tokio::time::sleep(PAST_COOL_DOWN).await;
    assert_eq!(pdp.breaker_state(), BreakerState::HalfOpen);
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(ask(&pdp).await, Ok(Decision::Permit), "the probe");
    assert_eq!(altinn.pdp_request_count(), 7);
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);
    for _ in 0..3 {
        assert_eq!(ask(&pdp).await, Ok(Decision::Permit));
    }
    assert_eq!(altinn.pdp_request_count(), 10, "later calls go through");
}

#[tokio::test]
async fn a_failed_probe_opens_it_again_for_twice_as_long() {
    let fakes = Fakes::start().await;
    let altinn = &fakes.altinn;
    let pdp = pdp_with_fixed_token(altinn, fast_breaker(1));
    altinn.set_answer(PdpAnswer::Status(503));
    assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Status(503));
    refused(ask(&pdp).await, COOL_DOWN);
    assert_eq!(altinn.pdp_request_count(), 2);

    tokio::time::sleep(PAST_COOL_DOWN).await;
    assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Status(503), "the probe fails");
    assert_eq!(altinn.pdp_request_count(), 4, "the probe, retried once");
    let after = refused(ask(&pdp).await, 2 * COOL_DOWN);
    assert!(after > COOL_DOWN, "doubled: {after:?}");
    assert_eq!(altinn.pdp_request_count(), 4);
}

#[tokio::test]
async fn while_the_probe_is_out_everyone_else_is_refused_at_once() {
    let fakes = Fakes::start().await;
    let altinn = &fakes.altinn;
    let pdp = pdp_with_fixed_token(altinn, fast_breaker(1));
    altinn.push_answer(PdpAnswer::TooManyRequests { retry_after_secs: 0 });
    assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Status(429));
    // Retry-After: 0 is honoured: the next call is the probe.
    assert_eq!(pdp.breaker_state(), BreakerState::HalfOpen);

    let delay = Duration::from_millis(1500);
    altinn.set_answer(PdpAnswer::Decision("Permit".into()).after(delay));
    let probe = tokio::spawn({
        let pdp = pdp.clone();
        async move { ask(&pdp).await }
    });
    // Wait until the probe has reached the fake (it records a request before answering).
    let waiting = Instant::now();
    while altinn.pdp_request_count() < 2 {
        assert!(waiting.elapsed() < Duration::from_secs(5), "the probe never came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    for _ in 0..5 {
        refused(ask(&pdp).await, Duration::from_secs(1));
    }
    assert!(started.elapsed() < delay / 2, "at once: {:?}", started.elapsed());
    assert_eq!(pdp.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(probe.await.unwrap(), Ok(Decision::Permit));
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);
    assert_eq!(altinn.pdp_request_count(), 2, "only the probe was asked");
}

#[tokio::test]
async fn cached_decisions_are_served_while_it_is_open() {
    let fakes = Fakes::start().await;
    let altinn = &fakes.altinn;
    let pdp = pdp_with_fixed_token(altinn, |b| b);
    let su = Uuid::new_v4();
    altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    altinn.permit(su, "read", RESOURCE, OTHER_ORG);
    let (a, b) = (question(su, "read", OWNER_ORG), question(su, "read", OTHER_ORG));
    assert_eq!(pdp.decide_many(&[a.clone(), b.clone()]).await, Ok(vec![Decision::Permit; 2]));
    assert_eq!(altinn.pdp_request_count(), 1);

    altinn.push_answer(PdpAnswer::TooManyRequests { retry_after_secs: 30 });
    assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Status(429));
    assert!(matches!(pdp.breaker_state(), BreakerState::Open { .. }));

    assert_eq!(pdp.decide(&a).await, Ok(Decision::Permit));
    assert_eq!(pdp.cached_decision(&b), Some(Decision::Permit));
    assert_eq!(pdp.decide_many(&[b.clone(), a.clone()]).await, Ok(vec![Decision::Permit; 2]));
    let uncached = question(su, "read", THIRD_ORG);
    refused(pdp.decide(&uncached).await, Duration::from_secs(30));
    let e = pdp.decide_many(&[a, uncached]).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::CircuitOpen);
    assert_eq!(altinn.pdp_request_count(), 2, "the 429 only");
}

#[tokio::test]
async fn malformed_answers_count_and_our_credentials_do_not() {
    let fakes = Fakes::start().await;
    let altinn = &fakes.altinn;
    let pdp = pdp_with_fixed_token(altinn, fast_breaker(2));
    // 403 (the token lacks the scope), 401 even after a refresh, 400: configuration problems.
    for answer in [403, 401, 400, 403, 401, 400] {
        altinn.set_answer(PdpAnswer::Status(answer));
        assert!(ask(&pdp).await.is_err());
    }
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);
    let before = altinn.pdp_request_count();
    altinn.set_answer(PdpAnswer::Body {
        status: 200,
        content_type: "application/json".into(),
        body: "{}".into(),
    });
    assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Malformed);
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);
    assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Malformed);
    refused(ask(&pdp).await, COOL_DOWN);
    assert_eq!(altinn.pdp_request_count(), before + 2);
}

#[tokio::test]
async fn credential_failures_do_not_open_it() {
    let (fakes, pdp) = setup_with(fast_breaker(1)).await;
    fakes.altinn.set_exchange_mode(EndpointMode::Status(500));
    for _ in 0..3 {
        assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Credentials);
    }
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn an_open_breaker_is_a_503_with_retry_after_through_the_layers() {
    let fakes = Fakes::start().await;
    let pdp = fakes.pdp();
    let layer = SystemUserLayer::builder().pdp(pdp.clone()).resource(RESOURCE).build().unwrap();
    let app = Router::new()
        .route("/krav", get(|su: SystemUser| async move { su.id().to_string() }))
        .route_layer(layer)
        .route_layer(fakes.maskinporten_layer());
    let get = async |su: Uuid| support::get_with_token(&app, "/krav", &fakes.system_user_token(su)).await;

    let cached = Uuid::new_v4();
    fakes.altinn.permit(cached, "read", RESOURCE, OWNER_ORG);
    assert_eq!(get(cached).await.status, 200);

    fakes.altinn.push_answer(PdpAnswer::TooManyRequests { retry_after_secs: 7 });
    let r = get(Uuid::new_v4()).await;
    support::assert_problem(&r, 503, "authorization-unavailable");
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);

    // Open: refused at once, with the time left rounded up to whole seconds.
    let r = get(Uuid::new_v4()).await;
    support::assert_problem(&r, 503, "authorization-unavailable");
    let after: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((6..=7).contains(&after), "{after}");
    assert_eq!(fakes.altinn.pdp_request_count(), 2, "the PDP was not called");
    // A cached permit still goes through.
    let r = get(cached).await;
    assert_eq!((r.status, String::from_utf8_lossy(&r.body).into_owned()), (200, cached.to_string()));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}

#[tokio::test]
async fn settings_are_bounded_and_shown() {
    let fakes = Fakes::start().await;
    let err = |b: AltinnPdpBuilder| {
        let e = b.build().unwrap_err();
        (e.field(), e.kind())
    };
    let b = || fakes.pdp_builder();
    assert_eq!(
        err(b().breaker_failure_threshold(0)),
        ("breaker_failure_threshold", ConfigErrorKind::Invalid)
    );
    assert_eq!(
        err(b().breaker_cool_down(Duration::ZERO)),
        ("breaker_cool_down", ConfigErrorKind::Invalid)
    );
    assert_eq!(
        err(b().breaker_cool_down(Duration::from_secs(301))),
        ("breaker_cool_down", ConfigErrorKind::Invalid)
    );
    assert_eq!(
        err(b().breaker_max_cool_down(Duration::MAX)),
        ("breaker_max_cool_down", ConfigErrorKind::Invalid)
    );
    assert_eq!(
        err(b().breaker_cool_down(Duration::from_secs(90))),
        ("breaker_max_cool_down", ConfigErrorKind::Conflict)
    );
    assert!(b().breaker_failure_threshold(0).breaker_off().build().is_ok());

    let shown = format!("{:?}", b().build().unwrap());
    assert!(
        shown.contains("breaker: Breaker { failure_threshold: 5, cool_down: 5s, max_cool_down: 60s }"),
        "{shown}"
    );
    let custom = b()
        .breaker_failure_threshold(3)
        .breaker_cool_down(Duration::from_secs(2))
        .breaker_max_cool_down(Duration::from_secs(20));
    assert!(format!("{custom:?}").contains("failure_threshold: 3, cool_down: 2s, max_cool_down: 20s"));
    assert!(format!("{:?}", b().breaker_off().build().unwrap()).contains("breaker: off"));
}

#[tokio::test]
async fn off_it_never_refuses() {
    let fakes = Fakes::start().await;
    let altinn = &fakes.altinn;
    let pdp = pdp_with_fixed_token(altinn, |b| b.breaker_off());
    altinn.set_answer(PdpAnswer::TooManyRequests { retry_after_secs: 30 });
    for _ in 0..6 {
        assert_eq!(ask(&pdp).await.unwrap_err().kind(), PdpErrorKind::Status(429));
    }
    assert_eq!(altinn.pdp_request_count(), 6);
    assert_eq!(pdp.breaker_state(), BreakerState::Closed);
}
