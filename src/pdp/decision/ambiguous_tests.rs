//! Answers that can be read two ways: a member name repeated (or repeated under another
//! casing) at any level of a PDP answer makes it malformed, never a decision. Each case is
//! checked next to its unambiguous twin, which must keep its decision.

use super::Decision::*;
use super::*;
use crate::org::Party;
use crate::pdp::PdpErrorKind;
use crate::pdp::request::{Action, ResourceId};
use crate::pdp::xacml::parse_response;

const OK: &str = r#"{"statusCode":{"value":"urn:oasis:names:tc:xacml:1.0:status:ok"}}"#;
const LEVEL_2: &str = r#"{"id":"urn:altinn:obligation:1","attributeAssignment":[{"attributeId":"a","category":"urn:altinn:minimum-authenticationlevel","value":"2","dataType":"http://www.w3.org/2001/XMLSchema#integer"}]}"#;
const LEVEL_4: &str = r#"{"id":"urn:altinn:obligation:1","attributeAssignment":[{"attributeId":"a","category":"urn:altinn:minimum-authenticationlevel","value":"4","dataType":"http://www.w3.org/2001/XMLSchema#integer"}]}"#;

fn single_of(body: &str) -> Result<Decision, PdpErrorKind> {
    let results = parse_response(body.as_bytes()).map_err(|e| e.kind())?;
    single(&results).map_err(|e| e.kind())
}

/// `body` with `extra` inserted right after the first `after`.
fn with(body: &str, after: &str, extra: &str) -> String {
    let at = body.find(after).unwrap_or_else(|| panic!("{after} not in {body}")) + after.len();
    format!("{}{extra}{}", &body[..at], &body[at..])
}

/// The twin is read as `want`; the same body with `extra` after `after` is malformed.
fn check(twin: &str, want: Decision, after: &str, extra: &str) {
    assert_eq!(single_of(twin), Ok(want), "twin: {twin}");
    let ambiguous = with(twin, after, extra);
    assert_eq!(single_of(&ambiguous), Err(PdpErrorKind::Malformed), "{ambiguous}");
}

