//! A real HTTP server with the admin endpoints of a hex-core-service replica, answering what a
//! test sets: `GET /admin/ready` (interface 1 of docs/operator.md: the same JSON on 200 and 503),
//! `GET /admin/version`, and `POST /admin/registry/refresh` (counted, with the token it got).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Answers {
    ready: Value,
    /// Becomes the ready answer at the next refresh (the replica reloaded its file).
    after_refresh: Option<Value>,
    version: String,
    refreshes: Vec<Option<String>>,
}

#[derive(Clone)]
pub struct StubReplica {
    pub addr: SocketAddr,
    answers: Arc<Mutex<Answers>>,
}

/// A ready body of interface 1: `catalog_sha256`, and `failed` entries as (model, version, transient).
pub fn ready_body(sha: &str, failed: &[(&str, &str, bool)]) -> Value {
    let failed_entries: Vec<Value> = failed
        .iter()
        .map(|(model, version, transient)| {
            json!({"model": model, "version": version, "state": "failed", "artifact": "shacl",
                   "error": format!("GET http://artifacts.example/{model}/{version}/shapes.ttl: HTTP 503"),
                   "transient": transient, "attempts": 2, "since": "2026-11-27T10:00:00Z",
                   "next_retry_at": if *transient { json!("2026-11-27T10:00:08Z") } else { Value::Null }})
        })
        .collect();
    let total = 2;
    json!({
        "status": if failed.is_empty() { "ready" } else { "not_ready" },
        "reason": if failed.is_empty() { Value::Null } else { json!(format!("{} catalog entries failed to load", failed.len())) },
        "catalog_sha256": sha,
        "models_loaded": total - failed.len(),
        "entries": {"total": total, "loaded": total - failed.len(), "stale": 0, "failed": failed.len()},
        "failed_entries": failed_entries,
        "auth": {"ready": true},
    })
}

impl StubReplica {
    /// Serves on `host` (an address of a `TestNetwork`), any free port.
    pub async fn start(host: IpAddr, ready: Value) -> Self {
        let answers = Arc::new(Mutex::new(Answers {
            ready,
            version: "0.1.0-stub".into(),
            ..Default::default()
        }));
        let app = Router::new()
            .route(
                "/admin/ready",
                get(|State(a): State<Arc<Mutex<Answers>>>| async move {
                    let body = a.lock().unwrap().ready.clone();
                    let code = if body["status"] == "ready" {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, axum::Json(body)).into_response()
                }),
            )
            .route(
                "/admin/version",
                get(|State(a): State<Arc<Mutex<Answers>>>| async move {
                    let version = a.lock().unwrap().version.clone();
                    axum::Json(json!({"service": "hex-core-service", "service_version": version}))
                }),
            )
            .route(
                "/admin/registry/refresh",
                post(|State(a): State<Arc<Mutex<Answers>>>, headers: HeaderMap| async move {
                    let mut a = a.lock().unwrap();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    a.refreshes.push(auth);
                    if let Some(next) = a.after_refresh.take() {
                        a.ready = next;
                    }
                    axum::Json(json!({"catalog_sha256": a.ready["catalog_sha256"], "models_found": 2, "errors": []}))
                }),
            )
            .with_state(answers.clone());
        let listener = tokio::net::TcpListener::bind((host, 0))
            .await
            .expect("bind the stub replica");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, answers }
    }

    pub fn set_ready(&self, body: Value) {
        self.answers.lock().unwrap().ready = body;
    }

    pub fn set_after_refresh(&self, body: Value) {
        self.answers.lock().unwrap().after_refresh = Some(body);
    }

    /// The `Authorization` header of every refresh so far.
    pub fn refreshes(&self) -> Vec<Option<String>> {
        self.answers.lock().unwrap().refreshes.clone()
    }
}

/// An EndpointSlice as the endpointslice controller makes it for the operator's Service `service`
/// (the Service's labels copied, `kubernetes.io/service-name`), with one endpoint per
/// `(address, pod, ready)`, all on the same `http` port.
pub fn endpoint_slice(name: &str, service: &str, port: u16, endpoints: &[(SocketAddr, &str, bool)]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(addr, pod, ready)| {
            json!({"addresses": [addr.ip().to_string()], "conditions": {"ready": ready},
                   "targetRef": {"kind": "Pod", "name": pod}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/service-name": service,
            "app.kubernetes.io/managed-by": "hex-core-operator",
            "endpointslice.kubernetes.io/managed-by": "hex-core-tests",
        }},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    })
}
