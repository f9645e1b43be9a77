//! Whether the controllers' lists and watches work, for `/readyz`.
//!
//! kube-runtime retries a failed list or watch with backoff (at most ~30 s apart) and never
//! reports a recovery, so "healthy" is "no failure within [`WINDOW`]". A replica whose watches
//! are refused (a ClusterRole older than the operator, a NetworkPolicy cutting the API server)
//! then reports not ready: `helm upgrade --wait` and `kubectl rollout status` fail instead of
//! succeeding on an operator that sees nothing. Standby replicas run no watches and stay ready.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longer than kube-runtime's largest gap between two watch retries (its default backoff caps
/// the delay at 30 s and adds up to as much again as jitter: 60 s), so a persistent failure
/// never looks healthy between two retries; short enough that a fixed ClusterRole shows within
/// two minutes.
pub const WINDOW: Duration = Duration::from_secs(90);

#[derive(Debug, Default)]
pub struct WatchHealth {
    last_failure: Mutex<Option<Failure>>,
}

#[derive(Debug, Clone)]
struct Failure {
    at: Instant,
    controller: &'static str,
    error: String,
}

impl WatchHealth {
    pub fn record_failure(&self, controller: &'static str, error: String, at: Instant) {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(Failure { at, controller, error });
    }

    /// One sentence for `/readyz` when a list or watch failed within [`WINDOW`] before `now`.
    pub fn problem(&self, now: Instant) -> Option<String> {
        let failure = self.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let ago = now.saturating_duration_since(failure.at);
        (ago < WINDOW).then(|| {
            format!(
                "a list or watch of the {} controller failed {}s ago: {}",
                failure.controller,
                ago.as_secs(),
                failure.error
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_until_a_failure_and_again_a_window_after_the_last_one() {
        let health = WatchHealth::default();
        let t0 = Instant::now();
        assert_eq!(health.problem(t0), None);
        health.record_failure("hexcoreservice", "403 Forbidden: pods".into(), t0);
        let problem = health.problem(t0 + Duration::from_secs(5)).expect("a recent failure");
        assert!(problem.contains("hexcoreservice"), "{problem}");
        assert!(problem.contains("403 Forbidden: pods"), "{problem}");
        assert!(problem.contains("5s ago"), "{problem}");
        assert!(health.problem(t0 + WINDOW - Duration::from_millis(1)).is_some());
        assert_eq!(health.problem(t0 + WINDOW), None);
        // A retry that fails again keeps it unhealthy from the newer failure on.
        health.record_failure("modelcatalog", "timeout".into(), t0 + Duration::from_secs(50));
        let problem = health.problem(t0 + WINDOW).expect("the newer failure");
        assert!(
            problem.contains("modelcatalog") && problem.contains("40s ago"),
            "{problem}"
        );
    }
}
