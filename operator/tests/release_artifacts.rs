//! The release as a user receives it: `scripts/release --snapshot` into a temporary directory,
//! then what each artifact holds (hex-cli archive, chart package, SBOMs, release notes, image
//! archives, SHA256SUMS), the static hex-cli talking to a real service on 127.0.0.1, and on the
//! single-node cluster: the image archives loaded into the node's containerd (the names they
//! carry removed first, so only the archive can bring them back), the packaged chart installed
//! with its default values (so the chart's appVersion and the images' tags must agree), the
//! operator pods Ready, and the service image running.
//!
//! The release reuses what scripts/test already built (the release binaries, the node's images,
//! the musl hex-cli, the pinned cargo-cyclonedx): warm, it packages; it does not compile.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::node::{Node, node};
use support::{eventually, repo_root, workspace_version};

const OPERATOR_NS: &str = "hex-core-system";
const RELEASE: &str = "hex-core-operator";
const CHECK_NS: &str = "hex-release-check";

fn figure(line: &str) {
    let _ = writeln!(std::io::stderr(), "release: {line}");
}

/// The cargo target dir this test was built in (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).expect("<target>/debug/deps/<exe>").to_path_buf()
}

/// A command without the variables cargo sets for a test (they would confuse the cargo builds
/// that scripts/release runs), keeping the target dir.
fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_str()) || key.starts_with("CARGO_BUILD_");
        if (key.starts_with("CARGO_") && !keep)
            || key == "LD_LIBRARY_PATH"
            || key == "OUT_DIR"
            || key == "RUSTUP_TOOLCHAIN"
        {
            command.env_remove(&key);
        }
    }
    command.env("CARGO_TARGET_DIR", target_dir()).stdin(Stdio::null());
    command
}

