//! The per-entry load state of the registry and the pure decisions about it: what a refresh or a
//! retry stores, which entries are due for another attempt, and whether the replica is ready.
//! No I/O and no clock of its own (callers pass [`Now`]), so every rule is unit-tested here;
//! `registry::Registry` does the fetching and compiling around it.
//!
//! The rules:
//! - an entry that loads is `loaded`;
//! - an entry that fails keeps the model version it served before (same model and version, its
//!   previous artifacts and validators) and is `stale`, or is `failed` when it never loaded;
//! - only entries that leave the catalog disappear;
//! - a failure whose every error is transient (see `FetchError::is_transient`) is retried after a
//!   capped exponential backoff with jitter; a permanent one waits for the next refresh.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Serialize;
use time::OffsetDateTime;

use super::EntryError;
use crate::domain::catalog::CatalogEntry;
use crate::domain::model::{ArtifactKind, ModelKey};

/// One reading of both clocks: the monotonic one decides, the wall one is what reports show.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub wall: OffsetDateTime,
}

impl Now {
    pub fn read() -> Self {
        Self {
            instant: Instant::now(),
            wall: OffsetDateTime::now_utc(),
        }
    }

    fn after(&self, delay: Duration) -> Moment {
        Moment {
            instant: self.instant + delay,
            wall: self.wall + delay,
        }
    }
}

/// A point in time on both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub instant: Instant,
    pub wall: OffsetDateTime,
}

/// Whether an entry serves its current catalog definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Serving its current definition.
    Loaded,
    /// Its last load failed; the previously loaded artifacts of the same model version are served.
    Stale,
    /// Its last load failed and it never loaded: not served.
    Failed,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Stale => "stale",
            Self::Failed => "failed",
        }
    }
}

/// Why an entry does not serve its current definition, and when it is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub errors: Vec<EntryError>,
    /// Every error is transient: retried automatically.
    pub transient: bool,
    /// Failed attempts at the current definition.
    pub attempts: u32,
    /// The first failure of the current definition.
    pub since: Moment,
    pub next_retry: Option<Moment>,
}

/// The state of one catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryStatus {
    /// The entry as the current catalog defines it.
    pub entry: CatalogEntry,
    pub state: EntryState,
    pub failure: Option<Failure>,
}

/// Every entry's state and the models served (loaded and stale). `M` is the loaded model
/// (`Arc<LoadedModel>` in the service; anything cloneable in tests).
#[derive(Debug, Clone)]
pub struct EntryTable<M> {
    pub statuses: BTreeMap<ModelKey, EntryStatus>,
    pub served: BTreeMap<ModelKey, M>,
}

impl<M> Default for EntryTable<M> {
    fn default() -> Self {
        Self {
            statuses: BTreeMap::new(),
            served: BTreeMap::new(),
        }
    }
}

/// One load attempt of one entry.
pub type Attempt<M> = (CatalogEntry, Result<M, Vec<EntryError>>);

/// Automatic retries: delays from a capped exponential backoff with jitter (`backon`), and how
/// long a never-loaded entry that fails transiently may keep the replica unready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub ready_max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            ready_max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Doubling from `min_delay` up to `max_delay`, each delay plus a random jitter of up to
    /// itself (so at most twice `max_delay`), never giving up.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }

    /// The delay before the next attempt after `failures` failed ones (1 = the first failure).
    pub fn delay_after(&self, failures: u32) -> Duration {
        // The iterator's state is the attempt count; past 64 doublings the cap has long applied.
        let index = failures.clamp(1, 64) as usize - 1;
        self.backoff().build().nth(index).unwrap_or(self.max_delay * 2)
    }
}

