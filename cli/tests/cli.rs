//! Black-box tests of `hex-cli` against a real `hex-core-service` process started by the test:
//! every command group, both output forms, every exit code.

#[path = "../../service/tests/support/mod.rs"]
mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};
use support::{ServiceProcess, demo_dir, demo_env};

async fn demo_service() -> ServiceProcess {
    let service = ServiceProcess::spawn(&demo_env(&[("AUTH_NONE_ROLES", "admin"), ("METRICS_ENABLED", "true")]));
    service.wait_ready().await;
    service
}

fn cli(service: &ServiceProcess) -> Command {
    let mut command = Command::cargo_bin("hex-cli").unwrap();
    command
        .env_clear()
        .env("HEX_URL", &service.base_url)
        .env("NO_COLOR", "1");
    command
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

fn demo_file(name: &str) -> String {
    demo_dir().join(name).to_str().unwrap().to_string()
}

#[tokio::test]
async fn models_list_in_json_and_table_form() {
    let service = demo_service().await;
    let out = cli(&service).args(["models", "list"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        json_of(&out.stdout),
        json!({"models": [{"id": "demo-passport", "version": "0.1.0"}]}),
        "JSON is the default when stdout is not a terminal"
    );
    cli(&service)
        .args(["models", "list", "--output", "table"])
        .assert()
        .success()
        .stdout(predicate::str::contains("MODEL").and(predicate::str::contains("demo-passport")))
        .stdout(predicate::str::contains("\x1b[").not());
}

#[tokio::test]
async fn models_show_lists_artifacts_sha256_and_target_class() {
    let service = demo_service().await;
    let out = cli(&service)
        .args(["models", "show", "demo-passport", "0.1.0"])
        .output()
        .unwrap();
    let body = json_of(&out.stdout);
    assert_eq!(body["target_class"]["name"], "Passport");
    assert_eq!(body["artifacts"]["schema"]["sha256"].as_str().unwrap().len(), 64);
    cli(&service)
        .args(["-o", "table", "models", "show", "demo-passport", "0.1.0"])
        .assert()
        .success()
        .stdout(predicate::str::contains("target class").and(predicate::str::contains("SHA256")));
}

#[tokio::test]
async fn validate_against_the_service_exits_0_or_1() {
    let service = demo_service().await;
    cli(&service)
        .args([
            "validate",
            "demo-passport",
            "0.1.0",
            &demo_file("examples/passport-valid.json"),
        ])
        .assert()
        .code(0);
    let out = cli(&service)
        .args([
            "validate",
            "demo-passport",
            "0.1.0",
            &demo_file("examples/passport-invalid.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out.stdout);
    assert_eq!(report["passed"], false);

    cli(&service)
        .args([
            "-o",
            "table",
            "validate",
            "demo-passport",
            "0.1.0",
            &demo_file("examples/passport-invalid.json"),
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILED"))
        .stdout(predicate::str::contains("json_schema failed"))
        .stdout(predicate::str::contains("$.record_scope"));
}

#[tokio::test]
async fn validate_reads_stdin_and_bare_payloads() {
    let service = demo_service().await;
    let wrapped: Value =
        serde_json::from_str(&std::fs::read_to_string(demo_file("examples/passport-valid.json")).unwrap()).unwrap();
    cli(&service)
        .args(["validate", "demo-passport", "0.1.0", "-"])
        .write_stdin(wrapped["payload"].to_string())
        .assert()
        .code(0);
}

#[tokio::test]
async fn offline_validation_gives_the_same_verdict_as_the_service() {
    let service = demo_service().await;
    let model = demo_dir().join("models/demo-passport/0.1.0");
    for example in ["examples/passport-valid.json", "examples/passport-invalid.json"] {
        let online = cli(&service)
            .args(["validate", "demo-passport", "0.1.0", &demo_file(example)])
            .output()
            .unwrap();
        let offline = Command::cargo_bin("hex-cli")
            .unwrap()
            .env_clear()
            .args([
                "validate",
                "--offline",
                "--schema",
                model.join("schema.json").to_str().unwrap(),
                "--shacl",
                model.join("shacl.ttl").to_str().unwrap(),
                "--linkml",
                model.join("schema.yaml").to_str().unwrap(),
                "--owl",
                model.join("model.ttl").to_str().unwrap(),
                "--root-class",
                "Passport",
                &demo_file(example),
            ])
            .output()
            .unwrap();
        assert_eq!(online.status.code(), offline.status.code(), "{example}");
        let (online, offline) = (json_of(&online.stdout), json_of(&offline.stdout));
        assert_eq!(online["passed"], offline["passed"], "{example}");
        assert_eq!(online["results"], offline["results"], "{example}: same violations");
    }
}

#[tokio::test]
async fn create_read_and_query_records() {
    let service = demo_service().await;
    let out = cli(&service)
        .args([
            "create",
            "demo-passport",
            "0.1.0",
            &demo_file("examples/passport-valid.json"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Idempotency-Key:"),
        "a fresh key is printed"
    );
    let record = json_of(&out.stdout);
    assert_eq!(record["id"], "passport-0001");

    // The same key and payload replays the first result; another payload with that key is 409;
    // a new key for an existing id is 409 RECORD_EXISTS.
    cli(&service)
        .args([
            "create",
            "demo-passport",
            "0.1.0",
            &demo_file("examples/passport-valid.json"),
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("409 RECORD_EXISTS"));
    let mut second: Value =
        serde_json::from_str(&std::fs::read_to_string(demo_file("examples/passport-valid.json")).unwrap()).unwrap();
    second["payload"]["id"] = json!("passport-0002");
    for _ in 0..2 {
        let out = cli(&service)
            .args(["create", "demo-passport", "0.1.0", "--idempotency-key", "k-1", "-"])
            .write_stdin(second.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json_of(&out.stdout)["id"], "passport-0002");
    }
    let mut other = second.clone();
    other["payload"]["id"] = json!("passport-0099");
    cli(&service)
        .args(["create", "demo-passport", "0.1.0", "--idempotency-key", "k-1", "-"])
        .write_stdin(other.to_string())
        .assert()
        .code(3)
        .stderr(predicate::str::contains("409 IDEMPOTENCY_CONFLICT"));
    cli(&service)
        .args([
            "create",
            "demo-passport",
            "0.1.0",
            &demo_file("examples/passport-invalid.json"),
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("422 VALIDATION_FAILED"));

    let got = cli(&service)
        .args(["records", "get", "demo-passport", "0.1.0", "passport-0001"])
        .output()
        .unwrap();
    assert_eq!(
        json_of(&got.stdout)["payload"]["product_name"],
        "Refurbished laptop L14"
    );
    cli(&service)
        .args(["records", "get", "demo-passport", "0.1.0", "nope"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("RECORD_NOT_FOUND"));

    let found = cli(&service)
        .args([
            "query",
            "demo-passport",
            "0.1.0",
            "--where",
            "payload.record_scope eq product",
        ])
        .args([
            "--where",
            "payload.mass_kg gt 1",
            "--sort",
            "created_at:desc",
            "--limit",
            "5",
        ])
        .output()
        .unwrap();
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let records = json_of(&found.stdout)["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], "passport-0002", "newest first");
    let none = cli(&service)
        .args([
            "query",
            "demo-passport",
            "0.1.0",
            "--where",
            "payload.record_scope eq batch",
        ])
        .output()
        .unwrap();
    assert!(json_of(&none.stdout)["records"].as_array().unwrap().is_empty());
    cli(&service)
        .args(["query", "demo-passport", "0.1.0", "--where", "colour eq red"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("INVALID_QUERY"));
}

#[tokio::test]
async fn admin_commands() {
    let service = demo_service().await;
    for (action, check) in [
        ("health", "status"),
        ("ready", "status"),
        ("status", "uptime_seconds"),
        ("version", "service_version"),
        ("models-count", "models_count"),
        ("refresh", "models_found"),
    ] {
        let out = cli(&service).args(["admin", action]).output().unwrap();
        assert!(
            out.status.success(),
            "admin {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(json_of(&out.stdout).get(check).is_some(), "admin {action}");
    }
    cli(&service)
        .args(["admin", "metrics"])
        .assert()
        .success()
        .stdout(predicate::str::contains("http_requests_total"));
    cli(&service)
        .args(["-o", "table", "admin", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("catalog_sha256"));
}

#[tokio::test]
async fn service_errors_exit_3_with_the_envelope_code() {
    let service = demo_service().await;
    cli(&service)
        .args(["models", "show", "nope", "1.0"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("404 MODEL_NOT_FOUND"))
        .stderr(predicate::str::contains("hex-cli models list"));
}

#[tokio::test]
async fn unauthenticated_calls_explain_how_to_pass_a_token() {
    let mut env = demo_env(&[("AUTH_NONE_ROLES", "admin"), ("METRICS_ENABLED", "true")]);
    env.insert("AUTH_MODE".into(), "forward_auth".into());
    let service = ServiceProcess::spawn(&env);
    cli(&service)
        .args(["models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401 UNAUTHORIZED"))
        .stderr(predicate::str::contains("pass --token or set HEX_TOKEN"));
}

#[tokio::test]
async fn token_protected_service_accepts_token_flag_file_and_env() {
    use support::idp::{AUDIENCE, ISSUER, TestKey, claims, jwks};
    let key = TestKey::p256("cli-key");
    let idp = support::ArtifactServer::http().await;
    idp.set("/certs", support::Route::ok(jwks(&[&key])));
    let mut env = demo_env(&[("AUTH_NONE_ROLES", "admin"), ("METRICS_ENABLED", "true")]);
    env.remove("AUTH_ALLOW_INSECURE_NONE");
    for (k, v) in [
        ("AUTH_MODE", "jwt_jwks".to_string()),
        ("AUTH_JWKS_URL", idp.url("/certs")),
        ("AUTH_ISSUER", ISSUER.to_string()),
        ("AUTH_AUDIENCE", AUDIENCE.to_string()),
    ] {
        env.insert(k.into(), v);
    }
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    let token = key.sign(&claims("alice", &["admin"]));

    cli(&service)
        .args(["models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("pass --token or set HEX_TOKEN"));
    cli(&service)
        .args(["--token", &token, "models", "list"])
        .assert()
        .success();
    cli(&service)
        .env("HEX_TOKEN", &token)
        .args(["admin", "refresh"])
        .assert()
        .success();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    cli(&service)
        .args([
            "--token-file",
            file.to_str().unwrap(),
            "validate",
            "demo-passport",
            "0.1.0",
        ])
        .arg(demo_file("examples/passport-valid.json"))
        .assert()
        .code(0);
    cli(&service)
        .args(["--token", "not-a-jwt", "models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401"));
}

#[test]
fn unreachable_service_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::cargo_bin("hex-cli")
        .unwrap()
        .env_clear()
        .args(["--url", &format!("http://127.0.0.1:{port}"), "admin", "health"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("cannot reach the service"));
}

#[test]
fn usage_errors_exit_2() {
    Command::cargo_bin("hex-cli").unwrap().args(["models"]).assert().code(2);
    Command::cargo_bin("hex-cli")
        .unwrap()
        .args(["query", "m", "1", "--where", "payload.x like y"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown operator"));
    Command::cargo_bin("hex-cli")
        .unwrap()
        .args(["validate", "m", "1", "/nonexistent/payload.json"])
        .assert()
        .code(2);
}

#[test]
fn catalog_lint_checks_shape_duplicates_and_url_policy() {
    let catalog = demo_dir().join("catalog.json");
    Command::cargo_bin("hex-cli")
        .unwrap()
        .args([
            "catalog",
            "lint",
            catalog.to_str().unwrap(),
            "--allow-local-artifacts",
            "--fetch",
        ])
        .args(["--allowed-hosts", "localhost"])
        .assert()
        .code(0);

    let dir = tempfile::tempdir().unwrap();
    let duplicated = dir.path().join("dup.json");
    std::fs::write(
        &duplicated,
        r#"[{"model":"m","version":"1","schema_url":"https://a.org/s"},{"model":"m","version":"1","schema_url":"https://a.org/t"}]"#,
    )
    .unwrap();
    let out = Command::cargo_bin("hex-cli")
        .unwrap()
        .args(["catalog", "lint", duplicated.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(json_of(&out.stdout)["errors"][0].as_str().unwrap().contains("twice"));

    let plain = dir.path().join("plain.json");
    std::fs::write(
        &plain,
        r#"[{"model":"m","version":"1","schema_url":"http://a.org/s"},{"model":"n","version":"1","schema_url":"https://b.org/s"}]"#,
    )
    .unwrap();
    let out = Command::cargo_bin("hex-cli")
        .unwrap()
        .args(["catalog", "lint", plain.to_str().unwrap(), "--allowed-hosts", "a.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out.stdout);
    let problems = report["entries"].to_string();
    assert!(problems.contains("only https is allowed"), "{problems}");
    assert!(problems.contains("not in REGISTRY_ALLOWED_HOSTS"), "{problems}");
}

#[tokio::test]
async fn catalog_lint_fetch_reports_per_entry_failures_from_a_real_server() {
    let server = support::ArtifactServer::http().await;
    server.set("/ok.json", support::Route::ok(r#"{"type":"object"}"#));
    server.set("/bad.json", support::Route::ok(r#"{"type": 12}"#));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.json");
    std::fs::write(
        &file,
        json!([
            {"model": "ok", "version": "1", "schema_url": server.url("/ok.json")},
            {"model": "bad", "version": "1", "schema_url": server.url("/bad.json")},
            {"model": "gone", "version": "1", "schema_url": server.url("/gone.json")},
        ])
        .to_string(),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("hex-cli")
            .unwrap()
            .args([
                "catalog",
                "lint",
                file.to_str().unwrap(),
                "--fetch",
                "--require-https",
                "false",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out.stdout);
    let entries = report["entries"].as_array().unwrap();
    let by_model = |m: &str| entries.iter().find(|e| e["model"] == m).unwrap().clone();
    assert_eq!(by_model("ok")["ok"], true);
    assert!(
        by_model("bad")["problems"]
            .to_string()
            .contains("not a valid JSON Schema")
    );
    assert!(by_model("gone")["problems"].to_string().contains("404"));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        Command::cargo_bin("hex-cli")
            .unwrap()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("hex-cli"));
    }
}

#[test]
fn version_matches_the_workspace() {
    Command::cargo_bin("hex-cli")
        .unwrap()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("hex-cli {}\n", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn offline_validation_of_a_real_model_matches_the_service() {
    let models = support::models_dir();
    let dir = models.join("re-indicators-specification/0.0.5");
    let server = support::ArtifactServer::http().await;
    let mut entry = json!({"model": "re-indicators-specification", "version": "0.0.5", "root_class": "Assessment"});
    let files = [
        ("schema_url", "schema.json", "--schema"),
        ("shacl_url", "shacl.ttl", "--shacl"),
        ("linkml_url", "schema.yaml", "--linkml"),
        ("owl_url", "model.ttl", "--owl"),
    ];
    for (field, file, _) in files {
        server.set(
            &format!("/{file}"),
            support::Route::ok(std::fs::read(dir.join(file)).unwrap()),
        );
        entry[field] = json!(server.url(&format!("/{file}")));
    }
    let mut env = demo_env(&[("AUTH_NONE_ROLES", "admin"), ("METRICS_ENABLED", "true")]);
    env.remove("REGISTRY_CATALOG_FILE");
    env.insert("REGISTRY_CATALOG_JSON".into(), json!([entry]).to_string());
    env.insert("REGISTRY_ALLOWED_HOSTS".into(), server.host_port());
    env.insert("REGISTRY_REQUIRE_HTTPS".into(), "false".into());
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;

    let valid: Value =
        serde_json::from_slice(&std::fs::read(dir.join("examples/valid-reuse-laptop.json")).unwrap()).unwrap();
    let mut invalid = valid.clone();
    let first_key = invalid.as_object().unwrap().keys().next().unwrap().clone();
    invalid.as_object_mut().unwrap().remove(&first_key);
    invalid["unexpected_key"] = json!(true);
    let work = tempfile::tempdir().unwrap();
    for (name, payload) in [("valid", &valid), ("invalid", &invalid)] {
        let file = work.path().join(format!("{name}.json"));
        std::fs::write(&file, payload.to_string()).unwrap();
        let online = cli(&service)
            .args([
                "validate",
                "re-indicators-specification",
                "0.0.5",
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let mut offline = Command::cargo_bin("hex-cli").unwrap();
        offline
            .env_clear()
            .args(["validate", "--offline", "--root-class", "Assessment"]);
        for (_, file_name, flag) in files {
            offline.args([flag, dir.join(file_name).to_str().unwrap()]);
        }
        let offline = offline.arg(file.to_str().unwrap()).output().unwrap();
        assert_eq!(online.status.code(), offline.status.code(), "{name}");
        let (online, offline) = (json_of(&online.stdout), json_of(&offline.stdout));
        assert_eq!(online["passed"], offline["passed"], "{name}");
        assert_eq!(online["results"], offline["results"], "{name}: same violations");
        assert_eq!(online["passed"], json!(name == "valid"), "{name}: {online:#}");
    }
}
