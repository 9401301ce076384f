//! Both layers in front of a real tonic server over loopback HTTP/2: a hand-written
//! `grpc.health.v1.Health` service that reads the `SystemUser` from the request's extensions,
//! called by tonic's generated client with the bearer token as metadata. FakeMaskinporten and
//! FakeAltinn on 127.0.0.1:0; the PDP client uses its real credentials flow.

mod support;

use altinn_systemuser::org::Party;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::test_util::{KeyRole, PdpAnswer, TestKey};
use futures_util::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use support::{Fakes, OWNER_ORG, RESOURCE, attributes};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use uuid::Uuid;

const CHECK: &str = "/grpc.health.v1.Health/Check";

// ---------------------------------------------------------------------------------------------
// The service: a health check that records who called it
// ---------------------------------------------------------------------------------------------

/// Every `SystemUser` the service was called with.
type Seen = Arc<Mutex<Vec<SystemUser>>>;

struct HealthWithIdentity {
    seen: Seen,
}

#[tonic::async_trait]
impl Health for HealthWithIdentity {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        // The system-user layer put the authorized principal in the extensions.
        let Some(su) = request.extensions().get::<SystemUser>().cloned() else {
            return Err(Status::internal("no SystemUser in the request extensions"));
        };
        self.seen.lock().unwrap().push(su);
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(&self, _request: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not reached: Watch is not in the layer's method table"))
    }
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

struct Env {
    fakes: Fakes,
    seen: Seen,
    client: HealthClient<Channel>,
}

impl Env {
    async fn check(&self, token: Option<&str>) -> Result<HealthCheckResponse, Status> {
        let mut req = Request::new(HealthCheckRequest { service: String::new() });
        if let Some(t) = token {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        self.client.clone().check(req).await.map(Response::into_inner)
    }

    fn seen(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// The tonic server on 127.0.0.1:0 behind `MaskinportenLayer` (outermost) and
/// `SystemUserLayer`, which maps only `Check` to the action `read`.
async fn setup() -> Env {
    let fakes = Fakes::start().await;
    let system_user = SystemUserLayer::builder()
        .pdp(fakes.pdp())
        .resource(RESOURCE)
        .grpc_method(CHECK, "read")
        .build()
        .unwrap();
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .layer(fakes.maskinporten_layer())
        .layer(system_user)
        .add_service(HealthServer::new(HealthWithIdentity { seen: seen.clone() }))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    Env {
        fakes,
        seen,
        client: HealthClient::new(channel),
    }
}

fn assert_code(r: Result<HealthCheckResponse, Status>, code: Code) -> Status {
    let status = r.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    status
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn permitted_call_is_ok_and_the_service_sees_the_system_user() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let answer = env.check(Some(&env.fakes.system_user_token(su))).await.unwrap();
    assert_eq!(answer.status, ServingStatus::Serving as i32);

    let seen = env.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id(), su);
    assert_eq!(seen[0].owner_org().to_string(), OWNER_ORG);
    assert_eq!(seen[0].action().as_str(), "read");
    assert_eq!(seen[0].resource().as_str(), RESOURCE);
    assert_eq!(seen[0].party(), Party::parse(OWNER_ORG).unwrap());

    // The PDP was asked about the gRPC method's action.
    let pdp = env.fakes.altinn.pdp_requests();
    assert_eq!(pdp.len(), 1);
    let request = &pdp[0].json().unwrap()["Request"];
    assert_eq!(attributes(&request["Action"][0])[0].1, "read");
}

#[tokio::test]
async fn not_granted_is_permission_denied() {
    let env = setup().await;
    // No rule: NotApplicable.
    let status = assert_code(
        env.check(Some(&env.fakes.system_user_token(Uuid::new_v4()))).await,
        Code::PermissionDenied,
    );
    assert_eq!(status.code() as i32, 7);
    assert_eq!(status.message(), "The system user has not been granted this access");
    assert_eq!(env.fakes.altinn.pdp_request_count(), 1);
    assert_eq!(env.seen(), 0);
}

#[tokio::test]
async fn denied_is_permission_denied() {
    let env = setup().await;
    env.fakes.altinn.set_answer(PdpAnswer::Decision("Deny".into()));
    let status = assert_code(
        env.check(Some(&env.fakes.system_user_token(Uuid::new_v4()))).await,
        Code::PermissionDenied,
    );
    assert_eq!(status.message(), "The system user is denied this access");
    assert_eq!(env.fakes.altinn.pdp_request_count(), 1);
    assert_eq!(env.seen(), 0);
}

#[tokio::test]
async fn a_token_without_a_system_user_is_permission_denied_without_asking_the_pdp() {
    let env = setup().await;
    let plain = env.fakes.mp.token().scope(support::API_SCOPE).sign();
    assert_code(env.check(Some(&plain)).await, Code::PermissionDenied);
    assert_eq!(env.fakes.altinn.pdp_request_count(), 0);
    assert_eq!(env.seen(), 0);
}

#[tokio::test]
async fn pdp_outage_is_unavailable() {
    let env = setup().await;
    env.fakes.altinn.set_answer(PdpAnswer::Status(500));
    let status = assert_code(
        env.check(Some(&env.fakes.system_user_token(Uuid::new_v4()))).await,
        Code::Unavailable,
    );
    assert_eq!(status.code() as i32, 14);
    assert!(status.metadata().get("retry-after").is_some(), "{status:?}");
    assert_eq!(env.seen(), 0);
}

#[tokio::test]
async fn pdp_rate_limit_is_unavailable_with_its_retry_after() {
    let env = setup().await;
    env.fakes.altinn.set_answer(PdpAnswer::TooManyRequests { retry_after_secs: 7 });
    let status = assert_code(
        env.check(Some(&env.fakes.system_user_token(Uuid::new_v4()))).await,
        Code::Unavailable,
    );
    assert_eq!(status.metadata().get("retry-after").unwrap(), "7");
    assert_eq!(env.seen(), 0);
}

#[tokio::test]
async fn bad_token_is_unauthenticated() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let expired = env
        .fakes
        .mp
        .system_user_token(su, OWNER_ORG)
        .scope(support::API_SCOPE)
        .issued_at(SystemTime::now() - Duration::from_secs(600))
        .sign();
    let foreign = TestKey::for_role(KeyRole::Rogue).with_kid("foreign");
    let forged = env
        .fakes
        .mp
        .system_user_token(su, OWNER_ORG)
        .scope(support::API_SCOPE)
        .signed_by(&foreign)
        .sign();
    for token in [None, Some("not-a-jwt"), Some(expired.as_str()), Some(forged.as_str())] {
        let status = assert_code(env.check(token).await, Code::Unauthenticated);
        assert_eq!(status.code() as i32, 16);
    }
    assert_eq!(env.fakes.altinn.pdp_request_count(), 0);
    assert_eq!(env.seen(), 0);
}

#[tokio::test]
async fn unlisted_method_is_invalid_argument() {
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let mut req = Request::new(HealthCheckRequest { service: String::new() });
    let token = env.fakes.system_user_token(su);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let status = env.client.clone().watch(req).await.expect_err("Watch is not mapped");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(env.fakes.altinn.pdp_request_count(), 0);
    // Check, with the same token, is fine.
    assert!(env.check(Some(&token)).await.is_ok());
    assert_eq!(env.seen(), 1);
}
