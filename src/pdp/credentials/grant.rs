//! [`MaskinportenCredentials`] and its builder, the grant assertion, and the JWT-bearer grant
//! that turns the assertion into a Maskinporten access token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use http::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::signer::{AssertionSigner, KeyReference, RsaSigner, SignerHandle, check_reference};
use super::signing_key::SigningKey;
use super::{AUTHORIZE_SCOPE, bearer};
use crate::ConfigError;
use crate::error::check_url;
use crate::outbound::{error_label, read_capped};
use crate::pdp::{PdpError, PdpErrorKind};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of our grant assertion (Maskinporten allows at most 120 s).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);
/// Assumed lifetime of a Maskinporten token without `expires_in`.
const MASKINPORTEN_TOKEN_LIFETIME: Duration = Duration::from_secs(120);
/// The longest a Maskinporten access token is kept, whatever its `expires_in` says (Maskinporten
/// issues them for about two minutes): a larger or absurd `expires_in` only means an earlier
/// renewal, never an overflow.
pub(super) const MAX_MASKINPORTEN_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// A Maskinporten access token, as the grant returns it: only good for the token exchange,
/// never a bearer for the PDP. `Debug` never shows the token.
#[derive(Clone)]
pub(super) struct MaskinportenAccessToken {
    /// `Bearer <token>`, marked sensitive.
    bearer: HeaderValue,
    expires_at: SystemTime,
}

impl MaskinportenAccessToken {
    /// `Bearer <token>`, marked sensitive.
    pub(super) fn bearer_header(&self) -> HeaderValue {
        self.bearer.clone()
    }

    /// When the token expires.
    pub(super) fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for MaskinportenAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenAccessToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The API provider's Maskinporten client: what it needs to get a token for the PDP.
///
/// Built with [`MaskinportenCredentials::builder`]; given to
/// [`AltinnPdpBuilder::credentials`](crate::pdp::AltinnPdpBuilder::credentials), which adds the
/// HTTP client and the Altinn platform to exchange at. `Debug` never shows the key.
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
    signer: SignerHandle,
}

/// The JOSE header of every assertion: RS256, and the signer's key reference.
#[derive(Serialize)]
struct AssertionHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<&'a [String]>,
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

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
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

    /// The signer of the grant assertions, to replace it at runtime (key rotation).
    pub fn signer(&self) -> &SignerHandle {
        &self.inner.signer
    }

    /// A signed grant assertion, issued at `now`, by the signer in use when it starts.
    pub(super) async fn assertion(&self, now: SystemTime) -> Result<String, PdpError> {
        let i = &self.inner;
        let signer = i.signer.current();
        let reference = signer.key_reference();
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = AssertionClaims {
            aud: &i.issuer,
            iss: &i.client_id,
            scope: &i.scope,
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let header = AssertionHeader {
            typ: "JWT",
            alg: "RS256",
            kid: match &reference {
                KeyReference::KeyId(kid) => Some(kid),
                KeyReference::CertificateChain(_) => None,
            },
            x5c: match &reference {
                KeyReference::KeyId(_) => None,
                KeyReference::CertificateChain(chain) => Some(chain),
            },
        };
        let unsigned = || PdpError::credentials("the grant assertion could not be built");
        let mut jwt = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| unsigned())?);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&claims).map_err(|_| unsigned())?, &mut jwt);
        let signature = signer.sign(jwt.as_bytes()).await.map_err(|e| {
            tracing::warn!(error = %e, "the grant assertion could not be signed");
            PdpError::credentials("the grant assertion could not be signed")
        })?;
        if signature.is_empty() {
            return Err(PdpError::credentials("the assertion signer returned an empty signature"));
        }
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }

    /// The Maskinporten JWT grant: a fresh assertion for a Maskinporten access token, by
    /// `deadline` (request and answer).
    pub(super) async fn grant(
        &self,
        http: &reqwest::Client,
        max_body: usize,
        deadline: tokio::time::Instant,
    ) -> Result<MaskinportenAccessToken, PdpError> {
        tokio::time::timeout_at(deadline, self.grant_unbounded(http, max_body))
            .await
            .unwrap_or_else(|_| {
                tracing::warn!("Maskinporten token endpoint did not answer in time");
                Err(PdpError::with_detail(PdpErrorKind::Timeout, "the Maskinporten grant timed out"))
            })
    }

    async fn grant_unbounded(&self, http: &reqwest::Client, max_body: usize) -> Result<MaskinportenAccessToken, PdpError> {
        let now = SystemTime::now();
        let assertion = self.assertion(now).await?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", &assertion)
            .finish();
        let resp = http
            .post(self.inner.token_endpoint.clone())
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
        let body = read_capped(resp, max_body)
            .await
            .map_err(|_| PdpError::credentials("the Maskinporten token response could not be read"))?;
        if !status.is_success() {
            tracing::warn!(
                status = status.as_u16(),
                error = oauth_error_code(&body),
                "Maskinporten refused the grant"
            );
            return Err(PdpError::credentials(grant_refusal(oauth_error_code(&body))));
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| PdpError::credentials("the Maskinporten token response is malformed"))?;
        if parsed.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(PdpError::credentials("Maskinporten issued a token that is not a bearer token"));
        }
        let header = match bearer(&parsed.access_token) {
            Some(header) if !parsed.access_token.is_empty() => header,
            _ => return Err(PdpError::credentials("the Maskinporten token response is malformed")),
        };
        let (lifetime, expires_at) = token_expiry(now, parsed.expires_in);
        tracing::debug!(expires_in = lifetime.as_secs(), "got a Maskinporten token");
        Ok(MaskinportenAccessToken {
            bearer: header,
            expires_at,
        })
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
            .field("signer", &i.signer);
        d.finish()
    }
}

