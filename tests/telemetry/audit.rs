//! The audit trail: exactly one event per outcome of the system-user layer, with every field;
//! the Maskinporten layer's refusals with their reason only, at the configured level.

use super::capture::{Captured, capture};
use super::{AUDIT, broken, setup, setup_with};
use crate::support::{OTHER_ORG, OWNER_ORG, PERSON, RESOURCE, THIRD_ORG};
use altinn_systemuser::test_util::{DEFAULT_CLIENT_ID, DEFAULT_CONSUMER_ORG, PdpAnswer, decode_unverified};
use tracing::Level;
use uuid::Uuid;

/// The one audit event captured since the last `clear`.
fn the_one(events: Vec<Captured>) -> Captured {
    assert_eq!(events.len(), 1, "exactly one audit event: {events:#?}");
    events.into_iter().next().unwrap()
}

#[tokio::test]
async fn an_allowed_and_a_refused_request_are_each_one_event_with_every_field() {
    let (log, _guard) = capture();
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let token = env.fakes.system_user_token(su);
    let (_, claims) = decode_unverified(&token).unwrap();
    let jti = claims["jti"].as_str().expect("minted tokens carry a jti").to_owned();

    // Allowed, after a PDP call of its own.
    let r = env.get(&format!("/krav/{OWNER_ORG}"), &token).await;
    assert_eq!(r.status, 200);
    let e = the_one(log.on(AUDIT));
    assert_eq!((e.level, e.message.as_str()), (Level::INFO, "authorization"));
    let expected = [
        ("outcome", "allowed"),
        ("reason", "ok"),
        ("system_user_id", su.to_string().as_str()),
        ("system_user_org", OWNER_ORG),
        ("vendor_org", DEFAULT_CONSUMER_ORG),
        ("client_id", DEFAULT_CLIENT_ID),
        ("jti", jti.as_str()),
        ("issuer", "maskinporten"),
        ("resource", RESOURCE),
        ("action", "read"),
        ("party", OWNER_ORG),
        ("decision_source", "pdp"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    for (k, v) in &expected {
        assert_eq!(e.field(k), Some(v.as_str()), "{k} in {e:#?}");
    }
    let pdp_ms: u64 = e.field("pdp_ms").expect("pdp_ms after a PDP call").parse().unwrap();
    assert!(pdp_ms < 60_000, "{pdp_ms}");
    // Nothing else: the listed fields are the whole event.
    assert_eq!(e.fields.len(), expected.len() + 1, "{e:#?}");

    // The same question again: from the cache, no PDP time.
    log.clear();
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &token).await.status, 200);
    let e = the_one(log.on(AUDIT));
    assert_eq!((e.field("outcome"), e.field("decision_source")), (Some("allowed"), Some("cache")));
    assert_eq!(e.field("pdp_ms"), None);

    // Refused by the PDP (no rule for this organisation): the same fields, the refusal's slug.
    log.clear();
    let r = env.get(&format!("/krav/{OTHER_ORG}"), &token).await;
    assert_eq!(r.status, 403);
    let e = the_one(log.on(AUDIT));
    assert_eq!(e.level, Level::INFO);
    for (k, v) in [
        ("outcome", "refused"),
        ("reason", "access-not-granted"),
        ("system_user_id", su.to_string().as_str()),
        ("jti", jti.as_str()),
        ("resource", RESOURCE),
        ("action", "read"),
        ("party", OTHER_ORG),
        ("decision_source", "pdp"),
    ] {
        assert_eq!(e.field(k), Some(v), "{k} in {e:#?}");
    }
    assert!(e.field("pdp_ms").is_some());

    // A Deny and a write that was never granted: each its own reason.
    env.fakes.altinn.rule(su, "read", RESOURCE, THIRD_ORG, "Deny");
    log.clear();
    assert_eq!(env.get(&format!("/krav/{THIRD_ORG}"), &token).await.status, 403);
    assert_eq!(the_one(log.on(AUDIT)).field("reason"), Some("access-denied"));
}

#[tokio::test]
async fn identical_questions_in_flight_share_one_call_and_say_so() {
    let (log, _guard) = capture();
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let token = env.fakes.system_user_token(su);
    let path = format!("/krav/{OWNER_ORG}");
    // The first request starts the PDP call; the second finds it in flight (the call needs
    // network round trips, and both are polled before any of them can happen).
    let (a, b) = tokio::join!(env.get(&path, &token), env.get(&path, &token));
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(env.fakes.altinn.pdp_request_count(), 1);
    let mut sources: Vec<String> = log
        .on(AUDIT)
        .iter()
        .map(|e| e.field("decision_source").unwrap_or_default().to_owned())
        .collect();
    sources.sort();
    assert_eq!(sources, ["pdp", "shared"]);
    assert!(log.on(AUDIT).iter().all(|e| e.field("pdp_ms").is_some()));
}

