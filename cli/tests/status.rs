//! `hex-cli status` against a real kube-apiserver (the operator tests' control plane, shared
//! through their support module): a HexCoreService whose status is written through the status
//! subresource with the operator's own types (so a field the operator renames fails here), its
//! pods with the kubelet's part of their status, Events published the way the operator and the
//! kubelet publish them; then the real binary, its table and JSON, and every exit code.
//!
//! Needs a control plane: `eval "$(scripts/control-plane up)"; export
//! HEX_TEST_KUBECONFIG=$KUBECONFIG` to share one, else each run starts its own.

#[path = "../../operator/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use hex_core_operator::crd::{EntryCounts, FailedEntry, HexCoreService, HexCoreServiceStatus, ReplicaStatus};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as NewEvent, EventType, Recorder, Reporter};
use kube::{Api, Resource};
use serde_json::{Value, json};
use support::{TestNs, install_crds, plane};

const WANTED: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CONFIG_ERROR: &str =
    "hex-core-service: invalid configuration: CORS_ALLOWED_ORIGINS: https://a.example/x has a path";

fn cli() -> Command {
    let mut command = Command::cargo_bin("hex-cli").unwrap();
    command.env_clear().env("NO_COLOR", "1");
    command
}

fn kubeconfig() -> String {
    plane().kubeconfig.to_str().unwrap().to_string()
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).to_string()
}

/// The words of the table line whose first word is `first` (column widths vary with content).
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&first))
        .unwrap_or_else(|| panic!("no line starting with {first:?}:\n{table}"))
}

/// The plane's kubeconfig, changed by `edit`, written into `dir`.
fn edited_kubeconfig(dir: &Path, edit: impl FnOnce(&mut serde_yaml::Value)) -> PathBuf {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&plane().kubeconfig).unwrap()).unwrap();
    // Relative certificate paths stay valid from another directory only if made absolute.
    let base = plane().kubeconfig.parent().unwrap().to_path_buf();
    for section in ["clusters", "users"] {
        for entry in config[section].as_sequence_mut().into_iter().flatten() {
            let inner = if section == "clusters" { "cluster" } else { "user" };
            if let Some(map) = entry[inner].as_mapping_mut() {
                for key in ["certificate-authority", "client-certificate", "client-key"] {
                    if let Some(serde_yaml::Value::String(path)) = map.get_mut(key)
                        && Path::new(path.as_str()).is_relative()
                    {
                        *path = base.join(&*path).to_str().unwrap().to_string();
                    }
                }
            }
        }
    }
    edit(&mut config);
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: Option<i64>) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(Timestamp::now() - SignedDuration::from_secs(300)),
    }
}

