//! `altinn-pep doctor`: every step passes against the fakes; each step broken on purpose is
//! named, with its reason and the configuration key to check, while the others still pass.

use altinn_systemuser::test_util::{EndpointMode, KeyRole, PdpAnswer, TestKey};

use crate::harness::tmp_dir;
use crate::oneshot::{Ran, run};
use crate::pep_fakes::{PROVIDER_CLIENT_ID, PepFakes, RESOURCE, SUBSCRIPTION_KEY};

/// Every step the example configuration has, in the order printed.
const STEPS: [&str; 7] = [
    "maskinporten keys",
    "maskinporten metadata",
    "grant",
    "exchange",
    "pdp call",
    "resource kravogbetaling",
    "clock",
];

async fn doctor(config: &str, subscription_key: Option<&str>, dir: &std::path::Path) -> Ran {
    let path = dir.join(format!("doctor-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, config).unwrap();
    run(&["doctor", "--config", path.to_str().unwrap()], subscription_key, None, dir).await
}

/// No secret in the output: not the subscription key, not the provider's key.
fn no_secrets(r: &Ran) {
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains(SUBSCRIPTION_KEY), "{text}");
        assert!(!text.contains("BEGIN"), "{text}");
    }
}

#[tokio::test]
async fn doctor_passes_against_the_fakes() {
    let dir = tmp_dir("doctor-ok");
    let fakes = PepFakes::start(&dir).await.unwrap();
    let r = doctor(&fakes.config().unwrap(), None, &dir).await;
    assert!(r.status.success(), "{r:?}");
    for step in STEPS {
        assert!(r.step(step).starts_with("ok   "), "{step}: {}", r.stdout);
    }
    assert!(r.step("maskinporten keys").contains(&fakes.mp.issuer()), "{}", r.stdout);
    assert!(r.step("maskinporten keys").contains("(1 key)"), "{}", r.stdout);
    assert!(r.step("grant").contains(PROVIDER_CLIENT_ID), "{}", r.stdout);
    assert!(r.step("resource kravogbetaling").contains("routes[0].resource, routes[1].resource"));
    assert!(r.step("clock").contains("clock is"), "{}", r.stdout);
    assert!(r.stdout.lines().last().unwrap().starts_with("all 7 checks passed"), "{}", r.stdout);
    no_secrets(&r);
}

#[tokio::test]
async fn each_broken_step_is_named_with_its_reason() {
    let dir = tmp_dir("doctor-broken");
    let fakes = PepFakes::start(&dir).await.unwrap();
    let good = fakes.config().unwrap();

    // Checks one broken run: `failed` failed with every text in `reason`; the steps before it
    // passed, the credential steps after it were not tried, the others passed.
    let check = |name: &str, r: &Ran, failed: &str, reason: &[&str], skipped: &[&str]| {
        assert_eq!(r.status.code(), Some(1), "{name}: {r:?}");
        let line = r.step(failed);
        assert!(line.starts_with("FAIL "), "{name}: {}", r.stdout);
        for text in reason {
            assert!(line.contains(text), "{name}: {text:?} in {line}");
        }
        for step in STEPS.into_iter().filter(|s| *s != failed && !skipped.contains(s)) {
            assert!(r.step(step).starts_with("ok   "), "{name}: {step} in {}", r.stdout);
        }
        for step in skipped {
            assert!(r.step(step).starts_with("skip "), "{name}: {step} in {}", r.stdout);
        }
        assert!(r.stdout.contains("checks did not pass"), "{name}: {}", r.stdout);
        no_secrets(r);
    };

    // A client id Maskinporten does not know: invalid_client.
    let wrong_client = good.replace(&format!("client_id = \"{PROVIDER_CLIENT_ID}\""), "client_id = \"not-our-client\"");
    assert_ne!(wrong_client, good);
    let r = doctor(&wrong_client, None, &dir).await;
    check(
        "wrong client id",
        &r,
        "grant",
        &["invalid_client", "pdp.credentials.client_id"],
        &["exchange", "pdp call"],
    );

    // The registered key id, but another key: invalid_grant.
    let rogue = dir.join("rogue-key.pem");
    std::fs::write(&rogue, TestKey::for_role(KeyRole::Rogue).private_key_pkcs8_pem()).unwrap();
    let wrong_key = good.replace(&fakes.key_file.display().to_string(), &rogue.display().to_string());
    assert_ne!(wrong_key, good);
    let r = doctor(&wrong_key, None, &dir).await;
    check(
        "wrong key",
        &r,
        "grant",
        &["invalid_grant", "pdp.credentials.key_id", "private_key_pem"],
        &["exchange", "pdp call"],
    );

    // Altinn refuses the exchange.
    fakes.altinn.set_exchange_mode(EndpointMode::Status(401));
    let r = doctor(&good, None, &dir).await;
    fakes.altinn.set_exchange_mode(EndpointMode::Normal);
    check(
        "exchange refused",
        &r,
        "exchange",
        &["401", "test Maskinporten with TT02"],
        &["pdp call"],
    );

    // A subscription key the PDP does not take.
    let r = doctor(&good, Some("not-the-subscription-key"), &dir).await;
    check(
        "wrong subscription key",
        &r,
        "pdp call",
        &["401", "wrong subscription key", "pdp.subscription_key"],
        &[],
    );
    assert!(!r.stdout.contains("not-the-subscription-key"), "{}", r.stdout);

    // The PDP refuses the provider's token: the scope is missing.
    fakes.altinn.set_answer(PdpAnswer::Status(403));
    let r = doctor(&good, None, &dir).await;
    fakes.altinn.set_answer(PdpAnswer::Rules);
    check(
        "missing scope",
        &r,
        "pdp call",
        &["403", "missing scope", "altinn:authorization/authorize"],
        &[],
    );

    // A route's resource the registry does not know: the route is named.
    fakes.altinn.remove_resource(RESOURCE);
    let r = doctor(&good, None, &dir).await;
    fakes.altinn.add_resource(RESOURCE);
    check(
        "unknown resource",
        &r,
        "resource kravogbetaling",
        &["unknown resource kravogbetaling in routes[0].resource, routes[1].resource", "404"],
        &[],
    );

    // One route's resource is not in the registry; the other resource still is.
    let unknown = good.replace("resource = \"kravogbetaling\"   #", "resource = \"ukjentressurs\"   #");
    assert_ne!(unknown, good);
    let r = doctor(&unknown, None, &dir).await;
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let line = r.step("resource ukjentressurs");
    assert!(line.starts_with("FAIL "), "{}", r.stdout);
    assert!(line.contains("unknown resource ukjentressurs in routes[2].resource:"), "{line}");
    assert!(r.step("resource kravogbetaling").starts_with("ok   "), "{}", r.stdout);
    assert!(!r.step("resource kravogbetaling").contains("routes[2]"), "{}", r.stdout);

    // Maskinporten's keys cannot be fetched.
    fakes.mp.set_jwks_mode(EndpointMode::Status(503));
    let r = doctor(&good, None, &dir).await;
    fakes.mp.set_jwks_mode(EndpointMode::Normal);
    check("keys unavailable", &r, "maskinporten keys", &["503", "maskinporten.issuer"], &[]);

    // A configuration that cannot be used exits 2, as `check` does.
    let r = doctor(&good.replace("[listen]", "[listen]\nport = 80"), None, &dir).await;
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    assert!(r.stderr.contains("invalid configuration: port"), "{}", r.stderr);
}
