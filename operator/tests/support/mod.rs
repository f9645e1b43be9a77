//! Shared support for the operator's integration tests: a real control plane (etcd +
//! kube-apiserver from `scripts/control-plane`), one per test binary, and a fresh namespace plus
//! a `kube::Client` per test.
//!
//! The plane is the one named by `HEX_TEST_KUBECONFIG` (set by `scripts/test`), or else one this
//! test binary starts with `scripts/control-plane up` into a temporary directory. Rust test
//! binaries never run destructors of statics, so the plane a binary starts is stopped by a small
//! watchdog process that waits for the test binary's PID to disappear and then runs
//! `scripts/control-plane down` — this also covers panics, aborts and ^C.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod net;
pub mod netns;
pub mod node;
pub mod replica;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The running control plane this test binary talks to.
pub struct Plane {
    pub kubeconfig: PathBuf,
    /// Directory holding kubectl, helm, kube-apiserver and etcd.
    pub bin_dir: PathBuf,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `[workspace.package] version` of Cargo.toml: the one version of every artifact.
pub fn workspace_version() -> String {
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("read Cargo.toml");
    cargo
        .split("\n[")
        .find(|s| s.starts_with("workspace.package]"))
        .expect("[workspace.package] in Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("version in [workspace.package]")
}

fn control_plane_script() -> PathBuf {
    repo_root().join("scripts/control-plane")
}

/// The control plane of this test binary, started on first use unless `HEX_TEST_KUBECONFIG` names one.
pub fn plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let bin_dir = run_script(&["build"]).trim().to_string();
        if let Some(path) = std::env::var_os("HEX_TEST_KUBECONFIG").filter(|v| !v.is_empty()) {
            let kubeconfig = PathBuf::from(path);
            assert!(
                kubeconfig.is_file(),
                "HEX_TEST_KUBECONFIG={} is not a file; start a plane with `eval \"$(scripts/control-plane up)\"` \
                 and export HEX_TEST_KUBECONFIG=$KUBECONFIG, or unset it to let the tests start one",
                kubeconfig.display()
            );
            return Plane {
                kubeconfig,
                bin_dir: PathBuf::from(bin_dir),
            };
        }
        // `up` without a directory makes (and `down` later removes) its own temporary state dir.
        let exports = run_script(&["up"]);
        let export = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(|v| PathBuf::from(v.trim_matches('\'')))
                .unwrap_or_else(|| panic!("`scripts/control-plane up` printed no {name}:\n{exports}"))
        };
        spawn_down_watchdog(&export("HEX_CP_DIR"));
        let kubeconfig = export("KUBECONFIG");
        Plane {
            kubeconfig,
            bin_dir: PathBuf::from(bin_dir),
        }
    })
}

