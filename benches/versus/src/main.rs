//! The server `run.sh` measures: altinn-systemuser's layers and jwt-authorizer 0.15 side by side
//! in one process (one Tokio runtime), on the same tokens from the same fake issuer.
//!
//! ```text
//! versus-server DIR        # WORKERS=2 TOKENS=20000
//! ```
//!
//! Starts `FakeMaskinporten` and `FakeAltinn` (the crate's test kit) on 127.0.0.1, then two
//! listeners with the same trivial handler (`"ok"`) on every route:
//!
//! - `ADDR_OURS` (axum 0.8): `/ours/token` (`MaskinportenLayer`: issuer, RS256, scope; default
//!   token cache), `/ours/token-cold` (the same layer with a 64-token cache, for the rotating
//!   cold tokens: every request misses) and `/ours/both` (`AuthLayer`: that layer and
//!   `SystemUserLayer` asking FakeAltinn's PDP, which permits the warm token's system user).
//! - `ADDR_JWT_AUTHORIZER` (axum 0.7): `/jwt-authorizer` (`JwtAuthorizer::from_jwks_url` on the
//!   fake's JWKS, issuer and RS256 required, `exp` checked (its default), scope checked by
//!   a claims checker).
//!
//! Both listeners also have `/open`: the same handler without any layer (axum 0.8 vs 0.7 alone).
//!
//! Writes `DIR/token.env` (`TOKEN=<the warm token>`) and `DIR/tokens.txt` (TOKENS distinct
//! system-user tokens, one a line, each with its own system user and `jti`), all with the
//! required scope and one hour to live. Before it prints `READY` it checks that every route
//! lets the good tokens through and refuses the same bad ones (`CHECK` lines), and sends each
//! route one request with the warm token. Then it serves until killed. `WORKERS` is the number of
//! Tokio worker threads (default 2).

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::reject::RefusalForm;
use altinn_systemuser::stack::AuthLayer;
use altinn_systemuser::systemuser::SystemUserLayer;
use altinn_systemuser::test_util::{FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use jwt_authorizer::{Authorizer, IntoLayer, JwtAuthorizer, Validation};
use serde::Deserialize;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

const SCOPE: &str = "skatteetaten:kravogbetalinger";
const RESOURCE: &str = "kravogbetaling";
const OWNER: &str = "310702641";
const LIFETIME: Duration = Duration::from_secs(3600);
/// Token cache of the cold route: far below the number of rotating tokens, so a token is
/// always evicted before it comes round again (CLOCK-Pro can keep at most this many of them).
const COLD_CACHE_CAPACITY: u64 = 64;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: versus-server DIR   (writes DIR/token.env and DIR/tokens.txt)");
        std::process::exit(2);
    };
    let workers = env_number("WORKERS", 2);
    let tokens = env_number("TOKENS", 20_000).max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(serve(dir, tokens));
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn ok() -> &'static str {
    "ok"
}

/// What jwt-authorizer deserialises from the claims: just what its check needs.
#[derive(Debug, Clone, Deserialize)]
struct ScopeClaims {
    scope: String,
}

/// Maskinporten's `scope`: space-separated, the required scope must be one of them.
fn has_scope(claims: &ScopeClaims) -> bool {
    claims.scope.split(' ').any(|s| s == SCOPE)
}

/// Our token layer as README wires it, pointed at the fake issuer.
fn maskinporten_layer(issuer: &str, cache_capacity: Option<u64>) -> MaskinportenLayer {
    let mut builder = MaskinportenLayer::builder()
        .issuer(issuer)
        .require_scope(SCOPE)
        .refusal_form(RefusalForm::Http);
    if let Some(capacity) = cache_capacity {
        builder = builder.token_cache_capacity(capacity);
    }
    builder.build().expect("MaskinportenLayer")
}

