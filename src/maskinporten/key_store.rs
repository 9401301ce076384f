//! [`KeyStore`]: where keys are fetched. RFC 8414 discovery, the JWKS cache and its refresh.
//!
//! - Reads are lock-free: every request loads an [`ArcSwapOption`] snapshot of the key set.
//! - One refresh at a time, and no lock across network I/O: a refresh (discovery if needed, then
//!   the JWKS) is one run of [`SingleFlight`], in a task of its own that everyone who needs it
//!   joins. It has a deadline of its own, two fetch timeouts from its start (each fetch has
//!   one); a caller that gives up does not cancel it, and when it is abandoned at its deadline
//!   (counted as a failed fetch) the next caller starts afresh.
//! - An unknown `kid` causes at most one refetch per `unknown_kid_interval` (default 30 s).
//!   The `kid` never goes into a URL.
//! - Keys are refreshed ahead of expiry (TTL from `Cache-Control: max-age`, clamped), triggered
//!   by requests without delaying them. A failed fetch never wipes good keys; the last good set
//!   keeps serving for `max_stale` (default 24 h) with exponential backoff between attempts.
//! - Fetches go through [`crate::outbound`]: bounded in time and size.
//! - Which keys of a fetched JWKS are usable is decided in `jwk.rs`; a set without any usable
//!   key counts as a failed fetch.

use super::issuer::TokenIssuer;
use super::jwk::{KeyMap, VerifyingKey, parse_jwks};
use crate::outbound::{self, BodyError};
use crate::single_flight::{Flight, SingleFlight};
use crate::telemetry::metrics;
use arc_swap::ArcSwapOption;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Key store tuning. All have safe defaults.
#[derive(Clone, Debug)]
pub(crate) struct KeyStoreConfig {
    pub default_ttl: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    pub max_stale: Duration,
    pub unknown_kid_interval: Duration,
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    pub max_body_bytes: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for KeyStoreConfig {
    fn default() -> Self {
        KeyStoreConfig {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(24 * 3600),
            unknown_kid_interval: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            fetch_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Where the JWKS comes from.
#[derive(Clone, Debug)]
pub(crate) enum KeySource {
    /// RFC 8414 metadata at this URL; its `issuer` must equal the configured issuer.
    Discovery(url::Url),
    /// A configured `jwks_uri`.
    Jwks(url::Url),
}

/// A fetched key set.
pub(crate) struct KeySet {
    keys: KeyMap,
    refresh_at: Instant,
    usable_until: Instant,
}

impl KeySet {
    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }
}

/// Why no key could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The key set is loaded and does not hold this `kid`.
    UnknownKid,
    /// No usable key set; retry after this long.
    Unavailable(Duration),
}

/// Why a fetch failed. Internal: never shown to clients, logged at warn level.
#[derive(Debug, Clone)]
pub(crate) enum FetchError {
    Http(&'static str),
    Status(u16),
    TooLarge,
    Json(String),
    Metadata(&'static str),
    NoUsableKeys,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Http(e) => write!(f, "request failed: {e}"),
            FetchError::Status(s) => write!(f, "HTTP status {s}"),
            FetchError::TooLarge => f.write_str("response larger than the cap"),
            FetchError::Json(e) => write!(f, "invalid JSON: {e}"),
            FetchError::Metadata(e) => write!(f, "invalid metadata: {e}"),
            FetchError::NoUsableKeys => f.write_str("no usable keys in the JWKS"),
        }
    }
}

#[derive(Default)]
struct RefreshState {
    /// Earliest time the next fetch may start (backoff after failures).
    next_allowed: Option<Instant>,
    failures: u32,
    last_kid_refresh: Option<Instant>,
}

struct Inner {
    issuer: String,
    /// Whose keys these are: the `issuer` label of the metrics.
    kind: TokenIssuer,
    source: KeySource,
    client: reqwest::Client,
    config: KeyStoreConfig,
    snapshot: ArcSwapOption<KeySet>,
    discovered_jwks: ArcSwapOption<url::Url>,
    state: Mutex<RefreshState>,
    /// The refresh in flight, if any.
    refresh: SingleFlight<(), (), FetchError>,
}

/// Maskinporten's signing keys, cached and refreshed.
///
/// Cheap to clone; clones share the cache. Get it from
/// [`MaskinportenLayer::keys`](super::MaskinportenLayer::keys) to wait for keys at startup or to
/// answer a readiness probe.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("issuer", &self.inner.issuer)
            .field("source", &self.inner.source)
            .field("loaded", &self.is_ready())
            .finish()
    }
}

impl KeyStore {
    pub(crate) fn new(issuer: String, kind: TokenIssuer, source: KeySource, client: reqwest::Client, config: KeyStoreConfig) -> Self {
        // Discovery and the JWKS, each bounded by `fetch_timeout`.
        let refresh_budget = config.fetch_timeout.saturating_mul(2);
        KeyStore {
            inner: Arc::new(Inner {
                issuer,
                kind,
                source,
                client,
                config,
                snapshot: ArcSwapOption::empty(),
                discovered_jwks: ArcSwapOption::empty(),
                state: Mutex::new(RefreshState::default()),
                refresh: SingleFlight::new(refresh_budget, || FetchError::Http("timed out")),
            }),
        }
    }

