//! Property test: no PDP answer other than an exact, well-formed, understood Permit is ever read
//! as Permit.
//!
//! Answers are generated from parts (the decision, the status, the obligations, the casing of
//! every member name, repeated members, unknown members, the shape of the `response` array) and
//! written out as JSON text, so that repeated members can be generated at all. Whether an answer
//! must be read as Permit is said by the parts that were chosen (`Answer::is_exact_permit`), not
//! by reading the JSON back.

use super::{Decision, single};
use crate::pdp::xacml::parse_response;
use proptest::prelude::*;

const STATUS_OK: &str = "urn:oasis:names:tc:xacml:1.0:status:ok";

#[derive(Debug, Clone)]
enum DecisionPart {
    /// `"Permit"`, exactly.
    Permit,
    /// Another string: another decision, or Permit spelled otherwise.
    Other(&'static str),
    /// Not a string (a number, `true`, `null`, an object).
    NotAString(&'static str),
    /// No `decision` member.
    Absent,
}

#[derive(Debug, Clone)]
enum StatusPart {
    Absent,
    /// A chain of status codes, each with this value (`true` = ok).
    Codes(Vec<bool>),
    /// `status` without a `statusCode`.
    NoCode,
    /// `status` that is not an object.
    NotAnObject,
}

#[derive(Debug, Clone)]
struct Assignment {
    /// `None`: an unknown category.
    known_category: bool,
    /// 0: no dataType, 1: the XML Schema integer, 2: "integer", 3: "string".
    data_type: u8,
    /// The level, and whether it is written as a string.
    level: u64,
    as_string: bool,
}

impl Assignment {
    fn met(&self) -> bool {
        self.known_category && self.data_type < 3 && self.level <= 3
    }
}

#[derive(Debug, Clone)]
enum ObligationsPart {
    Absent,
    /// An array of obligations, each with its assignments.
    List(Vec<Vec<Assignment>>),
    /// `obligations` that is not an array.
    NotAnArray,
}

#[derive(Debug, Clone)]
enum Shape {
    /// `{"response": [result]}`
    One,
    /// `{"response": []}`
    Empty,
    /// `{"response": [result, result]}`
    Twice,
    /// `{"response": result}`
    NotAnArray,
}

#[derive(Debug, Clone)]
struct Answer {
    decision: DecisionPart,
    status: StatusPart,
    obligations: ObligationsPart,
    /// Which member to repeat (an index into the written members), and whether under another
    /// casing.
    repeat: Option<(usize, bool)>,
    /// An unknown member added to the result.
    unknown_member: bool,
    /// A seed for the casing of member names.
    casing: u64,
    shape: Shape,
}

impl Answer {
    /// What a deny-biased reader must make of this answer.
    fn is_exact_permit(&self) -> bool {
        let decision = matches!(self.decision, DecisionPart::Permit);
        let status = match &self.status {
            StatusPart::Absent => true,
            StatusPart::Codes(codes) => codes.iter().all(|ok| *ok),
            StatusPart::NoCode | StatusPart::NotAnObject => false,
        };
        let obligations = match &self.obligations {
            ObligationsPart::Absent => true,
            ObligationsPart::List(list) => list.iter().all(|a| !a.is_empty() && a.iter().all(Assignment::met)),
            ObligationsPart::NotAnArray => false,
        };
        decision && status && obligations && self.repeat.is_none() && matches!(self.shape, Shape::One)
    }

    fn to_json(&self) -> String {
        let mut case = Casing(self.casing);
        let mut members: Vec<(String, String)> = Vec::new();
        match self.decision {
            DecisionPart::Permit => members.push((case.name("decision"), "\"Permit\"".into())),
            DecisionPart::Other(s) => members.push((case.name("decision"), format!("{s:?}"))),
            DecisionPart::NotAString(v) => members.push((case.name("decision"), v.into())),
            DecisionPart::Absent => {}
        }
        match &self.status {
            StatusPart::Absent => {}
            StatusPart::Codes(codes) => {
                let mut inner = String::new();
                for ok in codes.iter().rev() {
                    let value = if *ok {
                        STATUS_OK
                    } else {
                        "urn:oasis:names:tc:xacml:1.0:status:processing-error"
                    };
                    let nested = if inner.is_empty() {
                        String::new()
                    } else {
                        format!(",{}:{inner}", quote(&case.name("statusCode")))
                    };
                    inner = format!("{{{}:{value:?}{nested}}}", quote(&case.name("value")));
                }
                members.push((case.name("status"), format!("{{{}:{inner}}}", quote(&case.name("statusCode")))));
            }
            StatusPart::NoCode => members.push((case.name("status"), format!("{{{}:\"x\"}}", quote(&case.name("statusMessage"))))),
            StatusPart::NotAnObject => members.push((case.name("status"), format!("{STATUS_OK:?}"))),
        }
        match &self.obligations {
            ObligationsPart::Absent => {}
            ObligationsPart::NotAnArray => members.push((case.name("obligations"), "{}".into())),
            ObligationsPart::List(list) => {
                let obligations: Vec<String> = list
                    .iter()
                    .map(|assignments| {
                        let written: Vec<String> = assignments.iter().map(|a| assignment(a, &mut case)).collect();
                        format!("{{{}:[{}]}}", quote(&case.name("attributeAssignment")), written.join(","))
                    })
                    .collect();
                members.push((case.name("obligations"), format!("[{}]", obligations.join(","))));
            }
        }
        if self.unknown_member {
            members.push(("associatedAdvice".into(), "[]".into()));
        }
        if let Some((i, recase)) = self.repeat
            && !members.is_empty()
        {
            let (name, value) = members[i % members.len()].clone();
            let name = if recase { name.to_ascii_uppercase() } else { name };
            members.push((name, value));
        }
        let result = format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("{}:{v}", quote(k)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let response = case.name("response");
        match self.shape {
            Shape::One => format!("{{{}:[{result}]}}", quote(&response)),
            Shape::Empty => format!("{{{}:[]}}", quote(&response)),
            Shape::Twice => format!("{{{}:[{result},{result}]}}", quote(&response)),
            Shape::NotAnArray => format!("{{{}:{result}}}", quote(&response)),
        }
    }
}

fn assignment(a: &Assignment, case: &mut Casing) -> String {
    let category = if a.known_category {
        "urn:altinn:minimum-authenticationlevel"
    } else {
        "urn:altinn:unknown"
    };
    let mut members = vec![format!("{}:{category:?}", quote(&case.name("category")))];
    match a.data_type {
        0 => {}
        1 => members.push(format!(
            "{}:\"http://www.w3.org/2001/XMLSchema#integer\"",
            quote(&case.name("dataType"))
        )),
        2 => members.push(format!("{}:\"integer\"", quote(&case.name("dataType")))),
        _ => members.push(format!(
            "{}:\"http://www.w3.org/2001/XMLSchema#string\"",
            quote(&case.name("dataType"))
        )),
    }
    let value = if a.as_string {
        format!("\"{}\"", a.level)
    } else {
        a.level.to_string()
    };
    members.push(format!("{}:{value}", quote(&case.name("value"))));
    format!("{{{}}}", members.join(","))
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Changes the ASCII case of member names, from a seed.
struct Casing(u64);

impl Casing {
    fn name(&mut self, name: &str) -> String {
        name.chars()
            .map(|c| {
                self.0 = self.0.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                if self.0 & 0b1100 == 0 { c.to_ascii_uppercase() } else { c }
            })
            .collect()
    }
}

fn decision_part() -> impl Strategy<Value = DecisionPart> {
    prop_oneof![
        4 => Just(DecisionPart::Permit),
        1 => prop::sample::select(vec!["Deny", "NotApplicable", "Indeterminate", "permit", "PERMIT", "Permit ", " Permit", "Permi", "Permitt", ""])
            .prop_map(DecisionPart::Other),
        1 => prop::sample::select(vec!["1", "true", "null", "{}", "[\"Permit\"]", "{\"value\":\"Permit\"}"]).prop_map(DecisionPart::NotAString),
        1 => Just(DecisionPart::Absent),
    ]
}

fn status_part() -> impl Strategy<Value = StatusPart> {
    prop_oneof![
        2 => Just(StatusPart::Absent),
        3 => prop::collection::vec(prop::bool::weighted(0.85), 1..4).prop_map(StatusPart::Codes),
        1 => Just(StatusPart::NoCode),
        1 => Just(StatusPart::NotAnObject),
    ]
}

fn assignment_part() -> impl Strategy<Value = Assignment> {
    (
        prop::bool::weighted(0.85),
        0u8..4,
        prop_oneof![3 => 0u64..=4, 1 => Just(9_999u64)],
        any::<bool>(),
    )
        .prop_map(|(known_category, data_type, level, as_string)| Assignment {
            known_category,
            data_type: if data_type == 3 && known_category {
                data_type
            } else {
                data_type % 3
            },
            level,
            as_string,
        })
}

fn obligations_part() -> impl Strategy<Value = ObligationsPart> {
    prop_oneof![
        2 => Just(ObligationsPart::Absent),
        3 => prop::collection::vec(prop::collection::vec(assignment_part(), 0..3), 0..3).prop_map(ObligationsPart::List),
        1 => Just(ObligationsPart::NotAnArray),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        decision_part(),
        status_part(),
        obligations_part(),
        prop::option::weighted(0.2, (0usize..8, any::<bool>())),
        any::<bool>(),
        any::<u64>(),
        prop_oneof![6 => Just(Shape::One), 1 => Just(Shape::Empty), 1 => Just(Shape::Twice), 1 => Just(Shape::NotAnArray)],
    )
        .prop_map(|(decision, status, obligations, repeat, unknown_member, casing, shape)| Answer {
            decision,
            status,
            obligations,
            repeat,
            unknown_member,
            casing,
            shape,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn only_an_exact_understood_permit_is_read_as_permit(a in answer()) {
        let body = a.to_json();
        prop_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok(), "not JSON: {}", body);
        let read = parse_response(body.as_bytes()).and_then(|results| single(&results));
        let permit = matches!(read, Ok(Decision::Permit));
        prop_assert_eq!(permit, a.is_exact_permit(), "{} was read as {:?}", body, read);
    }

    #[test]
    fn a_changed_byte_never_turns_a_refusal_into_permit(pos in 0usize..400, byte in any::<u8>(), which in 0usize..4) {
        // Answers that refuse, one byte away from many spellings of Permit.
        let bodies = [
            r#"{"response":[{"decision":"Permit","obligations":[{"attributeAssignment":[{"category":"urn:altinn:minimum-authenticationlevel","value":"4"}]}]}]}"#,
            r#"{"response":[{"decision":"Permit","status":{"statusCode":{"value":"urn:oasis:names:tc:xacml:1.0:status:ok","statusCode":{"value":"urn:oasis:names:tc:xacml:1.0:status:processing-error"}}}}]}"#,
            r#"{"response":[{"decision":"Permjt"}]}"#,
            r#"{"response":[{"decision":"Permit"},{"decision":"Permit"}]}"#,
        ];
        let body = bodies[which].as_bytes();
        let mut changed = body.to_vec();
        let pos = pos % changed.len();
        changed[pos] = byte;
        let read = parse_response(&changed).and_then(|results| single(&results));
        if let Ok(Decision::Permit) = read {
            // Only changes that make the answer an exact Permit may do so: the level lowered to
            // 3 or less, the decision spelled right, or the member that refused renamed (an
            // unknown member is ignored, as in any JSON reading: `obligationz` is not
            // `obligations`, and a status code with no nested `statusCode` is ok).
            let text = String::from_utf8_lossy(&changed);
            let lower = text.to_ascii_lowercase();
            let allowed = match which {
                0 => (matches!(byte, b'0'..=b'3') && body[pos] == b'4') || !lower.contains("\"obligations\""),
                1 => !lower.contains("\"status\"") || lower.matches("\"statuscode\"").count() < 2,
                2 => text.contains("\"Permit\""),
                _ => false,
            };
            prop_assert!(allowed, "{} was read as Permit", text);
        }
    }
}
