//! Layer 1 over real HTTP: FakeMaskinporten on 127.0.0.1:0 serves metadata and keys, tokens are
//! minted now, the layer sits on an axum router.

mod support;

use altinn_systemuser::maskinporten::MaskinportenToken;
use altinn_systemuser::maskinporten::{Algorithm, MaskinportenLayer, MaskinportenLayerBuilder};
use altinn_systemuser::reject::{Rejection, RejectionKind};
use altinn_systemuser::test_util::{EndpointMode, FakeMaskinporten, KeyRole, TestKey};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::{Reply, get_with_token, problem, send};
use uuid::Uuid;

const SCOPE: &str = "skatteetaten:kravogbetalinger";

/// FakeMaskinporten, with the keys this file's tests use generated in parallel up front.
async fn fake() -> FakeMaskinporten {
    TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Rogue, KeyRole::Rotation(0)]);
    FakeMaskinporten::start().await
}

fn builder(mp: &FakeMaskinporten) -> MaskinportenLayerBuilder {
    MaskinportenLayer::builder().issuer(mp.issuer()).require_scope(SCOPE)
}

async fn whoami(token: MaskinportenToken, headers: http::HeaderMap) -> axum::Json<serde_json::Value> {
    let su = token.system_user();
    axum::Json(json!({
        "issuer": token.issuer(),
        "scopes": token.scopes().collect::<Vec<_>>(),
        "client_id": token.client_id(),
        "client_amr": token.client_amr(),
        "consumer": token.consumer().map(|c| c.to_string()),
        "jti": token.jti(),
        "system_user_id": su.map(|s| s.id().to_string()),
        "system_user_org": su.map(|s| s.owner_org().to_string()),
        "system_id": su.map(|s| s.system_id().to_owned()),
        "external_ref": su.and_then(|s| s.external_ref().map(str::to_owned)),
        "authorization_sensitive": headers.get("authorization").map(|v| v.is_sensitive()),
        "debug": format!("{token:?}"),
    }))
}

fn router(layer: MaskinportenLayer) -> Router {
    Router::new().route("/whoami", get(whoami)).route_layer(layer)
}

async fn start() -> (FakeMaskinporten, Router) {
    let mp = fake().await;
    let layer = builder(&mp).build().unwrap();
    (mp, router(layer))
}

fn assert_rejected(r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), problem(slug));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

fn assert_invalid_token(r: &Reply, slug: &str) {
    assert_rejected(r, 401, slug);
    assert!(r.challenge().starts_with("Bearer error=\"invalid_token\""), "{}", r.challenge());
}

#[tokio::test]
async fn real_shaped_system_user_token_reaches_the_handler() {
    let (mp, app) = start().await;
    let su = Uuid::new_v4();
    let token = mp
        .system_user_token(su, "310702641")
        .scope(&format!("{SCOPE} altinn:systembruker.demo"))
        .sign();
    let r = get_with_token(&app, "/whoami", &token).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["issuer"], mp.issuer());
    assert_eq!(j["system_user_id"], su.to_string());
    assert_eq!(j["system_user_org"], "310702641");
    assert_eq!(j["system_id"], "991825827_smartcloud");
    assert!(j["external_ref"].is_string());
    assert_eq!(j["consumer"], "0192:991825827");
    assert_eq!(j["client_amr"], "private_key_jwt");
    assert_eq!(j["scopes"], json!([SCOPE, "altinn:systembruker.demo"]));
    assert_eq!(j["authorization_sensitive"], true);
    // Debug shows who, never the credential.
    let debug = j["debug"].as_str().unwrap();
    assert!(!debug.contains(&token), "{debug}");
    assert!(!debug.contains(token.split('.').nth(2).unwrap()));
}

#[tokio::test]
async fn plain_token_without_system_user_is_valid_for_layer_one() {
    let (mp, app) = start().await;
    let r = get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["system_user_id"], serde_json::Value::Null);
}

