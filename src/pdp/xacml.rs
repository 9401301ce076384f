//! The XACML 3.0 JSON profile as Altinn's PDP speaks it.
//!
//! Requests are typed serde structs with the PascalCase member names of Altinn's documentation.
//! Responses are read as a [`serde_json::Value`] and walked with case-insensitive member lookup,
//! because the live PDP writes camelCase (with `null` members), its test data and docs PascalCase,
//! and some files mix both.
//!
//! An answer that can be read two ways is malformed: every object in it, at every level (the
//! top, each result, its status and status codes, obligations and advice, attribute
//! assignments, categories and attributes), must have distinct member names, where names that
//! differ only in ASCII case (`decision`, `Decision`) count as the same name, because they are
//! read as one. It is checked while the answer is parsed (`crate::strict_json`), before anything
//! in it is looked at.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::PdpError;
use super::request::{Action, DecisionKey, ResourceId};
use crate::org::{OrgNumber, Party, PersonId};
use crate::strict_json::{Names, value_from_slice};

/// The subject attribute for a system user.
pub(crate) const SYSTEMUSER_UUID: &str = "urn:altinn:systemuser:uuid";
/// The action attribute.
pub(crate) const ACTION_ID: &str = "urn:oasis:names:tc:xacml:1.0:action:action-id";
/// The resource-registry attribute.
pub(crate) const RESOURCE: &str = "urn:altinn:resource";
/// The organisation-party attribute.
pub(crate) const ORGANISATION: &str = "urn:altinn:organization:identifier-no";
/// The person-party attribute.
pub(crate) const PERSON: &str = "urn:altinn:person:identifier-no";
/// `xs:string`.
pub(crate) const XS_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// `{"Request": {...}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RequestBody<'a> {
    request: XacmlRequest<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct XacmlRequest<'a> {
    return_policy_id_list: bool,
    access_subject: Vec<Category<'a>>,
    action: Vec<Category<'a>>,
    resource: Vec<Category<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_requests: Option<MultiRequests>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Category<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    attribute: Vec<Attribute<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute<'a> {
    attribute_id: &'static str,
    value: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_type: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    include_in_result: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MultiRequests {
    request_reference: Vec<RequestReference>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RequestReference {
    reference_id: Vec<String>,
}

/// The value sent for a party: nine digits for an organisation, eleven for a person.
pub(crate) fn party_value(party: &Party) -> String {
    match party {
        Party::Organisation(o) => o.to_string(),
        Party::Person(p) => p.as_str().to_owned(),
    }
}

fn subject_category(subject: &Uuid, id: Option<String>, echo: bool) -> Category<'static> {
    let value = subject.hyphenated().to_string();
    Category {
        id,
        attribute: vec![Attribute {
            attribute_id: SYSTEMUSER_UUID,
            value: value.into(),
            data_type: None,
            include_in_result: echo,
        }],
    }
}

fn action_category(action: &Action, id: Option<String>, echo: bool) -> Category<'_> {
    Category {
        id,
        attribute: vec![Attribute {
            attribute_id: ACTION_ID,
            value: action.as_str().into(),
            data_type: Some(XS_STRING),
            include_in_result: echo,
        }],
    }
}

fn resource_category<'a>(resource: &'a ResourceId, party: &Party, id: Option<String>, echo: bool) -> Category<'a> {
    Category {
        id,
        attribute: vec![
            Attribute {
                attribute_id: RESOURCE,
                value: resource.as_str().into(),
                data_type: None,
                include_in_result: echo,
            },
            Attribute {
                attribute_id: party.attribute_id(),
                value: party_value(party).into(),
                data_type: None,
                include_in_result: echo,
            },
        ],
    }
}

impl<'a> RequestBody<'a> {
    /// One decision: no category ids, no echo, no `MultiRequests`.
    pub(crate) fn single(req: &'a DecisionKey) -> Self {
        RequestBody {
            request: XacmlRequest {
                return_policy_id_list: false,
                access_subject: vec![subject_category(&req.subject, None, false)],
                action: vec![action_category(&req.action, None, false)],
                resource: vec![resource_category(&req.resource, &req.party, None, false)],
                multi_requests: None,
            },
        }
    }

