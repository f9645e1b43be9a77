//! The operator process: leader election gating the controllers, and the small HTTP server with
//! `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::join_all;
use kube::Client;
use tokio::sync::watch;

use crate::controller::{self, Settings};
use crate::lease::{ElectionTiming, LeaseLock, run_election};
use crate::metrics::Metrics;

/// Leader election settings; `None` in [`Options::election`] runs without election.
#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub timing: ElectionTiming,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    pub election: Option<Election>,
    pub settings: Settings,
}

/// Shared state of a running operator, for its HTTP endpoints and for tests.
pub struct Handle {
    pub metrics: Arc<Metrics>,
    /// True once the API server answered (readiness).
    pub ready: AtomicBool,
    leading: watch::Receiver<bool>,
}

impl Handle {
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }
}

/// Starts the operator; returns its handle and the future that runs it (forever, until dropped).
///
/// Dropping the future is a crash as far as the other replicas can tell: the Lease stays held
/// until it expires. Use [`start_until`] for an orderly shutdown that hands leadership over.
pub fn start(client: Client, options: Options) -> (Arc<Handle>, impl Future<Output = ()> + Send + 'static) {
    start_until(client, options, std::future::pending())
}

/// How long an orderly shutdown waits for the API server to accept the Lease release.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Like [`start`], but the returned future ends when `shutdown` completes: the controllers stop
/// first, then the Lease is released (holder cleared) so a standby replica takes over at its
/// next retry instead of waiting a full lease duration (15 s by default) for it to expire.
pub fn start_until(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Arc<Handle>, impl Future<Output = ()> + Send + 'static) {
    let metrics = Arc::new(Metrics::new());
    let (leading_tx, leading_rx) = watch::channel(options.election.is_none());
    let handle = Arc::new(Handle {
        metrics: metrics.clone(),
        ready: AtomicBool::new(false),
        leading: leading_rx.clone(),
    });
    let task_handle = handle.clone();
    let future = async move {
        match client.apiserver_version().await {
            Ok(v) => tracing::info!(kubernetes = %v.git_version, "connected to the API server"),
            Err(error) => tracing::warn!(%error, "API server not reachable yet; the controllers will retry"),
        }
        task_handle.ready.store(true, Ordering::SeqCst);

        let election = options.election.clone();
        let controllers = lead_then_run(client.clone(), options, metrics, leading_rx);
        match election {
            Some(e) => {
                let lock = LeaseLock::new(
                    client,
                    &e.namespace,
                    &e.lease_name,
                    &e.identity,
                    e.timing.lease_duration,
                );
                tokio::select! {
                    _ = async { tokio::join!(run_election(&lock, e.timing, &leading_tx), controllers) } => {}
                    _ = shutdown => {}
                }
                // The controllers were dropped with the select above, so no reconcile of this
                // replica can overlap with the successor's once the Lease is free.
                let was_leading = leading_tx.send_replace(false);
                if was_leading {
                    match tokio::time::timeout(RELEASE_TIMEOUT, lock.release()).await {
                        Ok(Ok(())) => tracing::info!(identity = %e.identity, "released the leader lease"),
                        Ok(Err(error)) => tracing::warn!(%error, "could not release the leader lease; it will expire"),
                        Err(_) => tracing::warn!("releasing the leader lease timed out; it will expire"),
                    }
                }
            }
            None => {
                // Without election this replica always leads; the sender must outlive the
                // controllers, or the "lost leadership" wait would end at once.
                let _always_leading = leading_tx;
                tokio::select! {
                    _ = controllers => {}
                    _ = shutdown => {}
                }
            }
        }
    };
    (handle, future)
}

/// Runs the controllers while this replica leads; stops them as soon as it does not.
async fn lead_then_run(client: Client, options: Options, metrics: Arc<Metrics>, mut leading: watch::Receiver<bool>) {
    loop {
        if leading.wait_for(|l| *l).await.is_err() {
            return;
        }
        metrics.leader.set(1);
        tracing::info!(namespaces = ?options.namespaces, "leading: starting the controllers");
        let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
            vec![None]
        } else {
            options.namespaces.iter().cloned().map(Some).collect()
        };
        let controllers = join_all(
            scopes
                .into_iter()
                .map(|scope| controller::run(client.clone(), scope, options.settings.clone(), metrics.clone())),
        );
        let lost = tokio::select! {
            _ = controllers => false,
            result = leading.wait_for(|l| !*l) => result.is_ok(),
        };
        if lost {
            tracing::warn!("lost leadership: stopping the controllers");
        } else {
            tracing::error!("controllers stopped unexpectedly; restarting them");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        metrics.leader.set(0);
        metrics.forget_all_services();
    }
}

/// `/healthz` (the process runs), `/readyz` (the API server answered once and no list or watch
/// failed lately, see [`crate::watch_health`]), `/metrics`.
pub fn router(handle: Arc<Handle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(h): State<Arc<Handle>>| async move {
                if !h.ready.load(Ordering::SeqCst) {
                    return (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_string());
                }
                match h.metrics.watch_health.problem(std::time::Instant::now()) {
                    Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {problem}")),
                    None => (StatusCode::OK, "ok".to_string()),
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(h): State<Arc<Handle>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    h.metrics.render(),
                )
                    .into_response()
            }),
        )
        .with_state(handle)
}

/// Serves [`router`] on `addr` until the future is dropped.
pub async fn serve(addr: SocketAddr, handle: Arc<Handle>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz, /metrics");
    axum::serve(listener, router(handle)).await
}
