//! The operator's Prometheus metrics. Labels are bounded: controller names, object kinds and
//! fixed outcome words, never object names, with one exception: `service_condition` has one
//! series per HexCoreService and condition type (as kube-state-metrics does for Pods), because
//! "which service is not Ready" is what an alert must say; its series go when the object does.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::conditions;

type Labels = Vec<(&'static str, String)>;

fn duration_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    /// Reconciles by controller (`hexcoreservice`, `modelcatalog`).
    pub reconciles: Family<Labels, Counter>,
    /// Failed reconciles by controller and reason.
    pub reconcile_errors: Family<Labels, Counter>,
    pub reconcile_duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// Server-side applies, creates and status patches actually sent, by kind.
    pub writes: Family<Labels, Counter>,
    /// Per-replica refresh outcomes (`already_current`, `refreshed`, `stale`, `failed`).
    pub refreshes: Family<Labels, Counter>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    /// Failed lists and watches by controller. A 403 means the operator's RBAC lacks a resource
    /// it watches (an older ClusterRole): it then never sees those objects.
    pub watch_errors: Family<Labels, Counter>,
    /// Not a metric: the time of the last failed list or watch, for `/readyz`. It lives here
    /// because the controllers and the HTTP endpoints already share this object.
    pub watch_health: crate::watch_health::WatchHealth,
    /// 1 while a HexCoreService's condition of this type is True, 0 while False or Unknown, by
    /// namespace, hexcoreservice (its name) and type (Ready, CatalogSynced, Progressing, Degraded,
    /// ReconciliationPaused), as the last status this replica wrote or found.
    pub service_condition: Family<Labels, Gauge>,
}