/// Builds [`MaskinportenCredentials`]. Setters never fail; `build` reports the first problem
/// (a key that could not be read stays an error even if another key is given later).
#[derive(Default)]
#[must_use]
pub struct MaskinportenCredentialsBuilder {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    client_id: Option<String>,
    key: Option<ParsedKey>,
    /// The first setter error (a key that could not be read); never erased by a later setter.
    error: Option<ConfigError>,
    kid: Option<String>,
    x5c: Option<Vec<String>>,
    scope: Option<String>,
    signer: Option<Box<dyn AssertionSigner>>,
}

struct ParsedKey {
    key: SigningKey,
    /// The `kid` of a JWK, used when no `key_id` is given.
    jwk_kid: Option<String>,
    /// The builder method that gave the key.
    field: &'static str,
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
    pub fn private_key_pem(self, pem: &[u8]) -> Self {
        let key = SigningKey::from_pem(pem).map(|key| ParsedKey {
            key,
            jwk_kid: None,
            field: "private_key_pem",
        });
        self.set_key(key)
    }

    /// The RSA private key as a JWK (`kty` `RSA` with `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`).
    /// Its `kid`, if any, is used unless [`key_id`](Self::key_id) is set.
    pub fn private_key_jwk(self, jwk: &Value) -> Self {
        let key = SigningKey::from_jwk(jwk).map(|key| ParsedKey {
            key,
            jwk_kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
            field: "private_key_jwk",
        });
        self.set_key(key)
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

    /// A signer of your own instead of a private key (a key in an HSM or a cloud key vault):
    /// it names its own key reference, so neither [`key_id`](Self::key_id) nor
    /// [`certificate_chain`](Self::certificate_chain) is given with it.
    pub fn signer(mut self, signer: impl AssertionSigner) -> Self {
        self.signer = Some(Box::new(signer));
        self
    }

    fn set_key(mut self, key: Result<ParsedKey, ConfigError>) -> Self {
        match key {
            Ok(key) => self.key = Some(key),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Checks the configuration (the built-in key signs a trial message). No network I/O.
    pub fn build(self) -> Result<MaskinportenCredentials, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let issuer = self.issuer.ok_or_else(|| ConfigError::missing("issuer", "required"))?;
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
        let client_id = self.client_id.ok_or_else(|| ConfigError::missing("client_id", "required"))?;
        if client_id.is_empty() || !client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new("client_id", "must be non-empty visible ASCII"));
        }
        let scope = self.scope.unwrap_or_else(|| AUTHORIZE_SCOPE.to_owned());
        if scope.trim().is_empty() || !scope.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(ConfigError::new("scope", "must be non-empty visible ASCII"));
        }
        let signer: Box<dyn AssertionSigner> = match (self.signer, self.key) {
            (Some(_), Some(key)) => return Err(ConfigError::conflict(key.field, "give a private key or a signer, not both")),
            (Some(signer), None) => {
                if self.kid.is_some() || self.x5c.is_some() {
                    return Err(ConfigError::conflict("key_id", "a signer names its own key reference"));
                }
                check_reference(signer.key_reference())?;
                signer
            }
            (None, None) => {
                return Err(ConfigError::missing(
                    "private_key_pem",
                    "a private key is required (private_key_pem or private_key_jwk, or a signer)",
                ));
            }
            (None, Some(ParsedKey { key, jwk_kid, field })) => {
                let reference = match (self.kid, self.x5c) {
                    (Some(_), Some(_)) => return Err(ConfigError::conflict("key_id", "give a key_id or a certificate_chain, not both")),
                    (None, Some(chain)) => check_reference(KeyReference::CertificateChain(chain))?,
                    (kid, None) => match kid.or(jwk_kid) {
                        Some(kid) if !kid.is_empty() => KeyReference::KeyId(kid),
                        _ => return Err(ConfigError::missing("key_id", "required (or a certificate_chain)")),
                    },
                };
                key.sign(b"trial")
                    .map_err(|_| ConfigError::new(field, "cannot sign with this key (RSA, 2048 to 8192 bits)"))?;
                Box::new(RsaSigner::new(key, reference))
            }
        };
        Ok(MaskinportenCredentials {
            inner: Arc::new(CredentialsInner {
                issuer,
                token_endpoint,
                client_id,
                scope,
                signer: SignerHandle::new(signer),
            }),
        })
    }
}

