//! [`MaskinportenToken`]: the verified token, and the claims it is parsed from.

use super::issuer::TokenIssuer;
use crate::org::{OrgNumber, Organisation};
use crate::reject::RejectionKind;
use crate::strict_json::{Name, Seen};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;
use smol_str::SmolStr;
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
    inner: Arc<Stored>,
}

/// What the validator hands over to make a [`MaskinportenToken`]: the strings are borrowed
/// from the payload, and copied into one allocation ([`MaskinportenToken::from_data`]).
pub(crate) struct TokenData<'a> {
    pub issuer: std::sync::Arc<str>,
    pub issuer_kind: TokenIssuer,
    /// `scope` as the token says it: split on spaces, empty pieces dropped.
    pub scope: &'a str,
    pub client_id: Option<&'a str>,
    pub client_amr: Option<&'a str>,
    pub consumer: Option<Organisation>,
    pub supplier: Option<Organisation>,
    pub jti: Option<&'a str>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audience: &'a [Name<'a>],
    pub system_user: Option<SystemUserClaim>,
}

/// Where one string lies in [`Stored::text`].
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

/// A verified token as kept: every string claim in one `text`, so that making a token costs
/// one allocation for them, and dropping one (a cache eviction) one free.
struct Stored {
    issuer: std::sync::Arc<str>,
    issuer_kind: TokenIssuer,
    text: Box<str>,
    scopes: SmallVec<[Span; 3]>,
    client_id: Option<Span>,
    client_amr: Option<Span>,
    jti: Option<Span>,
    audience: SmallVec<[Span; 1]>,
    consumer: Option<Organisation>,
    supplier: Option<Organisation>,
    issued_at: i64,
    expires_at: i64,
    system_user: Option<SystemUserClaim>,
}

impl Stored {
    fn get(&self, span: Span) -> &str {
        // Spans are made by `from_data` over this very text, at character boundaries.
        let start = span.start as usize;
        self.text.get(start..start + span.len as usize).unwrap_or("")
    }
}

impl MaskinportenToken {
    pub(crate) fn from_data(data: TokenData<'_>) -> Self {
        let scopes = || data.scope.split(' ').filter(|s| !s.is_empty());
        let audience = || data.audience.iter().map(|a| &**a);
        let optional = [data.client_id, data.client_amr, data.jti];
        let len = scopes().map(str::len).sum::<usize>()
            + audience().map(str::len).sum::<usize>()
            + optional.iter().flatten().map(|s| s.len()).sum::<usize>();
        debug_assert!(len < u32::MAX as usize, "a token is at most 8 KB");
        let mut text = String::with_capacity(len);
        // A token is at most `MAX_TOKEN_BYTES` (8 KB), so every offset fits.
        let mut push = |s: &str| {
            let span = Span {
                start: u32::try_from(text.len()).unwrap_or(u32::MAX),
                len: u32::try_from(s.len()).unwrap_or(0),
            };
            text.push_str(s);
            span
        };
        let scopes = scopes().map(&mut push).collect();
        let audience = audience().map(&mut push).collect();
        let [client_id, client_amr, jti] = optional.map(|s| s.map(&mut push));
        MaskinportenToken {
            inner: Arc::new(Stored {
                issuer: data.issuer,
                issuer_kind: data.issuer_kind,
                text: text.into_boxed_str(),
                scopes,
                client_id,
                client_amr,
                jti,
                audience,
                consumer: data.consumer,
                supplier: data.supplier,
                issued_at: data.issued_at,
                expires_at: data.expires_at,
                system_user: data.system_user,
            }),
        }
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
        self.inner.scopes.iter().map(|s| self.inner.get(*s))
    }

    /// Whether the token grants exactly this scope (whole-element match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| self.inner.get(*s) == scope)
    }

    /// The vendor's Maskinporten client (`client_id`). Not for access control.
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.map(|s| self.inner.get(s))
    }

    /// How the client authenticated (`client_amr`, e.g. `private_key_jwt`).
    pub fn client_amr(&self) -> Option<&str> {
        self.inner.client_amr.map(|s| self.inner.get(s))
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
        self.inner.jti.map(|s| self.inner.get(s))
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
        self.inner.audience.iter().map(|s| self.inner.get(*s))
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
            .field("client_id", &self.client_id())
            .field("consumer", &d.consumer.as_ref().map(ToString::to_string))
            .field("scopes", &self.scopes().collect::<SmallVec<[&str; 3]>>())
            .field("expires_at", &d.expires_at)
            .field("system_user", &d.system_user)
            .finish_non_exhaustive()
    }
}

