//! Validate a payload against a loaded model version with every compiled validator.
//!
//! Validation is CPU-bound, so it runs on tokio's blocking pool behind a semaphore (at most one
//! validation per core in flight, the rest queue) and under a time budget, so one heavy payload
//! cannot stall the reactor or the other requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::domain::report::{ValidationReport, ValidatorResult};
use crate::metrics::Metrics;
use crate::ports::CompiledModel;
use crate::registry::LoadedModel;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    #[error("validation did not finish within {0:?}")]
    Timeout(Duration),
    #[error("validator failed: {0}")]
    Failed(String),
}

pub struct ValidationService {
    permits: Arc<Semaphore>,
    budget: Duration,
    metrics: Arc<Metrics>,
}

impl ValidationService {
    pub fn new(budget: Duration, metrics: Arc<Metrics>) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self {
            permits: Arc::new(Semaphore::new(cores.max(2))),
            budget,
            metrics,
        }
    }

    pub async fn validate(
        &self,
        model: Arc<LoadedModel>,
        payload: Arc<Value>,
    ) -> Result<ValidationReport, ValidateError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.budget;
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ValidateError::Timeout(self.budget))?
            .map_err(|e| ValidateError::Failed(e.to_string()))?;
        let task_model = model.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run_validators(&task_model, &payload)
        });
        let report = match tokio::time::timeout_at(deadline, task).await {
            Err(_) => return Err(ValidateError::Timeout(self.budget)),
            Ok(Err(join)) => return Err(ValidateError::Failed(join.to_string())),
            Ok(Ok(report)) => report,
        };
        self.record(&model, &report, started.elapsed());
        Ok(report)
    }

    fn record(&self, model: &LoadedModel, report: &ValidationReport, elapsed: Duration) {
        let key = &model.entry.key;
        let labels =
            |extra: (&'static str, String)| vec![("model", key.model.clone()), ("version", key.version.clone()), extra];
        let result = if report.passed { "passed" } else { "failed" };
        self.metrics
            .validation_requests
            .get_or_create(&labels(("result", result.into())))
            .inc();
        self.metrics
            .validation_duration
            .get_or_create(&vec![("model", key.model.clone()), ("version", key.version.clone())])
            .observe(elapsed.as_secs_f64());
        for validator in &report.validators {
            if !validator.violations.is_empty() {
                self.metrics
                    .validation_violations
                    .get_or_create(&labels(("validator", validator.kind.clone())))
                    .inc_by(validator.violations.len() as u64);
            }
        }
    }
}

/// Runs every validator of the model and merges their results.
pub fn run_validators(model: &LoadedModel, payload: &Value) -> ValidationReport {
    run_compiled(&model.compiled, payload)
}

/// The same, for a compiled model outside the registry (`hex-cli validate --offline`).
pub fn run_compiled(compiled: &CompiledModel, payload: &Value) -> ValidationReport {
    let results = compiled
        .validators
        .iter()
        .map(|validator| ValidatorResult::from_violations(validator.kind(), validator.validate(payload)))
        .collect();
    ValidationReport::merge(results)
}
