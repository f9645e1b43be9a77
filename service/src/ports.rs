//! Ports: the traits the core needs from the outside world. Adapters implement them at the edge.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::domain::catalog::CatalogEntry;
use crate::domain::model::ArtifactKind;
use crate::domain::query::Query;
use crate::domain::record::{CreateOutcome, NewRecord, Record, RecordScope};
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

impl FetchError {
    /// Whether trying again later can succeed without anyone changing the catalog or the
    /// artifact: the host was unreachable, slow, overloaded or briefly failing (transport errors,
    /// timeouts, 5xx, 408, 429). A refused URL, a refused redirect, a size over the limit, a local
    /// file that cannot be read and every other status (404, 410, 403, ...) stay as they are until
    /// something changes, so they are not retried on their own.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::Policy(_) | Self::Redirect { .. } | Self::TooLarge { .. } | Self::Local { .. } => false,
        }
    }
}

/// Fetches artifact and catalog bytes under the URL policy.
pub trait ArtifactSource: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedArtifact, FetchError>>;
}

/// The artifacts of one entry, fetched and ready to compile.
pub type ArtifactSet = BTreeMap<ArtifactKind, FetchedArtifact>;

pub use crate::domain::report::TargetClass;

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

/// The validators of one payload's class, compiled on first use, for models whose catalog entry
/// and schema name no class (see docs/validation.md, "Target class").
pub trait TargetInference: Send + Sync {
    /// The class inferred for `payload` and the validators compiled for it; or, when no single
    /// class fits, the record saying why (the model's own validators then run and report it).
    fn validators_for(&self, payload: &Value) -> Result<(TargetClass, ValidatorSet), TargetClass>;
}

pub type ValidatorSet = Arc<[Arc<dyn PayloadValidator>]>;

/// Everything compiled from one entry's artifacts.
#[derive(Clone)]
pub struct CompiledModel {
    pub validators: Vec<Arc<dyn PayloadValidator>>,
    pub target_class: TargetClass,
    pub warnings: Vec<String>,
    /// Set when the class is chosen per payload; `validators` are then what runs when no class fits.
    pub inference: Option<Arc<dyn TargetInference>>,
}

/// Turns fetched artifacts into validators. Runs on a blocking thread at load time.
pub trait ModelCompiler: Send + Sync {
    fn compile(&self, entry: &CatalogEntry, artifacts: &ArtifactSet) -> Result<CompiledModel, CompileError>;
}

/// Why a record store call failed. Idempotency and existence outcomes are typed; everything else
/// is the store being unreachable or broken (`Unavailable`), which the edge maps to 502.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the Idempotency-Key was already used with a different payload")]
    IdempotencyConflict,
    #[error("a record with id {id:?} already exists")]
    RecordExists { id: String },
    #[error("record {id:?} not found")]
    NotFound { id: String },
    #[error("record store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::RecordExists { .. } => "record_exists",
            Self::NotFound { .. } => "not_found",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Whether a store can take writes, for `/admin/ready`. Stores whose failures are per call (a
/// database or service that answers again later) are always ready; the `embedded` store is not
/// while its database is closed after an I/O error and cannot be reopened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl StoreHealth {
    pub fn ready() -> Self {
        Self {
            ready: true,
            detail: None,
        }
    }
}

/// Credentials of the caller that a store may pass on (the HTTP adapter forwards the bearer token).
/// `Debug` never prints the token.
#[derive(Clone, Default)]
pub struct CallerToken(pub Option<String>);

impl std::fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "CallerToken(<redacted>)"
        } else {
            "CallerToken(None)"
        })
    }
}

/// The port every IO adapter implements. A create is atomic with its idempotency key: same key and
/// same payload hash returns the first record (`replayed`), same key and another hash is
/// `IdempotencyConflict`, and concurrent creates with one key write exactly one record.
pub trait RecordStore: Send + Sync {
    fn create<'a>(
        &'a self,
        caller: &'a CallerToken,
        new: NewRecord,
    ) -> BoxFuture<'a, Result<CreateOutcome, StoreError>>;

    /// `Ok(None)` when no record has this id in the scope.
    fn get<'a>(
        &'a self,
        caller: &'a CallerToken,
        scope: &'a RecordScope,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;

    fn query<'a>(
        &'a self,
        caller: &'a CallerToken,
        scope: &'a RecordScope,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Record>, StoreError>>;

    /// Cheap (no I/O): read by every `/admin/ready`.
    fn health(&self) -> StoreHealth {
        StoreHealth::ready()
    }
}
