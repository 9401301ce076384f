//! Reading an XACML JSON request (Altinn's profile, case-insensitive member names) into the
//! decisions it asks for, and the `category` echo of their results.

use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

const SYSTEMUSER_UUID: &str = "urn:altinn:systemuser:uuid";
const ACTION_ID: &str = "urn:oasis:names:tc:xacml:1.0:action:action-id";
const RESOURCE: &str = "urn:altinn:resource";
const ORGANISATION: &str = "urn:altinn:organization:identifier-no";
const PERSON: &str = "urn:altinn:person:identifier-no";
const XS_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
const SUBJECT_CATEGORY: &str = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject";
const ACTION_CATEGORY: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:action";
const RESOURCE_CATEGORY: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource";

/// One decision asked for.
#[derive(Debug)]
pub(super) struct Decision {
    pub(super) subject: Uuid,
    pub(super) action: String,
    pub(super) resource: String,
    pub(super) party: String,
    /// The `category` echo of its result (`null` if nothing was sent with `IncludeInResult`).
    pub(super) echo: Value,
}

#[derive(Debug, Clone)]
struct Category {
    id: Option<String>,
    attributes: Vec<Attribute>,
}

#[derive(Debug, Clone)]
struct Attribute {
    id: String,
    value: String,
    data_type: Option<String>,
    include: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subject,
    Action,
    Resource,
}

type Syntax<T> = Result<T, String>;

/// A member by case-insensitive name; `null` counts as absent; two spellings of one name are an
/// error.
fn member<'v>(value: &'v Value, name: &str) -> Syntax<Option<&'v Value>> {
    let Some(obj) = value.as_object() else { return Ok(None) };
    let mut found = None;
    for (k, v) in obj {
        if k.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(format!("member {name} appears twice"));
            }
            found = Some(v);
        }
    }
    Ok(found.filter(|v| !v.is_null()))
}

/// An object or an array of objects, as a list.
fn list<'v>(value: Option<&'v Value>, what: &str) -> Syntax<Vec<&'v Value>> {
    match value {
        None => Ok(Vec::new()),
        Some(v @ Value::Object(_)) => Ok(vec![v]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                if i.is_object() {
                    Ok(i)
                } else {
                    Err(format!("{what} must hold objects"))
                }
            })
            .collect(),
        Some(_) => Err(format!("{what} must be an object or an array")),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn categories(request: &Value, name: &str) -> Syntax<Vec<Category>> {
    let mut out = Vec::new();
    for cat in list(member(request, name)?, name)? {
        let id = match member(cat, "Id")? {
            None => None,
            Some(v) => Some(v.as_str().ok_or("Id must be a string")?.to_owned()),
        };
        let mut attributes = Vec::new();
        for attr in list(member(cat, "Attribute")?, "Attribute")? {
            let id = member(attr, "AttributeId")?
                .and_then(Value::as_str)
                .ok_or("AttributeId is missing")?;
            let value = member(attr, "Value")?.and_then(text).ok_or("Value is missing")?;
            let data_type = match member(attr, "DataType")? {
                None => None,
                Some(v) => Some(v.as_str().ok_or("DataType must be a string")?.to_owned()),
            };
            let include = match member(attr, "IncludeInResult")? {
                None => false,
                Some(v) => v.as_bool().ok_or("IncludeInResult must be a boolean")?,
            };
            attributes.push(Attribute {
                id: id.to_owned(),
                value,
                data_type,
                include,
            });
        }
        out.push(Category { id, attributes });
    }
    Ok(out)
}

