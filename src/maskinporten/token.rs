//! [`MaskinportenToken`]: the verified token, and the claims it is parsed from.

use super::issuer::TokenIssuer;
use crate::org::{OrgNumber, Organisation};
use crate::reject::RejectionKind;
use crate::strict_json::from_str_unique;
use serde::Deserialize;
use serde::de::{SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The RAR `type` of a system-user entry in `authorization_details`.
pub const SYSTEM_USER_TYPE: &str = "urn:altinn:systemuser";

/// A Maskinporten access token whose signature, issuer, lifetime and audience were verified.
///
/// Put in the request extensions by [`MaskinportenLayer`](super::MaskinportenLayer). Cheap to
/// clone. It never holds the raw token: `Debug` shows who and what, not the credential.
#[derive(Clone)]
pub struct MaskinportenToken {
    inner: Arc<TokenData>,
}

pub(crate) struct TokenData {
    pub issuer: Box<str>,
    pub issuer_kind: TokenIssuer,
    pub scopes: Box<[Box<str>]>,
    pub client_id: Option<Box<str>>,
    pub client_amr: Option<Box<str>>,
    pub consumer: Option<Organisation>,
    pub supplier: Option<Organisation>,
    pub jti: Option<Box<str>>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audience: Box<[Box<str>]>,
    pub system_user: Option<SystemUserClaim>,
}

impl MaskinportenToken {
    pub(crate) fn from_data(data: TokenData) -> Self {
        MaskinportenToken { inner: Arc::new(data) }
    }

    /// The issuer (`iss`), exactly as configured.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Which issuer vouched for the caller: Maskinporten, or Altinn's platform (a token from
    /// the exchange, accepted with [`MaskinportenLayerBuilder::altinn_tokens`](super::MaskinportenLayerBuilder::altinn_tokens)).
    pub fn token_issuer(&self) -> TokenIssuer {
        self.inner.issuer_kind
    }

    /// The granted scopes (`scope`, split on spaces).
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.inner.scopes.iter().map(|s| &**s)
    }

    /// Whether the token grants exactly this scope (whole-element match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| &**s == scope)
    }

    /// The vendor's Maskinporten client (`client_id`). Not for access control.
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// How the client authenticated (`client_amr`, e.g. `private_key_jwt`).
    pub fn client_amr(&self) -> Option<&str> {
        self.inner.client_amr.as_deref()
    }

    /// The organisation that authenticated (`consumer`). For system-user tokens: the vendor.
    pub fn consumer(&self) -> Option<&Organisation> {
        self.inner.consumer.as_ref()
    }

    /// The `supplier` of older API-delegation tokens.
    pub fn supplier(&self) -> Option<&Organisation> {
        self.inner.supplier.as_ref()
    }

    /// The token id (`jti`).
    pub fn jti(&self) -> Option<&str> {
        self.inner.jti.as_deref()
    }

    /// When the token was issued (`iat`).
    pub fn issued_at(&self) -> SystemTime {
        unix(self.inner.issued_at)
    }

    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        unix(self.inner.expires_at)
    }

    pub(crate) fn exp_unix(&self) -> i64 {
        self.inner.expires_at
    }

    /// The audiences (`aud`), empty when the token carries none.
    pub fn audience(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.inner.audience.iter().map(|s| &**s)
    }

    /// The system user the token acts as, if it is a system-user token.
    pub fn system_user(&self) -> Option<&SystemUserClaim> {
        self.inner.system_user.as_ref()
    }
}

/// A time from a token's seconds. Validation keeps them within `0..=`year 9999; anything else
/// (never reached) reads as the epoch, i.e. long past, rather than overflowing.
fn unix(secs: i64) -> SystemTime {
    u64::try_from(secs)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .unwrap_or(UNIX_EPOCH)
}

impl fmt::Debug for MaskinportenToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.inner;
        f.debug_struct("MaskinportenToken")
            .field("issuer", &d.issuer)
            .field("client_id", &d.client_id)
            .field("consumer", &d.consumer.as_ref().map(ToString::to_string))
            .field("scopes", &d.scopes)
            .field("expires_at", &d.expires_at)
            .field("system_user", &d.system_user)
            .finish_non_exhaustive()
    }
}

/// The system user in a token's `authorization_details` (`type` `urn:altinn:systemuser`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemUserClaim {
    ids: Box<[Uuid]>,
    owner: Organisation,
    owner_org: OrgNumber,
    system_id: Box<str>,
    external_ref: Option<Box<str>>,
}

impl SystemUserClaim {
    /// The system user's id: the first element of `systemuser_id`, as all Altinn code uses it.
    pub fn id(&self) -> Uuid {
        self.ids[0]
    }

    /// All ids in `systemuser_id` (normally one).
    pub fn ids(&self) -> &[Uuid] {
        &self.ids
    }

    /// The organisation that owns the system user (`systemuser_org`): the customer.
    pub fn owner(&self) -> &Organisation {
        &self.owner
    }

