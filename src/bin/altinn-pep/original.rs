//! The original request, as the proxy describes it: `X-Forwarded-Method` + `X-Forwarded-Uri`
//! (Traefik, Caddy) or `X-Original-Method` + `X-Original-URI` (nginx), or the `method` and
//! `path` of an Envoy `CheckRequest` ([`from_parts`], used by [`crate::ext_authz`]).
//!
//! Anything doubtful is a 400, never an allow: a kind given in part, a header given twice,
//! both kinds given and disagreeing, neither given, and a URI whose path the proxy and the
//! upstream could read differently from how the routes read it: `..` anywhere in the path, a
//! `.` segment, `//`, `\`, `;` path parameters, an encoded `/`, `\`, `.`, `;` or `%`, an
//! encoded control character, malformed percent-encoding, a fragment, bytes outside visible
//! ASCII, or anything but an absolute path (`/…`). The query is passed through untouched (it
//! is not used for routing).

use http::{HeaderMap, Method, Uri};

/// The longest URI accepted.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// The method and URI the proxy is asking about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Original {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
}

/// Why the original request cannot be known: each a fixed text (never the client's bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Neither kind of headers.
    Missing,
    /// One header of a kind without the other.
    Incomplete,
    /// A header given more than once.
    Repeated,
    /// Both kinds, with different values.
    Disagree,
    /// The method is not an HTTP method token.
    Method,
    /// The URI breaks a rule; the text says which.
    Uri(&'static str),
    /// An Envoy `CheckRequest` that does not describe one HTTP request unambiguously; the text
    /// says why.
    CheckRequest(&'static str),
    /// A header spelling a principal header with underscores (`X_Altinn_Party`): CGI, WSGI,
    /// Rack and PHP-FPM read it as the principal header itself, and not every proxy drops it.
    LookAlike,
}

impl Invalid {
    /// The reason, for the problem's `detail`.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Invalid::Missing => {
                "the original method and URI are missing (X-Forwarded-Method and X-Forwarded-Uri, or X-Original-Method and X-Original-URI)"
            }
            Invalid::Incomplete => "the original method or URI is missing (give both headers of a kind)",
            Invalid::Repeated => "a header naming the original request is given more than once",
            Invalid::Disagree => "X-Forwarded-* and X-Original-* name different requests",
            Invalid::Method => "the original method is not an HTTP method",
            Invalid::Uri(why) | Invalid::CheckRequest(why) => why,
            Invalid::LookAlike => {
                "a header spells an X-Altinn-* principal header with underscores: some servers would read it as that header"
            }
        }
    }
}

/// The one value of a header, if any; a second one is an error.
fn one<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h [u8]>, Invalid> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v.as_bytes())),
        (Some(_), Some(_)) => Err(Invalid::Repeated),
    }
}

/// A method and a URI as the proxy wrote them.
type RawPair<'h> = (&'h [u8], &'h [u8]);

/// Both headers of a kind, or neither.
fn pair<'h>(headers: &'h HeaderMap, method: &str, uri: &str) -> Result<Option<RawPair<'h>>, Invalid> {
    match (one(headers, method)?, one(headers, uri)?) {
        (Some(m), Some(u)) => Ok(Some((m, u))),
        (None, None) => Ok(None),
        _ => Err(Invalid::Incomplete),
    }
}

/// Reads the original request from the proxy's headers.
pub(crate) fn read(headers: &HeaderMap) -> Result<Original, Invalid> {
    let forwarded = pair(headers, "x-forwarded-method", "x-forwarded-uri")?;
    let original = pair(headers, "x-original-method", "x-original-uri")?;
    let (method, uri) = match (forwarded, original) {
        (Some(a), Some(b)) if a != b => return Err(Invalid::Disagree),
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(Invalid::Missing),
    };
    from_parts(method, uri)
}

/// The original request from a method and a URI as a proxy wrote them, by the same rules
/// whichever way they arrived (headers of `GET /auth`, or Envoy's `CheckRequest`).
pub(crate) fn from_parts(method: &[u8], uri: &[u8]) -> Result<Original, Invalid> {
    let method = (!method.is_empty() && method.len() <= 32)
        .then(|| Method::from_bytes(method).ok())
        .flatten()
        .ok_or(Invalid::Method)?;
    let uri = check_uri(uri).map_err(Invalid::Uri)?;
    Ok(Original { method, uri })
}

