//! Validate a payload against a loaded model version with every compiled validator.
//!
//! Validation is CPU-bound, so it runs on the validation threads (`validation_pool`: one per core,
//! the rest queue) under a time budget, so one heavy payload cannot stall the reactor or the other
//! requests. A running validation cannot be cancelled, so payloads with more JSON values than
//! `VALIDATION_MAX_NODES` are refused before any validator (the RDF mapping makes a node or a
//! triple of every value) sees them; one whose budget runs out while it queues is never run.
//!
//! Small payloads of a model whose recent validations were cheap validate on the reactor thread
//! that received them instead: there the hand-off to a validation thread and back costs about as
//! much CPU as the validation (two thread wake-ups and context switches against ~0.1 ms of
//! work). Both limits are kept small (`INLINE_MAX_NODES`, `INLINE_MAX_RECENT_COST`) so the time a
//! reactor thread is held stays in the same range as parsing and serialising a request; the first
//! validations of a model, large payloads, and any model whose average rises above the limit go
//! to the validation threads, under the time budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::report::ValidationReport;
use crate::metrics::Metrics;
use crate::ports::CompiledModel;
use crate::registry::LoadedModel;
use crate::usecases::validation_pool::{self, PoolError, ValidationPool};

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
pub const DEFAULT_MAX_NODES: usize = hex_core_settings::VALIDATION_MAX_NODES.default as usize;

/// Most JSON values a payload validated on the reactor thread may hold.
pub const INLINE_MAX_NODES: usize = 256;

/// Highest recent average validation time of a model whose small payloads validate on the
/// reactor thread.
pub const INLINE_MAX_RECENT_COST: Duration = Duration::from_micros(300);

/// A model's recent validation time: an exponentially weighted moving average (weight 1/8) of
/// every validation's duration, unknown until the first one. Updates race benignly.
#[derive(Debug)]
pub struct ValidationCost {
    average_nanos: AtomicU64,
}

const UNKNOWN_COST: u64 = u64::MAX;

impl Default for ValidationCost {
    fn default() -> Self {
        Self {
            average_nanos: AtomicU64::new(UNKNOWN_COST),
        }
    }
}

impl ValidationCost {
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(UNKNOWN_COST - 1);
        let average = self.average_nanos.load(Ordering::Relaxed);
        let next = if average == UNKNOWN_COST {
            nanos
        } else {
            average - average / 8 + nanos / 8
        };
        self.average_nanos.store(next, Ordering::Relaxed);
    }

    /// The recent average, `None` before the first validation.
    pub fn recent(&self) -> Option<Duration> {
        match self.average_nanos.load(Ordering::Relaxed) {
            UNKNOWN_COST => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn allows_inline(&self) -> bool {
        self.recent().is_some_and(|cost| cost <= INLINE_MAX_RECENT_COST)
    }
}

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
        let Some(nodes) = count_nodes(&payload, self.max_nodes) else {
            return Err(ValidateError::TooComplex { limit: self.max_nodes });
        };
        let started = Instant::now();
        // A model whose class is inferred per payload may compile a class's validators on its
        // first payload: never on the reactor.
        let inline =
            nodes <= INLINE_MAX_NODES && model.validation_cost.allows_inline() && model.compiled.inference.is_none();
        let report = if inline {
            let report = validation_pool::run_here(|| run_validators(&model, &payload));
            model.validation_cost.observe(started.elapsed());
            report
        } else {
            let task_model = model.clone();
            let task = self.pool.run(move || {
                let validating = Instant::now();
                let report = run_validators(&task_model, &payload);
                task_model.validation_cost.observe(validating.elapsed());
                report
            });
            tokio::time::timeout(self.budget, task)
                .await
                .map_err(|_| ValidateError::Timeout(self.budget))?
        }
        .map_err(|error: PoolError| ValidateError::Failed(error.to_string()))?;
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
    crate::validation::validate_compiled(compiled, payload)
}

/// Whether `value` holds more than `limit` JSON values; stops counting as soon as it does.
pub fn exceeds_nodes(value: &Value, limit: usize) -> bool {
    count_nodes(value, limit).is_none()
}

/// How many JSON values `value` holds, `None` as soon as that is more than `limit`.
pub fn count_nodes(value: &Value, limit: usize) -> Option<usize> {
    let mut count = 0usize;
    let mut stack = vec![value];
    while let Some(current) = stack.pop() {
        count += 1;
        if count > limit {
            return None;
        }
        match current {
            Value::Object(map) => stack.extend(map.values()),
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    Some(count)
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
        assert_eq!(count_nodes(&payload, 7), Some(7));
    }

    #[test]
    fn inline_validation_needs_a_known_low_recent_cost() {
        let cost = ValidationCost::default();
        assert!(!cost.allows_inline(), "unknown before the first validation");
        cost.observe(Duration::from_micros(100));
        assert!(cost.allows_inline());
        // One slow validation lifts the average above the limit: back to the validation threads.
        cost.observe(Duration::from_millis(5));
        assert!(!cost.allows_inline(), "{:?}", cost.recent());
        for _ in 0..40 {
            cost.observe(Duration::from_micros(100));
        }
        assert!(cost.allows_inline(), "{:?}", cost.recent());
    }
}
