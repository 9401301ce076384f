//! What both fakes share: binding, shutdown, fault modes and response helpers.

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How an endpoint of a fake answers: normally, or with a fault.
///
/// Set per endpoint with [`FakeMaskinporten::set_metadata_mode`](super::FakeMaskinporten::set_metadata_mode),
/// [`set_jwks_mode`](super::FakeMaskinporten::set_jwks_mode),
/// [`set_token_mode`](super::FakeMaskinporten::set_token_mode) and
/// [`FakeAltinn::set_exchange_mode`](super::FakeAltinn::set_exchange_mode). Requests are counted
/// whatever the mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointMode {
    /// The documented answer.
    #[default]
    Normal,
    /// This HTTP status with an empty body (use 200–599).
    Status(u16),
    /// `200 OK`, `Content-Type: application/json`, body `not json{`.
    Garbage,
    /// `200 OK` with a well-formed answer that holds nothing: `{"keys":[]}` for the JWKS, `{}`
    /// for metadata and the token endpoint, an empty body for the token exchange.
    Empty,
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// `200 OK` with the normal answer padded to more than 1 MiB (a JSON member `"padding"`
    /// holding a long string), so only a size limit rejects it.
    Oversized,
    /// Never answers (until the fake is dropped or shut down, when it answers 503).
    Hang,
}

/// Size of the padding added by [`EndpointMode::Oversized`].
pub(crate) const OVERSIZE: usize = (1 << 20) + 1024;

/// Locks a mutex, ignoring poisoning (a panicking test thread must not take the fake down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops the server task when dropped, and releases handlers that hang.
#[derive(Debug)]
pub(crate) struct ServerGuard {
    task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl ServerGuard {
    pub(crate) fn stop(&self) {
        self.shutdown.send_replace(true);
        self.task.abort();
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bound listener on `127.0.0.1:0` and the shutdown signal, before the router exists (the
/// router's state needs the address).
pub(crate) struct Bound {
    listener: tokio::net::TcpListener,
    pub(crate) addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Bound {
    /// Binds `127.0.0.1:0`.
    ///
    /// Panics if no local port can be bound (a broken test environment).
    pub(crate) async fn bind() -> Bound {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test_util: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("test_util: bound listener has no local address");
        let (shutdown, _) = watch::channel(false);
        Bound { listener, addr, shutdown }
    }

    /// A receiver that sees `true` when the server shuts down.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Serves `router` on a spawned task. Connections are accepted as soon as this returns
    /// (the listener is already bound).
    pub(crate) fn serve(self, router: Router) -> ServerGuard {
        let task = tokio::spawn(async move {
            let _ = axum::serve(self.listener, router).await;
        });
        ServerGuard {
            task,
            shutdown: self.shutdown,
        }
    }
}

/// Waits until the server shuts down, then answers 503.
pub(crate) async fn hang(shutdown: &watch::Receiver<bool>) -> Response {
    let mut rx = shutdown.clone();
    let _ = rx.wait_for(|stopped| *stopped).await;
    status(503)
}

/// Applies the parts of `mode` that replace the answer. `None` means "answer normally" (after
/// waiting, for [`EndpointMode::Delay`]); the caller handles `Empty` and `Oversized`.
pub(crate) async fn fault(mode: &EndpointMode, shutdown: &watch::Receiver<bool>) -> Option<Response> {
    match mode {
        EndpointMode::Normal | EndpointMode::Empty | EndpointMode::Oversized => None,
        EndpointMode::Status(code) => Some(status(*code)),
        EndpointMode::Garbage => Some(raw(200, "application/json", "not json{")),
        EndpointMode::Delay(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        EndpointMode::Hang => Some(hang(shutdown).await),
    }
}

/// Adds a `"padding"` member of [`OVERSIZE`] bytes to a JSON object (other values are wrapped).
pub(crate) fn pad(value: Value) -> Value {
    let padding = Value::String("x".repeat(OVERSIZE));
    match value {
        Value::Object(mut m) => {
            m.insert("padding".into(), padding);
            Value::Object(m)
        }
        other => serde_json::json!({ "value": other, "padding": padding }),
    }
}

/// A status code, or 500 if `code` is not one.
pub(crate) fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An empty response with this status.
pub(crate) fn status(code: u16) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status_code(code);
    res
}

/// A response with this status, content type and body.
pub(crate) fn raw(code: u16, content_type: &str, body: impl Into<Body>) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status_code(code);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    res
}

/// A JSON response.
pub(crate) fn json(code: u16, value: &Value) -> Response {
    raw(code, "application/json", value.to_string())
}

/// The bearer token in an `Authorization` header, if there is one.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
