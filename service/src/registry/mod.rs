//! The model registry: loads the catalog, fetches and compiles every artifact once, and serves
//! requests from an immutable snapshot that a refresh swaps atomically. Requests never wait on a
//! refresh; a failed refresh leaves the previous snapshot in place.

pub mod fetch;
pub mod local_file;
pub mod policy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::domain::catalog::{Catalog, CatalogEntry, CatalogError};
use crate::domain::model::{ArtifactKind, ModelKey};
use crate::metrics::Metrics;
use crate::ports::{ArtifactSet, ArtifactSource, CompiledModel, FetchError, ModelCompiler, TargetClass};
use crate::usecases::validate::ValidationCost;

/// Where the catalog bytes come from on each load.
#[derive(Debug, Clone)]
pub enum CatalogLocation {
    Inline(String),
    File(PathBuf),
    Url(String),
}

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
    pub models: BTreeMap<ModelKey, Arc<LoadedModel>>,
    pub catalog_sha256: String,
    pub loaded_at: OffsetDateTime,
    pub errors: Vec<EntryError>,
    pub warnings: Vec<String>,
    /// `GET /models` body, serialised once per load.
    pub models_json: Bytes,
}

impl Snapshot {
    pub fn get(&self, model: &str, version: &str) -> Option<&Arc<LoadedModel>> {
        self.models.get(&ModelKey::new(model, version))
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
    pub loaded: bool,
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
    pub models_found: usize,
    pub errors: Vec<String>,
    pub catalog_sha256: String,
    pub duration_ms: u64,
    pub entries: Vec<EntryOutcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

type RefreshResult = Result<Arc<RefreshReport>, RegistryError>;
type InflightRefresh = Shared<BoxFuture<'static, RefreshResult>>;

/// Loads catalogs; holds the ports it needs.
pub struct Loader {
    pub location: CatalogLocation,
    pub catalog_source: Arc<dyn ArtifactSource>,
    pub artifact_source: Arc<dyn ArtifactSource>,
    pub compiler: Arc<dyn ModelCompiler>,
    pub fetch_concurrency: usize,
    pub metrics: Arc<Metrics>,
    /// Size and time limits of `CatalogLocation::File` reads.
    pub local_file_limits: local_file::LocalFileLimits,
}

impl Loader {
    async fn read_catalog(&self) -> Result<Bytes, RegistryError> {
        match &self.location {
            CatalogLocation::Inline(json) => Ok(Bytes::from(json.clone())),
            CatalogLocation::File(path) => local_file::read(path, self.local_file_limits)
                .await
                .map_err(|e| RegistryError::Source(format!("{}: {e}", path.display()))),
            CatalogLocation::Url(url) => self
                .catalog_source
                .fetch(url)
                .await
                .map(|a| a.bytes)
                .map_err(|e| RegistryError::Source(e.to_string())),
        }
    }

    /// Reads, parses, fetches and compiles; returns the new snapshot and its report.
    pub async fn load(&self) -> Result<(Snapshot, RefreshReport), RegistryError> {
        let started = Instant::now();
        let catalog_bytes = self.read_catalog().await?;
        let catalog_sha256 = hex::encode(Sha256::digest(&catalog_bytes));
        let catalog = Catalog::parse(&catalog_bytes)?;

        let results: Vec<_> = stream::iter(catalog.entries.iter().cloned())
            .map(|entry| self.load_entry(entry))
            .buffer_unordered(self.fetch_concurrency.max(1))
            .collect()
            .await;

        let mut models = BTreeMap::new();
        let mut errors = Vec::new();
        let mut outcomes = Vec::new();
        for (entry, result) in results {
            match result {
                Ok(model) => {
                    outcomes.push(EntryOutcome {
                        model: entry.key.model.clone(),
                        version: entry.key.version.clone(),
                        loaded: true,
                        artifacts: model.artifacts.keys().copied().collect(),
                        errors: vec![],
                        warnings: model.compiled.warnings.clone(),
                    });
                    models.insert(entry.key.clone(), Arc::new(model));
                }
                Err(entry_errors) => {
                    outcomes.push(EntryOutcome {
                        model: entry.key.model.clone(),
                        version: entry.key.version.clone(),
                        loaded: false,
                        artifacts: vec![],
                        errors: entry_errors.iter().map(|e| e.message.clone()).collect(),
                        warnings: vec![],
                    });
                    errors.extend(entry_errors);
                }
            }
        }
        outcomes.sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
        errors.sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));

        let loaded_at = OffsetDateTime::now_utc();
        let models_json = models_body(&models);
        let report = RefreshReport {
            refreshed_at: loaded_at,
            models_found: models.len(),
            errors: errors.iter().map(ToString::to_string).collect(),
            catalog_sha256: catalog_sha256.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            entries: outcomes,
            warnings: catalog.warnings.clone(),
        };
        let snapshot = Snapshot {
            models,
            catalog_sha256,
            loaded_at,
            errors,
            warnings: catalog.warnings,
            models_json,
        };
        Ok((snapshot, report))
    }

