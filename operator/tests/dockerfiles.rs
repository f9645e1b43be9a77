//! Checks of Dockerfile.service and Dockerfile.operator. hadolint cannot be installed here (it
//! ships only as GitHub release binaries), so: BuildKit's own linter (`scripts/lint-dockerfiles`),
//! and this project's release rules, asserted on the Dockerfiles parsed into stages and
//! instructions (line continuations joined, comments dropped): multi-stage, the locked release
//! build, a numeric non-root user, exec-form entrypoint (no shell at runtime), OCI labels, only
//! the binary copied into the runtime stage, pinned bases.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

struct Dockerfile {
    /// `ARG`s before the first `FROM` and their defaults.
    global_args: BTreeMap<String, String>,
    stages: Vec<Stage>,
}

fn parse(path: &Path) -> Dockerfile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut logical: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current).trim().to_string());
            }
        }
    }
    assert!(current.is_empty(), "{}: dangling line continuation", path.display());

    let mut file = Dockerfile {
        global_args: BTreeMap::new(),
        stages: Vec::new(),
    };
    for line in logical.into_iter().filter(|l| !l.is_empty()) {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_string();
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                other => panic!("{}: unexpected FROM {other:?}", path.display()),
            };
            file.stages.push(Stage {
                image: words[0].to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = file.stages.last_mut() {
            stage.instructions.push(Instruction { keyword, args });
        } else {
            assert_eq!(keyword, "ARG", "{}: only ARG may precede FROM", path.display());
            let (name, default) = args.split_once('=').unwrap_or((&args, ""));
            file.global_args.insert(name.to_string(), default.to_string());
        }
    }
    file
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
            .map(|i| i.args.as_str())
    }
}

/// `${NAME}` replaced by the global ARG defaults.
fn expand(value: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = value.to_string();
    for (name, default) in args {
        out = out
            .replace(&format!("${{{name}}}"), default)
            .replace(&format!("${name}"), default);
    }
    out
}

fn check(dockerfile: &str, package: &str, binary: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dockerfile);
    let file = parse(&path);
    assert!(
        file.stages.len() >= 2,
        "{dockerfile}: multi-stage (a builder and a runtime stage)"
    );

    // Pinned bases: an explicit tag that is not `latest`, after ARG defaults are applied.
    for stage in &file.stages {
        let image = expand(&stage.image, &file.global_args);
        let named_stage = file.stages.iter().any(|s| s.name.as_deref() == Some(image.as_str()));
        if named_stage {
            continue;
        }
        let tag = image
            .rsplit_once(':')
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("{dockerfile}: FROM {image} has no tag"));
        assert!(
            !tag.is_empty() && tag != "latest",
            "{dockerfile}: FROM {image} is not pinned"
        );
        assert!(
            !image.contains('$'),
            "{dockerfile}: FROM {image} depends on an ARG without a default"
        );
        if let Some(rust) = image.strip_prefix("rust:") {
            let version = rust.split('-').next().unwrap_or_default();
            assert!(
                version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
                "{dockerfile}: the Rust toolchain is pinned to x.y.z, found {image}"
            );
        }
    }

    // The builder: the locked release build (the one both Dockerfiles share) covers this binary.
    let builder = &file.stages[0];
    let build = release_build_command(dockerfile);
    assert!(
        build.starts_with("cargo build --release --locked ")
            && build.contains(&format!(" -p {package} "))
            && build.contains(&format!(" --bin {binary}")),
        "{dockerfile}: the builder runs a locked release build of {package}'s {binary}: `{build}`"
    );
    assert!(
        builder
            .all("RUN")
            .any(|r| r.contains(&format!("install -D -m 0755 target/release/{binary} /out/{binary}"))),
        "{dockerfile}: the builder installs target/release/{binary} as /out/{binary}"
    );
    let builder_name = builder.name.clone().expect("the builder stage is named");

    // The runtime stage.
    let runtime = file.stages.last().unwrap();
    let users: Vec<&str> = runtime.all("USER").collect();
    let user = users
        .last()
        .unwrap_or_else(|| panic!("{dockerfile}: the runtime stage sets USER"));
    let uid = user.split(':').next().unwrap();
    assert_eq!(
        uid, "1000",
        "{dockerfile}: numeric non-root USER 1000 (runAsNonRoot needs a number), found {user}"
    );
    assert!(
        user.split(':').all(|p| p.parse::<u32>().is_ok()),
        "{dockerfile}: USER {user} is numeric"
    );

    let entrypoints: Vec<&str> = runtime.all("ENTRYPOINT").collect();
    assert_eq!(entrypoints.len(), 1, "{dockerfile}: one ENTRYPOINT");
    let exec: Vec<String> = serde_json::from_str(entrypoints[0]).unwrap_or_else(|_| {
        panic!(
            "{dockerfile}: ENTRYPOINT in exec (JSON) form, no shell: {}",
            entrypoints[0]
        )
    });
    let installed = format!("/usr/local/bin/{binary}");
    assert_eq!(
        exec,
        std::slice::from_ref(&installed),
        "{dockerfile}: ENTRYPOINT runs the binary itself"
    );
    for cmd in runtime.all("CMD") {
        assert!(cmd.starts_with('['), "{dockerfile}: CMD in exec form: {cmd}");
    }
    assert!(
        runtime.all("HEALTHCHECK").next().is_none(),
        "{dockerfile}: no HEALTHCHECK (Kubernetes probes; a CMD-SHELL check would need a shell)"
    );

    let labels: String = runtime.all("LABEL").collect::<Vec<_>>().join(" ");
    for key in [
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.source",
    ] {
        assert!(labels.contains(&format!("{key}=")), "{dockerfile}: LABEL {key}");
    }
    assert!(
        labels.contains("org.opencontainers.image.version=\"${VERSION}\""),
        "{dockerfile}: the version label comes from the VERSION build argument"
    );

    let copies: Vec<&str> = runtime.all("COPY").chain(runtime.all("ADD")).collect();
    assert_eq!(
        copies,
        [format!("--from={builder_name} /out/{binary} {installed}").as_str()],
        "{dockerfile}: the runtime stage copies only the binary"
    );
}

