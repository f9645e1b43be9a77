//! End to end on a real single-node cluster (`scripts/node up`: kubelet, containerd, kube-proxy,
//! controller-manager, scheduler): the chart's operator pods, and data-plane pods built from this
//! checkout's images, serving the real CE-RISE models. Nothing is stood in for: the kubelet
//! syncs the catalog ConfigMap into the pods' volume, the endpoints controller publishes the
//! replicas, the operator authenticates with its ServiceAccount token through the `kubernetes`
//! Service. The scenarios share one node and one operator installation, so they run in order in
//! one test; each step names its scenario (the numbers of issue 14) when it fails.
//!
//! `hex-cli status` (built from this checkout) is run against the converged and the failing
//! services and must agree with what each pod reports itself.
//!
//! The figures the project tracks (apply → Ready, catalog edit → converged on 3 replicas) are
//! printed to stderr.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use hex_core_operator::crd::{HexCoreService, HexCoreServiceStatus, ModelCatalog};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::node::{Node, chart_at_revision, node, split_image};
use support::{eventually, repo_root};

/// The operator's release: namespace, name (also the Deployment, ServiceAccount and Lease name).
const OPERATOR_NS: &str = "hex-core-system";
const RELEASE: &str = "hex-core-operator";
/// The chart as first merged (version 0.1.0): `helm upgrade` starts from it. Move it to the
/// previous release's commit when a chart version is released.
const PREVIOUS_CHART_REVISION: &str = "c0feb3c4309ada99e7640841a70c3257e5a430b1";
/// Namespaces of the data planes under test.
const KEPT_NS: &str = "hex-node-kept";
const PASSPORTS_NS: &str = "hex-node-passports";
const FAULTS_NS: &str = "hex-node-faults";

const POD_WAIT: Duration = Duration::from_secs(180);

/// Figures printed past the test harness's capture, so scripts/test's log shows them.
fn figure(line: &str) {
    let _ = writeln!(std::io::stderr(), "node e2e: {line}");
}

/// Serves the CE-RISE models (`HEX_MODELS_DIR/<model>/<version>/<file>`) and the demo model
/// (`/demo/<model>/<version>/<file>` from `demo/models`) over HTTP on the node's host address,
/// where pods reach it over the node's bridge.
async fn artifact_server(node: &Node) -> SocketAddr {
    let models = PathBuf::from(std::env::var_os("HEX_MODELS_DIR").unwrap_or_else(|| {
        panic!(
            "HEX_MODELS_DIR is not set: the node tests serve the real CE-RISE models from it \
             (scripts/test sets it to ../shared/models)"
        )
    }));
    let demo = repo_root().join("demo/models");
    let read = |root: PathBuf, path: String| async move { read_under(&root, &path).await };
    let app = Router::new()
        .route(
            "/demo/{*path}",
            get(move |UrlPath(path): UrlPath<String>| read(demo.clone(), path)),
        )
        .route(
            "/models/{*path}",
            get(move |UrlPath(path): UrlPath<String>| read(models.clone(), path)),
        );
    let listener = tokio::net::TcpListener::bind((node.host_ip, 0))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "bind the artifact server on the node's host address {}: {e}",
                node.host_ip
            )
        });
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The file at `path` under `root` (no `..`, no empty segment), or the status to answer.
async fn read_under(root: &std::path::Path, path: &str) -> Result<Vec<u8>, StatusCode> {
    if path.split('/').any(|s| s == ".." || s.is_empty()) {
        return Err(StatusCode::BAD_REQUEST);
    }
    tokio::fs::read(root.join(path))
        .await
        .map_err(|_| StatusCode::NOT_FOUND)
}

/// examples/gitops' ModelCatalog (the four CE-RISE models), its URLs pointed at the artifact server.
fn ce_rise_catalog(artifacts: SocketAddr) -> Value {
    let yaml = std::fs::read_to_string(repo_root().join("examples/gitops/modelcatalog.yaml")).unwrap();
    let mut catalog: Value = serde_yaml::from_str(&yaml).unwrap();
    let models = catalog["spec"]["models"].as_array_mut().unwrap();
    for entry in models.iter_mut() {
        let (model, version) = (
            entry["model"].as_str().unwrap().to_string(),
            entry["version"].as_str().unwrap().to_string(),
        );
        let published = format!("https://codeberg.org/CE-RISE-models/{model}/raw/tag/pages-v{version}/generated/");
        for (key, value) in entry.as_object_mut().unwrap() {
            if key.ends_with("Url") {
                let file = value.as_str().unwrap().strip_prefix(&published).unwrap().to_string();
                *value = json!(format!("http://{artifacts}/models/{model}/{version}/{file}"));
            }
        }
    }
    let metadata = catalog["metadata"].as_object_mut().unwrap();
    metadata.remove("annotations");
    metadata.remove("namespace");
    catalog
}

fn demo_model(artifacts: SocketAddr, name: &str) -> Value {
    json!({
        "model": name, "version": "0.1.0",
        "schemaUrl": format!("http://{artifacts}/demo/demo-passport/0.1.0/schema.json"),
        "rootClass": "Passport",
    })
}

fn service(node: &Node, name: &str, catalog: &str, replicas: i32) -> HexCoreService {
    serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService",
        "metadata": {"name": name},
        "spec": {
            "image": node.service_image, "replicas": replicas,
            "catalogs": {"names": [catalog]},
            "registry": {"allowedHosts": [node.host_ip.to_string()], "requireHttps": false},
            // More than one replica needs a record store they share (the CRD's rule). These
            // scenarios validate and list models, never write records: the http adapter's URL
            // (nothing listens there) is only configured, never called.
            "ioAdapter": {"id": "http", "baseUrl": format!("http://{}:9/records", node.host_ip)},
            // A production auth mode: the operator's refresh can only succeed with the machine
            // admin token it mounts; callers authenticate with the forward-auth headers.
            "auth": {"mode": "forward_auth"},
            // The CE-RISE models take a few CPU-seconds to compile; the default 500m limit works,
            // only slower.
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        },
    }))
    .unwrap()
}

