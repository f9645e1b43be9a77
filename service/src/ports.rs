//! Ports: the traits the core needs from the outside world. Adapters implement them at the edge.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::domain::catalog::CatalogEntry;
use crate::domain::model::ArtifactKind;
use crate::domain::report::Violation;

/// A fetched artifact: the bytes and where they came from.
#[derive(Debug, Clone)]
pub struct FetchedArtifact {
    pub url: String,
    pub bytes: Bytes,
    /// True when served from the artifact cache (within TTL or revalidated with 304).
    pub from_cache: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Policy(#[from] crate::registry::policy::PolicyViolation),
    #[error("{url}: redirect refused: {reason}")]
    Redirect { url: String, reason: String },
    #[error("{url}: timed out after {millis} ms")]
    Timeout { url: String, millis: u64 },
    #[error("{url}: larger than the {limit} byte limit (REGISTRY_ARTIFACT_MAX_BYTES)")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{path}: {message}")]
    Local { path: String, message: String },
}

/// Fetches artifact and catalog bytes under the URL policy.
pub trait ArtifactSource: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedArtifact, FetchError>>;
}

/// The artifacts of one entry, fetched and ready to compile.
pub type ArtifactSet = BTreeMap<ArtifactKind, FetchedArtifact>;

/// How the class that payloads validate as was chosen (visible in the model detail endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetClass {
    pub name: Option<String>,
    /// `catalog_root_class`, `linkml_tree_root`, `single_unreferenced_class`, `schema_root`, `unknown`.
    pub chosen_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{artifact}: {message}")]
pub struct CompileError {
    pub artifact: ArtifactKind,
    pub message: String,
}

/// A validator compiled once per catalog load; `validate` is pure and CPU-bound.
pub trait PayloadValidator: Send + Sync {
    fn kind(&self) -> &'static str;
    fn validate(&self, payload: &Value) -> Vec<Violation>;
}

/// Everything compiled from one entry's artifacts.
#[derive(Clone)]
pub struct CompiledModel {
    pub validators: Vec<Arc<dyn PayloadValidator>>,
    pub target_class: TargetClass,
    pub warnings: Vec<String>,
}

/// Turns fetched artifacts into validators. Runs on a blocking thread at load time.
pub trait ModelCompiler: Send + Sync {
    fn compile(&self, entry: &CatalogEntry, artifacts: &ArtifactSet) -> Result<CompiledModel, CompileError>;
}
