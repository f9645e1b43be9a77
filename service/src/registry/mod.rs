//! The model registry: loads the catalog, fetches and compiles every artifact once, and serves
//! requests from an immutable snapshot that a refresh swaps atomically. Requests never wait on a
//! refresh. A catalog that cannot be read or parsed leaves the previous snapshot in place; an
//! entry that fails keeps serving the version it loaded before (`stale`) and is retried on its
//! own when the failure is transient. The decisions live in `state` (pure); this module does the
//! I/O around them and serialises every snapshot store.

pub mod fetch;
pub mod loader;
pub mod local_file;
pub mod policy;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Once, Weak};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Mutex, Notify};

pub use self::loader::{CatalogLocation, EntryLoad, Loader};
use self::state::{Attempt, EntryCounts, EntryState, EntryStatus, EntryTable, FailedEntry, Now, RetryPolicy};
use crate::domain::catalog::{CatalogEntry, CatalogError};
use crate::domain::model::{ArtifactKind, ModelKey};
use crate::ports::{CompiledModel, TargetClass};
use crate::usecases::validate::ValidationCost;

/// One artifact as served: bytes, digest, content type.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedArtifact {
    pub url: String,
    #[serde(skip)]
    pub bytes: Bytes,
    pub sha256: String,
    pub size_bytes: usize,
    pub content_type: &'static str,
}

/// A model version that loaded: its artifacts and compiled validators.
pub struct LoadedModel {
    pub entry: CatalogEntry,
    pub artifacts: BTreeMap<ArtifactKind, LoadedArtifact>,
    pub compiled: CompiledModel,
    pub loaded_at: OffsetDateTime,
    /// Its recent validation time: whether a small payload may validate on the reactor thread.
    pub validation_cost: ValidationCost,
}

impl LoadedModel {
    pub fn target_class(&self) -> &TargetClass {
        &self.compiled.target_class
    }
}

/// Why one entry did not load; the other entries still do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryError {
    pub model: String,
    pub version: String,
    pub artifact: Option<ArtifactKind>,
    pub message: String,
    /// Retrying later may succeed (see `FetchError::is_transient`); compile errors never are.
    pub transient: bool,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.artifact {
            Some(kind) => write!(f, "{}@{} {}: {}", self.model, self.version, kind, self.message),
            None => write!(f, "{}@{}: {}", self.model, self.version, self.message),
        }
    }
}

/// The immutable view every request reads.
pub struct Snapshot {
    /// Every catalog entry's state and the models served (loaded and stale).
    pub table: EntryTable<Arc<LoadedModel>>,
    pub catalog_sha256: String,
    pub loaded_at: OffsetDateTime,
    pub warnings: Vec<String>,
    /// `GET /models` body, serialised once per store.
    pub models_json: Bytes,
}

impl Snapshot {
    fn new(table: EntryTable<Arc<LoadedModel>>, catalog_sha256: String, warnings: Vec<String>, now: &Now) -> Self {
        let models_json = models_body(&table.served);
        Self {
            table,
            catalog_sha256,
            loaded_at: now.wall,
            warnings,
            models_json,
        }
    }

    /// The model versions served: loaded and stale.
    pub fn models(&self) -> &BTreeMap<ModelKey, Arc<LoadedModel>> {
        &self.table.served
    }

    pub fn get(&self, model: &str, version: &str) -> Option<&Arc<LoadedModel>> {
        self.table.served.get(&ModelKey::new(model, version))
    }

    pub fn counts(&self) -> EntryCounts {
        state::counts(&self.table)
    }

    pub fn failed_entries(&self) -> Vec<FailedEntry> {
        state::failed_entries(&self.table)
    }

    /// The errors of every entry that does not serve its current definition.
    pub fn errors(&self) -> Vec<EntryError> {
        self.table
            .statuses
            .values()
            .filter_map(|s| s.failure.as_ref())
            .flat_map(|f| f.errors.iter().cloned())
            .collect()
    }
}

/// A load that could not produce a snapshot at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("catalog source unreadable: {0}")]
    Source(String),
    #[error("{0}")]
    Catalog(#[from] CatalogError),
}

