//! Why a request was refused, and the one table that turns a refusal into a response.
//!
//! Every refusal of both layers goes through [`RejectionKind`]: one row gives the HTTP status,
//! the RFC 6750 `WWW-Authenticate` challenge, the RFC 9457 problem `type`, and the gRPC status,
//! so HTTP and gRPC clients are always told the same thing.
//!
//! | kind | HTTP | challenge `error=` | gRPC |
//! |---|---|---|---|
//! | `MissingToken` | 401 | (none: bare `Bearer`) | 16 `UNAUTHENTICATED` |
//! | `MalformedAuthorization` | 400 | `invalid_request` | 16 `UNAUTHENTICATED` |
//! | token rejected (`MalformedToken` … `InvalidSystemUser`) | 401 | `invalid_token` | 16 `UNAUTHENTICATED` |
//! | `InsufficientScope` | 403 | `insufficient_scope` + `scope=` | 7 `PERMISSION_DENIED` |
//! | `KeysUnavailable` | 503 + `Retry-After` | | 14 `UNAVAILABLE` |
//! | `NotASystemUser` | 403 | | 7 `PERMISSION_DENIED` |
//! | `InvalidParty`, `InvalidTarget` | 400 | | 3 `INVALID_ARGUMENT` |
//! | `Denied`, `NotApplicable`, `Indeterminate`, `ObligationNotMet` | 403 | | 7 `PERMISSION_DENIED` |
//! | `PdpUnavailable` | 503 + `Retry-After` | | 14 `UNAVAILABLE` |
//! | `LayerMissing` (server misconfiguration) | 500 | | 13 `INTERNAL` |
//!
//! The body is `application/problem+json` with `type`, `title`, `status` and `detail`; the
//! `type` is stable (`urn:altinn-systemuser:problem:<slug>`). Nothing from the token, the JWKS or
//! the PDP's answer is ever echoed. A gRPC request (`content-type: application/grpc…`) gets a
//! trailers-only response: HTTP 200 with `grpc-status` and `grpc-message` headers.
//!
//! The [`Rejection`] is also put in the response's extensions, so an outer layer (metrics,
//! logging) can see why; and the response can be replaced with a [`RejectionResponder`].

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// Why a request was refused. Stable: match on it, log it, count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No `Authorization` header, or one with another scheme than `Bearer`.
    MissingToken,
    /// More than one `Authorization` header, or one that is not visible ASCII or has no token.
    MalformedAuthorization,
    /// Not a compact JWS (three base64url parts of JSON), or larger than the size cap.
    MalformedToken,
    /// The header's `alg` is not in the allow-list.
    UnsupportedAlgorithm,
    /// The JWS header is not acceptable: no `kid`, a forbidden member (`jku`, `jwk`, `x5u`,
    /// `x5c`, `crit`, `cty`, `enc`, `zip`) or a `typ` other than `JWT`/`at+jwt`.
    UnsupportedTokenHeader,
    /// The `kid` is not in the issuer's key set, even after a refresh.
    UnknownSigningKey,
    /// The signature does not verify.
    InvalidSignature,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `exp` is in the past (beyond the leeway).
    TokenExpired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    TokenNotYetValid,
    /// `aud` does not match the audience policy.
    WrongAudience,
    /// `exp - iat` exceeds the configured maximum lifetime.
    TokenLifetimeTooLong,
    /// A required claim is missing or has the wrong type, a claim is repeated, or `token_type`
    /// is not `Bearer`.
    InvalidClaims,
    /// The token carries a `urn:altinn:systemuser` entry that is malformed.
    InvalidSystemUser,
    /// The token lacks a scope the route requires.
    InsufficientScope,
    /// No signing keys could be had from the issuer; try again later.
    KeysUnavailable,
    /// The system-user layer ran without the Maskinporten layer in front of it.
    LayerMissing,
    /// A valid token that does not carry a system user.
    NotASystemUser,
    /// The party named by the request is not a valid organisation number or person identifier.
    InvalidParty,
    /// The resource or action computed for the request is not valid.
    InvalidTarget,
    /// The PDP answered `Deny`.
    Denied,
    /// The PDP answered `NotApplicable`: no rule grants the system user this access.
    NotApplicable,
    /// The PDP answered `Indeterminate`, a status other than ok, or a decision we do not know.
    Indeterminate,
    /// The PDP permitted with an obligation we do not understand or cannot meet.
    ObligationNotMet,
    /// The PDP could not be asked or gave no usable answer; try again later.
    PdpUnavailable,
}

