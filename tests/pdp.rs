//! The PDP client on its own, against FakeMaskinporten and FakeAltinn on 127.0.0.1:0: the
//! provider's credentials on the wire (JWT grant, token exchange, bearer and subscription key),
//! token reuse, `decide_many`, how failures are reported, and that secrets stay secret.

mod support;

use altinn_systemuser::Party;
use altinn_systemuser::pdp::{
    AUTHORIZE_SCOPE, Action, AltinnPdp, AltinnPdpBuilder, Decision, DecisionRequest, MaskinportenCredentials, PdpError, PdpErrorKind,
    ResourceId,
};
use altinn_systemuser::test_util::{EndpointMode, KeyRole, PdpAnswer, STATUS_OK, TestKey, decode_unverified};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{
    Fakes, OTHER_ORG, OWNER_ORG, PROVIDER_CLIENT_ID, PROVIDER_ORG, RESOURCE, SUBSCRIPTION_KEY, THIRD_ORG, attributes, closed_port_url,
};
use uuid::Uuid;

/// Something that only ever appears in the fakes' answers, never in our errors.
const MARKER: &str = "SECRET-BODY-MARKER-4f9a";

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

async fn setup() -> (Fakes, AltinnPdp) {
    setup_with(|p| p).await
}

async fn setup_with(pdp: impl FnOnce(AltinnPdpBuilder) -> AltinnPdpBuilder) -> (Fakes, AltinnPdp) {
    let fakes = Fakes::start().await;
    let pdp = pdp(fakes.pdp_builder()).build().unwrap();
    (fakes, pdp)
}

