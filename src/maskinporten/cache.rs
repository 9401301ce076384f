//! The verified-token cache: a token that passed every check is not verified again until it
//! expires.
//!
//! - Keyed on the whole token, signature included, compared byte for byte: a hit can only ever
//!   be the same bytes that were verified.
//! - An entry is never used at or after the token's `exp` (no leeway is added): the cache
//!   cannot extend a token's life. Expired entries are dropped when met, and swept out at most
//!   once a minute when new tokens come in.
//! - An entry is only used while the key that verified it is still the key published under its
//!   `kid`: a key that disappears from the JWKS takes its tokens with it.
//! - Bounded by a capacity (default 10,000; `quick_cache`, CLOCK-Pro eviction); per-route
//!   checks (scopes) still run on every hit.
//!
//! A lookup is synchronous and allocation-free: the hash covers the token's length and its
//! last 64 bytes (signature bytes, which differ between any two tokens Maskinporten issues),
//! then the whole token is compared.

use super::jwk::VerifyingKey;
use super::token::MaskinportenToken;
use super::validate::now_unix;
use quick_cache::Equivalent;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds between sweeps of expired entries.
const SWEEP_EVERY_SECS: i64 = 60;

/// How many bytes from the end of a token go into its hash.
const HASHED_TAIL: usize = 64;

fn hash_token<H: Hasher>(b: &[u8], state: &mut H) {
    state.write_usize(b.len());
    state.write(&b[b.len().saturating_sub(HASHED_TAIL)..]);
}

/// A cached token's bytes.
#[derive(PartialEq, Eq)]
struct TokenKey(Box<[u8]>);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(&self.0, state);
    }
}

/// A presented token, looked up without copying it.
struct Presented<'a>(&'a [u8]);

impl Hash for Presented<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0, state);
    }
}

impl Equivalent<TokenKey> for Presented<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        *key.0 == *self.0
    }
}

#[derive(Clone)]
struct CachedToken {
    token: MaskinportenToken,
    key: Arc<VerifyingKey>,
    /// The issuer profile whose key store `key` came from.
    profile: u8,
}

/// A bounded cache of verified tokens. Clones share the cache.
#[derive(Clone)]
pub(crate) struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: quick_cache::sync::Cache<TokenKey, CachedToken>,
    last_sweep: AtomicI64,
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> Self {
        TokenCache {
            inner: Arc::new(Inner {
                tokens: quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
                last_sweep: AtomicI64::new(now_unix()),
            }),
        }
    }

    /// The verified token for these exact bytes, if cached, unexpired and its key still published.
    pub(crate) fn get(&self, token: &[u8], now: i64, published: impl Fn(u8, &Arc<VerifyingKey>) -> bool) -> Option<MaskinportenToken> {
        let presented = Presented(token);
        let hit = self.inner.tokens.get(&presented)?;
        if now >= hit.token.exp_unix() || !published(hit.profile, &hit.key) {
            self.inner.tokens.remove(&presented);
            return None;
        }
        Some(hit.token)
    }

    pub(crate) fn insert(&self, token: &[u8], verified: &MaskinportenToken, key: Arc<VerifyingKey>, profile: u8) {
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
            key,
            profile,
        };
        self.inner.tokens.insert(TokenKey(token.into()), cached);
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
            scopes: Box::new([]),
            client_id: None,
            client_amr: None,
            consumer: None,
            supplier: None,
            jti: None,
            issued_at: expires_at - 120,
            expires_at,
            audience: Box::new([]),
            system_user: None,
        })
    }

    #[test]
    fn bounded_by_its_capacity() {
        let cache = TokenCache::new(100);
        let key = some_key();
        let t = token(now_unix() + 120);
        for i in 0..2_000 {
            cache.insert(format!("header.payload.signature-{i:064}").as_bytes(), &t, key.clone(), 0);
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(cache.len() >= 50, "{}", cache.len());
    }

    #[test]
    fn expired_entries_are_swept_when_new_tokens_come_in() {
        let cache = TokenCache::new(100);
        let key = some_key();
        for i in 0..10 {
            cache.insert(format!("expired-{i}").as_bytes(), &token(now_unix() - 1), key.clone(), 0);
        }
        assert_eq!(cache.len(), 10);
        // Pretend the last sweep was long ago: the next insert sweeps.
        cache.inner.last_sweep.store(now_unix() - SWEEP_EVERY_SECS, Ordering::Relaxed);
        cache.insert(b"fresh", &token(now_unix() + 120), key, 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn lookups_hash_like_the_stored_key() {
        use std::hash::BuildHasher;
        let s = std::hash::RandomState::new();
        for t in ["", "a", "a.b.c", &"x".repeat(1500)] {
            let t = t.as_bytes();
            assert_eq!(s.hash_one(TokenKey(t.into())), s.hash_one(Presented(t)));
            assert!(Presented(t).equivalent(&TokenKey(t.into())));
        }
        // Same tail, different head: same hash, but not equal.
        let a = format!("aaaa{}", "s".repeat(64)).into_bytes();
        let b = format!("bbbb{}", "s".repeat(64)).into_bytes();
        assert_eq!(s.hash_one(Presented(&a)), s.hash_one(Presented(&b)));
        assert!(!Presented(&a).equivalent(&TokenKey(b.into())));
    }
}
