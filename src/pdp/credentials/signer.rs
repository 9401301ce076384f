//! Who signs the provider's grant assertions: [`AssertionSigner`] (the built-in [`RsaSigner`],
//! or a key in an HSM or a cloud key vault), held by a [`SignerHandle`] that can replace it at
//! runtime (key rotation without a restart).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;

use super::signing_key::SigningKey;
use crate::ConfigError;

/// How Maskinporten finds the public key of an assertion.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyReference {
    /// A key registered for the client, by its key id: the JWS header's `kid`.
    KeyId(String),
    /// A business certificate (virksomhetssertifikat) chain, leaf first, each base64 DER: the
    /// JWS header's `x5c`.
    CertificateChain(Vec<String>),
}

impl fmt::Debug for KeyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyReference::KeyId(kid) => write!(f, "KeyId({kid:?})"),
            KeyReference::CertificateChain(chain) => write!(f, "CertificateChain({} certificates)", chain.len()),
        }
    }
}

/// Why a signer could not sign. Its text is logged at warn level: keep secrets out of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the assertion signer failed: {0}")]
pub struct SignerError(String);

impl SignerError {
    /// An error with this reason (no secrets).
    pub fn new(reason: impl Into<String>) -> Self {
        SignerError(reason.into())
    }
}

/// The future a signer returns.
pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, SignerError>> + Send + 'a>>;

/// Signs the provider's Maskinporten grant assertions with RS256 (RSASSA-PKCS1-v1_5, SHA-256).
///
/// Implement it for a key that never leaves an HSM or a cloud key vault: the crate builds the
/// assertion (header with [`key_reference`](Self::key_reference), claims), asks
/// [`sign`](Self::sign) for the signature over `base64url(header) "." base64url(claims)`, and
/// sends it. `sign` must sign with the key that `key_reference` names; to switch keys, give a new
/// signer to [`SignerHandle::replace`] rather than changing one in place, so that a reference and
/// a signature never come from two keys. The built-in [`RsaSigner`] is one implementation.
///
/// ```
/// use altinn_systemuser::pdp::{AssertionSigner, KeyReference, SignFuture, SignerError};
///
/// struct VaultSigner { kid: String /* and a client of the key vault */ }
///
/// impl AssertionSigner for VaultSigner {
///     fn key_reference(&self) -> KeyReference {
///         KeyReference::KeyId(self.kid.clone())
///     }
///     fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
///         Box::pin(async move {
///             // let signature = vault.sign("RS256", sha256(message)).await?;
///             Err(SignerError::new(format!("no vault here ({} bytes not signed)", message.len())))
///         })
///     }
/// }
/// ```
pub trait AssertionSigner: Send + Sync + 'static {
    /// How Maskinporten finds the public key: the `kid` or `x5c` of the assertion's header.
    fn key_reference(&self) -> KeyReference;

    /// The RS256 signature over `message`.
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a>;
}

/// The built-in signer: an RSA private key (PEM or a private JWK, 2048 to 8192 bits) and its key
/// reference. `Debug` never shows key material.
pub struct RsaSigner {
    key: SigningKey,
    reference: KeyReference,
}

impl RsaSigner {
    /// An unencrypted RSA private key in PEM (PKCS#8 or PKCS#1), registered under `reference`.
    pub fn from_pem(pem: &[u8], reference: KeyReference) -> Result<Self, ConfigError> {
        Ok(RsaSigner {
            key: SigningKey::from_pem(pem)?,
            reference: check_reference(reference)?,
        })
    }

    /// A private RSA JWK (its `alg`, if any, `RS256`), registered under `reference`.
    pub fn from_jwk(jwk: &Value, reference: KeyReference) -> Result<Self, ConfigError> {
        Ok(RsaSigner {
            key: SigningKey::from_jwk(jwk)?,
            reference: check_reference(reference)?,
        })
    }

    pub(super) fn new(key: SigningKey, reference: KeyReference) -> Self {
        RsaSigner { key, reference }
    }
}

/// A key id must be non-empty; a chain non-empty base64 DER.
pub(super) fn check_reference(reference: KeyReference) -> Result<KeyReference, ConfigError> {
    use base64::Engine as _;
    match &reference {
        KeyReference::KeyId(kid) if kid.is_empty() => Err(ConfigError::missing("key_id", "must not be empty")),
        KeyReference::CertificateChain(chain)
            if chain.is_empty()
                || chain.iter().any(|c| {
                    base64::engine::general_purpose::STANDARD
                        .decode(c)
                        .map_or(true, |der| der.is_empty())
                }) =>
        {
            Err(ConfigError::new("certificate_chain", "must be one or more base64 DER certificates"))
        }
        _ => Ok(reference),
    }
}

impl AssertionSigner for RsaSigner {
    fn key_reference(&self) -> KeyReference {
        self.reference.clone()
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        let signed = self.key.sign(message).map_err(|_| SignerError::new("the RSA key could not sign"));
        Box::pin(std::future::ready(signed))
    }
}

impl fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSigner")
            .field("key", &self.key)
            .field("reference", &self.reference)
            .finish()
    }
}

/// The signer of a [`MaskinportenCredentials`](super::MaskinportenCredentials), replaceable at
/// runtime: from [`MaskinportenCredentials::signer`](super::MaskinportenCredentials::signer).
/// Cheap to clone; clones share the signer.
///
/// A replacement takes effect for the next assertion (the next grant); an assertion being signed
/// finishes with the signer it started with, and the tokens already cached stay in use until
/// they are due for renewal. Rotating the key at Maskinporten: register the new public key for
/// the client, [`replace`](Self::replace) (or [`replace_pem`](Self::replace_pem)), check with
/// [`AltinnPdp::check_credentials`](crate::pdp::AltinnPdp::check_credentials), then remove the
/// old key.
#[derive(Clone)]
pub struct SignerHandle {
    current: Arc<ArcSwap<Box<dyn AssertionSigner>>>,
}

impl SignerHandle {
    pub(super) fn new(signer: Box<dyn AssertionSigner>) -> Self {
        SignerHandle {
            current: Arc::new(ArcSwap::from_pointee(signer)),
        }
    }

    /// The signer in use now.
    pub(super) fn current(&self) -> Arc<Box<dyn AssertionSigner>> {
        self.current.load_full()
    }

    /// Signs the next assertions with `signer`. Its key reference must be usable (a non-empty
    /// key id, or a non-empty chain of base64 DER certificates); otherwise the signer in use
    /// stays and the error names `key_id` or `certificate_chain`.
    pub fn replace(&self, signer: impl AssertionSigner) -> Result<(), ConfigError> {
        check_reference(signer.key_reference())?;
        self.current.store(Arc::new(Box::new(signer)));
        Ok(())
    }

    /// Signs the next assertions with this RSA key (PEM), registered under `key_id`. On an
    /// error the signer in use stays.
    pub fn replace_pem(&self, pem: &[u8], key_id: impl Into<String>) -> Result<(), ConfigError> {
        self.replace(RsaSigner::from_pem(pem, KeyReference::KeyId(key_id.into()))?)
    }

    /// The key reference of the signer in use.
    pub fn key_reference(&self) -> KeyReference {
        self.current.load().key_reference()
    }
}

impl fmt::Debug for SignerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerHandle")
            .field("key_reference", &self.key_reference())
            .finish()
    }
}