#[tokio::test]
async fn refusals_before_the_pdp_is_asked_are_audited_too() {
    let (log, _guard) = capture();
    let env = setup().await;
    let su = Uuid::new_v4();
    let token = env.fakes.system_user_token(su);

    // A party that is not a valid organisation number: no question, no decision source.
    assert_eq!(env.get("/krav/310702640", &token).await.status, 400);
    let e = the_one(log.on(AUDIT));
    assert_eq!((e.field("outcome"), e.field("reason")), (Some("refused"), Some("invalid-party")));
    assert_eq!(e.field("system_user_id"), Some(su.to_string().as_str()));
    assert_eq!(
        (e.field("decision_source"), e.field("party"), e.field("pdp_ms")),
        (None, None, None)
    );

    // A valid token that is not a system user's.
    log.clear();
    let plain = env.fakes.mp.token().scope(crate::support::API_SCOPE).sign();
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &plain).await.status, 403);
    let e = the_one(log.on(AUDIT));
    assert_eq!(e.field("reason"), Some("not-a-system-user"));
    assert_eq!(e.field("client_id"), Some(DEFAULT_CLIENT_ID));
    assert_eq!(e.field("system_user_id"), None);

    // No decision to be had: the PDP answers 503 (and again on the retry).
    log.clear();
    env.fakes.altinn.set_answer(PdpAnswer::Status(503));
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &token).await.status, 503);
    let e = the_one(log.on(AUDIT));
    assert_eq!(e.field("reason"), Some("authorization-unavailable"));
    assert_eq!(e.field("decision_source"), Some("pdp"));
}

#[tokio::test]
async fn maskinporten_refusals_say_the_reason_only_at_debug_by_default() {
    let (log, _guard) = capture();
    let env = setup().await;
    let token = env.fakes.system_user_token(Uuid::new_v4());
    for (bearer, reason) in [(broken(&token), "invalid-signature"), ("not-a-jwt".to_owned(), "malformed-token")] {
        log.clear();
        assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &bearer).await.status, 401);
        let e = the_one(log.on(AUDIT));
        assert_eq!((e.level, e.message.as_str()), (Level::DEBUG, "token refused"));
        assert_eq!(e.fields.len(), 2, "outcome and reason only: {e:#?}");
        assert_eq!((e.field("outcome"), e.field("reason")), (Some("refused"), Some(reason)));
    }

    // The level is the builder's.
    let env = setup_with(|m| m.refusal_log_level(Level::WARN), |s| s, |p| p).await;
    let token = env.fakes.system_user_token(Uuid::new_v4());
    log.clear();
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &broken(&token)).await.status, 401);
    let e = the_one(log.on(AUDIT));
    assert_eq!((e.level, e.field("reason")), (Level::WARN, Some("invalid-signature")));
}

#[tokio::test]
async fn a_person_is_redacted_or_pseudonymised_never_in_clear() {
    let (log, _guard) = capture();
    let su = Uuid::new_v4();
    let key = [0x5au8; 32];
    let plain = setup().await;
    let keyed = setup_with(|m| m, |s| s.audit_party_key(&key), |p| p).await;
    for env in [&plain, &keyed] {
        env.fakes.altinn.permit(su, "read", RESOURCE, PERSON);
        let token = env.fakes.system_user_token(su);
        for _ in 0..2 {
            assert_eq!(env.get(&format!("/krav/{PERSON}"), &token).await.status, 200);
        }
    }
    let pseudonyms: Vec<String> = log.on(AUDIT).iter().map(|e| e.field("party").unwrap().to_owned()).collect();
    assert_eq!(pseudonyms.len(), 4);
    assert_eq!(pseudonyms[..2], ["redacted", "redacted"]);
    // The same person, the same pseudonym: 128 bits of HMAC-SHA256 in hex.
    assert_eq!(pseudonyms[2], pseudonyms[3]);
    let hex = pseudonyms[2].strip_prefix("hmac-sha256:").expect(&pseudonyms[2]);
    assert!(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");
    // Nowhere in anything captured (events, spans, every crate's output at TRACE).
    assert!(!log.all_text().contains(PERSON));
}