async fn ensure_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// Removes what an earlier run on the same node left behind (a developer's reused node).
async fn reset(node: &Node, client: &Client) {
    let _ = node.run("helm", &["uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait"]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [KEPT_NS, PASSPORTS_NS, FAULTS_NS, OPERATOR_NS] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    eventually(
        Duration::from_secs(120),
        "namespaces of an earlier run to be deleted",
        || async {
            for ns in [KEPT_NS, PASSPORTS_NS, FAULTS_NS, OPERATOR_NS] {
                if namespaces.get_opt(ns).await.ok()?.is_some() {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

/// The status once `name` reports Ready with all `replicas` ready and converged on the
/// delivered catalog, for the current generation.
async fn converged(services: &Api<HexCoreService>, name: &str, replicas: i32) -> Option<HexCoreServiceStatus> {
    let hcs = services.get(name).await.ok()?;
    let status = hcs.status?;
    let sha = status.catalog_sha256.clone()?;
    let ready = status.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?.status == "True";
    let expected = format!("{replicas}/{replicas} on {}", &sha[..12]);
    (ready
        && status.observed_generation == hcs.metadata.generation
        && status.ready_replicas == Some(replicas)
        && status.catalog_convergence.as_deref() == Some(expected.as_str()))
    .then_some(status)
}

async fn wait_converged(services: &Api<HexCoreService>, name: &str, replicas: i32, what: &str) -> HexCoreServiceStatus {
    let deadline = Instant::now() + POD_WAIT;
    loop {
        if let Some(status) = converged(services, name, replicas).await {
            return status;
        }
        if Instant::now() > deadline {
            let hcs = services.get(name).await.ok();
            panic!(
                "{what}: HexCoreService {name} not Ready on {replicas}/{replicas} replicas within {POD_WAIT:?}; status: {}",
                serde_json::to_string_pretty(&hcs.and_then(|h| h.status)).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The running, ready pods of a HexCoreService.
async fn service_pods(pods: &Api<Pod>, name: &str) -> Vec<Pod> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
        .collect()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a ready pod has an IP")
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap()
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

fn image_of(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0].image.clone().unwrap()
}

/// What a replica reports on `GET /admin/ready` (from the test process, over the node's bridge).
async fn ready_report(http: &reqwest::Client, pod: &Pod) -> Value {
    http.get(format!("http://{}:8080/admin/ready", pod_ip(pod)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /admin/ready on pod {:?}: {e}", pod.metadata.name))
        .json()
        .await
        .unwrap()
}

async fn model_names(http: &reqwest::Client, pod: &Pod) -> BTreeSet<String> {
    let models: Value = http
        .get(format!("http://{}:8080/models", pod_ip(pod)))
        .header("x-auth-subject", "node-e2e")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    models["models"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /models: {models}"))
        .iter()
        .map(|m| {
            m["id"]
                .as_str()
                .unwrap_or_else(|| panic!("GET /models: {models}"))
                .to_string()
        })
        .collect()
}

/// Every ready replica reports `sha` itself and serves exactly `models`.
async fn assert_every_replica_serves(
    http: &reqwest::Client,
    pods: &[Pod],
    sha: &str,
    models: &BTreeSet<String>,
    scenario: &str,
) {
    for pod in pods {
        let report = ready_report(http, pod).await;
        assert_eq!(
            report["catalog_sha256"], sha,
            "{scenario}: pod {:?} reports {report}",
            pod.metadata.name
        );
        assert_eq!(
            &model_names(http, pod).await,
            models,
            "{scenario}: models served by pod {:?}",
            pod.metadata.name
        );
    }
}

/// A golden case of the service's corpus: the payload (its base with the case's JSON patch
/// applied) and the documented verdict.
fn golden_case(name: &str) -> (Value, bool, BTreeSet<(String, String, String)>) {
    let dir = repo_root().join("service/tests/golden/re-indicators-specification");
    let case: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases").join(name)).unwrap()).unwrap();
    let models = std::env::var_os("HEX_MODELS_DIR").unwrap();
    let base = PathBuf::from(models)
        .join("re-indicators-specification/0.0.5")
        .join(case["base"].as_str().unwrap());
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(base).unwrap()).unwrap();
    for op in case["patch"].as_array().into_iter().flatten() {
        let pointer = op["path"].as_str().unwrap();
        match op["op"].as_str().unwrap() {
            "replace" => *payload.pointer_mut(pointer).unwrap() = op["value"].clone(),
            other => panic!("golden case {name}: patch op {other} is not used here"),
        }
    }
    let errors = case["expect"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.as_array().unwrap();
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_str().unwrap().to_string(),
                e[2].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (payload, case["expect"]["passed"].as_bool().unwrap(), errors)
}

/// Validates through the Service's ClusterIP (kube-proxy's rules on this host pick a pod).
/// Ready replicas reach the Service's rules when kube-proxy next syncs (its minimum interval is
/// 1 s), so right after `Ready` a connection may still be refused: retried for 30 s.
async fn validate_through_service(http: &reqwest::Client, cluster_ip: &str, payload: &Value) -> Value {
    let url = format!("http://{cluster_ip}:8080/models/re-indicators-specification/versions/0.0.5:validate");
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        let sent = http
            .post(&url)
            .header("x-auth-subject", "node-e2e")
            .json(&json!({"payload": payload}))
            .send()
            .await;
        match sent {
            Ok(response) => break response,
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("POST {url}: {e}"),
        }
    };
    assert_eq!(response.status(), 200, "POST {url}");
    response.json().await.unwrap()
}

fn error_findings(report: &Value) -> BTreeSet<(String, String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["severity"] == "error")
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default().to_string(),
                r["path"].as_str().unwrap_or_default().to_string(),
                r["constraint"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Under a ClusterRole that refuses one of its watches: the Lease holder's pod is running but
/// not ready (its /readyz names the refused watch), the standby's pod is ready.
async fn leader_not_ready_standby_ready(client: &Client) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NS);
    let deadline = Instant::now() + POD_WAIT;
    let mut seen = String::from("nothing listed yet");
    loop {
        if let Ok(list) = pods
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}")))
            .await
        {
            let holder = leases
                .get_opt(RELEASE)
                .await
                .ok()
                .flatten()
                .and_then(|l| l.spec?.holder_identity)
                .unwrap_or_default();
            let live: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let describe = |p: &Pod| {
                format!(
                    "{} (phase {:?}, ready {})",
                    p.metadata.name.as_deref().unwrap_or("?"),
                    p.status.as_ref().and_then(|s| s.phase.clone()),
                    is_ready(p)
                )
            };
            seen = format!(
                "Lease holder {holder:?}; pods: {}",
                live.iter().map(|p| describe(p)).collect::<Vec<_>>().join(", ")
            );
            let is_holder = |p: &&&Pod| p.metadata.name.as_deref() == Some(holder.as_str());
            let leader = live.iter().find(is_holder);
            let standby_ready = live.iter().any(|p| !is_holder(&p) && is_ready(p));
            if let Some(leader) = leader {
                let running = leader.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if live.len() == 2 && running && !is_ready(leader) && standby_ready {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {POD_WAIT:?} waiting for the operator's leader to be not ready (refused watch) \
             and its standby ready; last seen: {seen}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The operator's pods, all ready, and the Lease holder among them.
async fn operator_pods(client: &Client, replicas: usize) -> (Vec<Pod>, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NS);
    eventually(
        POD_WAIT,
        "the operator's pods to be ready and one to hold the Lease",
        || async {
            let list = pods
                .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}")))
                .await
                .ok()?;
            let ready: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
                .collect();
            let holder = leases.get_opt(RELEASE).await.ok()??.spec?.holder_identity?;
            (ready.len() == replicas
                && ready
                    .iter()
                    .any(|p| p.metadata.name.as_deref() == Some(holder.as_str())))
            .then_some((ready, holder))
        },
    )
    .await
}

fn helm_image_args(node: &Node) -> Vec<String> {
    let (repository, tag) = split_image(&node.operator_image);
    vec![
        "--set".into(),
        format!("image.repository={repository}"),
        "--set".into(),
        format!("image.tag={tag}"),
    ]
}

fn helm(node: &Node, verb: &str, chart: &str, extra: &[&str]) -> String {
    helm_with(node, verb, chart, true, extra)
}

fn helm_with(node: &Node, verb: &str, chart: &str, wait: bool, extra: &[&str]) -> String {
    let mut args: Vec<String> = vec![
        verb.into(),
        RELEASE.into(),
        chart.into(),
        "--namespace".into(),
        OPERATOR_NS.into(),
    ];
    if wait {
        args.extend(["--wait".into(), "--timeout".into(), "180s".into()]);
    }
    args.extend(helm_image_args(node));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    node.ok("helm", &args)
}

/// Scenario 8: `helm install` of the previous chart, `helm upgrade` to this one, `helm uninstall`:
/// CRDs and the users' resources (and their running pods) are kept.
///
/// The previous chart runs this checkout's operator image (the previous release's image is not
/// available offline). Its RBAC lacks what this operator watches (pods, PersistentVolumeClaims),
/// so under it the operator cannot reconcile: resources created then are converged by the
/// upgraded release. An upgrade taking over a data plane the previous *operator* built is not
/// tested here.
async fn scenario_8_upgrade_and_uninstall(node: &Node, client: &Client, artifacts: SocketAddr) {
    let scenario = "scenario 8 (helm upgrade from the previous chart, helm uninstall)";
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let previous = chart_at_revision(PREVIOUS_CHART_REVISION, tmp.path());
    // Not `--wait`: under the previous RBAC the leader's pod watch is refused, so the leader
    // reports not ready (a rollout waiting for it fails, as it should), the standby ready.
    helm_with(
        node,
        "install",
        previous.to_str().unwrap(),
        false,
        &["--create-namespace"],
    );
    leader_not_ready_standby_ready(client).await;

    ensure_namespace(client, KEPT_NS).await;
    let catalogs: Api<ModelCatalog> = Api::namespaced(client.clone(), KEPT_NS);
    let services: Api<HexCoreService> = Api::namespaced(client.clone(), KEPT_NS);
    let catalog: ModelCatalog = serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog",
        "metadata": {"name": "demo"},
        "spec": {"models": [demo_model(artifacts, "demo-passport")]},
    }))
    .unwrap();
    catalogs.create(&PostParams::default(), &catalog).await.unwrap();
    services
        .create(&PostParams::default(), &service(node, "kept", "demo", 1))
        .await
        .unwrap();

    let chart = repo_root().join("charts/hex-core-operator");
    helm(node, "upgrade", chart.to_str().unwrap(), &[]);
    let history = node.ok("helm", &["history", RELEASE, "--namespace", OPERATOR_NS, "-o", "json"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "{scenario}: install + upgrade: {history}"
    );
    operator_pods(client, 2).await;
    let first = wait_converged(&services, "kept", 1, scenario).await;
    // The upgraded operator keeps the running data plane: an edit converges.
    catalogs
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"models": [
                demo_model(artifacts, "demo-passport"), demo_model(artifacts, "demo-passport-copy")]}})),
        )
        .await
        .unwrap();
    let edited = eventually(POD_WAIT, "the upgraded operator to converge an edit", || async {
        let status = converged(&services, "kept", 1).await?;
        (status.catalog_sha256 != first.catalog_sha256).then_some(status)
    })
    .await;

    node.ok("helm", &["uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait"]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NS);
    assert!(
        deployments.get_opt(RELEASE).await.unwrap().is_none(),
        "{scenario}: the operator is uninstalled"
    );
    node.ok(
        "kubectl",
        &[
            "get",
            "crd",
            "modelcatalogs.hex-core.dev",
            "hexcoreservices.hex-core.dev",
        ],
    );
    assert!(
        catalogs.get_opt("demo").await.unwrap().is_some(),
        "{scenario}: the catalog is kept"
    );
    let kept = services.get("kept").await.unwrap();
    assert_eq!(
        kept.status.and_then(|s| s.catalog_sha256),
        edited.catalog_sha256,
        "{scenario}: the HexCoreService is kept"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), KEPT_NS);
    assert_eq!(
        service_pods(&pods, "kept").await.len(),
        1,
        "{scenario}: the data plane keeps running without the operator"
    );
    figure(&format!("{scenario}: ok in {:.1?}", started.elapsed()));
}

/// Scenario 1: `helm install` of this chart with this checkout's operator image, 2 replicas: both
/// ready, one holds the Lease, running as the chart's ServiceAccount (no impersonation: the pods
/// authenticate with their own token through the `kubernetes` Service).
async fn scenario_1_install(node: &Node, client: &Client) -> String {
    let scenario = "scenario 1 (helm install)";
    let started = Instant::now();
    let chart = repo_root().join("charts/hex-core-operator");
    helm(node, "install", chart.to_str().unwrap(), &["--create-namespace"]);
    let (pods, holder) = operator_pods(client, 2).await;
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.service_account_name.as_deref(), Some(RELEASE), "{scenario}");
        assert_eq!(image_of(pod), node.operator_image, "{scenario}");
        assert_eq!(restarts(pod), 0, "{scenario}: pod {:?} restarted", pod.metadata.name);
    }
    // The leader's metrics: it leads, and no reconcile failed (a forbidden request would).
    let http = reqwest::Client::new();
    let leader = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(holder.as_str()))
        .unwrap();
    let metrics = http
        .get(format!("http://{}:8081/metrics", pod_ip(leader)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hexcore_operator_leader 1"), "{scenario}: {metrics}");
    figure(&format!("{scenario}: ok in {:.1?}; leader {holder}", started.elapsed()));
    holder
}

struct Passports {
    services: Api<HexCoreService>,
    catalogs: Api<ModelCatalog>,
    pods: Api<Pod>,
    models: BTreeSet<String>,
    catalog_models: Vec<Value>,
}

/// Scenario 2: the CE-RISE catalog and a 3-replica HexCoreService: 3 pods ready, Ready=True,
/// `3/3 on <hash>`, and real payloads validated through the Service get the documented verdicts.
async fn scenario_2_real_models(node: &Node, client: &Client, artifacts: SocketAddr) -> Passports {
    let scenario = "scenario 2 (the CE-RISE models on 3 replicas)";
    ensure_namespace(client, PASSPORTS_NS).await;
    let catalogs: Api<ModelCatalog> = Api::namespaced(client.clone(), PASSPORTS_NS);
    let services: Api<HexCoreService> = Api::namespaced(client.clone(), PASSPORTS_NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), PASSPORTS_NS);
    let catalog = ce_rise_catalog(artifacts);
    let catalog_models: Vec<Value> = catalog["spec"]["models"].as_array().unwrap().clone();
    let catalog: ModelCatalog = serde_json::from_value(catalog).unwrap();
    let models: BTreeSet<String> = catalog_models
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_string())
        .collect();
    catalogs.create(&PostParams::default(), &catalog).await.unwrap();
    let applied = Instant::now();
    services
        .create(&PostParams::default(), &service(node, "passports", "ce-rise", 3))
        .await
        .unwrap();
    let status = wait_converged(&services, "passports", 3, scenario).await;
    figure(&format!(
        "HexCoreService apply -> Ready (3 replicas, 4 CE-RISE models): {:.1?}",
        applied.elapsed()
    ));
    let wait = node.ok(
        "kubectl",
        &[
            "wait",
            "--for=condition=Ready",
            "hexcoreservice/passports",
            "-n",
            PASSPORTS_NS,
            "--timeout=10s",
        ],
    );
    assert!(wait.contains("condition met"), "{scenario}: {wait}");

    let http = reqwest::Client::new();
    let ready = service_pods(&pods, "passports").await;
    assert_eq!(ready.len(), 3, "{scenario}");
    let sha = status.catalog_sha256.clone().unwrap();
    assert_every_replica_serves(&http, &ready, &sha, &models, scenario).await;

    let services_v1: Api<Service> = Api::namespaced(client.clone(), PASSPORTS_NS);
    let cluster_ip = services_v1
        .get("passports")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("the Service has a ClusterIP");
    for case in ["valid-example.json", "array-where-single-value.json"] {
        let (payload, passed, errors) = golden_case(case);
        let report = validate_through_service(&http, &cluster_ip, &payload).await;
        assert_eq!(report["passed"], passed, "{scenario}: {case}: {report}");
        assert_eq!(error_findings(&report), errors, "{scenario}: {case}: {report}");
    }
    figure(&format!("{scenario}: ok"));
    Passports {
        services,
        catalogs,
        pods,
        models,
        catalog_models,
    }
}

/// Changes the catalog (adds or removes the demo model) and waits until every replica serves
/// it; returns the time it took.
async fn edit_catalog(p: &mut Passports, artifacts: SocketAddr, add_demo: bool, scenario: &str) -> Duration {
    let before = p
        .services
        .get("passports")
        .await
        .unwrap()
        .status
        .unwrap()
        .catalog_sha256;
    let mut models = p.catalog_models.clone();
    if add_demo {
        models.push(demo_model(artifacts, "demo-passport"));
    }
    let names: BTreeSet<String> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_string())
        .collect();
    let edited = Instant::now();
    p.catalogs
        .patch(
            "ce-rise",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"models": models}})),
        )
        .await
        .unwrap();
    let status = eventually(
        POD_WAIT,
        &format!("{scenario}: convergence on the edited catalog"),
        || async {
            let status = converged(&p.services, "passports", 3).await?;
            (status.catalog_sha256 != before).then_some(status)
        },
    )
    .await;
    let took = edited.elapsed();
    let http = reqwest::Client::new();
    let ready = service_pods(&p.pods, "passports").await;
    assert_every_replica_serves(
        &http,
        &ready,
        status.catalog_sha256.as_deref().unwrap(),
        &names,
        scenario,
    )
    .await;
    p.models = names;
    took
}

