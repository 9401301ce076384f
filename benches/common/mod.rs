//! What the benchmarks share: the fakes, the layers, a trivial inner service, chunked timing
//! and the same-run ratio against a baseline.
#![allow(dead_code)]

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::pdp::{AltinnPdp, MaskinportenCredentials};
use altinn_systemuser::systemuser::SystemUserLayer;
use altinn_systemuser::test_util::{ClientRegistration, DEFAULT_SCOPE, FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::Service;
use uuid::Uuid;

/// The customer organisation that owns the benchmark's system user.
pub(crate) const OWNER_ORG: &str = "310702641";
/// The resource the system-user layer asks about.
pub(crate) const RESOURCE: &str = "benchresource";
const SUBSCRIPTION_KEY: &str = "bench-subscription-key";
const PROVIDER_CLIENT: &str = "bench-provider";

/// A single-threaded runtime: the benchmarks measure one core.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Layer 1 for `mp`, requiring the fake's default scope, with this token-cache capacity.
pub(crate) fn maskinporten_layer(mp: &FakeMaskinporten, token_cache_capacity: u64) -> MaskinportenLayer {
    MaskinportenLayer::builder()
        .issuer(mp.issuer())
        .require_scope(DEFAULT_SCOPE)
        .token_cache_capacity(token_cache_capacity)
        .build()
        .unwrap()
}

/// A PDP client against `altinn`, authenticating with a provider client registered at `mp`.
pub(crate) fn pdp(mp: &FakeMaskinporten, altinn: &FakeAltinn) -> AltinnPdp {
    let key = TestKey::for_role(KeyRole::Provider).with_kid("bench-provider-key");
    mp.register_client(ClientRegistration::new(
        PROVIDER_CLIENT,
        &key,
        "991825827",
        &["altinn:authorization/authorize"],
    ));
    let credentials = MaskinportenCredentials::builder()
        .issuer(mp.issuer())
        .client_id(PROVIDER_CLIENT)
        .private_key_pem(key.private_key_pkcs8_pem().as_bytes())
        .key_id(key.kid())
        .build()
        .unwrap();
    AltinnPdp::builder()
        .platform_url(altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .credentials(credentials)
        // The longest allowed, so that no benchmark sees its decision expire.
        .permit_ttl(Duration::from_secs(240))
        // Room for every decision a benchmark stores: the cache is sharded, so a cache filled
        // to exactly its capacity already evicts a few.
        .cache_capacity(40_000)
        .build()
        .unwrap()
}

/// Both fakes, started.
pub(crate) async fn fakes() -> (FakeMaskinporten, FakeAltinn) {
    let mp = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&mp, SUBSCRIPTION_KEY).await;
    (mp, altinn)
}

/// Layer 2 asking about [`RESOURCE`] for the system user's own organisation.
pub(crate) fn system_user_layer(pdp: AltinnPdp) -> SystemUserLayer {
    SystemUserLayer::builder().pdp(pdp).resource(RESOURCE).build().unwrap()
}

/// A real-shaped system-user token (with `authorization_details`) for `su`, valid for an hour
/// so that no benchmark outlives it.
pub(crate) fn token(mp: &FakeMaskinporten, su: Uuid) -> String {
    mp.system_user_token(su, OWNER_ORG).lifetime(Duration::from_secs(3600)).sign()
}

/// `GET /` with `Authorization: Bearer <token>`.
pub(crate) fn request(bearer: &HeaderValue) -> Request<()> {
    let mut req = Request::new(());
    req.headers_mut().insert(AUTHORIZATION, bearer.clone());
    req
}

/// `Bearer <token>` as a header value.
pub(crate) fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

/// The trivial inner service: `200` with an empty body, at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ok200;

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        ready(Ok(Response::new(())))
    }
}

/// Inputs are made (untimed) in chunks of this many; outputs are dropped untimed.
const CHUNK: u64 = 1024;

