//! The verified-token cache: a token that passed every check is not verified again until it
//! expires.
//!
//! - Keyed on a per-process MAC of the whole token, signature included ([`TokenTag`]): the
//!   cache does not keep the token's bytes (a 1.2 KB token would be most of an entry), and a
//!   hit is a token whose 128-bit tag, under a key drawn from the operating system's random
//!   source when the cache is made and never shown to anyone, equals that of a token that
//!   passed every check. Without the keys, a different token has the same tag as a cached one
//!   with a probability of at most 2^-118 per attempt and cached token, for tokens of up to
//!   8 KB (GHASH, then AES: [`TokenMac`]); a fast non-cryptographic hash would not do, as its
//!   collisions can be computed.
//! - An entry is never used at or after the token's `exp` (no leeway is added): the cache
//!   cannot extend a token's life. Expired entries are dropped when met, and swept out at most
//!   once a minute when new tokens come in.
//! - An entry is only used while the key that verified it is still the key published under its
//!   `kid`: a key that disappears from the JWKS takes its tokens with it.
//! - Bounded by a capacity (default 10,000; `quick_cache`, CLOCK-Pro eviction); per-route
//!   checks (scopes) still run on every hit.
//!
//! A lookup is synchronous and allocation-free: one MAC over the token (AES-NI and carry-less
//! multiplication where the CPU has them), then a hash-map read.

use super::jwk::VerifyingKey;
use super::token::MaskinportenToken;
use super::validate::now_unix;
use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds between sweeps of expired entries.
const SWEEP_EVERY_SECS: i64 = 60;

/// The tag of a whole token under the cache's secret key: what the cache is keyed on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenTag([u8; 16]);

impl std::fmt::Debug for TokenTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenTag(..)")
    }
}

/// A keyed MAC of tokens: GHASH of the token under a secret hash key, then AES under a second
/// secret key, both drawn at random for this process (aws-lc-rs).
///
/// The GHASH is AES-128-GCM's tag over the token as associated data with nothing to encrypt
/// and a fixed nonce: `GHASH_H(token, lengths) ⊕ AES_K1(J0)`, where `H = AES_K1(0)` and the
/// fixed nonce makes `AES_K1(J0)` a constant. GHASH under a secret `H` is a universal hash: two
/// different tokens of up to `n` 16-byte blocks get the same value for at most `n + 1` of the
/// 2^128 possible `H`. The result then goes through AES under an independent key `K2`, so the
/// tag is a pseudorandom function of the token: a tag, or any bit of one that timing might
/// reveal, tells nothing about `H` or about the tag of any other token. This is the shape of
/// AES-GCM-SIV's tag (a polynomial hash, then AES) with the hash key fixed instead of derived
/// anew for every message: with a fixed nonce that derivation (a key schedule and a table of
/// powers of the hash key, each time) produced the same keys every time. Tags never leave the
/// process.
struct TokenMac {
    ghash: LessSafeKey,
    finish: EncryptingKey,
}

impl TokenMac {
    /// A MAC under fresh random keys. `None` only if the operating system's random source
    /// fails; the layer then runs without a token cache.
    fn new() -> Option<Self> {
        let mut keys = [0u8; 32];
        aws_lc_rs::rand::fill(&mut keys).ok()?;
        let (k1, k2) = keys.split_at(16);
        let ghash = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, k1).ok()?);
        let finish = EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, k2).ok()?).ok()?;
        keys.fill(0);
        Some(TokenMac { ghash, finish })
    }

    fn tag(&self, token: &[u8]) -> Option<TokenTag> {
        let hashed = self
            .ghash
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(token), &mut [])
            .ok()?;
        let mut block: [u8; 16] = hashed.as_ref().try_into().ok()?;
        self.finish.less_safe_encrypt(&mut block, EncryptionContext::None).ok()?;
        Some(TokenTag(block))
    }
}

#[derive(Clone)]
struct CachedToken {
    token: MaskinportenToken,
    /// The key that verified it, by number ([`VerifyingKey::id`]): a hit costs no reference
    /// count on the key.
    key: u64,
    /// The issuer profile whose key store `key` came from.
    profile: u8,
}

/// A bounded cache of verified tokens. Clones share the cache.
#[derive(Clone)]
pub(crate) struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    mac: TokenMac,
    tokens: quick_cache::sync::Cache<TokenTag, CachedToken>,
    last_sweep: AtomicI64,
}

impl TokenCache {
    /// A cache of `capacity` tokens under a fresh MAC key; `None` if no key can be drawn.
    pub(crate) fn new(capacity: u64) -> Option<Self> {
        Some(TokenCache {
            inner: Arc::new(Inner {
                mac: TokenMac::new()?,
                tokens: quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
                last_sweep: AtomicI64::new(now_unix()),
            }),
        })
    }

    /// The tag of a presented token, to look it up and, once verified, to store it under.
    pub(crate) fn tag(&self, token: &[u8]) -> Option<TokenTag> {
        self.inner.mac.tag(token)
    }

    /// The verified token with this tag, if cached, unexpired and its key still published.
    pub(crate) fn get(&self, tag: &TokenTag, now: i64, published: impl Fn(u8, u64) -> bool) -> Option<MaskinportenToken> {
        let hit = self.inner.tokens.get(tag)?;
        if now >= hit.token.exp_unix() || !published(hit.profile, hit.key) {
            self.inner.tokens.remove(tag);
            return None;
        }
        Some(hit.token)
    }

