//! What the layers tell an operations team, against FakeMaskinporten and FakeAltinn on
//! 127.0.0.1:0: the audit events (captured by a test subscriber), the request span's fields
//! (through a real `tower_http` `TraceLayer` with `telemetry::make_span`), the metrics (under a
//! `metrics-util` debugging recorder), and that no token, key or person identifier appears in
//! any of it.
//!
//! Subscribers and recorders are set for the test's own thread only; `#[tokio::test]` runs on a
//! current-thread runtime, so the tasks the layers spawn (a shared PDP call, a key refresh) run
//! on that thread too.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod capture;
#[cfg(feature = "metrics")]
mod metrics;
mod secrets;
mod spans;

use altinn_systemuser::maskinporten::{MaskinportenLayer, MaskinportenLayerBuilder};
use altinn_systemuser::pdp::AltinnPdpBuilder;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer, SystemUserLayerBuilder};
use altinn_systemuser::telemetry;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::Request;
use support::{API_SCOPE, Fakes, RESOURCE, Reply, send};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The audit target, written out: the contract, not the constant.
const AUDIT: &str = "altinn_systemuser::audit";

/// The fakes and an app behind both layers and a `TraceLayer` with the crate's span.
struct Env {
    fakes: Fakes,
    app: Router,
}

impl Env {
    /// `GET path` with this bearer token.
    async fn get(&self, path: &str, token: &str) -> Reply {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        send(&self.app, req).await
    }
}

/// `/krav/{party}` (any method; the party from the path) behind `SystemUserLayer`, behind
/// `MaskinportenLayer`, inside `TraceLayer::new_for_http().make_span_with(telemetry::make_span)`
/// whose response event is at `INFO`.
async fn setup_with(
    maskinporten: impl FnOnce(MaskinportenLayerBuilder) -> MaskinportenLayerBuilder,
    system_user: impl FnOnce(SystemUserLayerBuilder) -> SystemUserLayerBuilder,
    pdp: impl FnOnce(AltinnPdpBuilder) -> AltinnPdpBuilder,
) -> Env {
    let fakes = Fakes::start().await;
    let pdp = pdp(fakes.pdp_builder()).build().unwrap();
    let system_user: SystemUserLayer = system_user(
        SystemUserLayer::builder()
            .pdp(pdp)
            .resource(RESOURCE)
            .party_from_path("/krav/{party}"),
    )
    .build()
    .unwrap();
    let maskinporten: MaskinportenLayer = maskinporten(MaskinportenLayer::builder().issuer(fakes.mp.issuer()).require_scope(API_SCOPE))
        .build()
        .unwrap();
    let trace = TraceLayer::new_for_http()
        .make_span_with(telemetry::make_span)
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    let app = Router::new()
        .route("/krav/{party}", any(|su: SystemUser| async move { su.id().to_string() }))
        .route_layer(system_user)
        .route_layer(maskinporten)
        .layer(trace);
    Env { fakes, app }
}

async fn setup() -> Env {
    setup_with(|m| m, |s| s, |p| p).await
}

/// The same token with the first character of its signature changed: well formed, unverifiable.
fn broken(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    format!("{rest}.{flipped}{}", &sig[1..])
}
