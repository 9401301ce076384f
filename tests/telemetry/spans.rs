//! The request span: `telemetry::make_span` under a real `tower_http` `TraceLayer`, filled in
//! by both layers; seen on the `TraceLayer`'s own response event, which is emitted inside it.

use super::capture::{Captured, capture};
use super::{broken, setup, setup_with};
use crate::support::{OTHER_ORG, OWNER_ORG, PERSON, RESOURCE};
use altinn_systemuser::telemetry::span::FIELDS;
use altinn_systemuser::test_util::{DEFAULT_CLIENT_ID, DEFAULT_CONSUMER_ORG, decode_unverified};
use axum::Router;
use axum::routing::get;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use uuid::Uuid;

/// `TraceLayer`'s "finished processing request" event (one per request), with its span's fields.
fn responses(events: Vec<Captured>) -> Vec<Captured> {
    events.into_iter().filter(|e| e.message == "finished processing request").collect()
}

#[tokio::test]
async fn both_layers_fill_in_the_span_of_an_allowed_request() {
    let (log, _guard) = capture();
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OTHER_ORG);
    let token = env.fakes.system_user_token(su);
    let jti = decode_unverified(&token).unwrap().1["jti"].as_str().unwrap().to_owned();
    for source in ["pdp", "cache"] {
        log.clear();
        assert_eq!(env.get(&format!("/krav/{OTHER_ORG}"), &token).await.status, 200);
        let [e] = responses(log.events()).try_into().unwrap();
        for (k, v) in [
            ("method", "GET"),
            ("system_user_id", su.to_string().as_str()),
            ("system_user_org", OWNER_ORG),
            ("vendor_org", DEFAULT_CONSUMER_ORG),
            ("client_id", DEFAULT_CLIENT_ID),
            ("jti", jti.as_str()),
            ("resource", RESOURCE),
            ("action", "read"),
            ("party", OTHER_ORG),
            ("decision_source", source),
            ("outcome", "allowed"),
            ("reason", "ok"),
        ] {
            assert_eq!(e.span_field(k), Some(v), "{k} in {e:#?}");
        }
        // Every documented field was filled in (the span has nothing else but `method`).
        assert_eq!(e.span.len(), FIELDS.len() + 1, "{e:#?}");
    }
}

#[tokio::test]
async fn a_refusal_is_in_the_span_and_a_maskinporten_refusal_names_no_one() {
    let (log, _guard) = capture();
    let env = setup_with(|m| m, |s| s.audit_party_key(&[1u8; 32]), |p| p).await;
    let su = Uuid::new_v4();
    let token = env.fakes.system_user_token(su);

    // Refused by the PDP for a person: the party pseudonymised, the reason recorded.
    assert_eq!(env.get(&format!("/krav/{PERSON}"), &token).await.status, 403);
    let [e] = responses(log.events()).try_into().unwrap();
    assert_eq!(e.span_field("outcome"), Some("refused"));
    assert_eq!(e.span_field("reason"), Some("access-not-granted"));
    assert_eq!(e.span_field("system_user_id"), Some(su.to_string().as_str()));
    assert!(e.span_field("party").unwrap().starts_with("hmac-sha256:"), "{e:#?}");

    // Refused by the Maskinporten layer: the reason, and nothing from the token.
    log.clear();
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &broken(&token)).await.status, 401);
    let [e] = responses(log.events()).try_into().unwrap();
    assert_eq!(
        (e.span_field("outcome"), e.span_field("reason")),
        (Some("refused"), Some("invalid-signature"))
    );
    for absent in ["system_user_id", "system_user_org", "vendor_org", "client_id", "jti", "party"] {
        assert_eq!(e.span_field(absent), None, "{absent} in {e:#?}");
    }
}

/// Why the crate's span is needed: `tracing` drops fields a span did not declare, so with
/// `tower_http`'s default span the layers' fields are lost.
#[tokio::test]
async fn a_span_that_did_not_declare_the_fields_gets_none_of_them() {
    let (log, _guard) = capture();
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let app = Router::new()
        .route("/krav/{party}", get(|| async { "ok" }))
        .route_layer(
            altinn_systemuser::systemuser::SystemUserLayer::builder()
                .pdp(env.fakes.pdp())
                .resource(RESOURCE)
                .build()
                .unwrap(),
        )
        .route_layer(env.fakes.maskinporten_layer())
        .layer(TraceLayer::new_for_http().on_response(DefaultOnResponse::new().level(Level::INFO)));
    let req = http::Request::get(format!("/krav/{OWNER_ORG}"))
        .header("authorization", format!("Bearer {}", env.fakes.system_user_token(su)))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(crate::support::send(&app, req).await.status, 200);
    let [e] = responses(log.events()).try_into().unwrap();
    for field in FIELDS {
        assert_eq!(e.span_field(field), None, "{field} in {e:#?}");
    }
    assert!(e.span_field("uri").is_some(), "the default span was there: {e:#?}");
}
