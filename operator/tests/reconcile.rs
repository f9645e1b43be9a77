//! The reconcilers against a real API server: children, owner references, status, scale, drift,
//! steady state without writes, conflicts, missing references and pause.

mod support;

use std::time::Duration;

use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use hex_core_operator::desired::{self, CATALOG_KEY, CONFIG_HASH_ANNOTATION};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use support::{RunningOperator, TestNs, delete_ignoring_absent, eventually, install_crds};

const WAIT: Duration = Duration::from_secs(30);

fn catalog(name: &str, labels: Value, models: Value) -> ModelCatalog {
    serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1",
        "kind": "ModelCatalog",
        "metadata": {"name": name, "labels": labels},
        "spec": {"models": models},
    }))
    .unwrap()
}

fn model(name: &str, version: &str) -> Value {
    json!({"model": name, "version": version, "schemaUrl": format!("https://models.example/{name}/{version}/schema.json")})
}

fn service(name: &str, catalogs: Value) -> HexCoreService {
    serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1",
        "kind": "HexCoreService",
        "metadata": {"name": name},
        "spec": {
            "image": "registry.example/hex-core-service:0.1.0",
            "replicas": 2,
            "catalogs": catalogs,
            "registry": {"allowedHosts": ["models.example"]},
            "ioAdapter": {"id": "http", "baseUrl": "https://records.example"},
            "auth": {"mode": "forward_auth"},
        },
    }))
    .unwrap()
}

struct Fixture {
    ns: TestNs,
    catalogs: Api<ModelCatalog>,
    services: Api<HexCoreService>,
    config_maps: Api<ConfigMap>,
    deployments: Api<Deployment>,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        let ns = TestNs::new(prefix).await;
        install_crds(&ns.client).await;
        let c = &ns.client;
        Self {
            catalogs: Api::namespaced(c.clone(), &ns.name),
            services: Api::namespaced(c.clone(), &ns.name),
            config_maps: Api::namespaced(c.clone(), &ns.name),
            deployments: Api::namespaced(c.clone(), &ns.name),
            ns,
        }
    }

    fn client(&self) -> Client {
        self.ns.client.clone()
    }

    async fn create_catalog(&self, c: ModelCatalog) {
        self.catalogs.create(&PostParams::default(), &c).await.unwrap();
    }

    async fn create_service(&self, s: HexCoreService) -> HexCoreService {
        self.services.create(&PostParams::default(), &s).await.unwrap()
    }

    async fn deployment(&self, name: &str) -> Deployment {
        let api = self.deployments.clone();
        eventually(WAIT, &format!("Deployment {name}"), || {
            let api = api.clone();
            async move { api.get_opt(name).await.unwrap() }
        })
        .await
    }

    async fn condition(&self, hcs: &str, type_: &str) -> Option<Condition> {
        let s = self.services.get(hcs).await.unwrap();
        s.status?.conditions?.into_iter().find(|c| c.type_ == type_)
    }

    async fn wait_condition(&self, hcs: &str, type_: &str, status: &str, reason: &str) -> Condition {
        eventually(WAIT, &format!("{hcs} {type_}={status} ({reason})"), || async {
            self.condition(hcs, type_)
                .await
                .filter(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    async fn set_paused(&self, hcs: &str, paused: bool) {
        self.services
            .patch(
                hcs,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"paused": paused}})),
            )
            .await
            .unwrap();
    }

    async fn catalog_bytes(&self, hcs: &str) -> Option<String> {
        let cm = self.config_maps.get_opt(&format!("{hcs}-catalog")).await.unwrap()?;
        cm.data?.get(CATALOG_KEY).cloned()
    }
}

fn assert_owned_by(meta: &kube::api::ObjectMeta, hcs: &HexCoreService) {
    let owners = meta.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{:?}", meta.name);
    let o = &owners[0];
    assert_eq!(o.kind, "HexCoreService");
    assert_eq!(o.api_version, "hex-core.dev/v1alpha1");
    assert_eq!(o.name, hcs.name_any());
    assert_eq!(Some(&o.uid), hcs.metadata.uid.as_ref());
    assert_eq!(o.controller, Some(true));
}

