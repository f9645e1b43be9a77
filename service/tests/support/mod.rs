//! Real servers for the integration tests: an artifact server over HTTP or HTTPS (certificates
//! generated per test run), the service in-process on a free port, and the service binary as a
//! child process.
#![allow(dead_code)]

pub mod corpus;
pub mod idp;
pub mod raw_http;
pub mod records;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hex_core_service::app;
use hex_core_service::config::{Config, Env};
use hex_core_service::http::AppState;
use tokio::net::TcpListener;

/// What the artifact server answers on one path.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub body: Bytes,
    pub delay: Duration,
    pub redirect_to: Option<String>,
    pub etag: Option<String>,
    /// The first `n` requests of this path get `status` instead (a host that is briefly failing).
    pub failing_first: Option<(usize, u16)>,
}

impl Route {
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            delay: Duration::ZERO,
            redirect_to: None,
            etag: None,
            failing_first: None,
        }
    }

    pub fn redirect(to: impl Into<String>) -> Self {
        Self {
            status: 302,
            body: Bytes::new(),
            delay: Duration::ZERO,
            redirect_to: Some(to.into()),
            etag: None,
            failing_first: None,
        }
    }

    pub fn status(status: u16) -> Self {
        Self { status, ..Self::ok("") }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.to_string());
        self
    }

    /// Answers `status` to the first `n` requests, then as configured.
    pub fn failing_first(mut self, n: usize, status: u16) -> Self {
        self.failing_first = Some((n, status));
        self
    }
}

struct ServerState {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
    not_modified: HashMap<String, usize>,
    requests: usize,
    /// After answering this many requests the server dies (stops listening, drops connections).
    die_after: Option<usize>,
    kill: Arc<tokio::sync::watch::Sender<bool>>,
}

/// A real HTTP(S) server on 127.0.0.1 that serves catalogs and artifacts. `kill` (or drop) stops
/// it the way a crashed host stops: the port refuses connections and open connections are cut.
pub struct ArtifactServer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    state: Arc<Mutex<ServerState>>,
    kill: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        let _ = self.kill.send(true);
        self.task.abort();
    }
}

async fn serve_route(State(state): State<Arc<Mutex<ServerState>>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let answer = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        if s.die_after.is_some_and(|n| s.requests > n) {
            let _ = s.kill.send(true);
            None
        } else {
            let hits = s.hits.entry(path.clone()).or_default();
            *hits += 1;
            let hits = *hits;
            Some((s.routes.get(&path).cloned(), hits))
        }
    };
    let Some((route, hits)) = answer else {
        // The kill aborts this connection; the client sees it cut without an answer.
        return std::future::pending::<Response>().await;
    };
    let Some(route) = route else {
        return (StatusCode::NOT_FOUND, "no such artifact").into_response();
    };
    if let Some((n, status)) = route.failing_first
        && hits <= n
    {
        return (StatusCode::from_u16(status).unwrap(), "failing on purpose").into_response();
    }
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    if let Some(to) = &route.redirect_to {
        return (
            StatusCode::from_u16(route.status).unwrap(),
            [(header::LOCATION, to.clone())],
        )
            .into_response();
    }
    if let Some(etag) = &route.etag
        && request
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
    {
        *state.lock().unwrap().not_modified.entry(path).or_default() += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.clone())]).into_response();
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    if let Some(etag) = &route.etag {
        headers.insert(header::ETAG, etag.parse().unwrap());
    }
    (StatusCode::from_u16(route.status).unwrap(), headers, route.body.clone()).into_response()
}