/// Scenario 3: a catalog edit reaches every replica through the kubelet's volume sync and the
/// operator's refresh, with no pod restarted.
async fn scenario_3_catalog_edit(p: &mut Passports, artifacts: SocketAddr) {
    let scenario = "scenario 3 (catalog edit)";
    let before: BTreeMap<String, i32> = service_pods(&p.pods, "passports")
        .await
        .iter()
        .map(|pod| (uid(pod), restarts(pod)))
        .collect();
    let took = edit_catalog(p, artifacts, true, scenario).await;
    figure(&format!("catalog edit -> converged on 3 replicas: {took:.1?}"));
    let after: BTreeMap<String, i32> = service_pods(&p.pods, "passports")
        .await
        .iter()
        .map(|pod| (uid(pod), restarts(pod)))
        .collect();
    assert_eq!(after, before, "{scenario}: the same pods (UIDs), none restarted");
    assert!(after.values().all(|r| *r == 0), "{scenario}: restartCount 0: {after:?}");
    figure(&format!("{scenario}: ok"));
}

/// Waits until the 3 ready replicas all run `image`, none of `old_uids`, converged.
async fn wait_rolled_out(p: &Passports, image: &str, old_uids: &BTreeSet<String>, what: &str) {
    eventually(POD_WAIT, what, || async {
        converged(&p.services, "passports", 3).await?;
        let pods = service_pods(&p.pods, "passports").await;
        let all = p
            .pods
            .list(&ListParams::default().labels("app.kubernetes.io/instance=passports"))
            .await
            .ok()?;
        (pods.len() == 3
            && all.items.len() == 3
            && pods
                .iter()
                .all(|pod| image_of(pod) == image && !old_uids.contains(&uid(pod))))
        .then_some(())
    })
    .await;
}

