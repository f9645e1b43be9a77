//! The test control plane itself, exercised with kube-rs: CRDs by server-side apply, custom
//! resources, CEL validation by the real API server, watches and Lease-based leader election.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use hex_core_operator::lease::{Attempt, LeaseLock};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::TestNs;

/// A throwaway kind with one CEL rule, so this file tests the plane, not the operator's CRDs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "test.hex-core.dev", version = "v1", kind = "Widget", namespaced)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.minSize <= self.maxSize",
    "message": "minSize must not exceed maxSize"
}]))]
pub struct WidgetSpec {
    min_size: i32,
    max_size: i32,
}

async fn apply_widget_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "widgets.test.hex-core.dev",
        &PatchParams::apply("hex-core-tests").force(),
        &Patch::Apply(Widget::crd()),
    )
    .await
    .expect("server-side apply of the Widget CRD");
    tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(crds, "widgets.test.hex-core.dev", conditions::is_crd_established()),
    )
    .await
    .expect("CRD established within 20 s")
    .expect("watch the CRD");
}

#[tokio::test]
async fn client_trusts_the_planes_ecdsa_p256_certificates() {
    let ns = TestNs::new("tls").await;
    let version = ns.client.apiserver_version().await.expect("TLS handshake and /version");
    assert_eq!(version.major, "1");
    assert_eq!(version.git_version, "v1.34.4");
}

#[tokio::test]
async fn crd_applied_server_side_serves_custom_resources_and_cel_rejects_invalid_ones() {
    let ns = TestNs::new("crd").await;
    apply_widget_crd(&ns.client).await;
    let widgets: Api<Widget> = Api::namespaced(ns.client.clone(), &ns.name);

    let created = widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "ok",
                WidgetSpec {
                    min_size: 1,
                    max_size: 3,
                },
            ),
        )
        .await
        .expect("a valid Widget is accepted");
    assert!(created.uid().is_some());
    let read = widgets.get("ok").await.expect("read the Widget back");
    assert_eq!((read.spec.min_size, read.spec.max_size), (1, 3));

    let error = widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "bad",
                WidgetSpec {
                    min_size: 5,
                    max_size: 2,
                },
            ),
        )
        .await
        .expect_err("the CEL rule rejects minSize > maxSize");
    let kube::Error::Api(status) = error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("minSize must not exceed maxSize"),
        "the API server's message names the rule's message: {}",
        status.message
    );
}

#[tokio::test]
async fn watch_delivers_an_update_to_a_config_map() {
    let ns = TestNs::new("watch").await;
    let maps: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let apply = |value: &str| {
        let maps = maps.clone();
        let cm =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"k": value}});
        async move {
            maps.patch("watched", &PatchParams::apply("hex-core-tests"), &Patch::Apply(cm))
                .await
                .expect("apply the ConfigMap");
        }
    };
    apply("one").await;

    let config = watcher::Config::default().fields("metadata.name=watched");
    let mut stream = watcher(maps.clone(), config).applied_objects().boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("initial object within 10 s")
        .expect("watch stream")
        .expect("an object");
    assert_eq!(first.data.unwrap()["k"], "one");

    apply("two").await;
    let updated = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let cm = stream.try_next().await.expect("watch stream").expect("an object");
            if cm.data.as_ref().is_some_and(|d| d["k"] == "two") {
                return cm;
            }
        }
    })
    .await
    .expect("the update arrives through the watch within 10 s");
    assert_eq!(updated.name_any(), "watched");
}

#[tokio::test]
async fn of_two_contenders_for_one_lease_exactly_one_holds_it() {
    let ns = TestNs::new("lease").await;
    let duration = Duration::from_secs(3);
    let a = LeaseLock::new(ns.client.clone(), &ns.name, "leader", "candidate-a", duration);
    let b = LeaseLock::new(ns.client.clone(), &ns.name, "leader", "candidate-b", duration);

    // Both race for the absent Lease at once: the API server lets exactly one create win.
    let (ra, rb) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
    let (ra, rb) = (ra.expect("a's attempt"), rb.expect("b's attempt"));
    let held = [&ra, &rb].iter().filter(|r| ***r == Attempt::Held).count();
    assert_eq!(held, 1, "exactly one contender holds the lease: a={ra:?} b={rb:?}");
    let (winner, loser) = if ra == Attempt::Held { (&a, &b) } else { (&b, &a) };

    // The holder renews; the other still cannot take it while it is being renewed.
    for _ in 0..3 {
        assert_eq!(winner.try_acquire_or_renew().await.unwrap(), Attempt::Held);
        assert_eq!(
            loser.try_acquire_or_renew().await.unwrap(),
            Attempt::HeldBy(Some(winner.identity().to_string()))
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let lease = leases.get("leader").await.unwrap();
    assert_eq!(
        lease.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some(winner.identity())
    );

    // Once the holder stops renewing for a full lease duration, the other takes over.
    let took_over = support::eventually(Duration::from_secs(10), "the takeover of an expired lease", || async {
        (loser.try_acquire_or_renew().await.unwrap() == Attempt::Held).then_some(())
    })
    .await;
    let _: () = took_over;
    let lease = leases.get("leader").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(loser.identity()));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(
        winner.try_acquire_or_renew().await.unwrap(),
        Attempt::HeldBy(Some(loser.identity().to_string())),
        "the former holder sees it lost the lease"
    );

    // Release hands over without waiting for expiry.
    loser.release().await.unwrap();
    assert_eq!(winner.try_acquire_or_renew().await.unwrap(), Attempt::Held);
}

/// The node's kubelet and controllers (scripts/k8s-tools/node) are built from the same
/// Kubernetes release as the control plane's apiserver (scripts/k8s-tools/kube): one pin and one
/// replace block, so a bump of one cannot leave a kubelet newer than its apiserver.
#[test]
fn the_node_tools_pin_the_control_planes_kubernetes_release() {
    let read = |module: &str| {
        let path = support::repo_root().join(format!("scripts/k8s-tools/{module}/go.mod"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    let replace_block = |go_mod: &str| {
        let start = go_mod.find("replace (").expect("a replace block");
        let end = start + go_mod[start..].find("\n)").expect("the end of the replace block");
        go_mod[start..end].to_string()
    };
    let kubernetes = |go_mod: &str| {
        go_mod
            .lines()
            .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes v"))
            .map(|v| v.split_whitespace().next().unwrap().to_string())
            .expect("k8s.io/kubernetes is required")
    };
    let (kube, node) = (read("kube"), read("node"));
    assert_eq!(kubernetes(&kube), kubernetes(&node));
    assert_eq!(replace_block(&kube), replace_block(&node));
}
