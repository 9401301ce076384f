//! Scripted answers and faults of the PDP.

use serde_json::Value;
use std::collections::VecDeque;

/// How [`FakeAltinn`]'s PDP answers.
///
/// [`Rules`](Self::Rules), [`Decision`](Self::Decision) and [`Result`](Self::Result) answer like
/// the real PDP: only after checking the subscription key (401), the Altinn token (401), the
/// content type (415), the JSON (400) and the XACML request (`200` with one `Indeterminate`
/// result, status `syntax-error`), and with one result per asked decision. The other variants
/// answer at once, whatever the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PdpAnswer {
    /// Evaluate the rules added with [`FakeAltinn::permit`]: `Permit` (with the permit
    /// obligations) when a rule matches the decision's system user, action, resource and party,
    /// otherwise `NotApplicable`.
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
    /// `429 Too Many Requests` with `Retry-After` (as Azure API Management answers).
    TooManyRequests {
        /// Value of `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// This HTTP status with an empty body.
    Status(u16),
    /// Never answers (until the fake is dropped or shut down, when it answers 503).
    Hang,
}

#[derive(Default)]
pub(super) struct Answers {
    pub(super) default: PdpAnswer,
    pub(super) queue: VecDeque<PdpAnswer>,
}
