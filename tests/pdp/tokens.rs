//! The provider's tokens over time: refreshed once after a `401`, renewed before they expire,
//! shared by concurrent callers, and what happens when the grant or the exchange fails.

use crate::support::OWNER_ORG;
use crate::{about, question, setup, twenty_concurrent_permits};
use altinn_systemuser::pdp::{Decision, PdpErrorKind};
use altinn_systemuser::test_util::{EndpointMode, ExchangeFormat, PdpAnswer, decode_unverified};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

async fn permit_one(pdp: &altinn_systemuser::pdp::AltinnPdp) {
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
}

/// The fakes and a client whose tokens are in place: one permitted decision made.
async fn setup_with_tokens() -> (crate::Fakes, altinn_systemuser::pdp::AltinnPdp) {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    permit_one(&pdp).await;
    (fakes, pdp)
}

/// (grants, exchanges, PDP calls) so far.
fn traffic(fakes: &crate::Fakes) -> (usize, usize, usize) {
    (
        fakes.mp.token_requests(),
        fakes.altinn.exchange_count(),
        fakes.altinn.pdp_request_count(),
    )
}

// ---------------------------------------------------------------------------------------------
// After a 401
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_revoked_altinn_token_is_refreshed_once() {
    let (fakes, pdp) = setup_with_tokens().await;
    let altinn = &fakes.altinn;

    // The Altinn token is revoked: one 401, one refresh (grant and exchange), success.
    altinn.revoke_tokens();
    permit_one(&pdp).await;
    assert_eq!(traffic(&fakes), (2, 2, 3));
}

#[tokio::test]
async fn a_pdp_that_keeps_saying_401_is_unauthorized_after_one_refresh() {
    let (fakes, pdp) = setup_with_tokens().await;
    let altinn = &fakes.altinn;

    altinn.set_answer(PdpAnswer::Status(401));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Unauthorized);
    // One refresh (grant and exchange), two PDP calls.
    assert_eq!(traffic(&fakes), (2, 2, 3));
}

