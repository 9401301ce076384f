//! The HTTP call to the PDP: `POST {platform}/authorization/api/v1/authorize` with the Altinn
//! token and the subscription key, one forced token refresh after a `401`, at most one retry
//! after a connection error or a `5xx` within the time budget, `Retry-After` kept from a `429`,
//! and the answer read within its size cap.
//!
//! The [circuit breaker](super::breaker) is asked first: while it is open the call fails at
//! once with [`PdpErrorKind::CircuitOpen`], without getting a token. Once the answer has been
//! read (by the caller's `read`, so that a malformed answer counts too), the call's outcome is
//! given to the breaker.
//!
//! Everything here ends by the call's deadline: getting the token and each attempt (request
//! and answer) are cut off there, whatever the HTTP client's own timeouts, and a failure that
//! arrives once the deadline has passed is reported as [`PdpErrorKind::Timeout`] (a client
//! with a total timeout of its own may otherwise win that race with another kind).

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::time::Instant;

use super::breaker::Outcome;
use super::credentials::AltinnToken;
use super::{Inner, MIN_RETRY_BUDGET, PdpError, PdpErrorKind, SUBSCRIPTION_KEY};
use crate::outbound::{self, BodyError};
use crate::telemetry::metrics;

/// How one HTTP attempt ended.
pub(super) enum Attempt {
    Answer(Bytes),
    /// HTTP 401: a fresh token may help.
    Unauthorized,
    /// A connection error or a `5xx`: one more try may help.
    Retryable(PdpError),
    Fatal(PdpError),
}

/// Why a call failed: before the PDP was asked (no token), or at the PDP.
enum Failed {
    Token(PdpError),
    Pdp(PdpError),
}

impl Failed {
    fn error(&self) -> &PdpError {
        match self {
            Failed::Token(e) | Failed::Pdp(e) => e,
        }
    }

    fn into_error(self) -> PdpError {
        match self {
            Failed::Token(e) | Failed::Pdp(e) => e,
        }
    }
}

impl Inner {
    /// POSTs a request body to the PDP, with one token refresh after a 401 and one retry after
    /// a transient failure, unless the circuit breaker refuses; returns what `read` makes of
    /// the body of the `200` answer. The outcome, `read`'s included, goes to the breaker.
    pub(super) async fn call<T>(
        &self,
        body: Vec<u8>,
        deadline: Instant,
        read: impl FnOnce(&[u8]) -> Result<T, PdpError>,
    ) -> Result<T, PdpError> {
        let ticket = self.breaker.admit(deadline)?;
        let result = match self.call_until(body, deadline).await {
            Err(f) if f.error().kind() != PdpErrorKind::Timeout && Instant::now() >= deadline => {
                tracing::debug!(error = %f.error(), "Altinn PDP call failed as its time budget ran out");
                Err(match f {
                    Failed::Token(_) => Failed::Token(PdpError::timeout()),
                    Failed::Pdp(_) => Failed::Pdp(PdpError::timeout()),
                })
            }
            r => r,
        };
        let result = result.and_then(|bytes| read(&bytes).map_err(Failed::Pdp));
        ticket.finish(match &result {
            Ok(_) => Outcome::Success,
            Err(Failed::Token(_)) => Outcome::Neutral,
            Err(Failed::Pdp(e)) => Outcome::of_error(e),
        });
        result.map_err(Failed::into_error)
    }

    /// A valid Altinn token (a fresh one if `force_refresh`), by `deadline`.
    async fn token(&self, force_refresh: bool, deadline: Instant) -> Result<AltinnToken, PdpError> {
        tokio::time::timeout_at(deadline, self.tokens.token(force_refresh))
            .await
            .unwrap_or_else(|_| Err(PdpError::timeout()))
    }

    async fn call_until(&self, body: Vec<u8>, deadline: Instant) -> Result<Bytes, Failed> {
        let body = Bytes::from(body);
        let mut token = self.token(false, deadline).await.map_err(Failed::Token)?;
        let (mut refreshed, mut retried) = (false, false);
        loop {
            let sent = Instant::now();
            let attempt = tokio::time::timeout_at(deadline, self.attempt(&token, body.clone()));
            let attempt = attempt.await.unwrap_or_else(|_| Attempt::Fatal(PdpError::timeout()));
            metrics::pdp_duration(sent.elapsed());
            match attempt {
                Attempt::Answer(bytes) => return Ok(bytes),
                Attempt::Unauthorized if !refreshed => {
                    refreshed = true;
                    // Another caller that got a 401 for the same token may have refreshed it
                    // already: use its token rather than refreshing once per rejected caller.
                    let current = self.token(false, deadline).await.map_err(Failed::Token)?;
                    if current != token {
                        tracing::debug!("Altinn PDP answered 401; using the token refreshed meanwhile");
                        token = current;
                    } else {
                        tracing::debug!("Altinn PDP answered 401; refreshing the Altinn token");
                        token = self.token(true, deadline).await.map_err(Failed::Token)?;
                    }
                }
                Attempt::Unauthorized => {
                    tracing::warn!("Altinn PDP answered 401 after a token refresh");
                    return Err(Failed::Pdp(PdpError::with_detail(
                        PdpErrorKind::Unauthorized,
                        "401 after a token refresh",
                    )));
                }
                Attempt::Retryable(e) if !retried && deadline.saturating_duration_since(Instant::now()) >= MIN_RETRY_BUDGET => {
                    tracing::debug!(error = %e, "Altinn PDP call failed; retrying once");
                    retried = true;
                }
                Attempt::Retryable(e) | Attempt::Fatal(e) => {
                    tracing::warn!(error = %e, "Altinn PDP call failed");
                    return Err(Failed::Pdp(e));
                }
            }
        }
    }

    pub(super) async fn attempt(&self, token: &AltinnToken, body: Bytes) -> Attempt {
        let auth = match token.bearer_header() {
            Ok(v) => v,
            Err(e) => return Attempt::Fatal(e),
        };
        let mut req = self
            .http
            .post(self.authorize_url.clone())
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(key) = &self.subscription_key {
            req = req.header(SUBSCRIPTION_KEY, key.clone());
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    PdpErrorKind::Timeout
                } else {
                    PdpErrorKind::Connect
                };
                tracing::debug!(error = outbound::error_label(&e), "Altinn PDP request failed");
                return Attempt::Retryable(PdpError::with_detail(kind, "the request failed"));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = outbound::retry_after(resp.headers());
        let with_hint = |e: PdpError| match retry_after {
            Some(after) => e.with_retry_after(after),
            None => e,
        };
        match status {
            200 => match outbound::read_capped(resp, self.max_response_bytes).await {
                Ok(bytes) => Attempt::Answer(bytes),
                Err(BodyError::Read(label)) => {
                    tracing::debug!(error = label, "reading the PDP answer failed");
                    Attempt::Retryable(PdpError::with_detail(
                        PdpErrorKind::Connect,
                        "connection failed while reading the response",
                    ))
                }
                Err(BodyError::TooLarge) => Attempt::Fatal(PdpError::too_large()),
            },
            401 => Attempt::Unauthorized,
            403 => Attempt::Fatal(PdpError::with_detail(PdpErrorKind::Unauthorized, "403: the token lacks the scope")),
            429 => Attempt::Fatal(with_hint(PdpError::new(PdpErrorKind::Status(429)))),
            // A 5xx that says when to come back is not retried at once.
            500..=599 if retry_after.is_none() => Attempt::Retryable(PdpError::new(PdpErrorKind::Status(status))),
            s => Attempt::Fatal(with_hint(PdpError::new(PdpErrorKind::Status(s)))),
        }
    }
}
