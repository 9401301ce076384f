//! The fakes, driven over HTTP.

use super::*;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Both fakes, their keys generated in parallel; the PDP requires `subscription_key`.
async fn fakes(subscription_key: &str) -> (FakeMaskinporten, FakeAltinn) {
    TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Altinn]);
    let mp = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&mp, subscription_key).await;
    (mp, altinn)
}

/// One HTTP client for all these tests: building one loads the platform's certificates, which
/// takes tens of milliseconds. It keeps no idle connections, so no connection outlives the test
/// (and the Tokio runtime) that opened it.
fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
        })
        .clone()
}

async fn get_json(url: &str) -> (u16, Value) {
    let res = client().get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn form(assertion: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", JWT_BEARER)
        .append_pair("assertion", assertion)
        .finish()
}

async fn post_token(mp: &FakeMaskinporten, assertion: &str) -> (u16, Value) {
    let res = client()
        .post(mp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(assertion))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, serde_json::from_slice(&res.bytes().await.unwrap()).unwrap_or(Value::Null))
}

async fn pdp(altinn: &FakeAltinn, token: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = client()
        .post(altinn.pdp_url())
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        req = req.header("Ocp-Apim-Subscription-Key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, serde_json::from_slice(&res.bytes().await.unwrap()).unwrap_or(Value::Null))
}

fn single(user: Uuid, action: &str, resource: &str, org: &str) -> Value {
    json!({ "Request": {
        "ReturnPolicyIdList": false,
        "AccessSubject": [{ "Attribute": [{ "AttributeId": "urn:altinn:systemuser:uuid", "Value": user.to_string() }] }],
        "Action": [{ "Attribute": [{ "AttributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "Value": action,
            "DataType": "http://www.w3.org/2001/XMLSchema#string" }] }],
        "Resource": [{ "Attribute": [
            { "AttributeId": "urn:altinn:resource", "Value": resource },
            { "AttributeId": "urn:altinn:organization:identifier-no", "Value": org } ] }]
    } })
}

#[tokio::test]
async fn metadata_names_the_endpoints() {
    let mp = FakeMaskinporten::start().await;
    assert!(mp.issuer().starts_with("http://127.0.0.1:") && mp.issuer().ends_with('/'));
    let (status, meta) = get_json(&mp.metadata_url()).await;
    assert_eq!(status, 200);
    assert_eq!(meta["issuer"], mp.issuer());
    assert_eq!(meta["jwks_uri"], mp.jwks_uri());
    assert_eq!(meta["token_endpoint"], mp.token_endpoint());
    mp.set_metadata_issuer(Some("https://evil.example/".into()));
    assert_eq!(get_json(&mp.metadata_url()).await.1["issuer"], "https://evil.example/");
    assert_eq!(mp.metadata_requests(), 2);
}

#[tokio::test]
async fn jwks_publishes_the_keys_extras_and_cache_control() {
    let mp = FakeMaskinporten::start().await;
    let (status, jwks) = get_json(&mp.jwks_uri()).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"], json!([mp.signing_key().public_jwk()]));

    let old = mp.signing_key().kid().to_owned();
    let new = mp.rotate_key();
    mp.set_extra_jwks(vec![json!({"kty": "EC", "kid": "ec"})]);
    mp.set_jwks_cache_control(Some("max-age=3600".into()));
    let res = client().get(mp.jwks_uri()).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "max-age=3600");
    let jwks: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [old.as_str(), new.as_str(), "ec"]);
    // A rotation brings other key material, not just another kid.
    assert_ne!(jwks["keys"][0]["n"], jwks["keys"][1]["n"]);
    assert_eq!(mp.jwks_requests(), 2);
}

#[tokio::test]
async fn endpoint_modes_break_the_answers() {
    let mp = FakeMaskinporten::start().await;
    mp.set_jwks_mode(EndpointMode::Garbage);
    let res = client().get(mp.jwks_uri()).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "not json{");
    mp.set_jwks_mode(EndpointMode::Status(503));
    assert_eq!(get_json(&mp.jwks_uri()).await.0, 503);
    mp.set_jwks_mode(EndpointMode::Empty);
    assert_eq!(get_json(&mp.jwks_uri()).await.1, json!({"keys": []}));
    mp.set_jwks_mode(EndpointMode::Oversized);
    let res = client().get(mp.jwks_uri()).send().await.unwrap();
    assert!(res.bytes().await.unwrap().len() > 1 << 20);
    mp.set_metadata_mode(EndpointMode::Hang);
    let hung = client().get(mp.metadata_url()).timeout(Duration::from_millis(200)).send().await;
    assert!(hung.is_err());
    // Requests are counted whatever the mode.
    assert_eq!(mp.metadata_requests(), 1);
    assert_eq!(mp.jwks_requests(), 4);
}

