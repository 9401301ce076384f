//! The API provider's own credentials for the PDP: a Maskinporten JWT grant, exchanged for an
//! Altinn token, cached until shortly before it expires.
//!
//! 1. **Grant.** `POST {token_endpoint}` with
//!    `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an assertion signed with the
//!    provider's key (RS256; header `kid` or `x5c`; claims `aud` = issuer, `iss` = client id,
//!    `scope`, `iat`, `exp` = `iat` + 60 s, a fresh `jti`). The answer is a Maskinporten access
//!    token, which is only ever spent on step 2.
//! 2. **Exchange.** `GET {platform}/authentication/api/v1/exchange/maskinporten` with the
//!    Maskinporten token as bearer; the answer is the Altinn token ([`AltinnToken`]), as plain
//!    text or as a JSON string.
//! 3. **Cached bearer.** Both tokens are kept until 60 s before they expire (or half their
//!    lifetime, if shorter). One refresh serves every concurrent caller; nobody holds a lock
//!    while the token is read, nor across the grant or the exchange. The grant and the exchange
//!    are each cut off at the refresh's deadline, one time budget after it started; a caller
//!    that gives up does not cancel the refresh.
//!
//! | File | Job |
//! |---|---|
//! | `mod.rs` | [`AltinnToken`], the PDP's bearer, and [`AltinnTokenSource`], where the client gets it |
//! | `signing_key.rs` | the provider's RSA private key (PEM or JWK) and the one function that signs a JWT with it |
//! | `grant.rs` | [`MaskinportenCredentials`] and its builder, the grant assertion and the JWT-bearer grant (step 1) |
//! | `exchange.rs` | the Altinn token exchange and reading the exchanged token's `exp` (step 2) |
//! | `refresh.rs` | `MaskinportenTokenSource`: both tokens cached and refreshed once for all callers, within a deadline (step 3) |

pub(crate) mod check;
mod exchange;
mod grant;
mod refresh;
mod signer;
mod signing_key;
#[cfg(test)]
mod tests;

pub use grant::{MaskinportenCredentials, MaskinportenCredentialsBuilder};
pub(crate) use refresh::MaskinportenTokenSource;
pub use signer::{AssertionSigner, KeyReference, RsaSigner, SignFuture, SignerError, SignerHandle};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;

use super::PdpError;

/// The scope the PDP requires.
pub const AUTHORIZE_SCOPE: &str = "altinn:authorization/authorize";

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

/// `Bearer <token>` as a header value marked sensitive, if the token fits in a header.
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
