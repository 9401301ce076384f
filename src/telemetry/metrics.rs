//! The metrics: names, label values and histogram buckets, the one place they are written.
//!
//! Recorded through the [`metrics`](https://docs.rs/metrics) facade when the crate's `metrics`
//! feature is on: install any recorder (Prometheus, OpenTelemetry, StatsD, ...) and the series
//! appear on first use. Without the feature, or without a recorder, recording does nothing.
//! Names and label values are a contract, spelled the Prometheus way; no label carries an id,
//! a party, a token or free text, so the number of series is fixed.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `altinn_systemuser_requests_total` | counter | `layer` (`maskinporten`, `systemuser`), `outcome` (`allowed`, `refused`), `reason` (`ok` or the [refusal slug](crate::reject::RejectionKind::slug)) |
//! | `altinn_systemuser_pdp_requests_total` | counter | `result`: `permit`, `deny`, `not_applicable`, `indeterminate`, `obligation_not_met`, `error`, `breaker_open`, `rate_limited` |
//! | `altinn_systemuser_pdp_request_duration_seconds` | histogram | (none) |
//! | `altinn_systemuser_decision_cache_total` | counter | `result`: `hit`, `miss`, `shared` |
//! | `altinn_systemuser_jwks_last_success_timestamp_seconds` | gauge | `issuer` |
//! | `altinn_systemuser_jwks_refresh_total` | counter | `issuer`, `result` (`ok`, `error`) |
//! | `altinn_systemuser_credentials_refresh_total` | counter | `step` (`grant`, `exchange`), `result` (`ok`, `error`) |
//!
//! What is counted:
//!
//! - **requests**: one per request each layer answers: `allowed` when it passes the request on,
//!   `refused` with the refusal's slug as `reason`.
//! - **PDP requests**: one per question that needed the PDP: the decision when one came
//!   (`permit`, `deny`, ...), `error` when the call failed or timed out, `breaker_open` when the
//!   circuit breaker refused to call, `rate_limited` when the system user was over its limit of
//!   new questions. A question answered from the cache, or that joined a call in flight, is not
//!   counted here. A multi-request counts each question it asked.
//! - **PDP request duration**: each HTTP request to the PDP (a retry is a second one), from
//!   sending it to reading its answer, in seconds. The facade cannot set buckets: configure your
//!   exporter with [`PDP_REQUEST_DURATION_BUCKETS`] (1 ms to 10 s), or it may render a summary.
//! - **decision cache**: one per decision looked up by [`decide`](crate::pdp::AltinnPdp::decide),
//!   [`decide_many`](crate::pdp::AltinnPdp::decide_many) or the system-user layer: `hit` when
//!   answered from the cache, `shared` when it joined an identical question in flight, `miss`
//!   otherwise (a new PDP question, or one refused before it was asked).
//!   [`cached_decision`](crate::pdp::AltinnPdp::cached_decision) counts its hits only.
//! - **JWKS**: each fetch of the issuer's keys (discovery included) that ran, `ok` or `error`;
//!   the gauge is the Unix time of the last one that succeeded, so an alert on its age says
//!   the keys are getting stale.
//! - **credentials**: each step of getting the PDP's token: the Maskinporten JWT `grant` and the
//!   Altinn token `exchange`, `ok` or `error`.
//!
//! With `metrics-exporter-prometheus`:
//!
//! ```
//! use altinn_systemuser::telemetry::metrics::{PDP_REQUEST_DURATION_BUCKETS, PDP_REQUEST_DURATION_SECONDS};
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//!
//! let recorder = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(PDP_REQUEST_DURATION_SECONDS.to_owned()),
//!         PDP_REQUEST_DURATION_BUCKETS,
//!     )
//!     .unwrap()
//!     .build_recorder();
//! let handle = recorder.handle(); // handle.render() is the text for `GET /metrics`
//! // metrics::set_global_recorder(recorder) in a real program.
//! # let _ = handle;
//! ```

