//! Asking Altinn's resource registry whether a resource exists: [`AltinnPdp::check_resource`],
//! a setup check (`altinn-pep doctor`), never on the request path.

use serde::Deserialize;

use super::readiness::{CheckError, CheckStep};
use super::{AltinnPdp, ResourceId};
use crate::outbound::{error_label, read_capped};
use crate::single_flight::deadline_in;

/// A resource as the registry describes it, as far as the check reads it.
#[derive(Deserialize)]
struct Resource {
    identifier: Option<String>,
}

impl AltinnPdp {
    /// Whether Altinn's resource registry knows `resource`:
    /// `GET {platform}/resourceregistry/api/v1/resource/{id}`, without credentials (the
    /// registry's read API is public). `Ok(())` for a `200` describing that resource (its
    /// `identifier`); otherwise a [`CheckError`] of step [`CheckStep::Resource`], a `404` told
    /// as an unknown resource. Bounded by the client's time budget and response size; not
    /// counted by the circuit breaker.
    pub async fn check_resource(&self, resource: &ResourceId) -> Result<(), CheckError> {
        let inner = &*self.inner;
        let fail = |reason: String| CheckError::new(CheckStep::Resource, reason);
        // A resource id is `[a-z0-9_-]{4,100}`: nothing in it needs escaping.
        let url = format!("{}{}", inner.resource_registry_url, resource.as_str());
        let work = async {
            let resp = inner
                .http
                .get(&url)
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| fail(format!("the resource registry could not be asked ({})", error_label(&e))))?;
            match resp.status().as_u16() {
                200 => {}
                404 => {
                    return Err(fail(format!(
                        "the resource registry does not know {resource} (404): not created in this environment, or misspelt"
                    )));
                }
                s => return Err(fail(format!("the resource registry answered HTTP {s} for {resource}"))),
            }
            let body = read_capped(resp, inner.max_response_bytes)
                .await
                .map_err(|_| fail("the resource registry's answer could not be read".to_owned()))?;
            let found: Resource = crate::strict_json::from_slice_unique(&body)
                .map_err(|_| fail("the resource registry's answer is not a resource".to_owned()))?;
            match found.identifier {
                Some(id) if id == resource.as_str() => Ok(()),
                _ => Err(fail(format!("the resource registry answered for another resource than {resource}"))),
            }
        };
        tokio::time::timeout_at(deadline_in(inner.timeout), work)
            .await
            .unwrap_or_else(|_| Err(fail("the resource registry did not answer within the time budget".to_owned())))
    }
}
