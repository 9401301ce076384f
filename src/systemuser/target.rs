//! What is asked of the PDP for a request: the resource, the action and the party.

use crate::maskinporten::MaskinportenToken;
use crate::org::Party;
use crate::pdp::{Action, ResourceId};
use crate::reject::RejectionKind;
use http::request::Parts;
use http::{HeaderName, Method};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

type ResourceFn = dyn Fn(&Parts) -> Option<ResourceId> + Send + Sync;
type ActionFn = dyn Fn(&Parts) -> Option<Action> + Send + Sync;
type PartyFn = dyn Fn(&Parts, &MaskinportenToken) -> Option<Party> + Send + Sync;

/// Where the resource id comes from.
#[derive(Clone)]
pub(crate) enum ResourceSource {
    Fixed(ResourceId),
    Computed(Arc<ResourceFn>),
}

/// Where the action comes from.
#[derive(Clone)]
pub(crate) enum ActionSource {
    /// GET/HEAD read, POST/PUT/PATCH write, DELETE delete; anything else is refused.
    FromMethod,
    Fixed(Action),
    /// gRPC method path (`/package.Service/Method`) → action; unlisted methods are refused.
    GrpcMethods(Arc<HashMap<Box<str>, Action>>),
    Computed(Arc<ActionFn>),
}

/// Where the party comes from.
#[derive(Clone)]
pub(crate) enum PartySource {
    /// The organisation that owns the system user (`systemuser_org`).
    SystemUserOrg,
    /// The path segment at this index (0 is the first segment after the leading `/`).
    PathSegment(usize),
    Header(HeaderName),
    Computed(Arc<PartyFn>),
}

/// The three sources, resolved per request.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub resource: ResourceSource,
    pub action: ActionSource,
    pub party: PartySource,
}

impl fmt::Debug for ResourceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceSource::Fixed(r) => f.write_str(r.as_str()),
            ResourceSource::Computed(_) => f.write_str("<computed>"),
        }
    }
}

impl fmt::Debug for ActionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionSource::FromMethod => f.write_str("<from method>"),
            ActionSource::Fixed(a) => f.write_str(a.as_str()),
            ActionSource::GrpcMethods(_) => f.write_str("<from gRPC method>"),
            ActionSource::Computed(_) => f.write_str("<computed>"),
        }
    }
}

impl fmt::Debug for PartySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartySource::SystemUserOrg => f.write_str("<system user's organisation>"),
            PartySource::PathSegment(i) => write!(f, "<path segment {i}>"),
            PartySource::Header(h) => write!(f, "<header {h}>"),
            PartySource::Computed(_) => f.write_str("<computed>"),
        }
    }
}

/// The action for an HTTP method: GET/HEAD read, POST/PUT/PATCH write, DELETE delete.
pub fn action_for_method(method: &Method) -> Option<Action> {
    match *method {
        Method::GET | Method::HEAD => Some(Action::read()),
        Method::POST | Method::PUT | Method::PATCH => Some(Action::write()),
        Method::DELETE => Some(Action::delete()),
        _ => None,
    }
}

impl Target {
    pub(crate) fn resource(&self, parts: &Parts) -> Result<ResourceId, RejectionKind> {
        match &self.resource {
            ResourceSource::Fixed(r) => Ok(r.clone()),
            ResourceSource::Computed(f) => f(parts).ok_or(RejectionKind::InvalidTarget),
        }
    }

    pub(crate) fn action(&self, parts: &Parts) -> Result<Action, RejectionKind> {
        match &self.action {
            ActionSource::FromMethod => action_for_method(&parts.method),
            ActionSource::Fixed(a) => Some(a.clone()),
            ActionSource::GrpcMethods(map) => map.get(parts.uri.path()).cloned(),
            ActionSource::Computed(f) => f(parts),
        }
        .ok_or(RejectionKind::InvalidTarget)
    }

    pub(crate) fn party(&self, parts: &Parts, token: &MaskinportenToken, owner: Party) -> Result<Party, RejectionKind> {
        match &self.party {
            PartySource::SystemUserOrg => Ok(owner),
            PartySource::PathSegment(i) => {
                let seg = parts.uri.path().strip_prefix('/').unwrap_or(parts.uri.path()).split('/').nth(*i);
                seg.and_then(|s| Party::parse(s).ok()).ok_or(RejectionKind::InvalidParty)
            }
            PartySource::Header(name) => {
                let mut all = parts.headers.get_all(name).iter();
                match (all.next(), all.next()) {
                    (Some(v), None) => v
                        .to_str()
                        .ok()
                        .and_then(|s| Party::parse(s.trim()).ok())
                        .ok_or(RejectionKind::InvalidParty),
                    _ => Err(RejectionKind::InvalidParty),
                }
            }
            PartySource::Computed(f) => f(parts, token).ok_or(RejectionKind::InvalidParty),
        }
    }
}

/// The index of the `{name}` segment of a path template such as `/krav/{orgnr}`.
pub(crate) fn template_segment(template: &str) -> Option<usize> {
    let segs: Vec<&str> = template.strip_prefix('/')?.split('/').collect();
    let mut found = None;
    for (i, s) in segs.iter().enumerate() {
        if s.starts_with('{') && s.ends_with('}') && s.len() > 2 {
            if found.is_some() {
                return None;
            }
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(template_segment("/krav/{orgnr}"), Some(1));
        assert_eq!(template_segment("/{orgnr}/krav"), Some(0));
        assert_eq!(template_segment("/krav/{a}/{b}"), None);
        assert_eq!(template_segment("krav/{a}"), None);
        assert_eq!(template_segment("/krav"), None);
    }

    #[test]
    fn methods() {
        assert_eq!(action_for_method(&Method::GET), Some(Action::read()));
        assert_eq!(action_for_method(&Method::PATCH), Some(Action::write()));
        assert_eq!(action_for_method(&Method::DELETE), Some(Action::delete()));
        assert_eq!(action_for_method(&Method::OPTIONS), None);
    }
}
