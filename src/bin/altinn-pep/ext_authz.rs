//! The ext_authz listener: gRPC `envoy.service.auth.v3.Authorization/Check`, for Envoy's
//! `ext_authz` HTTP filter and Istio's `CUSTOM` authorization (the `envoy-types` crate's
//! messages and service trait, served by tonic over h2c).
//!
//! A `CheckRequest` is decided exactly as `GET /auth` is: its
//! `attributes.request.http.method` and `.path` go through the same rules as the proxies'
//! headers ([`original::from_parts`]: `..`, `//`, encoded `/` and the rest are 400), and its
//! headers go with them through [`decision::evaluate`], the one evaluation of both listeners.
//!
//! - **Allowed** (a 2xx carrying [`Allowed`], and nothing else): status `OK` with an
//!   `OkHttpResponse` that sets every principal header the answer has
//!   (`OVERWRITE_IF_EXISTS_OR_ADD`: any value the client sent is discarded) and lists every
//!   other principal header in `headers_to_remove`. See [`allowed`] for why a header we set is
//!   never also listed for removal.
//! - **Refused**: a non-`OK` status (the layers' gRPC code, or the one that matches the HTTP
//!   status for altinn-pep's own refusals) with a `DeniedHttpResponse` that Envoy sends to the
//!   client as it is: the same HTTP status, `WWW-Authenticate`, `Retry-After`, `Content-Type`,
//!   `Cache-Control` and `X-Altinn-Problem` headers and problem body as the decision listener's.
//!   Never `error_response`, which Envoy would let through under `failure_mode_allow: true`.
//!
//! A `CheckRequest` that does not describe one HTTP request unambiguously is refused with 400
//! `invalid-forwarded-request`: no `attributes.request.http`; both `headers` and `header_map`
//! (Envoy sends one: `header_map` with `encode_raw_headers`); a header name or value that is not
//! valid HTTP; a header with both `value` and `raw_value`; or a `:method` or `:path` header that
//! names another request than `method` and `path`. Other pseudo-headers are not passed on.

use std::collections::HashMap;
use std::future::Future;

use altinn_systemuser::reject::{Rejection, RejectionKind};
use axum::body::Body;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap as EnvoyHeaderMap, HeaderValue as EnvoyHeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{Authorization, AuthorizationServer};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::rpc;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use tokio::net::TcpListener;

use crate::decision;
use crate::original::{self, Invalid, Original};
use crate::principal::{Allowed, PRINCIPAL_HEADERS};
use crate::problem::{self, PROBLEM};
use crate::routes::Routes;

/// The longest refusal body passed on to Envoy (the problem bodies are well under 1 KiB).
const MAX_DENIED_BODY_BYTES: usize = 16 * 1024;

/// The headers of a refusal that Envoy sends on to the client.
const DENIED_HEADERS: [HeaderName; 5] = [WWW_AUTHENTICATE, RETRY_AFTER, CONTENT_TYPE, CACHE_CONTROL, PROBLEM];

/// gRPC status codes (`google.rpc.Code`).
mod code {
    pub(super) const OK: i32 = 0;
    pub(super) const INVALID_ARGUMENT: i32 = 3;
    pub(super) const NOT_FOUND: i32 = 5;
    pub(super) const PERMISSION_DENIED: i32 = 7;
    pub(super) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(super) const INTERNAL: i32 = 13;
    pub(super) const UNAVAILABLE: i32 = 14;
    pub(super) const UNAUTHENTICATED: i32 = 16;
}

/// Serves `Check` on `listener` until `stop` resolves, then lets open calls finish.
pub(crate) async fn serve(
    listener: TcpListener,
    routes: Routes,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Messages are limited by tonic's default (4 MiB decoded); Envoy sends no body unless
    // `with_request_body` is set, which the README's configuration leaves off.
    // One service, no router: any other method is answered `UNIMPLEMENTED` by the generated server.
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(
            AuthorizationServer::new(ExtAuthz { routes }),
            tonic::transport::server::TcpIncoming::from(listener),
            stop,
        )
        .await
}

