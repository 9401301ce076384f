//! A tonic gRPC service behind both layers, as a self-checking demo.
//!
//! ```text
//! cargo run --example grpc
//! ```
//!
//! It starts a FakeMaskinporten and a FakeAltinn on loopback, serves the unary method
//! `/krav.v1.Krav/WhoAmI` (hand-written prost messages: no `protoc` needed) behind
//! `MaskinportenLayer` and `SystemUserLayer`, reads the `SystemUser` inside the handler, and
//! calls it three times: a permitted system user (OK), a system user without the right
//! (PERMISSION_DENIED from the PDP), and a broken token (UNAUTHENTICATED). It exits non-zero if
//! any answer is not the expected one.

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::reject::RefusalForm;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::test_util::{FakeAltinn, FakeMaskinporten};
use http::uri::PathAndQuery;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;
use uuid::Uuid;

/// `krav.v1.WhoAmIRequest {}`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WhoAmIRequest {}

/// `krav.v1.WhoAmIReply { system_user_id = 1; party = 2; action = 3; system_id = 4; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WhoAmIReply {
    #[prost(string, tag = "1")]
    pub(crate) system_user_id: String,
    #[prost(string, tag = "2")]
    pub(crate) party: String,
    #[prost(string, tag = "3")]
    pub(crate) action: String,
    #[prost(string, tag = "4")]
    pub(crate) system_id: String,
}

pub(crate) const WHOAMI: &str = "/krav.v1.Krav/WhoAmI";

/// The handler: reads the authorized `SystemUser` from the request extensions.
async fn who_am_i(request: Request<WhoAmIRequest>) -> Result<Response<WhoAmIReply>, Status> {
    let Some(user) = request.extensions().get::<SystemUser>() else {
        return Err(Status::internal("SystemUserLayer is missing"));
    };
    Ok(Response::new(WhoAmIReply {
        system_user_id: user.id().to_string(),
        party: user.owner_org().to_string(),
        action: user.action().to_string(),
        system_id: user.system_id().to_owned(),
    }))
}

/// The `krav.v1.Krav` service, as tonic-build would generate it, by hand.
#[derive(Clone, Default)]
pub(crate) struct KravServer;

impl NamedService for KravServer {
    const NAME: &'static str = "krav.v1.Krav";
}

impl tower::Service<http::Request<Body>> for KravServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() == WHOAMI {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<WhoAmIReply, WhoAmIRequest>::default());
                Ok(grpc.unary(tower::service_fn(who_am_i), req).await)
            } else {
                Ok(Status::unimplemented("no such method").into_http())
            }
        })
    }
}

/// Everything the demo runs, started on loopback.
pub(crate) struct Demo {
    pub(crate) maskinporten: FakeMaskinporten,
    pub(crate) altinn: FakeAltinn,
    pub(crate) url: String,
    pub(crate) permitted: Uuid,
    pub(crate) not_permitted: Uuid,
}

pub(crate) async fn start() -> Result<Demo, Box<dyn std::error::Error>> {
    let maskinporten = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&maskinporten, "grpc-demo-key").await;
    let pdp = altinn.pdp_client(&maskinporten, "grpc-provider");
    let permitted = Uuid::new_v4();
    let not_permitted = Uuid::new_v4();
    altinn.permit(permitted, "read", "kravogbetaling", "310702641");

    let mp_layer = MaskinportenLayer::builder()
        .issuer(maskinporten.issuer())
        .require_scope("skatteetaten:kravogbetalinger")
        // A gRPC-only server: every refusal is a gRPC status, whatever the content type.
        .refusal_form(RefusalForm::Grpc)
        .build()?;
    let su_layer = SystemUserLayer::builder()
        .pdp(pdp)
        .resource("kravogbetaling")
        .grpc_method(WHOAMI, "read")
        .refusal_form(RefusalForm::Grpc)
        .build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        // The first layer added is the outermost: Maskinporten runs first.
        let server = tonic::transport::Server::builder()
            .layer(mp_layer)
            .layer(su_layer)
            .add_service(KravServer);
        if let Err(e) = server.serve_with_incoming(incoming).await {
            eprintln!("grpc server: {e}");
        }
    });
    Ok(Demo {
        maskinporten,
        altinn,
        url,
        permitted,
        not_permitted,
    })
}

/// Calls WhoAmI with `Authorization: Bearer <token>` metadata.
pub(crate) async fn call(url: &str, token: &str) -> Result<WhoAmIReply, Status> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .map_err(|e| Status::internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(WhoAmIRequest {});
    let bearer = format!("Bearer {token}").parse().map_err(|_| Status::internal("bad token"))?;
    request.metadata_mut().insert("authorization", bearer);
    let codec = ProstCodec::<WhoAmIRequest, WhoAmIReply>::default();
    client
        .unary(request, PathAndQuery::from_static(WHOAMI), codec)
        .await
        .map(Response::into_inner)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = start().await?;
    let scope = "skatteetaten:kravogbetalinger";
    let ok = demo.maskinporten.system_user_token(demo.permitted, "310702641").scope(scope).sign();
    let denied = demo
        .maskinporten
        .system_user_token(demo.not_permitted, "310702641")
        .scope(scope)
        .sign();

    let mut failures = 0;
    match call(&demo.url, &ok).await {
        Ok(reply) => println!("permitted system user: OK {reply:?}"),
        Err(s) => {
            failures += 1;
            println!("permitted system user: unexpected {:?} {}", s.code(), s.message());
        }
    }
    for (what, token, want) in [
        ("system user without the right", denied, Code::PermissionDenied),
        ("broken token", "a.b.c".into(), Code::Unauthenticated),
    ] {
        match call(&demo.url, &token).await {
            Err(s) if s.code() == want => println!("{what}: {:?} ({})", s.code(), s.message()),
            other => {
                failures += 1;
                println!("{what}: expected {want:?}, got {other:?}");
            }
        }
    }
    println!("PDP calls: {}", demo.altinn.pdp_request_count());
    if failures > 0 {
        return Err(format!("{failures} unexpected answers").into());
    }
    println!("all answers as expected");
    Ok(())
}
