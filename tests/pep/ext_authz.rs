//! The ext_authz listener (`listen.ext_authz`), asked as Envoy asks it: gRPC
//! `envoy.service.auth.v3.Authorization/Check` from a tonic client of the `envoy-types` crate
//! (no Envoy binary can be installed here), against the real program and the fakes.

use altinn_systemuser::test_util::PdpAnswer;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse};
use serde_json::Value;
use tonic::transport::Channel;

use crate::harness::{PERSON, PRINCIPAL_HEADERS, Pep, Setup, THIRD_ORG};
use crate::pep_fakes::{CLIENT_ORG, OWNER_ORG, SCOPE};

/// gRPC status codes.
const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

/// The example configuration with its `ext_authz` line taken in, on a free port.
async fn start(name: &str) -> Setup {
    Setup::start_with(name, |c| {
        crate::pep_fakes::substitute(&c, &[(EXAMPLE_LINE, "ext_authz = \"127.0.0.1:0\"", 1)]).unwrap()
    })
    .await
}

/// The commented `ext_authz` line of `deploy/altinn-pep.toml`.
pub(crate) const EXAMPLE_LINE: &str = "# ext_authz = \"127.0.0.1:9191\"";

async fn client(pep: &Pep) -> AuthorizationClient<Channel> {
    let addr = pep.ext_authz.as_deref().expect("altinn-pep printed `ext_authz listening on ADDR`");
    AuthorizationClient::connect(format!("http://{addr}")).await.unwrap()
}

/// An `HttpRequest` as Envoy describes one: lower-case names, the pseudo-headers included.
fn http(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    let mut all: Vec<(&str, &str)> = vec![
        (":method", method),
        (":path", path),
        (":authority", "api.example"),
        (":scheme", "http"),
    ];
    all.extend_from_slice(headers);
    HttpRequest {
        method: method.into(),
        path: path.into(),
        host: "api.example".into(),
        scheme: "http".into(),
        protocol: "HTTP/1.1".into(),
        headers: all.iter().map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned())).collect(),
        ..HttpRequest::default()
    }
}

fn check_request(http: HttpRequest) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(http),
            }),
            ..AttributeContext::default()
        }),
    }
}

async fn check(client: &mut AuthorizationClient<Channel>, http: HttpRequest) -> CheckResponse {
    client
        .check(check_request(http))
        .await
        .expect("Check answers every request (never a gRPC error)")
        .into_inner()
}

/// The `OkHttpResponse` of an allowed check.
fn ok(r: CheckResponse) -> OkHttpResponse {
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(OK), "{r:?}");
    match r.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not an ok_response: {other:?}"),
    }
}

/// The header a response sets, by name.
fn set_value<'a>(ok: &'a OkHttpResponse, name: &str) -> Option<&'a str> {
    let all: Vec<&str> = ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .filter(|h| h.key == name)
        .map(|h| h.value.as_str())
        .collect();
    assert!(all.len() <= 1, "{name} set twice: {all:?}");
    all.first().copied()
}

/// Allowed with exactly this principal: each header set with `OVERWRITE_IF_EXISTS_OR_ADD`, every
/// other principal header in `headers_to_remove`, none in both lists, nothing else.
fn assert_allowed(r: CheckResponse, principal: &[(String, String)]) -> OkHttpResponse {
    let ok = ok(r);
    for (name, value) in principal {
        assert_eq!(set_value(&ok, name), Some(value.as_str()), "{name} in {ok:?}");
    }
    assert_eq!(ok.headers.len(), principal.len(), "exactly the principal is set: {ok:?}");
    for h in &ok.headers {
        assert_eq!(h.append_action, HeaderAppendAction::OverwriteIfExistsOrAdd as i32, "{h:?}");
        assert!(h.header.as_ref().is_some_and(|h| h.raw_value.is_empty()));
    }
    for name in PRINCIPAL_HEADERS.map(|h| h.to_ascii_lowercase()) {
        let set = set_value(&ok, &name).is_some();
        let removed = ok.headers_to_remove.contains(&name);
        assert!(set != removed, "{name} must be set or removed, not both: {ok:?}");
    }
    assert_eq!(ok.headers_to_remove.len() + ok.headers.len(), PRINCIPAL_HEADERS.len());
    assert!(ok.response_headers_to_add.is_empty() && ok.query_parameters_to_set.is_empty());
    ok
}

