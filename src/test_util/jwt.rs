//! [`TokenBuilder`] and the small JWT helpers the fakes share.

use super::keys::TestKey;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Builds and signs a JWT, correct by default and easy to break on purpose.
///
/// Made by [`FakeMaskinporten::token`](super::FakeMaskinporten::token),
/// [`FakeMaskinporten::system_user_token`](super::FakeMaskinporten::system_user_token),
/// [`FakeMaskinporten::client_assertion`](super::FakeMaskinporten::client_assertion) or
/// [`TokenBuilder::new`]. The header and the claims are plain JSON maps, so any claim or header
/// can be set, changed or removed; [`raw_payload`](Self::raw_payload) signs exact bytes (for
/// duplicate-member attacks). Times are whole seconds since the Unix epoch.
#[derive(Debug, Clone)]
#[must_use = "a TokenBuilder makes nothing until `.sign()`"]
pub struct TokenBuilder {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: Arc<TestKey>,
    alg: String,
    raw_payload: Option<String>,
}

impl TokenBuilder {
    /// A builder with header `{"alg":"RS256","kid":<key's kid>}`, the given claims, signing with
    /// `key` and RS256.
    pub fn new(key: Arc<TestKey>, claims: Map<String, Value>) -> TokenBuilder {
        let mut header = Map::new();
        header.insert("alg".into(), json!("RS256"));
        header.insert("kid".into(), json!(key.kid()));
        TokenBuilder {
            header,
            claims,
            key,
            alg: "RS256".into(),
            raw_payload: None,
        }
    }

    /// Sets `scope` (one space-separated string).
    pub fn scope(self, s: &str) -> Self {
        self.claim("scope", json!(s))
    }

    /// Sets a claim (any JSON value, also a wrongly typed one).
    pub fn claim(mut self, name: &str, v: Value) -> Self {
        self.claims.insert(name.into(), v);
        self
    }

    /// Removes a claim.
    pub fn remove_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets a header member. Setting `alg` here changes only the header, not how the token is
    /// signed (use [`alg`](Self::alg) for both).
    pub fn header(mut self, name: &str, v: Value) -> Self {
        self.header.insert(name.into(), v);
        self
    }

    /// Removes a header member.
    pub fn remove_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sets the header `alg` and signs with it (see [`TestKey::sign_raw`] for what each
    /// algorithm means, including `none` and `HS256`).
    ///
    /// [`FakeMaskinporten`](super::FakeMaskinporten) publishes its keys with `"alg":"RS256"`, as
    /// Maskinporten does, so a verifier that binds keys to their `alg` refuses `RS384`/`RS512`
    /// tokens; see [`FakeMaskinporten::set_jwks_key_alg`](super::FakeMaskinporten::set_jwks_key_alg).
    pub fn alg(mut self, alg: &str) -> Self {
        self.alg = alg.into();
        self.header("alg", json!(alg))
    }

    /// Sets the header `kid` only; the signature is still made by the current signing key.
    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", json!(kid))
    }

    /// Signs with `key` instead, and sets the header `kid` to its kid. Accepts `Arc<TestKey>`,
    /// `TestKey` and `&TestKey` (for an `&Arc<TestKey>`, pass `arc.clone()` or `&*arc`).
    pub fn signed_by(mut self, key: impl Into<Arc<TestKey>>) -> Self {
        self.key = key.into();
        self.kid_from_key()
    }

    fn kid_from_key(self) -> Self {
        let kid = self.key.kid().to_owned();
        self.kid(&kid)
    }

    /// Sets `exp` to `iat + d` (`iat` is set to now if missing).
    pub fn lifetime(mut self, d: Duration) -> Self {
        let iat = match self.claims.get("iat").and_then(Value::as_i64) {
            Some(iat) => iat,
            None => {
                let now = unix(SystemTime::now());
                self.claims.insert("iat".into(), json!(now));
                now
            }
        };
        let exp = iat.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.claim("exp", json!(exp))
    }

