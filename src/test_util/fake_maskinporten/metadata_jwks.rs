//! The metadata (RFC 8414) and JWKS endpoints.

use super::{JWT_BEARER, MpState};
use crate::test_util::server::{self, EndpointMode, lock};
use axum::extract::State;
use axum::response::Response;
use http::{HeaderValue, header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) async fn metadata(State(st): State<Arc<MpState>>) -> Response {
    st.metadata_requests.fetch_add(1, Ordering::SeqCst);
    let (mode, issuer, body) = {
        let c = lock(&st.config);
        (c.metadata_mode.clone(), c.metadata_issuer.clone(), c.metadata_body.clone())
    };
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    if let Some(body) = body {
        return server::raw(200, "application/json", body);
    }
    let doc = json!({
        "issuer": issuer.unwrap_or_else(|| st.issuer.clone()),
        "token_endpoint": format!("{}token", st.issuer),
        "jwks_uri": format!("{}jwk", st.issuer),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "grant_types_supported": [JWT_BEARER],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
        "authorization_details_types_supported": ["urn:altinn:systemuser", "urn:altinn:consent"],
    });
    match mode {
        EndpointMode::Empty => server::json(200, &json!({})),
        EndpointMode::Oversized => server::json(200, &server::pad(doc)),
        _ => server::json(200, &doc),
    }
}

pub(super) async fn jwks(State(st): State<Arc<MpState>>) -> Response {
    st.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let (mode, cache_control, jwk_alg, body) = {
        let c = lock(&st.config);
        (
            c.jwks_mode.clone(),
            c.jwks_cache_control.clone(),
            c.jwk_alg.clone(),
            c.jwks_body.clone(),
        )
    };
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    let mut res = match body {
        Some(body) => server::raw(200, "application/json", body),
        None => generated_jwks(&st, &mode, jwk_alg.as_ref()),
    };
    if let Some(v) = cache_control.and_then(|v| HeaderValue::from_str(&v).ok()) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// The published keys (and extras) as the JWKS, shaped by `mode`.
fn generated_jwks(st: &MpState, mode: &EndpointMode, jwk_alg: Option<&String>) -> Response {
    let set = {
        let keys = lock(&st.keys);
        let mut list: Vec<Value> = keys
            .published
            .iter()
            .map(|k| {
                let mut jwk = k.public_jwk();
                if let Some(obj) = jwk.as_object_mut() {
                    match jwk_alg {
                        Some(alg) => obj.insert("alg".into(), json!(alg)),
                        None => obj.remove("alg"),
                    };
                }
                jwk
            })
            .collect();
        list.extend(keys.extra.iter().cloned());
        json!({ "keys": list })
    };
    match mode {
        EndpointMode::Empty => server::json(200, &json!({ "keys": [] })),
        EndpointMode::Oversized => server::json(200, &server::pad(set)),
        _ => server::json(200, &set),
    }
}