    /// Stores a token that passed every check, under its tag.
    pub(crate) fn insert(&self, tag: TokenTag, verified: &MaskinportenToken, key: &VerifyingKey, profile: u8) {
        let now = now_unix();
        let last = self.inner.last_sweep.load(Ordering::Relaxed);
        if now - last >= SWEEP_EVERY_SECS
            && self
                .inner
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.inner.tokens.retain(|_, t| now < t.token.exp_unix());
        }
        let cached = CachedToken {
            token: verified.clone(),
            key: key.id(),
            profile,
        };
        self.inner.tokens.insert(tag, cached);
    }

    /// How many tokens are stored (expired ones not yet dropped included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maskinporten::jwk::parse_jwk;
    use crate::maskinporten::token::TokenData;
    use serde_json::Value;

    /// A public RSA key from the Wycheproof JWS vectors (any will do: nothing is verified here).
    fn some_key() -> Arc<VerifyingKey> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/vectors/wycheproof/json_web_signature_test.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let jwk = doc["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g.get("public"))
            .find(|k| k["kty"] == "RSA")
            .unwrap();
        Arc::new(parse_jwk(jwk).unwrap())
    }

    fn token(expires_at: i64) -> MaskinportenToken {
        MaskinportenToken::from_data(TokenData {
            issuer: "https://test.maskinporten.no/".into(),
            issuer_kind: crate::maskinporten::TokenIssuer::Maskinporten,
            scope: "",
            client_id: None,
            client_amr: None,
            consumer: None,
            supplier: None,
            jti: None,
            issued_at: expires_at - 120,
            expires_at,
            audience: &[],
            system_user: None,
        })
    }

    #[test]
    fn bounded_by_its_capacity() {
        let cache = TokenCache::new(100).unwrap();
        let key = some_key();
        let t = token(now_unix() + 120);
        for i in 0..2_000 {
            cache.insert(
                cache.tag(format!("header.payload.signature-{i:064}").as_bytes()).unwrap(),
                &t,
                &key,
                0,
            );
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(cache.len() >= 50, "{}", cache.len());
    }

    #[test]
    fn expired_entries_are_swept_when_new_tokens_come_in() {
        let cache = TokenCache::new(100).unwrap();
        let key = some_key();
        for i in 0..10 {
            cache.insert(
                cache.tag(format!("expired-{i}").as_bytes()).unwrap(),
                &token(now_unix() - 1),
                &key,
                0,
            );
        }
        assert_eq!(cache.len(), 10);
        // Pretend the last sweep was long ago: the next insert sweeps.
        cache.inner.last_sweep.store(now_unix() - SWEEP_EVERY_SECS, Ordering::Relaxed);
        cache.insert(cache.tag(b"fresh").unwrap(), &token(now_unix() + 120), &key, 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_tag_covers_every_byte_of_the_token() {
        let cache = TokenCache::new(10).unwrap();
        let token = format!("{}.{}.{}", "h".repeat(40), "p".repeat(900), "s".repeat(342)).into_bytes();
        let tag = cache.tag(&token).unwrap();
        assert_eq!(cache.tag(&token), Some(tag), "the same token, the same tag");
        for i in 0..token.len() {
            let mut other = token.clone();
            other[i] ^= 1;
            assert_ne!(cache.tag(&other), Some(tag), "byte {i}");
        }
        let mut longer = token.clone();
        longer.push(b'=');
        assert_ne!(cache.tag(&longer), Some(tag));
        assert_ne!(cache.tag(&token[..token.len() - 1]), Some(tag));
        // Another cache (another process) has another key: its tags say nothing about these.
        assert_ne!(TokenCache::new(10).unwrap().tag(&token), Some(tag));
    }

    #[test]
    fn the_tag_is_not_linear_in_the_token() {
        // GHASH alone is linear: for four tokens of one length whose bytes XOR to zero, the
        // four hashes XOR to zero too (the constant terms cancel in pairs), whatever the key.
        // The AES step after it must break that, or bits of tags would tell about the hash key.
        let mac = TokenMac::new().unwrap();
        let block = |a: u8, b: u8| {
            let mut t = [b'x'; 48];
            t[0] ^= a;
            t[20] ^= b;
            t
        };
        let raw = |t: &[u8]| -> [u8; 16] {
            let tag = mac
                .ghash
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(t), &mut [])
                .unwrap();
            tag.as_ref().try_into().unwrap()
        };
        let xor = |tags: [[u8; 16]; 4]| -> [u8; 16] { std::array::from_fn(|i| tags.iter().fold(0, |x, t| x ^ t[i])) };
        let four = [block(0, 0), block(1, 0), block(0, 1), block(1, 1)];
        assert_eq!(xor(four.map(|t| raw(&t))), [0; 16], "GHASH is linear, so the test can tell");
        assert_ne!(xor(four.map(|t| mac.tag(&t).unwrap().0)), [0; 16]);
    }

    #[test]
    fn a_hit_is_only_the_tag_of_a_stored_token() {
        let cache = TokenCache::new(10).unwrap();
        let key = some_key();
        let stored = b"header.payload.signature";
        cache.insert(cache.tag(stored).unwrap(), &token(now_unix() + 120), &key, 0);
        let now = now_unix();
        let always = |_: u8, _: u64| true;
        assert!(cache.get(&cache.tag(stored).unwrap(), now, always).is_some());
        assert!(cache.get(&cache.tag(b"header.payload.signaturf").unwrap(), now, always).is_none());
        // A key no longer published drops the entry.
        assert!(cache.get(&cache.tag(stored).unwrap(), now, |_, _| false).is_none());
        assert!(cache.get(&cache.tag(stored).unwrap(), now, always).is_none(), "dropped");
    }
}