    /// Several decisions in one call. Subjects, actions and (resource, party) pairs are listed
    /// once each with ids `s1..`, `a1..`, `r1..`; every attribute is echoed in the results
    /// (`IncludeInResult`) so each result can be matched to its question; one `RequestReference`
    /// per key, in the order given.
    pub(crate) fn multi(keys: &'a [DecisionKey]) -> Self {
        let mut subjects: HashMap<Uuid, usize> = HashMap::new();
        let mut actions: HashMap<&Action, usize> = HashMap::new();
        let mut resources: HashMap<(&ResourceId, &Party), usize> = HashMap::new();
        let (mut access_subject, mut action, mut resource) = (Vec::new(), Vec::new(), Vec::new());
        let mut request_reference = Vec::with_capacity(keys.len());
        for key in keys {
            let s = *subjects.entry(key.subject).or_insert_with(|| {
                access_subject.push(subject_category(&key.subject, Some(format!("s{}", access_subject.len() + 1)), true));
                access_subject.len()
            });
            let a = *actions.entry(&key.action).or_insert_with(|| {
                action.push(action_category(&key.action, Some(format!("a{}", action.len() + 1)), true));
                action.len()
            });
            let r = *resources.entry((&key.resource, &key.party)).or_insert_with(|| {
                resource.push(resource_category(
                    &key.resource,
                    &key.party,
                    Some(format!("r{}", resource.len() + 1)),
                    true,
                ));
                resource.len()
            });
            request_reference.push(RequestReference {
                reference_id: vec![format!("s{s}"), format!("a{a}"), format!("r{r}")],
            });
        }
        RequestBody {
            request: XacmlRequest {
                return_policy_id_list: false,
                access_subject,
                action,
                resource,
                multi_requests: Some(MultiRequests { request_reference }),
            },
        }
    }

    /// The JSON body.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        // Serialising these structs (strings, bools, vectors) cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A member of a JSON object by case-insensitive name; `null` counts as absent.
///
/// Two members whose names differ only in case are ambiguous: that is an error, so a
/// response cannot say `"decision": "Deny"` and `"Decision": "Permit"` and be read either way.
/// ([`parse_response`] already refuses such an answer; this keeps the rule for any value.)
pub(crate) fn member<'v>(value: &'v Value, name: &str) -> Result<Option<&'v Value>, PdpError> {
    let Some(obj) = value.as_object() else { return Ok(None) };
    let mut found = None;
    for (k, v) in obj {
        if k.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(PdpError::malformed("a member appears twice with different case"));
            }
            found = Some(v);
        }
    }
    Ok(found.filter(|v| !v.is_null()))
}

/// Parses a PDP response body into its results (the `response` array).
///
/// Anything but an object whose `response` member is an array is malformed, and so is a body in
/// which any object repeats a member name (ignoring ASCII case). The results are not checked
/// here; see `decision::evaluate`.
pub(crate) fn parse_response(body: &[u8]) -> Result<Vec<Value>, PdpError> {
    let root = value_from_slice(body, Names::IgnoreAsciiCase).map_err(|e| {
        if e.is_data() {
            PdpError::malformed("a member name is repeated")
        } else {
            PdpError::malformed("not JSON")
        }
    })?;
    let Value::Object(root) = root else {
        return Err(PdpError::malformed("not a JSON object"));
    };
    let mut found = None;
    for (k, v) in root {
        if k.eq_ignore_ascii_case("response") {
            if found.is_some() {
                return Err(PdpError::malformed("a member appears twice with different case"));
            }
            found = Some(v);
        }
    }
    match found {
        Some(Value::Array(results)) => Ok(results),
        Some(Value::Null) | None => Err(PdpError::malformed("no response member")),
        Some(_) => Err(PdpError::malformed("response is not an array")),
    }
}

/// Items of a member that may be absent, one object, or an array.
fn items(value: Option<&Value>) -> &[Value] {
    match value {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(v) => std::slice::from_ref(v),
    }
}

