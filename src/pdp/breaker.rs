//! The circuit breaker in front of the PDP: after a `429` or a run of failures, stop calling
//! the PDP for a cool-down and answer "no decision" at once; then let one probe through.
//!
//! - **Closed** (normal): every call goes through. A `429` opens the breaker at once; other
//!   failures are counted, and [`breaker_failure_threshold`] of them in a row (default 5) open
//!   it. A success resets the count.
//! - **Open**: no call is made. [`decide`](super::AltinnPdp::decide) and
//!   [`decide_many`](super::AltinnPdp::decide_many) fail at once with
//!   [`PdpErrorKind::CircuitOpen`], whose [`retry_after`](PdpError::retry_after) is the time
//!   left. Cached decisions are still served: the cache is looked up before the breaker.
//! - **Half-open**: when the cool-down is over, the next call is the one probe; callers that
//!   come while it is out are refused at once as if open. The probe's success closes the
//!   breaker; its failure opens it again, for twice the last cool-down.
//!
//! The cool-down is the PDP's `Retry-After` when it sent one (at most 60 s, the cap on every
//! upstream `Retry-After`), otherwise [`breaker_cool_down`] (default 5 s), doubled after each
//! failed probe up to [`breaker_max_cool_down`] (default 60 s) and back to the start when the
//! breaker closes.
//!
//! What one PDP call counts as (after its one retry, if any):
//!
//! | the call ended with | counts as |
//! |---|---|
//! | a well-formed answer (any decision, `Indeterminate` too) | success |
//! | `429` | failure that opens the breaker at once |
//! | `5xx`, a timeout, a connection error | failure |
//! | a malformed or oversized `200` answer | failure (the PDP or the gateway is not well) |
//! | `401` after a token refresh, `403` | nothing: our credentials, a configuration problem that waiting does not mend |
//! | another `4xx` (`400`, `415`, ...) | nothing: our request, not the PDP's health |
//! | no Altinn token (grant or exchange failed or timed out) | nothing: the PDP was not called; the token refresh is shared and has its own budget |
//! | the caller gave up before the deadline (a probe goes back to the next caller) | nothing |
//!
//! No lock is held across I/O: a `std` mutex guards the few fields of the state, for a
//! moment, before and after a call. The clock is Tokio's.
//!
//! [`breaker_failure_threshold`]: super::AltinnPdpBuilder::breaker_failure_threshold
//! [`breaker_cool_down`]: super::AltinnPdpBuilder::breaker_cool_down
//! [`breaker_max_cool_down`]: super::AltinnPdpBuilder::breaker_max_cool_down

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{AltinnPdp, AltinnPdpBuilder, PdpError, PdpErrorKind};
use crate::ConfigError;

const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
const MAX_FAILURE_THRESHOLD: u32 = 1000;
const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(5);
const DEFAULT_MAX_COOL_DOWN: Duration = Duration::from_secs(60);
/// Longest cool-down accepted.
const MAX_COOL_DOWN: Duration = Duration::from_secs(5 * 60);
/// The `Retry-After` hint given while the probe is out (its end is not known).
const PROBING_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The state of the PDP client's circuit breaker, from [`AltinnPdp::breaker_state`].
///
/// Non-exhaustive: a later version may tell more states apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through (also when the breaker is off).
    Closed,
    /// No call is made for `retry_after` more: uncached decisions fail at once with
    /// [`PdpErrorKind::CircuitOpen`].
    Open {
        /// The time left of the cool-down.
        retry_after: Duration,
    },
    /// The cool-down is over: the next call is the one probe, or the probe is out (and other
    /// callers are refused at once until it ends).
    HalfOpen,
}

/// The breaker's configuration; `None` in [`Breaker`] when it is off.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct BreakerSettings {
    on: bool,
    failure_threshold: u32,
    cool_down: Duration,
    max_cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            on: true,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            cool_down: DEFAULT_COOL_DOWN,
            max_cool_down: DEFAULT_MAX_COOL_DOWN,
        }
    }
}

impl BreakerSettings {
    /// Checks the bounds, naming the builder method to fix.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if !self.on {
            return Ok(());
        }
        if !(1..=MAX_FAILURE_THRESHOLD).contains(&self.failure_threshold) {
            return Err(ConfigError::new(
                "breaker_failure_threshold",
                "from 1 to 1000 (use breaker_off to turn the breaker off)",
            ));
        }
        if self.cool_down.is_zero() || self.cool_down > MAX_COOL_DOWN {
            return Err(ConfigError::new("breaker_cool_down", "more than zero and at most 5 minutes"));
        }
        if self.max_cool_down > MAX_COOL_DOWN {
            return Err(ConfigError::new("breaker_max_cool_down", "at most 5 minutes"));
        }
        if self.max_cool_down < self.cool_down {
            return Err(ConfigError::conflict("breaker_max_cool_down", "at least the breaker_cool_down"));
        }
        Ok(())
    }
}

