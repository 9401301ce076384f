//! The Altinn token exchange: `GET {platform}/authentication/api/v1/exchange/maskinporten`
//! with a Maskinporten access token as bearer, answered by the Altinn token (plain text or a
//! JSON string), whose `exp` says how long to keep it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;

use super::AltinnToken;
use super::grant::MaskinportenAccessToken;
use crate::outbound::{error_label, read_capped};
use crate::pdp::{PdpError, PdpErrorKind};

/// Assumed lifetime of an Altinn token whose `exp` cannot be read.
const ALTINN_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The longest an Altinn token is kept, whatever its `exp` says (Altinn issues them for about
/// 30 minutes): a later or absurd `exp` only means an earlier renewal, never an overflow.
pub(super) const MAX_ALTINN_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Why an exchange failed.
pub(super) enum ExchangeError {
    /// The exchange refused the Maskinporten token (401): a new one may help.
    Unauthorized,
    Other(PdpError),
}

/// Exchanges a Maskinporten token for an Altinn token at `url`, reading at most `max_body`
/// bytes of the answer, by `deadline` (request and answer).
pub(super) async fn exchange(
    http: &reqwest::Client,
    url: &url::Url,
    maskinporten: &MaskinportenAccessToken,
    max_body: usize,
    deadline: tokio::time::Instant,
) -> Result<AltinnToken, ExchangeError> {
    tokio::time::timeout_at(deadline, exchange_unbounded(http, url, maskinporten, max_body))
        .await
        .unwrap_or_else(|_| {
            tracing::warn!("Altinn token exchange did not answer in time");
            Err(ExchangeError::Other(PdpError::with_detail(
                PdpErrorKind::Timeout,
                "the Altinn token exchange timed out",
            )))
        })
}

async fn exchange_unbounded(
    http: &reqwest::Client,
    url: &url::Url,
    maskinporten: &MaskinportenAccessToken,
    max_body: usize,
) -> Result<AltinnToken, ExchangeError> {
    let now = SystemTime::now();
    let resp = http
        .get(url.clone())
        .header(AUTHORIZATION, maskinporten.bearer_header())
        .header(ACCEPT, "application/json, text/plain;q=0.9")
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = error_label(&e), "Altinn token exchange unreachable");
            ExchangeError::Other(PdpError::credentials("the Altinn token exchange could not be reached"))
        })?;
    let status = resp.status();
    if status == http::StatusCode::UNAUTHORIZED {
        tracing::warn!("Altinn token exchange answered 401");
        return Err(ExchangeError::Unauthorized);
    }
    if !status.is_success() {
        tracing::warn!(status = status.as_u16(), "Altinn token exchange failed");
        let detail = match status.as_u16() {
            403 => "the Altinn token exchange answered 403: the Maskinporten token was refused",
            400..=499 => "the Altinn token exchange refused the request (4xx)",
            _ => "the Altinn token exchange failed (5xx or another status)",
        };
        return Err(ExchangeError::Other(PdpError::credentials(detail)));
    }
    let body = read_capped(resp, max_body)
        .await
        .map_err(|_| ExchangeError::Other(PdpError::credentials("the Altinn token exchange response could not be read")))?;
    let token = parse_exchanged_token(&body).ok_or(ExchangeError::Other(PdpError::credentials(
        "the Altinn token exchange response is malformed",
    )))?;
    let expires_at = token_expiry(&token, now);
    tracing::debug!("got an Altinn token");
    Ok(AltinnToken::new(token, expires_at))
}

/// The Altinn token from the exchange's body: a JSON string literal or plain text.
fn parse_exchanged_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let token = if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()?
    } else {
        text.to_owned()
    };
    let looks_like_jwt = token.split('.').count() == 3
        && token.split('.').take(2).all(|p| !p.is_empty())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='));
    looks_like_jwt.then_some(token)
}

/// Until when the Altinn token from `now` is kept: its `exp`, or 30 minutes when that cannot be
/// read, and at most [`MAX_ALTINN_TOKEN_LIFETIME`] from now.
fn token_expiry(token: &str, now: SystemTime) -> SystemTime {
    let latest = now.checked_add(MAX_ALTINN_TOKEN_LIFETIME).unwrap_or(now);
    match jwt_exp(token) {
        Some(exp) => exp.min(latest),
        None => now.checked_add(ALTINN_TOKEN_LIFETIME).unwrap_or(now),
    }
}

/// The `exp` of a JWT, read without checking the signature (we are its client, not its judge).
fn jwt_exp(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanged_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln";
        assert_eq!(parse_exchanged_token(jwt.as_bytes()).as_deref(), Some(jwt));
        assert_eq!(parse_exchanged_token(format!("{jwt}\r\n").as_bytes()).as_deref(), Some(jwt));
        assert_eq!(parse_exchanged_token(format!("\"{jwt}\"").as_bytes()).as_deref(), Some(jwt));
        for bad in [
            "",
            "\"\"",
            "not a jwt",
            "a.b",
            "a.b.c.d",
            "\"a.b.c",
            "a b.c.d",
            ".b.c",
            "ey\u{e9}.b.c",
        ] {
            assert_eq!(parse_exchanged_token(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(jwt_exp(jwt), Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        assert_eq!(jwt_exp("a.b.c"), None);
        let no_exp = format!("x.{}.y", URL_SAFE_NO_PAD.encode(br#"{"iat": 1}"#));
        assert_eq!(jwt_exp(&no_exp), None);
    }

    #[test]
    fn the_kept_lifetime_is_capped() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let with_exp = |exp: &str| format!("x.{}.y", URL_SAFE_NO_PAD.encode(format!(r#"{{"exp": {exp}}}"#)));
        // An `exp` in ten minutes is kept as it is.
        assert_eq!(token_expiry(&with_exp("1700000600"), now), now + Duration::from_secs(600));
        // Far or absurd ones are capped (the largest would have been kept for 584 billion years).
        for far in ["1700003601", "253402300799", "9223372036854775807"] {
            assert_eq!(token_expiry(&with_exp(far), now), now + MAX_ALTINN_TOKEN_LIFETIME, "{far}");
        }
        // Unreadable (not a whole number of seconds, or past what the clock can hold): the
        // assumed 30 minutes.
        for bad in ["-1", "1e30", "\"soon\"", "18446744073709551616", "18446744073709551615"] {
            assert_eq!(token_expiry(&with_exp(bad), now), now + ALTINN_TOKEN_LIFETIME, "{bad}");
        }
    }
}