/// The builder's `cargo build ...` command, cut out of the Dockerfile the way scripts/test and
/// scripts/node cut it (up to the first `\\` or `&`).
fn release_build_command(dockerfile: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(dockerfile)).unwrap();
    let start = text
        .find("cargo build ")
        .unwrap_or_else(|| panic!("{dockerfile}: no `cargo build` line"));
    let rest = &text[start..];
    let end = rest.find(['\\', '&']).unwrap_or(rest.len());
    rest[..end].trim_end().to_string()
}

fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn both_images_share_one_release_build() {
    // One command, so CI (scripts/test runs it verbatim) and scripts/node compile the workspace
    // once in release mode for both images.
    assert_eq!(
        release_build_command("Dockerfile.service"),
        release_build_command("Dockerfile.operator")
    );
}

/// scripts/node builds the images offline from a generated Dockerfile: a `builder` stage that
/// only provides the release binary, then the project Dockerfile's runtime stage. The runtime
/// stage must be the Dockerfile's own text, byte for byte, so the tested image cannot drift from
/// the one a user builds with a registry.
#[test]
fn the_node_images_use_the_dockerfiles_runtime_stages_verbatim() {
    for (which, dockerfile) in [("service", "Dockerfile.service"), ("operator", "Dockerfile.operator")] {
        let out = std::process::Command::new(repo_root().join("scripts/node"))
            .args(["dockerfile", which])
            .output()
            .expect("run scripts/node dockerfile");
        assert!(
            out.status.success(),
            "scripts/node dockerfile {which}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let generated = String::from_utf8(out.stdout).unwrap();
        let original = std::fs::read_to_string(repo_root().join(dockerfile)).unwrap();
        let runtime_start = original
            .find("\nFROM debian:bookworm-slim AS runtime\n")
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{dockerfile}: no runtime stage"));
        let runtime = &original[runtime_start..];
        assert!(
            generated.ends_with(runtime),
            "{which}: the generated Dockerfile ends with {dockerfile}'s runtime stage verbatim:\n{generated}"
        );
        let prefix = &generated[..generated.len() - runtime.len()];
        let instructions: Vec<&str> = prefix
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        let binary = format!("hex-core-{which}");
        assert_eq!(
            instructions,
            [
                "FROM scratch AS builder".to_string(),
                format!("COPY {binary} /out/{binary}")
            ],
            "{which}: the generated builder stage only provides the binary"
        );
        // The runtime stage takes the binary from a stage named like the Dockerfile's builder.
        let file = parse(&repo_root().join(dockerfile));
        assert_eq!(file.stages[0].name.as_deref(), Some("builder"));
    }
}

#[test]
fn the_service_image_is_a_locked_release_build_run_as_uid_1000_without_a_shell() {
    check("Dockerfile.service", "hex-core-service", "hex-core-service");
}

#[test]
fn the_operator_image_is_a_locked_release_build_run_as_uid_1000_without_a_shell() {
    check("Dockerfile.operator", "hex-core-operator", "hex-core-operator");
}

#[test]
fn the_build_context_excludes_target_and_local_data() {
    let ignore = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.dockerignore")).unwrap();
    let entries: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["target", ".git", ".data"] {
        assert!(entries.contains(&entry), ".dockerignore lists {entry}");
    }
}

fn lint(args: &[&Path]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lint-dockerfiles");
    std::process::Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()))
}

/// BuildKit's own linter (the rules of `docker build --check`), built from a pinned Go module by
/// scripts/lint-dockerfiles; fails (never skips) when Go is missing.
#[test]
fn buildkit_lints_both_dockerfiles_clean() {
    let out = lint(&[]);
    assert!(
        out.status.success(),
        "scripts/lint-dockerfiles found problems (exit {:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_buildkit_linter_reports_what_it_should() {
    // Proof that the lint step is not a no-op: a Dockerfile breaking four rules is reported.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "from debian:bookworm-slim as Build\nMAINTAINER someone\nENV key value\nCMD echo hi\n",
    )
    .unwrap();
    let out = lint(&[&bad]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for rule in [
        "StageNameCasing",
        "MaintainerDeprecated",
        "LegacyKeyValueFormat",
        "JSONArgsRecommended",
    ] {
        assert!(stdout.contains(rule), "{rule} in:\n{stdout}");
    }
}