/// The outcome of one entry: loaded, or kept stale, or failed, with the failure bookkeeping
/// continued from the previous status when the definition is the same.
fn settle<M: Clone>(
    (entry, result): Attempt<M>,
    previous_status: Option<&EntryStatus>,
    previous_model: Option<&M>,
    now: &Now,
    policy: &RetryPolicy,
) -> (EntryStatus, Option<M>) {
    let errors = match result {
        Ok(model) => {
            let status = EntryStatus {
                entry,
                state: EntryState::Loaded,
                failure: None,
            };
            return (status, Some(model));
        }
        Err(errors) => errors,
    };
    let continued = previous_status
        .filter(|status| status.entry == entry)
        .and_then(|status| status.failure.as_ref());
    let attempts = continued.map_or(1, |f| f.attempts.saturating_add(1));
    let since = continued.map_or(
        Moment {
            instant: now.instant,
            wall: now.wall,
        },
        |f| f.since,
    );
    let transient = !errors.is_empty() && errors.iter().all(|e| e.transient);
    let next_retry = transient.then(|| now.after(policy.delay_after(attempts)));
    let state = if previous_model.is_some() {
        EntryState::Stale
    } else {
        EntryState::Failed
    };
    let status = EntryStatus {
        entry,
        state,
        failure: Some(Failure {
            errors,
            transient,
            attempts,
            since,
            next_retry,
        }),
    };
    (status, previous_model.cloned())
}

/// The table after a refresh: every entry of the new catalog, settled from its attempt and the
/// previous table; entries no longer in the catalog are dropped.
pub fn after_refresh<M: Clone>(
    previous: &EntryTable<M>,
    attempts: Vec<Attempt<M>>,
    now: &Now,
    policy: &RetryPolicy,
) -> EntryTable<M> {
    let mut next = EntryTable::default();
    for attempt in attempts {
        let key = attempt.0.key.clone();
        let (status, served) = settle(
            attempt,
            previous.statuses.get(&key),
            previous.served.get(&key),
            now,
            policy,
        );
        if let Some(model) = served {
            next.served.insert(key.clone(), model);
        }
        next.statuses.insert(key, status);
    }
    next
}

/// The table after automatic retries, or `None` when none of them still applies: an attempt
/// counts only while its entry is in the table with the same definition and not loaded (a
/// refresh may have replaced or loaded it meanwhile).
pub fn after_retry<M: Clone>(
    current: &EntryTable<M>,
    attempts: Vec<Attempt<M>>,
    now: &Now,
    policy: &RetryPolicy,
) -> Option<EntryTable<M>> {
    let mut next = current.clone();
    let mut applied = false;
    for attempt in attempts {
        let key = attempt.0.key.clone();
        let Some(status) = current.statuses.get(&key) else {
            continue;
        };
        if status.entry != attempt.0 || status.state == EntryState::Loaded {
            continue;
        }
        let (status, served) = settle(attempt, Some(status), current.served.get(&key), now, policy);
        match served {
            Some(model) => next.served.insert(key.clone(), model),
            None => next.served.remove(&key),
        };
        next.statuses.insert(key, status);
        applied = true;
    }
    applied.then_some(next)
}

/// Entries whose automatic retry is due, with the model each serves now (to reuse it when its
/// artifacts turn out unchanged).
pub fn due_retries<M: Clone>(table: &EntryTable<M>, now: &Now) -> Vec<(CatalogEntry, Option<M>)> {
    table
        .statuses
        .iter()
        .filter(|(_, status)| {
            status
                .failure
                .as_ref()
                .and_then(|f| f.next_retry)
                .is_some_and(|at| at.instant <= now.instant)
        })
        .map(|(key, status)| (status.entry.clone(), table.served.get(key).cloned()))
        .collect()
}

/// When the earliest scheduled retry is due.
pub fn next_retry<M>(table: &EntryTable<M>) -> Option<Instant> {
    table
        .statuses
        .values()
        .filter_map(|s| s.failure.as_ref()?.next_retry.map(|at| at.instant))
        .min()
}

