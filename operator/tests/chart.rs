//! The Helm chart on a real API server: lint, every values set rendered and accepted by the
//! server (`--dry-run=server`), a real `helm install`, and the operator running as the chart's
//! ServiceAccount (impersonated) doing its job while anything outside the chart's RBAC is
//! refused. Also the GitOps example: it applies once the CRDs exist, and its Argo CD
//! Applications are ordered by sync waves.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use hex_core_operator::lease::ElectionTiming;
use hex_core_operator::operator::{Election, Options};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::{
    OwnPlane, RunningOperator, TestNs, eventually, fast_settings, install_crds, plane, repo_root, yaml_documents,
};

const WAIT: Duration = Duration::from_secs(30);

fn chart_dir() -> PathBuf {
    repo_root().join("charts/hex-core-operator")
}

/// A tool of the test plane (helm, kubectl); a clear failure when it is missing.
fn tool(name: &str) -> PathBuf {
    let path = plane().bin_dir.join(name);
    assert!(
        path.is_file(),
        "{name} is missing at {}: run `scripts/control-plane build` (or `eval \"$(scripts/control-plane up)\"`)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str], stdin: Option<&str>) -> Output {
    run_on(&plane().kubeconfig, name, args, stdin)
}

fn run_on(kubeconfig: &Path, name: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(tool(name));
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("run {name}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(name: &str, args: &[&str], stdin: Option<&str>) -> String {
    ok_on(&plane().kubeconfig, name, args, stdin)
}

fn ok_on(kubeconfig: &Path, name: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = run_on(kubeconfig, name, args, stdin);
    assert!(
        out.status.success(),
        "{name} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn helm_template(namespace: &str, extra: &[&str]) -> String {
    let chart = chart_dir();
    let mut args = vec!["template", "hco", chart.to_str().unwrap(), "--namespace", namespace];
    args.extend_from_slice(extra);
    ok("helm", &args, None)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}@{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
                d["metadata"]["namespace"].as_str().unwrap_or("")
            )
        })
        .collect();
    kinds.sort();
    kinds
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The prometheus-operator ServiceMonitor CRD is not on the test plane; a minimal one (any
/// spec) lets the server dry-run the chart's ServiceMonitor.
fn ensure_service_monitor_crd() {
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;
    ok(
        "kubectl",
        &["apply", "--server-side", "--field-manager=hex-core-tests", "-f", "-"],
        Some(crd),
    );
    ok(
        "kubectl",
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/servicemonitors.monitoring.coreos.com",
        ],
        None,
    );
}

#[test]
fn helm_lint_strict_is_clean_and_the_schema_rejects_typos() {
    let chart = chart_dir();
    let out = ok("helm", &["lint", "--strict", chart.to_str().unwrap()], None);
    assert!(out.contains("1 chart(s) linted, 0 chart(s) failed"), "{out}");
    assert!(!out.contains("[WARNING]") && !out.contains("[ERROR]"), "{out}");

    for (set, expected) in [
        ("replcaCount=3", "additional properties 'replcaCount' not allowed"),
        ("metrics.serviceMonitor.enabeld=true", "'enabeld' not allowed"),
        ("replicaCount=two", "replicaCount"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
    ] {
        let out = run("helm", &["template", "x", chart.to_str().unwrap(), "--set", set], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} must fail");
        assert!(stderr.contains(expected), "--set {set}: {stderr}");
    }
    let out = run(
        "helm",
        &[
            "template",
            "x",
            chart.to_str().unwrap(),
            "--set",
            "leaderElection.enabled=false",
        ],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only safe with replicaCount 1"),
        "two replicas without leader election are refused"
    );
}

#[test]
fn the_charts_crds_are_the_generated_ones_kept_on_uninstall() {
    let docs = yaml_documents(&helm_template("default", &[]));
    let crds = find(&docs, "CustomResourceDefinition");
    assert_eq!(crds.len(), 2);
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{name}"
        );
        let file = repo_root().join(format!("crds/hex-core.dev_{}.yaml", name.split('.').next().unwrap()));
        let generated: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut rendered = crd.clone();
        let meta = rendered["metadata"].as_object_mut().unwrap();
        meta.remove("annotations");
        meta.remove("labels");
        assert_eq!(
            rendered,
            generated,
            "{name}: only metadata is added to {}",
            file.display()
        );
    }
    let without = yaml_documents(&helm_template("default", &["--set", "crds.install=false"]));
    assert!(find(&without, "CustomResourceDefinition").is_empty());
}

