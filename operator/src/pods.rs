//! Why a HexCoreService's pods do not run, read from their own status: a container waiting to
//! pull its image or crash-looping (with its termination message: the service writes its fatal
//! configuration error there), a pod the scheduler cannot place, or a Deployment that cannot
//! create pods at all. Pure functions over the objects the reflectors hold.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// One reason pods do not run, with the pods it affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// Condition reason: `PodsNotCreated`, `PodsUnschedulable`, `ImagePullFailed`,
    /// `ContainerStartFailed`, `PodsCrashLooping`.
    pub reason: &'static str,
    pub message: String,
}

/// Waiting reasons of a container whose image cannot be pulled.
const IMAGE_PULL: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
];
/// Waiting reasons of a container the runtime cannot create or start.
const CONTAINER_START: [&str; 4] = [
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
];
/// Longest piece of a pod's own message repeated in a condition.
const QUOTE_MAX: usize = 512;

/// The reasons, most fundamental first: the first found is the one a condition reports.
const ORDER: [&str; 5] = [
    "PodsNotCreated",
    "PodsUnschedulable",
    "ImagePullFailed",
    "ContainerStartFailed",
    "PodsCrashLooping",
];

/// One line of at most [`QUOTE_MAX`] characters: the last non-empty line of `text` (a
/// termination message from `FallbackToLogsOnError` is the log's tail, whose last line is the
/// fatal one).
fn quote(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() <= QUOTE_MAX {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(QUOTE_MAX).collect::<String>())
    }
}

/// What is wrong with one container, if anything: (reason, description).
fn container_problem(status: &ContainerStatus) -> Option<(&'static str, String)> {
    let state = status.state.as_ref();
    let last_terminated = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let message = waiting.message.as_deref().map(quote).unwrap_or_default();
        if IMAGE_PULL.contains(&reason) {
            return Some(("ImagePullFailed", format!("{reason}: {message}")));
        }
        if CONTAINER_START.contains(&reason) {
            return Some(("ContainerStartFailed", format!("{reason}: {message}")));
        }
        if reason == "CrashLoopBackOff" {
            return Some(("PodsCrashLooping", crash_description(status, last_terminated)));
        }
        return None;
    }
    if let Some(terminated) = state.and_then(|s| s.terminated.as_ref())
        && terminated.exit_code != 0
    {
        return Some(("PodsCrashLooping", crash_description(status, Some(terminated))));
    }
    None
}

fn crash_description(
    status: &ContainerStatus,
    terminated: Option<&k8s_openapi::api::core::v1::ContainerStateTerminated>,
) -> String {
    let restarts = status.restart_count;
    let Some(t) = terminated else {
        return format!("container {} restarted {restarts} times", status.name);
    };
    let why = t
        .message
        .as_deref()
        .map(quote)
        .filter(|m| !m.is_empty())
        .or_else(|| t.reason.clone())
        .unwrap_or_else(|| "no termination message".to_string());
    format!(
        "container {} exited with code {} (restarted {restarts} times): {why}",
        status.name, t.exit_code
    )
}

