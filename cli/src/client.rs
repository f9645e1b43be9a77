//! A thin HTTP client for the hex-core-service API: one place for the base URL, the token, the
//! timeout, and turning error envelopes and transport failures into `CliError`s.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::error::CliError;

pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
    timeout: Duration,
}

/// A successful answer: the status, content type and body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> Result<Value, CliError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CliError::Network(format!("the service: its answer is not JSON ({e})")))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// The HTTP client for the service and the issuer: the system's trust roots plus `extra_roots`
/// (`--cacert`).
pub fn http_client(timeout: Duration, extra_roots: &[reqwest::Certificate]) -> Result<reqwest::Client, CliError> {
    hex_core_service::registry::fetch::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("hex-cli/", env!("CARGO_PKG_VERSION")));
    if !extra_roots.is_empty() {
        builder = builder.tls_certs_merge(extra_roots.iter().cloned());
    }
    builder
        .build()
        .map_err(|e| CliError::Usage(format!("cannot build the HTTP client: {e}")))
}

impl ApiClient {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, CliError> {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|e| CliError::Usage(format!("--url {base_url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!("--url {base_url:?} must be http or https")));
        }
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            timeout,
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    /// Sends, and maps transport failures and non-2xx answers to errors. `accept` lists extra
    /// statuses treated as answers (e.g. 503 from `/admin/ready`).
    pub async fn send(&self, request: RequestBuilder, accept: &[u16]) -> Result<Answer, CliError> {
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = read_body(response).await.map_err(|e| self.transport(e))?;
        if (200..300).contains(&status) || accept.contains(&status) {
            return Ok(Answer {
                status,
                content_type,
                body,
            });
        }
        Err(envelope_error(status, &body))
    }

    pub async fn get(&self, path: &str) -> Result<Answer, CliError> {
        self.send(self.request(Method::GET, path), &[]).await
    }

    fn transport(&self, error: reqwest::Error) -> CliError {
        if error.is_timeout() {
            CliError::Network(format!(
                "the service at {}: no answer within {:?} (--timeout)",
                self.base_url, self.timeout
            ))
        } else if error.is_connect() {
            CliError::Network(format!(
                "the service at {}: connection failed: {}",
                self.base_url,
                root_cause(&error)
            ))
        } else {
            CliError::Network(format!("the service at {}: {error}", self.base_url))
        }
    }
}

/// The innermost error of a chain: for a TLS failure, what the certificate check said.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

async fn read_body(response: Response) -> Result<bytes::Bytes, reqwest::Error> {
    response.bytes().await
}

fn envelope_error(status: u16, body: &[u8]) -> CliError {
    match serde_json::from_slice::<Value>(body) {
        Ok(envelope) if envelope["code"].is_string() => CliError::Service {
            status,
            code: envelope["code"].as_str().unwrap_or_default().to_string(),
            message: envelope["message"].as_str().unwrap_or_default().to_string(),
        },
        _ => CliError::Service {
            status,
            code: "HTTP_ERROR".into(),
            message: String::from_utf8_lossy(body).chars().take(300).collect(),
        },
    }
}

/// Percent-encodes one path segment (model, version, record id).
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
