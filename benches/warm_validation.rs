//! Warm validation: the same token again, through `MaskinportenService` with the verified-token
//! cache on (the default 10,000 entries). Scopes are still checked and the token still goes into
//! the request extensions on every call.
//!
//! Baselines from the same run: the trivial inner service called directly (so the difference is
//! all the layer adds), and a `HashMap<String, _>` lookup (foldhash, as the token cache uses) of the whole token (the floor of any
//! cache keyed on the token's bytes). Target: at most 2 µs per request, printed as `RATIO` and
//! `TARGET` after criterion's lines.
//!
//! Run: `cargo bench --all-features --bench warm_validation`

mod common;

use common::{Ok200, bearer, maskinporten_layer, request, runtime, timed, token};
use criterion::{Criterion, Throughput};
use futures_util::FutureExt;
use std::collections::HashMap;
use tower::{Layer, Service, ServiceExt};
use uuid::Uuid;

fn main() {
    let rt = runtime();
    let _enter = rt.enter();
    let mp = rt.block_on(altinn_systemuser::test_util::FakeMaskinporten::start());
    let layer = maskinporten_layer(&mp, 10_000);
    rt.block_on(layer.keys().ready()).expect("keys load from the fake");
    let mut svc = layer.layer(Ok200);
    let mut plain = Ok200;

    let token = token(&mp, Uuid::new_v4());
    let header = bearer(&token);
    // Verify once: from here on it is a cache hit.
    let res = svc.call(request(&header)).now_or_never().unwrap().unwrap();
    assert_eq!(res.status(), 200);
    // The floor uses the same fast hasher as the token cache (foldhash).
    let mut map: HashMap<String, u64, foldhash::fast::RandomState> = HashMap::default();
    map.insert(token.clone(), 1);

    let mut inner_only = |iters: u64| timed(iters, |_| request(&header), |req| plain.call(req).now_or_never().unwrap());
    let mut floor = |iters: u64| {
        timed(
            iters,
            |_| request(&header),
            |req| {
                let t = req.headers()[http::header::AUTHORIZATION].to_str().unwrap();
                map.get(&t["Bearer ".len()..]).copied()
            },
        )
    };
    let mut ours = |iters: u64| {
        timed(
            iters,
            |_| request(&header),
            |req| {
                let ready = ServiceExt::<http::Request<()>>::ready(&mut svc)
                    .now_or_never()
                    .expect("always ready")
                    .unwrap();
                ready.call(req).now_or_never().expect("a cache hit resolves in one poll")
            },
        )
    };

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("warm_validation");
    g.throughput(Throughput::Elements(1));
    g.bench_function("inner_service_only", |b| b.iter_custom(&mut inner_only));
    g.bench_function("hashmap_token_lookup", |b| b.iter_custom(&mut floor));
    g.bench_function("maskinporten_layer_cached", |b| b.iter_custom(&mut ours));
    g.finish();
    if common::benchmarking() {
        common::ratio("warm validation / hashmap token lookup", &mut floor, &mut ours);
        common::ratio("warm validation / inner service only", &mut inner_only, &mut ours);
        let per_call = ours(200_000).as_secs_f64() / 200_000.0;
        println!(
            "TARGET warm <= 2 µs: {} ({} per request)",
            if per_call <= 2e-6 { "met" } else { "MISSED" },
            common::fmt_secs(per_call)
        );
    }
    c.final_summary();
}
