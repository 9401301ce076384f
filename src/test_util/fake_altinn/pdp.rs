//! The PDP, `POST /authorization/api/v1/authorize`: the checks the real one makes, then the
//! answer (from the rules or from the script).

use super::exchange::unauthorized;
use super::recorded::record;
use super::xacml::{Decision, decisions};
use super::{AltinnState, PdpAnswer, Rule, STATUS_OK, STATUS_SYNTAX_ERROR};
use crate::test_util::server::{self, lock};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn pdp(State(st): State<Arc<AltinnState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(method, &uri, headers, body);
    lock(&st.pdp_requests).push(req.clone());
    let delay = lock(&st.config).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answer = {
        let mut answers = lock(&st.answers);
        answers.queue.pop_front().unwrap_or_else(|| answers.default.clone())
    };
    match answer {
        PdpAnswer::Rules | PdpAnswer::Decision(_) | PdpAnswer::Result(_) => {}
        PdpAnswer::Body {
            status,
            content_type,
            body,
        } => return server::raw(status, &content_type, body),
        PdpAnswer::TooManyRequests { retry_after_secs } => {
            let body = json!({
                "statusCode": 429,
                "message": format!("Rate limit is exceeded. Try again in {retry_after_secs} seconds."),
            });
            let mut res = server::json(429, &body);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return res;
        }
        PdpAnswer::Status(code) => return server::status(code),
        PdpAnswer::Hang => return server::hang(&st.shutdown).await,
    }

    if req.header("ocp-apim-subscription-key") != Some(st.subscription_key.as_str()) {
        let body = json!({
            "statusCode": 401,
            "message": "Access denied due to missing or invalid subscription key. Make sure to provide a valid key for an active subscription.",
        });
        return server::json(401, &body);
    }
    if !req.bearer_token().is_some_and(|t| st.accepts(t)) {
        return unauthorized();
    }
    let is_json = req
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        let problem = json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.16",
            "title": "Unsupported Media Type",
            "status": 415,
        });
        return server::raw(415, "application/problem+json; charset=utf-8", problem.to_string());
    }
    let Ok(root) = serde_json::from_slice::<Value>(&req.body) else {
        let problem = json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": { "$": ["The JSON value could not be converted."] },
        });
        return server::raw(400, "application/problem+json; charset=utf-8", problem.to_string());
    };
    let results = match decisions(&root) {
        Ok(decisions) => decisions.iter().map(|d| evaluate(&st, &answer, d)).collect(),
        Err(_) => vec![result("Indeterminate", STATUS_SYNTAX_ERROR, Value::Null, Value::Null)],
    };
    server::raw(200, "application/json; charset=utf-8", json!({ "response": results }).to_string())
}

/// One result in the live wire format.
fn result(decision: &str, status: &str, obligations: Value, category: Value) -> Value {
    json!({
        "decision": decision,
        "status": {
            "statusMessage": null,
            "statusDetails": null,
            "statusCode": { "value": status, "statusCode": null },
        },
        "obligations": obligations,
        "associateAdvice": null,
        "category": category,
        "policyIdentifierList": null,
    })
}

fn evaluate(st: &AltinnState, answer: &PdpAnswer, d: &Decision) -> Value {
    let obligations = || lock(&st.config).permit_obligations.clone();
    match answer {
        PdpAnswer::Result(v) => v.clone(),
        PdpAnswer::Decision(s) if s.eq_ignore_ascii_case("permit") => result(s, STATUS_OK, obligations(), d.echo.clone()),
        PdpAnswer::Decision(s) => result(s, STATUS_OK, Value::Null, d.echo.clone()),
        _ => {
            let rule = Rule {
                system_user: d.subject,
                action: d.action.clone(),
                resource: d.resource.clone(),
                party: d.party.clone(),
            };
            if lock(&st.rules).contains(&rule) {
                result("Permit", STATUS_OK, obligations(), d.echo.clone())
            } else {
                result("NotApplicable", STATUS_OK, Value::Null, d.echo.clone())
            }
        }
    }
}
