//! Decision-cache lookup: `AltinnPdp::decide` for a question whose answer is cached, and
//! `AltinnPdp::cached_decision` (the synchronous lookup `SystemUserLayer` answers its warm path
//! from), each against a `HashMap` lookup of the same four-part key (system
//! user, action, resource, party), key built from the request the same way, in the same run.
//!
//! The cache is filled with 10,000 decisions (one `decide_many` call per 100 to FakeAltinn)
//! before timing, so the lookup runs against a full cache; the baseline map holds the same keys.
//!
//! Run: `cargo bench --all-features --bench decision_cache`

mod common;

use altinn_systemuser::org::Party;
use altinn_systemuser::pdp::{Action, Decision, DecisionRequest, ResourceId};
use altinn_systemuser::test_util::PdpAnswer;
use common::{fakes, pdp, runtime, timed_async};
use criterion::{Criterion, Throughput};
use std::collections::HashMap;
use uuid::Uuid;

const ENTRIES: u64 = 10_000;

fn main() {
    let rt = runtime();
    let (mp, altinn) = rt.block_on(fakes());
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let pdp = pdp(&mp, &altinn);
    let resource = ResourceId::new(common::RESOURCE).unwrap();
    let party: Party = Party::parse(common::OWNER_ORG).unwrap();
    let ask = |i: u64| DecisionRequest::new(Uuid::from_u64_pair(1, i), Action::read(), resource.clone(), party);
    let all: Vec<DecisionRequest> = (0..ENTRIES).map(ask).collect();
    for chunk in all.chunks(100) {
        let got = rt.block_on(pdp.decide_many(chunk)).expect("the fake PDP answers");
        assert!(got.iter().all(|d| *d == Decision::Permit));
    }
    let calls = altinn.pdp_request_count();
    let mut map: HashMap<(Uuid, Action, ResourceId, Party), Decision> = HashMap::new();
    for r in &all {
        map.insert((r.subject(), r.action().clone(), r.resource().clone(), r.party()), Decision::Permit);
    }
    let (pdp, map, all) = (&pdp, &map, &all);

    let mut baseline = |iters: u64| {
        timed_async(
            &rt,
            iters,
            |i| &all[(i * 7919 % ENTRIES) as usize],
            |r| async move {
                map.get(&(r.subject(), r.action().clone(), r.resource().clone(), r.party()))
                    .copied()
            },
        )
    };
    let mut ours = |iters: u64| {
        timed_async(
            &rt,
            iters,
            |i| &all[(i * 7919 % ENTRIES) as usize],
            |r| async move { pdp.decide(r).await.ok() },
        )
    };

    // What SystemUserLayer does on the warm path: the synchronous lookup, no future at all.
    let mut sync_map = |iters: u64| {
        common::timed(
            iters,
            |i| &all[(i * 7919 % ENTRIES) as usize],
            |r| {
                map.get(&(r.subject(), r.action().clone(), r.resource().clone(), r.party()))
                    .copied()
            },
        )
    };
    let mut ours_sync = |iters: u64| common::timed(iters, |i| &all[(i * 7919 % ENTRIES) as usize], |r| pdp.cached_decision(r));

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("decision_cache");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hashmap_lookup", |b| b.iter_custom(&mut baseline));
    g.bench_function("altinn_pdp_decide_cached", |b| b.iter_custom(&mut ours));
    g.bench_function("hashmap_lookup_sync", |b| b.iter_custom(&mut sync_map));
    g.bench_function("altinn_pdp_cached_decision", |b| b.iter_custom(&mut ours_sync));
    g.finish();
    if common::benchmarking() {
        common::ratio("AltinnPdp::decide (cached) / HashMap lookup", &mut baseline, &mut ours);
        common::ratio(
            "AltinnPdp::cached_decision / HashMap lookup (both synchronous)",
            &mut sync_map,
            &mut ours_sync,
        );
    }
    assert_eq!(altinn.pdp_request_count(), calls, "a cached decision called the PDP");
    c.final_summary();
}