/// Scenario 5: a new `spec.image` (a second tag of the same image) rolls the replicas and
/// converges; restoring the previous `spec.image` rolls back (the GitOps way: the operator undoes
/// `kubectl set image` on its Deployment, which this checks too).
async fn scenario_5_image_change(node: &Node, client: &Client, p: &Passports) {
    let scenario = "scenario 5 (image change and rollback)";
    let started = Instant::now();
    let (repository, tag) = split_image(&node.service_image);
    let second = format!("{repository}:{tag}-second");
    node.script(&[
        "ctr",
        "images",
        "tag",
        "--force",
        &format!("docker.io/library/{}", node.service_image),
        &format!("docker.io/library/{second}"),
    ]);
    let uids = |pods: Vec<Pod>| pods.iter().map(uid).collect::<BTreeSet<_>>();
    let original = uids(service_pods(&p.pods, "passports").await);
    p.services
        .patch(
            "passports",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": second}})),
        )
        .await
        .unwrap();
    wait_rolled_out(p, &second, &original, &format!("{scenario}: rollout to {second}")).await;

    // `kubectl set image` on the Deployment is reverted to spec.image.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), PASSPORTS_NS);
    node.ok(
        "kubectl",
        &[
            "set",
            "image",
            "deployment/passports",
            &format!("hex-core-service={}", node.service_image),
            "-n",
            PASSPORTS_NS,
        ],
    );
    eventually(
        POD_WAIT,
        "the operator to restore spec.image on its Deployment",
        || async {
            let d = deployments.get("passports").await.ok()?;
            let image = d.spec?.template.spec?.containers[0].image.clone()?;
            (image == second).then_some(())
        },
    )
    .await;

    let rolled = uids(service_pods(&p.pods, "passports").await);
    p.services
        .patch(
            "passports",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": node.service_image}})),
        )
        .await
        .unwrap();
    wait_rolled_out(
        p,
        &node.service_image,
        &rolled,
        &format!("{scenario}: rollback to {}", node.service_image),
    )
    .await;
    figure(&format!("{scenario}: ok in {:.1?}", started.elapsed()));
}

