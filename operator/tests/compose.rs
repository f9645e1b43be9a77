//! The local compose setup (compose.yaml, .env.example, deploy/compose/): run for real by
//! `scripts/compose-check` with Debian's docker.io and docker-compose against this checkout's
//! image, offline, in namespaces of its own; and the files that must agree with the rest of the
//! repository (the demo catalog, the workspace version) checked without Docker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// A `NAME=value` line of .env.example.
fn env_example(name: &str) -> String {
    read(".env.example")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!(".env.example sets {name}"))
        .to_string()
}

/// The artifact server serves demo/models under /models and deploy/compose/catalog.json as
/// /catalog.json, so the compose catalog must be demo/catalog.json with every relative artifact
/// path turned into a URL of that server (the service resolves no relative URLs).
#[test]
fn compose_catalog_is_the_demo_catalog_served_by_the_artifacts_service() {
    let demo: Value = serde_json::from_str(&read("demo/catalog.json")).expect("demo/catalog.json is JSON");
    let compose: Value =
        serde_json::from_str(&read("deploy/compose/catalog.json")).expect("deploy/compose/catalog.json is JSON");
    let mut expected = demo.clone();
    for entry in expected["models"].as_array_mut().expect("demo catalog has models") {
        for (key, value) in entry.as_object_mut().expect("a catalog entry is an object") {
            if key.ends_with("_url") {
                let path = value.as_str().expect("an artifact path is a string");
                *value = Value::String(format!("http://artifacts:8080/{path}"));
            }
        }
    }
    assert_eq!(
        compose, expected,
        "deploy/compose/catalog.json must be demo/catalog.json with http://artifacts:8080/ before each artifact path"
    );
    let compose_yaml = read("compose.yaml");
    for mount in [
        "./deploy/compose/catalog.json:/srv/catalog.json:ro",
        "./demo/models:/srv/models:ro",
    ] {
        assert!(compose_yaml.contains(mount), "compose.yaml mounts {mount}");
    }
    assert_eq!(
        env_example("REGISTRY_CATALOG_URL"),
        "http://artifacts:8080/catalog.json"
    );
}

/// `docker compose up` without a .env runs the image of this release.
#[test]
fn compose_image_tag_is_the_workspace_version() {
    let cargo = read("Cargo.toml");
    let version = cargo
        .split("\n[")
        .find(|s| s.starts_with("workspace.package]"))
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("version in [workspace.package] of Cargo.toml");
    assert_eq!(
        env_example("HEX_CORE_VERSION"),
        version,
        ".env.example's HEX_CORE_VERSION follows the workspace version"
    );
    assert!(
        read("compose.yaml").contains(&format!("hex-core-service:${{HEX_CORE_VERSION:-{version}}}")),
        "compose.yaml's default image tag is the workspace version {version}"
    );
}

/// The whole setup on Debian's docker.io and docker-compose: the resolved configuration of every
/// profile, then the default profile up with this checkout's image, the demo through the published
/// port, a restart that keeps the records, `down -v`, and nothing left behind.
#[test]
fn compose_setup_serves_the_demo_with_this_checkouts_image() {
    let has = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    assert!(
        has("HEX_NODE_DIR") || has("HEX_COMPOSE_IMAGES"),
        "the compose check runs this checkout's image, exported from the single-node cluster: start it as root \
         with `eval \"$(scripts/node up)\"` (scripts/test does; it exports HEX_NODE_DIR) and run the tests in that \
         shell, or set HEX_COMPOSE_IMAGES to a directory written by `scripts/node export-images DIR {}`",
        env_example("HEX_CORE_VERSION")
    );
    let started = Instant::now();
    let out = Command::new(repo_root().join("scripts/compose-check"))
        .output()
        .expect("run scripts/compose-check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/compose-check failed ({}):\n{stderr}",
        out.status
    );
    for step in [
        "configuration: defaults equal .env.example",
        "ok: GET /models lists demo-passport 0.1.0",
        "ok: the invalid demo payload fails validation with JSON paths",
        "ok: the replay answers the first record",
        "ok: the query finds exactly the record (after-restart)",
        "down -v in",
        "and dockerd are gone",
    ] {
        assert!(
            stderr.contains(step),
            "scripts/compose-check did not report {step:?}:\n{stderr}"
        );
    }
    // Past the harness's capture, so scripts/test's log shows the figure.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "compose: scripts/compose-check passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
