//! Readiness over real HTTP: `AltinnPdp::check_credentials` names the failing step (discovery,
//! grant, exchange, PDP) for each kind of wrong setup, and `Readiness` combines it with the key
//! store and the breaker, keeps results, and spends no grant while things work.

mod support;

use altinn_systemuser::pdp::{AltinnPdp, CheckStep, MaskinportenCredentials};
use altinn_systemuser::readiness::Readiness;
use altinn_systemuser::test_util::{EndpointMode, KeyRole, PdpAnswer, TestKey};
use std::time::Duration;
use support::{Fakes, PROVIDER_CLIENT_ID, SUBSCRIPTION_KEY};

/// The PDP client with these credentials, otherwise as `Fakes::pdp`.
fn pdp_with(fakes: &Fakes, credentials: MaskinportenCredentials, subscription_key: &str) -> AltinnPdp {
    AltinnPdp::builder()
        .platform_url(fakes.altinn.platform_url())
        .subscription_key(subscription_key)
        .credentials(credentials)
        .build()
        .unwrap()
}

fn credentials(fakes: &Fakes, client_id: &str, key: &TestKey) -> MaskinportenCredentials {
    MaskinportenCredentials::builder()
        .issuer(fakes.mp.issuer())
        .client_id(client_id)
        .private_key_pem(key.private_key_pkcs8_pem().as_bytes())
        .key_id(key.kid())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_working_setup_passes_every_step() {
    let fakes = Fakes::start().await;
    let pdp = fakes.pdp();
    pdp.check_credentials().await.unwrap();
    // One grant, one exchange, one PDP call: nothing from a cache.
    assert_eq!(fakes.mp.token_requests(), 1);
    assert_eq!(fakes.altinn.exchange_count(), 1);
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
    pdp.check_credentials().await.unwrap();
    assert_eq!(fakes.mp.token_requests(), 2, "the full check makes a fresh grant each time");
}

#[tokio::test]
async fn a_wrong_client_id_is_named_at_the_grant() {
    let fakes = Fakes::start().await;
    let pdp = pdp_with(&fakes, credentials(&fakes, "no-such-client", &fakes.provider_key), SUBSCRIPTION_KEY);
    let e = pdp.check_credentials().await.unwrap_err();
    assert_eq!(e.step(), CheckStep::Grant, "{e}");
    assert!(e.reason().contains("invalid_client"), "{e}");
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn a_wrong_key_is_named_at_the_grant() {
    let fakes = Fakes::start().await;
    TestKey::pregenerate(&[KeyRole::Rogue]);
    let rogue = TestKey::for_role(KeyRole::Rogue).with_kid(fakes.provider_key.kid());
    let pdp = pdp_with(&fakes, credentials(&fakes, PROVIDER_CLIENT_ID, &rogue), SUBSCRIPTION_KEY);
    let e = pdp.check_credentials().await.unwrap_err();
    assert_eq!(e.step(), CheckStep::Grant, "{e}");
    assert!(e.reason().contains("invalid_grant"), "{e}");
    let shown = e.to_string();
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}

#[tokio::test]
async fn a_refused_exchange_is_named_at_the_exchange() {
    let fakes = Fakes::start().await;
    fakes.altinn.set_exchange_mode(EndpointMode::Status(401));
    let e = fakes.pdp().check_credentials().await.unwrap_err();
    assert_eq!(e.step(), CheckStep::Exchange, "{e}");
    assert!(e.reason().contains("401"), "{e}");
    fakes.altinn.set_exchange_mode(EndpointMode::Status(403));
    let e = fakes.pdp().check_credentials().await.unwrap_err();
    assert_eq!(e.step(), CheckStep::Exchange, "{e}");
    assert!(e.reason().contains("403"), "{e}");
}

#[tokio::test]
async fn a_wrong_subscription_key_is_named_at_the_pdp() {
    let fakes = Fakes::start().await;
    let pdp = pdp_with(&fakes, fakes.credentials(), "not-the-subscription-key");
    let e = pdp.check_credentials().await.unwrap_err();
    assert_eq!(e.step(), CheckStep::Pdp, "{e}");
    assert!(e.reason().contains("subscription key"), "{e}");
    assert!(!e.to_string().contains("not-the-subscription-key"), "{e}");
}

#[tokio::test]
async fn metadata_for_another_issuer_is_named_at_discovery() {
    let fakes = Fakes::start().await;
    fakes.mp.set_metadata_issuer(Some("https://maskinporten.no/".into()));
    let e = fakes.pdp().check_credentials().await.unwrap_err();
    assert_eq!(e.step(), CheckStep::Discovery, "{e}");
    assert!(e.reason().contains("https://maskinporten.no/"), "{e}");
    assert_eq!(fakes.mp.token_requests(), 0, "no grant after a failed discovery");
}

#[tokio::test]
async fn readiness_reports_each_check_and_keeps_its_result() {
    let fakes = Fakes::start().await;
    let layer = fakes.maskinporten_layer();
    let readiness = Readiness::builder().key_store(layer.keys().clone()).pdp(fakes.pdp()).build();

    let report = readiness.check().await;
    assert!(report.is_ready(), "{:?}", report.to_json());
    assert_eq!(report.status_code(), 200);
    assert_eq!(
        report.to_json(),
        serde_json::json!({"status": "ready", "checks": {"maskinporten_keys": "ok", "pdp": "ok", "pdp_breaker": "ok"}})
    );
    // Probes within the kept time spend nothing.
    for _ in 0..5 {
        assert!(readiness.check().await.is_ready());
    }
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
    assert_eq!(fakes.mp.token_requests(), 1);
}

#[tokio::test]
async fn readiness_after_a_pass_is_one_pdp_call_with_the_cached_token() {
    let fakes = Fakes::start().await;
    let layer = fakes.maskinporten_layer();
    let readiness = Readiness::builder()
        .key_store(layer.keys().clone())
        .pdp(fakes.pdp())
        .keep_results_for(Duration::ZERO)
        .build();
    assert!(readiness.check().await.is_ready());
    let grants = fakes.mp.token_requests();
    for _ in 0..3 {
        assert!(readiness.check().await.is_ready());
    }
    assert_eq!(fakes.altinn.pdp_request_count(), 4, "one PDP call per check");
    assert!(
        fakes.mp.token_requests() <= grants + 1,
        "at most the one grant that fills the token cache"
    );

    // The subscription key stops working: the cheap check fails, the full one names the step.
    fakes.altinn.set_answer(PdpAnswer::Body {
        status: 401,
        content_type: "application/json".into(),
        body: r#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#.into(),
    });
    let report = readiness.check().await;
    assert!(!report.is_ready());
    let json = report.to_json();
    assert_eq!(json["status"], "not_ready");
    assert_eq!(json["checks"]["maskinporten_keys"], "ok");
    let cause = json["checks"]["pdp"].as_str().unwrap();
    assert!(cause.starts_with("pdp failed") && cause.contains("401"), "{cause}");
    assert_eq!(report.status_code(), 503);
}

#[tokio::test]
async fn readiness_names_keys_that_cannot_be_fetched() {
    let fakes = Fakes::start().await;
    fakes.mp.set_jwks_mode(EndpointMode::Status(503));
    let layer = fakes.maskinporten_layer();
    let readiness = Readiness::builder().key_store(layer.keys().clone()).build();
    let report = readiness.check().await;
    assert!(!report.is_ready());
    let json = report.to_json();
    let cause = json["checks"]["maskinporten_keys"].as_str().unwrap();
    assert!(cause.contains("503"), "{cause}");
    assert!(json["checks"].get("pdp").is_none(), "no PDP configured, none checked");
}

#[tokio::test]
async fn a_stalled_upstream_does_not_hold_probes() {
    let fakes = Fakes::start().await;
    // The exchange never answers: the check is stuck in it until its time budget.
    fakes.altinn.set_exchange_mode(EndpointMode::Hang);
    let layer = fakes.maskinporten_layer();
    let readiness = Readiness::builder()
        .key_store(layer.keys().clone())
        .pdp(fakes.pdp())
        .wait_at_most(Duration::from_millis(200))
        .build();
    // The first probes come back at once, not ready, while the one check runs on.
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let report = readiness.check().await;
        assert!(started.elapsed() < Duration::from_secs(4), "a probe waited {:?}", started.elapsed());
        assert!(!report.is_ready());
        assert_eq!(report.to_json()["checks"]["check"], "check in progress");
    }
    assert_eq!(fakes.mp.token_requests(), 1, "the probes shared one check");
}
