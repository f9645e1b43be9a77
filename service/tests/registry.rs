//! The catalog registry against real HTTP and HTTPS artifact servers on 127.0.0.1: URL policy,
//! redirects, size and time limits, malformed catalogs, atomic refresh, coalescing, caching;
//! artifact hosts that die before or during a refresh, fail for a while or start late (stale
//! entries, automatic retries, readiness); reuse of unchanged models.

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
    let entries = report["entry_results"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["loaded"] == false && e["state"] == "failed"),
        "{report}"
    );
    let failed = report["failed_entries"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{report}");
    assert!(
        failed
            .iter()
            .all(|f| f["transient"] == false && f["next_retry_at"].is_null()),
        "a compile error and a 404 are permanent: {report}"
    );
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

// ---------------------------------------------------------------------------------------------
// Outages: a failing entry keeps serving what it loaded before, and recovers on its own.

const OTHER_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
  "required":["name"],"properties":{"name":{"type":"string"}}}"#;

async fn get_json(service: &InProcessService, path: &str) -> (u16, Value) {
    let response = client().get(service.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn validate_status(service: &InProcessService, model: &str, payload: Value) -> (u16, Value) {
    let response = client()
        .post(service.url(&format!("/models/{model}/versions/1:validate")))
        .json(&json!({ "payload": payload }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/admin/ready` until `done(status, body)` or the deadline; returns the last answer and
/// how long it took.
async fn wait_for_ready_body(
    service: &InProcessService,
    deadline: Duration,
    done: impl Fn(u16, &Value) -> bool,
) -> (u16, Value, Duration) {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = get_json(service, "/admin/ready").await;
        if done(status, &body) || started.elapsed() > deadline {
            return (status, body, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn served_ids(models: &Value) -> Vec<String> {
    models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Three entries on one host; short retry delays so recoveries show within a test.
async fn three_model_service(server: &ArtifactServer, extra: &[(&str, &str)]) -> InProcessService {
    for name in ["a", "b", "c"] {
        server.set(
            &format!("/{name}.json"),
            Route::ok(SCHEMA).with_etag(&format!("\"{name}\"")),
        );
    }
    let cat = catalog(&[
        entry("a", "1", &server.url("/a.json")),
        entry("b", "1", &server.url("/b.json")),
        entry("c", "1", &server.url("/c.json")),
    ]);
    let mut env = base_env(&cat, &server.host_port(), false);
    env.insert("REGISTRY_FETCH_TIMEOUT_MS".into(), "500".into());
    env.insert("REGISTRY_RETRY_MIN_DELAY_MS".into(), "100".into());
    env.insert("REGISTRY_RETRY_MAX_DELAY_SECS".into(), "1".into());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let service = InProcessService::start(&env).await;
    assert_eq!(served_ids(&models(&service).await), ["a", "b", "c"]);
    service
}

/// After an outage refresh: every model still served and validating, every entry stale with a
/// transient error, the replica still ready.
async fn assert_everything_served_stale(service: &InProcessService, report: &Value, stale: usize) {
    assert_eq!(report["models_found"], 3, "{report}");
    assert_eq!(report["entries"]["total"], 3, "{report}");
    assert_eq!(report["entries"]["stale"], stale, "{report}");
    assert_eq!(report["entries"]["failed"], 0, "{report}");
    let failed = report["failed_entries"].as_array().unwrap();
    assert_eq!(failed.len(), stale, "{report}");
    for item in failed {
        assert_eq!(item["state"], "stale", "{report}");
        assert_eq!(item["transient"], true, "{report}");
        assert_eq!(item["artifact"], "schema", "{report}");
        assert!(item["next_retry_at"].is_string(), "{report}");
    }
    assert_eq!(served_ids(&models(service).await), ["a", "b", "c"]);
    for name in ["a", "b", "c"] {
        let (status, body) = validate_status(service, name, json!({"id": "x"})).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["passed"], true, "{body}");
    }
    let (status, ready) = get_json(service, "/admin/ready").await;
    assert_eq!(status, 200, "stale entries never make a replica unready: {ready}");
    assert_eq!(ready["entries"]["stale"], stale, "{ready}");
    assert_eq!(ready["models_loaded"], 3, "{ready}");
    assert_eq!(ready["failed_entries"].as_array().unwrap().len(), stale, "{ready}");
}

#[tokio::test]
async fn refresh_with_the_artifact_host_down_keeps_every_model_and_recovers_when_it_returns() {
    let server = ArtifactServer::http().await;
    let port = server.addr.port();
    let service = three_model_service(&server, &[]).await;
    server.kill();

    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200, "{report}");
    assert_everything_served_stale(&service, &report, 3).await;
    let status_body = get_json(&service, "/admin/status").await.1;
    assert_eq!(
        status_body["failed_entries"].as_array().unwrap().len(),
        3,
        "{status_body}"
    );
    assert_eq!(status_body["entries"]["stale"], 3, "{status_body}");
    let metrics = client()
        .get(service.url("/admin/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("registry_entries{state=\"stale\"} 3"), "{metrics}");
    assert!(metrics.contains("registry_models_loaded 3"), "{metrics}");

    // The host comes back on the same port: the retries find it without a manual refresh.
    let back = ArtifactServer::http_on(port).await;
    for name in ["a", "b", "c"] {
        back.set(&format!("/{name}.json"), Route::ok(SCHEMA));
    }
    let (status, ready, took) = wait_for_ready_body(&service, Duration::from_secs(30), |_, body| {
        body["failed_entries"].as_array().is_some_and(|f| f.is_empty())
    })
    .await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["entries"]["loaded"], 3, "recovered in {took:?}: {ready}");
}

#[tokio::test]
async fn refresh_when_the_host_dies_mid_refresh_keeps_the_models_it_could_not_fetch() {
    let server = ArtifactServer::http().await;
    // One entry at a time, so exactly one artifact is answered before the host dies.
    let service = three_model_service(&server, &[("REGISTRY_FETCH_CONCURRENCY", "1")]).await;
    server.die_after(1);
    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200, "{report}");
    assert_everything_served_stale(&service, &report, 2).await;
    assert_eq!(report["entries"]["loaded"], 1, "{report}");
    let reused: Vec<&Value> = report["entry_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reused"] == true)
        .collect();
    assert_eq!(reused.len(), 1, "the one fetched is unchanged and reused: {report}");
}

#[tokio::test]
async fn refresh_with_a_hanging_host_keeps_the_models_within_the_fetch_timeout() {
    let server = ArtifactServer::http().await;
    let service = three_model_service(&server, &[]).await;
    for name in ["a", "b", "c"] {
        server.set(
            &format!("/{name}.json"),
            Route::ok(SCHEMA).with_delay(Duration::from_secs(30)),
        );
    }
    let started = std::time::Instant::now();
    let (status, report) = refresh(&service).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by REGISTRY_FETCH_TIMEOUT_MS"
    );
    assert_eq!(status, 200, "{report}");
    assert_everything_served_stale(&service, &report, 3).await;
    assert!(report["errors"].to_string().contains("timed out"), "{report}");
}

#[tokio::test]
async fn with_the_cache_a_dead_host_keeps_models_loaded_within_the_ttl_and_stale_after_it() {
    // Within the TTL nothing is fetched, so an outage is invisible.
    let server = ArtifactServer::http().await;
    let service = three_model_service(
        &server,
        &[("REGISTRY_CACHE_ENABLED", "true"), ("REGISTRY_CACHE_TTL_SECS", "3600")],
    )
    .await;
    server.kill();
    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["entries"]["loaded"], 3, "{report}");
    assert_eq!(served_ids(&models(&service).await), ["a", "b", "c"]);

    // With the TTL expired every artifact is revalidated; with the host down that fails, and the
    // models stay served, stale.
    let server = ArtifactServer::http().await;
    let service = three_model_service(
        &server,
        &[("REGISTRY_CACHE_ENABLED", "true"), ("REGISTRY_CACHE_TTL_SECS", "0")],
    )
    .await;
    server.kill();
    let (status, report) = refresh(&service).await;
    assert_eq!(status, 200, "{report}");
    assert_everything_served_stale(&service, &report, 3).await;
}

#[tokio::test]
async fn an_artifact_answering_503_at_first_loads_on_its_own_within_a_minute() {
    let server = ArtifactServer::http().await;
    server.set("/ok.json", Route::ok(SCHEMA));
    server.set("/flaky.json", Route::ok(SCHEMA).failing_first(3, 503));
    let cat = catalog(&[
        entry("ok", "1", &server.url("/ok.json")),
        entry("flaky", "1", &server.url("/flaky.json")),
    ]);
    // Default retry settings: this is the documented behaviour.
    let service = InProcessService::start(&base_env(&cat, &server.host_port(), false)).await;
    let started = std::time::Instant::now();

    let (status, ready) = get_json(&service, "/admin/ready").await;
    assert_eq!(
        status, 503,
        "a never-loaded entry failing transiently holds readiness: {ready}"
    );
    assert_eq!(ready["status"], "not_ready");
    assert!(ready["reason"].as_str().unwrap().contains("flaky@1"), "{ready}");
    assert_eq!(ready["models_loaded"], 1, "{ready}");
    assert_eq!(
        ready["entries"],
        json!({"total": 2, "loaded": 1, "stale": 0, "failed": 1})
    );
    let failed = &ready["failed_entries"][0];
    assert_eq!(failed["model"], "flaky");
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["transient"], true);
    assert_eq!(failed["attempts"], 1);
    assert!(failed["error"].as_str().unwrap().contains("503"), "{ready}");
    assert!(failed["next_retry_at"].is_string(), "{ready}");
    assert!(ready["catalog_sha256"].is_string());

    let (status, ready, _) = wait_for_ready_body(&service, Duration::from_secs(60), |status, _| status == 200).await;
    assert_eq!(status, 200, "{ready}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(ready["failed_entries"], json!([]), "{ready}");
    assert_eq!(served_ids(&models(&service).await), ["flaky", "ok"]);
    assert_eq!(server.hits("/flaky.json"), 4, "three 503s, then the load");
    eprintln!("flaky artifact recovered in {:?}", started.elapsed());
}

#[tokio::test]
async fn an_artifact_host_that_starts_after_the_service_is_picked_up_within_a_minute() {
    // A port nothing listens on yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/late.json");
    let cat = catalog(&[entry("late", "1", &url)]);
    let service = InProcessService::start(&base_env(&cat, &format!("127.0.0.1:{port}"), false)).await;
    let started = std::time::Instant::now();
    let (status, ready) = get_json(&service, "/admin/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready["failed_entries"][0]["transient"], true,
        "connection refused is transient: {ready}"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let server = ArtifactServer::http_on(port).await;
    server.set("/late.json", Route::ok(SCHEMA));
    let (status, ready, _) = wait_for_ready_body(&service, Duration::from_secs(60), |status, _| status == 200).await;
    assert_eq!(status, 200, "{ready}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(served_ids(&models(&service).await), ["late"]);
    eprintln!("late host picked up {:?} after the service started", started.elapsed());
}

#[tokio::test]
async fn permanent_failures_are_not_retried_until_the_next_refresh_and_never_hold_readiness() {
    let server = ArtifactServer::http().await;
    server.set("/gone.json", Route::status(404));
    let cat = catalog(&[entry("gone", "1", &server.url("/gone.json"))]);
    let mut env = base_env(&cat, &server.host_port(), false);
    env.insert("REGISTRY_RETRY_MIN_DELAY_MS".into(), "20".into());
    let service = InProcessService::start(&env).await;
    let (status, ready) = get_json(&service, "/admin/ready").await;
    assert_eq!(status, 200, "{ready}");
    let failed = &ready["failed_entries"][0];
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["transient"], false);
    assert!(failed["next_retry_at"].is_null(), "{ready}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.hits("/gone.json"), 1, "a 404 is not retried on its own");
    refresh(&service).await;
    assert_eq!(server.hits("/gone.json"), 2, "a refresh tries again");
}

#[tokio::test]
async fn readiness_stops_waiting_for_a_failing_entry_after_the_bounded_time() {
    let server = ArtifactServer::http().await;
    server.set("/down.json", Route::status(503));
    let cat = catalog(&[entry("down", "1", &server.url("/down.json"))]);
    let mut env = base_env(&cat, &server.host_port(), false);
    env.insert("REGISTRY_READY_MAX_WAIT_SECS".into(), "1".into());
    env.insert("REGISTRY_RETRY_MIN_DELAY_MS".into(), "100".into());
    let service = InProcessService::start(&env).await;
    let (status, _) = get_json(&service, "/admin/ready").await;
    assert_eq!(status, 503);
    let (status, ready, took) = wait_for_ready_body(&service, Duration::from_secs(10), |status, _| status == 200).await;
    assert_eq!(status, 200, "{ready}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(ready["failed_entries"][0]["model"], "down", "still reported: {ready}");
    assert!(
        ready["failed_entries"][0]["attempts"].as_u64().unwrap() >= 2,
        "still retried: {ready}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refreshes compile only what changed.

#[tokio::test]
async fn unchanged_refresh_reuses_every_model_and_a_changed_artifact_recompiles_only_its_model() {
    let server = ArtifactServer::http().await;
    server.set("/a.json", Route::ok(SCHEMA));
    server.set("/b.json", Route::ok(SCHEMA));
    let cat = catalog(&[
        entry("a", "1", &server.url("/a.json")),
        entry("b", "1", &server.url("/b.json")),
    ]);
    let service = InProcessService::start(&base_env(&cat, &server.host_port(), false)).await;
    let loaded_at = |service: &InProcessService, model: &str| {
        service
            .state
            .registry
            .snapshot()
            .unwrap()
            .get(model, "1")
            .unwrap()
            .loaded_at
    };
    let (a_before, b_before) = (loaded_at(&service, "a"), loaded_at(&service, "b"));

    let (_, report) = refresh(&service).await;
    let reused = |report: &Value| -> Vec<(String, bool)> {
        report["entry_results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["model"].as_str().unwrap().to_string(), e["reused"].as_bool().unwrap()))
            .collect()
    };
    assert_eq!(reused(&report), [("a".into(), true), ("b".into(), true)], "{report}");
    assert_eq!(loaded_at(&service, "a"), a_before);

    server.set("/b.json", Route::ok(OTHER_SCHEMA));
    let (_, report) = refresh(&service).await;
    assert_eq!(reused(&report), [("a".into(), true), ("b".into(), false)], "{report}");
    assert_eq!(loaded_at(&service, "a"), a_before, "a was not recompiled");
    assert_ne!(loaded_at(&service, "b"), b_before, "b was");
    let (_, body) = validate_status(&service, "b", json!({"id": "x"})).await;
    assert_eq!(body["passed"], false, "b validates with its new schema: {body}");
}

#[tokio::test]
async fn with_the_cache_an_unchanged_artifact_costs_a_304_and_no_compile() {
    let server = ArtifactServer::http().await;
    server.set("/a.json", Route::ok(SCHEMA).with_etag("\"v1\""));
    let cat = catalog(&[entry("a", "1", &server.url("/a.json"))]);
    let mut env = base_env(&cat, &server.host_port(), false);
    env.insert("REGISTRY_CACHE_ENABLED".into(), "true".into());
    env.insert("REGISTRY_CACHE_TTL_SECS".into(), "0".into());
    let service = InProcessService::start(&env).await;
    let (_, report) = refresh(&service).await;
    assert_eq!(server.not_modified("/a.json"), 1, "revalidated with If-None-Match");
    assert_eq!(report["entry_results"][0]["reused"], true, "{report}");
}
