//! The whole stack on the warm path: `MaskinportenLayer` + `SystemUserLayer` on a trivial inner
//! service (`ServiceBuilder`), token cached and PDP decision cached, driven with
//! `svc.clone().oneshot(req).await`; against the same inner service without the layers, driven
//! the same way in the same run. The figure that matters is the difference (what both layers add
//! per request); the ratio is printed too.
//!
//! Then the cost of operations (issue 14): the same warm path in the request span of
//! `telemetry::make_span`, with audit and metrics off (no subscriber, no recorder) and on (a
//! `metrics-exporter-prometheus` recorder with the crate's histogram buckets, and a `fmt`
//! subscriber at `INFO` writing to a sink that only counts bytes, so every request formats its
//! audit event and fills in its span). Both are set for the benchmark's thread only, so the two halves
//! alternate in one run; the difference is what the audit trail, the span fields and the
//! metrics cost per request. The end checks that the "on" half counted its requests and wrote
//! a log line for each.
//!
//! Uses the fakes (FakeMaskinporten for keys and the provider's token, FakeAltinn for the one
//! PDP call that fills the decision cache before timing).
//!
//! Run: `cargo bench --all-features --bench stack`

mod common;

use altinn_systemuser::telemetry;
use altinn_systemuser::telemetry::metrics::{PDP_REQUEST_DURATION_BUCKETS, PDP_REQUEST_DURATION_SECONDS};
use common::{Ok200, bearer, fakes, maskinporten_layer, pdp, request, runtime, system_user_layer, timed_async, token};
use criterion::{Criterion, Throughput};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;
use uuid::Uuid;

/// `std::io::sink`, counting what it throws away (to show that the log lines were written).
struct CountingSink(Arc<AtomicU64>);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let rt = runtime();
    let (mp, altinn) = rt.block_on(fakes());
    let layer = maskinporten_layer(&mp, 10_000);
    rt.block_on(layer.keys().ready()).expect("keys load from the fake");
    let su = Uuid::new_v4();
    altinn.permit(su, "read", common::RESOURCE, common::OWNER_ORG);
    let stack = ServiceBuilder::new()
        .layer(layer)
        .layer(system_user_layer(pdp(&mp, &altinn)))
        .service(Ok200);
    let plain = Ok200;

    let header = bearer(&token(&mp, su));
    // One request through: verifies the token and asks the PDP; both are cached after it.
    let res = rt.block_on(stack.clone().oneshot(request(&header))).unwrap();
    assert_eq!(res.status(), 200);
    let calls = altinn.pdp_request_count();
    assert_eq!(calls, 1);

    let mut inner_only = |iters: u64| timed_async(&rt, iters, |_| request(&header), |req| plain.oneshot(req));
    let mut ours = |iters: u64| timed_async(&rt, iters, |_| request(&header), |req| stack.clone().oneshot(req));

    // Operations: the request in the crate's span; off, then on.
    let in_span = |iters: u64| {
        timed_async(
            &rt,
            iters,
            |_| request(&header),
            |req| {
                let span = telemetry::make_span(&req);
                stack.clone().oneshot(req).instrument(span)
            },
        )
    };
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(PDP_REQUEST_DURATION_SECONDS.to_owned()), PDP_REQUEST_DURATION_BUCKETS)
        .unwrap()
        .build_recorder();
    let prometheus = recorder.handle();
    let written = Arc::new(AtomicU64::new(0));
    let sink = {
        let written = written.clone();
        move || CountingSink(written.clone())
    };
    let subscriber = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(sink)
            .finish(),
    );
    // Each half first sets the callsites' cached interest as a process configured that way would
    // have it: with one scoped dispatcher, `tracing` caches "never" for a callsite first hit
    // while none is set, and keeps it. Not timed.
    let mut ops_off = |iters: u64| {
        tracing::callsite::rebuild_interest_cache();
        in_span(iters)
    };
    let mut ops_on = |iters: u64| {
        metrics::with_local_recorder(&recorder, || {
            tracing::dispatcher::with_default(&subscriber, || {
                tracing::callsite::rebuild_interest_cache();
                in_span(iters)
            })
        })
    };

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("stack");
    g.throughput(Throughput::Elements(1));
    g.bench_function("inner_service_only", |b| b.iter_custom(&mut inner_only));
    g.bench_function("both_layers_cached", |b| b.iter_custom(&mut ours));
    g.bench_function("both_layers_cached_audit_metrics_off", |b| b.iter_custom(&mut ops_off));
    g.bench_function("both_layers_cached_audit_metrics_on", |b| b.iter_custom(&mut ops_on));
    g.finish();
    if common::benchmarking() {
        common::ratio("both layers (cached) / inner service only", &mut inner_only, &mut ours);
        common::ratio(
            "both layers (cached), audit + metrics on / off (in the request span)",
            &mut ops_off,
            &mut ops_on,
        );
    }
    // Every timed request was a hit: still the one PDP call.
    assert_eq!(altinn.pdp_request_count(), calls, "the warm path called the PDP");
    // The "on" half really recorded: the allowed requests are counted, and each wrote its
    // audit line (with the span's fields) to the sink.
    let text = prometheus.render();
    let allowed = r#"altinn_systemuser_requests_total{layer="systemuser",outcome="allowed",reason="ok"} "#;
    let counted: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(allowed))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let bytes = written.load(Ordering::Relaxed);
    assert!(
        counted >= 1.0 && bytes as f64 >= counted * 200.0,
        "{counted} requests, {bytes} bytes"
    );
    if common::benchmarking() {
        println!("audit + metrics on: {:.0} bytes of log per request", bytes as f64 / counted);
    }
    c.final_summary();
}
