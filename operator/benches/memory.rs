//! Benchmark: the operator's peak memory in a cluster with large Secrets it has nothing to do with
//! (the scenario of issue 15: 240 Secrets of 512 KiB in an unrelated namespace), watching all
//! namespaces, with one HexCoreService to reconcile. Prints the peak RSS (VmHWM) of the operator
//! built from this tree and, when `HEX_BENCH_BASELINE` names another operator binary (e.g. one
//! built from main), of that binary in the same run on the same cluster.
//!
//!   cargo bench -p hex-core-operator --bench memory
//!   HEX_BENCH_BASELINE=/tmp/hex-core-operator-main cargo bench -p hex-core-operator --bench memory
//!
//! Environment: HEX_BENCH_SECRETS (240), HEX_BENCH_SECRET_KIB (512), HEX_BENCH_LAST_APPLIED (unset;
//! `1` gives every Secret the `kubectl.kubernetes.io/last-applied-configuration` annotation that
//! `kubectl apply` writes, which repeats its data in its metadata). The benchmark runs on a control
//! plane of its own: in all-namespaces mode the operator would reconcile other tests' objects.
//! Exits non-zero when the peak of this tree's operator is 40 MiB or more.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use serde_json::json;

const TARGET_MIB: f64 = 40.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
}

async fn create_secrets(client: &Client, namespace: &str, count: usize, size: usize, last_applied: bool) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let creates = (0..count).map(|i| {
        let secrets = secrets.clone();
        async move {
            let mut bytes = vec![0u8; size];
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1);
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let name = format!("blob-{i}");
            let mut annotations = BTreeMap::new();
            if last_applied {
                let applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                    "data": {"blob": ByteString(bytes.clone())}});
                annotations.insert(
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    applied.to_string(),
                );
            }
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name),
                    annotations: Some(annotations),
                    ..Default::default()
                },
                data: Some([("blob".to_string(), ByteString(bytes))].into()),
                ..Default::default()
            };
            secrets.create(&PostParams::default(), &secret).await.map(|_| ())
        }
    });
    let results: Vec<_> = stream::iter(creates).buffer_unordered(8).collect().await;
    for r in results {
        r.expect("create a Secret");
    }
}

async fn reconciles(http: &reqwest::Client, addr: &str) -> u64 {
    let Ok(response) = http.get(format!("http://{addr}/metrics")).send().await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("hexcore_operator_reconciles_total{") && l.contains("hexcoreservice"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Runs `binary` in all-namespaces mode until it reconciled the HexCoreService and a few seconds
/// more; returns (peak RSS, RSS at the end) in KiB.
async fn measure(binary: &Path, kubeconfig: &Path) -> (u64, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(binary)
        .args(["--http-addr", &addr, "--no-leader-election"])
        .env("KUBECONFIG", kubeconfig)
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let pid = child.id();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while reconciles(&http, &addr).await == 0 {
        assert!(
            Instant::now() < deadline,
            "{} reconciled nothing in 120 s",
            binary.display()
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited: {status}", binary.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (peak, now) = (status_kib(pid, "VmHWM:"), status_kib(pid, "VmRSS:"));
    let _ = child.kill();
    let _ = child.wait();
    (peak, now)
}

#[tokio::main]
async fn main() {
    let count = env_usize("HEX_BENCH_SECRETS", 240);
    let kib = env_usize("HEX_BENCH_SECRET_KIB", 512);
    let last_applied = std::env::var("HEX_BENCH_LAST_APPLIED").is_ok_and(|v| v == "1");
    let baseline = std::env::var_os("HEX_BENCH_BASELINE").map(PathBuf::from);

    let plane = support::OwnPlane::up();
    let client = plane.client("default").await;
    support::install_crds(&client).await;
    create_namespace(&client, "unrelated").await;
    create_namespace(&client, "team").await;
    let started = Instant::now();
    create_secrets(&client, "unrelated", count, kib * 1024, last_applied).await;
    let created = started.elapsed();
    let catalogs: Api<ModelCatalog> = Api::namespaced(client.clone(), "team");
    catalogs
        .create(&PostParams::default(), &support::minimal_catalog("c"))
        .await
        .unwrap();
    let services: Api<HexCoreService> = Api::namespaced(client.clone(), "team");
    services
        .create(
            &PostParams::default(),
            &support::minimal_service("svc", "c", json!({"replicas": 2})),
        )
        .await
        .unwrap();

    let current = PathBuf::from(env!("CARGO_BIN_EXE_hex-core-operator"));
    let mut rows = Vec::new();
    if let Some(baseline) = &baseline {
        rows.push((
            "baseline",
            baseline.clone(),
            measure(baseline, &plane.kubeconfig).await,
            load_average(),
        ));
    }
    rows.push((
        "this tree",
        current.clone(),
        measure(&current, &plane.kubeconfig).await,
        load_average(),
    ));

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!(
        "hex-core-operator memory benchmark: {count} Secrets of {kib} KiB in an unrelated namespace{} \
         (created in {:.1} s), all-namespaces mode, one HexCoreService",
        if last_applied {
            ", each with a kubectl last-applied annotation"
        } else {
            ""
        },
        created.as_secs_f64()
    );
    println!("| operator  | peak RSS (VmHWM) | RSS at the end | load average (1/5/15 min) | binary");
    println!("|-----------|------------------|----------------|---------------------------|-------");
    for (label, path, (peak, now), load) in &rows {
        println!(
            "| {label:<9} | {:>12.1} MiB | {:>10.1} MiB | {load:<25} | {}",
            mib(*peak),
            mib(*now),
            path.display()
        );
    }
    println!();
    drop(plane); // stop the control plane before any `exit`, which runs no destructor
    let (_, _, (peak, _), _) = rows.last().unwrap();
    if mib(*peak) >= TARGET_MIB {
        eprintln!(
            "benchmark target missed: peak {:.1} MiB (target < {TARGET_MIB} MiB)",
            mib(*peak)
        );
        std::process::exit(1);
    }
}
