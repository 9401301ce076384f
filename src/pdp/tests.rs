//! The HTTP behaviour of the client against a small scripted PDP, token endpoint and exchange
//! on 127.0.0.1 (bound before serving; no sleeps to wait for readiness).

use super::*;
use crate::pdp::credentials::tests::pkcs8_pem;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const SU: &str = "47caea5b-a80b-4343-b1d3-31eb523a4e28";

/// A scripted answer of the fake PDP.
#[derive(Clone)]
enum Reply {
    /// Answer from the request: decision by resource name prefix (`deny-`, `na-`, `ind-`,
    /// otherwise Permit); multi answers echo the categories, in reverse order.
    Echo,
    /// Like `Echo`, but without categories.
    EchoWithoutCategories,
    Raw {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    Delay(Duration, Box<Reply>),
    /// A 200 whose body streams without a Content-Length.
    Stream(usize),
}

fn raw(status: u16, body: &str) -> Reply {
    Reply::Raw {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Reply>>,
    pdp_calls: AtomicUsize,
    grants: AtomicUsize,
    exchanges: AtomicUsize,
    last_headers: Mutex<Option<http::HeaderMap>>,
    last_body: Mutex<Option<Value>>,
    /// Exchange answers: JSON string literals when true.
    exchange_as_json: std::sync::atomic::AtomicBool,
    grant_status: Mutex<Option<u16>>,
    grant_delay: Mutex<Duration>,
    /// Statuses for the next exchanges (default 200).
    exchange_script: Mutex<VecDeque<u16>>,
    /// Lifetime of the Altinn tokens issued (default 1800 s).
    altinn_lifetime: Mutex<Option<u64>>,
}

fn jwt(payload: Value) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload.to_string()))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn token_endpoint(State(f): State<Arc<Fake>>, body: String) -> Response {
    let n = f.grants.fetch_add(1, Ordering::SeqCst) + 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(form.get("assertion").map(|a| a.split('.').count()), Some(3));
    let delay = *f.grant_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    if let Some(status) = *f.grant_status.lock().unwrap() {
        return Response::builder()
            .status(status)
            .body(Body::from(r#"{"error":"invalid_grant","error_description":"nope"}"#))
            .unwrap();
    }
    let body =
        json!({"access_token": format!("mp-{n}"), "token_type": "Bearer", "expires_in": 120, "scope": "altinn:authorization/authorize"});
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn exchange(State(f): State<Arc<Fake>>, headers: http::HeaderMap) -> Response {
    let auth = headers.get("authorization").unwrap().to_str().unwrap().to_owned();
    assert!(auth.starts_with("Bearer mp-"), "{auth}");
    let n = f.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(status) = f.exchange_script.lock().unwrap().pop_front() {
        return Response::builder().status(status).body(Body::empty()).unwrap();
    }
    let lifetime = f.altinn_lifetime.lock().unwrap().unwrap_or(1800);
    let token = jwt(json!({"exp": now_secs() + lifetime, "n": n}));
    let body = if f.exchange_as_json.load(Ordering::SeqCst) {
        format!("\"{token}\"")
    } else {
        token
    };
    Response::new(Body::from(body))
}

fn decision_for(resource: &str) -> &'static str {
    if resource.starts_with("deny-") {
        "Deny"
    } else if resource.starts_with("na-") {
        "NotApplicable"
    } else if resource.starts_with("ind-") {
        "Indeterminate"
    } else {
        "Permit"
    }
}

fn echo(request: &Value, with_categories: bool) -> Value {
    let r = &request["Request"];
    let find = |cat: &str, id: &str| r[cat].as_array().unwrap().iter().find(|c| c["Id"] == id).unwrap().clone();
    let Some(refs) = r["MultiRequests"]["RequestReference"].as_array() else {
        let resource = r["Resource"][0]["Attribute"][0]["Value"].as_str().unwrap();
        return json!({"response": [{"decision": decision_for(resource), "status": {"statusCode": {"value": "urn:oasis:names:tc:xacml:1.0:status:ok"}}}]});
    };
    let mut results: Vec<Value> = refs
        .iter()
        .map(|rr| {
            let ids = rr["ReferenceId"].as_array().unwrap();
            let (s, a, res) = (
                find("AccessSubject", ids[0].as_str().unwrap()),
                find("Action", ids[1].as_str().unwrap()),
                find("Resource", ids[2].as_str().unwrap()),
            );
            let resource = res["Attribute"][0]["Value"].as_str().unwrap();
            let cat = |id: &str, c: &Value| json!({"categoryId": id, "id": null, "attribute": c["Attribute"]});
            json!({
                "decision": decision_for(resource),
                "status": {"statusCode": {"value": "urn:oasis:names:tc:xacml:1.0:status:ok", "statusCode": null}},
                "obligations": [{"id": "o", "attributeAssignment": [{"category": "urn:altinn:minimum-authenticationlevel", "value": "2"}]}],
                "category": if with_categories { json!([
                    cat("urn:oasis:names:tc:xacml:1.0:subject-category:access-subject", &s),
                    cat("urn:oasis:names:tc:xacml:3.0:attribute-category:action", &a),
                    cat("urn:oasis:names:tc:xacml:3.0:attribute-category:resource", &res),
                ]) } else { Value::Null },
            })
        })
        .collect();
    results.reverse();
    json!({"response": results})
}

async fn authorize(State(f): State<Arc<Fake>>, headers: http::HeaderMap, body: bytes::Bytes) -> Response {
    f.pdp_calls.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_slice(&body).unwrap();
    *f.last_headers.lock().unwrap() = Some(headers);
    *f.last_body.lock().unwrap() = Some(request.clone());
    let mut reply = f.script.lock().unwrap().pop_front().unwrap_or(Reply::Echo);
    loop {
        match reply {
            Reply::Delay(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Echo => return Response::new(Body::from(echo(&request, true).to_string())),
            Reply::EchoWithoutCategories => return Response::new(Body::from(echo(&request, false).to_string())),
            Reply::Raw { status, headers, body } => {
                let mut b = Response::builder().status(status);
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                return b.body(Body::from(body)).unwrap();
            }
            Reply::Stream(n) => {
                let chunks = (0..n.div_ceil(1024)).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024])));
                return Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            }
        }
    }
}

