//! One version everywhere: the workspace (`[workspace.package] version`), the Helm chart's
//! `version` and `appVersion`, CHANGELOG.md, CITATION.cff, and what each binary prints for
//! `--version`.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use support::{repo_root, workspace_version};

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn yaml_field(path: &str, field: &str) -> String {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    match &doc[field] {
        serde_yaml::Value::String(s) => s.clone(),
        other => panic!("{path}: {field} is not a string: {other:?}"),
    }
}

#[test]
fn workspace_chart_and_citation_share_one_version() {
    let version = workspace_version();
    assert_eq!(env!("CARGO_PKG_VERSION"), version, "the operator crate inherits it");
    let chart = "charts/hex-core-operator/Chart.yaml";
    assert_eq!(yaml_field(chart, "version"), version, "{chart} version");
    assert_eq!(yaml_field(chart, "appVersion"), version, "{chart} appVersion");
    // CITATION.cff's `version: 0.1.0` parses as a string in YAML 1.2 (three components).
    assert_eq!(yaml_field("CITATION.cff", "version"), version, "CITATION.cff version");
}

fn semver(v: &str) -> (u64, u64, u64) {
    let parts: Vec<u64> = v
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().unwrap_or_else(|_| panic!("{v} is not x.y.z")))
        .collect();
    (parts[0], parts[1], parts[2])
}

/// The changelog's newest heading is `[VERSION] - DATE` (the workspace version, released), or
/// `[Unreleased]` (work towards the workspace version) whose latest released heading, if any, is
/// not newer than the workspace version.
#[test]
fn the_changelog_heads_with_the_workspace_version_or_unreleased_work() {
    let version = workspace_version();
    let changelog = read("CHANGELOG.md");
    let headings: Vec<&str> = changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let released: Vec<&str> = headings
        .iter()
        .filter(|h| h.starts_with('[') && !h.starts_with("[Unreleased]"))
        .filter_map(|h| h.strip_prefix('[')?.split(']').next())
        .collect();
    match headings.first() {
        Some(first) if first.starts_with(&format!("[{version}]")) => {}
        Some(&"[Unreleased]") => {
            if let Some(last) = released.first() {
                assert!(
                    semver(last) <= semver(&version),
                    "CHANGELOG.md's latest release {last} is newer than the workspace version {version}"
                );
            }
        }
        other => panic!("CHANGELOG.md must start with ## [Unreleased] or ## [{version}], found {other:?}"),
    }
    for pair in released.windows(2) {
        assert!(
            semver(pair[0]) > semver(pair[1]),
            "CHANGELOG.md releases out of order: {pair:?}"
        );
    }
}

