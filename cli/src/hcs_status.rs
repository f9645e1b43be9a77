//! What `hex-cli status` says about a HexCoreService: its status as the operator wrote it, its
//! pods as the kubelet reports them, and the Events about it, assembled into one report by pure
//! functions (the command only fetches and prints).
//!
//! The resource is read loosely (a `DynamicObject` and serde structs of this module whose fields
//! all default), not with the operator crate's typed CRD structs. hex-cli is released on its own
//! and pointed at clusters running whatever operator version: a status field the operator adds,
//! drops or has not written yet must not make the whole view fail, as a strict typed read would
//! (`address`, `ready`, `converged` are required there). Nor should a client pull in the
//! operator's server code. Agreement is still checked at compile time where it matters: the
//! tests (`cli/tests/status.rs`) write the status with the operator's own types and assert what
//! this module reads from it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `hexcoreservices.hex-core.dev/v1alpha1`.
pub fn hcs_resource() -> ApiResource {
    ApiResource {
        group: "hex-core.dev".into(),
        version: "v1alpha1".into(),
        api_version: "hex-core.dev/v1alpha1".into(),
        kind: "HexCoreService".into(),
        plural: "hexcoreservices".into(),
    }
}

/// The label the operator puts on its pods (`app.kubernetes.io/instance=<name>`), for a status
/// without `selector` (written by an operator too old or not yet).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

// -------------------------------------------------------------------------------------------
// The status as the operator writes it (operator/src/crd.rs), read leniently.
// -------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StatusIn {
    observed_generation: Option<i64>,
    replicas: Option<i64>,
    ready_replicas: Option<i64>,
    selector: Option<String>,
    catalog_sha256: Option<String>,
    catalog_convergence: Option<String>,
    converged_replicas: Option<i64>,
    catalogs: Vec<String>,
    last_refresh_time: Option<String>,
    image: Option<String>,
    replica_statuses: Vec<ReplicaIn>,
    omitted_replica_statuses: Option<i64>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ReplicaIn {
    pod: Option<String>,
    address: Option<String>,
    ready: Option<bool>,
    converged: Option<bool>,
    catalog_sha256: Option<String>,
    version: Option<String>,
    not_ready_reason: Option<String>,
    entries: Option<Value>,
    failed_entries: Vec<FailedEntry>,
    omitted_failed_entries: Option<i64>,
    error: Option<String>,
}

/// A condition (Kubernetes API conventions).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<String>,
    pub observed_generation: Option<i64>,
}

/// A catalog entry a replica does not serve in its current definition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailedEntry {
    pub model: String,
    pub version: String,
    /// `failed` (not served) or `stale` (the previous artifacts are served).
    pub state: Option<String>,
    pub artifact: Option<String>,
    pub error: Option<String>,
    /// Retried by the replica on its own; false: permanent until the catalog or artifact changes.
    pub transient: Option<bool>,
    pub since: Option<String>,
}

// -------------------------------------------------------------------------------------------
// The report (`-o json` prints it; docs/cli.md documents it).
// -------------------------------------------------------------------------------------------

/// One HexCoreService in full.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    pub namespace: String,
    pub name: String,
    /// `Ready` is `True` for the current generation: what the exit code says.
    pub ready: bool,
    /// Why (the Ready condition's reason, or `NoStatus` / `NoReadyCondition` / `StatusStale`).
    pub reason: String,
    pub message: String,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub paused: bool,
    pub desired_replicas: i64,
    pub replicas: Option<i64>,
    pub ready_replicas: Option<i64>,
    pub image: Option<String>,
    /// The catalog the operator delivered: what every replica must report.
    pub catalog_sha256: Option<String>,
    pub catalog_convergence: Option<String>,
    pub converged_replicas: Option<i64>,
    pub catalogs: Vec<String>,
    pub last_refresh_time: Option<String>,
    pub conditions: Vec<Condition>,
    pub replica_statuses: Vec<ReplicaReport>,
    pub omitted_replica_statuses: i64,
    pub pods: Vec<PodReport>,
    pub events: Vec<EventReport>,
}

