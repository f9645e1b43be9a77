//! The SDKs generated from `service/openapi.json` (TypeScript, Python, Go; `scripts/sdk`) against
//! the service binary this test run built: each is generated, compiled or installed with its
//! pinned toolchain, and its test program (`sdk/tests/<language>/`) runs against a live service
//! with JWT authentication (keys and JWKS generated here) and the demo catalog. What each client
//! saw is then compared with what the service sent on the wire. A missing toolchain fails with how
//! to install it (the script says which); nothing is skipped.

mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use support::idp::{AUDIENCE, ISSUER, TestKey, claims, jwks, now};
use support::{ArtifactServer, Route, ServiceProcess, client, demo_dir, demo_env};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The service binary with JWT authentication (scopes enforced) and the demo catalog, and a token
/// it accepts for reading and writing records.
struct LiveService {
    service: ServiceProcess,
    token: String,
    _idp: ArtifactServer,
}

async fn live_service() -> LiveService {
    let key = TestKey::p256("sdk-key");
    let idp = ArtifactServer::http().await;
    idp.set("/certs", Route::ok(jwks(&[&key])));
    let mut env = demo_env(&[
        ("IO_ADAPTER_ID", "memory"),
        ("AUTH_MODE", "jwt_jwks"),
        ("AUTH_ENFORCE_SCOPES", "true"),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
    ]);
    env.remove("AUTH_ALLOW_INSECURE_NONE");
    env.insert("AUTH_JWKS_URL".into(), idp.url("/certs"));
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    let mut body = claims("sdk-test", &[]);
    body["scope"] = json!("records:read records:write");
    // Long enough for a slow first run of a test program.
    body["exp"] = json!(now() + 3600);
    LiveService {
        service,
        token: key.sign(&body),
        _idp: idp,
    }
}

/// Runs `scripts/sdk <args>` with `env`, returning its stdout; panics with its output on failure.
async fn sdk(args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let started = Instant::now();
    let output = tokio::process::Command::new(repo_root().join("scripts/sdk"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("scripts/sdk starts");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    eprintln!(
        "scripts/sdk {}: {:.1}s\n{stderr}",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).to_string())
    } else {
        Err(format!(
            "scripts/sdk {} failed ({}):\n{stderr}",
            args.join(" "),
            output.status
        ))
    }
}

/// What the service itself answers for the invalid demo example: `(path, message, severity)` of
/// every violation, sorted (the order within a validator follows the payload's key order, which
/// each client serialises its own way).
async fn wire_violations(live: &LiveService) -> Vec<Value> {
    let invalid: Value =
        serde_json::from_str(&std::fs::read_to_string(demo_dir().join("examples/passport-invalid.json")).unwrap())
            .unwrap();
    let report: Value = client()
        .post(live.service.url("/models/demo-passport/versions/0.1.0:validate"))
        .bearer_auth(&live.token)
        .json(&invalid)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sorted(
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| json!({"path": r["path"], "message": r["message"], "severity": r["severity"]}))
            .collect(),
    )
}

fn sorted(mut violations: Vec<Value>) -> Vec<Value> {
    violations.sort_by_key(|v| v.to_string());
    violations
}