    /// The issuer whose keys these are.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Which issuer: Maskinporten, or Altinn's platform.
    pub fn token_issuer(&self) -> TokenIssuer {
        self.inner.kind
    }

    /// Whether a usable key set is loaded (for readiness probes).
    pub fn is_ready(&self) -> bool {
        self.inner.snapshot.load().as_ref().is_some_and(|s| Instant::now() < s.usable_until)
    }

    /// How many usable keys the loaded key set holds: 0 before the first fetch, and once the
    /// set is too old to use.
    pub fn key_count(&self) -> usize {
        self.inner
            .snapshot
            .load()
            .as_ref()
            .filter(|s| Instant::now() < s.usable_until)
            .map_or(0, |s| s.keys.len())
    }

    /// Fetches keys now if none are loaded, and waits until they are (or the fetch failed).
    ///
    /// Call it at startup to fail fast on a wrong issuer, or in a readiness probe.
    /// Errors carry a short description of what went wrong (no secrets).
    pub async fn ready(&self) -> Result<(), KeyStoreError> {
        if self.is_ready() {
            return Ok(());
        }
        self.refresh_shared().await.map_err(|e| KeyStoreError(e.to_string()))
    }

    /// Fetches the key set now (sharing any fetch already in flight), ignoring backoff.
    pub async fn refresh(&self) -> Result<(), KeyStoreError> {
        self.refresh_shared().await.map_err(|e| KeyStoreError(e.to_string()))
    }

