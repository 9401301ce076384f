//! "Krav og betalinger": a small tax-claims API protected by both layers.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no environment variables it starts an embedded FakeMaskinporten and FakeAltinn on
//! loopback, with one system user that may `read` claims for its own organisation and for one
//! client organisation, and prints ready-to-paste `curl` commands. Point it at the real
//! Maskinporten and Altinn (or at other fakes) with the variables below; see README.md.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `QUICKSTART_ADDR` | listen address | `127.0.0.1:3000` |
//! | `MASKINPORTEN_ISSUER` | issuer, with trailing `/` | embedded fake |
//! | `MASKINPORTEN_SCOPE` | scope the API requires | `skatteetaten:kravogbetalinger` |
//! | `ALTINN_PLATFORM_URL` | Altinn platform base URL | embedded fake |
//! | `ALTINN_SUBSCRIPTION_KEY` | APIM subscription key for the PDP | - |
//! | `ALTINN_RESOURCE` | resource id asked about | `kravogbetaling` |
//! | `PDP_CLIENT_ID` | the provider's own Maskinporten client id | - |
//! | `PDP_KEY_ID` | `kid` of the provider's key | - |
//! | `PDP_PRIVATE_KEY_FILE` | the provider's RSA private key, PEM (PKCS#8 or PKCS#1) | - |
//! | `ACCEPT_ALTINN_TOKENS` | also trust tokens issued by `{ALTINN_PLATFORM_URL}/authentication/api/v1/openid/` (`true`/`false`) | `false` with `ALTINN_PLATFORM_URL`, `true` in the embedded demo |
//!
//! Operations: `GET /metrics` is the Prometheus text of the crate's metrics (no token; an
//! HTTP-only route outside the layers), and the audit trail is logged with every request's
//! span (`telemetry::make_span`): `RUST_LOG=altinn_systemuser::audit=info` shows it alone.

use altinn_systemuser::maskinporten::{AltinnTokens, MaskinportenLayer};
use altinn_systemuser::pdp::{AltinnPdp, MaskinportenCredentials};
use altinn_systemuser::readiness::Readiness;
use altinn_systemuser::reject::RefusalForm;
use altinn_systemuser::systemuser::{SystemUser, SystemUserLayer};
use altinn_systemuser::telemetry;
use altinn_systemuser::telemetry::metrics::{PDP_REQUEST_DURATION_BUCKETS, PDP_REQUEST_DURATION_SECONDS};
use altinn_systemuser::test_util::{ClientRegistration, FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

/// The system user of the embedded demo.
pub(crate) const DEMO_SYSTEM_USER: &str = "f950ddae-06c3-4b57-b940-702417a90df0";
/// The organisation that owns it (SmartCloud's customer).
pub(crate) const DEMO_OWNER_ORG: &str = "310702641";
/// A client organisation the system user may also read claims for.
pub(crate) const DEMO_CLIENT_ORG: &str = "923609016";
/// An organisation it has no rights for.
pub(crate) const DEMO_OTHER_ORG: &str = "974760673";

/// Configuration, read from the environment variables in the table above.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) addr: String,
    pub(crate) issuer: Option<String>,
    pub(crate) scope: String,
    pub(crate) platform_url: Option<String>,
    pub(crate) subscription_key: Option<String>,
    pub(crate) resource: String,
    pub(crate) pdp_client_id: Option<String>,
    pub(crate) pdp_key_id: Option<String>,
    pub(crate) pdp_key_file: Option<String>,
    /// `ACCEPT_ALTINN_TOKENS` as given (checked in `build`).
    pub(crate) accept_altinn_tokens: Option<String>,
}

impl Settings {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Settings {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (tests pass their own).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Settings {
            addr: get("QUICKSTART_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into()),
            issuer: get("MASKINPORTEN_ISSUER"),
            scope: get("MASKINPORTEN_SCOPE").unwrap_or_else(|| "skatteetaten:kravogbetalinger".into()),
            platform_url: get("ALTINN_PLATFORM_URL"),
            subscription_key: get("ALTINN_SUBSCRIPTION_KEY"),
            resource: get("ALTINN_RESOURCE").unwrap_or_else(|| "kravogbetaling".into()),
            pdp_client_id: get("PDP_CLIENT_ID"),
            pdp_key_id: get("PDP_KEY_ID"),
            pdp_key_file: get("PDP_PRIVATE_KEY_FILE"),
            accept_altinn_tokens: get("ACCEPT_ALTINN_TOKENS"),
        }
    }
}

/// Tokens of the embedded demo, minted at startup with a one-hour lifetime.
#[derive(Debug, Clone)]
pub(crate) struct DemoTokens {
    /// A system-user token with the API's scope.
    pub(crate) system_user: String,
    /// The same token with its signature broken.
    pub(crate) broken: String,
    /// An Altinn-issued token for the same system user (as the exchange gives it), 30 minutes.
    pub(crate) altinn: String,
}

/// The embedded fakes, kept alive while the demo runs.
pub(crate) struct Embedded {
    pub(crate) maskinporten: FakeMaskinporten,
    pub(crate) altinn: FakeAltinn,
    pub(crate) tokens: DemoTokens,
}

/// The application: the router, and the embedded fakes when there are any.
pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) maskinporten: MaskinportenLayer,
    pub(crate) embedded: Option<Embedded>,
}

