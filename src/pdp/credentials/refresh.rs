//! [`MaskinportenTokenSource`]: the Maskinporten and Altinn tokens, cached until shortly before
//! they expire and refreshed once for all callers.
//!
//! A fresh Altinn token is read without a lock. A refresh takes the refresh mutex; callers that
//! waited for someone else's refresh share its outcome, good or bad, instead of trying again at
//! once. A cached Maskinporten token that the exchange refuses is replaced once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use super::exchange::{ExchangeError, exchange};
use super::grant::MaskinportenAccessToken;
use super::{AltinnToken, AltinnTokenSource, MaskinportenCredentials};
use crate::pdp::PdpError;

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

/// The state only the refreshing caller touches.
#[derive(Default)]
struct RefreshState {
    maskinporten: Option<Cached<MaskinportenAccessToken>>,
    /// The error of the last attempt, handed to the callers that waited for it.
    last_error: Option<PdpError>,
}

/// [`MaskinportenCredentials`] bound to an HTTP client and an Altinn platform.
pub(crate) struct MaskinportenTokenSource {
    credentials: MaskinportenCredentials,
    http: reqwest::Client,
    exchange_url: url::Url,
    max_body: usize,
    altinn: ArcSwapOption<Cached<AltinnToken>>,
    /// Completed refresh attempts, successful or not.
    attempts: AtomicU64,
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl MaskinportenTokenSource {
    pub(crate) fn new(credentials: MaskinportenCredentials, http: reqwest::Client, exchange_url: url::Url, max_body: usize) -> Self {
        MaskinportenTokenSource {
            credentials,
            http,
            exchange_url,
            max_body,
            altinn: ArcSwapOption::empty(),
            attempts: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    async fn get(&self, force_refresh: bool) -> Result<AltinnToken, PdpError> {
        if !force_refresh
            && let Some(c) = self.altinn.load().as_ref()
            && c.fresh(SystemTime::now())
        {
            return Ok(c.token.clone());
        }
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            // Someone refreshed while we waited: share its outcome, good or bad, rather than
            // trying again at once.
            if let Some(e) = &state.last_error {
                return Err(e.clone());
            }
            if let Some(c) = self.altinn.load().as_ref() {
                return Ok(c.token.clone());
            }
        } else if !force_refresh
            && let Some(c) = self.altinn.load().as_ref()
            && c.fresh(SystemTime::now())
        {
            return Ok(c.token.clone());
        }
        let outcome = self.refresh_locked(&mut state, force_refresh).await;
        match &outcome {
            Ok(token) => {
                self.altinn.store(Some(Arc::new(Cached::new(token.clone(), SystemTime::now()))));
                state.last_error = None;
            }
            Err(e) => state.last_error = Some(e.clone()),
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    async fn refresh_locked(&self, state: &mut RefreshState, force: bool) -> Result<AltinnToken, PdpError> {
        let cached = state
            .maskinporten
            .as_ref()
            .filter(|c| !force && c.fresh(SystemTime::now()))
            .map(|c| c.token.clone());
        let reused = cached.is_some();
        let mp = match cached {
            Some(t) => t,
            None => {
                let t = self.grant().await?;
                state.maskinporten = Some(Cached::new(t.clone(), SystemTime::now()));
                t
            }
        };
        match self.exchange(&mp).await {
            Ok(t) => Ok(t),
            Err(ExchangeError::Unauthorized) if reused => {
                tracing::debug!("token exchange refused a cached Maskinporten token; getting a new one");
                state.maskinporten = None;
                let t = self.grant().await?;
                state.maskinporten = Some(Cached::new(t.clone(), SystemTime::now()));
                self.exchange(&t).await.map_err(|e| match e {
                    ExchangeError::Unauthorized => PdpError::credentials("the token exchange refused the Maskinporten token"),
                    ExchangeError::Other(e) => e,
                })
            }
            Err(ExchangeError::Unauthorized) => Err(PdpError::credentials("the token exchange refused the Maskinporten token")),
            Err(ExchangeError::Other(e)) => Err(e),
        }
    }

    /// The Maskinporten JWT grant.
    async fn grant(&self) -> Result<MaskinportenAccessToken, PdpError> {
        self.credentials.grant(&self.http, self.max_body).await
    }

    /// The exchange of a Maskinporten token for an Altinn token.
    async fn exchange(&self, maskinporten: &MaskinportenAccessToken) -> Result<AltinnToken, ExchangeError> {
        exchange(&self.http, &self.exchange_url, maskinporten, self.max_body).await
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
            .field("credentials", &self.credentials)
            .field("exchange_url", &self.exchange_url.as_str())
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
