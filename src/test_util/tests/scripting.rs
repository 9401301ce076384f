//! Scripted answers: raw, chunked and delayed PDP answers, rules with any decision, reversed
//! results, exchange formats and one-shot modes, a slow token endpoint.

use super::fake_altinn::sample_multi_request;
use super::*;

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