/// One replica as the operator last read it (`GET /admin/ready` of the pod).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaReport {
    pub pod: Option<String>,
    pub address: Option<String>,
    pub ready: bool,
    pub converged: bool,
    pub catalog_sha256: Option<String>,
    /// Whether `catalogSha256` is the wanted one; `null` when either is unknown.
    pub catalog_matches: Option<bool>,
    pub version: Option<String>,
    pub not_ready_reason: Option<String>,
    pub entries: Option<Value>,
    pub failed_entries: Vec<FailedEntry>,
    pub omitted_failed_entries: i64,
    /// Why the operator could not read the replica.
    pub error: Option<String>,
}

/// One pod of the HexCoreService, with what stops it from running, if anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReport {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    pub node: Option<String>,
    /// Crash loop (with the termination message), image pull, container start or scheduling
    /// failure; `null` when none.
    pub problem: Option<String>,
}

/// One Event about the HexCoreService, its pods, Deployment or ReplicaSets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    /// `Kind/name` of the object the Event is about.
    pub object: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<String>,
    pub age_seconds: Option<i64>,
}

/// One line of `hex-cli status` without a name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRow {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    pub reason: String,
    pub desired_replicas: i64,
    pub ready_replicas: Option<i64>,
    pub catalog_convergence: Option<String>,
    /// Failed or stale catalog entries over all listed replicas.
    pub failed_entries: i64,
    pub created: Option<String>,
    pub age_seconds: Option<i64>,
}

// -------------------------------------------------------------------------------------------
// Assembly
// -------------------------------------------------------------------------------------------

fn status_of(hcs: &DynamicObject) -> Result<Option<StatusIn>, String> {
    match hcs.data.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(status) => serde_json::from_value(status.clone())
            .map(Some)
            .map_err(|e| format!("its status is not in a shape this hex-cli reads ({e})")),
    }
}

