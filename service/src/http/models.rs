//! Model discovery, artifacts and the `:validate` / `:create` / `:query` actions.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{JsonBody, ModelPath, check_segment};
use super::{AppState, bytes_response};
use crate::auth::Identity;
use crate::domain::model::ArtifactKind;
use crate::domain::payload::Payload;
use crate::domain::query::{Query, QueryError};
use crate::domain::record::RecordScope;
use crate::ports::CallerToken;
use crate::registry::{LoadedModel, Snapshot};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

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
        let path = format!("/models/{}/versions/{}", path.model, path.version);
        return Err(ApiError::MethodNotAllowed {
            method: "GET".into(),
            allow: super::allowed_methods(&path),
            path,
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

/// An artifact's bytes, with its SHA-256 as a strong `ETag`; `If-None-Match` with that tag (or
/// `*`) answers 304 without the body.
pub async fn artifact(
    State(state): State<AppState>,
    Path((model, version, artifact)): Path<(String, String, String)>,
    headers: HeaderMap,
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
    let etag = format!("\"{}\"", artifact.sha256);
    let mut response = match headers.get(header::IF_NONE_MATCH) {
        Some(tags) if none_match_fails(tags, &etag) => StatusCode::NOT_MODIFIED.into_response(),
        _ => bytes_response(StatusCode::OK, artifact.content_type, artifact.bytes.clone()),
    };
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// RFC 9110 §13.1.2: `If-None-Match` fails (304 for a GET) when it is `*` or lists the current
/// tag, compared weakly (`W/"x"` matches `"x"`).
fn none_match_fails(if_none_match: &HeaderValue, etag: &str) -> bool {
    let Ok(tags) = if_none_match.to_str() else {
        return false;
    };
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    payload: Value,
}

/// `:create` reads the payload as text too: the record keeps every number as it was sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    payload: Box<RawValue>,
}

/// `POST /models/{model}/versions/{version}:{action}`: the action rides in the version segment.
pub async fn model_action(
    State(state): State<AppState>,
    path: ModelPath,
    request: Request,
) -> Result<Response, ApiError> {
    let Some((version, action)) = path.version.rsplit_once(':') else {
        let path = format!("/models/{}/versions/{}", path.model, path.version);
        return Err(ApiError::MethodNotAllowed {
            method: "POST".into(),
            allow: super::allowed_methods(&path),
            path,
        });
    };
    let version = version.to_string();
    match action {
        "validate" => validate(state, &path.model, &version, request).await,
        "create" => create(state, &path.model, &version, request).await,
        "query" => query(state, &path.model, &version, request).await,
        other => Err(ApiError::RouteNotFound {
            path: format!("/models/{}/versions/{version}:{other}", path.model),
        }),
    }
}

async fn validate(state: AppState, model: &str, version: &str, request: Request) -> Result<Response, ApiError> {
    let loaded = find_model(&state, model, version)?;
    let JsonBody(body) = JsonBody::<ValidateRequest>::from_request(request, &state).await?;
    require_object(&body.payload)?;
    let report = state.validation.validate(loaded, Arc::new(body.payload)).await?;
    Ok(Json(report).into_response())
}

/// The caller's identity, put in the request extensions by the authentication middleware.
fn identity_of(request: &Request) -> Result<Identity, ApiError> {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .ok_or_else(|| ApiError::Internal {
            message: "no authenticated identity on a record route".into(),
        })
}

fn scope_for(identity: &Identity, model: &str, version: &str) -> RecordScope {
    RecordScope::new(identity.tenant.clone(), model, version)
}

/// `:create`: `Idempotency-Key` required; validated before anything is written. A replay answers
/// 200 with the first record and `Idempotency-Replayed: true`.
async fn create(state: AppState, model: &str, version: &str, request: Request) -> Result<Response, ApiError> {
    let identity = identity_of(&request)?;
    super::require_scope(&identity, "records:write", &state.info)?;
    let loaded = find_model(&state, model, version)?;
    let key = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| ApiError::BadRequest {
            message: "the Idempotency-Key header must be visible ASCII".into(),
            details: json!({"header": "Idempotency-Key"}),
        })?;
    let JsonBody(body) = JsonBody::<CreateRequest>::from_request(request, &state).await?;
    let payload = Payload::parse(body.payload.get())?;
    require_object(payload.value())?;
    let outcome = state
        .records
        .create(
            &state.validation,
            loaded,
            scope_for(&identity, model, version),
            &CallerToken(identity.token.clone()),
            key.as_deref(),
            payload,
        )
        .await?;
    let mut response = Json(outcome.record).into_response();
    if outcome.replayed {
        response
            .headers_mut()
            .insert("idempotency-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `:query`: the body is the contract's `QueryRequest`; the answer `{"records", "limit", "offset"}`.
async fn query(state: AppState, model: &str, version: &str, request: Request) -> Result<Response, ApiError> {
    let identity = identity_of(&request)?;
    super::require_scope(&identity, "records:read", &state.info)?;
    find_model(&state, model, version)?;
    // A body that is not JSON is a malformed query too; size and content type keep their codes.
    let JsonBody(body) = JsonBody::<Value>::from_request(request, &state)
        .await
        .map_err(|error| match error {
            ApiError::BadRequest { message, .. } => ApiError::InvalidQuery(QueryError::body(message)),
            other => other,
        })?;
    let query = Query::parse_request(&body)?;
    let records = state
        .records
        .query(
            &scope_for(&identity, model, version),
            &CallerToken(identity.token.clone()),
            &query,
        )
        .await?;
    // A struct, not `json!`: a `Value` tree would write the payloads' numbers its own way.
    #[derive(serde::Serialize)]
    struct QueryAnswer {
        records: Vec<crate::domain::record::Record>,
        limit: u64,
        offset: u64,
    }
    Ok(Json(QueryAnswer {
        records,
        limit: query.limit,
        offset: query.offset,
    })
    .into_response())
}

/// Addition: `GET /models/{model}/versions/{version}/records/{id}`.
pub async fn get_record(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path((model, version, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check_segment("model", &model)?;
    check_segment("version", &version)?;
    super::require_scope(&identity, "records:read", &state.info)?;
    find_model(&state, &model, &version)?;
    let record = state
        .records
        .get(
            &scope_for(&identity, &model, &version),
            &CallerToken(identity.token.clone()),
            &id,
        )
        .await?;
    Ok(Json(record).into_response())
}

fn require_object(payload: &Value) -> Result<(), ApiError> {
    if payload.is_object() {
        Ok(())
    } else {
        Err(ApiError::BadRequest {
            message: "payload must be a JSON object".into(),
            details: json!({"field": "payload"}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let etag = "\"abc\"";
        for matching in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(
                none_match_fails(&HeaderValue::from_static(matching), etag),
                "{matching}"
            );
        }
        for other in ["\"abd\"", "abc", ""] {
            assert!(!none_match_fails(&HeaderValue::from_static(other), etag), "{other}");
        }
    }
}