/// The decisions a request asks for, or why it is a syntax error.
pub(super) fn decisions(root: &Value) -> Syntax<Vec<Decision>> {
    let request = member(root, "Request")?.filter(|r| r.is_object()).ok_or("Request is missing")?;
    let subjects = categories(request, "AccessSubject")?;
    let actions = categories(request, "Action")?;
    let resources = categories(request, "Resource")?;

    let references = match member(request, "MultiRequests")? {
        None => Vec::new(),
        Some(multi) => list(member(multi, "RequestReference")?, "RequestReference")?,
    };
    if references.len() < 2 {
        let (s, a, r) = match (subjects.as_slice(), actions.as_slice(), resources.as_slice()) {
            ([s], [a], [r]) => (s, a, r),
            _ => return Err("a single request needs exactly one category of each kind".into()),
        };
        return Ok(vec![decision(s, a, r)?]);
    }

    let all: Vec<(Kind, &Category)> = subjects
        .iter()
        .map(|c| (Kind::Subject, c))
        .chain(actions.iter().map(|c| (Kind::Action, c)))
        .chain(resources.iter().map(|c| (Kind::Resource, c)))
        .collect();
    let mut ids = HashSet::new();
    for (_, c) in &all {
        if let Some(id) = &c.id
            && !ids.insert(id.as_str())
        {
            return Err(format!("category Id {id} is used twice"));
        }
    }
    let mut out = Vec::new();
    for reference in references {
        let names = member(reference, "ReferenceId")?
            .and_then(Value::as_array)
            .ok_or("ReferenceId must be an array")?;
        let mut picked: Vec<(Kind, &Category)> = Vec::new();
        for name in names {
            let name = name.as_str().ok_or("ReferenceId must hold strings")?;
            let found = all
                .iter()
                .find(|(_, c)| c.id.as_deref() == Some(name))
                .ok_or_else(|| format!("unknown ReferenceId {name}"))?;
            picked.push(*found);
        }
        let one = |kind: Kind| -> Syntax<&Category> {
            match picked.iter().filter(|(k, _)| *k == kind).collect::<Vec<_>>().as_slice() {
                [(_, c)] => Ok(c),
                _ => Err("a reference must name exactly one category of each kind".into()),
            }
        };
        out.push(decision(one(Kind::Subject)?, one(Kind::Action)?, one(Kind::Resource)?)?);
    }
    Ok(out)
}

fn decision(subject: &Category, action: &Category, resource: &Category) -> Syntax<Decision> {
    let subject_id = match subject.attributes.as_slice() {
        [a] if a.id == SYSTEMUSER_UUID => Uuid::parse_str(&a.value).map_err(|_| "the system user is not a UUID")?,
        _ => return Err("the subject must be exactly one urn:altinn:systemuser:uuid".into()),
    };
    let action_id = match action
        .attributes
        .iter()
        .filter(|a| a.id == ACTION_ID)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [a] => a.value.clone(),
        _ => return Err("the action needs one action-id".into()),
    };
    let resource_id = match resource
        .attributes
        .iter()
        .filter(|a| a.id == RESOURCE)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [a] => a.value.clone(),
        _ => return Err("the resource needs one urn:altinn:resource".into()),
    };
    let parties: Vec<&Attribute> = resource
        .attributes
        .iter()
        .filter(|a| a.id == ORGANISATION || a.id == PERSON)
        .collect();
    let party = match parties.as_slice() {
        [a] if a.id == ORGANISATION && digits(&a.value, 9) => a.value.clone(),
        [a] if a.id == PERSON && digits(&a.value, 11) => a.value.clone(),
        _ => return Err("the resource needs exactly one valid party".into()),
    };
    let echo: Vec<Value> = [
        (SUBJECT_CATEGORY, subject),
        (ACTION_CATEGORY, action),
        (RESOURCE_CATEGORY, resource),
    ]
    .into_iter()
    .filter_map(|(category_id, c)| echo_category(category_id, c))
    .collect();
    let echo = if echo.is_empty() { Value::Null } else { Value::Array(echo) };
    Ok(Decision {
        subject: subject_id,
        action: action_id,
        resource: resource_id,
        party,
        echo,
    })
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The echo of a category's `IncludeInResult` attributes, shaped like the live PDP's.
fn echo_category(category_id: &str, c: &Category) -> Option<Value> {
    let attributes: Vec<Value> = c
        .attributes
        .iter()
        .filter(|a| a.include)
        .map(|a| {
            json!({
                "attributeId": a.id,
                "value": a.value,
                "issuer": null,
                "dataType": a.data_type.as_deref().unwrap_or(XS_STRING),
                "includeInResult": false,
            })
        })
        .collect();
    (!attributes.is_empty()).then(|| json!({ "categoryId": category_id, "id": null, "content": null, "attribute": attributes }))
}