#[tokio::test]
async fn a_service_gets_its_children_with_owner_references_and_a_status() {
    let f = Fixture::new("rec-children").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("base", json!({}), json!([model("b", "1"), model("a", "1")])))
        .await;
    let hcs = f.create_service(service("svc", json!({"names": ["base"]}))).await;

    let deployment = f.deployment("svc").await;
    assert_owned_by(&deployment.metadata, &hcs);
    let spec = deployment.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/hex-core-service:0.1.0")
    );
    // Probes on the management listener (interface 2), the fatal error in the pod's status.
    let probe_port = container
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
        .clone();
    assert_eq!(
        probe_port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("management".into())
    );
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    assert!(spec.template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_HASH_ANNOTATION].len() == 64);

    let catalog_cm = f.config_maps.get("svc-catalog").await.unwrap();
    assert_owned_by(&catalog_cm.metadata, &hcs);
    let bytes = catalog_cm.data.unwrap()[CATALOG_KEY].clone();
    let parsed = hex_core_service::domain::catalog::Catalog::parse(bytes.as_bytes()).expect("the service parses it");
    let keys: Vec<String> = parsed.entries.iter().map(|e| e.key.model.clone()).collect();
    assert_eq!(keys, ["a", "b"], "sorted by model");

    let env = f.config_maps.get("svc-env").await.unwrap();
    assert_owned_by(&env.metadata, &hcs);
    let env = env.data.unwrap();
    assert_eq!(env["REGISTRY_ALLOWED_HOSTS"], "models.example");
    assert_eq!(env["AUTH_MODE"], "forward_auth");
    assert_eq!(env["AUTH_ADMIN_TOKEN_FILE"], "/var/run/hex-core/admin/token");

    let services: Api<Service> = Api::namespaced(f.client(), &f.ns.name);
    let svc = services.get("svc").await.unwrap();
    assert_owned_by(&svc.metadata, &hcs);
    assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 8080);

    let secrets: Api<Secret> = Api::namespaced(f.client(), &f.ns.name);
    let token = secrets.get("svc-admin-token").await.unwrap();
    assert_owned_by(&token.metadata, &hcs);
    assert_eq!(token.data.unwrap()["token"].0.len(), 64);

    // No ready replica exists (no kubelet), so Ready is False for that reason, with everything else fine.
    let ready = f.wait_condition("svc", "Ready", "False", "NoReadyReplicas").await;
    let live = f.services.get("svc").await.unwrap();
    assert_eq!(ready.observed_generation, live.metadata.generation);
    let status = live.status.unwrap();
    assert_eq!(status.observed_generation, live.metadata.generation);
    assert_eq!(
        status.catalog_sha256.as_deref(),
        Some(desired::sha256_hex(bytes.as_bytes()).as_str())
    );
    assert_eq!(status.catalogs.as_deref(), Some(&["base".to_string()][..]));
    assert_eq!(
        status.selector.as_deref(),
        Some("app.kubernetes.io/instance=svc,app.kubernetes.io/name=hex-core-service")
    );
    assert_eq!(status.image.as_deref(), Some("registry.example/hex-core-service:0.1.0"));
    // The status is server-side applied by the operator's field manager, like the children.
    let status_manager = live
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.subresource.as_deref() == Some("status"))
        .expect("a status field manager");
    assert_eq!(
        (status_manager.manager.as_deref(), status_manager.operation.as_deref()),
        (Some("hex-core-operator"), Some("Apply"))
    );
    let conditions = status.conditions.unwrap();
    let get = |t: &str| conditions.iter().find(|c| c.type_ == t).unwrap().clone();
    assert_eq!(get("Degraded").status, "False");
    assert_eq!(get("ReconciliationPaused").status, "False");
    assert_eq!(get("CatalogSynced").status, "True");

    // The ModelCatalog has its own status.
    let c = eventually(WAIT, "ModelCatalog status", || async {
        f.catalogs
            .get("base")
            .await
            .unwrap()
            .status
            .filter(|s| s.model_count.is_some())
    })
    .await;
    assert_eq!(c.model_count, Some(2));
    assert!(
        c.conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
}

#[tokio::test]
async fn kubectl_scale_changes_the_deployment() {
    let f = Fixture::new("rec-scale").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    f.create_service(service("svc", json!({"names": ["c"]}))).await;
    f.deployment("svc").await;

    let out = f.ns.kubectl(&["scale", "hexcoreservice/svc", "--replicas=4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(WAIT, "Deployment scaled to 4", || async {
        let d = f.deployments.get("svc").await.unwrap();
        (d.spec.unwrap().replicas == Some(4)).then_some(())
    })
    .await;
    let scale = f.services.get_scale("svc").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
}

