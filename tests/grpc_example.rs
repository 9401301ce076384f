//! The gRPC example's permit and deny paths, run in-process over loopback HTTP/2.

#[allow(dead_code)]
#[path = "../examples/grpc.rs"]
mod grpc_example;

use tonic::Code;

#[tokio::test]
async fn grpc_example_permits_and_denies() {
    let demo = grpc_example::start().await.unwrap();
    let scope = "skatteetaten:kravogbetalinger";
    let ok = demo.maskinporten.system_user_token(demo.permitted, "310702641").scope(scope).sign();
    let reply = grpc_example::call(&demo.url, &ok).await.unwrap();
    assert_eq!(reply.system_user_id, demo.permitted.to_string(), "the handler read the SystemUser");
    assert_eq!(reply.action, "read");
    assert_eq!(reply.party, "310702641");

    let denied = demo
        .maskinporten
        .system_user_token(demo.not_permitted, "310702641")
        .scope(scope)
        .sign();
    assert_eq!(
        grpc_example::call(&demo.url, &denied).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        grpc_example::call(&demo.url, "a.b.c").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let wrong_scope = demo
        .maskinporten
        .system_user_token(demo.permitted, "310702641")
        .scope("other")
        .sign();
    assert_eq!(
        grpc_example::call(&demo.url, &wrong_scope).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(demo.altinn.pdp_request_count(), 2, "refused tokens never reach the PDP");

    // PDP outage: UNAVAILABLE, never OK.
    demo.altinn.set_answer(altinn_systemuser::test_util::PdpAnswer::Status(500));
    let other = uuid::Uuid::new_v4();
    let t = demo.maskinporten.system_user_token(other, "310702641").scope(scope).sign();
    assert_eq!(grpc_example::call(&demo.url, &t).await.unwrap_err().code(), Code::Unavailable);
}
