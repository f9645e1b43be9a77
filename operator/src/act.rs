//! The thin write layer of a HexCoreService reconcile: carries out a [`Plan`] and nothing else.
//! [`write`] creates, applies, deletes and refreshes, recording what the server and the replicas
//! answered into the observation (so the status decided next says so at once); [`report`]
//! server-side-applies the status and publishes the Events.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::apply::{server_side_apply, with_applied_hash};
use crate::controller::{Context, Error};
use crate::crd::{GROUP, HexCoreService, HexCoreServiceStatus, VERSION};
use crate::decide::Plan;
use crate::desired::{Child, MANAGER};
use crate::observe::{Observed, Rejection};

/// Longest Event note (the API server's limit is 1 KiB).
const NOTE_MAX: usize = 1000;

async fn apply_as<K>(ctx: &Context, namespace: &str, value: &Value) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    server_side_apply(&api, value).await
}

/// Server-side applies one child; returns it as the server stored it.
async fn apply_child(ctx: &Context, namespace: &str, child: &Child) -> Result<Child, kube::Error> {
    let value = with_applied_hash(child.to_value());
    Ok(match child {
        Child::ConfigMap(_) => Child::ConfigMap(apply_as::<ConfigMap>(ctx, namespace, &value).await?),
        Child::PersistentVolumeClaim(_) => {
            Child::PersistentVolumeClaim(apply_as::<PersistentVolumeClaim>(ctx, namespace, &value).await?)
        }
        Child::Deployment(_) => Child::Deployment(Box::new(apply_as::<Deployment>(ctx, namespace, &value).await?)),
        Child::Service(_) => Child::Service(apply_as::<Service>(ctx, namespace, &value).await?),
        Child::PodDisruptionBudget(_) => {
            Child::PodDisruptionBudget(apply_as::<PodDisruptionBudget>(ctx, namespace, &value).await?)
        }
    })
}

/// An API rejection of the object itself: reported as a condition, not retried hot.
fn is_rejection(error: &kube::Error) -> Option<String> {
    match error {
        kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 409 && status.code != 429 => {
            Some(status.message.clone())
        }
        _ => None,
    }
}

/// Carries out the writes of `plan` (not its status and Events) and records their results in
/// `observed`. Returns what changed, for the `Applied` Event.
pub async fn write(ctx: &Context, plan: &Plan, observed: &mut Observed) -> Result<Vec<String>, Error> {
    let hcs = &observed.hcs;
    let namespace = hcs.namespace().ok_or_else(|| Error::NoNamespace(hcs.name_any()))?;
    let names = observed.names();
    let mut changes = Vec::new();

    for secret in &plan.create {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let name = secret.name_any();
        let stored = match api.create(&PostParams::default(), secret).await {
            Ok(created) => {
                ctx.metrics.write("Secret");
                changes.push(format!("created Secret {name}"));
                Some(created)
            }
            // Created meanwhile (by this operator's previous leader, say): never overwritten.
            Err(kube::Error::Api(status)) if status.code == 409 => api.get_opt(&name).await?,
            Err(e) => return Err(e.into()),
        };
        if let Some(stored) = stored {
            observed.secrets.insert(name, stored);
        }
    }

    for preparation in &plan.prepare {
        // Only ever a Deployment (see `decide::Preparation`).
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
        let params = PatchParams {
            field_manager: Some(MANAGER.to_string()),
            ..Default::default()
        };
        api.patch(&preparation.name, &params, &Patch::Merge(&preparation.patch))
            .await?;
        ctx.metrics.write(preparation.kind);
    }

    for child in &plan.apply {
        let existed = observed.live.value_of(child).is_some();
        match apply_child(ctx, &namespace, child).await {
            Ok(stored) => {
                ctx.metrics.write(child.kind());
                let verb = if existed { "updated" } else { "created" };
                changes.push(format!("{verb} {} {}", child.kind(), child.name()));
                observed.live.replace(stored, &names);
            }
            Err(error) => match is_rejection(&error) {
                Some(message) => observed.written.rejected.push(Rejection {
                    kind: child.kind().to_string(),
                    name: child.name().to_string(),
                    message,
                }),
                None => return Err(error.into()),
            },
        }
    }

    for deletion in &plan.delete {
        let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &namespace);
        match api.delete(&deletion.name, &DeleteParams::default()).await {
            Ok(_) => {
                ctx.metrics.write("PodDisruptionBudget/delete");
                changes.push(format!("deleted {} {}", deletion.kind, deletion.name));
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        observed.live.pdb = None;
    }

    if let Some(token) = &plan.token {
        let reads = futures::future::join_all(plan.refresh.iter().map(|e| ctx.replicas.refresh(e, &token.0))).await;
        for read in reads {
            let outcome = match &read.report {
                Ok(report) if report.catalog_sha256.is_some() && report.catalog_sha256 == plan.want => "refreshed",
                Ok(_) => "stale",
                Err(_) => "failed",
            };
            ctx.metrics
                .refreshes
                .get_or_create(&vec![("outcome", outcome.to_string())])
                .inc();
            let authority = read.endpoint.authority.clone();
            if let Some(slot) = observed.replicas.iter_mut().find(|r| r.endpoint.authority == authority) {
                *slot = read;
            }
            observed.written.refreshed.push(authority);
        }
    }

    if !changes.is_empty() {
        tracing::info!(service = %hcs.name_any(), %namespace, ?changes, "applied children");
        publish(ctx, hcs, false, "Applied", &changes.join(", ")).await;
    }
    Ok(changes)
}

/// The status as server-side apply sends it to the status subresource.
pub fn status_patch(status: &HexCoreServiceStatus) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "HexCoreService",
        "status": status,
    })
}

/// Writes the status (server-side apply, the operator's field manager: fields it stops setting
/// are removed) and publishes the Events of `plan`.
pub async fn report(ctx: &Context, hcs: &HexCoreService, plan: &Plan) -> Result<(), Error> {
    let namespace = hcs.namespace().ok_or_else(|| Error::NoNamespace(hcs.name_any()))?;
    if let Some(status) = &plan.status {
        let api: Api<HexCoreService> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &hcs.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(status_patch(status)),
        )
        .await?;
        ctx.metrics.write("HexCoreService/status");
    }
    for event in &plan.events {
        publish(ctx, hcs, event.warning, &event.reason, &event.note).await;
    }
    Ok(())
}

/// Publishes an Event about `object`; a failure is logged, never fatal.
pub async fn publish<K>(ctx: &Context, object: &K, warning: bool, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: reason.to_string(),
        note: Some(note.chars().take(NOTE_MAX).collect()),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    match ctx.recorder.publish(&event, &object.object_ref(&())).await {
        Ok(()) => ctx.metrics.write("Event"),
        Err(error) => tracing::debug!(%error, "cannot publish an event"),
    }
}