/// Scenario 6: a deleted service pod is replaced and converges; the leader operator pod deleted,
/// the standby takes over; kube-apiserver restarted, the operator and the replicas carry on.
async fn scenario_6_failures(node: &Node, client: &Client, p: &mut Passports, artifacts: SocketAddr) {
    let scenario = "scenario 6 (failures)";
    let started = Instant::now();

    // A service pod deleted.
    let victim = service_pods(&p.pods, "passports").await.remove(0);
    p.pods
        .delete(victim.metadata.name.as_deref().unwrap(), &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        POD_WAIT,
        &format!("{scenario}: the deleted pod replaced and converged"),
        || async {
            converged(&p.services, "passports", 3).await?;
            let pods = service_pods(&p.pods, "passports").await;
            (pods.len() == 3 && pods.iter().all(|pod| uid(pod) != uid(&victim))).then_some(())
        },
    )
    .await;
    let http = reqwest::Client::new();
    let sha = p
        .services
        .get("passports")
        .await
        .unwrap()
        .status
        .unwrap()
        .catalog_sha256
        .unwrap();
    assert_every_replica_serves(
        &http,
        &service_pods(&p.pods, "passports").await,
        &sha,
        &p.models,
        scenario,
    )
    .await;
    assert_cli_status_shows_every_replica(node, &p.pods, PASSPORTS_NS, "passports", scenario).await;

    // The leader operator pod deleted: the standby takes over and keeps converging edits.
    let (_, leader) = operator_pods(client, 2).await;
    let operator_pods_api: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    operator_pods_api
        .delete(&leader, &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NS);
    let new_leader = eventually(POD_WAIT, &format!("{scenario}: a new Lease holder"), || async {
        let holder = leases.get_opt(RELEASE).await.ok()??.spec?.holder_identity?;
        (holder != leader && !holder.is_empty()).then_some(holder)
    })
    .await;
    figure(&format!(
        "leader pod deleted -> {new_leader} holds the Lease after {:.1?}",
        deleted.elapsed()
    ));
    let took = edit_catalog(p, artifacts, false, scenario).await;
    figure(&format!("catalog edit under the new leader -> converged: {took:.1?}"));
    operator_pods(client, 2).await;

    // kube-apiserver restarted: nobody restarts, and the next edit converges.
    let before: BTreeMap<String, (String, i32)> = {
        let mut all = BTreeMap::new();
        for pod in service_pods(&p.pods, "passports").await {
            all.insert(pod.metadata.name.clone().unwrap(), (uid(&pod), restarts(&pod)));
        }
        for pod in operator_pods(client, 2).await.0 {
            all.insert(pod.metadata.name.clone().unwrap(), (uid(&pod), restarts(&pod)));
        }
        all
    };
    let restarted = Instant::now();
    node.script(&["restart-apiserver"]);
    figure(&format!("kube-apiserver restarted in {:.1?}", restarted.elapsed()));
    let took = edit_catalog(p, artifacts, true, scenario).await;
    figure(&format!(
        "catalog edit after the API server restart -> converged: {took:.1?}"
    ));
    let mut after = BTreeMap::new();
    for pod in service_pods(&p.pods, "passports").await {
        after.insert(pod.metadata.name.clone().unwrap(), (uid(&pod), restarts(&pod)));
    }
    for pod in operator_pods(client, 2).await.0 {
        after.insert(pod.metadata.name.clone().unwrap(), (uid(&pod), restarts(&pod)));
    }
    assert_eq!(
        after, before,
        "{scenario}: the same pods, none restarted, across the API server restart"
    );
    figure(&format!("{scenario}: ok in {:.1?}", started.elapsed()));
}

