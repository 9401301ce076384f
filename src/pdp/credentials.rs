//! The API provider's own credentials for the PDP: a Maskinporten JWT grant, exchanged for an
//! Altinn token, cached until shortly before it expires.
//!
//! 1. `POST {token_endpoint}` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and
//!    an assertion signed with the provider's key (RS256; header `kid` or `x5c`; claims `aud` =
//!    issuer, `iss` = client id, `scope`, `iat`, `exp` = `iat` + 60 s, a fresh `jti`).
//! 2. `GET {platform}/authentication/api/v1/exchange/maskinporten` with the Maskinporten token as
//!    bearer; the answer is the Altinn token, as plain text or as a JSON string.
//! 3. Both tokens are kept until 60 s before they expire (or half their lifetime, if shorter).
//!    One refresh serves every concurrent caller; nobody holds a lock while the token is read.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::HeaderValue;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PdpError;
use crate::error::{ConfigError, check_url};
use crate::outbound::{error_label, read_capped};

/// The scope the PDP requires.
pub const AUTHORIZE_SCOPE: &str = "altinn:authorization/authorize";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of our grant assertion (Maskinporten allows at most 120 s).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they expire (or at half their lifetime, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Assumed lifetime of an Altinn token whose `exp` cannot be read.
const ALTINN_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Assumed lifetime of a Maskinporten token without `expires_in`.
const MASKINPORTEN_TOKEN_LIFETIME: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// AltinnToken and AltinnTokenSource
// ---------------------------------------------------------------------------------------------

/// An Altinn platform token, used as the bearer for PDP calls. Cheap to clone.
///
/// `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AltinnToken {
    value: Arc<str>,
    expires_at: SystemTime,
}

impl AltinnToken {
    /// A token that expires at `expires_at`.
    pub fn new(value: impl Into<String>, expires_at: SystemTime) -> Self {
        AltinnToken {
            value: Arc::from(value.into()),
            expires_at,
        }
    }

    /// The token itself. Do not log it.
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// `Bearer <token>`, marked sensitive.
    pub(crate) fn bearer_header(&self) -> Result<HeaderValue, PdpError> {
        bearer(&self.value).ok_or_else(|| PdpError::credentials("the Altinn token is not a valid header value"))
    }
}

impl fmt::Debug for AltinnToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AltinnToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Where the PDP client gets its Altinn token.
///
/// [`MaskinportenCredentials`] is the usual source; implement this to plug in another setup
/// (a token from a sidecar, a vault, a test). After the PDP has rejected a token (HTTP 401),
/// the client first asks for a token with `force_refresh` `false`; only if that is still the
/// rejected token does it ask once more with `force_refresh` `true`: then return a new one, not
/// a cached one.
///
/// ```
/// use altinn_systemuser::pdp::{AltinnToken, AltinnTokenSource, PdpError};
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::time::{Duration, SystemTime};
///
/// struct Fixed(AltinnToken);
///
/// impl AltinnTokenSource for Fixed {
///     fn token(&self, _force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
///         Box::pin(async move { Ok(self.0.clone()) })
///     }
/// }
///
/// let source = Fixed(AltinnToken::new("eyJ...", SystemTime::now() + Duration::from_secs(1800)));
/// assert!(format!("{:?}", source.0).contains("<redacted>"));
/// ```
pub trait AltinnTokenSource: Send + Sync + 'static {
    /// A valid Altinn token; a fresh one if `force_refresh`.
    fn token(&self, force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>>;
}

// ---------------------------------------------------------------------------------------------
// MaskinportenCredentials
// ---------------------------------------------------------------------------------------------

/// The API provider's Maskinporten client: what it needs to get a token for the PDP.
///
/// Built with [`MaskinportenCredentials::builder`]; given to
/// [`AltinnPdpBuilder::credentials`](super::AltinnPdpBuilder::credentials), which adds the HTTP
/// client and the Altinn platform to exchange at. `Debug` never shows the key.
///
/// ```
/// # fn key() -> Vec<u8> { Vec::new() }
/// use altinn_systemuser::pdp::MaskinportenCredentials;
///
/// let creds = MaskinportenCredentials::builder()
///     .issuer("https://test.maskinporten.no/")
///     .client_id("c9b9a2b1-0b0e-4c83-a6d0-2d2a1d0c3f5e")
///     .private_key_pem(&key())
///     .key_id("my-registered-key")
///     .build();
/// assert!(creds.is_err()); // the key is empty here
/// ```
#[derive(Clone)]
pub struct MaskinportenCredentials {
    inner: Arc<CredentialsInner>,
}

