//! The quickstart's own flow: the example's app, in-process, with its embedded fakes, and with
//! the environment variables pointed at fakes this test starts.

mod support;

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

use altinn_systemuser::test_util::{ClientRegistration, FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use quickstart::{DEMO_CLIENT_ORG, DEMO_OTHER_ORG, DEMO_OWNER_ORG, DEMO_SYSTEM_USER, Settings};
use std::collections::HashMap;
use support::serve;
use uuid::Uuid;

const KEYS: [&str; 9] = [
    "system_user_id",
    "system_user_org",
    "system_id",
    "vendor_org",
    "client_id",
    "scopes",
    "resource",
    "action",
    "party",
];

#[tokio::test]
async fn embedded_demo_flow() {
    let app = quickstart::build(&Settings::from_lookup(|_| None)).await.unwrap();
    let tokens = app.embedded.as_ref().unwrap().tokens.clone();
    let base = serve(app.router).await;
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // The printed commands name the same routes and tokens.
    let curl = quickstart::curl_commands(&base, &tokens);
    assert!(curl.contains(&tokens.system_user) && curl.contains(&format!("{base}/krav/{DEMO_OTHER_ORG}")));

    let r = get("/whoami", Some(&tokens.system_user)).await.unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    for k in KEYS {
        assert!(!j[k].is_null(), "missing {k} in {j}");
    }
    assert_eq!(j["system_user_id"], DEMO_SYSTEM_USER);
    assert_eq!(j["system_user_org"], DEMO_OWNER_ORG);
    assert_eq!(j["vendor_org"], "991825827");
    assert_eq!(j["party"], DEMO_OWNER_ORG);
    assert_eq!(j["action"], "read");
    assert_eq!(j["resource"], "kravogbetaling");
    assert_eq!(j["scopes"], serde_json::json!(["skatteetaten:kravogbetalinger"]));

    let r = get(&format!("/krav/{DEMO_CLIENT_ORG}"), Some(&tokens.system_user)).await.unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(j["party"], DEMO_CLIENT_ORG);

    let r = get(&format!("/krav/{DEMO_OTHER_ORG}"), Some(&tokens.system_user)).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(format!("{base}/krav/{DEMO_CLIENT_ORG}"))
        .bearer_auth(&tokens.system_user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "write is not permitted");
    let r = get("/whoami", Some(&tokens.broken)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let r = get("/whoami", None).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = get("/krav/310702640", Some(&tokens.system_user)).await.unwrap();
    assert_eq!(r.status(), 400, "bad check digit in the path");
    let r = get("/healthz", None).await.unwrap();
    assert_eq!(r.status(), 200);

    // The metrics, without a token: the named series, after the requests above.
    let r = get("/metrics", None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let value = |series: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"));
        line[series.len()..].trim().parse().unwrap()
    };
    let requests = |layer: &str, outcome: &str, reason: &str| {
        value(&format!(
            r#"altinn_systemuser_requests_total{{layer="{layer}",outcome="{outcome}",reason="{reason}"}}"#
        ))
    };
    // Other tests of this binary share the process's recorder: at least what this one did.
    assert!(requests("systemuser", "allowed", "ok") >= 2.0);
    assert!(requests("systemuser", "refused", "access-not-granted") >= 2.0);
    assert!(requests("systemuser", "refused", "invalid-party") >= 1.0);
    assert!(requests("maskinporten", "refused", "invalid-signature") >= 1.0);
    assert!(requests("maskinporten", "refused", "missing-token") >= 1.0);
    assert!(value(r#"altinn_systemuser_pdp_requests_total{result="permit"}"#) >= 2.0);
    assert!(value(r#"altinn_systemuser_pdp_requests_total{result="not_applicable"}"#) >= 2.0);
    assert!(value(r#"altinn_systemuser_decision_cache_total{result="miss"}"#) >= 4.0);
    assert!(value(r#"altinn_systemuser_credentials_refresh_total{step="grant",result="ok"}"#) >= 1.0);
    assert!(value(r#"altinn_systemuser_credentials_refresh_total{step="exchange",result="ok"}"#) >= 1.0);
    let issuer = "maskinporten";
    assert!(value(&format!(r#"altinn_systemuser_jwks_refresh_total{{issuer="{issuer}",result="ok"}}"#)) >= 1.0);
    let fetched = value(&format!(
        r#"altinn_systemuser_jwks_last_success_timestamp_seconds{{issuer="{issuer}"}}"#
    ));
    assert!(fetched > 1.7e9, "a Unix time: {fetched}");
    // A histogram with the crate's buckets (1 ms to 10 s), not a summary.
    assert!(value(r#"altinn_systemuser_pdp_request_duration_seconds_bucket{le="0.001"}"#) >= 0.0);
    assert!(value(r#"altinn_systemuser_pdp_request_duration_seconds_bucket{le="10"}"#) >= 4.0);
    assert!(value("altinn_systemuser_pdp_request_duration_seconds_count") >= 4.0);
    // No label carries a token, an id or a party.
    assert!(!text.contains(&tokens.system_user) && !text.contains(DEMO_SYSTEM_USER) && !text.contains(DEMO_CLIENT_ORG));
    // Readiness: keys, the provider's credentials through to the PDP, the breaker; no token.
    let r = get("/readyz", None).await.unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"status": "ready", "checks": {"maskinporten_keys": "ok", "altinn_keys": "ok", "pdp": "ok", "pdp_breaker": "ok"}})
    );

    // The Altinn-issued token of the printed commands: the same system user, 200.
    assert!(curl.contains(&format!("export ALTINN_TOKEN='{}'", tokens.altinn)));
    assert!(curl.contains("Authorization: Bearer $ALTINN_TOKEN"));
    let r = get("/whoami", Some(&tokens.altinn)).await.unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (j["system_user_id"].as_str(), j["issuer"].as_str()),
        (Some(DEMO_SYSTEM_USER), Some("altinn"))
    );
}

/// The quickstart against fakes this test starts, with the provider's client id and the
/// subscription key given; `/readyz` names what is wrong.
#[tokio::test]
async fn readyz_names_wrong_credentials() {
    let (mp, altinn, dir, key_file) = external_services().await;
    let readyz = async |client_id: &str, subscription_key: &str| {
        let vars: HashMap<&str, String> = HashMap::from([
            ("MASKINPORTEN_ISSUER", mp.issuer()),
            ("ALTINN_PLATFORM_URL", altinn.platform_url()),
            ("ALTINN_SUBSCRIPTION_KEY", subscription_key.to_owned()),
            ("PDP_CLIENT_ID", client_id.to_owned()),
            ("PDP_KEY_ID", "provider-kid".to_owned()),
            ("PDP_PRIVATE_KEY_FILE", key_file.to_string_lossy().into_owned()),
        ]);
        let app = quickstart::build(&Settings::from_lookup(|k| vars.get(k).cloned())).await.unwrap();
        let base = serve(app.router).await;
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        let status = r.status().as_u16();
        let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        (status, j)
    };
    let (status, j) = readyz("provider-client", "the-subscription-key").await;
    assert_eq!((status, j["status"].as_str()), (200, Some("ready")), "{j}");

    let (status, j) = readyz("provider-client", "a-wrong-subscription-key").await;
    assert_eq!((status, j["status"].as_str()), (503, Some("not_ready")), "{j}");
    assert_eq!(j["checks"]["maskinporten_keys"], "ok");
    let cause = j["checks"]["pdp"].as_str().unwrap();
    assert!(cause.contains("subscription key"), "{cause}");
    assert!(!j.to_string().contains("a-wrong-subscription-key"), "{j}");

    let (status, j) = readyz("no-such-client", "the-subscription-key").await;
    assert_eq!(status, 503, "{j}");
    let cause = j["checks"]["pdp"].as_str().unwrap();
    assert!(cause.starts_with("grant failed") && cause.contains("invalid_client"), "{cause}");
    std::fs::remove_dir_all(&dir).ok();
}

/// FakeMaskinporten and FakeAltinn started by the test (not the example's embedded ones), with
/// the provider's client `provider-client` registered under key `provider-kid`, whose private key
/// is written to a file: (Maskinporten, Altinn, the file's directory, the file).
async fn external_services() -> (FakeMaskinporten, FakeAltinn, std::path::PathBuf, std::path::PathBuf) {
    let mp = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&mp, "the-subscription-key").await;
    let provider = TestKey::for_role(KeyRole::Provider).with_kid("provider-kid");
    mp.register_client(ClientRegistration::new(
        "provider-client",
        &provider,
        "974760673",
        &["altinn:authorization/authorize"],
    ));
    let dir = std::env::temp_dir().join(format!("quickstart-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("provider.pem");
    std::fs::write(&key_file, provider.private_key_pkcs8_pem()).unwrap();
    (mp, altinn, dir, key_file)
}

#[tokio::test]
async fn environment_variables_are_honoured() {
    let (mp, altinn, dir, key_file) = external_services().await;
    let su = Uuid::new_v4();
    altinn.permit(su, "read", "skattekort", "310702641");

    let vars: HashMap<&str, String> = HashMap::from([
        ("QUICKSTART_ADDR", "127.0.0.1:0".to_owned()),
        ("MASKINPORTEN_ISSUER", mp.issuer()),
        ("MASKINPORTEN_SCOPE", "nav:lonn".to_owned()),
        ("ALTINN_PLATFORM_URL", altinn.platform_url()),
        ("ALTINN_SUBSCRIPTION_KEY", "the-subscription-key".to_owned()),
        ("ALTINN_RESOURCE", "skattekort".to_owned()),
        ("PDP_CLIENT_ID", "provider-client".to_owned()),
        ("PDP_KEY_ID", "provider-kid".to_owned()),
        ("PDP_PRIVATE_KEY_FILE", key_file.to_string_lossy().into_owned()),
    ]);
    let settings = Settings::from_lookup(|k| vars.get(k).cloned());
    assert_eq!(settings.addr, "127.0.0.1:0");
    let app = quickstart::build(&settings).await.unwrap();
    assert!(app.embedded.is_none(), "no embedded fakes when both URLs are set");
    let base = serve(app.router).await;
    let http = reqwest::Client::new();

    let token = mp.system_user_token(su, "310702641").scope("nav:lonn").sign();
    let r = http.get(format!("{base}/whoami")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(j["resource"], "skattekort");
    // The scope variable is enforced.
    let wrong_scope = mp.system_user_token(su, "310702641").scope("skatteetaten:kravogbetalinger").sign();
    assert_eq!(
        http.get(format!("{base}/whoami"))
            .bearer_auth(&wrong_scope)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // The PDP was called with the subscription key and a token from the provider's own grant.
    let pdp = altinn.pdp_requests();
    assert_eq!(pdp.len(), 1);
    assert_eq!(pdp[0].header("ocp-apim-subscription-key"), Some("the-subscription-key"));
    let grants = mp.grant_assertions();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["claims"]["iss"], "provider-client");
    assert_eq!(grants[0]["header"]["kid"], "provider-kid");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn incomplete_configuration_is_a_clear_error() {
    let only_issuer = Settings::from_lookup(|k| (k == "MASKINPORTEN_ISSUER").then(|| "https://test.maskinporten.no/".to_owned()));
    let e = quickstart::build(&only_issuer).await.err().unwrap();
    assert!(e.contains("ALTINN_PLATFORM_URL"), "{e}");
    let no_key = Settings::from_lookup(|k| match k {
        "MASKINPORTEN_ISSUER" => Some("https://test.maskinporten.no/".into()),
        "ALTINN_PLATFORM_URL" => Some("https://platform.tt02.altinn.no".into()),
        _ => None,
    });
    let e = quickstart::build(&no_key).await.err().unwrap();
    assert!(e.contains("PDP_CLIENT_ID") && e.contains("PDP_PRIVATE_KEY_FILE"), "{e}");
}

/// `ACCEPT_ALTINN_TOKENS`: off by default against configured services, on when asked (a
/// trailing `/` on the platform URL is tolerated); anything but true/false is an error.
#[tokio::test]
async fn accept_altinn_tokens_is_honoured() {
    let (mp, altinn, dir, key_file) = external_services().await;
    let su = Uuid::new_v4();
    altinn.permit(su, "read", "kravogbetaling", "310702641");
    let token = altinn
        .system_user_token(su, "310702641")
        .scope("skatteetaten:kravogbetalinger")
        .sign();
    let settings = |accept: Option<&str>, platform: String| {
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("MASKINPORTEN_ISSUER", mp.issuer()),
            ("ALTINN_PLATFORM_URL", platform),
            ("ALTINN_SUBSCRIPTION_KEY", "the-subscription-key".to_owned()),
            ("PDP_CLIENT_ID", "provider-client".to_owned()),
            ("PDP_KEY_ID", "provider-kid".to_owned()),
            ("PDP_PRIVATE_KEY_FILE", key_file.to_string_lossy().into_owned()),
        ]);
        if let Some(a) = accept {
            vars.insert("ACCEPT_ALTINN_TOKENS", a.to_owned());
        }
        Settings::from_lookup(|k| vars.get(k).cloned())
    };
    let whoami = async |settings: Settings| {
        let app = quickstart::build(&settings).await.unwrap();
        let base = serve(app.router).await;
        let r = reqwest::Client::new()
            .get(format!("{base}/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(whoami(settings(None, altinn.platform_url())).await, 401, "off by default");
    assert_eq!(whoami(settings(Some("false"), altinn.platform_url())).await, 401);
    assert_eq!(whoami(settings(Some("true"), altinn.platform_url())).await, 200);
    assert_eq!(whoami(settings(Some("true"), format!("{}/", altinn.platform_url()))).await, 200);
    let e = quickstart::build(&settings(Some("yes"), altinn.platform_url()))
        .await
        .err()
        .unwrap();
    assert!(e.contains("ACCEPT_ALTINN_TOKENS"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
