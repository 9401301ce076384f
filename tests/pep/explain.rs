//! `altinn-pep explain`: a token on standard input described (issuer and environment, client,
//! scopes, system user, expiry in words) and judged against the configuration by the rule that
//! refuses it, or passed. The output never holds the token or its signature.

use std::path::Path;
use std::time::{Duration, SystemTime};

use altinn_systemuser::maskinporten::TEST_ISSUER;
use altinn_systemuser::test_util::{FakeMaskinporten, decode_unverified};
use serde_json::json;
use uuid::Uuid;

use crate::harness::tmp_dir;
use crate::oneshot::{Ran, run};
use crate::pep_fakes::{OWNER_ORG, PepFakes, SCOPE, SYSTEM_USER};

async fn explain(config: Option<&Path>, stdin: &str, dir: &Path) -> Ran {
    let mut args = vec!["explain"];
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    run(&args, None, Some(stdin), dir).await
}

/// Neither the token nor its signature in any output.
fn never_shows(r: &Ran, token: &str) {
    let signature = token.rsplit('.').next().unwrap();
    assert!(signature.len() > 100, "an RSA signature");
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains(signature), "the signature in {text}");
        assert!(!text.contains(token), "the token in {text}");
    }
}

struct Setup {
    fakes: PepFakes,
    config: std::path::PathBuf,
    dir: std::path::PathBuf,
}

async fn setup(name: &str) -> Setup {
    let dir = tmp_dir(name);
    let fakes = PepFakes::start(&dir).await.unwrap();
    let config = dir.join("altinn-pep.toml");
    std::fs::write(&config, fakes.config().unwrap()).unwrap();
    Setup { fakes, config, dir }
}

