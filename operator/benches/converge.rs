//! Benchmark: 200 ModelCatalogs and 50 HexCoreServices created at once against the test control
//! plane, reconciled by the real `hex-core-operator` binary (release build) in its own process.
//!
//! Measures time until everything converged (all children applied, status set), per-service
//! convergence latency (median, p99), API writes, the writes during a following quiet period
//! (must be zero), and the operator's RSS.
//!
//!   cargo bench -p hex-core-operator --bench converge
//!
//! Environment: HEX_TEST_KUBECONFIG (else a plane is started), HEX_BENCH_CATALOGS (200),
//! HEX_BENCH_SERVICES (50), HEX_BENCH_QUIET_SECS (60).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::TestNs;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn operator_writes(http: &reqwest::Client, addr: &str) -> u64 {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("operator /metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("hexcore_operator_writes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// resourceVersion of every object the operator touches in the namespace.
async fn versions(client: &Client, ns: &str) -> BTreeMap<String, String> {
    async fn of<K>(client: &Client, ns: &str, out: &mut BTreeMap<String, String>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        for o in api.list(&ListParams::default()).await.unwrap() {
            out.insert(
                format!("{}/{}", K::kind(&()), o.name_any()),
                o.resource_version().unwrap_or_default(),
            );
        }
    }
    let mut out = BTreeMap::new();
    of::<ModelCatalog>(client, ns, &mut out).await;
    of::<HexCoreService>(client, ns, &mut out).await;
    of::<ConfigMap>(client, ns, &mut out).await;
    of::<Deployment>(client, ns, &mut out).await;
    of::<Service>(client, ns, &mut out).await;
    of::<Secret>(client, ns, &mut out).await;
    out
}

fn converged(h: &HexCoreService) -> bool {
    let Some(status) = &h.status else { return false };
    status.observed_generation == h.metadata.generation
        && status.catalog_sha256.is_some()
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "CatalogSynced" && c.status == "True")
}