fn ok(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn tar_members(archive: &Path) -> BTreeSet<String> {
    ok(
        Command::new("tar").arg("-tf").arg(archive),
        &format!("tar -tf {}", archive.display()),
    )
    .lines()
    .map(|l| l.trim_end_matches('/').to_string())
    .collect()
}

fn extract(archive: &Path, into: &Path, members: &[&str]) {
    ok(
        Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(into)
            .args(members),
        &format!("tar -xf {}", archive.display()),
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn run_release(node: &Node, dist: &Path) -> String {
    let started = Instant::now();
    let out = clean_command(repo_root().join("scripts/release"))
        .args(["--snapshot", "--out"])
        .arg(dist)
        .env("HEX_NODE_DIR", &node.dir)
        .output()
        .expect("run scripts/release");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "scripts/release --snapshot failed:\n{log}");
    figure(&format!("scripts/release --snapshot took {:.1?}", started.elapsed()));
    log
}

fn check_checksums(dist: &Path, expected: &BTreeSet<String>) {
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let listed: BTreeSet<String> = sums
        .lines()
        .map(|l| l.split_once("  ").expect("`<sha256>  <file>` lines").1.to_string())
        .collect();
    let mut without = expected.clone();
    without.remove("SHA256SUMS");
    assert_eq!(listed, without, "SHA256SUMS covers every other file");
    ok(
        Command::new("sha256sum")
            .args(["--strict", "-c", "SHA256SUMS"])
            .current_dir(dist),
        "sha256sum -c SHA256SUMS",
    );
}

/// hex-cli's archive: the files the guide lists, a static binary that runs, and a real request
/// to a service on 127.0.0.1.
fn check_cli_archive(dist: &Path, version: &str, tmp: &Path) {
    let name = format!("hex-cli-{version}-linux-x86_64");
    let archive = dist.join(format!("{name}.tar.gz"));
    let expected: BTreeSet<String> = [
        "",
        "/hex-cli",
        "/LICENSE",
        "/README.md",
        "/cli.md",
        "/completions",
        "/completions/hex-cli.bash",
        "/completions/hex-cli.zsh",
        "/completions/hex-cli.fish",
        "/completions/hex-cli.ps1",
    ]
    .iter()
    .map(|m| format!("{name}{m}"))
    .collect();
    assert_eq!(tar_members(&archive), expected, "{name}.tar.gz members");
    extract(&archive, tmp, &[]);
    let cli = tmp.join(&name).join("hex-cli");
    let file = ok(Command::new("file").arg("-b").arg(&cli), "file hex-cli");
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "hex-cli is static: {file}"
    );
    // ldd refuses a static binary ("not a dynamic executable" / "statically linked").
    let ldd = Command::new("ldd").arg(&cli).output().unwrap();
    let ldd_text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd_text.contains("not a dynamic executable") || ldd_text.contains("statically linked"),
        "ldd hex-cli: {ldd_text}"
    );
    assert_eq!(
        ok(Command::new(&cli).arg("--version"), "hex-cli --version").trim(),
        format!("hex-cli {version}")
    );
    let bash = std::fs::read_to_string(tmp.join(&name).join("completions/hex-cli.bash")).unwrap();
    assert!(bash.contains("hex-cli"), "bash completions");

    // The release build of the service (scripts/release built it for the images) on loopback,
    // with the bundled demo catalog.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tmp.join("service-data");
    let mut service = clean_command(target_dir().join("release/hex-core-service"))
        .current_dir(repo_root())
        .envs([
            ("REGISTRY_CATALOG_FILE", "demo/catalog.json"),
            ("REGISTRY_ALLOW_LOCAL_ARTIFACTS", "true"),
            ("REGISTRY_ALLOWED_HOSTS", "localhost,127.0.0.1"),
            ("REGISTRY_REQUIRE_HTTPS", "false"),
            ("AUTH_MODE", "none"),
            ("AUTH_ALLOW_INSECURE_NONE", "true"),
            ("AUTH_NONE_ROLES", "admin"),
            ("AUTH_NONE_SCOPES", "records:read records:write"),
            ("IO_ADAPTER_ID", "memory"),
            ("SERVER_HOST", "127.0.0.1"),
            ("LOG_FORMAT", "text"),
        ])
        .env("SERVER_PORT", port.to_string())
        .env("IO_ADAPTER_DATA_DIR", &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the release hex-core-service");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let out = Command::new(&cli)
            .args(["--url", &url, "models", "list"])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if Instant::now() > deadline || service.try_wait().unwrap().is_some() {
            let _ = service.kill();
            panic!(
                "the static hex-cli could not list models at {url}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = service.kill();
    let _ = service.wait();
    assert!(listed.contains("demo-passport"), "hex-cli models list: {listed}");
}

/// The chart package: the chart directory's files, at the workspace version.
fn check_chart_package(dist: &Path, version: &str, tmp: &Path) {
    let archive = dist.join(format!("hex-core-operator-{version}.tgz"));
    let members = tar_members(&archive);
    for member in [
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "templates/deployment.yaml",
        "templates/crds.yaml",
        "files/crds/hex-core.dev_hexcoreservices.yaml",
        "files/crds/hex-core.dev_modelcatalogs.yaml",
    ] {
        assert!(
            members.contains(&format!("hex-core-operator/{member}")),
            "the chart package holds {member}: {members:?}"
        );
    }
    extract(&archive, tmp, &["hex-core-operator/Chart.yaml"]);
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(tmp.join("hex-core-operator/Chart.yaml")).unwrap()).unwrap();
    assert_eq!(chart["version"].as_str(), Some(version), "packaged chart version");
    assert_eq!(chart["appVersion"].as_str(), Some(version), "packaged chart appVersion");
}

/// One CycloneDX 1.5 SBOM per binary, describing that binary, listing its real dependencies.
fn check_sboms(dist: &Path, version: &str) {
    for (binary, must_list) in [
        ("hex-core-service", &["axum", "tokio", "rustls", "jsonschema"][..]),
        ("hex-core-operator", &["kube", "k8s-openapi", "tokio"][..]),
        ("hex-cli", &["clap", "reqwest", "rustls"][..]),
    ] {
        let path = dist.join(format!("{binary}-{version}.cdx.json"));
        let bom = read_json(&path);
        assert_eq!(bom["bomFormat"], "CycloneDX", "{}", path.display());
        assert_eq!(bom["specVersion"], "1.5", "{}", path.display());
        assert_eq!(
            bom["metadata"]["component"]["name"],
            binary,
            "{}: describes the binary",
            path.display()
        );
        assert_eq!(
            bom["metadata"]["component"]["type"],
            "application",
            "{}",
            path.display()
        );
        let components = bom["components"].as_array().expect("components");
        let names: BTreeSet<&str> = components.iter().filter_map(|c| c["name"].as_str()).collect();
        for name in must_list {
            assert!(names.contains(name), "{}: lists {name}", path.display());
        }
        for c in components {
            let purl = c["purl"].as_str().unwrap_or_default();
            assert!(
                purl.starts_with("pkg:cargo/") || c["name"].as_str().is_some_and(|n| n.starts_with("hex-core")),
                "{}: a component without a cargo purl: {c}",
                path.display()
            );
            assert!(
                c["version"].as_str().is_some_and(|v| !v.is_empty()),
                "{}: {c}",
                path.display()
            );
        }
        assert!(
            components.len() > 50,
            "{}: {} components only",
            path.display(),
            components.len()
        );
    }
}

/// `io.containerd.image.name` of every manifest in an exported image archive.
fn archive_image_names(archive: &Path, tmp: &Path) -> (BTreeSet<String>, String) {
    let dir = tmp.join(archive.file_name().unwrap().to_string_lossy().replace(".oci.tar", ""));
    std::fs::create_dir_all(&dir).unwrap();
    let members = tar_members(archive);
    for m in ["index.json", "oci-layout", "manifest.json"] {
        assert!(members.contains(m), "{} holds {m}: {members:?}", archive.display());
    }
    extract(archive, &dir, &["index.json", "oci-layout"]);
    assert_eq!(read_json(&dir.join("oci-layout"))["imageLayoutVersion"], "1.0.0");
    let index = read_json(&dir.join("index.json"));
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    let names = manifests
        .iter()
        .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str().map(String::from))
        .collect();
    let digests: BTreeSet<&str> = manifests.iter().filter_map(|m| m["digest"].as_str()).collect();
    assert_eq!(digests.len(), 1, "every tag names one image: {index}");
    (names, digests.into_iter().next().unwrap().to_string())
}

/// Removes `names` from the node's containerd, imports `archive`, and checks they are back at
/// the archive's digest.
fn load_into_node(node: &Node, archive: &Path, names: &BTreeSet<String>, digest: &str) {
    let mut rm = vec!["ctr", "images", "rm"];
    rm.extend(names.iter().map(String::as_str));
    let _ = Command::new(repo_root().join("scripts/node"))
        .args(&rm)
        .env("HEX_NODE_DIR", &node.dir)
        .output();
    let listed = node.script(&["ctr", "images", "ls", "-q"]);
    for name in names {
        assert!(
            !listed.lines().any(|l| l == name),
            "{name} was removed before the import"
        );
    }
    node.script(&["ctr", "images", "import", archive.to_str().unwrap()]);
    let listed = node.script(&["ctr", "images", "ls"]);
    for name in names {
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{name} is in the node's containerd after importing {}",
                    archive.display()
                )
            });
        assert!(line.contains(digest), "{name} is the archive's image {digest}: {line}");
    }
}

