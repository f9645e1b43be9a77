//! Two operator replicas with leader election: exactly one acts; when it stops, the other takes
//! over.

mod support;

use std::time::Duration;

use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use hex_core_operator::lease::ElectionTiming;
use hex_core_operator::operator::{Election, Options};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::{RunningOperator, TestNs, delete_ignoring_absent, eventually, fast_settings, install_crds};

fn replica(ns: &TestNs, identity: &str) -> RunningOperator {
    RunningOperator::start_with(
        ns.client.clone(),
        Options {
            namespaces: vec![ns.name.clone()],
            election: Some(Election {
                namespace: ns.name.clone(),
                lease_name: "hex-core-operator".into(),
                identity: identity.into(),
                timing: ElectionTiming {
                    lease_duration: Duration::from_secs(3),
                    renew_deadline: Duration::from_secs(2),
                    retry: Duration::from_millis(500),
                },
            }),
            settings: fast_settings(),
        },
    )
}

#[tokio::test]
async fn of_two_operator_replicas_only_the_leader_acts_and_the_other_takes_over() {
    let ns = TestNs::new("leader").await;
    install_crds(&ns.client).await;
    let a = replica(&ns, "replica-a");
    let b = replica(&ns, "replica-b");

    let a_leads = eventually(Duration::from_secs(15), "exactly one leader", || async {
        match (a.handle.is_leader(), b.handle.is_leader()) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    })
    .await;
    let (leader, follower) = if a_leads { (a, b) } else { (b, a) };

    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    catalogs
        .create(&PostParams::default(), &support::minimal_catalog("c"))
        .await
        .unwrap();
    let hcs = support::minimal_service("svc", "c", json!({}));
    services.create(&PostParams::default(), &hcs).await.unwrap();
    eventually(Duration::from_secs(30), "the Deployment", || async {
        deployments.get_opt("svc").await.unwrap()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert!(leader.handle.metrics.total_writes() > 0, "the leader wrote");
    assert_eq!(follower.handle.metrics.total_writes(), 0, "the follower wrote nothing");
    assert!(
        !follower
            .handle
            .metrics
            .render()
            .contains("hexcore_operator_reconciles_total{"),
        "the follower ran no reconcile"
    );
    assert!(follower.handle.metrics.render().contains("hexcore_operator_leader 0"));
    assert!(leader.handle.metrics.render().contains("hexcore_operator_leader 1"));

    // The leader stops (without releasing the lease, as in a crash); the follower takes over
    // after the lease expires and acts: a deleted Deployment comes back.
    let follower_handle = follower.handle.clone();
    drop(leader);
    eventually(Duration::from_secs(15), "the follower to lead", || async {
        follower_handle.is_leader().then_some(())
    })
    .await;
    delete_ignoring_absent(&deployments, "svc").await;
    eventually(
        Duration::from_secs(30),
        "the Deployment restored by the new leader",
        || async { deployments.get_opt("svc").await.unwrap() },
    )
    .await;
    assert!(follower_handle.metrics.total_writes() > 0, "the new leader wrote");
}