struct CredentialsInner {
    issuer: String,
    token_endpoint: url::Url,
    client_id: String,
    scope: String,
    key: EncodingKey,
    key_ref: KeyRef,
}

#[derive(Clone, Debug)]
enum KeyRef {
    Kid(String),
    X5c(Vec<String>),
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    scope: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl MaskinportenCredentials {
    /// A builder; `issuer`, `client_id`, a private key and a `key_id` or `certificate_chain`
    /// are required.
    pub fn builder() -> MaskinportenCredentialsBuilder {
        MaskinportenCredentialsBuilder::default()
    }

    /// The Maskinporten issuer (the assertion's `aud`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &str {
        self.inner.token_endpoint.as_str()
    }

    /// The provider's Maskinporten client id (the assertion's `iss`).
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The scope asked for.
    pub fn scope(&self) -> &str {
        &self.inner.scope
    }

    /// A signed grant assertion, issued at `now`.
    pub(crate) fn assertion(&self, now: SystemTime) -> Result<String, PdpError> {
        let i = &self.inner;
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = AssertionClaims {
            aud: &i.issuer,
            iss: &i.client_id,
            scope: &i.scope,
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::RS256);
        match &i.key_ref {
            KeyRef::Kid(kid) => header.kid = Some(kid.clone()),
            KeyRef::X5c(chain) => header.x5c = Some(chain.clone()),
        }
        jsonwebtoken::encode(&header, &claims, &i.key).map_err(|_| PdpError::credentials("the grant assertion could not be signed"))
    }
}

impl fmt::Debug for MaskinportenCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("MaskinportenCredentials");
        d.field("issuer", &i.issuer)
            .field("token_endpoint", &i.token_endpoint.as_str())
            .field("client_id", &i.client_id)
            .field("scope", &i.scope)
            .field("private_key", &"<redacted>");
        match &i.key_ref {
            KeyRef::Kid(kid) => d.field("key_id", kid),
            KeyRef::X5c(chain) => d.field("certificate_chain", &format_args!("{} certificate(s)", chain.len())),
        };
        d.finish()
    }
}

/// Builds [`MaskinportenCredentials`]. Setters never fail; `build` reports the first problem.
#[derive(Default)]
pub struct MaskinportenCredentialsBuilder {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    client_id: Option<String>,
    key: Option<Result<ParsedKey, ConfigError>>,
    kid: Option<String>,
    x5c: Option<Vec<String>>,
    scope: Option<String>,
}

struct ParsedKey {
    key: EncodingKey,
    /// The `kid` of a JWK, used when no `key_id` is given.
    jwk_kid: Option<String>,
}