/// The gRPC status codes the layers use.
mod grpc {
    pub const INVALID_ARGUMENT: u8 = 3;
    pub const PERMISSION_DENIED: u8 = 7;
    pub const INTERNAL: u8 = 13;
    pub const UNAVAILABLE: u8 = 14;
    pub const UNAUTHENTICATED: u8 = 16;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Challenge {
    None,
    Bare,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

struct Row {
    status: StatusCode,
    challenge: Challenge,
    grpc: u8,
    slug: &'static str,
    title: &'static str,
}

impl RejectionKind {
    fn row(self) -> Row {
        use Challenge as C;
        use RejectionKind as K;
        let (status, challenge, grpc, slug, title) = match self {
            K::MissingToken => (401, C::Bare, grpc::UNAUTHENTICATED, "missing-token", "A bearer token is required"),
            K::MalformedAuthorization => (
                400,
                C::InvalidRequest,
                grpc::UNAUTHENTICATED,
                "malformed-authorization",
                "The Authorization header is malformed",
            ),
            K::MalformedToken => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "malformed-token",
                "The token is not a well-formed JWT",
            ),
            K::UnsupportedAlgorithm => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "unsupported-algorithm",
                "The token's signature algorithm is not accepted",
            ),
            K::UnsupportedTokenHeader => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "unsupported-token-header",
                "The token's header is not accepted",
            ),
            K::UnknownSigningKey => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "unknown-signing-key",
                "The token was not signed by a known key of the issuer",
            ),
            K::InvalidSignature => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "invalid-signature",
                "The token's signature is invalid",
            ),
            K::WrongIssuer => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "wrong-issuer",
                "The token was not issued by the expected issuer",
            ),
            K::TokenExpired => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "token-expired",
                "The token has expired",
            ),
            K::TokenNotYetValid => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "token-not-yet-valid",
                "The token is not valid yet",
            ),
            K::WrongAudience => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "wrong-audience",
                "The token is not meant for this API",
            ),
            K::TokenLifetimeTooLong => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "token-lifetime-too-long",
                "The token's lifetime is longer than allowed",
            ),
            K::InvalidClaims => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "invalid-claims",
                "The token's claims are invalid",
            ),
            K::InvalidSystemUser => (
                401,
                C::InvalidToken,
                grpc::UNAUTHENTICATED,
                "invalid-system-user",
                "The token's system user is malformed",
            ),
            K::InsufficientScope => (
                403,
                C::InsufficientScope,
                grpc::PERMISSION_DENIED,
                "insufficient-scope",
                "The token lacks a required scope",
            ),
            K::KeysUnavailable => (
                503,
                C::None,
                grpc::UNAVAILABLE,
                "keys-unavailable",
                "The token cannot be checked right now",
            ),
            K::LayerMissing => (500, C::None, grpc::INTERNAL, "server-misconfigured", "The server is misconfigured"),
            K::NotASystemUser => (
                403,
                C::None,
                grpc::PERMISSION_DENIED,
                "not-a-system-user",
                "The token does not carry a system user",
            ),
            K::InvalidParty => (
                400,
                C::None,
                grpc::INVALID_ARGUMENT,
                "invalid-party",
                "The party in the request is not valid",
            ),
            K::InvalidTarget => (
                400,
                C::None,
                grpc::INVALID_ARGUMENT,
                "invalid-target",
                "The requested resource or action is not valid",
            ),
            K::Denied => (
                403,
                C::None,
                grpc::PERMISSION_DENIED,
                "access-denied",
                "The system user is denied this access",
            ),
            K::NotApplicable => (
                403,
                C::None,
                grpc::PERMISSION_DENIED,
                "access-not-granted",
                "The system user has not been granted this access",
            ),
            K::Indeterminate => (
                403,
                C::None,
                grpc::PERMISSION_DENIED,
                "access-indeterminate",
                "Access could not be determined",
            ),
            K::ObligationNotMet => (
                403,
                C::None,
                grpc::PERMISSION_DENIED,
                "obligation-not-met",
                "Access requires conditions this system user does not meet",
            ),
            K::PdpUnavailable => (
                503,
                C::None,
                grpc::UNAVAILABLE,
                "authorization-unavailable",
                "Access cannot be decided right now",
            ),
        };
        Row {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            challenge,
            grpc,
            slug,
            title,
        }
    }

    /// The HTTP status this kind is answered with.
    pub fn status(self) -> StatusCode {
        self.row().status
    }

    /// The gRPC status code (`grpc-status`) this kind is answered with.
    pub fn grpc_code(self) -> u8 {
        self.row().grpc
    }

    /// The stable RFC 9457 problem type URI, `urn:altinn-systemuser:problem:<slug>`.
    pub fn problem_type(self) -> &'static str {
        // Built once per kind at compile time would need a macro; a match on the slug is cheap.
        problem_type_for(self.row().slug)
    }

    /// A short, fixed, human-readable title (also the `grpc-message`).
    pub fn title(self) -> &'static str {
        self.row().title
    }
}

