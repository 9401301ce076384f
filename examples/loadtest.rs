//! Load benchmark over loopback HTTP, in one command:
//!
//! ```text
//! cargo run --release --all-features --example loadtest
//! ```
//!
//! An axum server on 127.0.0.1:0 with the layers in front of some routes, FakeMaskinporten and
//! FakeAltinn on loopback too, and a hyper client pool with 32 requests in flight, each scenario
//! for 3 s (bounded in count as well; the unprotected and the reused-token runs get 6 s each, in
//! 8 alternating slices in ABBA order, so that noise from other processes and whatever favours
//! the first run of a pair hit both alike). Client, server and fakes share this process and the
//! machine's cores, as with a load generator on the same host. Tokens are minted before anything
//! is timed. Prints:
//!
//! 1. requests/s and p50/p99 latency for: an unprotected route (sent the same token, which it
//!    ignores, so that the comparison is about the layers and not about a 1.2 KB header; a row
//!    without the header is printed for reference); a protected route (both layers) with one
//!    reused token (token and decision cached); a protected route with a new token on every
//!    request (pre-minted; decision cached); a protected route whose decision is not cached (PDP
//!    client with its cache off) while the fake PDP answers in 20 ms; and each figure as a ratio
//!    of the unprotected one (column `vs unprot.`); and the CPU time this process spent per
//!    request on the unprotected and the reused-token route (a steadier figure than requests/s
//!    on a shared machine);
//! 2. 1,000 concurrent identical first requests while the fake PDP answers in 50 ms, and the
//!    number of PDP calls (and provider token fetches) they caused;
//! 3. resident memory per 10,000 cached tokens and per 10,000 cached decisions (RSS from
//!    `/proc/self/statm` before and after filling the caches through the public API).
//!
//! Only loopback addresses are used. Finishes in well under a minute on two cores.

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::org::Party;
use altinn_systemuser::pdp::{AltinnPdp, AltinnToken, AltinnTokenSource, DecisionRequest, MaskinportenCredentials, PdpError, ResourceId};
use altinn_systemuser::systemuser::SystemUserLayer;
use altinn_systemuser::test_util::{ClientRegistration, DEFAULT_SCOPE, FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tower::{Layer, Service, ServiceBuilder};
use uuid::Uuid;

/// Requests in flight during the throughput scenarios.
const CONCURRENCY: usize = 32;
/// Length of each timed scenario.
const DURATION: Duration = Duration::from_secs(3);
/// Slices the unprotected and the reused-token runs alternate in (2 x `DURATION` each).
const SLICES: u32 = 8;
/// Upper bound on requests in one scenario, whatever the speed.
const MAX_REQUESTS: usize = 2_000_000;
/// Pre-minted tokens for the new-token scenario and the token-cache memory figure.
const NEW_TOKENS: usize = 10_000;
/// Concurrent identical first requests.
const BURST: usize = 1_000;
/// Entries for the memory figures.
const MEMORY_ENTRIES: usize = 10_000;

const SUBSCRIPTION_KEY: &str = "loadtest-subscription-key";
const RESOURCE: &str = "loadtestresource";
const OWNER_ORG: &str = "310702641";

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let mp = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&mp, SUBSCRIPTION_KEY).await;
    let su = Uuid::new_v4();
    altinn.permit(su, "read", RESOURCE, OWNER_ORG);

    let mp_layer = MaskinportenLayer::builder()
        .issuer(mp.issuer())
        .require_scope(DEFAULT_SCOPE)
        .build()
        .expect("layer config");
    mp_layer.keys().ready().await.expect("keys from FakeMaskinporten");
    let credentials = provider_credentials(&mp);
    let cached_pdp = pdp_builder(&altinn, &credentials).build().unwrap();
    // Every request of this scenario is a new PDP question from one system user: without the
    // per-system-user limit (which would answer most of them 429), so it measures the PDP path.
    let uncached_pdp = pdp_builder(&altinn, &credentials)
        .cache_capacity(0)
        .no_decision_rate_limit()
        .build()
        .unwrap();
    let burst_pdp = pdp_builder(&altinn, &credentials).build().unwrap();
    let su_layer = |pdp: AltinnPdp| SystemUserLayer::builder().pdp(pdp).resource(RESOURCE).build().unwrap();

    let app = Router::new()
        .route("/open", get(hello))
        .route("/slow", get(slow))
        .merge(
            Router::new()
                .route("/protected", get(hello))
                .route_layer(ServiceBuilder::new().layer(mp_layer.clone()).layer(su_layer(cached_pdp))),
        )
        .merge(
            Router::new()
                .route("/uncached", get(hello))
                .route_layer(ServiceBuilder::new().layer(mp_layer.clone()).layer(su_layer(uncached_pdp))),
        )
        .merge(
            Router::new()
                .route("/burst", get(hello))
                .route_layer(ServiceBuilder::new().layer(mp_layer.clone()).layer(su_layer(burst_pdp))),
        );
    let addr = serve(app).await;
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(120))
        .build_http();

    // Tokens are minted before anything is timed (RSA signing is slow), on every core.
    let reused = bearer(&token(&mp, su));
    let t = Instant::now();
    let fresh = Arc::new(mint(&mp, su, NEW_TOKENS).await);
    eprintln!("minted {NEW_TOKENS} tokens in {:.1} s", t.elapsed().as_secs_f64());

    // Warm up: connections, the token cache and the decision cache of /protected.
    let ok = |s: &Stats| s.ok > 0 && s.failed == 0;
    let warm = run(&client, addr, "/open", Tokens::None, Duration::from_millis(500)).await;
    assert!(ok(&warm), "warm-up of /open failed: {warm:?}");
    let warm = run(
        &client,
        addr,
        "/protected",
        Tokens::Reused(reused.clone()),
        Duration::from_millis(500),
    )
    .await;
    assert!(ok(&warm), "warm-up of /protected failed: {warm:?}");
    let pdp_calls_warm = altinn.pdp_request_count();

    // 1. Throughput. Unprotected and protected (reused token) alternate in slices, so that
    // drift of the machine (other processes) hits both alike.
    let mut open = Stats::default();
    let mut protected = Stats::default();
    let slice = DURATION * 2 / SLICES;
    let mut slice_ratios = Vec::new();
    for i in 0..SLICES {
        // The same request as the protected route gets, token included: the difference is the
        // layers, not the 1.2 KB header. The order alternates (ABBA), so that whatever favours
        // the first run of a pair favours both alike.
        let open_run = run(&client, addr, "/open", Tokens::Reused(reused.clone()), slice);
        let protected_run = run(&client, addr, "/protected", Tokens::Reused(reused.clone()), slice);
        let (o, p) = if i % 2 == 0 {
            let o = open_run.await;
            (o, protected_run.await)
        } else {
            let p = protected_run.await;
            (open_run.await, p)
        };
        slice_ratios.push(100.0 * p.rate() / o.rate());
        open.merge(o);
        protected.merge(p);
    }
    let cached_pdp_calls = altinn.pdp_request_count() - pdp_calls_warm;
    let bare = run(&client, addr, "/open", Tokens::None, DURATION).await;
    let new_tokens = run(
        &client,
        addr,
        "/protected",
        Tokens::Fresh(fresh.clone(), Arc::new(AtomicUsize::new(0))),
        DURATION,
    )
    .await;
    let cached_pdp_calls_all = altinn.pdp_request_count() - pdp_calls_warm;
    altinn.set_delay(Duration::from_millis(20));
    let before = altinn.pdp_request_count();
    let uncached = run(&client, addr, "/uncached", Tokens::Reused(reused.clone()), DURATION).await;
    let uncached_pdp_calls = altinn.pdp_request_count() - before;

    println!();
    println!(
        "Loopback load test: {CONCURRENCY} requests in flight, {} s per scenario",
        DURATION.as_secs()
    );
    println!(
        "(unprotected and protected+reused: {} s each, in {SLICES} alternating slices, summed)",
        (DURATION * 2).as_secs()
    );
    println!();
    println!(
        "| {:<52} | {:>9} | {:>10} | {:>10} | {:>9} | {:>8} | {:>10} |",
        "scenario", "requests", "req/s", "p50", "p99", "failed", "vs unprot."
    );
    println!(
        "|{:-<54}|{:->11}|{:->12}|{:->12}|{:->11}|{:->10}|{:->12}|",
        "", "", "", "", "", "", ""
    );
    let rows = [
        ("unprotected route, no Authorization header", &bare),
        ("unprotected route (same token sent, ignored)", &open),
        ("protected, reused token (token + decision cached)", &protected),
        ("protected, new token every request (decision cached)", &new_tokens),
        ("protected, decision not cached, PDP answers in 20 ms", &uncached),
    ];
    for (name, s) in rows {
        println!(
            "| {:<52} | {:>9} | {:>10.0} | {:>10} | {:>9} | {:>8} | {:>10} |",
            name,
            s.ok,
            s.rate(),
            fmt_us(s.percentile(0.50)),
            fmt_us(s.percentile(0.99)),
            s.failed,
            format!("{:.1}%", 100.0 * s.rate() / open.rate()),
        );
    }
    println!();
    println!(
        "latency ratio vs unprotected: p50 {:.2}x / {:.2}x / {:.2}x, p99 {:.2}x / {:.2}x / {:.2}x (reused / new token / uncached)",
        ratio(protected.percentile(0.5), open.percentile(0.5)),
        ratio(new_tokens.percentile(0.5), open.percentile(0.5)),
        ratio(uncached.percentile(0.5), open.percentile(0.5)),
        ratio(protected.percentile(0.99), open.percentile(0.99)),
        ratio(new_tokens.percentile(0.99), open.percentile(0.99)),
        ratio(uncached.percentile(0.99), open.percentile(0.99)),
    );
    println!(
        "CPU per request (client, server and fakes in this process): unprotected {:.1} µs, protected with reused token {:.1} µs: \
         the layers cost {:.1} µs of CPU per request; throughput per CPU-second {:.1}% of unprotected",
        open.cpu_per_request(),
        protected.cpu_per_request(),
        protected.cpu_per_request() - open.cpu_per_request(),
        100.0 * open.cpu_per_request() / protected.cpu_per_request(),
    );
    println!(
        "PDP calls: {cached_pdp_calls} during the reused-token rounds, {cached_pdp_calls_all} after the new-token run too \
         (decision cached); {uncached_pdp_calls} for {} uncached requests",
        uncached.ok + uncached.failed
    );
    let reuse = 100.0 * protected.rate() / open.rate();
    let shown: Vec<String> = slice_ratios.iter().map(|r| format!("{r:.0}%")).collect();
    slice_ratios.sort_by(f64::total_cmp);
    println!(
        "protected/unprotected per slice pair: {} (median {:.0}%)",
        shown.join(" "),
        slice_ratios[slice_ratios.len() / 2]
    );
    println!(
        "TARGET protected (reused token, cached decision) >= 90% of unprotected throughput: {} ({reuse:.1}%)",
        if reuse >= 90.0 { "met" } else { "MISSED" }
    );

    // 2. Concurrent identical first requests: one PDP call, however many wait for it.
    altinn.set_delay(Duration::from_millis(50));
    let burst_su = Uuid::new_v4();
    altinn.permit(burst_su, "read", RESOURCE, OWNER_ORG);
    let burst_token = bearer(&token(&mp, burst_su));
    burst(&client, addr, &mp, &altinn, burst_token).await;

    // 3. Memory per cached entry. Whatever is measured stays alive until the end: memory a
    // dropped cache gave back to the allocator would otherwise be reused by the next one and
    // hide its growth.
    println!();
    let keep_decisions = memory_decisions().await;
    let keep_tokens = memory_tokens(&mp, &fresh).await;
    println!();
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    drop((keep_decisions, keep_tokens));
}

