//! Layer 2 end to end: an axum router behind both layers
//! (`.route_layer(system_user).route_layer(maskinporten)`, so Maskinporten runs first), with
//! FakeMaskinporten and FakeAltinn on 127.0.0.1:0 and the PDP client's real credentials flow
//! (JWT grant at FakeMaskinporten, token exchange and PDP at FakeAltinn). Tokens are minted now.

mod support;

use altinn_systemuser::org::{Party, PersonId};
use altinn_systemuser::pdp::AltinnPdpBuilder;
use altinn_systemuser::systemuser::SystemUserLayerBuilder;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::test_util::{
    DEFAULT_CLIENT_ID, DEFAULT_CONSUMER_ORG, DEFAULT_SYSTEM_ID, PdpAnswer, STATUS_OK, STATUS_PROCESSING_ERROR, decode_unverified,
};
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, Request};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{
    API_SCOPE, ClosedPort, Fakes, ORG_ATTR, OTHER_ORG, OWNER_ORG, PERSON, PERSON_ATTR, PROVIDER_CLIENT_ID, RESOURCE, Reply,
    SUBSCRIPTION_KEY, THIRD_ORG, assert_problem, attributes, send,
};
use uuid::Uuid;

const SYSTEMUSER_UUID: &str = "urn:altinn:systemuser:uuid";
const ACTION_ID: &str = "urn:oasis:names:tc:xacml:1.0:action:action-id";
const RESOURCE_ATTR: &str = "urn:altinn:resource";
const MIN_AUTH_LEVEL: &str = "urn:altinn:minimum-authenticationlevel";

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

/// The fakes, the app behind both layers, and how often the handler ran.
struct Env {
    fakes: Fakes,
    app: Router,
    calls: Arc<AtomicUsize>,
}

impl Env {
    fn token(&self, system_user: Uuid) -> String {
        self.fakes.system_user_token(system_user)
    }

    async fn call(&self, method: Method, path: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        send(&self.app, req.body(Body::empty()).unwrap()).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, &[]).await
    }

    fn pdp_count(&self) -> usize {
        self.fakes.altinn.pdp_request_count()
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The `Request` object of the `i`th PDP call.
    fn pdp_request(&self, i: usize) -> Value {
        let all = self.fakes.altinn.pdp_requests();
        all[i].json().expect("the PDP request is JSON")["Request"].clone()
    }

    /// The action-id of the `i`th PDP call.
    fn asked_action(&self, i: usize) -> String {
        attributes(&self.pdp_request(i)["Action"][0])[0].1.clone()
    }

    /// The resource attributes of the `i`th PDP call.
    fn asked_resource(&self, i: usize) -> BTreeSet<(String, String)> {
        attributes(&self.pdp_request(i)["Resource"][0]).into_iter().collect()
    }
}

/// What the handler reports about the `SystemUser` it was given.
fn describe(su: &SystemUser) -> Value {
    let party = match su.party() {
        Party::Organisation(o) => json!({ "organisation": o.to_string() }),
        Party::Person(p) => json!({ "person": p.as_str() }),
    };
    json!({
        "id": su.id().to_string(),
        "owner_org": su.owner_org().to_string(),
        "system_id": su.system_id(),
        "external_ref": su.external_ref(),
        "vendor": su.vendor().map(ToString::to_string),
        "vendor_org": su.vendor_org().map(|o| o.to_string()),
        "client_id": su.client_id(),
        "scopes": su.scopes().collect::<Vec<_>>(),
        "resource": su.resource().as_str(),
        "action": su.action().as_str(),
        "party": party,
        "debug": format!("{su:?}"),
    })
}

/// `route` (any method) behind the system-user layer, behind the Maskinporten layer.
fn app(route: &str, system_user: SystemUserLayer, fakes: &Fakes, calls: Arc<AtomicUsize>) -> Router {
    let handler = move |su: SystemUser| async move {
        calls.fetch_add(1, Ordering::SeqCst);
        axum::Json(describe(&su))
    };
    Router::new()
        .route(route, any(handler))
        .route_layer(system_user)
        .route_layer(fakes.maskinporten_layer())
}

/// `/krav` with the default layer (resource `kravogbetaling`, action from the method, party
/// from the system user) and the default PDP client.
async fn setup() -> Env {
    setup_with("/krav", |l| l, |p| p).await
}