/// The system user in a token's `authorization_details` (`type` `urn:altinn:systemuser`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemUserClaim {
    // Inline: one id, and strings of up to 23 bytes, cost no allocation.
    ids: SmallVec<[Uuid; 1]>,
    owner: Organisation,
    owner_org: OrgNumber,
    system_id: SmolStr,
    external_ref: Option<SmolStr>,
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
    // Borrowed from the payload when unescaped: compared, split, or copied into the token's one
    // text allocation ([`MaskinportenToken::from_data`]).
    #[serde(borrow)]
    pub iss: Option<Name<'a>>,
    pub exp: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    #[serde(borrow)]
    pub aud: Option<OneOrMany<Name<'a>>>,
    #[serde(borrow)]
    pub scope: Option<Name<'a>>,
    #[serde(borrow)]
    pub token_type: Option<Name<'a>>,
    #[serde(borrow)]
    pub client_id: Option<Name<'a>>,
    #[serde(borrow)]
    pub client_amr: Option<Name<'a>>,
    #[serde(borrow)]
    pub jti: Option<Name<'a>>,
    #[serde(borrow)]
    pub consumer: Option<RawOrg<'a>>,
    #[serde(borrow)]
    pub supplier: Option<RawOrg<'a>>,
    /// Read in the same pass as the other claims; what it says is checked after them.
    pub authorization_details: Option<AuthorizationDetails>,
    /// Altinn tokens: the vendor's organisation number.
    #[serde(borrow, rename = "urn:altinn:orgNumber")]
    pub altinn_org_number: Option<Name<'a>>,
    /// Altinn tokens: how the caller authenticated (`maskinporten` for a system user).
    #[serde(borrow, rename = "urn:altinn:authenticatemethod")]
    pub altinn_authenticate_method: Option<Name<'a>>,
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
    Many(SmallVec<[T; 2]>),
}

/// Accepts exactly what `#[serde(untagged)]` over `One(Name)` / `Many(Vec<Name>)` would, but in
/// one pass (untagged buffers the value and builds, and formats, an error for the variant that
/// does not match, on every token). Read as [`Shaped`] reads `systemuser_id`, with any other
/// shape an error. Strings are borrowed from the payload where they have no escapes (a UUID
/// never does): no allocation per string, and none for a list of up to two.
impl<'de: 'a, 'a> Deserialize<'de> for OneOrMany<Name<'a>> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Shaped::<OneOrMany<Name<'a>>>::deserialize(d)?.0 {
            Ok(Some(value)) => Ok(value),
            Ok(None) | Err(()) => Err(serde::de::Error::custom("expected a string or an array of strings")),
        }
    }
}

impl<T> OneOrMany<T> {
    /// The values, one or many, as a slice.
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t),
            OneOrMany::Many(v) => v,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v.into_vec(),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RawOrg<'a> {
    // Borrowed from the payload when unescaped: only read to build the `Organisation`.
    #[serde(borrow)]
    authority: Option<Name<'a>>,
    #[serde(rename = "ID", borrow)]
    id_upper: Option<Name<'a>>,
    #[serde(borrow)]
    id: Option<Name<'a>>,
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

/// The system-user members of an entry, read in the one pass ([`Shaped`]).
struct RawSystemUser<'a> {
    systemuser_id: Option<OneOrMany<Name<'a>>>,
    systemuser_org: Option<RawOrg<'a>>,
    system_id: Option<Name<'a>>,
    external_ref: Option<Name<'a>>,
}

/// Parses `consumer` / `supplier`: present but malformed is an error.
pub(crate) fn parse_org(raw: Option<RawOrg<'_>>) -> Result<Option<Organisation>, RejectionKind> {
    match raw {
        None => Ok(None),
        Some(r) => r.parse().map(Some).ok_or(RejectionKind::InvalidClaims),
    }
}