/// The question a result answers, read from the attributes it echoes (`category`).
///
/// Requires exactly one value each for the system user, the action, the resource and the party
/// (an organisation or a person, not both); other echoed attributes are ignored. `None` if the
/// result cannot be matched.
pub(crate) fn echoed_key(result: &Value) -> Result<Option<DecisionKey>, PdpError> {
    let mut subject = Slot::default();
    let mut action = Slot::default();
    let mut resource = Slot::default();
    let mut org = Slot::default();
    let mut person = Slot::default();
    for category in items(member(result, "category")?) {
        if !category.is_object() {
            return Ok(None);
        }
        for attr in items(member(category, "attribute")?) {
            let Some(id) = member(attr, "attributeId")?.and_then(Value::as_str) else {
                continue;
            };
            let slot = match id {
                SYSTEMUSER_UUID => &mut subject,
                ACTION_ID => &mut action,
                RESOURCE => &mut resource,
                ORGANISATION => &mut org,
                PERSON => &mut person,
                _ => continue,
            };
            match member(attr, "value")? {
                Some(Value::String(s)) => slot.put(s),
                _ => slot.conflict = true,
            }
        }
    }
    let (Some(subject), Some(action), Some(resource)) = (subject.get(), action.get(), resource.get()) else {
        return Ok(None);
    };
    let party = if org.conflict || person.conflict {
        None
    } else {
        match (org.value, person.value) {
            (Some(o), None) => OrgNumber::parse(o).ok().map(Party::Organisation),
            (None, Some(p)) => PersonId::parse(p).ok().map(Party::Person),
            _ => None,
        }
    };
    let (Ok(subject), Ok(action), Ok(resource), Some(party)) =
        (Uuid::try_parse(subject), Action::new(action), ResourceId::new(resource), party)
    else {
        return Ok(None);
    };
    Ok(Some(DecisionKey {
        subject,
        action,
        resource,
        party,
    }))
}

/// Collects the values echoed for one attribute id; more than one distinct value is a conflict.
#[derive(Default)]
struct Slot<'v> {
    value: Option<&'v str>,
    conflict: bool,
}

impl<'v> Slot<'v> {
    fn put(&mut self, v: &'v str) {
        match self.value {
            None => self.value = Some(v),
            Some(old) if old == v => {}
            Some(_) => self.conflict = true,
        }
    }

    fn get(&self) -> Option<&'v str> {
        if self.conflict { None } else { self.value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdp::DecisionRequest;
    use serde_json::json;

    fn samples() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples")
    }

