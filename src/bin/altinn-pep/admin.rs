//! The admin listener: `GET /healthz` (the process runs), `GET /readyz` (the library's
//! `Readiness`: keys, PDP credentials, circuit breaker) and `GET /metrics` (Prometheus text of
//! the library's metrics and `altinn_pep_refusals_total`). Never on the decision listener,
//! where a 200 means allowed.

use std::time::Duration;

use altinn_systemuser::readiness::Readiness;
use altinn_systemuser::telemetry::metrics::{PDP_REQUEST_DURATION_BUCKETS, PDP_REQUEST_DURATION_SECONDS};
use axum::routing::get;
use axum::{Json, Router};
use http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

/// `altinn_pep_refusals_total{reason}`: altinn-pep's own refusals, by problem slug
/// (`invalid-forwarded-request`, `no-matching-route`, `not-found`). The layers' refusals are in
/// `altinn_systemuser_requests_total`.
pub(crate) const REFUSALS_TOTAL: &str = "altinn_pep_refusals_total";

/// Counts one of altinn-pep's own refusals.
pub(crate) fn count_refusal(slug: &'static str) {
    metrics::counter!(REFUSALS_TOTAL, "reason" => slug).increment(1);
}

/// Installs the Prometheus recorder with the PDP latency histogram's buckets (the `metrics`
/// facade cannot set them), as the quickstart does.
pub(crate) fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(PDP_REQUEST_DURATION_SECONDS.to_owned()), PDP_REQUEST_DURATION_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    // The exporter's upkeep (draining histogram samples into buckets) between scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The admin app.
pub(crate) fn router(readiness: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move { readiness.check().await }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
}