/// Whether the replica should receive traffic. Not ready before the first catalog load; after
/// it, not ready while an entry that never loaded fails transiently and its first failure is less
/// than `ready_max_wait` ago (it is likely to load in a moment). Stale entries, permanent
/// failures and failures older than the bound never make a replica unready: an artifact-host
/// outage must not take every replica out of its Service.
pub fn readiness<M>(table: Option<&EntryTable<M>>, now: &Now, policy: &RetryPolicy) -> Result<(), String> {
    let Some(table) = table else {
        return Err("the first catalog load has not finished".into());
    };
    let waiting: Vec<&EntryStatus> = table
        .statuses
        .values()
        .filter(|status| {
            status.state == EntryState::Failed
                && status.failure.as_ref().is_some_and(|f| {
                    f.transient && now.instant.saturating_duration_since(f.since.instant) < policy.ready_max_wait
                })
        })
        .collect();
    let Some(first) = waiting.first() else {
        return Ok(());
    };
    let failure = first.failure.as_ref().expect("filtered on a failure");
    let remaining = policy
        .ready_max_wait
        .saturating_sub(now.instant.saturating_duration_since(failure.since.instant));
    let others = match waiting.len() {
        1 => String::new(),
        n => format!(" (and {} other entries)", n - 1),
    };
    Err(format!(
        "{}{others} has not loaded yet and is being retried ({}); ready anyway in {} s \
         (REGISTRY_READY_MAX_WAIT_SECS)",
        first.entry.key,
        error_text(&failure.errors),
        remaining.as_secs_f64().ceil() as u64
    ))
}

/// Entry counts for `/admin/ready`, `/admin/status` and the refresh answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EntryCounts {
    pub total: usize,
    pub loaded: usize,
    pub stale: usize,
    pub failed: usize,
}

pub fn counts<M>(table: &EntryTable<M>) -> EntryCounts {
    let mut counts = EntryCounts {
        total: table.statuses.len(),
        ..EntryCounts::default()
    };
    for status in table.statuses.values() {
        match status.state {
            EntryState::Loaded => counts.loaded += 1,
            EntryState::Stale => counts.stale += 1,
            EntryState::Failed => counts.failed += 1,
        }
    }
    counts
}

/// One entry that does not serve its current definition, as `/admin/ready` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedEntry {
    pub model: String,
    pub version: String,
    pub state: EntryState,
    /// The first artifact that failed, or `None` for a failure of the whole entry.
    pub artifact: Option<ArtifactKind>,
    /// Every error of the last attempt, `; `-separated.
    pub error: String,
    pub transient: bool,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_at: Option<OffsetDateTime>,
}

pub fn failed_entries<M>(table: &EntryTable<M>) -> Vec<FailedEntry> {
    table
        .statuses
        .values()
        .filter_map(|status| {
            let failure = status.failure.as_ref()?;
            Some(FailedEntry {
                model: status.entry.key.model.clone(),
                version: status.entry.key.version.clone(),
                state: status.state,
                artifact: failure.errors.iter().find_map(|e| e.artifact),
                error: error_text(&failure.errors),
                transient: failure.transient,
                attempts: failure.attempts,
                since: failure.since.wall,
                next_retry_at: failure.next_retry.map(|at| at.wall),
            })
        })
        .collect()
}

