//! [`TestKey`]: an RSA key pair generated at runtime, with JWK export and JWS signing.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, RsaEncoding, RsaParameters, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::fmt;

/// An RSA key pair with a key id (`kid`), for signing test tokens.
///
/// Keys are generated at runtime (nothing secret is checked in), so generating one costs tens to
/// hundreds of milliseconds. Tests should take their keys from the per-process pool,
/// [`TestKey::for_role`] (one key per [`KeyRole`](super::KeyRole), generated once), and change
/// the `kid` with [`with_kid`](Self::with_kid); both are cheap. Cloning is cheap and shares the
/// key material.
///
/// `Debug` shows the `kid` and the size, never key material.
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    bits: usize,
    pair: KeyPair,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A new RSA-2048 key pair with key id `kid`. Slow: prefer [`for_role`](Self::for_role) in
    /// tests.
    ///
    /// # Panics
    ///
    /// If the system cannot generate a key (aws-lc failure), which does not happen in practice.
    pub fn generate(kid: impl Into<String>) -> TestKey {
        TestKey::generate_with_bits(kid, 2048)
    }

    /// A new RSA key pair of `bits` bits: 2048, 3072, 4096 or 8192.
    ///
    /// aws-lc cannot generate (or sign with) keys below 2048 bits, so a "weak 1024-bit key" cannot
    /// be made here; publish a hand-written 1024-bit JWK with
    /// [`FakeMaskinporten::set_extra_jwks`](super::FakeMaskinporten::set_extra_jwks) instead.
    ///
    /// # Panics
    ///
    /// If `bits` is not one of the sizes above, or key generation fails.
    pub fn generate_with_bits(kid: impl Into<String>, bits: usize) -> TestKey {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            other => panic!("TestKey: unsupported RSA key size {other} (use 2048, 3072, 4096 or 8192)"),
        };
        let pair = KeyPair::generate(size).expect("aws-lc could not generate an RSA key");
        TestKey {
            kid: kid.into(),
            bits,
            pair,
        }
    }

    /// A new key with a random `kid` (a UUID). Slow: prefer
    /// `TestKey::for_role(role).with_kid(…)` in tests.
    pub fn generate_random_kid() -> TestKey {
        TestKey::generate(uuid::Uuid::new_v4().to_string())
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The same key pair under another key id.
    pub fn with_kid(&self, kid: impl Into<String>) -> TestKey {
        TestKey {
            kid: kid.into(),
            ..self.clone()
        }
    }

    /// The public modulus `n` and exponent `e`, big-endian without leading zeros.
    pub fn public_components(&self) -> (Vec<u8>, Vec<u8>) {
        let public = self.pair.public_key();
        (
            public.modulus().big_endian_without_leading_zero().to_vec(),
            public.exponent().big_endian_without_leading_zero().to_vec(),
        )
    }

    /// The public key as a JWK, the way Maskinporten publishes its keys:
    /// `{"kty":"RSA","use":"sig","alg":"RS256","kid":…,"n":…,"e":…}` (`n` and `e` base64url
    /// without padding).
    pub fn public_jwk(&self) -> Value {
        let (n, e) = self.public_components();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
        })
    }

    /// The private key as unencrypted PKCS#8 DER.
    pub fn private_key_pkcs8_der(&self) -> Vec<u8> {
        AsDer::<Pkcs8V1Der<'static>>::as_der(&self.pair)
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default()
    }

    /// The private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form the
    /// crate's PDP credentials load.
    pub fn private_key_pkcs8_pem(&self) -> String {
        pem("PRIVATE KEY", &self.private_key_pkcs8_der())
    }

    /// The public key as X.509 SubjectPublicKeyInfo DER.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        AsDer::<PublicKeyX509Der<'static>>::as_der(self.pair.public_key())
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default()
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// These bytes are also the HMAC secret used for `HS*` in [`sign_raw`](Self::sign_raw) (the
    /// classic "RS256 → HS256" algorithm-confusion attack).
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.public_key_spki_der())
    }

    /// Signs `signing_input` with algorithm `alg`:
    ///
    /// | `alg` | signature |
    /// |---|---|
    /// | `RS256`, `RS384`, `RS512` | RSASSA-PKCS1-v1_5 with this key |
    /// | `PS256`, `PS384`, `PS512` | RSASSA-PSS with this key |
    /// | `HS256`, `HS384`, `HS512` | HMAC keyed with [`public_key_pem`](Self::public_key_pem) (algorithm confusion) |
    /// | anything else, including `none` | empty |
    ///
    /// Never panics: an unknown algorithm gives an empty signature, so tests can build
    /// `alg: none` and other attack tokens.
    pub fn sign_raw(&self, alg: &str, signing_input: &[u8]) -> Vec<u8> {
        let rsa: &'static dyn RsaEncoding = match alg {
            "RS256" => &signature::RSA_PKCS1_SHA256,
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            "PS256" => &signature::RSA_PSS_SHA256,
            "PS384" => &signature::RSA_PSS_SHA384,
            "PS512" => &signature::RSA_PSS_SHA512,
            "HS256" | "HS384" | "HS512" => {
                let algorithm = match alg {
                    "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
                    "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
                    _ => aws_lc_rs::hmac::HMAC_SHA512,
                };
                let key = aws_lc_rs::hmac::Key::new(algorithm, self.public_key_pem().as_bytes());
                return aws_lc_rs::hmac::sign(&key, signing_input).as_ref().to_vec();
            }
            _ => return Vec::new(),
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; self.pair.public_modulus_len()];
        match self.pair.sign(rsa, &rng, signing_input, &mut sig) {
            Ok(()) => sig,
            Err(_) => Vec::new(),
        }
    }

    /// A compact JWS: base64url(`header`) `.` base64url(`payload_json`) `.` base64url(signature),
    /// signed with [`sign_raw`](Self::sign_raw)`(alg, …)`.
    ///
    /// `header` is serialised as given: its `alg` and `kid` are not touched, so they may
    /// disagree with `alg` and this key on purpose. `payload_json` is used byte for byte.
    pub fn sign_jws(&self, alg: &str, header: &Value, payload_json: &str) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload_json)
        );
        let sig = self.sign_raw(alg, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Whether `sig` is a valid `RS256`/`RS384`/`RS512` signature of `signing_input` by this key.
    /// Other algorithms give `false`.
    pub fn verify_raw(&self, alg: &str, signing_input: &[u8], sig: &[u8]) -> bool {
        let (n, e) = self.public_components();
        verify_rsa(&n, &e, alg, signing_input, sig)
    }
}