fn spec_replicas(hcs: &DynamicObject) -> i64 {
    // The operator's default when spec.replicas is absent.
    hcs.data["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn paused(hcs: &DynamicObject) -> bool {
    hcs.data["spec"]["paused"].as_bool().unwrap_or(false)
}

/// Ready or not, and why: the Ready condition, for the generation the spec is at.
fn readiness(hcs: &DynamicObject, status: Option<&StatusIn>) -> (bool, String, String) {
    let Some(status) = status else {
        return (
            false,
            "NoStatus".into(),
            "the operator has not written a status yet: is it running, and does it watch this namespace?".into(),
        );
    };
    let Some(ready) = status.conditions.iter().find(|c| c.type_ == "Ready") else {
        return (
            false,
            "NoReadyCondition".into(),
            "the status has no Ready condition yet".into(),
        );
    };
    let reason = ready.reason.clone().unwrap_or_default();
    let message = ready.message.clone().unwrap_or_default();
    let generation = hcs.metadata.generation;
    let observed = ready.observed_generation.or(status.observed_generation);
    if ready.status == "True" {
        if let (Some(generation), Some(observed)) = (generation, observed)
            && observed < generation
        {
            return (
                false,
                "StatusStale".into(),
                format!(
                    "the status describes generation {observed}, the spec is at {generation}: the operator has not \
                     reconciled the latest change yet"
                ),
            );
        }
        return (true, reason, message);
    }
    (false, reason, message)
}

fn replica_report(replica: &ReplicaIn, wanted: Option<&str>) -> ReplicaReport {
    ReplicaReport {
        pod: replica.pod.clone(),
        address: replica.address.clone(),
        ready: replica.ready.unwrap_or(false),
        converged: replica.converged.unwrap_or(false),
        catalog_sha256: replica.catalog_sha256.clone(),
        catalog_matches: match (replica.catalog_sha256.as_deref(), wanted) {
            (Some(has), Some(wanted)) => Some(has == wanted),
            _ => None,
        },
        version: replica.version.clone(),
        not_ready_reason: replica.not_ready_reason.clone(),
        entries: replica.entries.clone(),
        failed_entries: replica.failed_entries.clone(),
        omitted_failed_entries: replica.omitted_failed_entries.unwrap_or(0),
        error: replica.error.clone(),
    }
}

/// The full report of `hcs`, its `pods` and the `events` of its namespace (filtered here to the
/// ones about it), the newest `max_events` last.
pub fn service_report(
    hcs: &DynamicObject,
    pods: &[Pod],
    events: &[Event],
    max_events: usize,
    now: Timestamp,
) -> Result<ServiceReport, String> {
    let status = status_of(hcs)?;
    let (ready, reason, message) = readiness(hcs, status.as_ref());
    let status = status.unwrap_or_default();
    let wanted = status.catalog_sha256.as_deref();
    let name = hcs.metadata.name.clone().unwrap_or_default();
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let pod_names: BTreeSet<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    Ok(ServiceReport {
        namespace: hcs.metadata.namespace.clone().unwrap_or_default(),
        ready,
        reason,
        message,
        generation: hcs.metadata.generation,
        observed_generation: status.observed_generation,
        paused: paused(hcs),
        desired_replicas: spec_replicas(hcs),
        replicas: status.replicas,
        ready_replicas: status.ready_replicas,
        image: status.image.clone(),
        catalog_sha256: status.catalog_sha256.clone(),
        catalog_convergence: status.catalog_convergence.clone(),
        converged_replicas: status.converged_replicas,
        catalogs: status.catalogs.clone(),
        last_refresh_time: status.last_refresh_time.clone(),
        conditions: status.conditions.clone(),
        replica_statuses: status
            .replica_statuses
            .iter()
            .map(|r| replica_report(r, wanted))
            .collect(),
        omitted_replica_statuses: status.omitted_replica_statuses.unwrap_or(0),
        pods: pods.iter().map(|p| pod_report(p)).collect(),
        events: related_events(&name, &pod_names, events, max_events, now),
        name,
    })
}

/// The one-line summary of `hcs`.
pub fn summary_row(hcs: &DynamicObject, now: Timestamp) -> SummaryRow {
    // A status this hex-cli cannot read is reported as such rather than failing the list.
    let (status, unreadable) = match status_of(hcs) {
        Ok(status) => (status, None),
        Err(e) => (None, Some(e)),
    };
    let (ready, reason, _) = readiness(hcs, status.as_ref());
    let status = status.unwrap_or_default();
    let created = hcs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    SummaryRow {
        namespace: hcs.metadata.namespace.clone().unwrap_or_default(),
        name: hcs.metadata.name.clone().unwrap_or_default(),
        ready: ready && unreadable.is_none(),
        reason: if unreadable.is_some() {
            "StatusUnreadable".into()
        } else {
            reason
        },
        desired_replicas: spec_replicas(hcs),
        ready_replicas: status.ready_replicas,
        catalog_convergence: status.catalog_convergence,
        failed_entries: status
            .replica_statuses
            .iter()
            .map(|r| r.failed_entries.len() as i64 + r.omitted_failed_entries.unwrap_or(0))
            .sum(),
        created: created.map(|t| t.to_string()),
        age_seconds: created.map(|t| seconds_between(t, now)),
    }
}

// -------------------------------------------------------------------------------------------
// Pods: what the kubelet says about each (the operator's `pods` module judges the same states
// for its conditions; here they are listed per pod).
// -------------------------------------------------------------------------------------------

/// Waiting reasons that mean the container cannot start (image or runtime), named as they are.
const STUCK_WAITING: [&str; 9] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
];

/// The last non-empty line of a message (a termination message taken from the log's tail ends
/// with the fatal line), at most 512 characters.
fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() <= 512 {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(512).collect::<String>())
    }
}

