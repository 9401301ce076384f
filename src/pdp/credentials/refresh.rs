//! [`MaskinportenTokenSource`]: the Maskinporten and Altinn tokens, cached until shortly before
//! they expire and refreshed once for all callers.
//!
//! A fresh Altinn token is read without a lock. A refresh (the grant, unless the cached
//! Maskinporten token will do, then the exchange) is one run of [`SingleFlight`]: callers that
//! come while it runs join it, and callers that looked before it ended and come just after,
//! share its outcome, good or bad, instead of trying again at once. The refresh runs in a task
//! of its own with a deadline one time budget from its start; the grant and the exchange are
//! each cut off there. So a token endpoint that keeps a connection open without answering holds
//! the refresh for at most one budget, and the next caller then starts afresh; a caller that
//! gives up leaves the refresh running for the others. No lock is held across the grant or the
//! exchange. A cached Maskinporten token that the exchange refuses is replaced once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::exchange::{ExchangeError, exchange};
use super::grant::MaskinportenAccessToken;
use super::{AltinnToken, AltinnTokenSource, MaskinportenCredentials};
use crate::pdp::{PdpError, PdpErrorKind};
use crate::single_flight::SingleFlight;
use crate::telemetry::metrics::{self, CredentialStep};

/// Tokens are renewed this long before they expire (or at half their lifetime, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A token that knows when it expires.
trait Expiring {
    fn expires_at(&self) -> SystemTime;
}

impl Expiring for AltinnToken {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl Expiring for MaskinportenAccessToken {
    fn expires_at(&self) -> SystemTime {
        MaskinportenAccessToken::expires_at(self)
    }
}

/// A token and when to renew it.
#[derive(Clone)]
struct Cached<T> {
    token: T,
    refresh_at: SystemTime,
}

impl<T: Expiring> Cached<T> {
    fn new(token: T, now: SystemTime) -> Self {
        let expires_at = token.expires_at();
        let left = expires_at.duration_since(now).unwrap_or_default();
        let refresh_at = expires_at - REFRESH_MARGIN.min(left / 2);
        Cached { token, refresh_at }
    }

