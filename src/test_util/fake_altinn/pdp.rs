//! The PDP, `POST /authorization/api/v1/authorize`: the checks the real one makes, then the
//! answer (from the rules or from the script).

use super::exchange::unauthorized;
use super::recorded::record;
use super::xacml::{Decision, decisions};
use super::{AltinnState, PdpAnswer, STATUS_OK, STATUS_SYNTAX_ERROR};
use crate::test_util::server::{self, lock};
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn pdp(State(st): State<Arc<AltinnState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(method, &uri, headers, body);
    lock(&st.pdp_requests).push(req.clone());
    let delay = lock(&st.config).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut answer = {
        let mut answers = lock(&st.answers);
        answers.queue.pop_front().unwrap_or_else(|| answers.default.clone())
    };
    while let PdpAnswer::Delayed { delay, then } = answer {
        let mut shutdown = st.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => answer = *then,
            _ = shutdown.wait_for(|stopped| *stopped) => return server::status(503),
        }
    }
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
        PdpAnswer::Raw { status, headers, body } => {
            let mut res = server::status(status);
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                    res.headers_mut().append(name, value);
                }
            }
            *res.body_mut() = body.into();
            return res;
        }
        PdpAnswer::Chunked { len } => return chunked(len),
        PdpAnswer::Status(code) => return server::status(code),
        PdpAnswer::Hang => return server::hang(&st.shutdown).await,
        // Unwrapped above.
        PdpAnswer::Delayed { .. } => return server::status(500),
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
    let mut results: Vec<Value> = match decisions(&root) {
        Ok(decisions) => decisions.iter().map(|d| evaluate(&st, &answer, d)).collect(),
        Err(_) => vec![result("Indeterminate", STATUS_SYNTAX_ERROR, Value::Null, Value::Null)],
    };
    if lock(&st.config).reverse_results {
        results.reverse();
    }
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
            let decision = lock(&st.rules)
                .iter()
                .rev()
                .find(|r| r.system_user == d.subject && r.action == d.action && r.resource == d.resource && r.party == d.party)
                .map(|r| r.decision.clone());
            match decision {
                Some(s) if s.eq_ignore_ascii_case("permit") => result(&s, STATUS_OK, obligations(), d.echo.clone()),
                Some(s) => result(&s, STATUS_OK, Value::Null, d.echo.clone()),
                None => result("NotApplicable", STATUS_OK, Value::Null, d.echo.clone()),
            }
        }
    }
}

/// `200` with a body of `len` spaces in 1 KiB chunks, without a `Content-Length`.
fn chunked(len: usize) -> Response {
    const CHUNK: usize = 1024;
    let chunks = (0..len.div_ceil(CHUNK)).map(move |i| {
        let size = CHUNK.min(len - i * CHUNK);
        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; size]))
    });
    let mut res = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
