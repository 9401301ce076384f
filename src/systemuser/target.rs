//! What is asked of the PDP for a request: the resource, the action and the party.
//!
//! # A party from the request
//!
//! A party read from the request (a path segment or a header) must be in its canonical spelling
//! ([`Party::parse_canonical`]): exactly nine ASCII digits with a valid check digit for an
//! organisation, exactly eleven with valid check digits for a person. Anything else is refused
//! with `400 invalid-party` before the PDP is asked, so the party asked about is always the
//! string the handler sees (axum's `Path` percent-decodes, but nine or eleven ASCII digits
//! decode to themselves).
//!
//! A path template (`party_from_path("/krav/{orgnr}")`) is matched against the request path as
//! it reaches the layer, byte for byte, without percent-decoding: the path must have the
//! template's number of segments, and every literal segment must be equal. A path of another
//! shape is refused with `400 invalid-party`, since the layer cannot tell where the party is.
//! So are, in particular:
//!
//! - `/krav/0192:923609016`, `/krav/%39...`, `/krav/+923609016`, `/krav/ 923609016`, and
//!   non-ASCII digits (not the canonical spelling);
//! - `/krav/923609016/` (trailing slash: one segment more than the template), `/krav//923609016`
//!   and `//krav/923609016` (empty segments);
//! - `/KRAV/923609016` and `/kr%61v/923609016` (a literal segment that is not equal).
//!
//! Inside `Router::nest("/api", ...)` a `route_layer` sees the path without the prefix, so its
//! template is `/krav/{orgnr}`; a layer on the outer router sees `/api/krav/...` and needs
//! `/api/krav/{orgnr}`. A wrong template refuses every request (fail closed), it never reads
//! another segment.
//!
//! A header (`party_from_header`) must appear exactly once and its whole value must be the
//! canonical spelling: no surrounding whitespace is trimmed.

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
    /// The `{param}` segment of a path template whose literal segments must match.
    PathTemplate(PathTemplate),
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
            PartySource::PathTemplate(t) => write!(f, "<path {t}>"),
            PartySource::Header(h) => write!(f, "<header {h}>"),
            PartySource::Computed(_) => f.write_str("<computed>"),
        }
    }
}

impl PartySource {
    /// The party named by the request itself, in its canonical spelling; `None` for a source
    /// that does not read the request.
    fn read_from(&self, parts: &Parts) -> Option<Party> {
        let raw = match self {
            PartySource::PathSegment(i) => {
                let path = parts.uri.path();
                path.strip_prefix('/').unwrap_or(path).split('/').nth(*i)?
            }
            PartySource::PathTemplate(t) => t.party_segment(parts.uri.path())?,
            PartySource::Header(name) => {
                let mut all = parts.headers.get_all(name).iter();
                match (all.next(), all.next()) {
                    (Some(v), None) => v.to_str().ok()?,
                    _ => return None,
                }
            }
            PartySource::SystemUserOrg | PartySource::Computed(_) => return None,
        };
        Party::parse_canonical(raw).ok()
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
            PartySource::PathSegment(_) | PartySource::PathTemplate(_) | PartySource::Header(_) => {
                self.party.read_from(parts).ok_or(RejectionKind::InvalidParty)
            }
            PartySource::Computed(f) => f(parts, token).ok_or(RejectionKind::InvalidParty),
        }
    }
}

/// One segment of a [`PathTemplate`].
#[derive(Clone, PartialEq, Eq)]
enum TemplateSegment {
    /// Must equal the request's segment, byte for byte.
    Literal(Box<str>),
    /// The party: whatever the request has here, read with [`Party::parse_canonical`].
    Party,
}

/// A path template such as `/krav/{orgnr}`: literal segments and one `{param}` segment, the
/// party.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    segments: Box<[TemplateSegment]>,
}

/// Why a path template cannot be used.
pub(crate) const TEMPLATE_RULES: &str = "template needs a leading '/', exactly one {param} segment, \
     and no braces or wildcards ({*rest}) elsewhere";

