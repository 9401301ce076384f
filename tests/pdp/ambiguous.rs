//! Answers that can be read two ways: a member name repeated at any level of the PDP's answer
//! (or repeated under another casing) is malformed, never a decision, and never cached. Each
//! ambiguous answer comes over real HTTP from FakeAltinn, next to its unambiguous twin.

use crate::support::OWNER_ORG;
use crate::{echoed_result, question, setup};
use altinn_systemuser::pdp::{Decision, DecisionRequest, PdpErrorKind};
use altinn_systemuser::test_util::PdpAnswer;
use uuid::Uuid;

const OK: &str = r#"{"statusCode":{"value":"urn:oasis:names:tc:xacml:1.0:status:ok"}}"#;
const LEVEL_4: &str = r#"{"id":"urn:altinn:obligation:1","attributeAssignment":[{"attributeId":"a","category":"urn:altinn:minimum-authenticationlevel","value":"4","dataType":"http://www.w3.org/2001/XMLSchema#integer"}]}"#;

/// `200` with this JSON body, exactly as written (serde_json would merge repeated names).
fn raw(body: impl Into<String>) -> PdpAnswer {
    PdpAnswer::Raw {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
    }
}

/// `body` with `extra` inserted right after the first `after`.
fn with(body: &str, after: &str, extra: &str) -> String {
    let at = body.find(after).unwrap_or_else(|| panic!("{after} not in {body}")) + after.len();
    format!("{}{extra}{}", &body[..at], &body[at..])
}

/// (twin, its decision, insert after, the repeated member): the twin with the member inserted
/// says something else under a name it already uses.
fn cases() -> Vec<(String, Decision, &'static str, &'static str)> {
    let deny = r#"{"response":[{"decision":"Deny"}]}"#.to_owned();
    let unmet = format!(r#"{{"response":[{{"decision":"Permit","status":{OK},"obligations":[{LEVEL_4}]}}]}}"#);
    let permit = format!(r#"{{"response":[{{"decision":"Permit","status":{OK},"associateAdvice":[{{"id":"x"}}]}}]}}"#);
    vec![
        // The result: a Deny read as Permit by last-value-wins, in either casing.
        (deny.clone(), Decision::Deny, r#""Deny""#, r#","decision":"Permit""#),
        (deny.clone(), Decision::Deny, r#""Deny""#, r#","Decision":"Permit""#),
        // The top level: a second `response` array.
        (deny.clone(), Decision::Deny, "}]", r#","response":[{"decision":"Permit"}]"#),
        (deny, Decision::Deny, "}]", r#","Response":[{"decision":"Permit"}]"#),
        // Obligations: a second, empty copy that would hide the unmet one.
        (unmet.clone(), Decision::ObligationNotMet, "}]}]", r#","obligations":[]"#),
        (unmet.clone(), Decision::ObligationNotMet, "}]}]", r#","Obligations":null"#),
        // An obligation, an attribute assignment.
        (
            unmet.clone(),
            Decision::ObligationNotMet,
            r#""id":"urn:altinn:obligation:1""#,
            r#","attributeAssignment":[]"#,
        ),
        (unmet.clone(), Decision::ObligationNotMet, r#""value":"4""#, r#","value":"2""#),
        (unmet, Decision::ObligationNotMet, r#""value":"4""#, r#","Category":"urn:x""#),
        // The status and its code.
        (
            permit.clone(),
            Decision::Permit,
            r#"{"statusCode":"#,
            r#"{"value":"urn:x"},"statusCode":"#,
        ),
        (permit.clone(), Decision::Permit, r#"status:ok""#, r#","Value":"urn:x""#),
        (permit.clone(), Decision::Permit, OK, r#","status":{}"#),
        // Advice, and members this crate never reads.
        (permit.clone(), Decision::Permit, r#"{"id":"x""#, r#","id":"y""#),
        (
            permit,
            Decision::Permit,
            r#""decision":"Permit""#,
            r#","policyIdentifierList":null,"PolicyIdentifierList":[]"#,
        ),
    ]
}

#[tokio::test]
async fn a_repeated_member_at_any_level_is_malformed_and_never_permit() {
    let (fakes, pdp) = setup().await;
    for (twin, want, after, extra) in cases() {
        // The twin is answered as it says.
        fakes.altinn.push_answer(raw(twin.clone()));
        assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(want), "{twin}");

        let ambiguous = with(&twin, after, extra);
        fakes.altinn.push_answer(raw(ambiguous.clone()));
        let asked = question(Uuid::new_v4(), "read", OWNER_ORG);
        let before = fakes.altinn.pdp_request_count();
        let e = pdp.decide(&asked).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Malformed, "{ambiguous}");
        assert_eq!(fakes.altinn.pdp_request_count() - before, 1, "not retried: {ambiguous}");
        // Not cached either: asked again, the PDP is asked again.
        fakes.altinn.push_answer(raw(ambiguous.clone()));
        assert_eq!(pdp.decide(&asked).await.unwrap_err().kind(), PdpErrorKind::Malformed, "{ambiguous}");
        assert_eq!(fakes.altinn.pdp_request_count() - before, 2, "{ambiguous}");
    }
}

/// Two fresh questions and the twin answer to them (Deny, then Permit, with echoed categories).
fn two_questions() -> (Uuid, Vec<DecisionRequest>, String) {
    let (su, other) = (Uuid::new_v4(), Uuid::new_v4());
    let asked = vec![question(su, "read", OWNER_ORG), question(other, "read", OWNER_ORG)];
    let first = serde_json::to_string(&echoed_result("Deny", su, "read", OWNER_ORG)).unwrap();
    let second = serde_json::to_string(&echoed_result("Permit", other, "read", OWNER_ORG)).unwrap();
    (su, asked, format!(r#"{{"response":[{first},{second}]}}"#))
}

#[tokio::test]
async fn a_repeated_member_in_one_result_of_many_spoils_the_whole_answer() {
    let (fakes, pdp) = setup().await;
    let (_, asked, twin) = two_questions();
    fakes.altinn.push_answer(raw(twin));
    assert_eq!(pdp.decide_many(&asked).await, Ok(vec![Decision::Deny, Decision::Permit]));

    for case in 0..3 {
        // Fresh questions each time: the twin's decisions are cached.
        let (su, asked, twin) = two_questions();
        let (after, extra) = match case {
            // The Deny becomes a Permit by last-value-wins.
            0 => (r#""decision":"Deny""#.to_owned(), r#","decision":"Permit""#),
            // The first result claims to answer another question too.
            1 => (format!(r#""value":"{su}""#), r#","value":"00000000-0000-4000-8000-000000000000""#),
            _ => (
                r#""categoryId":"urn:oasis:names:tc:xacml:3.0:attribute-category:action""#.to_owned(),
                r#","CategoryId":"x""#,
            ),
        };
        let ambiguous = with(&twin, &after, extra);
        fakes.altinn.push_answer(raw(ambiguous.clone()));
        let e = pdp.decide_many(&asked).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Malformed, "{ambiguous}");
    }
}