#[tokio::test]
async fn a_403_is_unauthorized_without_a_token_refresh() {
    let (fakes, pdp) = setup_with_tokens().await;
    let altinn = &fakes.altinn;

    altinn.push_answer(PdpAnswer::Status(403));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Unauthorized);
    assert_eq!(traffic(&fakes), (1, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_share_one_refresh() {
    let (fakes, pdp) = setup_with_tokens().await;
    let (mp, altinn) = (&fakes.mp, &fakes.altinn);
    assert_eq!((mp.token_requests(), altinn.exchange_count()), (1, 1));

    // Every request in flight carries the revoked token and gets a 401.
    altinn.revoke_tokens();
    altinn.set_delay(Duration::from_millis(50));
    twenty_concurrent_permits(&pdp).await;
    assert_eq!((mp.token_requests(), altinn.exchange_count()), (2, 2), "one refresh for all");
}

// ---------------------------------------------------------------------------------------------
// The exchange's answer
// ---------------------------------------------------------------------------------------------

/// The PDP call carries exactly the token the exchange issued, whatever its form.
async fn exchange_answer_is_read(format: ExchangeFormat) {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_exchange_format(format);
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    permit_one(&pdp).await;
    let calls = fakes.altinn.pdp_requests();
    let bearer = calls[0].bearer_token().unwrap();
    assert!(!bearer.contains('"'), "{bearer}");
    let (_, claims) = decode_unverified(bearer).expect("the Altinn token, unquoted");
    assert_eq!(claims["iss"], fakes.altinn.token_issuer());
}

#[tokio::test]
async fn an_exchange_answer_in_plain_text_is_read() {
    exchange_answer_is_read(ExchangeFormat::PlainText).await;
}

#[tokio::test]
async fn an_exchange_answer_as_a_json_string_is_read() {
    exchange_answer_is_read(ExchangeFormat::JsonString).await;
}

// ---------------------------------------------------------------------------------------------
// Failed refreshes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn callers_waiting_for_a_failed_refresh_share_its_error() {
    let (fakes, pdp) = setup().await;
    // The grant fails slowly, so that all ten callers are waiting for it.
    fakes.mp.set_token_mode(EndpointMode::Status(400));
    fakes.mp.set_token_delay(Duration::from_millis(200));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let pdp = pdp.clone();
            tokio::spawn(async move { pdp.decide(&about(Uuid::new_v4(), &format!("resource-{i}"), OWNER_ORG)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err().kind(), PdpErrorKind::Credentials);
    }
    let counts = || {
        (
            fakes.altinn.pdp_request_count(),
            fakes.mp.token_requests(),
            fakes.altinn.exchange_count(),
        )
    };
    assert_eq!(counts(), (0, 1, 0));
    // A later caller tries again.
    fakes.mp.set_token_mode(EndpointMode::Normal);
    fakes.mp.set_token_delay(Duration::ZERO);
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(
        pdp.decide(&about(Uuid::new_v4(), "resource-a", OWNER_ORG)).await,
        Ok(Decision::Permit)
    );
    assert_eq!(counts(), (1, 2, 1));
}

#[tokio::test]
async fn an_exchange_failure_is_a_credentials_error() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_exchange_mode(EndpointMode::Status(500));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Renewal before expiry
//
// The client keeps a token until half its remaining lifetime (at most 60 s) before its `exp`,
// comparing with `SystemTime::now()`, so these tests sleep for real: paused Tokio time would
// not move that clock. `exp` is whole seconds, so a 2 s token is the shortest that is surely
// still fresh for the first decisions (it lives at least 1 s); the sleeps wait only until the
// renewal point computed from the token's own `exp`, plus a margin.
// ---------------------------------------------------------------------------------------------

/// Sleeps until the client must have started renewing the Altinn token it used for the first
/// PDP call: halfway between its exchange (no later than now) and its `exp`, plus 50 ms.
async fn sleep_until_renewal(fakes: &crate::support::Fakes) {
    let calls = fakes.altinn.pdp_requests();
    let (_, claims) = decode_unverified(calls[0].bearer_token().unwrap()).unwrap();
    let exp = UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().unwrap());
    let now = SystemTime::now();
    let left = exp.duration_since(now).unwrap_or_default();
    tokio::time::sleep(left / 2 + Duration::from_millis(50)).await;
}

#[tokio::test]
async fn the_altinn_token_is_renewed_before_it_expires_and_the_maskinporten_token_reused() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_exchange_token_lifetime(Duration::from_secs(2));
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let counts = || {
        (
            fakes.altinn.pdp_request_count(),
            fakes.mp.token_requests(),
            fakes.altinn.exchange_count(),
        )
    };
    permit_one(&pdp).await;
    permit_one(&pdp).await;
    assert_eq!(counts(), (2, 1, 1));
    sleep_until_renewal(&fakes).await;
    // A new exchange; the Maskinporten token (120 s) is still fresh and reused.
    permit_one(&pdp).await;
    assert_eq!(counts(), (3, 1, 2));
}

#[tokio::test]
async fn an_exchange_refusing_the_cached_maskinporten_token_gets_a_new_one() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_exchange_token_lifetime(Duration::from_secs(2));
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let counts = || {
        (
            fakes.altinn.pdp_request_count(),
            fakes.mp.token_requests(),
            fakes.altinn.exchange_count(),
        )
    };
    permit_one(&pdp).await;
    assert_eq!(counts(), (1, 1, 1));
    sleep_until_renewal(&fakes).await;
    // The exchange refuses the cached Maskinporten token once: one new grant, one more exchange.
    fakes.altinn.push_exchange_mode(EndpointMode::Status(401));
    permit_one(&pdp).await;
    assert_eq!(counts(), (2, 2, 3));
}