macro_rules! problem_types {
    ($($slug:literal),* $(,)?) => {
        fn problem_type_for(slug: &str) -> &'static str {
            match slug {
                $($slug => concat!("urn:altinn-systemuser:problem:", $slug),)*
                _ => "about:blank",
            }
        }
    };
}

problem_types!(
    "missing-token",
    "malformed-authorization",
    "malformed-token",
    "unsupported-algorithm",
    "unsupported-token-header",
    "unknown-signing-key",
    "invalid-signature",
    "wrong-issuer",
    "token-expired",
    "token-not-yet-valid",
    "wrong-audience",
    "token-lifetime-too-long",
    "invalid-claims",
    "invalid-system-user",
    "insufficient-scope",
    "keys-unavailable",
    "server-misconfigured",
    "not-a-system-user",
    "invalid-party",
    "invalid-target",
    "access-denied",
    "access-not-granted",
    "access-indeterminate",
    "obligation-not-met",
    "authorization-unavailable",
);

/// A refused request: the kind, and what the response needs to say about it.
///
/// Put in the extensions of every rejection response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    retry_after: Option<Duration>,
    scope: Option<Arc<str>>,
}

impl Rejection {
    /// A rejection of this kind.
    pub fn new(kind: RejectionKind) -> Self {
        Rejection {
            kind,
            retry_after: None,
            scope: None,
        }
    }

    pub(crate) fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub(crate) fn with_scope(mut self, scope: Arc<str>) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Why the request was refused.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// For `503`s: when the client may try again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// For `InsufficientScope`: the scope(s) the route requires, space-separated.
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The default response: an RFC 9457 problem (HTTP) or a trailers-only gRPC status.
    pub fn to_response(&self, request_headers: &HeaderMap) -> Response<Bytes> {
        if is_grpc(request_headers) {
            self.grpc_response()
        } else {
            self.http_response()
        }
    }

    /// The HTTP form: status, `WWW-Authenticate`, `Retry-After`, problem body.
    pub fn http_response(&self) -> Response<Bytes> {
        let row = self.kind.row();
        let body = serde_json::json!({
            "type": self.kind.problem_type(),
            "title": row.title,
            "status": row.status.as_u16(),
        });
        let mut res = Response::new(Bytes::from(body.to_string()));
        *res.status_mut() = row.status;
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let challenge = match row.challenge {
            Challenge::None => None,
            Challenge::Bare => Some("Bearer".to_owned()),
            Challenge::InvalidRequest => Some(format!("Bearer error=\"invalid_request\", error_description=\"{}\"", row.title)),
            Challenge::InvalidToken => Some(format!("Bearer error=\"invalid_token\", error_description=\"{}\"", row.title)),
            Challenge::InsufficientScope => Some(match &self.scope {
                Some(s) => format!("Bearer error=\"insufficient_scope\", scope=\"{s}\""),
                None => "Bearer error=\"insufficient_scope\"".to_owned(),
            }),
        };
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(WWW_AUTHENTICATE, c);
        }
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        }
        res
    }

    /// The gRPC form: HTTP 200, trailers-only, `grpc-status` and `grpc-message`.
    pub fn grpc_response(&self) -> Response<Bytes> {
        let row = self.kind.row();
        let mut res = Response::new(Bytes::new());
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(u16::from(row.grpc)));
        // Titles are ASCII without '%', so they are valid percent-encoded grpc-messages as is.
        headers.insert("grpc-message", HeaderValue::from_static(row.title));
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        }
        res
    }
}