async fn hello() -> &'static str {
    "ok"
}

/// Holds the connection a while, so that many requests to it open many connections.
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    "ok"
}

/// Serves `app` on 127.0.0.1:0 (bound before this returns).
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    addr
}

fn provider_credentials(mp: &FakeMaskinporten) -> MaskinportenCredentials {
    let key = TestKey::for_role(KeyRole::Provider).with_kid("loadtest-provider-key");
    mp.register_client(ClientRegistration::new(
        "loadtest-provider",
        &key,
        "991825827",
        &["altinn:authorization/authorize"],
    ));
    MaskinportenCredentials::builder()
        .issuer(mp.issuer())
        .client_id("loadtest-provider")
        .private_key_pem(key.private_key_pkcs8_pem().as_bytes())
        .key_id(key.kid())
        .build()
        .unwrap()
}

fn pdp_builder(altinn: &FakeAltinn, credentials: &MaskinportenCredentials) -> altinn_systemuser::pdp::AltinnPdpBuilder {
    AltinnPdp::builder()
        .platform_url(altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .credentials(credentials.clone())
}

/// A system-user token for `su`, valid for ten minutes (longer than this program runs).
fn token(mp: &FakeMaskinporten, su: Uuid) -> String {
    mp.system_user_token(su, OWNER_ORG).lifetime(Duration::from_secs(600)).sign()
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

/// `n` distinct tokens for `su`, signed on all cores.
async fn mint(mp: &FakeMaskinporten, su: Uuid, n: usize) -> Vec<HeaderValue> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let per = n.div_ceil(threads);
    let tasks: Vec<_> = (0..threads)
        .map(|i| {
            let mp = mp.clone();
            let count = per.min(n.saturating_sub(i * per));
            tokio::task::spawn_blocking(move || (0..count).map(|_| bearer(&token(&mp, su))).collect::<Vec<_>>())
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// What each request carries.
#[derive(Clone)]
enum Tokens {
    None,
    Reused(HeaderValue),
    /// Each token once, in order; the scenario ends when they run out.
    Fresh(Arc<Vec<HeaderValue>>, Arc<AtomicUsize>),
}

#[derive(Debug, Default)]
struct Stats {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    /// CPU time this process used meanwhile (client, server and fakes together).
    cpu: Duration,
    /// Latencies of successful requests, µs.
    latencies: Vec<u32>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
    }

    /// CPU time per successful request, µs.
    fn cpu_per_request(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }

    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> u32 {
        if self.latencies.is_empty() {
            return 0;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i]
    }
}

fn fmt_us(us: u32) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", f64::from(us) / 1000.0)
    } else {
        format!("{us} µs")
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    f64::from(a) / f64::from(b.max(1))
}

fn get_req(addr: SocketAddr, path: &str, auth: Option<&HeaderValue>) -> Request<Empty<Bytes>> {
    let uri: Uri = format!("http://{addr}{path}").parse().unwrap();
    let mut req = Request::get(uri).body(Empty::new()).unwrap();
    if let Some(v) = auth {
        req.headers_mut().insert(AUTHORIZATION, v.clone());
    }
    req
}

/// Sends one request and reads the whole answer; the status, or 0 when it failed.
async fn send(client: &HttpClient, req: Request<Empty<Bytes>>) -> u16 {
    match client.request(req).await {
        Ok(res) => {
            let status = res.status().as_u16();
            match res.into_body().collect().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    }
}

/// `CONCURRENCY` closed-loop workers for `duration` (or until `MAX_REQUESTS`, or until the
/// fresh tokens run out).
async fn run(client: &HttpClient, addr: SocketAddr, path: &'static str, tokens: Tokens, duration: Duration) -> Stats {
    // Let the previous run's connections go back to the pool first, so that no run opens new
    // connections because the one before it just ended.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let issued = Arc::new(AtomicUsize::new(0));
    let cpu_start = cpu_time();
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, tokens, issued) = (client.clone(), tokens.clone(), issued.clone());
            tokio::spawn(async move {
                let mut s = Stats::default();
                while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
                    let auth = match &tokens {
                        Tokens::None => None,
                        Tokens::Reused(v) => Some(v.clone()),
                        Tokens::Fresh(all, next) => match all.get(next.fetch_add(1, Ordering::Relaxed)) {
                            Some(v) => Some(v.clone()),
                            None => break,
                        },
                    };
                    let req = get_req(addr, path, auth.as_ref());
                    let t = Instant::now();
                    let status = send(&client, req).await;
                    let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    if status == 200 {
                        s.ok += 1;
                        s.latencies.push(us);
                    } else {
                        s.failed += 1;
                    }
                }
                s
            })
        })
        .collect();
    let mut total = Stats::default();
    let mut per_worker = Vec::with_capacity(CONCURRENCY);
    for w in workers {
        per_worker.push(w.await.unwrap());
    }
    total.elapsed = start.elapsed();
    total.cpu = cpu_time().saturating_sub(cpu_start);
    for s in per_worker {
        total.merge(s);
    }
    total
}