struct Harness {
    fake: Arc<Fake>,
    base: String,
    _server: tokio::task::JoinHandle<()>,
}

async fn harness() -> Harness {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/mp/token", post(token_endpoint))
        .route("/authentication/api/v1/exchange/maskinporten", get(exchange))
        .route("/authorization/api/v1/authorize", post(authorize))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Harness {
        fake,
        base,
        _server: server,
    }
}

impl Harness {
    fn credentials(&self) -> MaskinportenCredentials {
        MaskinportenCredentials::builder()
            .issuer(format!("{}/mp/", self.base))
            .client_id("provider-client")
            .private_key_pem(&pkcs8_pem())
            .key_id("provider-key")
            .build()
            .unwrap()
    }

    fn builder(&self) -> AltinnPdpBuilder {
        AltinnPdp::builder()
            .platform_url(&self.base)
            .subscription_key("sub-key-123")
            .credentials(self.credentials())
    }

    fn pdp(&self) -> AltinnPdp {
        self.builder().build().unwrap()
    }

    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.fake.script.lock().unwrap().extend(replies);
    }

    fn calls(&self) -> (usize, usize, usize) {
        (
            self.fake.pdp_calls.load(Ordering::SeqCst),
            self.fake.grants.load(Ordering::SeqCst),
            self.fake.exchanges.load(Ordering::SeqCst),
        )
    }
}

fn req(resource: &str) -> DecisionRequest {
    DecisionRequest::new(
        SU.parse().unwrap(),
        Action::read(),
        ResourceId::new(resource).unwrap(),
        Party::Organisation("910459880".parse().unwrap()),
    )
}

use crate::Party;

#[tokio::test]
async fn single_decision_wire_format_and_cache() {
    let h = harness().await;
    let pdp = h.pdp();
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (1, 1, 1));

    let headers = h.fake.last_headers.lock().unwrap().clone().unwrap();
    let auth = headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer eyJ"), "{auth}");
    assert_eq!(headers["ocp-apim-subscription-key"], "sub-key-123");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["accept"], "application/json");
    let body = h.fake.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(
        body,
        json!({"Request": {
            "ReturnPolicyIdList": false,
            "AccessSubject": [{"Attribute": [{"AttributeId": "urn:altinn:systemuser:uuid", "Value": SU}]}],
            "Action": [{"Attribute": [{"AttributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "Value": "read",
                "DataType": "http://www.w3.org/2001/XMLSchema#string"}]}],
            "Resource": [{"Attribute": [
                {"AttributeId": "urn:altinn:resource", "Value": "resource-a"},
                {"AttributeId": "urn:altinn:organization:identifier-no", "Value": "910459880"}]}],
        }})
    );

    // Cached: no second call; clones share the cache and the token.
    assert_eq!(pdp.clone().decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (1, 1, 1));
    // Deny is cached too; Indeterminate is not.
    assert_eq!(pdp.decide(&req("deny-a")).await, Ok(Decision::Deny));
    assert_eq!(pdp.decide(&req("deny-a")).await, Ok(Decision::Deny));
    assert_eq!(h.calls(), (2, 1, 1));
    assert_eq!(pdp.decide(&req("ind-a")).await, Ok(Decision::Indeterminate));
    assert_eq!(pdp.decide(&req("ind-a")).await, Ok(Decision::Indeterminate));
    assert_eq!(h.calls(), (4, 1, 1));
}

