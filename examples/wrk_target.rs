//! The server `benches/wrk.sh` measures from outside: one axum server on 127.0.0.1 with the same
//! trivial handler on `/open` (no layers) and on `/protected` (both layers, token and decision
//! cached after the first request), FakeMaskinporten and FakeAltinn embedded.
//!
//! ```text
//! cargo run --release --features test-util,axum --example wrk_target
//! ```
//!
//! Prints `ADDR=127.0.0.1:PORT` and `TOKEN=<a system-user token valid for one hour>`, then serves
//! until killed. `WORKERS=N` sets the number of Tokio worker threads (default 2: this machine's
//! cores). Both routes should be sent the same `Authorization` header, so that the only
//! difference is the layers.

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::reject::RefusalForm;
use altinn_systemuser::stack::AuthLayer;
use altinn_systemuser::systemuser::SystemUserLayer;
use altinn_systemuser::test_util::{FakeAltinn, FakeMaskinporten};
use axum::Router;
use axum::routing::get;
use std::io::Write;
use std::time::Duration;
use uuid::Uuid;

const SCOPE: &str = "skatteetaten:kravogbetalinger";
const RESOURCE: &str = "kravogbetaling";
const OWNER: &str = "310702641";

fn main() {
    let workers = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(serve());
}

async fn serve() {
    let mp = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&mp, "wrk-subscription-key").await;
    let pdp = altinn.pdp_client(&mp, "wrk-provider");
    let maskinporten = MaskinportenLayer::builder()
        .issuer(mp.issuer())
        .require_scope(SCOPE)
        .refusal_form(RefusalForm::Http)
        .build()
        .expect("layer");
    let system_user = SystemUserLayer::builder()
        .pdp(pdp)
        .resource(RESOURCE)
        .refusal_form(RefusalForm::Http)
        .build()
        .expect("layer");
    let su = Uuid::new_v4();
    altinn.permit(su, "read", RESOURCE, OWNER);
    let token = mp
        .system_user_token(su, OWNER)
        .scope(SCOPE)
        .lifetime(Duration::from_secs(3600))
        .sign();

    async fn ok() -> &'static str {
        "ok"
    }
    let app = Router::new()
        .route("/protected", get(ok))
        .route_layer(AuthLayer::new(maskinporten, system_user))
        .route("/open", get(ok));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");

    // Warm both caches with one request before anyone measures.
    let warm = reqwest::Client::new();
    let server = tokio::spawn(axum::serve(listener, app).into_future());
    let status = warm
        .get(format!("http://{addr}/protected"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("warm-up request")
        .status();
    assert_eq!(status, 200, "the warm-up request must pass");
    println!("ADDR={addr}");
    println!("TOKEN={token}");
    std::io::stdout().flush().ok();
    let _ = server.await;
}
