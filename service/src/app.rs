//! Wiring: builds the adapters from the configuration, starts the first catalog load, serves HTTP
//! on the main and management ports and drains on SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::auth::SharedAuthenticator;
use crate::auth::admin_token::MachineAdminAuthenticator;
use crate::auth::forward::ForwardAuthenticator;
use crate::auth::jwks::JwksAuthenticator;
use crate::auth::none::NoneAuthenticator;
use crate::config::{AuthMode, CatalogSource, Config, IoAdapterKind, ServerConfig};
use crate::http::{AppState, ServiceInfo, management_router, router};
use crate::metrics::Metrics;
use crate::ports::RecordStore;
use crate::registry::fetch::{FetchSettings, HttpArtifactSource, LocalArtifactSource, RoutedArtifactSource};
use crate::registry::local_file::LocalFileLimits;
use crate::registry::{CatalogLocation, Loader, Registry};
use crate::server::{self, Port, ServerSettings, Stopped, Timeouts, limits};
use crate::store::Instrumented;
use crate::store::embedded::EmbeddedStore;
use crate::store::http::HttpStore;
use crate::store::memory::MemoryStore;
use crate::store::postgres::PostgresStore;
use crate::usecases::records::RecordService;
use crate::usecases::validate::ValidationService;
use crate::validation::StandardCompiler;

/// Failures while starting, each with a message an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{0}")]
    Setup(String),
    /// The record store cannot start for a reason the configuration does not cause (a full disk,
    /// an I/O error, the data directory held by another process): a later start may succeed.
    #[error("cannot open the record store: {0}")]
    Store(String),
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

impl StartError {
    /// Exit code: 2 for anything the configuration must fix, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Bind { .. } | Self::Setup(_) => 2,
            Self::Store(_) | Self::Serve(_) => 1,
        }
    }
}

/// Builds the application state (registry not yet loaded).
pub fn build_state(config: &Config) -> Result<AppState, StartError> {
    let metrics = Arc::new(Metrics::new());
    let registry_config = &config.registry;
    let extra_ca_pem = match &registry_config.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            StartError::Setup(format!(
                "invalid configuration: REGISTRY_CA_FILE={:?}: cannot read: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let http = Arc::new(
        HttpArtifactSource::new(FetchSettings {
            policy: registry_config.policy.clone(),
            max_bytes: registry_config.artifact_max_bytes,
            timeout: registry_config.fetch_timeout,
            cache_ttl: registry_config.cache_enabled.then_some(registry_config.cache_ttl),
            extra_ca_pem,
        })
        .map_err(|e| StartError::Setup(format!("invalid configuration: {e}")))?,
    );
    let (location, local) = match &registry_config.source {
        CatalogSource::Json(json) => (CatalogLocation::Inline(json.clone()), None),
        CatalogSource::Url(url) => (CatalogLocation::Url(url.clone()), None),
        CatalogSource::File(path) => {
            let local = registry_config.allow_local_artifacts.then(|| {
                let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
                let dir = if dir.as_os_str().is_empty() { ".".into() } else { dir };
                LocalArtifactSource::new(dir, registry_config.artifact_max_bytes)
                    .with_timeout(registry_config.fetch_timeout)
            });
            (CatalogLocation::File(path.clone()), local)
        }
    };
    let artifact_source = Arc::new(RoutedArtifactSource {
        http: http.clone(),
        local,
    });
    let loader = Loader {
        location,
        catalog_source: http,
        artifact_source,
        compiler: Arc::new(StandardCompiler),
        fetch_concurrency: registry_config.fetch_concurrency,
        metrics: metrics.clone(),
        local_file_limits: LocalFileLimits {
            max_bytes: registry_config.artifact_max_bytes,
            timeout: registry_config.fetch_timeout,
        },
    };
    let registry = Registry::new(loader, registry_config.retry);
    let auth = build_authenticator(config, &metrics)?;
    let validation = Arc::new(
        ValidationService::new(config.server.validation_timeout, metrics.clone())
            .map_err(|e| StartError::Setup(format!("cannot start the validation threads: {e}")))?
            .with_max_nodes(config.server.validation_max_nodes),
    );
    let info = Arc::new(ServiceInfo {
        started_at: OffsetDateTime::now_utc(),
        started: Instant::now(),
        io_adapter_id: config.io_adapter.kind.as_str().to_string(),
        io_adapter_version: config.io_adapter.version.clone(),
        metrics_enabled: config.metrics_enabled,
        request_max_bytes: config.server.request_max_bytes,
        admin_role: config.auth.admin_role.clone(),
        enforce_scopes: config.auth.enforce_scopes,
        cors: config.server.cors.clone(),
    });
    let store = build_record_store(config)?;
    let store: Arc<dyn RecordStore> = Arc::new(Instrumented::new(
        store,
        config.io_adapter.kind.as_str(),
        metrics.clone(),
    ));
    let records = Arc::new(RecordService::new(store, metrics.clone()));
    Ok(AppState {
        registry,
        metrics,
        auth,
        validation,
        info,
        records,
    })
}

/// The record store named by `IO_ADAPTER_ID`.
fn build_record_store(config: &Config) -> Result<Arc<dyn RecordStore>, StartError> {
    let io = &config.io_adapter;
    let setup =
        |variable: &str, message: String| StartError::Setup(format!("invalid configuration: {variable}: {message}"));
    Ok(match io.kind {
        IoAdapterKind::Memory => Arc::new(MemoryStore::new()),
        IoAdapterKind::Embedded => Arc::new(EmbeddedStore::open(&io.data_dir).map_err(|e| {
            if e.configuration {
                setup("IO_ADAPTER_DATA_DIR", e.to_string())
            } else {
                StartError::Store(e.to_string())
            }
        })?),
        IoAdapterKind::Http => {
            let base_url = io.base_url.as_deref().unwrap_or_default();
            Arc::new(HttpStore::new(base_url, io.timeout).map_err(|e| setup("IO_ADAPTER_BASE_URL", e))?)
        }
        IoAdapterKind::Postgres => {
            let url = io.database_url.as_deref().unwrap_or_default();
            let store =
                Arc::new(PostgresStore::from_url(url, io.timeout).map_err(|e| setup("IO_ADAPTER_DATABASE_URL", e))?);
            // Migrate at start when a runtime is there; otherwise (and after a failure) the first
            // call migrates.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let migrating = store.clone();
                runtime.spawn(async move {
                    let _ = migrating.migrate().await;
                });
            }
            store
        }
    })
}

