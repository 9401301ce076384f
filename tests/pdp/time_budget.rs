//! The time budget of a decision covers everything: getting a token, the call and the one retry.
//!
//! The client's deadline is on Tokio's clock, but these tests talk to the fakes over real
//! loopback connections, where paused time would fire timeouts before the answers arrive: so
//! they run in real time, with budgets of a few hundred milliseconds and margins that hold on a
//! busy machine. The PDP calls use a fixed Altinn token, so the budget is all the PDP's.

use crate::support::OWNER_ORG;
use crate::{pdp_with_fixed_token, question, setup_with};
use altinn_systemuser::pdp::PdpErrorKind;
use altinn_systemuser::test_util::{EndpointMode, PdpAnswer};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn a_hanging_token_endpoint_times_out() {
    // The default client, as a user gets it: the decision's budget ends the wait, and it is
    // reported as a timeout (tests/pdp/stalls.rs checks a client with its own timeout too).
    let (fakes, pdp) = setup_with(|p| p.timeout(Duration::from_millis(200))).await;
    // Getting the token is part of the budget.
    fakes.mp.set_token_mode(EndpointMode::Hang);
    let started = Instant::now();
    let q = question(Uuid::new_v4(), "read", OWNER_ORG);
    let decided = tokio::time::timeout(Duration::from_secs(5), pdp.decide(&q));
    let e = decided.await.expect("the budget ends the wait").unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_pdp_answering_too_late_times_out() {
    let fakes = crate::Fakes::start().await;
    let pdp = pdp_with_fixed_token(&fakes.altinn, |p| p.timeout(Duration::from_millis(200)));
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    fakes.altinn.set_delay(Duration::from_secs(30));
    let started = Instant::now();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_slow_first_answer_leaves_no_budget_for_a_retry() {
    let fakes = crate::Fakes::start().await;
    let pdp = pdp_with_fixed_token(&fakes.altinn, |p| p.timeout(Duration::from_millis(200)));
    // The 503 comes with less than the 100 ms a retry needs left: none is started, and the real
    // failure is reported (unless the answer itself came too late).
    fakes.altinn.push_answer(PdpAnswer::Status(503).after(Duration::from_millis(150)));
    let kind = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err().kind();
    assert!(matches!(kind, PdpErrorKind::Status(503) | PdpErrorKind::Timeout), "{kind:?}");
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
}

#[tokio::test]
async fn a_retry_that_cannot_finish_in_time_times_out() {
    let fakes = crate::Fakes::start().await;
    // Room for the retry: the 503 comes after 20 ms of 400.
    let pdp = pdp_with_fixed_token(&fakes.altinn, |p| p.timeout(Duration::from_millis(400)));
    fakes.altinn.push_answer(PdpAnswer::Status(503).after(Duration::from_millis(20)));
    fakes
        .altinn
        .push_answer(PdpAnswer::Decision("Permit".into()).after(Duration::from_secs(10)));
    let started = Instant::now();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}
