//! Who may vouch for a caller: the issuer profiles of [`MaskinportenLayer`](super::MaskinportenLayer).
//!
//! Maskinporten is always trusted; Altinn's platform (tokens from the Maskinporten → Altinn
//! exchange, and Altinn's TT02 test tokens) only when configured with
//! [`MaskinportenLayerBuilder::altinn_tokens`](super::MaskinportenLayerBuilder::altinn_tokens).
//! Each issuer has its own key store and its own policy (audience, lifetime, claims).
//!
//! A token's `iss` is read from its unverified payload, with the same strict reader that refuses
//! repeated members, only to pick the profile: that profile's key store alone is asked for the
//! `kid`, its validator checks the claims (`iss` again among them). So a `kid` of one issuer never
//! verifies a token naming the other, and an `iss` outside the set is refused (`wrong-issuer`)
//! before any key is fetched.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::key_store::KeyStore;
use super::validate::Validator;
use crate::reject::RejectionKind;
use crate::strict_json::{Name, from_str_unique};

/// Which issuer vouched for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenIssuer {
    /// Maskinporten itself (`https://maskinporten.no/`, `https://test.maskinporten.no/`).
    Maskinporten,
    /// Altinn's platform (`{platform}/authentication/api/v1/openid/`): a token from the
    /// Maskinporten → Altinn exchange.
    Altinn,
}

impl TokenIssuer {
    /// `maskinporten` or `altinn`: the value of the `issuer` audit and span field and of the
    /// JWKS metrics' `issuer` label.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenIssuer::Maskinporten => "maskinporten",
            TokenIssuer::Altinn => "altinn",
        }
    }
}

impl fmt::Display for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path of Altinn's token issuer under a platform URL.
const ALTINN_ISSUER_PATH: &str = "/authentication/api/v1/openid/";

/// The issuer Altinn's platform at `platform` signs its tokens as: `{platform}/authentication/api/v1/openid/`
/// (a trailing `/` on `platform` is tolerated).
pub fn altinn_issuer(platform: &str) -> String {
    format!("{}{ALTINN_ISSUER_PATH}", platform.trim_end_matches('/'))
}

/// The audience rule of the Altinn profile: it must be stated whenever the Maskinporten profile
/// requires an audience (Altinn's tokens carry no `aud`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AltinnAudience {
    /// Not stated: allowed only while the Maskinporten profile requires no audience.
    Unstated,
    /// Accept Altinn tokens without an `aud` (as they all are).
    NoneRequired,
    /// Require one of these.
    Require(Vec<String>),
}

/// The lifetime rule of the Altinn profile: it must be stated whenever the Maskinporten profile
/// limits lifetimes (Altinn's tokens live 30 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AltinnLifetime {
    Unstated,
    Unlimited,
    AtMost(Duration),
}

/// Trust in tokens that Altinn's platform issues (after the Maskinporten → Altinn exchange), for
/// [`MaskinportenLayerBuilder::altinn_tokens`](super::MaskinportenLayerBuilder::altinn_tokens).
///
/// Keys come from OpenID Connect discovery at `{issuer}.well-known/openid-configuration`, whose
/// `issuer` must match exactly. Such a token must also carry `nbf`,
/// `urn:altinn:authenticatemethod` = `maskinporten`, `urn:altinn:authlevel` = 3 and
/// `urn:altinn:orgNumber` equal to its `consumer`; an `x5t` header member is allowed (a hint:
/// keys are still chosen by `kid`).
///
/// When the Maskinporten profile requires an audience or limits the lifetime, this profile must
/// say its own rule ([`require_audience`](Self::require_audience) or
/// [`without_audience`](Self::without_audience); [`max_token_lifetime`](Self::max_token_lifetime)
/// or [`any_lifetime`](Self::any_lifetime)): Altinn tokens carry no `aud` and live 30 minutes, so
/// no default could be right.
///
/// ```
/// use altinn_systemuser::maskinporten::{AltinnTokens, MaskinportenLayer};
/// use std::time::Duration;
///
/// let layer = MaskinportenLayer::builder()
///     .test_environment()                              // https://test.maskinporten.no/
///     .require_scope("skatteetaten:kravogbetalinger")
///     .max_token_lifetime(Duration::from_secs(120))
///     .altinn_tokens(AltinnTokens::tt02().max_token_lifetime(Duration::from_secs(30 * 60)))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AltinnTokens {
    pub(crate) platform: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) audience: AltinnAudience,
    pub(crate) lifetime: AltinnLifetime,
}

