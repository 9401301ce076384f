//! The allowed answer: `200` with the principal as headers, built from the `SystemUser` and the
//! `MaskinportenToken` that the layers put in the request's extensions.
//!
//! | header | value |
//! |---|---|
//! | `X-Altinn-SystemUser-Id` | the system user's UUID |
//! | `X-Altinn-SystemUser-Org` | the organisation that owns it (9 digits) |
//! | `X-Altinn-Party` | the party the PDP permitted (9 digits, or 11 for a person) |
//! | `X-Altinn-Resource` | the resource asked about |
//! | `X-Altinn-Action` | the action asked about |
//! | `X-Altinn-Vendor-Org` | the vendor's organisation (9 digits); omitted when the token names none |
//! | `X-Altinn-Client-Id` | the vendor's Maskinporten client; omitted when the token has none |
//! | `X-Altinn-Issuer` | who issued the token: `maskinporten` (or `altinn`, once such tokens are accepted) |

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use altinn_systemuser::maskinporten::{MaskinportenToken, TokenIssuer};
use altinn_systemuser::org::Party;
use altinn_systemuser::reject::{Rejection, RejectionKind};
use altinn_systemuser::systemuser::SystemUser;
use axum::body::Body;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use crate::problem;

/// `X-Altinn-SystemUser-Id`.
pub(crate) const SYSTEMUSER_ID: HeaderName = HeaderName::from_static("x-altinn-systemuser-id");
/// `X-Altinn-SystemUser-Org`.
pub(crate) const SYSTEMUSER_ORG: HeaderName = HeaderName::from_static("x-altinn-systemuser-org");
/// `X-Altinn-Party`.
pub(crate) const PARTY: HeaderName = HeaderName::from_static("x-altinn-party");
/// `X-Altinn-Resource`.
pub(crate) const RESOURCE: HeaderName = HeaderName::from_static("x-altinn-resource");
/// `X-Altinn-Action`.
pub(crate) const ACTION: HeaderName = HeaderName::from_static("x-altinn-action");
/// `X-Altinn-Vendor-Org`.
pub(crate) const VENDOR_ORG: HeaderName = HeaderName::from_static("x-altinn-vendor-org");
/// `X-Altinn-Client-Id`.
pub(crate) const CLIENT_ID: HeaderName = HeaderName::from_static("x-altinn-client-id");
/// `X-Altinn-Issuer`.
pub(crate) const ISSUER: HeaderName = HeaderName::from_static("x-altinn-issuer");

/// Every principal header, as written in the proxies' configurations. A proxy must set or
/// remove each of them on the way to the upstream, so that a client's copy never arrives.
pub(crate) const PRINCIPAL_HEADERS: [&str; 8] = [
    "X-Altinn-SystemUser-Id",
    "X-Altinn-SystemUser-Org",
    "X-Altinn-Party",
    "X-Altinn-Resource",
    "X-Altinn-Action",
    "X-Altinn-Vendor-Org",
    "X-Altinn-Client-Id",
    "X-Altinn-Issuer",
];

/// Whether `name` is a principal header's name, in any case, with one or more of its dashes
/// written as underscores: a header the proxies neither set nor remove, which CGI, WSGI, Rack
/// and PHP-FPM would read as the principal header itself.
pub(crate) fn looks_like_principal(name: &str) -> bool {
    name.contains('_')
        && PRINCIPAL_HEADERS.iter().any(|p| {
            p.len() == name.len()
                && p.bytes()
                    .zip(name.bytes())
                    .all(|(p, n)| p.eq_ignore_ascii_case(&n) || (p == b'-' && n == b'_'))
        })
}

/// Put in the extensions of the allowed answer, and only there: the decision listener answers
/// 2xx only for a response that carries it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allowed;

/// The issuers whose tokens are accepted, to name the one of a token.
#[derive(Debug)]
pub(crate) struct TrustedIssuers {
    /// The Maskinporten issuer, exactly as configured.
    pub(crate) maskinporten: Box<str>,
}

impl TrustedIssuers {
    /// `X-Altinn-Issuer` for a verified token: who vouched for it, `maskinporten` or `altinn`
    /// (an Altinn-issued token, trusted with `[maskinporten.altinn_tokens]`), as the layer that
    /// verified it says. The one place the value is chosen; a Maskinporten token must name the
    /// configured issuer (an issuer that is not known here is not answered as allowed).
    pub(crate) fn kind(&self, token: &MaskinportenToken) -> Option<&'static str> {
        match token.token_issuer() {
            TokenIssuer::Maskinporten => (token.issuer() == &*self.maskinporten).then_some("maskinporten"),
            TokenIssuer::Altinn => Some("altinn"),
            _ => None,
        }
    }
}

