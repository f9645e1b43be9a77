//! The `embedded` store keeps every acknowledged create across `kill -9`: the real binary, real
//! HTTP, SIGKILL right after the last 200, then a restart on the same data directory.

mod support;

use serde_json::{Value, json};
use support::{ServiceProcess, client, demo_dir, demo_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9() {
    const RECORDS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let env = demo_env(&[
        ("IO_ADAPTER_ID", "embedded"),
        ("IO_ADAPTER_DATA_DIR", dir.path().to_str().unwrap()),
    ]);
    let example: Value =
        serde_json::from_slice(&std::fs::read(demo_dir().join("examples/passport-valid.json")).unwrap()).unwrap();
    let http = client();

    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    let creates = (0..RECORDS).map(|n| {
        let mut payload = example["payload"].clone();
        payload["id"] = json!(format!("durable-{n}"));
        http.post(service.url("/models/demo-passport/versions/0.1.0:create"))
            .header("Idempotency-Key", format!("key-{n}"))
            .json(&json!({"payload": payload}))
            .send()
    });
    for response in futures::future::join_all(creates).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    // Drop sends SIGKILL (std's Child::kill) and reaps the process: no graceful shutdown.
    drop(service);

    let restarted = ServiceProcess::spawn(&env);
    restarted.wait_ready().await;
    for n in 0..RECORDS {
        let response = http
            .get(restarted.url(&format!("/models/demo-passport/versions/0.1.0/records/durable-{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "durable-{n} lost after kill -9");
    }
    let found: Value = http
        .post(restarted.url("/models/demo-passport/versions/0.1.0:query"))
        .json(&json!({"filter": {"limit": 1000}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["records"].as_array().unwrap().len(), RECORDS);
    // A replay after the restart still answers the first record, not a new one.
    let mut payload = example["payload"].clone();
    payload["id"] = json!("durable-0");
    let replay = http
        .post(restarted.url("/models/demo-passport/versions/0.1.0:create"))
        .header("Idempotency-Key", "key-0")
        .json(&json!({"payload": payload}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotency-replayed"], "true");
}