#[tokio::test]
async fn tokens_are_signed_and_verifiable() {
    let mp = FakeMaskinporten::start().await;
    let user = Uuid::new_v4();
    let token = mp.system_user_token(user, "310702641").scope("a:b c:d").sign();
    let (header, claims) = decode_unverified(&token).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "kid": mp.signing_key().kid()}));
    assert_eq!(claims["iss"], mp.issuer());
    assert_eq!(claims["scope"], "a:b c:d");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    assert_eq!(
        claims["consumer"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:991825827"})
    );
    let details = &claims["authorization_details"][0];
    assert_eq!(details["type"], "urn:altinn:systemuser");
    assert_eq!(details["systemuser_id"], json!([user.to_string()]));
    assert_eq!(
        details["systemuser_org"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:310702641"})
    );
    assert_eq!(mp.verify_access_token(&token).unwrap(), claims);

    let stranger = TestKey::for_role(KeyRole::Rogue).with_kid("stranger");
    assert!(mp.verify_access_token(&mp.token().signed_by(&stranger).sign()).is_none());
    assert!(mp.verify_access_token(&mp.token().lifetime(Duration::ZERO).sign()).is_none());
    assert!(mp.verify_access_token(&mp.token().alg("none").sign()).is_none());
    assert!(mp.verify_access_token("not a token").is_none());
    mp.add_key(stranger.clone());
    assert!(mp.verify_access_token(&mp.token().signed_by(&stranger).sign()).is_some());
    mp.remove_key("stranger");
    assert!(mp.verify_access_token(&mp.token().signed_by(&stranger).sign()).is_none());
}

/// A fake with `client-1` registered (scope `altinn:authorization/authorize`) under `key`.
async fn with_client() -> (FakeMaskinporten, TestKey) {
    let mp = FakeMaskinporten::start().await;
    let key = TestKey::for_role(KeyRole::Vendor).with_kid("client-key");
    mp.register_client(ClientRegistration::new(
        "client-1",
        &key,
        "923609016",
        &["altinn:authorization/authorize"],
    ));
    (mp, key)
}

#[tokio::test]
async fn token_endpoint_grants_a_good_assertion_once() {
    let (mp, key) = with_client().await;
    let assertion = mp.client_assertion("client-1", &key, "altinn:authorization/authorize").sign();
    let (status, body) = post_token(&mp, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["scope"], "altinn:authorization/authorize");
    let claims = mp.verify_access_token(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["client_id"], "client-1");
    assert_eq!(claims["consumer"]["ID"], "0192:923609016");

    // Replayed jti.
    let (status, body) = post_token(&mp, &assertion).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let seen = mp.grant_assertions();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["error"], Value::Null);
    assert_eq!(seen[0]["claims"]["iss"], "client-1");
    assert!(seen[1]["error"].as_str().unwrap().contains("jti"));
}

#[tokio::test]
async fn token_endpoint_refuses_bad_assertions() {
    let (mp, key) = with_client().await;
    // Wrong audience.
    let wrong_aud = mp
        .client_assertion("client-1", &key, "altinn:authorization/authorize")
        .claim("aud", json!("https://maskinporten.no/"));
    let (status, body) = post_token(&mp, &wrong_aud.sign()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // Scope not allowed, too long a lifetime, a stranger's signature, garbage.
    let scope = mp
        .client_assertion("client-1", &key, "altinn:authorization/authorize other:scope")
        .sign();
    assert_eq!(post_token(&mp, &scope).await.1["error"], "invalid_scope");
    let long = mp
        .client_assertion("client-1", &key, "altinn:authorization/authorize")
        .lifetime(Duration::from_secs(121))
        .sign();
    assert_eq!(post_token(&mp, &long).await.1["error"], "invalid_grant");
    let forged = mp
        .client_assertion(
            "client-1",
            &TestKey::for_role(KeyRole::Rogue).with_kid("client-key"),
            "altinn:authorization/authorize",
        )
        .sign();
    assert_eq!(post_token(&mp, &forged).await.1["error"], "invalid_grant");
    assert_eq!(post_token(&mp, "garbage").await.1["error"], "invalid_grant");
    // Every assertion is recorded, refused ones too.
    assert_eq!(mp.grant_assertions().len(), 5);
    assert!(mp.grant_assertions().iter().all(|a| a["error"].is_string()));
}

#[tokio::test]
async fn token_endpoint_refuses_other_grant_types() {
    let mp = FakeMaskinporten::start().await;
    let res = client()
        .post(mp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password");
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&res.bytes().await.unwrap()).unwrap()["error"],
        "unsupported_grant_type"
    );
    // Counted, but no assertion to record.
    assert_eq!(mp.grant_assertions().len(), 0);
    assert_eq!(mp.token_requests(), 1);
}