    /// The key for `kid` if the loaded snapshot has it; `None` means the async path is needed.
    ///
    /// Also starts a background refresh when the snapshot is due for one.
    pub(crate) fn get_cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let snap = self.inner.snapshot.load();
        let set = snap.as_ref()?;
        let now = Instant::now();
        if now >= set.usable_until {
            return None;
        }
        if now >= set.refresh_at {
            self.refresh_in_background(now);
        }
        set.get(kid).cloned()
    }

    /// Whether the key numbered `id` ([`VerifyingKey::id`]) is still published, in a key set
    /// still usable (used by the token cache). A key set holds a handful of keys: a scan.
    pub(crate) fn still_published(&self, id: u64) -> bool {
        let snap = self.inner.snapshot.load();
        snap.as_ref()
            .is_some_and(|s| Instant::now() < s.usable_until && s.keys.values().any(|k| k.id() == id))
    }

    /// The key for `kid`, fetching the key set if needed (bounded, rate-limited, shared).
    pub(crate) async fn get(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        if let Some(k) = self.get_cached(kid) {
            return Ok(k);
        }
        let now = Instant::now();
        let loaded = self.is_ready();
        if loaded {
            // Unknown kid with a usable set: refetch at most once per interval.
            let allowed = {
                let mut st = self.lock_state();
                let ok = st
                    .last_kid_refresh
                    .is_none_or(|t| now.duration_since(t) >= self.inner.config.unknown_kid_interval);
                if ok {
                    st.last_kid_refresh = Some(now);
                }
                ok
            };
            if !allowed {
                return Err(KeyError::UnknownKid);
            }
            let _ = self.refresh_shared().await;
            return self.lookup(kid).ok_or(KeyError::UnknownKid);
        }
        // No usable keys at all: fetch (or join the fetch in flight) unless backing off.
        match self.refresh_flight(Some(now)).await {
            Ok(()) => self.lookup(kid).ok_or(KeyError::UnknownKid),
            Err(_) => Err(KeyError::Unavailable(
                self.backoff_remaining(Instant::now()).unwrap_or(self.inner.config.min_backoff),
            )),
        }
    }

    fn lookup(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let snap = self.inner.snapshot.load();
        snap.as_ref()
            .filter(|s| Instant::now() < s.usable_until)
            .and_then(|s| s.get(kid).cloned())
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        // The state holds no invariants a panic could break; recover from poisoning.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn backoff_remaining(&self, now: Instant) -> Option<Duration> {
        let st = self.lock_state();
        st.next_allowed.filter(|t| *t > now).map(|t| t - now)
    }

    fn refresh_in_background(&self, now: Instant) {
        // The run goes on without anyone waiting for it.
        drop(self.refresh_flight(Some(now)));
    }

    /// Joins the fetch in flight or starts one, ignoring backoff.
    fn refresh_shared(&self) -> Flight<(), FetchError> {
        self.refresh_flight(None)
    }

    /// Joins the fetch in flight; otherwise starts one, unless backing off at `now` (if given).
    fn refresh_flight(&self, backoff_at: Option<Instant>) -> Flight<(), FetchError> {
        let backing_off = || {
            let wait = backoff_at.and_then(|now| self.backoff_remaining(now));
            wait.map(|_| Err(FetchError::Http("backing off after a failed fetch")))
        };
        let (fetcher, settler) = (self.clone(), self.clone());
        self.inner.refresh.run_unless(
            (),
            backing_off,
            move |_deadline| async move { fetcher.fetch_and_install().await },
            move |result| settler.settle(result),
        )
    }

    /// Records how a fetch ended (backoff after a failure); runs before its slot is freed, so
    /// that the next caller sees the backoff.
    fn settle(&self, result: &Result<(), FetchError>) {
        metrics::jwks_refresh(self.inner.kind.as_str(), result.is_ok());
        let mut st = self.lock_state();
        match result {
            Ok(()) => {
                st.failures = 0;
                st.next_allowed = None;
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                let cfg = &self.inner.config;
                let backoff = cfg
                    .min_backoff
                    .saturating_mul(1u32 << st.failures.min(16).saturating_sub(1))
                    .min(cfg.max_backoff);
                st.next_allowed = Some(Instant::now() + backoff);
                tracing::warn!(issuer = %self.inner.issuer, error = %e, retry_in = ?backoff, "fetching Maskinporten signing keys failed");
            }
        }
    }

    async fn fetch_and_install(&self) -> Result<(), FetchError> {
        let jwks_uri = self.jwks_uri().await?;
        let (body, max_age) = self.get_bounded(&jwks_uri).await.inspect_err(|_| {
            // Re-discover next time in case the metadata moved the JWKS.
            if matches!(self.inner.source, KeySource::Discovery(_)) {
                self.inner.discovered_jwks.store(None);
            }
        })?;
        let (keys, skipped) = parse_jwks(&body).map_err(|e| FetchError::Json(e.to_string()))?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKeys);
        }
        if skipped > 0 {
            tracing::debug!(skipped, "skipped unusable keys in the JWKS");
        }
        let cfg = &self.inner.config;
        let ttl = max_age.unwrap_or(cfg.default_ttl).clamp(cfg.min_ttl, cfg.max_ttl);
        let now = Instant::now();
        let set = KeySet {
            keys,
            refresh_at: now + ttl.mul_f32(0.9),
            usable_until: now + ttl + cfg.max_stale,
        };
        self.inner.snapshot.store(Some(Arc::new(set)));
        Ok(())
    }

    async fn jwks_uri(&self) -> Result<url::Url, FetchError> {
        match &self.inner.source {
            KeySource::Jwks(u) => Ok(u.clone()),
            KeySource::Discovery(meta) => {
                if let Some(u) = self.inner.discovered_jwks.load_full() {
                    return Ok((*u).clone());
                }
                let (body, _) = self.get_bounded(meta).await?;
                let uri = jwks_uri_from_metadata(&body, &self.inner.issuer)?;
                self.inner.discovered_jwks.store(Some(Arc::new(uri.clone())));
                Ok(uri)
            }
        }
    }

    /// GET with connect and total timeouts and a body cap. Returns the body and `max-age`.
    async fn get_bounded(&self, url: &url::Url) -> Result<(bytes::Bytes, Option<Duration>), FetchError> {
        let cfg = &self.inner.config;
        let work = async {
            let res = self
                .inner
                .client
                .get(url.clone())
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| FetchError::Http(outbound::error_label(&e)))?;
            if !res.status().is_success() {
                return Err(FetchError::Status(res.status().as_u16()));
            }
            let max_age = res
                .headers()
                .get(http::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(max_age);
            let body = outbound::read_capped(res, cfg.max_body_bytes).await.map_err(|e| match e {
                BodyError::TooLarge => FetchError::TooLarge,
                BodyError::Read(label) => FetchError::Http(label),
            })?;
            Ok((body, max_age))
        };
        tokio::time::timeout(cfg.fetch_timeout, work)
            .await
            .map_err(|_| FetchError::Http("timed out"))?
    }
}

/// An error from [`KeyStore::ready`] or [`KeyStore::refresh`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("Maskinporten signing keys could not be fetched: {0}")]
pub struct KeyStoreError(String);

#[derive(serde::Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: Option<String>,
}

/// The `jwks_uri` of an RFC 8414 metadata document, which must name `issuer` exactly. A member
/// repeated (two `issuer`s, two `jwks_uri`s) is refused: no reading of it is safe.
pub(crate) fn jwks_uri_from_metadata(body: &[u8], issuer: &str) -> Result<url::Url, FetchError> {
    let doc: Metadata = crate::strict_json::from_slice_unique(body).map_err(|e| FetchError::Json(e.to_string()))?;
    if doc.issuer != issuer {
        return Err(FetchError::Metadata("issuer does not match the configured issuer"));
    }
    let uri = doc.jwks_uri.ok_or(FetchError::Metadata("no jwks_uri"))?;
    crate::error::check_url("jwks_uri", &uri).map_err(|_| FetchError::Metadata("jwks_uri is not https"))
}

/// The `max-age` of a `Cache-Control` value; zero for `no-store` or `no-cache`.
pub(crate) fn max_age(cc: &str) -> Option<Duration> {
    let mut out = None;
    for d in cc.split(',') {
        let d = d.trim();
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if let Some((k, v)) = d.split_once('=')
            && k.trim().eq_ignore_ascii_case("max-age")
        {
            out = v.trim().trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(max_age("public, max-age=3600"), Some(Duration::from_secs(3600)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