/// Time `iters` runs of `run`, each on a fresh input from `make`; only `run` is timed.
pub(crate) fn timed<I, O>(iters: u64, make: impl FnMut(u64) -> I, mut run: impl FnMut(I) -> O) -> Duration {
    chunked(iters, make, |inputs, outputs| {
        let start = Instant::now();
        for input in inputs.drain(..) {
            outputs.push(black_box(run(black_box(input))));
        }
        start.elapsed()
    })
}

/// [`timed`] for async work: each chunk runs in one `block_on` on `rt`, only `run(..).await`
/// is timed.
pub(crate) fn timed_async<I, O, F>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    make: impl FnMut(u64) -> I,
    mut run: impl FnMut(I) -> F,
) -> Duration
where
    F: Future<Output = O>,
{
    chunked(iters, make, |inputs, outputs| {
        rt.block_on(async {
            let start = Instant::now();
            for input in inputs.drain(..) {
                outputs.push(black_box(run(black_box(input)).await));
            }
            start.elapsed()
        })
    })
}

/// Makes inputs `CHUNK` at a time (untimed), lets `time_chunk` consume them and report its own
/// time, and drops the outputs untimed; the sum of the chunks' times.
fn chunked<I, O>(iters: u64, mut make: impl FnMut(u64) -> I, mut time_chunk: impl FnMut(&mut Vec<I>, &mut Vec<O>) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut inputs = Vec::with_capacity(CHUNK as usize);
    let mut outputs = Vec::with_capacity(CHUNK as usize);
    while done < iters {
        let n = CHUNK.min(iters - done);
        inputs.extend((done..done + n).map(&mut make));
        total += time_chunk(&mut inputs, &mut outputs);
        outputs.clear();
        done += n;
    }
    total
}

/// Whether criterion was asked to measure (`cargo bench`), not just to test or list.
pub(crate) fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

/// The same-run ratio `ours / baseline`: both are timed in alternating rounds of about
/// `round` each (the iteration count is calibrated on `ours`), and the median of the per-round
/// ratios is printed with the median time per iteration of each. Robust to a noisy machine:
/// anything that slows one round slows both halves of it.
pub(crate) fn ratio(name: &str, mut baseline: impl FnMut(u64) -> Duration, mut ours: impl FnMut(u64) -> Duration) -> f64 {
    const ROUNDS: usize = 201;
    let round = Duration::from_millis(5);
    // Calibrated on the faster of two timings, after a warm-up: one slow first call (page
    // faults, a cold cache) must not leave the rounds at a few iterations each.
    baseline(16);
    ours(16);
    let mut iters = 16u64;
    while ours(iters).min(ours(iters)) < round / 2 && iters < 1 << 24 {
        iters *= 2;
    }
    let (mut b, mut o, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        // Alternate which half goes first, so neither always runs on a warmer cache.
        let (tb, to) = if i % 2 == 0 {
            let tb = baseline(iters);
            (tb, ours(iters))
        } else {
            let to = ours(iters);
            (baseline(iters), to)
        };
        b.push(tb.as_secs_f64() / iters as f64);
        o.push(to.as_secs_f64() / iters as f64);
        r.push(to.as_secs_f64() / tb.as_secs_f64());
    }
    let (b, o, r) = (median(&mut b), median(&mut o), median(&mut r));
    // The median of the per-round ratios cancels drift between rounds; the ratio of the median
    // times is the other honest summary. On a noisy machine they differ: the larger is returned
    // (what a target is checked against).
    let of_medians = o / b;
    println!(
        "RATIO {name}: ours {} / baseline {} = {r:.3}x (median of {ROUNDS} interleaved rounds of {iters} iterations; ratio of the median times {of_medians:.3}x; overhead {} per call)",
        fmt_secs(o),
        fmt_secs(b),
        fmt_secs(o - b),
    );
    r.max(of_medians)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A duration in seconds, in ns or µs.
pub(crate) fn fmt_secs(s: f64) -> String {
    if s.abs() < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else {
        format!("{:.2} µs", s * 1e6)
    }
}