impl From<&TestKey> for std::sync::Arc<TestKey> {
    fn from(key: &TestKey) -> Self {
        std::sync::Arc::new(key.clone())
    }
}

/// Verifies an `RS256`/`RS384`/`RS512` signature with a public key given as components.
pub(crate) fn verify_rsa(n: &[u8], e: &[u8], alg: &str, signing_input: &[u8], sig: &[u8]) -> bool {
    let params: &RsaParameters = match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return false,
    };
    RsaPublicKeyComponents { n, e }.verify(params, signing_input, sig).is_ok()
}

/// Verifies with an RSA public JWK (`kty` `RSA`, `n`, `e`); anything else gives `false`.
pub(crate) fn verify_with_jwk(jwk: &Value, alg: &str, signing_input: &[u8], sig: &[u8]) -> bool {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return false;
    }
    let component = |name: &str| jwk.get(name).and_then(Value::as_str).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    match (component("n"), component("e")) {
        (Some(n), Some(e)) => verify_rsa(&n, &e, alg, signing_input, sig),
        _ => false,
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwk_sign_verify_and_debug() {
        let key = TestKey::for_role(crate::test_util::KeyRole::Vendor).with_kid("k1");
        let jwk = key.public_jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["e"], "AQAB");
        let jws = key.sign_jws("RS256", &json!({"alg": "RS256", "kid": "k1"}), r#"{"a":1}"#);
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert!(key.verify_raw("RS256", input.as_bytes(), &sig));
        assert!(verify_with_jwk(&jwk, "RS256", input.as_bytes(), &sig));
        assert!(!key.verify_raw("RS384", input.as_bytes(), &sig));
        assert!(key.sign_raw("none", b"x").is_empty());
        assert_eq!(key.sign_raw("HS256", b"x").len(), 32);
        assert!(key.private_key_pkcs8_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key_pkcs8_pem().as_bytes()).is_ok());
        let dbg = format!("{key:?}");
        assert!(dbg.contains("k1") && !dbg.contains(jwk["n"].as_str().unwrap()));
    }
}
