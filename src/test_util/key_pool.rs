//! [`KeyRole`]: one RSA key per role, generated once per process and handed out by role.
//!
//! Generating an RSA-2048 key costs tens to hundreds of milliseconds, far more than anything
//! else a test does with it. A test suite that generated two or three keys per test spent most
//! of its time there. The pool generates each role's key the first time it is asked for and
//! hands out cheap clones after that (the key material is shared, see [`TestKey`]'s `Clone`).
//!
//! Every role has its own key, so a test that needs "another" key (a forger, a second client, a
//! key the fake never published) gets one that really is different from the keys the fakes
//! sign and verify with. Keys are still generated at run time: nothing secret is checked in.

use super::keys::TestKey;
use super::server::lock;
use std::sync::{Arc, Mutex, OnceLock};

/// Who a pooled key belongs to in a test. Each role has its own RSA-2048 key, generated once
/// per process (see [`TestKey::for_role`]).
///
/// ```
/// use altinn_systemuser::test_util::{KeyRole, TestKey};
///
/// let rogue = TestKey::for_role(KeyRole::Rogue);
/// let provider = TestKey::for_role(KeyRole::Provider);
/// assert_ne!(rogue.public_components(), provider.public_components());
/// // The same role, the same key (generated once), under any kid.
/// let forger = TestKey::for_role(KeyRole::Rogue).with_kid("published-kid");
/// assert_eq!(forger.public_components(), rogue.public_components());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyRole {
    /// [`FakeMaskinporten`](super::FakeMaskinporten)'s first signing key (every fake of a
    /// process signs with it, each under its own random `kid`).
    Maskinporten,
    /// The key [`FakeMaskinporten::rotate_key`](super::FakeMaskinporten::rotate_key) switches to
    /// at a fake's `n`th rotation (counting from 0).
    Rotation(u8),
    /// [`FakeAltinn`](super::FakeAltinn)'s key for the Altinn tokens it issues.
    Altinn,
    /// The API provider's Maskinporten client key: the PDP client's credentials.
    Provider,
    /// A vendor's Maskinporten client key.
    Vendor,
    /// A second vendor's client key, distinct from [`Vendor`](Self::Vendor).
    OtherVendor,
    /// A key that nobody publishes or registers: forged signatures, foreign tokens, strangers.
    Rogue,
}

impl KeyRole {
    /// The `kid` of the role's key as [`TestKey::for_role`] returns it.
    pub fn default_kid(self) -> String {
        match self {
            KeyRole::Maskinporten => "maskinporten".into(),
            KeyRole::Rotation(n) => format!("rotation-{n}"),
            KeyRole::Altinn => "altinn".into(),
            KeyRole::Provider => "provider".into(),
            KeyRole::Vendor => "vendor".into(),
            KeyRole::OtherVendor => "other-vendor".into(),
            KeyRole::Rogue => "rogue".into(),
        }
    }
}

type Slot = Arc<OnceLock<TestKey>>;

/// One slot per role asked for so far. The lock is held only to find the slot; a key is
/// generated outside it, so different roles are generated in parallel while callers asking for
/// the same role wait for the one generation.
static POOL: Mutex<Vec<(KeyRole, Slot)>> = Mutex::new(Vec::new());

impl TestKey {
    /// The pooled key of `role`, with kid [`KeyRole::default_kid`]: generated the first time the
    /// role is asked for in this process, a cheap clone after that. Different roles always have
    /// different keys. Change the kid with [`with_kid`](Self::with_kid).
    ///
    /// # Panics
    ///
    /// If the system cannot generate a key (see [`generate`](Self::generate)).
    pub fn for_role(role: KeyRole) -> TestKey {
        let slot = {
            let mut pool = lock(&POOL);
            match pool.iter().find(|(r, _)| *r == role) {
                Some((_, slot)) => slot.clone(),
                None => {
                    let slot = Slot::default();
                    pool.push((role, slot.clone()));
                    slot
                }
            }
        };
        slot.get_or_init(|| TestKey::generate(role.default_kid())).clone()
    }

    /// Makes sure the pooled keys of `roles` exist, generating the missing ones in parallel (one
    /// thread each), and waits for them. A test setup that is about to need several roles pays
    /// for one generation instead of one after the other; later
    /// [`for_role`](Self::for_role) calls for these roles are cheap.
    ///
    /// # Panics
    ///
    /// If the system cannot generate a key (see [`generate`](Self::generate)).
    pub fn pregenerate(roles: &[KeyRole]) {
        std::thread::scope(|s| {
            for &role in roles {
                s.spawn(move || TestKey::for_role(role));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_its_own_key_generated_once() {
        // The roles this test binary uses anyway, so the check costs no extra key generation.
        let roles = [
            KeyRole::Maskinporten,
            KeyRole::Rotation(0),
            KeyRole::Altinn,
            KeyRole::Vendor,
            KeyRole::Rogue,
        ];
        let keys: Vec<TestKey> = roles.iter().map(|r| TestKey::for_role(*r)).collect();
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(a.kid(), roles[i].default_kid());
            assert_eq!(a.bits(), 2048);
            for b in &keys[i + 1..] {
                assert_ne!(a.public_components(), b.public_components(), "{a:?} and {b:?}");
            }
        }
        // Asked again: the same key material, not a new key.
        for (role, key) in roles.iter().zip(&keys) {
            assert_eq!(TestKey::for_role(*role).public_components(), key.public_components());
        }
    }
}
