//! Profiling aid (not committed): cold validations in a loop.
#[path = "../benches/common/mod.rs"]
mod common;
use common::*;
use futures_util::FutureExt;
use tower::{Layer, Service};
use uuid::Uuid;

#[inline(never)]
fn run_all(svc: &mut impl Service<http::Request<()>, Response = http::Response<altinn_systemuser::ResponseBody<()>>, Error = std::convert::Infallible, Future = impl std::future::Future<Output = Result<http::Response<altinn_systemuser::ResponseBody<()>>, std::convert::Infallible>>>, reqs: Vec<http::Request<()>>) -> usize {
    let mut ok = 0;
    for r in reqs {
        let res = svc.call(r).now_or_never().unwrap().unwrap();
        ok += (res.status() == 200) as usize;
    }
    ok
}

fn main() {
    let iters: usize = std::env::var("ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let ntok: usize = std::env::var("NTOK").ok().and_then(|s| s.parse().ok()).unwrap_or(128);
    let rt = runtime();
    let _enter = rt.enter();
    let mp = rt.block_on(altinn_systemuser::test_util::FakeMaskinporten::start());
    let layer = maskinporten_layer(&mp, 16);
    rt.block_on(layer.keys().ready()).unwrap();
    let mut svc = layer.layer(Ok200);
    let bearers: Vec<_> = (0..ntok).map(|_| bearer(&token(&mp, Uuid::new_v4()))).collect();
    let reqs: Vec<_> = (0..iters).map(|i| request(&bearers[i % ntok])).collect();
    println!("{}", run_all(&mut svc, reqs));
}
