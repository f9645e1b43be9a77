//! Model discovery, artifacts and the `:validate` / `:create` / `:query` actions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{JsonBody, ModelPath, check_segment};
use super::{AppState, bytes_response};
use crate::domain::model::ArtifactKind;
use crate::registry::{LoadedModel, Snapshot};
use crate::usecases::validate::ValidateError;

fn active_snapshot(state: &AppState) -> Result<Arc<Snapshot>, ApiError> {
    state.registry.snapshot().ok_or_else(|| ApiError::NotReady {
        message: "the model registry has not loaded a catalog yet".into(),
    })
}

fn find_model(state: &AppState, model: &str, version: &str) -> Result<Arc<LoadedModel>, ApiError> {
    active_snapshot(state)?
        .get(model, version)
        .cloned()
        .ok_or_else(|| ApiError::ModelNotFound {
            model: model.to_string(),
            version: version.to_string(),
        })
}

pub async fn list_models(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = active_snapshot(&state)?;
    Ok(bytes_response(
        StatusCode::OK,
        "application/json",
        snapshot.models_json.clone(),
    ))
}

/// Addition: which artifacts a model version has, their digests, the target class and warnings.
pub async fn model_detail(State(state): State<AppState>, path: ModelPath) -> Result<Response, ApiError> {
    if path.version.contains(':') {
        return Err(ApiError::MethodNotAllowed {
            method: "GET".into(),
            path: format!("/models/{}/versions/{}", path.model, path.version),
        });
    }
    let model = find_model(&state, &path.model, &path.version)?;
    let artifacts: serde_json::Map<String, Value> = model
        .artifacts
        .iter()
        .map(|(kind, a)| {
            (
                kind.as_str().to_string(),
                json!({"url": a.url, "sha256": a.sha256, "size_bytes": a.size_bytes, "content_type": a.content_type}),
            )
        })
        .collect();
    let validators: Vec<&str> = model.compiled.validators.iter().map(|v| v.kind()).collect();
    Ok(Json(json!({
        "id": model.entry.key.model,
        "version": model.entry.key.version,
        "artifacts": artifacts,
        "target_class": model.compiled.target_class,
        "validators": validators,
        "warnings": model.compiled.warnings,
        "loaded_at": model.loaded_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }))
    .into_response())
}

pub async fn artifact(
    State(state): State<AppState>,
    Path((model, version, artifact)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check_segment("model", &model)?;
    check_segment("version", &version)?;
    let kind = ArtifactKind::from_path_segment(&artifact).ok_or_else(|| ApiError::RouteNotFound {
        path: format!("/models/{model}/versions/{version}/{artifact}"),
    })?;
    let loaded = find_model(&state, &model, &version)?;
    let artifact = loaded.artifacts.get(&kind).ok_or_else(|| ApiError::ArtifactNotFound {
        model,
        version,
        artifact: kind.as_str().to_string(),
    })?;
    let mut response = bytes_response(StatusCode::OK, artifact.content_type, artifact.bytes.clone());
    if let Ok(etag) = format!("\"{}\"", artifact.sha256).parse() {
        response.headers_mut().insert(axum::http::header::ETAG, etag);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    payload: Value,
}

/// `POST /models/{model}/versions/{version}:{action}`: the action rides in the version segment.
pub async fn model_action(
    State(state): State<AppState>,
    path: ModelPath,
    request: Request,
) -> Result<Response, ApiError> {
    let Some((version, action)) = path.version.rsplit_once(':') else {
        return Err(ApiError::MethodNotAllowed {
            method: "POST".into(),
            path: format!("/models/{}/versions/{}", path.model, path.version),
        });
    };
    let version = version.to_string();
    match action {
        "validate" => validate(state, &path.model, &version, request).await,
        "create" | "query" => Err(ApiError::NotImplemented {
            message: format!(":{action} needs a record store, which this build does not have yet"),
        }),
        other => Err(ApiError::RouteNotFound {
            path: format!("/models/{}/versions/{version}:{other}", path.model),
        }),
    }
}

async fn validate(state: AppState, model: &str, version: &str, request: Request) -> Result<Response, ApiError> {
    let loaded = find_model(&state, model, version)?;
    let JsonBody(body) = JsonBody::<ValidateRequest>::from_request(request, &state).await?;
    let payload = require_object(body.payload)?;
    let report = state
        .validation
        .validate(loaded, Arc::new(payload))
        .await
        .map_err(|e| match e {
            ValidateError::Timeout(budget) => ApiError::ValidationTimeout {
                millis: budget.as_millis() as u64,
            },
            ValidateError::Failed(message) => ApiError::ValidatorError { message },
            ValidateError::TooComplex { limit } => ApiError::PayloadTooComplex { limit },
        })?;
    Ok(Json(report).into_response())
}

fn require_object(payload: Value) -> Result<Value, ApiError> {
    if payload.is_object() {
        Ok(payload)
    } else {
        Err(ApiError::BadRequest {
            message: "payload must be a JSON object".into(),
            details: json!({"field": "payload"}),
        })
    }
}