/// Builds the app from settings; starts embedded fakes where nothing is configured.
pub(crate) async fn build(settings: &Settings) -> Result<App, String> {
    if settings.issuer.is_some() != settings.platform_url.is_some() {
        return Err("set both MASKINPORTEN_ISSUER and ALTINN_PLATFORM_URL (real or fake services), or neither (embedded demo)".into());
    }
    let accept_altinn = match settings.accept_altinn_tokens.as_deref() {
        None => settings.platform_url.is_none(),
        Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(format!("ACCEPT_ALTINN_TOKENS is true or false, not {other:?}")),
    };
    let (issuer, pdp, embedded) = match (&settings.issuer, &settings.platform_url) {
        (Some(issuer), Some(platform)) => {
            let missing: Vec<&str> = [
                ("PDP_CLIENT_ID", &settings.pdp_client_id),
                ("PDP_KEY_ID", &settings.pdp_key_id),
                ("PDP_PRIVATE_KEY_FILE", &settings.pdp_key_file),
            ]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "the PDP needs the provider's own Maskinporten client: set {}",
                    missing.join(", ")
                ));
            }
            let key_file = settings.pdp_key_file.as_deref().unwrap_or_default();
            let pem = std::fs::read(key_file).map_err(|e| format!("PDP_PRIVATE_KEY_FILE {key_file}: {e}"))?;
            let token_endpoint = discover_token_endpoint(issuer).await;
            let credentials = MaskinportenCredentials::builder()
                .issuer(issuer.as_str())
                .token_endpoint(token_endpoint.as_str())
                .client_id(settings.pdp_client_id.as_deref().unwrap_or_default())
                .key_id(settings.pdp_key_id.as_deref().unwrap_or_default())
                .private_key_pem(&pem)
                .build()
                .map_err(|e| e.to_string())?;
            let mut pdp = AltinnPdp::builder().platform_url(platform.as_str()).credentials(credentials);
            match &settings.subscription_key {
                Some(k) => pdp = pdp.subscription_key(k.as_str()),
                None => tracing::warn!("ALTINN_SUBSCRIPTION_KEY is not set; the real Altinn PDP will refuse the calls"),
            }
            (issuer.clone(), pdp.build().map_err(|e| e.to_string())?, None)
        }
        _ => {
            let embedded = start_embedded(settings).await?;
            let provider_key = TestKey::for_role(KeyRole::Provider).with_kid("quickstart-provider");
            embedded.maskinporten.register_client(ClientRegistration::new(
                "quickstart-provider",
                &provider_key,
                "974760673",
                &["altinn:authorization/authorize"],
            ));
            let credentials = MaskinportenCredentials::builder()
                .issuer(embedded.maskinporten.issuer())
                .client_id("quickstart-provider")
                .key_id(provider_key.kid())
                .private_key_pem(provider_key.private_key_pkcs8_pem().as_bytes())
                .build()
                .map_err(|e| e.to_string())?;
            let pdp = AltinnPdp::builder()
                .platform_url(embedded.altinn.platform_url())
                .subscription_key("quickstart-subscription-key")
                .credentials(credentials)
                .build()
                .map_err(|e| e.to_string())?;
            (embedded.maskinporten.issuer(), pdp, Some(embedded))
        }
    };

    // Plain HTTP routes: every refusal is an HTTP error status, even for a client that sends
    // `content-type: application/grpc` (the default, `Auto`, would answer it with a gRPC status,
    // which is HTTP 200).
    let mut maskinporten = MaskinportenLayer::builder()
        .issuer(issuer.as_str())
        .require_scope(settings.scope.as_str())
        .refusal_form(RefusalForm::Http);
    if accept_altinn {
        // Tokens from the Maskinporten → Altinn exchange, signed by Altinn's platform.
        let platform = match (&settings.platform_url, &embedded) {
            (Some(p), _) => p.clone(),
            (None, Some(e)) => e.altinn.platform_url(),
            (None, None) => return Err("ACCEPT_ALTINN_TOKENS needs ALTINN_PLATFORM_URL".into()),
        };
        maskinporten = maskinporten.altinn_tokens(AltinnTokens::platform(platform));
    }
    let maskinporten = maskinporten.build().map_err(|e| e.to_string())?;
    // GET /whoami: `read` for the system user's own organisation.
    let whoami_layer = SystemUserLayer::builder()
        .pdp(pdp.clone())
        .resource(&settings.resource)
        .refusal_form(RefusalForm::Http)
        .build()
        .map_err(|e| e.to_string())?;
    // GET and POST /krav/{orgnr}: `read` or `write` for the organisation in the path.
    let krav_layer = SystemUserLayer::builder()
        .pdp(pdp.clone())
        .resource(&settings.resource)
        .party_from_path("/krav/{orgnr}")
        .refusal_form(RefusalForm::Http)
        .build()
        .map_err(|e| e.to_string())?;

    let protected = Router::new()
        .route("/whoami", get(whoami))
        .route_layer(whoami_layer)
        .merge(
            Router::new()
                .route("/krav/{orgnr}", get(list_claims).post(create_claim))
                .route_layer(krav_layer),
        )
        .route_layer(maskinporten.clone());
    let keys = maskinporten.keys().clone();
    let metrics = prometheus();
    // GET /readyz: the key store, the PDP credentials (discovery, grant, exchange, one PDP
    // call) and the circuit breaker; results kept 10 s. No token needed.
    let readiness = Readiness::builder().layer_keys(&maskinporten).pdp(pdp).build();
    let router = Router::new()
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move { readiness.check().await }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let ready = keys.is_ready();
                async move { Json(json!({"status": "ok", "maskinporten_keys_loaded": ready})) }
            }),
        )
        // Open, like /healthz: scraped by Prometheus, outside the layers.
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
        .merge(protected)
        // A span per request that declares the fields both layers fill in (system user, vendor,
        // resource, party, decision source, outcome): every log line of a request carries them.
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::make_span));
    Ok(App {
        router,
        maskinporten,
        embedded,
    })
}