#[tokio::test]
async fn edited_or_deleted_children_are_restored() {
    let f = Fixture::new("rec-drift").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    f.create_service(service("svc", json!({"names": ["c"]}))).await;
    f.deployment("svc").await;
    let original = f.catalog_bytes("svc").await.unwrap();

    // Someone else edits the Deployment's image and replicas.
    let edit = json!({"spec": {"replicas": 7, "template": {"spec": {"containers": [
        {"name": "hex-core-service", "image": "evil/image:latest"}]}}}});
    f.deployments
        .patch("svc", &PatchParams::default(), &Patch::Strategic(edit))
        .await
        .unwrap();
    eventually(WAIT, "Deployment edit undone", || async {
        let d = f.deployments.get("svc").await.unwrap();
        let spec = d.spec.unwrap();
        let image = spec.template.spec.unwrap().containers[0].image.clone();
        (spec.replicas == Some(2) && image.as_deref() == Some("registry.example/hex-core-service:0.1.0")).then_some(())
    })
    .await;

    // Deleted children come back.
    delete_ignoring_absent(&f.deployments, "svc").await;
    delete_ignoring_absent(&f.config_maps, "svc-catalog").await;
    f.deployment("svc").await;
    let restored = eventually(WAIT, "catalog ConfigMap restored", || f.catalog_bytes("svc")).await;
    assert_eq!(restored, original, "the same bytes come back");

    // An edited catalog file is restored too.
    f.config_maps
        .patch(
            "svc-catalog",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {CATALOG_KEY: "{\"models\":[]}"}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "catalog edit undone", || async {
        (f.catalog_bytes("svc").await.as_deref() == Some(original.as_str())).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_reconcile_with_unchanged_inputs_writes_nothing() {
    let f = Fixture::new("rec-quiet").await;
    let (client, writes) = f.ns.counting_client().await;
    let _operator = RunningOperator::start(client, &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    // Quantities as people write them; the API server stores the Deployment's in canonical form
    // ("0.25" -> "250m", "0.5Gi" -> "512Mi"), which must not count as drift.
    let mut svc = service("svc", json!({"names": ["c"]}));
    svc.spec.resources = Some(
        serde_json::from_value(json!({
            "requests": {"cpu": "0.25", "memory": "0.0625Gi"},
            "limits": {"cpu": "1000m", "memory": "0.5Gi"},
        }))
        .unwrap(),
    );
    f.create_service(svc).await;
    f.wait_condition("svc", "Ready", "False", "NoReadyReplicas").await;
    assert!(writes.count() > 0, "the first reconcile did write");
    let live = f.deployment("svc").await;
    let limits = live.spec.unwrap().template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(limits["memory"].0, "512Mi", "the API server canonicalised the quantity");

    // Let in-flight reconciles (triggered by the operator's own writes) finish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    writes.reset();
    // Touch the HexCoreService and the ModelCatalog without changing their specs: this triggers
    // reconciles whose inputs are unchanged.
    for api_patch in [
        f.services
            .patch_metadata(
                "svc",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"touched": "1"}}})),
            )
            .await
            .map(|_| ()),
        f.catalogs
            .patch_metadata(
                "c",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"touched": "1"}}})),
            )
            .await
            .map(|_| ()),
    ] {
        api_patch.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(writes.count(), 0, "unchanged inputs caused writes: {:?}", writes.log());
}

