//! The form of a refusal is the layer's setting, not the client's: a layer set to HTTP-only
//! refusals never answers a refusal with HTTP 200, whatever `content-type` the client sends; one
//! set to gRPC-only always answers with a `grpc-status`; `Auto` (the default) chooses per
//! request as before. Both layers, through an axum router, with FakeMaskinporten and
//! FakeAltinn on 127.0.0.1:0.

mod support;

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::reject::{RefusalForm, Rejection, RejectionKind};
use altinn_systemuser::systemuser::SystemUserLayer;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::Request;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{API_SCOPE, Fakes, OWNER_ORG, RESOURCE, Reply, assert_problem, read};
use tower::ServiceExt;
use uuid::Uuid;

/// Content types a client may send, and whether they say "gRPC".
const CONTENT_TYPES: &[(Option<&str>, bool)] = &[
    (None, false),
    (Some("application/json"), false),
    (Some("application/grpc"), true),
    (Some("application/grpc+proto"), true),
    (Some("APPLICATION/GRPC"), true),
];

/// `/krav` behind both layers (the system-user layer asks about the owner's organisation),
/// each set to its form (`None`: the builder's default).
struct Env {
    fakes: Fakes,
    app: Router,
    calls: Arc<AtomicUsize>,
}

impl Env {
    async fn start(maskinporten: Option<RefusalForm>, system_user: Option<RefusalForm>) -> Env {
        let fakes = Fakes::start().await;
        let mut mp = MaskinportenLayer::builder().issuer(fakes.mp.issuer()).require_scope(API_SCOPE);
        if let Some(form) = maskinporten {
            mp = mp.refusal_form(form);
        }
        let mut su = SystemUserLayer::builder().pdp(fakes.pdp()).resource(RESOURCE);
        if let Some(form) = system_user {
            su = su.refusal_form(form);
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = Router::new()
            .route(
                "/krav",
                any(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "the handler"
                }),
            )
            .route_layer(su.build().unwrap())
            .route_layer(mp.build().unwrap());
        Env { fakes, app, calls }
    }

    /// A request to `/krav` with this content type and token; the response and the
    /// [`Rejection`] in its extensions.
    async fn send(&self, content_type: Option<&str>, token: Option<&str>) -> (Reply, Option<Rejection>) {
        let mut req = Request::post("/krav");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = self.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let rejection = res.extensions().get::<Rejection>().cloned();
        (read(res).await, rejection)
    }

    /// A valid system-user token whose system user has no rights at all (the PDP says
    /// `NotApplicable`).
    fn unpermitted_token(&self) -> String {
        self.fakes.system_user_token(Uuid::new_v4())
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The gRPC form: HTTP 200, trailers-only, this `grpc-status`, and `Cache-Control: no-store`.
fn assert_grpc(r: &Reply, code: &str) {
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.header("content-type"), Some("application/grpc"));
    assert_eq!(r.header("grpc-status"), Some(code));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("www-authenticate"), None);
    assert!(r.body.is_empty());
}

/// The HTTP form of a missing token: 401, the bare challenge, a problem body; no gRPC status.
fn assert_http_missing_token(r: &Reply) {
    assert_problem(r, 401, "missing-token");
    assert_eq!(r.challenge(), "Bearer");
    assert_eq!(r.header("grpc-status"), None);
}

/// The HTTP form of a PDP refusal: 403 problem, no gRPC status.
fn assert_http_not_granted(r: &Reply) {
    assert_problem(r, 403, "access-not-granted");
    assert_eq!(r.header("grpc-status"), None);
}

