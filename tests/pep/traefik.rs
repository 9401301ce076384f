//! Traefik's `forwardAuth` (not in Debian's packages, so no end-to-end test): the README's
//! configuration (`deploy/traefik.yml`) names altinn-pep's endpoint and every principal header,
//! and the decision listener answers the request Traefik sends as Traefik needs.

use crate::harness::{PRINCIPAL_HEADERS, Setup, THIRD_ORG, assert_allowed, assert_refused, raw};
use crate::pep_fakes::CLIENT_ORG;

const TRAEFIK: &str = include_str!("../../deploy/traefik.yml");

/// The items of a YAML list under `key:` (two more spaces of indentation, `- "item"`).
fn list_under(key: &str) -> Vec<String> {
    let mut lines = TRAEFIK
        .lines()
        .skip_while(|l| l.split('#').next().unwrap().trim() != format!("{key}:"));
    let header = lines.next().unwrap_or_else(|| panic!("{key} in traefik.yml"));
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| l.len() - l.trim_start().len() > indent && l.trim_start().starts_with('-'))
        .map(|l| l.trim_start().trim_start_matches('-').trim().trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_configuration_names_the_endpoint_and_every_principal_header() {
    assert!(TRAEFIK.contains("address: \"http://127.0.0.1:8081/auth\""));
    assert!(TRAEFIK.contains("trustForwardHeader: false"));
    assert_eq!(list_under("authResponseHeaders"), PRINCIPAL_HEADERS);
    let sent = list_under("authRequestHeaders");
    assert!(sent.contains(&"Authorization".to_owned()), "{sent:?}");
    // The party header of the example configuration's header route reaches altinn-pep.
    assert!(sent.contains(&"X-Party".to_owned()), "{sent:?}");
    assert!(TRAEFIK.contains("middlewares: [\"altinn-pep\"]"));
}

/// What Traefik sends: `GET` to the address, `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`
/// and `-For`, and the `authRequestHeaders`.
fn traefik_request<'a>(method: &'a str, uri: &'a str, auth: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Forwarded-Method", method),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "api.example.no"),
        ("X-Forwarded-Uri", uri),
        ("X-Forwarded-For", "203.0.113.7"),
        ("Authorization", auth),
    ]
}

#[tokio::test]
async fn the_decision_listener_answers_traefiks_request() {
    let s = Setup::start("traefik").await;
    let bearer = format!("Bearer {}", s.token());
    let uri = format!("/krav/{CLIENT_ORG}?side=2");
    // Allowed: 2xx and every header Traefik copies.
    let r = raw(&s.pep.decision, "GET", "/auth", &traefik_request("GET", &uri, &bearer)).await;
    assert_allowed(&r, &s.principal(CLIENT_ORG, "read"));
    for h in list_under("authResponseHeaders") {
        assert!(r.header(&h).is_some(), "{h}");
    }
    // Refused: Traefik returns the answer as it is.
    let r = raw(&s.pep.decision, "GET", "/auth", &traefik_request("GET", &uri, "Bearer x.y.z")).await;
    assert_refused(&r, 401, "malformed-token");
    assert!(r.header("www-authenticate").unwrap().contains("invalid_token"));
    let other = format!("/krav/{THIRD_ORG}");
    let r = raw(&s.pep.decision, "GET", "/auth", &traefik_request("GET", &other, &bearer)).await;
    assert_refused(&r, 403, "access-not-granted");
    // With trustForwardHeader false, Traefik overwrites a client's X-Forwarded-*; a client
    // X-Original-* that reached altinn-pep anyway and disagrees is a 400.
    let mut h = traefik_request("GET", &uri, &bearer);
    h.extend([("X-Original-Method", "GET"), ("X-Original-URI", "/whoami")]);
    let r = raw(&s.pep.decision, "GET", "/auth", &h).await;
    assert_refused(&r, 400, "invalid-forwarded-request");
}