async fn setup_with(
    route: &str,
    layer: impl FnOnce(SystemUserLayerBuilder) -> SystemUserLayerBuilder,
    pdp: impl FnOnce(AltinnPdpBuilder) -> AltinnPdpBuilder,
) -> Env {
    let fakes = Fakes::start().await;
    let pdp = pdp(fakes.pdp_builder()).build().unwrap();
    let layer = layer(SystemUserLayer::builder().pdp(pdp).resource(RESOURCE)).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(route, layer, &fakes, calls.clone());
    Env { fakes, app, calls }
}

fn assert_no_retry_after(r: &Reply) {
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(r.header("www-authenticate"), None);
}

fn assert_unavailable(r: &Reply) {
    assert_problem(r, 503, "authorization-unavailable");
    let after: u64 = r.header("retry-after").expect("Retry-After on a 503").parse().unwrap();
    assert!(after >= 1);
}

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn permitted_system_user_reaches_the_handler_with_its_identity() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let token_builder = env
        .fakes
        .mp
        .system_user_token(su, OWNER_ORG)
        .scope(&format!("{API_SCOPE} altinn:systembruker.demo"));
    let external_ref = token_builder.claims()["authorization_details"][0]["externalRef"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = token_builder.sign();

    // Over real HTTP, not just `oneshot`.
    let base = support::serve(env.app.clone()).await;
    let res = reqwest::Client::new()
        .get(format!("{base}/krav"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let j: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();

    assert_eq!(j["id"], su.to_string());
    assert_eq!(j["owner_org"], OWNER_ORG);
    assert_eq!(j["system_id"], DEFAULT_SYSTEM_ID);
    assert_eq!(j["external_ref"], external_ref);
    assert_eq!(j["vendor"], format!("0192:{DEFAULT_CONSUMER_ORG}"));
    assert_eq!(j["vendor_org"], DEFAULT_CONSUMER_ORG);
    assert_eq!(j["client_id"], DEFAULT_CLIENT_ID);
    assert_eq!(j["scopes"], json!([API_SCOPE, "altinn:systembruker.demo"]));
    assert_eq!(j["resource"], RESOURCE);
    assert_eq!(j["action"], "read");
    assert_eq!(j["party"], json!({ "organisation": OWNER_ORG }));
    // Debug never shows the caller's token.
    let debug = j["debug"].as_str().unwrap();
    assert!(!debug.contains(token.split('.').nth(2).unwrap()), "{debug}");
    assert_eq!(env.calls(), 1);
    assert_eq!(env.pdp_count(), 1);
}

#[tokio::test]
async fn system_user_without_a_rule_is_refused_as_not_granted() {
    let env = setup().await;
    let permitted = Uuid::new_v4();
    env.fakes.altinn.permit(permitted, "read", RESOURCE, OWNER_ORG);
    // Another system user, another action, another resource: none matches a rule.
    let stranger = Uuid::new_v4();
    let r = env.get("/krav", &env.token(stranger)).await;
    assert_problem(&r, 403, "access-not-granted");
    assert_no_retry_after(&r);
    let r = env.call(Method::POST, "/krav", &env.token(permitted), &[]).await;
    assert_problem(&r, 403, "access-not-granted");
    assert_eq!(env.calls(), 0);
    assert_eq!(env.pdp_count(), 2);
    // The rule still works for what it grants.
    assert_eq!(env.get("/krav", &env.token(permitted)).await.status, 200);
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn the_pdp_is_asked_exactly_the_documented_question() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    assert_eq!(env.get("/krav", &env.token(su)).await.status, 200);

    let altinn = &env.fakes.altinn;
    let all = altinn.pdp_requests();
    assert_eq!(all.len(), 1);
    let pdp = &all[0];
    assert_eq!(pdp.method, Method::POST);
    assert_eq!(pdp.path, "/authorization/api/v1/authorize");
    assert_eq!(pdp.header("ocp-apim-subscription-key"), Some(SUBSCRIPTION_KEY));
    assert_eq!(pdp.header("content-type"), Some("application/json"));

    // The bearer is the Altinn token from the exchange: signed by FakeAltinn, issued to the
    // provider's client, exchanged exactly once from a Maskinporten token of that client.
    assert_eq!(altinn.exchange_count(), 1);
    let mp_token = altinn.exchange_requests()[0].bearer_token().unwrap().to_owned();
    let mp_claims = env.fakes.mp.verify_access_token(&mp_token).expect("a FakeMaskinporten token");
    assert_eq!(mp_claims["client_id"], PROVIDER_CLIENT_ID);
    let altinn_token = pdp.bearer_token().expect("Authorization: Bearer");
    assert_eq!(pdp.header("authorization"), Some(format!("Bearer {altinn_token}").as_str()));
    let (header, claims) = decode_unverified(altinn_token).unwrap();
    assert_eq!(header["kid"], altinn.signing_key().kid());
    assert_eq!(claims["iss"], altinn.token_issuer());
    assert_eq!(claims["client_id"], PROVIDER_CLIENT_ID);
    let (input, sig) = altinn_token.rsplit_once('.').unwrap();
    assert!(
        altinn
            .signing_key()
            .verify_raw("RS256", input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
    );
    assert_ne!(altinn_token, mp_token);

    // The XACML request.
    let body = pdp.json().unwrap();
    let request = &body["Request"];
    assert_eq!(request["ReturnPolicyIdList"], false);
    assert!(request.get("MultiRequests").is_none());
    let subjects = request["AccessSubject"].as_array().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["Attribute"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        attributes(&subjects[0]),
        [(SYSTEMUSER_UUID.to_owned(), su.hyphenated().to_string())]
    );
    let actions = request["Action"].as_array().unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(attributes(&actions[0]), [(ACTION_ID.to_owned(), "read".to_owned())]);
    let resources = request["Resource"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(
        env.asked_resource(0),
        BTreeSet::from([
            (RESOURCE_ATTR.to_owned(), RESOURCE.to_owned()),
            (ORG_ATTR.to_owned(), OWNER_ORG.to_owned()),
        ])
    );
    // Nine digits, no ISO 6523 prefix.
    assert!(!body.to_string().contains("0192:"));
}

// ---------------------------------------------------------------------------------------------
// Layer order and misconfiguration
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn system_user_layer_without_the_maskinporten_layer_is_a_server_error() {
    let fakes = Fakes::start().await;
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let layer = || SystemUserLayer::builder().pdp(fakes.pdp()).resource(RESOURCE).build().unwrap();
    let handler = || any(|| async { "reached" });
    let token = fakes.system_user_token(su);

    // Only layer 2.
    let alone = Router::new().route("/krav", handler()).route_layer(layer());
    // Both, in the wrong order: layer 2 runs first and finds no verified token.
    let reversed = Router::new()
        .route("/krav", handler())
        .route_layer(fakes.maskinporten_layer())
        .route_layer(layer());
    for app in [alone, reversed] {
        let r = support::get_with_token(&app, "/krav", &token).await;
        assert_problem(&r, 500, "server-misconfigured");
        assert_ne!(r.body, "reached");
    }
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
    assert_eq!(fakes.altinn.exchange_count(), 0);
}

#[tokio::test]
async fn valid_token_without_a_system_user_is_refused_without_asking_the_pdp() {
    let env = setup().await;
    let token = env.fakes.mp.token().scope(API_SCOPE).sign();
    let r = env.get("/krav", &token).await;
    assert_problem(&r, 403, "not-a-system-user");
    assert_no_retry_after(&r);
    assert_eq!(env.pdp_count(), 0);
    assert_eq!(env.fakes.mp.token_requests(), 0, "no PDP credentials were even fetched");
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn invalid_token_is_refused_by_layer_one_without_asking_the_pdp() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let mp = &env.fakes.mp;
    let expired = mp
        .system_user_token(su, OWNER_ORG)
        .scope(API_SCOPE)
        .issued_at(std::time::SystemTime::now() - Duration::from_secs(600))
        .sign();
    let good = env.token(su);
    let (input, _) = good.rsplit_once('.').unwrap();
    let bad_signature = format!("{input}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    for (token, slug) in [
        (expired, "token-expired"),
        (bad_signature, "invalid-signature"),
        ("not-a-jwt".to_owned(), "malformed-token"),
    ] {
        let r = env.get("/krav", &token).await;
        assert_problem(&r, 401, slug);
        assert!(r.challenge().starts_with("Bearer error=\"invalid_token\""), "{}", r.challenge());
    }
    let r = send(&env.app, Request::get("/krav").body(Body::empty()).unwrap()).await;
    assert_problem(&r, 401, "missing-token");
    // A system-user token without the API's scope.
    let r = env.get("/krav", &mp.system_user_token(su, OWNER_ORG).sign()).await;
    assert_problem(&r, 403, "insufficient-scope");
    assert_eq!(env.pdp_count(), 0);
    assert_eq!(env.calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Targets: action and party
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn action_follows_the_http_method() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    env.fakes.altinn.permit(su, "delete", RESOURCE, OWNER_ORG);
    let token = env.token(su);

    let r = env.call(Method::GET, "/krav", &token, &[]).await;
    assert_eq!((r.status, r.json()["action"].clone()), (200, json!("read")));
    let r = env.call(Method::POST, "/krav", &token, &[]).await;
    assert_problem(&r, 403, "access-not-granted");
    let r = env.call(Method::DELETE, "/krav", &token, &[]).await;
    assert_eq!((r.status, r.json()["action"].clone()), (200, json!("delete")));
    assert_eq!(env.pdp_count(), 3);
    assert_eq!((0..3).map(|i| env.asked_action(i)).collect::<Vec<_>>(), ["read", "write", "delete"]);
    // PUT and PATCH are writes too (the cached `write` answer: no new PDP call).
    for m in [Method::PUT, Method::PATCH] {
        assert_problem(&env.call(m, "/krav", &token, &[]).await, 403, "access-not-granted");
    }
    assert_eq!(env.pdp_count(), 3);

    // A method without an action is refused before the PDP is asked.
    let r = env.call(Method::OPTIONS, "/krav", &token, &[]).await;
    assert_problem(&r, 400, "invalid-target");
    assert_eq!(env.pdp_count(), 3);
    assert_eq!(env.calls(), 2);
}

#[tokio::test]
async fn fixed_action_is_asked_whatever_the_method() {
    let env = setup_with("/krav", |l| l.action("sign"), |p| p).await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "sign", RESOURCE, OWNER_ORG);
    let token = env.token(su);
    for m in [Method::POST, Method::GET, Method::OPTIONS] {
        let r = env.call(m.clone(), "/krav", &token, &[]).await;
        assert_eq!(r.status, 200, "{m}");
        assert_eq!(r.json()["action"], "sign");
    }
    // One question (then cached), about `sign`.
    assert_eq!(env.pdp_count(), 1);
    assert_eq!(env.asked_action(0), "sign");
}

#[tokio::test]
async fn party_from_path() {
    let env = setup_with("/krav/{orgnr}", |l| l.party_from_path("/krav/{orgnr}"), |p| p).await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OTHER_ORG);
    let token = env.token(su);

    let r = env.get(&format!("/krav/{OTHER_ORG}"), &token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["party"], json!({ "organisation": OTHER_ORG }));
    assert_eq!(r.json()["owner_org"], OWNER_ORG);
    assert!(env.asked_resource(0).contains(&(ORG_ATTR.to_owned(), OTHER_ORG.to_owned())));

    // Permitted for one organisation, not for another (not even its own owner).
    for org in [THIRD_ORG, OWNER_ORG] {
        assert_problem(&env.get(&format!("/krav/{org}"), &token).await, 403, "access-not-granted");
    }
    assert_eq!(env.pdp_count(), 3);
    assert!(env.asked_resource(1).contains(&(ORG_ATTR.to_owned(), THIRD_ORG.to_owned())));

    // Not an organisation number: refused before the PDP is asked.
    for bad in ["310702640", "31070264x", "3107026410", "abc"] {
        let r = env.get(&format!("/krav/{bad}"), &token).await;
        assert_problem(&r, 400, "invalid-party");
    }
    assert_eq!(env.pdp_count(), 3);
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn party_from_header() {
    let env = setup_with("/krav", |l| l.party_from_header("x-altinn-party"), |p| p).await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OTHER_ORG);
    let token = env.token(su);

    let r = env.call(Method::GET, "/krav", &token, &[("x-altinn-party", OTHER_ORG)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["party"], json!({ "organisation": OTHER_ORG }));
    let r = env.call(Method::GET, "/krav", &token, &[("x-altinn-party", THIRD_ORG)]).await;
    assert_problem(&r, 403, "access-not-granted");
    assert_eq!(env.pdp_count(), 2);

    // Missing, repeated or invalid: 400 without a PDP call.
    for headers in [
        vec![],
        vec![("x-altinn-party", OTHER_ORG), ("x-altinn-party", OTHER_ORG)],
        vec![("x-altinn-party", "923609017")],
        vec![("x-altinn-party", "")],
    ] {
        let r = env.call(Method::GET, "/krav", &token, &headers).await;
        assert_problem(&r, 400, "invalid-party");
    }
    assert_eq!(env.pdp_count(), 2);
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn agent_system_user_acting_for_a_person() {
    let env = setup_with(
        "/krav",
        |l| {
            l.party_with(|parts, _token| {
                let client = parts.headers.get("x-client")?.to_str().ok()?;
                client.parse::<PersonId>().ok().map(Party::Person)
            })
        },
        |p| p,
    )
    .await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, PERSON);
    let token = env.token(su);

    let r = env.call(Method::GET, "/krav", &token, &[("x-client", PERSON)]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["party"], json!({ "person": PERSON }));
    assert_eq!(j["owner_org"], OWNER_ORG);
    let debug = j["debug"].as_str().unwrap();
    assert!(!debug.contains(PERSON), "{debug}");
    assert!(debug.contains("Person"), "{debug}");

    // The PDP was asked about the person, and only the person.
    assert_eq!(
        env.asked_resource(0),
        BTreeSet::from([
            (RESOURCE_ATTR.to_owned(), RESOURCE.to_owned()),
            (PERSON_ATTR.to_owned(), PERSON.to_owned()),
        ])
    );

    // The closure says no (wrong check digits, no header): 400 without a PDP call.
    for headers in [vec![("x-client", "01010012357")], vec![]] {
        assert_problem(&env.call(Method::GET, "/krav", &token, &headers).await, 400, "invalid-party");
    }
    assert_eq!(env.pdp_count(), 1);
}

#[tokio::test]
async fn grpc_method_table_refuses_unlisted_methods() {
    let env = setup_with(
        "/grpc.health.v1.Health/{method}",
        |l| l.grpc_method("/grpc.health.v1.Health/Check", "read"),
        |p| p,
    )
    .await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let token = env.token(su);

    let r = env.call(Method::POST, "/grpc.health.v1.Health/Check", &token, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["action"], "read");
    let r = env.call(Method::POST, "/grpc.health.v1.Health/Watch", &token, &[]).await;
    assert_problem(&r, 400, "invalid-target");
    // A gRPC client gets the same refusal as a trailers-only status.
    let r = env
        .call(
            Method::POST,
            "/grpc.health.v1.Health/Watch",
            &token,
            &[("content-type", "application/grpc")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), Some("3"));
    assert_eq!(env.pdp_count(), 1);
    assert_eq!(env.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// The decision matrix
// ---------------------------------------------------------------------------------------------

fn min_level(level: Value) -> Value {
    json!([{
        "id": "urn:altinn:obligation:authenticationLevel1",
        "attributeAssignment": [{
            "attributeId": "urn:altinn:obligation1-assignment1",
            "value": level,
            "category": MIN_AUTH_LEVEL,
            "dataType": "http://www.w3.org/2001/XMLSchema#integer",
        }],
    }])
}

fn permit_with(status: &str, obligations: Value) -> Value {
    json!({
        "decision": "Permit",
        "status": { "statusCode": { "value": status } },
        "obligations": obligations,
    })
}

fn body(status: u16, content_type: &str, body: impl Into<String>) -> PdpAnswer {
    PdpAnswer::Body {
        status,
        content_type: content_type.to_owned(),
        body: body.into(),
    }
}

#[tokio::test]
async fn decision_matrix() {
    // Breaker off: its six malformed answers in a row would open it (see tests/pdp/breaker.rs).
    let env = setup_with("/krav", |l| l, |p| p.breaker_off()).await;
    let unknown_obligation = json!([{
        "id": "urn:example:obligation:notify-owner",
        "attributeAssignment": [{
            "attributeId": "urn:example:notify",
            "value": "yes",
            "category": "urn:example:notification",
            "dataType": "http://www.w3.org/2001/XMLSchema#string",
        }],
    }]);
    let ok_permit = permit_with(STATUS_OK, Value::Null);
    let json = "application/json; charset=utf-8";
    let oversized = json!({ "response": [ok_permit], "padding": "x".repeat(300 * 1024) }).to_string();

    // (what the PDP says, status, problem slug; None for a permit)
    let cases: Vec<(&str, PdpAnswer, u16, Option<&str>)> = vec![
        ("Permit", PdpAnswer::Decision("Permit".into()), 200, None),
        ("Deny", PdpAnswer::Decision("Deny".into()), 403, Some("access-denied")),
        (
            "NotApplicable",
            PdpAnswer::Decision("NotApplicable".into()),
            403,
            Some("access-not-granted"),
        ),
        (
            "Indeterminate",
            PdpAnswer::Decision("Indeterminate".into()),
            403,
            Some("access-indeterminate"),
        ),
        ("permit", PdpAnswer::Decision("permit".into()), 403, Some("access-indeterminate")),
        ("Maybe", PdpAnswer::Decision("Maybe".into()), 403, Some("access-indeterminate")),
        (
            "Permit + processing-error",
            PdpAnswer::Result(permit_with(STATUS_PROCESSING_ERROR, Value::Null)),
            403,
            Some("access-indeterminate"),
        ),
        (
            "Permit + unknown obligation",
            PdpAnswer::Result(permit_with(STATUS_OK, unknown_obligation)),
            403,
            Some("obligation-not-met"),
        ),
        (
            "Permit + level 4",
            PdpAnswer::Result(permit_with(STATUS_OK, min_level(json!("4")))),
            403,
            Some("obligation-not-met"),
        ),
        (
            "Permit + level 3",
            PdpAnswer::Result(permit_with(STATUS_OK, min_level(json!("3")))),
            200,
            None,
        ),
        (
            "Permit + level 2",
            PdpAnswer::Result(permit_with(STATUS_OK, min_level(json!("2")))),
            200,
            None,
        ),
        (
            "two results for one question",
            body(200, json, json!({ "response": [ok_permit, ok_permit] }).to_string()),
            503,
            Some("authorization-unavailable"),
        ),
        (
            "zero results",
            body(200, json, r#"{"response":[]}"#),
            503,
            Some("authorization-unavailable"),
        ),
        (
            "malformed JSON",
            body(200, json, r#"{"response":[{"decision":"Permit"}"#),
            503,
            Some("authorization-unavailable"),
        ),
        (
            "HTML",
            body(200, "text/html", "<html><body>Permit</body></html>"),
            503,
            Some("authorization-unavailable"),
        ),
        ("{}", body(200, json, "{}"), 503, Some("authorization-unavailable")),
        (
            "oversized permit",
            body(200, json, oversized),
            503,
            Some("authorization-unavailable"),
        ),
    ];
    let mut permitted = 0;
    for (name, answer, status, slug) in cases {
        env.fakes.altinn.set_answer(answer);
        // A new system user each time, so no answer comes from the cache.
        let su = Uuid::new_v4();
        let before = env.pdp_count();
        let r = env.get("/krav", &env.token(su)).await;
        assert_eq!(r.status, status, "{name}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(env.pdp_count(), before + 1, "{name}: asked once, not retried");
        match slug {
            None => {
                permitted += 1;
                assert_eq!(r.json()["id"], su.to_string(), "{name}");
            }
            Some(slug) => {
                assert_problem(&r, status, slug);
                if status == 503 {
                    assert_unavailable(&r);
                } else {
                    assert_no_retry_after(&r);
                }
            }
        }
        assert_eq!(env.calls(), permitted, "{name}: only a permit reaches the handler");
    }
    assert_eq!(permitted, 3);
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn altinn_unreachable_is_503_with_retry_after() {
    let fakes = Fakes::start().await;
    let closed = ClosedPort::new();
    let pdp = fakes.pdp_builder().platform_url(closed.url()).build().unwrap();
    let layer = SystemUserLayer::builder().pdp(pdp).resource(RESOURCE).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app("/krav", layer, &fakes, calls.clone());
    let started = Instant::now();
    let r = support::get_with_token(&app, "/krav", &fakes.system_user_token(Uuid::new_v4())).await;
    assert_unavailable(&r);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn slow_pdp_is_503_within_the_time_budget() {
    // Real time: the layer talks to the fakes over loopback, where paused time would fire the
    // budget before the answers arrive.
    let env = setup_with("/krav", |l| l, |p| p.timeout(Duration::from_millis(600))).await;
    let altinn = &env.fakes.altinn;
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    // Credentials are fetched first, so only the PDP call is slow below.
    assert_eq!(env.get("/krav", &env.token(Uuid::new_v4())).await.status, 200);

    altinn.set_delay(Duration::from_secs(30));
    let started = Instant::now();
    let r = env.get("/krav", &env.token(Uuid::new_v4())).await;
    let elapsed = started.elapsed();
    assert_unavailable(&r);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn pdp_server_error_is_retried_once_then_503() {
    let env = setup().await;
    env.fakes.altinn.set_answer(PdpAnswer::Status(500));
    let r = env.get("/krav", &env.token(Uuid::new_v4())).await;
    assert_unavailable(&r);
    assert_eq!(env.pdp_count(), 2, "one try and one retry");
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn a_retry_after_a_pdp_server_error_saves_the_request() {
    let env = setup().await;
    env.fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    env.fakes.altinn.push_answer(PdpAnswer::Status(500));
    let r = env.get("/krav", &env.token(Uuid::new_v4())).await;
    assert_eq!(r.status, 200);
    assert_eq!(env.pdp_count(), 2);
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn pdp_rate_limit_passes_its_retry_after_on_and_is_not_retried() {
    let env = setup().await;
    env.fakes.altinn.set_answer(PdpAnswer::TooManyRequests { retry_after_secs: 7 });
    let r = env.get("/krav", &env.token(Uuid::new_v4())).await;
    assert_problem(&r, 503, "authorization-unavailable");
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(env.pdp_count(), 1);
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn revoked_altinn_token_is_refreshed_exactly_once() {
    let env = setup().await;
    let (mp, altinn) = (&env.fakes.mp, &env.fakes.altinn);
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(env.get("/krav", &env.token(Uuid::new_v4())).await.status, 200);
    let (grants, exchanges, asked) = (mp.token_requests(), altinn.exchange_count(), env.pdp_count());
    assert_eq!((grants, exchanges, asked), (1, 1, 1));

    altinn.revoke_tokens();
    let r = env.get("/krav", &env.token(Uuid::new_v4())).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(mp.token_requests(), grants + 1);
    assert_eq!(altinn.exchange_count(), exchanges + 1);
    assert_eq!(env.pdp_count(), asked + 2, "the 401 and the retry with the new token");
    let pdp = altinn.pdp_requests();
    assert_ne!(pdp[1].bearer_token(), pdp[2].bearer_token());

    // The new token is kept.
    assert_eq!(env.get("/krav", &env.token(Uuid::new_v4())).await.status, 200);
    assert_eq!(mp.token_requests(), grants + 1);
    assert_eq!(altinn.exchange_count(), exchanges + 1);
}

// ---------------------------------------------------------------------------------------------
// The decision cache
// ---------------------------------------------------------------------------------------------

/// The decision cache reads `std::time::Instant`, so the TTL tests sleep for real (paused Tokio
/// time would not move that clock). A TTL of 500 ms leaves room on a busy 2-core machine for the
/// requests that must be answered from the cache (a few milliseconds each when idle); the sleeps
/// go 150 ms past it.
const SHORT_TTL: Duration = Duration::from_millis(500);

#[tokio::test]
async fn permit_is_cached_for_the_permit_ttl() {
    let env = setup_with("/krav", |l| l, |p| p.permit_ttl(SHORT_TTL)).await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let token = env.token(su);
    let asked = env.get("/krav", &token).await;
    assert_eq!(asked.status, 200);
    // Answered from the cache (no await on the PDP): the same principal reaches the handler.
    let cached = env.get("/krav", &token).await;
    assert_eq!(cached.status, 200);
    assert_eq!(cached.body, asked.body);
    // Also with a new token of the same system user: the key is the question, not the token.
    assert_eq!(env.get("/krav", &env.token(su)).await.status, 200);
    assert_eq!(env.pdp_count(), 1);
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(150)).await;
    assert_eq!(env.get("/krav", &token).await.status, 200);
    assert_eq!(env.pdp_count(), 2);
    assert_eq!(env.calls(), 4);
}

/// The warm path does not wait: with the token verified and the decision cached, both layers
/// answer inside `call`, so the response future is ready at its first poll.
#[tokio::test]
async fn cached_decisions_are_answered_without_waiting() {
    use futures_util::FutureExt as _;
    use http_body_util::BodyExt as _;
    use tower::{Service, ServiceBuilder, ServiceExt};

    let fakes = Fakes::start().await;
    let pdp = fakes.pdp_builder().build().unwrap();
    let (permitted, denied) = (Uuid::new_v4(), Uuid::new_v4());
    fakes.altinn.permit(permitted, "read", RESOURCE, OWNER_ORG);
    let inner = tower::service_fn(|req: Request<Body>| async move {
        let su = req.extensions().get::<SystemUser>().map(|su| su.id().to_string());
        Ok::<_, std::convert::Infallible>(http::Response::new(su.unwrap_or_default()))
    });
    let mut svc = ServiceBuilder::new()
        .layer(fakes.maskinporten_layer())
        .layer(SystemUserLayer::builder().pdp(pdp).resource(RESOURCE).build().unwrap())
        .service(inner);
    let request = |token: &str| {
        Request::get("/krav")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (ok, no) = (fakes.system_user_token(permitted), fakes.system_user_token(denied));

    // First requests: keys, token verification and the PDP all have to be waited for.
    for (token, status) in [(&ok, 200), (&no, 403)] {
        let res = svc.ready().await.unwrap().call(request(token)).await.unwrap();
        assert_eq!(res.status(), status);
    }
    assert_eq!(fakes.altinn.pdp_request_count(), 2);

    // Then: answered in the first poll, from the caches, with the principal for the handler.
    for _ in 0..3 {
        let res = svc.ready().await.unwrap().call(request(&ok)).now_or_never();
        let res = res.expect("a cached permit is answered without waiting").unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, permitted.to_string().as_bytes());
        let res = svc.ready().await.unwrap().call(request(&no)).now_or_never();
        assert_eq!(res.expect("a cached deny is answered without waiting").unwrap().status(), 403);
    }
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}

#[tokio::test]
async fn permit_never_outlives_the_callers_token() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    // A token that expires at the first whole second at least 300 ms from now (`exp` is whole
    // seconds; the layer and the cache compare it with `SystemTime`, so this sleeps for real):
    // its permit is cached no longer than that, although the permit TTL is 30 s.
    let exp = UNIX_EPOCH
        + Duration::from_secs(
            (SystemTime::now() + Duration::from_millis(300))
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 1,
        );
    let short = env
        .fakes
        .mp
        .system_user_token(su, OWNER_ORG)
        .scope(API_SCOPE)
        .expires_at(exp)
        .sign();
    assert_eq!(env.get("/krav", &short).await.status, 200);
    assert_eq!(env.pdp_count(), 1);
    tokio::time::sleep(exp.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(100)).await;
    assert_eq!(env.get("/krav", &env.token(su)).await.status, 200);
    assert_eq!(env.pdp_count(), 2, "the permit expired with the token it was asked for");
    // The new permit is bound by the new token (120 s) and the permit TTL, so it is cached.
    assert_eq!(env.get("/krav", &env.token(su)).await.status, 200);
    assert_eq!(env.pdp_count(), 2);
}

#[tokio::test]
async fn deny_is_cached_for_the_deny_ttl() {
    let env = setup_with("/krav", |l| l, |p| p.deny_ttl(SHORT_TTL)).await;
    env.fakes.altinn.set_answer(PdpAnswer::Decision("Deny".into()));
    let token = env.token(Uuid::new_v4());
    for _ in 0..3 {
        assert_problem(&env.get("/krav", &token).await, 403, "access-denied");
    }
    assert_eq!(env.pdp_count(), 1);
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(150)).await;
    assert_problem(&env.get("/krav", &token).await, 403, "access-denied");
    assert_eq!(env.pdp_count(), 2);
}

#[tokio::test]
async fn indeterminate_is_not_cached() {
    let env = setup().await;
    let altinn = &env.fakes.altinn;
    let token = env.token(Uuid::new_v4());
    altinn.set_answer(PdpAnswer::Decision("Indeterminate".into()));
    for _ in 0..2 {
        assert_problem(&env.get("/krav", &token).await, 403, "access-indeterminate");
    }
    assert_eq!(env.pdp_count(), 2);
    // Once the PDP permits, the same question is asked again and permitted.
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(env.get("/krav", &token).await.status, 200);
    assert_eq!(env.pdp_count(), 3);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let env = setup().await;
    let altinn = &env.fakes.altinn;
    let token = env.token(Uuid::new_v4());
    altinn.set_answer(body(200, "application/json", "not json{"));
    for _ in 0..2 {
        assert_unavailable(&env.get("/krav", &token).await);
    }
    assert_eq!(env.pdp_count(), 2);
    // Once the PDP answers, the same question is asked again and permitted.
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(env.get("/krav", &token).await.status, 200);
    assert_eq!(env.pdp_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_requests_share_one_pdp_call() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    env.fakes.altinn.set_delay(Duration::from_millis(50));
    let token = env.token(su);
    let replies = futures_util::future::join_all((0..100).map(|_| env.get("/krav", &token))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(env.pdp_count(), 1);
    assert_eq!(env.calls(), 100);
    assert_eq!(env.fakes.altinn.exchange_count(), 1);
}

#[tokio::test]
async fn another_party_or_action_is_another_question() {
    let env = setup_with("/krav/{orgnr}", |l| l.party_from_path("/krav/{orgnr}"), |p| p).await;
    env.fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let token = env.token(Uuid::new_v4());
    let a = format!("/krav/{OTHER_ORG}");
    let b = format!("/krav/{THIRD_ORG}");
    for (method, path, asked) in [
        (Method::GET, &a, 1),
        (Method::GET, &a, 1),
        (Method::GET, &b, 2),
        (Method::POST, &a, 3),
        (Method::POST, &b, 4),
        (Method::POST, &a, 4),
        (Method::GET, &b, 4),
    ] {
        assert_eq!(env.call(method.clone(), path, &token, &[]).await.status, 200);
        assert_eq!(env.pdp_count(), asked, "{method} {path}");
    }
    // Another system user asking the same is another question too.
    assert_eq!(env.get(&a, &env.token(Uuid::new_v4())).await.status, 200);
    assert_eq!(env.pdp_count(), 5);
}
