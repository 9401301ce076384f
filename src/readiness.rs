//! [`Readiness`]: can this instance authorize requests? One handle over the Maskinporten key
//! store(s), the PDP client's credentials and the PDP's circuit breaker, for a readiness probe.
//!
//! | check | ready when | otherwise, for example |
//! |---|---|---|
//! | `maskinporten_keys` (or the name given) | the key store holds usable keys, or fetches them now | `Maskinporten signing keys could not be fetched: HTTP status 503` |
//! | `pdp` | one authenticated PDP call got a well-formed answer | `grant failed: Maskinporten refused the grant: invalid_client (…)` |
//! | `pdp_breaker` | the PDP client's circuit breaker is not open | `open: no PDP calls for 4 s after failures` |
//!
//! Results are kept for a while (default 10 s, [`ReadinessBuilder::keep_results_for`]), so
//! that frequent probes do not spend PDP calls. A check runs in a task of its own, its parts
//! at once; concurrent probes share it, a probe that gives up does not cancel it, and a probe
//! waits for it at most 5 s ([`ReadinessBuilder::wait_at_most`]) before it takes the last
//! report. No lock is held across I/O. The PDP check
//! is cheap while things work: one PDP call with the cached Altinn token. Only when it fails (and
//! on the first check) does it run the full [`AltinnPdp::check_credentials`] (discovery, a fresh
//! grant, a fresh exchange, one PDP call), so that the failing step is named.
//!
//! ```
//! # use altinn_systemuser::readiness::Readiness;
//! # async fn probe(layer: altinn_systemuser::maskinporten::MaskinportenLayer, pdp: altinn_systemuser::pdp::AltinnPdp) {
//! let readiness = Readiness::builder().key_store(layer.keys().clone()).pdp(pdp).build();
//! let report = readiness.check().await;
//! // 200 {"status":"ready","checks":{...}} or 503 {"status":"not_ready","checks":{...}}
//! let (status, body) = (report.status_code(), report.to_json());
//! # let _ = (status, body);
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::maskinporten::{KeyStore, MaskinportenLayer};
use crate::pdp::{AltinnPdp, BreakerState};

/// How long a result is kept unless told otherwise.
pub const DEFAULT_KEEP_RESULTS_FOR: Duration = Duration::from_secs(10);
/// How long a probe waits for a running check unless told otherwise.
pub const DEFAULT_WAIT_AT_MOST: Duration = Duration::from_secs(5);

/// Combined readiness of the key store(s) and the PDP client. Cheap to clone; clones share the
/// kept result.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

struct Inner {
    key_stores: Vec<(String, KeyStore)>,
    pdp: Option<AltinnPdp>,
    keep_for: Duration,
    wait_for: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last finished report and when it was made.
    last: Option<Kept>,
    /// The check running now, shared by every probe that comes while it runs.
    running: Option<Shared<BoxFuture<'static, ReadinessReport>>>,
}

struct Kept {
    at: Instant,
    report: ReadinessReport,
}

/// The longest a whole check may run (each step has its own, shorter bound).
const CHECK_DEADLINE: Duration = Duration::from_secs(60);

