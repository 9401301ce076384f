//! The routes: which original requests are asked about, and with which system-user layer.
//! A request that no route matches is refused (403): deny by default.
//!
//! A template is a path of segments, each a literal (compared byte for byte, no decoding), a
//! `{name}` (any one non-empty segment) or, last, `{*name}` (one or more segments, the first
//! non-empty). Routes are tried in the file's order; the first whose method set holds the
//! method and whose template matches the path decides the request.

use std::sync::Arc;

use altinn_systemuser::maskinporten::{MaskinportenLayer, MaskinportenService};
use altinn_systemuser::stack::AuthLayer;
use altinn_systemuser::systemuser::SystemUserService;
use http::Method;
use tower_layer::Layer;

use crate::config::BuiltRoute;
use crate::principal::PrincipalAnswer;

/// One segment of a [`RouteTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param,
    Rest,
}

/// A route's path template, e.g. `/krav/{orgnr}` or `/api/v1/{*rest}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteTemplate {
    segments: Box<[Segment]>,
}

impl RouteTemplate {
    /// Parses a template; the error says what is wrong with it.
    pub(crate) fn parse(template: &str) -> Result<RouteTemplate, String> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err(format!("{template:?}: a template starts with '/'"));
        };
        if template.len() > 1024 || !template.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("{template:?}: at most 1024 visible ASCII characters"));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, seg) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let (rest, name) = match name.strip_prefix('*') {
                    Some(n) => (true, n),
                    None => (false, name),
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("{template:?}: {{{name}}} is not a parameter name (letters, digits, '_')"));
                }
                if rest && !last {
                    return Err(format!("{template:?}: {{*{name}}} can only be the last segment"));
                }
                segments.push(if rest { Segment::Rest } else { Segment::Param });
            } else if seg.contains(['{', '}']) {
                return Err(format!("{template:?}: a parameter is a whole segment, such as /krav/{{orgnr}}"));
            } else if seg.is_empty() && !last {
                return Err(format!("{template:?}: no empty segments ('//')"));
            } else if *seg == "." || *seg == ".." || seg.contains(['%', ';', '\\', '?', '#']) {
                return Err(format!(
                    "{template:?}: no '.' or '..' segments, '%', ';', '\\', '?' or '#' (requests with them are refused)"
                ));
            } else {
                segments.push(Segment::Literal((*seg).into()));
            }
        }
        Ok(RouteTemplate { segments: segments.into() })
    }

    /// How many `{name}` segments the template has.
    pub(crate) fn params(&self) -> usize {
        self.segments.iter().filter(|s| **s == Segment::Param).count()
    }

    /// Whether the template ends in `{*name}`.
    pub(crate) fn has_rest(&self) -> bool {
        self.segments.last() == Some(&Segment::Rest)
    }

    /// Whether `path` (no query) has this template's shape.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else { return false };
        let mut request = rest.split('/');
        for expected in self.segments.iter() {
            let Some(seg) = request.next() else { return false };
            match expected {
                Segment::Literal(lit) if **lit == *seg => {}
                Segment::Literal(_) => return false,
                Segment::Param if !seg.is_empty() => {}
                Segment::Param => return false,
                // One or more segments, the first non-empty: whatever follows is covered.
                Segment::Rest => return !seg.is_empty(),
            }
        }
        request.next().is_none()
    }
}

/// The service a route's request goes through: the Maskinporten layer, then the route's
/// system-user layer (in that order, by `AuthLayer`), then the allowed answer.
pub(crate) type RouteService = MaskinportenService<SystemUserService<PrincipalAnswer>>;

/// A route, ready to be asked about.
pub(crate) struct Route {
    methods: Vec<Method>,
    template: RouteTemplate,
    pub(crate) service: RouteService,
}

/// Every route, in the file's order.
#[derive(Clone)]
pub(crate) struct Routes {
    routes: Arc<[Route]>,
}

impl Routes {
    /// Puts each route's system-user layer behind the one Maskinporten layer.
    pub(crate) fn new(maskinporten: &MaskinportenLayer, routes: Vec<BuiltRoute>, answer: PrincipalAnswer) -> Routes {
        let routes = routes
            .into_iter()
            .map(|r| Route {
                methods: r.methods,
                template: r.template,
                service: AuthLayer::new(maskinporten.clone(), r.system_user).layer(answer.clone()),
            })
            .collect();
        Routes { routes }
    }

    /// The first route for this method and path.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.methods.contains(method) && r.template.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> RouteTemplate {
        RouteTemplate::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn templates_match_paths_of_their_shape_only() {
        let krav = t("/krav/{orgnr}");
        assert!(krav.matches("/krav/923609016"));
        assert!(krav.matches("/krav/anything"));
        for p in ["/krav", "/krav/", "/krav/1/2", "/KRAV/1", "/kr%61v/1", "krav/1", "", "/krav/1/"] {
            assert!(!krav.matches(p), "{p}");
        }
        let root = t("/");
        assert!(root.matches("/") && !root.matches("/a"));
        let trailing = t("/krav/");
        assert!(trailing.matches("/krav/") && !trailing.matches("/krav"));
        let rest = t("/api/{*rest}");
        assert!(rest.matches("/api/a") && rest.matches("/api/a/b/c") && rest.matches("/api/a/"));
        for p in ["/api", "/api/", "/apix/a", "/other/api/a"] {
            assert!(!rest.matches(p), "{p}");
        }
        assert_eq!((krav.params(), krav.has_rest()), (1, false));
        assert_eq!((rest.params(), rest.has_rest()), (0, true));
        assert_eq!(t("/a/{x}/b/{y}").params(), 2);
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "",
            "krav",
            "/krav//x",
            "/krav/{}",
            "/krav/{*}",
            "/krav/{*rest}/x",
            "/krav/nr-{orgnr}",
            "/krav/{or-gnr}",
            "/krav/../x",
            "/krav/./x",
            "/krav/%2F",
            "/krav;x",
            "/krav x",
            "/krav?x",
            "/krav\\x",
            "/kråv",
        ] {
            assert!(RouteTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
