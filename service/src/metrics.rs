//! Prometheus metrics with the names of the reference runbook. Every label is bounded: methods are
//! the nine of RFC 9110 or `_OTHER` (as in OpenTelemetry's HTTP conventions), routes are the
//! matched route templates or `unmatched`, statuses are three digits, models come from the
//! catalog; never raw request paths or methods, so a client cannot create series at will.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::model::ArtifactKind;
use crate::ports::{FetchError, FetchedArtifact};

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~26 s: covers an admin probe and a slow artifact fetch alike.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<Labels, Counter>,
    pub http_request_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub http_requests_in_flight: Gauge,
    pub validation_requests: Family<Labels, Counter>,
    pub validation_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub validation_violations: Family<Labels, Counter>,
    pub registry_models_loaded: Gauge,
    /// Catalog entries by state (`loaded`, `stale`, `failed`).
    pub registry_entries: Family<Labels, Gauge>,
    pub registry_entry_retries: Family<Labels, Counter>,
    pub registry_refresh: Family<Labels, Counter>,
    pub registry_refresh_duration: Histogram,
    pub registry_artifact_fetch: Family<Labels, Counter>,
    pub io_adapter_requests: Family<Labels, Counter>,
    pub io_adapter_request_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub io_adapter_errors: Family<Labels, Counter>,
    pub idempotency_conflicts: Counter,
    pub http_connections_open: Family<Labels, Gauge>,
    pub http_connections_closed: Family<Labels, Counter>,
    pub http_connection_limit_reached: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Self {
            registry: Mutex::new(Registry::default()),
            http_requests: Family::default(),
            http_request_duration: Family::new_with_constructor(latency_histogram),
            http_requests_in_flight: Gauge::default(),
            validation_requests: Family::default(),
            validation_duration: Family::new_with_constructor(latency_histogram),
            validation_violations: Family::default(),
            registry_models_loaded: Gauge::default(),
            registry_entries: Family::default(),
            registry_entry_retries: Family::default(),
            registry_refresh: Family::default(),
            registry_refresh_duration: latency_histogram(),
            registry_artifact_fetch: Family::default(),
            io_adapter_requests: Family::default(),
            io_adapter_request_duration: Family::new_with_constructor(latency_histogram),
            io_adapter_errors: Family::default(),
            idempotency_conflicts: Counter::default(),
            http_connections_open: Family::default(),
            http_connections_closed: Family::default(),
            http_connection_limit_reached: Family::default(),
        };
        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route",
            metrics.http_request_duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            metrics.http_requests_in_flight.clone(),
        );
        registry.register(
            "validation_requests",
            "Validations by model, version and result",
            metrics.validation_requests.clone(),
        );
        registry.register(
            "validation_duration_seconds",
            "Time spent validating a payload",
            metrics.validation_duration.clone(),
        );
        registry.register(
            "validation_violations",
            "Violations reported, by model, version and validator",
            metrics.validation_violations.clone(),
        );
        registry.register(
            "registry_models_loaded",
            "Model versions in the active snapshot",
            metrics.registry_models_loaded.clone(),
        );
        registry.register(
            "registry_entries",
            "Catalog entries by state: loaded, stale (an earlier load of the same version is served) or failed",
            metrics.registry_entries.clone(),
        );
        registry.register(
            "registry_entry_retries",
            "Automatic retries of failed and stale catalog entries by result",
            metrics.registry_entry_retries.clone(),
        );
        registry.register(
            "registry_refresh",
            "Registry loads by result",
            metrics.registry_refresh.clone(),
        );
        registry.register(
            "registry_refresh_duration_seconds",
            "Registry load time including fetch and compile",
            metrics.registry_refresh_duration.clone(),
        );
        registry.register(
            "registry_artifact_fetch",
            "Artifact fetches by artifact kind and result",
            metrics.registry_artifact_fetch.clone(),
        );
        registry.register(
            "io_adapter_requests",
            "IO adapter calls by adapter and operation",
            metrics.io_adapter_requests.clone(),
        );
        registry.register(
            "io_adapter_request_duration_seconds",
            "IO adapter call latency",
            metrics.io_adapter_request_duration.clone(),
        );
        registry.register(
            "io_adapter_errors",
            "IO adapter calls that failed",
            metrics.io_adapter_errors.clone(),
        );
        registry.register(
            "idempotency_conflicts",
            "Creates refused because an Idempotency-Key was reused with another payload",
            metrics.idempotency_conflicts.clone(),
        );
        registry.register(
            "http_connections_open",
            "Client connections open, by port (main, management)",
            metrics.http_connections_open.clone(),
        );
        registry.register(
            "http_connections_closed",
            "Connections the server closed on its own, by port and reason (header_timeout, idle_timeout, \
             no_request, write_stalled, connection_limit, malformed_request)",
            metrics.http_connections_closed.clone(),
        );
        registry.register(
            "http_connection_limit_reached",
            "Times a port had SERVER_MAX_CONNECTIONS connections open and new ones had to wait",
            metrics.http_connection_limit_reached.clone(),
        );
        // Both results exist from the start: `increase()` cannot see a series' first sample, so a
        // counter created by the first failure would hide that failure from the alert.
        for result in ["success", "error"] {
            let _ = metrics
                .registry_refresh
                .get_or_create(&vec![("result", result.to_string())]);
        }
        for result in ["loaded", "failed"] {
            let _ = metrics
                .registry_entry_retries
                .get_or_create(&vec![("result", result.to_string())]);
        }
        *metrics.registry.lock().expect("metrics registry") = registry;
        metrics
    }

    /// Registers the JWKS metrics: only a service with `AUTH_MODE=jwt_jwks` has them, so an alert
    /// on a stale key set never fires for a service that verifies no JWTs.
    pub fn register_jwks(&self) -> JwksMetrics {
        let jwks = JwksMetrics::default();
        for result in ["success", "error"] {
            let _ = jwks.fetches.get_or_create(&vec![("result", result.to_string())]);
        }
        let mut registry = self.registry.lock().expect("metrics registry");
        registry.register(
            "auth_jwks_fetches",
            "JWKS fetches from the identity provider by result (success, error)",
            jwks.fetches.clone(),
        );
        registry.register(
            "auth_jwks_last_success_timestamp_seconds",
            "Unix time of the last successful JWKS fetch; 0 until one succeeds",
            jwks.last_success.clone(),
        );
        registry.register("auth_jwks_keys", "Signing keys in use", jwks.keys.clone());
        jwks
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry.lock().expect("metrics registry")).expect("encoding to a String cannot fail");
        out
    }

    pub fn record_refresh(&self, result: &'static str, elapsed: Duration) {
        self.registry_refresh
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        self.registry_refresh_duration.observe(elapsed.as_secs_f64());
    }

    /// After every snapshot store: model versions served and entries per state.
    pub fn record_registry_entries(&self, served: usize, counts: &crate::registry::state::EntryCounts) {
        self.registry_models_loaded.set(served as i64);
        for (state, count) in [
            ("loaded", counts.loaded),
            ("stale", counts.stale),
            ("failed", counts.failed),
        ] {
            self.registry_entries
                .get_or_create(&vec![("state", state.to_string())])
                .set(count as i64);
        }
    }

    pub fn record_entry_retry(&self, result: &'static str) {
        self.registry_entry_retries
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    pub fn record_artifact_fetch(&self, kind: ArtifactKind, result: &Result<FetchedArtifact, FetchError>) {
        let outcome = match result {
            Ok(a) if a.from_cache => "cache_hit",
            Ok(_) => "success",
            Err(_) => "error",
        };
        self.registry_artifact_fetch
            .get_or_create(&vec![
                ("artifact", kind.as_str().to_string()),
                ("result", outcome.to_string()),
            ])
            .inc();
    }

    /// `route` must be a route template or `unmatched`, never a request path.
    pub fn record_http(&self, method: &http::Method, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        self.http_requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_request_duration
            .get_or_create(&vec![("method", method.to_string()), ("route", route.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    /// Zero series for a port that starts serving, so its connection counters exist before the
    /// first event (an alert's `increase()` then sees that event) and dashboards show 0, not
    /// "no data". `closed_reasons` are every reason `record_connection_closed` may be given.
    pub fn start_port(&self, port: &'static str, closed_reasons: &[&'static str]) {
        let _ = self.connections_open(port);
        let _ = self
            .http_connection_limit_reached
            .get_or_create(&vec![("port", port.to_string())]);
        for reason in closed_reasons {
            let _ = self
                .http_connections_closed
                .get_or_create(&vec![("port", port.to_string()), ("reason", reason.to_string())]);
        }
    }

    pub fn connections_open(&self, port: &'static str) -> Gauge {
        self.http_connections_open
            .get_or_create(&vec![("port", port.to_string())])
            .clone()
    }

    pub fn record_connection_closed(&self, port: &'static str, reason: &'static str) {
        self.http_connections_closed
            .get_or_create(&vec![("port", port.to_string()), ("reason", reason.to_string())])
            .inc();
    }

    pub fn record_connection_limit_reached(&self, port: &'static str) {
        self.http_connection_limit_reached
            .get_or_create(&vec![("port", port.to_string())])
            .inc();
    }
}

/// The JWKS cache's metrics (`auth::jwks::store`). `Default` gives unregistered ones, for a key
/// store nobody scrapes (benchmarks).
#[derive(Clone, Default)]
pub struct JwksMetrics {
    fetches: Family<Labels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    keys: Gauge,
}

impl JwksMetrics {
    pub fn record_success(&self, keys: usize, at: SystemTime) {
        self.fetch_result("success");
        let unix = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.last_success.set(unix.as_secs_f64());
        self.keys.set(keys as i64);
    }

    /// A failed fetch keeps the last good keys, so `keys` stays as it was.
    pub fn record_failure(&self) {
        self.fetch_result("error");
    }

    fn fetch_result(&self, result: &'static str) {
        self.fetches.get_or_create(&vec![("result", result.to_string())]).inc();
    }
}

/// The `method` label: one of RFC 9110's methods, or `_OTHER` for any extension method.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_reference_metric_names() {
        let metrics = Metrics::new();
        metrics.record_http(&http::Method::GET, "/models", 200, Duration::from_millis(1));
        metrics.record_refresh("success", Duration::from_millis(5));
        metrics.idempotency_conflicts.inc();
        metrics.record_registry_entries(
            3,
            &crate::registry::state::EntryCounts {
                total: 4,
                loaded: 2,
                stale: 1,
                failed: 1,
            },
        );
        metrics.record_entry_retry("loaded");
        let text = metrics.render();
        for name in [
            "http_requests_total{",
            "http_request_duration_seconds_bucket",
            "http_requests_in_flight",
            "registry_refresh_total{result=\"success\"} 1",
            "registry_refresh_duration_seconds_count 1",
            "registry_models_loaded 3",
            "registry_entries{state=\"stale\"} 1",
            "registry_entries{state=\"failed\"} 1",
            "registry_entry_retries_total{result=\"loaded\"} 1",
            "idempotency_conflicts_total 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn jwks_metrics_exist_only_once_registered() {
        let metrics = Metrics::new();
        assert!(!metrics.render().contains("auth_jwks"));

        let jwks = metrics.register_jwks();
        let text = metrics.render();
        assert!(text.contains("auth_jwks_last_success_timestamp_seconds 0.0"), "{text}");
        assert!(text.contains("auth_jwks_keys 0"), "{text}");
        assert!(text.contains("auth_jwks_fetches_total{result=\"error\"} 0"), "{text}");

        jwks.record_failure();
        jwks.record_success(2, UNIX_EPOCH + Duration::from_millis(1_700_000_000_500));
        jwks.record_failure();
        let text = metrics.render();
        for line in [
            "auth_jwks_fetches_total{result=\"success\"} 1",
            "auth_jwks_fetches_total{result=\"error\"} 2",
            "auth_jwks_last_success_timestamp_seconds 1700000000.5",
            "auth_jwks_keys 2",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn refresh_results_start_at_zero_so_the_first_failure_is_an_increase() {
        let text = Metrics::new().render();
        assert!(text.contains("registry_refresh_total{result=\"error\"} 0"), "{text}");
        assert!(text.contains("registry_refresh_total{result=\"success\"} 0"), "{text}");
    }

    #[test]
    fn a_started_port_has_zero_connection_series() {
        let metrics = Metrics::new();
        metrics.start_port("management", &["idle_timeout", "malformed_request"]);
        let text = metrics.render();
        for line in [
            "http_connections_open{port=\"management\"} 0",
            "http_connection_limit_reached_total{port=\"management\"} 0",
            "http_connections_closed_total{port=\"management\",reason=\"idle_timeout\"} 0",
            "http_connections_closed_total{port=\"management\",reason=\"malformed_request\"} 0",
            "registry_entry_retries_total{result=\"failed\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn extension_methods_share_one_label() {
        let metrics = Metrics::new();
        for i in 0..1000 {
            let method = http::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            metrics.record_http(&method, "unmatched", 405, Duration::from_millis(1));
        }
        metrics.record_http(&http::Method::PATCH, "unmatched", 405, Duration::from_millis(1));
        let text = metrics.render();
        assert!(
            text.contains("http_requests_total{method=\"_OTHER\",route=\"unmatched\",status=\"405\"} 1000"),
            "{text}"
        );
        assert_eq!(text.matches("http_requests_total{").count(), 2, "{text}");
    }
}