/// `BURST` connections opened first, then `BURST` identical requests released at once, for a
/// decision nobody has asked about yet.
async fn burst(client: &HttpClient, addr: SocketAddr, mp: &FakeMaskinporten, altinn: &FakeAltinn, token: HeaderValue) {
    // Open the connections first: BURST requests to a route that holds each for 300 ms, so
    // that the burst itself finds BURST idle connections and does not wait for connects.
    let opens: Vec<_> = (0..BURST)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { send(&client, get_req(addr, "/slow", None)).await })
        })
        .collect();
    let mut opened = 0;
    for o in opens {
        opened += usize::from(o.await.unwrap() == 200);
    }
    let (pdp_before, grants_before, exchanges_before) = (altinn.pdp_request_count(), mp.token_requests(), altinn.exchange_count());
    let go = Arc::new(tokio::sync::Barrier::new(BURST + 1));
    let tasks: Vec<_> = (0..BURST)
        .map(|_| {
            let (client, go, token) = (client.clone(), go.clone(), token.clone());
            tokio::spawn(async move {
                let req = get_req(addr, "/burst", Some(&token));
                go.wait().await;
                let t = Instant::now();
                (send(&client, req).await, t.elapsed())
            })
        })
        .collect();
    let start = Instant::now();
    go.wait().await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (status, took) = t.await.unwrap();
        *statuses.entry(status).or_default() += 1;
        slowest = slowest.max(took);
    }
    let all_done = start.elapsed();
    let pdp_calls = altinn.pdp_request_count() - pdp_before;
    println!();
    println!("Burst: {BURST} concurrent identical first requests ({opened} connections opened first), fake PDP answering in 50 ms:");
    println!(
        "  statuses {statuses:?}, all answered in {:.1} ms (slowest {:.1} ms)",
        all_done.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );
    println!(
        "  PDP calls: {pdp_calls}; provider token grants: {}, Altinn token exchanges: {} (first use of this PDP client)",
        mp.token_requests() - grants_before,
        altinn.exchange_count() - exchanges_before
    );
    println!(
        "TARGET exactly one PDP call per distinct decision: {}",
        if pdp_calls == 1 { "met" } else { "MISSED" }
    );
}

