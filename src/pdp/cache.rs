//! The decision cache.
//!
//! Keyed on exactly (system user, action, resource, party). A `Permit` lives the permit TTL,
//! but never past the request's `valid_until`; `Deny`, `NotApplicable` and `ObligationNotMet`
//! live the deny TTL; `Indeterminate` and errors are never cached. Concurrent misses for the
//! same key share one PDP call.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use uuid::Uuid;

use super::request::{Action, DecisionRequest, ResourceId};
use super::{Decision, PdpError};
use crate::Party;

/// What a decision is about. Cheap to clone: a UUID, two `Arc<str>`s and a `Copy` party.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DecisionKey {
    pub(crate) subject: Uuid,
    pub(crate) action: Action,
    pub(crate) resource: ResourceId,
    pub(crate) party: Party,
}

impl DecisionKey {
    pub(crate) fn of(req: &DecisionRequest) -> Self {
        DecisionKey {
            subject: req.subject,
            action: req.action.clone(),
            resource: req.resource.clone(),
            party: req.party,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    decision: Decision,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<DecisionKey, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &DecisionKey, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Why a freshly fetched decision is handed back without being cached.
enum Uncached {
    Decision(Decision),
    Error(PdpError),
}

pub(crate) struct DecisionCache {
    inner: Option<moka::future::Cache<DecisionKey, Entry>>,
    permit_ttl: Duration,
    deny_ttl: Duration,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions; `0` disables caching (and call sharing).
    pub(crate) fn new(capacity: u64, permit_ttl: Duration, deny_ttl: Duration) -> Self {
        let inner = (capacity > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(PerEntryTtl)
                .build()
        });
        DecisionCache {
            inner,
            permit_ttl,
            deny_ttl,
        }
    }

    pub(crate) fn permit_ttl(&self) -> Duration {
        self.permit_ttl
    }

    pub(crate) fn deny_ttl(&self) -> Duration {
        self.deny_ttl
    }

    /// How long `decision` may be cached; `None` means not at all.
    pub(crate) fn ttl(&self, decision: Decision, valid_until: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
        let ttl = match decision {
            Decision::Permit => {
                let left = match valid_until {
                    Some(until) => until.duration_since(now).unwrap_or(Duration::ZERO),
                    None => Duration::MAX,
                };
                self.permit_ttl.min(left)
            }
            Decision::Deny | Decision::NotApplicable | Decision::ObligationNotMet => self.deny_ttl,
            Decision::Indeterminate => Duration::ZERO,
        };
        (!ttl.is_zero()).then_some(ttl)
    }

    /// A cached decision, if there is one. No allocation, no I/O.
    pub(crate) async fn get(&self, key: &DecisionKey) -> Option<Decision> {
        match &self.inner {
            Some(cache) => cache.get(key).await.map(|e| e.decision),
            None => None,
        }
    }

    /// The cached decision, or the one `fetch` produces (cached as its kind allows). Concurrent
    /// callers with the same key wait for one `fetch`; if it fails, they all get its error.
    pub(crate) async fn get_or_fetch<F>(&self, key: DecisionKey, valid_until: Option<SystemTime>, fetch: F) -> Result<Decision, PdpError>
    where
        F: Future<Output = Result<Decision, PdpError>>,
    {
        let Some(cache) = &self.inner else { return fetch.await };
        let init = async {
            let decision = fetch.await.map_err(Uncached::Error)?;
            match self.ttl(decision, valid_until, SystemTime::now()) {
                Some(ttl) => Ok(Entry { decision, ttl }),
                None => Err(Uncached::Decision(decision)),
            }
        };
        match cache.try_get_with(key, init).await {
            Ok(entry) => Ok(entry.decision),
            Err(uncached) => match &*uncached {
                Uncached::Decision(d) => Ok(*d),
                Uncached::Error(e) => Err(e.clone()),
            },
        }
    }

    /// Stores a decision fetched elsewhere (a multi-request), as its kind allows.
    pub(crate) async fn insert(&self, key: DecisionKey, decision: Decision, valid_until: Option<SystemTime>) {
        if let (Some(cache), Some(ttl)) = (&self.inner, self.ttl(decision, valid_until, SystemTime::now())) {
            cache.insert(key, Entry { decision, ttl }).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdp::PdpErrorKind;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn req(resource: &str) -> DecisionRequest {
        DecisionRequest::new(
            "47caea5b-a80b-4343-b1d3-31eb523a4e28".parse().unwrap(),
            Action::read(),
            ResourceId::new(resource).unwrap(),
            Party::Organisation("910459880".parse().unwrap()),
        )
    }

    fn hash(k: &DecisionKey) -> u64 {
        let mut h = DefaultHasher::new();
        k.hash(&mut h);
        h.finish()
    }

    #[test]
    fn keys_are_exactly_the_four_parts() {
        let base = req("resource-a");
        let k = DecisionKey::of(&base);
        // valid_until is not part of the key.
        let later = base.clone().valid_until(SystemTime::now());
        assert_eq!(DecisionKey::of(&later), k);
        assert_eq!(hash(&DecisionKey::of(&later)), hash(&k));
        // Each part is.
        let mut other = base.clone();
        other.subject = "a545ca29-7fb8-4810-a2f2-0be171cb2a26".parse().unwrap();
        assert_ne!(DecisionKey::of(&other), k);
        let mut other = base.clone();
        other.action = Action::write();
        assert_ne!(DecisionKey::of(&other), k);
        assert_ne!(DecisionKey::of(&req("resource-b")), k);
        let mut other = base.clone();
        other.party = Party::Organisation("923609016".parse().unwrap());
        assert_ne!(DecisionKey::of(&other), k);
        let mut other = base;
        other.party = Party::Person("01010012356".parse().unwrap());
        assert_ne!(DecisionKey::of(&other), k);
        // Separately built equal parts make equal keys (no pointer identity).
        let rebuilt = DecisionKey {
            subject: k.subject,
            action: Action::new("read").unwrap(),
            resource: ResourceId::new("resource-a").unwrap(),
            party: k.party,
        };
        assert_eq!(rebuilt, k);
        assert_eq!(hash(&rebuilt), hash(&k));
    }

    #[test]
    fn ttls() {
        let c = DecisionCache::new(10, Duration::from_secs(30), Duration::from_secs(5));
        let now = SystemTime::now();
        assert_eq!(c.ttl(Decision::Permit, None, now), Some(Duration::from_secs(30)));
        assert_eq!(
            c.ttl(Decision::Permit, Some(now + Duration::from_secs(10)), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            c.ttl(Decision::Permit, Some(now + Duration::from_secs(100)), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(c.ttl(Decision::Permit, Some(now), now), None);
        assert_eq!(c.ttl(Decision::Permit, Some(now - Duration::from_secs(1)), now), None);
        for d in [Decision::Deny, Decision::NotApplicable, Decision::ObligationNotMet] {
            assert_eq!(c.ttl(d, Some(now), now), Some(Duration::from_secs(5)));
        }
        assert_eq!(c.ttl(Decision::Indeterminate, None, now), None);
        let no_deny = DecisionCache::new(10, Duration::from_secs(30), Duration::ZERO);
        assert_eq!(no_deny.ttl(Decision::Deny, None, now), None);
    }

    async fn fetch_counting(calls: &AtomicUsize, result: Result<Decision, PdpError>) -> Result<Decision, PdpError> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        result
    }

    #[tokio::test]
    async fn what_is_cached() {
        let c = DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5));
        let calls = AtomicUsize::new(0);
        for (resource, decision, cached) in [
            ("permit", Decision::Permit, true),
            ("deny", Decision::Deny, true),
            ("notapplicable", Decision::NotApplicable, true),
            ("obligation", Decision::ObligationNotMet, true),
            ("indeterminate", Decision::Indeterminate, false),
        ] {
            let k = DecisionKey::of(&req(resource));
            assert_eq!(
                c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Ok(decision))).await,
                Ok(decision)
            );
            assert_eq!(c.get(&k).await, cached.then_some(decision), "{resource}");
        }
        // Errors are not cached.
        let k = DecisionKey::of(&req("error"));
        let err = PdpError::new(PdpErrorKind::Connect);
        assert_eq!(
            c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Err(err.clone()))).await,
            Err(err)
        );
        assert_eq!(c.get(&k).await, None);
        // A permit whose token has expired is not cached.
        let k = DecisionKey::of(&req("expired"));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(
            c.get_or_fetch(k.clone(), Some(past), fetch_counting(&calls, Ok(Decision::Permit)))
                .await,
            Ok(Decision::Permit)
        );
        assert_eq!(c.get(&k).await, None);
        // A hit does not fetch.
        let before = calls.load(Ordering::SeqCst);
        let k = DecisionKey::of(&req("permit"));
        assert_eq!(
            c.get_or_fetch(k, None, fetch_counting(&calls, Ok(Decision::Deny))).await,
            Ok(Decision::Permit)
        );
        assert_eq!(calls.load(Ordering::SeqCst), before);
    }