fn run_script(args: &[&str]) -> String {
    let output = Command::new(control_plane_script())
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/control-plane {args:?}: {e}"));
    assert!(
        output.status.success(),
        "`scripts/control-plane {}` failed ({}); the operator tests need a real control plane: run \
         `scripts/control-plane build`, or start one with `eval \"$(scripts/control-plane up)\"` and export \
         HEX_TEST_KUBECONFIG=$KUBECONFIG",
        args.join(" "),
        output.status
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Stops the plane in `state` once this process has exited, however it exits.
fn spawn_down_watchdog(state: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; exec {down} down {state} >/dev/null 2>&1",
        pid = std::process::id(),
        down = shell_quote(&control_plane_script().to_string_lossy()),
        state = shell_quote(&state.to_string_lossy()),
    );
    Command::new("setsid")
        .args(["-f", "bash", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the control-plane watchdog")
        .wait()
        .expect("setsid -f returns at once");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A `kube::Config` for the plane, defaulting to `namespace`.
pub async fn config(namespace: &str) -> Config {
    let kubeconfig = Kubeconfig::read_from(&plane().kubeconfig).expect("read the test kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config from the test kubeconfig");
    config.default_namespace = namespace.to_string();
    config
}

/// A fresh namespace for one test and a client defaulting to it. Deleted on drop (best effort:
/// without a controller-manager the namespace only turns `Terminating`).
pub struct TestNs {
    pub name: String,
    pub client: Client,
}

impl TestNs {
    pub async fn new(prefix: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}-{:x}-{}-{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos % 0xfffff
        );
        let client = Client::try_from(config(&name).await).expect("client for the test plane");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("hex-core.dev/test".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create test namespace {name}: {e}"));
        Self { name, client }
    }

    /// A client for the same plane whose non-GET requests are counted.
    pub async fn counting_client(&self) -> (Client, Arc<WriteCounter>) {
        let counter = Arc::new(WriteCounter::default());
        let builder = kube::client::ClientBuilder::try_from(config(&self.name).await).expect("client builder");
        let client = builder.with_layer(&CountWritesLayer(counter.clone())).build();
        (client, counter)
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        kubectl(&[&["--namespace", &self.name], args].concat())
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop may run outside any runtime (e.g. during a panic).
        let _ = Command::new(plane().bin_dir.join("kubectl"))
            .args(["--kubeconfig"])
            .arg(&plane().kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs the plane's kubectl against the plane.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    Command::new(plane().bin_dir.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&plane().kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl")
}

/// Counts requests that are not reads (anything but GET), by method and path.
#[derive(Default)]
pub struct WriteCounter {
    count: AtomicUsize,
    log: std::sync::Mutex<Vec<String>>,
}

impl WriteCounter {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        self.log.lock().unwrap().clear();
    }
}

#[derive(Clone)]
pub struct CountWritesLayer(pub Arc<WriteCounter>);

impl<S> tower::Layer<S> for CountWritesLayer {
    type Service = CountWrites<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountWrites {
            inner,
            counter: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CountWrites<S> {
    inner: S,
    counter: Arc<WriteCounter>,
}

impl<S, B> tower::Service<http::Request<B>> for CountWrites<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.method() != http::Method::GET {
            self.counter.count.fetch_add(1, Ordering::SeqCst);
            self.counter
                .log
                .lock()
                .unwrap()
                .push(format!("{} {}", request.method(), request.uri().path()));
        }
        self.inner.call(request)
    }
}

/// Polls `check` until it returns `Some`, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes `name` of kind `K`, ignoring "not found".
pub async fn delete_ignoring_absent<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("delete {name}: {e}"),
    }
}

/// Server-side applies every CRD under `crds/` and waits until each is established.
pub async fn install_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = repo_root().join("crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRDs in {}", dir.display());
    for file in files {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).expect("CRD YAML");
        let name = crd.metadata.name.clone().expect("CRD name");
        crds.patch(
            &name,
            &PatchParams::apply("hex-core-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {}: {e}", file.display()));
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not established within 30 s"))
        .expect("watch the CRD");
    }
}

/// The message of an API error, failing on anything else.
pub fn api_error_message<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// An operator running in this test process, stopped when dropped.
pub struct RunningOperator {
    pub handle: Arc<hex_core_operator::operator::Handle>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningOperator {
    /// Starts the operator on `client`, scoped to `namespace`, without leader election.
    pub fn start(client: Client, namespace: &str) -> Self {
        Self::start_with(
            client,
            hex_core_operator::operator::Options {
                namespaces: vec![namespace.to_string()],
                election: None,
                settings: fast_settings(),
            },
        )
    }

    pub fn start_with(client: Client, options: hex_core_operator::operator::Options) -> Self {
        init_logging();
        let (handle, future) = hex_core_operator::operator::start(client, options);
        let task = tokio::spawn(future);
        Self { handle, task }
    }

    pub fn stop(self) {}
}

impl Drop for RunningOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The operator's default service image in tests (HexCoreServices without `spec.image`).
pub const TEST_DEFAULT_IMAGE: &str = "registry.test/hex-core-service:0.0.0-test";

/// Settings for tests: short backoff cap so convergence retries are quick.
pub fn fast_settings() -> hex_core_operator::controller::Settings {
    hex_core_operator::controller::Settings {
        refresh_timeout: Duration::from_secs(3),
        backoff_cap: Duration::from_secs(2),
        resync: Duration::from_secs(300),
        instance: "test-operator".to_string(),
        default_service_image: TEST_DEFAULT_IMAGE.to_string(),
    }
}

/// Operator logs in test output, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// The smallest valid ModelCatalog: one model `a` 1 with a schema on host `h`.
pub fn minimal_catalog(name: &str) -> hex_core_operator::crd::ModelCatalog {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog", "metadata": {"name": name},
        "spec": {"models": [{"model": "a", "version": "1", "schemaUrl": "https://h/a.json"}]},
    }))
    .expect("a valid ModelCatalog")
}

