//! End to end without a kubelet: the real `hex-core-service` binary runs locally, standing in for
//! a pod. The test plays the kubelet's two parts: it keeps a local catalog file in sync with the
//! catalog ConfigMap (the volume sync) and publishes an EndpointSlice with a ready endpoint (the
//! endpoints controller). The API server refuses loopback addresses in EndpointSlices (`may not
//! be in the loopback range`), so the service runs in a network namespace this test creates,
//! joined to the host by a veth pair of its own: the "pod" has a non-loopback address and no
//! traffic leaves the machine. Changing the ModelCatalog must then reach the running process
//! through the operator's refresh, with no restart, and the HexCoreService status must report
//! convergence on the new catalog. (`operator/tests/node.rs` runs the same flow on real pods.)

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use hex_core_operator::desired::{CATALOG_KEY, sha256_hex};
use hex_core_operator::replicas::{Endpoint, ReplicaClient};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::replica::endpoint_slice;
use support::{RunningOperator, TestNs, eventually, install_crds, repo_root};

const WAIT: Duration = Duration::from_secs(60);

/// Serves `demo/models/**` over plain HTTP on `host` (the artifact host of the catalogs).
async fn artifact_server(host: std::net::Ipv4Addr) -> SocketAddr {
    let root = repo_root().join("demo/models");
    let app = Router::new().route(
        "/models/{*path}",
        get(move |UrlPath(path): UrlPath<String>| {
            let root = root.clone();
            async move {
                if path.split('/').any(|s| s == ".." || s.is_empty()) {
                    return Err(StatusCode::BAD_REQUEST);
                }
                tokio::fs::read(root.join(path))
                    .await
                    .map_err(|_| StatusCode::NOT_FOUND)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The `hex-core-service` binary of this workspace, built on demand.
fn service_binary() -> PathBuf {
    // Test binaries live in <target>/debug/deps; the service binary in <target>/debug.
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("hex-core-service");
    // `cargo test --workspace` (scripts/test) has built it already; rebuild only when a service
    // source is newer, so a targeted run never tests a stale binary.
    if path.is_file() && newest_mtime(&repo_root().join("service")) <= mtime(&path) {
        return path;
    }
    support::build_workspace_binaries(&[("hex-core-service", "hex-core-service")]).join("hex-core-service")
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// Newest modification time of the files under `dir` (sources, manifest, contract).
fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = mtime(dir);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            mtime(&path)
        };
        newest = newest.max(t);
    }
    newest
}

struct ServiceProcess(Child);

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn model(name: &str, version: &str, artifacts: SocketAddr) -> Value {
    let base = format!("http://{artifacts}/models/demo-passport/0.1.0");
    json!({
        "model": name, "version": version,
        "schemaUrl": format!("{base}/schema.json"),
        "rootClass": "Passport",
    })
}

async fn write_file(path: &Path, bytes: &[u8]) {
    // Write-then-rename, as the kubelet's atomic writer does, so a refresh never reads half a file.
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await.unwrap();
    tokio::fs::rename(&tmp, path).await.unwrap();
}

#[tokio::test]
async fn a_changed_catalog_reaches_the_running_service_without_a_restart() {
    let binary = service_binary();
    let pod_net = support::netns::PodNetwork::new();
    let artifacts = artifact_server(pod_net.host_address).await;
    let ns = TestNs::new("e2e").await;
    install_crds(&ns.client).await;
    let _operator = RunningOperator::start(ns.client.clone(), &ns.name);
    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);

    let mc: ModelCatalog = serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog",
        "metadata": {"name": "demo"},
        "spec": {"models": [model("demo-passport", "0.1.0", artifacts)]},
    }))
    .unwrap();
    catalogs.create(&PostParams::default(), &mc).await.unwrap();
    // forward_auth, a production mode: the only way the operator's refresh can be authorised is
    // the machine admin token (the operator sends no forward-auth headers), so convergence below
    // proves the whole login path: Secret created, mounted as AUTH_ADMIN_TOKEN_FILE, presented.
    let hcs: HexCoreService = serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService",
        "metadata": {"name": "dp"},
        "spec": {
            "image": "hex-core-service:dev", "replicas": 1,
            "catalogs": {"names": ["demo"]},
            "registry": {"allowedHosts": [pod_net.host_address.to_string()], "requireHttps": false},
            "auth": {"mode": "forward_auth"},
        },
    }))
    .unwrap();
    services.create(&PostParams::default(), &hcs).await.unwrap();

    // What the kubelet would mount: the env ConfigMap, the catalog file, the admin token.
    let env: BTreeMap<String, String> = eventually(WAIT, "env ConfigMap", || async {
        config_maps.get_opt("dp-env").await.unwrap().and_then(|c| c.data)
    })
    .await;
    let first_catalog = eventually(WAIT, "catalog ConfigMap", || async {
        config_maps
            .get_opt("dp-catalog")
            .await
            .unwrap()?
            .data?
            .get(CATALOG_KEY)
            .cloned()
    })
    .await;
    let token = eventually(WAIT, "admin token Secret", || async {
        let s = secrets.get_opt("dp-admin-token").await.unwrap()?;
        Some(String::from_utf8(s.data?.get("token")?.0.clone()).unwrap())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let catalog_file = dir.path().join("catalog.json");
    let token_file = dir.path().join("token");
    write_file(&catalog_file, first_catalog.as_bytes()).await;
    write_file(&token_file, token.as_bytes()).await;

    // The kubelet's volume sync, standing in: copy the ConfigMap's bytes into the file.
    let sync_api = config_maps.clone();
    let sync_file = catalog_file.clone();
    let volume_sync = tokio::spawn(async move {
        let mut last = String::new();
        loop {
            if let Ok(Some(cm)) = sync_api.get_opt("dp-catalog").await
                && let Some(bytes) = cm.data.and_then(|d| d.get(CATALOG_KEY).cloned())
                && bytes != last
            {
                write_file(&sync_file, bytes.as_bytes()).await;
                last = bytes;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });

    // The pod, standing in: the real binary with the operator's environment, in its own
    // network namespace.
    let host = pod_net.pod_address;
    let port = 8080;
    let mut command = pod_net.command(&binary);
    command.env_clear().envs(&env).envs([
        ("REGISTRY_CATALOG_FILE", catalog_file.to_str().unwrap()),
        ("AUTH_ADMIN_TOKEN_FILE", token_file.to_str().unwrap()),
        ("SERVER_HOST", &host.to_string()),
        ("SERVER_PORT", &port.to_string()),
        // The pods' fixed management port: the namespace is this test's own.
        ("SERVER_MANAGEMENT_PORT", "9464"),
        ("LOG_LEVEL", "warn"),
    ]);
    let process = ServiceProcess(command.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap());
    let pid = process.0.id();
    let base = format!("http://{host}:{port}");
    let http = reqwest::Client::new();
    eventually(WAIT, "the service to be ready", || async {
        let r = http.get(format!("{base}/admin/ready")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    // The endpointslice controller, standing in: one ready endpoint for the Service, labelled as
    // that controller labels slices (the Service's labels copied).
    let slices: Api<EndpointSlice> = Api::namespaced(ns.client.clone(), &ns.name);
    let address = std::net::SocketAddr::from((host, port));
    let slice: EndpointSlice = serde_json::from_value(endpoint_slice(
        "dp-local",
        "dp",
        port,
        &[(address, "dp-local-pod", true)],
    ))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();

    let first_sha = sha256_hex(first_catalog.as_bytes());
    let converged_on = |sha: String| {
        let services = services.clone();
        async move {
            let status = services.get("dp").await.ok()?.status?;
            let ready = status.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
            (status.catalog_sha256.as_deref() == Some(sha.as_str())
                && status.catalog_convergence.as_deref() == Some(format!("1/1 on {}", &sha[..12]).as_str())
                && ready.status == "True")
                .then_some(())
        }
    };
    eventually(WAIT, "convergence on the first catalog", || {
        converged_on(first_sha.clone())
    })
    .await;
    let wait = ns.kubectl(&["wait", "--for=condition=Ready", "hexcoreservice/dp", "--timeout=10s"]);
    assert!(
        wait.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&wait.stderr)
    );

    // The change: a second model in the catalog.
    catalogs
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"models": [
                model("demo-passport", "0.1.0", artifacts),
                model("demo-passport-copy", "0.2.0", artifacts),
            ]}})),
        )
        .await
        .unwrap();
    let second_catalog = eventually(WAIT, "the new catalog ConfigMap", || async {
        let bytes = config_maps
            .get("dp-catalog")
            .await
            .ok()?
            .data?
            .get(CATALOG_KEY)
            .cloned()?;
        (bytes != first_catalog).then_some(bytes)
    })
    .await;
    let second_sha = sha256_hex(second_catalog.as_bytes());
    eventually(WAIT, "convergence on the second catalog", || {
        converged_on(second_sha.clone())
    })
    .await;

    // The running process serves the new model, it was never restarted, and reports the hash.
    // (A caller behind the forward-auth proxy: the proxy's subject header.)
    let models: Value = http
        .get(format!("{base}/models"))
        .header("x-auth-subject", "e2e-reader")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = models.to_string();
    assert!(text.contains("demo-passport-copy"), "GET /models: {text}");
    let ready: Value = http
        .get(format!("{base}/admin/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["catalog_sha256"], second_sha);
    assert_eq!(process.0.id(), pid);
    let mut process = process;
    assert!(
        process.0.try_wait().unwrap().is_none(),
        "the service process is still the same, running one"
    );
    let status = services.get("dp").await.unwrap().status.unwrap();
    assert!(status.last_refresh_time.is_some());
    // Each replica's own account: the real binary's version, entries loaded, nothing failed.
    let replica = &status.replica_statuses.as_ref().unwrap()[0];
    assert_eq!(replica.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert!(replica.converged && replica.ready);
    assert_eq!(replica.failed_entries, None);

    // The admin endpoint really is guarded: no credential, a wrong token, or a forward-auth
    // caller without the admin role are all refused; the machine token is accepted.
    let refresh = format!("{base}/admin/registry/refresh");
    let no_credential = http.post(&refresh).send().await.unwrap().status();
    assert_eq!(no_credential, 401);
    let wrong_token = http
        .post(&refresh)
        .bearer_auth("not-the-admin-token-0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);
    let reader = http
        .post(&refresh)
        .header("x-auth-subject", "e2e-reader")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(reader, 403, "a caller without the admin role");
    let machine = http.post(&refresh).bearer_auth(&token).send().await.unwrap();
    assert_eq!(machine.status(), 200, "{:?}", machine.text().await);
    volume_sync.abort();
}

/// A real HTTP server with the admin endpoints' contract: it accepts the refresh only with the
/// expected Bearer token, and then reports `after_refresh` as its catalog.
async fn admin_stub(token: &'static str, after_refresh: &'static str) -> SocketAddr {
    let reported = std::sync::Arc::new(std::sync::Mutex::new("old"));
    let (ready_state, refresh_state) = (reported.clone(), reported);
    let app = Router::new()
        .route(
            "/admin/ready",
            get(move || {
                let sha = *ready_state.lock().unwrap();
                async move { axum::Json(json!({"status": "ready", "catalog_sha256": sha, "failed_entries": []})) }
            }),
        )
        .route(
            "/admin/registry/refresh",
            post(move |headers: HeaderMap| {
                let state = refresh_state.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if auth != Some(format!("Bearer {token}").as_str()) {
                        return Err(StatusCode::UNAUTHORIZED);
                    }
                    *state.lock().unwrap() = after_refresh;
                    Ok(axum::Json(
                        json!({"catalog_sha256": after_refresh, "models_found": 1, "errors": []}),
                    ))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_replica_client_presents_the_admin_token_and_reads_the_replica_after_a_refresh() {
    let client = ReplicaClient::new(Duration::from_secs(2)).unwrap();
    let addr = admin_stub("s3cret", "wanted").await;
    let endpoint = Endpoint {
        authority: addr.to_string(),
        pod: None,
        ready: true,
    };
    let before = client.read(&endpoint, None).await;
    assert_eq!(before.report.unwrap().catalog_sha256.as_deref(), Some("old"));
    let wrong = client.refresh(&endpoint, "wrong").await;
    assert_eq!(
        wrong.report.unwrap().catalog_sha256.as_deref(),
        Some("old"),
        "a refused refresh changes nothing; the replica is still read"
    );
    let after = client.refresh(&endpoint, "s3cret").await;
    let report = after.report.unwrap();
    assert!(report.serves("wanted"), "{report:?}");
    let closed = Endpoint {
        authority: format!("127.0.0.1:{}", support::free_port()),
        pod: None,
        ready: true,
    };
    let error = client.refresh(&closed, "s3cret").await.report.unwrap_err();
    assert!(
        error.contains("/admin/registry/refresh"),
        "why it was not refreshed: {error}"
    );
}