fn error_text(errors: &[EntryError]) -> String {
    errors
        .iter()
        .map(|e| match e.artifact {
            Some(kind) => format!("{kind}: {}", e.message),
            None => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(model: &str, url: &str) -> CatalogEntry {
        CatalogEntry {
            key: ModelKey::new(model, "1"),
            artifacts: [(ArtifactKind::Schema, url.to_string())].into_iter().collect(),
            root_class: None,
        }
    }

    fn error(model: &str, transient: bool) -> EntryError {
        EntryError {
            model: model.into(),
            version: "1".into(),
            artifact: Some(ArtifactKind::Schema),
            message: if transient {
                "HTTP status 503"
            } else {
                "HTTP status 404"
            }
            .into(),
            transient,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            ready_max_wait: Duration::from_secs(60),
        }
    }

    fn at(start: &Now, secs: u64) -> Now {
        Now {
            instant: start.instant + Duration::from_secs(secs),
            wall: start.wall + Duration::from_secs(secs),
        }
    }

    type Table = EntryTable<&'static str>;

    fn refreshed(previous: &Table, attempts: Vec<Attempt<&'static str>>, now: &Now) -> Table {
        after_refresh(previous, attempts, now, &policy())
    }

    #[test]
    fn a_failed_refresh_of_a_loaded_entry_keeps_it_stale_and_drops_only_removed_entries() {
        let now = Now::read();
        let first = refreshed(
            &Table::default(),
            vec![(entry("a", "u"), Ok("a-v1")), (entry("b", "u"), Ok("b-v1"))],
            &now,
        );
        assert_eq!(counts(&first).loaded, 2);
        let second = refreshed(
            &first,
            vec![(entry("a", "u"), Err(vec![error("a", true)]))],
            &at(&now, 5),
        );
        assert_eq!(second.served.get(&ModelKey::new("a", "1")), Some(&"a-v1"));
        assert_eq!(second.statuses[&ModelKey::new("a", "1")].state, EntryState::Stale);
        assert!(
            !second.served.contains_key(&ModelKey::new("b", "1")),
            "b left the catalog"
        );
        assert_eq!(
            counts(&second),
            EntryCounts {
                total: 1,
                loaded: 0,
                stale: 1,
                failed: 0
            }
        );
    }

    #[test]
    fn a_stale_entry_keeps_its_previous_model_even_when_its_definition_changed() {
        let now = Now::read();
        let first = refreshed(&Table::default(), vec![(entry("a", "old"), Ok("a-old"))], &now);
        let second = refreshed(&first, vec![(entry("a", "new"), Err(vec![error("a", true)]))], &now);
        assert_eq!(second.served[&ModelKey::new("a", "1")], "a-old");
        let status = &second.statuses[&ModelKey::new("a", "1")];
        assert_eq!(
            status.entry,
            entry("a", "new"),
            "the status tracks the current definition"
        );
        assert_eq!(status.state, EntryState::Stale);
    }

    #[test]
    fn a_never_loaded_entry_is_failed_and_transient_failures_are_scheduled_with_growing_delays() {
        let now = Now::read();
        let t = refreshed(
            &Table::default(),
            vec![(entry("a", "u"), Err(vec![error("a", true)]))],
            &now,
        );
        let failure = t.statuses[&ModelKey::new("a", "1")].failure.clone().unwrap();
        assert_eq!(t.statuses[&ModelKey::new("a", "1")].state, EntryState::Failed);
        assert!(t.served.is_empty());
        assert_eq!(failure.attempts, 1);
        let first_delay = failure.next_retry.unwrap().instant - now.instant;
        assert!(first_delay >= Duration::from_secs(1) && first_delay < Duration::from_secs(2));

        // Retries continue the bookkeeping: attempts grow, `since` stays, delays double up to the cap.
        let mut table = t;
        let mut clock = now;
        for expected_attempts in 2..=8u32 {
            clock = at(&clock, 100);
            let due = due_retries(&table, &clock);
            assert_eq!(due.len(), 1);
            table = after_retry(
                &table,
                vec![(due[0].0.clone(), Err(vec![error("a", true)]))],
                &clock,
                &policy(),
            )
            .unwrap();
            let failure = table.statuses[&ModelKey::new("a", "1")].failure.clone().unwrap();
            assert_eq!(failure.attempts, expected_attempts);
            assert_eq!(failure.since.instant, now.instant);
            let delay = failure.next_retry.unwrap().instant - clock.instant;
            let base = Duration::from_secs(1 << (expected_attempts - 1).min(3));
            assert!(
                delay >= base && delay < base * 2,
                "attempt {expected_attempts}: {delay:?}"
            );
        }
    }

    #[test]
    fn permanent_failures_are_not_scheduled() {
        let now = Now::read();
        let t = refreshed(
            &Table::default(),
            vec![(entry("a", "u"), Err(vec![error("a", true), error("a", false)]))],
            &now,
        );
        let failure = t.statuses[&ModelKey::new("a", "1")].failure.as_ref().unwrap();
        assert!(!failure.transient, "one permanent error makes the entry permanent");
        assert!(failure.next_retry.is_none());
        assert!(next_retry(&t).is_none());
        assert!(due_retries(&t, &at(&now, 3600)).is_empty());
    }

    #[test]
    fn a_changed_definition_restarts_the_failure_bookkeeping() {
        let now = Now::read();
        let t = refreshed(
            &Table::default(),
            vec![(entry("a", "u"), Err(vec![error("a", true)]))],
            &now,
        );
        let t = refreshed(&t, vec![(entry("a", "u"), Err(vec![error("a", true)]))], &at(&now, 10));
        assert_eq!(
            t.statuses[&ModelKey::new("a", "1")].failure.as_ref().unwrap().attempts,
            2
        );
        let t = refreshed(&t, vec![(entry("a", "v"), Err(vec![error("a", true)]))], &at(&now, 20));
        let failure = t.statuses[&ModelKey::new("a", "1")].failure.as_ref().unwrap();
        assert_eq!(failure.attempts, 1);
        assert_eq!(failure.since.instant, at(&now, 20).instant);
    }

    #[test]
    fn a_retry_that_loads_replaces_the_stale_model() {
        let now = Now::read();
        let t = refreshed(&Table::default(), vec![(entry("a", "u"), Ok("v1"))], &now);
        let t = refreshed(&t, vec![(entry("a", "u"), Err(vec![error("a", true)]))], &now);
        let t = after_retry(&t, vec![(entry("a", "u"), Ok("v2"))], &at(&now, 2), &policy()).unwrap();
        assert_eq!(t.served[&ModelKey::new("a", "1")], "v2");
        assert_eq!(t.statuses[&ModelKey::new("a", "1")].state, EntryState::Loaded);
        assert!(failed_entries(&t).is_empty());
    }

    #[test]
    fn a_retry_is_discarded_when_a_refresh_changed_or_loaded_the_entry_meanwhile() {
        let now = Now::read();
        let failing = refreshed(
            &Table::default(),
            vec![(entry("a", "u"), Err(vec![error("a", true)]))],
            &now,
        );
        let reloaded = refreshed(&failing, vec![(entry("a", "u"), Ok("v1"))], &now);
        assert!(
            after_retry(
                &reloaded,
                vec![(entry("a", "u"), Err(vec![error("a", true)]))],
                &now,
                &policy()
            )
            .is_none()
        );
        let redefined = refreshed(&failing, vec![(entry("a", "w"), Err(vec![error("a", true)]))], &now);
        assert!(after_retry(&redefined, vec![(entry("a", "u"), Ok("v1"))], &now, &policy()).is_none());
        let removed = refreshed(&failing, vec![], &now);
        assert!(after_retry(&removed, vec![(entry("a", "u"), Ok("v1"))], &now, &policy()).is_none());
    }

    #[test]
    fn readiness_waits_for_the_first_load_and_a_bounded_time_for_never_loaded_transient_entries() {
        let now = Now::read();
        assert!(readiness::<&str>(None, &now, &policy()).is_err());

        let t = refreshed(
            &Table::default(),
            vec![
                (entry("a", "u"), Ok("a")),
                (entry("b", "u"), Err(vec![error("b", true)])),
            ],
            &now,
        );
        let reason = readiness(Some(&t), &at(&now, 1), &policy()).unwrap_err();
        assert!(reason.contains("b@1") && reason.contains("503"), "{reason}");
        assert!(readiness(Some(&t), &at(&now, 60), &policy()).is_ok(), "bounded wait");

        let permanent = refreshed(
            &Table::default(),
            vec![(entry("b", "u"), Err(vec![error("b", false)]))],
            &now,
        );
        assert!(readiness(Some(&permanent), &now, &policy()).is_ok());

        let stale = refreshed(&t, vec![(entry("a", "u"), Err(vec![error("a", true)]))], &now);
        assert!(
            readiness(Some(&stale), &now, &policy()).is_ok(),
            "stale entries never block"
        );
    }

    #[test]
    fn failed_entries_report_the_interface_fields() {
        let now = Now::read();
        let t = refreshed(
            &Table::default(),
            vec![(entry("a", "u"), Err(vec![error("a", true)]))],
            &now,
        );
        let reported = serde_json::to_value(failed_entries(&t)).unwrap();
        let item = &reported[0];
        assert_eq!(item["model"], "a");
        assert_eq!(item["state"], "failed");
        assert_eq!(item["artifact"], "schema");
        assert_eq!(item["error"], "schema: HTTP status 503");
        assert_eq!(item["transient"], true);
        assert_eq!(item["attempts"], 1);
        assert!(item["since"].as_str().unwrap().ends_with('Z'));
        assert!(item["next_retry_at"].is_string());
    }

    #[test]
    fn backoff_delays_are_capped() {
        let p = policy();
        for failures in [1, 2, 5, 30, 1000, u32::MAX] {
            let delay = p.delay_after(failures);
            assert!(delay >= p.min_delay && delay < p.max_delay * 2, "{failures}: {delay:?}");
        }
    }
}
