//! Status conditions per the Kubernetes API conventions: `type`, `status` (`True`/`False`/
//! `Unknown`), a CamelCase `reason`, a human `message`, `observedGeneration`, and a
//! `lastTransitionTime` that moves only when `status` flips (so "since when is it not Ready"
//! stays answerable).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Summary: the resource does what it asks for (`kubectl wait --for=condition=Ready`).
pub const READY: &str = "Ready";
/// The merged catalog was computed and delivered to every ready replica.
pub const CATALOG_SYNCED: &str = "CatalogSynced";
/// A rollout or catalog delivery is under way.
pub const PROGRESSING: &str = "Progressing";
/// Something needs a human: a conflict, a missing reference, a rejected write.
pub const DEGRADED: &str = "Degraded";
/// `spec.paused` is true; only status is written.
pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";
/// ModelCatalog: a HexCoreService that selects it serves every entry of its current content.
pub const LOADED: &str = "Loaded";

/// One condition as the reconciler decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Decided {
    pub fn new(type_: &'static str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

fn status_word(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// The new condition list: `decided` conditions replace their types' previous entries, keeping
/// `lastTransitionTime` when the status did not change. Conditions of other types are kept.
/// The result is sorted by type, so equal inputs give equal (write-free) statuses.
pub fn merge(previous: &[Condition], decided: &[Decided], generation: Option<i64>, now: Timestamp) -> Vec<Condition> {
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| !decided.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in decided {
        let status = status_word(d.status).to_string();
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == d.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(Condition {
            type_: d.type_.to_string(),
            status,
            reason: d.reason.clone(),
            message: truncate(&d.message, 32 * 1024),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn last_transition_time_moves_only_when_the_status_flips() {
        let first = merge(
            &[],
            &[Decided::new(READY, false, "Progressing", "rolling out")],
            Some(1),
            at(100),
        );
        assert_eq!(first[0].last_transition_time, Time(at(100)));

        let same_status = merge(
            &first,
            &[Decided::new(READY, false, "Waiting", "still rolling")],
            Some(2),
            at(200),
        );
        assert_eq!(same_status[0].last_transition_time, Time(at(100)), "status unchanged");
        assert_eq!(same_status[0].reason, "Waiting");
        assert_eq!(same_status[0].message, "still rolling");
        assert_eq!(same_status[0].observed_generation, Some(2));

        let flipped = merge(
            &same_status,
            &[Decided::new(READY, true, "Converged", "ok")],
            Some(2),
            at(300),
        );
        assert_eq!(flipped[0].status, "True");
        assert_eq!(flipped[0].last_transition_time, Time(at(300)));
    }

    #[test]
    fn conditions_of_other_types_are_kept_and_the_list_is_sorted() {
        let first = merge(
            &[],
            &[
                Decided::new(READY, true, "Converged", ""),
                Decided::new(DEGRADED, false, "AsExpected", ""),
            ],
            Some(1),
            at(1),
        );
        let second = merge(
            &first,
            &[Decided::new(CATALOG_SYNCED, true, "Delivered", "")],
            Some(1),
            at(2),
        );
        let types: Vec<_> = second.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["CatalogSynced", "Degraded", "Ready"]);
        assert!(is_true(&second, READY));
        assert!(!is_true(&second, DEGRADED));
    }

    #[test]
    fn equal_decisions_give_an_equal_list() {
        let decided = [Decided::new(READY, true, "Converged", "all replicas serve abc")];
        let first = merge(&[], &decided, Some(3), at(10));
        let again = merge(&first, &decided, Some(3), at(20));
        assert_eq!(first, again, "a repeated reconcile must not produce a status change");
    }

    #[test]
    fn long_messages_are_truncated_on_a_character_boundary() {
        let long = "é".repeat(40 * 1024);
        let out = merge(&[], &[Decided::new(DEGRADED, true, "X", long)], None, at(1));
        assert!(out[0].message.len() <= 32 * 1024 + '…'.len_utf8());
        assert!(out[0].message.ends_with('…'));
    }
}