/// The Prometheus recorder, installed as the process's `metrics` recorder the first time it is
/// asked for (the tests build the app more than once in one process), with the PDP latency
/// histogram's buckets: the `metrics` facade cannot set them, and without them the exporter
/// renders a summary.
pub(crate) fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(PDP_REQUEST_DURATION_SECONDS.to_owned()), PDP_REQUEST_DURATION_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            builder.install_recorder().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "another metrics recorder is installed; GET /metrics shows nothing");
                PrometheusBuilder::new().build_recorder().handle()
            })
        })
        .clone()
}

/// The token endpoint from the issuer's RFC 8414 metadata, or `{issuer}token`.
async fn discover_token_endpoint(issuer: &str) -> String {
    let fallback = format!("{issuer}token");
    let url = format!("{issuer}.well-known/oauth-authorization-server");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build();
    let Ok(client) = client else { return fallback };
    let doc: Option<Value> = match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()),
        _ => None,
    };
    doc.and_then(|d| d["token_endpoint"].as_str().map(str::to_owned))
        .unwrap_or(fallback)
}

async fn start_embedded(settings: &Settings) -> Result<Embedded, String> {
    let maskinporten = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&maskinporten, "quickstart-subscription-key").await;
    let system_user: Uuid = DEMO_SYSTEM_USER.parse().map_err(|_| "bad demo uuid")?;
    for org in [DEMO_OWNER_ORG, DEMO_CLIENT_ORG] {
        altinn.permit(system_user, "read", &settings.resource, org);
    }
    let system_user = maskinporten
        .system_user_token(system_user, DEMO_OWNER_ORG)
        .scope(&settings.scope)
        .lifetime(Duration::from_secs(3600))
        .sign();
    let broken = {
        let (rest, sig) = system_user.rsplit_once('.').unwrap_or((&system_user, ""));
        // Flip the first character of the signature: same shape, wrong signature.
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        format!("{rest}.{flipped}{}", sig.get(1..).unwrap_or_default())
    };
    let altinn_token = altinn
        .system_user_token(DEMO_SYSTEM_USER.parse().map_err(|_| "bad demo uuid")?, DEMO_OWNER_ORG)
        .scope(&settings.scope)
        .sign();
    Ok(Embedded {
        maskinporten,
        altinn,
        tokens: DemoTokens {
            system_user,
            broken,
            altinn: altinn_token,
        },
    })
}

