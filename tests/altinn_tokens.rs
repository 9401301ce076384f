//! Altinn-issued system-user tokens: a second trusted issuer with its own keys and rules, over
//! real HTTP (FakeMaskinporten and FakeAltinn on loopback; FakeAltinn publishes OpenID Connect
//! discovery and the JWKS of its signing key, and mints tokens of the exchange's shape).

mod support;

use altinn_systemuser::maskinporten::{AltinnTokens, MaskinportenLayer, MaskinportenLayerBuilder, TokenIssuer};
use altinn_systemuser::readiness::Readiness;
use altinn_systemuser::stack::AuthLayer;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::test_util::{EndpointMode, KeyRole, TestKey, TokenBuilder};
use altinn_systemuser::{ConfigErrorKind, maskinporten};
use axum::Router;
use axum::routing::get;
use serde_json::json;
use std::time::Duration;
use support::{API_SCOPE, Fakes, OWNER_ORG, RESOURCE, Reply, get_with_token, problem};
use uuid::Uuid;

fn layer_builder(fakes: &Fakes) -> MaskinportenLayerBuilder {
    MaskinportenLayer::builder()
        .issuer(fakes.mp.issuer())
        .require_scope(API_SCOPE)
        .altinn_tokens(AltinnTokens::platform(fakes.altinn.platform_url()))
}

async fn whoami(su: SystemUser) -> String {
    format!(
        "{} {} {}",
        su.token_issuer(),
        su.id(),
        su.party().org_number().map(|o| o.to_string()).unwrap_or_default()
    )
}

/// Both layers (one configuration for both token kinds) in front of `/whoami`.
fn app(fakes: &Fakes, layer: MaskinportenLayer) -> Router {
    let system_user = SystemUserLayer::builder().pdp(fakes.pdp()).resource(RESOURCE).build().unwrap();
    Router::new()
        .route("/whoami", get(whoami))
        .route_layer(AuthLayer::new(layer, system_user))
}

fn altinn_token(fakes: &Fakes, su: Uuid) -> TokenBuilder {
    fakes.altinn.system_user_token(su, OWNER_ORG).scope(API_SCOPE)
}

fn assert_refused(r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), problem(slug), "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn an_altinn_token_is_accepted_end_to_end_and_the_pdp_asked_about_the_same_system_user() {
    let fakes = Fakes::start().await;
    let app = app(&fakes, layer_builder(&fakes).build().unwrap());
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let r = get_with_token(&app, "/whoami", &altinn_token(&fakes, su).sign()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(String::from_utf8_lossy(&r.body), format!("altinn {su} {OWNER_ORG}"));
    let asked = fakes.altinn.pdp_requests();
    assert_eq!(asked.len(), 1);
    assert!(String::from_utf8_lossy(&asked[0].body).contains(&su.to_string()));
    // A Maskinporten token for the same system user: the same decision, from the cache.
    let r = get_with_token(&app, "/whoami", &fakes.system_user_token(su)).await;
    assert_eq!(r.status, 200);
    assert_eq!(String::from_utf8_lossy(&r.body), format!("maskinporten {su} {OWNER_ORG}"));
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
}

#[tokio::test]
async fn without_the_altinn_profile_altinn_tokens_are_refused() {
    let fakes = Fakes::start().await;
    let app = app(&fakes, fakes.maskinporten_layer());
    let r = get_with_token(&app, "/whoami", &altinn_token(&fakes, Uuid::new_v4()).sign()).await;
    assert_refused(&r, 401, "wrong-issuer");
    assert_eq!(fakes.altinn.openid_requests(), 0, "no Altinn keys fetched");
}

