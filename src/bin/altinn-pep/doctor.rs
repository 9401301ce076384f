//! `altinn-pep doctor --config FILE`: the setup checked end to end, one line per step, each
//! failure with what to check. The steps: every trusted issuer's metadata and keys; the
//! provider's grant at Maskinporten, the exchange at Altinn and one authenticated PDP call (the
//! library's `AltinnPdp::check_credentials`); every route's resource in Altinn's resource
//! registry (`AltinnPdp::check_resource`); this machine's clock against the Maskinporten
//! issuer's `Date` header. Exit status 0 only when every step passes. Nothing secret is
//! printed: no token, key or subscription key.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use altinn_systemuser::maskinporten::TokenIssuer;
use altinn_systemuser::pdp::{AUTHORIZE_SCOPE, CheckError, CheckStep, ResourceId};
use futures_util::StreamExt;

use crate::config::{self, Built, PepConfig};

/// The longest any one step may take, whatever the library's own bounds are.
const STEP_BUDGET: Duration = Duration::from_secs(60);
/// The largest clock offset that passes: Maskinporten refuses a grant whose `iat` is more than
/// 10 s off its clock.
const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(10);
/// Resources asked about at once.
const RESOURCES_AT_ONCE: usize = 8;

/// One step's outcome, printed as one line.
enum Outcome {
    Ok(String),
    Fail(String),
    /// Not run, because an earlier step it needs failed.
    Skip(String),
}

struct Report {
    failed: usize,
    passed: usize,
}

impl Report {
    fn line(&mut self, step: &str, outcome: Outcome) {
        let (mark, text) = match outcome {
            Outcome::Ok(t) => {
                self.passed += 1;
                ("ok  ", t)
            }
            Outcome::Fail(t) => {
                self.failed += 1;
                ("FAIL", t)
            }
            Outcome::Skip(t) => {
                self.failed += 1;
                ("skip", t)
            }
        };
        crate::say(&format!("{mark} {step}: {text}"));
    }
}

/// Runs every step and prints its line; 0 only when all pass, 2 for a configuration that
/// cannot be used (as `check`).
pub(crate) async fn run(path: &Path) -> ExitCode {
    let (cfg, built) = match config::load(path).and_then(|c| c.build().map(|b| (c, b))) {
        Ok(both) => both,
        Err(e) => return crate::config_error(&e),
    };
    let mut report = Report { failed: 0, passed: 0 };
    // Independent steps run at once; their lines come in a fixed order.
    let (keys, credentials, resources, clock) = tokio::join!(
        issuer_keys(&built),
        bounded(built.pdp.check_credentials()),
        route_resources(&cfg, &built),
        clock_offset(built.maskinporten.keys().issuer()),
    );
    for (step, outcome) in keys {
        report.line(&step, outcome);
    }
    for (step, outcome) in credential_lines(&cfg, credentials) {
        report.line(step, outcome);
    }
    for (step, outcome) in resources {
        report.line(&step, outcome);
    }
    report.line("clock", clock);
    if report.failed == 0 {
        crate::say(&format!("all {} checks passed", report.passed));
        ExitCode::SUCCESS
    } else {
        crate::say(&format!(
            "{} of {} checks did not pass",
            report.failed,
            report.failed + report.passed
        ));
        ExitCode::FAILURE
    }
}

/// `fut`, or a failure of `step` when it takes longer than [`STEP_BUDGET`].
async fn bounded<T>(fut: impl Future<Output = Result<T, CheckError>>) -> Result<T, (Option<CheckStep>, String)> {
    match tokio::time::timeout(STEP_BUDGET, fut).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err((Some(e.step()), e.reason().to_owned())),
        Err(_) => Err((None, format!("no answer within {} s", STEP_BUDGET.as_secs()))),
    }
}