    #[tokio::test]
    async fn entries_expire() {
        let c = DecisionCache::new(100, Duration::from_millis(800), Duration::from_millis(100));
        let p = DecisionKey::of(&req("permit"));
        let d = DecisionKey::of(&req("deny"));
        let short = DecisionKey::of(&req("short"));
        c.insert(p.clone(), Decision::Permit, None).await;
        c.insert(d.clone(), Decision::Deny, None).await;
        c.insert(
            short.clone(),
            Decision::Permit,
            Some(SystemTime::now() + Duration::from_millis(100)),
        )
        .await;
        assert_eq!(c.get(&p).await, Some(Decision::Permit));
        assert_eq!(c.get(&d).await, Some(Decision::Deny));
        assert_eq!(c.get(&short).await, Some(Decision::Permit));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(c.get(&p).await, Some(Decision::Permit));
        assert_eq!(c.get(&d).await, None);
        assert_eq!(c.get(&short).await, None);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(c.get(&p).await, None);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let c = Arc::new(DecisionCache::new(100, Duration::from_secs(30), Duration::from_secs(5)));
        for decision in [Decision::Permit, Decision::Indeterminate] {
            let calls = Arc::new(AtomicUsize::new(0));
            let resource = if decision.is_permit() {
                "shared-permit"
            } else {
                "shared-indeterminate"
            };
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (c, calls) = (c.clone(), calls.clone());
                    tokio::spawn(async move {
                        let k = DecisionKey::of(&req(resource));
                        c.get_or_fetch(k, None, async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Ok(decision)
                        })
                        .await
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), Ok(decision));
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{decision:?}");
        }
    }

    #[tokio::test]
    async fn capacity_zero_disables_the_cache() {
        let c = DecisionCache::new(0, Duration::from_secs(30), Duration::from_secs(5));
        let k = DecisionKey::of(&req("permit"));
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            assert_eq!(
                c.get_or_fetch(k.clone(), None, fetch_counting(&calls, Ok(Decision::Permit))).await,
                Ok(Decision::Permit)
            );
        }
        c.insert(k.clone(), Decision::Permit, None).await;
        assert_eq!(c.get(&k).await, None);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn capacity_is_bounded() {
        let c = DecisionCache::new(10, Duration::from_secs(30), Duration::from_secs(5));
        for i in 0..200 {
            c.insert(DecisionKey::of(&req(&format!("resource-{i}"))), Decision::Permit, None)
                .await;
        }
        let cache = c.inner.as_ref().unwrap();
        cache.run_pending_tasks().await;
        assert!(cache.entry_count() <= 10, "{}", cache.entry_count());
    }
}