impl MaskinportenCredentialsBuilder {
    /// The Maskinporten issuer, with its trailing slash: `https://maskinporten.no/` or
    /// `https://test.maskinporten.no/`. The grant assertion's `aud`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The token endpoint; default `{issuer}token`.
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.token_endpoint = Some(url.into());
        self
    }

    /// The provider's Maskinporten client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The RSA private key as PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`), unencrypted.
    pub fn private_key_pem(mut self, pem: &[u8]) -> Self {
        self.key = Some(
            EncodingKey::from_rsa_pem(pem)
                .map(|key| ParsedKey { key, jwk_kid: None })
                .map_err(|_| ConfigError::new("private_key", "not an unencrypted RSA private key in PEM (PKCS#8 or PKCS#1)")),
        );
        self
    }

    /// The RSA private key as a JWK (`kty` `RSA` with `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`).
    /// Its `kid`, if any, is used unless [`key_id`](Self::key_id) is set.
    pub fn private_key_jwk(mut self, jwk: &Value) -> Self {
        self.key = Some(rsa_jwk_to_pkcs1(jwk).map(|(der, jwk_kid)| ParsedKey {
            key: EncodingKey::from_rsa_der(&der),
            jwk_kid,
        }));
        self
    }

    /// The `kid` under which the public key is registered with Maskinporten.
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The enterprise certificate chain (`x5c`: base64 DER, leaf first), instead of a `kid`.
    pub fn certificate_chain(mut self, chain: Vec<String>) -> Self {
        self.x5c = Some(chain);
        self
    }

    /// The scope to ask for; default `altinn:authorization/authorize`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Checks the configuration and signs a trial assertion. No network I/O.
    pub fn build(self) -> Result<MaskinportenCredentials, ConfigError> {
        let issuer = self.issuer.ok_or_else(|| ConfigError::new("issuer", "required"))?;
        let parsed = check_url("issuer", &issuer)?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(ConfigError::new("issuer", "must not have a query or fragment"));
        }
        let issuer = parsed.as_str().to_owned();
        if !issuer.ends_with('/') {
            return Err(ConfigError::new(
                "issuer",
                "must end with '/', for example https://maskinporten.no/",
            ));
        }
        let token_endpoint = match &self.token_endpoint {
            Some(url) => check_url("token_endpoint", url)?,
            None => check_url("token_endpoint", &format!("{issuer}token"))?,
        };
        let client_id = self.client_id.ok_or_else(|| ConfigError::new("client_id", "required"))?;
        if client_id.is_empty() || !client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new("client_id", "must be non-empty visible ASCII"));
        }
        let scope = self.scope.unwrap_or_else(|| AUTHORIZE_SCOPE.to_owned());
        if scope.trim().is_empty() || !scope.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(ConfigError::new("scope", "must be non-empty visible ASCII"));
        }
        let ParsedKey { key, jwk_kid } = self.key.ok_or_else(|| ConfigError::new("private_key", "required"))??;
        let key_ref = match (self.kid, self.x5c) {
            (Some(_), Some(_)) => return Err(ConfigError::new("key_id", "give a key_id or a certificate_chain, not both")),
            (None, Some(chain)) => {
                if chain.is_empty() || chain.iter().any(|c| STANDARD.decode(c).map_or(true, |der| der.is_empty())) {
                    return Err(ConfigError::new("certificate_chain", "must be one or more base64 DER certificates"));
                }
                KeyRef::X5c(chain)
            }
            (kid, None) => match kid.or(jwk_kid) {
                Some(kid) if !kid.is_empty() => KeyRef::Kid(kid),
                _ => return Err(ConfigError::new("key_id", "required (or a certificate_chain)")),
            },
        };
        let creds = MaskinportenCredentials {
            inner: Arc::new(CredentialsInner {
                issuer,
                token_endpoint,
                client_id,
                scope,
                key,
                key_ref,
            }),
        };
        creds
            .assertion(SystemTime::now())
            .map_err(|_| ConfigError::new("private_key", "cannot sign with this key (RSA, 2048 to 8192 bits)"))?;
        Ok(creds)
    }
}

impl fmt::Debug for MaskinportenCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenCredentialsBuilder")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("private_key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_id", &self.kid)
            .field("certificate_chain", &self.x5c.as_ref().map(Vec::len))
            .field("scope", &self.scope)
            .finish()
    }
}

