//! [`MaskinportenService`]: `Authorization` header → verified token → request extensions.

use super::cache::TokenCache;
use super::issuer::{self, Profile};
use super::key_store::KeyError;
use super::token::MaskinportenToken;
use super::validate::{HeaderMemo, Unverified, Validator, now_unix};
use crate::ResponseFuture;
use crate::reject::{self, RefusalForm, Rejection, RejectionKind, RejectionResponder};
use crate::stack::ExemptPaths;
use crate::telemetry::metrics::{self, LayerName};
use crate::telemetry::{audit, span};
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;
use tracing::Span;

/// The scopes a route requires.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeRule {
    pub all_of: Box<[Box<str>]>,
    pub any_of: Box<[Box<str>]>,
    /// The `scope=` of the challenge: what the route wants.
    pub challenge: Option<Arc<str>>,
}

impl ScopeRule {
    pub(crate) fn new(all_of: Vec<String>, any_of: Vec<String>) -> Self {
        let mut wanted: Vec<&str> = all_of.iter().map(String::as_str).collect();
        wanted.extend(any_of.iter().map(String::as_str));
        let challenge = (!wanted.is_empty()).then(|| Arc::from(wanted.join(" ")));
        ScopeRule {
            all_of: all_of.into_iter().map(Into::into).collect(),
            any_of: any_of.into_iter().map(Into::into).collect(),
            challenge,
        }
    }

    pub(crate) fn allows(&self, token: &MaskinportenToken) -> bool {
        self.all_of.iter().all(|s| token.has_scope(s)) && (self.any_of.is_empty() || self.any_of.iter().any(|s| token.has_scope(s)))
    }
}

pub(crate) struct Config {
    /// The trusted issuers: Maskinporten first, then Altinn's platform if configured.
    pub profiles: Box<[Profile]>,
    pub scopes: ScopeRule,
    pub cache: Option<TokenCache>,
    /// The header of the last token that verified, read once for the tokens after it.
    pub headers: HeaderMemo,
    pub responder: Arc<dyn RejectionResponder>,
    pub form: RefusalForm,
    /// The level of the audit event of a refusal.
    pub refusal_level: tracing::Level,
}

impl Config {
    fn reject(&self, kind: RejectionKind, headers: &HeaderMap) -> Response<Bytes> {
        let mut r = Rejection::new(kind);
        if kind == RejectionKind::InsufficientScope
            && let Some(s) = &self.scopes.challenge
        {
            r = r.with_scope(s.clone());
        }
        self.render(r, headers)
    }

    /// The refusal's response, after its audit event, metric and span fields (the reason only:
    /// nothing from a token that may not have verified).
    fn render(&self, r: Rejection, headers: &HeaderMap) -> Response<Bytes> {
        let kind = r.kind();
        audit::token_refused(self.refusal_level, kind);
        metrics::request_refused(LayerName::Maskinporten, kind);
        span::record_outcome(&Span::current(), Err(kind));
        reject::render(&*self.responder, self.form, r, headers)
    }

    /// Per-route checks on a verified token, then into the extensions.
    fn admit<B>(&self, token: MaskinportenToken, req: &mut Request<B>) -> Result<(), RejectionKind> {
        if !self.scopes.allows(&token) {
            return Err(RejectionKind::InsufficientScope);
        }
        if let Some(v) = req.headers_mut().get_mut(AUTHORIZATION) {
            v.set_sensitive(true);
        }
        metrics::request_allowed(LayerName::Maskinporten);
        span::record_token(&Span::current(), &token);
        req.extensions_mut().insert(token);
        Ok(())
    }

    /// The validator of the header: the algorithms and the size cap are the same for every
    /// issuer.
    pub(crate) fn header_validator(&self) -> &Validator {
        &self.profiles[0].validator
    }

    /// The profile of the issuer the token names. With Maskinporten alone, `iss` is read only
    /// on the slow path (`fetching`): the claims check it anyway, and an `iss` outside the set
    /// must cost no key fetch.
    fn profile(&self, unverified: &Unverified<'_>, fetching: bool) -> Result<usize, RejectionKind> {
        if self.profiles.len() == 1 && !fetching {
            return Ok(0);
        }
        issuer::select(&self.profiles, unverified.payload())
    }

