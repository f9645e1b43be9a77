//! The `embedded` store on a full disk: the real binary on a small tmpfs that each test mounts
//! (mounting needs root, which `scripts/test` has; without it these tests fail, they never skip).
//! Creates fail with a store error while the disk is full, `/admin/ready` says the store cannot
//! write, and once space is freed creates work again without a restart; every acknowledged record
//! survives, `kill -9` included. Starting on a full disk is a runtime failure (exit 1), not a
//! configuration error (exit 2).

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ServiceProcess, client, demo_dir, demo_env, service_binary};

/// A tmpfs of `size` mounted on a fresh temporary directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("the mount command runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {}: these tests need root (CAP_SYS_ADMIN), as scripts/test has",
            dir.path().display()
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full; returns it (remove it to free the space).
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xA5u8; 16 * 1024];
        loop {
            if let Err(error) = file.write_all(&chunk).and_then(|()| file.sync_data()) {
                assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
                break;
            }
        }
        // The last partial page too.
        while file.write_all(&[0xA5]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn env_for(data_dir: &Path) -> BTreeMap<String, String> {
    demo_env(&[
        ("IO_ADAPTER_ID", "embedded"),
        ("IO_ADAPTER_DATA_DIR", data_dir.to_str().unwrap()),
    ])
}

fn payload(id: &str, filler_bytes: usize) -> Value {
    let example: Value =
        serde_json::from_slice(&std::fs::read(demo_dir().join("examples/passport-valid.json")).unwrap()).unwrap();
    let mut payload = example["payload"].clone();
    payload["id"] = json!(id);
    payload["product_name"] = json!("x".repeat(filler_bytes));
    payload
}

async fn create(service: &ServiceProcess, id: &str, filler_bytes: usize) -> (u16, Value) {
    let response = client()
        .post(service.url("/models/demo-passport/versions/0.1.0:create"))
        .header("Idempotency-Key", format!("key-{id}"))
        .json(&json!({"payload": payload(id, filler_bytes)}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn ready(service: &ServiceProcess) -> (u16, Value) {
    let response = client().get(service.url("/admin/ready")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get_status(service: &ServiceProcess, id: &str) -> u16 {
    client()
        .get(service.url(&format!("/models/demo-passport/versions/0.1.0/records/{id}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Creates 100 KB records until one fails; returns the ids acknowledged with 200 and the error.
async fn create_until_the_disk_refuses(service: &ServiceProcess, prefix: &str) -> (Vec<String>, Value) {
    let mut acknowledged = Vec::new();
    for n in 0..400 {
        let id = format!("{prefix}-{n}");
        let (status, body) = create(service, &id, 100_000).await;
        match status {
            200 => acknowledged.push(id),
            502 => return (acknowledged, body),
            other => panic!("create {id}: unexpected {other}: {body}"),
        }
    }
    panic!("400 creates of 100 KB fitted on the full disk");
}

async fn wait_until_ready(service: &ServiceProcess, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = ready(service).await;
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_work_again_once_the_disk_has_space_without_a_restart() {
    let disk = Tmpfs::mount("16m");
    let data_dir = disk.path().join("data");
    let env = env_for(&data_dir);
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    let (status, _) = ready(&service).await;
    assert_eq!(status, 200);

    let mut acknowledged = Vec::new();
    for n in 0..3 {
        let id = format!("before-{n}");
        assert_eq!(create(&service, &id, 10).await.0, 200);
        acknowledged.push(id);
    }
    let filler = disk.fill();
    let (during, error) = create_until_the_disk_refuses(&service, "full").await;
    acknowledged.extend(during);
    assert_eq!(error["code"], "STORE_ERROR", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("No space left on device"),
        "{error}"
    );

    // The database is closed and cannot be reopened while the disk is full: not ready, and creates
    // fail at once.
    let (status, body) = ready(&service).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"]["ready"], false, "{body}");
    assert!(body["reason"].as_str().unwrap().starts_with("record store:"), "{body}");
    let (status, error) = create(&service, "while-full", 10).await;
    assert_eq!(status, 502, "{error}");
    // Reads keep working from the index.
    assert_eq!(get_status(&service, "before-0").await, 200);

    std::fs::remove_file(filler).unwrap();
    let body = wait_until_ready(&service, Duration::from_secs(15)).await;
    assert_eq!(body["store"]["ready"], true, "{body}");
    for n in 0..3 {
        let id = format!("after-{n}");
        let (status, body) = create(&service, &id, 10).await;
        assert_eq!(status, 200, "{body}");
        acknowledged.push(id);
    }
    // The create refused while the disk was full succeeds when retried with its key.
    assert_eq!(create(&service, "while-full", 10).await.0, 200);
    acknowledged.push("while-full".into());
    for id in &acknowledged {
        assert_eq!(get_status(&service, id).await, 200, "{id}");
    }

    // Every acknowledged record is on disk: kill -9 and start again on the same directory.
    drop(service);
    let restarted = ServiceProcess::spawn(&env);
    restarted.wait_ready().await;
    for id in &acknowledged {
        assert_eq!(get_status(&restarted, id).await, 200, "{id} lost after kill -9");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_the_database_cannot_be_reopened() {
    let disk = Tmpfs::mount("16m");
    let data_dir = disk.path().join("data");
    let service = ServiceProcess::spawn(&env_for(&data_dir));
    service.wait_ready().await;
    assert_eq!(create(&service, "kept", 10).await.0, 200);

    // The file moves away while open (the process keeps writing it); then the disk fills. Once
    // space is back the disk probe passes, but there is no database to reopen at its path, and
    // the store must never create an empty one in its place.
    let file = data_dir.join("records.redb");
    let moved = data_dir.join("records.redb.moved");
    std::fs::rename(&file, &moved).unwrap();
    let filler = disk.fill();
    let (during, _) = create_until_the_disk_refuses(&service, "full").await;
    std::fs::remove_file(filler).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, body) = ready(&service).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["store"]["detail"].as_str().unwrap();
    assert!(detail.contains("No such file"), "{body}");
    assert!(
        !file.exists(),
        "no empty database was created in place of the moved one"
    );
    assert_eq!(create(&service, "refused", 10).await.0, 502);

    std::fs::rename(&moved, &file).unwrap();
    wait_until_ready(&service, Duration::from_secs(15)).await;
    assert_eq!(create(&service, "after", 10).await.0, 200);
    for id in during.iter().map(String::as_str).chain(["kept", "after"]) {
        assert_eq!(get_status(&service, id).await, 200, "{id}");
    }
}

/// Runs the binary, which is expected to stop at start; returns its exit code and stderr.
fn run_until_exit(env: &BTreeMap<String, String>) -> (Option<i32>, String) {
    let mut child = Command::new(service_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn starting_on_a_full_disk_exits_1_not_as_a_configuration_error() {
    let disk = Tmpfs::mount("2m");
    std::fs::create_dir(disk.path().join("data")).unwrap();
    disk.fill();
    let (code, stderr) = run_until_exit(&env_for(&disk.path().join("data")));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the record store"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("invalid configuration"), "{stderr}");

    // A data directory that is a file stays a configuration error.
    let file = tempfile::NamedTempFile::new().unwrap();
    let (code, stderr) = run_until_exit(&env_for(file.path()));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid configuration: IO_ADAPTER_DATA_DIR"),
        "{stderr}"
    );
}