    /// Sets `iat` to `t` and moves `exp` along, keeping the lifetime (`exp - iat`).
    pub fn issued_at(self, t: SystemTime) -> Self {
        let new_iat = unix(t);
        let old_iat = self.claims.get("iat").and_then(Value::as_i64);
        let exp = self.claims.get("exp").and_then(Value::as_i64);
        let this = self.claim("iat", json!(new_iat));
        match (old_iat, exp) {
            (Some(old_iat), Some(exp)) => this.claim("exp", json!(new_iat.saturating_add(exp.saturating_sub(old_iat)))),
            _ => this,
        }
    }

    /// Sets `exp` to `t`.
    pub fn expires_at(self, t: SystemTime) -> Self {
        self.claim("exp", json!(unix(t)))
    }

    /// Sets `nbf` to `t`.
    pub fn not_before(self, t: SystemTime) -> Self {
        self.claim("nbf", json!(unix(t)))
    }

    /// Signs exactly these payload bytes instead of the claims (for tokens JSON maps cannot
    /// express, such as duplicate members: `{"iss":"good","iss":"evil"}`).
    pub fn raw_payload(mut self, json: &str) -> Self {
        self.raw_payload = Some(json.into());
        self
    }

    /// The header as it stands.
    pub fn header_map(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims as they stand.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The compact JWS.
    pub fn sign(self) -> String {
        let payload = match self.raw_payload {
            Some(raw) => raw,
            None => Value::Object(self.claims).to_string(),
        };
        self.key.sign_jws(&self.alg, &Value::Object(self.header), &payload)
    }
}

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map(|s| -s).unwrap_or(i64::MIN),
    }
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    unix(SystemTime::now())
}

/// A random token id shaped like Maskinporten's (43 base64url characters).
pub(crate) fn random_jti() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS split and decoded, signature not checked.
pub(crate) struct Decoded<'a> {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
    pub(crate) signing_input: &'a str,
    pub(crate) signature: Vec<u8>,
}

/// Splits and decodes a compact JWS. `None` unless it has three base64url parts and header and
/// payload are JSON objects.
pub(crate) fn decode(token: &str) -> Option<Decoded<'_>> {
    let (signing_input, sig) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    let header = json_object(&URL_SAFE_NO_PAD.decode(header).ok()?)?;
    let claims = json_object(&URL_SAFE_NO_PAD.decode(payload).ok()?)?;
    let signature = URL_SAFE_NO_PAD.decode(sig).ok()?;
    Some(Decoded {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// Decodes the header and the payload of a JWT without checking anything, as
/// `(header, claims)`; `None` if it is not three base64url parts with JSON objects in the first
/// two. Handy for inspecting tokens the crate sends to the fakes.
pub fn decode_unverified(token: &str) -> Option<(Value, Value)> {
    decode(token).map(|d| (Value::Object(d.header), Value::Object(d.claims)))
}

fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_times_and_overrides() {
        let key = Arc::new(TestKey::for_role(crate::test_util::KeyRole::Vendor).with_kid("k"));
        let t = TokenBuilder::new(key.clone(), Map::new()).lifetime(Duration::from_secs(60));
        let iat = t.claims()["iat"].as_i64().unwrap();
        assert_eq!(t.claims()["exp"].as_i64().unwrap(), iat + 60);
        let t = t.issued_at(UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(t.claims()["iat"], 1000);
        assert_eq!(t.claims()["exp"], 1060);

        let other = TestKey::for_role(crate::test_util::KeyRole::Rogue).with_kid("other");
        let token = t.clone().signed_by(&other).alg("RS384").sign();
        let d = decode(&token).unwrap();
        assert_eq!(d.header["kid"], "other");
        assert_eq!(d.header["alg"], "RS384");
        assert!(other.verify_raw("RS384", d.signing_input.as_bytes(), &d.signature));

        let token = t.raw_payload(r#"{"iss":"a","iss":"b"}"#).sign();
        let payload = token.split('.').nth(1).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(payload).unwrap(), br#"{"iss":"a","iss":"b"}"#);
        assert!(decode_unverified("a.b").is_none());
        assert!(decode_unverified("!!.??.##").is_none());
    }
}