/// A status as the operator writes it when replica 2 serves an older catalog and fails a model.
fn failing_status(generation: Option<i64>) -> HexCoreServiceStatus {
    let message = "demo-flaky@0.1.0 failed on 1 of 2 replicas: schema: GET http://h/demo-flaky.json: HTTP 404";
    HexCoreServiceStatus {
        observed_generation: generation,
        replicas: Some(2),
        ready_replicas: Some(2),
        selector: Some(hex_core_operator::desired::selector_string("svc")),
        catalog_sha256: Some(WANTED.into()),
        catalog_convergence: Some(format!("1/2 on {}", &WANTED[..12])),
        converged_replicas: Some(1),
        catalogs: Some(vec!["cat".into()]),
        last_refresh_time: Some(Time(Timestamp::now() - SignedDuration::from_secs(60))),
        image: Some("i:1".into()),
        replica_statuses: Some(vec![
            ReplicaStatus {
                pod: Some("svc-5d8f9-aaaaa".into()),
                address: "10.0.0.1:8080".into(),
                ready: true,
                converged: true,
                catalog_sha256: Some(WANTED.into()),
                version: Some("0.1.0".into()),
                entries: Some(EntryCounts {
                    total: 2,
                    loaded: 2,
                    stale: 0,
                    failed: 0,
                }),
                failed_entries: Some(vec![]),
                ..Default::default()
            },
            ReplicaStatus {
                pod: Some("svc-5d8f9-bbbbb".into()),
                address: "10.0.0.2:8080".into(),
                ready: true,
                converged: false,
                catalog_sha256: Some(OTHER.into()),
                version: Some("0.1.0".into()),
                not_ready_reason: Some("1 catalog entry failed to load".into()),
                entries: Some(EntryCounts {
                    total: 2,
                    loaded: 1,
                    stale: 0,
                    failed: 1,
                }),
                failed_entries: Some(vec![FailedEntry {
                    model: "demo-flaky".into(),
                    version: "0.1.0".into(),
                    state: "failed".into(),
                    artifact: Some("schema".into()),
                    error: "GET http://h/demo-flaky.json: HTTP 404".into(),
                    transient: false,
                    since: Some("2026-11-27T10:00:00Z".into()),
                }]),
                ..Default::default()
            },
        ]),
        omitted_replica_statuses: None,
        conditions: Some(vec![
            condition("CatalogSynced", "False", "ModelLoadFailed", message, generation),
            condition("Degraded", "True", "ModelLoadFailed", message, generation),
            condition(
                "Progressing",
                "True",
                "DeliveringCatalog",
                "refreshing replicas",
                generation,
            ),
            condition("Ready", "False", "ModelLoadFailed", message, generation),
        ]),
    }
}

/// The kubelet's part of a pod (there is no kubelet on this plane).
async fn set_pod_status(pods: &Api<Pod>, name: &str, status: Value) {
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
        .await
        .unwrap();
}

/// A core/v1 Event as the kubelet writes them (old API: `lastTimestamp`, `count`).
fn kubelet_event(namespace: &str, pod: &str, reason: &str, message: &str, ago_secs: i64, count: i32) -> Event {
    let when = (Timestamp::now() - SignedDuration::from_secs(ago_secs)).to_string();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{pod}.{}", reason.to_lowercase())},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace, "apiVersion": "v1"},
        "reason": reason, "message": message, "type": "Warning", "count": count,
        "firstTimestamp": when, "lastTimestamp": when,
        "source": {"component": "kubelet"},
    }))
    .unwrap()
}

struct Fixture {
    ns: TestNs,
    services: Api<HexCoreService>,
}