/// Builds one language's client and test program, runs it against a fresh service, and checks
/// that the client saw everything the service sent.
async fn generated_client_works_against_a_live_service(language: &str) {
    sdk(&["build", language], &[]).await.unwrap_or_else(|e| panic!("{e}"));
    let live = live_service().await;
    let run_id = format!("sdk-{language}");
    let stdout = sdk(
        &["run", language],
        &[
            ("HEX_SDK_URL", &live.service.base_url),
            ("HEX_SDK_TOKEN", &live.token),
            ("HEX_SDK_RUN_ID", &run_id),
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nservice log:\n{}", live.service.log_text()));
    let summary: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}"));

    assert_eq!(summary["language"], language);
    assert!(
        summary["models"]
            .as_array()
            .unwrap()
            .contains(&json!(["demo-passport", "0.1.0"])),
        "{summary}"
    );
    let wire = wire_violations(&live).await;
    assert!(
        wire.len() >= 3,
        "the demo's invalid example has several violations: {wire:?}"
    );
    assert_eq!(
        sorted(summary["violations"].as_array().expect("violations").clone()),
        wire,
        "the {language} client sees every violation the service sent, with its JSON path"
    );
    assert_eq!(summary["record"]["id"], format!("{run_id}-a"));
    assert_eq!(summary["replayed_header"], "true");
    assert_eq!(
        summary["query_ids"],
        json!([format!("{run_id}-b"), format!("{run_id}-a")])
    );
}

#[tokio::test]
async fn typescript_client_works_against_a_live_service() {
    generated_client_works_against_a_live_service("typescript").await;
}

#[tokio::test]
async fn python_client_works_against_a_live_service() {
    generated_client_works_against_a_live_service("python").await;
}

#[tokio::test]
async fn go_client_works_against_a_live_service() {
    generated_client_works_against_a_live_service("go").await;
}

/// A copy of `sdk/tests/<language>` and a changed copy of the contract in a temporary folder, for
/// `scripts/sdk` with `HEX_SDK_ROOT` and `HEX_SDK_SPEC`.
struct ChangedContract {
    dir: tempfile::TempDir,
}

impl ChangedContract {
    fn new(language: &str, change: impl FnOnce(&mut Value)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut contract: Value =
            serde_json::from_str(&std::fs::read_to_string(repo_root().join("service/openapi.json")).unwrap()).unwrap();
        change(&mut contract);
        std::fs::write(dir.path().join("openapi.json"), contract.to_string()).unwrap();
        copy_dir(
            &repo_root().join("sdk/tests").join(language),
            &dir.path().join("sdk/tests").join(language),
        );
        Self { dir }
    }

    fn env(&self) -> [(&'static str, String); 2] {
        [
            (
                "HEX_SDK_ROOT",
                self.dir.path().join("sdk").to_str().unwrap().to_string(),
            ),
            (
                "HEX_SDK_SPEC",
                self.dir.path().join("openapi.json").to_str().unwrap().to_string(),
            ),
        ]
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "node_modules" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn validation_result(contract: &mut Value) -> &mut Value {
    &mut contract["components"]["schemas"]["ValidationResult"]
}

#[tokio::test]
async fn a_field_renamed_in_the_contract_stops_the_typescript_and_go_builds() {
    let rename_path = |contract: &mut Value| {
        let result = validation_result(contract);
        let path = result["properties"].as_object_mut().unwrap().remove("path").unwrap();
        result["properties"]["json_path"] = path;
        result["required"] = json!(["json_path", "message", "severity"]);
    };
    for (language, failure, compiler_says) in [
        (
            "typescript",
            "tsc failed on the TypeScript test program",
            "Property 'path' does not exist",
        ),
        ("go", "go vet / go test -c failed", "r.Path undefined"),
    ] {
        let changed = ChangedContract::new(language, rename_path);
        let env = changed.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let error = sdk(&["build", language], &env)
            .await
            .expect_err("a renamed field breaks the build");
        assert!(
            error.contains(failure) && error.contains(compiler_says),
            "{language}: {error}"
        );
    }
}

#[tokio::test]
async fn an_answer_the_contract_no_longer_describes_is_refused_by_the_go_and_python_clients() {
    // The document requires a field the service does not send: the clients compile, and their own
    // checks of the answer (Go: required fields; Python: pydantic) refuse it at run time. (The
    // TypeScript client does not check answers; its program's assertions are its guard.)
    let live = live_service().await;
    for language in ["go", "python"] {
        let changed = ChangedContract::new(language, |contract| {
            let result = validation_result(contract);
            result["properties"]["rule_id"] = json!({"type": "string"});
            result["required"] = json!(["path", "message", "severity", "rule_id"]);
        });
        let env = changed.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sdk(&["build", language], &env)
            .await
            .unwrap_or_else(|e| panic!("{language}: an added field still builds: {e}"));
        env.extend([
            ("HEX_SDK_URL", live.service.base_url.as_str()),
            ("HEX_SDK_TOKEN", live.token.as_str()),
            ("HEX_SDK_RUN_ID", language),
        ]);
        let error = sdk(&["run", language], &env)
            .await
            .expect_err("an answer that no longer matches the document fails");
        assert!(
            error.contains("rule_id") && error.contains(&format!("the {language} SDK test failed")),
            "{language}: the client names the missing field: {error}"
        );
    }
}

#[tokio::test]
async fn a_missing_toolchain_fails_with_how_to_install_it() {
    // A PATH with only what the script itself needs to start: no Java, Node.js, Python or Go.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["bash", "dirname"] {
        let path = which(tool);
        std::os::unix::fs::symlink(&path, bin.path().join(tool)).unwrap();
    }
    let path = bin.path().to_str().unwrap();
    let error = sdk(&["build", "typescript"], &[("PATH", path)])
        .await
        .expect_err("no toolchain, no build");
    assert!(
        error.contains("java is not installed") && error.contains("apt-get install openjdk-17-jre-headless"),
        "{error}"
    );
    let error = sdk(&["run", "go"], &[("PATH", path)])
        .await
        .expect_err("no service named");
    assert!(error.contains("HEX_SDK_URL is not set"), "{error}");
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}
