//! `:create`, `:query` and `GET .../records/{id}` through the real REST API (the service on a free
//! port, the bundled demo model), including the `http` adapter against a real IO adapter server
//! and against failing upstreams, and the `io_adapter_*` / `idempotency_conflicts` metrics.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::records::IoAdapterServer;
use support::{ArtifactServer, InProcessService, Route, client, demo_dir};

const BASE: &str = "/models/demo-passport/versions/0.1.0";

/// The demo environment with metrics on (the records tests read them), plus `adapter`.
fn demo_env(adapter: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut env = support::demo_env(&[("METRICS_ENABLED", "true")]);
    env.extend(adapter.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

fn valid_payload() -> Value {
    let example: Value =
        serde_json::from_slice(&std::fs::read(demo_dir().join("examples/passport-valid.json")).unwrap()).unwrap();
    example["payload"].clone()
}

fn invalid_payload() -> Value {
    let example: Value =
        serde_json::from_slice(&std::fs::read(demo_dir().join("examples/passport-invalid.json")).unwrap()).unwrap();
    example["payload"].clone()
}

async fn post(service: &InProcessService, path: &str, key: Option<&str>, body: &Value) -> (u16, Value, bool) {
    let mut request = client().post(service.url(path)).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotency-replayed").is_some();
    (status, response.json().await.unwrap(), replayed)
}

async fn get(service: &InProcessService, path: &str) -> (u16, Value) {
    let response = client().get(service.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn metrics(service: &InProcessService) -> String {
    client()
        .get(service.url("/admin/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn create_path() -> String {
    format!("{BASE}:create")
}

#[tokio::test]
async fn create_needs_an_idempotency_key() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let body = json!({"payload": valid_payload()});
    for key in [None, Some("")] {
        let (status, error, _) = post(&service, &create_path(), key, &body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], "MISSING_IDEMPOTENCY_KEY");
    }
    let (status, error, _) = post(&service, &create_path(), Some(&"k".repeat(256)), &body).await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = get(&service, &format!("{BASE}/records/passport-0001")).await;
    assert_eq!(status, 404, "nothing was written");
}

#[tokio::test]
async fn invalid_payload_is_422_with_the_report_and_writes_nothing() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let (status, error, _) = post(
        &service,
        &create_path(),
        Some("k-invalid"),
        &json!({"payload": invalid_payload()}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "VALIDATION_FAILED");
    assert_eq!(error["details"]["passed"], false);
    assert!(!error["details"]["results"].as_array().unwrap().is_empty(), "{error}");
    let (status, _) = get(&service, &format!("{BASE}/records/passport-0002")).await;
    assert_eq!(status, 404);
    let (_, found, _) = post(
        &service,
        &format!("{BASE}:query"),
        None,
        &json!({"filter": {"where": []}}),
    )
    .await;
    assert_eq!(found["records"], json!([]));
}

#[tokio::test]
async fn create_replay_and_conflict_through_the_api() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let payload = valid_payload();
    let (status, created, replayed) = post(&service, &create_path(), Some("key-1"), &json!({"payload": payload})).await;
    assert_eq!(status, 200, "{created}");
    assert!(!replayed);
    assert_eq!(created["id"], "passport-0001");
    assert_eq!(created["model"], "demo-passport");
    assert_eq!(created["version"], "0.1.0");
    assert_eq!(created["payload"], payload);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, again, replayed) = post(&service, &create_path(), Some("key-1"), &json!({"payload": payload})).await;
    assert_eq!(status, 200);
    assert!(replayed);
    assert_eq!(again, created);

    let mut changed = payload.clone();
    changed["mass_kg"] = json!(2.0);
    let (status, error, _) = post(&service, &create_path(), Some("key-1"), &json!({"payload": changed})).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], "IDEMPOTENCY_CONFLICT");

    let (status, error, _) = post(&service, &create_path(), Some("key-2"), &json!({"payload": changed})).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], "RECORD_EXISTS");

    let (status, read) = get(&service, &format!("{BASE}/records/passport-0001")).await;
    assert_eq!(status, 200);
    assert_eq!(read, created);
    let (status, missing) = get(&service, &format!("{BASE}/records/nope")).await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], "RECORD_NOT_FOUND");

    let text = metrics(&service).await;
    assert_eq!(metric_value(&text, "idempotency_conflicts_total"), 1.0, "{text}");
    assert_eq!(
        metric_value(
            &text,
            "io_adapter_requests_total{adapter=\"memory\",operation=\"create\"}"
        ),
        4.0,
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "io_adapter_request_duration_seconds_count{adapter=\"memory\",operation=\"get\"}"
        ),
        2.0,
        "{text}"
    );
    assert_eq!(metric_value(&text, "io_adapter_errors_total"), 0.0, "{text}");
}