fn build_authenticator(config: &Config, metrics: &Metrics) -> Result<SharedAuthenticator, StartError> {
    let authenticator = build_mode_authenticator(config, metrics)?;
    match &config.auth.admin_token_file {
        Some(path) => Ok(Arc::new(
            MachineAdminAuthenticator::new(authenticator, path)
                .map_err(|e| StartError::Setup(format!("invalid configuration: {e}")))?,
        )),
        None => Ok(authenticator),
    }
}

fn build_mode_authenticator(config: &Config, metrics: &Metrics) -> Result<SharedAuthenticator, StartError> {
    match config.auth.mode {
        AuthMode::None => {
            let none = config.auth.none.as_ref().expect("none config parsed with mode none");
            tracing::warn!(
                subject = %none.subject,
                "AUTH_MODE=none: AUTHENTICATION IS DISABLED. Every caller is {:?}. Never run this way outside local development.",
                none.subject
            );
            Ok(Arc::new(NoneAuthenticator::new(none)))
        }
        AuthMode::ForwardAuth => {
            let forward = config
                .auth
                .forward
                .clone()
                .expect("forward config parsed with mode forward_auth");
            tracing::info!(subject_header = %forward.subject_header, "AUTH_MODE=forward_auth: trusting identity headers from the proxy");
            Ok(Arc::new(ForwardAuthenticator::new(forward)))
        }
        AuthMode::JwtJwks => {
            let jwt = config.auth.jwt.as_ref().expect("jwt config parsed with mode jwt_jwks");
            tracing::info!(jwks_url = %jwt.jwks_url, issuer = %jwt.issuer, audience = %jwt.audience, "AUTH_MODE=jwt_jwks: verifying bearer JWTs");
            let jwks = JwksAuthenticator::start(jwt, metrics.register_jwks())
                .map_err(|e| StartError::Setup(format!("cannot start: {e}")))?;
            Ok(Arc::new(jwks))
        }
    }
}

/// Loads the catalog until the first success, with the registry's backoff between attempts (the
/// same policy that retries failed entries afterwards), so a pod that starts before its catalog
/// host is reachable becomes ready by itself.
pub fn spawn_initial_load(state: &AppState) {
    use backon::Retryable;
    let registry = state.registry.clone();
    let backoff = registry.retry_policy().backoff();
    tokio::spawn(async move {
        let _ = (|| registry.refresh())
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .notify(|error, delay| {
                tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "initial catalog load failed");
            })
            .await;
    });
}