#[tokio::test]
async fn a_key_of_one_issuer_never_verifies_a_token_naming_the_other() {
    let fakes = Fakes::start().await;
    let layer = layer_builder(&fakes).build().unwrap();
    layer.keys().ready().await.unwrap();
    layer.altinn_keys().unwrap().ready().await.unwrap();
    let app = app(&fakes, layer);
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    // Signed by Maskinporten's key, naming Altinn's issuer: that kid is not Altinn's.
    let forged = fakes
        .system_user_token_builder(su)
        .claim("iss", json!(fakes.altinn.token_issuer()))
        .sign();
    assert_refused(&get_with_token(&app, "/whoami", &forged).await, 401, "unknown-signing-key");
    // Signed by Altinn's key, naming Maskinporten's issuer.
    let forged = altinn_token(&fakes, su).claim("iss", json!(fakes.mp.issuer())).sign();
    assert_refused(&get_with_token(&app, "/whoami", &forged).await, 401, "unknown-signing-key");
    // Altinn's key under Maskinporten's kid, naming Maskinporten: the kid is known there, the
    // signature is not Maskinporten's.
    let forged = altinn_token(&fakes, su)
        .claim("iss", json!(fakes.mp.issuer()))
        .kid(fakes.mp.signing_key().kid())
        .sign();
    assert_refused(&get_with_token(&app, "/whoami", &forged).await, 401, "invalid-signature");
    // Maskinporten's key under Altinn's kid, naming Altinn.
    let forged = fakes
        .system_user_token_builder(su)
        .claim("iss", json!(fakes.altinn.token_issuer()))
        .kid(fakes.altinn.signing_key().kid())
        .sign();
    assert_refused(&get_with_token(&app, "/whoami", &forged).await, 401, "invalid-signature");
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn an_issuer_outside_the_set_costs_no_key_fetch() {
    let fakes = Fakes::start().await;
    for layer in [fakes.maskinporten_layer(), layer_builder(&fakes).build().unwrap()] {
        let app = app(&fakes, layer);
        let (jwks, openid) = (
            fakes.mp.jwks_requests() + fakes.mp.metadata_requests(),
            fakes.altinn.openid_requests(),
        );
        let token = fakes
            .system_user_token_builder(Uuid::new_v4())
            .claim("iss", json!("https://evil.example/"))
            .kid("a-kid-nobody-has")
            .sign();
        assert_refused(&get_with_token(&app, "/whoami", &token).await, 401, "wrong-issuer");
        let no_iss = fakes
            .system_user_token_builder(Uuid::new_v4())
            .remove_claim("iss")
            .kid("a-kid-nobody-has")
            .sign();
        assert_refused(&get_with_token(&app, "/whoami", &no_iss).await, 401, "wrong-issuer");
        assert_eq!(
            (
                fakes.mp.jwks_requests() + fakes.mp.metadata_requests(),
                fakes.altinn.openid_requests()
            ),
            (jwks, openid),
            "no key fetched"
        );
    }
}

#[tokio::test]
async fn a_repeated_iss_is_refused_before_any_key_fetch() {
    let fakes = Fakes::start().await;
    let app = app(&fakes, layer_builder(&fakes).build().unwrap());
    let issuer = fakes.altinn.token_issuer();
    let payload = format!(r#"{{"iss":"{issuer}","iss":"{}","exp":{}}}"#, fakes.mp.issuer(), support_now() + 60);
    let token = altinn_token(&fakes, Uuid::new_v4())
        .raw_payload(&payload)
        .kid("a-kid-nobody-has")
        .sign();
    assert_refused(&get_with_token(&app, "/whoami", &token).await, 401, "invalid-claims");
    assert_eq!(fakes.altinn.openid_requests(), 0);
}

fn support_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn one_issuers_keys_down_while_the_other_keeps_serving() {
    let fakes = Fakes::start().await;
    fakes.altinn.set_openid_mode(EndpointMode::Status(503));
    let app1 = app(&fakes, layer_builder(&fakes).build().unwrap());
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let r = get_with_token(&app1, "/whoami", &altinn_token(&fakes, su).sign()).await;
    assert_refused(&r, 503, "keys-unavailable");
    assert!(r.header("retry-after").is_some());
    assert_eq!(get_with_token(&app1, "/whoami", &fakes.system_user_token(su)).await.status, 200);

    // The reverse: Maskinporten's keys down, Altinn's up.
    fakes.altinn.set_openid_mode(EndpointMode::Normal);
    fakes.mp.set_jwks_mode(EndpointMode::Status(503));
    let layer = layer_builder(&fakes).build().unwrap();
    let readiness = Readiness::builder().layer_keys(&layer).build();
    let app2 = app(&fakes, layer);
    assert_eq!(get_with_token(&app2, "/whoami", &altinn_token(&fakes, su).sign()).await.status, 200);
    assert_refused(
        &get_with_token(&app2, "/whoami", &fakes.system_user_token(su)).await,
        503,
        "keys-unavailable",
    );
    // Readiness names the issuer whose keys are missing.
    let report = readiness.check().await.to_json();
    assert_eq!(report["checks"]["altinn_keys"], "ok");
    assert!(report["checks"]["maskinporten_keys"].as_str().unwrap().contains("503"), "{report}");
}

#[tokio::test]
async fn altinn_claims_are_enforced() {
    let fakes = Fakes::start().await;
    let app = app(&fakes, layer_builder(&fakes).build().unwrap());
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let t = || altinn_token(&fakes, su);
    let now = support_now();
    let cases: Vec<(&str, TokenBuilder)> = vec![
        ("invalid-claims", t().remove_claim("nbf")),
        ("token-not-yet-valid", t().claim("nbf", json!(now + 600))),
        ("invalid-claims", t().claim("urn:altinn:authenticatemethod", json!("idporten"))),
        ("invalid-claims", t().remove_claim("urn:altinn:authenticatemethod")),
        ("invalid-claims", t().claim("urn:altinn:authlevel", json!(2))),
        ("invalid-claims", t().claim("urn:altinn:authlevel", json!(4))),
        ("invalid-claims", t().claim("urn:altinn:authlevel", json!("3"))),
        ("invalid-claims", t().remove_claim("urn:altinn:authlevel")),
        ("invalid-claims", t().claim("urn:altinn:orgNumber", json!("923609016"))),
        ("invalid-claims", t().remove_claim("urn:altinn:orgNumber")),
        ("invalid-claims", t().remove_claim("consumer")),
        (
            "invalid-system-user",
            t().claim("authorization_details", json!({"type": "urn:altinn:systemuser"})),
        ),
        ("invalid-claims", t().claim("authorization_details", json!("urn:altinn:systemuser"))),
        (
            "token-expired",
            t().claim("exp", json!(now - 120))
                .claim("iat", json!(now - 1900))
                .claim("nbf", json!(now - 1900)),
        ),
        (
            "insufficient-scope",
            fakes.altinn.system_user_token(su, OWNER_ORG).scope("another:scope"),
        ),
    ];
    for (slug, builder) in cases {
        let r = get_with_token(&app, "/whoami", &builder.sign()).await;
        let status = if slug == "insufficient-scope" { 403 } else { 401 };
        assert_refused(&r, status, slug);
    }
    // The shape of the real TT02 token (authorization_details one object, x5t in the header)
    // passes; an array of entries does too (Altinn's test tools write it so).
    assert_eq!(get_with_token(&app, "/whoami", &t().sign()).await.status, 200);
    let array = t().claim(
        "authorization_details",
        json!([{"type": "urn:altinn:systemuser", "systemuser_id": [su], "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": format!("0192:{OWNER_ORG}")}, "system_id": "x"}]),
    );
    assert_eq!(get_with_token(&app, "/whoami", &array.sign()).await.status, 200);
    assert_eq!(fakes.altinn.pdp_request_count(), 1, "no refused token reached the PDP");
}

#[tokio::test]
async fn header_attacks_are_refused_for_altinn_tokens_too() {
    let fakes = Fakes::start().await;
    TestKey::pregenerate(&[KeyRole::Rogue]);
    let app = app(&fakes, layer_builder(&fakes).build().unwrap());
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let t = || altinn_token(&fakes, su);
    let altinn_pem = fakes.altinn.signing_key().public_key_pem();
    let cases: Vec<(&str, TokenBuilder)> = vec![
        ("unsupported-algorithm", t().header("alg", json!("none"))),
        ("unsupported-algorithm", t().alg("HS256")),
        ("unsupported-algorithm", t().alg("PS256")),
        ("unsupported-token-header", t().header("jku", json!("https://evil.example/jwks"))),
        (
            "unsupported-token-header",
            t().header("jwk", fakes.altinn.signing_key().public_jwk()),
        ),
        ("unsupported-token-header", t().header("x5c", json!(["MIIB"]))),
        ("unsupported-token-header", t().header("crit", json!(["exp"]))),
        ("unsupported-token-header", t().remove_header("kid")),
        (
            "invalid-signature",
            t().signed_by(TestKey::for_role(KeyRole::Rogue).with_kid(fakes.altinn.signing_key().kid())),
        ),
    ];
    for (slug, builder) in cases {
        assert_refused(&get_with_token(&app, "/whoami", &builder.sign()).await, 401, slug);
    }
    // HMAC keyed with Altinn's public key (algorithm confusion) is refused like any HS256.
    assert!(!altinn_pem.is_empty());
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn each_issuer_has_its_own_audience_and_lifetime_rule() {
    let fakes = Fakes::start().await;
    let base = || {
        MaskinportenLayer::builder()
            .issuer(fakes.mp.issuer())
            .require_scope(API_SCOPE)
            .audience("https://api.example.no/")
            .max_token_lifetime(Duration::from_secs(300))
    };
    // Stating nothing for Altinn tokens is an error, not a silent default.
    let e = base()
        .altinn_tokens(AltinnTokens::platform(fakes.altinn.platform_url()).any_lifetime())
        .build()
        .unwrap_err();
    assert_eq!((e.field(), e.kind()), ("altinn_tokens", ConfigErrorKind::Missing), "{e}");
    let e = base()
        .altinn_tokens(AltinnTokens::platform(fakes.altinn.platform_url()).without_audience())
        .build()
        .unwrap_err();
    assert_eq!((e.field(), e.kind()), ("altinn_tokens", ConfigErrorKind::Missing), "{e}");

    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    // Altinn tokens without an audience, at most 10 minutes: a 30-minute token is refused.
    let ten_minutes = base()
        .altinn_tokens(
            AltinnTokens::platform(fakes.altinn.platform_url())
                .without_audience()
                .max_token_lifetime(Duration::from_secs(600)),
        )
        .build()
        .unwrap();
    let app1 = app(&fakes, ten_minutes);
    assert_refused(
        &get_with_token(&app1, "/whoami", &altinn_token(&fakes, su).sign()).await,
        401,
        "token-lifetime-too-long",
    );
    let now = support_now();
    let short = altinn_token(&fakes, su).claim("exp", json!(now + 300));
    assert_eq!(get_with_token(&app1, "/whoami", &short.sign()).await.status, 200);
    // Maskinporten tokens keep their own rules: an audience is required.
    assert_refused(
        &get_with_token(&app1, "/whoami", &fakes.system_user_token(su)).await,
        401,
        "wrong-audience",
    );

    // Altinn tokens must name an audience they do not carry: all refused.
    let with_audience = base()
        .altinn_tokens(
            AltinnTokens::platform(fakes.altinn.platform_url())
                .require_audience("https://api.example.no/")
                .any_lifetime(),
        )
        .build()
        .unwrap();
    let app2 = app(&fakes, with_audience);
    assert_refused(
        &get_with_token(&app2, "/whoami", &altinn_token(&fakes, su).sign()).await,
        401,
        "wrong-audience",
    );
}

#[test]
fn presets_pair_the_environments() {
    let ok = MaskinportenLayer::builder()
        .test_environment()
        .require_scope("a:b")
        .altinn_tokens(AltinnTokens::tt02())
        .build()
        .unwrap();
    assert_eq!(
        ok.altinn_keys().unwrap().issuer(),
        "https://platform.tt02.altinn.no/authentication/api/v1/openid/"
    );
    assert_eq!(ok.altinn_keys().unwrap().token_issuer(), TokenIssuer::Altinn);
    assert!(
        MaskinportenLayer::builder()
            .production()
            .require_scope("a:b")
            .altinn_tokens(AltinnTokens::production())
            .build()
            .is_ok()
    );
    for (mp, altinn) in [
        (maskinporten::PRODUCTION_ISSUER, AltinnTokens::tt02()),
        (
            maskinporten::PRODUCTION_ISSUER,
            AltinnTokens::platform("https://platform.at22.altinn.cloud"),
        ),
        (
            maskinporten::PRODUCTION_ISSUER,
            AltinnTokens::platform("https://platform.yt01.altinn.cloud"),
        ),
        (
            maskinporten::PRODUCTION_ISSUER,
            AltinnTokens::platform("https://platform.altinn.no.evil.example"),
        ),
        (maskinporten::TEST_ISSUER, AltinnTokens::production()),
        (maskinporten::TEST_ISSUER, AltinnTokens::platform("https://platform.altinn.no/")),
    ] {
        let e = MaskinportenLayer::builder()
            .issuer(mp)
            .require_scope("a:b")
            .altinn_tokens(altinn)
            .build()
            .unwrap_err();
        assert_eq!((e.field(), e.kind()), ("altinn_tokens", ConfigErrorKind::Conflict), "{e}");
    }
    let e = MaskinportenLayer::builder()
        .test_environment()
        .require_scope("a:b")
        .altinn_tokens(AltinnTokens::platform("http://platform.example.no"))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "altinn_tokens", "plain http only on loopback");
}

/// Both token kinds through tonic, with one layer configuration.
#[tokio::test]
async fn both_token_kinds_work_through_tonic() {
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Endpoint, Server};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let fakes = Fakes::start().await;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let system_user = SystemUserLayer::builder()
        .pdp(fakes.pdp())
        .resource(RESOURCE)
        .grpc_method("/grpc.health.v1.Health/Check", "read")
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(AuthLayer::new(layer_builder(&fakes).build().unwrap(), system_user))
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    for token in [altinn_token(&fakes, su).sign(), fakes.system_user_token(su)] {
        let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert!(client.check(req).await.is_ok());
    }
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    let forged = altinn_token(&fakes, su).claim("urn:altinn:authlevel", json!(2)).sign();
    req.metadata_mut()
        .insert("authorization", format!("Bearer {forged}").parse().unwrap());
    assert_eq!(client.check(req).await.unwrap_err().code(), tonic::Code::Unauthenticated);
}