/// Converts a private RSA JWK to PKCS#1 `RSAPrivateKey` DER; also returns its `kid`.
fn rsa_jwk_to_pkcs1(jwk: &Value) -> Result<(Vec<u8>, Option<String>), ConfigError> {
    let err = |reason: &'static str| ConfigError::new("private_key", reason);
    let obj = jwk.as_object().ok_or_else(|| err("a JWK is a JSON object"))?;
    if obj.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(err("the JWK is not an RSA key (kty)"));
    }
    if obj.get("alg").is_some_and(|alg| alg.as_str() != Some("RS256")) {
        return Err(err("the JWK's alg is not RS256"));
    }
    let mut body = Vec::new();
    der_uint(&[0], &mut body); // version: two-prime
    for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        let b64 = obj
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| err("the JWK lacks a private RSA member (n, e, d, p, q, dp, dq, qi)"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| err("a JWK member is not base64url"))?;
        if bytes.iter().all(|b| *b == 0) {
            return Err(err("a JWK member is zero"));
        }
        der_uint(&bytes, &mut body);
    }
    let mut der = vec![0x30];
    der_len(body.len(), &mut der);
    der.extend_from_slice(&body);
    let kid = obj.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((der, kid))
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER INTEGER from an unsigned big-endian magnitude.
fn der_uint(magnitude: &[u8], out: &mut Vec<u8>) {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let m = &magnitude[skip..];
    let pad = m.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_len(m.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
}

// ---------------------------------------------------------------------------------------------
// The Maskinporten -> Altinn token source
// ---------------------------------------------------------------------------------------------

/// A token and when to renew it.
#[derive(Clone)]
struct Cached {
    token: AltinnToken,
    refresh_at: SystemTime,
}

impl Cached {
    fn new(token: AltinnToken, now: SystemTime) -> Self {
        let left = token.expires_at.duration_since(now).unwrap_or_default();
        let refresh_at = token.expires_at - REFRESH_MARGIN.min(left / 2);
        Cached { token, refresh_at }
    }

    fn fresh(&self, now: SystemTime) -> bool {
        now < self.refresh_at
    }
}

/// The state only the refreshing caller touches.
#[derive(Default)]
struct RefreshState {
    maskinporten: Option<Cached>,
    /// The error of the last attempt, handed to the callers that waited for it.
    last_error: Option<PdpError>,
}

/// [`MaskinportenCredentials`] bound to an HTTP client and an Altinn platform.
pub(crate) struct MaskinportenTokenSource {
    credentials: MaskinportenCredentials,
    http: reqwest::Client,
    exchange_url: url::Url,
    max_body: usize,
    altinn: ArcSwapOption<Cached>,
    /// Completed refresh attempts, successful or not.
    attempts: AtomicU64,
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

enum ExchangeError {
    /// The exchange refused the Maskinporten token (401): a new one may help.
    Unauthorized,
    Other(PdpError),
}

impl MaskinportenTokenSource {
    pub(crate) fn new(credentials: MaskinportenCredentials, http: reqwest::Client, exchange_url: url::Url, max_body: usize) -> Self {
        MaskinportenTokenSource {
            credentials,
            http,
            exchange_url,
            max_body,
            altinn: ArcSwapOption::empty(),
            attempts: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    async fn get(&self, force_refresh: bool) -> Result<AltinnToken, PdpError> {
        if !force_refresh
            && let Some(c) = self.altinn.load().as_ref()
            && c.fresh(SystemTime::now())
        {
            return Ok(c.token.clone());
        }
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            // Someone refreshed while we waited: share its outcome, good or bad, rather than
            // trying again at once.
            if let Some(e) = &state.last_error {
                return Err(e.clone());
            }
            if let Some(c) = self.altinn.load().as_ref() {
                return Ok(c.token.clone());
            }
        } else if !force_refresh
            && let Some(c) = self.altinn.load().as_ref()
            && c.fresh(SystemTime::now())
        {
            return Ok(c.token.clone());
        }
        let outcome = self.refresh_locked(&mut state, force_refresh).await;
        match &outcome {
            Ok(token) => {
                self.altinn.store(Some(Arc::new(Cached::new(token.clone(), SystemTime::now()))));
                state.last_error = None;
            }
            Err(e) => state.last_error = Some(e.clone()),
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    async fn refresh_locked(&self, state: &mut RefreshState, force: bool) -> Result<AltinnToken, PdpError> {
        let cached = state
            .maskinporten
            .as_ref()
            .filter(|c| !force && c.fresh(SystemTime::now()))
            .map(|c| c.token.clone());
        let reused = cached.is_some();
        let mp = match cached {
            Some(t) => t,
            None => {
                let t = self.grant().await?;
                state.maskinporten = Some(Cached::new(t.clone(), SystemTime::now()));
                t
            }
        };
        match self.exchange(&mp).await {
            Ok(t) => Ok(t),
            Err(ExchangeError::Unauthorized) if reused => {
                tracing::debug!("token exchange refused a cached Maskinporten token; getting a new one");
                state.maskinporten = None;
                let t = self.grant().await?;
                state.maskinporten = Some(Cached::new(t.clone(), SystemTime::now()));
                self.exchange(&t).await.map_err(|e| match e {
                    ExchangeError::Unauthorized => PdpError::credentials("the token exchange refused the Maskinporten token"),
                    ExchangeError::Other(e) => e,
                })
            }
            Err(ExchangeError::Unauthorized) => Err(PdpError::credentials("the token exchange refused the Maskinporten token")),
            Err(ExchangeError::Other(e)) => Err(e),
        }
    }

    /// The Maskinporten JWT grant.
    async fn grant(&self) -> Result<AltinnToken, PdpError> {
        let now = SystemTime::now();
        let assertion = self.credentials.assertion(now)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", &assertion)
            .finish();
        let resp = self
            .http
            .post(self.credentials.inner.token_endpoint.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = error_label(&e), "Maskinporten token endpoint unreachable");
                PdpError::credentials("the Maskinporten token endpoint could not be reached")
            })?;
        let status = resp.status();
        let body = read_capped(resp, self.max_body)
            .await
            .map_err(|_| PdpError::credentials("the Maskinporten token response could not be read"))?;
        if !status.is_success() {
            tracing::warn!(
                status = status.as_u16(),
                error = oauth_error_code(&body),
                "Maskinporten refused the grant"
            );
            return Err(PdpError::credentials("Maskinporten refused the grant"));
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| PdpError::credentials("the Maskinporten token response is malformed"))?;
        if parsed.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(PdpError::credentials("Maskinporten issued a token that is not a bearer token"));
        }
        if parsed.access_token.is_empty() || bearer(&parsed.access_token).is_none() {
            return Err(PdpError::credentials("the Maskinporten token response is malformed"));
        }
        let lifetime = parsed.expires_in.map_or(MASKINPORTEN_TOKEN_LIFETIME, Duration::from_secs);
        tracing::debug!(expires_in = lifetime.as_secs(), "got a Maskinporten token");
        Ok(AltinnToken::new(parsed.access_token, now + lifetime))
    }

    /// The exchange of a Maskinporten token for an Altinn token.
    async fn exchange(&self, maskinporten: &AltinnToken) -> Result<AltinnToken, ExchangeError> {
        let auth = bearer(maskinporten.secret()).ok_or(ExchangeError::Other(PdpError::credentials(
            "the Maskinporten token is not a valid header value",
        )))?;
        let now = SystemTime::now();
        let resp = self
            .http
            .get(self.exchange_url.clone())
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json, text/plain;q=0.9")
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = error_label(&e), "Altinn token exchange unreachable");
                ExchangeError::Other(PdpError::credentials("the Altinn token exchange could not be reached"))
            })?;
        let status = resp.status();
        if status == http::StatusCode::UNAUTHORIZED {
            tracing::warn!("Altinn token exchange answered 401");
            return Err(ExchangeError::Unauthorized);
        }
        if !status.is_success() {
            tracing::warn!(status = status.as_u16(), "Altinn token exchange failed");
            return Err(ExchangeError::Other(PdpError::credentials("the Altinn token exchange failed")));
        }
        let body = read_capped(resp, self.max_body)
            .await
            .map_err(|_| ExchangeError::Other(PdpError::credentials("the Altinn token exchange response could not be read")))?;
        let token = parse_exchanged_token(&body).ok_or(ExchangeError::Other(PdpError::credentials(
            "the Altinn token exchange response is malformed",
        )))?;
        let expires_at = jwt_exp(&token).unwrap_or(now + ALTINN_TOKEN_LIFETIME);
        tracing::debug!("got an Altinn token");
        Ok(AltinnToken::new(token, expires_at))
    }
}

