//! Real programs on loopback: the built `altinn-pep`, FakeMaskinporten and FakeAltinn, an echo
//! API, nginx and Caddy started with the configurations in `deploy/`, and a raw HTTP/1.1
//! client (so that URIs reach the proxy exactly as written: no client-side normalisation).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::pep_fakes::{self, CLIENT_ORG, OWNER_ORG, PepFakes, RESOURCE, SUBSCRIPTION_KEY};

/// The principal headers, as the README lists them (an oracle independent of the program).
pub(crate) const PRINCIPAL_HEADERS: [&str; 8] = [
    "X-Altinn-SystemUser-Id",
    "X-Altinn-SystemUser-Org",
    "X-Altinn-Party",
    "X-Altinn-Resource",
    "X-Altinn-Action",
    "X-Altinn-Vendor-Org",
    "X-Altinn-Client-Id",
    "X-Altinn-Issuer",
];

/// An organisation the test system user has no rights for.
pub(crate) const THIRD_ORG: &str = "974760673";
/// A synthetic national identity number with valid check digits.
pub(crate) const PERSON: &str = "01010012356";
/// The vendor organisation in FakeMaskinporten's tokens.
pub(crate) const VENDOR_ORG: &str = "991825827";

/// Upper bound for a program to start or stop: a failure bound, not a timing assertion.
const STARTUP: Duration = Duration::from_secs(60);

/// A fresh directory under the test target's temporary directory. The first call in a process
/// removes what earlier runs left there: only directories untouched for an hour, since other
/// test processes (nextest runs each test in its own) may be using theirs right now.
pub(crate) fn tmp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    static CLEAN: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("altinn-pep");
    CLEAN.call_once(|| {
        let stale = |e: &std::fs::DirEntry| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(3600)))
        };
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if stale(&entry) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = root.join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The last lines of a log file, for a failing test's message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Whether a program can be started; a clear failure naming the install command otherwise.
pub(crate) fn require(program: &str, version_arg: &str) {
    match std::process::Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) => panic!(
            "{program} is not installed ({e}): install it with `apt-get update && apt-get install -y {program}` \
             (.ci/run does this before the tests)"
        ),
    }
}

/// A free port on 127.0.0.1 for programs that cannot report an ephemeral one (nginx, Caddy);
/// they are retried on another port if it was taken meanwhile.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// altinn-pep
// ---------------------------------------------------------------------------------------------

/// A running `altinn-pep serve`.
pub(crate) struct Pep {
    /// `127.0.0.1:PORT` of the decision listener.
    pub(crate) decision: String,
    /// `127.0.0.1:PORT` of the admin listener.
    pub(crate) admin: String,
    /// `127.0.0.1:PORT` of the ext_authz listener (gRPC), when `listen.ext_authz` is set.
    pub(crate) ext_authz: Option<String>,
    child: Child,
    log: PathBuf,
}

/// How a spawn ended when it did not serve.
#[derive(Debug)]
pub(crate) struct Exited {
    pub(crate) status: ExitStatus,
    pub(crate) stderr: String,
}