/// The condition types `service_condition` reports: the ones alerts and dashboards read. A type
/// missing from a status is reported as 0, so `== 0` also catches a service never reconciled.
pub const SERVICE_CONDITION_TYPES: [&str; 5] = [
    conditions::READY,
    conditions::CATALOG_SYNCED,
    conditions::PROGRESSING,
    conditions::DEGRADED,
    conditions::RECONCILIATION_PAUSED,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Self {
            registry: Mutex::new(Registry::with_prefix("hexcore_operator")),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(duration_histogram),
            writes: Family::default(),
            refreshes: Family::default(),
            leader: Gauge::default(),
            watch_errors: Family::default(),
            watch_health: Default::default(),
            service_condition: Family::default(),
        };
        {
            let mut registry = metrics.registry.lock().unwrap_or_else(|e| e.into_inner());
            registry.register("reconciles", "Reconciles by controller", metrics.reconciles.clone());
            registry.register(
                "reconcile_errors",
                "Failed reconciles by controller and reason",
                metrics.reconcile_errors.clone(),
            );
            registry.register(
                "reconcile_duration_seconds",
                "Reconcile duration by controller",
                metrics.reconcile_duration.clone(),
            );
            registry.register("writes", "API writes sent, by kind", metrics.writes.clone());
            registry.register(
                "catalog_refreshes",
                "Per-replica catalog refresh outcomes",
                metrics.refreshes.clone(),
            );
            registry.register("leader", "1 while this replica leads", metrics.leader.clone());
            registry.register(
                "watch_errors",
                "Failed lists and watches by controller (403: the RBAC lacks a watched resource)",
                metrics.watch_errors.clone(),
            );
            // At 0 from the start: Prometheus' increase() cannot see a counter's first sample,
            // so a series born at 1 would hide a first failure from HexCoreOperatorWatchErrors.
            for controller in ["hexcoreservice", "modelcatalog"] {
                metrics
                    .watch_errors
                    .get_or_create(&vec![("controller", controller.to_string())])
                    .inc_by(0);
            }
            registry.register(
                "service_condition",
                "HexCoreService status conditions: 1 while True, by namespace, hexcoreservice and type",
                metrics.service_condition.clone(),
            );
        }
        metrics
    }

    pub fn write(&self, kind: &str) {
        self.writes.get_or_create(&vec![("kind", kind.to_string())]).inc();
    }

    /// Sets `service_condition` for one HexCoreService from its status conditions.
    pub fn record_service_conditions(
        &self,
        namespace: &str,
        name: &str,
        status_conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ) {
        for type_ in SERVICE_CONDITION_TYPES {
            let is_true = conditions::is_true(status_conditions, type_);
            self.service_condition
                .get_or_create(&condition_labels(namespace, name, type_))
                .set(i64::from(is_true));
        }
    }

    /// Drops a deleted HexCoreService's `service_condition` series.
    pub fn forget_service(&self, namespace: &str, name: &str) {
        for type_ in SERVICE_CONDITION_TYPES {
            self.service_condition.remove(&condition_labels(namespace, name, type_));
        }
    }

    /// Drops every `service_condition` series: a replica that stops leading no longer knows them,
    /// and the new leader reports them (two replicas' series would double every alert).
    pub fn forget_all_services(&self) {
        self.service_condition.clear();
    }

    /// Total writes sent so far (all kinds).
    pub fn total_writes(&self) -> u64 {
        let text = self.render();
        text.lines()
            .filter(|l| l.starts_with("hexcore_operator_writes_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = encode(&mut out, &registry);
        out
    }
}

fn condition_labels(namespace: &str, name: &str, type_: &str) -> Labels {
    vec![
        ("namespace", namespace.to_string()),
        ("hexcoreservice", name.to_string()),
        ("type", type_.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: "Test".to_string(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }
    }

    #[test]
    fn service_conditions_are_one_while_true_and_zero_otherwise() {
        let m = Metrics::new();
        m.record_service_conditions(
            "prod",
            "api",
            &[condition("Ready", "True"), condition("CatalogSynced", "False")],
        );
        let text = m.render();
        for line in [
            "hexcore_operator_service_condition{namespace=\"prod\",hexcoreservice=\"api\",type=\"Ready\"} 1",
            "hexcore_operator_service_condition{namespace=\"prod\",hexcoreservice=\"api\",type=\"CatalogSynced\"} 0",
            // Missing from the status: reported, as not True.
            "hexcore_operator_service_condition{namespace=\"prod\",hexcoreservice=\"api\",type=\"Degraded\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }

        m.record_service_conditions("prod", "api", &[condition("Ready", "Unknown")]);
        assert!(m.render().contains(
            "hexcore_operator_service_condition{namespace=\"prod\",hexcoreservice=\"api\",type=\"Ready\"} 0"
        ));
    }

    #[test]
    fn a_forgotten_service_has_no_condition_series_left() {
        let m = Metrics::new();
        m.record_service_conditions("prod", "api", &[condition("Ready", "True")]);
        m.record_service_conditions("prod", "batch", &[condition("Ready", "True")]);
        m.forget_service("prod", "api");
        let text = m.render();
        assert!(!text.contains("hexcoreservice=\"api\""), "{text}");
        assert_eq!(
            text.matches("hexcoreservice=\"batch\"").count(),
            SERVICE_CONDITION_TYPES.len(),
            "{text}"
        );
        m.forget_all_services();
        assert!(!m.render().contains("hexcoreservice=\"batch\""));
    }

    #[test]
    fn renders_prometheus_text_with_the_operator_prefix() {
        let m = Metrics::new();
        m.reconciles
            .get_or_create(&vec![("controller", "hexcoreservice".into())])
            .inc();
        m.write("Deployment");
        m.write("ConfigMap");
        m.write("ConfigMap");
        let text = m.render();
        assert!(
            text.contains("hexcore_operator_reconciles_total{controller=\"hexcoreservice\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hexcore_operator_writes_total{kind=\"ConfigMap\"} 2"),
            "{text}"
        );
        assert_eq!(m.total_writes(), 3);
    }
}
