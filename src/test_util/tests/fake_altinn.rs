//! FakeAltinn: the exchange and the PDP's checks and answers; junk and shutdown for both fakes.

use super::*;

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
pub(super) fn sample_multi_request() -> Value {
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
async fn resource_registry_knows_default_added_and_ruled_resources() {
    let (_mp, altinn) = fakes("k").await;
    let url = |id: &str| format!("{}/resourceregistry/api/v1/resource/{id}", altinn.platform_url());
    let (status, body) = get_json(&url("kravogbetaling")).await;
    assert_eq!(status, 200);
    assert_eq!(body["identifier"], "kravogbetaling");
    let (status, body) = get_json(&url("ukjent-ressurs")).await;
    assert_eq!((status, body["status"].as_u64()), (404, Some(404)));
    altinn.add_resource("ukjent-ressurs");
    assert_eq!(get_json(&url("ukjent-ressurs")).await.0, 200);
    altinn.remove_resource("ukjent-ressurs");
    assert_eq!(get_json(&url("ukjent-ressurs")).await.0, 404);
    altinn.permit(Uuid::new_v4(), "read", "skattekort", "310702641");
    assert_eq!(get_json(&url("skattekort")).await.0, 200);
    // The fake's answers carry a Date header, as every HTTP server's do (for clock checks).
    let res = client().get(url("skattekort")).send().await.unwrap();
    assert!(res.headers().contains_key("date"));
}
