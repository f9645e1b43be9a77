//! Every decision of a HexCoreService reconcile, as one pure function of what was observed:
//! which children to apply or delete, which replicas to refresh, the status (each condition
//! with its reason) and the Events. `act` carries a [`Plan`] out; `render` prints the objects
//! of the same [`Assembly`].
//!
//! The shape follows linkerd2's policy controller: an index of observed state, pure builders
//! that return what to write (nothing when the live state already matches), and a thin writer.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::apply::{contained_in, with_applied_hash};
use crate::catalog::{Selection, select_and_merge};
use crate::conditions::{self, Decided};
use crate::crd::{FailedEntry, HexCoreService, HexCoreServiceStatus, ReplicaStatus};
use crate::desired::{self, CATALOG_KEY, Child, Names};
use crate::observe::{LiveChildren, Observed};
use crate::pods;
use crate::replicas::{Endpoint, ReplicaRead, ReportedFailure};
use crate::secrets::{SecretsRead, read_secrets};

/// Replicas listed in `status.replicaStatuses`; the others are counted.
pub const MAX_REPLICA_STATUSES: usize = 10;
/// Failed entries listed per replica; the others are counted.
pub const MAX_FAILED_ENTRIES: usize = 5;
/// Models named in a condition message; the others are counted.
const MAX_MODELS_NAMED: usize = 5;
/// Longest error text copied from a replica into the status.
const ERROR_MAX: usize = 256;

/// The machine admin token, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// When the next reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything converged: re-check at the resync period.
    Settled,
    /// `spec.paused`, or the resource is being deleted: wait for a change.
    Idle,
    /// Not there yet (replicas unconverged, missing references, rejected writes): back off.
    Retry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// A child to delete (only ever the PodDisruptionBudget, when the spec drops it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub kind: &'static str,
    pub name: String,
}

/// A JSON merge patch sent before the server-side applies: it removes a field the API server
/// defaulted, which no field manager owns (so an apply that omits it cannot remove it) and which
/// the desired object forbids.
#[derive(Debug, Clone, PartialEq)]
pub struct Preparation {
    pub kind: &'static str,
    pub name: String,
    pub patch: serde_json::Value,
}

/// What one reconcile writes, and when the next one runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Created once, never updated (the generated admin token).
    pub create: Vec<Secret>,
    pub prepare: Vec<Preparation>,
    /// Children whose live object differs from the desired one, in apply order.
    pub apply: Vec<Child>,
    pub delete: Vec<Deletion>,
    /// Replicas to ask to reload their catalog file.
    pub refresh: Vec<Endpoint>,
    pub token: Option<Token>,
    /// SHA-256 of the catalog every replica must serve.
    pub want: Option<String>,
    /// The new status, when it differs from the live one.
    pub status: Option<HexCoreServiceStatus>,
    pub events: Vec<PlannedEvent>,
    pub verdict: Verdict,
    /// Catalogs the service selected or names: a catalog leaving the selection must still
    /// trigger the service that used to serve it.
    pub catalogs_used: BTreeSet<String>,
}

impl Plan {
    fn idle() -> Self {
        Self {
            create: Vec::new(),
            prepare: Vec::new(),
            apply: Vec::new(),
            delete: Vec::new(),
            refresh: Vec::new(),
            token: None,
            want: None,
            status: None,
            events: Vec::new(),
            verdict: Verdict::Idle,
            catalogs_used: BTreeSet::new(),
        }
    }

    /// True when the plan writes children or talks to replicas (not counting status and Events).
    pub fn writes(&self) -> bool {
        !(self.create.is_empty()
            && self.prepare.is_empty()
            && self.apply.is_empty()
            && self.delete.is_empty()
            && self.refresh.is_empty())
    }
}

/// The desired objects of one HexCoreService and what they were built from: the single
/// assembly path of the controller and of `render`.
#[derive(Debug)]
pub struct Assembly {
    pub selection: Selection,
    pub secrets: SecretsRead,
    /// The admin-token Secret to create (the spec names none and it does not exist yet).
    pub admin_token_secret: Option<Secret>,
    pub image: String,
    /// SHA-256 of the catalog the replicas must serve: the merged one, or, when the selection
    /// is broken, the one already delivered.
    pub delivered_sha: Option<String>,
    /// In apply order: catalog ConfigMap (when the merge succeeded), env ConfigMap, data claim
    /// (embedded), Deployment (when its Secrets and a catalog exist), Service, PodDisruptionBudget.
    pub children: Vec<Child>,
}

/// Builds the desired objects from `o` (live objects matter only for the delivered catalog).
pub fn assemble(o: &Observed) -> Assembly {
    let hcs = &o.hcs;
    let names = o.names();
    let selection = select_and_merge(hcs, &o.catalogs);
    let mut secrets = o.secrets.clone();
    let admin_token_secret = (hcs.spec.auth.admin_token_secret_ref.is_none()
        && !secrets.contains_key(&names.admin_token_secret))
    .then(|| desired::admin_token_secret(hcs, &o.new_admin_token));
    if let Some(secret) = &admin_token_secret {
        // As the pods will read it once created.
        secrets.insert(names.admin_token_secret.clone(), secret.clone());
    }
    let read = read_secrets(hcs, &secrets);
    let image = desired::image(hcs, &o.default_image);
    let env = desired::environment(hcs);
    let delivered_sha = match &selection.merged {
        Ok(merged) => Some(merged.sha256.clone()),
        Err(_) => live_catalog_sha(&o.live),
    };

    let mut children = Vec::new();
    if let Ok(merged) = &selection.merged {
        children.push(Child::ConfigMap(desired::catalog_config_map(hcs, merged)));
    }
    children.push(Child::ConfigMap(desired::env_config_map(hcs, &env)));
    if let Some(claim) = desired::data_claim(hcs) {
        children.push(Child::PersistentVolumeClaim(claim));
    }
    // Without its Secrets or any catalog a pod cannot start; what runs is kept instead.
    if read.problems.is_empty() && delivered_sha.is_some() {
        let hash = desired::config_hash(&env, &read.digests);
        children.push(Child::Deployment(Box::new(desired::deployment(hcs, &hash, &image))));
    }
    children.push(Child::Service(desired::service(hcs)));
    if let Some(pdb) = desired::pod_disruption_budget(hcs) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    Assembly {
        selection,
        secrets: read,
        admin_token_secret,
        image,
        delivered_sha,
        children,
    }
}