#[tokio::test]
async fn exchange_answer_as_json_string() {
    let h = harness().await;
    h.fake.exchange_as_json.store(true, Ordering::SeqCst);
    assert_eq!(h.pdp().decide(&req("resource-a")).await, Ok(Decision::Permit));
    let headers = h.fake.last_headers.lock().unwrap().clone().unwrap();
    assert!(!headers["authorization"].to_str().unwrap().contains('"'));
}

#[tokio::test]
async fn a_401_forces_one_token_refresh() {
    let h = harness().await;
    let pdp = h.pdp();
    h.script([raw(401, ""), Reply::Echo]);
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (2, 2, 2));

    h.script([raw(401, ""), raw(401, "")]);
    let e = pdp.decide(&req("resource-b")).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Unauthorized);
    assert_eq!(h.calls(), (4, 3, 3));

    h.script([raw(403, "")]);
    assert_eq!(pdp.decide(&req("resource-c")).await.unwrap_err().kind(), PdpErrorKind::Unauthorized);
    assert_eq!(h.calls(), (5, 3, 3));
}

#[tokio::test]
async fn one_retry_after_a_5xx() {
    let h = harness().await;
    let pdp = h.pdp();
    h.script([raw(503, ""), Reply::Echo]);
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(h.calls().0, 2);

    h.script([raw(502, ""), raw(500, "")]);
    assert_eq!(pdp.decide(&req("resource-b")).await.unwrap_err().kind(), PdpErrorKind::Status(500));
    assert_eq!(h.calls().0, 4);

    // A 5xx that says when to come back is passed on at once.
    h.script([Reply::Raw {
        status: 503,
        headers: vec![("retry-after", "12".into())],
        body: vec![],
    }]);
    let e = pdp.decide(&req("resource-c")).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (PdpErrorKind::Status(503), Some(Duration::from_secs(12)))
    );
    assert_eq!(h.calls().0, 5);
}

#[tokio::test]
async fn a_429_is_not_retried() {
    let h = harness().await;
    h.script([Reply::Raw {
        status: 429,
        headers: vec![("retry-after", "7".into())],
        body: b"slow down".to_vec(),
    }]);
    let e = h.pdp().decide(&req("resource-a")).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Status(429));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(!e.to_string().contains("slow"));
    assert_eq!(h.calls().0, 1);
    // Errors are not cached.
    assert_eq!(h.pdp().decide(&req("resource-a")).await, Ok(Decision::Permit));
}

#[tokio::test]
async fn answers_are_size_capped() {
    let h = harness().await;
    let pdp = h.builder().max_response_bytes(4096).build().unwrap();
    h.script([raw(200, &" ".repeat(5000))]);
    assert_eq!(pdp.decide(&req("resource-a")).await.unwrap_err().kind(), PdpErrorKind::TooLarge);
    h.script([Reply::Stream(64 * 1024)]);
    assert_eq!(pdp.decide(&req("resource-b")).await.unwrap_err().kind(), PdpErrorKind::TooLarge);
    assert_eq!(h.calls().0, 2);
}

#[tokio::test]
async fn malformed_answers() {
    let h = harness().await;
    let pdp = h.pdp();
    for body in [
        "not json",
        r#"{"response": {"decision": "Permit"}}"#,
        r#"{"response": []}"#,
        r#"{"response": [{"decision": "Permit"}, {"decision": "Permit"}]}"#,
        r#"{"response": [{}]}"#,
    ] {
        h.script([raw(200, body)]);
        let e = pdp.decide(&req("resource-a")).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Malformed, "{body}");
        assert!(!e.to_string().contains("Permit"));
    }
    // Nothing was cached.
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
}

