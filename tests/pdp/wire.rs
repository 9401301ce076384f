//! Decisions and credentials on the wire: what the client sends to Maskinporten, the exchange and
//! the PDP, and that its tokens are reused.

use crate::support::{OTHER_ORG, OWNER_ORG, PROVIDER_CLIENT_ID, PROVIDER_ORG, RESOURCE, SUBSCRIPTION_KEY};
use crate::{FixedToken, about, now_secs, question, setup, setup_with, twenty_concurrent_permits};
use altinn_systemuser::pdp::{AUTHORIZE_SCOPE, AltinnPdp, Decision, PdpErrorKind};
use altinn_systemuser::test_util::{PdpAnswer, decode_unverified};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

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
async fn wrong_subscription_key_is_unauthorized() {
    let (fakes, pdp) = setup_with(|p| p.subscription_key("not-the-key")).await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Unauthorized);
    assert!(!e.to_string().contains("subscription"), "{e}");
}

#[tokio::test]
async fn a_single_question_is_sent_as_exactly_this_json() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", "resource-a", "910459880");
    assert_eq!(pdp.decide(&about(su, "resource-a", "910459880")).await, Ok(Decision::Permit));

    let calls = fakes.altinn.pdp_requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert!(call.header("authorization").unwrap().starts_with("Bearer eyJ"));
    assert_eq!(call.header("ocp-apim-subscription-key"), Some(SUBSCRIPTION_KEY));
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.header("accept"), Some("application/json"));
    assert_eq!(
        call.json().unwrap(),
        json!({"Request": {
            "ReturnPolicyIdList": false,
            "AccessSubject": [{"Attribute": [{"AttributeId": "urn:altinn:systemuser:uuid", "Value": su.to_string()}]}],
            "Action": [{"Attribute": [{"AttributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "Value": "read",
                "DataType": "http://www.w3.org/2001/XMLSchema#string"}]}],
            "Resource": [{"Attribute": [
                {"AttributeId": "urn:altinn:resource", "Value": "resource-a"},
                {"AttributeId": "urn:altinn:organization:identifier-no", "Value": "910459880"}]}],
        }})
    );
}

#[tokio::test]
async fn a_custom_token_source_is_the_bearer_and_nothing_is_fetched() {
    let fakes = crate::Fakes::start().await;
    let source = FixedToken::from(&fakes.altinn);
    let token = source.0.secret().to_owned();
    let pdp = AltinnPdp::builder()
        .platform_url(fakes.altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .token_source(source)
        .build()
        .unwrap();
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(
        pdp.decide(&about(Uuid::new_v4(), "resource-a", "910459880")).await,
        Ok(Decision::Permit)
    );
    let calls = fakes.altinn.pdp_requests();
    assert_eq!(calls[0].header("authorization"), Some(format!("Bearer {token}").as_str()));
    assert_eq!(
        (
            fakes.altinn.pdp_request_count(),
            fakes.mp.token_requests(),
            fakes.altinn.exchange_count()
        ),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn no_subscription_key_header_without_a_subscription_key() {
    let fakes = crate::Fakes::start().await;
    let pdp = AltinnPdp::builder()
        .platform_url(fakes.altinn.platform_url())
        .token_source(FixedToken::from(&fakes.altinn))
        .build()
        .unwrap();
    // Answered without the fake's checks, which would refuse a call without the key.
    let permit = json!({ "response": [{ "decision": "Permit" }] });
    fakes.altinn.set_answer(crate::body(200, "application/json", permit.to_string()));
    assert_eq!(
        pdp.decide(&about(Uuid::new_v4(), "resource-a", "910459880")).await,
        Ok(Decision::Permit)
    );
    let calls = fakes.altinn.pdp_requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header("ocp-apim-subscription-key"), None);
}
