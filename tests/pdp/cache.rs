//! The decision cache as the client uses it: shared by clones, a `Deny` cached, an
//! `Indeterminate` not, and a `Permit` never past the request's `valid_until`.

use crate::support::OWNER_ORG;
use crate::{about, question, setup};
use altinn_systemuser::pdp::Decision;
use altinn_systemuser::test_util::PdpAnswer;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

#[tokio::test]
async fn clones_share_the_decision_cache_and_the_token() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", "resource-a", OWNER_ORG);
    fakes.altinn.permit(su, "read", "resource-b", OWNER_ORG);
    let counts = || {
        (
            fakes.altinn.pdp_request_count(),
            fakes.mp.token_requests(),
            fakes.altinn.exchange_count(),
        )
    };
    assert_eq!(pdp.decide(&about(su, "resource-a", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(counts(), (1, 1, 1));
    // Cached: no second call.
    assert_eq!(pdp.clone().decide(&about(su, "resource-a", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(counts(), (1, 1, 1));
    // Another question from a clone: a call, with the same token.
    assert_eq!(pdp.clone().decide(&about(su, "resource-b", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(counts(), (2, 1, 1));
}

#[tokio::test]
async fn a_deny_is_cached() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    fakes.altinn.rule(su, "read", "deny-a", OWNER_ORG, "Deny");
    assert_eq!(pdp.decide(&about(su, "deny-a", OWNER_ORG)).await, Ok(Decision::Deny));
    assert_eq!(pdp.decide(&about(su, "deny-a", OWNER_ORG)).await, Ok(Decision::Deny));
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
}

#[tokio::test]
async fn an_indeterminate_is_not_cached() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Indeterminate".into()));
    let q = question(Uuid::new_v4(), "read", OWNER_ORG);
    assert_eq!(pdp.decide(&q).await, Ok(Decision::Indeterminate));
    assert_eq!(pdp.decide(&q).await, Ok(Decision::Indeterminate));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}

/// The cache compares `valid_until` with `SystemTime`, so this sleeps for real (paused Tokio
/// time would not move that clock): 400 ms of validity leave room on a busy machine for the
/// second, cached, decision; the sleep goes 100 ms past it.
#[tokio::test]
async fn a_permit_never_outlives_valid_until() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    // The tokens first, so that the questions below take only a PDP call.
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    let su = Uuid::new_v4();
    let valid_until = SystemTime::now() + Duration::from_millis(400);
    let r = question(su, "read", OWNER_ORG).with_valid_until(valid_until);
    assert_eq!(pdp.decide(&r).await, Ok(Decision::Permit));
    assert_eq!(pdp.decide(&r).await, Ok(Decision::Permit));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
    let past = valid_until + Duration::from_millis(100);
    tokio::time::sleep(past.duration_since(SystemTime::now()).unwrap_or_default()).await;
    // Asked again, now without a bound: the PDP is asked again.
    assert_eq!(pdp.decide(&question(su, "read", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(fakes.altinn.pdp_request_count(), 3);
}
