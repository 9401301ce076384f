//! Layer 2: ask the Altinn PDP whether the system user may do this.
//!
//! | file | role |
//! |---|---|
//! | `layer.rs` | [`SystemUserLayer`] and its builder |
//! | `service.rs` | [`SystemUserService`]: verified token → PDP decision → extensions |
//! | `target.rs` | how resource, action and party are derived from a request |
//! | `principal.rs` | [`SystemUser`], the authorized principal |
//!
//! The PDP itself is called from [`crate::pdp`].
//!
//! Unless told otherwise, the layer asks about the action that goes with the HTTP method
//! ([`action_for_method`]). It needs the verified token that
//! [`MaskinportenLayer`](crate::maskinporten::MaskinportenLayer) puts in the request extensions: without one,
//! the layer is mounted wrongly, and every request is answered `500` (problem type
//! `server-misconfigured`) without asking the PDP or calling the handler.
//!
//! ```
//! use altinn_systemuser::pdp::{AltinnPdp, AltinnToken, AltinnTokenSource, PdpError, PdpErrorKind};
//! use altinn_systemuser::systemuser::{SystemUserLayer, action_for_method};
//! use altinn_systemuser::reject::{Rejection, RejectionKind};
//! use http::{Method, Request, Response, StatusCode};
//! use std::convert::Infallible;
//! use std::future::Future;
//! use std::pin::Pin;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! /// Never asked in this example: no request gets as far as the PDP.
//! struct NoTokens;
//!
//! impl AltinnTokenSource for NoTokens {
//!     fn token(&self, _force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
//!         Box::pin(async { Err(PdpError::new(PdpErrorKind::Credentials)) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // GET and HEAD read, POST, PUT and PATCH write, DELETE deletes; other methods are refused.
//! assert_eq!(action_for_method(&Method::GET).unwrap().as_str(), "read");
//! assert_eq!(action_for_method(&Method::PATCH).unwrap().as_str(), "write");
//! assert_eq!(action_for_method(&Method::OPTIONS), None);
//!
//! let pdp = AltinnPdp::builder().platform_url("http://127.0.0.1:9").token_source(NoTokens).build()?;
//! let layer = SystemUserLayer::builder().pdp(pdp).resource("kravogbetaling").build()?;
//! let app = ServiceBuilder::new()
//!     // MaskinportenLayer belongs here, in front.
//!     .layer(layer)
//!     .service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::from("the handler"))) });
//!
//! let res = app.oneshot(Request::new(String::new())).await?;
//! assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! let rejection = res.extensions().get::<Rejection>().unwrap();
//! assert_eq!(rejection.kind(), RejectionKind::LayerMissing);
//! assert_eq!(rejection.kind().problem_type(), "urn:altinn-systemuser:problem:server-misconfigured");
//! # Ok(())
//! # }
//! ```

mod layer;
mod principal;
mod service;
pub(crate) mod target;

pub use layer::{SystemUserLayer, SystemUserLayerBuilder};
pub use principal::SystemUser;
pub use service::{SystemUserService, require_system_user};
pub use target::action_for_method;
