//! Refusals of the decision listener: the layers' own (rendered by the library's table, in HTTP
//! form) and altinn-pep's three (400 for a request it cannot read, 403 for one no route
//! matches, 404 for anything but `GET /auth`). Each is an RFC 9457 problem with
//! `Cache-Control: no-store` and `X-Altinn-Problem: <slug>`, the slug of its problem type, for a
//! proxy that does not pass the body on (nginx).

use altinn_systemuser::reject::Rejection;
use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::original::Invalid;

/// `X-Altinn-Problem`: the slug of a refusal's problem type (`token-expired`, `no-matching-route`).
pub(crate) const PROBLEM: HeaderName = HeaderName::from_static("x-altinn-problem");

/// The prefix of every problem type.
pub(crate) const PROBLEM_TYPE_PREFIX: &str = "urn:altinn-systemuser:problem:";

/// Slug of the 400 for a request whose original method and URI cannot be read safely.
pub(crate) const INVALID_FORWARDED_REQUEST: &str = "invalid-forwarded-request";
/// Slug of the 403 for a request that no route matches.
pub(crate) const NO_MATCHING_ROUTE: &str = "no-matching-route";
/// Slug of the 404 for anything but `GET /auth` on the decision listener.
pub(crate) const NOT_FOUND: &str = "not-found";

/// A refusal of the layers, as the library renders it in HTTP form, with `X-Altinn-Problem`.
pub(crate) fn library(rejection: &Rejection) -> Response<Body> {
    let mut res = rejection.http_response().map(Body::from);
    res.headers_mut().insert(PROBLEM, HeaderValue::from_static(rejection.kind().slug()));
    res
}

/// altinn-pep's own refusals.
fn own(status: StatusCode, slug: &'static str, title: &str, detail: Option<&str>) -> Response<Body> {
    crate::admin::count_refusal(slug);
    let mut body = json!({
        "type": format!("{PROBLEM_TYPE_PREFIX}{slug}"),
        "title": title,
        "status": status.as_u16(),
    });
    if let Some(d) = detail {
        body["detail"] = json!(d);
    }
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PROBLEM, HeaderValue::from_static(slug));
    res
}

/// 404: the decision listener answers `GET /auth` only.
pub(crate) fn not_found() -> Response<Body> {
    own(
        StatusCode::NOT_FOUND,
        NOT_FOUND,
        "Not found: this listener answers GET /auth only",
        None,
    )
}

/// 400: the original request cannot be read safely.
pub(crate) fn invalid_forwarded(why: Invalid) -> Response<Body> {
    own(
        StatusCode::BAD_REQUEST,
        INVALID_FORWARDED_REQUEST,
        "The original request cannot be read safely",
        Some(why.detail()),
    )
}

/// 403: no route matches (deny by default).
pub(crate) fn no_route() -> Response<Body> {
    own(
        StatusCode::FORBIDDEN,
        NO_MATCHING_ROUTE,
        "No route matches this method and path",
        None,
    )
}