/// May `su` do `action` on the test resource for `party`?
fn question(su: Uuid, action: &str, party: &str) -> DecisionRequest {
    DecisionRequest::new(
        su,
        Action::new(action).unwrap(),
        ResourceId::new(RESOURCE).unwrap(),
        Party::parse(party).unwrap(),
    )
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn body(status: u16, content_type: &str, body: impl Into<String>) -> PdpAnswer {
    PdpAnswer::Body {
        status,
        content_type: content_type.to_owned(),
        body: body.into(),
    }
}

/// A result as the live PDP writes it, echoing the question's attributes.
fn echoed_result(decision: &str, su: Uuid, action: &str, party: &str) -> Value {
    let attr = |id: &str, value: &str| json!({ "attributeId": id, "value": value, "dataType": "http://www.w3.org/2001/XMLSchema#string" });
    json!({
        "decision": decision,
        "status": { "statusCode": { "value": STATUS_OK } },
        "obligations": null,
        "category": [
            { "categoryId": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
              "attribute": [attr("urn:altinn:systemuser:uuid", &su.to_string())] },
            { "categoryId": "urn:oasis:names:tc:xacml:3.0:attribute-category:action",
              "attribute": [attr("urn:oasis:names:tc:xacml:1.0:action:action-id", action)] },
            { "categoryId": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
              "attribute": [attr("urn:altinn:resource", RESOURCE), attr("urn:altinn:organization:identifier-no", party)] },
        ],
    })
}

// ---------------------------------------------------------------------------------------------
// Decisions and credentials on the wire
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn decides_from_the_rules() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    assert_eq!(pdp.decide(&question(su, "read", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(pdp.decide(&question(su, "write", OWNER_ORG)).await, Ok(Decision::NotApplicable));
    assert_eq!(pdp.decide(&question(su, "read", OTHER_ORG)).await, Ok(Decision::NotApplicable));
    assert_eq!(
        pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await,
        Ok(Decision::NotApplicable)
    );
    assert_eq!(fakes.altinn.pdp_request_count(), 4);
}

#[tokio::test]
async fn credentials_on_the_wire() {
    let (fakes, pdp) = setup().await;
    let (mp, altinn) = (&fakes.mp, &fakes.altinn);
    let su = Uuid::new_v4();
    altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    assert_eq!(pdp.decide(&question(su, "read", OWNER_ORG)).await, Ok(Decision::Permit));

    // 1. The JWT grant: one assertion, accepted, shaped as Maskinporten requires.
    assert_eq!(mp.token_requests(), 1);
    let assertions = mp.grant_assertions();
    assert_eq!(assertions.len(), 1);
    let a = &assertions[0];
    assert_eq!(a["error"], Value::Null, "{a}");
    assert_eq!(a["header"]["alg"], "RS256");
    assert_eq!(a["header"]["kid"], fakes.provider_key.kid());
    assert!(a["header"].get("x5c").is_none());
    let claims = &a["claims"];
    assert_eq!(claims["aud"], mp.issuer());
    assert_eq!(claims["iss"], PROVIDER_CLIENT_ID);
    assert_eq!(claims["scope"], AUTHORIZE_SCOPE);
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert!(exp > iat && exp - iat <= 120, "iat {iat} exp {exp}");
    assert!((iat - now_secs()).abs() <= 10, "iat {iat}");
    assert!(!claims["jti"].as_str().unwrap().is_empty());

    // 2. The exchange: GET with the Maskinporten access token as bearer.
    let exchanges = altinn.exchange_requests();
    assert_eq!(exchanges.len(), 1);
    let ex = &exchanges[0];
    assert_eq!(ex.method, http::Method::GET);
    assert_eq!(ex.path, "/authentication/api/v1/exchange/maskinporten");
    let mp_token = ex.bearer_token().expect("Authorization: Bearer");
    assert_eq!(ex.header("authorization"), Some(format!("Bearer {mp_token}").as_str()));
    let mp_claims = mp.verify_access_token(mp_token).expect("an access token FakeMaskinporten issued");
    assert_eq!(mp_claims["client_id"], PROVIDER_CLIENT_ID);
    assert_eq!(mp_claims["scope"], AUTHORIZE_SCOPE);
    assert_eq!(mp_claims["consumer"]["ID"], format!("0192:{PROVIDER_ORG}"));

    // 3. The PDP call: the exchanged Altinn token, the subscription key, JSON.
    let calls = altinn.pdp_requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    let altinn_token = call.bearer_token().expect("Authorization: Bearer");
    assert_ne!(altinn_token, mp_token);
    let (header, claims) = decode_unverified(altinn_token).unwrap();
    assert_eq!(header["kid"], altinn.signing_key().kid());
    assert_eq!(claims["iss"], altinn.token_issuer());
    assert_eq!(call.header("ocp-apim-subscription-key"), Some(SUBSCRIPTION_KEY));
    assert_eq!(call.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn tokens_are_reused_across_decisions() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    for _ in 0..20 {
        let q = question(Uuid::new_v4(), "read", OWNER_ORG);
        assert_eq!(pdp.decide(&q).await, Ok(Decision::Permit));
    }
    assert_eq!(fakes.altinn.pdp_request_count(), 20);
    assert_eq!(fakes.mp.token_requests(), 1);
    assert_eq!(fakes.mp.grant_assertions().len(), 1);
    assert_eq!(fakes.altinn.exchange_count(), 1);
    let bearers: HashSet<String> = fakes
        .altinn
        .pdp_requests()
        .iter()
        .map(|r| r.bearer_token().unwrap().to_owned())
        .collect();
    assert_eq!(bearers.len(), 1);
}

/// Twenty different questions at once, each answered `Permit`.
async fn twenty_concurrent_permits(pdp: &AltinnPdp) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pdp = pdp.clone();
            tokio::spawn(async move { pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Decision::Permit));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_decisions_share_one_grant_and_one_exchange() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    twenty_concurrent_permits(&pdp).await;
    assert_eq!(fakes.altinn.pdp_request_count(), 20);
    assert_eq!(fakes.mp.token_requests(), 1);
    assert_eq!(fakes.altinn.exchange_count(), 1);
}

#[tokio::test]
async fn pdp_401_forces_one_refresh() {
    let (fakes, pdp) = setup().await;
    let (mp, altinn) = (&fakes.mp, &fakes.altinn);
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));

    // The Altinn token is revoked: one 401, one refresh (grant and exchange), success.
    altinn.revoke_tokens();
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(
        (mp.token_requests(), altinn.exchange_count(), altinn.pdp_request_count()),
        (2, 2, 3)
    );

    // A PDP that keeps saying 401: one refresh, then give up.
    altinn.set_answer(PdpAnswer::Status(401));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Unauthorized);
    assert_eq!(
        (mp.token_requests(), altinn.exchange_count(), altinn.pdp_request_count()),
        (3, 3, 5)
    );
}