async fn serve(dir: PathBuf, n: usize) {
    let mp = FakeMaskinporten::start().await;
    let altinn = FakeAltinn::start(&mp, "versus-subscription-key").await;

    // The PDP client of the "both layers" route, as examples/wrk_target.rs sets it up.
    let pdp = altinn.pdp_client(&mp, "versus-provider");
    let system_user = SystemUserLayer::builder()
        .pdp(pdp)
        .resource(RESOURCE)
        .refusal_form(RefusalForm::Http)
        .build()
        .expect("SystemUserLayer");

    // Ours: three guarded routes, each with its own layer instance (own key store, own token
    // cache), and /open without any layer.
    let issuer = mp.issuer();
    let ours = axum::Router::new()
        .route("/ours/both", axum::routing::get(ok))
        .route_layer(AuthLayer::new(maskinporten_layer(&issuer, None), system_user))
        .merge(
            axum::Router::new()
                .route("/ours/token", axum::routing::get(ok))
                .route_layer(maskinporten_layer(&issuer, None)),
        )
        .merge(
            axum::Router::new()
                .route("/ours/token-cold", axum::routing::get(ok))
                .route_layer(maskinporten_layer(&issuer, Some(COLD_CACHE_CAPACITY))),
        )
        .route("/open", axum::routing::get(ok));

    // jwt-authorizer: keys from the same JWKS, iss and RS256 required, exp checked (its
    // default, with its default leeway of 60 s), scope checked by its claims checker (403).
    let authorizer: Authorizer<ScopeClaims> = JwtAuthorizer::<ScopeClaims>::from_jwks_url(&mp.jwks_uri())
        .validation(Validation::new().iss(&[issuer.as_str()]).algs(vec![jsonwebtoken::Algorithm::RS256]))
        .check(has_scope)
        .build()
        .await
        .expect("jwt-authorizer");
    let theirs = axum07::Router::new()
        .route("/jwt-authorizer", axum07::routing::get(ok))
        .route_layer(authorizer.into_layer())
        .route("/open", axum07::routing::get(ok));

    // Tokens: one warm token (its system user permitted by the PDP) and n cold ones, each with
    // its own system user and jti, so no two are alike.
    let su = Uuid::new_v4();
    altinn.permit(su, "read", RESOURCE, OWNER);
    let warm = mp.system_user_token(su, OWNER).scope(SCOPE).lifetime(LIFETIME).sign();
    let signer = mp.clone();
    let cold = tokio::task::spawn_blocking(move || cold_tokens(&signer, n)).await.expect("signing");
    write_files(&dir, &warm, &cold);

    let ours_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ours_addr = ours_listener.local_addr().expect("addr");
    let theirs_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let theirs_addr = theirs_listener.local_addr().expect("addr");
    let ours_server = tokio::spawn(axum::serve(ours_listener, ours).into_future());
    let theirs_server = tokio::spawn(axum07::serve(theirs_listener, theirs.into_make_service()).into_future());
    println!("ADDR_OURS={ours_addr}");
    println!("ADDR_JWT_AUTHORIZER={theirs_addr}");
    std::io::stdout().flush().ok();

    let routes = [
        ("ours/both", format!("http://{ours_addr}/ours/both")),
        ("ours/token", format!("http://{ours_addr}/ours/token")),
        ("ours/token-cold", format!("http://{ours_addr}/ours/token-cold")),
        ("jwt-authorizer", format!("http://{theirs_addr}/jwt-authorizer")),
    ];
    if !checks(&mp, &routes, &warm, &cold).await {
        eprintln!("a route let a bad token through or refused a good one: not a fair comparison");
        std::process::exit(1);
    }
    println!("READY");
    std::io::stdout().flush().ok();
    let _ = tokio::join!(ours_server, theirs_server);
}

/// n distinct valid tokens, signed on every core.
fn cold_tokens(mp: &FakeMaskinporten, n: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n);
    let per_thread = n.div_ceil(threads);
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = per_thread.min(n - (t * per_thread).min(n));
                let mp = mp.clone();
                s.spawn(move || {
                    (0..count)
                        .map(|_| mp.system_user_token(Uuid::new_v4(), OWNER).scope(SCOPE).lifetime(LIFETIME).sign())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("signer thread")).collect()
    });
    assert_eq!(tokens.len(), n);
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), n, "the cold tokens must be distinct");
    tokens
}

fn write_files(dir: &Path, warm: &str, cold: &[String]) {
    std::fs::create_dir_all(dir).expect("output directory");
    std::fs::write(dir.join("token.env"), format!("TOKEN={warm}\n")).expect("token.env");
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("tokens.txt")).expect("tokens.txt"));
    for token in cold {
        writeln!(file, "{token}").expect("tokens.txt");
    }
    file.flush().expect("tokens.txt");
}

/// Every route must pass the warm token and a few cold ones (the both-layers route only the
/// warm one: the cold tokens' system users are not permitted), and refuse the same bad tokens.
/// Prints one `CHECK` line per case; false if any route disagrees with what is expected.
async fn checks(mp: &FakeMaskinporten, routes: &[(&str, String)], warm: &str, cold: &[String]) -> bool {
    let forger = TestKey::for_role(KeyRole::Rogue).with_kid(mp.signing_key().kid());
    let cases: Vec<(&str, String, bool)> = vec![
        ("warm token", warm.to_owned(), true),
        ("first cold token", cold[0].clone(), true),
        ("last cold token", cold[cold.len() - 1].clone(), true),
        (
            "other scope",
            mp.system_user_token(Uuid::new_v4(), OWNER).scope("skatteetaten:other").sign(),
            false,
        ),
        (
            "other issuer",
            mp.system_user_token(Uuid::new_v4(), OWNER)
                .scope(SCOPE)
                .claim("iss", serde_json::json!("http://127.0.0.1:9/"))
                .sign(),
            false,
        ),
        (
            "expired an hour ago",
            mp.system_user_token(Uuid::new_v4(), OWNER)
                .scope(SCOPE)
                .issued_at(SystemTime::now() - Duration::from_secs(3720))
                .sign(),
            false,
        ),
        (
            "signed by another key under the published kid",
            mp.system_user_token(Uuid::new_v4(), OWNER).scope(SCOPE).signed_by(forger).sign(),
            false,
        ),
    ];
    let client = reqwest::Client::new();
    let mut fair = true;
    for (what, token, pass) in &cases {
        let mut line = format!("CHECK {what}:");
        for (name, url) in routes {
            // The both-layers route asks the PDP about the token's system user: only the warm
            // token's is permitted.
            let expect = *pass && (*name != "ours/both" || *what == "warm token");
            let status = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            let right = (status == 200) == expect;
            fair &= right;
            line.push_str(&format!(" {name} {status}{}", if right { "" } else { " (WRONG)" }));
        }
        println!("{line}");
    }
    fair
}