/// The innermost service of every route: reached only through both layers, it answers 200 with
/// the principal.
#[derive(Debug, Clone)]
pub(crate) struct PrincipalAnswer {
    issuers: Arc<TrustedIssuers>,
}

impl PrincipalAnswer {
    pub(crate) fn new(issuers: TrustedIssuers) -> Self {
        PrincipalAnswer {
            issuers: Arc::new(issuers),
        }
    }

    fn answer(&self, req: &Request<()>) -> Response<Body> {
        let ext = req.extensions();
        let (Some(su), Some(token)) = (ext.get::<SystemUser>(), ext.get::<MaskinportenToken>()) else {
            return misconfigured();
        };
        let Some(issuer) = self.issuers.kind(token) else {
            return misconfigured();
        };
        match principal_headers(su, issuer) {
            Some(headers) => {
                let mut res = Response::new(Body::empty());
                *res.headers_mut() = headers;
                res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res.extensions_mut().insert(Allowed);
                res
            }
            None => misconfigured(),
        }
    }
}

/// The principal as headers; `None` if a value cannot be a header value.
pub(crate) fn principal_headers(su: &SystemUser, issuer: &'static str) -> Option<HeaderMap> {
    let mut h = HeaderMap::with_capacity(10);
    let value = |s: String| HeaderValue::try_from(s).ok();
    h.insert(SYSTEMUSER_ID, value(su.id().hyphenated().to_string())?);
    h.insert(SYSTEMUSER_ORG, value(su.owner_org().to_string())?);
    let party = match su.party() {
        Party::Organisation(o) => o.to_string(),
        Party::Person(p) => p.as_str().to_owned(),
    };
    h.insert(PARTY, value(party)?);
    h.insert(RESOURCE, HeaderValue::from_str(su.resource().as_str()).ok()?);
    h.insert(ACTION, HeaderValue::from_str(su.action().as_str()).ok()?);
    if let Some(vendor) = su.vendor_org() {
        h.insert(VENDOR_ORG, value(vendor.to_string())?);
    }
    if let Some(client) = su.client_id() {
        // A client id that cannot be a header value (control characters) is refused, not dropped.
        h.insert(
            CLIENT_ID,
            HeaderValue::from_str(client)
                .ok()
                .filter(|_| client.bytes().all(|b| b.is_ascii_graphic()))?,
        );
    }
    h.insert(ISSUER, HeaderValue::from_static(issuer));
    Some(h)
}

/// The layers let a request through without a principal (cannot happen with `AuthLayer`), or
/// the principal cannot be told in headers: 500, never an allow.
fn misconfigured() -> Response<Body> {
    problem::library(&Rejection::new(RejectionKind::LayerMissing))
}

impl Service<Request<()>> for PrincipalAnswer {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let res = self.answer(&req);
        debug_assert!(res.status() == StatusCode::OK || res.extensions().get::<Allowed>().is_none());
        ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_headers_with_underscores_are_look_alikes() {
        for name in PRINCIPAL_HEADERS {
            assert!(!looks_like_principal(name), "{name}");
            let all = name.replace('-', "_");
            assert!(looks_like_principal(&all), "{all}");
            let one = name.replacen('-', "_", 1);
            assert!(looks_like_principal(&one), "{one}");
            let last = format!("{}_{}", &name[..name.rfind('-').unwrap()], &name[name.rfind('-').unwrap() + 1..]);
            assert!(looks_like_principal(&last), "{last}");
        }
        for other in [
            "x_forwarded_for",
            "x-altinn-party-x",
            "x_altinn_partyx",
            "x_altinn",
            "accept",
            "x-altinn_problem",
        ] {
            assert!(!looks_like_principal(other), "{other}");
        }
    }

    #[test]
    fn the_header_list_names_the_constants() {
        let constants = [
            SYSTEMUSER_ID,
            SYSTEMUSER_ORG,
            PARTY,
            RESOURCE,
            ACTION,
            VENDOR_ORG,
            CLIENT_ID,
            ISSUER,
        ];
        for (name, shown) in constants.iter().zip(PRINCIPAL_HEADERS) {
            assert_eq!(name.as_str(), shown.to_ascii_lowercase());
        }
    }

    #[test]
    fn a_request_without_a_principal_is_never_allowed() {
        let mut answer = PrincipalAnswer::new(TrustedIssuers {
            maskinporten: "https://maskinporten.no/".into(),
        });
        let res = futures_util::FutureExt::now_or_never(answer.call(Request::new(())))
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), 500);
        assert!(res.extensions().get::<Allowed>().is_none());
        assert!(PRINCIPAL_HEADERS.iter().all(|h| !res.headers().contains_key(*h)));
    }
}