impl Pep {
    fn command(args: &[&str], dir: &Path) -> (Command, PathBuf) {
        let log = dir.join("altinn-pep.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_altinn-pep"));
        cmd.args(args)
            .env("ALTINN_SUBSCRIPTION_KEY", SUBSCRIPTION_KEY)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        (cmd, log)
    }

    /// Runs `altinn-pep serve --config <config>` until it prints the decision and admin listening
    /// lines (the admin line comes last: an ext_authz line is printed before it).
    pub(crate) async fn try_spawn(config: &Path, dir: &Path) -> Result<Pep, Exited> {
        let (mut cmd, log) = Pep::command(&["serve", "--config", config.to_str().unwrap()], dir);
        let mut child = cmd.spawn().expect("the altinn-pep binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut decision, mut admin, mut ext_authz) = (None, None, None);
        let found = tokio::time::timeout(STARTUP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(a) = line.strip_prefix("listening on http://") {
                    assert!(decision.replace(a.to_owned()).is_none(), "printed twice: {line}");
                } else if let Some(a) = line.strip_prefix("admin listening on http://") {
                    assert!(admin.replace(a.to_owned()).is_none(), "printed twice: {line}");
                } else if let Some(a) = line.strip_prefix("ext_authz listening on ") {
                    assert!(ext_authz.replace(a.to_owned()).is_none(), "printed twice: {line}");
                }
                if decision.is_some() && admin.is_some() {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if !found {
            let status = tokio::time::timeout(STARTUP, child.wait())
                .await
                .expect("altinn-pep neither served nor exited")
                .unwrap();
            return Err(Exited {
                status,
                stderr: std::fs::read_to_string(&log).unwrap_or_default(),
            });
        }
        // Keep reading stdout so the program never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Pep {
            decision: decision.unwrap(),
            admin: admin.unwrap(),
            ext_authz,
            child,
            log,
        })
    }

    /// As [`try_spawn`](Self::try_spawn), failing the test if it does not serve.
    pub(crate) async fn spawn(config: &Path, dir: &Path) -> Pep {
        match Pep::try_spawn(config, dir).await {
            Ok(p) => p,
            Err(e) => panic!("altinn-pep did not start: {:?}\n{}", e.status, e.stderr),
        }
    }

    /// `altinn-pep check --config <config>`: its exit status and standard error.
    pub(crate) async fn check(config: &Path, dir: &Path) -> (ExitStatus, String) {
        let (mut cmd, log) = Pep::command(&["check", "--config", config.to_str().unwrap()], dir);
        cmd.stdout(Stdio::null());
        let status = tokio::time::timeout(STARTUP, cmd.status()).await.unwrap().unwrap();
        (status, std::fs::read_to_string(log).unwrap_or_default())
    }

    /// Sends `signal` (`TERM`, `INT`) and waits for the exit.
    pub(crate) async fn stop(mut self, signal: &str) -> ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().await.unwrap();
        assert!(sent.success());
        tokio::time::timeout(STARTUP, self.child.wait())
            .await
            .expect("altinn-pep did not stop")
            .unwrap()
    }

    /// The program's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pep {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- altinn-pep log ({}):\n{}", self.log.display(), tail(&self.log));
        }
    }
}

/// FakeMaskinporten, FakeAltinn and altinn-pep running the README's example configuration.
/// The test system user may `read` for [`OWNER_ORG`] and [`CLIENT_ORG`], `write` for
/// [`CLIENT_ORG`], and `read` for [`PERSON`]; nothing for [`THIRD_ORG`].
pub(crate) struct Setup {
    pub(crate) fakes: PepFakes,
    pub(crate) pep: Pep,
    pub(crate) dir: PathBuf,
    pub(crate) system_user: Uuid,
}

impl Setup {
    /// The example configuration as it is.
    pub(crate) async fn start(name: &str) -> Setup {
        Setup::start_with(name, |c| c).await
    }

    /// The example configuration, changed by `edit` (after it was pointed at the fakes).
    pub(crate) async fn start_with(name: &str, edit: impl FnOnce(String) -> String) -> Setup {
        let dir = tmp_dir(name);
        let fakes = PepFakes::start(&dir).await.unwrap();
        let system_user = Uuid::new_v4();
        for org in [OWNER_ORG, CLIENT_ORG, PERSON] {
            fakes.altinn.permit(system_user, "read", RESOURCE, org);
        }
        fakes.altinn.permit(system_user, "write", RESOURCE, CLIENT_ORG);
        let config = dir.join("altinn-pep.toml");
        std::fs::write(&config, edit(fakes.config().unwrap())).unwrap();
        let pep = Pep::spawn(&config, &dir).await;
        Setup {
            fakes,
            pep,
            dir,
            system_user,
        }
    }

    /// A token of the test system user (owner [`OWNER_ORG`]), valid for ten minutes.
    pub(crate) fn token(&self) -> String {
        self.fakes.token(self.system_user, OWNER_ORG, Duration::from_secs(600))
    }