fn principal_json(su: &SystemUser) -> Value {
    json!({
        "system_user_id": su.id(),
        "system_user_org": su.owner_org().to_string(),
        "system_id": su.system_id(),
        "external_ref": su.external_ref(),
        "vendor_org": su.vendor_org().map(|o| o.to_string()),
        "client_id": su.client_id(),
        "scopes": su.scopes().collect::<Vec<_>>(),
        "issuer": su.token_issuer().as_str(),
        "resource": su.resource().as_str(),
        "action": su.action().as_str(),
        // The party as authorized; a person number would be personal data, so it is masked.
        "party": match su.party() {
            altinn_systemuser::org::Party::Organisation(o) => o.to_string(),
            altinn_systemuser::org::Party::Person(_) => "person (masked)".to_owned(),
        },
    })
}

async fn whoami(su: SystemUser) -> Json<Value> {
    Json(principal_json(&su))
}

async fn list_claims(su: SystemUser, Path(orgnr): Path<String>) -> Json<Value> {
    let mut body = principal_json(&su);
    body["krav"] = json!([
        {"kravidentifikator": "2025-0001", "party": orgnr, "beloep": 12500, "valuta": "NOK", "forfall": "2026-12-20"},
        {"kravidentifikator": "2025-0002", "party": orgnr, "beloep": 3400, "valuta": "NOK", "forfall": "2027-01-20"}
    ]);
    Json(body)
}

async fn create_claim(su: SystemUser, Path(orgnr): Path<String>) -> (http::StatusCode, Json<Value>) {
    let mut body = principal_json(&su);
    body["created"] = json!({"kravidentifikator": "2025-0003", "party": orgnr});
    (http::StatusCode::CREATED, Json(body))
}

/// The curl commands printed for the embedded demo.
pub(crate) fn curl_commands(base: &str, tokens: &DemoTokens) -> String {
    format!(
        r#"
A demo system user ({DEMO_SYSTEM_USER}, owned by {DEMO_OWNER_ORG}) may read claims for
{DEMO_OWNER_ORG} and {DEMO_CLIENT_ORG}, and nothing else. Its token is valid for one hour.

  export TOKEN='{token}'
  export BROKEN='{broken}'
  export ALTINN_TOKEN='{altinn}'

# 200: who am I (read, for the system user's own organisation)
curl -s {base}/whoami -H "Authorization: Bearer $TOKEN"

# 200: claims of a client organisation the system user may read for
curl -s {base}/krav/{DEMO_CLIENT_ORG} -H "Authorization: Bearer $TOKEN"

# 200: the same system user with the token Altinn's exchange gives (issued by Altinn, 30 minutes)
curl -s {base}/whoami -H "Authorization: Bearer $ALTINN_TOKEN"

# 403 from the PDP: no right to read claims for {DEMO_OTHER_ORG}
curl -si {base}/krav/{DEMO_OTHER_ORG} -H "Authorization: Bearer $TOKEN"

# 403 from the PDP: no right to write
curl -si -X POST {base}/krav/{DEMO_CLIENT_ORG} -H "Authorization: Bearer $TOKEN"

# 401: broken signature
curl -si {base}/whoami -H "Authorization: Bearer $BROKEN"

# 401: no token
curl -si {base}/whoami

# The metrics (Prometheus text, no token): requests by layer and reason, PDP results and latency,
# decision-cache hits, key and credential refreshes
curl -s {base}/metrics | grep altinn_systemuser
"#,
        token = tokens.system_user,
        broken = tokens.broken,
        altinn = tokens.altinn,
    )
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let settings = Settings::from_env();
    let app = match build(&settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("quickstart: configuration error: {e}");
            std::process::exit(2);
        }
    };
    if app.embedded.is_none() {
        // Fail fast on a wrong issuer, but keep serving (503) if Maskinporten is down now.
        if let Err(e) = app.maskinporten.keys().ready().await {
            tracing::warn!(error = %e, "Maskinporten keys not loaded yet; protected routes answer 503 until they are");
        }
    }
    let listener = match tokio::net::TcpListener::bind(&settings.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("quickstart: cannot listen on {}: {e}", settings.addr);
            std::process::exit(2);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| settings.addr.clone());
    let base = format!("http://{addr}");
    // The exporter's upkeep (draining histogram samples into buckets) between scrapes.
    let metrics = prometheus();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            metrics.run_upkeep();
        }
    });
    if let Some(embedded) = &app.embedded {
        println!("{}", curl_commands(&base, &embedded.tokens));
        println!(
            "Embedded FakeMaskinporten at {} and FakeAltinn at {}",
            embedded.maskinporten.issuer(),
            embedded.altinn.platform_url()
        );
    }
    println!("listening on {base}");
    if let Err(e) = axum::serve(listener, app.router).with_graceful_shutdown(shutdown_signal()).await {
        eprintln!("quickstart: server error: {e}");
        std::process::exit(1);
    }
}