impl fmt::Debug for BreakerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.on {
            return f.write_str("off");
        }
        f.debug_struct("Breaker")
            .field("failure_threshold", &self.failure_threshold)
            .field("cool_down", &self.cool_down)
            .field("max_cool_down", &self.max_cool_down)
            .finish()
    }
}

impl AltinnPdpBuilder {
    /// How many failed PDP calls in a row open the circuit breaker (a `429` opens it at once).
    /// Default 5; from 1 to 1000. See [`AltinnPdp::breaker_state`] for what the breaker does.
    pub fn breaker_failure_threshold(mut self, failures: u32) -> Self {
        self.breaker.failure_threshold = failures;
        self
    }

    /// How long the breaker stays open the first time, when the PDP sent no `Retry-After`.
    /// Doubled after each failed probe, up to [`breaker_max_cool_down`](Self::breaker_max_cool_down).
    /// Default 5 s; more than zero and at most 5 minutes.
    pub fn breaker_cool_down(mut self, cool_down: Duration) -> Self {
        self.breaker.cool_down = cool_down;
        self
    }

    /// The longest cool-down the doubling reaches. Default 60 s; at least
    /// [`breaker_cool_down`](Self::breaker_cool_down) and at most 5 minutes. A `Retry-After`
    /// from the PDP (at most 60 s) is honoured as it is.
    pub fn breaker_max_cool_down(mut self, max: Duration) -> Self {
        self.breaker.max_cool_down = max;
        self
    }

    /// Turns the circuit breaker off: every uncached decision calls the PDP, whatever it
    /// answered before. The breaker settings are then not checked.
    pub fn breaker_off(mut self) -> Self {
        self.breaker.on = false;
        self
    }
}

impl AltinnPdp {
    /// The state of the circuit breaker in front of the PDP, for readiness checks and metrics.
    ///
    /// The breaker stops calling the PDP for a cool-down after a `429` (honouring its
    /// `Retry-After`, at most 60 s) or after [`breaker_failure_threshold`] failed calls in a row
    /// (`5xx`, timeouts, connection errors, malformed answers; default 5). While it is open,
    /// uncached decisions fail at once with [`PdpErrorKind::CircuitOpen`] (the system-user layer
    /// answers `503` with `Retry-After`), and cached ones are still served. Then one probe call
    /// goes through: its success closes the breaker, its failure opens it again for twice as
    /// long (default 5 s, doubling up to 60 s). `401`, `403` and credential failures do not
    /// count: they are configuration problems. Always [`BreakerState::Closed`] when the breaker
    /// is [off](AltinnPdpBuilder::breaker_off).
    ///
    /// [`breaker_failure_threshold`]: AltinnPdpBuilder::breaker_failure_threshold
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }
}

/// What one PDP call tells about the PDP's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A well-formed answer.
    Success,
    /// A failure; `trip` opens the breaker at once (a `429`), `retry_after` is the PDP's hint.
    Failure { trip: bool, retry_after: Option<Duration> },
    /// Nothing about the PDP's health (our credentials, our request, no token).
    Neutral,
}

