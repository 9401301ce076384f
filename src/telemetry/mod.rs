//! What the layers tell an operations team: an audit trail, request-span fields, and metrics.
//!
//! - **Audit trail** ([`audit`]): every authorization outcome of the system-user layer is one
//!   `INFO` event on the target `altinn_systemuser::audit`, with who (system user, owner,
//!   vendor, client, token id, issuer), what (resource, action, party), the outcome and its
//!   reason, and how the decision was found (`cache`, `pdp`, `shared`) and how long it took.
//!   The Maskinporten layer's refusals are events on the same target with the reason only, at
//!   `DEBUG` by default. A person identifier is never written in clear.
//! - **Span fields** ([`span`]): [`make_span`] is a `MakeSpan` for `tower_http`'s
//!   `TraceLayer` whose span declares the principal fields; both layers record into it.
//! - **Metrics** ([`metrics`], feature `metrics`): request outcomes per layer, PDP results and
//!   latency, decision-cache hits, JWKS freshness and credential refreshes, through the
//!   `metrics` facade. The names are a contract.
//!
//! Never a token, a key, the subscription key or a signature in any event, span or label.
//!
//! ```no_run
//! use altinn_systemuser::telemetry;
//! use axum::Router;
//! use tower_http::trace::TraceLayer;
//! use tracing_subscriber::EnvFilter;
//!
//! // The audit trail and the request spans at INFO, everything else at WARN.
//! tracing_subscriber::fmt()
//!     .with_env_filter(EnvFilter::new("warn,altinn_systemuser::audit=info,altinn_systemuser::request=info"))
//!     .init();
//! let app: Router = Router::new()
//!     // .route(...).route_layer(system_user_layer).route_layer(maskinporten_layer)
//!     .layer(TraceLayer::new_for_http().make_span_with(telemetry::make_span));
//! # let _ = app;
//! ```

pub mod audit;
pub mod metrics;
pub mod span;

pub use span::make_span;