/// Resident set size now, bytes (`/proc/self/statm`, second field, in pages of 4 KiB).
/// CPU time (user + system) of this process so far, from `/proc/self/stat` (clock ticks of
/// 10 ms, as on every Linux this runs on).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |i: usize| after.split_whitespace().nth(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line: the 12th and 13th after the name.
    Duration::from_millis((field(11) + field(12)) * 10)
}

fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// The trivial service behind the layer for the memory figures.
#[derive(Clone, Copy)]
struct Ok200;

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

/// Sends every token through a fresh `MaskinportenLayer` service (in process, synchronously:
/// keys are cached) and reports the RSS it grew by.
fn fill_tokens(layer: &MaskinportenLayer, tokens: &[HeaderValue]) -> usize {
    let mut svc = layer.layer(Ok200);
    let mut ok = 0;
    for t in tokens {
        let mut req = Request::new(());
        req.headers_mut().insert(AUTHORIZATION, t.clone());
        let res = svc.call(req).now_or_never().expect("keys are cached").unwrap();
        ok += usize::from(res.status() == 200);
    }
    ok
}

async fn memory_tokens(mp: &FakeMaskinporten, tokens: &[HeaderValue]) -> Vec<MaskinportenLayer> {
    let layer = |cap| {
        MaskinportenLayer::builder()
            .issuer(mp.issuer())
            .require_scope(DEFAULT_SCOPE)
            .token_cache_capacity(cap)
            .build()
            .unwrap()
    };
    let tokens = &tokens[..MEMORY_ENTRIES.min(tokens.len())];
    // Warm the allocator on the same path without a cache.
    let uncached = layer(0);
    uncached.keys().ready().await.unwrap();
    fill_tokens(&uncached, &tokens[..1000.min(tokens.len())]);

    let full = layer(MEMORY_ENTRIES as u64);
    full.keys().ready().await.unwrap();
    let before = rss();
    let ok = fill_tokens(&full, tokens);
    let grown = rss().saturating_sub(before);
    // Same tokens again: all hits, no growth.
    let before_hits = rss();
    let ok_hits = fill_tokens(&full, tokens);
    let grown_hits = rss().saturating_sub(before_hits);
    println!(
        "Token cache (capacity {MEMORY_ENTRIES}): {ok} tokens verified and cached, RSS +{:.2} MiB = {} bytes per cached token \
         (token length {} bytes); the same {ok_hits} again (hits): RSS +{} KiB",
        grown as f64 / (1 << 20) as f64,
        grown / ok.max(1) as u64,
        tokens[0].len() - "Bearer ".len(),
        grown_hits / 1024,
    );
    // Bounded: a cache capped at half takes the same tokens and grows about half as much.
    let half = layer(MEMORY_ENTRIES as u64 / 2);
    half.keys().ready().await.unwrap();
    let before = rss();
    fill_tokens(&half, tokens);
    let grown_half = rss().saturating_sub(before);
    println!(
        "Token cache (capacity {}): the same {} tokens, RSS +{:.2} MiB ({:.0}% of the uncapped figure: bounded by the cap)",
        MEMORY_ENTRIES / 2,
        tokens.len(),
        grown_half as f64 / (1 << 20) as f64,
        100.0 * grown_half as f64 / grown.max(1) as f64,
    );
    vec![full, half]
}