#[tokio::test]
async fn exchange_answers_text_json_or_401() {
    let (mp, altinn) = fakes("sub-key").await;
    assert!(altinn.platform_url().starts_with("http://127.0.0.1:") && !altinn.platform_url().ends_with('/'));

    // Plain text.
    let mp_token = mp.token().scope("altinn:authorization/authorize").sign();
    let res = client().get(altinn.exchange_url()).bearer_auth(&mp_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let altinn_token = res.text().await.unwrap();
    let (header, claims) = decode_unverified(&altinn_token).unwrap();
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], altinn.token_issuer());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1800);
    assert_eq!(claims["urn:altinn:orgNumber"], "991825827");
    // A JSON string.
    let res = client()
        .get(altinn.exchange_url())
        .bearer_auth(&mp_token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/json; charset=utf-8");
    let json_token: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert!(json_token.is_string());
    // Refusals: a token Maskinporten did not sign, no token.
    let res = client()
        .get(altinn.exchange_url())
        .bearer_auth(TestKey::for_role(KeyRole::Rogue).sign_jws("RS256", &json!({}), "{}"))
        .send()
        .await;
    assert_eq!(res.unwrap().status(), 401);
    assert_eq!(client().get(altinn.exchange_url()).send().await.unwrap().status(), 401);
    assert_eq!(altinn.exchange_count(), 4);
}

#[tokio::test]
async fn pdp_permits_by_rule_and_is_not_applicable_otherwise() {
    let (_mp, altinn) = fakes("sub-key").await;
    let token = altinn.altinn_token();
    let user = Uuid::new_v4();
    altinn.permit(user, "read", "kravogbetaling", "923609016");
    let (status, body) = pdp(
        &altinn,
        &token,
        Some("sub-key"),
        &single(user, "read", "kravogbetaling", "923609016"),
    )
    .await;
    assert_eq!(status, 200);
    let r = &body["response"][0];
    assert_eq!(r["decision"], "Permit");
    assert_eq!(r["status"]["statusCode"]["value"], STATUS_OK);
    assert_eq!(
        r["obligations"][0]["attributeAssignment"][0]["category"],
        "urn:altinn:minimum-authenticationlevel"
    );
    assert_eq!(r["category"], Value::Null);
    let (_, body) = pdp(
        &altinn,
        &token,
        Some("sub-key"),
        &single(user, "write", "kravogbetaling", "923609016"),
    )
    .await;
    assert_eq!(body["response"][0]["decision"], "NotApplicable");
    assert_eq!(body["response"][0]["obligations"], Value::Null);

    let recorded = altinn.pdp_requests();
    assert_eq!(recorded.len(), altinn.pdp_request_count());
    assert_eq!(recorded[0].path, "/authorization/api/v1/authorize");
    assert_eq!(recorded[0].header("ocp-apim-subscription-key"), Some("sub-key"));
    assert_eq!(recorded[0].json().unwrap(), single(user, "read", "kravogbetaling", "923609016"));
}