    /// Everything that can be done without waiting: `Ok(Some)` verified, `Ok(None)` keys needed.
    fn verify_now(&self, raw: &[u8], now: i64) -> Result<Option<MaskinportenToken>, RejectionKind> {
        // A hit is a token with the tag of one that passed every check before (its shape was
        // checked then).
        let tag = self.cache.as_ref().and_then(|c| c.tag(raw));
        if let (Some(cache), Some(tag)) = (&self.cache, &tag)
            && let Some(t) = cache.get(tag, now, |p, key| {
                self.profiles.get(usize::from(p)).is_some_and(|p| p.keys.still_published(key))
            })
        {
            return Ok(Some(t));
        }
        let unverified = self.parse(raw)?;
        let i = self.profile(&unverified, false)?;
        let profile = &self.profiles[i];
        let Some(key) = profile.keys.get_cached(&unverified.kid) else {
            return Ok(None);
        };
        let verified = profile.validator.verify(&unverified, &key, now)?;
        self.headers.remember(&unverified, self.header_validator());
        if let (Some(cache), Some(tag)) = (&self.cache, tag) {
            cache.insert(tag, &verified, &key, i as u8);
        }
        Ok(Some(verified))
    }

    /// Size, shape and header, with the refusal the old order gave: a token that is not an RFC
    /// 6750 b64token is `malformed-authorization` before anything else. A token that parses
    /// needs no such check (base64url and dots are b64token characters): only a refused one is
    /// looked at twice.
    fn parse<'a>(&self, raw: &'a [u8]) -> Result<Unverified<'a>, RejectionKind> {
        match std::str::from_utf8(raw).map(|t| self.header_validator().parse_remembered(t, Some(&self.headers))) {
            Ok(Ok(unverified)) => Ok(unverified),
            Ok(Err(kind)) => Err(b64token(raw).err().unwrap_or(kind)),
            Err(_) => Err(b64token(raw).err().unwrap_or(RejectionKind::MalformedAuthorization)),
        }
    }

    /// The slow path: the key has to be fetched first, from the store of the issuer the token
    /// names (an `iss` outside the set fetches nothing).
    async fn verify_after_fetch(&self, token: &str) -> Result<MaskinportenToken, Rejection> {
        let unverified = self.header_validator().parse(token).map_err(Rejection::new)?;
        let i = self.profile(&unverified, true).map_err(Rejection::new)?;
        let profile = &self.profiles[i];
        let key = match profile.keys.get(&unverified.kid).await {
            Ok(k) => k,
            Err(KeyError::UnknownKid) => return Err(Rejection::new(RejectionKind::UnknownSigningKey)),
            Err(KeyError::Unavailable(after)) => {
                return Err(Rejection::new(RejectionKind::KeysUnavailable).with_retry_after(after.max(std::time::Duration::from_secs(1))));
            }
        };
        let verified = profile.validator.verify(&unverified, &key, now_unix()).map_err(Rejection::new)?;
        self.headers.remember(&unverified, self.header_validator());
        if let Some(cache) = &self.cache
            && let Some(tag) = cache.tag(token.as_bytes())
        {
            cache.insert(tag, &verified, &key, i as u8);
        }
        Ok(verified)
    }
}

impl Config {
    /// One token checked as a request's would be, without a request: the slow path (keys
    /// fetched when needed), then the route's scopes.
    pub(crate) async fn check_token(&self, token: &str) -> Result<MaskinportenToken, RejectionKind> {
        if token.len() > self.header_validator().max_token_bytes {
            return Err(RejectionKind::MalformedToken);
        }
        let token = b64token(token.as_bytes())?;
        let verified = self.verify_after_fetch(token).await.map_err(|r| r.kind())?;
        if !self.scopes.allows(&verified) {
            return Err(RejectionKind::InsufficientScope);
        }
        Ok(verified)
    }
}

/// Validates the Maskinporten access token of every request.
///
/// On success the request reaches the inner service with a [`MaskinportenToken`] in its
/// extensions and its `Authorization` header marked sensitive; otherwise the inner service is
/// not called and the client gets the rejection (see [`crate::reject`]).
pub struct MaskinportenService<S> {
    inner: S,
    config: Arc<Config>,
    /// Paths that pass untouched (set by [`AuthLayer`](crate::stack::AuthLayer)).
    exempt: Option<Arc<ExemptPaths>>,
}

impl<S> MaskinportenService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        MaskinportenService {
            inner,
            config,
            exempt: None,
        }
    }

    pub(crate) fn with_exempt(mut self, exempt: Option<Arc<ExemptPaths>>) -> Self {
        self.exempt = exempt;
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone> Clone for MaskinportenService<S> {
    fn clone(&self) -> Self {
        MaskinportenService {
            inner: self.inner.clone(),
            config: self.config.clone(),
            exempt: self.exempt.clone(),
        }
    }
}

impl<S> std::fmt::Debug for MaskinportenService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskinportenService")
            .field("issuer", &self.config.header_validator().issuer)
            .finish_non_exhaustive()
    }
}

/// Whether every byte is a b64token character other than `=`: ALPHA / DIGIT / "-" / "." / "_" /
/// "~" / "+" / "/".
///
/// Written without an early exit so that it compiles to vector compares: it runs over the whole
/// token (a kilobyte or more) on every request, cached or not.
fn all_b64token_body(s: &[u8]) -> bool {
    s.iter().fold(true, |ok, &c| {
        let letter = (c | 0x20).wrapping_sub(b'a') < 26;
        let digit = c.wrapping_sub(b'0') < 10;
        ok & (letter | digit | (c == b'-') | (c == b'.') | (c == b'_') | (c == b'~') | (c == b'+') | (c == b'/'))
    })
}

