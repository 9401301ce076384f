//! How failures are reported: classified by kind, retried once where that may help, never
//! echoing what the services answered, and never cached.

use crate::support::{ClosedPort, OWNER_ORG, PROVIDER_CLIENT_ID};
use crate::{FixedToken, MARKER, about, body, question, setup, setup_with};
use altinn_systemuser::pdp::{AltinnPdp, Decision, MaskinportenCredentials, PdpErrorKind};
use altinn_systemuser::test_util::PdpAnswer;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn failures_are_classified_and_never_echo_the_answer() {
    // Breaker off: its 429 would open it for the cases after it (see tests/pdp/breaker.rs).
    let (fakes, pdp) = setup_with(|p| p.breaker_off()).await;
    let altinn = &fakes.altinn;
    let json = "application/json";
    let permit = json!({ "decision": "Permit" });
    let marked = format!(r#"{{"response":[{{"decision":"Permit","detail":"{MARKER}"}}]"#);
    let oversized = json!({ "response": [permit], "detail": MARKER, "padding": "x".repeat(300 * 1024) }).to_string();

    // (answer, expected kind, PDP requests made, Retry-After)
    let cases: Vec<(PdpAnswer, PdpErrorKind, usize, Option<u64>)> = vec![
        (PdpAnswer::Status(500), PdpErrorKind::Status(500), 2, None),
        (
            body(502, "text/html", format!("<h1>{MARKER}</h1>")),
            PdpErrorKind::Status(502),
            2,
            None,
        ),
        (
            PdpAnswer::TooManyRequests { retry_after_secs: 7 },
            PdpErrorKind::Status(429),
            1,
            Some(7),
        ),
        (PdpAnswer::Status(403), PdpErrorKind::Unauthorized, 1, None),
        (
            body(400, json, format!(r#"{{"title":"{MARKER}"}}"#)),
            PdpErrorKind::Status(400),
            1,
            None,
        ),
        (body(200, json, marked), PdpErrorKind::Malformed, 1, None),
        (
            body(200, "text/html", format!("<html>{MARKER}</html>")),
            PdpErrorKind::Malformed,
            1,
            None,
        ),
        (body(200, json, "{}"), PdpErrorKind::Malformed, 1, None),
        (body(200, json, r#"{"response":[]}"#), PdpErrorKind::Malformed, 1, None),
        (
            body(200, json, json!({ "response": [permit, permit] }).to_string()),
            PdpErrorKind::Malformed,
            1,
            None,
        ),
        (body(200, json, oversized), PdpErrorKind::TooLarge, 1, None),
    ];
    for (answer, kind, requests, retry_after) in cases {
        let label = format!("{answer:?}").chars().take(80).collect::<String>();
        altinn.set_answer(answer);
        let before = altinn.pdp_request_count();
        let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{label}");
        assert_eq!(altinn.pdp_request_count() - before, requests, "{label}");
        assert_eq!(e.retry_after(), retry_after.map(Duration::from_secs), "{label}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(MARKER) && !shown.contains("Rate limit"), "{label}: {shown}");
    }
}

#[tokio::test]
async fn altinn_unreachable_is_a_credentials_error_at_once() {
    let fakes = crate::Fakes::start().await;
    // Altinn down: no exchange, no decision.
    let closed = ClosedPort::new();
    let pdp = fakes.pdp_builder().platform_url(closed.url()).build().unwrap();
    let started = Instant::now();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn maskinporten_unreachable_is_a_credentials_error() {
    let fakes = crate::Fakes::start().await;
    let closed = ClosedPort::new();
    let creds = MaskinportenCredentials::builder()
        .issuer(format!("{}/", closed.url()))
        .client_id(PROVIDER_CLIENT_ID)
        .private_key_pem(fakes.provider_key.private_key_pkcs8_pem().as_bytes())
        .key_id(fakes.provider_key.kid())
        .build()
        .unwrap();
    let pdp = fakes.pdp_builder().credentials(creds).build().unwrap();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    assert_eq!(fakes.altinn.exchange_count(), 0);
    assert_eq!(fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn a_pdp_refusing_connections_is_a_connect_error() {
    let closed = ClosedPort::new();
    let pdp = AltinnPdp::builder()
        .platform_url(closed.url())
        .token_source(FixedToken::new("static-token"))
        .build()
        .unwrap();
    let e = pdp.decide(&about(Uuid::new_v4(), "resource-a", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Connect);
}

// ---------------------------------------------------------------------------------------------
// 5xx: one retry
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn one_retry_after_a_5xx_saves_the_decision() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    fakes.altinn.push_answer(PdpAnswer::Status(503));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}

#[tokio::test]
async fn after_two_5xx_the_second_is_reported() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.push_answer(PdpAnswer::Status(502));
    fakes.altinn.push_answer(PdpAnswer::Status(500));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Status(500));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}

#[tokio::test]
async fn a_5xx_that_says_when_to_come_back_is_passed_on_at_once() {
    let (fakes, pdp) = setup().await;
    fakes.altinn.push_answer(PdpAnswer::Raw {
        status: 503,
        headers: vec![("retry-after".into(), "12".into())],
        body: String::new(),
    });
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (PdpErrorKind::Status(503), Some(Duration::from_secs(12)))
    );
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Answers the client cannot use
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_answer_over_the_size_cap_is_too_large() {
    let (fakes, pdp) = setup_with(|p| p.max_response_bytes(4096)).await;
    fakes.altinn.push_answer(body(200, "application/json", " ".repeat(5000)));
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::TooLarge);
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
}

#[tokio::test]
async fn a_streamed_answer_over_the_size_cap_is_too_large() {
    let (fakes, pdp) = setup_with(|p| p.max_response_bytes(4096)).await;
    // No Content-Length: only counting what is read stops it.
    fakes.altinn.push_answer(PdpAnswer::Chunked { len: 64 * 1024 });
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::TooLarge);
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
}

#[tokio::test]
async fn answers_without_one_clean_result_are_malformed() {
    let (fakes, pdp) = setup().await;
    for answer in [
        "not json",
        r#"{"response": {"decision": "Permit"}}"#,
        r#"{"response": []}"#,
        r#"{"response": [{"decision": "Permit"}, {"decision": "Permit"}]}"#,
        r#"{"response": [{}]}"#,
    ] {
        fakes.altinn.push_answer(body(200, "application/json", answer));
        let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Malformed, "{answer}");
        assert!(!e.to_string().contains("Permit"), "{answer}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Errors are not cached
// ---------------------------------------------------------------------------------------------

/// `answer` fails the question once; asked again, the PDP is asked again and permits.
async fn error_is_not_cached(answer: PdpAnswer, kind: PdpErrorKind) {
    // Breaker off: a 429 would open it, and the second question would not reach the PDP.
    let (fakes, pdp) = setup_with(|p| p.breaker_off()).await;
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", crate::support::RESOURCE, OWNER_ORG);
    fakes.altinn.push_answer(answer);
    let q = question(su, "read", OWNER_ORG);
    assert_eq!(pdp.decide(&q).await.unwrap_err().kind(), kind);
    assert_eq!(pdp.decide(&q).await, Ok(Decision::Permit));
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
}

#[tokio::test]
async fn a_429_is_not_cached() {
    error_is_not_cached(PdpAnswer::TooManyRequests { retry_after_secs: 7 }, PdpErrorKind::Status(429)).await;
}

#[tokio::test]
async fn a_malformed_answer_is_not_cached() {
    let bad = json!({ "response": [{ "decision": "Permit" }, { "decision": "Permit" }] });
    error_is_not_cached(body(200, "application/json", bad.to_string()), PdpErrorKind::Malformed).await;
}
