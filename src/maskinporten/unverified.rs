//! [`UnverifiedToken`]: what a token says about itself, read without checking anything, for
//! diagnostics (`altinn-pep explain`). The verdict on a token is
//! [`MaskinportenLayer::check_token`](super::MaskinportenLayer::check_token)'s alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::layer::MAX_TOKEN_BYTES;
use super::token::{self, RawClaims, SystemUserClaim};
use super::validate::MAX_NUMERIC_DATE;
use crate::org::Organisation;
use crate::reject::RejectionKind;
use crate::strict_json::{Name, from_str_unique};

/// The header and claims of a token, decoded but **not verified**: anyone can write a token
/// that says anything. For showing a person what a token claims to be; never for access
/// control (that is [`MaskinportenLayer::check_token`](super::MaskinportenLayer::check_token)
/// and the layers). It holds nothing of the signature.
///
/// ```
/// use altinn_systemuser::maskinporten::UnverifiedToken;
/// use altinn_systemuser::reject::RejectionKind;
///
/// // {"alg":"RS256","kid":"k"} . {"iss":"https://test.maskinporten.no/","scope":"a:b c:d","exp":2000000000} . signature
/// let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.\
///     eyJpc3MiOiJodHRwczovL3Rlc3QubWFza2lucG9ydGVuLm5vLyIsInNjb3BlIjoiYTpiIGM6ZCIsImV4cCI6MjAwMDAwMDAwMH0.c2ln";
/// let t = UnverifiedToken::decode(token).unwrap();
/// assert_eq!(t.issuer(), Some("https://test.maskinporten.no/"));
/// assert_eq!(t.key_id(), Some("k"));
/// assert_eq!(t.scopes().collect::<Vec<_>>(), ["a:b", "c:d"]);
/// assert!(t.expires_at().is_some());
/// assert_eq!(UnverifiedToken::decode("not.a-token").unwrap_err(), RejectionKind::MalformedToken);
/// ```
#[derive(Debug, Clone)]
pub struct UnverifiedToken {
    algorithm: Option<String>,
    key_id: Option<String>,
    token_type: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    consumer: Option<Organisation>,
    scopes: Vec<String>,
    audience: Vec<String>,
    jti: Option<String>,
    issued_at: Option<i64>,
    not_before: Option<i64>,
    expires_at: Option<i64>,
    system_user: Result<Option<SystemUserClaim>, RejectionKind>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<Name<'a>>,
    #[serde(borrow)]
    kid: Option<Name<'a>>,
    #[serde(borrow)]
    typ: Option<Name<'a>>,
}

/// Base64url-decoded UTF-8 text of one part of a compact JWS.
fn part(b64: &str) -> Result<String, RejectionKind> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| RejectionKind::MalformedToken)?;
    String::from_utf8(bytes).map_err(|_| RejectionKind::MalformedToken)
}

