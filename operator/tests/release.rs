//! One version everywhere: the workspace (`[workspace.package] version`), the Helm chart's
//! `version` and `appVersion`, CHANGELOG.md, CITATION.cff, and what each binary prints for
//! `--version`.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `[workspace.package] version` of Cargo.toml.
fn workspace_version() -> String {
    let cargo = read("Cargo.toml");
    let section = cargo
        .split("\n[")
        .find(|s| s.starts_with("workspace.package]"))
        .expect("[workspace.package] in Cargo.toml");
    section
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("version in [workspace.package]")
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