fn live_catalog_sha(live: &LiveChildren) -> Option<String> {
    let cm = live.catalog_config_map.as_ref()?;
    let json = cm.data.as_ref()?.get(CATALOG_KEY)?;
    Some(desired::sha256_hex(json.as_bytes()))
}

/// True when the live object already holds `child` as last applied (see `apply`).
fn up_to_date(child: &Child, live: &LiveChildren) -> bool {
    live.value_of(child)
        .is_some_and(|live| contained_in(&with_applied_hash(child.to_value()), &live))
}

/// A Deployment moving to the `Recreate` strategy still has the `rollingUpdate` the API server
/// defaulted when it was created with the default strategy; `Recreate` refuses it, and as no
/// manager owns it, only a patch that deletes it removes it.
fn clear_defaulted_rolling_update(apply: &[Child], live: &LiveChildren) -> Vec<Preparation> {
    let recreate = apply.iter().any(|c| {
        matches!(c, Child::Deployment(d) if d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()) == Some("Recreate"))
    });
    let live_rolling_update = live
        .deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref()?.strategy.as_ref()?.rolling_update.as_ref())
        .is_some();
    match (&live.deployment, recreate && live_rolling_update) {
        (Some(deployment), true) => vec![Preparation {
            kind: "Deployment",
            name: deployment.name_any(),
            patch: serde_json::json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}),
        }],
        _ => Vec::new(),
    }
}