use std::time::Duration;

use crate::pdp::{Decision, PdpError, PdpErrorKind};
use crate::reject::RejectionKind;

/// Requests answered by each layer: counter with `layer`, `outcome`, `reason`.
pub const REQUESTS_TOTAL: &str = "altinn_systemuser_requests_total";
/// Questions that needed the PDP, by result: counter with `result`.
pub const PDP_REQUESTS_TOTAL: &str = "altinn_systemuser_pdp_requests_total";
/// Duration of each HTTP request to the PDP, in seconds: histogram.
pub const PDP_REQUEST_DURATION_SECONDS: &str = "altinn_systemuser_pdp_request_duration_seconds";
/// Decisions looked up, by how they were found: counter with `result`.
pub const DECISION_CACHE_TOTAL: &str = "altinn_systemuser_decision_cache_total";
/// Unix time of the last successful JWKS fetch: gauge with `issuer`.
pub const JWKS_LAST_SUCCESS_TIMESTAMP_SECONDS: &str = "altinn_systemuser_jwks_last_success_timestamp_seconds";
/// JWKS fetches that ran: counter with `issuer`, `result`.
pub const JWKS_REFRESH_TOTAL: &str = "altinn_systemuser_jwks_refresh_total";
/// Steps of getting the PDP's token: counter with `step`, `result`.
pub const CREDENTIALS_REFRESH_TOTAL: &str = "altinn_systemuser_credentials_refresh_total";

/// The upper bounds (seconds) of the buckets of [`PDP_REQUEST_DURATION_SECONDS`]: 1 ms to 10 s.
/// Give them to your exporter (the `metrics` facade has no way to).
pub const PDP_REQUEST_DURATION_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every metric name, for exporters' allow-lists and for tests.
pub const ALL: &[&str] = &[
    REQUESTS_TOTAL,
    PDP_REQUESTS_TOTAL,
    PDP_REQUEST_DURATION_SECONDS,
    DECISION_CACHE_TOTAL,
    JWKS_LAST_SUCCESS_TIMESTAMP_SECONDS,
    JWKS_REFRESH_TOTAL,
    CREDENTIALS_REFRESH_TOTAL,
];

/// Label names and values.
pub mod label {
    /// Which layer answered: [`MASKINPORTEN`], [`SYSTEMUSER`].
    pub const LAYER: &str = "layer";
    /// The `layer` of the Maskinporten layer.
    pub const MASKINPORTEN: &str = "maskinporten";
    /// The `layer` of the system-user layer.
    pub const SYSTEMUSER: &str = "systemuser";

    /// What a layer did with a request: [`ALLOWED`], [`REFUSED`].
    pub const OUTCOME: &str = "outcome";
    /// The request was passed on.
    pub const ALLOWED: &str = "allowed";
    /// The request was refused.
    pub const REFUSED: &str = "refused";

    /// Why: [`OK`] when allowed, otherwise the refusal's
    /// [slug](crate::reject::RejectionKind::slug).
    pub const REASON: &str = "reason";
    /// The `reason` of an allowed request.
    pub const OK: &str = "ok";

    /// The `result` label of the PDP, cache, JWKS and credentials counters.
    pub const RESULT: &str = "result";
    /// PDP result: `Permit`.
    pub const PERMIT: &str = "permit";
    /// PDP result: `Deny`.
    pub const DENY: &str = "deny";
    /// PDP result: `NotApplicable`.
    pub const NOT_APPLICABLE: &str = "not_applicable";
    /// PDP result: `Indeterminate`.
    pub const INDETERMINATE: &str = "indeterminate";
    /// PDP result: `Permit` with an obligation not understood or not met.
    pub const OBLIGATION_NOT_MET: &str = "obligation_not_met";
    /// PDP result, JWKS and credentials result: it failed.
    pub const ERROR: &str = "error";
    /// PDP result: not asked, the circuit breaker is open.
    pub const BREAKER_OPEN: &str = "breaker_open";
    /// PDP result: not asked, the system user is over its limit of new questions.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Decision cache result: answered from the cache.
    pub const HIT: &str = "hit";
    /// Decision cache result: not in the cache, nothing to join.
    pub const MISS: &str = "miss";
    /// Decision cache result: joined an identical question in flight.
    pub const SHARED: &str = "shared";