#[tokio::test]
async fn a_catalog_conflict_degrades_the_service_and_keeps_the_previous_catalog() {
    let f = Fixture::new("rec-conflict").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    let selector = json!({"selector": {"matchLabels": {"tier": "prod"}}});
    f.create_catalog(catalog("one", json!({"tier": "prod"}), json!([model("a", "1")])))
        .await;
    f.create_catalog(catalog("two", json!({"tier": "prod"}), json!([model("b", "1")])))
        .await;
    f.create_service(service("svc", selector)).await;
    let before = eventually(WAIT, "catalog with both catalogs", || async {
        f.catalog_bytes("svc")
            .await
            .filter(|b| b.contains("\"a\"") && b.contains("\"b\""))
    })
    .await;
    let sha_before = Some(desired::sha256_hex(before.as_bytes()));
    eventually(WAIT, "status with the first catalog's hash", || async {
        let status = f.services.get("svc").await.unwrap().status?;
        (status.catalog_sha256 == sha_before).then_some(())
    })
    .await;

    // "two" now declares a@1 differently from "one".
    let conflicting = json!({"spec": {"models": [
        {"model": "a", "version": "1", "schemaUrl": "https://elsewhere.example/a.json"}, model("b", "1")]}});
    f.catalogs
        .patch("two", &PatchParams::default(), &Patch::Merge(conflicting))
        .await
        .unwrap();
    let degraded = f.wait_condition("svc", "Degraded", "True", "CatalogConflict").await;
    assert!(
        degraded.message.contains("\"one\"")
            && degraded.message.contains("\"two\"")
            && degraded.message.contains("a@1"),
        "{}",
        degraded.message
    );
    let ready = f.condition("svc", "Ready").await.unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "CatalogConflict")
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(f.client(), &f.ns.name);
    let warning = eventually(WAIT, "a CatalogConflict Event", || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("CatalogConflict"))
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.regarding.unwrap().name.as_deref(), Some("svc"));
    assert!(warning.note.unwrap().contains("\"two\""));
    assert_eq!(f.catalog_bytes("svc").await.unwrap(), before, "previous catalog kept");
    let status = f.services.get("svc").await.unwrap().status.unwrap();
    assert_eq!(status.catalog_sha256, sha_before);

    // Resolving the conflict (dropping the label) delivers a catalog without "two".
    f.catalogs
        .patch_metadata(
            "two",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "dev"}}})),
        )
        .await
        .unwrap();
    f.wait_condition("svc", "Degraded", "False", "AsExpected").await;
    let after = f.catalog_bytes("svc").await.unwrap();
    assert!(after.contains("\"a\"") && !after.contains("\"b\""), "{after}");
}

