//! Why a request was refused, and the one table that turns a refusal into a response.
//!
//! Every refusal of both layers goes through [`RejectionKind`]: one row gives the HTTP status,
//! the RFC 6750 `WWW-Authenticate` challenge, the RFC 9457 problem `type`, and the gRPC status,
//! so HTTP and gRPC clients are always told the same thing.
//!
//! | kind | HTTP | challenge `error=` | gRPC | problem `type` slug |
//! |---|---|---|---|---|
//! | `MissingToken` | 401 | (none: bare `Bearer`) | 16 `UNAUTHENTICATED` | `missing-token` |
//! | `MalformedAuthorization` | 400 | `invalid_request` | 16 `UNAUTHENTICATED` | `malformed-authorization` |
//! | `MalformedToken` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `malformed-token` |
//! | `UnsupportedAlgorithm` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `unsupported-algorithm` |
//! | `UnsupportedTokenHeader` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `unsupported-token-header` |
//! | `UnknownSigningKey` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `unknown-signing-key` |
//! | `InvalidSignature` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `invalid-signature` |
//! | `WrongIssuer` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `wrong-issuer` |
//! | `TokenExpired` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `token-expired` |
//! | `TokenNotYetValid` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `token-not-yet-valid` |
//! | `WrongAudience` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `wrong-audience` |
//! | `TokenLifetimeTooLong` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `token-lifetime-too-long` |
//! | `InvalidClaims` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `invalid-claims` |
//! | `InvalidSystemUser` | 401 | `invalid_token` | 16 `UNAUTHENTICATED` | `invalid-system-user` |
//! | `InsufficientScope` | 403 | `insufficient_scope` + `scope=` | 7 `PERMISSION_DENIED` | `insufficient-scope` |
//! | `KeysUnavailable` | 503 + `Retry-After` | | 14 `UNAVAILABLE` | `keys-unavailable` |
//! | `LayerMissing` (server misconfiguration) | 500 | | 13 `INTERNAL` | `server-misconfigured` |
//! | `NotASystemUser` | 403 | | 7 `PERMISSION_DENIED` | `not-a-system-user` |
//! | `InvalidParty` | 400 | | 3 `INVALID_ARGUMENT` | `invalid-party` |
//! | `InvalidTarget` | 400 | | 3 `INVALID_ARGUMENT` | `invalid-target` |
//! | `Denied` | 403 | | 7 `PERMISSION_DENIED` | `access-denied` |
//! | `NotApplicable` | 403 | | 7 `PERMISSION_DENIED` | `access-not-granted` |
//! | `Indeterminate` | 403 | | 7 `PERMISSION_DENIED` | `access-indeterminate` |
//! | `ObligationNotMet` | 403 | | 7 `PERMISSION_DENIED` | `obligation-not-met` |
//! | `PdpUnavailable` | 503 + `Retry-After` | | 14 `UNAVAILABLE` | `authorization-unavailable` |
//! | `TooManyDecisions` | 429 + `Retry-After` | | 8 `RESOURCE_EXHAUSTED` | `too-many-decisions` |
//!
//! The gRPC code follows from the HTTP answer: a refused credential (401, or 400 with an RFC 6750
//! challenge) is `UNAUTHENTICATED`, any other 400 `INVALID_ARGUMENT`, 403 `PERMISSION_DENIED`,
//! 429 `RESOURCE_EXHAUSTED`, 503 `UNAVAILABLE` and 500 `INTERNAL`. [`RejectionKind::ALL`] lists every kind.
//!
//! The body is `application/problem+json` with `type`, `title` and `status`; the `type` is
//! stable (`urn:altinn-systemuser:problem:<slug>`). Nothing from the token, the JWKS or the
//! PDP's answer is ever echoed. Both forms carry `Cache-Control: no-store`.
//!
//! # The form of a refusal
//!
//! A refusal has an HTTP form (the status above, with the problem body) and a gRPC form (a
//! trailers-only response: HTTP 200 with `grpc-status` and `grpc-message` headers). Each layer
//! is set to one [`RefusalForm`] with its builder's `refusal_form` setter:
//!
//! - [`RefusalForm::Auto`] (the default) chooses per request: the gRPC form for
//!   `content-type: application/grpc…`, the HTTP form otherwise. Only for a server that serves
//!   HTTP and gRPC behind the same layer: any client can then have its refusal told as a gRPC
//!   status, which is HTTP 200, by sending that content type.
//! - [`RefusalForm::Http`]: always the HTTP form. For plain HTTP routes, so that no refusal is
//!   ever an HTTP 200 that a monitoring rule, a cache or a forward-auth gateway could take for
//!   success.
//! - [`RefusalForm::Grpc`]: always the gRPC form. For a gRPC-only server.
//!
//! The [`Rejection`] is also put in the response's extensions, so an outer layer (metrics,
//! logging) can see why; and the response can be replaced with a [`RejectionResponder`].
//!
//! ```
//! use altinn_systemuser::reject::{Rejection, RejectionKind};
//! use http::HeaderMap;
//!
//! let rejection = Rejection::new(RejectionKind::TokenExpired);
//! let res = rejection.to_response(&HeaderMap::new());
//! assert_eq!(res.status(), 401);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     r#"Bearer error="invalid_token", error_description="The token has expired""#
//! );
//! let problem: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
//! assert_eq!(problem["type"], "urn:altinn-systemuser:problem:token-expired");
//! assert_eq!(problem["status"], 401);
//!
//! // A gRPC client is told the same thing, as a gRPC status.
//! let mut grpc = HeaderMap::new();
//! grpc.insert("content-type", "application/grpc".parse().unwrap());
//! let res = rejection.to_response(&grpc);
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.headers()["grpc-status"], "16"); // UNAUTHENTICATED
//! assert_eq!(res.headers()["grpc-message"], "The token has expired");
//! assert_eq!(res.headers()["cache-control"], "no-store");
//! ```
//!
//! A layer set to HTTP-only refusals answers the same request with the HTTP form:
//!
//! ```
//! use altinn_systemuser::maskinporten::MaskinportenLayer;
//! use altinn_systemuser::reject::RefusalForm;
//! use http::{Request, Response, StatusCode};
//! use std::convert::Infallible;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = MaskinportenLayer::builder()
//!     .issuer("http://127.0.0.1:9/")
//!     .require_scope("altinn:example/read")
//!     .refusal_form(RefusalForm::Http)
//!     .build()
//!     .unwrap();
//! let app = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
//!
//! // No token, and a client that claims to speak gRPC: still a 401, never a 200.
//! let req = Request::builder().header("content-type", "application/grpc").body(String::new()).unwrap();
//! let res = app.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//! # }
//! ```

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The gRPC status codes the layers use.
mod grpc {
    pub(super) const INVALID_ARGUMENT: u8 = 3;
    pub(super) const PERMISSION_DENIED: u8 = 7;
    pub(super) const RESOURCE_EXHAUSTED: u8 = 8;
    pub(super) const INTERNAL: u8 = 13;
    pub(super) const UNAVAILABLE: u8 = 14;
    pub(super) const UNAUTHENTICATED: u8 = 16;
}