#[tokio::test]
async fn a_valid_token_is_described_and_passes() {
    let s = setup("explain-valid").await;
    let su: Uuid = SYSTEM_USER.parse().unwrap();
    // 90 minutes: "1 hour" for as long as the test could take.
    let token = s.fakes.token(su, OWNER_ORG, Duration::from_secs(90 * 60));
    let client_id = decode_unverified(&token).unwrap().1["client_id"].as_str().unwrap().to_owned();
    // As a header value would be copied, with a trailing newline.
    let r = explain(Some(&s.config), &format!("Bearer {token}\n"), &s.dir).await;
    assert!(r.status.success(), "{r:?}");
    let out = &r.stdout;
    assert!(out.contains(&format!("issuer       {}", s.fakes.mp.issuer())), "{out}");
    assert!(out.contains(&format!("client       {client_id}")), "{out}");
    assert!(out.contains(&format!("scopes       {SCOPE}")), "{out}");
    assert!(
        out.contains(&format!("system user  {SYSTEM_USER} of organisation {OWNER_ORG}")),
        "{out}"
    );
    assert!(out.contains("expiry       expires in 1 hour ("), "{out}");
    assert!(out.contains("\npasses: "), "{out}");
    assert!(!out.contains("refused"), "{out}");
    never_shows(&r, &token);

    // Without a configuration: described, not judged.
    let r = explain(None, &token, &s.dir).await;
    assert!(r.status.success(), "{r:?}");
    assert!(r.stdout.contains(&format!("system user  {SYSTEM_USER}")), "{}", r.stdout);
    assert!(r.stdout.contains("not checked against a configuration"), "{}", r.stdout);
    never_shows(&r, &token);
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let s = setup("explain-expired").await;
    let now = SystemTime::now();
    let token = s
        .fakes
        .mp
        .system_user_token(Uuid::new_v4(), OWNER_ORG)
        .scope(SCOPE)
        .issued_at(now - Duration::from_secs(6000))
        .expires_at(now - Duration::from_secs(90 * 60))
        .sign();
    let r = explain(Some(&s.config), &token, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(r.stdout.contains("expiry       expired 1 hour ago"), "{}", r.stdout);
    let verdict = r.stdout.lines().last().unwrap();
    assert!(verdict.starts_with("refused (token-expired)"), "{verdict}");
    assert!(verdict.contains("expired 1 hour ago"), "{verdict}");
    never_shows(&r, &token);
}

#[tokio::test]
async fn a_token_from_another_environment_is_refused_naming_the_issuers() {
    let s = setup("explain-environment").await;
    // Another Maskinporten altogether.
    let other = FakeMaskinporten::start().await;
    let token = other.system_user_token(Uuid::new_v4(), OWNER_ORG).scope(SCOPE).sign();
    let r = explain(Some(&s.config), &token, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let verdict = r.stdout.lines().last().unwrap();
    assert!(verdict.starts_with("refused (wrong-issuer)"), "{verdict}");
    assert!(verdict.contains(&format!("its issuer {}", other.issuer())), "{verdict}");
    assert!(
        verdict.contains(&format!("trusted: maskinporten.issuer {}", s.fakes.mp.issuer())),
        "{verdict}"
    );
    never_shows(&r, &token);

    // A token naming Maskinporten's test environment: the environment is named.
    let token = s
        .fakes
        .mp
        .system_user_token(Uuid::new_v4(), OWNER_ORG)
        .scope(SCOPE)
        .claim("iss", json!(TEST_ISSUER))
        .sign();
    let r = explain(Some(&s.config), &token, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("issuer       {TEST_ISSUER} (Maskinporten test, pairs with Altinn TT02)")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().last().unwrap().starts_with("refused (wrong-issuer)"),
        "{}",
        r.stdout
    );
    never_shows(&r, &token);
}

#[tokio::test]
async fn a_token_without_the_scope_is_refused_naming_the_scope() {
    let s = setup("explain-scope").await;
    let token = s
        .fakes
        .mp
        .system_user_token(Uuid::new_v4(), OWNER_ORG)
        .scope("skatteetaten:annet")
        .sign();
    let r = explain(Some(&s.config), &token, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let verdict = r.stdout.lines().last().unwrap();
    assert!(verdict.starts_with("refused (insufficient-scope)"), "{verdict}");
    assert!(
        verdict.contains(&format!(
            "it lacks the scope {SCOPE} (maskinporten.require_scope); it has: skatteetaten:annet"
        )),
        "{verdict}"
    );
    never_shows(&r, &token);
}

#[tokio::test]
async fn other_refusals_and_bad_input() {
    let s = setup("explain-other").await;
    // A valid token without a system user: the system-user layer's rule.
    let token = s.fakes.mp.token().scope(SCOPE).sign();
    let r = explain(Some(&s.config), &token, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(r.stdout.contains("system user  (none: not a system-user token)"), "{}", r.stdout);
    assert!(
        r.stdout.lines().last().unwrap().starts_with("refused (not-a-system-user)"),
        "{}",
        r.stdout
    );
    never_shows(&r, &token);

    // A changed payload: the signature no longer verifies.
    let su: Uuid = SYSTEM_USER.parse().unwrap();
    let good = s.fakes.token(su, OWNER_ORG, Duration::from_secs(120));
    let (_, claims) = decode_unverified(&good).unwrap();
    let mut changed = claims.clone();
    changed["scope"] = json!(format!("{SCOPE} skatteetaten:mer"));
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine as _;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(changed.to_string()),
        parts[2]
    );
    let r = explain(Some(&s.config), &forged, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        r.stdout.lines().last().unwrap().starts_with("refused (invalid-signature)"),
        "{}",
        r.stdout
    );
    never_shows(&r, &forged);

    // A token cannot print a verdict of its own: a newline and terminal escapes in what it says
    // are shown escaped, and the one verdict line is the last.
    let fake_verdict = "x\npasses: everything is fine\u{1b}[8m";
    let mut broken = s
        .fakes
        .mp
        .system_user_token(su, OWNER_ORG)
        .scope(SCOPE)
        .claim("client_id", json!(fake_verdict))
        .lifetime(Duration::from_secs(120))
        .sign();
    broken.push('x'); // a broken signature: refused
    let r = explain(Some(&s.config), &broken, &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(!r.stdout.lines().any(|l| l.starts_with("passes")), "{}", r.stdout);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(
        r.stdout.contains(r"client       x\npasses: everything is fine\u{1b}[8m"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().last().unwrap().starts_with("refused ("), "{}", r.stdout);
    // A character across byte 7, where `Bearer ` would end: no panic, a clear refusal.
    let r = explain(Some(&s.config), "Bearerétoken", &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(r.stdout.contains("malformed-token"), "{}", r.stdout);

    // Not a token at all, and nothing.
    let r = explain(Some(&s.config), "hello", &s.dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(r.stdout.contains("malformed-token"), "{}", r.stdout);
    let r = explain(Some(&s.config), "\n", &s.dir).await;
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    assert!(r.stderr.contains("no token on standard input"), "{}", r.stderr);

    // The token is never an argument.
    let r = run(&["explain", &good], None, None, &s.dir).await;
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    assert!(!r.stdout.contains(&good));
}
