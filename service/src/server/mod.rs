//! Serving HTTP/1.1 on the listeners: the accept loop with a connection limit per port, one task
//! per connection (see `connection`), and the drain on shutdown.
//!
//! `axum::serve` is not used: it gives hyper no timer and no connection limit, so slow or idle
//! clients could hold connections forever and exhaust the process's file descriptors.
//! HTTP/2 is not offered (no client of this service uses cleartext HTTP/2, and the timeouts here are
//! defined for HTTP/1.1 connections).

mod activity;
mod connection;
mod io;
pub mod limits;
pub mod request_body;
mod service;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use self::activity::Timeouts;
use self::connection::{ConnectionContext, Pressure};
use self::service::{ConnectionService, ServiceSettings};
use crate::metrics::Metrics;

/// Largest request head (request line and headers) accepted; larger ones get 431 with the error
/// envelope. JWTs are at most 8 KiB here (docs/configuration.md), so 64 KiB leaves ample room.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields in one request (hyper's default); more get 431.
pub const MAX_HEADERS: usize = 100;

/// One listener and what it serves.
pub struct Port {
    /// `main` or `management`: in logs and in the `port` label of the connection metrics.
    pub name: &'static str,
    pub listener: TcpListener,
    pub router: Router,
    pub max_connections: usize,
}

/// Connection handling shared by every port (config::ConnectionConfig).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub timeouts: Timeouts,
    pub body_read_timeout: Duration,
    /// Most bytes of an unread request body drained to keep a connection open.
    pub drain_max_bytes: u64,
    pub shutdown_grace: Duration,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within the grace period.
    Drained,
    /// The grace period ran out with connections still open.
    GraceExpired,
}

/// Serves `ports` until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// (each connection closes after its current response) and waits at most the grace period.
pub async fn run(
    ports: Vec<Port>,
    settings: ServerSettings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_loops = tokio::task::JoinSet::new();
    let mut limits = Vec::new();
    for port in ports {
        let connections = Arc::new(Semaphore::new(port.max_connections));
        limits.push((connections.clone(), port.max_connections as u32));
        accept_loops.spawn(accept_loop(
            port,
            settings.clone(),
            metrics.clone(),
            connections,
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    tracing::info!(
        grace_seconds = settings.shutdown_grace.as_secs(),
        "shutdown requested; draining in-flight requests"
    );
    let _ = stop_tx.send(true);
    while accept_loops.join_next().await.is_some() {}
    let drained = async {
        for (connections, max) in &limits {
            // Every connection holds a permit until its socket is closed.
            let _ = connections.acquire_many(*max).await;
        }
    };
    match tokio::time::timeout(settings.shutdown_grace, drained).await {
        Ok(()) => Stopped::Drained,
        Err(_) => Stopped::GraceExpired,
    }
}

async fn accept_loop(
    port: Port,
    settings: ServerSettings,
    metrics: Arc<Metrics>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut http1 = http1::Builder::new();
    http1
        .keep_alive(true)
        // The driver applies the header timeout, separately from the idle timeout.
        .header_read_timeout(None)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES);
    let context = Arc::new(ConnectionContext {
        http1,
        timeouts: settings.timeouts,
        shutdown: stop.clone(),
        pressure: Pressure::default(),
        metrics: metrics.clone(),
        port_label: port.name,
    });
    let service_settings = Arc::new(ServiceSettings {
        body_read_timeout: settings.body_read_timeout,
        drain_max_bytes: settings.drain_max_bytes,
    });
    let closed_reasons: Vec<&'static str> = activity::Expiry::ALL
        .iter()
        .map(|expiry| expiry.as_str())
        .chain([connection::MALFORMED_REQUEST])
        .collect();
    metrics.start_port(port.name, &closed_reasons);
    let mut last_limit_warning: Option<tokio::time::Instant> = None;
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = port.listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error, port.name).await;
                    continue;
                }
            },
            () = stopping(&mut stop) => return,
        };
        // Accept first, then wait for a place: so the limit is only pressed (and idle connections
        // only closed) when a client is really waiting. At most one socket waits beyond the limit.
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                metrics.record_connection_limit_reached(port.name);
                if last_limit_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    last_limit_warning = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        port = port.name,
                        max_connections = port.max_connections,
                        "connection limit reached; idle connections are closed and new ones wait"
                    );
                }
                context.pressure.start();
                let permit = tokio::select! {
                    permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = stopping(&mut stop) => return,
                };
                context.pressure.end();
                permit
            }
        };
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        let router = port.router.clone();
        let service_settings = service_settings.clone();
        let open = metrics.connections_open(port.name);
        tokio::spawn(async move {
            open.inc();
            connection::serve(stream, context, |activity| ConnectionService {
                router,
                activity,
                settings: service_settings,
            })
            .await;
            open.dec();
            drop(permit);
        });
    }
}

/// Completes once shutdown was requested (or the server is gone).
pub(crate) async fn stopping(stop: &mut watch::Receiver<bool>) {
    // The `Ref` that `wait_for` returns is not `Send`: drop it here, not in a caller's `select!`.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Per-connection failures (the client went away between SYN and accept) are ignored; running out
/// of descriptors or memory is logged and waited out instead of spinning.
async fn accept_failed(error: &std::io::Error, port: &'static str) {
    use std::io::ErrorKind::*;
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %error, port, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
