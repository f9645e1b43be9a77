//! Validate a payload against a loaded model version with every compiled validator.
//!
//! Validation is CPU-bound, so it runs on the validation threads (`validation_pool`: one per core,
//! the rest queue) under a time budget, so one heavy payload cannot stall the reactor or the other
//! requests. A running validation cannot be cancelled, so payloads with more JSON values than
//! `VALIDATION_MAX_NODES` are refused before any validator (the RDF mapping makes a node or a
//! triple of every value) sees them; one whose budget runs out while it queues is never run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::report::{ValidationReport, ValidatorResult};
use crate::metrics::Metrics;
use crate::ports::CompiledModel;
use crate::registry::LoadedModel;
use crate::usecases::validation_pool::{PoolError, ValidationPool};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    #[error("validation did not finish within {0:?}")]
    Timeout(Duration),
    #[error("validator failed: {0}")]
    Failed(String),
    #[error("the payload has more than {limit} JSON values")]
    TooComplex { limit: usize },
}

/// Default of `VALIDATION_MAX_NODES`.
pub const DEFAULT_MAX_NODES: usize = 50_000;

pub struct ValidationService {
    pool: ValidationPool,
    budget: Duration,
    metrics: Arc<Metrics>,
    max_nodes: usize,
}

impl ValidationService {
    /// Starts one validation thread per core (at least two).
    pub fn new(budget: Duration, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            pool: ValidationPool::new(cores.max(2))?,
            budget,
            metrics,
            max_nodes: DEFAULT_MAX_NODES,
        })
    }

    pub fn with_max_nodes(mut self, max_nodes: usize) -> Self {
        self.max_nodes = max_nodes;
        self
    }

    pub async fn validate(
        &self,
        model: Arc<LoadedModel>,
        payload: Arc<Value>,
    ) -> Result<ValidationReport, ValidateError> {
        if exceeds_nodes(&payload, self.max_nodes) {
            return Err(ValidateError::TooComplex { limit: self.max_nodes });
        }
        let started = Instant::now();
        let task_model = model.clone();
        let task = self.pool.run(move || run_validators(&task_model, &payload));
        let report = match tokio::time::timeout(self.budget, task).await {
            Err(_) => return Err(ValidateError::Timeout(self.budget)),
            Ok(Err(error @ (PoolError::Stopped | PoolError::Panicked(_)))) => {
                return Err(ValidateError::Failed(error.to_string()));
            }
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

/// Whether `value` holds more than `limit` JSON values; stops counting as soon as it does.
pub fn exceeds_nodes(value: &Value, limit: usize) -> bool {
    let mut count = 0usize;
    let mut stack = vec![value];
    while let Some(current) = stack.pop() {
        count += 1;
        if count > limit {
            return true;
        }
        match current {
            Value::Object(map) => stack.extend(map.values()),
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_count_includes_every_value_and_stops_at_the_limit() {
        let payload = json!({"a": [1, 2, {"b": null}], "c": "x"});
        // root, a, 1, 2, {b}, null, c = 7 values
        assert!(!exceeds_nodes(&payload, 7));
        assert!(exceeds_nodes(&payload, 6));
        let wide = Value::Array(vec![json!(0); 1_000_000]);
        assert!(exceeds_nodes(&wide, 10));
    }
}
