//! [`RecordedRequest`]: what the fake received.

use crate::test_util::server;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde_json::Value;

/// One request received by [`FakeAltinn`](super::FakeAltinn), recorded before it was answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The path (without the query).
    pub path: String,
    /// All request headers, including `Authorization` and `Ocp-Apim-Subscription-Key`.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer_token(&self) -> Option<&str> {
        server::bearer(&self.headers)
    }
}

pub(super) fn record(method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> RecordedRequest {
    RecordedRequest {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    }
}