impl AltinnTokenSource for MaskinportenTokenSource {
    fn token(&self, force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
        Box::pin(self.get(force_refresh))
    }
}

impl fmt::Debug for MaskinportenTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenTokenSource")
            .field("credentials", &self.credentials)
            .field("exchange_url", &self.exchange_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The OAuth2 `error` code of an error response, if it is a plain token (safe to log).
fn oauth_error_code(body: &[u8]) -> &'static str {
    const KNOWN: [&str; 8] = [
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    ];
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
    match code {
        Some(c) => KNOWN.iter().find(|k| **k == c).copied().unwrap_or("other"),
        None => "none",
    }
}

/// The Altinn token from the exchange's body: a JSON string literal or plain text.
fn parse_exchanged_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let token = if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()?
    } else {
        text.to_owned()
    };
    let looks_like_jwt = token.split('.').count() == 3
        && token.split('.').take(2).all(|p| !p.is_empty())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='));
    looks_like_jwt.then_some(token)
}

/// The `exp` of a JWT, read without checking the signature (we are its client, not its judge).
fn jwt_exp(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use jsonwebtoken::{DecodingKey, Validation};
    use std::sync::OnceLock;

    /// A test key generated once per run: (PKCS#8 DER, PKCS#1 DER).
    pub(crate) fn test_key() -> &'static (Vec<u8>, Vec<u8>) {
        static KEY: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        KEY.get_or_init(|| {
            let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
            let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap().as_ref().to_vec();
            // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }
            let (_, info, _) = der_read(&pkcs8);
            let (_, _, rest) = der_read(info);
            let (_, _, rest) = der_read(rest);
            let (tag, pkcs1, _) = der_read(rest);
            assert_eq!(tag, 0x04);
            let pkcs1 = pkcs1.to_vec();
            (pkcs8, pkcs1)
        })
    }

    /// One DER TLV: (tag, contents, rest).
    fn der_read(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, hdr) = if input[1] < 0x80 {
            (input[1] as usize, 2)
        } else {
            let n = (input[1] & 0x7f) as usize;
            (input[2..2 + n].iter().fold(0usize, |a, b| (a << 8) | *b as usize), 2 + n)
        };
        (tag, &input[hdr..hdr + len], &input[hdr + len..])
    }

    fn pem(label: &str, der: &[u8]) -> Vec<u8> {
        let b64 = STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out.into_bytes()
    }

    pub(crate) fn pkcs8_pem() -> Vec<u8> {
        pem("PRIVATE KEY", &test_key().0)
    }

    /// The key as a private JWK, and its public (n, e) in base64url.
    fn jwk() -> (Value, String, String) {
        let (_, seq, _) = der_read(&test_key().1);
        let mut rest = seq;
        let mut ints = Vec::new();
        while !rest.is_empty() {
            let (tag, v, r) = der_read(rest);
            assert_eq!(tag, 0x02);
            let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
            ints.push(URL_SAFE_NO_PAD.encode(v));
            rest = r;
        }
        assert_eq!(ints.len(), 9);
        let jwk = serde_json::json!({
            "kty": "RSA", "kid": "jwk-kid", "alg": "RS256",
            "n": ints[1], "e": ints[2], "d": ints[3], "p": ints[4], "q": ints[5], "dp": ints[6], "dq": ints[7], "qi": ints[8],
        });
        (jwk, ints[1].clone(), ints[2].clone())
    }

    fn builder() -> MaskinportenCredentialsBuilder {
        MaskinportenCredentials::builder()
            .issuer("https://test.maskinporten.no/")
            .client_id("my-client")
    }

    #[derive(Deserialize)]
    struct Claims {
        aud: String,
        iss: String,
        scope: String,
        iat: u64,
        exp: u64,
        jti: String,
    }

    fn verify(creds: &MaskinportenCredentials) -> (Header, Claims) {
        let (_, n, e) = jwk();
        let token = creds.assertion(SystemTime::now()).unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[creds.issuer()]);
        v.set_issuer(&[creds.client_id()]);
        let data = jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_rsa_components(&n, &e).unwrap(), &v).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn pkcs8_pkcs1_and_jwk_keys_all_sign() {
        let (jwk, _, _) = jwk();
        for (name, b) in [
            ("pkcs8", builder().private_key_pem(&pkcs8_pem()).key_id("kid-1")),
            (
                "pkcs1",
                builder().private_key_pem(&pem("RSA PRIVATE KEY", &test_key().1)).key_id("kid-1"),
            ),
            ("jwk", builder().private_key_jwk(&jwk).key_id("kid-1")),
        ] {
            let creds = b.build().unwrap_or_else(|e| panic!("{name}: {e}"));
            let (header, claims) = verify(&creds);
            assert_eq!(header.alg, Algorithm::RS256, "{name}");
            assert_eq!(header.kid.as_deref(), Some("kid-1"), "{name}");
            assert_eq!(header.x5c, None);
            assert_eq!(claims.aud, "https://test.maskinporten.no/");
            assert_eq!(claims.iss, "my-client");
            assert_eq!(claims.scope, AUTHORIZE_SCOPE);
            assert_eq!(claims.exp - claims.iat, 60);
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            assert!(claims.iat.abs_diff(now) <= 2);
            assert_eq!(uuid::Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);
        }
        // The JWK's own kid is the default.
        let creds = builder().private_key_jwk(&jwk).build().unwrap();
        assert_eq!(verify(&creds).0.kid.as_deref(), Some("jwk-kid"));
        // Each assertion has its own jti.
        let creds = builder().private_key_pem(&pkcs8_pem()).key_id("k").build().unwrap();
        assert_ne!(verify(&creds).1.jti, verify(&creds).1.jti);
    }

    #[test]
    fn certificate_chain_goes_in_x5c() {
        let chain = vec![STANDARD.encode(b"leaf-der"), STANDARD.encode(b"ca-der")];
        let creds = builder()
            .private_key_pem(&pkcs8_pem())
            .certificate_chain(chain.clone())
            .scope("a:b c:d")
            .build()
            .unwrap();
        let (header, claims) = verify(&creds);
        assert_eq!(header.x5c, Some(chain));
        assert_eq!(header.kid, None);
        assert_eq!(claims.scope, "a:b c:d");
    }

    #[test]
    fn endpoints() {
        let creds = builder().private_key_pem(&pkcs8_pem()).key_id("k").build().unwrap();
        assert_eq!(creds.token_endpoint(), "https://test.maskinporten.no/token");
        let creds = builder()
            .issuer("https://maskinporten.no")
            .private_key_pem(&pkcs8_pem())
            .key_id("k")
            .build()
            .unwrap();
        assert_eq!(creds.issuer(), "https://maskinporten.no/");
        let creds = builder()
            .issuer("http://127.0.0.1:9999/mp/")
            .token_endpoint("http://127.0.0.1:9999/other/token")
            .private_key_pem(&pkcs8_pem())
            .key_id("k")
            .build()
            .unwrap();
        assert_eq!(creds.token_endpoint(), "http://127.0.0.1:9999/other/token");
    }

    #[test]
    fn configuration_errors() {
        let key = pkcs8_pem();
        let field = |b: MaskinportenCredentialsBuilder| b.build().unwrap_err().field();
        assert_eq!(
            field(MaskinportenCredentials::builder().client_id("c").private_key_pem(&key).key_id("k")),
            "issuer"
        );
        assert_eq!(
            field(builder().issuer("http://maskinporten.no/").private_key_pem(&key).key_id("k")),
            "issuer"
        );
        assert_eq!(
            field(builder().issuer("https://x.example/mp").private_key_pem(&key).key_id("k")),
            "issuer"
        );
        assert_eq!(
            field(builder().issuer("https://x.example/?a=b").private_key_pem(&key).key_id("k")),
            "issuer"
        );
        assert_eq!(
            field(builder().token_endpoint("ftp://x/").private_key_pem(&key).key_id("k")),
            "token_endpoint"
        );
        assert_eq!(
            field(
                MaskinportenCredentials::builder()
                    .issuer("https://x.example/")
                    .private_key_pem(&key)
                    .key_id("k")
            ),
            "client_id"
        );
        assert_eq!(
            field(builder().client_id("has space").private_key_pem(&key).key_id("k")),
            "client_id"
        );
        assert_eq!(field(builder().scope("").private_key_pem(&key).key_id("k")), "scope");
        assert_eq!(field(builder().key_id("k")), "private_key");
        assert_eq!(field(builder().private_key_pem(b"not a pem").key_id("k")), "private_key");
        assert_eq!(field(builder().private_key_pem(&key)), "key_id");
        assert_eq!(
            field(
                builder()
                    .private_key_pem(&key)
                    .key_id("k")
                    .certificate_chain(vec![STANDARD.encode(b"x")])
            ),
            "key_id"
        );
        assert_eq!(
            field(builder().private_key_pem(&key).certificate_chain(vec![])),
            "certificate_chain"
        );
        assert_eq!(
            field(builder().private_key_pem(&key).certificate_chain(vec!["***".into()])),
            "certificate_chain"
        );
        // A public key, or an EC key, is not a signing key.
        let public = pem("PUBLIC KEY", b"\x30\x03\x02\x01\x00");
        assert_eq!(field(builder().private_key_pem(&public).key_id("k")), "private_key");
        let (jwk, _, _) = jwk();
        for broken in [
            serde_json::json!("x"),
            serde_json::json!({"kty": "EC"}),
            {
                let mut j = jwk.clone();
                j.as_object_mut().unwrap().remove("qi");
                j
            },
            {
                let mut j = jwk.clone();
                j["d"] = serde_json::json!("!!");
                j
            },
            {
                let mut j = jwk.clone();
                j["alg"] = serde_json::json!("RS512");
                j
            },
            {
                let mut j = jwk.clone();
                j["d"] = j["p"].clone();
                j
            },
        ] {
            assert_eq!(field(builder().private_key_jwk(&broken).key_id("k")), "private_key", "{broken}");
        }
    }

    #[test]
    fn debug_redacts_keys_and_tokens() {
        let key = pkcs8_pem();
        let b = builder().private_key_pem(&key).key_id("kid-1");
        let shown = format!("{b:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("MII"), "{shown}");
        let creds = b.build().unwrap();
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("<redacted>") && shown.contains("kid-1") && shown.contains("my-client"),
            "{shown}"
        );
        let b64 = STANDARD.encode(&test_key().0);
        assert!(!shown.contains(&b64[10..40]));
        let t = AltinnToken::new("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", SystemTime::now());
        let shown = format!("{t:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("eyJ"), "{shown}");
        assert!(t.bearer_header().unwrap().is_sensitive());
    }

    #[test]
    fn exchanged_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln";
        assert_eq!(parse_exchanged_token(jwt.as_bytes()).as_deref(), Some(jwt));
        assert_eq!(parse_exchanged_token(format!("{jwt}\r\n").as_bytes()).as_deref(), Some(jwt));
        assert_eq!(parse_exchanged_token(format!("\"{jwt}\"").as_bytes()).as_deref(), Some(jwt));
        for bad in [
            "",
            "\"\"",
            "not a jwt",
            "a.b",
            "a.b.c.d",
            "\"a.b.c",
            "a b.c.d",
            ".b.c",
            "ey\u{e9}.b.c",
        ] {
            assert_eq!(parse_exchanged_token(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(jwt_exp(jwt), Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        assert_eq!(jwt_exp("a.b.c"), None);
        let no_exp = format!("x.{}.y", URL_SAFE_NO_PAD.encode(br#"{"iat": 1}"#));
        assert_eq!(jwt_exp(&no_exp), None);
    }

    #[test]
    fn refresh_points() {
        let now = SystemTime::now();
        let c = Cached::new(AltinnToken::new("t", now + Duration::from_secs(1800)), now);
        assert_eq!(c.refresh_at, now + Duration::from_secs(1740));
        assert!(c.fresh(now));
        assert!(!c.fresh(now + Duration::from_secs(1740)));
        // Short-lived tokens are renewed at half their lifetime.
        let c = Cached::new(AltinnToken::new("t", now + Duration::from_secs(30)), now);
        assert_eq!(c.refresh_at, now + Duration::from_secs(15));
        // An already expired token is never fresh.
        let c = Cached::new(AltinnToken::new("t", now - Duration::from_secs(1)), now);
        assert!(!c.fresh(now));
    }

    #[test]
    fn oauth_error_codes_are_sanitised() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_grant","error_description":"secret stuff"}"#),
            "invalid_grant"
        );
        assert_eq!(oauth_error_code(br#"{"error":"<script>"}"#), "other");
        assert_eq!(oauth_error_code(b"oops"), "none");
    }
}