/// What is wrong with one pod, if anything.
fn pod_problem(pod: &Pod) -> Option<(&'static str, String)> {
    let status = pod.status.as_ref()?;
    let statuses = status.container_statuses.iter().flatten();
    let mut found: Vec<(&'static str, String)> = statuses.filter_map(container_problem).collect();
    if let Some(unschedulable) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    {
        found.push((
            "PodsUnschedulable",
            quote(
                unschedulable
                    .message
                    .as_deref()
                    .unwrap_or("the scheduler cannot place it"),
            ),
        ));
    }
    found.sort_by_key(|(reason, _)| ORDER.iter().position(|r| r == reason));
    found.into_iter().next()
}

/// The first problem (in [`ORDER`]) of `pods` (terminating pods are ignored) and `deployment`,
/// naming one affected pod and how many share it.
pub fn diagnose<'a>(pods: impl IntoIterator<Item = &'a Pod>, deployment: Option<&Deployment>) -> Option<PodProblem> {
    let not_created = deployment
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "ReplicaFailure" && c.status == "True"))
        .map(|c| PodProblem {
            reason: "PodsNotCreated",
            message: format!(
                "the Deployment cannot create pods: {}",
                quote(c.message.as_deref().unwrap_or_default())
            ),
        });
    if not_created.is_some() {
        return not_created;
    }
    let mut pods: Vec<&Pod> = pods
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let total = pods.len();
    let problems: Vec<(&str, (&'static str, String))> = pods
        .iter()
        .filter_map(|p| Some((p.metadata.name.as_deref().unwrap_or_default(), pod_problem(p)?)))
        .collect();
    let reason = ORDER
        .iter()
        .find(|r| problems.iter().any(|(_, (reason, _))| reason == *r))?;
    let affected: Vec<&(&str, (&'static str, String))> = problems.iter().filter(|(_, (r, _))| r == reason).collect();
    let (pod, (reason, description)) = affected[0];
    Some(PodProblem {
        reason,
        message: format!("{} of {total} pods; pod {pod}: {description}", affected.len()),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, PodCondition, PodStatus,
    };
    use serde_json::json;

    use super::*;

    fn pod(name: &str, status: PodStatus) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(status),
        }
    }

    fn container(state: ContainerState, last: Option<ContainerState>, restarts: i32) -> PodStatus {
        PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "hex-core-service".into(),
                state: Some(state),
                last_state: last,
                restart_count: restarts,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn waiting(reason: &str, message: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some(message.into()),
            }),
            ..Default::default()
        }
    }

    fn terminated(code: i32, message: Option<&str>) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some("Error".into()),
                message: message.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const CONFIG_ERROR: &str =
        "hex-core-service: invalid configuration: REGISTRY_FETCH_TIMEOUT_MS=1: must be between 100 and 600000";

    #[test]
    fn a_crash_loop_names_the_termination_message() {
        let pods = [
            pod(
                "svc-b",
                container(
                    waiting("CrashLoopBackOff", "back-off 20s"),
                    Some(terminated(2, Some(CONFIG_ERROR))),
                    3,
                ),
            ),
            pod(
                "svc-a",
                container(
                    waiting("CrashLoopBackOff", "back-off 10s"),
                    Some(terminated(2, Some(CONFIG_ERROR))),
                    2,
                ),
            ),
            pod("svc-c", PodStatus::default()),
        ];
        let problem = diagnose(&pods, None).unwrap();
        assert_eq!(problem.reason, "PodsCrashLooping");
        assert_eq!(
            problem.message,
            format!(
                "2 of 3 pods; pod svc-a: container hex-core-service exited with code 2 (restarted 2 times): {CONFIG_ERROR}"
            )
        );
    }

    #[test]
    fn a_first_failure_before_the_back_off_counts_and_log_tails_give_their_last_line() {
        let logs = "{\"level\":\"INFO\"}\nhex-core-service: cannot listen on 0.0.0.0:8080: address in use\n\n";
        let pods = [pod("p", container(terminated(2, Some(logs)), None, 0))];
        let problem = diagnose(&pods, None).unwrap();
        assert_eq!(problem.reason, "PodsCrashLooping");
        assert!(
            problem
                .message
                .ends_with("cannot listen on 0.0.0.0:8080: address in use"),
            "{}",
            problem.message
        );
        let clean_exit = [pod("p", container(terminated(0, None), None, 0))];
        assert_eq!(diagnose(&clean_exit, None), None);
    }

    #[test]
    fn image_pull_failures_and_start_failures_are_named_from_the_waiting_state() {
        let pods = [pod(
            "p",
            container(
                waiting("ImagePullBackOff", "Back-off pulling image \"nope:1\""),
                None,
                0,
            ),
        )];
        let problem = diagnose(&pods, None).unwrap();
        assert_eq!(problem.reason, "ImagePullFailed");
        assert!(
            problem
                .message
                .contains("ImagePullBackOff: Back-off pulling image \"nope:1\"")
        );

        let pods = [pod(
            "p",
            container(
                waiting("CreateContainerConfigError", "secret \"db\" not found"),
                None,
                0,
            ),
        )];
        let problem = diagnose(&pods, None).unwrap();
        assert_eq!(problem.reason, "ContainerStartFailed");
        assert!(problem.message.contains("secret \"db\" not found"));

        let creating = [pod("p", container(waiting("ContainerCreating", ""), None, 0))];
        assert_eq!(
            diagnose(&creating, None),
            None,
            "a container being created is not a problem"
        );
    }

    #[test]
    fn an_unschedulable_pod_repeats_the_schedulers_message() {
        let status = PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/1 nodes are available: 1 Insufficient memory.".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let problem = diagnose(&[pod("p", status)], None).unwrap();
        assert_eq!(problem.reason, "PodsUnschedulable");
        assert_eq!(
            problem.message,
            "1 of 1 pods; pod p: 0/1 nodes are available: 1 Insufficient memory."
        );
    }

    #[test]
    fn a_deployment_that_cannot_create_pods_comes_first_and_terminating_pods_are_ignored() {
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "svc"},
            "status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": "pods \"svc-1\" is forbidden: exceeded quota: mem"}]}
        }))
        .unwrap();
        let crashing = pod("p", container(terminated(1, None), None, 0));
        let problem = diagnose([&crashing], Some(&deployment)).unwrap();
        assert_eq!(problem.reason, "PodsNotCreated");
        assert!(problem.message.contains("exceeded quota: mem"));

        let mut leaving = crashing.clone();
        leaving.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(diagnose([&leaving], None), None);
    }

    #[test]
    fn the_most_fundamental_problem_wins_and_long_messages_are_cut() {
        let long = "x".repeat(2000);
        let pods = [
            pod(
                "a",
                container(waiting("CrashLoopBackOff", ""), Some(terminated(2, Some(&long))), 1),
            ),
            pod("b", container(waiting("ErrImagePull", "no such image"), None, 0)),
        ];
        let problem = diagnose(&pods, None).unwrap();
        assert_eq!(problem.reason, "ImagePullFailed");
        assert!(problem.message.starts_with("1 of 2 pods; pod b:"));
        let crash = diagnose(&pods[..1], None).unwrap();
        assert!(crash.message.chars().count() < 700, "{}", crash.message.len());
        assert!(crash.message.ends_with('…'));
    }
}
