//! The one place where failures become HTTP statuses and envelope codes.
//!
//! Every error body is `{"code", "message", "details"}` (the contract's `ErrorResponse`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::domain::payload::PayloadError;
use crate::domain::query::QueryError;
use crate::domain::record::{InvalidRecordId, RecordRuleError};
use crate::domain::report::ValidationReport;
use crate::ports::StoreError;
use crate::registry::RegistryError;
use crate::usecases::records::RecordError;
use crate::usecases::validate::ValidateError;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    BadRequest {
        message: String,
        details: Value,
    },
    Unauthenticated(AuthError),
    Forbidden {
        message: String,
    },
    ModelNotFound {
        model: String,
        version: String,
    },
    ArtifactNotFound {
        model: String,
        version: String,
        artifact: String,
    },
    RouteNotFound {
        path: String,
    },
    MethodNotAllowed {
        method: String,
        path: String,
        /// The `Allow` header: the methods the path does support.
        allow: &'static str,
    },
    UnsupportedMediaType {
        content_type: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    NotReady {
        message: String,
    },
    RegistryError(RegistryError),
    ValidatorError {
        message: String,
    },
    ValidationTimeout {
        millis: u64,
    },
    PayloadTooComplex {
        limit: usize,
    },
    MetricsDisabled,
    NotImplemented {
        message: String,
    },
    Internal {
        message: String,
    },
    MissingIdempotencyKey {
        message: String,
    },
    ValidationFailed(Box<ValidationReport>),
    IdempotencyConflict,
    RecordExists {
        id: String,
    },
    RecordNotFound {
        id: String,
    },
    InvalidQuery(QueryError),
    /// A payload no record store can hold as sent (a NUL character), refused the same on every
    /// adapter so client input never looks like a store outage.
    PayloadNotStorable {
        message: String,
        path: String,
    },
    StoreError {
        message: String,
    },
    /// hyper could not parse the request (request line, header syntax, framing).
    MalformedRequest {
        message: String,
    },
    HeadersTooLarge,
    UriTooLong,
    /// The request head or body did not arrive in time (`what`: "request head" or "request body").
    RequestTimeout {
        what: &'static str,
        millis: u64,
    },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: Value::Null,
        }
    }

    /// Status and stable code, the full mapping in one table.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Self::ModelNotFound { .. } => (StatusCode::NOT_FOUND, "MODEL_NOT_FOUND"),
            Self::ArtifactNotFound { .. } => (StatusCode::NOT_FOUND, "ARTIFACT_NOT_FOUND"),
            Self::RouteNotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            Self::UnsupportedMediaType { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::NotReady { .. } => (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY"),
            Self::RegistryError(_) => (StatusCode::BAD_GATEWAY, "REGISTRY_ERROR"),
            Self::ValidatorError { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "VALIDATOR_ERROR"),
            Self::ValidationTimeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "VALIDATION_TIMEOUT"),
            Self::PayloadTooComplex { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_COMPLEX"),
            Self::MetricsDisabled => (StatusCode::NOT_FOUND, "METRICS_DISABLED"),
            Self::NotImplemented { .. } => (StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED"),
            Self::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
            Self::MissingIdempotencyKey { .. } => (StatusCode::BAD_REQUEST, "MISSING_IDEMPOTENCY_KEY"),
            Self::ValidationFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED"),
            Self::IdempotencyConflict => (StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT"),
            Self::RecordExists { .. } => (StatusCode::CONFLICT, "RECORD_EXISTS"),
            Self::RecordNotFound { .. } => (StatusCode::NOT_FOUND, "RECORD_NOT_FOUND"),
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            Self::PayloadNotStorable { .. } => (StatusCode::BAD_REQUEST, "PAYLOAD_NOT_STORABLE"),
            Self::StoreError { .. } => (StatusCode::BAD_GATEWAY, "STORE_ERROR"),
            Self::MalformedRequest { .. } => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
            ),
            Self::UriTooLong => (StatusCode::URI_TOO_LONG, "URI_TOO_LONG"),
            Self::RequestTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
        }
    }

    fn message_and_details(&self) -> (String, Value) {
        match self {
            Self::BadRequest { message, details } => (message.clone(), details.clone()),
            Self::Unauthenticated(e) => (e.to_string(), Value::Null),
            Self::Forbidden { message } => (message.clone(), Value::Null),
            Self::ModelNotFound { model, version } => (
                format!("model {model} version {version} is not in the registry"),
                json!({"model": model, "version": version}),
            ),
            Self::ArtifactNotFound {
                model,
                version,
                artifact,
            } => (
                format!("model {model} version {version} has no {artifact} artifact"),
                json!({"model": model, "version": version, "artifact": artifact}),
            ),
            Self::RouteNotFound { path } => (format!("no route for {path}"), json!({"path": path})),
            Self::MethodNotAllowed { method, path, .. } => (
                format!("method {method} is not allowed on {path}"),
                json!({"method": method, "path": path}),
            ),
            Self::UnsupportedMediaType { content_type } => (
                format!("content type {content_type:?} is not supported; send application/json"),
                json!({"content_type": content_type}),
            ),
            Self::PayloadTooLarge { limit } => (
                format!("request body is larger than {limit} bytes (SERVER_REQUEST_MAX_BYTES)"),
                json!({"limit_bytes": limit}),
            ),
            Self::NotReady { message } => (message.clone(), Value::Null),
            Self::RegistryError(e) => (e.to_string(), Value::Null),
            Self::ValidatorError { message } => (message.clone(), Value::Null),
            Self::ValidationTimeout { millis } => (
                format!("validation did not finish within {millis} ms (VALIDATION_TIMEOUT_MS)"),
                json!({"timeout_ms": millis}),
            ),
            Self::PayloadTooComplex { limit } => (
                format!("payload has more than {limit} JSON values (VALIDATION_MAX_NODES)"),
                json!({"limit_nodes": limit}),
            ),
            Self::MetricsDisabled => ("metrics are disabled (METRICS_ENABLED=false)".into(), Value::Null),
            Self::NotImplemented { message } => (message.clone(), Value::Null),
            Self::Internal { message } => (message.clone(), Value::Null),
            Self::MissingIdempotencyKey { message } => (message.clone(), json!({"header": "Idempotency-Key"})),
            Self::ValidationFailed(report) => (
                "the payload does not validate against the model; nothing was written".into(),
                serde_json::to_value(report).unwrap_or(Value::Null),
            ),
            Self::IdempotencyConflict => (
                "the Idempotency-Key was already used with a different payload for this model version".into(),
                json!({"header": "Idempotency-Key"}),
            ),
            Self::RecordExists { id } => (
                format!("a record with id {id:?} already exists for this model version"),
                json!({"id": id}),
            ),
            Self::RecordNotFound { id } => (format!("record {id:?} not found"), json!({"id": id})),
            Self::InvalidQuery(error) => (format!("invalid query: {error}"), error.details()),
            Self::PayloadNotStorable { message, path } => (message.clone(), json!({"path": path})),
            Self::StoreError { message } => (message.clone(), Value::Null),
            Self::MalformedRequest { message } => (message.clone(), Value::Null),
            Self::HeadersTooLarge => (
                format!(
                    "the request head is larger than {} bytes or has more than {} header fields",
                    crate::server::MAX_HEADER_BYTES,
                    crate::server::MAX_HEADERS
                ),
                json!({"limit_bytes": crate::server::MAX_HEADER_BYTES, "limit_fields": crate::server::MAX_HEADERS}),
            ),
            Self::UriTooLong => ("the request target is too long".into(), Value::Null),
            Self::RequestTimeout { what, millis } => {
                let variable = if *what == "request body" {
                    "SERVER_BODY_READ_TIMEOUT_MS"
                } else {
                    "SERVER_HEADER_READ_TIMEOUT_MS"
                };
                (
                    format!("the {what} did not arrive within {millis} ms ({variable})"),
                    json!({"timeout_ms": millis}),
                )
            }
        }
    }

    /// The JSON error envelope, for the few answers written outside axum (see `server::connection`).
    pub fn envelope_bytes(&self) -> Vec<u8> {
        let (_, code) = self.status_and_code();
        let (message, details) = self.message_and_details();
        serde_json::to_vec(&json!({"code": code, "message": message, "details": details})).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, details) = self.message_and_details();
        let mut response = (
            status,
            Json(json!({"code": code, "message": message, "details": details})),
        )
            .into_response();
        if let Self::MethodNotAllowed { allow, .. } = &self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match &self {
                Self::Unauthenticated(AuthError::Invalid(_)) => r#"Bearer error="invalid_token""#,
                _ => "Bearer",
            };
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        Self::RegistryError(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Unauthenticated(e)
    }
}

