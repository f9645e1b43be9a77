//! Admin endpoints: probes, status, version, metrics, the contract, and the registry refresh.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;
use super::{AppState, require_admin};
use crate::auth::Identity;

/// This service's own contract: the published 0.0.9 contract plus documented additions.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// The liveness answer, also sent by `server::service` without the router.
pub fn health_response() -> axum::http::Response<bytes::Bytes> {
    let mut response = axum::http::Response::new(bytes::Bytes::from_static(br#"{"status":"ok"}"#));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

pub async fn health() -> Response {
    health_response().map(axum::body::Body::from)
}

/// Interface 1 (docs/configuration.md, "Readiness"): the same JSON with 200 and 503.
pub async fn ready(State(state): State<AppState>) -> Response {
    let auth = state.auth.health();
    // The record store's own readiness, a separate field: `embedded` is not ready while its
    // database is closed after an I/O error and cannot be reopened.
    let store = state.records.store().health();
    let registry = state.registry.health();
    let reason = match (&registry.ready, auth.ready, store.ready) {
        (Err(reason), _, _) => Some(reason.clone()),
        (Ok(()), false, _) => Some("auth: the authenticator is not ready (see auth)".to_string()),
        (Ok(()), true, false) => Some(format!(
            "record store: {}",
            store.detail.as_deref().unwrap_or("cannot write")
        )),
        (Ok(()), true, true) => None,
    };
    let mut body = json!({
        "status": if reason.is_none() { "ready" } else { "not_ready" },
        "catalog_sha256": registry.catalog_sha256,
        "models_loaded": registry.models_loaded,
        "entries": registry.entries,
        "failed_entries": registry.failed_entries,
        "auth": auth,
        "store": store,
    });
    let status = match reason {
        Some(reason) => {
            body["reason"] = json!(reason);
            StatusCode::SERVICE_UNAVAILABLE
        }
        None => StatusCode::OK,
    };
    (status, Json(body)).into_response()
}

pub async fn version() -> Json<serde_json::Value> {
    Json(json!({
        "service": "hex-core-service",
        "service_version": env!("CARGO_PKG_VERSION"),
        "openapi_version": openapi_version(),
    }))
}

fn openapi_version() -> String {
    serde_json::from_str::<serde_json::Value>(OPENAPI_JSON)
        .ok()
        .and_then(|v| v["info"]["version"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub async fn openapi() -> Response {
    super::bytes_response(
        StatusCode::OK,
        "application/json",
        bytes::Bytes::from_static(OPENAPI_JSON.as_bytes()),
    )
}

pub async fn models_count(State(state): State<AppState>) -> Json<serde_json::Value> {
    let count = state.registry.snapshot().map(|s| s.models().len()).unwrap_or(0);
    Json(json!({"models_count": count}))
}

pub async fn status(State(state): State<AppState>) -> Json<serde_json::Value> {
    let snapshot = state.registry.snapshot();
    let registry = state.registry.health();
    let last_refresh = state.registry.last_refresh();
    let mut validators: Vec<&str> = snapshot
        .iter()
        .flat_map(|s| s.models().values())
        .flat_map(|m| m.compiled.validators.iter().map(|v| v.kind()))
        .collect();
    validators.sort_unstable();
    validators.dedup();
    Json(json!({
        "status": if registry.ready.is_ok() { "ready" } else { "not_ready" },
        "reason": registry.ready.as_ref().err(),
        "service": "hex-core-service",
        "service_version": env!("CARGO_PKG_VERSION"),
        "started_at": state.info.started_at.format(&Rfc3339).unwrap_or_default(),
        "uptime_seconds": state.info.started.elapsed().as_secs(),
        "models_loaded": registry.models_loaded,
        "catalog_sha256": registry.catalog_sha256,
        "entries": registry.entries,
        "failed_entries": registry.failed_entries,
        "last_refresh": last_refresh.as_ref().map(|r| json!({
            "refreshed_at": r.refreshed_at.format(&Rfc3339).unwrap_or_default(),
            "models_found": r.models_found,
            "errors": r.errors,
            "duration_ms": r.duration_ms,
            "entries": r.entries,
        })),
        "last_refresh_error": state.registry.last_error().map(|e| e.to_string()),
        "registry_errors": snapshot.as_ref().map(|s| s.errors()).unwrap_or_default(),
        "io_adapter": {"id": state.info.io_adapter_id, "version": state.info.io_adapter_version},
        "auth": {"mode": state.auth.mode(), "health": state.auth.health()},
        "validators_enabled": validators,
        "metrics_enabled": state.info.metrics_enabled,
    }))
}

pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !state.info.metrics_enabled {
        return Err(ApiError::MetricsDisabled);
    }
    Ok((
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}

pub async fn refresh(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, ApiError> {
    require_admin(&identity, &state.info.admin_role)?;
    tracing::info!(subject = %identity.subject, "registry refresh requested");
    let report = state.registry.refresh().await?;
    Ok(Json(report.as_ref().clone()).into_response())
}
