//! The limit on new PDP questions per system user, through both layers: a system user asking
//! about every organisation on `/krav/{orgnr}` gets `429 too-many-decisions` with `Retry-After`
//! (gRPC 8 `RESOURCE_EXHAUSTED`) once its bucket is empty, and another system user is not
//! affected. FakeMaskinporten and FakeAltinn on 127.0.0.1:0, the app driven with `oneshot`.

mod support;

use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use std::time::Instant;
use support::{Fakes, RESOURCE, Reply, assert_problem, get_with_token, send, valid_org_numbers};
use uuid::Uuid;

const PER_SECOND: u32 = 10;
const BURST: u32 = 20;

/// `/krav/{orgnr}` behind both layers, with a PDP limited to `PER_SECOND` and `BURST`.
async fn setup() -> (Fakes, Router) {
    let fakes = Fakes::start().await;
    let pdp = fakes.pdp_builder().decision_rate_limit(PER_SECOND, BURST).build().unwrap();
    let layer = SystemUserLayer::builder()
        .pdp(pdp)
        .resource(RESOURCE)
        .party_from_path("/krav/{orgnr}")
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/krav/{orgnr}",
            get(|su: SystemUser| async move { su.party().org_number().map(|o| o.to_string()).unwrap_or_default() }),
        )
        .route_layer(layer)
        .route_layer(fakes.maskinporten_layer());
    (fakes, app)
}

/// A `429 too-many-decisions` with `Retry-After: 1` (a token comes back in 100 ms, rounded up
/// to a whole second) and no challenge: the token is fine.
fn assert_too_many(r: &Reply) {
    assert_problem(r, 429, "too-many-decisions");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("www-authenticate"), None);
}

#[tokio::test]
async fn a_flood_of_parties_is_429_after_the_burst_and_another_system_user_is_unaffected() {
    // Through the whole stack (debug build, `oneshot`), 10 000 requests take about 0.35 s.
    const FLOOD: usize = 10_000;
    let (fakes, app) = setup().await;
    let altinn = &fakes.altinn;
    let other = Uuid::new_v4();
    let other_token = fakes.system_user_token(other);
    let mine = valid_org_numbers(810_000_000, 3);
    for party in &mine {
        altinn.permit(other, "read", RESOURCE, party);
        assert_eq!(get_with_token(&app, &format!("/krav/{party}"), &other_token).await.status, 200);
    }
    assert_eq!(altinn.pdp_request_count(), 3);

    let flooder = Uuid::new_v4();
    let token = fakes.system_user_token(flooder);
    let parties = valid_org_numbers(900_000_000, FLOOD);
    let start = Instant::now();
    let (mut refused, mut answered) = (0, 0);
    for party in &parties {
        let r = get_with_token(&app, &format!("/krav/{party}"), &token).await;
        if r.status == 429 {
            assert_too_many(&r);
            refused += 1;
        } else {
            // Nothing is granted to the flooder: asked, and not granted.
            assert_problem(&r, 403, "access-not-granted");
            answered += 1;
        }
    }
    let elapsed = start.elapsed();
    let calls = altinn.pdp_request_count() - 3;
    let allowed = BURST as usize + (f64::from(PER_SECOND) * elapsed.as_secs_f64()).floor() as usize;
    eprintln!(
        "flood through the layers: {FLOOD} requests in {:.2} s, {calls} PDP calls, {refused} answered 429 \
         (rate {PER_SECOND}/s, burst {BURST}: at most {allowed})",
        elapsed.as_secs_f64()
    );
    assert_eq!((calls, answered + refused), (answered, FLOOD));
    assert!(calls >= BURST as usize && calls <= allowed, "{calls} calls in {elapsed:?}");

    // The other system user: its cached decisions answer without a PDP call, and a new
    // question of its own goes through.
    for party in &mine {
        assert_eq!(get_with_token(&app, &format!("/krav/{party}"), &other_token).await.status, 200);
    }
    assert_eq!(altinn.pdp_request_count(), 3 + calls);
    let new = &valid_org_numbers(820_000_000, 1)[0];
    altinn.permit(other, "read", RESOURCE, new);
    let r = get_with_token(&app, &format!("/krav/{new}"), &other_token).await;
    assert_eq!((r.status, r.body.as_ref()), (200, new.as_bytes()));
    assert_eq!(altinn.pdp_request_count(), 3 + calls + 1);
}

#[tokio::test]
async fn a_grpc_caller_over_the_limit_is_told_resource_exhausted() {
    let (fakes, app) = setup().await;
    let token = fakes.system_user_token(Uuid::new_v4());
    let call = |party: &str| {
        Request::get(format!("/krav/{party}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap()
    };
    let mut exhausted = None;
    for party in valid_org_numbers(830_000_000, 100) {
        let r = send(&app, call(&party)).await;
        assert_eq!(r.status, 200, "a gRPC refusal is an HTTP 200");
        if r.header("grpc-status") == Some("8") {
            exhausted = Some(r);
            break;
        }
        assert_eq!(r.header("grpc-status"), Some("7"), "not granted");
    }
    let r = exhausted.expect("refused within the burst and what came back meanwhile");
    assert_eq!(
        r.header("grpc-message"),
        Some("Too many new access decisions for this system user right now")
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("www-authenticate"), None);
}