#[tokio::test]
async fn every_values_set_renders_objects_the_api_server_accepts() {
    let release = TestNs::new("chart-dry").await;
    let watched = TestNs::new("chart-dry-w").await;
    ensure_service_monitor_crd();
    let watch = format!("watchNamespaces={{{}}}", watched.name);
    let sets: [(&str, Vec<&str>); 5] = [
        ("defaults", vec![]),
        ("watchNamespaces", vec!["--set", &watch]),
        ("ha", vec!["--set", "replicaCount=3"]),
        (
            "serviceMonitor",
            vec![
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--api-versions",
                "monitoring.coreos.com/v1/ServiceMonitor",
            ],
        ),
        ("networkPolicy", vec!["--set", "networkPolicy.enabled=true"]),
    ];
    for (label, extra) in sets {
        let yaml = helm_template(&release.name, &extra);
        let docs = yaml_documents(&yaml);
        let kinds = kinds(&docs);
        let out = ok("kubectl", &["apply", "--dry-run=server", "-f", "-"], Some(&yaml));
        assert_eq!(
            out.lines().count(),
            docs.len(),
            "{label}: every object accepted:\n{out}"
        );

        let deployment = find(&docs, "Deployment")[0];
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let env = |name: &str| {
            container["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .cloned()
        };
        assert_eq!(
            env("POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        assert_eq!(
            env("POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        assert!(
            env("HEX_OPERATOR_NO_LEADER_ELECTION").is_none(),
            "{label}: leader election on"
        );
        let sc = &container["securityContext"];
        assert_eq!(
            (
                &sc["runAsNonRoot"],
                &sc["runAsUser"],
                &sc["readOnlyRootFilesystem"],
                &sc["allowPrivilegeEscalation"]
            ),
            (&json!(true), &json!(1000), &json!(true), &json!(false)),
            "{label}"
        );
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(container["ports"][0]["containerPort"], 8081);
        assert_eq!(container["image"], "hex-core-operator:0.1.0");
        let has = |k: &str| kinds.iter().any(|x| x.starts_with(&format!("{k}/")));

        match label {
            "watchNamespaces" => {
                assert!(!has("ClusterRole") && !has("ClusterRoleBinding"), "{kinds:?}");
                assert!(
                    kinds.contains(&format!("Role/hco-hex-core-operator@{}", watched.name)),
                    "{kinds:?}"
                );
                assert!(
                    kinds.contains(&format!("RoleBinding/hco-hex-core-operator@{}", watched.name)),
                    "{kinds:?}"
                );
                assert_eq!(env("HEX_OPERATOR_NAMESPACES").unwrap()["value"], watched.name.as_str());
            }
            _ => {
                assert!(has("ClusterRole") && has("ClusterRoleBinding"), "{label}: {kinds:?}");
                assert_eq!(env("HEX_OPERATOR_NAMESPACES").unwrap()["value"], "");
            }
        }
        assert!(
            kinds.contains(&format!("Role/hco-hex-core-operator-leader-election@{}", release.name)),
            "{label}: the Lease Role in the release namespace: {kinds:?}"
        );
        assert!(has("ServiceAccount") && has("Service") && has("CustomResourceDefinition"));
        assert_eq!(has("ServiceMonitor"), label == "serviceMonitor", "{label}: {kinds:?}");
        assert_eq!(has("NetworkPolicy"), label == "networkPolicy", "{label}: {kinds:?}");
        assert!(has("PodDisruptionBudget"), "{label}: replicaCount 2 or 3 gets a PDB");
        if label == "ha" {
            assert_eq!(deployment["spec"]["replicas"], 3);
        }
    }
    // A ServiceMonitor is not rendered when the cluster does not serve the kind.
    let docs = yaml_documents(&helm_template(
        &release.name,
        &["--set", "metrics.serviceMonitor.enabled=true"],
    ));
    assert!(find(&docs, "ServiceMonitor").is_empty());
    // One replica: no PDB unless asked for.
    let docs = yaml_documents(&helm_template(&release.name, &["--set", "replicaCount=1"]));
    assert!(find(&docs, "PodDisruptionBudget").is_empty());
}

fn can_i(account: &str, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--as", account]);
    let out = run("kubectl", &full, None);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl auth can-i {args:?}: {answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    answer == "yes"
}

#[tokio::test]
async fn helm_install_gives_the_operator_exactly_the_rights_it_needs() {
    let release = TestNs::new("chart-rel").await;
    let watched = TestNs::new("chart-w").await;
    let other = TestNs::new("chart-o").await;
    install_crds(&release.client).await;
    // The CRDs are shared by every test on this plane (applied above); a release that tried
    // to own them would collide, so this release leaves them alone. The chart's CRD objects are
    // checked by the two tests above.
    let chart = chart_dir();
    let watch = format!("watchNamespaces={{{}}}", watched.name);
    ok(
        "helm",
        &[
            "install",
            "hco",
            chart.to_str().unwrap(),
            "--namespace",
            &release.name,
            "--set",
            "crds.install=false",
            "--set",
            &watch,
        ],
        None,
    );

    // No kubelet: the operator pods never run, but every object is there.
    let got = ok(
        "kubectl",
        &[
            "get",
            "deployment,serviceaccount,service,poddisruptionbudget,role,rolebinding",
            "-n",
            &release.name,
            "-o",
            "name",
        ],
        None,
    );
    for object in [
        "deployment.apps/hco-hex-core-operator",
        "serviceaccount/hco-hex-core-operator",
        "service/hco-hex-core-operator-metrics",
        "poddisruptionbudget.policy/hco-hex-core-operator",
        "role.rbac.authorization.k8s.io/hco-hex-core-operator-leader-election",
        "rolebinding.rbac.authorization.k8s.io/hco-hex-core-operator-leader-election",
    ] {
        assert!(got.lines().any(|l| l == object), "{object} in:\n{got}");
    }
    let got = ok(
        "kubectl",
        &["get", "role,rolebinding", "-n", &watched.name, "-o", "name"],
        None,
    );
    assert!(
        got.contains("role.rbac.authorization.k8s.io/hco-hex-core-operator"),
        "{got}"
    );

    // What the ServiceAccount may and may not do.
    let account = format!("system:serviceaccount:{}:hco-hex-core-operator", release.name);
    let (w, o, r) = (watched.name.as_str(), other.name.as_str(), release.name.as_str());
    for (args, expected) in [
        (vec!["watch", "hexcoreservices.hex-core.dev", "-n", w], true),
        (
            vec!["patch", "hexcoreservices.hex-core.dev", "--subresource=status", "-n", w],
            true,
        ),
        (vec!["create", "secrets", "-n", w], true),
        (vec!["patch", "deployments.apps", "-n", w], true),
        (vec!["delete", "poddisruptionbudgets.policy", "-n", w], true),
        (vec!["create", "events.events.k8s.io", "-n", w], true),
        (vec!["update", "leases.coordination.k8s.io", "-n", r], true),
        (vec!["watch", "pods", "-n", w], true),
        (vec!["patch", "persistentvolumeclaims", "-n", w], true),
        // Outside the chart's rules:
        (vec!["get", "secrets", "-n", o], false),
        (vec!["list", "hexcoreservices.hex-core.dev", "-n", o], false),
        (vec!["update", "leases.coordination.k8s.io", "-n", w], false),
        (vec!["delete", "deployments.apps", "-n", w], false),
        (vec!["delete", "persistentvolumeclaims", "-n", w], false),
        (vec!["get", "configmaps", "-n", w], false),
        (vec!["update", "secrets", "-n", w], false),
        (vec!["patch", "hexcoreservices.hex-core.dev", "-n", w], false),
        (vec!["delete", "namespaces"], false),
        (vec!["create", "clusterroles.rbac.authorization.k8s.io"], false),
        (vec!["list", "secrets", "--all-namespaces"], false),
    ] {
        assert_eq!(can_i(&account, &args), expected, "can-i {args:?}");
    }

    // The operator as that ServiceAccount, scoped and elected as the chart configures it.
    let operator_client = support::impersonating_client(&watched.name, &release.name, "hco-hex-core-operator").await;
    let namespaces: Api<Namespace> = Api::all(operator_client.clone());
    let (code, _) = support::api_error_message(namespaces.list(&ListParams::default()).await);
    assert_eq!(code, 403, "impersonation is in effect");
    let foreign: Api<Secret> = Api::namespaced(operator_client.clone(), &other.name);
    let (code, _) = support::api_error_message(foreign.list(&ListParams::default()).await);
    assert_eq!(code, 403, "no Secrets outside the watched namespaces");

    let operator = RunningOperator::start_with(
        operator_client,
        Options {
            namespaces: vec![watched.name.clone()],
            election: Some(Election {
                namespace: release.name.clone(),
                lease_name: "hco-hex-core-operator".into(),
                identity: "chart-test".into(),
                timing: ElectionTiming::default(),
            }),
            settings: fast_settings(),
        },
    );

    let catalogs: Api<ModelCatalog> = Api::namespaced(watched.client.clone(), &watched.name);
    let services: Api<HexCoreService> = Api::namespaced(watched.client.clone(), &watched.name);
    catalogs
        .create(&PostParams::default(), &support::minimal_catalog("c"))
        .await
        .unwrap();
    let hcs = support::minimal_service(
        "svc",
        "c",
        json!({"replicas": 2, "podDisruptionBudget": {"maxUnavailable": 1}}),
    );
    services.create(&PostParams::default(), &hcs).await.unwrap();

    let deployments: Api<Deployment> = Api::namespaced(watched.client.clone(), &watched.name);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(watched.client.clone(), &watched.name);
    let secrets: Api<Secret> = Api::namespaced(watched.client.clone(), &watched.name);
    eventually(WAIT, "Deployment, PDB and admin token", || async {
        let all = deployments.get_opt("svc").await.unwrap().is_some()
            && pdbs.get_opt("svc").await.unwrap().is_some()
            && secrets.get_opt("svc-admin-token").await.unwrap().is_some();
        all.then_some(())
    })
    .await;
    let status = eventually(WAIT, "status written", || async {
        let status = services.get("svc").await.unwrap().status?;
        let ready = status.conditions.clone()?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.reason == "NoReadyReplicas").then_some(status)
    })
    .await;
    assert_eq!(status.catalogs.as_deref(), Some(&["c".to_string()][..]));
    assert!(status.catalog_sha256.is_some());

    let metrics = operator.handle.metrics.render();
    assert!(
        !metrics.contains("hexcore_operator_reconcile_errors_total{"),
        "no reconcile failed (a forbidden request would): {metrics}"
    );
    assert!(metrics.contains("hexcore_operator_leader 1"), "{metrics}");

    ok("helm", &["uninstall", "hco", "--namespace", &release.name], None);
}

#[tokio::test]
async fn the_gitops_example_applies_once_the_crds_exist() {
    let ns = TestNs::new("gitops").await;
    install_crds(&ns.client).await;
    // Server-side dry-run checks namespaced objects against an existing namespace; the
    // example's own Namespace object is applied (dry-run) too.
    let namespaces: Api<Namespace> = Api::all(ns.client.clone());
    let hex_core: Namespace = serde_json::from_value(json!({"metadata": {"name": "hex-core"}})).unwrap();
    match namespaces.create(&PostParams::default(), &hex_core).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace hex-core: {e}"),
    }
    let dir = repo_root().join("examples/gitops");
    let out = ok(
        "kubectl",
        &["apply", "-k", dir.to_str().unwrap(), "--dry-run=server"],
        None,
    );
    for object in [
        "namespace/hex-core",
        "modelcatalog.hex-core.dev/ce-rise",
        "hexcoreservice.hex-core.dev/passports",
    ] {
        assert!(out.contains(object), "{object} in:\n{out}");
    }

    // The catalog lists the four CE-RISE models at the versions in HEX_MODELS_DIR (when set),
    // each URL under the published scheme and naming a file that exists there.
    let docs = yaml_documents(&ok("kubectl", &["kustomize", dir.to_str().unwrap()], None));
    let catalog = docs.iter().find(|d| d["kind"] == "ModelCatalog").unwrap();
    let models = catalog["spec"]["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    for m in models {
        let (model, version) = (m["model"].as_str().unwrap(), m["version"].as_str().unwrap());
        let prefix = format!("https://codeberg.org/CE-RISE-models/{model}/raw/tag/pages-v{version}/generated/");
        for key in ["schemaUrl", "shaclUrl", "owlUrl", "linkmlUrl"] {
            let Some(url) = m[key].as_str() else { continue };
            let file = url
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{model} {key}: {url} is not under {prefix}"));
            if let Some(models_dir) = std::env::var_os("HEX_MODELS_DIR") {
                let local = PathBuf::from(models_dir).join(model).join(version).join(file);
                assert!(local.is_file(), "{model} {key}: {} does not exist", local.display());
            }
        }
    }
    let service = docs.iter().find(|d| d["kind"] == "HexCoreService").unwrap();
    assert_eq!(service["spec"]["replicas"], 3);
    assert_eq!(service["spec"]["auth"]["mode"], "jwt_jwks");
    assert_eq!(service["spec"]["ioAdapter"]["id"], "http");
    assert_eq!(service["spec"]["registry"]["allowedHosts"], json!(["codeberg.org"]));
    assert_eq!(service["spec"]["registry"]["requireHttps"], true);
    for custom in [catalog, service] {
        assert_eq!(
            custom["metadata"]["annotations"]["argocd.argoproj.io/sync-options"],
            "SkipDryRunOnMissingResource=true"
        );
    }
}

#[test]
fn argo_cd_applications_sync_the_operator_before_the_catalogs() {
    let dir = repo_root().join("examples/gitops/argocd/apps");
    let mut waves = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let app: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1", "{}", path.display());
        assert_eq!(app["kind"], "Application", "{}", path.display());
        let wave: i64 = app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: sync-wave annotation", path.display()))
            .parse()
            .unwrap();
        let source = &app["spec"]["source"]["path"];
        assert!(
            repo_root().join(source.as_str().unwrap()).is_dir(),
            "{}: source path {source} exists",
            path.display()
        );
        waves.insert(source.as_str().unwrap().to_string(), wave);
    }
    assert!(
        waves["charts/hex-core-operator"] < waves["examples/gitops"],
        "the chart (CRDs, operator) syncs first: {waves:?}"
    );
    // The kustomization does not include the Argo CD objects (the test plane has no Argo CRDs).
    let kustomization: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("examples/gitops/kustomization.yaml")).unwrap())
            .unwrap();
    let resources = kustomization["resources"].as_array().unwrap();
    assert!(
        resources.iter().all(|r| !r.as_str().unwrap().starts_with("argocd")),
        "{resources:?}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_charts_crds_are_upgraded_by_helm_upgrade_and_kept_by_helm_uninstall() {
    let plane = OwnPlane::up();
    let kc = plane.kubeconfig.as_path();
    let chart = chart_dir();
    let install = [
        "install",
        "hco",
        chart.to_str().unwrap(),
        "--namespace",
        "hex-core-system",
        "--create-namespace",
    ];
    ok_on(kc, "helm", &install, None);
    ok_on(
        kc,
        "kubectl",
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/modelcatalogs.hex-core.dev",
            "crd/hexcoreservices.hex-core.dev",
        ],
        None,
    );
    let catalog = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: hex-core.dev/v1alpha1