fn container_problem(status: &ContainerStatus) -> Option<String> {
    let state = status.state.as_ref();
    let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let exited = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated| {
        let why = t
            .message
            .as_deref()
            .map(last_line)
            .filter(|m| !m.is_empty())
            .or_else(|| t.reason.clone())
            .unwrap_or_else(|| "no termination message".into());
        format!(
            "container {} exited with code {} (restarted {} times): {why}",
            status.name, t.exit_code, status.restart_count
        )
    };
    if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if reason == "CrashLoopBackOff" {
            return Some(match last {
                Some(t) => format!("CrashLoopBackOff: {}", exited(t)),
                None => format!(
                    "CrashLoopBackOff: container {} restarted {} times",
                    status.name, status.restart_count
                ),
            });
        }
        if STUCK_WAITING.contains(&reason) {
            let message = waiting.message.as_deref().map(last_line).unwrap_or_default();
            return Some(format!("{reason}: {message}"));
        }
        return None;
    }
    match state.and_then(|s| s.terminated.as_ref()) {
        Some(t) if t.exit_code != 0 => Some(exited(t)),
        _ => None,
    }
}

fn pod_report(pod: &Pod) -> PodReport {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    let problem = containers.iter().find_map(container_problem).or_else(|| {
        unschedulable.map(|c| {
            format!(
                "Unschedulable: {}",
                last_line(c.message.as_deref().unwrap_or("the scheduler cannot place it"))
            )
        })
    });
    let phase = if pod.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        status.phase.clone().unwrap_or_else(|| "Unknown".into())
    };
    PodReport {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase,
        ready,
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        problem,
    }
}

// -------------------------------------------------------------------------------------------
// Events
// -------------------------------------------------------------------------------------------

/// Whether an Event is about the HexCoreService `name` or what the operator made for it: its
/// Deployment (named like it), that Deployment's ReplicaSets and pods (`<name>-...`, which also
/// covers pods already replaced), or a pod listed now.
fn is_related(event: &Event, name: &str, pods: &BTreeSet<String>) -> bool {
    let object = &event.involved_object;
    let object_name = object.name.as_deref().unwrap_or_default();
    let children = format!("{name}-");
    match object.kind.as_deref().unwrap_or_default() {
        "HexCoreService" => object_name == name,
        "Deployment" => object_name == name,
        "ReplicaSet" => object_name.starts_with(&children),
        "Pod" => pods.contains(object_name) || object_name.starts_with(&children),
        _ => false,
    }
}