/// The problems found, each a reason and a message, in the order found.
#[derive(Default)]
struct Problems(Vec<(&'static str, String)>);

impl Problems {
    fn push(&mut self, reason: &'static str, message: impl Into<String>) {
        self.0.push((reason, message.into()));
    }
    fn first_reason(&self) -> Option<&'static str> {
        self.0.first().map(|(r, _)| *r)
    }
    fn message(&self) -> String {
        self.0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn replica_name(read: &ReplicaRead) -> &str {
    read.endpoint.pod.as_deref().unwrap_or(&read.endpoint.authority)
}

/// One catalog entry some replicas do not serve.
struct ModelFailure<'a> {
    model: &'a str,
    version: &'a str,
    /// Replicas (pod names) reporting it, in order.
    replicas: Vec<&'a str>,
    first: &'a ReportedFailure,
    /// Some replica says it will not retry on its own.
    permanent: bool,
}

/// Failed entries across every replica that answered, by `(model, version)`.
fn model_failures(reads: &[ReplicaRead]) -> Vec<ModelFailure<'_>> {
    let mut by_entry: BTreeMap<(&str, &str), ModelFailure> = BTreeMap::new();
    for read in reads {
        let Ok(report) = &read.report else { continue };
        for failure in report.failures() {
            let entry = by_entry
                .entry((failure.model.as_str(), failure.version.as_str()))
                .or_insert(ModelFailure {
                    model: &failure.model,
                    version: &failure.version,
                    replicas: Vec::new(),
                    first: failure,
                    permanent: false,
                });
            entry.replicas.push(replica_name(read));
            entry.permanent |= !failure.transient;
        }
    }
    by_entry.into_values().collect()
}

/// "model m@1 is not loaded on 2 of 3 replicas (svc-a: shacl: HTTP 503; retried automatically)".
fn describe_failures(failures: &[&ModelFailure], replicas: usize) -> String {
    let mut parts: Vec<String> = failures
        .iter()
        .take(MAX_MODELS_NAMED)
        .map(|f| {
            let artifact = f
                .first
                .artifact
                .as_deref()
                .map(|a| format!("{a}: "))
                .unwrap_or_default();
            let retry = if f.permanent {
                "not retried until the catalog or the artifact changes"
            } else {
                "retried automatically"
            };
            let stale = if f.first.state == "stale" {
                ", the previous version of its artifacts is served"
            } else {
                ""
            };
            format!(
                "model {}@{} is not loaded on {} of {replicas} replicas ({}: {artifact}{}; {retry}{stale})",
                f.model,
                f.version,
                f.replicas.len(),
                f.replicas[0],
                cut(&f.first.error, ERROR_MAX)
            )
        })
        .collect();
    if failures.len() > MAX_MODELS_NAMED {
        parts.push(format!("and {} more models", failures.len() - MAX_MODELS_NAMED));
    }
    parts.join("; ")
}

fn replica_status(read: &ReplicaRead, want: Option<&str>) -> ReplicaStatus {
    let (report, error) = match &read.report {
        Ok(report) => (Some(report), None),
        Err(error) => (None, Some(cut(error, ERROR_MAX))),
    };
    let failures = report.map(|r| r.failures()).unwrap_or_default();
    let failed_entries: Vec<FailedEntry> = failures
        .iter()
        .take(MAX_FAILED_ENTRIES)
        .map(|f| FailedEntry {
            model: f.model.clone(),
            version: f.version.clone(),
            state: f.state.clone(),
            artifact: f.artifact.clone(),
            error: cut(&f.error, ERROR_MAX),
            transient: f.transient,
            since: f.since.clone(),
        })
        .collect();
    ReplicaStatus {
        pod: read.endpoint.pod.clone(),
        address: read.endpoint.authority.clone(),
        ready: read.endpoint.ready,
        converged: report.is_some_and(|r| want.is_some_and(|w| r.serves(w))),
        catalog_sha256: report.and_then(|r| r.catalog_sha256.clone()),
        version: read.version.clone(),
        not_ready_reason: report
            .filter(|r| r.status != "ready")
            .and_then(|r| r.reason.as_deref())
            .map(|r| cut(r, ERROR_MAX)),
        entries: report.and_then(|r| r.entry_counts()),
        failed_entries: (!failed_entries.is_empty()).then_some(failed_entries),
        omitted_failed_entries: (failures.len() > MAX_FAILED_ENTRIES)
            .then(|| (failures.len() - MAX_FAILED_ENTRIES) as i32),
        error,
    }
}

/// The plan of a paused resource: its status says so, nothing else is written.
fn decide_paused(o: &Observed, now: Timestamp) -> Plan {
    let previous = o.hcs.status.clone().unwrap_or_default();
    let previous_conditions = previous.conditions.clone().unwrap_or_default();
    let generation = o.hcs.metadata.generation;
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.conditions = Some(conditions::merge(
        &previous_conditions,
        &[Decided::new(
            conditions::RECONCILIATION_PAUSED,
            true,
            "Paused",
            "spec.paused is true: the operator changes nothing but this status",
        )],
        generation,
        now,
    ));
    let mut plan = Plan::idle();
    if !conditions::is_true(&previous_conditions, conditions::RECONCILIATION_PAUSED) {
        plan.events.push(PlannedEvent {
            warning: false,
            reason: "Paused".into(),
            note: "reconciliation paused (spec.paused)".into(),
        });
    }
    plan.status = (status != previous).then_some(status);
    plan
}

/// Every decision of one reconcile of `o.hcs`, at `now`.
pub fn decide(o: &Observed, now: Timestamp) -> Plan {
    let hcs: &HexCoreService = &o.hcs;
    if hcs.metadata.deletion_timestamp.is_some() {
        // Children carry controller owner references; the garbage collector removes them.
        return Plan::idle();
    }
    if hcs.spec.paused == Some(true) {
        return decide_paused(o, now);
    }
    let name = hcs.name_any();
    let names: Names = o.names();
    let previous = hcs.status.clone().unwrap_or_default();
    let previous_conditions = previous.conditions.clone().unwrap_or_default();
    let generation = hcs.metadata.generation;
    let assembly = assemble(o);

    // Problems that need a human, in the order a reader should fix them.
    let mut degraded = Problems::default();
    if let Err(error) = &assembly.selection.merged {
        degraded.push(error.reason(), format!("{error}; serving the previous catalog"));
    }
    for problem in &assembly.secrets.problems {
        degraded.push(problem.reason(), problem.to_string());
    }
    if let Some(problem) = desired::unshared_records_problem(hcs) {
        degraded.push("RecordStoreNotShared", problem);
    }
    for rejection in &o.written.rejected {
        degraded.push(
            "ApplyRejected",
            format!(
                "the API server rejected the {} {}: {}",
                rejection.kind, rejection.name, rejection.message
            ),
        );
    }
    if let Some(problem) = pods::diagnose(&o.pods, o.live.deployment.as_ref()) {
        degraded.push(problem.reason, problem.message);
    }

    // Children: only what differs from the live objects is written.
    let apply: Vec<Child> = assembly
        .children
        .iter()
        .filter(|child| !up_to_date(child, &o.live))
        .cloned()
        .collect();
    let prepare = clear_defaulted_rolling_update(&apply, &o.live);
    let owns_live_pdb = o.live.pdb.as_ref().is_some_and(|p| {
        p.owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && Some(&r.uid) == hcs.metadata.uid.as_ref())
    });
    let delete = if desired::pod_disruption_budget(hcs).is_none() && owns_live_pdb {
        vec![Deletion {
            kind: "PodDisruptionBudget",
            name: names.pdb.clone(),
        }]
    } else {
        Vec::new()
    };

    // Replicas: converged = the wanted catalog with every entry loaded.
    let want = assembly.delivered_sha.as_deref();
    let token = assembly.secrets.admin_token.clone().map(Token);
    let writing_catalog = apply.iter().any(|c| c.name() == names.catalog_config_map);
    let refresh: Vec<Endpoint> = match (want, &token) {
        // A catalog ConfigMap written now reaches the pods' files only at the kubelet's next
        // sync; refreshing before that would reload the old file.
        (Some(want), Some(_)) if !writing_catalog => o
            .replicas
            .iter()
            .filter(|r| {
                r.report.as_ref().is_ok_and(|report| {
                    report.catalog_sha256.as_deref() != Some(want)
                        // Failures the replica will not retry on its own: a refresh re-fetches
                        // (the artifact may have been fixed at its URL).
                        || report.failures().iter().any(|f| f.next_retry_at.is_none())
                })
            })
            .map(|r| r.endpoint.clone())
            .collect(),
        _ => Vec::new(),
    };
    let ready_reads: Vec<&ReplicaRead> = o.replicas.iter().filter(|r| r.endpoint.ready).collect();
    let serves = |r: &ReplicaRead| want.is_some_and(|w| r.report.as_ref().is_ok_and(|rep| rep.serves(w)));
    let converged = ready_reads.iter().filter(|r| serves(r)).count();
    let all_converged = converged == ready_reads.len();
    let deployment_replicas = desired::deployment_replicas(hcs);
    let serving = !ready_reads.is_empty() || deployment_replicas == 0;
    let catalog_current =
        assembly.selection.merged.is_ok() && !o.written.rejected.iter().any(|r| r.name == names.catalog_config_map);
    let failures = model_failures(&o.replicas);
    let permanent: Vec<&ModelFailure> = failures.iter().filter(|f| f.permanent).collect();
    if !permanent.is_empty() {
        degraded.push("ModelLoadFailed", describe_failures(&permanent, o.replicas.len()));
    }
    let all_failures: Vec<&ModelFailure> = failures.iter().collect();
    let failures_message = describe_failures(&all_failures, o.replicas.len());

    let sha_text = want.map(short).unwrap_or("none");
    let convergence = format!(
        "{converged}/{} ready replicas serve catalog {sha_text}",
        ready_reads.len()
    );
    let delivery_problems: Vec<String> = ready_reads
        .iter()
        .filter(|r| !serves(r))
        .map(|r| match &r.report {
            Ok(report) => format!(
                "{} reports catalog {}",
                replica_name(r),
                report.catalog_sha256.as_deref().map(short).unwrap_or("none")
            ),
            Err(error) => cut(error, ERROR_MAX),
        })
        .collect();

    let mut decided = vec![Decided::new(
        conditions::RECONCILIATION_PAUSED,
        false,
        "NotPaused",
        "spec.paused is not set",
    )];
    decided.push(match degraded.first_reason() {
        Some(reason) => Decided::new(conditions::DEGRADED, true, reason, degraded.message()),
        None => Decided::new(conditions::DEGRADED, false, "AsExpected", "no problems found"),
    });
    decided.push(if !catalog_current {
        Decided::new(
            conditions::CATALOG_SYNCED,
            false,
            degraded.first_reason().unwrap_or("CatalogPending"),
            degraded.message(),
        )
    } else if !failures.is_empty() {
        Decided::new(
            conditions::CATALOG_SYNCED,
            false,
            "ModelLoadFailed",
            failures_message.clone(),
        )
    } else if !all_converged {
        Decided::new(
            conditions::CATALOG_SYNCED,
            false,
            "RefreshPending",
            format!("{convergence}: {}", delivery_problems.join("; ")),
        )
    } else {
        Decided::new(conditions::CATALOG_SYNCED, true, "Delivered", convergence.clone())
    });
    let deployment_status = o
        .live
        .deployment
        .as_ref()
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    let rolling = deployment_status.updated_replicas.unwrap_or(0) < deployment_replicas
        || deployment_status.ready_replicas.unwrap_or(0) < deployment_replicas;
    decided.push(if !all_converged {
        Decided::new(
            conditions::PROGRESSING,
            true,
            "DeliveringCatalog",
            format!("refreshing replicas onto catalog {sha_text}"),
        )
    } else if rolling {
        Decided::new(
            conditions::PROGRESSING,
            true,
            "RollingOut",
            format!(
                "{}/{deployment_replicas} replicas updated, {} ready",
                deployment_status.updated_replicas.unwrap_or(0),
                deployment_status.ready_replicas.unwrap_or(0)
            ),
        )
    } else {
        Decided::new(conditions::PROGRESSING, false, "Stable", "nothing in progress")
    });
    let ready = degraded.is_empty() && catalog_current && all_converged && serving && failures.is_empty();
    decided.push(if ready {
        Decided::new(conditions::READY, true, "Converged", convergence.clone())
    } else if let Some(reason) = degraded.first_reason() {
        Decided::new(conditions::READY, false, reason, degraded.message())
    } else if !failures.is_empty() {
        Decided::new(conditions::READY, false, "ModelLoadFailed", failures_message)
    } else if !serving {
        Decided::new(
            conditions::READY,
            false,
            "NoReadyReplicas",
            "no ready replica yet (no ready endpoint in the Service's EndpointSlices)",
        )
    } else {
        Decided::new(conditions::READY, false, "CatalogNotConverged", convergence.clone())
    });

    let mut replica_statuses: Vec<ReplicaStatus> = o.replicas.iter().map(|r| replica_status(r, want)).collect();
    let omitted = replica_statuses.len().saturating_sub(MAX_REPLICA_STATUSES);
    replica_statuses.truncate(MAX_REPLICA_STATUSES);
    let refreshed_onto_current = o
        .replicas
        .iter()
        .any(|r| o.written.refreshed.contains(&r.endpoint.authority) && serves(r));
    let status = HexCoreServiceStatus {
        observed_generation: generation,
        replicas: Some(deployment_status.replicas.unwrap_or(0)),
        ready_replicas: Some(deployment_status.ready_replicas.unwrap_or(0)),
        selector: Some(desired::selector_string(&name)),
        catalog_sha256: want.map(str::to_string),
        catalog_convergence: Some(format!("{converged}/{} on {sha_text}", ready_reads.len())),
        converged_replicas: Some(converged as i32),
        catalogs: match &assembly.selection.merged {
            Ok(merged) => Some(merged.catalogs.clone()),
            Err(_) => previous.catalogs.clone(),
        },
        last_refresh_time: if refreshed_onto_current {
            Some(Time(now))
        } else {
            previous.last_refresh_time.clone()
        },
        image: Some(assembly.image.clone()),
        replica_statuses: (!replica_statuses.is_empty()).then_some(replica_statuses),
        omitted_replica_statuses: (omitted > 0).then_some(omitted as i32),
        conditions: Some(conditions::merge(&previous_conditions, &decided, generation, now)),
    };

    // Events on transitions only, so a steady state publishes nothing.
    let mut events = Vec::new();
    let was_degraded = conditions::find(&previous_conditions, conditions::DEGRADED);
    if let Some(reason) = degraded.first_reason()
        && was_degraded.is_none_or(|c| c.status != "True" || c.reason != reason)
    {
        events.push(PlannedEvent {
            warning: true,
            reason: reason.to_string(),
            note: degraded.message(),
        });
    }
    if ready && !conditions::is_true(&previous_conditions, conditions::READY) {
        events.push(PlannedEvent {
            warning: false,
            reason: "CatalogDelivered".into(),
            note: convergence,
        });
    }

    Plan {
        create: assembly.admin_token_secret.clone().into_iter().collect(),
        prepare,
        apply,
        delete,
        refresh,
        token,
        want: want.map(str::to_string),
        status: (status != previous).then_some(status),
        events,
        verdict: if ready { Verdict::Settled } else { Verdict::Retry },
        catalogs_used: assembly
            .selection
            .selected
            .union(&assembly.selection.listed)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;
    use crate::crd::{CatalogSelection, EntryCounts, ModelCatalogStatus};
    use crate::observe::{Rejection, Written};
    use crate::replicas::ReadyReport;
    use crate::testing::{hcs, io_adapter, model, named_catalog, postgres_with_credentials_in};

    const DEFAULT_IMAGE: &str = "hex-core-service:9.9.9";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    /// `svc` (2 replicas, catalog `a` by name) with catalog `a` present and nothing live.
    fn fresh() -> Observed {
        let mut o = Observed::of(hcs("svc"), DEFAULT_IMAGE, "generated-token");
        o.catalogs = vec![named_catalog("a", &[], vec![model("m", "1", "https://h/m.json")])];
        o
    }

    fn condition<'a>(status: &'a HexCoreServiceStatus, type_: &str) -> &'a Condition {
        conditions::find(status.conditions.as_deref().unwrap(), type_).unwrap()
    }

    fn reason_of(plan: &Plan, type_: &str) -> (String, String) {
        let c = condition(plan.status.as_ref().unwrap(), type_);
        (c.status.clone(), c.reason.clone())
    }

    fn pair(status: &str, reason: &str) -> (String, String) {
        (status.to_string(), reason.to_string())
    }

    /// What the API server would hold after `plan`'s writes: live children, Secrets, status.
    fn after(o: &Observed, plan: &Plan) -> Observed {
        let mut next = o.clone();
        let names = next.names();
        for secret in &plan.create {
            next.secrets
                .insert(secret.metadata.name.clone().unwrap(), secret.clone());
        }
        for child in &plan.apply {
            let stored = with_applied_hash(child.to_value());
            let stored = match child {
                Child::ConfigMap(_) => Child::ConfigMap(serde_json::from_value(stored).unwrap()),
                Child::PersistentVolumeClaim(_) => {
                    Child::PersistentVolumeClaim(serde_json::from_value(stored).unwrap())
                }
                Child::Deployment(_) => Child::Deployment(Box::new(serde_json::from_value(stored).unwrap())),
                Child::Service(_) => Child::Service(serde_json::from_value(stored).unwrap()),
                Child::PodDisruptionBudget(_) => Child::PodDisruptionBudget(serde_json::from_value(stored).unwrap()),
            };
            next.live.replace(stored, &names);
        }
        if plan.delete.iter().any(|d| d.kind == "PodDisruptionBudget") {
            next.live.pdb = None;
        }
        if let Some(status) = &plan.status {
            next.hcs.status = Some(status.clone());
        }
        next.written = Written::default();
        next
    }

    /// The Deployment reports `ready` of `replicas` ready and updated.
    fn rolled_out(o: &mut Observed, replicas: i32) {
        let deployment = o.live.deployment.as_mut().expect("a live Deployment");
        deployment.status = Some(DeploymentStatus {
            replicas: Some(replicas),
            ready_replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ..Default::default()
        });
    }

    fn read(pod: &str, ready: bool, report: ReadyReport) -> ReplicaRead {
        ReplicaRead {
            endpoint: Endpoint {
                authority: format!("10.0.0.{}:8080", pod.len()),
                pod: Some(pod.to_string()),
                ready,
            },
            report: Ok(report),
            version: Some("0.1.0".into()),
        }
    }

    fn serving(sha: &str) -> ReadyReport {
        ReadyReport {
            status: "ready".into(),
            catalog_sha256: Some(sha.into()),
            models_loaded: Some(1),
            entries: Some(serde_json::json!({"total": 1, "loaded": 1, "stale": 0, "failed": 0})),
            failed_entries: Some(vec![]),
            ..Default::default()
        }
    }

    fn failing(sha: &str, model: &str, transient: bool) -> ReadyReport {
        ReadyReport {
            status: "not_ready".into(),
            reason: Some("1 catalog entry failed to load".into()),
            failed_entries: Some(vec![ReportedFailure {
                model: model.into(),
                version: "1".into(),
                state: "failed".into(),
                artifact: Some("shacl".into()),
                error: "GET https://h/m.ttl: HTTP 503".into(),
                transient,
                attempts: Some(2),
                since: Some("2026-11-27T10:00:00Z".into()),
                next_retry_at: transient.then(|| "2026-11-27T10:00:08Z".to_string()),
            }]),
            entries: Some(serde_json::json!({"total": 1, "loaded": 0, "stale": 0, "failed": 1})),
            ..serving(sha)
        }
    }

    /// `fresh()` after its first reconcile's writes, the Deployment rolled out with 2 pods.
    fn deployed() -> (Observed, String) {
        let o = fresh();
        let plan = decide(&o, at(0));
        let mut o = after(&o, &plan);
        rolled_out(&mut o, 2);
        let sha = plan.want.unwrap();
        (o, sha)
    }

    #[test]
    fn a_first_reconcile_creates_the_token_and_every_child_then_waits_for_replicas() {
        let o = fresh();
        let plan = decide(&o, at(0));
        assert_eq!(plan.create.len(), 1, "the admin token Secret");
        assert_eq!(plan.create[0].metadata.name.as_deref(), Some("svc-admin-token"));
        let applied: Vec<String> = plan
            .apply
            .iter()
            .map(|c| format!("{}/{}", c.kind(), c.name()))
            .collect();
        assert_eq!(
            applied,
            [
                "ConfigMap/svc-catalog",
                "ConfigMap/svc-env",
                "Deployment/svc",
                "Service/svc"
            ]
        );
        assert!(plan.refresh.is_empty() && plan.delete.is_empty());
        let status = plan.status.as_ref().unwrap();
        assert_eq!(condition(status, "Ready").reason, "NoReadyReplicas");
        assert_eq!(reason_of(&plan, "Degraded"), pair("False", "AsExpected"));
        assert_eq!(reason_of(&plan, "ReconciliationPaused"), pair("False", "NotPaused"));
        assert_eq!(reason_of(&plan, "CatalogSynced"), pair("True", "Delivered"));
        assert_eq!(reason_of(&plan, "Progressing"), pair("True", "RollingOut"));
        assert_eq!(status.catalogs.as_deref(), Some(&["a".to_string()][..]));
        assert_eq!(status.image.as_deref(), Some("registry.example/hex-core-service:0.1.0"));
        assert_eq!(status.catalog_sha256, plan.want);
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(plan.verdict, Verdict::Retry);
        assert!(plan.events.is_empty(), "nothing to warn about: {:?}", plan.events);
    }

    #[test]
    fn unchanged_inputs_give_a_plan_without_any_write() {
        let (o, _) = deployed();
        let plan = decide(&o, at(10));
        let again = decide(&after(&o, &plan), at(20));
        assert!(!again.writes(), "{again:?}");
        assert_eq!(again.status, None, "the status is already what it would be");
        assert!(again.events.is_empty());
    }

    #[test]
    fn drift_of_a_child_is_undone_and_a_removed_field_is_noticed() {
        let (mut o, _) = deployed();
        let deployment = o.live.deployment.as_mut().unwrap();
        let pod = deployment.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        pod.containers[0].image = Some("evil/image:latest".into());
        let plan = decide(&o, at(10));
        let applied: Vec<&str> = plan.apply.iter().map(Child::kind).collect();
        assert_eq!(applied, ["Deployment"]);

        // A field the operator no longer sets (its applied hash differs) is applied too.
        let (mut o, _) = deployed();
        let env = o.live.env_config_map.as_mut().unwrap();
        env.data.as_mut().unwrap().insert("OLD_VARIABLE".into(), "x".into());
        env.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(desired::APPLIED_HASH_ANNOTATION.into(), "an-older-hash".into());
        let plan = decide(&o, at(10));
        assert_eq!(plan.apply.iter().map(Child::name).collect::<Vec<_>>(), ["svc-env"]);
    }

    #[test]
    fn every_ready_replica_serving_every_entry_is_ready_converged() {
        let (mut o, sha) = deployed();
        o.replicas = vec![read("svc-a", true, serving(&sha)), read("svc-b", true, serving(&sha))];
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Ready"), pair("True", "Converged"));
        assert_eq!(reason_of(&plan, "CatalogSynced"), pair("True", "Delivered"));
        assert_eq!(reason_of(&plan, "Progressing"), pair("False", "Stable"));
        assert_eq!(reason_of(&plan, "Degraded"), pair("False", "AsExpected"));
        let status = plan.status.as_ref().unwrap();
        assert_eq!(status.catalog_convergence, Some(format!("2/2 on {}", &sha[..12])));
        assert_eq!(status.converged_replicas, Some(2));
        let replicas = status.replica_statuses.as_ref().unwrap();
        assert_eq!(replicas.len(), 2);
        assert!(replicas.iter().all(|r| r.converged && r.ready));
        assert_eq!(replicas[0].version.as_deref(), Some("0.1.0"));
        assert_eq!(
            replicas[0].entries,
            Some(EntryCounts {
                total: 1,
                loaded: 1,
                stale: 0,
                failed: 0
            })
        );
        assert!(plan.refresh.is_empty());
        assert_eq!(plan.verdict, Verdict::Settled);
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.events[0].reason, "CatalogDelivered");
        assert!(!plan.events[0].warning);
        let again = decide(&after(&o, &plan), at(20));
        assert!(again.events.is_empty(), "the event is published on the transition only");
        assert_eq!(again.status, None);
    }

    #[test]
    fn a_replica_on_another_catalog_is_refreshed_and_the_service_is_not_ready_yet() {
        let (mut o, sha) = deployed();
        o.replicas = vec![read("svc-a", true, serving(&sha)), read("svc-b", true, serving("0ld"))];
        let plan = decide(&o, at(10));
        assert_eq!(plan.refresh.len(), 1);
        assert_eq!(plan.refresh[0].pod.as_deref(), Some("svc-b"));
        assert_eq!(plan.token, Some(Token("generated-token".into())));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "CatalogNotConverged"));
        assert_eq!(reason_of(&plan, "CatalogSynced"), pair("False", "RefreshPending"));
        assert_eq!(reason_of(&plan, "Progressing"), pair("True", "DeliveringCatalog"));
        let synced = condition(plan.status.as_ref().unwrap(), "CatalogSynced");
        assert!(
            synced.message.contains("svc-b reports catalog 0ld"),
            "{}",
            synced.message
        );
        assert_eq!(plan.verdict, Verdict::Retry);

        // The refresh answered: the second decision of the reconcile says so at once.
        let mut refreshed = after(&o, &plan);
        refreshed.hcs.status = o.hcs.status.clone();
        refreshed.replicas[1] = read("svc-b", true, serving(&sha));
        refreshed.written.refreshed = vec![refreshed.replicas[1].endpoint.authority.clone()];
        let second = decide(&refreshed, at(11));
        assert_eq!(reason_of(&second, "Ready"), pair("True", "Converged"));
        assert_eq!(second.status.as_ref().unwrap().last_refresh_time, Some(Time(at(11))));
    }

    #[test]
    fn no_refresh_while_the_catalog_config_map_is_being_written() {
        let (mut o, sha) = deployed();
        o.catalogs[0].spec.models.push(model("n", "1", "https://h/n.json"));
        o.replicas = vec![read("svc-a", true, serving(&sha))];
        let plan = decide(&o, at(10));
        assert!(plan.apply.iter().any(|c| c.name() == "svc-catalog"));
        assert!(plan.refresh.is_empty(), "the pods' file still holds the old catalog");
        assert_ne!(plan.want.as_deref(), Some(sha.as_str()));
        assert_eq!(reason_of(&plan, "CatalogSynced"), pair("False", "RefreshPending"));
    }

    #[test]
    fn a_model_that_failed_to_load_keeps_ready_false_and_names_the_model() {
        let (mut o, sha) = deployed();
        // A transient failure on one ready replica: the replica retries on its own.
        o.replicas = vec![
            read("svc-a", true, serving(&sha)),
            read("svc-b", true, failing(&sha, "m", true)),
        ];
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "ModelLoadFailed"));
        assert_eq!(reason_of(&plan, "CatalogSynced"), pair("False", "ModelLoadFailed"));
        assert_eq!(
            reason_of(&plan, "Degraded"),
            pair("False", "AsExpected"),
            "it is retried"
        );
        let ready = condition(plan.status.as_ref().unwrap(), "Ready");
        assert_eq!(
            ready.message,
            "model m@1 is not loaded on 1 of 2 replicas (svc-b: shacl: GET https://h/m.ttl: HTTP 503; retried automatically)"
        );
        assert!(plan.refresh.is_empty(), "a retry is scheduled by the replica itself");
        let status = plan.status.as_ref().unwrap();
        assert_eq!(status.converged_replicas, Some(1));
        let b = &status.replica_statuses.as_ref().unwrap()[1];
        assert!(!b.converged);
        let failed = &b.failed_entries.as_ref().unwrap()[0];
        assert_eq!(
            (failed.model.as_str(), failed.artifact.as_deref(), failed.transient),
            ("m", Some("shacl"), true)
        );
        assert_eq!(b.not_ready_reason.as_deref(), Some("1 catalog entry failed to load"));
        assert_eq!(plan.verdict, Verdict::Retry, "retried until fixed");

        // Permanent (no automatic retry): Degraded, and the operator asks for a refresh.
        o.replicas[1] = read("svc-b", false, failing(&sha, "m", false));
        let plan = decide(&o, at(20));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "ModelLoadFailed"));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "ModelLoadFailed"));
        let degraded = condition(plan.status.as_ref().unwrap(), "Degraded");
        assert!(
            degraded
                .message
                .contains("not retried until the catalog or the artifact changes")
        );
        assert_eq!(plan.refresh.len(), 1, "{:?}", plan.refresh);
        assert!(plan.events.iter().any(|e| e.warning && e.reason == "ModelLoadFailed"));
    }

    #[test]
    fn replica_statuses_are_bounded_and_counted() {
        let (mut o, sha) = deployed();
        let mut report = failing(&sha, "m0", true);
        let template = report.failed_entries.as_ref().unwrap()[0].clone();
        report.failed_entries = Some(
            (0..7)
                .map(|i| ReportedFailure {
                    model: format!("m{i}"),
                    error: "e".repeat(1000),
                    ..template.clone()
                })
                .collect(),
        );
        o.replicas = (0..12)
            .map(|i| {
                let mut r = read(&format!("svc-{i:02}"), true, report.clone());
                r.endpoint.authority = format!("10.0.1.{i}:8080");
                r
            })
            .collect();
        let plan = decide(&o, at(10));
        let status = plan.status.as_ref().unwrap();
        let replicas = status.replica_statuses.as_ref().unwrap();
        assert_eq!(replicas.len(), MAX_REPLICA_STATUSES);
        assert_eq!(status.omitted_replica_statuses, Some(2));
        let first = &replicas[0];
        assert_eq!(first.failed_entries.as_ref().unwrap().len(), MAX_FAILED_ENTRIES);
        assert_eq!(first.omitted_failed_entries, Some(2));
        assert!(first.failed_entries.as_ref().unwrap()[0].error.chars().count() <= ERROR_MAX + 1);
        let ready = condition(status, "Ready");
        assert!(ready.message.contains("and 2 more models"), "{}", ready.message);
        assert!(ready.message.contains("on 12 of 12 replicas"), "{}", ready.message);
        assert!(serde_json::to_string(status).unwrap().len() < 64 * 1024);
    }

    #[test]
    fn an_unreadable_replica_is_reported_with_its_error() {
        let (mut o, _) = deployed();
        let mut r = read("svc-a", true, ReadyReport::default());
        r.report = Err("GET http://10.0.0.5:8080/admin/ready: connection refused".into());
        r.version = None;
        o.replicas = vec![r];
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "CatalogNotConverged"));
        let replica = &plan.status.as_ref().unwrap().replica_statuses.as_ref().unwrap()[0];
        assert!(replica.error.as_deref().unwrap().contains("connection refused"));
        assert!(plan.refresh.is_empty(), "nothing to refresh that does not answer");
    }

    #[test]
    fn no_ready_endpoint_is_no_ready_replicas_unless_scaled_to_zero() {
        let (mut o, sha) = deployed();
        o.replicas = vec![read("svc-a", false, serving(&sha))];
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "NoReadyReplicas"));

        let mut o = fresh();
        o.hcs.spec.replicas = Some(0);
        let plan = decide(&o, at(0));
        let mut o = after(&o, &plan);
        rolled_out(&mut o, 0);
        o.hcs.status = None;
        assert_eq!(reason_of(&decide(&o, at(12)), "Ready"), pair("True", "Converged"));
    }

    #[test]
    fn a_catalog_conflict_or_a_missing_catalog_keeps_the_previous_catalog_and_warns() {
        let (mut o, sha) = deployed();
        o.hcs.spec.catalogs = CatalogSelection {
            selector: None,
            names: Some(vec!["a".into(), "b".into()]),
        };
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "CatalogNotFound"));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "CatalogNotFound"));
        assert_eq!(reason_of(&plan, "CatalogSynced"), pair("False", "CatalogNotFound"));
        assert!(
            plan.apply.iter().all(|c| c.name() != "svc-catalog"),
            "the previous catalog stays"
        );
        assert_eq!(plan.want.as_deref(), Some(sha.as_str()), "replicas keep serving it");
        assert!(plan.events.iter().any(|e| e.warning && e.reason == "CatalogNotFound"));

        let mut b = named_catalog("b", &[], vec![model("m", "1", "https://elsewhere/m.json")]);
        b.metadata.namespace = Some("ns1".into());
        o.catalogs.push(b);
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "CatalogConflict"));
        let degraded = condition(plan.status.as_ref().unwrap(), "Degraded");
        assert!(degraded.message.contains("\"a\"") && degraded.message.contains("\"b\""));
        assert!(degraded.message.ends_with("serving the previous catalog"));
        assert_eq!(
            plan.status.as_ref().unwrap().catalogs,
            o.hcs.status.as_ref().unwrap().catalogs
        );
    }

    #[test]
    fn a_missing_secret_or_key_holds_the_deployment_back() {
        let mut o = fresh();
        o.hcs.spec.io_adapter = Some(postgres_with_credentials_in("db", "url"));
        let plan = decide(&o, at(0));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "SecretNotFound"));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "SecretNotFound"));
        assert!(plan.apply.iter().all(|c| c.kind() != "Deployment"));

        o.secrets.insert(
            "db".into(),
            Secret {
                string_data: Some([("other".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
        );
        let plan = decide(&o, at(0));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "SecretKeyNotFound"));
        o.secrets.get_mut("db").unwrap().string_data = Some([("url".to_string(), "postgres://db".to_string())].into());
        let plan = decide(&o, at(0));
        assert!(plan.apply.iter().any(|c| c.kind() == "Deployment"));
        assert_eq!(reason_of(&plan, "Degraded"), pair("False", "AsExpected"));
    }

    #[test]
    fn a_rejected_child_is_degraded_apply_rejected_at_once() {
        let (mut o, _) = deployed();
        o.written.rejected = vec![Rejection {
            kind: "Deployment".into(),
            name: "svc".into(),
            message: "spec.template.spec.tolerations[0].operator: Unsupported value: \"Sometimes\"".into(),
        }];
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "ApplyRejected"));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "ApplyRejected"));
        let message = &condition(plan.status.as_ref().unwrap(), "Degraded").message;
        assert!(
            message.contains("Deployment svc") && message.contains("Sometimes"),
            "{message}"
        );
        assert_eq!(
            reason_of(&plan, "CatalogSynced").1,
            "Delivered",
            "a rejected Deployment does not make the catalog stale"
        );
        o.written.rejected[0] = Rejection {
            kind: "ConfigMap".into(),
            name: "svc-catalog".into(),
            message: "too large".into(),
        };
        assert_eq!(
            reason_of(&decide(&o, at(10)), "CatalogSynced"),
            pair("False", "ApplyRejected")
        );
    }

    #[test]
    fn more_replicas_than_an_unshared_record_store_allows_run_one_and_degrade() {
        let mut o = fresh();
        o.hcs.spec.io_adapter = Some(io_adapter("embedded"));
        o.hcs.spec.replicas = Some(3);
        let plan = decide(&o, at(0));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "RecordStoreNotShared"));
        let applied: Vec<String> = plan
            .apply
            .iter()
            .map(|c| format!("{}/{}", c.kind(), c.name()))
            .collect();
        assert!(
            applied.contains(&"PersistentVolumeClaim/svc-data".to_string()),
            "{applied:?}"
        );
        let Some(Child::Deployment(d)) = plan.apply.iter().find(|c| c.kind() == "Deployment") else {
            panic!("a Deployment")
        };
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(1));
        let message = &condition(plan.status.as_ref().unwrap(), "Degraded").message;
        assert!(message.contains("http or postgres"), "{message}");
    }

    #[test]
    fn moving_to_recreate_first_deletes_the_defaulted_rolling_update() {
        let (mut o, _) = deployed();
        let strategy = serde_json::from_value(serde_json::json!({
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
        }))
        .unwrap();
        o.live.deployment.as_mut().unwrap().spec.as_mut().unwrap().strategy = Some(strategy);
        assert!(
            decide(&o, at(10)).prepare.is_empty(),
            "nothing to clear for a rolling update"
        );
        o.hcs.spec.io_adapter = Some(io_adapter("embedded"));
        o.hcs.spec.replicas = Some(1);
        let plan = decide(&o, at(10));
        assert_eq!(
            plan.prepare,
            [Preparation {
                kind: "Deployment",
                name: "svc".into(),
                patch: serde_json::json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}),
            }]
        );
        assert!(plan.apply.iter().any(|c| c.kind() == "Deployment"));
    }

    #[test]
    fn pods_that_do_not_run_say_why_in_ready_and_degraded() {
        let (mut o, _) = deployed();
        let crash = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("svc-abc".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "hex-core-service".into(),
                    restart_count: 4,
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("CrashLoopBackOff".into()),
                            message: None,
                        }),
                        ..Default::default()
                    }),
                    last_state: Some(ContainerState {
                        terminated: Some(k8s_openapi::api::core::v1::ContainerStateTerminated {
                            exit_code: 2,
                            message: Some("hex-core-service: invalid configuration: X=1".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        o.pods = vec![crash];
        let plan = decide(&o, at(10));
        assert_eq!(reason_of(&plan, "Ready"), pair("False", "PodsCrashLooping"));
        assert_eq!(reason_of(&plan, "Degraded"), pair("True", "PodsCrashLooping"));
        let ready = condition(plan.status.as_ref().unwrap(), "Ready");
        assert!(
            ready.message.contains("invalid configuration: X=1"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn a_dropped_pod_disruption_budget_is_deleted_when_it_is_ours() {
        let mut o = fresh();
        o.hcs.spec.pod_disruption_budget = Some(crate::crd::PdbSpec {
            min_available: None,
            max_unavailable: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)),
        });
        let plan = decide(&o, at(0));
        assert!(plan.apply.iter().any(|c| c.kind() == "PodDisruptionBudget"));
        let mut o = after(&o, &plan);
        o.hcs.spec.pod_disruption_budget = None;
        let plan = decide(&o, at(10));
        assert_eq!(
            plan.delete,
            [Deletion {
                kind: "PodDisruptionBudget",
                name: "svc".into()
            }]
        );
        // Someone else's PodDisruptionBudget of the same name is left alone.
        o.live.pdb.as_mut().unwrap().metadata.owner_references = None;
        assert!(decide(&o, at(10)).delete.is_empty());
    }

    #[test]
    fn a_paused_service_writes_only_its_status_and_announces_it_once() {
        let (mut o, _) = deployed();
        o.hcs.spec.paused = Some(true);
        o.live = LiveChildren::default(); // even deleted children are not restored
        let plan = decide(&o, at(10));
        assert!(!plan.writes());
        assert_eq!(reason_of(&plan, "ReconciliationPaused"), pair("True", "Paused"));
        assert_eq!(plan.verdict, Verdict::Idle);
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.events[0].reason, "Paused");
        let again = decide(&after(&o, &plan), at(20));
        assert!(again.events.is_empty() && again.status.is_none());
    }

    #[test]
    fn a_service_being_deleted_is_left_to_the_garbage_collector() {
        let mut o = fresh();
        o.hcs.metadata.deletion_timestamp = Some(Time(at(0)));
        let plan = decide(&o, at(1));
        assert!(!plan.writes() && plan.status.is_none());
        assert_eq!(plan.verdict, Verdict::Idle);
    }

    #[test]
    fn the_default_image_is_used_and_reported_when_the_spec_names_none() {
        let mut o = fresh();
        o.hcs.spec.image = None;
        let plan = decide(&o, at(0));
        let Some(Child::Deployment(d)) = plan.apply.iter().find(|c| c.kind() == "Deployment") else {
            panic!("a Deployment")
        };
        let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(pod.containers[0].image.as_deref(), Some(DEFAULT_IMAGE));
        assert_eq!(plan.status.as_ref().unwrap().image.as_deref(), Some(DEFAULT_IMAGE));
    }

    #[test]
    fn the_catalogs_used_are_remembered_even_when_missing() {
        let mut o = fresh();
        o.hcs.spec.catalogs.names = Some(vec!["a".into(), "gone".into()]);
        let plan = decide(&o, at(0));
        assert_eq!(
            plan.catalogs_used,
            BTreeSet::from(["a".to_string(), "gone".to_string()])
        );
        let _ = ModelCatalogStatus::default();
    }
}