/// Asks every question, `CONCURRENCY` at a time; the number of permits.
async fn fill_decisions(pdp: &AltinnPdp, asks: &[DecisionRequest]) -> usize {
    futures_util::stream::iter(asks)
        .map(|a| pdp.decide(a))
        .buffer_unordered(CONCURRENCY)
        .filter(|d| std::future::ready(matches!(d, Ok(d) if d.is_permit())))
        .count()
        .await
}

/// A token source for the stub PDP, which does not check tokens.
struct StubToken;

impl AltinnTokenSource for StubToken {
    fn token(&self, _force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
        Box::pin(async { Ok(AltinnToken::new("stub", SystemTime::now() + Duration::from_secs(1800))) })
    }
}

/// Fills a fresh `AltinnPdp` with `MEMORY_ENTRIES` decisions through `decide` and reports the
/// RSS it grew by. The PDP here is a stub on loopback that permits everything and records
/// nothing (FakeAltinn keeps every request it gets, which would count as cache memory).
async fn memory_decisions() -> AltinnPdp {
    let stub = Router::new().route(
        "/authorization/api/v1/authorize",
        post(|| async {
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                r#"{"response":[{"decision":"Permit"}]}"#,
            )
        }),
    );
    let addr = serve(stub).await;
    let http = reqwest::Client::builder().build().unwrap();
    let pdp = |cap: u64| {
        AltinnPdp::builder()
            .platform_url(format!("http://{addr}"))
            .token_source(StubToken)
            .http_client(http.clone())
            .cache_capacity(cap)
            // One system user per question: no rate-limit buckets in the figure.
            .no_decision_rate_limit()
            .build()
            .unwrap()
    };
    let resource = ResourceId::new(RESOURCE).unwrap();
    let party = Party::parse(OWNER_ORG).unwrap();
    let asks: Vec<DecisionRequest> = (0..MEMORY_ENTRIES as u64)
        .map(|i| {
            DecisionRequest::new(
                Uuid::from_u64_pair(7, i),
                altinn_systemuser::pdp::Action::read(),
                resource.clone(),
                party,
            )
        })
        .collect();
    // Warm the HTTP path and the allocator without a cache.
    fill_decisions(&pdp(0), &asks[..2000]).await;
    let cached = pdp(MEMORY_ENTRIES as u64);
    let before = rss();
    let ok = fill_decisions(&cached, &asks).await;
    let grown = rss().saturating_sub(before);
    let before_hits = rss();
    let ok_hits = fill_decisions(&cached, &asks).await;
    let grown_hits = rss().saturating_sub(before_hits);
    println!(
        "Decision cache (capacity {MEMORY_ENTRIES}): {ok} decisions fetched and cached, RSS +{:.2} MiB = {} bytes per cached decision; \
         the same {ok_hits} again (hits): RSS +{} KiB",
        grown as f64 / (1 << 20) as f64,
        grown / ok.max(1) as u64,
        grown_hits / 1024,
    );
    cached
}