/// Per-entry outcome reported by a refresh.
#[derive(Debug, Clone, Serialize)]
pub struct EntryOutcome {
    pub model: String,
    pub version: String,
    pub state: EntryState,
    /// Serving its current definition (`state == loaded`).
    pub loaded: bool,
    /// The model served before was kept without a compile: same definition, same bytes.
    pub reused: bool,
    /// The artifacts of the model served (none when failed).
    pub artifacts: Vec<ArtifactKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The refresh response: the reference's `{refreshed_at, models_found, errors}` plus additions.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    #[serde(with = "time::serde::rfc3339")]
    pub refreshed_at: OffsetDateTime,
    /// Model versions served after the refresh (loaded and stale).
    pub models_found: usize,
    /// One line per artifact or entry error.
    pub errors: Vec<String>,
    pub catalog_sha256: String,
    pub duration_ms: u64,
    pub entries: EntryCounts,
    pub failed_entries: Vec<FailedEntry>,
    pub entry_results: Vec<EntryOutcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What `/admin/ready` and `/admin/status` report about the registry.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryHealth {
    #[serde(skip)]
    pub ready: Result<(), String>,
    pub catalog_sha256: Option<String>,
    pub models_loaded: usize,
    pub entries: EntryCounts,
    pub failed_entries: Vec<FailedEntry>,
}

type RefreshResult = Result<Arc<RefreshReport>, RegistryError>;
type InflightRefresh = Shared<BoxFuture<'static, RefreshResult>>;

/// The live registry: the current snapshot, coalesced refreshes and automatic retries.
pub struct Registry {
    current: ArcSwapOption<Snapshot>,
    loader: Arc<Loader>,
    policy: RetryPolicy,
    inflight: Mutex<Option<InflightRefresh>>,
    /// Held while a refresh or a retry decides and stores its snapshot (never across an await),
    /// so the two never overwrite each other's result.
    store_lock: std::sync::Mutex<()>,
    /// Signalled on every store: the retry driver recomputes its next wake-up.
    changed: Arc<Notify>,
    retry_driver: Once,
    last_refresh: ArcSwapOption<RefreshReport>,
    last_error: ArcSwapOption<String>,
}

impl Registry {
    pub fn new(loader: Loader, policy: RetryPolicy) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwapOption::empty(),
            loader: Arc::new(loader),
            policy,
            inflight: Mutex::new(None),
            store_lock: std::sync::Mutex::new(()),
            changed: Arc::new(Notify::new()),
            retry_driver: Once::new(),
            last_refresh: ArcSwapOption::empty(),
            last_error: ArcSwapOption::empty(),
        })
    }

    /// The active snapshot, if any load has succeeded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    pub fn last_refresh(&self) -> Option<Arc<RefreshReport>> {
        self.last_refresh.load_full()
    }

    pub fn last_error(&self) -> Option<Arc<String>> {
        self.last_error.load_full()
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Readiness (see `state::readiness`) and the per-entry report.
    pub fn health(&self) -> RegistryHealth {
        let snapshot = self.snapshot();
        let ready = state::readiness(snapshot.as_ref().map(|s| &s.table), &Now::read(), &self.policy).map_err(
            |reason| match (&snapshot, self.last_error()) {
                (None, Some(error)) => format!("{reason}: {error}"),
                _ => reason,
            },
        );
        RegistryHealth {
            ready,
            catalog_sha256: snapshot.as_ref().map(|s| s.catalog_sha256.clone()),
            models_loaded: snapshot.as_ref().map_or(0, |s| s.models().len()),
            entries: snapshot.as_ref().map(|s| s.counts()).unwrap_or_default(),
            failed_entries: snapshot.as_ref().map(|s| s.failed_entries()).unwrap_or_default(),
        }
    }

    /// Reloads the catalog. Concurrent callers share one load and all receive its result; the load
    /// runs in its own task, so a caller that disconnects does not cancel it.
    pub async fn refresh(self: &Arc<Self>) -> Result<Arc<RefreshReport>, RegistryError> {
        self.start_retry_driver();
        let shared = {
            let mut inflight = self.inflight.lock().await;
            match inflight.as_ref() {
                Some(running) => running.clone(),
                None => {
                    let registry = Arc::clone(self);
                    let task = tokio::spawn(async move { registry.run_refresh().await });
                    let future: BoxFuture<'static, RefreshResult> = async move {
                        task.await
                            .unwrap_or_else(|e| Err(RegistryError::Source(format!("refresh task failed: {e}"))))
                    }
                    .boxed();
                    let shared = future.shared();
                    *inflight = Some(shared.clone());
                    shared
                }
            }
        };
        shared.await
    }

    async fn run_refresh(self: Arc<Self>) -> RefreshResult {
        let started = Instant::now();
        let result = self.load_catalog(started).await;
        let metrics = &self.loader.metrics;
        let outcome = match result {
            Ok(report) => {
                let report = Arc::new(report);
                self.last_refresh.store(Some(report.clone()));
                self.last_error.store(None);
                tracing::info!(
                    models_found = report.models_found,
                    loaded = report.entries.loaded,
                    stale = report.entries.stale,
                    failed = report.entries.failed,
                    reused = report.entry_results.iter().filter(|e| e.reused).count(),
                    catalog_sha256 = %report.catalog_sha256,
                    duration_ms = report.duration_ms,
                    "registry refreshed"
                );
                metrics.record_refresh("success", started.elapsed());
                Ok(report)
            }
            Err(error) => {
                tracing::warn!(error = %error, "registry refresh failed; previous snapshot kept");
                self.last_error.store(Some(Arc::new(error.to_string())));
                metrics.record_refresh("error", started.elapsed());
                Err(error)
            }
        };
        // Clear the slot only after the snapshot is stored, so a caller arriving now starts a
        // fresh load that sees the latest catalog rather than joining a finished one.
        *self.inflight.lock().await = None;
        outcome
    }

    /// Reads the catalog, loads every entry against what is served now, and stores the result.
    async fn load_catalog(&self, started: Instant) -> Result<RefreshReport, RegistryError> {
        let read = self.loader.read_catalog().await?;
        let previous = self.snapshot();
        let work = read
            .catalog
            .entries
            .iter()
            .map(|entry| {
                let served = previous.as_ref().and_then(|s| s.models().get(&entry.key).cloned());
                (entry.clone(), served)
            })
            .collect();
        let loads = self.loader.load_entries(work).await;
        let reused: BTreeSet<ModelKey> = loads.iter().filter(|l| l.reused).map(|l| l.entry.key.clone()).collect();
        let attempts: Vec<Attempt<Arc<LoadedModel>>> = loads.into_iter().map(|l| (l.entry, l.result)).collect();
        let policy = self.policy;
        let snapshot = self
            .store(
                |current, now| Some(state::after_refresh(current, attempts, now, &policy)),
                Some((read.sha256, read.catalog.warnings)),
            )
            .expect("a refresh always stores");
        // The fetched buffers of unchanged models were just dropped; trimming walks the heaps,
        // so not on the reactor.
        tokio::task::spawn_blocking(crate::memory::release_freed_memory);
        for failed in snapshot.failed_entries() {
            tracing::warn!(
                model = %failed.model, version = %failed.version, state = failed.state.as_str(),
                transient = failed.transient, attempts = failed.attempts, error = %failed.error,
                next_retry_at = ?failed.next_retry_at, "catalog entry did not load"
            );
        }
        Ok(refresh_report(&snapshot, &reused, started))
    }

    /// Decides the next entry table from the current one under the store lock and stores it.
    /// `catalog` is the new catalog's digest and warnings (a refresh), or `None` to keep the
    /// current ones (a retry). Returns the stored snapshot, or `None` when `decide` stored nothing.
    fn store(
        &self,
        decide: impl FnOnce(&EntryTable<Arc<LoadedModel>>, &Now) -> Option<EntryTable<Arc<LoadedModel>>>,
        catalog: Option<(String, Vec<String>)>,
    ) -> Option<Arc<Snapshot>> {
        let _guard = self.store_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.current.load_full();
        let empty = EntryTable::default();
        let now = Now::read();
        let table = decide(current.as_ref().map_or(&empty, |s| &s.table), &now)?;
        let (sha256, warnings) = match (catalog, &current) {
            (Some(catalog), _) => catalog,
            (None, Some(current)) => (current.catalog_sha256.clone(), current.warnings.clone()),
            (None, None) => return None,
        };
        let snapshot = Arc::new(Snapshot::new(table, sha256, warnings, &now));
        self.current.store(Some(snapshot.clone()));
        self.loader
            .metrics
            .record_registry_entries(snapshot.models().len(), &snapshot.counts());
        self.changed.notify_one();
        Some(snapshot)
    }

    /// Starts (once) the task that retries failed and stale entries when their backoff is due.
    /// It holds the registry weakly and ends with it.
    fn start_retry_driver(self: &Arc<Self>) {
        self.retry_driver.call_once(|| {
            let registry = Arc::downgrade(self);
            let changed = self.changed.clone();
            tokio::spawn(drive_retries(registry, changed));
        });
    }

    /// Loads every entry whose retry is due and stores the outcome.
    async fn retry_due(&self) {
        let Some(snapshot) = self.snapshot() else { return };
        let due = state::due_retries(&snapshot.table, &Now::read());
        drop(snapshot);
        if due.is_empty() {
            return;
        }
        let loads = self.loader.load_entries(due).await;
        for load in &loads {
            let result = if load.result.is_ok() { "loaded" } else { "failed" };
            self.loader.metrics.record_entry_retry(result);
            match &load.result {
                Ok(_) => {
                    tracing::info!(model = %load.entry.key.model, version = %load.entry.key.version, reused = load.reused, "catalog entry loaded on retry")
                }
                Err(errors) => tracing::warn!(
                    model = %load.entry.key.model, version = %load.entry.key.version,
                    error = %errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                    "catalog entry retry failed"
                ),
            }
        }
        let attempts: Vec<Attempt<Arc<LoadedModel>>> = loads.into_iter().map(|l| (l.entry, l.result)).collect();
        let policy = self.policy;
        self.store(|current, now| state::after_retry(current, attempts, now, &policy), None);
    }
}

