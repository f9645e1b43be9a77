//! A local catalog file and the local artifacts beside it are read like downloads: within
//! `REGISTRY_ARTIFACT_MAX_BYTES` and `REGISTRY_FETCH_TIMEOUT_MS`, and only when they are regular
//! files. A FIFO there must not hang a refresh (its open alone would wait for a writer).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{InProcessService, client, demo_dir, demo_env};

fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system entry.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
}

async fn ready(service: &InProcessService) -> (u16, Value) {
    let response = client().get(service.url("/admin/ready")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_fifo_as_the_catalog_file_fails_the_refresh_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    mkfifo(&catalog);
    let started = Instant::now();
    let service = InProcessService::start(&demo_env(&[("REGISTRY_CATALOG_FILE", catalog.to_str().unwrap())])).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let (status, body) = ready(&service).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("is a FIFO, not a regular file"),
        "{body}"
    );
}

#[tokio::test]
async fn a_catalog_file_over_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    let mut text = std::fs::read_to_string(demo_dir().join("catalog.json")).unwrap();
    text.push_str(&" ".repeat(2000));
    std::fs::write(&catalog, text).unwrap();
    let service = InProcessService::start(&demo_env(&[
        ("REGISTRY_CATALOG_FILE", catalog.to_str().unwrap()),
        ("REGISTRY_ARTIFACT_MAX_BYTES", "1024"),
    ]))
    .await;
    let (status, body) = ready(&service).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("larger than the 1024 byte limit (REGISTRY_ARTIFACT_MAX_BYTES)"),
        "{body}"
    );
}

#[tokio::test]
async fn a_fifo_beside_the_catalog_fails_only_its_entry_at_once() {
    // The demo catalog and its models, with the JSON Schema replaced by a FIFO.
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    let model = "models/demo-passport/0.1.0";
    for file in ["shacl.ttl", "model.ttl", "openapi.json", "route.json", "schema.yaml"] {
        copy(&demo_dir().join(model).join(file), &dir.path().join(model).join(file));
    }
    copy(&demo_dir().join("catalog.json"), &dir.path().join("catalog.json"));
    mkfifo(&dir.path().join(model).join("schema.json"));
    let started = Instant::now();
    let service = InProcessService::start(&demo_env(&[(
        "REGISTRY_CATALOG_FILE",
        dir.path().join("catalog.json").to_str().unwrap(),
    )]))
    .await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let report = service.state.registry.last_refresh().expect("the refresh finished");
    let errors = report.errors.join("\n");
    assert!(errors.contains("is a FIFO, not a regular file"), "{errors}");
    assert_eq!(report.models_found, 0, "{errors}");
}