/// Accepts connections until killed; each connection is a task of one set, so a kill cuts them all.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut killed: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = killed.wait_for(|k| *k) => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            let Ok(tls_stream) = acceptor.accept(stream).await else { return };
                            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls_stream), service).await;
                        }
                        None => {
                            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

impl ArtifactServer {
    fn router(state: Arc<Mutex<ServerState>>) -> Router {
        Router::new().fallback(serve_route).with_state(state)
    }

    pub async fn http() -> Self {
        Self::http_on(0).await
    }

    /// An HTTP server on a given port of 127.0.0.1 (0: any free port); a killed server's port can
    /// be served again this way (a host that comes back).
    pub async fn http_on(port: u16) -> Self {
        Self::start(port, None).await
    }

    pub async fn https(tls: &TestTls) -> Self {
        Self::start(0, Some(tokio_rustls::TlsAcceptor::from(tls.server_config.clone()))).await
    }

    async fn start(port: u16, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let kill = Arc::new(tokio::sync::watch::channel(false).0);
        let state = Arc::new(Mutex::new(ServerState {
            routes: HashMap::new(),
            hits: HashMap::new(),
            not_modified: HashMap::new(),
            requests: 0,
            die_after: None,
            kill: kill.clone(),
        }));
        let app = Self::router(state.clone());
        let killed = kill.subscribe();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(accept_loop(listener, app, tls, killed));
        Self {
            addr,
            scheme,
            state,
            kill,
            task,
        }
    }

    /// Stops the server now: the port refuses connections, open connections are cut.
    pub fn kill(&self) {
        let _ = self.kill.send(true);
        self.task.abort();
    }

    /// The server dies (as `kill`) when a request arrives after `n` answered ones.
    pub fn die_after(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        state.die_after = Some(state.requests + n);
    }

    /// Requests answered or refused so far, all paths together.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state.lock().unwrap().routes.insert(path.to_string(), route);
    }

    /// `http://127.0.0.1:PORT/path` (HTTPS servers are addressed as `localhost`, the name in the
    /// certificate).
    pub fn url(&self, path: &str) -> String {
        let host = if self.scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{}://{host}:{}{path}", self.scheme, self.addr.port())
    }

    /// The allow-list entry that admits exactly this server.
    pub fn host_port(&self) -> String {
        let host = if self.scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{host}:{}", self.addr.port())
    }

    pub fn hits(&self, path: &str) -> usize {
        self.state.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    pub fn not_modified(&self, path: &str) -> usize {
        self.state.lock().unwrap().not_modified.get(path).copied().unwrap_or(0)
    }
}

/// Serves `app` on a free port of 127.0.0.1, over TLS with the test CA's certificate when `tls` is
/// given; the server stops when the returned task is aborted.
pub async fn serve(app: Router, tls: Option<&TestTls>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(|tls| tokio_rustls::TlsAcceptor::from(tls.server_config.clone()));
    let (kill, killed) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        // Kept with the task: this server stops only when the task is aborted.
        let _kill = kill;
        accept_loop(listener, app, acceptor, killed).await
    });
    (addr, task)
}

/// A TLS terminator in front of a plain-HTTP server, as an ingress with a private CA would be:
/// `https://localhost:PORT` with the test CA's certificate, forwarding the bytes to `upstream`.
pub struct TlsProxy {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsProxy {
    /// `upstream` as a base URL such as `http://127.0.0.1:PORT`.
    pub async fn start(tls: &TestTls, upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls_stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls_stream, &mut plain).await;
                });
            }
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