/// Whether a request is a gRPC call (`content-type: application/grpc…`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().len() >= 16 && v.as_bytes()[..16].eq_ignore_ascii_case(b"application/grpc"))
}

/// Turns a [`Rejection`] into the response sent to the client.
///
/// The default is [`Rejection::to_response`]. Replace it to change the body or add headers;
/// the layer still puts the `Rejection` in the response's extensions. A closure
/// `Fn(&Rejection, &HeaderMap) -> Response<Bytes>` is a `RejectionResponder`.
pub trait RejectionResponder: Send + Sync + 'static {
    /// The response for `rejection`, given the request's headers.
    fn respond(&self, rejection: &Rejection, request_headers: &HeaderMap) -> Response<Bytes>;
}

impl<F> RejectionResponder for F
where
    F: Fn(&Rejection, &HeaderMap) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection, request_headers: &HeaderMap) -> Response<Bytes> {
        self(rejection, request_headers)
    }
}

/// The default [`RejectionResponder`]: [`Rejection::to_response`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemResponder;

impl RejectionResponder for ProblemResponder {
    fn respond(&self, rejection: &Rejection, request_headers: &HeaderMap) -> Response<Bytes> {
        rejection.to_response(request_headers)
    }
}

/// Builds the response of a layer for a rejection, with the rejection in its extensions.
pub(crate) fn render(responder: &dyn RejectionResponder, rejection: Rejection, request_headers: &HeaderMap) -> Response<Bytes> {
    tracing::debug!(kind = ?rejection.kind(), "request refused");
    let mut res = responder.respond(&rejection, request_headers);
    res.extensions_mut().insert(rejection);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_problem_type() {
        use RejectionKind as K;
        let all = [
            K::MissingToken,
            K::MalformedAuthorization,
            K::MalformedToken,
            K::UnsupportedAlgorithm,
            K::UnsupportedTokenHeader,
            K::UnknownSigningKey,
            K::InvalidSignature,
            K::WrongIssuer,
            K::TokenExpired,
            K::TokenNotYetValid,
            K::WrongAudience,
            K::TokenLifetimeTooLong,
            K::InvalidClaims,
            K::InvalidSystemUser,
            K::InsufficientScope,
            K::KeysUnavailable,
            K::LayerMissing,
            K::NotASystemUser,
            K::InvalidParty,
            K::InvalidTarget,
            K::Denied,
            K::NotApplicable,
            K::Indeterminate,
            K::ObligationNotMet,
            K::PdpUnavailable,
        ];
        let mut seen = std::collections::HashSet::new();
        for k in all {
            assert!(k.problem_type().starts_with("urn:altinn-systemuser:problem:"), "{k:?}");
            assert!(seen.insert(k.problem_type()), "{k:?}");
            // HTTP and gRPC agree on the class of failure.
            let expect = match k.status().as_u16() {
                401 | 400 if k != K::InvalidParty && k != K::InvalidTarget => 16,
                400 => 3,
                403 => 7,
                503 => 14,
                500 => 13,
                s => panic!("unexpected status {s}"),
            };
            assert_eq!(k.grpc_code(), expect, "{k:?}");
        }
    }

    #[test]
    fn grpc_detection_and_shape() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
        let r = Rejection::new(RejectionKind::Denied).to_response(&h);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["grpc-status"], "7");
        let r = Rejection::new(RejectionKind::Denied).to_response(&HeaderMap::new());
        assert_eq!(r.status(), 403);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    }
}