/// The RFC 6750 `WWW-Authenticate` challenge of an HTTP refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// No challenge: the credential is not the problem.
    None,
    /// `Bearer`: no credential was given.
    Bare,
    /// `Bearer error="invalid_request", error_description="<title>"`.
    InvalidRequest,
    /// `Bearer error="invalid_token", error_description="<title>"`.
    InvalidToken,
    /// `Bearer error="insufficient_scope"`, with `scope="<required>"` when known.
    InsufficientScope,
}

/// One row of the table.
#[derive(Clone, Copy)]
struct Row {
    status: StatusCode,
    challenge: Challenge,
    grpc: u8,
    problem_type: &'static str,
    slug: &'static str,
    title: &'static str,
}

/// Defines [`RejectionKind`], [`RejectionKind::ALL`] and the row of each kind from one table.
macro_rules! rejection_kinds {
    ($(
        $(#[$doc:meta])*
        $kind:ident {
            status: $status:ident,
            challenge: $challenge:ident,
            grpc: $grpc:ident,
            slug: $slug:literal,
            title: $title:literal $(,)?
        }
    )+) => {
        /// Why a request was refused. Stable: match on it, log it, count it.
        ///
        /// Each kind is one row of the table in the [module docs](self).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum RejectionKind {
            $($(#[$doc])* $kind,)+
        }

        impl RejectionKind {
            /// Every kind, in the order of the table.
            pub const ALL: &'static [RejectionKind] = &[$(RejectionKind::$kind,)+];

            const fn row(self) -> Row {
                match self {
                    $(RejectionKind::$kind => Row {
                        status: StatusCode::$status,
                        challenge: Challenge::$challenge,
                        grpc: grpc::$grpc,
                        problem_type: concat!("urn:altinn-systemuser:problem:", $slug),
                        slug: $slug,
                        title: $title,
                    },)+
                }
            }
        }
    };
}

rejection_kinds! {
    /// No `Authorization` header, or one with another scheme than `Bearer`.
    MissingToken {
        status: UNAUTHORIZED, challenge: Bare, grpc: UNAUTHENTICATED,
        slug: "missing-token", title: "A bearer token is required",
    }
    /// More than one `Authorization` header, or one that is not visible ASCII or has no token.
    MalformedAuthorization {
        status: BAD_REQUEST, challenge: InvalidRequest, grpc: UNAUTHENTICATED,
        slug: "malformed-authorization", title: "The Authorization header is malformed",
    }
    /// Not a compact JWS (three base64url parts of JSON), or larger than the size cap.
    MalformedToken {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "malformed-token", title: "The token is not a well-formed JWT",
    }
    /// The header's `alg` is not in the allow-list.
    UnsupportedAlgorithm {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "unsupported-algorithm", title: "The token's signature algorithm is not accepted",
    }
    /// The JWS header is not acceptable: no `kid`, a forbidden member (`jku`, `jwk`, `x5u`,
    /// `x5c`, `crit`, `cty`, `enc`, `zip`) or a `typ` other than `JWT`/`at+jwt`.
    UnsupportedTokenHeader {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "unsupported-token-header", title: "The token's header is not accepted",
    }
    /// The `kid` is not in the issuer's key set, even after a refresh.
    UnknownSigningKey {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "unknown-signing-key", title: "The token was not signed by a known key of the issuer",
    }
    /// The signature does not verify.
    InvalidSignature {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "invalid-signature", title: "The token's signature is invalid",
    }
    /// `iss` is not the configured issuer.
    WrongIssuer {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "wrong-issuer", title: "The token was not issued by the expected issuer",
    }
    /// `exp` is in the past (beyond the leeway).
    TokenExpired {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "token-expired", title: "The token has expired",
    }
    /// `nbf` or `iat` is in the future (beyond the leeway).
    TokenNotYetValid {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "token-not-yet-valid", title: "The token is not valid yet",
    }
    /// `aud` does not match the audience policy.
    WrongAudience {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "wrong-audience", title: "The token is not meant for this API",
    }
    /// `exp - iat` exceeds the configured maximum lifetime.
    TokenLifetimeTooLong {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "token-lifetime-too-long", title: "The token's lifetime is longer than allowed",
    }
    /// A required claim is missing or has the wrong type, a claim is repeated, a time (`exp`,
    /// `iat`, `nbf`) lies outside 1970–9999, or `token_type` is not `Bearer`.
    InvalidClaims {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "invalid-claims", title: "The token's claims are invalid",
    }
    /// The token carries a `urn:altinn:systemuser` entry that is malformed.
    InvalidSystemUser {
        status: UNAUTHORIZED, challenge: InvalidToken, grpc: UNAUTHENTICATED,
        slug: "invalid-system-user", title: "The token's system user is malformed",
    }
    /// The token lacks a scope the route requires.
    InsufficientScope {
        status: FORBIDDEN, challenge: InsufficientScope, grpc: PERMISSION_DENIED,
        slug: "insufficient-scope", title: "The token lacks a required scope",
    }
    /// No signing keys could be had from the issuer; try again later.
    KeysUnavailable {
        status: SERVICE_UNAVAILABLE, challenge: None, grpc: UNAVAILABLE,
        slug: "keys-unavailable", title: "The token cannot be checked right now",
    }
    /// The system-user layer ran without the Maskinporten layer in front of it.
    LayerMissing {
        status: INTERNAL_SERVER_ERROR, challenge: None, grpc: INTERNAL,
        slug: "server-misconfigured", title: "The server is misconfigured",
    }
    /// A valid token that does not carry a system user.
    NotASystemUser {
        status: FORBIDDEN, challenge: None, grpc: PERMISSION_DENIED,
        slug: "not-a-system-user", title: "The token does not carry a system user",
    }
    /// The party named by the request is not a valid organisation number or person identifier.
    InvalidParty {
        status: BAD_REQUEST, challenge: None, grpc: INVALID_ARGUMENT,
        slug: "invalid-party", title: "The party in the request is not valid",
    }
    /// The resource or action computed for the request is not valid.
    InvalidTarget {
        status: BAD_REQUEST, challenge: None, grpc: INVALID_ARGUMENT,
        slug: "invalid-target", title: "The requested resource or action is not valid",
    }
    /// The PDP answered `Deny`.
    Denied {
        status: FORBIDDEN, challenge: None, grpc: PERMISSION_DENIED,
        slug: "access-denied", title: "The system user is denied this access",
    }
    /// The PDP answered `NotApplicable`: no rule grants the system user this access.
    NotApplicable {
        status: FORBIDDEN, challenge: None, grpc: PERMISSION_DENIED,
        slug: "access-not-granted", title: "The system user has not been granted this access",
    }
    /// The PDP answered `Indeterminate`, a status other than ok, or a decision we do not know.
    Indeterminate {
        status: FORBIDDEN, challenge: None, grpc: PERMISSION_DENIED,
        slug: "access-indeterminate", title: "Access could not be determined",
    }
    /// The PDP permitted with an obligation we do not understand or cannot meet.
    ObligationNotMet {
        status: FORBIDDEN, challenge: None, grpc: PERMISSION_DENIED,
        slug: "obligation-not-met", title: "Access requires conditions this system user does not meet",
    }
    /// The PDP could not be asked or gave no usable answer; try again later.
    PdpUnavailable {
        status: SERVICE_UNAVAILABLE, challenge: None, grpc: UNAVAILABLE,
        slug: "authorization-unavailable", title: "Access cannot be decided right now",
    }
    /// The system user has started too many new PDP questions for now (see
    /// [`AltinnPdpBuilder::decision_rate_limit`](crate::pdp::AltinnPdpBuilder::decision_rate_limit));
    /// try again after `Retry-After`.
    TooManyDecisions {
        status: TOO_MANY_REQUESTS, challenge: None, grpc: RESOURCE_EXHAUSTED,
        slug: "too-many-decisions", title: "Too many new access decisions for this system user right now",
    }
}

impl RejectionKind {
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
        self.row().problem_type
    }

    /// The stable slug, the last part of the [problem type](Self::problem_type): `token-expired`,
    /// `access-denied`, ... Also the `reason` of the audit events and of the request metrics
    /// (see [`crate::telemetry`]).
    ///
    /// ```
    /// use altinn_systemuser::reject::RejectionKind;
    /// assert_eq!(RejectionKind::NotApplicable.slug(), "access-not-granted");
    /// ```
    pub fn slug(self) -> &'static str {
        self.row().slug
    }

    /// A short, fixed, human-readable title (also the `grpc-message`).
    pub fn title(self) -> &'static str {
        self.row().title
    }
}

