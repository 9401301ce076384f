//! Altinn's resource registry, `GET /resourceregistry/api/v1/resource/{id}`: the resources
//! this fake knows (see [`FakeAltinn::add_resource`](super::FakeAltinn::add_resource)),
//! described as the registry describes them, and `404` with a problem body for the rest.

use super::AltinnState;
use crate::test_util::server::{self, lock};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

/// The resources a new fake knows: the one the examples and tests use.
pub(super) const DEFAULT_RESOURCES: &[&str] = &["kravogbetaling"];

pub(super) async fn resource(State(st): State<Arc<AltinnState>>, Path(id): Path<String>) -> Response {
    if !lock(&st.resources).contains(&id) {
        let problem = json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.5",
            "title": "Not Found",
            "status": 404,
        });
        let mut res = server::json(404, &problem);
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        return res;
    }
    server::json(
        200,
        &json!({
            "identifier": id,
            "title": { "en": id, "nb": id, "nn": id },
            "description": { "en": "A resource of FakeAltinn", "nb": "", "nn": "" },
            "resourceType": "GenericAccessResource",
            "status": "Completed",
            "isComplete": true,
            "delegable": true,
            "visible": true,
            "hasCompetentAuthority": { "orgcode": "fake", "organization": "991825827", "name": { "en": "FakeAltinn" } },
            "accessListMode": "Disabled",
        }),
    )
}
