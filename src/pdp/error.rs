//! Why a decision could not be had.

use std::fmt;
use std::time::Duration;

/// What went wrong when asking the PDP. Stable: match on it, count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PdpErrorKind {
    /// The PDP could not be reached, or the connection failed (after the one retry).
    Connect,
    /// The decision did not arrive within the configured time budget.
    Timeout,
    /// The PDP answered with an unexpected HTTP status (`5xx` after the one retry, `429`, `400`, ...).
    Status(u16),
    /// The PDP refused our credentials: `401` even after a forced token refresh, or `403`.
    Unauthorized,
    /// The answer is not a usable XACML response: bad JSON, the wrong number of results, or a
    /// result that cannot be matched to a question.
    Malformed,
    /// The answer is larger than the configured cap.
    TooLarge,
    /// No Altinn token could be had: the Maskinporten grant or the token exchange failed.
    Credentials,
    /// Not asked: this system user has used up its share of new PDP questions for now (see
    /// [`AltinnPdpBuilder::decision_rate_limit`](super::AltinnPdpBuilder::decision_rate_limit)).
    /// [`PdpError::retry_after`] says when the next one may be asked. The system-user layer
    /// answers `429` (`too-many-decisions`).
    TooManyDecisions,
    /// The PDP was not called: its circuit breaker is open after a `429` or a run of failures,
    /// or its one probe call is out. [`PdpError::retry_after`] is the time left of the
    /// cool-down. See [`AltinnPdp::breaker_state`](super::AltinnPdp::breaker_state).
    CircuitOpen,
}

/// A decision could not be had from the Altinn PDP.
///
/// Never carries secrets or response bodies; `Display` is safe to log. Treat it as "deny, and
/// try again later" (the system-user layer answers `503`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdpError {
    kind: PdpErrorKind,
    retry_after: Option<Duration>,
    detail: &'static str,
}

impl PdpError {
    /// An error of this kind. Meant for [`AltinnTokenSource`](super::AltinnTokenSource)
    /// implementations, which normally return [`PdpErrorKind::Credentials`].
    pub fn new(kind: PdpErrorKind) -> Self {
        PdpError {
            kind,
            retry_after: None,
            detail: "",
        }
    }

    pub(crate) fn with_detail(kind: PdpErrorKind, detail: &'static str) -> Self {
        PdpError {
            kind,
            retry_after: None,
            detail,
        }
    }

    pub(crate) fn malformed(detail: &'static str) -> Self {
        Self::with_detail(PdpErrorKind::Malformed, detail)
    }

    pub(crate) fn credentials(detail: &'static str) -> Self {
        Self::with_detail(PdpErrorKind::Credentials, detail)
    }

    pub(crate) fn timeout() -> Self {
        Self::with_detail(PdpErrorKind::Timeout, "no decision within the time budget")
    }

    pub(crate) fn circuit_open(retry_after: Duration) -> Self {
        Self::with_detail(PdpErrorKind::CircuitOpen, "not calling it for a while after failures").with_retry_after(retry_after)
    }

    pub(crate) fn too_large() -> Self {
        Self::with_detail(PdpErrorKind::TooLarge, "response larger than the configured cap")
    }

    /// A question not asked because its system user is over the limit; `retry_after` is the
    /// time until it may be, `None` when it never may (more questions at once than the burst).
    pub(crate) fn too_many_decisions(retry_after: Option<Duration>) -> Self {
        PdpError {
            kind: PdpErrorKind::TooManyDecisions,
            retry_after,
            detail: match retry_after {
                Some(_) => "this system user asks too many new questions",
                None => "more new questions at once than the burst allows",
            },
        }
    }

    /// The same error with a `Retry-After` hint.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> PdpErrorKind {
        self.kind
    }

    /// How long the PDP asked us to wait (its `Retry-After`), if it said; for
    /// [`PdpErrorKind::TooManyDecisions`], the time until this system user may ask again; for
    /// [`PdpErrorKind::CircuitOpen`], the time left of the breaker's cool-down.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for PdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PdpErrorKind::Connect => f.write_str("Altinn PDP connection failed")?,
            PdpErrorKind::Timeout => f.write_str("Altinn PDP timed out")?,
            PdpErrorKind::Status(s) => write!(f, "Altinn PDP answered HTTP {s}")?,
            PdpErrorKind::Unauthorized => f.write_str("Altinn PDP refused our credentials")?,
            PdpErrorKind::Malformed => f.write_str("Altinn PDP response is malformed")?,
            PdpErrorKind::TooLarge => f.write_str("Altinn PDP response is too large")?,
            PdpErrorKind::Credentials => f.write_str("no Altinn token could be had")?,
            PdpErrorKind::TooManyDecisions => f.write_str("Altinn PDP not asked: limit of new decisions reached")?,
            PdpErrorKind::CircuitOpen => f.write_str("Altinn PDP circuit breaker is open")?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for PdpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(
            PdpError::malformed("wrong number of results").to_string(),
            "Altinn PDP response is malformed: wrong number of results"
        );
        let e = PdpError::new(PdpErrorKind::Status(429)).with_retry_after(Duration::from_secs(3));
        assert_eq!(e.to_string(), "Altinn PDP answered HTTP 429");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.kind(), PdpErrorKind::Status(429));
    }
}