/// The `Authorization` service.
struct ExtAuthz {
    routes: Routes,
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(&self, request: tonic::Request<CheckRequest>) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        // Every outcome is an answer (never a gRPC error, which Envoy would treat as its own
        // failure, governed by `failure_mode_allow` and `status_on_error`).
        let res = match read(request.into_inner()) {
            Ok((original, headers)) => decision::evaluate(&self.routes, original, headers).await,
            Err(why) => problem::invalid_forwarded(why),
        };
        Ok(tonic::Response::new(check_response(res).await))
    }
}

/// The original request and the client's headers, from a `CheckRequest`.
fn read(check: CheckRequest) -> Result<(Original, HeaderMap), Invalid> {
    let http = check
        .attributes
        .and_then(|a| a.request)
        .and_then(|r| r.http)
        .ok_or(Invalid::CheckRequest(
            "the CheckRequest has no HTTP request (attributes.request.http)",
        ))?;
    let original = original::from_parts(http.method.as_bytes(), http.path.as_bytes())?;
    let raw = http.header_map.filter(|m| !m.headers.is_empty());
    let headers = match (http.headers.is_empty(), raw) {
        (false, Some(_)) => {
            return Err(Invalid::CheckRequest(
                "the CheckRequest has both headers and header_map (Envoy sends one of them)",
            ));
        }
        (_, Some(raw)) => from_header_map(raw, &http.method, &http.path)?,
        (_, None) => from_headers(http.headers, &http.method, &http.path)?,
    };
    Ok((original, headers))
}

/// `headers`: lower-case names, one entry per name (Envoy joins repeated headers).
fn from_headers(headers: HashMap<String, String>, method: &str, path: &str) -> Result<HeaderMap, Invalid> {
    let mut out = HeaderMap::with_capacity(headers.len().min(64));
    for (name, value) in headers {
        add(&mut out, &name, value.as_bytes(), method, path)?;
    }
    Ok(out)
}

/// `header_map` (`encode_raw_headers: true`): repeated names kept, values in `raw_value`.
fn from_header_map(map: EnvoyHeaderMap, method: &str, path: &str) -> Result<HeaderMap, Invalid> {
    let mut out = HeaderMap::with_capacity(map.headers.len().min(64));
    for EnvoyHeaderValue { key, value, raw_value } in map.headers {
        let value = match (value.is_empty(), raw_value.is_empty()) {
            (false, false) => {
                return Err(Invalid::CheckRequest(
                    "a header in the CheckRequest's header_map has both value and raw_value",
                ));
            }
            (true, false) => raw_value,
            (_, true) => value.into_bytes(),
        };
        add(&mut out, &key, &value, method, path)?;
    }
    Ok(out)
}

/// Adds one header; a pseudo-header is checked against the request instead.
fn add(out: &mut HeaderMap, name: &str, value: &[u8], method: &str, path: &str) -> Result<(), Invalid> {
    if let Some(pseudo) = name.strip_prefix(':') {
        let disagrees = match pseudo {
            "method" => value != method.as_bytes(),
            "path" => value != path.as_bytes(),
            _ => false,
        };
        return match disagrees {
            true => Err(Invalid::CheckRequest(
                "the CheckRequest's :method or :path header names another request than its method and path",
            )),
            false => Ok(()),
        };
    }
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Invalid::CheckRequest("a header name in the CheckRequest is not a valid HTTP header name"))?;
    let value = HeaderValue::from_bytes(value)
        .map_err(|_| Invalid::CheckRequest("a header value in the CheckRequest is not a valid HTTP header value"))?;
    out.try_append(name, value)
        .map_err(|_| Invalid::CheckRequest("the CheckRequest has too many headers"))?;
    Ok(())
}