    /// The owner's organisation number.
    pub fn owner_org(&self) -> OrgNumber {
        self.owner_org
    }

    /// The vendor's system in Altinn's system register (`system_id`).
    pub fn system_id(&self) -> &str {
        &self.system_id
    }

    /// The vendor's reference for choosing among system users (`externalRef`).
    pub fn external_ref(&self) -> Option<&str> {
        self.external_ref.as_deref()
    }
}

/// The claims as they come off the wire, read with `strict_json::from_str_unique`: unknown
/// claims are ignored, any claim name repeated is an error.
#[derive(Deserialize)]
pub(crate) struct RawClaims<'a> {
    // Borrowed from the payload when unescaped: these are only compared or split, never kept.
    #[serde(borrow)]
    pub iss: Option<Cow<'a, str>>,
    pub exp: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub aud: Option<OneOrMany<String>>,
    #[serde(borrow)]
    pub scope: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub token_type: Option<Cow<'a, str>>,
    pub client_id: Option<String>,
    pub client_amr: Option<String>,
    pub jti: Option<String>,
    #[serde(borrow)]
    pub consumer: Option<RawOrg<'a>>,
    #[serde(borrow)]
    pub supplier: Option<RawOrg<'a>>,
    #[serde(borrow)]
    pub authorization_details: Option<&'a RawValue>,
    /// Altinn tokens: the vendor's organisation number.
    #[serde(borrow, rename = "urn:altinn:orgNumber")]
    pub altinn_org_number: Option<Cow<'a, str>>,
    /// Altinn tokens: how the caller authenticated (`maskinporten` for a system user).
    #[serde(borrow, rename = "urn:altinn:authenticatemethod")]
    pub altinn_authenticate_method: Option<Cow<'a, str>>,
    /// Altinn tokens: the authentication level (an integer; 3 for a system user).
    #[serde(rename = "urn:altinn:authlevel")]
    pub altinn_auth_level: Option<u64>,
}

/// A JSON number of seconds since the epoch (integer or fractional).
pub(crate) struct NumericDate(pub i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(i) = n.as_i64() {
            return Ok(NumericDate(i));
        }
        match n.as_f64() {
            Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(NumericDate(f.floor() as i64)),
            _ => Err(serde::de::Error::custom("numeric date out of range")),
        }
    }
}

/// A string or an array of strings (`aud`, `systemuser_id`).
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// Accepts exactly what `#[serde(untagged)]` over `One(String)` / `Many(Vec<String>)` would, but
/// in one pass: untagged buffers the value and builds (and formats) an error for the variant
/// that does not match, on every token.
impl<'de> Deserialize<'de> for OneOrMany<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StringOrSeq;
        impl<'de> Visitor<'de> for StringOrSeq {
            type Value = OneOrMany<String>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany::One(s.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(OneOrMany::One(s))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(OneOrMany::Many(all))
            }
        }
        d.deserialize_any(StringOrSeq)
    }
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RawOrg<'a> {
    // Borrowed from the payload when unescaped: only read to build the `Organisation`.
    #[serde(borrow)]
    authority: Option<Cow<'a, str>>,
    #[serde(rename = "ID", borrow)]
    id_upper: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

impl RawOrg<'_> {
    fn parse(self) -> Option<Organisation> {
        let id = match (self.id_upper, self.id) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        Organisation::from_iso6523(self.authority.as_deref().unwrap_or(crate::org::ISO6523_AUTHORITY), &id).ok()
    }
}

#[derive(Deserialize)]
struct DetailType<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawSystemUser<'a> {
    systemuser_id: Option<OneOrMany<String>>,
    #[serde(borrow)]
    systemuser_org: Option<RawOrg<'a>>,
    system_id: Option<String>,
    #[serde(rename = "externalRef")]
    external_ref: Option<String>,
}

/// Parses `consumer` / `supplier`: present but malformed is an error.
pub(crate) fn parse_org(raw: Option<RawOrg<'_>>) -> Result<Option<Organisation>, RejectionKind> {
    match raw {
        None => Ok(None),
        Some(r) => r.parse().map(Some).ok_or(RejectionKind::InvalidClaims),
    }
}

/// Finds the system user in `authorization_details` (array or single object).
///
/// Other RAR types are ignored. A malformed system-user entry, or more than one, rejects the
/// token: a token that claims to be a system user and cannot be read is not a plain token.
pub(crate) fn parse_system_user(raw: Option<&RawValue>) -> Result<Option<SystemUserClaim>, RejectionKind> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim_start();
    let entries: Vec<&RawValue> = if text.starts_with('[') {
        serde_json::from_str(text).map_err(|_| RejectionKind::InvalidClaims)?
    } else if text.starts_with('{') {
        vec![raw]
    } else {
        return Err(RejectionKind::InvalidClaims);
    };
    let mut found = None;
    for entry in entries {
        // Two `type`s are refused by the derive (a repeated known field).
        let t: DetailType<'_> = serde_json::from_str(entry.get()).map_err(|_| RejectionKind::InvalidClaims)?;
        if t.ty.as_deref() != Some(SYSTEM_USER_TYPE) {
            continue;
        }
        if found.is_some() {
            return Err(RejectionKind::InvalidSystemUser);
        }
        // The system-user entry has distinct member names, known or not.
        let su: RawSystemUser = from_str_unique(entry.get()).map_err(|_| RejectionKind::InvalidSystemUser)?;
        found = Some(su.into_claim().ok_or(RejectionKind::InvalidSystemUser)?);
    }
    Ok(found)
}

