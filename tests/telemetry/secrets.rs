//! No token, key, subscription key or signature, and no person identifier, in anything the
//! crate (or any other crate in the stack) logs at any level, through allowed requests,
//! refusals, failures and the PDP client's own credentials.

use super::capture::capture;
use super::{broken, setup_with};
use crate::support::{OTHER_ORG, OWNER_ORG, PERSON, RESOURCE, SUBSCRIPTION_KEY};
use altinn_systemuser::test_util::EndpointMode;
use uuid::Uuid;

const PARTY_KEY: &[u8; 32] = b"audit-party-key-never-logged-001";

#[tokio::test]
async fn nothing_secret_or_personal_in_any_captured_output() {
    let (log, _guard) = capture();
    let env = setup_with(|m| m, |s| s.audit_party_key(PARTY_KEY), |p| p).await;
    let su = Uuid::new_v4();
    for party in [OWNER_ORG, PERSON] {
        env.fakes.altinn.permit(su, "read", RESOURCE, party);
    }
    let token = env.fakes.system_user_token(su);
    let bad = broken(&token);

    // The token exchange fails once: the failure is logged, and must not carry a secret either.
    env.fakes.altinn.push_exchange_mode(EndpointMode::Status(500));
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &token).await.status, 503);
    for (path, status) in [
        (format!("/krav/{OWNER_ORG}"), 200),
        (format!("/krav/{PERSON}"), 200),
        (format!("/krav/{PERSON}"), 200),
        (format!("/krav/{OTHER_ORG}"), 403),
    ] {
        assert_eq!(env.get(&path, &token).await.status, status, "{path}");
    }
    assert_eq!(env.get(&format!("/krav/{PERSON}"), &bad).await.status, 401);
    assert_eq!(env.get(&format!("/krav/{PERSON}"), "garbage").await.status, 401);

    // The credentials the PDP client used, as the fakes saw them.
    let bearer = |h: Option<&str>| h.and_then(|v| v.strip_prefix("Bearer ")).expect("a bearer token").to_owned();
    let altinn_token = bearer(env.fakes.altinn.pdp_requests()[0].header("authorization"));
    let maskinporten_token = bearer(env.fakes.altinn.exchange_requests()[0].header("authorization"));
    let pem = env.fakes.provider_key.private_key_pkcs8_pem();
    let key_line = pem.lines().nth(5).expect("a PEM body line").to_owned();

    let all = log.all_text();
    assert!(log.events().len() > 10, "the run was captured");
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_owned();
    for (what, secret) in [
        ("the caller's token", token.clone()),
        ("its signature", signature(&token)),
        ("the broken token", bad.clone()),
        ("its signature", signature(&bad)),
        ("the Altinn token", altinn_token.clone()),
        ("its signature", signature(&altinn_token)),
        ("the provider's Maskinporten token", maskinporten_token.clone()),
        ("the subscription key", SUBSCRIPTION_KEY.to_owned()),
        ("the provider's private key", key_line),
        ("the audit party key", String::from_utf8_lossy(PARTY_KEY).into_owned()),
        ("a person identifier", PERSON.to_owned()),
    ] {
        assert!(!all.contains(&secret), "{what} was logged");
    }
}
