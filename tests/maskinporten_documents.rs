//! The documents the Maskinporten layer fetches (RFC 8414 metadata and the JWKS), when they can
//! be read two ways: a member name repeated. Served as written by FakeMaskinporten on
//! 127.0.0.1:0 (`set_metadata_body`, `set_jwks_body`), read by a fresh layer each time.
//!
//! - a JWK with a repeated member is skipped; the other keys still load and verify;
//! - a JWKS with a repeated top-level member (`keys` twice) is refused: no keys, 503;
//! - metadata with a repeated member (`issuer`, `jwks_uri`) is refused: no keys, 503.
//!
//! Each ambiguous document is checked next to its unambiguous twin, which must work.

mod support;

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::test_util::{FakeMaskinporten, KeyRole, TestKey};
use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use support::{Reply, get_with_token, problem};

const SCOPE: &str = "skatteetaten:kravogbetalinger";

async fn fake() -> FakeMaskinporten {
    TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Rotation(0)]);
    FakeMaskinporten::start().await
}

/// A fresh layer (its own key store) for `mp`'s issuer, with discovery, on `/whoami`.
fn app(mp: &FakeMaskinporten) -> Router {
    let layer = MaskinportenLayer::builder()
        .issuer(mp.issuer())
        .require_scope(SCOPE)
        .build()
        .unwrap();
    Router::new().route("/whoami", get(|| async { "through" })).route_layer(layer)
}

async fn call(mp: &FakeMaskinporten, app: &Router, key: &Arc<TestKey>) -> Reply {
    get_with_token(app, "/whoami", &mp.token().scope(SCOPE).signed_by(key.clone()).sign()).await
}

fn assert_through(r: &Reply) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(&r.body[..], b"through");
}

fn assert_refused(r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), problem(slug));
}

/// A JWK as text, with `extra` members written after its `kid` (so they may repeat a name).
fn jwk_text(key: &TestKey, extra: &str) -> String {
    let text = key.public_jwk().to_string();
    let kid = format!(r#""kid":"{}""#, key.kid());
    assert!(text.contains(&kid), "{text}");
    text.replacen(&kid, &format!("{kid}{extra}"), 1)
}

#[tokio::test]
async fn a_key_with_a_repeated_member_is_skipped_and_the_other_key_verifies() {
    let mp = fake().await;
    let a = mp.signing_key();
    let b = Arc::new(TestKey::for_role(KeyRole::Rotation(0)).with_kid("second-key"));

    // The twin: both keys published plainly, both verify.
    mp.set_jwks_body(Some(format!(r#"{{"keys":[{},{}]}}"#, jwk_text(&a, ""), jwk_text(&b, ""))));
    let twin = app(&mp);
    assert_through(&call(&mp, &twin, &a).await);
    assert_through(&call(&mp, &twin, &b).await);

    // The second key says `use` twice: `enc` (not for us) and then `sig`. Read by its last
    // value it would verify; it can be read two ways, so it is skipped.
    for extra in [
        r#","use":"enc","use":"sig""#,
        r#","kid":"second-key""#,
        r#","alg":"RS512","alg":"RS256""#,
    ] {
        mp.set_jwks_body(Some(format!(r#"{{"keys":[{},{}]}}"#, jwk_text(&a, ""), jwk_text(&b, extra))));
        let app = app(&mp);
        assert_through(&call(&mp, &app, &a).await);
        let r = call(&mp, &app, &b).await;
        assert_refused(&r, 401, "unknown-signing-key");
        assert!(r.challenge().starts_with("Bearer error=\"invalid_token\""), "{extra}");
    }
}

#[tokio::test]
async fn a_jwks_with_keys_twice_is_refused() {
    let mp = fake().await;
    let a = mp.signing_key();
    let good = jwk_text(&a, "");
    mp.set_jwks_body(Some(format!(r#"{{"keys":[{good}]}}"#)));
    assert_through(&call(&mp, &app(&mp), &a).await);

    // Read by its last `keys`, the set would hold the key; it is refused as a whole. So is a
    // set repeating any other top-level member.
    for doc in [
        format!(r#"{{"keys":[],"keys":[{good}]}}"#),
        format!(r#"{{"keys":[{good}],"Keys":[],"keys":[{good}]}}"#),
        format!(r#"{{"keys":[{good}],"next":"a","next":"b"}}"#),
    ] {
        mp.set_jwks_body(Some(doc.clone()));
        let app = app(&mp);
        for _ in 0..2 {
            let r = call(&mp, &app, &a).await;
            assert_refused(&r, 503, "keys-unavailable");
            assert!(r.header("retry-after").is_some(), "{doc}");
        }
    }
}

#[tokio::test]
async fn metadata_with_a_repeated_member_is_refused() {
    let mp = fake().await;
    let a = mp.signing_key();
    let (issuer, jwks) = (mp.issuer(), mp.jwks_uri());

    // The twin: the same document, each member once.
    mp.set_metadata_body(Some(format!(r#"{{"issuer":"{issuer}","jwks_uri":"{jwks}"}}"#)));
    assert_through(&call(&mp, &app(&mp), &a).await);

    for doc in [
        // Read by the last value, each of these would load the real keys.
        format!(r#"{{"issuer":"{issuer}","jwks_uri":"https://elsewhere.example/jwks","jwks_uri":"{jwks}"}}"#),
        format!(r#"{{"issuer":"https://elsewhere.example/","issuer":"{issuer}","jwks_uri":"{jwks}"}}"#),
        format!(r#"{{"issuer":"{issuer}","jwks_uri":"{jwks}","jwks_uri":"{jwks}"}}"#),
        format!(r#"{{"issuer":"{issuer}","jwks_uri":"{jwks}","token_endpoint":"a","token_endpoint":"b"}}"#),
    ] {
        mp.set_metadata_body(Some(doc.clone()));
        let before = mp.jwks_requests();
        let r = call(&mp, &app(&mp), &a).await;
        assert_refused(&r, 503, "keys-unavailable");
        assert_eq!(mp.jwks_requests(), before, "no JWKS fetched from an ambiguous document: {doc}");
    }
}