/// What Envoy's ext_authz filter does to the request with an `OkHttpResponse`
/// (`source/extensions/filters/http/ext_authz/ext_authz.cc`, `onComplete`): first the headers
/// (`OVERWRITE_IF_EXISTS_OR_ADD` replaces every value of the name), then `headers_to_remove`.
/// The headers the upstream receives, names in lower case, in order.
fn envoy_applies(client_headers: &[(&str, &str)], ok: &OkHttpResponse) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = client_headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
        .collect();
    for option in &ok.headers {
        let h = option.header.as_ref().unwrap();
        assert_eq!(option.append_action, HeaderAppendAction::OverwriteIfExistsOrAdd as i32);
        out.retain(|(n, _)| *n != h.key);
        out.push((h.key.clone(), h.value.clone()));
    }
    out.retain(|(n, _)| !ok.headers_to_remove.contains(n));
    out
}

/// Refused with this gRPC code, HTTP status and problem slug, the problem body and headers
/// passed on, and no principal.
fn assert_denied(r: CheckResponse, grpc: i32, status: i32, slug: &str) -> DeniedHttpResponse {
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(grpc), "{r:?}");
    let denied = match r.http_response {
        Some(HttpResponse::DeniedResponse(d)) => d,
        other => panic!("not a denied_response: {other:?}"),
    };
    assert_eq!(denied.status.map(|s| s.code), Some(status), "{denied:?}");
    let body: Value = serde_json::from_str(&denied.body).unwrap_or(Value::Null);
    assert_eq!(
        body["type"].as_str(),
        Some(format!("urn:altinn-systemuser:problem:{slug}").as_str()),
        "{denied:?}"
    );
    assert_eq!(body["status"], status);
    assert_eq!(denied_header(&denied, "x-altinn-problem"), Some(slug));
    assert_eq!(denied_header(&denied, "content-type"), Some("application/problem+json"));
    assert_eq!(denied_header(&denied, "cache-control"), Some("no-store"));
    for h in PRINCIPAL_HEADERS {
        assert_eq!(denied_header(&denied, &h.to_ascii_lowercase()), None, "{h} on a refusal");
    }
    denied
}

fn denied_header<'a>(d: &'a DeniedHttpResponse, name: &str) -> Option<&'a str> {
    let all: Vec<&str> = d
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .filter(|h| h.key == name)
        .map(|h| h.value.as_str())
        .collect();
    assert!(all.len() <= 1, "{name} twice: {all:?}");
    all.first().copied()
}

#[tokio::test]
async fn an_allowed_check_sets_the_principal_and_removes_the_rest() {
    let s = start("ext-authz-allowed").await;
    let mut c = client(&s.pep).await;
    let token = format!("Bearer {}", s.token());
    let auth = ("authorization", token.as_str());

    let krav = format!("/krav/{CLIENT_ORG}?side=2");
    let ok = assert_allowed(check(&mut c, http("GET", &krav, &[auth])).await, &s.principal(CLIENT_ORG, "read"));
    assert!(ok.headers_to_remove.is_empty(), "all eight are set: {ok:?}");
    let r = check(&mut c, http("POST", &format!("/krav/{CLIENT_ORG}"), &[auth])).await;
    assert_allowed(r, &s.principal(CLIENT_ORG, "write"));
    let r = check(&mut c, http("GET", "/whoami", &[auth])).await;
    assert_allowed(r, &s.principal(OWNER_ORG, "read"));
    let r = check(&mut c, http("GET", "/dokumenter/2025/a.pdf", &[auth, ("x-party", PERSON)])).await;
    assert_allowed(r, &s.principal(PERSON, "read"));

    // Raw headers (`encode_raw_headers: true`): the same answer.
    let mut raw = http("GET", "/whoami", &[]);
    raw.headers.clear();
    raw.header_map = Some(HeaderMap {
        headers: vec![
            HeaderValue {
                key: ":path".into(),
                value: String::new(),
                raw_value: b"/whoami".to_vec(),
            },
            HeaderValue {
                key: "authorization".into(),
                value: String::new(),
                raw_value: token.clone().into_bytes(),
            },
        ],
    });
    assert_allowed(check(&mut c, raw).await, &s.principal(OWNER_ORG, "read"));

    // A token without a vendor or client id: those two are removed, not set.
    let bare = s
        .fakes
        .mp
        .system_user_token(s.system_user, OWNER_ORG)
        .scope(SCOPE)
        .remove_claim("consumer")
        .remove_claim("client_id")
        .sign();
    let bearer = format!("Bearer {bare}");
    let principal: Vec<_> = s
        .principal(OWNER_ORG, "read")
        .into_iter()
        .filter(|(n, _)| n != "x-altinn-vendor-org" && n != "x-altinn-client-id")
        .collect();
    let ok = assert_allowed(
        check(&mut c, http("GET", "/whoami", &[("authorization", &bearer)])).await,
        &principal,
    );
    assert_eq!(ok.headers_to_remove, ["x-altinn-vendor-org", "x-altinn-client-id"]);
}