async fn reset_operator(node: &Node, client: &Client) {
    let _ = node.run("helm", &["uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait"]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(CHECK_NS, &DeleteParams::default()).await;
    eventually(
        Duration::from_secs(120),
        "an earlier check namespace to be deleted",
        || async { namespaces.get_opt(CHECK_NS).await.ok()?.is_none().then_some(()) },
    )
    .await;
}

/// The packaged chart, installed with its defaults: the operator image is `hex-core-operator:`
/// appVersion, which only the release's archive provides.
async fn install_chart_package(node: &Node, client: &Client, chart: &Path, version: &str) {
    let started = Instant::now();
    node.ok(
        "helm",
        &[
            "install",
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            OPERATOR_NS,
            "--create-namespace",
            "--wait",
            "--timeout",
            "180s",
        ],
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}")))
        .await
        .unwrap();
    assert!(!list.items.is_empty(), "the chart package started operator pods");
    for pod in &list.items {
        let image = &pod.spec.as_ref().unwrap().containers[0].image;
        assert_eq!(
            image.as_deref(),
            Some(format!("hex-core-operator:{version}").as_str()),
            "the chart's default image"
        );
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        assert!(ready, "operator pod {:?} is Ready", pod.metadata.name);
    }
    figure(&format!(
        "the chart package installed, {} operator pods Ready in {:.1?}",
        list.items.len(),
        started.elapsed()
    ));
}

/// The service image from its archive, run as a pod: it starts and reports the version.
async fn run_service_image(client: &Client, version: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": CHECK_NS}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), CHECK_NS);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "service-version"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "service",
                "image": format!("hex-core-service:{version}"),
                "imagePullPolicy": "Never",
                "args": ["--version"],
            }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let phase = eventually(
        Duration::from_secs(120),
        "the service image's pod to finish",
        || async {
            let phase = pods.get("service-version").await.ok()?.status?.phase?;
            ["Succeeded", "Failed"].contains(&phase.as_str()).then_some(phase)
        },
    )
    .await;
    let logs = pods.logs("service-version", &LogParams::default()).await.unwrap();
    assert_eq!(phase, "Succeeded", "the service image ran: {logs}");
    assert_eq!(logs.trim(), format!("hex-core-service {version}"));
    let _ = namespaces.delete(CHECK_NS, &DeleteParams::default()).await;
}