/// A CA and a `localhost` / `127.0.0.1` server certificate, generated for this test run.
pub struct TestTls {
    pub server_config: Arc<rustls::ServerConfig>,
    pub ca_pem: String,
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestTls {
    pub fn generate() -> Self {
        hex_core_service::registry::fetch::install_crypto_provider();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hex-core test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

        let cert_chain = vec![server_cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let server_config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(cert_chain, key)
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_pem = ca.pem();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();
        Self {
            server_config: Arc::new(server_config),
            ca_pem,
            ca_file,
            _dir: dir,
        }
    }
}

/// Environment for a service under test: no auth, the given catalog, quiet logs.
pub fn base_env(catalog_json: &str, allowed_hosts: &str, require_https: bool) -> BTreeMap<String, String> {
    [
        ("REGISTRY_CATALOG_JSON", catalog_json.to_string()),
        ("REGISTRY_ALLOWED_HOSTS", allowed_hosts.to_string()),
        ("REGISTRY_REQUIRE_HTTPS", require_https.to_string()),
        ("AUTH_MODE", "none".to_string()),
        ("AUTH_ALLOW_INSECURE_NONE", "true".to_string()),
        ("AUTH_NONE_ROLES", "admin".to_string()),
        ("SERVER_HOST", "127.0.0.1".to_string()),
        ("SERVER_PORT", "0".to_string()),
        ("METRICS_ENABLED", "true".to_string()),
        ("REGISTRY_FETCH_TIMEOUT_MS", "2000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The service running in this test's runtime on a free port, with real HTTP.
pub struct InProcessService {
    pub base_url: String,
    /// With `SERVER_MANAGEMENT_PORT` set (use `0`): the management port's base URL.
    pub management_url: Option<String>,
    pub addr: SocketAddr,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for InProcessService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InProcessService {
    /// Starts the service and waits for the first catalog load to finish (successfully or not).
    pub async fn start(env: &BTreeMap<String, String>) -> Self {
        let config = Config::from_env(&Env::from_map(env)).expect("test configuration is valid");
        let state = app::build_state(&config).expect("state builds");
        let listeners = app::bind(&config).await.expect("binds");
        let addr = listeners.main_addr().unwrap();
        let management = listeners.management_addr().unwrap();
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            app::serve_until(listeners, serve_state, &config.server, std::future::pending())
                .await
                .unwrap();
        });
        let _ = state.registry.refresh().await;
        Self {
            base_url: format!("http://{addr}"),
            management_url: management.map(|m| format!("http://{m}")),
            addr,
            state,
            task,
        }
    }

    /// A URL on the management port (the test must set `SERVER_MANAGEMENT_PORT`).
    pub fn management(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.management_url.as_deref().expect("SERVER_MANAGEMENT_PORT is set")
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

pub fn client() -> reqwest::Client {
    hex_core_service::registry::fetch::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `hex-core-service` binary as a child process; killed on drop.
pub struct ServiceProcess {
    child: Child,
    pub base_url: String,
    /// With `SERVER_MANAGEMENT_PORT` set: the management port's base URL.
    pub management_url: Option<String>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service binary: Cargo names it for the service's own tests; other crates' tests (hex-cli,
/// the operator) find it beside their own test executable in the shared target directory.
pub fn service_binary() -> String {
    if let Some(path) = option_env!("CARGO_BIN_EXE_hex-core-service") {
        return path.to_string();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("hex-core-service");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p hex-core-service` (cargo test --workspace does)",
        path.display()
    );
    path.to_str().unwrap().to_string()
}

impl ServiceProcess {
    /// Spawns the binary with exactly `env` (plus PATH) and waits until it logs its address.
    pub fn spawn(env: &BTreeMap<String, String>) -> Self {
        Self::spawn_binary(&service_binary(), env)
    }

    /// The same with another build of the service (benchmarks compare against a baseline).
    pub fn spawn_binary(binary: &str, env: &BTreeMap<String, String>) -> Self {
        Self::spawn_command(Command::new(binary), env)
    }

    /// The binary under an open-file limit of `limit` (soft and hard), as a container may set it.
    pub fn spawn_with_file_limit(env: &BTreeMap<String, String>, limit: u32) -> Self {
        Self::spawn_command(with_file_limit(limit), env)
    }

    fn spawn_command(mut command: Command, env: &BTreeMap<String, String>) -> Self {
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("service binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<(String, Option<String>)>();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            let mut found = false;
            // The management port is logged before the main address.
            let mut management = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !found && let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = value.get("management_address").and_then(|a| a.as_str()) {
                        management = Some(addr.to_string());
                    }
                    if let Some(addr) = value.get("address").and_then(|a| a.as_str()) {
                        found = true;
                        let _ = addr_tx.send((addr.to_string(), management.clone()));
                    }
                }
                let mut log = log_writer.lock().unwrap();
                // Keep memory bounded under load (one access-log line per request).
                if log.len() >= 5000 {
                    log.drain(..1000);
                }
                log.push(line);
            }
        });
        let (addr, management) = match addr_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "service did not log its address; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self {
            child,
            base_url: format!("http://{addr}"),
            management_url: management.map(|m| format!("http://{m}")),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for `/admin/ready` to answer 200.
    pub async fn wait_ready(&self) {
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(self.url("/admin/ready")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "service never became ready; log:\n{}",
            self.log.lock().unwrap().join("\n")
        );
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// A command that runs the service binary under an open-file limit of `limit`.
pub fn with_file_limit(limit: u32) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", &format!("ulimit -n {limit} && exec \"$0\""), &service_binary()]);
    command
}

/// Path to the repository's demo folder.
pub fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo")
}

/// The environment of the README's run command, for tests: the bundled demo catalog (local
/// artifacts), `AUTH_MODE=none` explicitly allowed, a free port on 127.0.0.1; then `extra`
/// (later entries win), e.g. `&[("IO_ADAPTER_ID", "embedded")]`.
pub fn demo_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let catalog = demo_dir().join("catalog.json");
    let mut env: BTreeMap<String, String> = [
        ("REGISTRY_CATALOG_FILE", catalog.to_str().expect("UTF-8 path")),
        ("REGISTRY_ALLOW_LOCAL_ARTIFACTS", "true"),
        ("REGISTRY_ALLOWED_HOSTS", "localhost"),
        ("REGISTRY_REQUIRE_HTTPS", "true"),
        ("AUTH_MODE", "none"),
        ("AUTH_ALLOW_INSECURE_NONE", "true"),
        ("SERVER_HOST", "127.0.0.1"),
        ("SERVER_PORT", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// `HEX_MODELS_DIR`, or a failure that says how to provide it: tests on the real models never skip.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var("HEX_MODELS_DIR").unwrap_or_else(|_| {
        panic!(
            "HEX_MODELS_DIR is not set: these tests need the real CE-RISE models (../shared/models). \
             Run scripts/test, which sets it, or export HEX_MODELS_DIR=/path/to/shared/models"
        )
    });
    let path = PathBuf::from(&dir);
    assert!(path.is_dir(), "HEX_MODELS_DIR={dir} is not a directory");
    path
}