#[tokio::main]
async fn main() {
    let n_catalogs = env_usize("HEX_BENCH_CATALOGS", 200);
    let n_services = env_usize("HEX_BENCH_SERVICES", 50);
    let quiet = Duration::from_secs(env_usize("HEX_BENCH_QUIET_SECS", 60) as u64);

    let ns = TestNs::new("bench").await;
    support::install_crds(&ns.client).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut operator = Command::new(env!("CARGO_BIN_EXE_hex-core-operator"))
        .args(["--namespaces", &ns.name, "--http-addr", &addr, "--no-leader-election"])
        .env("KUBECONFIG", &support::plane().kubeconfig)
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start hex-core-operator");
    let pid = operator.id();
    let http = reqwest::Client::new();
    support::eventually(Duration::from_secs(20), "operator /readyz", || async {
        let r = http.get(format!("http://{addr}/readyz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let (rss_idle, _) = rss_kib(pid);

    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);

    // Every service selects the catalogs of its group (n_catalogs / n_services each).
    let started = Instant::now();
    let mut creates = Vec::new();
    for i in 0..n_catalogs {
        let group = i % n_services;
        let models: Vec<_> = (0..5)
            .map(|m| {
                json!({"model": format!("model-{i}-{m}"), "version": "1.0.0",
                             "schemaUrl": format!("https://models.example/{i}/{m}/schema.json")})
            })
            .collect();
        let mc: ModelCatalog = serde_json::from_value(json!({
            "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog",
            "metadata": {"name": format!("catalog-{i}"), "labels": {"group": format!("g{group}")}},
            "spec": {"models": models},
        }))
        .unwrap();
        let api = catalogs.clone();
        creates.push(tokio::spawn(async move {
            api.create(&PostParams::default(), &mc).await.map(|_| ())
        }));
    }
    for j in 0..n_services {
        let hcs: HexCoreService = serde_json::from_value(json!({
            "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService",
            "metadata": {"name": format!("svc-{j}")},
            "spec": {"image": "hex-core-service:bench", "replicas": 2,
                     "catalogs": {"selector": {"matchLabels": {"group": format!("g{j}")}}},
                     "registry": {"allowedHosts": ["models.example"]},
                     "ioAdapter": {"id": "http", "baseUrl": "https://records.example"},
                     "auth": {"mode": "forward_auth"}},
        }))
        .unwrap();
        let api = services.clone();
        creates.push(tokio::spawn(async move {
            api.create(&PostParams::default(), &hcs).await.map(|_| ())
        }));
    }
    let _ = stream::iter(creates).buffer_unordered(64).collect::<Vec<_>>().await;
    let created = started.elapsed();

    // Poll until every service converged with its full catalog and Deployment.
    let per_group = n_catalogs / n_services;
    let mut done: BTreeMap<String, Duration> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while done.len() < n_services && Instant::now() < deadline {
        let list = services.list(&ListParams::default()).await.unwrap();
        let deployed: std::collections::BTreeSet<String> = deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.name_any())
            .collect();
        for h in list {
            let full = h
                .status
                .as_ref()
                .and_then(|s| s.catalogs.as_ref())
                .is_some_and(|c| c.len() >= per_group);
            if converged(&h) && full && deployed.contains(&h.name_any()) && !done.contains_key(&h.name_any()) {
                done.insert(h.name_any(), started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catalogs_done = catalogs
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.status
                .as_ref()
                .is_some_and(|s| s.observed_generation == c.metadata.generation)
        })
        .count();
    let total = done.values().max().copied().unwrap_or_default();
    let writes_converge = operator_writes(&http, &addr).await;
    let (rss_after_converge, _) = rss_kib(pid);

    // Quiet period: nothing changes, nothing must be written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes_before = operator_writes(&http, &addr).await;
    let versions_before = versions(&ns.client, &ns.name).await;
    tokio::time::sleep(quiet).await;
    let writes_quiet = operator_writes(&http, &addr).await - writes_before;
    let versions_after = versions(&ns.client, &ns.name).await;
    let changed: Vec<&String> = versions_before
        .iter()
        .filter(|(k, v)| versions_after.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let (rss, hwm) = rss_kib(pid);
    let _ = operator.kill();
    let _ = operator.wait();

    let mut latencies: Vec<f64> = done.values().map(|d| d.as_secs_f64()).collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!("hex-core-operator convergence benchmark ({n_catalogs} ModelCatalogs, {n_services} HexCoreServices)");
    println!("| metric                                   | value        |");
    println!("|------------------------------------------|--------------|");
    println!(
        "| objects created (client side)            | {:>9.2} s  |",
        created.as_secs_f64()
    );
    println!(
        "| services converged                       | {:>5}/{:<6} |",
        done.len(),
        n_services
    );
    println!(
        "| catalogs with status                     | {:>5}/{:<6} |",
        catalogs_done, n_catalogs
    );
    println!(
        "| time to full convergence                 | {:>9.2} s  |",
        total.as_secs_f64()
    );
    println!(
        "| per-service convergence, median          | {:>9.2} s  |",
        percentile(&latencies, 0.5)
    );
    println!(
        "| per-service convergence, p99             | {:>9.2} s  |",
        percentile(&latencies, 0.99)
    );
    println!(
        "| throughput (services converged / s)      | {:>9.1}    |",
        done.len() as f64 / total.as_secs_f64().max(1e-9)
    );
    println!(
        "| API writes until convergence             | {:>9}    |",
        writes_converge
    );
    println!(
        "| API writes in the quiet {:>3} s            | {:>9}    |",
        quiet.as_secs(),
        writes_quiet
    );
    println!("| objects changed in the quiet period      | {:>9}    |", changed.len());
    println!(
        "| operator RSS idle (before objects)       | {:>7.1} MiB |",
        mib(rss_idle)
    );
    println!(
        "| operator RSS after convergence           | {:>7.1} MiB |",
        mib(rss_after_converge)
    );
    println!(
        "| operator RSS at end / peak (VmHWM)       | {:>4.1} / {:>4.1} MiB |",
        mib(rss),
        mib(hwm)
    );
    println!();
    let mut failures = Vec::new();
    if done.len() < n_services {
        failures.push(format!("only {}/{n_services} services converged", done.len()));
    }
    if total > Duration::from_secs(30) {
        failures.push(format!("convergence took {:.1} s (> 30 s)", total.as_secs_f64()));
    }
    if writes_quiet > 0 || !changed.is_empty() {
        failures.push(format!(
            "quiet period: {writes_quiet} writes, changed objects {changed:?}"
        ));
    }
    if hwm > 64 * 1024 {
        failures.push(format!("peak RSS {:.1} MiB (> 64 MiB)", mib(hwm)));
    }
    if !failures.is_empty() {
        eprintln!("benchmark targets missed: {}", failures.join("; "));
        std::process::exit(1);
    }
}