#[test]
fn a_repeated_decision_is_malformed() {
    // The issue's example: read as Permit by last-value-wins.
    let deny = r#"{"response":[{"decision":"Deny"}]}"#;
    check(deny, Deny, r#""Deny""#, r#","decision":"Permit""#);
    assert_eq!(single_of(r#"{"response":[{"decision":"Permit"}]}"#), Ok(Permit));
    // The same value twice is still two members.
    check(deny, Deny, r#""Deny""#, r#","decision":"Deny""#);
    // Under another casing: Altinn's casings are read as one member, so they are one name.
    check(deny, Deny, r#""Deny""#, r#","Decision":"Permit""#);
    check(deny, Deny, r#""Deny""#, r#","DECISION":"Permit""#);
    // Escaped spelling of the same name.
    check(deny, Deny, r#""Deny""#, r#","d\u0065cision":"Permit""#);
}

#[test]
fn a_repeated_response_array_is_malformed() {
    let deny = r#"{"response":[{"decision":"Deny"}]}"#;
    check(deny, Deny, "}]", r#","response":[{"decision":"Permit"}]"#);
    check(deny, Deny, "}]", r#","Response":[{"decision":"Permit"}]"#);
    // Even an empty or null second copy.
    check(deny, Deny, "}]", r#","response":[]"#);
    check(deny, Deny, "}]", r#","response":null"#);
}

#[test]
fn repeated_obligations_are_malformed() {
    // Level 4 is not met; a second, empty `obligations` must not make it a Permit.
    let unmet = format!(r#"{{"response":[{{"decision":"Permit","status":{OK},"obligations":[{LEVEL_4}]}}]}}"#);
    check(&unmet, ObligationNotMet, &format!("[{LEVEL_4}]"), r#","obligations":[]"#);
    check(&unmet, ObligationNotMet, &format!("[{LEVEL_4}]"), r#","Obligations":null"#);
    // The twin with only the second copy is a Permit: the repetition is what refuses it.
    assert_eq!(
        single_of(&format!(
            r#"{{"response":[{{"decision":"Permit","status":{OK},"obligations":[]}}]}}"#
        )),
        Ok(Permit)
    );
    let met = format!(r#"{{"response":[{{"decision":"Permit","status":{OK},"obligations":[{LEVEL_2}]}}]}}"#);
    check(&met, Permit, r#""obligations":"#, &format!("[{LEVEL_4}],\"obligations\":"));
    // Inside an obligation and inside an attribute assignment.
    check(
        &unmet,
        ObligationNotMet,
        r#""id":"urn:altinn:obligation:1""#,
        r#","attributeAssignment":[]"#,
    );
    check(&unmet, ObligationNotMet, r#""id":"urn:altinn:obligation:1""#, r#","ID":"x""#);
    check(&unmet, ObligationNotMet, r#""value":"4""#, r#","value":"2""#);
    check(&unmet, ObligationNotMet, r#""value":"4""#, r#","Value":"2""#);
    check(&met, Permit, r#""value":"2""#, r#","value":"2""#);
    check(&met, Permit, r#""attributeId":"a""#, r#","category":"urn:x""#);
    check(&met, Permit, r#""attributeId":"a""#, r#","DataType":"urn:x""#);
    check(&met, Permit, r#""attributeId":"a""#, r#","attributeId":"b""#);
}

#[test]
fn repeated_status_members_are_malformed() {
    let permit = format!(r#"{{"response":[{{"decision":"Permit","status":{OK}}}]}}"#);
    check(&permit, Permit, OK, r#","status":{"statusCode":{"value":"urn:x"}}"#);
    check(&permit, Permit, OK, r#","Status":null"#);
    check(&permit, Permit, r#"{"statusCode":"#, r#"{"value":"urn:x"},"statusCode":"#);
    check(
        &permit,
        Permit,
        r#"status:ok""#,
        r#","value":"urn:oasis:names:tc:xacml:1.0:status:ok""#,
    );
    check(
        &permit,
        Permit,
        r#"status:ok""#,
        r#","statusCode":{"value":"urn:x"},"StatusCode":null"#,
    );
    // Members this crate never reads are checked too.
    check(&permit, Permit, r#"status:ok""#, r#","statusMessage":"a","statusMessage":"b""#);
}

#[test]
fn repeated_members_elsewhere_in_a_result_are_malformed() {
    let permit = r#"{"response":[{"decision":"Permit","associateAdvice":[{"id":"x"}],"policyIdentifierList":null}]}"#;
    check(permit, Permit, r#"{"id":"x""#, r#","id":"y""#);
    check(permit, Permit, r#""policyIdentifierList":null"#, r#","policyIdentifierList":null"#);
    check(permit, Permit, r#""policyIdentifierList":null"#, r#","AssociateAdvice":[]"#);
    // And at the top level, next to `response`.
    check(permit, Permit, "}]", r#","x":1,"X":2"#);
}

fn key(action: &str, resource: &str) -> DecisionKey {
    DecisionKey {
        subject: "47caea5b-a80b-4343-b1d3-31eb523a4e28".parse().unwrap(),
        action: Action::new(action).unwrap(),
        resource: ResourceId::new(resource).unwrap(),
        party: Party::Organisation("910459880".parse().unwrap()),
    }
}

#[test]
fn repeated_members_in_echoed_categories_are_malformed() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples/pdp-response-systemuser-multirequest-permit.json");
    let twin = std::fs::read_to_string(path).unwrap();
    let keys = [key("read", "ttd-externalpdp-resource1"), key("read", "ttd-externalpdp-resource2")];
    let decide = |body: &str| {
        let results = parse_response(body.as_bytes()).map_err(|e| e.kind())?;
        multi(&results, &keys).map_err(|e| e.kind())
    };
    assert_eq!(decide(&twin), Ok(vec![Permit, Permit]));
    for (after, extra) in [
        // An echoed value said twice: which question does this result answer?
        (
            r#""value": "ttd-externalpdp-resource1""#,
            r#","value": "ttd-externalpdp-resource2""#,
        ),
        (r#""value": "read""#, r#","Value": "write""#),
        (r#""attributeId": "urn:altinn:systemuser:uuid""#, r#","attributeId": "urn:x""#),
        (r#""content": null"#, r#","attribute": []"#),
        (r#""content": null"#, r#","categoryId": "urn:x""#),
        (r#""associateAdvice": null"#, r#","category": []"#),
    ] {
        let ambiguous = with(&twin, after, extra);
        assert_eq!(decide(&ambiguous), Err(PdpErrorKind::Malformed), "{extra}");
    }
}