fn request(authorization: &[&str]) -> Request<Body> {
    let mut b = Request::get("/whoami");
    for value in authorization {
        b = b.header("authorization", *value);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn no_authorization_header_is_a_bare_challenge() {
    let (_mp, app) = start().await;
    // No error code (RFC 6750 3.1).
    let r = send(&app, request(&[])).await;
    assert_rejected(&r, 401, "missing-token");
    assert_eq!(r.challenge(), "Bearer");
}

#[tokio::test]
async fn another_scheme_presents_no_bearer_token() {
    let (_mp, app) = start().await;
    let r = send(&app, request(&["Basic dXNlcjpwYXNz"])).await;
    assert_rejected(&r, 401, "missing-token");
    assert_eq!(r.challenge(), "Bearer");
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    let (mp, app) = start().await;
    let good = mp.token().scope(SCOPE).sign();
    let r = send(&app, request(&[&format!("bEaReR {good}")])).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn two_authorization_headers_are_a_malformed_request() {
    let (mp, app) = start().await;
    let good = format!("Bearer {}", mp.token().scope(SCOPE).sign());
    let r = send(&app, request(&[&good, &good])).await;
    assert_rejected(&r, 400, "malformed-authorization");
    assert!(r.challenge().starts_with("Bearer error=\"invalid_request\""));
}

#[tokio::test]
async fn malformed_bearer_values_are_a_malformed_request() {
    let (mp, app) = start().await;
    let good = mp.token().scope(SCOPE).sign();
    // Bearer without a token, with two spaces, with characters outside b64token.
    for value in [
        "Bearer",
        "Bearer ",
        &format!("Bearer  {good}"),
        &format!("Bearer {good} x"),
        "Bearer a,b",
    ] {
        let r = send(&app, request(&[value])).await;
        assert_rejected(&r, 400, "malformed-authorization");
    }
}

#[tokio::test]
async fn token_shape_rules() {
    let (mp, app) = start().await;
    let good = mp.token().scope(SCOPE).sign();
    let parts: Vec<&str> = good.split('.').collect();
    let oversized = format!("{}.{}.{}", parts[0], "A".repeat(9 * 1024), parts[2]);
    for bad in [
        "opaque-token-from-the-old-tokeninfo-days".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}={}", good, ""),
        oversized,
    ] {
        let r = get_with_token(&app, "/whoami", &bad).await;
        assert_invalid_token(&r, "malformed-token");
    }
    assert_eq!(mp.jwks_requests(), 0, "malformed tokens are refused before any key is fetched");
}

/// FakeMaskinporten with keys that carry no `alg`, so that RS384 and RS512 tokens can be signed
/// by the same key, and a layer for it.
async fn start_without_key_alg() -> (FakeMaskinporten, Router) {
    let mp = fake().await;
    mp.set_jwks_key_alg(None);
    let app = router(builder(&mp).build().unwrap());
    (mp, app)
}

fn signed(b: altinn_systemuser::test_util::TokenBuilder) -> String {
    b.scope(SCOPE).sign()
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_are_refused() {
    let (mp, app) = start_without_key_alg().await;
    // The token's own alg is never trusted.
    for alg in ["none", "HS256", "ES256", "PS256", "rs256"] {
        let t = mp.token().scope(SCOPE).header("alg", json!(alg)).sign();
        assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unsupported-algorithm");
    }
}

#[tokio::test]
async fn a_header_without_alg_is_refused() {
    let (mp, app) = start_without_key_alg().await;
    let (_, p, sig) = split3(&mp.token().scope(SCOPE).sign());
    assert_invalid_token(
        &get_with_token(&app, "/whoami", &format!("e30.{p}.{sig}")).await,
        "unsupported-algorithm",
    );
}

#[tokio::test]
async fn alg_none_with_an_empty_signature_is_refused() {
    let (mp, app) = start_without_key_alg().await;
    let t = mp.token().scope(SCOPE).header("alg", json!("none")).sign();
    let stripped = format!("{}.", t.rsplit_once('.').unwrap().0);
    assert_eq!(get_with_token(&app, "/whoami", &stripped).await.status, 401);
}

#[tokio::test]
async fn key_and_content_header_members_are_refused() {
    let (mp, app) = start_without_key_alg().await;
    for member in ["jku", "jwk", "x5u", "x5c", "crit", "cty", "enc", "zip"] {
        let t = signed(mp.token().header(member, json!("x")));
        assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unsupported-token-header");
    }
}

#[tokio::test]
async fn only_jwt_types_are_accepted() {
    let (mp, app) = start_without_key_alg().await;
    for typ in ["JOSE", "application/json", "dpop+jwt"] {
        let t = signed(mp.token().header("typ", json!(typ)));
        assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unsupported-token-header");
    }
    for typ in ["JWT", "jwt", "at+jwt", "AT+JWT"] {
        let t = signed(mp.token().header("typ", json!(typ)));
        assert_eq!(get_with_token(&app, "/whoami", &t).await.status, 200, "typ {typ}");
    }
}

#[tokio::test]
async fn a_header_without_kid_is_refused() {
    let (mp, app) = start_without_key_alg().await;
    let t = signed(mp.token().remove_header("kid"));
    assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unsupported-token-header");
}

#[tokio::test]
async fn rs384_and_rs512_are_accepted_by_default() {
    let (mp, app) = start_without_key_alg().await;
    for alg in ["RS384", "RS512"] {
        let t = signed(mp.token().alg(alg));
        assert_eq!(get_with_token(&app, "/whoami", &t).await.status, 200, "{alg}");
    }
}

#[tokio::test]
async fn key_alg_must_match_header_alg() {
    // The fake publishes "alg":"RS256" on its key, as Maskinporten does.
    let (mp, app) = start().await;
    let t = mp.token().scope(SCOPE).alg("RS384").sign();
    assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "invalid-signature");
}

#[tokio::test]
async fn algorithm_allow_list_is_configurable() {
    let mp = fake().await;
    mp.set_jwks_key_alg(None);
    let app = router(builder(&mp).algorithms([Algorithm::RS512]).build().unwrap());
    let t = mp.token().scope(SCOPE).sign();
    assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unsupported-algorithm");
    let t = mp.token().scope(SCOPE).alg("RS512").sign();
    assert_eq!(get_with_token(&app, "/whoami", &t).await.status, 200);
}

#[tokio::test]
async fn a_payload_changed_after_signing_is_refused() {
    let (mp, app) = start().await;
    let t = mp.token().scope(SCOPE).sign();
    let other = mp.token().scope(SCOPE).claim("client_id", json!("evil")).sign();
    let (h, _, s) = split3(&t);
    let (_, p2, _) = split3(&other);
    assert_invalid_token(
        &get_with_token(&app, "/whoami", &format!("{h}.{p2}.{s}")).await,
        "invalid-signature",
    );
}

#[tokio::test]
async fn a_signature_by_an_unpublished_key_under_a_published_kid_is_refused() {
    let (mp, app) = start().await;
    let rogue = Arc::new(TestKey::for_role(KeyRole::Rogue).with_kid(mp.signing_key().kid()));
    let t = mp.token().scope(SCOPE).signed_by(rogue).sign();
    assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "invalid-signature");
}

#[tokio::test]
async fn a_header_alg_that_did_not_make_the_signature_is_refused() {
    let (mp, app) = start().await;
    // Header alg RS384 but signed with RS256 (header edited after signing would fail anyway).
    let t = mp.token().scope(SCOPE).sign();
    let (_, p, s) = split3(&t);
    let h384 = b64(&json!({"alg": "RS384", "kid": mp.signing_key().kid()}).to_string());
    assert_invalid_token(
        &get_with_token(&app, "/whoami", &format!("{h384}.{p}.{s}")).await,
        "invalid-signature",
    );
}

#[tokio::test]
async fn a_signature_of_the_wrong_length_is_refused() {
    let (mp, app) = start().await;
    // A signature that is not base64url of the right length.
    let t = mp.token().scope(SCOPE).sign();
    let (h, p, _) = split3(&t);
    assert_invalid_token(
        &get_with_token(&app, "/whoami", &format!("{h}.{p}.AAAA")).await,
        "invalid-signature",
    );
}

#[tokio::test]
async fn a_header_seen_before_still_gets_every_check() {
    // The layer reads a header it has seen on a verified token only once (the same issuer and
    // key write the same header each time); what follows it is checked in full every time.
    let (mp, app) = start().await;
    let first = mp.token().scope(SCOPE).sign();
    assert_eq!(get_with_token(&app, "/whoami", &first).await.status, 200);
    let (h, p, s) = split3(&first);
    // Another token with the very same header bytes: verified, and its own claims read.
    let second = mp.token().scope(SCOPE).claim("client_id", json!("second")).sign();
    assert_eq!(split3(&second).0, h, "the fake writes the same header each time");
    let r = get_with_token(&app, "/whoami", &second).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["client_id"], "second");
    // The remembered header with another payload, or another signature: refused.
    let (_, p2, _) = split3(&second);
    assert_invalid_token(
        &get_with_token(&app, "/whoami", &format!("{h}.{p2}.{s}")).await,
        "invalid-signature",
    );
    let (_, _, s2) = split3(&second);
    assert_invalid_token(
        &get_with_token(&app, "/whoami", &format!("{h}.{p}.{s2}")).await,
        "invalid-signature",
    );
    // A header one member away from the remembered one is read, and refused, on its own.
    let kid = mp.signing_key().kid().to_owned();
    for (header, slug) in [
        (
            json!({"alg": "RS256", "kid": kid, "typ": "JWT", "jku": "https://evil.example/"}),
            "unsupported-token-header",
        ),
        (json!({"alg": "none", "kid": kid, "typ": "JWT"}), "unsupported-algorithm"),
        (json!({"alg": "RS384", "kid": kid, "typ": "JWT"}), "invalid-signature"),
    ] {
        let forged = format!("{}.{p}.{s}", b64(&header.to_string()));
        assert_invalid_token(&get_with_token(&app, "/whoami", &forged).await, slug);
    }
    // And the first token still passes.
    assert_eq!(get_with_token(&app, "/whoami", &first).await.status, 200);
}

