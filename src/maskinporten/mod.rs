//! Layer 1: validate the Maskinporten access token.
//!
//! [`MaskinportenLayer`] wraps a service in a [`MaskinportenService`]. Every request must carry
//! `Authorization: Bearer <token>`; the token is checked (signature with Maskinporten's published
//! keys, issuer, lifetime, audience, required scopes) before the inner service is called, and
//! the verified [`MaskinportenToken`] is put in the request extensions. A refused request never
//! reaches the inner service: it is answered with the rejection (see [`crate::reject`]).
//!
//! | file | role |
//! |---|---|
//! | `layer.rs` | [`MaskinportenLayer`] and its builder |
//! | `service.rs` | [`MaskinportenService`]: `Authorization` header → verified token → extensions |
//! | `validate.rs` | where tokens are checked: size, shape, header, signature, claims |
//! | `algorithm.rs` | [`Algorithm`]: the accepted signature algorithms |
//! | `key_store.rs` | [`KeyStore`]: where keys are fetched: discovery, JWKS cache, refresh, backoff |
//! | `jwk.rs` | JWK and JWKS parsing: which published keys are usable, and verifying with one |
//! | `token.rs` | [`MaskinportenToken`] and the claims it is parsed from |
//! | `issuer.rs` | who may vouch for a caller: Maskinporten, and Altinn's platform with [`AltinnTokens`]; picking the profile by `iss` |
//! | `cache.rs` | where tokens are cached: the verified-token cache |
//! | `unverified.rs` | [`UnverifiedToken`]: what a token says about itself, unchecked, for diagnostics |
//!
//! The files import each other in one direction only: `layer` → `service` → `cache` →
//! `validate` → `jwk` → `algorithm`; `key_store` needs only `jwk`, `validate` also `token`, which
//! needs none of the others. Token headers and claims, JWKS and RFC 8414 metadata are read with
//! the crate's strict JSON (`src/strict_json.rs`: repeated member names refused).
//!
//! # Example
//!
//! A request without a token is refused with `401` and `WWW-Authenticate: Bearer`. Nothing is
//! fetched for it: keys are only fetched for a token whose key is not loaded yet.
//!
//! ```
//! use altinn_systemuser::maskinporten::{MaskinportenLayer, MaskinportenToken};
//! use http::{Request, Response, StatusCode, header::WWW_AUTHENTICATE};
//! use std::convert::Infallible;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = MaskinportenLayer::builder()
//!     // In production: `.production()` or `.test_environment()`.
//!     .issuer("http://127.0.0.1:9/")
//!     .require_scope("altinn:example/read")
//!     .build()
//!     .expect("a valid configuration");
//!
//! let handler = service_fn(|req: Request<String>| async move {
//!     // Only reached with a verified token.
//!     let token = req.extensions().get::<MaskinportenToken>().expect("set by the layer");
//!     Ok::<_, Infallible>(Response::new(format!("hello {}", token.client_id().unwrap_or("?"))))
//! });
//! let app = ServiceBuilder::new().layer(layer).service(handler);
//!
//! let res = app.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");
//! # }
//! ```

pub(crate) mod algorithm;
mod cache;
pub(crate) mod issuer;
pub(crate) mod jwk;
pub(crate) mod key_store;
mod layer;
pub(crate) mod service;
mod token;
mod unverified;
pub(crate) mod validate;
#[cfg(test)]
mod wycheproof_tests;

pub use algorithm::Algorithm;
pub use issuer::{AltinnTokens, TokenIssuer, altinn_issuer};
pub use key_store::{KeyStore, KeyStoreError};
pub use layer::{MAX_TOKEN_BYTES, MaskinportenLayer, MaskinportenLayerBuilder, PRODUCTION_ISSUER, TEST_ISSUER};
pub use service::MaskinportenService;
pub use token::{MaskinportenToken, SYSTEM_USER_TYPE, SystemUserClaim};
pub use unverified::UnverifiedToken;