    /// The principal headers an allowed request for `party` with `action` must carry.
    pub(crate) fn principal(&self, party: &str, action: &str) -> Vec<(String, String)> {
        vec![
            ("x-altinn-systemuser-id".into(), self.system_user.to_string()),
            ("x-altinn-systemuser-org".into(), OWNER_ORG.into()),
            ("x-altinn-party".into(), party.into()),
            ("x-altinn-resource".into(), RESOURCE.into()),
            ("x-altinn-action".into(), action.into()),
            ("x-altinn-vendor-org".into(), VENDOR_ORG.into()),
            ("x-altinn-client-id".into(), altinn_systemuser::test_util::DEFAULT_CLIENT_ID.into()),
            ("x-altinn-issuer".into(), "maskinporten".into()),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// The API behind the proxy
// ---------------------------------------------------------------------------------------------

/// The example's echo API on 127.0.0.1:0, counting the requests that reach it.
pub(crate) struct Api {
    pub(crate) addr: String,
    hits: Arc<AtomicUsize>,
}

impl Api {
    pub(crate) async fn start() -> Api {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = pep_fakes::echo_api().layer(tower::util::MapRequestLayer::new(move |req: http::Request<axum::body::Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            req
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Api { addr, hits }
    }

    /// How many requests reached the API.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// A response, read to the end.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Names in lower case, in order, repeated names kept.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// Every value of a header.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of a header (`None` if absent; fails if repeated).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} repeated: {all:?}");
        all.first().copied()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The RFC 9457 problem type's slug.
    pub(crate) fn problem(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or_default()
            .strip_prefix("urn:altinn-systemuser:problem:")
            .unwrap_or_default()
            .to_owned()
    }

    /// The headers the echo API received (its body), names in lower case.
    pub(crate) fn echoed_headers(&self) -> Vec<(String, String)> {
        self.json()["headers"]
            .as_array()
            .unwrap_or_else(|| panic!("not an echo: {}", String::from_utf8_lossy(&self.body)))
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// Sends one request (`Connection: close`) with the request target exactly as given.
pub(crate) async fn raw(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(STARTUP, stream.read_to_end(&mut bytes))
        .await
        .expect("no answer")
        .unwrap();
    parse_reply(&bytes, method == "HEAD")
}

fn parse_reply(bytes: &[u8], head: bool) -> Reply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head_text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw_body = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    Reply { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Asks the decision listener as a proxy would: `GET /auth` with the original method and URI
/// in the headers of `kind`, and `headers`.
pub(crate) async fn ask(pep: &Pep, kind: Kind, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all: Vec<(&str, &str)> = match kind {
        Kind::Forwarded => vec![("X-Forwarded-Method", method), ("X-Forwarded-Uri", uri)],
        Kind::Original => vec![("X-Original-Method", method), ("X-Original-URI", uri)],
    };
    all.extend_from_slice(headers);
    raw(&pep.decision, "GET", "/auth", &all).await
}

/// Which headers name the original request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik, Caddy).
    Forwarded,
    /// `X-Original-Method` and `X-Original-URI` (nginx).
    Original,
}

/// Asserts that a decision is "allowed" with exactly this principal, and nothing else is.
pub(crate) fn assert_allowed(r: &Reply, principal: &[(String, String)]) {
    assert_eq!(r.status, 200, "{r:?}");
    for (name, value) in principal {
        assert_eq!(r.header(name), Some(value.as_str()), "{name} in {r:?}");
    }
    let ours: Vec<&(String, String)> = r.headers.iter().filter(|(n, _)| n.starts_with("x-altinn-")).collect();
    assert_eq!(ours.len(), principal.len(), "exactly the principal headers: {ours:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body.is_empty());
}

/// Asserts that a decision is a refusal with this status and problem slug, and no principal.
pub(crate) fn assert_refused(r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "{r:?} {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem(), slug, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-altinn-problem"), Some(slug));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    for h in PRINCIPAL_HEADERS {
        assert_eq!(r.header(h), None, "{h} on a refusal");
    }
}

// ---------------------------------------------------------------------------------------------
// nginx and Caddy
// ---------------------------------------------------------------------------------------------

/// A proxy started for a test.
pub(crate) struct Proxy {
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    child: Child,
    log: PathBuf,
    _stderr_lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!("--- proxy log ({}):\n{}", self.log.display(), tail(&self.log));
        }
    }
}

/// Starts a program that logs `ready_marker` on standard error once it listens; retried on
/// another port when the port was taken meanwhile.
async fn start_proxy(dir: &Path, what: &str, ready_marker: &str, mut setup: impl FnMut(u16) -> Command) -> Proxy {
    for _ in 0..5 {
        let port = free_port();
        let log = dir.join(format!("{what}-{port}.log"));
        let mut cmd = setup(port);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what} cannot be started: {e}"));
        let stderr = child.stderr.take().unwrap();
        let lines_seen = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
        {
            let marker = ready_marker.to_owned();
            let log = log.clone();
            let seen = lines_seen.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                let mut tx = Some(ready_tx);
                let mut file = tokio::fs::File::create(&log).await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = file.write_all(format!("{line}\n").as_bytes()).await;
                    if line.contains(&marker)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(true);
                    }
                    seen.lock().unwrap().push(line);
                }
                if let Some(tx) = tx.take() {
                    let _ = tx.send(false);
                }
            });
        }
        let ready = tokio::time::timeout(STARTUP, ready_rx).await.ok().and_then(Result::ok) == Some(true);
        if ready {
            return Proxy {
                addr: format!("127.0.0.1:{port}"),
                child,
                log,
                _stderr_lines: lines_seen,
            };
        }
        let _ = child.kill().await;
        let text = lines_seen.lock().unwrap().join("\n");
        if !text.contains("in use") {
            panic!("{what} did not start:\n{text}");
        }
    }
    panic!("{what}: no free port after 5 tries");
}