#[tokio::test]
async fn a_missing_secret_is_reported_and_the_deployment_waits_for_it() {
    let f = Fixture::new("rec-secret").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    let mut hcs = service("svc", json!({"names": ["c"]}));
    hcs.spec.io_adapter = Some(
        serde_json::from_value(json!({"id": "postgres", "credentialsSecretRef": {"name": "db", "key": "url"}}))
            .unwrap(),
    );
    f.create_service(hcs).await;

    let degraded = f.wait_condition("svc", "Degraded", "True", "SecretNotFound").await;
    assert!(degraded.message.contains("\"db\""), "{}", degraded.message);
    assert!(
        f.deployments.get_opt("svc").await.unwrap().is_none(),
        "no Deployment without its Secret"
    );

    let secrets: Api<Secret> = Api::namespaced(f.client(), &f.ns.name);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
        "stringData": {"url": "postgres://u:p@db/hex"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    let deployment = f.deployment("svc").await;
    f.wait_condition("svc", "Degraded", "False", "AsExpected").await;
    let env = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    assert_eq!(env[0].name, "IO_ADAPTER_DATABASE_URL");

    // Changing the Secret's content rolls the pods (new config hash), since env is read at start.
    let hash = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    let before = hash(&f.deployments.get("svc").await.unwrap());
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"url": "postgres://u:q@db/hex"}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "config hash changes with the Secret", || async {
        (hash(&f.deployments.get("svc").await.unwrap()) != before).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_missing_named_catalog_is_reported() {
    let f = Fixture::new("rec-nocat").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_service(service("svc", json!({"names": ["absent"]}))).await;
    let degraded = f.wait_condition("svc", "Degraded", "True", "CatalogNotFound").await;
    assert!(degraded.message.contains("\"absent\""), "{}", degraded.message);
    assert!(
        f.deployments.get_opt("svc").await.unwrap().is_none(),
        "nothing to serve yet"
    );
    f.create_catalog(catalog("absent", json!({}), json!([model("a", "1")])))
        .await;
    f.deployment("svc").await;
    f.wait_condition("svc", "Degraded", "False", "AsExpected").await;
}

#[tokio::test]
async fn a_paused_service_gets_status_writes_only() {
    let f = Fixture::new("rec-pause").await;
    let (client, writes) = f.ns.counting_client().await;
    let _operator = RunningOperator::start(client, &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    f.create_service(service("svc", json!({"names": ["c"]}))).await;
    f.deployment("svc").await;
    f.wait_condition("svc", "Ready", "False", "NoReadyReplicas").await;

    f.set_paused("svc", true).await;
    f.wait_condition("svc", "ReconciliationPaused", "True", "Paused").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    writes.reset();

    // Changes that would normally cause writes: spec edits, a deleted child, a changed catalog.
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    delete_ignoring_absent(&f.deployments, "svc").await;
    f.catalogs
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"models": [model("z", "9")]}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        f.deployments.get_opt("svc").await.unwrap().is_none(),
        "paused: the Deployment is not restored"
    );
    let log = writes.log();
    assert!(
        log.iter()
            .all(|w| w.ends_with("/hexcoreservices/svc/status") || w.contains("/modelcatalogs/")),
        "paused: only status writes, got {log:?}"
    );
    let status = f.services.get("svc").await.unwrap().status.unwrap();
    assert_eq!(
        status.observed_generation,
        f.services.get("svc").await.unwrap().metadata.generation
    );

    // Unpausing reconciles everything.
    f.set_paused("svc", false).await;
    let d = f.deployment("svc").await;
    assert_eq!(d.spec.unwrap().replicas, Some(5));
    eventually(WAIT, "the new catalog after unpausing", || async {
        f.catalog_bytes("svc").await.filter(|b| b.contains("\"z\""))
    })
    .await;
    f.wait_condition("svc", "ReconciliationPaused", "False", "NotPaused")
        .await;

    // Deleting a paused service is not blocked (no finalizers; children go by owner references).
    f.set_paused("svc", true).await;
    f.wait_condition("svc", "ReconciliationPaused", "True", "Paused").await;
    delete_ignoring_absent(&f.services, "svc").await;
    eventually(WAIT, "the paused service deleted", || async {
        f.services.get_opt("svc").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_spec_the_api_server_rejects_for_a_child_is_reported_as_a_condition() {
    let f = Fixture::new("rec-reject").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    let mut hcs = service("svc", json!({"names": ["c"]}));
    // Passes the CRD schema (tolerations are free-form there) but not Deployment validation.
    hcs.spec.placement =
        Some(serde_json::from_value(json!({"tolerations": [{"key": "k", "operator": "Sometimes"}]})).unwrap());
    f.create_service(hcs).await;
    let degraded = f.wait_condition("svc", "Degraded", "True", "ApplyRejected").await;
    assert!(
        degraded.message.contains("Deployment") && degraded.message.contains("Sometimes"),
        "{}",
        degraded.message
    );
    let ready = f.condition("svc", "Ready").await.unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ApplyRejected")
    );
    // The other children are still applied.
    assert!(f.config_maps.get_opt("svc-env").await.unwrap().is_some());

    // Fixing the spec clears the condition.
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"placement": null}})),
        )
        .await
        .unwrap();
    f.deployment("svc").await;
    f.wait_condition("svc", "Degraded", "False", "AsExpected").await;
}