impl From<ValidateError> for ApiError {
    fn from(e: ValidateError) -> Self {
        match e {
            ValidateError::Timeout(budget) => Self::ValidationTimeout {
                millis: budget.as_millis() as u64,
            },
            ValidateError::Failed(message) => Self::ValidatorError { message },
            ValidateError::TooComplex { limit } => Self::PayloadTooComplex { limit },
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self::InvalidQuery(e)
    }
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        match e.path() {
            Some(path) => Self::PayloadNotStorable {
                path: path.to_string(),
                message: e.to_string(),
            },
            None => Self::BadRequest {
                message: e.to_string(),
                details: json!({"field": "payload"}),
            },
        }
    }
}

fn invalid_id_details(problem: &InvalidRecordId) -> Value {
    match problem {
        InvalidRecordId::Character {
            code_point, position, ..
        } => json!({"field": "payload.id", "code_point": code_point, "position": position}),
        _ => json!({"field": "payload.id"}),
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Rule(rule @ RecordRuleError::MissingIdempotencyKey) => Self::MissingIdempotencyKey {
                message: rule.to_string(),
            },
            RecordError::Rule(rule @ RecordRuleError::InvalidIdempotencyKey(_)) => Self::BadRequest {
                message: rule.to_string(),
                details: json!({"header": "Idempotency-Key"}),
            },
            RecordError::Rule(RecordRuleError::InvalidId(problem)) => Self::BadRequest {
                message: RecordRuleError::InvalidId(problem.clone()).to_string(),
                details: invalid_id_details(&problem),
            },
            RecordError::Payload(problem) => problem.into(),
            RecordError::Invalid(report) => Self::ValidationFailed(report),
            RecordError::Validate(e) => e.into(),
            RecordError::Store(StoreError::IdempotencyConflict) => Self::IdempotencyConflict,
            RecordError::Store(StoreError::RecordExists { id }) => Self::RecordExists { id },
            RecordError::Store(StoreError::NotFound { id }) => Self::RecordNotFound { id },
            // The store's own message names the adapter and the cause (never a stack or a secret).
            RecordError::Store(error @ StoreError::Unavailable(_)) => Self::StoreError {
                message: error.to_string(),
            },
        }
    }
}
