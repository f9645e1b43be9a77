//! `hex-core-operator render` against the operator itself: for the same HexCoreService and
//! ModelCatalogs, the rendered objects are what the controller creates on a real API server
//! (modulo owner references), and the API server accepts them as they are.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hex_core_operator::apply::contained_in;
use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::PostParams;
use serde::Deserialize;
use serde_json::Value;
use support::{RunningOperator, TestNs, eventually, install_crds, plane, repo_root, yaml_documents};

const WAIT: Duration = Duration::from_secs(30);

const CATALOGS: &str = r#"
apiVersion: hex-core.dev/v1alpha1
kind: ModelCatalog
metadata: {name: base, labels: {tier: prod}}
spec:
  models:
  - {model: a, version: "1", schemaUrl: "https://models.example/a/1/schema.json", shaclUrl: "https://models.example/a/1/shacl.ttl"}
---
apiVersion: hex-core.dev/v1alpha1
kind: ModelCatalog
metadata: {name: extra, labels: {tier: prod}}
spec:
  models:
  - {model: b, version: "2", schemaUrl: "https://models.example/b/2/schema.json", rootClass: Root}
---
# Not selected (another label): must not reach the rendered catalog.
apiVersion: hex-core.dev/v1alpha1
kind: ModelCatalog
metadata: {name: staging, labels: {tier: dev}}
spec:
  models:
  - {model: c, version: "1", schemaUrl: "https://models.example/c/1/schema.json"}
"#;

const SERVICE: &str = r#"
apiVersion: hex-core.dev/v1alpha1
kind: HexCoreService
metadata: {name: passports}
spec:
  image: registry.example/hex-core-service:0.1.0
  replicas: 1
  catalogs: {selector: {matchLabels: {tier: prod}}}
  registry: {allowedHosts: [models.example], cache: {enabled: true, ttlSeconds: 60}}
  ioAdapter: {id: embedded}
  auth:
    mode: jwt_jwks
    jwt: {jwksUrl: "https://idp.example/jwks", issuer: "https://idp.example", audience: hex-core}
  metrics: {enabled: true}
  podDisruptionBudget: {minAvailable: 2}
"#;

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hex-core-operator"))
        .arg("render")
        .args(args)
        .output()
        .expect("run hex-core-operator render")
}

