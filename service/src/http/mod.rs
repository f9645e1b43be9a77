//! The HTTP edge: routes, middleware (request id, access log, metrics, authentication, CORS) and
//! the handlers that call the use cases. `server` serves these routers on the listeners.

pub mod admin;
pub mod cors;
pub mod error;
pub mod extract;
pub mod models;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use time::OffsetDateTime;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

use self::error::ApiError;
use self::extract::BodyLimit;
use crate::auth::{Identity, SharedAuthenticator};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::usecases::records::RecordService;
use crate::usecases::validate::ValidationService;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Static facts about this process that admin endpoints report.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub started_at: OffsetDateTime,
    pub started: Instant,
    pub io_adapter_id: String,
    pub io_adapter_version: String,
    pub metrics_enabled: bool,
    pub request_max_bytes: usize,
    pub admin_role: String,
    /// `AUTH_ENFORCE_SCOPES`: require `records:read` / `records:write`.
    pub enforce_scopes: bool,
    /// `CORS_*`: `None` sends no CORS headers.
    pub cors: Option<crate::config::CorsConfig>,
}

/// Everything a handler may touch; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub auth: SharedAuthenticator,
    pub validation: Arc<ValidationService>,
    pub info: Arc<ServiceInfo>,
    pub records: Arc<RecordService>,
}

/// The main port: the API, the admin endpoints and the probes.
pub fn router(state: AppState) -> Router {
    let body_limit = state.info.request_max_bytes;
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);

    let api = Router::new()
        .route("/models", get(models::list_models))
        .route(
            "/models/{model}/versions/{version}",
            get(models::model_detail).post(models::model_action),
        )
        .route("/models/{model}/versions/{version}/{artifact}", get(models::artifact))
        .route(
            "/models/{model}/versions/{version}/records/{id}",
            get(models::get_record),
        )
        .route("/openapi.json", get(admin::openapi))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));

    // Admin routes authenticate separately: only here may the machine admin credential
    // (AUTH_ADMIN_TOKEN_FILE) be accepted, so it can never reach a model or record route.
    let admin = Router::new()
        .route("/admin/version", get(admin::version))
        .route("/admin/models/count", get(admin::models_count))
        .route("/admin/status", get(admin::status))
        .route("/admin/metrics", get(admin::metrics))
        .route("/admin/registry/refresh", post(admin::refresh))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate_admin));

    let observed = Router::new()
        .merge(api)
        .merge(admin)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |mut req: Request, next: Next| async move {
            req.extensions_mut().insert(BodyLimit(body_limit));
            next.run(req).await
        }))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));

    // Probes stay open (a kubelet cannot present a token; they reveal nothing sensitive) and skip
    // the request id, access log and metrics: they arrive every few seconds and need none of it.
    // `GET /admin/health` is even answered before the router (server::service).
    let router = probes().merge(observed);
    let router = match &state.info.cors {
        Some(cors) => router.layer(cors::layer(cors)),
        None => router,
    };
    router.with_state(state)
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/admin/health", get(admin::health))
        .route("/admin/ready", get(admin::ready))
        .method_not_allowed_fallback(method_not_allowed)
}

/// The management port (`SERVER_MANAGEMENT_PORT`): probes and metrics only, without
/// authentication, for the kubelet and Prometheus, which cannot present a token. Nothing here is
/// secret; on the main port `/admin/metrics` keeps needing an admin identity.
pub fn management_router(state: AppState) -> Router {
    probes()
        .route("/admin/metrics", get(admin::metrics))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::RouteNotFound {
        path: uri.path().to_string(),
    }
}

/// 405 with `Allow`, and the answer to `OPTIONS` (204 with `Allow`) on every route.
async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let allow = allowed_methods(uri.path());
    if method == Method::OPTIONS {
        return (
            StatusCode::NO_CONTENT,
            [(header::ALLOW, HeaderValue::from_static(allow))],
        )
            .into_response();
    }
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
        allow,
    }
    .into_response()
}

/// The methods a routed path supports, for `Allow`. `/models/{model}/versions/{version}` is both
/// the model detail (GET) and, with `:validate`, `:create` or `:query` in the version segment,
/// an action (POST only).
pub fn allowed_methods(path: &str) -> &'static str {
    const READ: &str = "GET, HEAD, OPTIONS";
    const ACTION: &str = "POST, OPTIONS";
    if path == "/admin/registry/refresh" || is_action_path(path) {
        ACTION
    } else {
        READ
    }
}

pub fn is_action_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(segments.as_slice(), ["models", _, "versions", version] if version.contains(':'))
}

/// Authenticates every route it wraps and puts the `Identity` in the request extensions.
async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let result = state.auth.authenticate(req.headers()).await;
    continue_authenticated(result, req, next).await
}

/// The same for admin routes, where the machine admin credential is also accepted.
async fn authenticate_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let result = state.auth.authenticate_admin(req.headers()).await;
    continue_authenticated(result, req, next).await
}

async fn continue_authenticated(
    result: Result<Identity, crate::auth::AuthError>,
    mut req: Request,
    next: Next,
) -> Response {
    match result {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(error) => {
            tracing::debug!(error = %error, "request not authenticated");
            ApiError::Unauthenticated(error).into_response()
        }
    }
}

/// Admin writes need the admin role (or the machine admin credential).
pub fn require_admin(identity: &Identity, admin_role: &str) -> Result<(), ApiError> {
    if identity.machine_admin || identity.has_role(admin_role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: format!("this endpoint needs the {admin_role:?} role (AUTH_ADMIN_ROLE)"),
        })
    }
}

/// With `AUTH_ENFORCE_SCOPES=true`, record reads need `records:read` and writes `records:write`.
pub fn require_scope(identity: &Identity, scope: &str, info: &ServiceInfo) -> Result<(), ApiError> {
    if !info.enforce_scopes || identity.machine_admin || identity.has_scope(scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: format!("this endpoint needs the {scope:?} scope (AUTH_ENFORCE_SCOPES=true)"),
        })
    }
}

/// One structured log line and the HTTP metrics per request. Never logs headers or bodies, so a
/// token cannot leak into the logs.
async fn access_log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("")
        .to_string();
    // With METRICS_ENABLED=false nothing reads the HTTP metrics: do not keep them.
    let metrics = state.info.metrics_enabled.then_some(&state.metrics);
    if let Some(metrics) = metrics {
        metrics.http_requests_in_flight.inc();
    }
    let response = next.run(req).await;
    let status = response.status();
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics.http_requests_in_flight.dec();
        metrics.record_http(&method, &route, status.as_u16(), elapsed);
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(request_id, %method, path, route, status = status.as_u16(), latency_ms, "request");
    } else {
        tracing::info!(request_id, %method, path, route, status = status.as_u16(), latency_ms, "request");
    }
    response
}

/// Convenience for handlers that answer raw bytes with a content type.
pub fn bytes_response(status: StatusCode, content_type: &'static str, body: bytes::Bytes) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}
