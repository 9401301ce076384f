//! The verified-token cache: a token that passed every check is not verified again until it
//! expires.
//!
//! - Keyed on the whole token, signature included, compared byte for byte: a hit can only ever
//!   be the same bytes that were verified.
//! - An entry never outlives the token's `exp` (no leeway is added): the cache cannot extend a
//!   token's life.
//! - An entry is only used while the key that verified it is still the key published under its
//!   `kid`: a key that disappears from the JWKS takes its tokens with it.
//! - Bounded by a capacity (default 10,000); per-route checks (scopes) still run on every hit.

use super::keys::{KeyStore, VerifyingKey};
use super::token::MaskinportenToken;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct CachedToken {
    token: MaskinportenToken,
    key: Arc<VerifyingKey>,
}

struct UntilExp;

impl moka::Expiry<Box<str>, CachedToken> for UntilExp {
    fn expire_after_create(&self, _key: &Box<str>, value: &CachedToken, _created_at: std::time::Instant) -> Option<Duration> {
        let left = value.token.exp_unix() - super::validate::now_unix();
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

/// A bounded cache of verified tokens.
#[derive(Clone)]
pub(crate) struct TokenCache {
    cache: moka::sync::Cache<Box<str>, CachedToken, foldhash::fast::RandomState>,
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> Self {
        TokenCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// The verified token for these exact bytes, if cached, unexpired and its key still published.
    pub(crate) fn get(&self, token: &str, keys: &KeyStore, now: i64) -> Option<MaskinportenToken> {
        let hit = self.cache.get(token)?;
        if now >= hit.token.exp_unix() || !keys.still_published(&hit.key) {
            return None;
        }
        Some(hit.token)
    }

    pub(crate) fn insert(&self, token: &str, verified: &MaskinportenToken, key: Arc<VerifyingKey>) {
        self.cache.insert(
            token.into(),
            CachedToken {
                token: verified.clone(),
                key,
            },
        );
    }
}