    /// Whose keys were fetched: [`MASKINPORTEN`] or [`ALTINN`].
    pub const ISSUER: &str = "issuer";
    /// The `issuer` of Altinn's platform (tokens from the exchange).
    pub const ALTINN: &str = "altinn";

    /// Which step of getting the PDP's token: [`GRANT`], [`EXCHANGE`].
    pub const STEP: &str = "step";
    /// The Maskinporten JWT grant.
    pub const GRANT: &str = "grant";
    /// The exchange of the Maskinporten token for an Altinn token.
    pub const EXCHANGE: &str = "exchange";
}

/// Which layer answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerName {
    Maskinporten,
    SystemUser,
}

/// How a decision was found, for the decision-cache counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheResult {
    Hit,
    Miss,
    Shared,
}

/// A step of getting the PDP's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialStep {
    Grant,
    Exchange,
}

/// The `result` of a question that needed the PDP.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn pdp_result_label(result: &Result<Decision, PdpError>) -> &'static str {
    match result {
        Ok(Decision::Permit) => label::PERMIT,
        Ok(Decision::Deny) => label::DENY,
        Ok(Decision::NotApplicable) => label::NOT_APPLICABLE,
        Ok(Decision::Indeterminate) => label::INDETERMINATE,
        Ok(Decision::ObligationNotMet) => label::OBLIGATION_NOT_MET,
        Err(e) => match e.kind() {
            PdpErrorKind::CircuitOpen => label::BREAKER_OPEN,
            PdpErrorKind::TooManyDecisions => label::RATE_LIMITED,
            _ => label::ERROR,
        },
    }
}

#[cfg(feature = "metrics")]
mod record {
    //! The recording itself. Keys of the warm path are statics: no allocation, no hashing of
    //! the key (its hash is computed at compile time), one registry lookup.

    use super::{CacheResult, CredentialStep, LayerName, label};
    use metrics::{Key, Label, Level, Metadata};

    static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    macro_rules! static_key {
        ($name:expr $(, $k:expr => $v:expr)*) => {{
            static LABELS: &[Label] = &[$(Label::from_static_parts($k, $v)),*];
            static KEY: Key = Key::from_static_parts($name, LABELS);
            &KEY
        }};
    }

    pub(crate) fn count(key: &Key) {
        count_n(key, 1);
    }

