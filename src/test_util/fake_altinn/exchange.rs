//! The token exchange: a Maskinporten token in, an Altinn token out; and the Altinn tokens the
//! PDP accepts.

use super::recorded::record;
use super::{AltinnState, ExchangeFormat};
use crate::test_util::jwt::{TokenBuilder, decode, now};
use crate::test_util::server::{self, EndpointMode, lock};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use uuid::Uuid;

impl AltinnState {
    pub(super) fn token_issuer(&self) -> String {
        format!("{}/authentication/api/v1/openid/", self.platform)
    }

    /// Issues an Altinn token carrying `from`'s identity, the way the exchange does.
    pub(super) fn issue(&self, from: &Map<String, Value>) -> String {
        let lifetime = lock(&self.config).exchange_lifetime;
        let iat = now();
        let exp = iat.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        let mut claims = Map::new();
        if let Some(details) = from.get("authorization_details") {
            // Altinn turns the RAR array into its system-user object.
            let details = match details {
                Value::Array(list) => list
                    .iter()
                    .find(|d| d.get("type").and_then(Value::as_str) == Some("urn:altinn:systemuser"))
                    .cloned()
                    .unwrap_or_else(|| details.clone()),
                other => other.clone(),
            };
            claims.insert("authorization_details".into(), details);
        }
        for name in ["scope", "token_type", "client_id", "consumer"] {
            if let Some(v) = from.get(name) {
                claims.insert(name.into(), v.clone());
            }
        }
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(iat));
        let consumer = from.get("consumer").and_then(|c| c.get("ID")).and_then(Value::as_str);
        if let Some(org) = consumer.and_then(|id| id.strip_prefix("0192:")) {
            claims.insert("urn:altinn:orgNumber".into(), json!(org));
        }
        claims.insert("urn:altinn:authenticatemethod".into(), json!("maskinporten"));
        claims.insert("urn:altinn:authlevel".into(), json!(3));
        claims.insert("iss".into(), json!(self.token_issuer()));
        let jti = Uuid::new_v4().to_string();
        claims.insert("jti".into(), json!(jti));
        claims.insert("nbf".into(), json!(iat));
        lock(&self.issued).insert(jti);
        TokenBuilder::new(self.key.clone(), claims).header("typ", json!("JWT")).sign()
    }

    /// Whether `token` is an Altinn token this fake issued, unexpired and not revoked.
    pub(super) fn accepts(&self, token: &str) -> bool {
        let Some(d) = decode(token) else { return false };
        let alg = d.header.get("alg").and_then(Value::as_str).unwrap_or_default();
        if d.header.get("kid").and_then(Value::as_str) != Some(self.key.kid())
            || !self.key.verify_raw(alg, d.signing_input.as_bytes(), &d.signature)
        {
            return false;
        }
        let unexpired = d.claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp > now());
        let jti = d.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        unexpired && lock(&self.issued).contains(jti)
    }
}

pub(super) async fn exchange(State(st): State<Arc<AltinnState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(method, &uri, headers, body);
    lock(&st.exchange_requests).push(req.clone());
    let (mode, format) = {
        let mut c = lock(&st.config);
        let mode = c.exchange_queue.pop_front().unwrap_or_else(|| c.exchange_mode.clone());
        (mode, c.exchange_format)
    };
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    let claims = req.bearer_token().and_then(|t| st.maskinporten.verify_access_token(t));
    let Some(Value::Object(claims)) = claims else {
        return unauthorized();
    };
    if mode == EndpointMode::Empty {
        return server::raw(200, "text/plain; charset=utf-8", "");
    }
    let token = st.issue(&claims);
    let wants_json = match format {
        ExchangeFormat::PlainText => false,
        ExchangeFormat::JsonString => true,
        ExchangeFormat::Negotiated => req.header("accept").is_some_and(|a| {
            a.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
        }),
    };
    if wants_json {
        let body = Value::String(token);
        if mode == EndpointMode::Oversized {
            return server::json(200, &server::pad(body));
        }
        return server::raw(200, "application/json; charset=utf-8", body.to_string());
    }
    if mode == EndpointMode::Oversized {
        let padded = format!("{token}{}", " ".repeat(server::OVERSIZE));
        return server::raw(200, "text/plain; charset=utf-8", padded);
    }
    server::raw(200, "text/plain; charset=utf-8", token)
}

/// 401 as ASP.NET's JWT bearer handler answers it.
pub(super) fn unauthorized() -> Response {
    let mut res = server::status(401);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    res
}
