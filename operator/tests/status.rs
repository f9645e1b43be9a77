//! A HexCoreService's status tells the truth, on a real API server: a replica that failed to
//! load a model keeps `Ready=False` naming the model until it serves it (and the ModelCatalog
//! says whether it was loaded), a permanent failure is `Degraded` and retried by refresh, and
//! pods that do not run say why from their own status.
//!
//! Replicas are real HTTP servers answering interface 1 (`GET /admin/ready`), on an address of the
//! test's own network, behind an EndpointSlice shaped as the endpointslice controller makes it.

mod support;

use std::time::Duration;

use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use hex_core_operator::desired::{CATALOG_KEY, sha256_hex};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::net::TestNetwork;
use support::replica::{StubReplica, endpoint_slice, ready_body};
use support::{RunningOperator, TestNs, eventually, install_crds};

const WAIT: Duration = Duration::from_secs(30);

struct Fixture {
    ns: TestNs,
    services: Api<HexCoreService>,
    catalogs: Api<ModelCatalog>,
    _operator: RunningOperator,
}

impl Fixture {
    /// A namespace with the operator, catalog `c` (models `a` and `b`) and service `svc`.
    async fn new(prefix: &str) -> Self {
        let ns = TestNs::new(prefix).await;
        install_crds(&ns.client).await;
        let operator = RunningOperator::start(ns.client.clone(), &ns.name);
        let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
        let catalog: ModelCatalog = serde_json::from_value(json!({
            "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog", "metadata": {"name": "c"},
            "spec": {"models": [
                {"model": "a", "version": "1", "schemaUrl": "https://h/a.json"},
                {"model": "b", "version": "1", "shaclUrl": "https://h/b.ttl"},
            ]},
        }))
        .unwrap();
        catalogs.create(&PostParams::default(), &catalog).await.unwrap();
        let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
        services
            .create(
                &PostParams::default(),
                &support::minimal_service("svc", "c", json!({"replicas": 1})),
            )
            .await
            .unwrap();
        Self {
            ns,
            services,
            catalogs,
            _operator: operator,
        }
    }

    /// The SHA-256 of the catalog the operator delivered.
    async fn delivered_sha(&self) -> String {
        let config_maps: Api<ConfigMap> = Api::namespaced(self.ns.client.clone(), &self.ns.name);
        let json = eventually(WAIT, "the catalog ConfigMap", || async {
            config_maps
                .get_opt("svc-catalog")
                .await
                .unwrap()?
                .data?
                .get(CATALOG_KEY)
                .cloned()
        })
        .await;
        sha256_hex(json.as_bytes())
    }

    async fn publish_slice(&self, stub: &StubReplica, ready: bool) {
        let slices: Api<EndpointSlice> = Api::namespaced(self.ns.client.clone(), &self.ns.name);
        let slice: EndpointSlice = serde_json::from_value(endpoint_slice(
            "svc-stub",
            "svc",
            stub.addr.port(),
            &[(stub.addr, "svc-0", ready)],
        ))
        .unwrap();
        slices
            .patch(
                "svc-stub",
                &PatchParams::apply("hex-core-tests").force(),
                &Patch::Apply(&slice),
            )
            .await
            .unwrap();
    }

    async fn wait_condition(&self, type_: &str, status: &str, reason: &str) -> Condition {
        eventually(WAIT, &format!("svc {type_}={status} ({reason})"), || async {
            let s = self.services.get("svc").await.unwrap();
            s.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == type_ && c.status == status && c.reason == reason)
        })
        .await
    }

    async fn wait_catalog_loaded(&self, status: &str, reason: &str) -> Condition {
        eventually(WAIT, &format!("catalog c Loaded={status} ({reason})"), || async {
            let c = self.catalogs.get("c").await.unwrap();
            c.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Loaded" && c.status == status && c.reason == reason)
        })
        .await
    }
}

