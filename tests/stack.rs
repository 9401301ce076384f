//! `AuthLayer`: both layers in one call, in axum and in tonic (with the real `tonic-health`
//! service), and exempt paths that skip both without a principal while every other path still
//! needs a token and a Permit. FakeMaskinporten and FakeAltinn over loopback HTTP.

mod support;

use altinn_systemuser::stack::{AuthLayer, GRPC_HEALTH_PATHS};
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::{ConfigErrorKind, maskinporten::MaskinportenToken};
use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use std::time::Duration;
use support::{Fakes, OWNER_ORG, RESOURCE, get_with_token, send};
use tonic::Code;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use uuid::Uuid;

/// What the handler saw: whether a token and a system user were in the extensions.
async fn seen(token: Option<Extension<MaskinportenToken>>, su: Option<Extension<SystemUser>>) -> String {
    format!(
        "token={} system_user={}",
        token.is_some(),
        su.map(|s| s.id().to_string()).unwrap_or_default()
    )
}

fn text(r: &support::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn system_user_layer(fakes: &Fakes) -> SystemUserLayer {
    SystemUserLayer::builder().pdp(fakes.pdp()).resource(RESOURCE).build().unwrap()
}

#[tokio::test]
async fn both_layers_in_one_call_with_an_exempt_health_path() {
    let fakes = Fakes::start().await;
    let auth = AuthLayer::builder(fakes.maskinporten_layer(), system_user_layer(&fakes))
        .exempt_path("/healthz")
        .build()
        .unwrap();
    assert!(auth.is_exempt("/healthz") && !auth.is_exempt("/healthz/") && !auth.is_exempt("/whoami"));
    let app = Router::new()
        .route("/whoami", get(seen))
        .route("/healthz", get(seen))
        .route("/healthz/", get(seen))
        .route_layer(auth);

    // The exempt path: no token needed, no principal given, no PDP call.
    let r = send(&app, http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(text(&r), "token=false system_user=");
    // A token sent to an exempt path is not checked, and gives no principal either.
    let r = get_with_token(&app, "/healthz", "not-a-token").await;
    assert_eq!((r.status, text(&r)), (200, "token=false system_user=".to_owned()));
    // Exact match only: another spelling is not exempt.
    let r = send(&app, http::Request::get("/healthz/").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401);
    let r = send(&app, http::Request::get("/whoami").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401);
    assert_eq!(fakes.altinn.pdp_request_count(), 0);

    // Every other path: both layers, in order.
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let r = get_with_token(&app, "/whoami", &fakes.system_user_token(su)).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(text(&r), format!("token=true system_user={su}"));
    let r = get_with_token(&app, "/whoami", &fakes.system_user_token(Uuid::new_v4())).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn without_exempt_paths_every_path_needs_a_token() {
    let fakes = Fakes::start().await;
    let app = Router::new()
        .route("/healthz", get(seen))
        .route_layer(AuthLayer::new(fakes.maskinporten_layer(), system_user_layer(&fakes)));
    let r = send(&app, http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn exempt_paths_are_checked() {
    let fakes = Fakes::start().await;
    for bad in ["healthz", "/a?b", "/a/../b", "//a", "/a%2Fb", "/a b", ""] {
        let e = AuthLayer::builder(fakes.maskinporten_layer(), system_user_layer(&fakes))
            .exempt_path(bad)
            .build()
            .unwrap_err();
        assert_eq!((e.field(), e.kind()), ("exempt_path", ConfigErrorKind::Invalid), "{bad:?}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("/p{i}")).collect();
    let e = AuthLayer::builder(fakes.maskinporten_layer(), system_user_layer(&fakes))
        .exempt_paths(many)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "exempt_path");
}

/// tonic's own health service behind `AuthLayer`, with `Check` exempt: the health check needs no
/// token, while `Watch` (every other method) still needs a token and a Permit.
#[tokio::test]
async fn tonic_health_check_passes_without_a_token_and_other_methods_do_not() {
    let fakes = Fakes::start().await;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let system_user = SystemUserLayer::builder()
        .pdp(fakes.pdp())
        .resource(RESOURCE)
        .grpc_method(GRPC_HEALTH_PATHS[1], "read")
        .build()
        .unwrap();
    let auth = AuthLayer::builder(fakes.maskinporten_layer(), system_user)
        .exempt_path(GRPC_HEALTH_PATHS[0])
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(auth)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let request = |token: Option<&str>| {
        let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
        if let Some(t) = token {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        req
    };

    let answer: HealthCheckResponse = client.check(request(None)).await.unwrap().into_inner();
    assert_eq!(answer.status, ServingStatus::Serving as i32);

    let refused = client.watch(request(None)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let refused = client
        .watch(request(Some(&fakes.system_user_token(Uuid::new_v4()))))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let mut stream = client
        .watch(request(Some(&fakes.system_user_token(su))))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    assert_eq!(fakes.altinn.pdp_request_count(), 2, "the exempt Check asked nothing");
}
