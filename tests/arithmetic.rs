//! Numbers from tokens and from upstream answers are never trusted to fit: times in a token
//! that cannot be evaluated refuse it (`invalid-claims`), an absurd `expires_in` from
//! Maskinporten is capped (not added to the clock), and a `Retry-After` from Altinn is passed
//! on at most 60 s. Over real HTTP, with FakeMaskinporten and FakeAltinn on 127.0.0.1:0.

mod support;

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::org::Party;
use altinn_systemuser::pdp::{Action, Decision, DecisionRequest, ResourceId};
use altinn_systemuser::systemuser::SystemUserLayer;
use altinn_systemuser::test_util::{FakeMaskinporten, KeyRole, PdpAnswer, TestKey};
use axum::Router;
use axum::routing::get;
use serde_json::json;
use std::time::Duration;
use support::{API_SCOPE, Fakes, OWNER_ORG, RESOURCE, Reply, get_with_token, problem};
use uuid::Uuid;

fn assert_refused(r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), problem(slug));
}

#[tokio::test]
async fn a_token_whose_lifetime_overflows_is_refused_not_a_panic() {
    TestKey::pregenerate(&[KeyRole::Maskinporten]);
    let mp = FakeMaskinporten::start().await;
    let app = |max: Option<Duration>| {
        let mut b = MaskinportenLayer::builder().issuer(mp.issuer()).require_scope(API_SCOPE);
        if let Some(max) = max {
            b = b.max_token_lifetime(max);
        }
        Router::new()
            .route("/whoami", get(|| async { "through" }))
            .route_layer(b.build().unwrap())
    };
    let token = |exp: i64, iat: i64| mp.token().scope(API_SCOPE).claim("exp", json!(exp)).claim("iat", json!(iat)).sign();
    for max in [Some(Duration::from_secs(120)), None] {
        let app = app(max);
        // `exp - iat` overflows i64: a debug build panicked, a release build wrapped into a
        // negative lifetime that passed the maximum.
        for (exp, iat) in [(i64::MAX, -1), (i64::MAX, i64::MIN), (i64::MAX, 0)] {
            let r = get_with_token(&app, "/whoami", &token(exp, iat)).await;
            assert_refused(&r, 401, "invalid-claims");
            assert!(r.challenge().starts_with("Bearer error=\"invalid_token\""), "{exp} {iat}");
        }
        // The twin: an ordinary token passes.
        let r = get_with_token(&app, "/whoami", &mp.token().scope(API_SCOPE).sign()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// `/krav` behind both layers, with the PDP client's real credentials flow. Breaker off, so
/// that each 429 reaches the layer as the PDP sent it (an open breaker: tests/pdp/breaker.rs).
fn app(fakes: &Fakes) -> Router {
    let pdp = fakes.pdp_builder().breaker_off().build().unwrap();
    let layer = SystemUserLayer::builder().pdp(pdp).resource(RESOURCE).build().unwrap();
    Router::new()
        .route("/krav", get(|| async { "through" }))
        .route_layer(layer)
        .route_layer(fakes.maskinporten_layer())
}

#[tokio::test]
async fn a_retry_after_from_the_pdp_is_passed_on_at_most_60_s() {
    let fakes = Fakes::start().await;
    let app = app(&fakes);
    for (sent, told) in [("7", "7"), ("60", "60"), ("61", "60"), ("999999999", "60")] {
        fakes.altinn.push_answer(PdpAnswer::Raw {
            status: 429,
            headers: vec![("retry-after".into(), sent.into())],
            body: String::new(),
        });
        let r = get_with_token(&app, "/krav", &fakes.system_user_token(Uuid::new_v4())).await;
        assert_refused(&r, 503, "authorization-unavailable");
        assert_eq!(r.header("retry-after"), Some(told), "Retry-After: {sent}");
    }
}

#[tokio::test]
async fn an_absurd_expires_in_from_maskinporten_is_capped_not_added_to_the_clock() {
    let fakes = Fakes::start().await;
    // The fake answers the grant with `"expires_in": 4611686018427387903` (i64::MAX / 2):
    // `now + expires_in` panicked ("overflow when adding duration to instant").
    fakes.mp.set_access_token_lifetime(Duration::MAX);
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let pdp = fakes.pdp();
    let ask = DecisionRequest::new(
        su,
        Action::read(),
        ResourceId::new(RESOURCE).unwrap(),
        Party::parse(OWNER_ORG).unwrap(),
    );
    assert_eq!(pdp.decide(&ask).await, Ok(Decision::Permit));
    assert_eq!(fakes.mp.token_requests(), 1);
    // And through the layers.
    let r = get_with_token(&app(&fakes), "/krav", &fakes.system_user_token(su)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
