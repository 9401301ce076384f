//! Scripted answers and faults: how the PDP answers ([`PdpAnswer`]) and in which form the
//! exchange hands out its tokens ([`ExchangeFormat`]).

use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// How [`FakeAltinn`](super::FakeAltinn)'s PDP answers.
///
/// Set the default with [`FakeAltinn::set_answer`](super::FakeAltinn::set_answer) and queue
/// one-shot answers with [`FakeAltinn::push_answer`](super::FakeAltinn::push_answer).
///
/// [`Rules`](Self::Rules), [`Decision`](Self::Decision) and [`Result`](Self::Result) answer like
/// the real PDP: only after checking the subscription key (401), the Altinn token (401), the
/// content type (415), the JSON (400) and the XACML request (`200` with one `Indeterminate`
/// result, status `syntax-error`), and with one result per asked decision. The other variants
/// answer at once, whatever the request ([`Delayed`](Self::Delayed) after its wait).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PdpAnswer {
    /// Evaluate the rules added with [`FakeAltinn::permit`](super::FakeAltinn::permit) and
    /// [`FakeAltinn::rule`](super::FakeAltinn::rule): the decision of the last rule that matches
    /// the question's system user, action, resource and party (a `Permit` with the permit
    /// obligations), otherwise `NotApplicable`.
    #[default]
    Rules,
    /// Every result has this `decision` (e.g. `"Deny"`, `"Indeterminate"`, `"permit"`,
    /// `"Maybe"`) and status ok; a decision equal to `permit` in any case carries the permit
    /// obligations.
    Decision(String),
    /// Every result is this JSON value, as is (odd statuses, obligations, members…).
    Result(Value),
    /// This raw HTTP answer.
    Body {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// Body.
        body: String,
    },
    /// This raw HTTP answer with any headers (for example a `503` with `Retry-After`). Headers
    /// that are not valid HTTP are left out.
    Raw {
        /// HTTP status.
        status: u16,
        /// Header names and values, in order.
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
    },
    /// `200 OK`, `Content-Type: application/json`, and a body of `len` spaces streamed in 1 KiB
    /// chunks without a `Content-Length`, so only a limit on what is read stops it.
    Chunked {
        /// Body length in bytes.
        len: usize,
    },
    /// `429 Too Many Requests` with `Retry-After` (as Azure API Management answers).
    TooManyRequests {
        /// Value of `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// This HTTP status with an empty body.
    Status(u16),
    /// Never answers (until the fake is dropped or shut down, when it answers 503).
    Hang,
    /// Waits `delay`, then answers as `then` (`503` at once if the fake shuts down meanwhile).
    /// Adds to [`FakeAltinn::set_delay`](super::FakeAltinn::set_delay), which delays every
    /// answer.
    Delayed {
        /// How long to wait.
        delay: Duration,
        /// The answer after the wait.
        then: Box<PdpAnswer>,
    },
}

impl PdpAnswer {
    /// `self` after waiting `delay`: [`PdpAnswer::Delayed`].
    pub fn after(self, delay: Duration) -> PdpAnswer {
        PdpAnswer::Delayed {
            delay,
            then: Box::new(self),
        }
    }
}

/// The default PDP answer and the queue of one-shot answers.
#[derive(Default)]
pub(super) struct Answers {
    pub(super) default: PdpAnswer,
    pub(super) queue: VecDeque<PdpAnswer>,
}

/// How [`FakeAltinn`](super::FakeAltinn)'s token exchange writes the Altinn token in a `200`
/// answer; set with [`FakeAltinn::set_exchange_format`](super::FakeAltinn::set_exchange_format).
/// Altinn has answered both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExchangeFormat {
    /// A JSON string literal (`application/json`) when the request's `Accept` names
    /// `application/json`, otherwise plain text.
    #[default]
    Negotiated,
    /// The bare token as `text/plain`, whatever the request accepts.
    PlainText,
    /// A JSON string literal as `application/json`, whatever the request accepts.
    JsonString,
}
