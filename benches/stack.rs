//! The whole stack on the warm path: `MaskinportenLayer` + `SystemUserLayer` on a trivial inner
//! service (`ServiceBuilder`), token cached and PDP decision cached, driven with
//! `svc.clone().oneshot(req).await`; against the same inner service without the layers, driven
//! the same way in the same run. The figure that matters is the difference (what both layers add
//! per request); the ratio is printed too.
//!
//! Uses the fakes (FakeMaskinporten for keys and the provider's token, FakeAltinn for the one
//! PDP call that fills the decision cache before timing).
//!
//! Run: `cargo bench --all-features --bench stack`

mod common;

use common::{Ok200, bearer, fakes, maskinporten_layer, pdp, request, runtime, system_user_layer, timed_async, token};
use criterion::{Criterion, Throughput};
use tower::{ServiceBuilder, ServiceExt};
use uuid::Uuid;

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

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("stack");
    g.throughput(Throughput::Elements(1));
    g.bench_function("inner_service_only", |b| b.iter_custom(&mut inner_only));
    g.bench_function("both_layers_cached", |b| b.iter_custom(&mut ours));
    g.finish();
    if common::benchmarking() {
        common::ratio("both layers (cached) / inner service only", &mut inner_only, &mut ours);
    }
    // Every timed request was a hit: still the one PDP call.
    assert_eq!(altinn.pdp_request_count(), calls, "the warm path called the PDP");
    c.final_summary();
}