impl PathTemplate {
    /// Parses a template: a leading `/`, exactly one whole-segment `{name}`, and literal segments
    /// without `{`, `}`; a wildcard (`{*rest}`) is refused, its length cannot be matched.
    pub(crate) fn parse(template: &str) -> Option<PathTemplate> {
        let mut segments = Vec::new();
        let mut party = false;
        for seg in template.strip_prefix('/')?.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let plain = !name.is_empty() && !name.starts_with('*') && !name.contains(['{', '}']);
                if party || !plain {
                    return None;
                }
                party = true;
                segments.push(TemplateSegment::Party);
            } else if seg.contains(['{', '}']) {
                return None;
            } else {
                segments.push(TemplateSegment::Literal(seg.into()));
            }
        }
        party.then(|| PathTemplate { segments: segments.into() })
    }

    /// The request path's segment in the party's place, if the path has the template's shape:
    /// a leading `/`, as many segments, and every literal segment equal.
    pub(crate) fn party_segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        let mut found = None;
        let mut request = path.strip_prefix('/')?.split('/');
        for expected in &self.segments {
            let seg = request.next()?;
            match expected {
                TemplateSegment::Literal(lit) if **lit == *seg => {}
                TemplateSegment::Literal(_) => return None,
                TemplateSegment::Party => found = Some(seg),
            }
        }
        if request.next().is_some() {
            return None;
        }
        found
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in &self.segments {
            match seg {
                TemplateSegment::Literal(lit) => write!(f, "/{lit}")?,
                TemplateSegment::Party => f.write_str("/{party}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(template: &str, path: &str) -> Option<String> {
        PathTemplate::parse(template).unwrap().party_segment(path).map(str::to_owned)
    }

    #[test]
    fn templates() {
        for (template, shown) in [
            ("/krav/{orgnr}", "/krav/{party}"),
            ("/{orgnr}/krav", "/{party}/krav"),
            ("/{orgnr}", "/{party}"),
            ("/api/v1/krav/{orgnr}/saker", "/api/v1/krav/{party}/saker"),
            ("/krav/{orgnr}/", "/krav/{party}/"),
        ] {
            assert_eq!(
                PathTemplate::parse(template).map(|t| t.to_string()).as_deref(),
                Some(shown),
                "{template}"
            );
        }
        for bad in [
            "/krav/{a}/{b}",
            "krav/{a}",
            "/krav",
            "",
            "/",
            "/krav/{}",
            "/krav/{*rest}",
            "/krav/{{orgnr}}",
            "/krav/nr-{orgnr}",
            "/krav/{orgnr}.json",
            "/kr{av/{orgnr}",
            "/krav}/{orgnr}",
        ] {
            assert!(PathTemplate::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_template_matches_only_paths_of_its_shape() {
        assert_eq!(segment("/krav/{orgnr}", "/krav/923609016").as_deref(), Some("923609016"));
        assert_eq!(segment("/{orgnr}/krav", "/923609016/krav").as_deref(), Some("923609016"));
        assert_eq!(segment("/a/{p}/b", "/a/x/b").as_deref(), Some("x"));
        assert_eq!(segment("/krav/{orgnr}/", "/krav/923609016/").as_deref(), Some("923609016"));
        for (template, path) in [
            // Another literal, or the literal in another case or percent-encoded.
            ("/krav/{orgnr}", "/betaling/923609016"),
            ("/krav/{orgnr}", "/KRAV/923609016"),
            ("/krav/{orgnr}", "/kr%61v/923609016"),
            // Another number of segments: more, fewer, trailing slash, empty segments.
            ("/krav/{orgnr}", "/krav/923609016/x"),
            ("/krav/{orgnr}", "/krav/923609016/"),
            ("/krav/{orgnr}", "/krav"),
            ("/krav/{orgnr}", "/krav//923609016"),
            ("/krav/{orgnr}", "//krav/923609016"),
            ("/krav/{orgnr}", "/api/krav/923609016"),
            ("/krav/{orgnr}/", "/krav/923609016"),
            ("/{orgnr}/krav", "/krav/923609016"),
            // No leading slash (authority-form or empty path).
            ("/krav/{orgnr}", ""),
            ("/krav/{orgnr}", "krav/923609016"),
        ] {
            assert_eq!(segment(template, path), None, "{template} {path}");
        }
    }

    fn parts(path: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::get(path);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn party_of(source: PartySource, parts: &Parts) -> Result<Party, RejectionKind> {
        source.read_from(parts).ok_or(RejectionKind::InvalidParty)
    }

    #[test]
    fn a_party_from_the_request_is_read_in_its_canonical_spelling_only() {
        let org = Party::parse_canonical("923609016").unwrap();
        let template = || PartySource::PathTemplate(PathTemplate::parse("/krav/{orgnr}").unwrap());
        assert_eq!(party_of(template(), &parts("/krav/923609016", &[])), Ok(org));
        assert_eq!(party_of(template(), &parts("/krav/923609016?x=1", &[])), Ok(org));
        assert_eq!(party_of(PartySource::PathSegment(1), &parts("/krav/923609016", &[])), Ok(org));
        let header = || PartySource::Header(HeaderName::from_static("x-party"));
        assert_eq!(party_of(header(), &parts("/", &[("x-party", "923609016")])), Ok(org));
        for seg in [
            "0192:923609016",
            "%30192:923609016",
            "%39%32%33609016",
            "+923609016",
            "%20923609016",
            "923609016%20",
            "%EF%BC%99%EF%BC%92%EF%BC%93609016",
            "",
        ] {
            let path = format!("/krav/{seg}");
            assert_eq!(party_of(template(), &parts(&path, &[])), Err(RejectionKind::InvalidParty), "{path}");
            assert_eq!(
                party_of(PartySource::PathSegment(1), &parts(&path, &[])),
                Err(RejectionKind::InvalidParty),
                "{path}"
            );
        }
        for path in ["/krav/923609016/", "/krav//923609016", "/betaling/923609016", "/api/krav/923609016"] {
            assert_eq!(party_of(template(), &parts(path, &[])), Err(RejectionKind::InvalidParty), "{path}");
        }
        for value in ["0192:923609016", " 923609016", "923609016 ", "+923609016", "９２３６０９０１６", ""] {
            assert_eq!(
                party_of(header(), &parts("/", &[("x-party", value)])),
                Err(RejectionKind::InvalidParty),
                "{value:?}"
            );
        }
        // Twice, even the same value: refused.
        assert_eq!(
            party_of(header(), &parts("/", &[("x-party", "923609016"), ("x-party", "923609016")])),
            Err(RejectionKind::InvalidParty)
        );
    }

    #[test]
    fn methods() {
        assert_eq!(action_for_method(&Method::GET), Some(Action::read()));
        assert_eq!(action_for_method(&Method::PATCH), Some(Action::write()));
        assert_eq!(action_for_method(&Method::DELETE), Some(Action::delete()));
        assert_eq!(action_for_method(&Method::OPTIONS), None);
    }
}