/// The bytes of `Authorization: Bearer <token>`: one header, the `Bearer` scheme, within the
/// size cap. Their shape is checked by [`b64token`], unless the token cache has a token with
/// their tag (these very bytes).
pub(crate) fn bearer(headers: &HeaderMap, max: usize) -> Result<&[u8], RejectionKind> {
    let mut all = headers.get_all(AUTHORIZATION).iter();
    let value = all.next().ok_or(RejectionKind::MissingToken)?;
    if all.next().is_some() {
        return Err(RejectionKind::MalformedAuthorization);
    }
    let b = value.as_bytes();
    let scheme_end = b.iter().position(|c| *c == b' ').unwrap_or(b.len());
    if !b[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, DPoP, ...): no bearer token was presented.
        return Err(RejectionKind::MissingToken);
    }
    let token = &b[(scheme_end + 1).min(b.len())..];
    if token.len() > max {
        return Err(RejectionKind::MalformedToken);
    }
    Ok(token)
}

/// The token, if it is an RFC 6750 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"
/// followed by "="s.
pub(crate) fn b64token(token: &[u8]) -> Result<&str, RejectionKind> {
    let padding = token.iter().rev().take_while(|c| **c == b'=').count();
    let ok = !token.is_empty() && all_b64token_body(&token[..token.len() - padding]);
    if !ok {
        return Err(RejectionKind::MalformedAuthorization);
    }
    std::str::from_utf8(token).map_err(|_| RejectionKind::MalformedAuthorization)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MaskinportenService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
{
    type Response = Response<crate::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        if ExemptPaths::skip(&self.exempt, req.uri().path()) {
            return ResponseFuture::called(self.inner.call(req));
        }
        // The inner service that was driven to readiness (`self.inner`) is the one we must call.
        // When that happens now, it is called in place; only a call deferred until keys arrive
        // takes it and leaves a clone behind (a clone per request is an allocation for a boxed
        // inner service such as an axum route).
        let config = &self.config;
        let token = match bearer(req.headers(), config.header_validator().max_token_bytes) {
            Ok(t) => t,
            Err(kind) => return ResponseFuture::rejected(config.reject(kind, req.headers())),
        };
        match config.verify_now(token, now_unix()) {
            Ok(Some(verified)) => match config.admit(verified, &mut req) {
                Ok(()) => ResponseFuture::called(self.inner.call(req)),
                Err(kind) => ResponseFuture::rejected(config.reject(kind, req.headers())),
            },
            Err(kind) => ResponseFuture::rejected(config.reject(kind, req.headers())),
            Ok(None) => {
                // `verify_now` checked the shape before it found the key missing.
                let token = String::from_utf8_lossy(token).into_owned();
                let config = self.config.clone();
                let check = async move {
                    match config.verify_after_fetch(&token).await {
                        Ok(verified) => match config.admit(verified, &mut req) {
                            Ok(()) => Ok(req),
                            Err(kind) => Err(config.reject(kind, req.headers())),
                        },
                        Err(r) => Err(config.render(r, req.headers())),
                    }
                }
                .boxed();
                ResponseFuture::after_check(check, &mut self.inner)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64token_body_is_exactly_the_rfc_6750_set() {
        for c in 0..=255u8 {
            let expected = c.is_ascii_alphanumeric() || b"-._~+/".contains(&c);
            assert_eq!(all_b64token_body(&[c]), expected, "{c:#04x}");
            assert_eq!(all_b64token_body(&[b'a', c, b'Z']), expected, "{c:#04x}");
        }
        assert!(all_b64token_body(b""));
    }

    #[test]
    fn bearer_padding() {
        let check = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, v.parse().unwrap());
            bearer(&h, 100).and_then(b64token).map(str::to_owned)
        };
        assert_eq!(check("Bearer abc=="), Ok("abc==".into()));
        assert_eq!(check("Bearer a.b_c~d+e/f-9"), Ok("a.b_c~d+e/f-9".into()));
        assert_eq!(check("Bearer ab=c"), Err(RejectionKind::MalformedAuthorization));
        assert_eq!(check("Bearer a=b="), Err(RejectionKind::MalformedAuthorization));
        assert_eq!(check("Bearer a,b"), Err(RejectionKind::MalformedAuthorization));
        assert_eq!(check("Bearer "), Err(RejectionKind::MalformedAuthorization));
        assert_eq!(check(&format!("Bearer {}", "a".repeat(101))), Err(RejectionKind::MalformedToken));
    }
}
