//! The fakes, driven over HTTP: FakeMaskinporten (`fake_maskinporten.rs`), FakeAltinn
//! (`fake_altinn.rs`) and their scripted answers (`scripting.rs`).

mod fake_altinn;
mod fake_maskinporten;
mod scripting;

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