async fn fixture() -> Fixture {
    let ns = TestNs::new("cli-status").await;
    install_crds(&ns.client).await;
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    let hcs = services
        .create(
            &PostParams::default(),
            &support::minimal_service("svc", "cat", json!({"replicas": 2})),
        )
        .await
        .unwrap();
    services
        .patch_status(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": failing_status(hcs.metadata.generation)})),
        )
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    for name in ["svc-5d8f9-aaaaa", "svc-5d8f9-bbbbb"] {
        pods.create(&PostParams::default(), &support::data_plane_pod(name))
            .await
            .unwrap();
    }
    set_pod_status(
        &pods,
        "svc-5d8f9-aaaaa",
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "hex-core-service", "ready": true, "restartCount": 0, "image": "i:1",
                "imageID": "", "state": {"running": {}}}]}),
    )
    .await;
    set_pod_status(
        &pods,
        "svc-5d8f9-bbbbb",
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "hex-core-service", "ready": false, "restartCount": 4, "image": "i:1",
                "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s"}},
                "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                    "message": format!("{{\"level\":\"INFO\"}}\n{CONFIG_ERROR}\n")}}}]}),
    )
    .await;

    // Events: the kubelet's (core/v1), the operator's (events.k8s.io/v1 through kube's Recorder,
    // exactly as operator/src/act.rs publishes), and one about another service.
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    for event in [
        kubelet_event(
            &ns.name,
            "svc-5d8f9-bbbbb",
            "BackOff",
            "Back-off restarting failed container",
            120,
            5,
        ),
        kubelet_event(&ns.name, "other-1", "BackOff", "not about svc", 10, 1),
    ] {
        events.create(&PostParams::default(), &event).await.unwrap();
    }
    let hcs = services.get("svc").await.unwrap();
    let recorder = Recorder::new(
        ns.client.clone(),
        Reporter {
            controller: "hex-core-operator".into(),
            instance: Some("test".into()),
        },
    );
    recorder
        .publish(
            &NewEvent {
                type_: EventType::Warning,
                reason: "ModelLoadFailed".into(),
                note: Some("demo-flaky@0.1.0 failed on 1 of 2 replicas".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &hcs.object_ref(&()),
        )
        .await
        .unwrap();
    Fixture { ns, services }
}

#[tokio::test]
async fn status_shows_conditions_catalog_per_replica_failed_models_pods_and_events() {
    let f = fixture().await;
    let ns = f.ns.name.clone();

    // JSON, with the standard kubeconfig resolution: KUBECONFIG, and --context picking a
    // context whose namespace is the test's (no -n).
    let dir = tempfile::tempdir().unwrap();
    let with_context = edited_kubeconfig(dir.path(), |config| {
        let mut context = config["contexts"][0].clone();
        context["name"] = "hex-test".into();
        context["context"]["namespace"] = ns.clone().into();
        config["contexts"].as_sequence_mut().unwrap().push(context);
    });
    let out = cli()
        .env("KUBECONFIG", &with_context)
        .args(["status", "svc", "--context", "hex-test", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "not Ready exits 1: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("HexCoreService {ns}/svc is not Ready: ModelLoadFailed")),
        "{}",
        text(&out.stderr)
    );
    let report = json_of(&out.stdout);
    assert_eq!(report["namespace"], ns.as_str());
    assert_eq!(report["ready"], false);
    assert_eq!(report["reason"], "ModelLoadFailed");
    assert_eq!(report["desiredReplicas"], 2);
    assert_eq!(report["catalogSha256"], WANTED);
    let types: Vec<&str> = report["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CatalogSynced", "Degraded", "Progressing", "Ready"]);
    let replicas = report["replicaStatuses"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    assert_eq!(replicas[0]["pod"], "svc-5d8f9-aaaaa");
    assert_eq!(replicas[0]["catalogSha256"], WANTED);
    assert_eq!(replicas[0]["catalogMatches"], true);
    assert_eq!(replicas[1]["catalogSha256"], OTHER);
    assert_eq!(replicas[1]["catalogMatches"], false);
    assert_eq!(
        replicas[1]["entries"],
        json!({"total": 2, "loaded": 1, "stale": 0, "failed": 1})
    );
    assert_eq!(
        replicas[1]["failedEntries"],
        json!([{"model": "demo-flaky", "version": "0.1.0", "state": "failed", "artifact": "schema",
            "error": "GET http://h/demo-flaky.json: HTTP 404", "transient": false, "since": "2026-11-27T10:00:00Z"}])
    );
    let pods = report["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[0]["problem"], Value::Null);
    assert_eq!(pods[0]["ready"], true);
    assert_eq!(pods[1]["restarts"], 4);
    assert_eq!(
        pods[1]["problem"],
        format!("CrashLoopBackOff: container hex-core-service exited with code 2 (restarted 4 times): {CONFIG_ERROR}")
    );
    let events = report["events"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["reason"].as_str().unwrap(), e["object"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("BackOff", "Pod/svc-5d8f9-bbbbb"),
            ("ModelLoadFailed", "HexCoreService/svc")
        ],
        "related Events only, newest last: {events:?}"
    );
    assert_eq!(events[0]["count"], 5);
    assert!(events[0]["ageSeconds"].as_i64().unwrap() >= 120);
    assert_eq!(events[1]["type"], "Warning");
    assert_eq!(events[1]["message"], "demo-flaky@0.1.0 failed on 1 of 2 replicas");
    assert_eq!(report["warnings"], json!([]));

    // The table, for people.
    let out = cli()
        .args(["status", "svc", "-n", &ns, "--kubeconfig", &kubeconfig(), "-o", "table"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    for expected in [
        format!("HexCoreService {ns}/svc: Not Ready (ModelLoadFailed)"),
        "Conditions".into(),
        "Failed models".into(),
        format!("{} (not the delivered one)", &OTHER[..12]),
        "no (until the catalog or artifact changes)".into(),
        "GET http://h/demo-flaky.json: HTTP 404".into(),
        CONFIG_ERROR.into(),
        "(x5)".into(),
        "HexCoreService/svc".into(),
    ] {
        assert!(table.contains(&expected), "the table lacks {expected:?}:\n{table}");
    }
    assert_eq!(row(&table, "catalog"), ["catalog", WANTED]);
    assert_eq!(&row(&table, "Degraded")[..3], ["Degraded", "True", "ModelLoadFailed"]);
    assert_eq!(
        row(&table, "svc-5d8f9-aaaaa")[..5],
        ["svc-5d8f9-aaaaa", "10.0.0.1:8080", "yes", "yes", &WANTED[..12]]
    );
    assert_eq!(
        row(&table, "svc-5d8f9-bbbbb")[..5],
        ["svc-5d8f9-bbbbb", "10.0.0.2:8080", "yes", "no", &OTHER[..12]]
    );
    let failed = table
        .lines()
        .find(|l| l.trim_start().starts_with("svc-5d8f9-bbbbb") && l.contains("demo-flaky@0.1.0"))
        .unwrap_or_else(|| panic!("no failed model line:\n{table}"));
    assert_eq!(
        failed.split_whitespace().take(5).collect::<Vec<_>>(),
        ["svc-5d8f9-bbbbb", "demo-flaky@0.1.0", "failed", "schema", "no"]
    );
    assert!(!table.contains("not about svc"), "{table}");
    assert!(!table.contains('\x1b'), "no colour off a terminal:\n{table}");
    let events_at = table.find("\nEvents").unwrap();
    assert!(
        table[events_at..].find("BackOff").unwrap() < table[events_at..].find("ModelLoadFailed").unwrap(),
        "newest last:\n{table}"
    );

    // The namespace summary.
    let out = cli()
        .args(["status", "-n", &ns, "--kubeconfig", &kubeconfig(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        json_of(&out.stdout)["items"],
        json!([{"namespace": ns, "name": "svc", "ready": false, "reason": "ModelLoadFailed", "desiredReplicas": 2,
            "readyReplicas": 2, "catalogConvergence": format!("1/2 on {}", &WANTED[..12]), "failedEntries": 1,
            "created": json_of(&out.stdout)["items"][0]["created"], "ageSeconds": json_of(&out.stdout)["items"][0]["ageSeconds"]}])
    );
    let out = cli()
        .args(["status", "-n", &ns, "--kubeconfig", &kubeconfig(), "-o", "table"])
        .output()
        .unwrap();
    let table = text(&out.stdout);
    assert_eq!(
        row(&table, "NAME"),
        ["NAME", "READY", "REASON", "REPLICAS", "CATALOG", "FAILED", "AGE"]
    );
    assert_eq!(
        row(&table, "svc")[..6],
        ["svc", "False", "ModelLoadFailed", "2/2", "1/2", "on"]
    );

    // Converged: Ready for the current generation exits 0, alone and in the list (-A too).
    let generation = f.services.get("svc").await.unwrap().metadata.generation;
    let mut converged = failing_status(generation);
    for c in converged.conditions.iter_mut().flatten() {
        let good = matches!(c.type_.as_str(), "Ready" | "CatalogSynced");
        c.status = if good { "True" } else { "False" }.into();
        c.reason = if good { "Converged" } else { "AsExpected" }.into();
    }
    converged.replica_statuses.as_mut().unwrap()[1] = ReplicaStatus {
        pod: Some("svc-5d8f9-bbbbb".into()),
        address: "10.0.0.2:8080".into(),
        ready: true,
        converged: true,
        catalog_sha256: Some(WANTED.into()),
        failed_entries: Some(vec![]),
        ..Default::default()
    };
    f.services
        .patch_status(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": converged})),
        )
        .await
        .unwrap();
    let out = cli()
        .args(["status", "svc", "-n", &ns, "--kubeconfig", &kubeconfig(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json_of(&out.stdout);
    assert_eq!(
        (report["ready"].clone(), report["reason"].clone()),
        (json!(true), json!("Converged"))
    );
    assert!(
        report["replicaStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["catalogMatches"] == true)
    );
    let out = cli()
        .args(["status", "-A", "--kubeconfig", &kubeconfig(), "-o", "json"])
        .output()
        .unwrap();
    let items = json_of(&out.stdout)["items"].as_array().unwrap().clone();
    let ours = items
        .iter()
        .find(|i| i["namespace"] == ns.as_str() && i["name"] == "svc")
        .unwrap_or_else(|| panic!("-A lists {ns}/svc: {items:?}"));
    assert_eq!(ours["ready"], true);

    // A spec change the operator has not reconciled yet: the Ready=True of the previous
    // generation does not count.
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"logLevel": "debug"}})),
        )
        .await
        .unwrap();
    let out = cli()
        .args(["status", "svc", "-n", &ns, "--kubeconfig", &kubeconfig(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out.stdout)["reason"], "StatusStale");
}

#[tokio::test]
async fn a_missing_service_a_refused_user_and_an_unreachable_cluster_exit_apart_from_not_ready() {
    let ns = TestNs::new("cli-status-errors").await;
    install_crds(&ns.client).await;

    let out = cli()
        .args(["status", "nope", "-n", &ns.name, "--kubeconfig", &kubeconfig()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("HexCoreService {}/nope not found", ns.name)),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // A namespace without any: an empty list, exit 0.
    let out = cli()
        .args(["status", "-n", &ns.name, "--kubeconfig", &kubeconfig(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out.stdout), json!({"items": []}));

    // An identity without any RBAC (a service account nobody bound; impersonated).
    let dir = tempfile::tempdir().unwrap();
    let refused = edited_kubeconfig(dir.path(), |config| {
        for user in config["users"].as_sequence_mut().unwrap() {
            user["user"]["as"] = format!("system:serviceaccount:{}:nobody", ns.name).into();
        }
    });
    let out = cli()
        .args([
            "status",
            "svc",
            "-n",
            &ns.name,
            "--kubeconfig",
            refused.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the Kubernetes API server answered 403")
            && stderr.contains("forbidden")
            && stderr.contains("kubectl auth can-i"),
        "{stderr}"
    );

    // Nothing listens: exit 4, within --timeout.
    let unreachable = edited_kubeconfig(dir.path(), |config| {
        for cluster in config["clusters"].as_sequence_mut().unwrap() {
            cluster["cluster"]["server"] = "https://127.0.0.1:9".into();
        }
    });
    let started = std::time::Instant::now();
    let out = cli()
        .args([
            "status",
            "-n",
            &ns.name,
            "--kubeconfig",
            unreachable.to_str().unwrap(),
            "--timeout",
            "5",
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot reach the Kubernetes API server"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // No kubeconfig anywhere (no KUBECONFIG, no HOME, not in a pod): a usage error.
    let out = cli().env("HOME", dir.path()).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--kubeconfig"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_cluster_without_the_crds_says_to_install_them() {
    // A plane of its own: the shared one has the CRDs installed by the other tests.
    let bare = support::OwnPlane::up();
    let kubeconfig = bare.kubeconfig.to_str().unwrap();
    for args in [
        &["status", "svc", "-n", "default", "--kubeconfig", kubeconfig][..],
        &["status", "-A", "--kubeconfig", kubeconfig][..],
    ] {
        let out = cli().args(args).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not serve hexcoreservices.hex-core.dev/v1alpha1")
                && stderr.contains("are the hex-core CRDs installed"),
            "{args:?}: {stderr}"
        );
    }
}
