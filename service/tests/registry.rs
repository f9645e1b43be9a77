//! The catalog registry against real HTTP and HTTPS artifact servers on 127.0.0.1: URL policy,
//! redirects, size and time limits, malformed catalogs, atomic refresh, coalescing, caching.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{ArtifactServer, InProcessService, Route, TestTls, base_env, client};

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
  "required":["id"],"properties":{"id":{"type":"string"}}}"#;

fn catalog(entries: &[Value]) -> String {
    json!({ "models": entries }).to_string()
}

fn entry(model: &str, version: &str, schema_url: &str) -> Value {
    json!({"model": model, "version": version, "schema_url": schema_url})
}

async fn refresh(service: &InProcessService) -> (u16, Value) {
    let response = client()
        .post(service.url("/admin/registry/refresh"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn models(service: &InProcessService) -> Value {
    client()
        .get(service.url("/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn loads_from_an_allowed_http_host_with_a_port() {
    let server = ArtifactServer::http().await;
    server.set("/m/schema.json", Route::ok(SCHEMA));
    let cat = catalog(&[entry("m", "1.0.0", &server.url("/m/schema.json"))]);
    let service = InProcessService::start(&base_env(&cat, &server.host_port(), false)).await;
    assert_eq!(
        models(&service).await,
        json!({"models": [{"id": "m", "version": "1.0.0"}]})
    );
}

#[tokio::test]
async fn host_not_in_allow_list_fails_that_entry_only() {
    let server = ArtifactServer::http().await;
    server.set("/a.json", Route::ok(SCHEMA));
    let good = entry("good", "1", &server.url("/a.json"));
    // Same host, other port: `127.0.0.1:PORT` admits only that port.
    let other_port = format!("http://127.0.0.1:{}/a.json", server.addr.port() + 1);
    let bad = entry("bad", "1", &other_port);
    let service = InProcessService::start(&base_env(&catalog(&[good, bad]), &server.host_port(), false)).await;
    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200);
    assert_eq!(report["models_found"], 1);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert!(
        errors[0].as_str().unwrap().contains("not in REGISTRY_ALLOWED_HOSTS"),
        "{report}"
    );
    assert_eq!(server.hits("/a.json"), 2, "the allowed entry is fetched on both loads");
}

#[tokio::test]
async fn https_rule_refuses_plain_http_and_accepts_a_real_tls_server() {
    let tls = TestTls::generate();
    let https = ArtifactServer::https(&tls).await;
    https.set("/s.json", Route::ok(SCHEMA));
    let http = ArtifactServer::http().await;
    http.set("/s.json", Route::ok(SCHEMA));

    let cat = catalog(&[
        entry("secure", "1", &https.url("/s.json")),
        entry("plain", "1", &http.url("/s.json")),
    ]);
    let mut env = base_env(&cat, &format!("{},{}", https.host_port(), http.host_port()), true);
    env.insert("REGISTRY_CA_FILE".into(), tls.ca_file.to_str().unwrap().into());
    let service = InProcessService::start(&env).await;

    assert_eq!(
        models(&service).await,
        json!({"models": [{"id": "secure", "version": "1"}]})
    );
    let (_, report) = refresh(&service).await;
    assert!(
        report["errors"][0].as_str().unwrap().contains("only https is allowed"),
        "{report}"
    );
    assert_eq!(http.hits("/s.json"), 0, "a refused URL is never fetched");
}

#[tokio::test]
async fn https_server_with_an_untrusted_certificate_is_an_entry_error() {
    let tls = TestTls::generate();
    let https = ArtifactServer::https(&tls).await;
    https.set("/s.json", Route::ok(SCHEMA));
    let cat = catalog(&[entry("m", "1", &https.url("/s.json"))]);
    // No REGISTRY_CA_FILE: the generated CA is not trusted.
    let service = InProcessService::start(&base_env(&cat, &https.host_port(), true)).await;
    let (_, report) = refresh(&service).await;
    assert_eq!(report["models_found"], 0, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
}

#[tokio::test]
async fn redirect_to_a_forbidden_host_is_an_entry_error_and_not_followed() {
    let allowed = ArtifactServer::http().await;
    let forbidden = ArtifactServer::http().await;
    forbidden.set("/s.json", Route::ok(SCHEMA));
    allowed.set("/moved.json", Route::redirect(forbidden.url("/s.json")));
    allowed.set("/ok.json", Route::ok(SCHEMA));
    allowed.set("/hop.json", Route::redirect(allowed.url("/ok.json")));
    let cat = catalog(&[
        entry("moved", "1", &allowed.url("/moved.json")),
        entry("hop", "1", &allowed.url("/hop.json")),
    ]);
    let service = InProcessService::start(&base_env(&cat, &allowed.host_port(), false)).await;
    let (_, report) = refresh(&service).await;
    assert_eq!(report["models_found"], 1, "{report}");
    let error = report["errors"][0].as_str().unwrap();
    assert!(error.contains("moved@1"), "{error}");
    assert!(error.contains("redirect refused"), "{error}");
    assert_eq!(forbidden.hits("/s.json"), 0, "the forbidden host is never contacted");
    assert_eq!(
        models(&service).await,
        json!({"models": [{"id": "hop", "version": "1"}]})
    );
}

#[tokio::test]
async fn oversize_and_slow_artifacts_fail_their_entries_within_bounds() {
    let server = ArtifactServer::http().await;
    server.set("/big.json", Route::ok(vec![b' '; 64 * 1024]));
    server.set("/slow.json", Route::ok(SCHEMA).with_delay(Duration::from_secs(5)));
    server.set("/ok.json", Route::ok(SCHEMA));
    let cat = catalog(&[
        entry("big", "1", &server.url("/big.json")),
        entry("slow", "1", &server.url("/slow.json")),
        entry("ok", "1", &server.url("/ok.json")),
    ]);
    let mut env = base_env(&cat, &server.host_port(), false);
    env.insert("REGISTRY_ARTIFACT_MAX_BYTES".into(), "16384".into());
    env.insert("REGISTRY_FETCH_TIMEOUT_MS".into(), "300".into());
    let service = InProcessService::start(&env).await;
    let started = std::time::Instant::now();
    let (_, report) = refresh(&service).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the fetch timeout"
    );
    assert_eq!(report["models_found"], 1, "{report}");
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("big@1") && e.contains("16384 byte limit")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("slow@1") && e.contains("timed out")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn artifact_that_does_not_compile_fails_its_entry() {
    let server = ArtifactServer::http().await;
    server.set("/bad.json", Route::ok("{\"type\": 42}"));
    server.set("/404.json", Route::status(404));
    let cat = catalog(&[
        entry("bad", "1", &server.url("/bad.json")),
        entry("missing", "1", &server.url("/404.json")),
    ]);
    let service = InProcessService::start(&base_env(&cat, &server.host_port(), false)).await;
    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200);
    assert_eq!(report["models_found"], 0);
    let errors = report["errors"].to_string();
    assert!(errors.contains("not a valid JSON Schema"), "{errors}");
    assert!(errors.contains("HTTP status 404"), "{errors}");
    let entries = report["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["loaded"] == false), "{report}");
}

/// A catalog served over HTTP that the test can rewrite between refreshes.
async fn catalog_server(initial: &str) -> ArtifactServer {
    let server = ArtifactServer::http().await;
    server.set("/catalog.json", Route::ok(initial.to_string()));
    server.set("/a.json", Route::ok(SCHEMA));
    server.set("/b.json", Route::ok(SCHEMA));
    server
}

fn url_env(server: &ArtifactServer) -> std::collections::BTreeMap<String, String> {
    let mut env = base_env("", &server.host_port(), false);
    env.remove("REGISTRY_CATALOG_JSON");
    env.insert("REGISTRY_CATALOG_URL".into(), server.url("/catalog.json"));
    env
}

#[tokio::test]
async fn malformed_or_duplicated_catalog_keeps_the_previous_snapshot() {
    let server = ArtifactServer::http().await;
    server.set("/a.json", Route::ok(SCHEMA));
    let good = catalog(&[entry("a", "1", &server.url("/a.json"))]);
    server.set("/catalog.json", Route::ok(good));
    let service = InProcessService::start(&url_env(&server)).await;
    let before = models(&service).await;
    assert_eq!(before["models"].as_array().unwrap().len(), 1);
    let sha_before = service.state.registry.snapshot().unwrap().catalog_sha256.clone();

    for (bad, expected) in [
        ("{\"models\": [", "not valid JSON"),
        (
            &catalog(&[
                entry("a", "1", &server.url("/a.json")),
                entry("a", "1", &server.url("/a.json")),
            ]) as &str,
            "declares a@1 twice",
        ),
        ("{\"models\": [{\"model\": \"x\"}]}", "catalog entry 0"),
    ] {
        server.set("/catalog.json", Route::ok(bad.to_string()));
        let (status, body) = refresh(&service).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["code"], "REGISTRY_ERROR");
        assert!(body["message"].as_str().unwrap().contains(expected), "{body}");
        assert_eq!(models(&service).await, before, "previous snapshot still served");
        assert_eq!(service.state.registry.snapshot().unwrap().catalog_sha256, sha_before);
    }

    server.set("/catalog.json", Route::status(500));
    let (status, body) = refresh(&service).await;
    assert_eq!(status, 502);
    assert!(body["message"].as_str().unwrap().contains("unreadable"), "{body}");
    assert_eq!(models(&service).await, before);
}

#[tokio::test]
async fn refresh_reports_catalog_sha256_and_serves_the_new_catalog() {
    let server = catalog_server("[]").await;
    let one = catalog(&[entry("a", "1", &server.url("/a.json"))]);
    server.set("/catalog.json", Route::ok(one.clone()));
    let service = InProcessService::start(&url_env(&server)).await;

    let two = catalog(&[
        entry("a", "1", &server.url("/a.json")),
        entry("b", "2", &server.url("/b.json")),
    ]);
    server.set("/catalog.json", Route::ok(two.clone()));
    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200);
    assert_eq!(report["models_found"], 2);
    use sha2::Digest;
    assert_eq!(
        report["catalog_sha256"],
        hex::encode(sha2::Sha256::digest(two.as_bytes()))
    );
    assert!(report["refreshed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(models(&service).await["models"].as_array().unwrap().len(), 2);
    let status: Value = client()
        .get(service.url("/admin/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["catalog_sha256"], report["catalog_sha256"]);
}

#[tokio::test]
async fn concurrent_refreshes_share_one_load() {
    let server = ArtifactServer::http().await;
    server.set(
        "/catalog.json",
        Route::ok(catalog(&[])).with_delay(Duration::from_millis(300)),
    );
    let service = InProcessService::start(&url_env(&server)).await;
    let hits_before = server.hits("/catalog.json");

    let calls = (0..8).map(|_| refresh(&service));
    let results = futures::future::join_all(calls).await;
    let shas: Vec<_> = results.iter().map(|(s, r)| (*s, r["refreshed_at"].clone())).collect();
    assert!(shas.iter().all(|(s, _)| *s == 200), "{shas:?}");
    assert!(
        shas.windows(2).all(|w| w[0].1 == w[1].1),
        "all callers get the same result: {shas:?}"
    );
    assert_eq!(
        server.hits("/catalog.json") - hits_before,
        1,
        "one fetch for eight callers"
    );
}

#[tokio::test]
async fn refresh_under_concurrent_validate_load_fails_no_request() {
    let server = ArtifactServer::http().await;
    server.set("/a.json", Route::ok(SCHEMA));
    server.set(
        "/catalog.json",
        Route::ok(catalog(&[entry("a", "1", &server.url("/a.json"))])),
    );
    let service = Arc::new(InProcessService::start(&url_env(&server)).await);
    // Make every refresh take a while so requests overlap it.
    server.set(
        "/catalog.json",
        Route::ok(catalog(&[entry("a", "1", &server.url("/a.json"))])).with_delay(Duration::from_millis(50)),
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (service, stop, ok, failed) = (service.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let http = client();
            while !stop.load(Ordering::Relaxed) {
                let response = http
                    .post(service.url("/models/a/versions/1:validate"))
                    .json(&json!({"payload": {"id": "x"}}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap();
                        assert_eq!(body["passed"], true);
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for _ in 0..10 {
        let (status, _) = refresh(&service).await;
        assert_eq!(status, 200);
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 50, "load really overlapped the refreshes");
}

#[tokio::test]
async fn cache_reuses_within_ttl_and_revalidates_with_etag_after() {
    let server = ArtifactServer::http().await;
    server.set("/a.json", Route::ok(SCHEMA).with_etag("\"v1\""));
    let cat = catalog(&[entry("a", "1", &server.url("/a.json"))]);

    let mut env = base_env(&cat, &server.host_port(), false);
    env.insert("REGISTRY_CACHE_ENABLED".into(), "true".into());
    env.insert("REGISTRY_CACHE_TTL_SECS".into(), "3600".into());
    let cached = InProcessService::start(&env).await;
    refresh(&cached).await;
    assert_eq!(
        server.hits("/a.json"),
        1,
        "second load served from cache within the TTL"
    );

    let server2 = ArtifactServer::http().await;
    server2.set("/a.json", Route::ok(SCHEMA).with_etag("\"v1\""));
    let cat2 = catalog(&[entry("a", "1", &server2.url("/a.json"))]);
    let mut env = base_env(&cat2, &server2.host_port(), false);
    env.insert("REGISTRY_CACHE_ENABLED".into(), "true".into());
    env.insert("REGISTRY_CACHE_TTL_SECS".into(), "0".into());
    let revalidating = InProcessService::start(&env).await;
    let (_, report) = refresh(&revalidating).await;
    assert_eq!(report["models_found"], 1);
    assert_eq!(server2.hits("/a.json"), 2);
    assert_eq!(
        server2.not_modified("/a.json"),
        1,
        "after the TTL the artifact is revalidated (304)"
    );
    drop(cached);
}

#[tokio::test]
async fn model_and_version_are_inferred_from_ce_rise_urls() {
    let server = ArtifactServer::http().await;
    let path = "/CE-RISE-models/product-profile/raw/tag/pages-v0.0.3/generated/schema.json";
    server.set(path, Route::ok(SCHEMA));
    let cat = json!([{"schema_url": server.url(path)}]).to_string();
    let service = InProcessService::start(&base_env(&cat, &server.host_port(), false)).await;
    assert_eq!(
        models(&service).await,
        json!({"models": [{"id": "product-profile", "version": "0.0.3"}]})
    );
}

#[tokio::test]
async fn not_ready_until_the_first_load_succeeds() {
    let server = ArtifactServer::http().await;
    server.set("/catalog.json", Route::status(503));
    let service = InProcessService::start(&url_env(&server)).await;
    let ready = client().get(service.url("/admin/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    let models = client().get(service.url("/models")).send().await.unwrap();
    assert_eq!(models.status(), 503);

    server.set("/catalog.json", Route::ok(catalog(&[])));
    let (status, _) = refresh(&service).await;
    assert_eq!(status, 200);
    let ready = client().get(service.url("/admin/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}