/// Finds the system user in `authorization_details` (array or single object), for tests: the
/// validator reads it with the other claims ([`AuthorizationDetails`]).
#[cfg(test)]
pub(crate) fn parse_system_user(raw: Option<&serde_json::value::RawValue>) -> Result<Option<SystemUserClaim>, RejectionKind> {
    let Some(raw) = raw else { return Ok(None) };
    let details: Option<AuthorizationDetails> = serde_json::from_str(raw.get()).map_err(|_| RejectionKind::InvalidClaims)?;
    details.map_or(Ok(None), AuthorizationDetails::system_user)
}

/// `authorization_details` (RFC 9396), read in the one pass over the payload that reads every
/// claim: each entry's members are read once, as they go by (the four system-user members into
/// [`Shaped`] values whatever the entry's type, since `type` may come last).
///
/// What it says is kept as data, not as a deserialization error, so that the validator still
/// checks the issuer and the times first:
/// - other RAR types are ignored;
/// - an entry that is not an object, or names its `type` twice or not as a string, makes the
///   token `invalid-claims`;
/// - a system-user entry that is malformed, repeats a member name (known or not), or comes
///   twice makes it `invalid-system-user`;
/// - the first of these in the list is the one reported.
pub(crate) struct AuthorizationDetails {
    found: Result<Option<SystemUserClaim>, RejectionKind>,
}

impl AuthorizationDetails {
    /// The system user, or why the list cannot be used.
    pub(crate) fn system_user(self) -> Result<Option<SystemUserClaim>, RejectionKind> {
        self.found
    }
}

impl<'de> Deserialize<'de> for AuthorizationDetails {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let found = d.deserialize_any(DetailsVisitor)?;
        Ok(AuthorizationDetails { found })
    }
}

struct DetailsVisitor;

impl<'de> Visitor<'de> for DetailsVisitor {
    type Value = Result<Option<SystemUserClaim>, RejectionKind>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of authorization details, or one")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut outcome: Self::Value = Ok(None);
        while let Some(Entry(entry)) = seq.next_element::<Entry>()? {
            // The first problem in the list decides; the rest is only read through.
            let Ok(found) = &mut outcome else { continue };
            match entry {
                Err(kind) => outcome = Err(kind),
                Ok(Some(_)) if found.is_some() => outcome = Err(RejectionKind::InvalidSystemUser),
                Ok(Some(claim)) => *found = Some(claim),
                Ok(None) => {}
            }
        }
        Ok(outcome)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        EntryVisitor.visit_map(map)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }
}

/// One entry of the list: the system user it names, `None` for another type, or why it
/// cannot be used. Anything that is valid JSON is read (a problem is data, not an error).
struct Entry(Result<Option<SystemUserClaim>, RejectionKind>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor).map(Entry)
    }
}

struct EntryVisitor;

/// A `type` value: a string or `null`; anything else is `Err(())`.
struct TypeValue<'de>(Result<Option<Cow<'de, str>>, ()>);

