//! Cold validation: a token the layer has not seen, through `MaskinportenService` (keys already
//! loaded): parse, RSA verify, claims, and the insert into the verified-token cache, against
//! the floor: a bare RSA-2048 PKCS#1 v1.5 SHA-256 verify of the same signatures with aws-lc-rs,
//! the crate's backend (key parsed once, signature already decoded).
//!
//! Both cycle through the same 512 pre-minted system-user tokens. The layer's token cache holds
//! 64, and no request may hit it: a token comes back only after 511 others, and before any of
//! them is presented the cache is filled with 128 tokens that never come back. That matters:
//! the cache's eviction (CLOCK-Pro) protects the entries it took in while it was filling, so
//! without the filler the first 64 tokens of the cycle would stay cached and hit every time
//! they came round. After the run, one pass over the 512 is timed call by call: a call faster
//! than a third of a bare verify can only be a hit, and is reported (`HITS`) and fails the
//! target. The run with the cache off is printed beside it. Ours is driven synchronously
//! (`call(..).now_or_never()` inside a Tokio runtime context: with the keys cached the future
//! resolves in one poll). Target: ours at most 1.2x the bare verify, printed as `RATIO` after
//! criterion's lines.
//!
//! Run: `cargo bench --all-features --bench cold_validation`

mod common;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Ok200, bearer, maskinporten_layer, request, runtime, timed, token};
use criterion::{Criterion, Throughput};
use futures_util::FutureExt;
use http::HeaderValue;
use tower::{Layer, Service, ServiceExt};
use uuid::Uuid;

const TOKENS: usize = 512;
/// The layer's token-cache capacity: far below `TOKENS`, so that every request is a miss.
const CACHE: u64 = 64;
/// Tokens the cache takes in first and that never come back (see above).
const FILLER: usize = 2 * CACHE as usize;

fn main() {
    let rt = runtime();
    let _enter = rt.enter();
    let mp = rt.block_on(altinn_systemuser::test_util::FakeMaskinporten::start());
    let layer = maskinporten_layer(&mp, CACHE);
    rt.block_on(layer.keys().ready()).expect("keys load from the fake");
    let mut svc = layer.layer(Ok200);
    let uncached = maskinporten_layer(&mp, 0);
    rt.block_on(uncached.keys().ready()).expect("keys load from the fake");
    let mut svc_uncached = uncached.layer(Ok200);

    let tokens: Vec<String> = (0..TOKENS).map(|_| token(&mp, Uuid::new_v4())).collect();
    let bearers: Vec<HeaderValue> = tokens.iter().map(|t| bearer(t)).collect();
    let (n, e) = mp.signing_key().public_components();
    let key = RsaPublicKeyComponents { n: &n[..], e: &e[..] }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .expect("a valid RSA-2048 key");
    let signed: Vec<(Vec<u8>, Vec<u8>)> = tokens
        .iter()
        .map(|t| {
            let (input, sig) = t.rsplit_once('.').unwrap();
            (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(sig).unwrap())
        })
        .collect();

    // Both really verify: every signature is good, every request gets through. The filler goes
    // in first.
    for _ in 0..FILLER {
        let filler = bearer(&token(&mp, Uuid::new_v4()));
        let res = svc.call(request(&filler)).now_or_never().unwrap().unwrap();
        assert_eq!(res.status(), 200);
    }
    assert!(signed.iter().all(|(m, s)| key.verify_sig(m, s).is_ok()));
    for b in &bearers {
        let res = svc.call(request(b)).now_or_never().unwrap().unwrap();
        assert_eq!(res.status(), 200);
    }

    // Like ours, each round goes on through the list where the last one stopped.
    let mut next_bare = 0;
    let mut bare = |iters: u64| {
        let start = next_bare;
        next_bare = (start + iters as usize) % TOKENS;
        timed(
            iters,
            |i| &signed[(start + i as usize) % TOKENS],
            |(msg, sig)| key.verify_sig(msg, sig).is_ok(),
        )
    };
    // Where the next round starts in the token list: every round goes on where the last one
    // stopped, so a short round does not present the tokens the cache has just kept.
    fn run<S>(svc: &mut S, bearers: &[HeaderValue], next: &mut usize, iters: u64) -> std::time::Duration
    where
        S: Service<http::Request<()>>,
        S::Error: std::fmt::Debug,
    {
        let start = *next;
        *next = (start + iters as usize) % TOKENS;
        timed(
            iters,
            |i| request(&bearers[(start + i as usize) % TOKENS]),
            |req| {
                let ready = ServiceExt::<http::Request<()>>::ready(&mut *svc)
                    .now_or_never()
                    .expect("always ready")
                    .unwrap();
                ready.call(req).now_or_never().expect("resolves in one poll with keys cached")
            },
        )
    }
    let (mut next, mut next_uncached) = (0, 0);
    let mut ours = |iters: u64| run(&mut svc, &bearers, &mut next, iters);
    let mut ours_uncached = |iters: u64| run(&mut svc_uncached, &bearers, &mut next_uncached, iters);

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("cold_validation");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bare_rsa2048_verify", |b| b.iter_custom(&mut bare));
    g.bench_function("maskinporten_layer_new_token", |b| b.iter_custom(&mut ours));
    g.bench_function("maskinporten_layer_cache_off", |b| b.iter_custom(&mut ours_uncached));
    g.finish();
    if common::benchmarking() {
        let r = common::ratio("cold validation (cache insert included) / bare RSA verify", &mut bare, &mut ours);
        common::ratio("cold validation (cache off) / bare RSA verify", &mut bare, &mut ours_uncached);
        // No request may have hit the cache: one more pass, call by call, against a third of
        // the bare verify's time. The target is judged only after it.
        let floor = bare(TOKENS as u64) / TOKENS as u32 / 3;
        let hits = (0..TOKENS).filter(|_| run(&mut svc, &bearers, &mut next, 1) < floor).count();
        println!("HITS token-cache hits in a pass over the {TOKENS} tokens: {hits} (must be 0)");
        let verdict = match (hits, r <= 1.2) {
            (1.., _) => "INVALID (requests hit the token cache)",
            (0, true) => "met",
            (0, false) => "MISSED",
        };
        println!("TARGET cold (cache insert included) <= 1.2x bare RSA (the larger of the two summaries): {verdict}");
    }
    c.final_summary();
}
