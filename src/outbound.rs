//! Bounded outbound HTTP: every request this crate sends (RFC 8414 metadata, the JWKS, the
//! Maskinporten grant, the Altinn exchange, the PDP) goes through these helpers.
//!
//! - [`default_client`]: a `reqwest` client with a connect timeout, a total timeout and no
//!   redirects (a redirect could take a bearer token to another host).
//! - [`read_capped`]: reads a body, refusing anything over a size cap, checked against
//!   `Content-Length` first and then while reading, so a hostile or broken upstream cannot make
//!   us buffer without bound.
//! - [`error_label`]: a short label for a transport error. `reqwest`'s own `Display` includes
//!   the URL, which must not reach logs or errors (it may carry configuration details).
//! - [`retry_after`]: a `Retry-After` header in delay-seconds form, capped at
//!   [`MAX_RETRY_AFTER`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// The body is larger than the cap (by its `Content-Length` or while reading).
    TooLarge,
    /// The connection failed while the body was read; the label says how (see [`error_label`]).
    Read(&'static str),
}

/// A client with a connect timeout, an optional total timeout per request and no redirects,
/// over rustls.
pub(crate) fn default_client(connect_timeout: Duration, total_timeout: Option<Duration>) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none());
    match total_timeout {
        Some(total) => builder.timeout(total),
        None => builder,
    }
    .build()
}

/// Reads a response body, refusing anything over `max` bytes.
pub(crate) async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > max {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err(BodyError::Read(error_label(&e))),
        }
    }
}

/// A short, fixed label for a transport error: no URL, no body, nothing from the peer.
pub(crate) fn error_label(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connect error"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else {
        "request error"
    }
}

/// The longest `Retry-After` honoured from an upstream (60 s). An upstream that asks for more is
/// taken to mean "not soon": the layers tell their own clients at most this, so a broken or
/// hostile upstream cannot make them stay away for days.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `Retry-After` in delay-seconds form, at most [`MAX_RETRY_AFTER`]. HTTP dates, and numbers of
/// more than nine digits, are not understood and give `None`.
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
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

    #[test]
    fn retry_after_is_capped() {
        let mut h = http::HeaderMap::new();
        for (sent, honoured) in [("0", 0), ("60", 60), ("61", 60), ("3600", 60), ("999999999", 60), ("000000120", 60)] {
            h.insert(http::header::RETRY_AFTER, sent.parse().unwrap());
            assert_eq!(retry_after(&h), Some(Duration::from_secs(honoured)), "{sent}");
        }
        assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(60));
    }
}