/// A client's own `X-Altinn-*` headers: every one is overwritten with ours or removed, so the
/// upstream sees exactly the principal, whichever it sent.
#[tokio::test]
async fn spoofed_principal_headers_never_reach_the_upstream() {
    let s = start("ext-authz-spoofed").await;
    let mut c = client(&s.pep).await;
    // No vendor in the token: X-Altinn-Vendor-Org and X-Altinn-Client-Id are not in the answer.
    let bare = s
        .fakes
        .mp
        .system_user_token(s.system_user, OWNER_ORG)
        .scope(SCOPE)
        .remove_claim("consumer")
        .remove_claim("client_id")
        .sign();
    let bearer = format!("Bearer {bare}");
    let sent: Vec<(&str, &str)> = vec![
        ("authorization", &bearer),
        ("x-altinn-party", THIRD_ORG),
        ("x-altinn-systemuser-id", "00000000-0000-0000-0000-000000000000"),
        ("x-altinn-action", "write"),
        ("x-altinn-issuer", "altinn"),
        ("x-altinn-vendor-org", THIRD_ORG),
        ("x-altinn-client-id", "spoofed"),
        ("accept", "application/json"),
    ];
    let r = check(&mut c, http("GET", &format!("/krav/{CLIENT_ORG}"), &sent)).await;
    let principal: Vec<_> = s
        .principal(CLIENT_ORG, "read")
        .into_iter()
        .filter(|(n, _)| n != "x-altinn-vendor-org" && n != "x-altinn-client-id")
        .collect();
    let ok = assert_allowed(r, &principal);

    let upstream = envoy_applies(&sent, &ok);
    let ours: Vec<(String, String)> = upstream.iter().filter(|(n, _)| n.starts_with("x-altinn-")).cloned().collect();
    let mut expected = principal.clone();
    expected.sort();
    let mut got = ours.clone();
    got.sort();
    assert_eq!(got, expected, "the upstream sees exactly the principal: {upstream:?}");
    assert!(upstream.contains(&("accept".into(), "application/json".into())));
}