impl AltinnTokens {
    /// Altinn production (`https://platform.altinn.no`); pairs with Maskinporten production.
    pub fn production() -> Self {
        Self::platform(crate::pdp::AltinnEnvironment::Production.platform_url())
    }

    /// Altinn TT02 (`https://platform.tt02.altinn.no`); pairs with Maskinporten test.
    pub fn tt02() -> Self {
        Self::platform(crate::pdp::AltinnEnvironment::Tt02.platform_url())
    }

    /// Another platform URL (`https`, or `http` on a loopback host for fakes); the issuer is
    /// `{platform}/authentication/api/v1/openid/`.
    pub fn platform(url: impl Into<String>) -> Self {
        AltinnTokens {
            platform: url.into(),
            jwks_uri: None,
            audience: AltinnAudience::Unstated,
            lifetime: AltinnLifetime::Unstated,
        }
    }

    /// The JWKS URL, instead of OpenID Connect discovery.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Requires one of these audiences in Altinn tokens (each call adds one). Altinn's tokens
    /// carry none today, so this refuses them all until they do.
    pub fn require_audience(mut self, aud: impl Into<String>) -> Self {
        match &mut self.audience {
            AltinnAudience::Require(v) => v.push(aud.into()),
            other => *other = AltinnAudience::Require(vec![aud.into()]),
        }
        self
    }

    /// Accepts Altinn tokens without an audience (as they are), also when Maskinporten tokens
    /// must name one.
    pub fn without_audience(mut self) -> Self {
        self.audience = AltinnAudience::NoneRequired;
        self
    }

    /// Refuses Altinn tokens that live longer than `max` (`exp - iat`; they live 30 minutes).
    pub fn max_token_lifetime(mut self, max: Duration) -> Self {
        self.lifetime = AltinnLifetime::AtMost(max);
        self
    }

    /// Accepts Altinn tokens of any lifetime, also when Maskinporten tokens are limited.
    pub fn any_lifetime(mut self) -> Self {
        self.lifetime = AltinnLifetime::Unlimited;
        self
    }

    /// The issuer these tokens name, from the platform URL as `build` reads it (host in lower
    /// case).
    pub fn issuer(&self) -> String {
        match url::Url::parse(&self.platform) {
            Ok(u) => altinn_issuer(u.as_str()),
            Err(_) => altinn_issuer(&self.platform),
        }
    }
}

/// One trusted issuer: its kind, the checks of its tokens, its keys.
pub(crate) struct Profile {
    pub kind: TokenIssuer,
    pub validator: Validator,
    pub keys: KeyStore,
}

#[derive(Deserialize)]
struct IssOnly<'a> {
    #[serde(borrow)]
    iss: Option<Name<'a>>,
}

/// The profile for the token whose payload (base64url) is `payload`: the one whose issuer its
/// `iss` names. Read with the strict reader (a repeated member anywhere is `invalid-claims`);
/// nothing here is trusted beyond picking the profile.
pub(crate) fn select(profiles: &[Profile], payload: &str) -> Result<usize, RejectionKind> {
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| RejectionKind::MalformedToken)?;
    let json = std::str::from_utf8(&bytes).map_err(|_| RejectionKind::MalformedToken)?;
    let claims: IssOnly<'_> = from_str_unique(json).map_err(|_| RejectionKind::InvalidClaims)?;
    let iss = claims.iss.ok_or(RejectionKind::WrongIssuer)?;
    profiles
        .iter()
        .position(|p| *p.validator.issuer == *iss)
        .ok_or(RejectionKind::WrongIssuer)
}