#[tokio::test]
async fn pdp_checks_key_token_media_type_json_and_syntax() {
    let (mp, altinn) = fakes("sub-key").await;
    let altinn_token = altinn.altinn_token();
    let mp_token = mp.token().scope("altinn:authorization/authorize").sign();
    let user = Uuid::new_v4();
    let ok = single(user, "read", "kravogbetaling", "923609016");
    assert_eq!(pdp(&altinn, &altinn_token, Some("sub-key"), &ok).await.0, 200);
    assert_eq!(pdp(&altinn, &altinn_token, None, &ok).await.0, 401);
    assert_eq!(pdp(&altinn, &altinn_token, Some("wrong"), &ok).await.0, 401);
    assert_eq!(pdp(&altinn, &mp_token, Some("sub-key"), &ok).await.0, 401);
    let res = client()
        .post(altinn.pdp_url())
        .bearer_auth(&altinn_token)
        .header("ocp-apim-subscription-key", "sub-key")
        .header("content-type", "text/plain")
        .body(ok.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = client()
        .post(altinn.pdp_url())
        .bearer_auth(&altinn_token)
        .header("ocp-apim-subscription-key", "sub-key")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let bad = single(user, "read", "kravogbetaling", "92360901");
    let (status, body) = pdp(&altinn, &altinn_token, Some("sub-key"), &bad).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"].as_array().unwrap().len(), 1);
    assert_eq!(body["response"][0]["decision"], "Indeterminate");
    assert_eq!(body["response"][0]["status"]["statusCode"]["value"], STATUS_SYNTAX_ERROR);
}

#[tokio::test]
async fn pdp_reads_lower_case_member_names() {
    let (_mp, altinn) = fakes("sub-key").await;
    let user = Uuid::new_v4();
    altinn.permit(user, "read", "kravogbetaling", "923609016");
    let lower = json!({"request": {"accessSubject": {"attribute": [{"attributeId": "urn:altinn:systemuser:uuid", "value": user.to_string()}]},
        "action": {"attribute": [{"attributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "value": "read"}]},
        "resource": {"attribute": [{"attributeId": "urn:altinn:resource", "value": "kravogbetaling"},
                                   {"attributeId": "urn:altinn:organization:identifier-no", "value": "923609016"}]}}});
    assert_eq!(
        pdp(&altinn, &altinn.altinn_token(), Some("sub-key"), &lower).await.1["response"][0]["decision"],
        "Permit"
    );
}

#[tokio::test]
async fn one_shot_answers_come_before_the_default() {
    let (_mp, altinn) = fakes("sub-key").await;
    let token = altinn.altinn_token();
    let ok = single(Uuid::new_v4(), "read", "kravogbetaling", "923609016");
    altinn.set_answer(PdpAnswer::Decision("Deny".into()));
    altinn.push_answer(PdpAnswer::TooManyRequests { retry_after_secs: 7 });
    altinn.push_answer(PdpAnswer::Status(503));
    let res = client().post(altinn.pdp_url()).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["retry-after"].to_str().unwrap()), (429, "7"));
    assert_eq!(pdp(&altinn, &token, Some("sub-key"), &ok).await.0, 503);
    assert_eq!(
        pdp(&altinn, &token, Some("sub-key"), &ok).await.1["response"][0]["decision"],
        "Deny"
    );
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_new_ones_accepted() {
    let (_mp, altinn) = fakes("sub-key").await;
    let token = altinn.altinn_token();
    let ok = single(Uuid::new_v4(), "read", "kravogbetaling", "923609016");
    assert_eq!(pdp(&altinn, &token, Some("sub-key"), &ok).await.0, 200);
    altinn.revoke_tokens();
    assert_eq!(pdp(&altinn, &token, Some("sub-key"), &ok).await.0, 401);
    assert_eq!(pdp(&altinn, &altinn.altinn_token(), Some("sub-key"), &ok).await.0, 200);
}

#[tokio::test]
async fn multi_request_echoes_categories() {
    let (_mp, altinn) = fakes("k").await;
    let user: Uuid = "47caea5b-a80b-4343-b1d3-31eb523a4e28".parse().unwrap();
    altinn.permit(user, "read", "ttd-externalpdp-resource1", "910459880");
    let request = sample_multi_request();
    let (status, body) = pdp(&altinn, &altinn.altinn_token(), Some("k"), &request).await;
    assert_eq!(status, 200);
    let results = body["response"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["decision"], "Permit");
    assert_eq!(results[1]["decision"], "NotApplicable");
    let category = &results[1]["category"];
    assert_eq!(
        category[0]["categoryId"],
        "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject"
    );
    assert_eq!(category[0]["attribute"][0]["value"], user.to_string());
    assert_eq!(category[1]["attribute"][0]["value"], "read");
    assert_eq!(
        category[2]["categoryId"],
        "urn:oasis:names:tc:xacml:3.0:attribute-category:resource"
    );
    assert_eq!(category[2]["attribute"][0]["value"], "ttd-externalpdp-resource2");
    assert_eq!(
        category[2]["attribute"][1],
        json!({"attributeId": "urn:altinn:organization:identifier-no", "value": "910459880", "issuer": null,
               "dataType": "http://www.w3.org/2001/XMLSchema#string", "includeInResult": false})
    );

    // An unknown reference makes the whole request a syntax error.
    let mut broken = request.clone();
    broken["Request"]["MultiRequests"]["RequestReference"][1]["ReferenceId"][2] = json!("r9");
    let (_, body) = pdp(&altinn, &altinn.altinn_token(), Some("k"), &broken).await;
    assert_eq!(body["response"].as_array().unwrap().len(), 1);
    assert_eq!(body["response"][0]["status"]["statusCode"]["value"], STATUS_SYNTAX_ERROR);
}

/// Altinn's own multi-request test case (`pdp-request-systemuser-multirequest.json`).
fn sample_multi_request() -> Value {
    let attr = |id: &str, v: &str| json!({"AttributeId": id, "Value": v, "IncludeInResult": true});
    json!({"Request": {
        "AccessSubject": [{"Id": "s1", "Attribute": [attr("urn:altinn:systemuser:uuid", "47caea5b-a80b-4343-b1d3-31eb523a4e28")]}],
        "Action": [{"Id": "a1", "Attribute": [attr("urn:oasis:names:tc:xacml:1.0:action:action-id", "read")]}],
        "Resource": [
            {"Id": "r1", "Attribute": [attr("urn:altinn:resource", "ttd-externalpdp-resource1"), attr("urn:altinn:organization:identifier-no", "910459880")]},
            {"Id": "r2", "Attribute": [attr("urn:altinn:resource", "ttd-externalpdp-resource2"), attr("urn:altinn:organization:identifier-no", "910459880")]}],
        "MultiRequests": {"RequestReference": [{"ReferenceId": ["s1", "a1", "r1"]}, {"ReferenceId": ["s1", "a1", "r2"]}]}
    }})
}

#[tokio::test]
async fn junk_never_breaks_the_fakes() {
    let (mp, altinn) = fakes("k").await;
    let token = altinn.altinn_token();
    let bodies = [
        json!(null),
        json!([]),
        json!({"Request": null}),
        json!({"Request": []}),
        json!({"Request": {"AccessSubject": 5}}),
        json!({"Request": {"AccessSubject": [1, 2]}}),
        json!({"Request": {"AccessSubject": {"Attribute": {"AttributeId": 1}}}}),
        json!({"Request": {"Request": {}, "request": {}}}),
        json!({"request": {}, "Request": {}}),
        json!({"Request": {"MultiRequests": {"RequestReference": [{"ReferenceId": [null]}, {}]}}}),
        json!({"Request": {"MultiRequests": {"RequestReference": [1, 2]}}}),
        json!({"Request": {"AccessSubject": {"Attribute": [{"AttributeId": "urn:altinn:systemuser:uuid", "Value": 1e308}]},
            "Action": {"Attribute": [{"AttributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "Value": [1]}]}}}),
    ];
    for body in &bodies {
        let (status, answer) = pdp(&altinn, &token, Some("k"), body).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            answer["response"][0]["status"]["statusCode"]["value"], STATUS_SYNTAX_ERROR,
            "{body}"
        );
    }
    for assertion in [
        "",
        ".",
        "..",
        "a.b.c",
        "e30.e30.",
        "e30.e30.e30.e30",
        "eyJhbGciOiJSUzI1NiJ9.bnVsbA.AA",
    ] {
        let (status, answer) = post_token(&mp, assertion).await;
        assert_eq!(status, 400, "{assertion}");
        assert!(answer["error"].is_string());
    }
    for form in ["%ZZ=%", "grant_type=a&grant_type=b", "&&&=", "assertion=x"] {
        let res = client()
            .post(mp.token_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        assert_eq!(res.send().await.unwrap().status(), 400, "{form}");
    }
    let res = client()
        .get(altinn.exchange_url())
        .header("authorization", "Bearer")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(get_json(&mp.metadata_url()).await.0, 200);
}

#[tokio::test]
async fn hanging_requests_end_at_shutdown() {
    let (_mp, altinn) = fakes("k").await;
    altinn.set_answer(PdpAnswer::Hang);
    let url = altinn.pdp_url();
    let pending = tokio::spawn(async move { client().post(url).send().await.map(|r| r.status().as_u16()) });
    while altinn.pdp_request_count() == 0 {
        tokio::task::yield_now().await;
    }
    altinn.shutdown();
    assert_eq!(pending.await.unwrap().unwrap(), 503);
}

#[tokio::test]
async fn jwk_alg_is_configurable() {
    let mp = FakeMaskinporten::start().await;
    assert_eq!(get_json(&mp.jwks_uri()).await.1["keys"][0]["alg"], "RS256");
    mp.set_jwks_key_alg(Some("RS512".into()));
    assert_eq!(get_json(&mp.jwks_uri()).await.1["keys"][0]["alg"], "RS512");
    mp.set_jwks_key_alg(None);
    assert!(get_json(&mp.jwks_uri()).await.1["keys"][0].get("alg").is_none());
}

// ---------------------------------------------------------------------------------------------
// Scripting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn raw_answers_carry_their_headers() {
    let (_mp, altinn) = fakes("k").await;
    altinn.push_answer(PdpAnswer::Raw {
        status: 503,
        headers: vec![("retry-after".into(), "12".into()), ("not a header".into(), "x".into())],
        body: "down".into(),
    });
    let res = client().post(altinn.pdp_url()).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "12");
    assert_eq!(res.text().await.unwrap(), "down");
}

#[tokio::test]
async fn chunked_answers_have_no_content_length() {
    let (_mp, altinn) = fakes("k").await;
    altinn.push_answer(PdpAnswer::Chunked { len: 5000 });
    let res = client().post(altinn.pdp_url()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-length").is_none());
    assert_eq!(res.bytes().await.unwrap(), vec![b' '; 5000]);
}

#[tokio::test]
async fn delayed_answers_wait_then_answer() {
    let (_mp, altinn) = fakes("k").await;
    altinn.push_answer(PdpAnswer::Status(418).after(Duration::from_millis(100)));
    let started = std::time::Instant::now();
    let res = client().post(altinn.pdp_url()).send().await.unwrap();
    assert_eq!(res.status(), 418);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(altinn.pdp_request_count(), 1, "recorded before the wait");
}

#[tokio::test]
async fn rules_decide_and_results_may_come_reversed() {
    let (_mp, altinn) = fakes("k").await;
    let user: Uuid = "47caea5b-a80b-4343-b1d3-31eb523a4e28".parse().unwrap();
    altinn.rule(user, "read", "ttd-externalpdp-resource1", "910459880", "Deny");
    altinn.permit(user, "read", "ttd-externalpdp-resource2", "910459880");
    // The last matching rule wins.
    altinn.rule(user, "read", "ttd-externalpdp-resource2", "910459880", "Indeterminate");
    let (_, body) = pdp(&altinn, &altinn.altinn_token(), Some("k"), &sample_multi_request()).await;
    let decisions: Vec<&str> = body["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["Deny", "Indeterminate"]);
    assert_eq!(body["response"][0]["obligations"], Value::Null);

    altinn.set_results_reversed(true);
    let (_, body) = pdp(&altinn, &altinn.altinn_token(), Some("k"), &sample_multi_request()).await;
    let results = body["response"].as_array().unwrap();
    assert_eq!(results[0]["decision"], "Indeterminate");
    assert_eq!(results[0]["category"][2]["attribute"][0]["value"], "ttd-externalpdp-resource2");
    assert_eq!(results[1]["decision"], "Deny");
}

#[tokio::test]
async fn exchange_formats_and_one_shot_modes() {
    let (mp, altinn) = fakes("k").await;
    let mp_token = mp.token().scope("altinn:authorization/authorize").sign();
    let exchange = |accept: &'static str| {
        client()
            .get(altinn.exchange_url())
            .bearer_auth(&mp_token)
            .header("accept", accept)
            .send()
    };
    altinn.set_exchange_format(ExchangeFormat::PlainText);
    let res = exchange("application/json").await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(decode_unverified(&res.text().await.unwrap()).is_some());
    altinn.set_exchange_format(ExchangeFormat::JsonString);
    let res = exchange("text/plain").await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/json; charset=utf-8");
    let token: String = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert!(decode_unverified(&token).is_some());

    // One-shot modes first, in order, then the set mode.
    altinn.push_exchange_mode(EndpointMode::Status(401));
    altinn.push_exchange_mode(EndpointMode::Status(500));
    let statuses = [
        exchange("*/*").await.unwrap().status(),
        exchange("*/*").await.unwrap().status(),
        exchange("*/*").await.unwrap().status(),
    ];
    assert_eq!(statuses, [401, 500, 200]);
}

#[tokio::test]
async fn token_endpoint_delay() {
    let mp = FakeMaskinporten::start().await;
    mp.set_token_mode(EndpointMode::Status(400));
    mp.set_token_delay(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let (status, _) = post_token(&mp, "x.y.z").await;
    assert_eq!(status, 400);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(mp.token_requests(), 1);
}
