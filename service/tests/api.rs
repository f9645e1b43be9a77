//! REST edge behaviour over real HTTP: error envelopes, limits, content types, probes, metrics,
//! request ids.

mod support;

use serde_json::{Value, json};
use support::{InProcessService, base_env, client, demo_dir};

async fn demo_service(extra: &[(&str, &str)]) -> InProcessService {
    let mut env = base_env("", "localhost", true);
    env.remove("REGISTRY_CATALOG_JSON");
    env.insert(
        "REGISTRY_CATALOG_FILE".into(),
        demo_dir().join("catalog.json").to_str().unwrap().into(),
    );
    env.insert("REGISTRY_ALLOW_LOCAL_ARTIFACTS".into(), "true".into());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    InProcessService::start(&env).await
}

fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body.get("details").is_some(), "details is always present: {body}");
}

async fn post_raw(
    service: &InProcessService,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = client()
        .post(service.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found_not_502() {
    let service = demo_service(&[]).await;
    let (status, body) = post_raw(
        &service,
        "/models/nope/versions/1.0.0:validate",
        "application/json",
        r#"{"payload":{}}"#,
    )
    .await;
    assert_eq!(status, 404);
    assert_envelope(&body, "MODEL_NOT_FOUND");
    let response = client()
        .get(service.url("/models/demo-passport/versions/9.9.9/schema"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_envelope(&response.json().await.unwrap(), "MODEL_NOT_FOUND");
}

#[tokio::test]
async fn missing_artifact_kind_is_404_artifact_not_found() {
    let server = support::ArtifactServer::http().await;
    server.set("/s.json", support::Route::ok("{}"));
    let catalog = json!([{"model": "m", "version": "1", "schema_url": server.url("/s.json")}]).to_string();
    let service = InProcessService::start(&base_env(&catalog, &server.host_port(), false)).await;
    let response = client()
        .get(service.url("/models/m/versions/1/owl"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_envelope(&body, "ARTIFACT_NOT_FOUND");
    assert_eq!(body["details"]["artifact"], "owl");

    let response = client()
        .get(service.url("/models/m/versions/1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_envelope(&response.json().await.unwrap(), "NOT_FOUND");
}

#[tokio::test]
async fn artifacts_have_their_content_types_and_etags() {
    let service = demo_service(&[]).await;
    for (kind, content_type) in [
        ("schema", "application/schema+json"),
        ("shacl", "text/turtle; charset=utf-8"),
        ("linkml", "application/yaml"),
        ("owl", "text/turtle; charset=utf-8"),
        ("openapi", "application/json"),
        ("route", "application/json"),
    ] {
        let response = client()
            .get(service.url(&format!("/models/demo-passport/versions/0.1.0/{kind}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{kind}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert!(response.headers().contains_key("etag"));
    }
}

#[tokio::test]
async fn model_detail_lists_artifacts_with_sha256_and_target_class() {
    let service = demo_service(&[]).await;
    let body: Value = client()
        .get(service.url("/models/demo-passport/versions/0.1.0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], "demo-passport");
    let schema = std::fs::read(demo_dir().join("models/demo-passport/0.1.0/schema.json")).unwrap();
    use sha2::Digest;
    assert_eq!(
        body["artifacts"]["schema"]["sha256"],
        hex::encode(sha2::Sha256::digest(&schema))
    );
    assert_eq!(body["target_class"]["name"], "Passport");
    assert!(body["validators"].as_array().unwrap().contains(&json!("json_schema")));
}

#[tokio::test]
async fn malformed_json_is_400_with_line_and_column() {
    let service = demo_service(&[]).await;
    let (status, body) = post_raw(
        &service,
        "/models/demo-passport/versions/0.1.0:validate",
        "application/json",
        "{\n  \"payload\": {,}\n}",
    )
    .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "BAD_REQUEST");
    assert_eq!(body["details"]["line"], 2);
    assert!(body["details"]["column"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn wrong_shapes_are_400_naming_the_problem() {
    let service = demo_service(&[]).await;
    let path = "/models/demo-passport/versions/0.1.0:validate";
    let (status, body) = post_raw(&service, path, "application/json", "{}").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("payload"), "{body}");
    let (status, body) = post_raw(&service, path, "application/json", r#"{"payload": [1]}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"]["field"], "payload");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let service = demo_service(&[]).await;
    let (status, body) = post_raw(
        &service,
        "/models/demo-passport/versions/0.1.0:validate",
        "text/plain",
        r#"{"payload":{}}"#,
    )
    .await;
    assert_eq!(status, 415);
    assert_envelope(&body, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn oversized_body_is_413_naming_the_limit() {
    let service = demo_service(&[("SERVER_REQUEST_MAX_BYTES", "2048")]).await;
    let big = json!({"payload": {"id": "x".repeat(4096)}}).to_string();
    let (status, body) = post_raw(
        &service,
        "/models/demo-passport/versions/0.1.0:validate",
        "application/json",
        big,
    )
    .await;
    assert_eq!(status, 413);
    assert_envelope(&body, "PAYLOAD_TOO_LARGE");
    assert_eq!(body["details"]["limit_bytes"], 2048);
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let service = demo_service(&[]).await;
    let response = client().get(service.url("/nothing/here")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_envelope(&response.json().await.unwrap(), "NOT_FOUND");

    let response = client().delete(service.url("/models")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_envelope(&response.json().await.unwrap(), "METHOD_NOT_ALLOWED");

    let (status, body) = post_raw(
        &service,
        "/models/demo-passport/versions/0.1.0:explode",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(status, 404);
    assert_envelope(&body, "NOT_FOUND");
}

#[tokio::test]
async fn path_traversal_and_overlong_segments_are_400() {
    let service = demo_service(&[]).await;
    for path in [
        "/models/..%2F..%2Fetc/versions/1/schema",
        "/models/a/versions/..%2Fx/schema",
        &format!("/models/{}/versions/1/schema", "m".repeat(200)),
    ] {
        let response = client().get(service.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_envelope(&response.json().await.unwrap(), "BAD_REQUEST");
    }
}

#[tokio::test]
async fn validate_reports_violations_in_the_contract_shape() {
    let service = demo_service(&[]).await;
    let invalid = std::fs::read_to_string(demo_dir().join("examples/passport-invalid.json")).unwrap();
    let (status, body) = post_raw(
        &service,
        "/models/demo-passport/versions/0.1.0:validate",
        "application/json",
        invalid,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["passed"], false);
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for item in results {
        assert!(item["path"].as_str().unwrap().starts_with('$'), "{item}");
        assert!(item["message"].is_string());
        assert!(
            ["error", "warning", "info"].contains(&item["severity"].as_str().unwrap()),
            "{item}"
        );
    }
    assert!(results.iter().any(|r| r["severity"] == "error"));
    let paths: Vec<&str> = results.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"$.record_scope"), "{paths:?}");
    assert!(paths.contains(&"$.product_name"), "{paths:?}");
    assert!(paths.contains(&"$.manufacturer.country"), "{paths:?}");
    let validators = body["validators"].as_array().unwrap();
    assert!(
        validators
            .iter()
            .any(|v| v["kind"] == "json_schema" && v["passed"] == false)
    );

    let valid = std::fs::read_to_string(demo_dir().join("examples/passport-valid.json")).unwrap();
    let (status, body) = post_raw(
        &service,
        "/models/demo-passport/versions/0.1.0:validate",
        "application/json",
        valid,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["passed"], true, "{body}");
}

#[tokio::test]
async fn request_id_is_generated_or_echoed() {
    let service = demo_service(&[]).await;
    let response = client().get(service.url("/models")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let response = client()
        .get(service.url("/models"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn admin_version_count_and_status() {
    let service = demo_service(&[]).await;
    let http = client();
    let version: Value = http
        .get(service.url("/admin/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["service"], "hex-core-service");
    assert_eq!(version["service_version"], env!("CARGO_PKG_VERSION"));
    assert!(version["openapi_version"].as_str().is_some_and(|v| !v.is_empty()));
    let count: Value = http
        .get(service.url("/admin/models/count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count, json!({"models_count": 1}));
    let status: Value = http
        .get(service.url("/admin/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["models_loaded"], 1);
    assert_eq!(status["io_adapter"]["id"], "memory");
    assert_eq!(status["auth"]["mode"], "none");
    assert!(status["uptime_seconds"].is_u64());
    assert_eq!(status["catalog_sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn metrics_are_served_only_when_enabled() {
    let service = demo_service(&[("METRICS_ENABLED", "false")]).await;
    let response = client().get(service.url("/admin/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_envelope(&response.json().await.unwrap(), "METRICS_DISABLED");

    let service = demo_service(&[]).await;
    let http = client();
    let valid = std::fs::read_to_string(demo_dir().join("examples/passport-valid.json")).unwrap();
    http.post(service.url("/models/demo-passport/versions/0.1.0:validate"))
        .header("content-type", "application/json")
        .body(valid)
        .send()
        .await
        .unwrap();
    let response = http.get(service.url("/admin/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        "http_requests_total{method=\"POST\",route=\"/models/{model}/versions/{version}\",status=\"200\"} 1",
        "validation_requests_total{model=\"demo-passport\",version=\"0.1.0\",result=\"passed\"} 1",
        "registry_models_loaded 1",
        "registry_refresh_total{result=\"success\"} 1",
        "registry_artifact_fetch_total{artifact=\"schema\",result=\"success\"} 1",
        "http_requests_in_flight",
        "validation_duration_seconds_count",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