#[tokio::test]
async fn a_payload_that_is_not_canonical_base64url_is_malformed() {
    // With the key already cached, so that a payload the decoder cannot read is told from a
    // signature that does not match it: refused as malformed, before the signature.
    let (mp, app) = start().await;
    let good = mp.token().scope(SCOPE).sign();
    assert_eq!(get_with_token(&app, "/whoami", &good).await.status, 200);
    let fetched = mp.jwks_requests();
    let (h, p, s) = split3(&good);
    let one_too_many = format!("{p}{}", "A".repeat((5 - p.len() % 4) % 4));
    // "e31" would read as `{}` but sets the unused bits of its last character.
    for payload in [format!("{p}+"), format!("{p}/"), one_too_many, "e31".to_owned()] {
        let r = get_with_token(&app, "/whoami", &format!("{h}.{payload}.{s}")).await;
        assert_invalid_token(&r, "malformed-token");
    }
    assert_eq!(mp.jwks_requests(), fetched, "no key fetched for them");
}

fn split3(t: &str) -> (String, String, String) {
    let v: Vec<&str> = t.split('.').collect();
    (v[0].to_owned(), v[1].to_owned(), v[2].to_owned())
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn unknown_kid_is_refused_after_one_refetch() {
    let (mp, app) = start().await;
    assert_eq!(get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await.status, 200);
    let stranger = Arc::new(TestKey::for_role(KeyRole::Rogue).with_kid("not-published"));
    let t = mp.token().scope(SCOPE).signed_by(stranger).sign();
    assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unknown-signing-key");
    assert_eq!(mp.jwks_requests(), 2, "first fetch, then one refetch for the unknown kid");
}

#[tokio::test]
async fn bad_claims_are_refused_with_their_reason() {
    let (mp, app) = start().await;
    let now = SystemTime::now();
    let cases: Vec<(&str, altinn_systemuser::test_util::TokenBuilder)> = vec![
        ("wrong-issuer", mp.token().claim("iss", json!("https://maskinporten.no/"))),
        ("wrong-issuer", mp.token().claim("iss", json!(mp.issuer().trim_end_matches('/')))),
        ("wrong-issuer", mp.token().remove_claim("iss")),
        ("invalid-claims", mp.token().claim("iss", json!(42))),
        ("invalid-claims", mp.token().claim("iss", json!([mp.issuer()]))),
        ("invalid-claims", mp.token().remove_claim("exp")),
        ("invalid-claims", mp.token().remove_claim("iat")),
        ("invalid-claims", mp.token().claim("exp", json!("tomorrow"))),
        ("invalid-claims", mp.token().claim("token_type", json!("DPoP"))),
        (
            "invalid-claims",
            mp.token()
                .claim("consumer", json!({"authority": "iso6523-actorid-upis", "ID": "0192:991825828"})),
        ),
        (
            "invalid-claims",
            mp.token().claim(
                "consumer",
                json!({"authority": "iso6523-actorid-upis", "ID": "0192:0192:991825827"}),
            ),
        ),
        (
            "invalid-system-user",
            mp.system_user_token(Uuid::new_v4(), "310702641").claim(
                "authorization_details",
                json!([{"type": "urn:altinn:systemuser", "systemuser_id": [Uuid::new_v4()],
                        "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:0192:310702641"}, "system_id": "x"}]),
            ),
        ),
        (
            "token-expired",
            mp.token()
                .issued_at(now - Duration::from_secs(300))
                .lifetime(Duration::from_secs(120)),
        ),
        ("token-not-yet-valid", mp.token().issued_at(now + Duration::from_secs(120))),
        ("token-not-yet-valid", mp.token().claim("nbf", json!(unix(now) + 120))),
        ("wrong-audience", mp.token().claim("aud", json!("https://another.api/"))),
        (
            "wrong-audience",
            mp.token().claim("aud", json!(["unspecified", "https://another.api/"])),
        ),
        (
            "invalid-system-user",
            mp.system_user_token(Uuid::new_v4(), "310702641").claim(
                "authorization_details",
                json!([{"type": "urn:altinn:systemuser", "systemuser_id": ["not-a-uuid"],
                        "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:310702641"}, "system_id": "x"}]),
            ),
        ),
        (
            "invalid-system-user",
            mp.system_user_token(Uuid::new_v4(), "310702641").claim(
                "authorization_details",
                json!({"type": "urn:altinn:systemuser", "systemuser_id": [Uuid::new_v4()],
                       "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:310702640"}, "system_id": "x"}),
            ),
        ),
    ];
    for (slug, b) in cases {
        let r = get_with_token(&app, "/whoami", &b.scope(SCOPE).sign()).await;
        assert_invalid_token(&r, slug);
    }
}