/// The evaluation's answer as a `CheckResponse`.
async fn check_response(res: Response<Body>) -> CheckResponse {
    if res.status().is_success() {
        if res.extensions().get::<Allowed>().is_some()
            && let Some(ok) = allowed(res.headers())
        {
            return ok;
        }
        // Only the principal answer may say yes ([`decision::evaluate`] already holds to this).
        return denied(problem::library(&Rejection::new(RejectionKind::LayerMissing))).await;
    }
    denied(res).await
}

/// `OK`, with the principal for the upstream request.
///
/// Envoy applies an `OkHttpResponse` to the request in this order: the `headers` (set, add,
/// append, by their `append_action`), then `headers_to_remove`. A name in both would be set and
/// then removed, and the upstream would see no principal at all. So each principal header is in
/// exactly one of the two lists: set with `OVERWRITE_IF_EXISTS_OR_ADD` (every value the client
/// sent under that name is discarded, ours is the only one) when the answer has it, removed when
/// it has not (`X-Altinn-Vendor-Org` for a token without a vendor). Either way no client copy
/// reaches the upstream, whichever order a version of Envoy applies the two lists in.
///
/// `None` if a value cannot be written as a protobuf string (cannot happen: the principal is
/// visible ASCII).
fn allowed(answer: &HeaderMap) -> Option<CheckResponse> {
    let mut set = Vec::with_capacity(PRINCIPAL_HEADERS.len());
    let mut remove = Vec::new();
    for shown in PRINCIPAL_HEADERS {
        let name = shown.to_ascii_lowercase();
        match answer.get(name.as_str()) {
            Some(value) => set.push(overwrite(name, value.to_str().ok()?.to_owned())),
            None => remove.push(name),
        }
    }
    let ok = OkHttpResponse {
        headers: set,
        headers_to_remove: remove,
        ..OkHttpResponse::default()
    };
    Some(CheckResponse {
        status: Some(rpc::Status {
            code: code::OK,
            message: String::new(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::OkResponse(ok)),
        dynamic_metadata: None,
    })
}

/// A header that replaces every value of its name (`OVERWRITE_IF_EXISTS_OR_ADD`; the deprecated
/// `append` is left unset: when it is set, Envoy reads it instead).
fn overwrite(key: String, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(EnvoyHeaderValue {
            key,
            value,
            raw_value: Vec::new(),
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

/// A refusal: the status, the headers a client may see, and the problem body.
async fn denied(res: Response<Body>) -> CheckResponse {
    let status = res.status();
    let grpc = res
        .extensions()
        .get::<Rejection>()
        .map_or_else(|| code_for(status), |r| i32::from(r.kind().grpc_code()));
    let slug = res
        .headers()
        .get(&PROBLEM)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut headers: Vec<HeaderValueOption> = DENIED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = res.headers().get(name)?.to_str().ok()?;
            Some(overwrite(name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let body = axum::body::to_bytes(res.into_body(), MAX_DENIED_BODY_BYTES)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok());
    let body = match body {
        Some(b) => b,
        None => {
            // Too long or not text: the refusal stands, without a body to describe.
            headers.retain(|h| h.header.as_ref().is_none_or(|h| h.key != CONTENT_TYPE.as_str()));
            String::new()
        }
    };
    CheckResponse {
        status: Some(rpc::Status {
            code: grpc,
            message: slug,
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers,
            body,
        })),
        dynamic_metadata: None,
    }
}

/// The gRPC code for a refusal without a [`Rejection`] (altinn-pep's own), by its HTTP status.
fn code_for(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST => code::INVALID_ARGUMENT,
        StatusCode::UNAUTHORIZED => code::UNAUTHENTICATED,
        StatusCode::FORBIDDEN => code::PERMISSION_DENIED,
        StatusCode::NOT_FOUND => code::NOT_FOUND,
        StatusCode::TOO_MANY_REQUESTS => code::RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        s if s.is_client_error() => code::PERMISSION_DENIED,
        _ => code::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};

    fn check(http: HttpRequest) -> CheckRequest {
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

    fn http(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            ..HttpRequest::default()
        }
    }

    fn raw(pairs: &[(&str, &str, &[u8])]) -> EnvoyHeaderMap {
        EnvoyHeaderMap {
            headers: pairs
                .iter()
                .map(|(k, v, r)| EnvoyHeaderValue {
                    key: (*k).into(),
                    value: (*v).into(),
                    raw_value: r.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_check_request_is_read_like_the_proxies_headers() {
        let (o, h) = read(check(http(
            "GET",
            "/krav/923609016?side=2",
            &[
                ("authorization", "Bearer x"),
                (":path", "/krav/923609016?side=2"),
                (":method", "GET"),
                (":authority", "api"),
            ],
        )))
        .unwrap();
        assert_eq!(o.method, http::Method::GET);
        assert_eq!(o.uri, "/krav/923609016?side=2");
        assert_eq!(h["authorization"], "Bearer x");
        assert_eq!(h.len(), 1, "pseudo-headers are not passed on: {h:?}");

        // Raw headers: repeated names kept.
        let mut req = http("GET", "/whoami", &[]);
        req.header_map = Some(raw(&[
            ("x-party", "", b"1"),
            ("x-party", "2", b""),
            ("authorization", "", b"Bearer y"),
        ]));
        let (_, h) = read(check(req)).unwrap();
        assert_eq!(h.get_all("x-party").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h["authorization"], "Bearer y");
    }

    #[test]
    fn a_doubtful_check_request_is_refused() {
        let no_http = CheckRequest {
            attributes: Some(AttributeContext::default()),
        };
        assert!(matches!(read(no_http), Err(Invalid::CheckRequest(_))));
        assert!(matches!(read(CheckRequest::default()), Err(Invalid::CheckRequest(_))));
        for path in ["/krav/../whoami", "/krav%2F923609016", "//whoami", "", "krav", "/a#b"] {
            assert!(matches!(read(check(http("GET", path, &[]))), Err(Invalid::Uri(_))), "{path}");
        }
        assert_eq!(read(check(http("", "/whoami", &[]))).unwrap_err(), Invalid::Method);
        let cases: Vec<HttpRequest> = vec![
            http("GET", "/whoami", &[(":path", "/krav/923609016")]),
            http("GET", "/whoami", &[(":method", "POST")]),
            http("GET", "/whoami", &[("bad name", "x")]),
            http("GET", "/whoami", &[("x-a", "line\nbreak")]),
            {
                let mut both = http("GET", "/whoami", &[("authorization", "Bearer x")]);
                both.header_map = Some(raw(&[("authorization", "Bearer x", b"")]));
                both
            },
            {
                let mut r = http("GET", "/whoami", &[]);
                r.header_map = Some(raw(&[("authorization", "Bearer x", b"Bearer y")]));
                r
            },
        ];
        for req in cases {
            assert!(matches!(read(check(req.clone())), Err(Invalid::CheckRequest(_))), "{req:?}");
        }
    }

    fn answered(status: StatusCode, headers: &[(&str, &str)], allowed: bool) -> Response<Body> {
        let mut res = Response::new(Body::from("{\"type\":\"x\"}"));
        *res.status_mut() = status;
        for (n, v) in headers {
            res.headers_mut()
                .insert(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        if allowed {
            res.extensions_mut().insert(Allowed);
        }
        res
    }

    fn now<T>(f: impl Future<Output = T>) -> T {
        futures_util::FutureExt::now_or_never(f).expect("ready")
    }

    #[test]
    fn ok_only_for_the_principal_answer() {
        let principal = [("x-altinn-party", "923609016"), ("x-altinn-issuer", "maskinporten")];
        let ok = now(check_response(answered(StatusCode::OK, &principal, true)));
        assert_eq!(ok.status.unwrap().code, code::OK);
        let Some(HttpResponse::OkResponse(ok)) = ok.http_response else {
            panic!()
        };
        let set: Vec<&str> = ok.headers.iter().map(|h| h.header.as_ref().unwrap().key.as_str()).collect();
        assert_eq!(set, ["x-altinn-party", "x-altinn-issuer"]);
        assert!(
            ok.headers
                .iter()
                .all(|h| h.append_action == HeaderAppendAction::OverwriteIfExistsOrAdd as i32)
        );
        assert_eq!(ok.headers_to_remove.len(), PRINCIPAL_HEADERS.len() - 2);
        assert!(set.iter().all(|s| !ok.headers_to_remove.iter().any(|r| r == s)));

        // A 2xx without the marker is a 500, never OK.
        for status in [StatusCode::OK, StatusCode::NO_CONTENT] {
            let res = now(check_response(answered(status, &principal, false)));
            assert_eq!(res.status.unwrap().code, code::INTERNAL);
            let Some(HttpResponse::DeniedResponse(d)) = res.http_response else {
                panic!()
            };
            assert_eq!(d.status.unwrap().code, 500);
            let keys: Vec<&str> = d.headers.iter().map(|h| h.header.as_ref().unwrap().key.as_str()).collect();
            assert!(
                PRINCIPAL_HEADERS.iter().all(|p| !keys.contains(&p.to_ascii_lowercase().as_str())),
                "{keys:?}"
            );
        }
        // A refusal with the marker is still a refusal.
        let res = now(check_response(answered(StatusCode::FORBIDDEN, &[], true)));
        assert_eq!(res.status.unwrap().code, code::PERMISSION_DENIED);
    }

    #[test]
    fn a_refusal_passes_on_its_status_headers_and_body() {
        let res = now(check_response(answered(
            StatusCode::SERVICE_UNAVAILABLE,
            &[
                ("retry-after", "3"),
                ("content-type", "application/problem+json"),
                ("x-altinn-problem", "authorization-unavailable"),
                ("x-other", "not passed on"),
            ],
            false,
        )));
        let status = res.status.unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (code::UNAVAILABLE, "authorization-unavailable")
        );
        let Some(HttpResponse::DeniedResponse(d)) = res.http_response else {
            panic!()
        };
        assert_eq!(d.status.unwrap().code, 503);
        let keys: Vec<&str> = d.headers.iter().map(|h| h.header.as_ref().unwrap().key.as_str()).collect();
        assert_eq!(keys, ["retry-after", "content-type", "x-altinn-problem"]);
        assert_eq!(d.body, "{\"type\":\"x\"}");

        // A body too long to pass on: the refusal stands without it.
        let mut long = answered(StatusCode::FORBIDDEN, &[("content-type", "application/problem+json")], false);
        *long.body_mut() = Body::from(vec![b'x'; MAX_DENIED_BODY_BYTES + 1]);
        let Some(HttpResponse::DeniedResponse(d)) = now(check_response(long)).http_response else {
            panic!()
        };
        assert_eq!((d.status.unwrap().code, d.body.as_str(), d.headers.len()), (403, "", 0));
    }

    #[test]
    fn own_refusals_get_the_code_of_their_status() {
        assert_eq!(code_for(StatusCode::BAD_REQUEST), code::INVALID_ARGUMENT);
        assert_eq!(code_for(StatusCode::FORBIDDEN), code::PERMISSION_DENIED);
        assert_eq!(code_for(StatusCode::TOO_MANY_REQUESTS), code::RESOURCE_EXHAUSTED);
        assert_eq!(code_for(StatusCode::SERVICE_UNAVAILABLE), code::UNAVAILABLE);
        assert_eq!(code_for(StatusCode::INTERNAL_SERVER_ERROR), code::INTERNAL);
        assert_eq!(code_for(StatusCode::GONE), code::PERMISSION_DENIED);
    }
}