#[tokio::test]
async fn the_time_budget_covers_everything() {
    let h = harness().await;
    let pdp = h.builder().timeout(Duration::from_millis(1000)).build().unwrap();
    h.script([Reply::Delay(Duration::from_secs(10), Box::new(Reply::Echo))]);
    let start = std::time::Instant::now();
    assert_eq!(pdp.decide(&req("resource-a")).await.unwrap_err().kind(), PdpErrorKind::Timeout);
    assert!(start.elapsed() < Duration::from_millis(2500), "{:?}", start.elapsed());
    // A slow first answer leaves too little budget for a retry: none is started, and the real
    // failure is reported (unless the answer itself came too late).
    h.script([Reply::Delay(Duration::from_millis(920), Box::new(raw(503, "")))]);
    let kind = pdp.decide(&req("resource-b")).await.unwrap_err().kind();
    assert!(matches!(kind, PdpErrorKind::Status(503) | PdpErrorKind::Timeout), "{kind:?}");
    assert_eq!(h.calls().0, 2);
    // A retry that cannot finish in time ends in a timeout.
    h.script([
        Reply::Delay(Duration::from_millis(100), Box::new(raw(503, ""))),
        Reply::Delay(Duration::from_secs(10), Box::new(Reply::Echo)),
    ]);
    let start = std::time::Instant::now();
    assert_eq!(pdp.decide(&req("resource-c")).await.unwrap_err().kind(), PdpErrorKind::Timeout);
    assert!(start.elapsed() < Duration::from_millis(2500), "{:?}", start.elapsed());
    assert_eq!(h.calls().0, 4);
}

struct StaticToken;

impl AltinnTokenSource for StaticToken {
    fn token(&self, _force: bool) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
        Box::pin(async { Ok(AltinnToken::new("static-token", SystemTime::now() + Duration::from_secs(600))) })
    }
}

#[tokio::test]
async fn connection_refused() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pdp = AltinnPdp::builder()
        .platform_url(format!("http://127.0.0.1:{port}"))
        .token_source(StaticToken)
        .build()
        .unwrap();
    assert_eq!(pdp.decide(&req("resource-a")).await.unwrap_err().kind(), PdpErrorKind::Connect);
}

#[tokio::test]
async fn custom_token_source() {
    let h = harness().await;
    let pdp = AltinnPdp::builder()
        .platform_url(&h.base)
        .token_source(StaticToken)
        .build()
        .unwrap();
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    let headers = h.fake.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers["authorization"], "Bearer static-token");
    assert!(headers.get("ocp-apim-subscription-key").is_none());
    assert_eq!(h.calls(), (1, 0, 0));
}

#[tokio::test]
async fn failed_grant_is_a_credentials_error() {
    let h = harness().await;
    *h.fake.grant_status.lock().unwrap() = Some(400);
    let e = h.pdp().decide(&req("resource-a")).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    assert!(!e.to_string().contains("nope"));
    assert_eq!(h.calls(), (0, 1, 0));
}

