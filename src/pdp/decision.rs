//! Deny-biased evaluation of PDP results (XACML 3.0 §7.2.2).
//!
//! A result authorizes only if its `decision` is exactly `"Permit"`, its status is absent or
//! `urn:oasis:names:tc:xacml:1.0:status:ok`, and every obligation is understood and met. Anything
//! else does not authorize:
//!
//! | the result says | [`Decision`] |
//! |---|---|
//! | `Permit`, status ok, no obligations or only met ones | `Permit` |
//! | `Permit` with an obligation not understood or not met | `ObligationNotMet` |
//! | `Permit` with a status other than ok | `Indeterminate` |
//! | `Deny`, `NotApplicable`, `Indeterminate` | the same |
//! | any other decision (`"permit"`, `"Invalid"`, a number) | `Indeterminate` |
//! | no decision at all | malformed response ([`PdpErrorKind::Malformed`](super::PdpErrorKind)) |
//! | any member name repeated, at any level (also under another casing) | malformed response |
//!
//! The one obligation understood is Altinn's minimum authentication level: every attribute
//! assignment has category `urn:altinn:minimum-authenticationlevel` or
//! `urn:altinn:minimum-authenticationlevel-org` and an integer value (`"3"` or `3`). A system user
//! counts as level 3, so the obligation is met when the value is at most 3. Advice is ignored.

use std::collections::HashMap;

use serde_json::Value;

use super::PdpError;
use super::request::DecisionKey;
use super::xacml::{echoed_key, member};

/// The status code that means "no error".
pub(crate) const STATUS_OK: &str = "urn:oasis:names:tc:xacml:1.0:status:ok";
/// Obligation categories for the minimum authentication level.
const MIN_AUTH_LEVEL: &str = "urn:altinn:minimum-authenticationlevel";
const MIN_AUTH_LEVEL_ORG: &str = "urn:altinn:minimum-authenticationlevel-org";
/// The authentication level Altinn gives a system user.
pub(crate) const SYSTEM_USER_AUTHENTICATION_LEVEL: u64 = 3;

/// The PDP's answer to one question, as a deny-biased PEP reads it.
///
/// Non-exhaustive: a later version may tell more answers apart. Anything but
/// [`Decision::Permit`] refuses, so a `_` arm that refuses is always right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// Permit, with status ok and every obligation understood and met. The only answer that
    /// authorizes.
    Permit,
    /// The PDP said `Deny`.
    Deny,
    /// No policy applies: the system user has not been given this right.
    NotApplicable,
    /// The PDP could not decide (its own error, or a status other than ok), or said something
    /// this crate does not understand.
    Indeterminate,
    /// The PDP said `Permit`, but with an obligation this crate does not understand or a system
    /// user cannot meet (for example authentication level 4).
    ObligationNotMet,
}

impl Decision {
    /// Whether this decision authorizes the request.
    pub fn is_permit(self) -> bool {
        self == Decision::Permit
    }
}

/// Evaluates one result object.
pub(crate) fn evaluate(result: &Value) -> Result<Decision, PdpError> {
    if !result.is_object() {
        return Err(PdpError::malformed("a result is not an object"));
    }
    let Some(decision) = member(result, "decision")? else {
        return Err(PdpError::malformed("a result has no decision"));
    };
    Ok(match decision.as_str() {
        Some("Permit") => {
            if !status_ok(result)? {
                Decision::Indeterminate
            } else if !obligations_met(result)? {
                Decision::ObligationNotMet
            } else {
                Decision::Permit
            }
        }
        Some("Deny") => Decision::Deny,
        Some("NotApplicable") => Decision::NotApplicable,
        _ => Decision::Indeterminate,
    })
}

/// Status absent, or a status code chain in which every `value` is exactly ok.
fn status_ok(result: &Value) -> Result<bool, PdpError> {
    let Some(status) = member(result, "status")? else { return Ok(true) };
    if !status.is_object() {
        return Ok(false);
    }
    let mut code = member(status, "statusCode")?;
    if code.is_none() {
        return Ok(false);
    }
    // Nested (minor) codes must be ok too; serde_json's recursion limit bounds the depth.
    while let Some(c) = code {
        if member(c, "value")?.and_then(Value::as_str) != Some(STATUS_OK) {
            return Ok(false);
        }
        code = member(c, "statusCode")?;
    }
    Ok(true)
}

fn obligations_met(result: &Value) -> Result<bool, PdpError> {
    match member(result, "obligations")? {
        None => Ok(true),
        Some(Value::Array(obligations)) => {
            for o in obligations {
                if !obligation_met(o)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

fn obligation_met(obligation: &Value) -> Result<bool, PdpError> {
    if !obligation.is_object() {
        return Ok(false);
    }
    let Some(Value::Array(assignments)) = member(obligation, "attributeAssignment")? else {
        return Ok(false);
    };
    if assignments.is_empty() {
        return Ok(false);
    }
    for a in assignments {
        match member(a, "category")?.and_then(Value::as_str) {
            Some(MIN_AUTH_LEVEL | MIN_AUTH_LEVEL_ORG) => {}
            _ => return Ok(false),
        }
        match member(a, "dataType")? {
            None => {}
            Some(Value::String(t)) if t == "http://www.w3.org/2001/XMLSchema#integer" || t == "integer" => {}
            Some(_) => return Ok(false),
        }
        let level = match member(a, "value")? {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<u64>().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        match level {
            Some(l) if l <= SYSTEM_USER_AUTHENTICATION_LEVEL => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The decision for a single-question call: exactly one result.
pub(crate) fn single(results: &[Value]) -> Result<Decision, PdpError> {
    match results {
        [one] => evaluate(one),
        _ => Err(PdpError::malformed("wrong number of results")),
    }
}

/// Decisions for a multi-question call, in the order of `keys`, matched by the attributes each
/// result echoes. Every key needs exactly one result; any result that matches no key, or a key
/// answered twice, makes the whole response malformed.
pub(crate) fn multi(results: &[Value], keys: &[DecisionKey]) -> Result<Vec<Decision>, PdpError> {
    if results.len() != keys.len() {
        return Err(PdpError::malformed("wrong number of results"));
    }
    let index: HashMap<&DecisionKey, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut out: Vec<Option<Decision>> = vec![None; keys.len()];
    for result in results {
        let Some(key) = echoed_key(result)? else {
            return Err(PdpError::malformed("a result cannot be matched to a question"));
        };
        let Some(&i) = index.get(&key) else {
            return Err(PdpError::malformed("a result answers a question not asked"));
        };
        if out[i].is_some() {
            return Err(PdpError::malformed("a question is answered twice"));
        }
        out[i] = Some(evaluate(result)?);
    }
    // Same count and no duplicates: every key has its answer.
    out.into_iter()
        .map(|d| d.ok_or_else(|| PdpError::malformed("a question is not answered")))
        .collect()
}

#[cfg(test)]
mod ambiguous_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
