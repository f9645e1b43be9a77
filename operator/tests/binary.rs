//! The `hex-core-operator` binary itself: `crdgen`, and `run` with its health, readiness and
//! metrics endpoints and JSON logs.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{eventually, plane, repo_root};

const BIN: &str = env!("CARGO_BIN_EXE_hex-core-operator");

#[test]
fn crdgen_writes_the_committed_crds() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args(["crdgen", "--out"])
        .arg(out.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut files: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    for file in files {
        let committed = std::fs::read_to_string(repo_root().join("crds").join(file.file_name().unwrap())).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), committed, "{}", file.display());
    }
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn run_serves_health_readiness_and_metrics_and_logs_json() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let ns = support::TestNs::new("bin").await;
    support::install_crds(&ns.client).await;
    let mut child = Child(
        Command::new(BIN)
            .args([
                "--namespaces",
                &ns.name,
                "--http-addr",
                &addr,
                "--lease-namespace",
                &ns.name,
            ])
            .args(["--identity", "binary-test"])
            .env("KUBECONFIG", &plane().kubeconfig)
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        eventually(Duration::from_secs(20), path, || async {
            let r = http.get(format!("http://{addr}{path}")).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
    // With leader election on, the single replica becomes leader and says so in its metrics.
    let metrics = eventually(Duration::from_secs(20), "leader metric", || async {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("hexcore_operator_leader 1").then_some(text)
    })
    .await;
    assert!(metrics.contains("# TYPE hexcore_operator_leader gauge"), "{metrics}");

    let stdout = child.0.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let log: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert!(
        log["level"].is_string() && log["fields"]["message"].is_string(),
        "{log}"
    );
}

/// An orderly stop (SIGTERM, as the kubelet sends on a rollout) exits 0 and hands the Lease
/// over at once: its holder is cleared, so a standby replica acquires it at its next retry
/// instead of waiting the default 15 s lease duration.
#[tokio::test]
async fn sigterm_exits_0_and_releases_the_leader_lease() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::Api;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ns = support::TestNs::new("bin-term").await;
    support::install_crds(&ns.client).await;
    let mut child = Child(
        Command::new(BIN)
            .args(["--namespaces", &ns.name, "--http-addr", &format!("127.0.0.1:{port}")])
            .args(["--lease-namespace", &ns.name, "--identity", "terminating-replica"])
            .env("KUBECONFIG", &plane().kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let holder = |lease: Option<Lease>| lease.and_then(|l| l.spec).and_then(|s| s.holder_identity);
    eventually(Duration::from_secs(20), "the binary to hold the Lease", || async {
        (holder(leases.get_opt("hex-core-operator").await.unwrap()).as_deref() == Some("terminating-replica"))
            .then_some(())
    })
    .await;

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the binary did not exit within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exit.code(), Some(0));

    let lease = leases.get("hex-core-operator").await.unwrap();
    assert_eq!(
        holder(Some(lease.clone())),
        None,
        "holder cleared on shutdown: {lease:?}"
    );

    // A standby with the production timing (15 s lease) takes over well before expiry.
    let lock = hex_core_operator::lease::LeaseLock::new(
        ns.client.clone(),
        &ns.name,
        "hex-core-operator",
        "standby",
        Duration::from_secs(15),
    );
    assert_eq!(
        lock.try_acquire_or_renew().await.unwrap(),
        hex_core_operator::lease::Attempt::Held,
        "the first attempt of a standby acquires the released Lease"
    );
}