async fn drive_retries(registry: Weak<Registry>, changed: Arc<Notify>) {
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        // Registered before reading the snapshot, so a store in between is not missed.
        notified.as_mut().enable();
        let next = {
            let Some(registry) = registry.upgrade() else { return };
            registry.snapshot().and_then(|s| state::next_retry(&s.table))
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    () = &mut notified => continue,
                }
            }
            None => {
                notified.await;
                continue;
            }
        }
        let Some(registry) = registry.upgrade() else { return };
        registry.retry_due().await;
    }
}

fn refresh_report(snapshot: &Snapshot, reused: &BTreeSet<ModelKey>, started: Instant) -> RefreshReport {
    let entry_results = snapshot
        .table
        .statuses
        .iter()
        .map(|(key, status)| entry_outcome(key, status, snapshot.models().get(key), reused.contains(key)))
        .collect();
    RefreshReport {
        refreshed_at: snapshot.loaded_at,
        models_found: snapshot.models().len(),
        errors: snapshot.errors().iter().map(ToString::to_string).collect(),
        catalog_sha256: snapshot.catalog_sha256.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        entries: snapshot.counts(),
        failed_entries: snapshot.failed_entries(),
        entry_results,
        warnings: snapshot.warnings.clone(),
    }
}

fn entry_outcome(
    key: &ModelKey,
    status: &EntryStatus,
    served: Option<&Arc<LoadedModel>>,
    reused: bool,
) -> EntryOutcome {
    EntryOutcome {
        model: key.model.clone(),
        version: key.version.clone(),
        state: status.state,
        loaded: status.state == EntryState::Loaded,
        reused,
        artifacts: served
            .map(|m| m.artifacts.keys().copied().collect())
            .unwrap_or_default(),
        errors: status
            .failure
            .iter()
            .flat_map(|f| f.errors.iter().map(|e| e.message.clone()))
            .collect(),
        warnings: served.map(|m| m.compiled.warnings.clone()).unwrap_or_default(),
    }
}

fn models_body(models: &BTreeMap<ModelKey, Arc<LoadedModel>>) -> Bytes {
    #[derive(Serialize)]
    struct Item<'a> {
        id: &'a str,
        version: &'a str,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        models: Vec<Item<'a>>,
    }
    let body = Body {
        models: models
            .keys()
            .map(|k| Item {
                id: &k.model,
                version: &k.version,
            })
            .collect(),
    };
    Bytes::from(serde_json::to_vec(&body).expect("models body serialises"))
}
