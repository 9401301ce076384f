//! The token endpoint: the JWT-bearer grant, checked the way Maskinporten checks it.

use super::mint::number;
use super::{JWT_BEARER, MpState};
use crate::test_util::jwt::{Decoded, decode, now};
use crate::test_util::keys::verify_with_jwk;
use crate::test_util::server::{self, EndpointMode, lock};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Allowed clock difference for `iat` of client assertions, seconds.
const IAT_SKEW: i64 = 10;
/// Longest client-assertion lifetime (`exp - iat`), seconds.
const MAX_ASSERTION_LIFETIME: i64 = 120;

/// An OAuth2 error: `(error, error_description)`.
type GrantError = (&'static str, String);

fn grant_error(error: &'static str, description: impl Into<String>) -> GrantError {
    (error, description.into())
}

pub(super) async fn token_endpoint(State(st): State<Arc<MpState>>, headers: HeaderMap, body: Bytes) -> Response {
    st.token_requests.fetch_add(1, Ordering::SeqCst);
    let (mode, delay) = {
        let c = lock(&st.config);
        (c.token_mode.clone(), c.token_delay)
    };
    if !delay.is_zero() {
        server::fault(&EndpointMode::Delay(delay), &st.shutdown).await;
    }
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    if mode == EndpointMode::Empty {
        return server::json(200, &json!({}));
    }
    let mut res = match grant(&st, &headers, &body) {
        Ok(answer) if mode == EndpointMode::Oversized => server::json(200, &server::pad(answer)),
        Ok(answer) => server::json(200, &answer),
        Err((error, description)) => server::json(400, &json!({ "error": error, "error_description": description })),
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Handles a token request: the form, then the assertion.
fn grant(st: &MpState, headers: &HeaderMap, body: &[u8]) -> Result<Value, GrantError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(grant_error(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let mut grant_type = None;
    let mut assertion = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut grant_type,
            "assertion" => &mut assertion,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(grant_error("invalid_request", format!("parameter {name} is repeated")));
        }
    }
    match grant_type.as_deref() {
        None => return Err(grant_error("invalid_request", "grant_type is missing")),
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(grant_error(
                "unsupported_grant_type",
                format!("grant_type {other} is not supported"),
            ));
        }
    }
    let Some(assertion) = assertion else {
        return Err(grant_error("invalid_request", "assertion is missing"));
    };
    let Some(decoded) = decode(&assertion) else {
        let error = "invalid_grant: the assertion is not a JWT";
        lock(&st.assertions).push(json!({ "header": null, "claims": null, "error": error }));
        return Err(grant_error("invalid_grant", "the assertion is not a JWT"));
    };
    let result = check_assertion(st, &decoded);
    let error = result.as_ref().err().map(|(e, d)| format!("{e}: {d}"));
    lock(&st.assertions).push(json!({ "header": decoded.header, "claims": decoded.claims, "error": error }));
    result
}

fn check_assertion(st: &MpState, d: &Decoded<'_>) -> Result<Value, GrantError> {
    let alg = d.header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !matches!(alg, "RS256" | "RS384" | "RS512") {
        return Err(grant_error("invalid_grant", format!("alg {alg:?} is not allowed")));
    }
    let Some(kid) = d.header.get("kid").and_then(Value::as_str) else {
        if d.header.contains_key("x5c") {
            return Err(grant_error(
                "invalid_grant",
                "x5c assertions are not supported by this fake; use kid",
            ));
        }
        return Err(grant_error("invalid_grant", "the assertion has no kid"));
    };
    let Some(client_id) = d.claims.get("iss").and_then(Value::as_str) else {
        return Err(grant_error("invalid_grant", "iss is missing"));
    };
    let client = {
        let clients = lock(&st.clients);
        if !clients.iter().any(|c| c.client_id == client_id) {
            return Err(grant_error("invalid_client", format!("unknown client {client_id}")));
        }
        match clients.iter().find(|c| c.client_id == client_id && c.key_id == kid) {
            Some(c) => c.clone(),
            None => {
                return Err(grant_error(
                    "invalid_grant",
                    format!("kid {kid} is not registered for client {client_id}"),
                ));
            }
        }
    };
    if !verify_with_jwk(&client.public_jwk, alg, d.signing_input.as_bytes(), &d.signature) {
        return Err(grant_error("invalid_grant", "invalid signature"));
    }
    let aud_ok = match d.claims.get("aud") {
        Some(Value::String(a)) => *a == st.issuer,
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str() == Some(st.issuer.as_str()),
        _ => false,
    };
    if !aud_ok {
        return Err(grant_error("invalid_grant", format!("aud must be {}", st.issuer)));
    }
    let now = now();
    let Some(iat) = d.claims.get("iat").and_then(number) else {
        return Err(grant_error("invalid_grant", "iat is missing"));
    };
    if iat.saturating_sub(now).saturating_abs() > IAT_SKEW {
        return Err(grant_error("invalid_grant", "iat is not within 10 seconds of now"));
    }
    let Some(exp) = d.claims.get("exp").and_then(number) else {
        return Err(grant_error("invalid_grant", "exp is missing"));
    };
    if exp <= now {
        return Err(grant_error("invalid_grant", "the assertion has expired"));
    }
    if exp.saturating_sub(iat) > MAX_ASSERTION_LIFETIME {
        return Err(grant_error("invalid_grant", "exp is more than 120 seconds after iat"));
    }
    let scope = d.claims.get("scope").and_then(Value::as_str).unwrap_or_default();
    let scopes: Vec<&str> = scope.split(' ').collect();
    if scope.is_empty() || scopes.iter().any(|s| s.is_empty()) {
        return Err(grant_error("invalid_scope", "scope is missing or malformed"));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.iter().any(|a| a == *s)) {
        return Err(grant_error("invalid_scope", format!("scope {bad} is not allowed for this client")));
    }
    let jti = match d.claims.get("jti").and_then(Value::as_str) {
        Some(j) if !j.is_empty() => j,
        _ => return Err(grant_error("invalid_grant", "jti is missing")),
    };
    if !lock(&st.seen_jti).insert(jti.to_owned()) {
        return Err(grant_error("invalid_grant", "jti has been used before"));
    }
    // `expires_in` is the configured lifetime as is (up to u64::MAX seconds, for clients that
    // must survive absurd values); the token's `exp` saturates.
    let expires_in = lock(&st.config).access_token_lifetime.as_secs();
    let access_token = st.sign_access_token(&client, scope, i64::try_from(expires_in).unwrap_or(i64::MAX));
    Ok(json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": expires_in, "scope": scope }))
}