#[tokio::test]
async fn a_pod_disruption_budget_follows_the_spec() {
    let f = Fixture::new("rec-pdb").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    let mut hcs = service("svc", json!({"names": ["c"]}));
    hcs.spec.pod_disruption_budget = Some(serde_json::from_value(json!({"minAvailable": 1})).unwrap());
    f.create_service(hcs).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(f.client(), &f.ns.name);
    let pdb = eventually(WAIT, "PodDisruptionBudget", || async {
        pdbs.get_opt("svc").await.unwrap()
    })
    .await;
    assert_eq!(
        pdb.spec.unwrap().min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"podDisruptionBudget": null}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "PodDisruptionBudget removed", || async {
        pdbs.get_opt("svc").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn services_outside_the_watched_namespaces_are_left_alone() {
    let watched = Fixture::new("rec-watched").await;
    let other = Fixture::new("rec-other").await;
    let _operator = RunningOperator::start(watched.client(), &watched.ns.name);
    for f in [&watched, &other] {
        f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
            .await;
        f.create_service(service("svc", json!({"names": ["c"]}))).await;
    }
    watched.deployment("svc").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(other.deployments.get_opt("svc").await.unwrap().is_none());
    assert!(
        other.services.get("svc").await.unwrap().status.is_none(),
        "not even status is written"
    );
}

#[tokio::test]
async fn the_embedded_store_gets_a_claim_one_pod_and_the_recreate_strategy() {
    let f = Fixture::new("rec-embedded").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    // First the shared http store with two replicas (the default rolling update)...
    f.create_service(service("svc", json!({"names": ["c"]}))).await;
    let d = f.deployment("svc").await;
    assert_eq!(
        d.spec.unwrap().strategy.unwrap().type_.as_deref(),
        Some("RollingUpdate"),
        "the API server's default"
    );
    // ...then the embedded store: one replica, Recreate, its data on a claim the operator owns.
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 1, "ioAdapter": {"id": "embedded", "baseUrl": null,
                "storage": {"size": "2Gi"}}}}),
            ),
        )
        .await
        .unwrap();
    // Two writes: the strategy first (a merge patch clearing the defaulted rollingUpdate, which
    // Recreate refuses), then the apply with one replica; wait for the second.
    let spec = eventually(WAIT, "a Recreate Deployment with one replica", || async {
        let spec = f.deployments.get("svc").await.unwrap().spec?;
        (spec.strategy.as_ref()?.type_.as_deref() == Some("Recreate") && spec.replicas == Some(1)).then_some(spec)
    })
    .await;
    assert!(spec.strategy.unwrap().rolling_update.is_none());
    let volumes = spec.template.spec.unwrap().volumes.unwrap();
    let data = volumes.iter().find(|v| v.name == "data").expect("a data volume");
    assert_eq!(data.persistent_volume_claim.as_ref().unwrap().claim_name, "svc-data");
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(f.client(), &f.ns.name);
    let claim = claims.get("svc-data").await.unwrap();
    let live = f.services.get("svc").await.unwrap();
    assert_owned_by(&claim.metadata, &live);
    let claim_spec = claim.spec.unwrap();
    assert_eq!(claim_spec.access_modes.unwrap(), ["ReadWriteOnce"]);
    assert_eq!(claim_spec.resources.unwrap().requests.unwrap()["storage"].0, "2Gi");
    f.wait_condition("svc", "Degraded", "False", "AsExpected").await;

    // Back to a shared store: the rolling update returns; the claim (data) is kept.
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 2, "ioAdapter": {"id": "http", "storage": null,
                "baseUrl": "https://records.example"}}}),
            ),
        )
        .await
        .unwrap();
    eventually(WAIT, "a RollingUpdate Deployment with 2 replicas", || async {
        let spec = f.deployments.get("svc").await.unwrap().spec?;
        (spec.strategy.as_ref()?.type_.as_deref() == Some("RollingUpdate") && spec.replicas == Some(2)).then_some(())
    })
    .await;
    assert!(claims.get_opt("svc-data").await.unwrap().is_some());
}

#[tokio::test]
async fn a_service_without_an_image_runs_the_operators_default_and_reports_it() {
    let f = Fixture::new("rec-image").await;
    let _operator = RunningOperator::start(f.client(), &f.ns.name);
    f.create_catalog(catalog("c", json!({}), json!([model("a", "1")])))
        .await;
    let mut hcs = service("svc", json!({"names": ["c"]}));
    hcs.spec.image = None;
    f.create_service(hcs).await;
    let d = f.deployment("svc").await;
    let image = d.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some(support::TEST_DEFAULT_IMAGE));
    eventually(WAIT, "status.image", || async {
        let status = f.services.get("svc").await.unwrap().status?;
        (status.image.as_deref() == Some(support::TEST_DEFAULT_IMAGE)).then_some(())
    })
    .await;
    // The stored object still has no image: nothing for a GitOps tool to see as drift.
    assert_eq!(f.services.get("svc").await.unwrap().spec.image, None);

    // Rolling back the GitOps way: spec.image (set, then restored) is what runs; an image set
    // on the Deployment directly (kubectl set image) is undone.
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "registry.example/hex-core-service:0.0.9"}})),
        )
        .await
        .unwrap();
    let image_is = |want: &'static str| {
        let deployments = f.deployments.clone();
        async move {
            let d = deployments.get("svc").await.ok()?;
            let image = d.spec?.template.spec?.containers[0].image.clone()?;
            (image == want).then_some(())
        }
    };
    eventually(WAIT, "the pinned image", || {
        image_is("registry.example/hex-core-service:0.0.9")
    })
    .await;
    let out =
        f.ns.kubectl(&["set", "image", "deployment/svc", "hex-core-service=evil/image:1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(WAIT, "kubectl set image undone", || {
        image_is("registry.example/hex-core-service:0.0.9")
    })
    .await;
    f.services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": null}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "back to the default image", || {
        image_is(support::TEST_DEFAULT_IMAGE)
    })
    .await;
}