impl fmt::Debug for MaskinportenCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenCredentialsBuilder")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("private_key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("error", &self.error)
            .field("key_id", &self.kid)
            .field("certificate_chain", &self.x5c.as_ref().map(Vec::len))
            .field("scope", &self.scope)
            .field("signer", &self.signer.as_ref().map(|s| s.key_reference()))
            .finish()
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

/// What a refused grant means, by its OAuth `error` code, in words a provider can act on.
fn grant_refusal(code: &str) -> &'static str {
    match code {
        "invalid_client" => "Maskinporten refused the grant: invalid_client (the client id is unknown, or not allowed this grant)",
        "invalid_grant" => {
            "Maskinporten refused the grant: invalid_grant (the assertion was refused: the key or key id is not registered for the client, or the clocks differ)"
        }
        "invalid_scope" => {
            "Maskinporten refused the grant: invalid_scope (the client is not granted the scope, altinn:authorization/authorize)"
        }
        "unauthorized_client" => "Maskinporten refused the grant: unauthorized_client (the client may not use the JWT-bearer grant)",
        "invalid_request" => "Maskinporten refused the grant: invalid_request",
        "unsupported_grant_type" => "Maskinporten refused the grant: unsupported_grant_type",
        "server_error" | "temporarily_unavailable" => {
            "Maskinporten could not serve the grant now (server_error or temporarily_unavailable)"
        }
        _ => "Maskinporten refused the grant (no known OAuth error code)",
    }
}

/// How long a Maskinporten token from `now` is kept, and until when: its `expires_in` (or two
/// minutes without one), at most [`MAX_MASKINPORTEN_TOKEN_LIFETIME`]. No `expires_in` can
/// overflow the clock.
fn token_expiry(now: SystemTime, expires_in: Option<u64>) -> (Duration, SystemTime) {
    let lifetime = expires_in
        .map_or(MASKINPORTEN_TOKEN_LIFETIME, Duration::from_secs)
        .min(MAX_MASKINPORTEN_TOKEN_LIFETIME);
    (lifetime, now.checked_add(lifetime).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_expires_in_is_capped_not_overflowed() {
        let now = SystemTime::now();
        // `now + Duration::from_secs(u64::MAX)` panicked ("overflow when adding duration").
        for absurd in [u64::MAX, i64::MAX as u64, u64::MAX / 2, 10_000_000_000] {
            assert_eq!(
                token_expiry(now, Some(absurd)),
                (MAX_MASKINPORTEN_TOKEN_LIFETIME, now + MAX_MASKINPORTEN_TOKEN_LIFETIME),
                "{absurd}"
            );
        }
        assert_eq!(token_expiry(now, Some(3601)).0, MAX_MASKINPORTEN_TOKEN_LIFETIME);
        // Ordinary values are kept as they are.
        assert_eq!(
            token_expiry(now, Some(120)),
            (Duration::from_secs(120), now + Duration::from_secs(120))
        );
        assert_eq!(token_expiry(now, Some(3600)).0, Duration::from_secs(3600));
        assert_eq!(token_expiry(now, Some(0)), (Duration::ZERO, now));
        assert_eq!(token_expiry(now, None).0, MASKINPORTEN_TOKEN_LIFETIME);
    }

    #[test]
    fn refused_grants_name_their_oauth_error() {
        for code in ["invalid_client", "invalid_grant", "invalid_scope", "unauthorized_client"] {
            assert!(grant_refusal(code).contains(code), "{code}");
        }
        assert!(!grant_refusal("<script>").contains("script"));
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

    #[test]
    fn maskinporten_access_token_debug_is_redacted() {
        let token = MaskinportenAccessToken {
            bearer: bearer("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").unwrap(),
            expires_at: SystemTime::now(),
        };
        let shown = format!("{token:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("eyJ"), "{shown}");
        assert!(token.bearer_header().is_sensitive());
    }
}