kind: ModelCatalog
metadata: {name: c, namespace: team}
spec:
  models: [{model: a, version: "1", schemaUrl: "https://h/a.json"}]
"#;
    ok_on(kc, "kubectl", &["apply", "-f", "-"], Some(catalog));

    // A newer chart whose CRD changed (its description, standing in for a new field): `helm
    // upgrade` updates the CRD in the cluster (a chart's crds/ directory would not).
    let newer = tempfile::tempdir().unwrap();
    let newer_chart = newer.path().join("hex-core-operator");
    copy_dir(&chart, &newer_chart);
    let crd_file = newer_chart.join("files/crds/hex-core.dev_modelcatalogs.yaml");
    let crd = std::fs::read_to_string(&crd_file).unwrap();
    let marker = "A catalog of model versions";
    assert!(crd.contains(marker));
    std::fs::write(&crd_file, crd.replace(marker, "An UPGRADED catalog of model versions")).unwrap();
    ok_on(
        kc,
        "helm",
        &[
            "upgrade",
            "hco",
            newer_chart.to_str().unwrap(),
            "--namespace",
            "hex-core-system",
            "--set",
            "replicaCount=3",
        ],
        None,
    );
    let live = ok_on(
        kc,
        "kubectl",
        &["get", "crd", "modelcatalogs.hex-core.dev", "-o", "json"],
        None,
    );
    assert!(
        live.contains("An UPGRADED catalog of model versions"),
        "the CRD was upgraded"
    );
    let replicas = ok_on(
        kc,
        "kubectl",
        &[
            "get",
            "deployment",
            "hco-hex-core-operator",
            "-n",
            "hex-core-system",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    );
    assert_eq!(replicas, "3");

    // Uninstall removes the operator, never the CRDs (nor, with them, the catalogs).
    ok_on(
        kc,
        "helm",
        &["uninstall", "hco", "--namespace", "hex-core-system"],
        None,
    );
    let gone = run_on(
        kc,
        "kubectl",
        &["get", "deployment", "hco-hex-core-operator", "-n", "hex-core-system"],
        None,
    );
    assert!(!gone.status.success(), "the operator Deployment is uninstalled");
    ok_on(
        kc,
        "kubectl",
        &[
            "get",
            "crd",
            "modelcatalogs.hex-core.dev",
            "hexcoreservices.hex-core.dev",
        ],
        None,
    );
    let catalogs = ok_on(
        kc,
        "kubectl",
        &["get", "modelcatalogs", "-n", "team", "-o", "name"],
        None,
    );
    assert_eq!(
        catalogs.trim(),
        "modelcatalog.hex-core.dev/c",
        "the user's catalog survives"
    );
}

