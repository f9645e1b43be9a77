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

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let service = demo_service(&[]).await;
    let http = client();
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/models", "GET, HEAD, OPTIONS"),
        (reqwest::Method::PUT, "/admin/health", "GET, HEAD, OPTIONS"),
        (reqwest::Method::GET, "/admin/registry/refresh", "POST, OPTIONS"),
        (
            reqwest::Method::PATCH,
            "/models/demo-passport/versions/0.1.0:validate",
            "POST, OPTIONS",
        ),
        (
            reqwest::Method::GET,
            "/models/demo-passport/versions/0.1.0:create",
            "POST, OPTIONS",
        ),
        (
            reqwest::Method::POST,
            "/models/demo-passport/versions/0.1.0",
            "GET, HEAD, OPTIONS",
        ),
        (
            reqwest::Method::POST,
            "/models/demo-passport/versions/0.1.0/schema",
            "GET, HEAD, OPTIONS",
        ),
    ] {
        let response = http.request(method.clone(), service.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_envelope(&response.json().await.unwrap(), "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn options_lists_the_allowed_methods_and_action_routes_do_not_advertise_get() {
    let service = demo_service(&[]).await;
    let http = client();
    for (path, allow) in [
        ("/models/demo-passport/versions/0.1.0:validate", "POST, OPTIONS"),
        ("/models/demo-passport/versions/0.1.0:create", "POST, OPTIONS"),
        ("/models/demo-passport/versions/0.1.0:query", "POST, OPTIONS"),
        ("/models/demo-passport/versions/0.1.0", "GET, HEAD, OPTIONS"),
        ("/models", "GET, HEAD, OPTIONS"),
        ("/admin/registry/refresh", "POST, OPTIONS"),
    ] {
        let response = http
            .request(reqwest::Method::OPTIONS, service.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        assert_eq!(response.headers()["allow"], allow, "{path}");
        assert!(response.headers().get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn an_artifact_etag_in_if_none_match_answers_304() {
    let service = demo_service(&[]).await;
    let http = client();
    let url = service.url("/models/demo-passport/versions/0.1.0/shacl");
    let first = http.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let bytes = first.bytes().await.unwrap();
    use sha2::Digest;
    assert_eq!(etag, format!("\"{}\"", hex::encode(sha2::Sha256::digest(&bytes))));

    for tags in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let response = http.get(&url).header("if-none-match", &tags).send().await.unwrap();
        assert_eq!(response.status(), 304, "{tags}");
        assert_eq!(response.headers()["etag"], etag.as_str());
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let response = http
        .get(&url)
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let service = demo_service(&[]).await;
    let response = client()
        .get(service.url("/models"))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_answers_preflights_and_errors_for_the_configured_origins() {
    let service = demo_service(&[
        ("CORS_ALLOWED_ORIGINS", "https://app.example.org"),
        ("AUTH_MODE", "forward_auth"),
    ])
    .await;
    let http = client();
    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            service.url("/models/demo-passport/versions/0.1.0:create"),
        )
        .header("origin", "https://app.example.org")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.org");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("idempotency-key")
    );
    assert_eq!(headers["access-control-max-age"], "600");

    // Errors carry the headers too, so a browser script can read the envelope.
    let unauthenticated = http
        .get(service.url("/models"))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    assert!(
        unauthenticated.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );

    let other = http
        .get(service.url("/models"))
        .header("origin", "https://evil.example.net")
        .header("x-auth-subject", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn made_up_methods_share_one_metric_label() {
    let service = demo_service(&[]).await;
    let addr = service.addr;
    let mut connection = support::raw_http::RawConnection::connect(addr).await;
    for i in 0..3000 {
        let response = connection.request(&format!("MADEUP{i}"), "/models", &[], b"").await;
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    let response = connection.request("MADEUPNOROUTE", "/no/such/route", &[], b"").await;
    assert_eq!(response.status, 404);
    let text = client()
        .get(service.url("/admin/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("MADEUP"), "no raw method reaches a label");
    assert!(
        text.contains("http_requests_total{method=\"_OTHER\",route=\"/models\",status=\"405\"} 3000"),
        "{text}"
    );
    assert!(text.contains("http_requests_total{method=\"_OTHER\",route=\"unmatched\",status=\"404\"} 1"));
    assert!(text.len() < 64 * 1024, "metrics stay small: {} bytes", text.len());
}

#[tokio::test]
async fn the_health_probe_skips_request_ids_and_metrics() {
    let service = demo_service(&[]).await;
    let http = client();
    for _ in 0..3 {
        let response = http
            .get(service.url("/admin/health"))
            .header("x-request-id", "probe-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers().get("x-request-id").is_none());
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
        let ready = http.get(service.url("/admin/ready")).send().await.unwrap();
        assert!(ready.headers().get("x-request-id").is_none());
    }
    let text = service.state.metrics.render();
    assert!(!text.contains("route=\"/admin/health\""), "{text}");
    assert!(!text.contains("route=\"/admin/ready\""), "{text}");
}

#[tokio::test]
async fn a_whitespace_only_idempotency_key_is_a_missing_key() {
    // HTTP strips leading and trailing whitespace from field values (RFC 9110 §5.5), so a
    // whitespace-only key reaches the service empty: 400 MISSING_IDEMPOTENCY_KEY, as documented in
    // the own contract's pattern. Inner spaces are part of a key.
    let service = demo_service(&[]).await;
    let valid = std::fs::read(demo_dir().join("examples/passport-valid.json")).unwrap();
    let mut connection = support::raw_http::RawConnection::connect(service.addr).await;
    for key in ["   ", "\t", " \t "] {
        let response = connection
            .request(
                "POST",
                "/models/demo-passport/versions/0.1.0:create",
                &[("content-type", "application/json"), ("idempotency-key", key)],
                &valid,
            )
            .await;
        assert_eq!(response.status, 400, "{key:?}");
        assert_envelope(&response.json(), "MISSING_IDEMPOTENCY_KEY");
    }
    let response = connection
        .request(
            "POST",
            "/models/demo-passport/versions/0.1.0:create",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "key with spaces"),
            ],
            &valid,
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", String::from_utf8_lossy(&response.body));

    // The own contract documents exactly this rule.
    let contract: Value = serde_json::from_str(hex_core_service::http::admin::OPENAPI_JSON).unwrap();
    let parameter = contract["paths"]["/models/{model}/versions/{version}:create"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap()
        .clone();
    let pattern = regex::Regex::new(parameter["schema"]["pattern"].as_str().unwrap()).unwrap();
    assert_eq!(parameter["schema"]["maxLength"], 255);
    for (key, accepted) in [
        ("a", true),
        ("key with spaces", true),
        ("k-1_2.3~x", true),
        ("", false),
        (" ", false),
        (" lead", false),
        ("trail ", false),
        ("tab\tinside", false),
        ("naïve", false),
    ] {
        assert_eq!(pattern.is_match(key), accepted, "{key:?}");
        assert_eq!(
            hex_core_service::domain::record::IdempotencyKey::parse(Some(key)).is_ok(),
            accepted || key.trim() != key && !key.trim().is_empty(),
            "{key:?}"
        );
    }
}