    fn read_json(name: &str) -> Value {
        let path = samples().join(name);
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&text).unwrap()
    }

    fn org(s: &str) -> Party {
        Party::Organisation(s.parse().unwrap())
    }

    fn key(subject: &str, action: &str, resource: &str, party: Party) -> DecisionKey {
        DecisionKey {
            subject: subject.parse().unwrap(),
            action: Action::new(action).unwrap(),
            resource: ResourceId::new(resource).unwrap(),
            party,
        }
    }

    #[test]
    fn single_request_matches_the_documented_sample() {
        let req = DecisionRequest::new(
            "a545ca29-7fb8-4810-a2f2-0be171cb2a26".parse().unwrap(),
            Action::read(),
            ResourceId::new("kravogbetaling").unwrap(),
            org("923609016"),
        );
        let ours: Value = serde_json::from_slice(&RequestBody::single(&DecisionKey::of(&req)).to_vec()).unwrap();
        let mut sample = read_json("pdp-request-systemuser-single.json");
        // The documented sample asks for the policy ids; we never need them.
        sample["Request"]["ReturnPolicyIdList"] = json!(false);
        assert_eq!(ours, sample);
    }

    #[test]
    fn multi_request_matches_the_altinn_sample() {
        let keys = [
            key(
                "47caea5b-a80b-4343-b1d3-31eb523a4e28",
                "read",
                "ttd-externalpdp-resource1",
                org("910459880"),
            ),
            key(
                "47caea5b-a80b-4343-b1d3-31eb523a4e28",
                "read",
                "ttd-externalpdp-resource2",
                org("910459880"),
            ),
        ];
        let ours: Value = serde_json::from_slice(&RequestBody::multi(&keys).to_vec()).unwrap();
        let mut sample = read_json("pdp-request-systemuser-multirequest.json");
        sample["Request"]["ReturnPolicyIdList"] = json!(false);
        // We always give the action's data type, as in the single-request documentation.
        sample["Request"]["Action"][0]["Attribute"][0]["DataType"] = json!(XS_STRING);
        assert_eq!(ours, sample);
    }

    #[test]
    fn multi_request_shares_categories() {
        let person: Party = Party::Person("01010012356".parse().unwrap());
        let keys = [
            key("47caea5b-a80b-4343-b1d3-31eb523a4e28", "read", "res-one", org("910459880")),
            key("47caea5b-a80b-4343-b1d3-31eb523a4e28", "write", "res-one", org("910459880")),
            key("a545ca29-7fb8-4810-a2f2-0be171cb2a26", "read", "res-one", person),
        ];
        let v: Value = serde_json::from_slice(&RequestBody::multi(&keys).to_vec()).unwrap();
        let r = &v["Request"];
        assert_eq!(r["AccessSubject"].as_array().unwrap().len(), 2);
        assert_eq!(r["Action"].as_array().unwrap().len(), 2);
        assert_eq!(r["Resource"].as_array().unwrap().len(), 2);
        assert_eq!(
            r["Resource"][1]["Attribute"][1],
            json!({"AttributeId": PERSON, "Value": "01010012356", "IncludeInResult": true})
        );
        assert_eq!(
            r["MultiRequests"]["RequestReference"],
            json!([
                {"ReferenceId": ["s1", "a1", "r1"]},
                {"ReferenceId": ["s1", "a2", "r1"]},
                {"ReferenceId": ["s2", "a1", "r2"]},
            ])
        );
    }

    #[test]
    fn uuids_are_lowercase_hyphenated() {
        let req = DecisionRequest::new(
            "A545CA29-7FB8-4810-A2F2-0BE171CB2A26".parse().unwrap(),
            Action::read(),
            ResourceId::new("kravogbetaling").unwrap(),
            org("923609016"),
        );
        let v: Value = serde_json::from_slice(&RequestBody::single(&DecisionKey::of(&req)).to_vec()).unwrap();
        assert_eq!(
            v["Request"]["AccessSubject"][0]["Attribute"][0]["Value"],
            "a545ca29-7fb8-4810-a2f2-0be171cb2a26"
        );
        assert_eq!(v["Request"]["AccessSubject"][0]["Attribute"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn members_are_found_case_insensitively() {
        let v = json!({"Decision": "Permit", "status": null});
        assert_eq!(member(&v, "decision").unwrap(), Some(&json!("Permit")));
        assert_eq!(member(&v, "STATUS").unwrap(), None);
        assert_eq!(member(&json!([1]), "x").unwrap(), None);
        let twice = json!({"decision": "Deny", "Decision": "Permit"});
        assert_eq!(
            member(&twice, "decision").unwrap_err().kind(),
            super::super::PdpErrorKind::Malformed
        );
    }

    #[test]
    fn response_shapes() {
        assert_eq!(parse_response(br#"{"response": []}"#).unwrap().len(), 0);
        assert_eq!(parse_response(br#"{"Response": [{"Decision": "Permit"}]}"#).unwrap().len(), 1);
        for bad in [
            &b"[]"[..],
            b"{}",
            b"{\"response\": null}",
            b"{\"response\": {}}",
            b"{\"response\": \"Permit\"}",
            b"nope",
            b"",
        ] {
            assert!(parse_response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn repeated_member_names_anywhere_are_malformed() {
        let malformed = |body: &str| parse_response(body.as_bytes()).unwrap_err().kind() == super::super::PdpErrorKind::Malformed;
        for bad in [
            r#"{"response":[{"decision":"Deny","decision":"Permit"}]}"#,
            r#"{"response":[{"decision":"Deny","Decision":"Permit"}]}"#,
            r#"{"response":[{"decision":"Deny"}],"response":[{"decision":"Permit"}]}"#,
            r#"{"Response":[{"decision":"Deny"}],"response":[]}"#,
            r#"{"response":[{"decision":"Permit","obligations":[{"id":"x"}],"obligations":[]}]}"#,
            r#"{"response":[{"decision":"Permit","category":[{"attribute":[{"value":"a","VALUE":"b"}]}]}]}"#,
        ] {
            assert!(malformed(bad), "{bad}");
        }
        // The unambiguous twins parse.
        for good in [
            r#"{"response":[{"decision":"Deny"}]}"#,
            r#"{"response":[{"decision":"Permit","obligations":[]}]}"#,
            r#"{"response":[{"decision":"Permit","category":[{"attribute":[{"value":"a","valueX":"b"}]}]}]}"#,
            r#"{"response":[{"decision":"Deny"},{"decision":"Permit"}]}"#,
        ] {
            assert!(parse_response(good.as_bytes()).is_ok(), "{good}");
        }
    }

    #[test]
    fn echoed_keys() {
        let results = parse_response(&std::fs::read(samples().join("pdp-response-systemuser-multirequest-permit.json")).unwrap()).unwrap();
        assert_eq!(
            echoed_key(&results[0]).unwrap(),
            Some(key(
                "47caea5b-a80b-4343-b1d3-31eb523a4e28",
                "read",
                "ttd-externalpdp-resource1",
                org("910459880")
            ))
        );
        assert_eq!(
            echoed_key(&results[1]).unwrap(),
            Some(key(
                "47caea5b-a80b-4343-b1d3-31eb523a4e28",
                "read",
                "ttd-externalpdp-resource2",
                org("910459880")
            ))
        );

        let attr = |id: &str, v: Value| json!({"AttributeId": id, "Value": v});
        let base = |extra: Vec<Value>| {
            let mut attrs = vec![
                attr(SYSTEMUSER_UUID, json!("47caea5b-a80b-4343-b1d3-31eb523a4e28")),
                attr(ACTION_ID, json!("read")),
                attr(RESOURCE, json!("res-one")),
            ];
            attrs.extend(extra);
            json!({"Decision": "Permit", "Category": {"CategoryId": "x", "Attribute": attrs}})
        };
        // One category object with everything in it works.
        assert!(echoed_key(&base(vec![attr(ORGANISATION, json!("910459880"))])).unwrap().is_some());
        // Extra attributes are ignored; repeated identical values are fine.
        assert!(
            echoed_key(&base(vec![
                attr(ORGANISATION, json!("910459880")),
                attr(ORGANISATION, json!("910459880")),
                attr("urn:x", json!(1))
            ]))
            .unwrap()
            .is_some()
        );
        // No party, two parties, conflicting values, non-string or invalid values: unmappable.
        assert_eq!(echoed_key(&base(vec![])).unwrap(), None);
        assert_eq!(
            echoed_key(&base(vec![
                attr(ORGANISATION, json!("910459880")),
                attr(PERSON, json!("01010012356"))
            ]))
            .unwrap(),
            None
        );
        assert_eq!(
            echoed_key(&base(vec![
                attr(ORGANISATION, json!("910459880")),
                attr(ORGANISATION, json!("923609016"))
            ]))
            .unwrap(),
            None
        );
        assert_eq!(echoed_key(&base(vec![attr(ORGANISATION, json!(910459880))])).unwrap(), None);
        assert_eq!(echoed_key(&base(vec![attr(ORGANISATION, json!("910459881"))])).unwrap(), None);
        assert_eq!(
            echoed_key(&base(vec![attr(ORGANISATION, json!("910459880")), attr(ACTION_ID, json!("write"))])).unwrap(),
            None
        );
        assert_eq!(echoed_key(&json!({"Decision": "Permit"})).unwrap(), None);
        assert_eq!(echoed_key(&json!({"Decision": "Permit", "Category": [1]})).unwrap(), None);
    }
}
