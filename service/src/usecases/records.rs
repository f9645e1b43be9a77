//! Create, read and query records: the rules around the `RecordStore` port (idempotency key
//! required, validation before any write, record ids), independent of HTTP and of the adapter.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::payload::{Payload, PayloadError};
use crate::domain::query::Query;
use crate::domain::record::{
    CreateOutcome, IdempotencyKey, NewRecord, Record, RecordRuleError, RecordScope, record_id_for, truncate_to_micros,
};
use crate::domain::report::ValidationReport;
use crate::metrics::Metrics;
use crate::ports::{CallerToken, RecordStore, StoreError};
use crate::registry::LoadedModel;
use crate::usecases::validate::{ValidateError, ValidationService};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Rule(#[from] RecordRuleError),
    #[error("{0}")]
    Payload(#[from] PayloadError),
    #[error("the payload does not validate against the model")]
    Invalid(Box<ValidationReport>),
    #[error("{0}")]
    Validate(#[from] ValidateError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

pub struct RecordService {
    store: Arc<dyn RecordStore>,
    metrics: Arc<Metrics>,
}

impl RecordService {
    pub fn new(store: Arc<dyn RecordStore>, metrics: Arc<Metrics>) -> Self {
        Self { store, metrics }
    }

    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    /// Checks the key and what the stores can hold, validates, then writes (or replays). Nothing
    /// is written when the payload fails validation.
    pub async fn create(
        &self,
        validation: &ValidationService,
        model: Arc<LoadedModel>,
        scope: RecordScope,
        caller: &CallerToken,
        idempotency_key: Option<&str>,
        payload: Payload,
    ) -> Result<CreateOutcome, RecordError> {
        let idempotency_key = IdempotencyKey::parse(idempotency_key)?;
        payload.check_storable()?;
        let report = validation.validate(model, payload.shared_value()).await?;
        if !report.passed {
            return Err(RecordError::Invalid(Box::new(report)));
        }
        self.write(scope, caller, idempotency_key, payload).await
    }

    /// The write half of `create`, for payloads already validated (benchmarks call it directly).
    /// The storage rules apply here too, so no caller can hand a store what another would refuse.
    pub async fn write(
        &self,
        scope: RecordScope,
        caller: &CallerToken,
        idempotency_key: IdempotencyKey,
        payload: Payload,
    ) -> Result<CreateOutcome, RecordError> {
        payload.check_storable()?;
        let id = record_id_for(&payload)?;
        let now = truncate_to_micros(OffsetDateTime::now_utc());
        let new = NewRecord {
            payload_sha256: payload.sha256(),
            record: Record {
                id,
                model: scope.model.clone(),
                version: scope.version.clone(),
                payload,
                created_at: now,
                updated_at: now,
            },
            scope,
            idempotency_key,
        };
        let result = self.store.create(caller, new).await;
        if matches!(result, Err(StoreError::IdempotencyConflict)) {
            self.metrics.idempotency_conflicts.inc();
        }
        Ok(result?)
    }

    pub async fn get(&self, scope: &RecordScope, caller: &CallerToken, id: &str) -> Result<Record, RecordError> {
        if id.contains('\0') {
            // No record id holds U+0000 (ids refuse control characters), and PostgreSQL cannot
            // compare with one: answer without asking the store.
            return Err(RecordError::Store(StoreError::NotFound { id: id.to_string() }));
        }
        self.store
            .get(caller, scope, id)
            .await?
            .ok_or_else(|| RecordError::Store(StoreError::NotFound { id: id.to_string() }))
    }

    pub async fn query(
        &self,
        scope: &RecordScope,
        caller: &CallerToken,
        query: &Query,
    ) -> Result<Vec<Record>, RecordError> {
        Ok(self.store.query(caller, scope, query).await?)
    }
}