    pub(crate) fn count_n(key: &Key, n: u64) {
        metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(n));
    }

    pub(crate) fn request_allowed(layer: LayerName) {
        count(match layer {
            LayerName::Maskinporten => {
                static_key!(super::REQUESTS_TOTAL, label::LAYER => label::MASKINPORTEN, label::OUTCOME => label::ALLOWED, label::REASON => label::OK)
            }
            LayerName::SystemUser => {
                static_key!(super::REQUESTS_TOTAL, label::LAYER => label::SYSTEMUSER, label::OUTCOME => label::ALLOWED, label::REASON => label::OK)
            }
        });
    }

    pub(crate) fn request_refused(layer: LayerName, reason: &'static str) {
        let layer = match layer {
            LayerName::Maskinporten => label::MASKINPORTEN,
            LayerName::SystemUser => label::SYSTEMUSER,
        };
        let key = Key::from_parts(
            super::REQUESTS_TOTAL,
            vec![
                Label::from_static_parts(label::LAYER, layer),
                Label::from_static_parts(label::OUTCOME, label::REFUSED),
                Label::from_static_parts(label::REASON, reason),
            ],
        );
        count(&key);
    }

    pub(crate) fn decision_cache(result: CacheResult, n: u64) {
        let key = match result {
            CacheResult::Hit => static_key!(super::DECISION_CACHE_TOTAL, label::RESULT => label::HIT),
            CacheResult::Miss => static_key!(super::DECISION_CACHE_TOTAL, label::RESULT => label::MISS),
            CacheResult::Shared => static_key!(super::DECISION_CACHE_TOTAL, label::RESULT => label::SHARED),
        };
        count_n(key, n);
    }

    pub(crate) fn pdp_result(result: &'static str, questions: u64) {
        let key = Key::from_parts(super::PDP_REQUESTS_TOTAL, vec![Label::from_static_parts(label::RESULT, result)]);
        count_n(&key, questions);
    }

    pub(crate) fn pdp_duration(seconds: f64) {
        let key = static_key!(super::PDP_REQUEST_DURATION_SECONDS);
        metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(seconds));
    }

    pub(crate) fn jwks_refresh(issuer: &'static str, ok: bool, unix_seconds: f64) {
        let result = if ok { label::OK } else { label::ERROR };
        let issuer_label = || Label::from_static_parts(label::ISSUER, issuer);
        let key = Key::from_parts(
            super::JWKS_REFRESH_TOTAL,
            vec![issuer_label(), Label::from_static_parts(label::RESULT, result)],
        );
        count(&key);
        if ok {
            let key = Key::from_parts(super::JWKS_LAST_SUCCESS_TIMESTAMP_SECONDS, vec![issuer_label()]);
            metrics::with_recorder(|r| r.register_gauge(&key, &METADATA).set(unix_seconds));
        }
    }

    pub(crate) fn credentials(step: CredentialStep, ok: bool) {
        count(match (step, ok) {
            (CredentialStep::Grant, true) => {
                static_key!(super::CREDENTIALS_REFRESH_TOTAL, label::STEP => label::GRANT, label::RESULT => label::OK)
            }
            (CredentialStep::Grant, false) => {
                static_key!(super::CREDENTIALS_REFRESH_TOTAL, label::STEP => label::GRANT, label::RESULT => label::ERROR)
            }
            (CredentialStep::Exchange, true) => {
                static_key!(super::CREDENTIALS_REFRESH_TOTAL, label::STEP => label::EXCHANGE, label::RESULT => label::OK)
            }
            (CredentialStep::Exchange, false) => {
                static_key!(super::CREDENTIALS_REFRESH_TOTAL, label::STEP => label::EXCHANGE, label::RESULT => label::ERROR)
            }
        });
    }
}

// What the rest of the crate calls: the same functions with the feature on or off, so that call
// sites carry no `cfg`. Off, they compile to nothing.

/// A request a layer passed on.
#[inline]
pub(crate) fn request_allowed(layer: LayerName) {
    #[cfg(feature = "metrics")]
    record::request_allowed(layer);
    #[cfg(not(feature = "metrics"))]
    let _ = layer;
}

/// A request a layer refused.
#[inline]
pub(crate) fn request_refused(layer: LayerName, kind: RejectionKind) {
    #[cfg(feature = "metrics")]
    record::request_refused(layer, kind.slug());
    #[cfg(not(feature = "metrics"))]
    let _ = (layer, kind);
}

/// A decision looked up.
#[inline]
pub(crate) fn decision_cache(result: CacheResult) {
    decision_cache_n(result, 1);
}