/// Step 1: every trusted issuer's metadata and keys.
async fn issuer_keys(built: &Built) -> Vec<(String, Outcome)> {
    let stores: Vec<_> = built.maskinporten.key_stores().collect();
    let checks = stores.iter().map(|(kind, keys)| async move {
        let step = format!("{kind} keys");
        let issuer = keys.issuer();
        let key = match kind {
            TokenIssuer::Altinn => "maskinporten.altinn_tokens.platform",
            _ => "maskinporten.issuer (and maskinporten.jwks_uri, if set)",
        };
        let outcome = match tokio::time::timeout(STEP_BUDGET, keys.refresh()).await {
            Ok(Ok(())) => {
                let n = keys.key_count();
                Outcome::Ok(format!("{issuer} ({n} key{})", if n == 1 { "" } else { "s" }))
            }
            Ok(Err(e)) => Outcome::Fail(format!(
                "{issuer}: {e} — check {key}, and that {issuer} is reachable from this machine"
            )),
            Err(_) => Outcome::Fail(format!(
                "{issuer}: no answer within {} s — check {key}, and that {issuer} is reachable from this machine",
                STEP_BUDGET.as_secs()
            )),
        };
        (step, outcome)
    });
    futures_util::future::join_all(checks).await
}

/// Steps 2–4 from one run of `check_credentials`: the steps before the failing one passed,
/// the ones after it could not run.
fn credential_lines(cfg: &PepConfig, result: Result<(), (Option<CheckStep>, String)>) -> Vec<(&'static str, Outcome)> {
    let creds = cfg.pdp.credentials.as_ref();
    let issuer = creds.and_then(|c| c.issuer.as_deref()).unwrap_or("the issuer");
    let client = creds.and_then(|c| c.client_id.as_deref()).unwrap_or("?");
    let steps = [
        (
            CheckStep::Discovery,
            "maskinporten metadata",
            format!("{issuer} names the configured issuer and token endpoint"),
        ),
        (
            CheckStep::Grant,
            "grant",
            format!("Maskinporten accepted client {client}'s grant for {AUTHORIZE_SCOPE}"),
        ),
        (
            CheckStep::Exchange,
            "exchange",
            "Altinn exchanged the Maskinporten token for an Altinn token".to_owned(),
        ),
        (
            CheckStep::Pdp,
            "pdp call",
            "the PDP answered (subscription key and token accepted)".to_owned(),
        ),
    ];
    // A failure of no listed step (a timeout of the whole check) is put on the first step.
    let failed_at = result.as_ref().err().map(|(step, _)| *step);
    let failed_index = failed_at.map(|f| steps.iter().position(|(s, _, _)| Some(*s) == f).unwrap_or(0));
    let failed_at = failed_index.map(|i| steps[i].0);
    steps
        .into_iter()
        .enumerate()
        .map(|(i, (step, name, ok))| {
            let outcome = match (failed_index, &result) {
                (Some(f), Err((_, reason))) if i == f => Outcome::Fail(format!("{reason} — {}", hint(step, reason))),
                (Some(f), _) if i > f => Outcome::Skip(format!("not tried: needs {}", steps_name(failed_at))),
                _ => Outcome::Ok(ok),
            };
            (name, outcome)
        })
        .collect()
}

fn steps_name(step: Option<CheckStep>) -> &'static str {
    match step {
        Some(CheckStep::Discovery) => "Maskinporten's metadata",
        Some(CheckStep::Grant) => "the grant",
        Some(CheckStep::Exchange) => "the exchange",
        _ => "the step before",
    }
}

