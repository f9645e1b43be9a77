//! `deploy/operator.yaml` is valid, and its RBAC is sufficient: the operator runs as that service
//! account (impersonated) and does its whole job without a single forbidden request. And it is
//! exact: the manifests and the Helm chart grant what `hex_core_operator::rbac` lists (every
//! watch, read and write the operator makes), nothing more.

mod support;

use std::time::Duration;

use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use hex_core_operator::lease::ElectionTiming;
use hex_core_operator::operator::{Election, Options};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{RunningOperator, TestNs, eventually, fast_settings, install_crds, repo_root};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_operator_does_its_job_with_exactly_the_deployed_rbac() {
    let ns = TestNs::new("rbac").await;
    install_crds(&ns.client).await;

    // The manifests apply cleanly on a real API server (no kubelet: the operator pods never run).
    let manifest = repo_root().join("deploy/operator.yaml");
    let out = support::kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=hex-core-tests",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The same ClusterRole, bound to a service account of this test's namespace.
    let accounts: Api<ServiceAccount> = Api::namespaced(ns.client.clone(), &ns.name);
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "hex-core-operator"}})).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(ns.client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("hex-core-operator-{}", ns.name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "hex-core-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "hex-core-operator", "namespace": ns.name}],
    }))
    .unwrap();
    bindings.create(&PostParams::default(), &binding).await.unwrap();

    let operator_client = support::impersonating_client(&ns.name, &ns.name, "hex-core-operator").await;
    // Impersonation is in effect: the service account may not list namespaces.
    let namespaces: Api<Namespace> = Api::all(operator_client.clone());
    let (code, _) = support::api_error_message(namespaces.list(&ListParams::default()).await);
    assert_eq!(code, 403);

    let operator = RunningOperator::start_with(
        operator_client,
        Options {
            namespaces: vec![ns.name.clone()],
            election: Some(Election {
                namespace: ns.name.clone(),
                lease_name: "hex-core-operator".into(),
                identity: "rbac-test".into(),
                timing: ElectionTiming::default(),
            }),
            settings: fast_settings(),
        },
    );

    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    catalogs
        .create(&PostParams::default(), &support::minimal_catalog("c"))
        .await
        .unwrap();
    let hcs = support::minimal_service("svc", "c", json!({"podDisruptionBudget": {"maxUnavailable": 1}}));
    services.create(&PostParams::default(), &hcs).await.unwrap();

    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(ns.client.clone(), &ns.name);
    let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
    eventually(WAIT, "Deployment, PDB and admin token", || async {
        let all = deployments.get_opt("svc").await.unwrap().is_some()
            && pdbs.get_opt("svc").await.unwrap().is_some()
            && secrets.get_opt("svc-admin-token").await.unwrap().is_some();
        all.then_some(())
    })
    .await;
    eventually(WAIT, "status written", || async {
        let status = services.get("svc").await.unwrap().status?;
        let ready = status.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.reason == "NoReadyReplicas").then_some(())
    })
    .await;
    // Removing the PDB from the spec deletes it (the delete verb).
    services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"podDisruptionBudget": null}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "PDB deleted", || async {
        pdbs.get_opt("svc").await.unwrap().is_none().then_some(())
    })
    .await;

    let metrics = operator.handle.metrics.render();
    assert!(
        !metrics.contains("hexcore_operator_reconcile_errors_total{"),
        "no reconcile failed (a forbidden request would): {metrics}"
    );
    assert!(
        metrics.contains("hexcore_operator_writes_total{kind=\"Event\"}"),
        "events were published: {metrics}"
    );
    bindings
        .delete(&format!("hex-core-operator-{}", ns.name), &Default::default())
        .await
        .unwrap();
}

