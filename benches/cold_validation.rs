//! Cold validation: a token the layer has not seen, through `MaskinportenService` with the token
//! cache off (`token_cache_capacity(0)`, keys already loaded), against the floor: a bare
//! RSA-2048 PKCS#1 v1.5 SHA-256 verify of the same signatures with aws-lc-rs, the crate's
//! backend (key parsed once, signature already decoded).
//!
//! Both cycle through the same 64 pre-minted system-user tokens. Ours is driven synchronously
//! (`call(..).now_or_never()` inside a Tokio runtime context: with the keys cached the future
//! resolves in one poll). Target: ours at most 1.5x the bare verify, printed as `RATIO` after
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

const TOKENS: usize = 64;

fn main() {
    let rt = runtime();
    let _enter = rt.enter();
    let mp = rt.block_on(altinn_systemuser::test_util::FakeMaskinporten::start());
    let layer = maskinporten_layer(&mp, 0);
    rt.block_on(layer.keys().ready()).expect("keys load from the fake");
    let mut svc = layer.layer(Ok200);

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

    // Both really verify: every signature is good, every request gets through.
    assert!(signed.iter().all(|(m, s)| key.verify_sig(m, s).is_ok()));
    for b in &bearers {
        let res = svc.call(request(b)).now_or_never().unwrap().unwrap();
        assert_eq!(res.status(), 200);
    }

    let mut bare = |iters: u64| {
        timed(
            iters,
            |i| &signed[i as usize % TOKENS],
            |(msg, sig)| key.verify_sig(msg, sig).is_ok(),
        )
    };
    let mut ours = |iters: u64| {
        timed(
            iters,
            |i| request(&bearers[i as usize % TOKENS]),
            |req| {
                let ready = ServiceExt::<http::Request<()>>::ready(&mut svc)
                    .now_or_never()
                    .expect("always ready")
                    .unwrap();
                ready.call(req).now_or_never().expect("resolves in one poll with keys cached")
            },
        )
    };

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("cold_validation");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bare_rsa2048_verify", |b| b.iter_custom(&mut bare));
    g.bench_function("maskinporten_layer_uncached", |b| b.iter_custom(&mut ours));
    g.finish();
    if common::benchmarking() {
        let r = common::ratio("cold validation / bare RSA verify", &mut bare, &mut ours);
        println!("TARGET cold <= 1.5x bare RSA: {}", if r <= 1.5 { "met" } else { "MISSED" });
    }
    c.final_summary();
}