impl UnverifiedToken {
    /// Decodes a compact JWS (`header.payload.signature`; a leading `Bearer ` is not
    /// accepted). [`RejectionKind::MalformedToken`] for anything that is not three base64url
    /// parts with a JSON header, or larger than [`MAX_TOKEN_BYTES`];
    /// [`RejectionKind::InvalidClaims`] for a payload that is not a JSON object of claims of the
    /// expected types (read with the same strict reader as the layer: a repeated member is
    /// refused).
    pub fn decode(token: &str) -> Result<UnverifiedToken, RejectionKind> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(RejectionKind::MalformedToken);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(RejectionKind::MalformedToken);
        };
        let header = part(h)?;
        let header: Header<'_> = from_str_unique(&header).map_err(|_| RejectionKind::MalformedToken)?;
        let payload = part(p)?;
        let c: RawClaims<'_> = from_str_unique(&payload).map_err(|_| RejectionKind::InvalidClaims)?;
        Ok(UnverifiedToken {
            algorithm: header.alg.map(Name::into_string),
            key_id: header.kid.map(Name::into_string),
            token_type: header.typ.map(Name::into_string),
            issuer: c.iss.map(Name::into_string),
            client_id: c.client_id.map(Name::into_string),
            consumer: token::parse_org(c.consumer).ok().flatten(),
            scopes: c
                .scope
                .as_deref()
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            audience: c
                .aud
                .map(|a| a.into_vec().into_iter().map(Name::into_string).collect())
                .unwrap_or_default(),
            jti: c.jti.map(Name::into_string),
            issued_at: c.iat.map(|t| t.0),
            not_before: c.nbf.map(|t| t.0),
            expires_at: c.exp.map(|t| t.0),
            system_user: c.authorization_details.map_or(Ok(None), token::AuthorizationDetails::system_user),
        })
    }

    /// The header's `alg`.
    pub fn algorithm(&self) -> Option<&str> {
        self.algorithm.as_deref()
    }

    /// The header's `kid`: which of the issuer's keys it claims to be signed with.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The header's `typ`.
    pub fn token_type(&self) -> Option<&str> {
        self.token_type.as_deref()
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// `client_id`: the caller's Maskinporten client.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// `consumer`, when it is a readable organisation: for a system-user token, the vendor.
    pub fn consumer(&self) -> Option<&Organisation> {
        self.consumer.as_ref()
    }

    /// `scope`, split on spaces.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.scopes.iter().map(String::as_str)
    }

    /// `aud`, empty when there is none.
    pub fn audience(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.audience.iter().map(String::as_str)
    }

    /// `jti`.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// `iat`, when present and between 1970 and 9999.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.issued_at.and_then(time)
    }

    /// `nbf`, when present and between 1970 and 9999.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before.and_then(time)
    }

    /// `exp`, when present and between 1970 and 9999.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at.and_then(time)
    }

    /// The system user in `authorization_details` (`None` for a token without one), or
    /// [`RejectionKind::InvalidSystemUser`] / [`RejectionKind::InvalidClaims`] when it is there
    /// but cannot be read.
    pub fn system_user(&self) -> Result<Option<&SystemUserClaim>, RejectionKind> {
        self.system_user.as_ref().map(Option::as_ref).map_err(|k| *k)
    }
}

/// A token time as a [`SystemTime`], when it lies between 1970 and 9999.
fn time(secs: i64) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok().filter(|s| *s <= MAX_NUMERIC_DATE as u64)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    #[test]
    fn reads_what_the_token_says() {
        let t = UnverifiedToken::decode(&tok(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"https://test.maskinporten.no/","client_id":"c","scope":"a:b","aud":["x","y"],"iat":100,"exp":-5,
               "consumer":{"authority":"iso6523-actorid-upis","ID":"0192:991825827"},
               "authorization_details":[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],
                 "systemuser_org":{"ID":"0192:310702641"},"system_id":"s"}]}"#,
        ))
        .unwrap();
        assert_eq!(
            (t.algorithm(), t.key_id(), t.token_type()),
            (Some("RS256"), Some("k1"), Some("JWT"))
        );
        assert_eq!(t.client_id(), Some("c"));
        assert_eq!(t.audience().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(t.consumer().map(ToString::to_string).as_deref(), Some("0192:991825827"));
        assert_eq!(t.issued_at(), Some(UNIX_EPOCH + Duration::from_secs(100)));
        assert_eq!(t.expires_at(), None, "before 1970");
        let su = t.system_user().unwrap().unwrap();
        assert_eq!(su.owner_org().to_string(), "310702641");
    }

    #[test]
    fn what_cannot_be_read() {
        let good_header = r#"{"alg":"RS256","kid":"k1"}"#;
        assert_eq!(UnverifiedToken::decode("a.b").unwrap_err(), RejectionKind::MalformedToken);
        assert_eq!(
            UnverifiedToken::decode(&tok("not json", "{}")).unwrap_err(),
            RejectionKind::MalformedToken
        );
        assert_eq!(
            UnverifiedToken::decode(&tok(good_header, r#"{"iss":1}"#)).unwrap_err(),
            RejectionKind::InvalidClaims
        );
        assert_eq!(
            UnverifiedToken::decode(&tok(good_header, r#"{"iss":"a","iss":"b"}"#)).unwrap_err(),
            RejectionKind::InvalidClaims
        );
        assert_eq!(
            UnverifiedToken::decode(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err(),
            RejectionKind::MalformedToken
        );
        let odd = UnverifiedToken::decode(&tok(
            good_header,
            r#"{"authorization_details":[{"type":"urn:altinn:systemuser","systemuser_id":["x"]}]}"#,
        ))
        .unwrap();
        assert_eq!(odd.system_user().unwrap_err(), RejectionKind::InvalidSystemUser);
    }
}
