//! Real record stores for the tests: a fresh PostgreSQL database per test run (from
//! `HEX_TEST_DATABASE_URL`, which `scripts/test` sets after `scripts/postgres up`), and a real HTTP
//! server implementing the IO adapter contract, backed by the memory store.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hex_core_service::domain::payload::Payload;
use hex_core_service::domain::query::Query;
use hex_core_service::domain::record::{IdempotencyKey, NewRecord, Record, RecordScope};
use hex_core_service::ports::{CallerToken, RecordStore, StoreError};
use hex_core_service::store::memory::MemoryStore;
use hex_core_service::store::postgres::PostgresStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// `HEX_TEST_DATABASE_URL`, or a failure that says how to get one: PostgreSQL tests never skip.
pub fn postgres_admin_url() -> String {
    std::env::var("HEX_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "HEX_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL. \
             Run scripts/test (which starts one), or `eval \"$(scripts/postgres up)\"` first"
        )
    })
}

/// A database created once per test binary run, so runs never see each other's rows.
fn test_database_config() -> tokio_postgres::Config {
    static CONFIG: OnceLock<tokio_postgres::Config> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let admin: tokio_postgres::Config = postgres_admin_url().parse().expect("HEX_TEST_DATABASE_URL parses");
            let name = format!("hex_test_{}", uuid::Uuid::new_v4().simple());
            let create_with = admin.clone();
            let create_name = name.clone();
            // Own thread and runtime: the tests' runtimes come and go, this database stays.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let (client, connection) = create_with
                        .connect(tokio_postgres::NoTls)
                        .await
                        .unwrap_or_else(|e| panic!("cannot connect to HEX_TEST_DATABASE_URL: {e}"));
                    tokio::spawn(connection);
                    client
                        .batch_execute(&format!("CREATE DATABASE {create_name}"))
                        .await
                        .expect("CREATE DATABASE");
                });
            })
            .join()
            .expect("test database created");
            let mut config = admin;
            config.dbname(&name);
            config
        })
        .clone()
}

/// A PostgreSQL store on the run's database, migrated. Each call has its own pool, bound to the
/// calling test's runtime.
pub async fn postgres_store() -> Arc<PostgresStore> {
    let store = PostgresStore::from_config(test_database_config(), Duration::from_secs(10)).expect("pool builds");
    store.migrate().await.expect("migrations apply");
    Arc::new(store)
}

/// The URL of the run's test database (for the service under test).
pub fn postgres_test_url() -> String {
    let config = test_database_config();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        other => panic!("HEX_TEST_DATABASE_URL must use TCP, got {other:?}"),
    };
    format!(
        "postgres://{}@{}:{}/{}",
        config.get_user().unwrap_or("postgres"),
        host,
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("postgres")
    )
}

/// What the IO adapter server saw, for assertions on forwarding.
#[derive(Default, Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Clone)]
struct AdapterState {
    store: Arc<MemoryStore>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

/// A real HTTP server implementing `io-adapter.openapi.json` with the bodies the HTTP adapter
/// documents, backed by the memory store.
pub struct IoAdapterServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IoAdapterServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Deserialize)]
struct WriteBody {
    tenant: Option<String>,
    model: String,
    version: String,
    id: String,
    /// Kept as sent (exact numbers), as an IO adapter should.
    payload: Payload,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: time::OffsetDateTime,
    payload_sha256: String,
}

#[derive(Serialize)]
struct WrittenRecord<'a> {
    #[serde(flatten)]
    record: &'a Record,
    replayed: bool,
}

#[derive(Serialize)]
struct FoundRecords {
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct QueryBody {
    tenant: Option<String>,
    model: String,
    version: String,
    filter: Value,
}

fn remember(state: &AdapterState, method: &str, path: &str, headers: &HeaderMap) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    state.seen.lock().unwrap().push(SeenRequest {
        method: method.into(),
        path: path.into(),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
    });
}

fn caller(headers: &HeaderMap) -> CallerToken {
    CallerToken(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    )
}

async fn write_record(State(state): State<AdapterState>, headers: HeaderMap, Json(body): Json<WriteBody>) -> Response {
    remember(&state, "POST", "/records", &headers);
    let key = match IdempotencyKey::parse(headers.get("idempotency-key").and_then(|v| v.to_str().ok())) {
        Ok(key) => key,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"message": e.to_string()}))).into_response(),
    };
    let new = NewRecord {
        scope: RecordScope::new(body.tenant, body.model.clone(), body.version.clone()),
        record: Record {
            id: body.id,
            model: body.model,
            version: body.version,
            payload: body.payload,
            created_at: body.created_at,
            updated_at: body.updated_at,
        },
        idempotency_key: key,
        payload_sha256: body.payload_sha256,
    };
    match state.store.create(&caller(&headers), new).await {
        // Written field by field, not through a `Value`, so the payload keeps its exact text.
        Ok(outcome) => Json(WrittenRecord {
            record: &outcome.record,
            replayed: outcome.replayed,
        })
        .into_response(),
        Err(StoreError::IdempotencyConflict) => {
            (StatusCode::CONFLICT, Json(json!({"code": "IDEMPOTENCY_CONFLICT"}))).into_response()
        }
        Err(StoreError::RecordExists { .. }) => {
            (StatusCode::CONFLICT, Json(json!({"code": "RECORD_EXISTS"}))).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn read_record(
    State(state): State<AdapterState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<BTreeMap<String, String>>,
) -> Response {
    remember(&state, "GET", &format!("/records/{id}"), &headers);
    let scope = RecordScope::new(
        params.get("tenant").cloned(),
        params.get("model").cloned().unwrap_or_default(),
        params.get("version").cloned().unwrap_or_default(),
    );
    match state.store.get(&caller(&headers), &scope, &id).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Json(json!({"code": "NOT_FOUND"}))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn query_records(State(state): State<AdapterState>, headers: HeaderMap, Json(body): Json<QueryBody>) -> Response {
    remember(&state, "POST", "/records/query", &headers);
    let query = match Query::parse_filter(&body.filter) {
        Ok(query) => query,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"message": e.to_string()}))).into_response(),
    };
    let scope = RecordScope::new(body.tenant, body.model, body.version);
    match state.store.query(&caller(&headers), &scope, &query).await {
        Ok(records) => Json(FoundRecords { records }).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

impl IoAdapterServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = AdapterState {
            store: Arc::new(MemoryStore::new()),
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/records", post(write_record))
            .route("/records/query", post(query_records))
            .route("/records/{id}", get(read_record))
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, seen, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}