#[tokio::test]
async fn create_for_an_unknown_model_is_404() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let (status, error, _) = post(
        &service,
        "/models/nope/versions/1:create",
        Some("k"),
        &json!({"payload": valid_payload()}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "MODEL_NOT_FOUND");
    let (status, error) = get(&service, "/models/nope/versions/1/records/x").await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "MODEL_NOT_FOUND");
}

#[tokio::test]
async fn query_returns_matching_records_and_refuses_bad_clauses_by_name() {
    let service = InProcessService::start(&demo_env(&[])).await;
    for (n, mass) in [(1, 1.5), (2, 0.5), (3, 3.0)] {
        let mut payload = valid_payload();
        payload["id"] = json!(format!("p-{n}"));
        payload["mass_kg"] = json!(mass);
        let (status, body, _) = post(
            &service,
            &create_path(),
            Some(&format!("k{n}")),
            &json!({"payload": payload}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, found, _) = post(
        &service,
        &format!("{BASE}:query"),
        None,
        &json!({"filter": {
            "where": [{"field": "payload.materials[0].name", "op": "eq", "value": "aluminium"},
                      {"field": "payload.mass_kg", "op": "gte", "value": 1}],
            "sort": {"field": "payload.mass_kg", "direction": "desc"},
            "limit": 10
        }}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let ids: Vec<&str> = found["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p-3", "p-1"]);
    assert_eq!(found["limit"], 10);

    let bad = [
        (
            json!({"filter": {"where": [{"field": "id", "op": "eq", "value": "x"}, {"field": "owner", "op": "eq", "value": 1}]}}),
            "where[1]",
            Some("owner"),
        ),
        (
            json!({"filter": {"where": [{"field": "payload.a", "op": "like", "value": "x"}]}}),
            "where[0]",
            Some("payload.a"),
        ),
        (
            json!({"filter": {"where": [{"field": "payload.a", "op": "in", "value": "x"}]}}),
            "where[0]",
            Some("payload.a"),
        ),
        (
            json!({"filter": {"where": [{"field": "payload.a", "op": "exists", "value": 1}]}}),
            "where[0]",
            Some("payload.a"),
        ),
        (json!({"filter": {"where": [], "group": 1}}), "filter.group", None),
        (json!({"filter": {"limit": 5000}}), "filter.limit", None),
        (
            json!({"filter": {"sort": [{"field": "payload.a", "direction": "sideways"}]}}),
            "sort[0]",
            Some("payload.a"),
        ),
        (json!({"where": []}), "body", None),
    ];
    for (body, clause, field) in bad {
        let (status, error, _) = post(&service, &format!("{BASE}:query"), None, &body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["code"], "INVALID_QUERY", "{error}");
        assert_eq!(error["details"]["clause"], clause, "{error}");
        assert!(error["message"].as_str().unwrap().contains(clause), "{error}");
        if let Some(field) = field {
            assert_eq!(error["details"]["field"], field, "{error}");
            assert!(error["message"].as_str().unwrap().contains(field), "{error}");
        }
    }
}

#[tokio::test]
async fn malformed_query_json_is_invalid_query() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let response = client()
        .post(service.url(&format!("{BASE}:query")))
        .header("content-type", "application/json")
        .body("{\"filter\": {\"where\": [}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "INVALID_QUERY", "{error}");
    assert_eq!(error["details"]["clause"], "body", "{error}");
}

#[tokio::test]
async fn enforced_scopes_guard_record_reads_and_writes() {
    let service = InProcessService::start(&demo_env(&[
        ("AUTH_ENFORCE_SCOPES", "true".into()),
        ("AUTH_NONE_SCOPES", "records:read".into()),
    ]))
    .await;
    let (status, error, _) = post(
        &service,
        &create_path(),
        Some("k"),
        &json!({"payload": valid_payload()}),
    )
    .await;
    assert_eq!(status, 403, "{error}");
    assert!(error["message"].as_str().unwrap().contains("records:write"), "{error}");
    let (status, found, _) = post(&service, &format!("{BASE}:query"), None, &json!({"filter": {}})).await;
    assert_eq!(status, 200, "{found}");
    let (status, _) = get(&service, &format!("{BASE}/records/x")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn http_adapter_forwards_token_and_key_to_a_real_io_adapter() {
    let upstream = IoAdapterServer::start().await;
    let mut env = demo_env(&[
        ("IO_ADAPTER_ID", "http".into()),
        ("IO_ADAPTER_BASE_URL", upstream.base_url()),
        ("AUTH_MODE", "forward_auth".into()),
        ("AUTH_FORWARD_TOKEN_HEADER", "x-auth-token".into()),
        ("AUTH_FORWARD_TENANT_HEADER", "x-auth-tenant".into()),
    ]);
    env.remove("AUTH_ALLOW_INSECURE_NONE");
    let service = InProcessService::start(&env).await;
    let http = client();
    let send = |builder: reqwest::RequestBuilder| {
        builder
            .header("x-auth-subject", "alice")
            .header("x-auth-token", "tok-123")
            .header("x-auth-tenant", "acme")
            .send()
    };
    let response = send(
        http.post(service.url(&format!("{BASE}:create")))
            .header("Idempotency-Key", "fwd-1")
            .json(&json!({"payload": valid_payload()})),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let response = send(http.get(service.url(&format!("{BASE}/records/passport-0001"))))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = send(
        http.post(service.url(&format!("{BASE}:query")))
            .json(&json!({"filter": {"where": [{"field": "id", "op": "eq", "value": "passport-0001"}]}})),
    )
    .await
    .unwrap();
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["records"].as_array().unwrap().len(), 1, "{found}");

    let seen = upstream.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer tok-123")),
        "{seen:?}"
    );
    assert_eq!(seen[0].idempotency_key.as_deref(), Some("fwd-1"));
    assert_eq!(seen[1].path, "/records/passport-0001");
}

/// Every upstream failure is a fast 502 STORE_ERROR, never a hang or a 500.
#[tokio::test]
async fn http_adapter_failures_are_store_errors() {
    let broken = ArtifactServer::http().await;
    broken.set("/fail/records", Route::status(500));
    broken.set("/fail/records/query", Route::status(503));
    broken.set("/fail/records/x", Route::status(500));
    broken.set("/slow/records", Route::ok("{}").with_delay(Duration::from_secs(5)));
    broken.set(
        "/slow/records/query",
        Route::ok("{}").with_delay(Duration::from_secs(5)),
    );
    broken.set("/junk/records", Route::ok("{not json"));
    broken.set("/junk/records/query", Route::ok("{\"records\": 7}"));
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}")
    };
    let upstreams = [
        ("refused", refused),
        ("500", broken.url("/fail")),
        ("timeout", broken.url("/slow")),
        ("malformed", broken.url("/junk")),
    ];
    for (name, base_url) in upstreams {
        let service = InProcessService::start(&demo_env(&[
            ("IO_ADAPTER_ID", "http".into()),
            ("IO_ADAPTER_BASE_URL", base_url),
            ("IO_ADAPTER_TIMEOUT_MS", "300".into()),
        ]))
        .await;
        let started = Instant::now();
        let (status, error, _) = post(
            &service,
            &create_path(),
            Some("k"),
            &json!({"payload": valid_payload()}),
        )
        .await;
        assert_eq!(status, 502, "{name} create: {error}");
        assert_eq!(error["code"], "STORE_ERROR", "{name}: {error}");
        let (status, error, _) = post(&service, &format!("{BASE}:query"), None, &json!({"filter": {}})).await;
        assert_eq!(status, 502, "{name} query: {error}");
        assert_eq!(error["code"], "STORE_ERROR");
        if name == "500" {
            let (status, error) = get(&service, &format!("{BASE}/records/x")).await;
            assert_eq!(status, 502, "{error}");
            assert!(broken.hits("/fail/records/x") >= 2, "reads are retried");
            assert_eq!(broken.hits("/fail/records"), 1, "creates are not retried");
        }
        // 300 ms per attempt, 3 read attempts with backoff: well under the bound.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{name} took {:?}",
            started.elapsed()
        );
        let text = metrics(&service).await;
        assert!(
            metric_value(&text, "io_adapter_errors_total{adapter=\"http\",operation=\"create\"") >= 1.0,
            "{name}: {text}"
        );
    }
}