/// When an Event last happened: the old API's `lastTimestamp`, else the new API's series or
/// `eventTime`, else its first time or creation.
fn last_seen(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| {
            event
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn related_events(
    name: &str,
    pods: &BTreeSet<String>,
    events: &[Event],
    max_events: usize,
    now: Timestamp,
) -> Vec<EventReport> {
    let mut related: Vec<(Option<Timestamp>, &Event)> = events
        .iter()
        .filter(|e| is_related(e, name, pods))
        .map(|e| (last_seen(e), e))
        .collect();
    // Oldest first, so the newest is the last line (as a log reads); undated ones first.
    related.sort_by_key(|(seen, _)| *seen);
    let skip = related.len().saturating_sub(max_events);
    related
        .into_iter()
        .skip(skip)
        .map(|(seen, e)| EventReport {
            type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
            reason: e.reason.clone().unwrap_or_default(),
            object: format!(
                "{}/{}",
                e.involved_object.kind.as_deref().unwrap_or("?"),
                e.involved_object.name.as_deref().unwrap_or("?")
            ),
            message: e.message.clone().unwrap_or_default().trim().to_string(),
            count: e
                .count
                .or_else(|| e.series.as_ref().and_then(|s| s.count))
                .unwrap_or(1)
                .max(1),
            last_seen: seen.map(|t| t.to_string()),
            age_seconds: seen.map(|t| seconds_between(t, now)),
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// Time
// -------------------------------------------------------------------------------------------

fn seconds_between(then: Timestamp, now: Timestamp) -> i64 {
    (now.as_second() - then.as_second()).max(0)
}

/// kubectl's short ages: `45s`, `3m`, `2h`, `5d`.
pub fn short_age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The age of an RFC 3339 time as [`short_age`], or `-`.
pub fn age_of(time: Option<&str>, now: Timestamp) -> String {
    time.and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| short_age(seconds_between(t, now)))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn hcs(generation: i64, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService",
            "metadata": {"name": "svc", "namespace": "ns", "generation": generation,
                "creationTimestamp": "1970-01-01T00:00:00Z"},
            "spec": {"replicas": 2},
            "status": status,
        }))
        .unwrap()
    }

    fn ready_condition(status: &str, reason: &str, observed: i64) -> Value {
        json!({"type": "Ready", "status": status, "reason": reason, "message": "m",
            "lastTransitionTime": "1970-01-01T00:00:10Z", "observedGeneration": observed})
    }

    #[test]
    fn ready_only_when_the_ready_condition_is_true_for_the_current_generation() {
        let now = at(100);
        let report = |h: &DynamicObject| service_report(h, &[], &[], 10, now).unwrap();
        let ok = report(&hcs(
            2,
            json!({"observedGeneration": 2, "conditions": [ready_condition("True", "Converged", 2)]}),
        ));
        assert!(ok.ready);
        assert_eq!(ok.reason, "Converged");

        let stale = report(&hcs(
            3,
            json!({"observedGeneration": 2, "conditions": [ready_condition("True", "Converged", 2)]}),
        ));
        assert!(!stale.ready);
        assert_eq!(stale.reason, "StatusStale");

        let failing = report(&hcs(
            2,
            json!({"conditions": [ready_condition("False", "ModelLoadFailed", 2)]}),
        ));
        assert_eq!((failing.ready, failing.reason.as_str()), (false, "ModelLoadFailed"));

        let none = report(&hcs(1, Value::Null));
        assert_eq!((none.ready, none.reason.as_str()), (false, "NoStatus"));
        let no_condition = report(&hcs(1, json!({"replicas": 1})));
        assert_eq!(no_condition.reason, "NoReadyCondition");
    }

    #[test]
    fn replicas_serving_another_catalog_are_marked_and_unknown_fields_are_ignored() {
        let status = json!({
            "catalogSha256": "aaaa", "someFutureField": {"x": 1},
            "replicaStatuses": [
                {"pod": "svc-1", "address": "10.0.0.1:8080", "ready": true, "converged": true, "catalogSha256": "aaaa"},
                {"pod": "svc-2", "ready": true, "converged": false, "catalogSha256": "bbbb",
                 "failedEntries": [{"model": "m", "version": "1", "state": "failed", "artifact": "shacl",
                     "error": "HTTP 404", "transient": false, "since": "1970-01-01T00:00:01Z"}],
                 "omittedFailedEntries": 2},
                {"address": "10.0.0.3:8080", "error": "connection refused"},
            ],
        });
        let report = service_report(&hcs(1, status), &[], &[], 10, at(0)).unwrap();
        let matches: Vec<Option<bool>> = report.replica_statuses.iter().map(|r| r.catalog_matches).collect();
        assert_eq!(matches, [Some(true), Some(false), None]);
        assert_eq!(
            report.replica_statuses[1].failed_entries[0].artifact.as_deref(),
            Some("shacl")
        );
        assert_eq!(report.replica_statuses[2].error.as_deref(), Some("connection refused"));
        let row = summary_row(&hcs(1, report_status_for_summary()), at(3600));
        assert_eq!(row.failed_entries, 3);
        assert_eq!(row.age_seconds, Some(3600));
    }

    fn report_status_for_summary() -> Value {
        json!({"replicaStatuses": [{"failedEntries": [{"model": "m", "version": "1"}], "omittedFailedEntries": 2}]})
    }

    #[test]
    fn a_status_of_another_shape_is_an_error_for_one_service_and_a_reason_in_the_list() {
        let odd = hcs(1, json!({"replicaStatuses": "not a list"}));
        assert!(service_report(&odd, &[], &[], 10, at(0)).is_err());
        let row = summary_row(&odd, at(0));
        assert_eq!((row.ready, row.reason.as_str()), (false, "StatusUnreadable"));
    }

    fn pod(name: &str, status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    #[test]
    fn pods_say_why_they_do_not_run_with_the_termination_message() {
        let crash = pod(
            "svc-a",
            json!({"phase": "Running", "containerStatuses": [{"name": "hex-core-service", "ready": false,
                "restartCount": 3, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 2, "message": "log line\nhex-core-service: invalid configuration: X\n"}}}]}),
        );
        let pulling = pod(
            "svc-b",
            json!({"phase": "Pending", "containerStatuses": [{"name": "hex-core-service", "ready": false,
                "restartCount": 0, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope\""}}}]}),
        );
        let unschedulable = pod(
            "svc-c",
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available"}]}),
        );
        let fine = pod(
            "svc-d",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        );
        let reports: Vec<PodReport> = [&crash, &pulling, &unschedulable, &fine]
            .map(pod_report)
            .into_iter()
            .collect();
        assert_eq!(
            reports[0].problem.as_deref(),
            Some(
                "CrashLoopBackOff: container hex-core-service exited with code 2 (restarted 3 times): \
                 hex-core-service: invalid configuration: X"
            )
        );
        assert_eq!(reports[0].restarts, 3);
        assert_eq!(
            reports[1].problem.as_deref(),
            Some("ImagePullBackOff: Back-off pulling image \"nope\"")
        );
        assert_eq!(
            reports[2].problem.as_deref(),
            Some("Unschedulable: 0/1 nodes are available")
        );
        assert_eq!((reports[3].ready, reports[3].problem.as_deref()), (true, None));
    }

    fn event(kind: &str, name: &str, reason: &str, last: Option<&str>, event_time: Option<&str>) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{name}.{reason}")},
            "involvedObject": {"kind": kind, "name": name},
            "reason": reason, "message": format!("{reason} happened "), "type": "Warning",
            "lastTimestamp": last, "eventTime": event_time,
        }))
        .unwrap()
    }

    #[test]
    fn events_about_the_service_its_children_and_pods_newest_last() {
        let events = [
            event("Pod", "svc-5d8-x", "BackOff", Some("1970-01-01T00:00:50Z"), None),
            event(
                "HexCoreService",
                "svc",
                "ModelLoadFailed",
                None,
                Some("1970-01-01T00:01:00.000000Z"),
            ),
            event("HexCoreService", "other", "Applied", Some("1970-01-01T00:00:55Z"), None),
            event("Pod", "svcx-1", "BackOff", Some("1970-01-01T00:00:55Z"), None),
            event(
                "Deployment",
                "svc",
                "ScalingReplicaSet",
                Some("1970-01-01T00:00:10Z"),
                None,
            ),
            event(
                "ReplicaSet",
                "svc-5d8",
                "SuccessfulCreate",
                Some("1970-01-01T00:00:11Z"),
                None,
            ),
            event("Pod", "elsewhere", "Pulled", Some("1970-01-01T00:00:30Z"), None),
        ];
        let pods = BTreeSet::from(["elsewhere".to_string()]);
        let found = related_events("svc", &pods, &events, 10, at(100));
        let reasons: Vec<&str> = found.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "ScalingReplicaSet",
                "SuccessfulCreate",
                "Pulled",
                "BackOff",
                "ModelLoadFailed"
            ]
        );
        assert_eq!(found[4].object, "HexCoreService/svc");
        assert_eq!(found[4].age_seconds, Some(40));
        assert_eq!(found[4].message, "ModelLoadFailed happened");
        let last_two = related_events("svc", &pods, &events, 2, at(100));
        assert_eq!(last_two.len(), 2);
        assert_eq!(last_two[1].reason, "ModelLoadFailed");
    }

    #[test]
    fn ages_read_like_kubectls() {
        assert_eq!(short_age(5), "5s");
        assert_eq!(short_age(119), "119s");
        assert_eq!(short_age(600), "10m");
        assert_eq!(short_age(3 * 3600), "3h");
        assert_eq!(short_age(3 * 86400), "3d");
        assert_eq!(age_of(Some("1970-01-01T00:00:00Z"), at(90)), "90s");
        assert_eq!(age_of(None, at(0)), "-");
    }
}
