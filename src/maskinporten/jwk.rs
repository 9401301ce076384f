//! JWK and JWKS parsing, and key hygiene: which published keys we are willing to verify with.
//!
//! Keys are filtered one by one, so one bad key never spoils the set: RSA only, 2048 to 8192
//! bits, an odd modulus without the ROCA weakness, a sane public exponent, `use` absent or `sig`,
//! `key_ops` (if present) allowing `verify`, `alg` absent or RS256/384/512, no private members,
//! a non-empty `kid` of at most 256 bytes, no member name repeated (at any depth). Two keys under
//! one `kid` are ambiguous: neither is used. A JWKS whose top level repeats a member name (two
//! `keys`) is refused as a whole.
//!
//! A key whose JWK names an `alg` verifies with that algorithm only
//! ([`VerifyingKey::verify`] is the one place this is checked).

use super::algorithm::Algorithm;
use crate::strict_json::{Names, from_slice_unique, value_from_str};
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// One usable signing key.
pub(crate) struct VerifyingKey {
    /// Unique in the process: names this very key (the token cache keeps it, not the key).
    id: u64,
    kid: Box<str>,
    alg: Option<Algorithm>,
    rs256: ParsedPublicKey,
    rs384: ParsedPublicKey,
    rs512: ParsedPublicKey,
}

impl VerifyingKey {
    /// Verifies `signature` over `message` with `alg`. A key whose JWK named an `alg` refuses
    /// any other algorithm.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        let key = match alg {
            Algorithm::RS256 => &self.rs256,
            Algorithm::RS384 => &self.rs384,
            Algorithm::RS512 => &self.rs512,
        };
        key.verify_sig(message, signature).is_ok()
    }

    /// This key's number, unique in the process: two keys parsed from the same JWK have
    /// different numbers.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The `kid` the key is published under.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Usable keys by `kid`.
pub(crate) type KeyMap = HashMap<Box<str>, Arc<VerifyingKey>>;

/// The JWKS's top level (distinct member names); each key is read on its own.
#[derive(serde::Deserialize)]
struct Jwks<'a> {
    #[serde(borrow)]
    keys: Vec<&'a RawValue>,
}

/// JWK members that only a private key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// Parses a JWKS body into usable keys, skipping (and counting) unusable ones. Fails only when
/// the body is not a JSON object with a `keys` array, or its top level repeats a member name
/// (two `keys` arrays: which is the set?). A key in which any object repeats a member name is
/// unusable (it can be read two ways) and skipped like any other.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<(KeyMap, usize), serde_json::Error> {
    let jwks: Jwks<'_> = from_slice_unique(body)?;
    let mut keys = KeyMap::new();
    let mut duplicated: Vec<Box<str>> = Vec::new();
    let mut skipped = 0;
    for raw in jwks.keys {
        let parsed = value_from_str(raw.get(), Names::Exact)
            .map_err(|_| "a member name is repeated")
            .and_then(|jwk| parse_jwk(&jwk));
        match parsed {
            Ok(k) => {
                if keys.contains_key(&k.kid) || duplicated.contains(&k.kid) {
                    // Two keys under one kid are ambiguous: use neither.
                    keys.remove(&k.kid);
                    duplicated.push(k.kid.clone());
                    skipped += 2;
                } else {
                    keys.insert(k.kid.clone(), Arc::new(k));
                }
            }
            Err(reason) => {
                skipped += 1;
                tracing::debug!(reason, "skipping JWK");
            }
        }
    }
    Ok((keys, skipped))
}

/// Turns one JWK into a usable RSA verification key, or says why not.
pub(crate) fn parse_jwk(jwk: &serde_json::Value) -> Result<VerifyingKey, &'static str> {
    let obj = jwk.as_object().ok_or("not an object")?;
    let s = |name: &str| obj.get(name).and_then(|v| v.as_str());
    if s("kty") != Some("RSA") {
        return Err("kty is not RSA");
    }
    match obj.get("use") {
        None => {}
        Some(v) if v.as_str() == Some("sig") => {}
        Some(_) => return Err("use is not sig"),
    }
    if let Some(ops) = obj.get("key_ops") {
        let ok = ops.as_array().is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !ok {
            return Err("key_ops does not allow verify");
        }
    }
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err("private key material published");
    }
    let alg = match obj.get("alg") {
        None => None,
        Some(v) => Some(v.as_str().and_then(Algorithm::from_name).ok_or("alg is not RS256/RS384/RS512")?),
    };
    let kid = s("kid").filter(|k| !k.is_empty() && k.len() <= 256).ok_or("no usable kid")?;
    let n = URL_SAFE_NO_PAD.decode(s("n").ok_or("no n")?).map_err(|_| "n is not base64url")?;
    let e = URL_SAFE_NO_PAD.decode(s("e").ok_or("no e")?).map_err(|_| "e is not base64url")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(2048..=8192).contains(&bits) {
        return Err("modulus is not 2048 to 8192 bits");
    }
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Err("modulus is even");
    }
    // e must be odd and at least 3; aws-lc limits it to 33 bits.
    if e.is_empty() || e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || (e.len() == 1 && e[0] < 3) {
        return Err("bad public exponent");
    }
    if is_roca_weak(n) {
        return Err("modulus has the ROCA weakness");
    }
    let comps = RsaPublicKeyComponents { n, e };
    let parse = |p| comps.to_parsed_public_key(p).map_err(|_| "RSA key rejected");
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    Ok(VerifyingKey {
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        kid: kid.into(),
        alg,
        rs256: parse(&signature::RSA_PKCS1_2048_8192_SHA256)?,
        rs384: parse(&signature::RSA_PKCS1_2048_8192_SHA384)?,
        rs512: parse(&signature::RSA_PKCS1_2048_8192_SHA512)?,
    })
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