/// nginx with `deploy/nginx.conf` (addresses replaced) in a main configuration of its own.
pub(crate) async fn nginx(dir: &Path, pep: &str, api: &str) -> Proxy {
    require("nginx", "-v");
    let prefix = dir.join("nginx");
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(prefix.join(sub)).unwrap();
    }
    let site_template = include_str!("../../deploy/nginx.conf");
    start_proxy(dir, "nginx", "start worker process", |port| {
        let site = pep_fakes::substitute(
            site_template,
            &[
                ("server 127.0.0.1:8081;", &format!("server {pep};"), 1),
                ("server 127.0.0.1:8080;", &format!("server {api};"), 1),
                ("listen 80;", &format!("listen 127.0.0.1:{port};"), 1),
            ],
        )
        .unwrap();
        let site_path = prefix.join("altinn-pep.conf");
        std::fs::write(&site_path, site).unwrap();
        let p = prefix.display();
        let main = format!(
            "pid {p}/nginx.pid;\nerror_log stderr notice;\nworker_processes 1;\nevents {{ worker_connections 512; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {p}/tmp/body;\n    proxy_temp_path {p}/tmp/proxy;\n    \
             fastcgi_temp_path {p}/tmp/fastcgi;\n    uwsgi_temp_path {p}/tmp/uwsgi;\n    scgi_temp_path {p}/tmp/scgi;\n    \
             include {};\n}}\n",
            site_path.display()
        );
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g", "daemon off;"]);
        cmd
    })
    .await
}

/// Caddy with `deploy/Caddyfile` (addresses replaced), admin endpoint off, plain HTTP.
pub(crate) async fn caddy(dir: &Path, pep: &str, api: &str) -> Proxy {
    require("caddy", "version");
    let home = dir.join("caddy");
    std::fs::create_dir_all(&home).unwrap();
    let template = include_str!("../../deploy/Caddyfile");
    start_proxy(dir, "caddy", "server running", |port| {
        let site = pep_fakes::substitute(
            template,
            &[
                (":80 {", &format!("http://127.0.0.1:{port} {{"), 1),
                ("forward_auth 127.0.0.1:8081 {", &format!("forward_auth {pep} {{"), 1),
                ("reverse_proxy 127.0.0.1:8080", &format!("reverse_proxy {api}"), 1),
            ],
        )
        .unwrap();
        let file = home.join("Caddyfile");
        std::fs::write(&file, format!("{{\n\tadmin off\n}}\n\n{site}")).unwrap();
        let mut cmd = Command::new("caddy");
        cmd.args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"));
        cmd
    })
    .await
}
