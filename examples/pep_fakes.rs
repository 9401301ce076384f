//! Everything altinn-pep needs to be tried on one machine, without Maskinporten or Altinn:
//! FakeMaskinporten, FakeAltinn, a small API that echoes what it received, and an
//! `altinn-pep.toml` made from the README's example (`deploy/altinn-pep.toml`) pointed at the
//! fakes.
//!
//! ```text
//! cargo run --example pep_fakes --features test-util,axum -- DIR
//! ```
//!
//! It writes `DIR/altinn-pep.toml` and the provider's key, and prints `KEY=VALUE` lines:
//! `config` (the file), `api` (the echo API's address), `token` (a system-user token valid for
//! one hour, permitted to read and write `kravogbetaling` for 310702641 and 923609016) and
//! `ALTINN_SUBSCRIPTION_KEY` (to set for altinn-pep). Then it serves until Ctrl-C.
//! `benches/pep.sh` uses it; the tests use its functions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use altinn_systemuser::pdp::AUTHORIZE_SCOPE;
use altinn_systemuser::test_util::{ClientRegistration, FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use axum::Router;
use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use uuid::Uuid;

/// The README's example configuration.
pub(crate) const CONFIG_TEMPLATE: &str = include_str!("../deploy/altinn-pep.toml");
/// The API's scope in the example configuration.
pub(crate) const SCOPE: &str = "skatteetaten:kravogbetalinger";
/// The resource in the example configuration.
pub(crate) const RESOURCE: &str = "kravogbetaling";
/// The subscription key FakeAltinn expects.
pub(crate) const SUBSCRIPTION_KEY: &str = "pep-fakes-subscription-key";
/// The provider's own Maskinporten client at FakeMaskinporten.
pub(crate) const PROVIDER_CLIENT_ID: &str = "pep-fakes-provider";
/// The organisation that owns the demo system user.
pub(crate) const OWNER_ORG: &str = "310702641";
/// A client organisation the demo system user may act for.
pub(crate) const CLIENT_ORG: &str = "923609016";
/// The demo system user.
pub(crate) const SYSTEM_USER: &str = "f950ddae-06c3-4b57-b940-702417a90df0";

/// `text` with each `from` replaced by its `to`; every `from` must occur exactly `count` times,
/// so that a changed template is noticed instead of silently left unreplaced.
pub(crate) fn substitute(text: &str, pairs: &[(&str, &str, usize)]) -> Result<String, String> {
    let mut out = text.to_owned();
    for (from, to, count) in pairs {
        let found = out.matches(from).count();
        if found != *count {
            return Err(format!(
                "expected {from:?} {count} time(s) in the template, found it {found} time(s)"
            ));
        }
        out = out.replace(from, to);
    }
    Ok(out)
}

/// FakeMaskinporten and FakeAltinn, with the provider's client registered and its key in a file.
pub(crate) struct PepFakes {
    pub(crate) mp: FakeMaskinporten,
    pub(crate) altinn: FakeAltinn,
    pub(crate) provider_key: TestKey,
    pub(crate) key_file: PathBuf,
}

impl PepFakes {
    /// Starts both fakes and writes the provider's key to `dir/provider-key.pem`.
    pub(crate) async fn start(dir: &Path) -> Result<PepFakes, String> {
        TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Altinn, KeyRole::Provider]);
        let mp = FakeMaskinporten::start().await;
        let altinn = FakeAltinn::start(&mp, SUBSCRIPTION_KEY).await;
        let provider_key = TestKey::for_role(KeyRole::Provider).with_kid("pep-fakes-provider-key");
        mp.register_client(ClientRegistration::new(
            PROVIDER_CLIENT_ID,
            &provider_key,
            "974760673",
            &[AUTHORIZE_SCOPE],
        ));
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let key_file = dir.join("provider-key.pem");
        std::fs::write(&key_file, provider_key.private_key_pkcs8_pem()).map_err(|e| format!("{}: {e}", key_file.display()))?;
        Ok(PepFakes {
            mp,
            altinn,
            provider_key,
            key_file,
        })
    }

    /// The README's example configuration pointed at the fakes, with both listeners on
    /// `127.0.0.1:0`. `ALTINN_SUBSCRIPTION_KEY` must be [`SUBSCRIPTION_KEY`] for altinn-pep.
    pub(crate) fn config(&self) -> Result<String, String> {
        self.config_from(CONFIG_TEMPLATE)
    }

    /// As [`config`](Self::config), from another template of the same shape.
    pub(crate) fn config_from(&self, template: &str) -> Result<String, String> {
        let issuer = self.mp.issuer();
        let platform = format!("platform_url = \"{}\"", self.altinn.platform_url());
        let key_file = self.key_file.display().to_string();
        substitute(
            template,
            &[
                ("decision = \"127.0.0.1:8081\"", "decision = \"127.0.0.1:0\"", 1),
                ("admin = \"127.0.0.1:9091\"", "admin = \"127.0.0.1:0\"", 1),
                ("https://maskinporten.no/", &issuer, 2),
                ("environment = \"production\"", &platform, 1),
                ("\"your-client-id\"", &format!("\"{PROVIDER_CLIENT_ID}\""), 1),
                ("\"your-key-id\"", &format!("\"{}\"", self.provider_key.kid()), 1),
                ("/run/secrets/maskinporten.pem", &key_file, 1),
            ],
        )
    }

    /// A system-user token with the API's scope, valid for `lifetime`.
    pub(crate) fn token(&self, system_user: Uuid, owner_org: &str, lifetime: Duration) -> String {
        self.mp
            .system_user_token(system_user, owner_org)
            .scope(SCOPE)
            .lifetime(lifetime)
            .sign()
    }
}

/// An API that answers every request with `200` and what it received as JSON:
/// `{"method": …, "uri": …, "headers": [[name, value], …]}` (names in lower case, in order).
pub(crate) fn echo_api() -> Router {
    Router::new().fallback(|req: Request<Body>| async move {
        let headers: Vec<Value> = req
            .headers()
            .iter()
            .map(|(n, v)| json!([n.as_str(), String::from_utf8_lossy(v.as_bytes())]))
            .collect();
        axum::Json(json!({
            "method": req.method().as_str(),
            "uri": req.uri().to_string(),
            "headers": headers,
        }))
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("pep-fakes-{}", std::process::id())));
    let fakes = PepFakes::start(&dir).await?;
    let system_user: Uuid = SYSTEM_USER.parse().map_err(|_| "bad uuid")?;
    for org in [OWNER_ORG, CLIENT_ORG] {
        for action in ["read", "write"] {
            fakes.altinn.permit(system_user, action, RESOURCE, org);
        }
    }
    let config = dir.join("altinn-pep.toml");
    std::fs::write(&config, fakes.config()?).map_err(|e| format!("{}: {e}", config.display()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let api = listener.local_addr().map_err(|e| e.to_string())?;
    let token = fakes.token(system_user, OWNER_ORG, Duration::from_secs(3600));
    println!("config={}", config.display());
    println!("api={api}");
    println!("token={token}");
    println!("ALTINN_SUBSCRIPTION_KEY={SUBSCRIPTION_KEY}");
    axum::serve(listener, echo_api())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}
