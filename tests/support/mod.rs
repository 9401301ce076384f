//! Shared helpers for the integration tests: an axum app behind the layers, driven over real
//! HTTP on 127.0.0.1:0 or with `oneshot`.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A response, read to the end.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The RFC 9457 problem type, if the body is a problem.
    pub fn problem_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    pub fn challenge(&self) -> String {
        self.header("www-authenticate").unwrap_or_default().to_owned()
    }
}

pub fn problem(slug: &str) -> String {
    format!("urn:altinn-systemuser:problem:{slug}")
}

pub async fn read(res: Response<Body>) -> Reply {
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// Sends `req` through `app` with `oneshot`.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    read(app.clone().oneshot(req).await.unwrap()).await
}

/// GET `path` with `Authorization: Bearer <token>`.
pub async fn get_with_token(app: &Router, path: &str, token: &str) -> Reply {
    send(
        app,
        Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// Serves `app` on 127.0.0.1:0 (bound before serving) and returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}