/// Which form a layer's refusals take: HTTP, gRPC, or chosen per request.
///
/// Set with `refusal_form` on
/// [`MaskinportenLayerBuilder`](crate::maskinporten::MaskinportenLayerBuilder::refusal_form) and
/// [`SystemUserLayerBuilder`](crate::systemuser::SystemUserLayerBuilder::refusal_form); see the
/// [module docs](self#the-form-of-a-refusal).
///
/// ```
/// use altinn_systemuser::reject::RefusalForm;
/// use http::HeaderMap;
///
/// let mut grpc = HeaderMap::new();
/// grpc.insert("content-type", "application/grpc".parse().unwrap());
/// assert!(RefusalForm::Auto.is_grpc(&grpc));
/// assert!(!RefusalForm::Auto.is_grpc(&HeaderMap::new()));
/// assert!(!RefusalForm::Http.is_grpc(&grpc));
/// assert!(RefusalForm::Grpc.is_grpc(&HeaderMap::new()));
/// assert_eq!(RefusalForm::default(), RefusalForm::Auto);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RefusalForm {
    /// Per request: the gRPC form for `content-type: application/grpc…`, the HTTP form
    /// otherwise. The default, for servers that serve HTTP and gRPC behind one layer.
    #[default]
    Auto,
    /// Always the HTTP form (status, challenge, problem body), whatever the request says.
    Http,
    /// Always the gRPC form (HTTP 200 with `grpc-status`), whatever the request says.
    Grpc,
}