#[test]
fn every_binary_reports_the_workspace_version() {
    let version = workspace_version();
    let dir = support::build_workspace_binaries(&[("hex-core-service", "hex-core-service"), ("hex-cli", "hex-cli")]);
    let binaries = [
        (
            "hex-core-operator",
            PathBuf::from(env!("CARGO_BIN_EXE_hex-core-operator")),
        ),
        ("hex-core-service", dir.join("hex-core-service")),
        ("hex-cli", dir.join("hex-cli")),
    ];
    for (name, path) in binaries {
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
        assert!(out.status.success(), "{name} --version failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.trim(), format!("{name} {version}"), "{name} --version");
    }
}

/// `scripts/release` of the checkout at `root` with `args`: (exit code, stdout, stderr).
fn run_release(root: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(root.join("scripts/release"))
        .args(args)
        .current_dir(root)
        .env_remove("HEX_NODE_DIR")
        .output()
        .unwrap_or_else(|e| panic!("run scripts/release {args:?}: {e}"));
    (
        out.status.code().expect("scripts/release exited by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The deployment guide's policy: a release tag `vX.Y.Z` gives the images `vX.Y.Z`, `X.Y.Z` (what
/// the chart's appVersion and the operator's default data-plane image name) and `latest`; a
/// prerelease never gets `latest`. Anything that is not `v` + SemVer without build metadata is
/// refused with exit code 2.
#[test]
fn release_tags_follow_the_deployment_guide_policy() {
    let root = repo_root();
    for (tag, expected) in [
        ("v1.2.3", vec!["v1.2.3", "1.2.3", "latest"]),
        ("v0.1.0", vec!["v0.1.0", "0.1.0", "latest"]),
        ("v10.20.30", vec!["v10.20.30", "10.20.30", "latest"]),
        ("v1.2.3-rc.1", vec!["v1.2.3-rc.1", "1.2.3-rc.1"]),
        ("v1.2.3-rc1", vec!["v1.2.3-rc1", "1.2.3-rc1"]),
        ("v1.0.0-alpha.0.x-y", vec!["v1.0.0-alpha.0.x-y", "1.0.0-alpha.0.x-y"]),
    ] {
        let (code, stdout, stderr) = run_release(&root, &["tags", tag]);
        assert_eq!(code, 0, "scripts/release tags {tag}: {stderr}");
        assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "tags of {tag}");
    }
    for tag in [
        "",
        "1.2.3",
        "v1.2",
        "v1.2.3.4",
        "v01.2.3",
        "v1.02.3",
        "V1.2.3",
        "v1.2.3+build.5",
        "v1.2.3-",
        "v1.2.3-rc..1",
        "v1.2.3-rc.01",
        "v1.2.3-rc_1",
        "latest",
        "v1.2.3 ",
        "vx.y.z",
    ] {
        let (code, stdout, stderr) = run_release(&root, &["tags", tag]);
        assert_eq!(
            code, 2,
            "scripts/release tags {tag:?} must be refused: {stdout}{stderr}"
        );
        assert!(stdout.is_empty(), "no tags for {tag:?}: {stdout}");
        assert!(
            stderr.contains(&format!("'{tag}'")),
            "the refusal names {tag:?}: {stderr}"
        );
    }
}

/// A release is of the workspace version: another tag is refused before anything is built.
#[test]
fn release_refuses_a_tag_that_is_not_the_workspace_version() {
    let root = repo_root();
    let (major, minor, patch) = semver(&workspace_version());
    let out = tempfile::tempdir().unwrap();
    let dist = out.path().join("dist");
    for tag in [
        format!("v{major}.{minor}.{}", patch + 1),
        format!("v{major}.{minor}.{patch}-rc.1"),
    ] {
        let (code, _, stderr) = run_release(&root, &["--tag", &tag, "--out", dist.to_str().unwrap()]);
        assert_eq!(code, 2, "--tag {tag}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "tag {tag} does not match the workspace version {major}.{minor}.{patch}"
            )),
            "{stderr}"
        );
        assert!(!dist.exists(), "nothing is written for a refused tag");
    }
    let (code, _, stderr) = run_release(&root, &["--tag", "1.2.3"]);
    assert_eq!(code, 2, "a malformed tag: {stderr}");
}

/// A release is built from committed sources only; `--snapshot` is the explicit way round it.
/// Checked on a clone of this repository with a stray file (and this checkout's script).
#[test]
fn release_refuses_a_dirty_tree_unless_snapshot() {
    let root = repo_root();
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("clone");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--local"])
        .arg(&root)
        .arg(&clone)
        .status()
        .expect("run git clone");
    assert!(status.success(), "git clone of {}", root.display());
    std::fs::copy(root.join("scripts/release"), clone.join("scripts/release")).unwrap();
    std::fs::write(clone.join("stray-file"), "not committed\n").unwrap();
    let dist = tmp.path().join("dist");
    let (code, _, stderr) = run_release(&clone, &["--out", dist.to_str().unwrap()]);
    assert_eq!(code, 1, "a dirty tree is refused: {stderr}");
    assert!(stderr.contains("uncommitted changes"), "{stderr}");
    assert!(
        stderr.contains("?? stray-file"),
        "the refusal lists what is dirty: {stderr}"
    );
    assert!(
        stderr.contains("--snapshot"),
        "the refusal names the way round it: {stderr}"
    );
    assert!(!dist.exists(), "nothing is written for a dirty tree");
}

/// The pipeline builds the hex-cli targets this machine cannot, runs the same script, and pins
/// every action by commit SHA.
#[test]
fn the_release_workflow_builds_every_target_with_the_script_and_pins_actions() {
    let root = repo_root();
    let path = ".github/workflows/release.yml";
    let text = read(path);
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (code, targets, stderr) = run_release(&root, &["targets"]);
    assert_eq!(code, 0, "scripts/release targets: {stderr}");
    let script_targets: BTreeSet<&str> = targets.lines().filter_map(|l| l.split('\t').next()).collect();
    let matrix: BTreeSet<&str> = workflow["jobs"]["cli"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("jobs.cli.strategy.matrix.include")
        .iter()
        .map(|e| e["target"].as_str().expect("a matrix entry's target"))
        .collect();
    assert_eq!(
        matrix, script_targets,
        "{path}: the cli matrix is scripts/release's targets"
    );

    let jobs = workflow["jobs"].as_mapping().expect("jobs");
    let mut uses = 0;
    for (job, body) in jobs {
        for step in body["steps"].as_sequence().expect("steps") {
            if let Some(action) = step["uses"].as_str() {
                let (name, sha) = action.split_once('@').expect("action@ref");
                assert!(
                    sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                    "{path}: job {job:?} uses {name} at {sha}, not at a commit SHA"
                );
                uses += 1;
            }
            if let Some(run) = step["run"].as_str() {
                for call in run.split("scripts/release").skip(1) {
                    let sub = call.split_whitespace().next().unwrap_or("");
                    assert!(
                        ["cli", "tags", "sums", "targets", "--tag", "--out"].contains(&sub),
                        "{path}: job {job:?} runs scripts/release {sub}, which the script does not have"
                    );
                }
            }
        }
    }
    assert!(uses >= 3, "{path}: the actions are found");
    for line in text.lines().filter(|l| l.contains("uses:")) {
        assert!(line.contains(" # v"), "{path}: say which version a SHA is: {line}");
    }
}
