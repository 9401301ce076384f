//! Secrets stay secret: the private key, the subscription key and the tokens never appear in
//! `Debug` or `Display`, and neither does what Maskinporten says when it refuses a grant.

use crate::question;
use crate::support::{Fakes, OWNER_ORG, PROVIDER_CLIENT_ID, SUBSCRIPTION_KEY};
use altinn_systemuser::pdp::{AltinnEnvironment, AltinnPdp, Decision, MaskinportenCredentials, PdpError, PdpErrorKind};
use altinn_systemuser::test_util::{KeyRole, PdpAnswer, TestKey};
use uuid::Uuid;

/// What of the provider's key or the subscription key `shown` gives away.
fn leaks(fakes: &Fakes, shown: &str) -> Vec<String> {
    let pem = fakes.provider_key.private_key_pkcs8_pem();
    let pem_lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 32).collect();
    assert!(pem_lines.len() > 10);
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
}

#[tokio::test]
async fn keys_stay_out_of_debug() {
    let fakes = Fakes::start().await;
    let pem = fakes.provider_key.private_key_pkcs8_pem();
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
        assert_eq!(leaks(&fakes, &shown), Vec::<String>::new(), "{what}: {shown}");
    }
    // What is shown is useful.
    let shown = format!("{creds:?}");
    assert!(
        shown.contains(PROVIDER_CLIENT_ID) && shown.contains(fakes.provider_key.kid()),
        "{shown}"
    );
}

#[tokio::test]
async fn tokens_stay_out_of_the_clients_debug_after_a_decision() {
    let fakes = Fakes::start().await;
    let pdp = fakes.pdp();
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    let altinn_token = fakes.altinn.pdp_requests()[0].bearer_token().unwrap().to_owned();
    let shown = format!("{pdp:?}");
    assert!(!shown.contains(&altinn_token[..40]), "{shown}");
}

#[tokio::test]
async fn a_refused_grant_is_a_credentials_error_without_maskinportens_words() {
    let fakes = Fakes::start().await;
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
    // Maskinporten refused with a description: it is not repeated in our error.
    let refusal = fakes.mp.grant_assertions().last().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(refusal.contains("unknown client"), "{refusal}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("unknown client") && !shown.contains("unregistered-client"),
        "{shown}"
    );
    // One grant, then nothing else.
    assert_eq!(
        (
            fakes.mp.token_requests(),
            fakes.altinn.exchange_count(),
            fakes.altinn.pdp_request_count()
        ),
        (1, 0, 0)
    );
}

#[test]
fn the_subscription_key_stays_out_of_debug() {
    let provider = TestKey::for_role(KeyRole::Provider);
    let creds = MaskinportenCredentials::builder()
        .issuer("https://test.maskinporten.no/")
        .client_id("provider-client")
        .private_key_pem(provider.private_key_pkcs8_pem().as_bytes())
        .key_id("provider-key")
        .build()
        .unwrap();
    let b = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .subscription_key("very-secret-sub-key")
        .credentials(creds);
    let shown = format!("{b:?}");
    assert!(!shown.contains("very-secret") && shown.contains("<redacted>"), "{shown}");
    let pdp = b.build().unwrap();
    let shown = format!("{pdp:?}");
    assert!(!shown.contains("very-secret") && shown.contains("<redacted>"), "{shown}");
    let shown = format!("{:?}", crate::about(Uuid::new_v4(), "resource-a", OWNER_ORG));
    assert!(shown.contains("resource-a"), "{shown}");
}
