//! The decision listener: `GET /auth` and nothing else.
//!
//! The proxy names the original request in headers (see [`crate::original`]); its own headers
//! (`Authorization`, `Content-Type`, a party header) come along. The first route for the
//! original method and path decides which system-user layer asks the PDP; the request then goes
//! through the Maskinporten layer and that layer exactly as through a tower stack, with the
//! original method, URI and headers. A 2xx answer always means allowed: it is only ever the
//! answer of [`PrincipalAnswer`](crate::principal::PrincipalAnswer) reached through both layers.
//! [`evaluate`] is that evaluation on its own, also called by the ext_authz listener
//! ([`crate::ext_authz`]).

use std::future::poll_fn;

use altinn_systemuser::ResponseBody;
use altinn_systemuser::reject::{Rejection, RejectionKind};
use altinn_systemuser::telemetry;
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use tower_service::Service;
use tracing::Instrument;

use crate::original::{self, Original};
use crate::principal::{Allowed, PRINCIPAL_HEADERS, looks_like_principal};
use crate::problem::{self, PROBLEM};
use crate::routes::Routes;

/// The one path the decision listener answers.
pub(crate) const AUTH_PATH: &str = "/auth";

/// The decision listener's app: every request goes to [`decide`].
pub(crate) fn router(routes: Routes) -> Router {
    Router::new().fallback(move |req: Request<Body>| {
        let routes = routes.clone();
        async move { decide(&routes, req).await }
    })
}

/// Answers one request of the proxy.
pub(crate) async fn decide(routes: &Routes, req: Request<Body>) -> Response<Body> {
    if req.method() != Method::GET || req.uri().path() != AUTH_PATH {
        return problem::not_found();
    }
    let original = match original::read(req.headers()) {
        Ok(o) => o,
        Err(why) => return problem::invalid_forwarded(why),
    };
    let (parts, _) = req.into_parts();
    evaluate(routes, original, parts.headers).await
}

/// The one evaluation of every listener (`GET /auth` and Envoy's `Check`): the original method
/// and URI, already checked by [`crate::original`], and the client's headers go to the first
/// route's layers; the answer is theirs, read by [`answer`]. A 2xx is returned only for the
/// principal answer ([`Allowed`]).
pub(crate) async fn evaluate(routes: &Routes, original: Original, headers: HeaderMap) -> Response<Body> {
    // The principal headers are set (and the client's copies removed) by their dashed names
    // only: a look-alike with underscores would pass next to them.
    if headers.keys().any(|name| looks_like_principal(name.as_str())) {
        return problem::invalid_forwarded(original::Invalid::LookAlike);
    }
    let Some(route) = routes.find(&original.method, original.uri.path()) else {
        return problem::no_route();
    };
    // The original request as the layers would have seen it: method, URI, the client's headers.
    let mut asked = Request::new(());
    *asked.method_mut() = original.method;
    *asked.uri_mut() = original.uri;
    *asked.headers_mut() = headers;
    let span = telemetry::make_span(&asked);
    let mut service = route.service.clone();
    let res = async move {
        poll_fn(|cx| service.poll_ready(cx)).await?;
        service.call(asked).await
    }
    .instrument(span)
    .await;
    match res {
        Ok(res) => answer(res),
        Err(never) => match never {},
    }
}

/// The layers' answer, as the proxy must read it.
fn answer(res: Response<ResponseBody<ResponseBody<Body>>>) -> Response<Body> {
    let allowed = res.extensions().get::<Allowed>().is_some();
    if res.status().is_success() {
        if allowed {
            return res.map(Body::new);
        }
        // Only the principal answer may say yes.
        return problem::library(&Rejection::new(RejectionKind::LayerMissing));
    }
    let slug = res.extensions().get::<Rejection>().map(|r| r.kind().slug());
    let mut res = res.map(Body::new);
    for h in PRINCIPAL_HEADERS {
        res.headers_mut().remove(h);
    }
    if let Some(slug) = slug {
        res.headers_mut().insert(PROBLEM, HeaderValue::from_static(slug));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn layered(status: StatusCode) -> Response<ResponseBody<ResponseBody<Body>>> {
        let mut res = Response::new(ResponseBody::default());
        *res.status_mut() = status;
        res
    }

    #[test]
    fn a_2xx_without_the_principal_answer_is_never_passed_on() {
        for status in [StatusCode::OK, StatusCode::NO_CONTENT, StatusCode::ACCEPTED] {
            let mut res = layered(status);
            res.headers_mut().insert(
                "x-altinn-systemuser-id",
                HeaderValue::from_static("f950ddae-06c3-4b57-b940-702417a90df0"),
            );
            let out = answer(res);
            assert_eq!(out.status(), 500, "{status}");
            assert!(out.headers().get("x-altinn-systemuser-id").is_none());
        }
        let mut res = layered(StatusCode::OK);
        res.extensions_mut().insert(Allowed);
        assert_eq!(answer(res).status(), 200);
    }

    #[test]
    fn a_refusal_carries_its_slug_and_no_principal() {
        let mut res = layered(StatusCode::FORBIDDEN);
        res.extensions_mut().insert(Rejection::new(RejectionKind::Denied));
        res.headers_mut().insert("x-altinn-party", HeaderValue::from_static("923609016"));
        let out = answer(res);
        assert_eq!(out.status(), 403);
        assert_eq!(out.headers()[PROBLEM], "access-denied");
        assert!(out.headers().get("x-altinn-party").is_none());
    }
}