impl Outcome {
    /// What a PDP call that ended with `e` counts as (see the [module docs](self)).
    pub(crate) fn of_error(e: &PdpError) -> Outcome {
        let failure = |trip| Outcome::Failure {
            trip,
            retry_after: e.retry_after(),
        };
        match e.kind() {
            PdpErrorKind::Status(429) => failure(true),
            PdpErrorKind::Status(500..=599) | PdpErrorKind::Timeout | PdpErrorKind::Connect => failure(false),
            PdpErrorKind::Malformed | PdpErrorKind::TooLarge => failure(false),
            // Our credentials or our request, or nothing asked of the PDP at all.
            _ => Outcome::Neutral,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    Probing,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Failures in a row while closed.
    failures: u32,
    /// The cool-down of the next opening without a `Retry-After`.
    cool_down: Duration,
}

/// The breaker's state machine. See the [module docs](self).
pub(crate) struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            state: Mutex::new(State {
                phase: Phase::Closed,
                failures: 0,
                cool_down: settings.cool_down,
            }),
        }
    }

    pub(crate) fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields, consistent after every statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The public view of the state.
    pub(crate) fn state(&self) -> BreakerState {
        if !self.settings.on {
            return BreakerState::Closed;
        }
        match self.lock().phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { until } => match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => BreakerState::Open { retry_after: left },
                _ => BreakerState::HalfOpen,
            },
            Phase::Probing => BreakerState::HalfOpen,
        }
    }

    /// The refusal a call would get now, without taking the probe: for a quick "no" before any
    /// work is started.
    pub(crate) fn refusal(&self) -> Option<PdpError> {
        if !self.settings.on {
            return None;
        }
        match self.lock().phase {
            Phase::Closed => None,
            Phase::Open { until } => time_left(until).map(PdpError::circuit_open),
            Phase::Probing => Some(PdpError::circuit_open(PROBING_RETRY_AFTER)),
        }
    }

    /// Lets a call through (the probe, if the cool-down is over), or refuses it. The call's
    /// outcome must be given to [`Ticket::finish`]; a ticket dropped unfinished after
    /// `deadline` counts as a timeout, before it as a caller that gave up.
    pub(crate) fn admit(&self, deadline: Instant) -> Result<Ticket<'_>, PdpError> {
        let mut probe = false;
        if self.settings.on {
            let mut state = self.lock();
            match state.phase {
                Phase::Closed => {}
                Phase::Open { until } => match time_left(until) {
                    Some(left) => return Err(PdpError::circuit_open(left)),
                    None => {
                        state.phase = Phase::Probing;
                        probe = true;
                        tracing::info!("Altinn PDP circuit breaker half-open: one probe call");
                    }
                },
                Phase::Probing => return Err(PdpError::circuit_open(PROBING_RETRY_AFTER)),
            }
        }
        Ok(Ticket {
            breaker: self,
            probe,
            deadline,
            finished: false,
        })
    }

    fn record(&self, probe: bool, outcome: Outcome) {
        if !self.settings.on {
            return;
        }
        let mut state = self.lock();
        let state = &mut *state;
        let now = Instant::now();
        match (state.phase, probe, outcome) {
            (Phase::Closed, false, Outcome::Success) => state.failures = 0,
            (Phase::Closed, false, Outcome::Failure { trip, retry_after }) => {
                state.failures = state.failures.saturating_add(1);
                if trip || state.failures >= self.settings.failure_threshold {
                    let cool_down = retry_after.unwrap_or(state.cool_down);
                    state.phase = Phase::Open {
                        until: until(now, cool_down),
                    };
                    tracing::warn!(
                        failures = state.failures,
                        cool_down_ms = cool_down.as_millis() as u64,
                        "Altinn PDP circuit breaker open: not calling the PDP for a while"
                    );
                }
            }
            (Phase::Probing, true, Outcome::Success) => {
                state.phase = Phase::Closed;
                state.failures = 0;
                state.cool_down = self.settings.cool_down;
                tracing::info!("Altinn PDP circuit breaker closed: the probe call succeeded");
            }
            (Phase::Probing, true, Outcome::Failure { retry_after, .. }) => {
                state.cool_down = state.cool_down.saturating_mul(2).min(self.settings.max_cool_down);
                let cool_down = retry_after.unwrap_or(state.cool_down);
                state.phase = Phase::Open {
                    until: until(now, cool_down),
                };
                tracing::warn!(
                    cool_down_ms = cool_down.as_millis() as u64,
                    "Altinn PDP circuit breaker open again: the probe call failed"
                );
            }
            // A probe that says nothing (no token, our credentials, a caller that gave up):
            // the next caller probes.
            (Phase::Probing, true, Outcome::Neutral) => state.phase = Phase::Open { until: now },
            // A call let through before the breaker opened, now answered `429` with a longer
            // `Retry-After`: stay away that long.
            (
                Phase::Open { until: current },
                false,
                Outcome::Failure {
                    trip: true,
                    retry_after: Some(after),
                },
            ) => {
                state.phase = Phase::Open {
                    until: until(now, after).max(current),
                }
            }
            // Anything else is a call let through before the breaker opened: the probe decides.
            _ => {}
        }
    }
}

/// `now + d`, never overflowing (the settings bound `d` far below any overflow anyway).
fn until(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// The time left until `until`, if any.
fn time_left(until: Instant) -> Option<Duration> {
    until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

/// A call let through by [`Breaker::admit`]; give its outcome to [`finish`](Self::finish).
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    deadline: Instant,
    finished: bool,
}

impl Ticket<'_> {
    /// Records what the call came to.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.breaker.record(self.probe, outcome);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Dropped unfinished: the call was abandoned at its deadline (a stalled PDP), or its
        // caller gave up before.
        let outcome = if Instant::now() >= self.deadline {
            Outcome::Failure {
                trip: false,
                retry_after: None,
            }
        } else {
            Outcome::Neutral
        };
        self.breaker.record(self.probe, outcome);
    }
}

#[cfg(test)]
mod tests;