impl<'de> Deserialize<'de> for TypeValue<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a type")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Ok(Some(Cow::Borrowed(s)))))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Ok(Some(Cow::Owned(s.to_owned())))))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Ok(None)))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Err(())))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Err(())))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Err(())))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<TypeValue<'de>, E> {
                Ok(TypeValue(Err(())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TypeValue<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TypeValue(Err(())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypeValue<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TypeValue(Err(())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which member of an entry a name is.
#[derive(Clone, Copy)]
enum Member {
    Type,
    SystemUserId,
    SystemUserOrg,
    SystemId,
    ExternalRef,
    Other,
}

impl Member {
    fn of(name: &str) -> Member {
        match name {
            "type" => Member::Type,
            "systemuser_id" => Member::SystemUserId,
            "systemuser_org" => Member::SystemUserOrg,
            "system_id" => Member::SystemId,
            "externalRef" => Member::ExternalRef,
            _ => Member::Other,
        }
    }
}

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Result<Option<SystemUserClaim>, RejectionKind>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an authorization detail")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ty: Option<Result<Option<Cow<'de, str>>, ()>> = None;
        let mut type_twice = false;
        // The system-user members, read as they go by; their shapes matter only for that type.
        let mut ids: Shaped<OneOrMany<Name<'de>>> = Shaped(Ok(None));
        let mut org: Shaped<RawOrg<'de>> = Shaped(Ok(None));
        let mut system_id: Shaped<Name<'de>> = Shaped(Ok(None));
        let mut external_ref: Shaped<Name<'de>> = Shaped(Ok(None));
        let mut names = Seen::default();
        let mut repeated = false;
        while let Some(name) = map.next_key::<Name<'de>>()? {
            match Member::of(&name.0) {
                Member::Type => {
                    let v = map.next_value::<TypeValue<'de>>()?.0;
                    type_twice |= ty.is_some();
                    ty = Some(v);
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                Member::SystemUserId => ids = map.next_value()?,
                Member::SystemUserOrg => org = map.next_value()?,
                Member::SystemId => system_id = map.next_value()?,
                Member::ExternalRef => external_ref = map.next_value()?,
            }
            repeated |= !names.insert(name);
        }
        // As serde's derive would read `{"type": ...}`: a repeated or mistyped `type` cannot be
        // read, whatever the entry is.
        if type_twice {
            return Ok(Err(RejectionKind::InvalidClaims));
        }
        let ty = match ty {
            None => None,
            Some(Ok(t)) => t,
            Some(Err(())) => return Ok(Err(RejectionKind::InvalidClaims)),
        };
        if ty.as_deref() != Some(SYSTEM_USER_TYPE) {
            return Ok(Ok(None));
        }
        // The system-user entry has distinct member names, known or not.
        if repeated {
            return Ok(Err(RejectionKind::InvalidSystemUser));
        }
        let members = (ids.0, org.0, system_id.0, external_ref.0);
        let (Ok(systemuser_id), Ok(systemuser_org), Ok(system_id), Ok(external_ref)) = members else {
            return Ok(Err(RejectionKind::InvalidSystemUser));
        };
        let raw = RawSystemUser {
            systemuser_id,
            systemuser_org,
            system_id,
            external_ref,
        };
        Ok(raw.into_claim().map(Some).ok_or(RejectionKind::InvalidSystemUser))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(RejectionKind::InvalidClaims))
    }
}

/// A member's value as the one pass reads it: `Ok(None)` for `null` (or no member),
/// `Ok(Some)` when it has the shape the member needs, `Err(())` for any other JSON value, which
/// is read through: a wrong shape is the entry's problem, not the payload's. The shapes are
/// what serde's derive of [`RawSystemUser`] over `Option<..>` members would accept, except
/// that `systemuser_org` must be an object (the derive also took an array of its three
/// members in order). What serde_json itself cannot read here (a number beyond `f64`, a lone
/// UTF-16 surrogate in a string) fails the payload (`invalid-claims`), in an entry of any type,
/// as it does in any claim this crate reads; these members used to be skipped unread until
/// `type` was known.
struct Shaped<T>(Result<Option<T>, ()>);

/// The visitor methods for the JSON values that never have the shape.
macro_rules! wrong_shapes {
    ($t:ty) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Shaped<$t>, E> {
            Ok(Shaped(Err(())))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Shaped<$t>, E> {
            Ok(Shaped(Err(())))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Shaped<$t>, E> {
            Ok(Shaped(Err(())))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Shaped<$t>, E> {
            Ok(Shaped(Err(())))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Shaped<$t>, E> {
            Ok(Shaped(Ok(None)))
        }
    };
}

/// Reads the rest of a list, for a value already known to have the wrong shape.
fn drain_seq<'de, A: SeqAccess<'de>, T>(mut seq: A) -> Result<Shaped<T>, A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(Shaped(Err(())))
}

/// Reads the rest of an object, for a value already known to have the wrong shape.
fn drain_map<'de, A: MapAccess<'de>, T>(mut map: A) -> Result<Shaped<T>, A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(Shaped(Err(())))
}

/// A string (`system_id`, `externalRef`, and each member of `systemuser_org`).
impl<'de> Deserialize<'de> for Shaped<Name<'de>> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shaped<Name<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Shaped(Ok(Some(Name(Cow::Borrowed(s))))))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Shaped(Ok(Some(Name(Cow::Owned(s.to_owned()))))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)
            }
            wrong_shapes!(Name<'de>);
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings (`systemuser_id`; `aud` through [`OneOrMany`]'s own reader).
impl<'de: 'a, 'a> Deserialize<'de> for Shaped<OneOrMany<Name<'a>>> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `SmallVec` is invariant in its items: the visitor builds `Name<'a>`s from the start.
        struct V<'a>(std::marker::PhantomData<Name<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Shaped<OneOrMany<Name<'a>>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Shaped(Ok(Some(OneOrMany::One(Name(Cow::Borrowed(s)))))))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Shaped(Ok(Some(OneOrMany::One(Name(Cow::Owned(s.to_owned())))))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = SmallVec::new();
                let mut wrong = false;
                while let Some(Shaped(item)) = seq.next_element::<Shaped<Name<'de>>>()? {
                    match item {
                        Ok(Some(name)) if !wrong => all.push(name),
                        _ => wrong = true,
                    }
                }
                Ok(Shaped(if wrong { Err(()) } else { Ok(Some(OneOrMany::Many(all))) }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)
            }
            wrong_shapes!(OneOrMany<Name<'a>>);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// An organisation object (`systemuser_org`): `authority`, `ID`, `id`, each a string or `null`
/// and named at most once; other members are ignored.
impl<'de> Deserialize<'de> for Shaped<RawOrg<'de>> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shaped<RawOrg<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an organisation")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(Shaped(Err(())))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Shaped(Err(())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // Each known member once, as the derive requires; `None` until it is named.
                let mut members: [Option<Option<Name<'de>>>; 3] = [None, None, None];
                let mut wrong = false;
                while let Some(name) = map.next_key::<Name<'de>>()? {
                    let slot = match &*name {
                        "authority" => 0,
                        "ID" => 1,
                        "id" => 2,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let Shaped(value) = map.next_value::<Shaped<Name<'de>>>()?;
                    match value {
                        Ok(v) if members[slot].is_none() => members[slot] = Some(v),
                        _ => wrong = true,
                    }
                }
                if wrong {
                    return Ok(Shaped(Err(())));
                }
                let [authority, id_upper, id] = members.map(Option::flatten);
                Ok(Shaped(Ok(Some(RawOrg { authority, id_upper, id }))))
            }
            wrong_shapes!(RawOrg<'de>);
        }
        d.deserialize_any(V)
    }
}

impl<'a> RawSystemUser<'a> {
    fn into_claim(self) -> Option<SystemUserClaim> {
        let names = self.systemuser_id?;
        let names = names.as_slice();
        if names.is_empty() || names.len() > 16 {
            return None;
        }
        // One id (the usual case) is kept inline; more take one allocation.
        let mut ids = SmallVec::with_capacity(names.len());
        for n in names {
            ids.push(Uuid::try_parse(&n.0).ok().filter(|u| !u.is_nil())?);
        }
        let owner = self.systemuser_org?.parse()?;
        let owner_org = owner.org_number()?;
        let system_id = self.system_id.filter(|s| !s.is_empty() && s.len() <= 256)?;
        let external_ref = match self.external_ref {
            Some(r) if r.len() > 256 => return None,
            r => r.map(|r| SmolStr::new(&*r)),
        };
        Some(SystemUserClaim {
            ids,
            owner,
            owner_org,
            system_id: SmolStr::new(&*system_id),
            external_ref,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn su(json: &str) -> Result<Option<SystemUserClaim>, RejectionKind> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        parse_system_user(Some(&raw))
    }

    #[test]
    fn a_token_keeps_every_string_claim_in_one_text() {
        let audience = [Name(Cow::Borrowed("x y")), Name(Cow::Borrowed("")), Name(Cow::Owned("zæ".into()))];
        let t = MaskinportenToken::from_data(TokenData {
            issuer: "https://test.maskinporten.no/".into(),
            issuer_kind: TokenIssuer::Maskinporten,
            scope: "  a:b  c:d e ",
            client_id: Some("client"),
            client_amr: None,
            consumer: None,
            supplier: None,
            jti: Some("jti-ø"),
            issued_at: 1,
            expires_at: 2,
            audience: &audience,
            system_user: None,
        });
        assert_eq!(t.scopes().collect::<Vec<_>>(), ["a:b", "c:d", "e"]);
        assert_eq!(t.scopes().len(), 3);
        assert!(t.has_scope("c:d") && !t.has_scope("c") && !t.has_scope(""));
        assert_eq!(t.audience().collect::<Vec<_>>(), ["x y", "", "zæ"]);
        assert_eq!((t.client_id(), t.client_amr(), t.jti()), (Some("client"), None, Some("jti-ø")));
        let debug = format!("{t:?}");
        assert!(
            debug.contains(r#"client_id: Some("client")"#) && debug.contains(r#"scopes: ["a:b", "c:d", "e"]"#),
            "{debug}"
        );
    }

    #[test]
    fn one_or_many_strings() {
        let parse = |j: &str| {
            serde_json::from_str::<Option<OneOrMany<Name<'_>>>>(j)
                .map(|o| o.map(|m| m.into_vec().into_iter().map(Name::into_string).collect::<Vec<_>>()))
        };
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
        let s = claims.authorization_details.unwrap().system_user().unwrap().unwrap();
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
        assert!(claims.authorization_details.unwrap().system_user().unwrap().is_some());
        let s = su(r#"{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"authority":"iso6523-actorid-upis","id":"0192:310702641"},"system_id":"x"}"#).unwrap().unwrap();
        assert_eq!(s.owner_org().to_string(), "310702641");
    }

    #[test]
    fn one_pass_reads_the_list_as_the_entries_say() {
        let good = r#"{"type":"urn:altinn:systemuser","systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}"#;
        let bad_su = r#"{"type":"urn:altinn:systemuser","systemuser_id":"nope","systemuser_org":{"ID":"0192:310702641"},"system_id":"x"}"#;
        // Another type's members are not read, whatever their shape.
        assert_eq!(
            su(r#"[{"type":"urn:altinn:consent","systemuser_id":5,"systemuser_org":[],"system_id":{}}]"#),
            Ok(None)
        );
        assert!(
            su(&format!(r#"[{{"type":"urn:altinn:consent","x":1,"x":2}},{good}]"#))
                .unwrap()
                .is_some()
        );
        // `type` given last is still read; escapes in names and values are read unescaped.
        let last = r#"{"systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"],"systemuser_org":{"ID":"0192:310702641"},"system_id":"x","type":"urn:altinn:systemuser"}"#;
        assert!(su(last).unwrap().is_some());
        let escaped = good.replace(r#""type":"urn:altinn:systemuser""#, r#""\u0074ype":"urn:altinn:system\u0075ser""#);
        assert!(su(&escaped).unwrap().is_some(), "{escaped}");
        // `system_id` and `externalRef` as the text says them: plain, escaped, or not strings.
        let with = |system_id: &str, external: &str| {
            su(&good.replace(
                r#""system_id":"x""#,
                &format!(r#""system_id":{system_id},"externalRef":{external}"#),
            ))
        };
        let read = with(r#""sys-1""#, r#""ref \"1\" \u00e6\/""#).unwrap().unwrap();
        assert_eq!((read.system_id(), read.external_ref()), ("sys-1", Some(r#"ref "1" æ/"#)));
        let read = with(r#""s\u0079s""#, "null").unwrap().unwrap();
        assert_eq!((read.system_id(), read.external_ref()), ("sys", None));
        for (system_id, external) in [
            ("5", r#""r""#),
            (r#""s""#, "[]"),
            ("null", r#""r""#),
            (r#""""#, r#""r""#),
            ("{}", "1"),
        ] {
            assert_eq!(
                with(system_id, external),
                Err(RejectionKind::InvalidSystemUser),
                "{system_id} {external}"
            );
        }
        // Each member's shape, read in the pass: a wrong one is read through (what follows it is
        // still read) and makes the entry invalid.
        let member = |name: &str, value: &str| {
            let id = r#""systemuser_id":["f950ddae-06c3-4b57-b940-702417a90df0"]"#;
            let org = r#""systemuser_org":{"ID":"0192:310702641"}"#;
            let entry = match name {
                "systemuser_id" => format!(r#"{{"type":"urn:altinn:systemuser","systemuser_id":{value},{org},"system_id":"x"}}"#),
                _ => format!(r#"{{"type":"urn:altinn:systemuser",{id},"systemuser_org":{value},"system_id":"x"}}"#),
            };
            su(&format!(r#"[{entry},{{"type":"urn:altinn:consent","after":[{{"a":[1]}}]}}]"#))
        };
        for ids in [
            r#"["f950ddae-06c3-4b57-b940-702417a90df0",null]"#,
            r#"[["f950ddae-06c3-4b57-b940-702417a90df0"]]"#,
            r#"{"a":["b"]}"#,
            "7",
            "null",
        ] {
            assert_eq!(member("systemuser_id", ids), Err(RejectionKind::InvalidSystemUser), "{ids}");
        }
        assert!(
            member("systemuser_id", r#""f950ddae-06c3-4b57-b940-702417a90df0""#)
                .unwrap()
                .is_some()
        );
        for org in [
            r#"["iso6523-actorid-upis","0192:310702641",null]"#,
            r#"{"ID":"0192:310702641","ID":"0192:310702641"}"#,
            r#"{"ID":null,"ID":"0192:310702641"}"#,
            r#"{"ID":["0192:310702641"]}"#,
            r#"{"authority":5,"ID":"0192:310702641"}"#,
            r#""0192:310702641""#,
        ] {
            assert_eq!(member("systemuser_org", org), Err(RejectionKind::InvalidSystemUser), "{org}");
        }
        for org in [
            r#"{"ID":"0192:310702641","note":[1,{"x":2}],"note":3}"#,
            r#"{"authority":null,"id":"0192:310702641","ID":null}"#,
            r#"{"\u0049D":"0192:310702641"}"#,
        ] {
            let read = member("systemuser_org", org).unwrap().unwrap();
            assert_eq!(read.owner_org().to_string(), "310702641", "{org}");
        }
        // What serde_json cannot read in these members fails the payload, whatever the type.
        for (name, value) in [("system_id", "1e400"), ("externalRef", r#""\udead""#)] {
            let other = format!(r#"[{{"type":"urn:altinn:consent","{name}":{value}}}]"#);
            assert!(serde_json::from_str::<Box<RawValue>>(&other).is_ok(), "valid JSON: {other}");
            assert_eq!(su(&other), Err(RejectionKind::InvalidClaims), "{other}");
        }
        let renamed_twice = good.replace(r#""system_id":"x""#, r#""system_id":"x","\u0073ystem_id":"y""#);
        assert_eq!(su(&renamed_twice), Err(RejectionKind::InvalidSystemUser));
        // Entries that are not objects, a `type` that is not a string: invalid claims.
        for list in [r#"[1]"#, r#"["x"]"#, r#"[[]]"#, r#"[null]"#, r#""x""#, r#"5"#, r#"true"#] {
            assert_eq!(su(list), Err(RejectionKind::InvalidClaims), "{list}");
        }
        assert_eq!(su(r#"[{"type":5}]"#), Err(RejectionKind::InvalidClaims));
        assert_eq!(su(r#"[{"type":null}]"#), Ok(None));
        // The first problem in the list is the one reported.
        assert_eq!(su(&format!("[{bad_su},1]")), Err(RejectionKind::InvalidSystemUser));
        assert_eq!(su(&format!("[1,{bad_su}]")), Err(RejectionKind::InvalidClaims));
        assert_eq!(su(&format!("[{good},{good},1]")), Err(RejectionKind::InvalidSystemUser));
        assert_eq!(
            su(&format!(r#"[{good},{{"type":"a","type":"b"}}]"#)),
            Err(RejectionKind::InvalidClaims)
        );
        // Malformed JSON anywhere is the payload's problem.
        let raw: Result<Box<RawValue>, _> = serde_json::from_str(&format!("[{good},"));
        assert!(raw.is_err());
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
