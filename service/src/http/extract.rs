//! Extractors that reject bad input with the error envelope (never axum's plain-text rejections).

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::ApiError;
use crate::domain::model::validate_segment;
use crate::server::request_body::RequestBodyError;

/// A JSON request body: checks the content type, the size limit, syntax (with line and column)
/// and shape (naming the offending field).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !is_json_content_type(&content_type) {
            return Err(ApiError::UnsupportedMediaType { content_type });
        }
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0).unwrap_or(usize::MAX);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, limit))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The configured body limit, put in request extensions so the rejection can name it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else if let Some(timeout) = RequestBodyError::timeout_in(&rejection) {
        ApiError::RequestTimeout {
            what: "request body",
            millis: timeout.as_millis() as u64,
        }
    } else {
        ApiError::bad_request(format!("cannot read request body: {rejection}"))
    }
}

fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON straight into `T`; when that fails, again in two steps so a syntax error (line,
/// column) and a shape error (which field) each get a precise message. The two-step parse also
/// decides whenever the direct one refuses (a duplicate key, for one, is the last value there), so
/// what is accepted does not change; only valid bodies skip building an intermediate tree.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(parsed) => Ok(parsed),
        Err(direct) => parse_json_in_two_steps(bytes, direct),
    }
}

fn parse_json_in_two_steps<T: DeserializeOwned>(bytes: &[u8], direct: serde_json::Error) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
        message: format!("request body is not valid JSON: {e}"),
        details: json!({"line": e.line(), "column": e.column()}),
    })?;
    // A `T` that keeps raw JSON (`RawValue`) cannot be built from a tree: its shape error is the
    // direct parse's ("duplicate field", "unknown field").
    serde_json::from_value(value).map_err(|_| ApiError::BadRequest {
        message: format!("request body has the wrong shape: {direct}"),
        details: json!({"error": direct.to_string()}),
    })
}

/// `{model}` and `{version}` path segments, checked before any lookup.
pub struct ModelPath {
    pub model: String,
    pub version: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ModelPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let model = get("model");
        let version = get("version");
        check_segment("model", &model)?;
        // The version segment of an action route carries `:validate` etc.; callers split it first.
        let version_name = version.rsplit_once(':').map(|(v, _)| v).unwrap_or(&version);
        check_segment("version", version_name)?;
        Ok(Self { model, version })
    }
}

pub fn check_segment(name: &str, value: &str) -> Result<(), ApiError> {
    validate_segment(value).map_err(|problem| ApiError::BadRequest {
        message: format!("path segment {name} {problem}"),
        details: json!({"segment": name}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type(""));
    }

    #[test]
    fn a_duplicate_key_is_accepted_as_by_the_two_step_parse() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            payload: serde_json::Value,
        }
        let body: Body = parse_json(br#"{"payload": {"a": 1}, "payload": {"b": 2}}"#).unwrap();
        assert_eq!(body.payload, serde_json::json!({"b": 2}));
        match parse_json::<Body>(br#"{"payload": {}, "extra": 1}"#) {
            Err(ApiError::BadRequest { message, .. }) => assert!(message.contains("wrong shape"), "{message}"),
            other => panic!("unexpected {:?}", other.map(|b| b.payload)),
        }
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_json::<serde_json::Value>(b"{\n  \"a\": ,\n}").unwrap_err();
        match err {
            ApiError::BadRequest { details, .. } => {
                assert_eq!(details["line"], 2);
                assert!(details["column"].as_u64().unwrap() > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