/// What to check when `step` fails with `reason` (the library's words, which name the OAuth
/// error or the HTTP status).
fn hint(step: CheckStep, reason: &str) -> &'static str {
    match step {
        CheckStep::Discovery => "check pdp.credentials.issuer (and token_endpoint, if set)",
        CheckStep::Grant if reason.contains("invalid_client") => {
            "check pdp.credentials.client_id: the client id of your own Maskinporten client"
        }
        CheckStep::Grant if reason.contains("invalid_grant") => {
            "check pdp.credentials.key_id and private_key_pem (or private_key_jwk): the key registered for the client, and this machine's clock"
        }
        CheckStep::Grant if reason.contains("invalid_scope") => {
            "ask Digdir to grant your client altinn:authorization/authorize; check pdp.credentials.scope"
        }
        CheckStep::Grant => "check [pdp.credentials] and that Maskinporten is reachable from this machine",
        CheckStep::Exchange => {
            "check that pdp.credentials.issuer and pdp.environment (or platform_url) pair: test Maskinporten with TT02, production with production"
        }
        CheckStep::Pdp if reason.contains("401") => {
            "wrong subscription key: check pdp.subscription_key (the API Management subscription key for the PDP)"
        }
        CheckStep::Pdp if reason.contains("403") => {
            "missing scope: your Maskinporten client needs altinn:authorization/authorize (ask Digdir); check pdp.credentials.scope"
        }
        CheckStep::Pdp => "check pdp.environment (or platform_url) and that the PDP is reachable from this machine",
        _ => "check [pdp]",
    }
}

/// Step 5: each route's resource in the resource registry, once per resource.
async fn route_resources(cfg: &PepConfig, built: &Built) -> Vec<(String, Outcome)> {
    let mut by_resource: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, route) in cfg.routes.iter().enumerate() {
        by_resource.entry(route.resource.as_str()).or_default().push(i);
    }
    let pdp = &built.pdp;
    futures_util::stream::iter(by_resource)
        .map(|(resource, routes)| async move {
            let keys: Vec<String> = routes.iter().map(|i| format!("routes[{i}].resource")).collect();
            let step = format!("resource {resource}");
            let outcome = match ResourceId::new(resource) {
                // `build` checked every resource id already.
                Err(_) => Outcome::Fail(format!("not a resource id — check {}", keys.join(", "))),
                Ok(id) => match bounded(pdp.check_resource(&id)).await {
                    Ok(()) => Outcome::Ok(format!("found in the resource registry ({})", keys.join(", "))),
                    Err((_, reason)) if reason.contains("(404)") => Outcome::Fail(format!(
                        "unknown resource {resource} in {}: {reason} — check the id, or create the resource in Altinn's resource administration",
                        keys.join(", ")
                    )),
                    Err((_, reason)) => Outcome::Fail(format!(
                        "{reason} — check pdp.environment (or platform_url); used by {}",
                        keys.join(", ")
                    )),
                },
            };
            (step, outcome)
        })
        .buffered(RESOURCES_AT_ONCE)
        .collect()
        .await
}

/// Step 6: this machine's clock against the `Date` header of the Maskinporten issuer's
/// metadata answer (any status: only the header is read).
async fn clock_offset(issuer: &str) -> Outcome {
    let url = format!("{issuer}.well-known/oauth-authorization-server");
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(_) => return Outcome::Fail("no HTTP client could be built".to_owned()),
    };
    let before = SystemTime::now();
    let res = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_timeout() { "timed out" } else { "could not connect" };
            return Outcome::Fail(format!("{url}: {why} — check maskinporten.issuer"));
        }
    };
    let after = SystemTime::now();
    let Some(date) = res
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return Outcome::Fail(format!("{url} sent no readable Date header: the clock cannot be compared"));
    };
    // The Date header has whole seconds: compare its middle with the middle of the exchange.
    let local = before + after.duration_since(before).unwrap_or_default() / 2;
    let theirs = date + Duration::from_millis(500);
    let (offset, ahead) = match theirs.duration_since(local) {
        Ok(d) => (d, false),
        Err(e) => (e.duration(), true),
    };
    let secs = offset.as_secs_f64().round() as u64;
    let said = if secs == 0 {
        format!("in step with {issuer} (Date header)")
    } else {
        let way = if ahead { "ahead of" } else { "behind" };
        format!("{secs} s {way} {issuer} (Date header)")
    };
    if offset > MAX_CLOCK_OFFSET {
        Outcome::Fail(format!(
            "this machine's clock is {said}: more than {} s — Maskinporten refuses grants and tokens look expired or not yet valid; synchronise the clock (NTP)",
            MAX_CLOCK_OFFSET.as_secs()
        ))
    } else {
        Outcome::Ok(format!("this machine's clock is {said}"))
    }
}