/// With a ClusterRole older than the operator (here: without `pods`, as the first chart had), the
/// refused watch is not silent: it is counted in `hexcore_operator_watch_errors_total` and logged
/// as an error, so the cause of an operator that does nothing is visible.
#[tokio::test]
async fn a_watch_the_rbac_refuses_is_counted_and_logged() {
    let ns = TestNs::new("rbac-old").await;
    install_crds(&ns.client).await;
    let manifest = std::fs::read_to_string(repo_root().join("deploy/operator.yaml")).unwrap();
    let docs = support::yaml_documents(&manifest);
    let mut rules = role_rules(&docs, "ClusterRole", "hex-core-operator");
    let rules = rules.as_array_mut().unwrap();
    for rule in rules.iter_mut() {
        if let Some(resources) = rule["resources"].as_array_mut() {
            resources.retain(|r| r != "pods");
        }
    }
    rules.retain(|rule| rule["resources"].as_array().is_none_or(|r| !r.is_empty()));
    let role_name = format!("hex-core-operator-without-pods-{}", ns.name);
    let roles: Api<ClusterRole> = Api::all(ns.client.clone());
    let role: ClusterRole = serde_json::from_value(json!({"metadata": {"name": role_name}, "rules": rules})).unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(ns.client.clone(), &ns.name);
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "old-operator"}})).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(ns.client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "old-operator", "namespace": ns.name}],
    }))
    .unwrap();
    bindings.create(&PostParams::default(), &binding).await.unwrap();

    let client = support::impersonating_client(&ns.name, &ns.name, "old-operator").await;
    let operator = RunningOperator::start(client, &ns.name);
    let counted = eventually(WAIT, "the refused pod watch to be counted", || async {
        let metrics = operator.handle.metrics.render();
        metrics
            .lines()
            .find(|l| l.starts_with("hexcore_operator_watch_errors_total{controller=\"hexcoreservice\"}"))
            // The series exists at 0 from the start; wait for a counted failure.
            .filter(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v >= 1.0)
            })
            .map(str::to_string)
    })
    .await;
    let value: f64 = counted.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1.0, "{counted}");
    // ... and the replica reports not ready, naming the refused watch, so a rollout waiting
    // for readiness (helm --wait, kubectl rollout status) fails instead of succeeding.
    let response = tower::ServiceExt::oneshot(
        hex_core_operator::operator::router(operator.handle.clone()),
        http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("not ready: a list or watch of the hexcoreservice controller failed")
            && body.contains("pods")
            && body.contains("forbidden"),
        "{body}"
    );
    bindings.delete(&role_name, &Default::default()).await.unwrap();
    roles.delete(&role_name, &Default::default()).await.unwrap();
}

/// `(group, resource, verb)` of every rule in `rules`.
fn grants(rules: &serde_json::Value) -> std::collections::BTreeSet<(String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for rule in rules.as_array().expect("a rules list") {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap_or_else(|| panic!("{key} in {rule}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn expected(rules: &[hex_core_operator::rbac::Rule]) -> std::collections::BTreeSet<(String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for rule in rules {
        for resource in rule.resources {
            for verb in rule.verbs {
                out.insert((rule.group.to_string(), resource.to_string(), verb.to_string()));
            }
        }
    }
    out
}

fn role_rules(docs: &[serde_json::Value], kind: &str, name_suffix: &str) -> serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"].as_str().unwrap().ends_with(name_suffix))
        .unwrap_or_else(|| panic!("a {kind} named *{name_suffix}"))["rules"]
        .clone()
}

#[test]
fn the_manifests_and_the_chart_grant_exactly_what_the_operator_uses() {
    use hex_core_operator::rbac::{LEADER_ELECTION, NAMESPACED};
    let namespaced = expected(NAMESPACED);
    let mut everything = namespaced.clone();
    everything.extend(expected(&[LEADER_ELECTION]));

    let manifest = std::fs::read_to_string(repo_root().join("deploy/operator.yaml")).unwrap();
    let docs = support::yaml_documents(&manifest);
    assert_eq!(
        grants(&role_rules(&docs, "ClusterRole", "hex-core-operator")),
        everything,
        "deploy/operator.yaml"
    );

    let helm = support::plane().bin_dir.join("helm");
    let chart = repo_root().join("charts/hex-core-operator");
    let template = |extra: &[&str]| {
        let out = std::process::Command::new(&helm)
            .args(["template", "hco", chart.to_str().unwrap(), "--namespace", "rel"])
            .args(extra)
            .output()
            .expect("run helm template");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        support::yaml_documents(&String::from_utf8(out.stdout).unwrap())
    };
    let docs = template(&[]);
    assert_eq!(
        grants(&role_rules(&docs, "ClusterRole", "hex-core-operator")),
        namespaced,
        "chart, all namespaces"
    );
    assert_eq!(
        grants(&role_rules(&docs, "Role", "-leader-election")),
        expected(&[LEADER_ELECTION]),
        "chart, leader election"
    );
    let docs = template(&["--set", "watchNamespaces={team-a}"]);
    assert_eq!(
        grants(&role_rules(&docs, "Role", "hco-hex-core-operator")),
        namespaced,
        "chart, one namespace"
    );
}