impl RawSystemUser<'_> {
    fn into_claim(self) -> Option<SystemUserClaim> {
        let ids: Vec<Uuid> = self
            .systemuser_id?
            .into_vec()
            .iter()
            .map(|s| Uuid::try_parse(s).ok().filter(|u| !u.is_nil()))
            .collect::<Option<_>>()?;
        if ids.is_empty() || ids.len() > 16 {
            return None;
        }
        let owner = self.systemuser_org?.parse()?;
        let owner_org = owner.org_number()?;
        let system_id = self.system_id.filter(|s| !s.is_empty() && s.len() <= 256)?;
        let external_ref = match self.external_ref {
            Some(r) if r.len() > 256 => return None,
            r => r.map(Into::into),
        };
        Some(SystemUserClaim {
            ids: ids.into(),
            owner,
            owner_org,
            system_id: system_id.into(),
            external_ref,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn su(json: &str) -> Result<Option<SystemUserClaim>, RejectionKind> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        parse_system_user(Some(&raw))
    }

    #[test]
    fn one_or_many_strings() {
        let parse = |j: &str| serde_json::from_str::<Option<OneOrMany<String>>>(j).map(|o| o.map(OneOrMany::into_vec));
        assert_eq!(parse(r#""a""#).unwrap(), Some(vec!["a".to_owned()]));
        assert_eq!(parse(r#""a\u0062""#).unwrap(), Some(vec!["ab".to_owned()]));
        assert_eq!(parse(r#"["a","b"]"#).unwrap(), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(parse("[]").unwrap(), Some(vec![]));
        assert_eq!(parse("null").unwrap(), None);
        for bad in ["1", "true", "{}", r#"["a",1]"#, "[[]]", r#"{"a":"b"}"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sample_token_payload_parses() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/samples/maskinporten-systemuser-token-payload.test.json"
        ))
        .unwrap();
        let claims: RawClaims<'_> = serde_json::from_str(&body).unwrap();
        let s = parse_system_user(claims.authorization_details).unwrap().unwrap();
        assert_eq!(s.id().to_string(), "f950ddae-06c3-4b57-b940-702417a90df0");
        assert_eq!(s.owner_org().to_string(), "310702641");
        assert_eq!(s.system_id(), "991825827_smartcloud");
        assert_eq!(s.external_ref(), Some("ed1c38f4-f528-4ef1-8652-b1aeb8563dfe"));
        assert_eq!(parse_org(claims.consumer).unwrap().unwrap().to_string(), "0192:991825827");
    }

    #[test]
    fn exchanged_single_object_and_lowercase_id() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/samples/altinn-exchanged-systemuser-token-payload.tt02.json"
        ))
        .unwrap();
        let claims: RawClaims<'_> = serde_json::from_str(&body).unwrap();
        assert!(parse_system_user(claims.authorization_details).unwrap().is_some());
        let s = su(r#"{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"authority":"iso6523-actorid-upis","id":"0192:310702641"},"system_id":"x"}"#).unwrap().unwrap();
        assert_eq!(s.owner_org().to_string(), "310702641");
    }

    #[test]
    fn other_types_ignored_malformed_rejected() {
        assert_eq!(su(r#"[{"type":"urn:altinn:consent","id":"x"}]"#), Ok(None));
        assert_eq!(su(r#"[]"#), Ok(None));
        let bad = [
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":["not-a-uuid"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}]"#,
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":[],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}]"#,
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702640"},"system_id":"x"}]"#,
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"system_id":"x"}]"#,
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"}}]"#,
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}]"#,
            r#"[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641","id":"0192:991825827"},"system_id":"x"}]"#,
        ];
        for b in bad {
            assert_eq!(su(b), Err(RejectionKind::InvalidSystemUser), "{b}");
        }
        // A member repeated in an entry: the entry can be read two ways.
        let one = r#"{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}"#;
        assert!(su(one).unwrap().is_some(), "the unambiguous twin");
        assert_eq!(
            su(&one.replacen(r#""system_id":"x""#, r#""system_id":"x","note":1,"note":2"#, 1)),
            Err(RejectionKind::InvalidSystemUser)
        );
        assert_eq!(
            su(&one.replacen(
                r#""type":"urn:altinn:systemuser""#,
                r#""type":"urn:altinn:consent","type":"urn:altinn:systemuser""#,
                1
            )),
            Err(RejectionKind::InvalidClaims)
        );
        let two = r#"[{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"},{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}]"#;
        assert_eq!(su(two), Err(RejectionKind::InvalidSystemUser));
    }
}