/// Checks a URI by the rules in the module docs and parses it.
pub(crate) fn check_uri(raw: &[u8]) -> Result<Uri, &'static str> {
    if raw.len() > MAX_URI_BYTES {
        return Err("the original URI is too long");
    }
    if !raw.iter().all(|b| b.is_ascii_graphic()) {
        return Err("the original URI has spaces, control characters or bytes outside ASCII");
    }
    if raw.first() != Some(&b'/') {
        return Err("the original URI is not an absolute path");
    }
    if raw.contains(&b'#') {
        return Err("the original URI has a fragment ('#')");
    }
    let path = raw.split(|b| *b == b'?').next().unwrap_or_default();
    check_path(path)?;
    // Visible ASCII, starting with '/': an origin-form URI.
    let uri = Uri::try_from(raw).map_err(|_| "the original URI cannot be parsed")?;
    if uri.scheme().is_some() || uri.authority().is_some() || uri.path().as_bytes() != path {
        return Err("the original URI cannot be parsed");
    }
    Ok(uri)
}

/// The path rules (no query).
fn check_path(path: &[u8]) -> Result<(), &'static str> {
    if path.windows(2).any(|w| w == b"..") {
        return Err("'..' in the original path");
    }
    if path.windows(2).any(|w| w == b"//") {
        return Err("'//' in the original path");
    }
    if path.contains(&b';') {
        return Err("';' (path parameters) in the original path");
    }
    if path.contains(&b'\\') {
        return Err("'\\' in the original path");
    }
    if path.split(|b| *b == b'/').any(|seg| seg == b".") {
        return Err("a '.' segment in the original path");
    }
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        if b == b'%' {
            let byte = match (path.get(i + 1).and_then(hex), path.get(i + 2).and_then(hex)) {
                (Some(hi), Some(lo)) => (hi << 4) | lo,
                _ => return Err("malformed percent-encoding in the original path"),
            };
            if matches!(byte, b'/' | b'\\' | b'.' | b';' | b'%') || byte.is_ascii_control() {
                return Err("an encoded '/', '\\', '.', ';', '%' or control character in the original path");
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn either_kind_names_the_request() {
        for pairs in [
            [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/krav/923609016?x=1")],
            [("x-original-method", "GET"), ("x-original-uri", "/krav/923609016?x=1")],
        ] {
            let o = read(&headers(&pairs)).unwrap();
            assert_eq!(o.method, Method::GET);
            assert_eq!(o.uri, "/krav/923609016?x=1");
        }
        // Both kinds, agreeing.
        let both = [
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/a"),
            ("x-original-method", "POST"),
            ("x-original-uri", "/a"),
        ];
        assert_eq!(read(&headers(&both)).unwrap().method, Method::POST);
    }

    #[test]
    fn doubtful_headers_are_refused() {
        let cases: &[(&[(&str, &str)], Invalid)] = &[
            (&[], Invalid::Missing),
            (&[("x-forwarded-method", "GET")], Invalid::Incomplete),
            (&[("x-original-uri", "/a")], Invalid::Incomplete),
            (&[("x-forwarded-method", "GET"), ("x-original-uri", "/a")], Invalid::Incomplete),
            (
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a"), ("x-original-uri", "/a")],
                Invalid::Incomplete,
            ),
            (
                &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/a")],
                Invalid::Repeated,
            ),
            (
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/a"),
                    ("x-original-method", "GET"),
                    ("x-original-uri", "/b"),
                ],
                Invalid::Disagree,
            ),
            (
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/a"),
                    ("x-original-method", "POST"),
                    ("x-original-uri", "/a"),
                ],
                Invalid::Disagree,
            ),
            (&[("x-original-method", "G(T"), ("x-original-uri", "/a")], Invalid::Method),
        ];
        for (pairs, expected) in cases {
            assert_eq!(read(&headers(pairs)), Err(*expected), "{pairs:?}");
        }
    }

    #[test]
    fn uris_that_could_be_read_two_ways_are_refused() {
        for bad in [
            "",
            "krav/1",
            "*",
            "http://evil.example/krav/1",
            "//evil.example/krav/1",
            "/krav/../admin",
            "/krav/..",
            "/..",
            "/krav/a..b",
            "/krav//923609016",
            "/krav/923609016//",
            "/krav/./923609016",
            "/krav/.",
            "/krav;jsessionid=1/923609016",
            "/krav/923609016;v=1",
            "/krav%2F923609016",
            "/krav%2f923609016",
            "/krav/%2E%2E/admin",
            "/krav/%2e/x",
            "/krav/%5C",
            "/krav/%3B",
            "/krav/%252F",
            "/krav/%00",
            "/krav/%0A",
            "/krav/%7F",
            "/krav/%",
            "/krav/%4",
            "/krav/%G1",
            "/krav\\..\\admin",
            "/krav/923609016#x",
            "/krav/ 923609016",
            "/kråv/923609016",
        ] {
            assert!(check_uri(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(check_uri(&[b'/'; MAX_URI_BYTES + 1]).is_err());
        for good in [
            "/",
            "/krav/923609016",
            "/krav/923609016/",
            "/krav/923609016?from=2020..2021&next=//x;y",
            "/s%C3%B8k/%20x",
            "/a.b/c.d",
            "/.well-known/x",
        ] {
            let uri = check_uri(good.as_bytes()).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(uri, good);
        }
    }
}