#[tokio::test]
async fn a_replica_missing_a_model_is_not_converged_until_it_loads_it() {
    let net = TestNetwork::new();
    let f = Fixture::new("status-model").await;
    let sha = f.delivered_sha().await;
    // The defect: the replica reports the wanted catalog hash (and answers 200) although entry
    // b@1 failed to load. Converged means serving every model, not only the hash.
    let mut body = ready_body(&sha, &[("b", "1", true)]);
    body["status"] = json!("ready");
    let stub = StubReplica::start(net.host.into(), body).await;
    f.publish_slice(&stub, true).await;

    let ready = f.wait_condition("Ready", "False", "ModelLoadFailed").await;
    assert!(
        ready.message.contains("model b@1 is not loaded on 1 of 1 replicas"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains("HTTP 503"), "{}", ready.message);
    let synced = f.wait_condition("CatalogSynced", "False", "ModelLoadFailed").await;
    assert!(synced.message.contains("b@1"));
    f.wait_condition("Degraded", "False", "AsExpected").await;
    let status = f.services.get("svc").await.unwrap().status.unwrap();
    let replica = &status.replica_statuses.as_ref().unwrap()[0];
    assert_eq!(replica.pod.as_deref(), Some("svc-0"));
    assert!(!replica.converged);
    assert_eq!(replica.catalog_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(replica.version.as_deref(), Some("0.1.0-stub"), "GET /admin/version");
    let failed = &replica.failed_entries.as_ref().unwrap()[0];
    assert_eq!((failed.model.as_str(), failed.version.as_str()), ("b", "1"));
    assert!(failed.transient);
    assert_eq!(replica.entries.as_ref().unwrap().failed, 1);
    assert_eq!(status.converged_replicas, Some(0));
    // The catalog says its entries are not (yet) loaded, and why.
    let loaded = f.wait_catalog_loaded("False", "LoadFailed").await;
    assert!(loaded.message.contains("b@1 on svc/svc-0"), "{}", loaded.message);
    assert!(
        stub.refreshes().is_empty(),
        "the replica retries this transient failure itself"
    );

    // The replica loads it (its own retry): the service converges, the catalog is loaded.
    stub.set_ready(ready_body(&sha, &[]));
    let ready = f.wait_condition("Ready", "True", "Converged").await;
    assert_eq!(
        ready.message,
        format!("1/1 ready replicas serve catalog {}", &sha[..12])
    );
    f.wait_catalog_loaded("True", "Loaded").await;
    let catalog = f.catalogs.get("c").await.unwrap().status.unwrap();
    assert_eq!(catalog.loaded_by, Some(vec!["svc".to_string()]));
    assert_eq!(catalog.last_loaded_generation, Some(1));
    assert!(catalog.last_loaded_time.is_some());
}

#[tokio::test]
async fn a_not_ready_replica_is_read_too_and_a_permanent_failure_is_degraded_and_refreshed() {
    let net = TestNetwork::new();
    let f = Fixture::new("status-perm").await;
    let sha = f.delivered_sha().await;
    // 503 and a not-ready endpoint: the body still says which model failed, and why.
    let stub = StubReplica::start(net.host.into(), ready_body(&sha, &[("a", "1", false)])).await;
    f.publish_slice(&stub, false).await;

    let degraded = f.wait_condition("Degraded", "True", "ModelLoadFailed").await;
    assert!(
        degraded.message.contains("model a@1") && degraded.message.contains("not retried until"),
        "{}",
        degraded.message
    );
    f.wait_condition("Ready", "False", "ModelLoadFailed").await;
    // Nothing retries a permanent failure on the replica: the operator refreshes it (with the
    // machine admin token), again after each backoff, until the artifact loads.
    let secrets: Api<Secret> = Api::namespaced(f.ns.client.clone(), &f.ns.name);
    let token = String::from_utf8(
        secrets.get("svc-admin-token").await.unwrap().data.unwrap()["token"]
            .0
            .clone(),
    )
    .unwrap();
    eventually(WAIT, "two refreshes", || async {
        (stub.refreshes().len() >= 2).then_some(())
    })
    .await;
    assert!(
        stub.refreshes()
            .iter()
            .all(|auth| auth.as_deref() == Some(format!("Bearer {token}").as_str())),
        "{:?}",
        stub.refreshes()
    );
    stub.set_after_refresh(ready_body(&sha, &[]));
    f.publish_slice(&stub, true).await;
    f.wait_condition("Ready", "True", "Converged").await;
    f.wait_condition("Degraded", "False", "AsExpected").await;
}

/// The kubelet's part, standing in: the pod's status, set through the status subresource.
async fn set_pod_status(pods: &Api<Pod>, name: &str, status: serde_json::Value) {
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
        .await
        .unwrap();
}

fn container_status(state: serde_json::Value, last_state: serde_json::Value, restarts: i32) -> serde_json::Value {
    json!({"containerStatuses": [{"name": "hex-core-service", "ready": false, "restartCount": restarts,
        "image": "i:1", "imageID": "", "state": state, "lastState": last_state}]})
}

#[tokio::test]
async fn pods_that_do_not_run_say_why_in_the_services_conditions() {
    let f = Fixture::new("status-pods").await;
    f.wait_condition("Ready", "False", "NoReadyReplicas").await;
    let pods: Api<Pod> = Api::namespaced(f.ns.client.clone(), &f.ns.name);
    pods.create(&PostParams::default(), &support::data_plane_pod("svc-7d9f-abcde"))
        .await
        .unwrap();

    // A spec the service refuses: it exits 2 and its termination message says why.
    let refused =
        "hex-core-service: invalid configuration: REGISTRY_FETCH_TIMEOUT_MS=1: must be between 100 and 600000";
    set_pod_status(
        &pods,
        "svc-7d9f-abcde",
        container_status(
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}),
            json!({"terminated": {"exitCode": 2, "reason": "Error", "message": refused}}),
            3,
        ),
    )
    .await;
    let ready = f.wait_condition("Ready", "False", "PodsCrashLooping").await;
    assert!(ready.message.contains(refused), "{}", ready.message);
    assert!(ready.message.contains("pod svc-7d9f-abcde"), "{}", ready.message);
    f.wait_condition("Degraded", "True", "PodsCrashLooping").await;

    set_pod_status(
        &pods,
        "svc-7d9f-abcde",
        container_status(
            json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"i:1\""}}),
            json!({}),
            0,
        ),
    )
    .await;
    let ready = f.wait_condition("Ready", "False", "ImagePullFailed").await;
    assert!(ready.message.contains("Back-off pulling image"), "{}", ready.message);

    pods.create(&PostParams::default(), &support::data_plane_pod("svc-7d9f-unsch"))
        .await
        .unwrap();
    set_pod_status(
        &pods,
        "svc-7d9f-unsch",
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}]}),
    )
    .await;
    let ready = f.wait_condition("Ready", "False", "PodsUnschedulable").await;
    assert!(ready.message.contains("3 Insufficient memory"), "{}", ready.message);

    // Once the pods are gone the problems are too.
    for name in ["svc-7d9f-abcde", "svc-7d9f-unsch"] {
        pods.delete(name, &Default::default()).await.unwrap();
    }
    f.wait_condition("Degraded", "False", "AsExpected").await;
    f.wait_condition("Ready", "False", "NoReadyReplicas").await;
}