#[tokio::test]
async fn callers_waiting_for_a_failed_refresh_share_its_error() {
    let h = harness().await;
    *h.fake.grant_status.lock().unwrap() = Some(400);
    *h.fake.grant_delay.lock().unwrap() = Duration::from_millis(500);
    let pdp = h.pdp();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let pdp = pdp.clone();
            tokio::spawn(async move { pdp.decide(&req(&format!("resource-{i}"))).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err().kind(), PdpErrorKind::Credentials);
    }
    assert_eq!(h.calls(), (0, 1, 0));
    // A later caller tries again.
    *h.fake.grant_status.lock().unwrap() = None;
    *h.fake.grant_delay.lock().unwrap() = Duration::ZERO;
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (1, 2, 1));
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let h = harness().await;
    // Altinn tokens living 2 s are renewed after 1 s; the Maskinporten token (120 s) is reused.
    *h.fake.altinn_lifetime.lock().unwrap() = Some(2);
    let pdp = h.pdp();
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(pdp.decide(&req("resource-b")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (2, 1, 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(pdp.decide(&req("resource-c")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (3, 1, 2));
    // The exchange refuses the cached Maskinporten token: one new grant, one more exchange.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.fake.exchange_script.lock().unwrap().push_back(401);
    assert_eq!(pdp.decide(&req("resource-d")).await, Ok(Decision::Permit));
    assert_eq!(h.calls(), (4, 2, 4));
    // An exchange failure is a credentials error.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.fake.exchange_script.lock().unwrap().push_back(500);
    assert_eq!(pdp.decide(&req("resource-e")).await.unwrap_err().kind(), PdpErrorKind::Credentials);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_refresh_and_one_call_per_key() {
    let h = harness().await;
    let pdp = h.pdp();
    h.script((0..40).map(|_| Reply::Delay(Duration::from_millis(50), Box::new(Reply::Echo))));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let pdp = pdp.clone();
            // 20 distinct keys, each asked twice at once.
            tokio::spawn(async move { pdp.decide(&req(&format!("resource-{}", i % 20))).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Decision::Permit));
    }
    assert_eq!(h.calls(), (20, 1, 1));
}

#[tokio::test]
async fn decide_many_maps_by_echoed_categories() {
    let h = harness().await;
    let pdp = h.pdp();
    let reqs = [req("resource-a"), req("deny-b"), req("na-c"), req("resource-a"), req("ind-d")];
    // The fake answers in reverse order; the mapping must follow the categories.
    assert_eq!(
        pdp.decide_many(&reqs).await,
        Ok(vec![
            Decision::Permit,
            Decision::Deny,
            Decision::NotApplicable,
            Decision::Permit,
            Decision::Indeterminate
        ])
    );
    assert_eq!(h.calls().0, 1);
    let body = h.fake.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["Request"]["MultiRequests"]["RequestReference"].as_array().unwrap().len(), 4);
    assert_eq!(body["Request"]["AccessSubject"].as_array().unwrap().len(), 1);

    // Cached answers are reused; Indeterminate is asked again, alone (no MultiRequests).
    assert_eq!(pdp.decide(&req("deny-b")).await, Ok(Decision::Deny));
    assert_eq!(h.calls().0, 1);
    assert_eq!(pdp.decide_many(&reqs).await.unwrap()[4], Decision::Indeterminate);
    assert_eq!(h.calls().0, 2);
    let body = h.fake.last_body.lock().unwrap().clone().unwrap();
    assert!(body["Request"].get("MultiRequests").is_none());

    assert_eq!(pdp.decide_many(&[]).await, Ok(vec![]));
    assert_eq!(h.calls().0, 2);
}

#[tokio::test]
async fn decide_many_refuses_unmappable_answers() {
    let h = harness().await;
    let pdp = h.pdp();
    let reqs = [req("resource-x"), req("resource-y")];
    h.script([Reply::EchoWithoutCategories]);
    assert_eq!(pdp.decide_many(&reqs).await.unwrap_err().kind(), PdpErrorKind::Malformed);
    // A duplicated answer and a missing one.
    let dup = {
        let r = echo(
            &json!({"Request": {
            "AccessSubject": [{"Id": "s1", "Attribute": [{"AttributeId": "urn:altinn:systemuser:uuid", "Value": SU}]}],
            "Action": [{"Id": "a1", "Attribute": [{"AttributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "Value": "read"}]}],
            "Resource": [{"Id": "r1", "Attribute": [{"AttributeId": "urn:altinn:resource", "Value": "resource-x"},
                {"AttributeId": "urn:altinn:organization:identifier-no", "Value": "910459880"}]}],
            "MultiRequests": {"RequestReference": [{"ReferenceId": ["s1", "a1", "r1"]}, {"ReferenceId": ["s1", "a1", "r1"]}]}}}),
            true,
        );
        r.to_string()
    };
    h.script([raw(200, &dup)]);
    assert_eq!(pdp.decide_many(&reqs).await.unwrap_err().kind(), PdpErrorKind::Malformed);
    // Nothing was cached by the failures.
    assert_eq!(pdp.decide_many(&reqs).await, Ok(vec![Decision::Permit, Decision::Permit]));
}

#[tokio::test]
async fn permits_never_outlive_valid_until() {
    let h = harness().await;
    let pdp = h.pdp();
    let r = req("resource-a").with_valid_until(SystemTime::now() + Duration::from_millis(600));
    assert_eq!(pdp.decide(&r).await, Ok(Decision::Permit));
    assert_eq!(pdp.decide(&r).await, Ok(Decision::Permit));
    assert_eq!(h.calls().0, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(pdp.decide(&req("resource-a")).await, Ok(Decision::Permit));
    assert_eq!(h.calls().0, 2);
}

#[test]
fn builder_checks() {
    let field = |b: AltinnPdpBuilder| b.build().unwrap_err().field();
    let ok = || AltinnPdp::builder().environment(AltinnEnvironment::Tt02).token_source(StaticToken);
    assert!(ok().build().is_ok());
    assert_eq!(field(AltinnPdp::builder().token_source(StaticToken)), "platform_url");
    assert_eq!(
        field(AltinnPdp::builder().environment(AltinnEnvironment::Production)),
        "credentials"
    );
    assert_eq!(field(ok().platform_url("http://platform.altinn.no")), "platform_url");
    assert_eq!(field(ok().platform_url("https://user:pw@platform.altinn.no")), "platform_url");
    assert_eq!(field(ok().platform_url("https://platform.altinn.no/?x=1")), "platform_url");
    assert_eq!(field(ok().platform_url("not a url")), "platform_url");
    assert_eq!(field(ok().subscription_key("")), "subscription_key");
    assert_eq!(field(ok().subscription_key("a\nb")), "subscription_key");
    assert_eq!(field(ok().timeout(Duration::ZERO)), "timeout");
    assert_eq!(field(ok().max_response_bytes(0)), "max_response_bytes");
    assert_eq!(field(ok().permit_ttl(Duration::from_secs(241))), "permit_ttl");
    assert_eq!(field(ok().deny_ttl(Duration::from_secs(241))), "deny_ttl");
    assert!(
        ok().permit_ttl(Duration::from_secs(240))
            .deny_ttl(Duration::ZERO)
            .cache_capacity(0)
            .build()
            .is_ok()
    );
    assert!(ok().platform_url("http://localhost:8080/").build().is_ok());
    assert!(ok().platform_url("http://[::1]:8080").build().is_ok());
    assert!(ok().http_client(reqwest::Client::new()).build().is_ok());
}

#[test]
fn urls() {
    let pdp = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .token_source(StaticToken)
        .build()
        .unwrap();
    assert_eq!(
        pdp.inner.authorize_url.as_str(),
        "https://platform.tt02.altinn.no/authorization/api/v1/authorize"
    );
    let pdp = AltinnPdp::builder()
        .platform_url("http://127.0.0.1:1234/altinn/")
        .environment(AltinnEnvironment::Production)
        .token_source(StaticToken)
        .build()
        .unwrap();
    assert_eq!(
        pdp.inner.authorize_url.as_str(),
        "http://127.0.0.1:1234/altinn/authorization/api/v1/authorize"
    );
    for (env, url) in [
        (AltinnEnvironment::Production, "https://platform.altinn.no"),
        (AltinnEnvironment::Tt02, "https://platform.tt02.altinn.no"),
        (AltinnEnvironment::At22, "https://platform.at22.altinn.cloud"),
        (AltinnEnvironment::At23, "https://platform.at23.altinn.cloud"),
        (AltinnEnvironment::At24, "https://platform.at24.altinn.cloud"),
        (AltinnEnvironment::Yt01, "https://platform.yt01.altinn.cloud"),
    ] {
        assert_eq!(env.platform_url(), url);
        assert!(AltinnPdp::builder().environment(env).token_source(StaticToken).build().is_ok());
    }
}

#[test]
fn debug_redacts_secrets() {
    let creds = MaskinportenCredentials::builder()
        .issuer("https://test.maskinporten.no/")
        .client_id("provider-client")
        .private_key_pem(&pkcs8_pem())
        .key_id("provider-key")
        .build()
        .unwrap();
    let b = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .subscription_key("very-secret-sub-key")
        .credentials(creds);
    let shown = format!("{b:?}");
    assert!(!shown.contains("very-secret") && shown.contains("<redacted>"), "{shown}");
    let pdp = b.build().unwrap();
    let shown = format!("{pdp:?}");
    assert!(!shown.contains("very-secret") && shown.contains("<redacted>"), "{shown}");
    assert!(pdp.inner.subscription_key.as_ref().unwrap().is_sensitive());
    let shown = format!("{:?}", req("resource-a"));
    assert!(shown.contains("resource-a"));
}

#[test]
fn public_types_are_send_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<AltinnPdp>();
    check::<MaskinportenCredentials>();
    check::<DecisionRequest>();
    check::<PdpError>();
    check::<AltinnToken>();
    fn future_is_send<F: std::future::Future + Send>(_: F) {}
    let pdp = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .token_source(StaticToken)
        .build()
        .unwrap();
    let r = req("resource-a");
    future_is_send(pdp.decide(&r));
    future_is_send(pdp.decide_many(std::slice::from_ref(&r)));
}
