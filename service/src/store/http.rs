//! `IO_ADAPTER_ID=http`: records kept by an external IO adapter service implementing
//! `io-adapter.openapi.json` at `IO_ADAPTER_BASE_URL`.
//!
//! The contract leaves the bodies open; this adapter sends (see README, "HTTP IO adapter"):
//! - `POST /records` with `Idempotency-Key`: `{tenant, model, version, id, payload, created_at,
//!   updated_at, payload_sha256}`; expects the stored record back (`replayed: true` on a replay),
//!   409 on a key reused with another payload (`{"code":"RECORD_EXISTS"}` for a taken id).
//! - `GET /records/{id}?model=&version=[&tenant=]`: the record, or 404.
//! - `POST /records/query`: `{tenant, model, version, filter}` with the canonical filter
//!   (`Query::to_filter_json`); expects `{"records": [...]}`.
//!
//! The caller's bearer token is forwarded. One pooled client; every call is bounded by
//! `IO_ADAPTER_TIMEOUT_MS`. Reads are retried (3 attempts, backoff) on transport errors and 5xx;
//! creates are not retried here (the caller retries with its Idempotency-Key).

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::payload::Payload;
use crate::domain::query::Query;
use crate::domain::record::{CreateOutcome, NewRecord, Record, RecordScope};
use crate::ports::{CallerToken, RecordStore, StoreError};

const READ_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

pub struct HttpStore {
    client: reqwest::Client,
    base: url::Url,
    timeout: Duration,
}

/// The create body. The payload is written as it was sent (exact numbers), which is why this is a
/// struct and not a `json!` tree.
#[derive(Serialize)]
struct WriteBody<'a> {
    tenant: Option<&'a str>,
    model: &'a str,
    version: &'a str,
    id: &'a str,
    payload: &'a Payload,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    payload_sha256: &'a str,
}

/// A record plus `replayed`, spelt out rather than `#[serde(flatten)]`: flattening buffers the
/// fields, and a buffered payload loses its exact text.
#[derive(Deserialize)]
struct UpstreamRecord {
    id: String,
    model: String,
    version: String,
    payload: Payload,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(default)]
    replayed: bool,
}

#[derive(Deserialize)]
struct UpstreamRecords {
    records: Vec<Record>,
}

fn upstream(message: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("IO adapter: {message}"))
}

impl HttpStore {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        crate::registry::fetch::install_crypto_provider();
        let mut base = url::Url::parse(base_url).map_err(|e| format!("IO_ADAPTER_BASE_URL: {e}"))?;
        // Join relative paths under the base path, not beside it.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("hex-core-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the IO adapter HTTP client: {e}"))?;
        Ok(Self { client, base, timeout })
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: url::Url, caller: &CallerToken) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, url);
        match &caller.0 {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a read, retrying transport failures and 5xx with backoff. Returns the final response.
    async fn read(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, StoreError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = build().send().await;
            let retryable = match &outcome {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            };
            if !retryable || attempt >= READ_ATTEMPTS {
                return outcome.map_err(|e| self.transport(e));
            }
            tracing::debug!(attempt, "IO adapter read failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    fn transport(&self, error: reqwest::Error) -> StoreError {
        if error.is_timeout() {
            upstream(format!(
                "no answer within {} ms (IO_ADAPTER_TIMEOUT_MS)",
                self.timeout.as_millis()
            ))
        } else if error.is_connect() {
            upstream(format!("cannot connect: {error}"))
        } else {
            upstream(error)
        }
    }
}

async fn json_body<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, StoreError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| upstream(format!("reading the answer: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| upstream(format!("malformed JSON answer: {e}")))
}

async fn unexpected(response: reqwest::Response) -> StoreError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(200).collect();
    upstream(format!("unexpected HTTP {status}: {excerpt}"))
}

fn scope_fields(scope: &RecordScope) -> Value {
    json!({"tenant": scope.tenant, "model": scope.model, "version": scope.version})
}

impl RecordStore for HttpStore {
    fn create<'a>(
        &'a self,
        caller: &'a CallerToken,
        new: NewRecord,
    ) -> BoxFuture<'a, Result<CreateOutcome, StoreError>> {
        Box::pin(async move {
            let record = &new.record;
            let body = WriteBody {
                tenant: new.scope.tenant.as_deref(),
                model: &new.scope.model,
                version: &new.scope.version,
                id: &record.id,
                payload: &record.payload,
                created_at: record.created_at,
                updated_at: record.updated_at,
                payload_sha256: &new.payload_sha256,
            };
            let response = self
                .request(Method::POST, self.url(&["records"]), caller)
                .header("Idempotency-Key", new.idempotency_key.as_str())
                .json(&body)
                .send()
                .await
                .map_err(|e| self.transport(e))?;
            match response.status() {
                StatusCode::OK | StatusCode::CREATED => {
                    let answer: UpstreamRecord = json_body(response).await?;
                    Ok(CreateOutcome {
                        record: Record {
                            id: answer.id,
                            model: answer.model,
                            version: answer.version,
                            payload: answer.payload,
                            created_at: answer.created_at,
                            updated_at: answer.updated_at,
                        },
                        replayed: answer.replayed,
                    })
                }
                StatusCode::CONFLICT => {
                    let error: Value = json_body(response).await.unwrap_or(Value::Null);
                    if error["code"] == "RECORD_EXISTS" {
                        Err(StoreError::RecordExists { id: record.id.clone() })
                    } else {
                        Err(StoreError::IdempotencyConflict)
                    }
                }
                _ => Err(unexpected(response).await),
            }
        })
    }

    fn get<'a>(
        &'a self,
        caller: &'a CallerToken,
        scope: &'a RecordScope,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let mut url = self.url(&["records", id]);
            {
                let mut pairs = url.query_pairs_mut();
                pairs
                    .append_pair("model", &scope.model)
                    .append_pair("version", &scope.version);
                if let Some(tenant) = &scope.tenant {
                    pairs.append_pair("tenant", tenant);
                }
            }
            let response = self.read(|| self.request(Method::GET, url.clone(), caller)).await?;
            match response.status() {
                StatusCode::OK => Ok(Some(json_body(response).await?)),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(unexpected(response).await),
            }
        })
    }

    fn query<'a>(
        &'a self,
        caller: &'a CallerToken,
        scope: &'a RecordScope,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            let mut body = scope_fields(scope);
            body["filter"] = query.to_filter_json();
            let url = self.url(&["records", "query"]);
            let response = self
                .read(|| self.request(Method::POST, url.clone(), caller).json(&body))
                .await?;
            match response.status() {
                StatusCode::OK => Ok(json_body::<UpstreamRecords>(response).await?.records),
                _ => Err(unexpected(response).await),
            }
        })
    }
}
