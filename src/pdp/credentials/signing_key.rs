//! The provider's RSA private key, and the one function that signs a JWT with it.
//!
//! The key arrives as PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`; the
//! armour is decoded by `rustls-pki-types`) or as a private JWK (its members are handed to
//! aws-lc as components). Either way aws-lc parses and checks the key: RSA, 2048 to 8192 bits,
//! consistent components. [`SigningKey::sign`] signs RS256 (RSASSA-PKCS1-v1_5 with SHA-256) for
//! the built-in [`RsaSigner`](super::RsaSigner).

use std::fmt;

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::{PemObject, SectionKind};
use serde_json::Value;

use crate::ConfigError;

/// An RSA private key that signs RS256. `Debug` never shows key material.
pub(super) struct SigningKey {
    pair: KeyPair,
}

fn pem_error(reason: &'static str) -> ConfigError {
    ConfigError::new("private_key_pem", reason)
}

fn jwk_error(reason: &'static str) -> ConfigError {
    ConfigError::new("private_key_jwk", reason)
}

impl SigningKey {
    /// An unencrypted RSA private key in PEM: PKCS#8 or PKCS#1. The first PEM section must be
    /// the key.
    pub(super) fn from_pem(pem: &[u8]) -> Result<SigningKey, ConfigError> {
        let pair = match <(SectionKind, Vec<u8>)>::from_pem_slice(pem) {
            Ok((SectionKind::PrivateKey, der)) => KeyPair::from_pkcs8(&der),
            Ok((SectionKind::RsaPrivateKey, der)) => KeyPair::from_der(&der),
            _ => return Err(pem_error("not an unencrypted RSA private key in PEM (PKCS#8 or PKCS#1)")),
        };
        pair.map(|pair| SigningKey { pair })
            .map_err(|_| pem_error("not a usable RSA private key (RSA, 2048 to 8192 bits)"))
    }

    /// A private RSA JWK (`kty` `RSA` with `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`); its `alg`,
    /// if present, must be `RS256`.
    pub(super) fn from_jwk(jwk: &Value) -> Result<SigningKey, ConfigError> {
        let obj = jwk.as_object().ok_or_else(|| jwk_error("a JWK is a JSON object"))?;
        if obj.get("kty").and_then(Value::as_str) != Some("RSA") {
            return Err(jwk_error("the JWK is not an RSA key (kty)"));
        }
        if obj.get("alg").is_some_and(|alg| alg.as_str() != Some("RS256")) {
            return Err(jwk_error("the JWK's alg is not RS256"));
        }
        // A big-endian magnitude without leading zeros (aws-lc requires that of `n` and `e`).
        let member = |name: &str| -> Result<Vec<u8>, ConfigError> {
            let b64 = obj
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| jwk_error("the JWK lacks a private RSA member (n, e, d, p, q, dp, dq, qi)"))?;
            let bytes = URL_SAFE_NO_PAD
                .decode(b64.trim_end_matches('='))
                .map_err(|_| jwk_error("a JWK member is not base64url"))?;
            match bytes.iter().position(|b| *b != 0) {
                Some(start) => Ok(bytes[start..].to_vec()),
                None => Err(jwk_error("a JWK member is zero")),
            }
        };
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n: member("n")?,
                e: member("e")?,
            },
            d: member("d")?,
            p: member("p")?,
            q: member("q")?,
            dP: member("dp")?,
            dQ: member("dq")?,
            qInv: member("qi")?,
        };
        KeyPair::from_components(&components)
            .map(|pair| SigningKey { pair })
            .map_err(|_| jwk_error("the JWK is not a consistent RSA private key (RSA, 2048 to 8192 bits)"))
    }

    /// The RS256 signature (RSASSA-PKCS1-v1_5, SHA-256) over `message`.
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Unspecified> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)?;
        Ok(signature)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("bits", &(self.pair.public_modulus_len() * 8))
            .finish_non_exhaustive()
    }
}
