//! The service's own contract checked by a property-based client (issue 17, point 8):
//! Schemathesis, pinned and installed by scripts/test, generates requests from `/openapi.json`
//! (as served, with a bearer token) and runs every check on every answer: documented statuses,
//! content types, headers and schemas, negative data refused, positive data accepted, 405 with
//! `Allow` for undocumented methods, authentication not ignored, answers under 5 s.
//!
//! Bounded for CI: a fixed seed, a fixed number of examples per operation, no example database,
//! so two runs on the same commit send the same requests.
//!
//! `HEX_SCHEMATHESIS` names the `schemathesis` executable (scripts/test sets it); without it the
//! test fails and says how to install it.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::idp::{self, AUDIENCE, ISSUER, TestKey};
use support::{ArtifactServer, InProcessService, Route, base_env, demo_dir};

const SCHEMATHESIS_VERSION: &str = "4.32.5";
const JWKS_PATH: &str = "/realms/hex/protocol/openid-connect/certs";
/// Examples per operation and phase; with the coverage phase's own cases this keeps a run
/// within a few minutes on two cores.
const MAX_EXAMPLES: &str = "500";
const SEED: &str = "20261127";
/// A debug build validates a payload in milliseconds; anything near this is a bug.
const MAX_RESPONSE_TIME_SECS: &str = "5";
/// The whole run; a hang fails the test instead of blocking the suite.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

fn install_hint() -> String {
    format!(
        "Schemathesis {SCHEMATHESIS_VERSION} is needed for this test. Run scripts/test (it installs it into \
         target/schemathesis-venv and sets HEX_SCHEMATHESIS), or install it yourself: \
         python3 -m venv target/schemathesis-venv && target/schemathesis-venv/bin/pip install \
         schemathesis=={SCHEMATHESIS_VERSION} && export HEX_SCHEMATHESIS=$PWD/target/schemathesis-venv/bin/schemathesis"
    )
}

/// The executable: `HEX_SCHEMATHESIS`, else the venv scripts/test creates; its version checked.
fn schemathesis() -> PathBuf {
    let candidate = match std::env::var_os("HEX_SCHEMATHESIS") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("schemathesis-venv/bin/schemathesis")
        }
    };
    match std::process::Command::new(&candidate).arg("--version").output() {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains(SCHEMATHESIS_VERSION) => candidate,
        Ok(out) => panic!(
            "{} is not Schemathesis {SCHEMATHESIS_VERSION} ({}). {}",
            candidate.display(),
            String::from_utf8_lossy(&out.stdout).trim(),
            install_hint()
        ),
        Err(e) => panic!("cannot run {} ({e}). {}", candidate.display(), install_hint()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_own_contract() {
    let schemathesis = schemathesis();
    let key = TestKey::rsa("schemathesis", jsonwebtoken::Algorithm::RS256, 0);
    let idp_server = ArtifactServer::http().await;
    idp_server.set(JWKS_PATH, Route::ok(idp::jwks(&[&key])));

    let mut env = base_env("", "localhost", true);
    for variable in ["REGISTRY_CATALOG_JSON", "AUTH_ALLOW_INSECURE_NONE", "AUTH_NONE_ROLES"] {
        env.remove(variable);
    }
    let jwks_url = idp_server.url(JWKS_PATH);
    for (variable, value) in [
        (
            "REGISTRY_CATALOG_FILE",
            demo_dir().join("catalog.json").to_str().unwrap(),
        ),
        ("REGISTRY_ALLOW_LOCAL_ARTIFACTS", "true"),
        ("AUTH_MODE", "jwt_jwks"),
        ("AUTH_JWKS_URL", &jwks_url),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("LOG_LEVEL", "warn"),
    ] {
        env.insert(variable.into(), value.into());
    }
    let service = InProcessService::start(&env).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !service.state.auth.health().ready {
        assert!(Instant::now() < deadline, "the service never loaded the test JWKS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut claims = idp::claims("schemathesis", &["admin"]);
    claims["exp"] = json!(idp::now() + 3600);
    claims["scope"] = json!("openid records:read records:write");
    let token = key.sign(&claims);

    // The contract as served, fetched with the token and handed over as a file: loaded from its
    // URL, Schemathesis would leave out the operation that serves it (GET /openapi.json).
    let served = support::client()
        .get(service.url("/openapi.json"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let report_dir = tempfile::tempdir().unwrap();
    let contract_file = report_dir.path().join("openapi.json");
    std::fs::write(&contract_file, served.bytes().await.unwrap()).unwrap();
    let started = Instant::now();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let run = tokio::process::Command::new(&schemathesis)
        // Its `.schemathesis/` cache goes into the working directory: not the checkout.
        .current_dir(report_dir.path())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&contract_file)
        .args(["--url", &service.base_url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .args(["--generation-database", "none"])
        .args(["--max-response-time", MAX_RESPONSE_TIME_SECS])
        .args(["--request-timeout", "30"])
        .args(["--workers", "2"])
        .arg("--no-color")
        .args(["--report", "junit", "--report-dir"])
        .arg(report_dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("Schemathesis did not finish within {RUN_TIMEOUT:?}"))
        .expect("Schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("Schemathesis ran for {:.0?}", started.elapsed());
    assert!(
        output.status.success(),
        "Schemathesis found problems (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    // It tested every operation of the contract, not a few.
    let contract: serde_json::Value = serde_json::from_str(hex_core_service::http::admin::OPENAPI_JSON).unwrap();
    let operations: usize = contract["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().keys().filter(|k| *k != "parameters").count())
        .sum();
    assert!(stdout.contains(&format!("Tested: {operations}\n")), "{stdout}");
    eprintln!(
        "{}",
        stdout
            .lines()
            .skip_while(|l| !l.contains("Test cases:"))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