impl RefusalForm {
    /// Whether a refusal of a request with these headers takes the gRPC form.
    pub fn is_grpc(self, request_headers: &HeaderMap) -> bool {
        match self {
            RefusalForm::Auto => is_grpc(request_headers),
            RefusalForm::Http => false,
            RefusalForm::Grpc => true,
        }
    }
}

/// A refused request: the kind, and what the response needs to say about it.
///
/// Put in the extensions of every rejection response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    retry_after: Option<Duration>,
    scope: Option<Arc<str>>,
    form: RefusalForm,
}

impl Rejection {
    /// A rejection of this kind, in the [`RefusalForm::Auto`] form.
    pub fn new(kind: RejectionKind) -> Self {
        Rejection {
            kind,
            retry_after: None,
            scope: None,
            form: RefusalForm::Auto,
        }
    }

    /// The form the refusing layer was set to.
    pub(crate) fn with_form(mut self, form: RefusalForm) -> Self {
        self.form = form;
        self
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

    /// For `503`s and `429`s: when the client may try again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// For `InsufficientScope`: the scope(s) the route requires, space-separated.
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The form of the response: the one the refusing layer was set to
    /// ([`RefusalForm::Auto`] for a rejection made with [`new`](Self::new)).
    pub fn form(&self) -> RefusalForm {
        self.form
    }

    /// The default response: an RFC 9457 problem (HTTP) or a trailers-only gRPC status, as
    /// [`form`](Self::form) chooses for a request with these headers.
    pub fn to_response(&self, request_headers: &HeaderMap) -> Response<Bytes> {
        if self.form.is_grpc(request_headers) {
            self.grpc_response()
        } else {
            self.http_response()
        }
    }

    /// The HTTP form: status, `WWW-Authenticate`, `Retry-After`, problem body.
    pub fn http_response(&self) -> Response<Bytes> {
        let row = self.kind.row();
        let body = serde_json::json!({
            "type": row.problem_type,
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

    /// The gRPC form: HTTP 200, trailers-only, `grpc-status` and `grpc-message`, and
    /// `Cache-Control: no-store` (a 200 that no cache may keep).
    pub fn grpc_response(&self) -> Response<Bytes> {
        let row = self.kind.row();
        let mut res = Response::new(Bytes::new());
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("grpc-status", HeaderValue::from(u16::from(row.grpc)));
        // Titles are ASCII without '%', so they are valid percent-encoded grpc-messages as is.
        headers.insert("grpc-message", HeaderValue::from_static(row.title));
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        }
        res
    }
}

/// The kind's title, the same text as the problem `title` and the `grpc-message`.
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.title())
    }
}

impl std::error::Error for Rejection {}

/// Whether a request says it is a gRPC call (`content-type: application/grpc…`). Any client
/// can say so: see [`RefusalForm`].
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().len() >= 16 && v.as_bytes()[..16].eq_ignore_ascii_case(b"application/grpc"))
}

/// Turns a [`Rejection`] into the response sent to the client.
///
/// The default is [`Rejection::to_response`]. Replace it to change the body or add headers;
/// the layer still puts the `Rejection` in the response's extensions. The layer's
/// [`RefusalForm`] is in [`Rejection::form`]: a responder that chooses between HTTP and gRPC
/// itself should ask it ([`RefusalForm::is_grpc`]) rather than the request's content type. A closure
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

/// Builds the response of a layer set to `form` for a rejection, with the rejection in its
/// extensions.
pub(crate) fn render(
    responder: &dyn RejectionResponder,
    form: RefusalForm,
    rejection: Rejection,
    request_headers: &HeaderMap,
) -> Response<Bytes> {
    let rejection = rejection.with_form(form);
    let mut res = responder.respond(&rejection, request_headers);
    res.extensions_mut().insert(rejection);
    res
}

#[cfg(test)]
mod tests;