/// The ROCA fingerprint (CVE-2017-15361): moduli made by the vulnerable Infineon library are,
/// modulo each of these small primes, in the subgroup generated by 65537.
fn is_roca_weak(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131,
        137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let r = n.iter().fold(0u64, |acc, b| (acc * 256 + u64::from(*b)) % u64::from(p));
        // Walk the subgroup generated by 65537 mod p.
        let g = 65537 % u64::from(p);
        let mut x = 1u64;
        for _ in 0..p {
            if x == r {
                return true;
            }
            x = x * g % u64::from(p);
            if x == 1 {
                break;
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn garbage_keys_are_skipped_not_fatal() {
        let body = br#"{"keys":[{"kty":"EC"},{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB"},"str",null]}"#;
        let (keys, skipped) = parse_jwks(body).unwrap();
        assert!(keys.is_empty());
        assert_eq!(skipped, 4);
        assert!(parse_jwks(b"not json").is_err());
        assert!(parse_jwks(br#"{"keys":{}}"#).is_err());
    }

    /// The Wycheproof `rs256` group: its public JWK and one valid RS256 JWS made with it.
    fn rs256_vector() -> (Value, String) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/vectors/wycheproof/json_web_signature_test.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let group = doc["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["comment"] == "rs256")
            .unwrap();
        let jws = group["tests"].as_array().unwrap().iter().find(|t| t["result"] == "valid").unwrap()["jws"]
            .as_str()
            .unwrap()
            .to_owned();
        (group["public"].clone(), jws)
    }

    #[test]
    fn a_key_with_its_own_alg_verifies_with_that_alg_only() {
        let (mut jwk, jws) = rs256_vector();
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        jwk["kid"] = "k".into();
        let verify = |jwk: &Value| parse_jwk(jwk).unwrap().verify(Algorithm::RS256, input.as_bytes(), &sig);
        jwk["alg"] = "RS256".into();
        assert!(verify(&jwk), "a good RS256 signature by an RS256 key");
        jwk.as_object_mut().unwrap().remove("alg");
        assert!(verify(&jwk), "a key without alg verifies any allowed alg");
        for other in ["RS384", "RS512"] {
            jwk["alg"] = other.into();
            assert!(!verify(&jwk), "a good RS256 signature by a key bound to {other}");
        }
    }

    #[test]
    fn a_key_with_a_repeated_member_is_skipped_the_rest_load() {
        let (mut jwk, _) = rs256_vector();
        jwk["kid"] = "good".into();
        let good = jwk.to_string();
        let mut other = jwk.clone();
        other["kid"] = "twice".into();
        let other = other.to_string();
        // The unambiguous twin: both keys load.
        let (keys, skipped) = parse_jwks(format!(r#"{{"keys":[{good},{other}]}}"#).as_bytes()).unwrap();
        assert!(keys.contains_key("good") && keys.contains_key("twice"));
        assert_eq!(skipped, 0);
        // The same key with a member repeated (same value, another value, a nested repeat):
        // skipped, the other key still loads.
        for (from, to) in [
            (r#""kid":"twice""#, r#""kid":"twice","kid":"twice""#),
            (r#""kid":"twice""#, r#""kid":"twice","kid":"good""#),
            (r#""kty":"RSA""#, r#""kty":"RSA","kty":"EC""#),
            (r#""alg":"RS256""#, r#""alg":"RS256","alg":"RS512""#),
            (r#""kid":"twice""#, r#""kid":"twice","x":{"a":1,"a":2}"#),
        ] {
            let bad = other.replacen(from, to, 1);
            assert_ne!(bad, other, "{from}");
            let (keys, skipped) = parse_jwks(format!(r#"{{"keys":[{good},{bad}]}}"#).as_bytes()).unwrap();
            assert!(keys.contains_key("good"), "{to}");
            assert!(!keys.contains_key("twice"), "{to}");
            assert_eq!(skipped, 1, "{to}");
        }
    }

    #[test]
    fn a_jwks_with_a_repeated_top_level_member_is_refused() {
        let (mut jwk, _) = rs256_vector();
        jwk["kid"] = "k".into();
        let k = jwk.to_string();
        assert_eq!(parse_jwks(format!(r#"{{"keys":[{k}],"other":1}}"#).as_bytes()).unwrap().0.len(), 1);
        for bad in [
            format!(r#"{{"keys":[{k}],"keys":[]}}"#),
            format!(r#"{{"keys":[],"keys":[{k}]}}"#),
            format!(r#"{{"keys":[{k}],"other":1,"other":2}}"#),
        ] {
            assert!(parse_jwks(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_kids_are_both_dropped() {
        let (mut jwk, _) = rs256_vector();
        jwk["kid"] = "same".into();
        let mut other = jwk.clone();
        other["kid"] = "other".into();
        let body = serde_json::json!({ "keys": [jwk.clone(), other, jwk] }).to_string();
        let (keys, skipped) = parse_jwks(body.as_bytes()).unwrap();
        assert!(!keys.contains_key("same"));
        assert!(keys.contains_key("other"));
        assert_eq!(skipped, 2);
    }
}