#[tokio::test]
async fn scope_must_be_one_space_separated_string() {
    let (mp, app) = start().await;
    // scope must be one space-separated string.
    let r = get_with_token(&app, "/whoami", &mp.token().claim("scope", json!([SCOPE])).sign()).await;
    assert_invalid_token(&r, "invalid-claims");
}

#[tokio::test]
async fn accepted_claim_variations() {
    let (mp, app) = start().await;
    let now = SystemTime::now();
    // Accepted variations.
    for b in [
        mp.token().claim("aud", json!("unspecified")),
        mp.token().claim("aud", json!(["unspecified"])),
        mp.token()
            .issued_at(now - Duration::from_secs(125))
            .lifetime(Duration::from_secs(120)), // within 10 s leeway
        mp.token().claim("nbf", json!(unix(now) - 1)),
        mp.token()
            .claim("authorization_details", json!([{"type": "urn:altinn:consent", "id": "x"}])),
        mp.token().remove_claim("token_type"),
    ] {
        let r = get_with_token(&app, "/whoami", &b.scope(SCOPE).sign()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn duplicated_claims_are_refused() {
    let (mp, app) = start().await;
    let now = unix(SystemTime::now());
    let iss = mp.issuer();
    for payload in [
        format!(
            r#"{{"iss":"{iss}","iss":"https://evil/","exp":{},"iat":{now},"scope":"{SCOPE}"}}"#,
            now + 60
        ),
        format!(r#"{{"iss":"{iss}","exp":{},"iat":{now},"scope":"x","scope":"{SCOPE}"}}"#, now + 60),
        format!(
            r#"{{"iss":"{iss}","exp":{},"exp":{},"iat":{now},"scope":"{SCOPE}"}}"#,
            now + 60,
            now + 99999
        ),
        format!(
            r#"{{"iss":"{iss}","exp":{},"iat":{now},"scope":"{SCOPE}","foo":1,"foo":2}}"#,
            now + 60
        ),
    ] {
        let t = mp.token().raw_payload(&payload).sign();
        assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "invalid-claims");
    }
    let fine = format!(r#"{{"iss":"{iss}","exp":{},"iat":{now},"scope":"{SCOPE}"}}"#, now + 60);
    assert_eq!(
        get_with_token(&app, "/whoami", &mp.token().raw_payload(&fine).sign()).await.status,
        200
    );
}

/// A layer for `mp` that requires the audience `https://api.skatteetaten.no/` and tokens that
/// live at most 120 s.
fn with_audience(mp: &FakeMaskinporten) -> Router {
    router(
        builder(mp)
            .audience("https://api.skatteetaten.no/")
            .max_token_lifetime(Duration::from_secs(120))
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_configured_audience_is_required() {
    let mp = fake().await;
    let app = with_audience(&mp);
    let aud = "https://api.skatteetaten.no/";
    for b in [mp.token().claim("aud", json!(aud)), mp.token().claim("aud", json!(["x", aud]))] {
        assert_eq!(get_with_token(&app, "/whoami", &b.scope(SCOPE).sign()).await.status, 200);
    }
    for b in [
        mp.token(),
        mp.token().claim("aud", json!("unspecified")),
        mp.token().claim("aud", json!("https://api.skatteetaten.no")),
    ] {
        assert_invalid_token(&get_with_token(&app, "/whoami", &b.scope(SCOPE).sign()).await, "wrong-audience");
    }
}

#[tokio::test]
async fn a_token_living_longer_than_configured_is_refused() {
    let mp = fake().await;
    let app = with_audience(&mp);
    let long = mp
        .token()
        .claim("aud", json!("https://api.skatteetaten.no/"))
        .lifetime(Duration::from_secs(3600))
        .scope(SCOPE)
        .sign();
    assert_invalid_token(&get_with_token(&app, "/whoami", &long).await, "token-lifetime-too-long");
}

#[tokio::test]
async fn every_required_scope_is_needed() {
    let mp = fake().await;
    let all_of = router(builder(&mp).require_scope("altinn:extra").build().unwrap());
    let r = get_with_token(&all_of, "/whoami", &mp.token().scope(SCOPE).sign()).await;
    assert_rejected(&r, 403, "insufficient-scope");
    assert_eq!(
        r.challenge(),
        format!("Bearer error=\"insufficient_scope\", scope=\"{SCOPE} altinn:extra\"")
    );
    assert_eq!(
        get_with_token(&all_of, "/whoami", &mp.token().scope(&format!("altinn:extra {SCOPE}")).sign())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn scopes_match_exactly() {
    let mp = fake().await;
    let all_of = router(builder(&mp).require_scope("altinn:extra").build().unwrap());
    // Exact element match: no substrings, prefixes or case folding.
    for scope in [
        &format!("{SCOPE}x altinn:extra")[..],
        "skatteetaten:kravogbetalinger/read altinn:extra",
        "SKATTEETATEN:KRAVOGBETALINGER altinn:extra",
        "",
    ] {
        let r = get_with_token(&all_of, "/whoami", &mp.token().scope(scope).sign()).await;
        assert_eq!(r.status, 403, "{scope}");
    }
}

#[tokio::test]
async fn any_of_several_scopes_is_enough() {
    let mp = fake().await;
    let any_of = router(
        MaskinportenLayer::builder()
            .issuer(mp.issuer())
            .require_any_scope(["a:one", "a:two"])
            .build()
            .unwrap(),
    );
    assert_eq!(
        get_with_token(&any_of, "/whoami", &mp.token().scope("x a:two").sign()).await.status,
        200
    );
    assert_eq!(
        get_with_token(&any_of, "/whoami", &mp.token().scope("a:three").sign()).await.status,
        403
    );
}

#[test]
fn builder_refuses_unsafe_configuration() {
    let b = || MaskinportenLayer::builder().require_scope(SCOPE);
    assert!(MaskinportenLayer::builder().test_environment().build().is_err(), "no scope");
    assert!(b().build().is_err(), "no issuer");
    assert!(
        b().issuer("http://maskinporten.no/").build().is_err(),
        "plain http to a remote host"
    );
    assert!(b().issuer("https://maskinporten.no").build().is_err(), "no trailing slash");
    assert!(b().issuer("http://127.0.0.1:1/").build().is_ok());
    assert!(b().production().leeway(Duration::from_secs(61)).build().is_err());
    assert!(b().production().algorithms([]).build().is_err());
    assert!(b().production().require_scope("two words").build().is_err());
    assert!(MaskinportenLayer::builder().production().allow_any_scope().build().is_ok());
    let layer = b().production().build().unwrap();
    assert!(!layer.keys().is_ready(), "build does no I/O");
}

#[tokio::test]
async fn rejection_is_in_the_response_extensions_and_replaceable() {
    let mp = fake().await;
    let layer = builder(&mp)
        .rejection_responder(|r: &Rejection, _h: &http::HeaderMap| {
            let mut res = http::Response::new(bytes::Bytes::from_static(b"nope"));
            *res.status_mut() = r.kind().status();
            res
        })
        .build()
        .unwrap();
    let app = router(layer);
    let res = tower::ServiceExt::oneshot(app, Request::get("/whoami").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.extensions().get::<Rejection>().map(Rejection::kind),
        Some(RejectionKind::MissingToken)
    );
    let body = support::read(res).await;
    assert_eq!(&body.body[..], b"nope");
}

/// The README's advice: `route_layer`, so that a request for a path no route matches is a 404
/// (the layer never sees it) while a known path is guarded; `.layer` would guard the fallback
/// too and turn every unknown path into a 401.
#[tokio::test]
async fn route_layer_keeps_404_and_layer_does_not() {
    let mp = fake().await;
    let routes = || Router::new().route("/whoami", get(whoami));
    let no_token = |path: &str| Request::get(path).body(Body::empty()).unwrap();

    let route_layered = routes().route_layer(builder(&mp).build().unwrap());
    assert_rejected(&send(&route_layered, no_token("/whoami")).await, 401, "missing-token");
    let r = send(&route_layered, no_token("/nope")).await;
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));

    let layered = routes().layer(builder(&mp).build().unwrap());
    assert_rejected(&send(&layered, no_token("/whoami")).await, 401, "missing-token");
    assert_rejected(&send(&layered, no_token("/nope")).await, 401, "missing-token");
}

fn grpc_request(path: &str, token: Option<String>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/grpc");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

/// `POST /whoami` behind the layer, for gRPC requests.
fn grpc_router(mp: &FakeMaskinporten) -> Router {
    Router::new()
        .route("/whoami", axum::routing::post(|| async { "ok" }))
        .route_layer(builder(mp).build().unwrap())
}

#[tokio::test]
async fn grpc_without_a_token_is_unauthenticated() {
    let mp = fake().await;
    let r = send(&grpc_router(&mp), grpc_request("/whoami", None)).await;
    assert_eq!((r.status, r.header("grpc-status")), (200, Some("16")));
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn grpc_with_too_little_scope_is_permission_denied() {
    let mp = fake().await;
    let r = send(&grpc_router(&mp), grpc_request("/whoami", Some(mp.token().scope("other").sign()))).await;
    assert_eq!((r.status, r.header("grpc-status")), (200, Some("7")));
}

#[tokio::test]
async fn grpc_with_a_malformed_token_is_unauthenticated_with_a_message() {
    let mp = fake().await;
    let r = send(&grpc_router(&mp), grpc_request("/whoami", Some("garbage".into()))).await;
    assert_eq!(r.header("grpc-status"), Some("16"));
    assert!(r.header("grpc-message").is_some());
}

#[tokio::test]
async fn grpc_without_keys_is_unavailable() {
    let mp = fake().await;
    mp.set_jwks_mode(EndpointMode::Status(500));
    let r = send(&grpc_router(&mp), grpc_request("/whoami", Some(mp.token().scope(SCOPE).sign()))).await;
    assert_eq!((r.status, r.header("grpc-status")), (200, Some("14")));
}

// ---- the key store ----

#[tokio::test]
async fn key_rotation() {
    let (mp, app) = start().await;
    assert_eq!(get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await.status, 200);
    assert_eq!(mp.jwks_requests(), 1);
    let old_kid = mp.signing_key().kid().to_owned();
    let old_token = mp.token().scope(SCOPE).sign();
    mp.rotate_key();
    // A token signed by the new key is accepted after exactly one refetch.
    let r = get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await;
    assert_eq!(r.status, 200);
    assert_eq!(mp.jwks_requests(), 2);
    // The old key is still published: old tokens still work.
    assert_eq!(get_with_token(&app, "/whoami", &old_token).await.status, 200);
    // Removed from the JWKS: a layer that fetches now refuses tokens of the old key.
    mp.remove_key(&old_kid);
    let fresh = router(builder(&mp).build().unwrap());
    assert_invalid_token(&get_with_token(&fresh, "/whoami", &old_token).await, "unknown-signing-key");
}

#[tokio::test]
async fn removed_key_invalidates_cached_tokens() {
    let mp = fake().await;
    let layer = builder(&mp).build().unwrap();
    let app = router(layer.clone());
    let old_kid = mp.signing_key().kid().to_owned();
    let token = mp.token().scope(SCOPE).sign();
    assert_eq!(get_with_token(&app, "/whoami", &token).await.status, 200);
    assert_eq!(
        get_with_token(&app, "/whoami", &token).await.status,
        200,
        "served from the token cache"
    );
    mp.rotate_key();
    mp.remove_key(&old_kid);
    layer.keys().refresh().await.unwrap();
    assert_invalid_token(&get_with_token(&app, "/whoami", &token).await, "unknown-signing-key");
}

#[tokio::test]
async fn cached_token_is_refused_once_its_exp_has_passed() {
    let mp = fake().await;
    let layer = builder(&mp).leeway(Duration::ZERO).build().unwrap();
    // Keys first, so that the requests below take milliseconds.
    layer.keys().ready().await.unwrap();
    let app = router(layer);
    // `exp` is whole seconds and is compared with `SystemTime`, so this sleeps for real: until
    // the first whole second at least 300 ms from now.
    let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(unix(SystemTime::now() + Duration::from_millis(300)) as u64 + 1);
    let token = mp.token().scope(SCOPE).expires_at(exp).sign();
    assert_eq!(get_with_token(&app, "/whoami", &token).await.status, 200);
    assert_eq!(
        get_with_token(&app, "/whoami", &token).await.status,
        200,
        "served from the token cache"
    );
    let wait = exp.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    // The same bytes, cached a moment ago, are refused: the cache does not extend a token's life.
    assert_invalid_token(&get_with_token(&app, "/whoami", &token).await, "token-expired");
}

#[tokio::test]
async fn unknown_kid_flood_does_not_storm_the_jwks() {
    let (mp, app) = start().await;
    assert_eq!(get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await.status, 200);
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let t = mp.token().scope(SCOPE).kid(&format!("random-{i}-{}", Uuid::new_v4())).sign();
        let app = app.clone();
        tasks.push(tokio::spawn(async move { get_with_token(&app, "/whoami", &t).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    assert!(mp.jwks_requests() <= 2, "{} JWKS fetches", mp.jwks_requests());
    assert_eq!(mp.metadata_requests(), 1);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let (mp, app) = start().await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let t = mp.token().scope(SCOPE).sign();
        let app = app.clone();
        tasks.push(tokio::spawn(async move { get_with_token(&app, "/whoami", &t).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(mp.metadata_requests(), 1);
    assert_eq!(mp.jwks_requests(), 1);
}

#[tokio::test]
async fn jwks_outage_after_warm_up_keeps_serving() {
    let mp = fake().await;
    // Keys expire at once, so every request wants a refresh; the last good keys must serve.
    let layer = builder(&mp)
        .jwks_ttl(Duration::from_millis(1))
        .jwks_ttl_bounds(Duration::ZERO, Duration::from_secs(60))
        .jwks_retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build()
        .unwrap();
    let app = router(layer.clone());
    layer.keys().ready().await.unwrap();
    for mode in [
        EndpointMode::Status(500),
        EndpointMode::Garbage,
        EndpointMode::Empty,
        EndpointMode::Oversized,
    ] {
        mp.set_jwks_mode(mode);
        assert!(layer.keys().refresh().await.is_err());
        for _ in 0..5 {
            let r = get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await;
            assert_eq!(r.status, 200);
        }
        assert!(layer.keys().is_ready());
    }
}

#[tokio::test]
async fn no_keys_ever_is_503_never_401_never_through() {
    let mp = fake().await;
    mp.set_jwks_mode(EndpointMode::Status(503));
    let app = router(builder(&mp).build().unwrap());
    for _ in 0..3 {
        let r = get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await;
        assert_rejected(&r, 503, "keys-unavailable");
        assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1));
        assert!(r.header("www-authenticate").is_none());
    }
}

#[tokio::test]
async fn a_hanging_jwks_is_bounded_by_the_fetch_timeout() {
    let hang = fake().await;
    hang.set_jwks_mode(EndpointMode::Hang);
    let app = router(
        builder(&hang)
            .jwks_timeouts(Duration::from_millis(200), Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let r = get_with_token(&app, "/whoami", &hang.token().scope(SCOPE).sign()).await;
    assert_rejected(&r, 503, "keys-unavailable");
}

#[tokio::test]
async fn discovery_issuer_must_match() {
    let mp = fake().await;
    mp.set_metadata_issuer(Some("https://maskinporten.no/".into()));
    let layer = builder(&mp).build().unwrap();
    assert!(layer.keys().ready().await.is_err());
    let r = get_with_token(&router(layer), "/whoami", &mp.token().scope(SCOPE).sign()).await;
    assert_rejected(&r, 503, "keys-unavailable");
    assert_eq!(mp.jwks_requests(), 0);
}

#[tokio::test]
async fn configured_jwks_uri_skips_discovery() {
    let mp = fake().await;
    let layer = builder(&mp).jwks_uri(mp.jwks_uri()).build().unwrap();
    layer.keys().ready().await.unwrap();
    assert!(layer.keys().is_ready());
    assert_eq!(
        get_with_token(&router(layer), "/whoami", &mp.token().scope(SCOPE).sign())
            .await
            .status,
        200
    );
    assert_eq!(mp.metadata_requests(), 0);
}

#[tokio::test]
async fn weak_keys_in_the_jwks_are_skipped() {
    let mp = fake().await;
    let weak = TestKey::for_role(KeyRole::Rogue).with_kid("enc-key");
    let mut enc = weak.public_jwk();
    enc["use"] = json!("enc");
    let mut hs = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
    hs["alg"] = json!("HS256");
    mp.set_extra_jwks(vec![
        enc,
        hs,
        json!("not an object"),
        json!({"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}),
    ]);
    let app = router(builder(&mp).build().unwrap());
    assert_eq!(get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await.status, 200);
    let t = mp.token().scope(SCOPE).signed_by(Arc::new(weak)).sign();
    assert_invalid_token(&get_with_token(&app, "/whoami", &t).await, "unknown-signing-key");
    // An HMAC token whose kid names the oct key: never accepted.
    let t = mp.token().scope(SCOPE).header("alg", json!("HS256")).kid("hmac").sign();
    assert_eq!(get_with_token(&app, "/whoami", &t).await.status, 401);
}

#[tokio::test]
async fn jwks_cache_control_is_honoured_within_bounds() {
    let mp = fake().await;
    mp.set_jwks_cache_control(Some("public, max-age=3600".into()));
    let app = router(builder(&mp).build().unwrap());
    for _ in 0..20 {
        assert_eq!(get_with_token(&app, "/whoami", &mp.token().scope(SCOPE).sign()).await.status, 200);
    }
    assert_eq!(mp.jwks_requests(), 1);
}

#[tokio::test]
async fn works_over_real_http() {
    let (mp, app) = start().await;
    let base = support::serve(app).await;
    let client = reqwest::Client::new();
    let t = mp.system_user_token(Uuid::new_v4(), "310702641").scope(SCOPE).sign();
    let r = client.get(format!("{base}/whoami")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/whoami")).bearer_auth("x.y.z").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}
