//! Small bounded-HTTP helpers shared by the PDP call, the token grant and the exchange.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{PdpError, PdpErrorKind};

/// Reads a response body, refusing anything over `max` bytes (checked against
/// `Content-Length` first, then while reading).
pub(crate) async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Bytes, PdpError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(PdpError::too_large());
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > max {
                    return Err(PdpError::too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => {
                tracing::debug!(error = %e, "reading response body failed");
                return Err(PdpError::with_detail(
                    PdpErrorKind::Connect,
                    "connection failed while reading the response",
                ));
            }
        }
    }
}

/// `Retry-After` in delay-seconds form. HTTP dates are not understood and give `None`.
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// A short, safe label for a transport error (no URLs, no bodies).
pub(crate) fn transport_label(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        for bad in ["", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "9999999999"] {
            h.insert(http::header::RETRY_AFTER, bad.parse().unwrap());
            assert_eq!(retry_after(&h), None, "{bad}");
        }
    }
}
