//! `altinn-pep`: the Maskinporten and system-user layers as a forward-auth decision service,
//! for an API in any language behind nginx (`auth_request`), Caddy (`forward_auth`), Traefik
//! (`forwardAuth`) or Envoy and Istio (`ext_authz`, gRPC).
//!
//! ```text
//! altinn-pep serve --config altinn-pep.toml   # the two listeners, until SIGINT or SIGTERM
//! altinn-pep check --config altinn-pep.toml   # load and build the configuration, then exit
//! altinn-pep doctor --config altinn-pep.toml  # check the setup end to end, one line per step
//! altinn-pep explain --config altinn-pep.toml < token.txt   # what a token is, and its verdict
//! ```
//!
//! Files, one per role: `config.rs` (the TOML file, through the library's configuration types),
//! `routes.rs` (route templates, one system-user layer per route), `original.rs` (the original
//! request from the proxy's headers), `decision.rs` (the decision listener), `principal.rs`
//! (the allowed answer and its headers), `problem.rs` (refusals), `admin.rs` (health,
//! readiness, metrics), `ext_authz.rs` (the same decision for Envoy and Istio, over gRPC),
//! `doctor.rs` (the setup checked end to end), `explain.rs` (a token described and judged).
//! README: "Protecting an API in any language".

#![forbid(unsafe_code)]

mod admin;
mod config;
mod decision;
mod doctor;
mod explain;
mod ext_authz;
mod original;
mod principal;
mod problem;
mod routes;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use altinn_systemuser::readiness::Readiness;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::principal::{PrincipalAnswer, TrustedIssuers};
use crate::routes::Routes;

/// How long open connections may take to finish after SIGINT or SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "altinn-pep",
    version,
    about = "Maskinporten and Altinn system-user authorization for nginx, Caddy or Traefik (forward auth)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the decision listener (GET /auth), the admin listener and, if configured, the
    /// ext_authz listener (gRPC, for Envoy and Istio) until SIGINT or SIGTERM.
    Serve {
        /// The configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Load and build the configuration (secrets included, no network I/O), then exit.
    Check {
        /// The configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check the setup end to end (issuer keys, grant, exchange, PDP call, route resources,
    /// clock), one line per step; exit status 0 only if all pass.
    Doctor {
        /// The configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Read a token from standard input and say what it is and, with --config, which rule
    /// refuses it or that it passes. The token is sent nowhere.
    Explain {
        /// The configuration file (TOML) to judge the token by.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one-shot commands report on standard output; their logs only for errors, unless asked.
    let default_filter = match cli.command {
        Command::Doctor { .. } | Command::Explain { .. } => "error",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("altinn-pep: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Check { config } => check(&config),
            Command::Serve { config } => serve(&config).await,
            Command::Doctor { config } => doctor::run(&config).await,
            Command::Explain { config } => explain::run(config.as_deref()).await,
        }
    })
}

/// Exit status for a configuration that cannot be used.
fn config_error(e: &config::ConfigFailure) -> ExitCode {
    eprintln!("altinn-pep: {e}");
    ExitCode::from(2)
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path).and_then(|c| c.build()) {
        Ok(built) => {
            say(&format!("configuration ok: {} route(s)", built.routes.len()));
            ExitCode::SUCCESS
        }
        Err(e) => config_error(&e),
    }
}

async fn serve(path: &std::path::Path) -> ExitCode {
    let built = match config::load(path).and_then(|c| c.build()) {
        Ok(b) => b,
        Err(e) => return config_error(&e),
    };
    let metrics = match admin::install_metrics() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("altinn-pep: cannot install the metrics recorder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keys = built.maskinporten.keys().clone();
    let issuers = TrustedIssuers {
        maskinporten: keys.issuer().into(),
    };
    let routes = Routes::new(&built.maskinporten, built.routes, PrincipalAnswer::new(issuers));
    let readiness = Readiness::builder().layer_keys(&built.maskinporten).pdp(built.pdp).build();

    let signal = shutdown_signal();
    let decision = match bind(built.decision_addr, "listening on http://").await {
        Ok(l) => l,
        Err(code) => return code,
    };
    // Announced before the admin listener, whose line comes last.
    let ext_authz_listener = match built.ext_authz_addr {
        Some(addr) => match bind(addr, "ext_authz listening on ").await {
            Ok(l) => Some(l),
            Err(code) => return code,
        },
        None => None,
    };
    let admin_listener = match bind(built.admin_addr, "admin listening on http://").await {
        Ok(l) => l,
        Err(code) => return code,
    };

    // Fetch the signing keys now, so the first request does not wait for them; readiness
    // reports a failure.
    tokio::spawn(async move {
        if let Err(e) = keys.ready().await {
            tracing::warn!(error = %e, "Maskinporten signing keys not loaded yet; requests get 503 until they are");
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let ext_authz_server = ext_authz_listener.map(|listener| {
        let serving = ext_authz::serve(listener, routes.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move { serving.await.is_ok() })
    });
    let decision_server = tokio::spawn(
        axum::serve(decision, decision::router(routes))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let admin_server = tokio::spawn(
        axum::serve(admin_listener, admin::router(readiness, metrics))
            .with_graceful_shutdown(stopped(stop_rx))
            .into_future(),
    );

    signal.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let all = async {
        let ext_authz = async {
            match ext_authz_server {
                Some(server) => server.await.unwrap_or(false),
                None => true,
            }
        };
        let (d, a, e) = tokio::join!(decision_server, admin_server, ext_authz);
        matches!((d, a), (Ok(Ok(())), Ok(Ok(())))) && e
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, all).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("altinn-pep: a listener failed");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("connections still open after the grace period; stopping anyway");
            ExitCode::SUCCESS
        }
    }
}

/// Binds `addr`, then prints `<what>ADDR` (the bound address: port 0 is resolved).
async fn bind(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener, ExitCode> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("altinn-pep: cannot listen on {addr}: {e}");
        ExitCode::FAILURE
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    say(&format!("{what}{bound}"));
    Ok(listener)
}

/// A line on standard output; a closed output is not a reason to stop serving.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called (before the
/// listeners are announced, so that a signal sent right after is never the default action);
/// the future it returns resolves on the first signal.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    #[cfg(unix)]
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        #[cfg(unix)]
        match (terminate, interrupt) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