/// Kills the child process on drop (also when an assertion fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_operator_binary_runs_with_the_environment_and_probes_of_the_charts_deployment() {
    let release = TestNs::new("chart-env").await;
    let watched = TestNs::new("chart-env-w").await;
    install_crds(&release.client).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let docs = yaml_documents(&helm_template(
        &release.name,
        &[
            "--set",
            &format!("watchNamespaces={{{}}}", watched.name),
            "--set",
            &format!("metrics.port={port}"),
        ],
    ));
    let deployment = find(&docs, "Deployment")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];

    // The container's environment as the kubelet would set it (downward API resolved).
    let mut command = Command::new(env!("CARGO_BIN_EXE_hex-core-operator"));
    command.env_clear().env("KUBECONFIG", &plane().kubeconfig);
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap();
        let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some("metadata.name") => "hco-pod-0".to_string(),
            Some("metadata.namespace") => release.name.clone(),
            Some(other) => panic!("unexpected fieldRef {other}"),
            None => var["value"].as_str().unwrap().to_string(),
        };
        command.env(name, value);
    }
    let child = std::sync::Mutex::new(Child(
        command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    ));

    let http = reqwest::Client::new();
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap().to_string();
        let url = format!("http://127.0.0.1:{port}{path}");
        eventually(Duration::from_secs(20), &url, || async {
            if let Ok(Some(status)) = child.lock().unwrap().0.try_wait() {
                panic!("the operator exited ({status}) with the chart's environment");
            }
            let r = http.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
    // Leader election as configured: the chart's Lease name, in the release namespace, held by
    // the pod name.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(release.client.clone(), &release.name);
    let holder = eventually(WAIT, "the chart's Lease", || async {
        leases
            .get_opt("hco-hex-core-operator")
            .await
            .unwrap()?
            .spec?
            .holder_identity
    })
    .await;
    assert_eq!(holder, "hco-pod-0");
}