/// `questions` decision-cache lookups with the same result (a multi-request).
#[inline]
pub(crate) fn decision_cache_n(result: CacheResult, questions: usize) {
    #[cfg(feature = "metrics")]
    if questions > 0 {
        record::decision_cache(result, questions as u64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, questions);
}

/// The outcome of `questions` questions that needed the PDP (one, or a multi-request's).
#[inline]
pub(crate) fn pdp_result(result: &Result<Decision, PdpError>, questions: usize) {
    #[cfg(feature = "metrics")]
    if questions > 0 {
        record::pdp_result(pdp_result_label(result), questions as u64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, questions);
}

/// How long one HTTP request to the PDP took.
#[inline]
pub(crate) fn pdp_duration(took: Duration) {
    #[cfg(feature = "metrics")]
    record::pdp_duration(took.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = took;
}

/// A JWKS fetch (discovery included) that ran, and how it ended.
#[inline]
pub(crate) fn jwks_refresh(issuer: &'static str, ok: bool) {
    #[cfg(feature = "metrics")]
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        record::jwks_refresh(issuer, ok, now);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (issuer, ok);
}

/// A step of getting the PDP's token, and how it ended.
#[inline]
pub(crate) fn credentials(step: CredentialStep, ok: bool) {
    #[cfg(feature = "metrics")]
    record::credentials(step, ok);
    #[cfg(not(feature = "metrics"))]
    let _ = (step, ok);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract: other tools depend on these spellings. Changing one is a breaking change.
    #[test]
    fn names_and_label_values_are_pinned() {
        assert_eq!(
            ALL,
            [
                "altinn_systemuser_requests_total",
                "altinn_systemuser_pdp_requests_total",
                "altinn_systemuser_pdp_request_duration_seconds",
                "altinn_systemuser_decision_cache_total",
                "altinn_systemuser_jwks_last_success_timestamp_seconds",
                "altinn_systemuser_jwks_refresh_total",
                "altinn_systemuser_credentials_refresh_total",
            ]
        );
        use label::*;
        assert_eq!([LAYER, MASKINPORTEN, SYSTEMUSER], ["layer", "maskinporten", "systemuser"]);
        assert_eq!(
            [OUTCOME, ALLOWED, REFUSED, REASON, OK],
            ["outcome", "allowed", "refused", "reason", "ok"]
        );
        assert_eq!(
            [
                RESULT,
                PERMIT,
                DENY,
                NOT_APPLICABLE,
                INDETERMINATE,
                OBLIGATION_NOT_MET,
                ERROR,
                BREAKER_OPEN,
                RATE_LIMITED
            ],
            [
                "result",
                "permit",
                "deny",
                "not_applicable",
                "indeterminate",
                "obligation_not_met",
                "error",
                "breaker_open",
                "rate_limited"
            ]
        );
        assert_eq!([HIT, MISS, SHARED], ["hit", "miss", "shared"]);
        assert_eq!([ISSUER, STEP, GRANT, EXCHANGE], ["issuer", "step", "grant", "exchange"]);
        // Prometheus spelling: [a-z_] names, counters end in _total, units in the name.
        for name in ALL {
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
        }
    }

    #[test]
    fn buckets_run_from_one_millisecond_to_ten_seconds_in_order() {
        let b = PDP_REQUEST_DURATION_BUCKETS;
        assert_eq!((b[0], b[b.len() - 1]), (0.001, 10.0));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_pdp_outcome_has_its_label() {
        let cases = [
            (Ok(Decision::Permit), "permit"),
            (Ok(Decision::Deny), "deny"),
            (Ok(Decision::NotApplicable), "not_applicable"),
            (Ok(Decision::Indeterminate), "indeterminate"),
            (Ok(Decision::ObligationNotMet), "obligation_not_met"),
            (Err(PdpError::new(PdpErrorKind::CircuitOpen)), "breaker_open"),
            (Err(PdpError::too_many_decisions(None)), "rate_limited"),
            (Err(PdpError::timeout()), "error"),
            (Err(PdpError::new(PdpErrorKind::Status(503))), "error"),
        ];
        for (result, expected) in cases {
            assert_eq!(pdp_result_label(&result), expected, "{result:?}");
        }
    }
}