fn kubectl_apply_dry_run(yaml: &str) -> Output {
    let kubectl = plane().bin_dir.join("kubectl");
    assert!(
        kubectl.is_file(),
        "kubectl is missing at {}: run `scripts/control-plane build`",
        kubectl.display()
    );
    let mut child = Command::new(kubectl)
        .arg(format!("--kubeconfig={}", plane().kubeconfig.display()))
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `Kind/name` of an object.
fn object_id(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap(),
        o["metadata"]["name"].as_str().unwrap()
    )
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn rendered_objects_equal_what_the_controller_creates() {
    let ns = TestNs::new("render-eq").await;
    install_crds(&ns.client).await;
    let dir = tempfile::tempdir().unwrap();
    let catalogs_file = write(dir.path(), "catalogs.yaml", CATALOGS);
    let service_file = write(dir.path(), "service.yaml", SERVICE);

    // The same inputs, created on the API server and reconciled by the operator.
    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    for doc in serde_yaml::Deserializer::from_str(CATALOGS) {
        let catalog = ModelCatalog::deserialize(doc).unwrap();
        catalogs.create(&PostParams::default(), &catalog).await.unwrap();
    }
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    let hcs: HexCoreService = serde_yaml::from_str(SERVICE).unwrap();
    services.create(&PostParams::default(), &hcs).await.unwrap();
    let _operator = RunningOperator::start(ns.client.clone(), &ns.name);

    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(ns.client.clone(), &ns.name);
    let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
    eventually(WAIT, "the operator's children", || async {
        let all = deployments.get_opt("passports").await.unwrap().is_some()
            && pdbs.get_opt("passports").await.unwrap().is_some();
        all.then_some(())
    })
    .await;

    // The operator generated the admin token; render reuses it to produce the same hash.
    let secret = secrets.get("passports-admin-token").await.unwrap();
    let token = String::from_utf8(secret.data.unwrap()["token"].0.clone()).unwrap();
    let token_file = write(dir.path(), "token", &format!("{token}\n"));

    let out = render(&[
        "-f",
        service_file.to_str().unwrap(),
        "-f",
        catalogs_file.to_str().unwrap(),
        "--namespace",
        &ns.name,
        "--admin-token-file",
        token_file.to_str().unwrap(),
    ]);
    let yaml = stdout(&out);
    let rendered = yaml_documents(&yaml);

    // Exactly the objects the operator created (by its managed-by label), no more, no fewer.
    let live_names = ns.kubectl(&[
        "get",
        "configmap,secret,persistentvolumeclaim,deployment,service,poddisruptionbudget",
        "-l",
        "app.kubernetes.io/managed-by=hex-core-operator",
        "-o",
        "json",
    ]);
    assert!(live_names.status.success());
    let live_list: Value = serde_json::from_slice(&live_names.stdout).unwrap();
    let mut live_ids: Vec<String> = live_list["items"].as_array().unwrap().iter().map(object_id).collect();
    let mut rendered_ids: Vec<String> = rendered.iter().map(object_id).collect();
    live_ids.sort();
    rendered_ids.sort();
    assert_eq!(rendered_ids, live_ids);

    for object in &rendered {
        let id = format!(
            "{}/{}",
            object["kind"].as_str().unwrap(),
            object["metadata"]["name"].as_str().unwrap()
        );
        let live = live_list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ) == id
            })
            .unwrap();
        assert!(object["metadata"].get("ownerReferences").is_none(), "{id}");
        assert_eq!(
            live["metadata"]["ownerReferences"][0]["kind"], "HexCoreService",
            "{id}: the live one is owned"
        );
        assert_eq!(object["metadata"]["labels"], live["metadata"]["labels"], "{id}: labels");
        if object["kind"] == "Secret" {
            // Rendered as stringData; the server stores data (base64).
            assert_eq!(object["stringData"]["token"], token.as_str());
            continue;
        }
        assert!(
            contained_in(object, live),
            "{id}: the rendered object differs from the operator's:\nrendered: {object:#}\nlive: {live:#}"
        );
    }
    let deployment = rendered.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let catalog = rendered
        .iter()
        .find(|o| o["metadata"]["name"] == "passports-catalog")
        .unwrap();
    let catalog_json = catalog["data"]["catalog.json"].as_str().unwrap();
    assert!(catalog_json.contains("\"model\": \"a\"") && catalog_json.contains("\"model\": \"b\""));
    assert!(
        !catalog_json.contains("\"model\": \"c\""),
        "the dev catalog is not selected"
    );
    let delivered = eventually(WAIT, "status.catalogSha256", || async {
        services.get("passports").await.unwrap().status?.catalog_sha256
    })
    .await;
    assert_eq!(
        delivered,
        hex_core_operator::desired::sha256_hex(catalog_json.as_bytes()),
        "the operator delivered the rendered catalog bytes"
    );
    assert!(deployment["spec"]["template"]["metadata"]["annotations"]["hex-core.dev/config-hash"].is_string());

    // The output applies as it is, into another namespace too.
    let elsewhere = TestNs::new("render-apply").await;
    let out = render(&[
        "-f",
        service_file.to_str().unwrap(),
        "-f",
        catalogs_file.to_str().unwrap(),
        "-n",
        &elsewhere.name,
    ]);
    let yaml = stdout(&out);
    let applied = kubectl_apply_dry_run(&yaml);
    let applied_out = stdout(&applied);
    assert_eq!(applied_out.lines().count(), 7, "{applied_out}");
}

#[tokio::test]
async fn the_gitops_example_renders_into_objects_the_api_server_accepts() {
    let ns = TestNs::new("render-gitops").await;
    let examples = repo_root().join("examples/gitops");
    let out = render(&[
        "-f",
        examples.join("modelcatalog.yaml").to_str().unwrap(),
        "-f",
        examples.join("hexcoreservice.yaml").to_str().unwrap(),
        "-f",
        examples.join("namespace.yaml").to_str().unwrap(),
        "-n",
        &ns.name,
    ]);
    let yaml = stdout(&out);
    let docs = yaml_documents(&yaml);
    let env = docs.iter().find(|d| d["metadata"]["name"] == "passports-env").unwrap();
    assert_eq!(env["data"]["AUTH_MODE"], "jwt_jwks");
    assert_eq!(env["data"]["REGISTRY_ALLOWED_HOSTS"], "codeberg.org");
    assert_eq!(env["data"]["IO_ADAPTER_ID"], "http");
    let catalog = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "passports-catalog")
        .unwrap();
    let parsed: Value = serde_json::from_str(catalog["data"]["catalog.json"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["models"].as_array().unwrap().len(), 4);
    stdout(&kubectl_apply_dry_run(&yaml));
}

#[test]
fn bad_input_exits_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yaml");
    let out = render(&["-f", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("absent.yaml: cannot read"), "{stderr}");

    let catalogs = write(dir.path(), "catalogs.yaml", CATALOGS);
    let out = render(&["-f", catalogs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no HexCoreService"));
    assert!(out.stdout.is_empty(), "nothing on stdout on error");

    let broken = write(
        dir.path(),
        "broken.yaml",
        &format!("{CATALOGS}---\n{}", SERVICE.replace("replicas: 1", "replicas: [1]")),
    );
    let out = render(&["-f", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.yaml: document 4: invalid HexCoreService"),
        "{stderr}"
    );
}