    /// Fetches and compiles one entry (also used by `hex-cli catalog lint --fetch`).
    pub async fn load_entry(&self, entry: CatalogEntry) -> (CatalogEntry, Result<LoadedModel, Vec<EntryError>>) {
        let fetches = entry.artifacts.iter().map(|(kind, url)| async move {
            let result = self.artifact_source.fetch(url).await;
            self.metrics.record_artifact_fetch(*kind, &result);
            (*kind, result)
        });
        let fetched = futures::future::join_all(fetches).await;

        let mut artifacts: ArtifactSet = BTreeMap::new();
        let mut errors = Vec::new();
        for (kind, result) in fetched {
            match result {
                Ok(artifact) => {
                    artifacts.insert(kind, artifact);
                }
                Err(error) => errors.push(entry_error(&entry, Some(kind), &error)),
            }
        }
        if !errors.is_empty() {
            return (entry, Err(errors));
        }

        // Compilation is CPU-bound (a 743 KB JSON Schema, a 1.2 MB shapes graph): keep it off the
        // reactor so requests keep flowing during a refresh.
        let compiler = self.compiler.clone();
        let entry_for_compile = entry.clone();
        let artifacts_for_compile = artifacts.clone();
        let compiled =
            tokio::task::spawn_blocking(move || compiler.compile(&entry_for_compile, &artifacts_for_compile)).await;
        let compiled = match compiled {
            Ok(Ok(compiled)) => compiled,
            Ok(Err(error)) => {
                let e = EntryError {
                    model: entry.key.model.clone(),
                    version: entry.key.version.clone(),
                    artifact: Some(error.artifact),
                    message: error.to_string(),
                };
                return (entry, Err(vec![e]));
            }
            Err(join) => {
                let e = EntryError {
                    model: entry.key.model.clone(),
                    version: entry.key.version.clone(),
                    artifact: None,
                    message: format!("compiler failed: {join}"),
                };
                return (entry, Err(vec![e]));
            }
        };

        let loaded = artifacts
            .into_iter()
            .map(|(kind, artifact)| {
                let url = entry.artifacts.get(&kind).cloned().unwrap_or(artifact.url);
                let content_type = kind.content_type(&url);
                (
                    kind,
                    LoadedArtifact {
                        sha256: hex::encode(Sha256::digest(&artifact.bytes)),
                        size_bytes: artifact.bytes.len(),
                        url,
                        bytes: artifact.bytes,
                        content_type,
                    },
                )
            })
            .collect();
        let model = LoadedModel {
            entry: entry.clone(),
            artifacts: loaded,
            compiled,
            loaded_at: OffsetDateTime::now_utc(),
            validation_cost: ValidationCost::default(),
        };
        (entry, Ok(model))
    }
}

fn entry_error(entry: &CatalogEntry, artifact: Option<ArtifactKind>, error: &FetchError) -> EntryError {
    EntryError {
        model: entry.key.model.clone(),
        version: entry.key.version.clone(),
        artifact,
        message: error.to_string(),
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

/// The live registry: the current snapshot plus coalesced refreshes.
pub struct Registry {
    current: ArcSwapOption<Snapshot>,
    loader: Arc<Loader>,
    inflight: Mutex<Option<InflightRefresh>>,
    last_refresh: ArcSwapOption<RefreshReport>,
    last_error: ArcSwapOption<String>,
}

impl Registry {
    pub fn new(loader: Loader) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwapOption::empty(),
            loader: Arc::new(loader),
            inflight: Mutex::new(None),
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

    /// Reloads the catalog. Concurrent callers share one load and all receive its result; the load
    /// runs in its own task, so a caller that disconnects does not cancel it.
    pub async fn refresh(self: &Arc<Self>) -> Result<Arc<RefreshReport>, RegistryError> {
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
        let result = self.loader.load().await;
        let metrics = &self.loader.metrics;
        let outcome = match result {
            Ok((snapshot, report)) => {
                metrics.registry_models_loaded.set(snapshot.models.len() as i64);
                self.current.store(Some(Arc::new(snapshot)));
                let report = Arc::new(report);
                self.last_refresh.store(Some(report.clone()));
                self.last_error.store(None);
                tracing::info!(
                    models_found = report.models_found,
                    errors = report.errors.len(),
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
}
