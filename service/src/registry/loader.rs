//! Reading the catalog and loading its entries: fetch every artifact, and compile only what
//! changed. A model whose entry definition and artifact bytes are the same as the model served
//! now is reused as it is (its validators, digests and recent validation cost), so a refresh of
//! an unchanged catalog costs the fetches (a 304 each with the artifact cache) and a byte
//! comparison, not a compile.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{EntryError, LoadedArtifact, LoadedModel, RegistryError};
use crate::domain::catalog::{Catalog, CatalogEntry};
use crate::domain::model::ArtifactKind;
use crate::metrics::Metrics;
use crate::ports::{ArtifactSet, ArtifactSource, FetchError, ModelCompiler};
use crate::usecases::validate::ValidationCost;

/// Where the catalog bytes come from on each load.
#[derive(Debug, Clone)]
pub enum CatalogLocation {
    Inline(String),
    File(PathBuf),
    Url(String),
}

/// A catalog as read for one refresh.
pub struct ReadCatalog {
    pub catalog: Catalog,
    pub sha256: String,
}

/// One entry's load: the model to serve (new or reused) or why it did not load.
pub struct EntryLoad {
    pub entry: CatalogEntry,
    pub result: Result<Arc<LoadedModel>, Vec<EntryError>>,
    /// The model served before was kept: same definition, same artifact bytes, no compile.
    pub reused: bool,
}

/// Loads catalogs; holds the ports it needs.
pub struct Loader {
    pub location: CatalogLocation,
    pub catalog_source: Arc<dyn ArtifactSource>,
    pub artifact_source: Arc<dyn ArtifactSource>,
    pub compiler: Arc<dyn ModelCompiler>,
    pub fetch_concurrency: usize,
    pub metrics: Arc<Metrics>,
    /// Size and time limits of `CatalogLocation::File` reads.
    pub local_file_limits: super::local_file::LocalFileLimits,
}

impl Loader {
    async fn read_catalog_bytes(&self) -> Result<Bytes, RegistryError> {
        match &self.location {
            CatalogLocation::Inline(json) => Ok(Bytes::from(json.clone())),
            CatalogLocation::File(path) => super::local_file::read(path, self.local_file_limits)
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

    /// Reads and parses the catalog; an error here keeps the whole previous snapshot.
    pub async fn read_catalog(&self) -> Result<ReadCatalog, RegistryError> {
        let bytes = self.read_catalog_bytes().await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let catalog = Catalog::parse(&bytes)?;
        Ok(ReadCatalog { catalog, sha256 })
    }

    /// Loads entries concurrently (at most `fetch_concurrency` at once), each against the model
    /// served for it now, if any.
    pub async fn load_entries(&self, entries: Vec<(CatalogEntry, Option<Arc<LoadedModel>>)>) -> Vec<EntryLoad> {
        stream::iter(entries)
            .map(|(entry, previous)| self.load_entry_reusing(entry, previous))
            .buffer_unordered(self.fetch_concurrency.max(1))
            .collect()
            .await
    }

    /// Fetches and compiles one entry (used by `hex-cli catalog lint --fetch`).
    pub async fn load_entry(&self, entry: CatalogEntry) -> (CatalogEntry, Result<Arc<LoadedModel>, Vec<EntryError>>) {
        let load = self.load_entry_reusing(entry, None).await;
        (load.entry, load.result)
    }

    /// Fetches one entry's artifacts; reuses `previous` when nothing changed, else compiles.
    pub async fn load_entry_reusing(&self, entry: CatalogEntry, previous: Option<Arc<LoadedModel>>) -> EntryLoad {
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
                Err(error) => errors.push(fetch_error(&entry, kind, &error)),
            }
        }
        if !errors.is_empty() {
            return EntryLoad {
                entry,
                result: Err(errors),
                reused: false,
            };
        }
        if let Some(previous) = previous.filter(|p| unchanged(p, &entry, &artifacts)) {
            return EntryLoad {
                entry,
                result: Ok(previous),
                reused: true,
            };
        }

        // Compiling and hashing are CPU-bound (a 743 KB JSON Schema, a 1.2 MB shapes graph, 7 MB
        // to hash): keep them off the reactor so requests keep flowing during a refresh.
        let compiler = self.compiler.clone();
        let task_entry = entry.clone();
        let built = tokio::task::spawn_blocking(move || build_model(compiler.as_ref(), task_entry, artifacts)).await;
        let result = match built {
            Ok(result) => result.map(Arc::new),
            Err(join) => Err(vec![EntryError {
                model: entry.key.model.clone(),
                version: entry.key.version.clone(),
                artifact: None,
                message: format!("compiler failed: {join}"),
                transient: false,
            }]),
        };
        EntryLoad {
            entry,
            result,
            reused: false,
        }
    }
}

/// Same definition and byte-identical artifacts: nothing to compile.
fn unchanged(previous: &LoadedModel, entry: &CatalogEntry, artifacts: &ArtifactSet) -> bool {
    previous.entry == *entry
        && previous.artifacts.len() == artifacts.len()
        && artifacts.iter().all(|(kind, fetched)| {
            previous
                .artifacts
                .get(kind)
                .is_some_and(|loaded| same_bytes(&loaded.bytes, &fetched.bytes))
        })
}

/// A cache hit hands back the very same buffer; otherwise compare the contents.
fn same_bytes(a: &Bytes, b: &Bytes) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

fn build_model(
    compiler: &dyn ModelCompiler,
    entry: CatalogEntry,
    artifacts: ArtifactSet,
) -> Result<LoadedModel, Vec<EntryError>> {
    let compiled = compiler.compile(&entry, &artifacts).map_err(|error| {
        vec![EntryError {
            model: entry.key.model.clone(),
            version: entry.key.version.clone(),
            artifact: Some(error.artifact),
            message: error.to_string(),
            transient: false,
        }]
    })?;
    let loaded = artifacts
        .into_iter()
        .map(|(kind, artifact)| (kind, loaded_artifact(&entry, kind, artifact.url, artifact.bytes)))
        .collect();
    Ok(LoadedModel {
        entry,
        artifacts: loaded,
        compiled,
        loaded_at: OffsetDateTime::now_utc(),
        validation_cost: ValidationCost::default(),
    })
}

fn loaded_artifact(entry: &CatalogEntry, kind: ArtifactKind, fetched_url: String, bytes: Bytes) -> LoadedArtifact {
    let url = entry.artifacts.get(&kind).cloned().unwrap_or(fetched_url);
    LoadedArtifact {
        sha256: hex::encode(Sha256::digest(&bytes)),
        size_bytes: bytes.len(),
        content_type: kind.content_type(&url),
        url,
        bytes,
    }
}

fn fetch_error(entry: &CatalogEntry, kind: ArtifactKind, error: &FetchError) -> EntryError {
    EntryError {
        model: entry.key.model.clone(),
        version: entry.key.version.clone(),
        artifact: Some(kind),
        message: error.to_string(),
        transient: error.is_transient(),
    }
}
