//! The request span and the principal fields the layers record into it.
//!
//! `tracing` ignores a field that a span did not declare when it was created, so recording
//! into the current span only works for a span that declared the fields, empty. [`make_span`]
//! is such a span, for `tower_http::trace::TraceLayer`:
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_http::trace::TraceLayer;
//!
//! let app: Router = Router::new()
//!     .route("/krav/{orgnr}", get(|| async { "..." }))
//!     // .route_layer(system_user_layer).route_layer(maskinporten_layer)
//!     .layer(TraceLayer::new_for_http().make_span_with(altinn_systemuser::telemetry::make_span));
//! # let _ = app;
//! ```
//!
//! Put the `TraceLayer` outside both layers (with axum: `.layer(trace)` after the
//! `route_layer`s, or on the outer router). Each layer records into `Span::current()`:
//!
//! | field | recorded by | value |
//! |---|---|---|
//! | `system_user_id`, `system_user_org`, `vendor_org`, `client_id`, `jti` | the Maskinporten layer, once the token is verified | as in the [audit events](super::audit) |
//! | `resource`, `action`, `party`, `decision_source` | the system-user layer | as in the audit events (a person identifier is never in clear) |
//! | `outcome`, `reason` | the system-user layer for every request it answers; the Maskinporten layer only when it refuses | `allowed`/`refused`, `ok` or the refusal's slug |
//!
//! **Your own span.** Declare every name in [`FIELDS`] as `tracing::field::Empty`:
//!
//! ```
//! use tracing::field::Empty;
//!
//! fn my_span<B>(req: &http::Request<B>) -> tracing::Span {
//!     tracing::info_span!(
//!         "request",
//!         method = %req.method(),
//!         system_user_id = Empty, system_user_org = Empty, vendor_org = Empty,
//!         client_id = Empty, jti = Empty, resource = Empty, action = Empty, party = Empty,
//!         decision_source = Empty, outcome = Empty, reason = Empty,
//!     )
//! }
//! # let span = my_span(&http::Request::new(()));
//! # for f in altinn_systemuser::telemetry::span::FIELDS {
//! #     assert!(span.field(*f).is_some() || span.is_disabled(), "{f}");
//! # }
//! ```
//!
//! [`make_span`] does not record the URI: a path such as `/krav/{party}` may carry a person
//! identifier. Add it to your own span if your paths never do.

use http::Request;
use tracing::Span;
use tracing::field::{Empty, display};

use super::audit::{OrgField, PartyField, PartyKey, outcome_fields};
use crate::maskinporten::MaskinportenToken;
use crate::org::Party;
use crate::pdp::{Action, DecisionSource, ResourceId};
use crate::reject::RejectionKind;

/// The `tracing` target of [`make_span`]'s span.
pub const TARGET: &str = "altinn_systemuser::request";

/// The fields the layers record, in the order [`make_span`] declares them.
pub const FIELDS: &[&str] = &[
    "system_user_id",
    "system_user_org",
    "vendor_org",
    "client_id",
    "jti",
    "issuer",
    "resource",
    "action",
    "party",
    "decision_source",
    "outcome",
    "reason",
];

/// An `INFO` span named `request` with the request's `method` and every field of [`FIELDS`]
/// declared empty, for the layers to fill in. A `MakeSpan` for `tower_http`'s `TraceLayer`
/// (which accepts any `Fn(&Request<B>) -> Span`).
pub fn make_span<B>(request: &Request<B>) -> Span {
    tracing::info_span!(
        target: TARGET,
        "request",
        method = %request.method(),
        system_user_id = Empty,
        system_user_org = Empty,
        vendor_org = Empty,
        client_id = Empty,
        jti = Empty,
        issuer = Empty,
        resource = Empty,
        action = Empty,
        party = Empty,
        decision_source = Empty,
        outcome = Empty,
        reason = Empty,
    )
}

/// The Maskinporten layer, with a verified token: who is calling.
pub(crate) fn record_token(span: &Span, token: &MaskinportenToken) {
    if span.is_disabled() {
        return;
    }
    if let Some(su) = token.system_user() {
        span.record("system_user_id", display(su.id()));
        span.record("system_user_org", display(su.owner_org()));
    }
    if let Some(vendor) = token.consumer() {
        span.record("vendor_org", display(OrgField(vendor)));
    }
    if let Some(client_id) = token.client_id() {
        span.record("client_id", client_id);
    }
    if let Some(jti) = token.jti() {
        span.record("jti", jti);
    }
    span.record("issuer", token.token_issuer().as_str());
}

/// The outcome of a layer.
pub(crate) fn record_outcome(span: &Span, outcome: Result<(), RejectionKind>) {
    if span.is_disabled() {
        return;
    }
    let (outcome, reason) = outcome_fields(outcome);
    span.record("outcome", outcome);
    span.record("reason", reason);
}

/// The system-user layer: what was asked and how the decision was found.
pub(crate) fn record_target(
    span: &Span,
    resource: &ResourceId,
    action: &Action,
    party: Party,
    source: Option<DecisionSource>,
    key: Option<&PartyKey>,
) {
    if span.is_disabled() {
        return;
    }
    span.record("resource", resource.as_str());
    span.record("action", action.as_str());
    span.record("party", display(PartyField { party, key }));
    if let Some(source) = source {
        span.record("decision_source", source.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_span_declares_every_field() {
        // A subscriber that enables everything, so that the span has its metadata.
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = make_span(&Request::new(()));
            let declared: Vec<&str> = span.metadata().unwrap().fields().iter().map(|f| f.name()).collect();
            let mut expected = vec!["method"];
            expected.extend_from_slice(FIELDS);
            assert_eq!(declared, expected);
            assert_eq!(span.metadata().unwrap().target(), TARGET);
        });
    }
}