impl Readiness {
    /// A builder: add the key store(s) and the PDP client to check.
    pub fn builder() -> ReadinessBuilder {
        ReadinessBuilder {
            key_stores: Vec::new(),
            pdp: None,
            keep_for: DEFAULT_KEEP_RESULTS_FOR,
            wait_for: DEFAULT_WAIT_AT_MOST,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current readiness: the kept report while it is recent; otherwise the check that is
    /// running, or a new one. A check runs in a task of its own (probes that give up do not
    /// cancel it, and concurrent probes share it); a probe waits for it at most
    /// [`wait_at_most`](ReadinessBuilder::wait_at_most), then gets the last report, or
    /// `not_ready` with `check in progress` before the first one. No lock is held across I/O.
    pub async fn check(&self) -> ReadinessReport {
        let running = {
            let mut state = self.state();
            if let Some(kept) = &state.last
                && kept.at.elapsed() < self.inner.keep_for
            {
                return kept.report.clone();
            }
            match &state.running {
                Some(r) => r.clone(),
                None => {
                    let pdp_was_ok = state.last.as_ref().is_some_and(|k| k.report.passed("pdp"));
                    let this = self.clone();
                    let task = tokio::spawn(async move {
                        let report = tokio::time::timeout(CHECK_DEADLINE, this.run(pdp_was_ok))
                            .await
                            .unwrap_or_else(|_| ReadinessReport::failed("check", "the check did not finish within 60 s"));
                        let mut state = this.state();
                        state.last = Some(Kept {
                            at: Instant::now(),
                            report: report.clone(),
                        });
                        state.running = None;
                        report
                    });
                    let shared = async move { task.await.unwrap_or_else(|_| ReadinessReport::failed("check", "the check failed")) }
                        .boxed()
                        .shared();
                    state.running = Some(shared.clone());
                    shared
                }
            }
        };
        match tokio::time::timeout(self.inner.wait_for, running).await {
            Ok(report) => report,
            Err(_) => match &self.state().last {
                Some(kept) => kept.report.clone(),
                None => ReadinessReport::failed("check", "check in progress"),
            },
        }
    }

    /// Every check at once: the key stores and the PDP.
    async fn run(&self, pdp_was_ok: bool) -> ReadinessReport {
        let keys = join_all(self.inner.key_stores.iter().map(|(name, keys)| async move {
            let result = if keys.is_ready() {
                Ok(())
            } else {
                keys.ready().await.map_err(|e| e.to_string())
            };
            (name.clone(), result)
        }));
        let pdp = async {
            let Some(pdp) = &self.inner.pdp else { return Vec::new() };
            // The cheap check while the last one passed; the full one to name a failing step.
            let cheap = if pdp_was_ok { pdp.check_pdp().await.map(|_| ()).ok() } else { None };
            let result = match cheap {
                Some(()) => Ok(()),
                None => pdp.check_credentials().await.map_err(|e| e.to_string()),
            };
            let breaker = match pdp.breaker_state() {
                BreakerState::Open { retry_after } => Err(format!(
                    "open: no PDP calls for {} s after failures",
                    retry_after.as_secs_f64().ceil() as u64
                )),
                _ => Ok(()),
            };
            vec![("pdp".to_owned(), result), ("pdp_breaker".to_owned(), breaker)]
        };
        let (mut checks, pdp) = futures_util::future::join(keys, pdp).await;
        checks.extend(pdp);
        ReadinessReport { checks }
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("key_stores", &self.inner.key_stores.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("pdp", &self.inner.pdp.is_some())
            .field("keep_for", &self.inner.keep_for)
            .finish()
    }
}

/// Builds a [`Readiness`].
#[must_use]
pub struct ReadinessBuilder {
    key_stores: Vec<(String, KeyStore)>,
    pdp: Option<AltinnPdp>,
    keep_for: Duration,
    wait_for: Duration,
}

impl ReadinessBuilder {
    /// A key store to check, reported as `maskinporten_keys`.
    pub fn key_store(self, keys: KeyStore) -> Self {
        self.named_key_store("maskinporten_keys", keys)
    }

    /// Every key store of a Maskinporten layer: `maskinporten_keys`, and `altinn_keys` when it
    /// trusts Altinn-issued tokens.
    pub fn layer_keys(mut self, layer: &MaskinportenLayer) -> Self {
        for (issuer, keys) in layer.key_stores() {
            self = self.named_key_store(format!("{issuer}_keys"), keys.clone());
        }
        self
    }

    /// A key store to check, reported under `name` (for a second issuer, say).
    pub fn named_key_store(mut self, name: impl Into<String>, keys: KeyStore) -> Self {
        self.key_stores.push((name.into(), keys));
        self
    }

    /// The PDP client to check (reported as `pdp` and `pdp_breaker`).
    pub fn pdp(mut self, pdp: AltinnPdp) -> Self {
        self.pdp = Some(pdp);
        self
    }

    /// How long a result is kept before the next probe checks again (default 10 s; zero checks
    /// on every probe).
    pub fn keep_results_for(mut self, keep: Duration) -> Self {
        self.keep_for = keep;
        self
    }

    /// How long a probe waits for a running check before it takes the last report (default
    /// 5 s; keep it below the probe's own timeout).
    pub fn wait_at_most(mut self, wait: Duration) -> Self {
        self.wait_for = wait;
        self
    }

    /// The handle. Nothing is checked until the first [`Readiness::check`].
    pub fn build(self) -> Readiness {
        Readiness {
            inner: Arc::new(Inner {
                key_stores: self.key_stores,
                pdp: self.pdp,
                keep_for: self.keep_for,
                wait_for: self.wait_for,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

impl fmt::Debug for ReadinessBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadinessBuilder")
            .field("key_stores", &self.key_stores.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("pdp", &self.pdp.is_some())
            .field("keep_for", &self.keep_for)
            .finish()
    }
}

/// The outcome of one readiness check: each check's name and `Ok` or its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessReport {
    checks: Vec<(String, Result<(), String>)>,
}

impl ReadinessReport {
    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }

    /// Each check's name and `Ok(())` or the cause of its failure.
    pub fn checks(&self) -> impl Iterator<Item = (&str, Result<(), &str>)> {
        self.checks
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref().map(|_| ()).map_err(String::as_str)))
    }

    /// A report of one failed check.
    fn failed(name: &str, cause: &str) -> Self {
        ReadinessReport {
            checks: vec![(name.to_owned(), Err(cause.to_owned()))],
        }
    }

    fn passed(&self, name: &str) -> bool {
        self.checks.iter().any(|(n, r)| n == name && r.is_ok())
    }

    /// `200 OK` when ready, `503 Service Unavailable` otherwise.
    pub fn status_code(&self) -> StatusCode {
        if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    /// `{"status":"ready","checks":{"maskinporten_keys":"ok","pdp":"ok",...}}`, or
    /// `{"status":"not_ready","checks":{...}}` with each failing check's cause as its value.
    pub fn to_json(&self) -> Value {
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|(n, r)| (n.clone(), Value::String(r.as_ref().map_or_else(Clone::clone, |_| "ok".to_owned()))))
            .collect();
        json!({ "status": if self.is_ready() { "ready" } else { "not_ready" }, "checks": checks })
    }
}
