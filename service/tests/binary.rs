//! Black-box tests of the `hex-core-service` binary: start it as a child process on a free port,
//! talk to it over HTTP, stop it with signals, and check how it refuses bad configuration.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{ServiceProcess, client, demo_dir, demo_env, service_binary};

/// Runs the binary to completion with `env` and returns (exit code, stderr).
fn run_to_exit(env: &BTreeMap<String, String>) -> (Option<i32>, String) {
    let output = Command::new(service_binary())
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn serves_health_models_and_artifacts_from_the_demo_catalog() {
    let service = ServiceProcess::spawn(&demo_env(&[]));
    service.wait_ready().await;
    let http = client();

    let health: Value = http
        .get(service.url("/admin/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, serde_json::json!({"status": "ok"}));

    let models: Value = http
        .get(service.url("/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        models,
        serde_json::json!({"models": [{"id": "demo-passport", "version": "0.1.0"}]})
    );

    let schema = http
        .get(service.url("/models/demo-passport/versions/0.1.0/schema"))
        .send()
        .await
        .unwrap();
    assert_eq!(schema.status(), 200);
    assert_eq!(schema.headers()["content-type"], "application/schema+json");
    let on_disk = std::fs::read(demo_dir().join("models/demo-passport/0.1.0/schema.json")).unwrap();
    assert_eq!(schema.bytes().await.unwrap().as_ref(), on_disk.as_slice());

    let log = service.log_text();
    assert!(
        log.contains("AUTHENTICATION IS DISABLED"),
        "the none-mode warning is logged:\n{log}"
    );
}

#[test]
fn unknown_auth_mode_exits_2_naming_the_variable() {
    let mut env = demo_env(&[]);
    env.insert("AUTH_MODE".into(), "sometimes".into());
    let (code, stderr) = run_to_exit(&env);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("AUTH_MODE"), "{stderr}");
    assert!(stderr.contains("sometimes"), "{stderr}");
    assert!(stderr.contains("jwt_jwks, forward_auth, none"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_configuration_error_is_also_the_containers_termination_message() {
    let dir = tempfile::tempdir().unwrap();
    let message_file = dir.path().join("termination-log");
    let mut env = demo_env(&[]);
    env.insert("REGISTRY_FETCH_TIMEOUT_MS".into(), "1".into());
    env.insert(
        "HEX_TERMINATION_MESSAGE_PATH".into(),
        message_file.to_str().unwrap().into(),
    );
    let (code, stderr) = run_to_exit(&env);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    let message = std::fs::read_to_string(&message_file).expect("the termination message is written");
    assert_eq!(message.trim_end(), stderr.trim_end(), "the same one line as on stderr");
    assert!(message.contains("REGISTRY_FETCH_TIMEOUT_MS"), "{message}");

    // A start-up failure after the configuration parsed (exit 2 too) is written the same way.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut env = demo_env(&[]);
    env.insert("SERVER_PORT".into(), taken.local_addr().unwrap().port().to_string());
    env.insert(
        "HEX_TERMINATION_MESSAGE_PATH".into(),
        message_file.to_str().unwrap().into(),
    );
    let (code, _) = run_to_exit(&env);
    assert_eq!(code, Some(2));
    let message = std::fs::read_to_string(&message_file).unwrap();
    assert!(message.contains("already in use"), "{message}");
}

#[test]
fn none_auth_without_the_allow_flag_exits_2() {
    let mut env = demo_env(&[]);
    env.remove("AUTH_ALLOW_INSECURE_NONE");
    let (code, stderr) = run_to_exit(&env);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("AUTH_ALLOW_INSECURE_NONE=true"), "{stderr}");
}

#[test]
fn malformed_port_exits_2() {
    let mut env = demo_env(&[]);
    env.insert("SERVER_PORT".into(), "eighty".into());
    let (code, stderr) = run_to_exit(&env);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("SERVER_PORT=\"eighty\""), "{stderr}");
}

#[test]
fn port_in_use_gives_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut env = demo_env(&[]);
    env.insert("SERVER_PORT".into(), taken.local_addr().unwrap().port().to_string());
    let (code, stderr) = run_to_exit(&env);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_service_with_exit_code_0() {
    let mut service = ServiceProcess::spawn(&demo_env(&[]));
    service.wait_ready().await;
    let status = Command::new("kill")
        .args(["-TERM", &service.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = service.wait_exit(Duration::from_secs(10)).expect("exits after SIGTERM");
    assert_eq!(exit.code(), Some(0), "log:\n{}", service.log_text());
}

#[test]
fn version_flag_prints_the_workspace_version() {
    let output = Command::new(service_binary()).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("hex-core-service {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn logs_one_json_line_per_request_with_the_request_id() {
    let service = ServiceProcess::spawn(&demo_env(&[]));
    service.wait_ready().await;
    let response = client()
        .get(service.url("/models"))
        .header("x-request-id", "req-abc-123")
        .header("authorization", "Bearer secret-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-abc-123");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = service.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["request_id"] == "req-abc-123")
        .collect();
    assert_eq!(lines.len(), 1, "exactly one access-log line:\n{log}");
    assert_eq!(lines[0]["path"], "/models");
    assert_eq!(lines[0]["status"], 200);
    assert!(lines[0]["latency_ms"].is_number());
    assert!(!log.contains("secret-token-value"), "a token never reaches the log");
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_request_before_exiting() {
    use support::{ArtifactServer, Route};
    let server = ArtifactServer::http().await;
    server.set("/catalog.json", Route::ok("[]"));
    let mut env = demo_env(&[]);
    env.remove("REGISTRY_CATALOG_FILE");
    env.insert("REGISTRY_CATALOG_URL".into(), server.url("/catalog.json"));
    env.insert("REGISTRY_ALLOWED_HOSTS".into(), server.host_port());
    env.insert("REGISTRY_REQUIRE_HTTPS".into(), "false".into());
    env.insert("AUTH_NONE_ROLES".into(), "admin".into());
    let mut service = ServiceProcess::spawn(&env);
    service.wait_ready().await;

    // A refresh that takes ~1.5 s (slow catalog host) is in flight when SIGTERM arrives.
    server.set("/catalog.json", Route::ok("[]").with_delay(Duration::from_millis(1500)));
    let url = service.url("/admin/registry/refresh");
    let in_flight = tokio::spawn(async move { client().post(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    Command::new("kill")
        .args(["-TERM", &service.pid().to_string()])
        .status()
        .unwrap();
    assert_eq!(in_flight.await.unwrap().expect("answered, not cut off"), 200);
    let exit = service
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn an_explicit_connection_limit_above_the_file_limit_exits_2() {
    let mut env = demo_env(&[("SERVER_MAX_CONNECTIONS", "5000")]);
    env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    let output = support::with_file_limit(1024)
        .env_clear()
        .envs(&env)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SERVER_MAX_CONNECTIONS=\"5000\""), "{stderr}");
    assert!(stderr.contains("open-file limit"), "{stderr}");
}

/// Issue 17: with 1024 descriptors, about 1000 slow clients used to make `/admin/health` fail.
#[tokio::test]
async fn a_thousand_slow_clients_exhaust_neither_descriptors_nor_the_probes() {
    hex_core_service::server::limits::raise_open_file_limit();
    let service = ServiceProcess::spawn_with_file_limit(
        &demo_env(&[
            ("SERVER_MANAGEMENT_PORT", "0"),
            ("SERVER_HEADER_READ_TIMEOUT_MS", "2000"),
        ]),
        1024,
    );
    service.wait_ready().await;
    let addr: std::net::SocketAddr = service.base_url.trim_start_matches("http://").parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut connection = support::raw_http::RawConnection::connect(addr).await;
        connection.send(b"GET /models HTTP/1.1\r\nhost: test\r\n").await;
        slow.push(connection);
    }
    let management = service.management_url.clone().expect("management port logged");
    let started = std::time::Instant::now();
    let response = client().get(format!("{management}/admin/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The main port serves again once the slow clients' header timeout has passed.
    let response = client().get(service.url("/admin/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    drop(slow);
    let log = service.log_text();
    assert!(log.contains("lowered from its default"), "{log}");
    assert!(!log.contains("accept failed"), "descriptors never ran out:\n{log}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Issue 17: 20,000 made-up methods grew `/admin/metrics` to 51 MB and RSS by 25 MiB, with
/// metrics enabled or not.
#[tokio::test]
async fn twenty_thousand_made_up_methods_keep_metrics_and_memory_bounded() {
    for metrics_enabled in ["true", "false"] {
        let service = ServiceProcess::spawn(&demo_env(&[
            ("METRICS_ENABLED", metrics_enabled),
            ("AUTH_NONE_ROLES", "admin"),
        ]));
        service.wait_ready().await;
        let addr: std::net::SocketAddr = service.base_url.trim_start_matches("http://").parse().unwrap();
        let mut connection = support::raw_http::RawConnection::connect(addr).await;
        let mut send = async |range: std::ops::Range<u32>| {
            for i in range {
                let response = connection.request(&format!("M{i:08}"), "/models", &[], b"").await;
                assert_eq!(response.status, 405);
            }
        };
        send(0..2000).await;
        let before = rss_kib(service.pid());
        send(2000..22_000).await;
        let after = rss_kib(service.pid());
        assert!(
            after.saturating_sub(before) < 4 * 1024,
            "METRICS_ENABLED={metrics_enabled}: RSS grew from {before} KiB to {after} KiB"
        );
        let metrics = client().get(service.url("/admin/metrics")).send().await.unwrap();
        if metrics_enabled == "true" {
            let text = metrics.text().await.unwrap();
            assert!(text.len() < 64 * 1024, "{} bytes", text.len());
            assert!(text.contains("http_requests_total{method=\"_OTHER\",route=\"/models\",status=\"405\"} 22000"));
        } else {
            assert_eq!(metrics.status(), 404);
        }
    }
}

#[tokio::test]
async fn sigterm_closes_idle_and_silent_connections_at_once() {
    let mut service = ServiceProcess::spawn(&demo_env(&[]));
    service.wait_ready().await;
    let addr: std::net::SocketAddr = service.base_url.trim_start_matches("http://").parse().unwrap();
    let mut idle = support::raw_http::RawConnection::connect(addr).await;
    assert_eq!(idle.request("GET", "/models", &[], b"").await.status, 200);
    let mut silent = support::raw_http::RawConnection::connect(addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &service.pid().to_string()])
        .status()
        .unwrap();
    let exit = service.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(exit.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    use support::raw_http::ReadEnd;
    assert_ne!(idle.wait_for_close(Duration::from_secs(1)).await, ReadEnd::StillOpen);
    assert_ne!(silent.wait_for_close(Duration::from_secs(1)).await, ReadEnd::StillOpen);
}