/// A HexCoreService `name` serving the catalog named `catalog` (host `h` allowed, forward_auth,
/// the shared `http` record store so any replica count is admitted), with `extra_spec`'s fields
/// merged into its spec (e.g. replicas, a PodDisruptionBudget).
pub fn minimal_service(
    name: &str,
    catalog: &str,
    extra_spec: serde_json::Value,
) -> hex_core_operator::crd::HexCoreService {
    let mut spec = serde_json::json!({
        "image": "i:1", "catalogs": {"names": [catalog]}, "registry": {"allowedHosts": ["h"]},
        "ioAdapter": {"id": "http", "baseUrl": "https://records.example"},
        "auth": {"mode": "forward_auth"},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService", "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a valid HexCoreService")
}

/// Builds binaries of other workspace crates (`(package, binary)` pairs) with a nested
/// `cargo build`, and returns the directory they are in (beside this test binary's `deps/`).
/// `cargo test` sets CARGO_* variables (and LD_LIBRARY_PATH) for the test process; build scripts
/// that watch them would see another environment and rebuild, and so would the next `cargo
/// test`. The nested build gets the environment a developer's shell would have.
pub fn build_workspace_binaries(bins: &[(&str, &str)]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_str()) || key.starts_with("CARGO_BUILD_");
        if (key.starts_with("CARGO_") && !keep) || key == "LD_LIBRARY_PATH" || key == "OUT_DIR" {
            command.env_remove(&key);
        }
    }
    command.args(["build", "--quiet"]);
    for (package, bin) in bins {
        command.args(["-p", package, "--bin", bin]);
    }
    let status = command.current_dir(repo_root()).status().expect("run cargo build");
    assert!(status.success(), "cargo build of {bins:?} failed");
    for (_, bin) in bins {
        assert!(
            dir.join(bin).is_file(),
            "{bin} missing in {} after cargo build",
            dir.display()
        );
    }
    dir
}

/// The documents of a multi-document YAML stream as JSON values (empty documents dropped).
pub fn yaml_documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| {
            serde_json::to_value(serde_yaml::Value::deserialize(d).expect("valid YAML")).expect("JSON-compatible YAML")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// A client that acts as ServiceAccount `account` of namespace `account_namespace` (with the
/// groups the API server gives service accounts), defaulting to namespace `namespace`.
pub async fn impersonating_client(namespace: &str, account_namespace: &str, account: &str) -> Client {
    let mut config = config(namespace).await;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{account_namespace}:{account}"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{account_namespace}"),
        "system:authenticated".into(),
    ]);
    Client::try_from(config).expect("an impersonating client")
}

/// A control plane of its own, stopped on drop: for tests that change cluster-wide objects (the
/// CRDs), which on the shared plane other tests use.
pub struct OwnPlane {
    state: PathBuf,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl OwnPlane {
    pub fn up() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("plane");
        let out = Command::new(control_plane_script())
            .arg("up")
            .arg(&state)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/control-plane up");
        assert!(out.status.success(), "scripts/control-plane up failed");
        // Stopped on drop, and by the watchdog when the process ends without dropping it
        // (`std::process::exit`, a crash): its daemons must not outlive the test.
        spawn_down_watchdog(&state);
        let exports = String::from_utf8(out.stdout).unwrap();
        let kubeconfig = exports
            .lines()
            .find_map(|l| l.strip_prefix("export KUBECONFIG="))
            .map(|v| PathBuf::from(v.trim_matches('\'')))
            .expect("KUBECONFIG export");
        Self {
            state,
            kubeconfig,
            _dir: dir,
        }
    }

    /// A client of this plane, defaulting to `namespace`.
    pub async fn client(&self, namespace: &str) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read the plane's kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kube config");
        config.default_namespace = namespace.to_string();
        Client::try_from(config).expect("a client of the plane")
    }
}

impl Drop for OwnPlane {
    fn drop(&mut self) {
        let _ = Command::new(control_plane_script())
            .arg("down")
            .arg(&self.state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A free TCP port on 127.0.0.1 (bound once and released), for a process the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A data-plane pod of the HexCoreService `svc` as the operator labels it (no kubelet runs it).
pub fn data_plane_pod(name: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {
            "app.kubernetes.io/name": "hex-core-service", "app.kubernetes.io/instance": "svc",
            "app.kubernetes.io/managed-by": "hex-core-operator", "app.kubernetes.io/part-of": "hex-core"}},
        "spec": {"containers": [{"name": "hex-core-service", "image": "i:1"}]},
    }))
    .unwrap()
}