    fn fresh(&self, now: SystemTime) -> bool {
        now < self.refresh_at
    }
}

/// [`MaskinportenCredentials`] bound to an HTTP client and an Altinn platform.
pub(crate) struct MaskinportenTokenSource {
    state: Arc<State>,
    /// The refresh in flight, if any.
    refresh: SingleFlight<(), AltinnToken, PdpError>,
}

/// The tokens and what a refresh needs, shared with the refresh's task.
struct State {
    credentials: MaskinportenCredentials,
    http: reqwest::Client,
    exchange_url: url::Url,
    max_body: usize,
    altinn: ArcSwapOption<Cached<AltinnToken>>,
    /// Only touched by a refresh; locked for a copy or a store, never across I/O.
    maskinporten: Mutex<Option<Cached<MaskinportenAccessToken>>>,
    /// The error of the last refresh, handed to the callers that looked before it ended.
    last_error: Mutex<Option<PdpError>>,
    /// Ended refreshes, successful or not.
    attempts: AtomicU64,
}

/// The error of a refresh that did not end within its budget.
fn refresh_timed_out() -> PdpError {
    PdpError::with_detail(PdpErrorKind::Timeout, "no Altinn token within the time budget")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; the value is consistent whatever happened.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MaskinportenTokenSource {
    /// A source whose refreshes (grant and exchange together) each get `budget`.
    pub(crate) fn new(
        credentials: MaskinportenCredentials,
        http: reqwest::Client,
        exchange_url: url::Url,
        max_body: usize,
        budget: Duration,
    ) -> Self {
        MaskinportenTokenSource {
            state: Arc::new(State {
                credentials,
                http,
                exchange_url,
                max_body,
                altinn: ArcSwapOption::empty(),
                maskinporten: Mutex::new(None),
                last_error: Mutex::new(None),
                attempts: AtomicU64::new(0),
            }),
            refresh: SingleFlight::new(budget, refresh_timed_out),
        }
    }

    async fn get(&self, force_refresh: bool) -> Result<AltinnToken, PdpError> {
        let state = &self.state;
        let seen = state.attempts.load(Ordering::Acquire);
        if !force_refresh
            && let Some(c) = state.altinn.load().as_ref()
            && c.fresh(SystemTime::now())
        {
            return Ok(c.token.clone());
        }
        // Asked only when no refresh is in flight (a running one is joined).
        let ended_meanwhile = || {
            if state.attempts.load(Ordering::Acquire) == seen {
                return None;
            }
            // A refresh ended since we looked: share its outcome, good or bad, rather than
            // trying again at once.
            if let Some(e) = lock(&state.last_error).clone() {
                return Some(Err(e));
            }
            state.altinn.load().as_ref().map(|c| Ok(c.token.clone()))
        };
        let (for_work, for_done) = (state.clone(), state.clone());
        let work = move |deadline: Instant| async move { for_work.refresh(force_refresh, deadline).await };
        self.refresh
            .run_unless((), ended_meanwhile, work, move |outcome| for_done.settle(outcome))
            .await
    }
}

impl State {
    /// Keeps a refresh's outcome for the callers to come; runs before the refresh's slot is
    /// freed.
    fn settle(&self, outcome: &Result<AltinnToken, PdpError>) {
        match outcome {
            Ok(token) => {
                self.altinn.store(Some(Arc::new(Cached::new(token.clone(), SystemTime::now()))));
                *lock(&self.last_error) = None;
            }
            Err(e) => *lock(&self.last_error) = Some(e.clone()),
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
    }

    /// A new Altinn token: the grant (unless the cached Maskinporten token will do), then the
    /// exchange, each by `deadline`. A failure that arrives once the deadline has passed (an
    /// HTTP client's own timeout may end a stalled request just then) is a timeout.
    async fn refresh(&self, force: bool, deadline: Instant) -> Result<AltinnToken, PdpError> {
        match self.refresh_until(force, deadline).await {
            Err(e) if e.kind() != PdpErrorKind::Timeout && Instant::now() >= deadline => Err(refresh_timed_out()),
            r => r,
        }
    }

    async fn refresh_until(&self, force: bool, deadline: Instant) -> Result<AltinnToken, PdpError> {
        let cached = lock(&self.maskinporten)
            .as_ref()
            .filter(|c| !force && c.fresh(SystemTime::now()))
            .map(|c| c.token.clone());
        let reused = cached.is_some();
        let mp = match cached {
            Some(t) => t,
            None => self.grant(deadline).await?,
        };
        match self.exchange(&mp, deadline).await {
            Ok(t) => Ok(t),
            Err(ExchangeError::Unauthorized) if reused => {
                tracing::debug!("token exchange refused a cached Maskinporten token; getting a new one");
                *lock(&self.maskinporten) = None;
                let t = self.grant(deadline).await?;
                self.exchange(&t, deadline).await.map_err(|e| match e {
                    ExchangeError::Unauthorized => PdpError::credentials("the token exchange refused the Maskinporten token"),
                    ExchangeError::Other(e) => e,
                })
            }
            Err(ExchangeError::Unauthorized) => Err(PdpError::credentials("the token exchange refused the Maskinporten token")),
            Err(ExchangeError::Other(e)) => Err(e),
        }
    }

    /// The Maskinporten JWT grant; the new token is cached.
    async fn grant(&self, deadline: Instant) -> Result<MaskinportenAccessToken, PdpError> {
        let granted = self.credentials.grant(&self.http, self.max_body, deadline).await;
        metrics::credentials(CredentialStep::Grant, granted.is_ok());
        let t = granted?;
        *lock(&self.maskinporten) = Some(Cached::new(t.clone(), SystemTime::now()));
        Ok(t)
    }

    /// The exchange of a Maskinporten token for an Altinn token.
    async fn exchange(&self, maskinporten: &MaskinportenAccessToken, deadline: Instant) -> Result<AltinnToken, ExchangeError> {
        let exchanged = exchange(&self.http, &self.exchange_url, maskinporten, self.max_body, deadline).await;
        metrics::credentials(CredentialStep::Exchange, exchanged.is_ok());
        exchanged
    }
}

impl AltinnTokenSource for MaskinportenTokenSource {
    fn token(&self, force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
        Box::pin(self.get(force_refresh))
    }
}

impl fmt::Debug for MaskinportenTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskinportenTokenSource")
            .field("credentials", &self.state.credentials)
            .field("exchange_url", &self.state.exchange_url.as_str())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_points() {
        let now = SystemTime::now();
        let c = Cached::new(AltinnToken::new("t", now + Duration::from_secs(1800)), now);
        assert_eq!(c.refresh_at, now + Duration::from_secs(1740));
        assert!(c.fresh(now));
        assert!(!c.fresh(now + Duration::from_secs(1740)));
        // Short-lived tokens are renewed at half their lifetime.
        let c = Cached::new(AltinnToken::new("t", now + Duration::from_secs(30)), now);
        assert_eq!(c.refresh_at, now + Duration::from_secs(15));
        // An already expired token is never fresh.
        let c = Cached::new(AltinnToken::new("t", now - Duration::from_secs(1)), now);
        assert!(!c.fresh(now));
    }
}
