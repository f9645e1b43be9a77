//! The management port (`SERVER_MANAGEMENT_PORT`, interface 2): probes and metrics without
//! authentication, for the kubelet and Prometheus; nothing else is served there, and the main
//! port keeps its rules.

mod support;

use serde_json::Value;
use support::{InProcessService, client, demo_env};

async fn forward_auth_service(extra: &[(&str, &str)]) -> InProcessService {
    let mut env = demo_env(&[
        ("AUTH_MODE", "forward_auth"),
        ("SERVER_MANAGEMENT_PORT", "0"),
        ("METRICS_ENABLED", "true"),
    ]);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    InProcessService::start(&env).await
}

#[tokio::test]
async fn probes_and_metrics_answer_without_authentication_on_the_management_port() {
    let service = forward_auth_service(&[]).await;
    let http = client();

    let health = http.get(service.management("/admin/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    let ready = http.get(service.management("/admin/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");

    let metrics = http.get(service.management("/admin/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("registry_models_loaded 1"), "{text}");
    assert!(text.contains("http_connections_open{port=\"management\"}"), "{text}");

    // The main port keeps its rules: metrics need an authenticated caller there.
    let main = http.get(service.url("/admin/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 401);
    let main = http
        .get(service.url("/admin/metrics"))
        .header("x-auth-subject", "ops")
        .header("x-auth-roles", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 200);
}

#[tokio::test]
async fn the_management_port_serves_nothing_else() {
    let service = forward_auth_service(&[]).await;
    let http = client();
    for path in [
        "/models",
        "/admin/status",
        "/admin/version",
        "/openapi.json",
        "/models/demo-passport/versions/0.1.0/schema",
    ] {
        let response = http
            .get(service.management(path))
            .header("x-auth-subject", "ops")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "NOT_FOUND", "{path}");
    }
    let response = http
        .post(service.management("/admin/registry/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = http.post(service.management("/admin/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn metrics_disabled_is_404_on_the_management_port_too() {
    let service = forward_auth_service(&[("METRICS_ENABLED", "false")]).await;
    let response = client().get(service.management("/admin/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "METRICS_DISABLED");
}

#[tokio::test]
async fn readiness_on_the_management_port_is_the_same_answer_as_on_the_main_port() {
    let service = forward_auth_service(&[]).await;
    let management: Value = client()
        .get(service.management("/admin/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let main: Value = client()
        .get(service.url("/admin/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(management, main);
}