/// The bound listeners: the main port and, with `SERVER_MANAGEMENT_PORT`, the management port.
pub struct Listeners {
    pub main: TcpListener,
    pub management: Option<TcpListener>,
}

impl Listeners {
    pub fn main_addr(&self) -> Result<SocketAddr, StartError> {
        self.main.local_addr().map_err(StartError::Serve)
    }

    pub fn management_addr(&self) -> Result<Option<SocketAddr>, StartError> {
        self.management
            .as_ref()
            .map(|listener| listener.local_addr().map_err(StartError::Serve))
            .transpose()
    }
}

pub async fn bind(config: &Config) -> Result<Listeners, StartError> {
    let main = bind_port(config.server.host, config.server.port, "SERVER_PORT").await?;
    let management = match config.server.management_port {
        Some(port) => Some(bind_port(config.server.host, port, "SERVER_MANAGEMENT_PORT").await?),
        None => None,
    };
    Ok(Listeners { main, management })
}

async fn bind_port(host: std::net::IpAddr, port: u16, variable: &'static str) -> Result<TcpListener, StartError> {
    let addr = SocketAddr::new(host, port);
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match (source.kind(), variable) {
            (std::io::ErrorKind::AddrInUse, "SERVER_PORT") => {
                " (the port is already in use: stop the other process or set SERVER_PORT)"
            }
            (std::io::ErrorKind::AddrInUse, _) => {
                " (the port is already in use: stop the other process or set SERVER_MANAGEMENT_PORT)"
            }
            (std::io::ErrorKind::PermissionDenied, _) => {
                " (ports below 1024 need privileges: use a port of 1024 or above)"
            }
            (std::io::ErrorKind::AddrNotAvailable, _) => " (SERVER_HOST is not an address of this machine)",
            _ => "",
        };
        StartError::Bind { addr, source, hint }
    })
}

/// Connections the management port serves at once: the kubelet's probes and a few Prometheus
/// scrapers need a handful; the limit keeps it from competing with the main port for descriptors.
pub const MANAGEMENT_MAX_CONNECTIONS: usize = 16;

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests for at most
/// `SERVER_SHUTDOWN_GRACE_SECS`.
pub async fn serve(listeners: Listeners, state: AppState, config: &ServerConfig) -> Result<(), StartError> {
    serve_until(listeners, state, config, shutdown_signal()).await
}

/// [`serve`] with the shutdown trigger passed in (tests).
pub async fn serve_until(
    listeners: Listeners,
    state: AppState,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let connections = &config.connections;
    let management_connections = if listeners.management.is_some() {
        MANAGEMENT_MAX_CONNECTIONS
    } else {
        0
    };
    let max_connections = limits::fit_connection_limit(
        connections.max_connections,
        connections.max_connections_explicit,
        management_connections,
        limits::raise_open_file_limit(),
    )
    .map_err(|problem| {
        StartError::Setup(format!(
            "invalid configuration: SERVER_MAX_CONNECTIONS=\"{}\": {problem}; accepted: a value that fits, or a higher \
             open-file limit",
            connections.max_connections
        ))
    })?;
    if max_connections < connections.max_connections {
        tracing::warn!(
            max_connections,
            "SERVER_MAX_CONNECTIONS lowered from its default to fit the open-file limit (ulimit -n)"
        );
    }
    let mut ports = vec![Port {
        name: "main",
        listener: listeners.main,
        router: router(state.clone()),
        max_connections,
    }];
    if let Some(listener) = listeners.management {
        ports.push(Port {
            name: "management",
            listener,
            router: management_router(state.clone()),
            max_connections: MANAGEMENT_MAX_CONNECTIONS,
        });
    }
    let settings = ServerSettings {
        timeouts: Timeouts {
            header_read: connections.header_read_timeout,
            idle: connections.idle_timeout,
        },
        body_read_timeout: connections.body_read_timeout,
        drain_max_bytes: config.request_max_bytes as u64,
        shutdown_grace: config.shutdown_grace,
    };
    match server::run(ports, settings, state.metrics.clone(), shutdown).await {
        Stopped::Drained => tracing::info!("server stopped"),
        Stopped::GraceExpired => tracing::warn!("drain did not finish within SERVER_SHUTDOWN_GRACE_SECS; exiting"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