#[tokio::test]
async fn the_release_artifacts_unpack_verify_install_and_run_on_the_node() {
    support::init_logging();
    let node = node();
    let version = workspace_version();
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    run_release(node, &dist);

    let files: BTreeSet<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = [
        format!("hex-core-service-{version}.oci.tar"),
        format!("hex-core-operator-{version}.oci.tar"),
        format!("hex-core-service-{version}.cdx.json"),
        format!("hex-core-operator-{version}.cdx.json"),
        format!("hex-cli-{version}.cdx.json"),
        format!("hex-core-operator-{version}.tgz"),
        format!("hex-cli-{version}-linux-x86_64.tar.gz"),
        "RELEASE-NOTES.md".into(),
        "SHA256SUMS".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(files, expected, "the release's files");
    check_checksums(&dist, &expected);
    check_cli_archive(&dist, &version, tmp.path());
    check_chart_package(&dist, &version, tmp.path());
    check_sboms(&dist, &version);
    let notes = std::fs::read_to_string(dist.join("RELEASE-NOTES.md")).unwrap();
    assert!(notes.starts_with(&format!("# hex-core v{version}\n")), "{notes}");
    assert!(
        notes.contains("Snapshot build"),
        "a --snapshot release says so: {notes}"
    );
    assert!(notes.contains("## ["), "the notes carry the changelog section: {notes}");

    // The tag policy on the images: v-version, version, and latest (a final version).
    let policy: BTreeSet<String> = [format!("v{version}"), version.clone(), "latest".into()]
        .into_iter()
        .filter(|t| t != "latest" || !version.contains('-'))
        .collect();
    let client = node.client().await;
    reset_operator(node, &client).await;
    for which in ["service", "operator"] {
        let archive = dist.join(format!("hex-core-{which}-{version}.oci.tar"));
        let (names, digest) = archive_image_names(&archive, tmp.path());
        let wanted: BTreeSet<String> = policy
            .iter()
            .map(|t| format!("docker.io/library/hex-core-{which}:{t}"))
            .collect();
        assert_eq!(names, wanted, "{} carries the policy's tags", archive.display());
        let started = Instant::now();
        load_into_node(node, &archive, &names, &digest);
        figure(&format!(
            "hex-core-{which} archive imported in {:.1?}",
            started.elapsed()
        ));
    }
    run_service_image(&client, &version).await;
    install_chart_package(
        node,
        &client,
        &dist.join(format!("hex-core-operator-{version}.tgz")),
        &version,
    )
    .await;
    node.ok("helm", &["uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait"]);
}
