//! The limit on new PDP questions per system user: a token bucket per system-user id.
//!
//! Only a question that starts a new PDP call costs a token; a cached decision, or joining a
//! call already in flight for the same question, costs nothing. Each system user's bucket
//! holds `burst` tokens and refills at `per_second`; a question that finds it empty is refused
//! with the time until a token is back (`PdpErrorKind::TooManyDecisions`, which the
//! system-user layer answers `429` with `Retry-After`).
//!
//! A bucket is kept as one instant, the time at which it is full again (the "theoretical
//! arrival time" of GCRA): taking `n` tokens moves it `n` intervals later, and a bucket whose
//! instant has passed is full, the same as no bucket at all. So a full bucket is dropped, and
//! the map only holds the system users that asked something recently (within `burst /
//! per_second`, 5 s by default).
//!
//! The map is bounded. Full buckets are swept out once a minute, and whenever the map has
//! reached its cap (100 000 system users; at most once a second). If the map is at its cap with
//! no full bucket in it, a system user without a bucket of its own is limited by one shared
//! overflow bucket (same rate and burst): neither refused outright (that would let a flood of
//! system users lock out every newcomer) nor let through unlimited (that would open the quota
//! again). Every system user already in the map keeps its own bucket.
//!
//! Time is Tokio's clock (`tokio::time::Instant`), so tests can pause it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::PdpError;

/// Default: new PDP questions per second per system user.
pub(crate) const DEFAULT_PER_SECOND: u32 = 20;
/// Default: new PDP questions one system user may ask at once.
pub(crate) const DEFAULT_BURST: u32 = 100;
/// Largest rate and burst accepted.
pub(crate) const MAX_PER_SECOND: u32 = 100_000;
pub(crate) const MAX_BURST: u32 = 100_000;
/// The most system users with a bucket of their own.
const MAX_BUCKETS: usize = 100_000;
/// How often full buckets are swept out, and how often at most when the map is at its cap.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_AT_CAP_EVERY: Duration = Duration::from_secs(1);

/// The rate and burst of the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit {
    /// The time one token takes to come back: `1 s / per_second`, rounded up (never faster).
    interval: Duration,
    burst: u32,
    /// How far ahead of now a bucket's instant may be: `burst` intervals.
    tolerance: Duration,
}

/// The buckets of a [`DecisionLimiter`].
struct Buckets {
    /// When each system user's bucket is full again. Absent: full.
    full_at: HashMap<Uuid, Instant>,
    /// The shared bucket of system users who found the map at its cap.
    overflow: Instant,
    cap: usize,
    last_sweep: Instant,
}

/// A token bucket per system user; see the [module docs](self).
pub(crate) struct DecisionLimiter {
    limit: Option<Limit>,
    buckets: Mutex<Buckets>,
}

impl fmt::Debug for DecisionLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionLimiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl DecisionLimiter {
    /// `per_second` new questions per system user, up to `burst` at once; `None` for no limit.
    /// The builder checks the bounds; zeros here are read as 1.
    pub(crate) fn new(limit: Option<(u32, u32)>) -> Self {
        Self::with_cap(limit, MAX_BUCKETS)
    }

    fn with_cap(limit: Option<(u32, u32)>, cap: usize) -> Self {
        let limit = limit.map(|(per_second, burst)| {
            let (per_second, burst) = (per_second.max(1), burst.max(1));
            let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(per_second)));
            Limit {
                interval,
                burst,
                tolerance: interval.saturating_mul(burst),
            }
        });
        let now = Instant::now();
        DecisionLimiter {
            limit,
            buckets: Mutex::new(Buckets {
                full_at: HashMap::new(),
                overflow: now,
                cap,
                last_sweep: now,
            }),
        }
    }

    /// Takes one token of `subject`'s bucket, or says how long until there is one.
    pub(crate) fn take(&self, subject: Uuid) -> Result<(), PdpError> {
        self.take_each(&[(subject, 1)])
    }

    /// Takes one token per question, of its subject's bucket, all or none (see
    /// [`take_each`](Self::take_each)).
    pub(crate) fn take_for(&self, subjects: impl Iterator<Item = Uuid>) -> Result<(), PdpError> {
        let mut cost: HashMap<Uuid, u32> = HashMap::new();
        for subject in subjects {
            let n = cost.entry(subject).or_default();
            *n = n.saturating_add(1);
        }
        self.take_each(&cost.into_iter().collect::<Vec<_>>())
    }

    /// Takes `n` tokens of each subject's bucket (subjects given once each), all or none: a
    /// multi-request asks all its questions in one call. A subject that asks for more than the
    /// burst is refused without a `retry_after` (it could never be paid for: split the call).
    pub(crate) fn take_each(&self, wanted: &[(Uuid, u32)]) -> Result<(), PdpError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut b = lock(&self.buckets);
        b.sweep_if_due(now);
        // What the buckets would be after taking: each subject's own, or the shared one.
        let mut own: Vec<(Uuid, Instant)> = Vec::with_capacity(wanted.len());
        let mut overflow = None;
        let mut room = b.cap.saturating_sub(b.full_at.len());
        let mut wait = Duration::ZERO;
        for &(subject, n) in wanted {
            if n > limit.burst {
                return Err(PdpError::too_many_decisions(None));
            }
            let has_own = b.full_at.contains_key(&subject) || room.checked_sub(1).map(|r| room = r).is_some();
            let full_at = if has_own {
                b.full_at.get(&subject).copied().unwrap_or(now)
            } else {
                overflow.unwrap_or(b.overflow)
            };
            let Some(next) = full_at.max(now).checked_add(limit.interval.saturating_mul(n)) else {
                return Err(PdpError::too_many_decisions(None));
            };
            let ahead = next.saturating_duration_since(now);
            if ahead > limit.tolerance {
                wait = wait.max(ahead - limit.tolerance);
            }
            if has_own {
                own.push((subject, next));
            } else {
                overflow = Some(next);
            }
        }
        if !wait.is_zero() {
            return Err(PdpError::too_many_decisions(Some(wait)));
        }
        b.full_at.extend(own);
        if let Some(next) = overflow {
            b.overflow = next;
        }
        Ok(())
    }

    /// How many system users have a bucket of their own.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.buckets).full_at.len()
    }
}

impl Buckets {
    /// Drops the full buckets, once a minute, or once a second while the map is at its cap.
    fn sweep_if_due(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.last_sweep);
        let due = since >= SWEEP_EVERY || (self.full_at.len() >= self.cap && since >= SWEEP_AT_CAP_EVERY);
        if due {
            self.full_at.retain(|_, full_at| *full_at > now);
            self.last_sweep = now;
        }
    }
}

/// Locks the buckets. Nothing panics while they are held; poisoned buckets are still buckets.
fn lock(buckets: &Mutex<Buckets>) -> MutexGuard<'_, Buckets> {
    buckets.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
