//! Record store adapters (`IO_ADAPTER_ID`): `memory`, `embedded` (redb on local disk), `http` (the
//! IO adapter contract) and `postgres`. Each implements the `RecordStore` port; `Instrumented` wraps
//! whichever is configured with the `io_adapter_*` metrics.

pub mod embedded;
pub mod http;
pub mod memory;
pub mod postgres;

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

use crate::domain::query::Query;
use crate::domain::record::{CreateOutcome, NewRecord, Record, RecordScope};
use crate::metrics::Metrics;
use crate::ports::{CallerToken, RecordStore, StoreError, StoreHealth};

/// Wraps a store with `io_adapter_requests_total`, `io_adapter_request_duration_seconds` and
/// `io_adapter_errors_total` (labels: `adapter`, `operation`; errors also `kind`). Only failures of
/// the store itself count as errors; an idempotency conflict or a duplicate id is a correct answer.
pub struct Instrumented {
    inner: Arc<dyn RecordStore>,
    adapter: &'static str,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn RecordStore>, adapter: &'static str, metrics: Arc<Metrics>) -> Self {
        // Zero error series from the start: an alert's `increase()` cannot see a series' first
        // sample, so a counter created by the first failure would hide it.
        for operation in ["create", "get", "query"] {
            let _ = metrics.io_adapter_errors.get_or_create(&vec![
                ("adapter", adapter.to_string()),
                ("operation", operation.to_string()),
                ("kind", "unavailable".to_string()),
            ]);
        }
        Self {
            inner,
            adapter,
            metrics,
        }
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        call: BoxFuture<'_, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let labels = vec![
            ("adapter", self.adapter.to_string()),
            ("operation", operation.to_string()),
        ];
        self.metrics.io_adapter_requests.get_or_create(&labels).inc();
        self.metrics
            .io_adapter_request_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if let Err(error @ StoreError::Unavailable(_)) = &result {
            let mut labels = labels;
            labels.push(("kind", error.kind().to_string()));
            self.metrics.io_adapter_errors.get_or_create(&labels).inc();
            tracing::warn!(adapter = self.adapter, operation, error = %error, "record store call failed");
        }
        result
    }
}

impl RecordStore for Instrumented {
    fn create<'a>(
        &'a self,
        caller: &'a CallerToken,
        new: NewRecord,
    ) -> BoxFuture<'a, Result<CreateOutcome, StoreError>> {
        Box::pin(self.observe("create", self.inner.create(caller, new)))
    }

    fn get<'a>(
        &'a self,
        caller: &'a CallerToken,
        scope: &'a RecordScope,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(self.observe("get", self.inner.get(caller, scope, id)))
    }

    fn query<'a>(
        &'a self,
        caller: &'a CallerToken,
        scope: &'a RecordScope,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Record>, StoreError>> {
        Box::pin(self.observe("query", self.inner.query(caller, scope, query)))
    }

    fn health(&self) -> StoreHealth {
        self.inner.health()
    }
}
