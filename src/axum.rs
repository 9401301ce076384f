//! axum extractors (feature `axum`).
//!
//! [`MaskinportenToken`] and [`SystemUser`](crate::systemuser::SystemUser) are extractors; so are
//! `Option<MaskinportenToken>` and `Option<SystemUser>` (for routes that serve anonymous and
//! authenticated callers differently). A required extractor on a route that the layer does not
//! cover answers 500: that is a server misconfiguration, as with axum's `Extension`, and it is
//! logged at error level once.

use crate::maskinporten::MaskinportenToken;
use crate::readiness::ReadinessReport;
use crate::reject::{Rejection, RejectionKind};
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let res = self.http_response();
        let (mut parts, body) = res.into_parts();
        parts.extensions.insert(self);
        Response::from_parts(parts, axum_core::body::Body::from(body))
    }
}

/// `200` with `{"status":"ready",…}` or `503` with `{"status":"not_ready",…}`
/// ([`ReadinessReport::to_json`]), so that a readiness route is
/// `get(move || async move { readiness.check().await })`.
impl IntoResponse for ReadinessReport {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut res = Response::new(axum_core::body::Body::from(body));
        *res.status_mut() = self.status_code();
        res.headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        res
    }
}

static LOGGED: AtomicBool = AtomicBool::new(false);

pub(crate) fn missing_layer(what: &'static str) -> Rejection {
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!(
            extractor = what,
            "extractor used on a route without the layer that provides it; answering 500"
        );
    }
    Rejection::new(RejectionKind::LayerMissing)
}

macro_rules! extension_extractor {
    ($ty:ty, $name:literal) => {
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = Rejection;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                parts.extensions.get::<$ty>().cloned().ok_or_else(|| missing_layer($name))
            }
        }

        impl<S: Send + Sync> OptionalFromRequestParts<S> for $ty {
            type Rejection = Infallible;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
                Ok(parts.extensions.get::<$ty>().cloned())
            }
        }
    };
}

extension_extractor!(MaskinportenToken, "MaskinportenToken");
extension_extractor!(crate::systemuser::SystemUser, "SystemUser");