#[tokio::test]
async fn wrong_subscription_key_is_unauthorized() {
    let (fakes, pdp) = setup_with(|p| p.subscription_key("not-the-key")).await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Unauthorized);
    assert!(!e.to_string().contains("subscription"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// decide_many
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn decide_many_asks_once_with_multi_requests() {
    let (fakes, pdp) = setup().await;
    let altinn = &fakes.altinn;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    altinn.permit(a, "read", RESOURCE, OWNER_ORG);
    altinn.permit(b, "write", RESOURCE, THIRD_ORG);

    let asked = [question(a, "read", OWNER_ORG), question(a, "write", OWNER_ORG)];
    assert_eq!(pdp.decide_many(&asked).await, Ok(vec![Decision::Permit, Decision::NotApplicable]));
    assert_eq!(altinn.pdp_request_count(), 1);
    let body = altinn.pdp_requests()[0].json().unwrap();
    let references = body["Request"]["MultiRequests"]["RequestReference"].as_array().unwrap();
    assert_eq!(references.len(), 2, "{body}");
    for r in references {
        assert_eq!(r["ReferenceId"].as_array().unwrap().len(), 3, "{body}");
    }
    // Each subject category is still exactly one system-user attribute.
    for s in body["Request"]["AccessSubject"].as_array().unwrap() {
        assert_eq!(attributes(s), [("urn:altinn:systemuser:uuid".to_owned(), a.to_string())]);
    }

    // Both answers are cached now, in whatever order they are asked.
    let reversed = [question(a, "write", OWNER_ORG), question(a, "read", OWNER_ORG)];
    assert_eq!(
        pdp.decide_many(&reversed).await,
        Ok(vec![Decision::NotApplicable, Decision::Permit])
    );
    assert_eq!(altinn.pdp_request_count(), 1);

    // The not-permitted one first, a question repeated: one call, answers in the order asked.
    let mixed = [
        question(b, "read", THIRD_ORG),
        question(b, "write", THIRD_ORG),
        question(b, "read", THIRD_ORG),
        question(a, "read", OWNER_ORG),
    ];
    assert_eq!(
        pdp.decide_many(&mixed).await,
        Ok(vec![
            Decision::NotApplicable,
            Decision::Permit,
            Decision::NotApplicable,
            Decision::Permit
        ])
    );
    assert_eq!(altinn.pdp_request_count(), 2);
    let body = altinn.pdp_requests()[1].json().unwrap();
    assert_eq!(body["Request"]["MultiRequests"]["RequestReference"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn decide_many_matches_answers_by_what_they_echo_not_by_position() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    let asked = [question(su, "read", OWNER_ORG), question(su, "write", OTHER_ORG)];
    let json = "application/json";

    // Answers in reverse order.
    let reversed = json!({ "response": [
        echoed_result("Deny", su, "write", OTHER_ORG),
        echoed_result("Permit", su, "read", OWNER_ORG),
    ]});
    fakes.altinn.push_answer(body(200, json, reversed.to_string()));
    assert_eq!(pdp.decide_many(&asked).await, Ok(vec![Decision::Permit, Decision::Deny]));

    // An answer to a question not asked, a question answered twice, or no echo: no decisions.
    let other = Uuid::new_v4();
    let asked = [question(other, "read", OWNER_ORG), question(other, "write", OTHER_ORG)];
    for bad in [
        json!({ "response": [
            echoed_result("Permit", other, "read", OWNER_ORG),
            echoed_result("Permit", other, "write", THIRD_ORG),
        ]}),
        json!({ "response": [
            echoed_result("Permit", other, "read", OWNER_ORG),
            echoed_result("Permit", other, "read", OWNER_ORG),
        ]}),
        json!({ "response": [
            { "decision": "Permit" },
            { "decision": "Permit" },
        ]}),
        json!({ "response": [echoed_result("Permit", other, "read", OWNER_ORG)] }),
    ] {
        fakes.altinn.push_answer(body(200, json, bad.to_string()));
        let e = pdp.decide_many(&asked).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Malformed, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn failures_are_classified_and_never_echo_the_answer() {
    let (fakes, pdp) = setup().await;
    let altinn = &fakes.altinn;
    let json = "application/json";
    let permit = json!({ "decision": "Permit" });
    let marked = format!(r#"{{"response":[{{"decision":"Permit","detail":"{MARKER}"}}]"#);
    let oversized = json!({ "response": [permit], "detail": MARKER, "padding": "x".repeat(300 * 1024) }).to_string();

    // (answer, expected kind, PDP requests made, Retry-After)
    let cases: Vec<(PdpAnswer, PdpErrorKind, usize, Option<u64>)> = vec![
        (PdpAnswer::Status(500), PdpErrorKind::Status(500), 2, None),
        (
            body(502, "text/html", format!("<h1>{MARKER}</h1>")),
            PdpErrorKind::Status(502),
            2,
            None,
        ),
        (
            PdpAnswer::TooManyRequests { retry_after_secs: 7 },
            PdpErrorKind::Status(429),
            1,
            Some(7),
        ),
        (PdpAnswer::Status(403), PdpErrorKind::Unauthorized, 1, None),
        (
            body(400, json, format!(r#"{{"title":"{MARKER}"}}"#)),
            PdpErrorKind::Status(400),
            1,
            None,
        ),
        (body(200, json, marked), PdpErrorKind::Malformed, 1, None),
        (
            body(200, "text/html", format!("<html>{MARKER}</html>")),
            PdpErrorKind::Malformed,
            1,
            None,
        ),
        (body(200, json, "{}"), PdpErrorKind::Malformed, 1, None),
        (body(200, json, r#"{"response":[]}"#), PdpErrorKind::Malformed, 1, None),
        (
            body(200, json, json!({ "response": [permit, permit] }).to_string()),
            PdpErrorKind::Malformed,
            1,
            None,
        ),
        (body(200, json, oversized), PdpErrorKind::TooLarge, 1, None),
    ];
    for (answer, kind, requests, retry_after) in cases {
        let label = format!("{answer:?}").chars().take(80).collect::<String>();
        altinn.set_answer(answer);
        let before = altinn.pdp_request_count();
        let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{label}");
        assert_eq!(altinn.pdp_request_count() - before, requests, "{label}");
        assert_eq!(e.retry_after(), retry_after.map(Duration::from_secs), "{label}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(MARKER) && !shown.contains("Rate limit"), "{label}: {shown}");
    }
}

#[tokio::test]
async fn timeout_covers_the_whole_decision() {
    let (fakes, pdp) = setup_with(|p| p.timeout(Duration::from_millis(800))).await;
    // Getting the token is part of the budget: a hanging token endpoint times out.
    fakes.mp.set_token_mode(EndpointMode::Hang);
    let started = Instant::now();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // So is a PDP that answers too late.
    fakes.mp.set_token_mode(EndpointMode::Normal);
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    fakes.altinn.set_delay(Duration::from_secs(30));
    let started = Instant::now();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn unreachable_services_fail_fast() {
    let fakes = Fakes::start().await;
    // Altinn down: no exchange, no decision.
    let pdp = fakes.pdp_builder().platform_url(closed_port_url()).build().unwrap();
    let started = Instant::now();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Maskinporten down.
    let creds = MaskinportenCredentials::builder()
        .issuer(format!("{}/", closed_port_url()))
        .client_id(PROVIDER_CLIENT_ID)
        .private_key_pem(fakes.provider_key.private_key_pkcs8_pem().as_bytes())
        .key_id(fakes.provider_key.kid())
        .build()
        .unwrap();
    let pdp = fakes.pdp_builder().credentials(creds).build().unwrap();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    assert_eq!(fakes.altinn.exchange_count(), 0);
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secrets_stay_out_of_debug_and_display() {
    let fakes = Fakes::start().await;
    let pem = fakes.provider_key.private_key_pkcs8_pem();
    let pem_lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 32).collect();
    assert!(pem_lines.len() > 10);
    let leaks = |shown: &str| -> Vec<String> {
        let mut found = Vec::new();
        if shown.contains(SUBSCRIPTION_KEY) {
            found.push("subscription key".to_owned());
        }
        if shown.contains("PRIVATE KEY") {
            found.push("PEM label".to_owned());
        }
        found.extend(
            pem_lines
                .iter()
                .filter(|l| shown.contains(&l[..32]))
                .map(|l| format!("PEM line {l}")),
        );
        found
    };

    let creds = fakes.credentials();
    let builder = fakes.pdp_builder();
    let pdp = fakes.pdp();
    let credentials_builder = MaskinportenCredentials::builder()
        .issuer(fakes.mp.issuer())
        .client_id(PROVIDER_CLIENT_ID)
        .private_key_pem(pem.as_bytes())
        .key_id(fakes.provider_key.kid());
    for (what, shown) in [
        ("credentials", format!("{creds:?}")),
        ("credentials builder", format!("{credentials_builder:?}")),
        ("pdp builder", format!("{builder:?}")),
        ("pdp", format!("{pdp:?}")),
        ("pdp {:#?}", format!("{pdp:#?}")),
    ] {
        assert_eq!(leaks(&shown), Vec::<String>::new(), "{what}: {shown}");
    }
    // What is shown is useful.
    let shown = format!("{creds:?}");
    assert!(
        shown.contains(PROVIDER_CLIENT_ID) && shown.contains(fakes.provider_key.kid()),
        "{shown}"
    );

    // A decision after tokens were fetched: the client's Debug still shows no token.
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    let altinn_token = fakes.altinn.pdp_requests()[0].bearer_token().unwrap().to_owned();
    let shown = format!("{pdp:?}");
    assert!(!shown.contains(&altinn_token[..40]), "{shown}");

    // Maskinporten refuses the grant with a description: it is not repeated in our error.
    let stranger = TestKey::for_role(KeyRole::Rogue).with_kid("unregistered-key");
    let creds = MaskinportenCredentials::builder()
        .issuer(fakes.mp.issuer())
        .client_id("unregistered-client")
        .private_key_pem(stranger.private_key_pkcs8_pem().as_bytes())
        .key_id(stranger.kid())
        .build()
        .unwrap();
    let pdp = fakes.pdp_builder().credentials(creds).build().unwrap();
    let e: PdpError = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    let refusal = fakes.mp.grant_assertions().last().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(refusal.contains("unknown client"), "{refusal}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("unknown client") && !shown.contains("unregistered-client"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_share_one_refresh() {
    let (fakes, pdp) = setup().await;
    let (mp, altinn) = (&fakes.mp, &fakes.altinn);
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!((mp.token_requests(), altinn.exchange_count()), (1, 1));

    // Every request in flight carries the revoked token and gets a 401.
    altinn.revoke_tokens();
    altinn.set_delay(Duration::from_millis(50));
    twenty_concurrent_permits(&pdp).await;
    assert_eq!((mp.token_requests(), altinn.exchange_count()), (2, 2), "one refresh for all");
}