/// An artifact server for the demo model whose first `failures` requests answer 503 (an
/// artifact host restarting, a proxy without upstream). Returns its address and the number of
/// failures still to serve.
async fn flaky_artifact_server(node: &Node, failures: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let remaining = Arc::new(AtomicUsize::new(failures));
    let demo = repo_root().join("demo/models");
    let left = remaining.clone();
    let app = Router::new().route(
        "/demo/{*path}",
        get(move |UrlPath(path): UrlPath<String>| {
            let (demo, left) = (demo.clone(), left.clone());
            async move {
                if left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(StatusCode::SERVICE_UNAVAILABLE);
                }
                read_under(&demo, &path).await
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind((node.host_ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, remaining)
}

fn condition(status: &HexCoreServiceStatus, type_: &str) -> Option<(String, String, String)> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The hex-cli binary of this checkout (built once by a nested `cargo build`: the operator's
/// tests do not otherwise depend on the CLI crate).
fn hex_cli() -> &'static std::path::Path {
    static HEX_CLI: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HEX_CLI.get_or_init(|| support::build_workspace_binaries(&[("hex-cli", "hex-cli")]).join("hex-cli"))
}

/// `hex-cli status NAME -n NAMESPACE -o json` with the node's kubeconfig: its exit code and report.
/// (A tokio process: the test's runtime keeps serving the artifacts meanwhile.)
async fn cli_status(node: &Node, namespace: &str, name: &str) -> (i32, Value) {
    let out = tokio::process::Command::new(hex_cli())
        .args(["status", name, "-n", namespace, "-o", "json", "--kubeconfig"])
        .arg(&node.kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run hex-cli status");
    let code = out.status.code().expect("hex-cli exited");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hex-cli status {namespace}/{name} printed no JSON ({e}), exit {code}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

/// `hex-cli status` of a converged HexCoreService: Ready (exit 0), every running pod listed
/// with the catalog hash its own `/admin/ready` reports, and that hash the delivered one.
async fn assert_cli_status_shows_every_replica(
    node: &Node,
    pods: &Api<Pod>,
    namespace: &str,
    name: &str,
    scenario: &str,
) {
    let http = reqwest::Client::new();
    let running = service_pods(pods, name).await;
    let (code, report) = cli_status(node, namespace, name).await;
    assert_eq!(code, 0, "{scenario}: hex-cli status of a Ready service: {report:#}");
    assert_eq!(report["ready"], true, "{scenario}: {report:#}");
    let listed: BTreeMap<String, &Value> = report["replicaStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["pod"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    let expected: BTreeSet<String> = running.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    assert_eq!(
        listed.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{scenario}: hex-cli status lists every running pod: {report:#}"
    );
    for pod in &running {
        let own = ready_report(&http, pod).await;
        let replica = listed[pod.metadata.name.as_deref().unwrap()];
        assert_eq!(
            replica["catalogSha256"], own["catalog_sha256"],
            "{scenario}: hex-cli status and pod {:?}'s /admin/ready disagree on the catalog",
            pod.metadata.name
        );
        assert_eq!(replica["catalogMatches"], true, "{scenario}: {replica}");
        assert_eq!(replica["catalogSha256"], report["catalogSha256"], "{scenario}");
    }
    let pod_names: BTreeSet<String> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ready"] == true && p["problem"].is_null())
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        pod_names.is_superset(&expected),
        "{scenario}: pods in hex-cli status: {report:#}"
    );
}

/// Scenario 4: one artifact answers 503 to its first requests. Each replica retries on its
/// own; the HexCoreService must not say Ready while any replica lacks the model, and must
/// converge once the artifact answers.
async fn scenario_4_transient_artifact_failure(node: &Node, client: &Client, artifacts: SocketAddr) {
    let scenario = "scenario 4 (a transient artifact failure)";
    let started = Instant::now();
    ensure_namespace(client, FAULTS_NS).await;
    // Eight failures over two replicas: each replica fails about four times, with the
    // registry's backoff (0.5 s doubling) several seconds in which a replica lacks the model.
    let (flaky, remaining) = flaky_artifact_server(node, 8).await;
    let catalogs: Api<ModelCatalog> = Api::namespaced(client.clone(), FAULTS_NS);
    let services: Api<HexCoreService> = Api::namespaced(client.clone(), FAULTS_NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), FAULTS_NS);
    let catalog: ModelCatalog = serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog",
        "metadata": {"name": "flaky"},
        "spec": {"models": [demo_model(artifacts, "demo-passport"), demo_model(flaky, "demo-flaky")]},
    }))
    .unwrap();
    catalogs.create(&PostParams::default(), &catalog).await.unwrap();
    services
        .create(&PostParams::default(), &service(node, "flaky", "flaky", 2))
        .await
        .unwrap();
    let wanted: BTreeSet<String> = ["demo-passport", "demo-flaky"].map(String::from).into();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + POD_WAIT;
    let mut reasons_seen = BTreeSet::new();
    loop {
        let hcs = services.get("flaky").await.unwrap();
        if let Some(status) = hcs.status.as_ref() {
            let ready = condition(status, "Ready");
            if let Some((value, reason, _)) = &ready
                && value != "True"
            {
                reasons_seen.insert(reason.clone());
            }
            if matches!(&ready, Some((value, _, _)) if value == "True") {
                // Loaded models are never dropped while the catalog stays the same, so a
                // replica without the model now lacked it when Ready was reported.
                let running = service_pods(&pods, "flaky").await;
                for pod in &running {
                    assert_eq!(
                        model_names(&http, pod).await,
                        wanted,
                        "{scenario}: Ready=True while pod {:?} lacks a model; status: {}",
                        pod.metadata.name,
                        serde_json::to_string_pretty(status).unwrap()
                    );
                }
                if converged(&services, "flaky", 2).await.is_some() {
                    break;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{scenario}: not converged within {POD_WAIT:?} ({} failures left to serve); status: {}",
            remaining.load(Ordering::SeqCst),
            serde_json::to_string_pretty(&hcs.status).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        remaining.load(Ordering::SeqCst),
        0,
        "{scenario}: the artifact server served all its 503s (else nothing was tested)"
    );
    let running = service_pods(&pods, "flaky").await;
    assert_eq!(running.len(), 2, "{scenario}");
    for pod in &running {
        let report = ready_report(&http, pod).await;
        assert_eq!(report["failed_entries"], json!([]), "{scenario}: {report}");
        assert_eq!(restarts(pod), 0, "{scenario}: retried in place, no restart");
    }
    assert_cli_status_shows_every_replica(node, &pods, FAULTS_NS, "flaky", scenario).await;

    // A permanent failure (the artifact is not there: 404): hex-cli status exits 1 and names the
    // model, the artifact and the operator's Warning Event.
    let missing = json!({
        "model": "demo-missing", "version": "0.1.0",
        "schemaUrl": format!("http://{artifacts}/demo/demo-missing/0.1.0/schema.json"),
    });
    let all = |extra: Option<Value>| {
        let mut models = vec![demo_model(artifacts, "demo-passport"), demo_model(flaky, "demo-flaky")];
        models.extend(extra);
        json!({"spec": {"models": models}})
    };
    catalogs
        .patch("flaky", &PatchParams::default(), &Patch::Merge(all(Some(missing))))
        .await
        .unwrap();
    let failing = Instant::now();
    let report = eventually(
        POD_WAIT,
        &format!("{scenario}: hex-cli status naming demo-missing and the ModelLoadFailed Event"),
        || async {
            let (code, report) = cli_status(node, FAULTS_NS, "flaky").await;
            let replicas = report["replicaStatuses"].as_array()?;
            let every_replica_names_it = replicas.len() == 2
                && replicas.iter().all(|r| {
                    r["failedEntries"].as_array().is_some_and(|f| {
                        f.iter().any(|e| {
                            e["model"] == "demo-missing" && e["artifact"] == "schema" && e["transient"] == false
                        })
                    })
                });
            let event = report["events"].as_array()?.iter().any(|e| {
                e["reason"] == "ModelLoadFailed"
                    && e["object"] == "HexCoreService/flaky"
                    && e["message"].as_str().is_some_and(|m| m.contains("demo-missing"))
            });
            (code == 1 && every_replica_names_it && event).then_some(report)
        },
    )
    .await;
    assert_eq!(report["ready"], false, "{scenario}: {report:#}");
    let table = tokio::process::Command::new(hex_cli())
        .args(["status", "flaky", "-n", FAULTS_NS, "-o", "table", "--kubeconfig"])
        .arg(&node.kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1), "{scenario}: {text}");
    assert!(
        text.contains("Not Ready") && text.contains("demo-missing@0.1.0") && text.contains("ModelLoadFailed"),
        "{scenario}: the table names the failed model and the Event:\n{text}"
    );
    figure(&format!(
        "{scenario}: a 404 artifact -> hex-cli status names it with the Event after {:.1?}",
        failing.elapsed()
    ));
    catalogs
        .patch("flaky", &PatchParams::default(), &Patch::Merge(all(None)))
        .await
        .unwrap();
    wait_converged(&services, "flaky", 2, &format!("{scenario}: without demo-missing")).await;
    figure(&format!(
        "{scenario}: ok in {:.1?}; Ready reasons while a replica lacked the model: {reasons_seen:?}",
        started.elapsed()
    ));
}

/// Scenario 7: a value the API server accepts but the service refuses: the pods exit 2 and the
/// HexCoreService's Ready condition says why, from the container's termination message; fixing
/// the spec brings it back. (Numeric bounds can no longer be such a value: the CRD carries the
/// service's own ranges. A CORS origin with a path is one the schema does not judge.)
async fn scenario_7_refused_spec(node: &Node, client: &Client) {
    let scenario = "scenario 7 (a spec the service refuses)";
    let started = Instant::now();
    ensure_namespace(client, FAULTS_NS).await;
    let services: Api<HexCoreService> = Api::namespaced(client.clone(), FAULTS_NS);
    let mut refused = service(node, "refused", "flaky", 1);
    refused.spec.server = Some(hex_core_operator::crd::ServerSpec {
        cors: Some(hex_core_operator::crd::CorsSpec {
            allowed_origins: vec!["https://app.example/console".into()],
            allow_credentials: None,
            max_age_seconds: None,
        }),
        ..Default::default()
    });
    services.create(&PostParams::default(), &refused).await.unwrap();
    let (reason, message) = eventually(POD_WAIT, &format!("{scenario}: the reason in Ready"), || async {
        let status = services.get("refused").await.ok()?.status?;
        let (value, reason, message) = condition(&status, "Ready")?;
        (value == "False" && message.contains("CORS_ALLOWED_ORIGINS")).then_some((reason, message))
    })
    .await;
    assert_eq!(reason, "PodsCrashLooping", "{scenario}: {message}");
    let report = eventually(
        POD_WAIT,
        &format!("{scenario}: hex-cli status naming the crash loop and the kubelet's BackOff Event"),
        || async {
            let (code, report) = cli_status(node, FAULTS_NS, "refused").await;
            let crashing = report["pods"].as_array()?.iter().any(|p| {
                p["problem"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("CrashLoopBackOff") && m.contains("CORS_ALLOWED_ORIGINS"))
            });
            let back_off = report["events"].as_array()?.iter().any(|e| {
                e["reason"] == "BackOff" && e["object"].as_str().is_some_and(|o| o.starts_with("Pod/refused-"))
            });
            (code == 1 && crashing && back_off).then_some(report)
        },
    )
    .await;
    assert_eq!(report["reason"], "PodsCrashLooping", "{scenario}: {report:#}");
    figure(&format!(
        "{scenario}: Ready=False {reason} after {:.1?}: {message}",
        started.elapsed()
    ));
    services
        .patch(
            "refused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"server": {"cors": {"allowedOrigins": ["https://app.example"]}}}})),
        )
        .await
        .unwrap();
    wait_converged(&services, "refused", 1, &format!("{scenario}: after the fix")).await;
    figure(&format!("{scenario}: ok in {:.1?}", started.elapsed()));
}

#[tokio::test]
async fn the_chart_and_the_operator_run_real_data_planes_on_a_real_node() {
    support::init_logging();
    let node = node();
    // hex-cli is what scenarios 4, 6 and 7 read the HexCoreServices with; built before anything
    // runs, so a build failure says so at once.
    hex_cli();
    let client = node.client().await;
    reset(node, &client).await;
    let artifacts = artifact_server(node).await;

    scenario_8_upgrade_and_uninstall(node, &client, artifacts).await;
    let _leader = scenario_1_install(node, &client).await;
    let mut passports = scenario_2_real_models(node, &client, artifacts).await;
    scenario_3_catalog_edit(&mut passports, artifacts).await;
    scenario_5_image_change(node, &client, &passports).await;
    scenario_6_failures(node, &client, &mut passports, artifacts).await;
    scenario_4_transient_artifact_failure(node, &client, artifacts).await;
    scenario_7_refused_spec(node, &client).await;

    // The data plane kept from scenario 8 was adopted by the reinstalled operator.
    let kept: Api<HexCoreService> = Api::namespaced(client.clone(), KEPT_NS);
    wait_converged(&kept, "kept", 1, "the kept data plane under the reinstalled operator").await;
}
