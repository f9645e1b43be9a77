//! The operator's Prometheus metrics. Labels are bounded: controller names, object kinds and
//! fixed outcome words, never object names.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
}

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
        }
        metrics
    }

    pub fn write(&self, kind: &str) {
        self.writes.get_or_create(&vec![("kind", kind.to_string())]).inc();
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

#[cfg(test)]
mod tests {
    use super::*;

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