#[tokio::test]
async fn http_only_layers_never_answer_a_refusal_with_200() {
    let env = Env::start(Some(RefusalForm::Http), Some(RefusalForm::Http)).await;
    let token = env.unpermitted_token();
    for &(ct, _) in CONTENT_TYPES {
        // Layer 1: no token.
        let (r, rejection) = env.send(ct, None).await;
        assert_http_missing_token(&r);
        let rejection = rejection.expect("the rejection is in the extensions");
        assert_eq!(
            (rejection.kind(), rejection.form()),
            (RejectionKind::MissingToken, RefusalForm::Http)
        );
        // Layer 2: a valid token, but no rights.
        let (r, rejection) = env.send(ct, Some(&token)).await;
        assert_http_not_granted(&r);
        assert_eq!(rejection.map(|r| r.form()), Some(RefusalForm::Http));
    }
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn http_only_holds_on_the_wire() {
    let env = Env::start(Some(RefusalForm::Http), Some(RefusalForm::Http)).await;
    let base = support::serve(env.app.clone()).await;
    let res = reqwest::Client::new()
        .post(format!("{base}/krav"))
        .header("content-type", "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("grpc-status").is_none());
    let problem: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(problem["type"], support::problem("missing-token"));
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn grpc_only_layers_always_answer_with_a_grpc_status() {
    let env = Env::start(Some(RefusalForm::Grpc), Some(RefusalForm::Grpc)).await;
    let token = env.unpermitted_token();
    for &(ct, _) in CONTENT_TYPES {
        let (r, rejection) = env.send(ct, None).await;
        assert_grpc(&r, "16"); // UNAUTHENTICATED
        assert_eq!(rejection.map(|r| r.form()), Some(RefusalForm::Grpc));
        let (r, rejection) = env.send(ct, Some(&token)).await;
        assert_grpc(&r, "7"); // PERMISSION_DENIED
        assert_eq!(
            rejection.map(|r| (r.kind(), r.form())),
            Some((RejectionKind::NotApplicable, RefusalForm::Grpc))
        );
    }
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn auto_is_the_default_and_chooses_per_request() {
    for form in [None, Some(RefusalForm::Auto)] {
        let env = Env::start(form, form).await;
        let token = env.unpermitted_token();
        for &(ct, says_grpc) in CONTENT_TYPES {
            let (no_token, rejection) = env.send(ct, None).await;
            assert_eq!(rejection.map(|r| r.form()), Some(RefusalForm::Auto));
            let (not_granted, _) = env.send(ct, Some(&token)).await;
            if says_grpc {
                assert_grpc(&no_token, "16");
                assert_grpc(&not_granted, "7");
            } else {
                assert_http_missing_token(&no_token);
                assert_http_not_granted(&not_granted);
            }
        }
        assert_eq!(env.calls(), 0);
    }
}

#[tokio::test]
async fn each_layer_answers_in_its_own_form() {
    // Layer 1 HTTP-only, layer 2 gRPC-only: each refusal takes the form of the layer that made it.
    let env = Env::start(Some(RefusalForm::Http), Some(RefusalForm::Grpc)).await;
    let token = env.unpermitted_token();
    let (r, _) = env.send(Some("application/grpc"), None).await;
    assert_http_missing_token(&r);
    let (r, _) = env.send(None, Some(&token)).await;
    assert_grpc(&r, "7");

    // And the other way round.
    let env = Env::start(Some(RefusalForm::Grpc), Some(RefusalForm::Http)).await;
    let token = env.unpermitted_token();
    let (r, _) = env.send(None, None).await;
    assert_grpc(&r, "16");
    let (r, _) = env.send(Some("application/grpc"), Some(&token)).await;
    assert_http_not_granted(&r);
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn the_form_applies_to_refusals_only() {
    // A permitted request reaches the handler whatever the form and the content type.
    for form in [RefusalForm::Http, RefusalForm::Grpc, RefusalForm::Auto] {
        let env = Env::start(Some(form), Some(form)).await;
        let su = Uuid::new_v4();
        env.fakes.altinn.permit(su, "write", RESOURCE, OWNER_ORG);
        let token = env.fakes.system_user_token(su);
        for &(ct, _) in CONTENT_TYPES {
            let (r, rejection) = env.send(ct, Some(&token)).await;
            assert_eq!(r.status, 200, "{form:?} {ct:?}");
            assert_eq!(&r.body[..], b"the handler");
            assert!(rejection.is_none());
        }
        assert_eq!(env.calls(), CONTENT_TYPES.len());
    }
}

#[tokio::test]
async fn the_quickstarts_http_routes_refuse_in_the_http_form_only() {
    let app = quickstart::build(&quickstart::Settings::from_lookup(|_| None)).await.unwrap();
    let tokens = app.embedded.as_ref().unwrap().tokens.clone();
    let base = support::serve(app.router).await;
    let http = reqwest::Client::new();
    let other_org = format!("{base}/krav/{}", quickstart::DEMO_OTHER_ORG);
    // (path, token, status, problem slug): layer 1 (no token, broken token), layer 2 (no right).
    let cases = [
        (format!("{base}/whoami"), None, 401, "missing-token"),
        (other_org.clone(), Some(&tokens.broken), 401, "invalid-signature"),
        (other_org, Some(&tokens.system_user), 403, "access-not-granted"),
    ];
    for (url, token, status, slug) in cases {
        for content_type in ["application/grpc", "application/grpc+proto"] {
            let mut req = http.get(&url).header("content-type", content_type);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), status, "{url} {content_type}");
            assert!(res.headers().get("grpc-status").is_none(), "{url}");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let problem: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
            assert_eq!(problem["type"], support::problem(slug), "{url}");
        }
    }
}