#[tokio::test]
async fn refusals_carry_the_layers_status_headers_and_body() {
    let s = start("ext-authz-refused").await;
    let mut c = client(&s.pep).await;
    let token = format!("Bearer {}", s.token());
    let auth = ("authorization", token.as_str());
    let krav = format!("/krav/{CLIENT_ORG}");

    // No token: 401 with the challenge, whatever the content type.
    for ct in ["application/json", "application/grpc"] {
        let r = check(&mut c, http("POST", &krav, &[("content-type", ct)])).await;
        let d = assert_denied(r, UNAUTHENTICATED, 401, "missing-token");
        assert_eq!(denied_header(&d, "www-authenticate"), Some("Bearer"));
    }
    // The PDP does not grant it.
    let r = check(&mut c, http("GET", &format!("/krav/{THIRD_ORG}"), &[auth])).await;
    assert_denied(r, PERMISSION_DENIED, 403, "access-not-granted");
    // No route: deny by default, before the token is looked at.
    for (method, path) in [("DELETE", krav.as_str()), ("GET", "/"), ("GET", "/KRAV/923609016")] {
        let r = check(&mut c, http(method, path, &[auth])).await;
        assert_denied(r, PERMISSION_DENIED, 403, "no-matching-route");
    }
    let asked = s.fakes.altinn.pdp_request_count();

    // The PDP down: 503 with Retry-After, never OK.
    s.fakes.altinn.set_answer(PdpAnswer::Raw {
        status: 503,
        headers: vec![("Retry-After".into(), "3".into())],
        body: String::new(),
    });
    let r = check(&mut c, http("GET", "/dokumenter/x", &[auth, ("x-party", OWNER_ORG)])).await;
    let d = assert_denied(r, UNAVAILABLE, 503, "authorization-unavailable");
    assert!(denied_header(&d, "retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{d:?}");
    assert!(s.fakes.altinn.pdp_request_count() > asked);
}

/// What the decision listener refuses with 400, the ext_authz listener refuses with 400: the
/// same rules, before any route or token.
#[tokio::test]
async fn a_check_that_cannot_be_read_safely_is_400() {
    let s = start("ext-authz-400").await;
    let mut c = client(&s.pep).await;
    let token = format!("Bearer {}", s.token());
    let auth = ("authorization", token.as_str());
    for path in [
        "/krav/../whoami",
        "/whoami/..",
        "/krav/923609016/..%2F..%2Fwhoami",
        "/krav%2F923609016",
        "/krav//923609016",
        "//whoami",
        "/krav;a=b/923609016",
        "/krav/./923609016",
        "/krav/%2E%2E/whoami",
        "/krav\\923609016",
        "krav/923609016",
        "http://api.example/krav/923609016",
        "",
    ] {
        let r = check(&mut c, http("GET", path, &[auth])).await;
        assert_denied(r, INVALID_ARGUMENT, 400, "invalid-forwarded-request");
    }
    // A method that is not one.
    let r = check(&mut c, http("G T", "/whoami", &[auth])).await;
    assert_denied(r, INVALID_ARGUMENT, 400, "invalid-forwarded-request");
    // A :path header that names another request than `path`.
    let mut other = http("GET", "/whoami", &[auth]);
    other.headers.insert(":path".into(), format!("/krav/{CLIENT_ORG}"));
    let r = check(&mut c, other).await;
    assert_denied(r, INVALID_ARGUMENT, 400, "invalid-forwarded-request");
    // Both headers and header_map.
    let mut both = http("GET", "/whoami", &[auth]);
    both.header_map = Some(HeaderMap {
        headers: vec![HeaderValue {
            key: "authorization".into(),
            value: token.clone(),
            raw_value: Vec::new(),
        }],
    });
    let r = check(&mut c, both).await;
    assert_denied(r, INVALID_ARGUMENT, 400, "invalid-forwarded-request");
    // A principal header spelt with underscores (which CGI, WSGI, Rack and PHP-FPM read as the
    // header itself), next to a good token.
    for name in ["x_altinn_party", "x-altinn_systemuser-id", "X_Altinn_Issuer"] {
        let r = check(&mut c, http("GET", &format!("/krav/{CLIENT_ORG}"), &[auth, (name, THIRD_ORG)])).await;
        assert_denied(r, INVALID_ARGUMENT, 400, "invalid-forwarded-request");
    }
    // No HTTP request at all.
    let r = c.check(CheckRequest::default()).await.unwrap().into_inner();
    assert_denied(r, INVALID_ARGUMENT, 400, "invalid-forwarded-request");

    assert_eq!(s.fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn the_ext_authz_listener_is_optional_and_stops_with_the_others() {
    // Not configured: no listener, no line.
    let plain = Setup::start("ext-authz-off").await;
    assert_eq!(plain.pep.ext_authz, None);
    drop(plain);

    let s = start("ext-authz-stop").await;
    let mut c = client(&s.pep).await;
    let r = check(&mut c, http("GET", "/whoami", &[])).await;
    assert_denied(r, UNAUTHENTICATED, 401, "missing-token");
    let Setup { pep, fakes, .. } = s;
    let status = pep.stop("TERM").await;
    assert!(status.success(), "{status:?}");
    drop(fakes);
}
