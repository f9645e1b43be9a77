//! The golden validation corpus under `tests/golden/<model>/`: `model.json` says which artifacts
//! make the model (from `HEX_MODELS_DIR` for the real CE-RISE models, from `demo/` for the demo
//! model) and `cases/*.json` hold payloads with their expected violations. A case either carries
//! its payload or derives it from a published example by JSON-patch-like operations, so the
//! licensed examples are read from `HEX_MODELS_DIR` and never copied here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use hex_core_service::domain::catalog::CatalogEntry;
use hex_core_service::domain::model::{ArtifactKind, ModelKey};
use hex_core_service::domain::report::{Severity, ValidationReport};
use hex_core_service::ports::{ArtifactSet, CompiledModel, FetchedArtifact, ModelCompiler};
use hex_core_service::validation::StandardCompiler;
use serde::Deserialize;
use serde_json::Value;

use super::{demo_dir, models_dir};

#[derive(Debug, Deserialize)]
pub struct ModelSpec {
    pub model: String,
    pub version: String,
    #[serde(default)]
    pub root_class: Option<String>,
    /// `models_dir` (the real models, `HEX_MODELS_DIR/<model>/<version>/`) or `demo`.
    pub source: String,
    pub artifacts: BTreeMap<ArtifactKind, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    /// For `add` and `replace`; absent means `null`.
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub passed: bool,
    /// Every error-level violation as `[kind, path, constraint]`, exactly.
    pub errors: Vec<(String, String, String)>,
    /// Every warning as `[kind, path, constraint]`, exactly.
    #[serde(default)]
    pub warnings: Vec<(String, String, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub description: String,
    #[serde(default)]
    pub payload: Option<Value>,
    /// A file under the model's directory in `HEX_MODELS_DIR` to start from.
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub patch: Vec<PatchOp>,
    pub expect: Expectation,
    /// `"not_inferable"`: without a catalog `root_class` this payload's keys identify no single
    /// class, so the report says so instead of `expect` (docs/validation.md, "Target class").
    #[serde(default)]
    pub without_root_class: Option<WithoutRootClass>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithoutRootClass {
    NotInferable,
}

pub struct Case {
    pub name: String,
    pub description: String,
    pub payload: Value,
    pub expect: Expectation,
    pub without_root_class: Option<WithoutRootClass>,
}

pub struct GoldenModel {
    pub spec: ModelSpec,
    pub dir: PathBuf,
    pub compiled: CompiledModel,
    pub cases: Vec<Case>,
}

pub fn golden_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

impl ModelSpec {
    fn artifact_dir(&self) -> PathBuf {
        match self.source.as_str() {
            "models_dir" => models_dir().join(&self.model).join(&self.version),
            "demo" => demo_dir().join("models").join(&self.model).join(&self.version),
            other => panic!("model.json source {other:?}: expected models_dir or demo"),
        }
    }

    pub fn entry(&self) -> CatalogEntry {
        CatalogEntry {
            key: ModelKey::new(&self.model, &self.version),
            artifacts: self.artifacts.clone(),
            root_class: self.root_class.clone(),
        }
    }

    pub fn artifact_set(&self) -> ArtifactSet {
        let dir = self.artifact_dir();
        self.artifacts
            .iter()
            .map(|(kind, file)| {
                let path = dir.join(file);
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (
                    *kind,
                    FetchedArtifact {
                        url: file.clone(),
                        bytes: Bytes::from(bytes),
                        from_cache: false,
                    },
                )
            })
            .collect()
    }
}

/// Loads `tests/golden/<name>`: compiles the model and builds every case's payload.
pub fn load(name: &str) -> GoldenModel {
    let dir = golden_root().join(name);
    let spec: ModelSpec = read_json(&dir.join("model.json"));
    let compiled = StandardCompiler
        .compile(&spec.entry(), &spec.artifact_set())
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("cases"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("cases").display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let cases = files
        .iter()
        .map(|file| {
            let case: CaseFile = read_json(file);
            let mut payload = match (&case.payload, &case.base) {
                (Some(payload), None) => payload.clone(),
                (None, Some(base)) => read_json(&spec.artifact_dir().join(base)),
                _ => panic!("{}: give exactly one of payload and base", file.display()),
            };
            for op in &case.patch {
                apply(&mut payload, op).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
            Case {
                name: file.file_stem().unwrap().to_string_lossy().to_string(),
                description: case.description,
                payload,
                expect: case.expect,
                without_root_class: case.without_root_class,
            }
        })
        .collect();
    GoldenModel {
        spec,
        dir,
        compiled,
        cases,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `add` (object key or array index), `replace` and `remove` at an RFC 6901 pointer.
fn apply(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    let (parent_pointer, last) = op
        .path
        .rsplit_once('/')
        .ok_or_else(|| format!("patch path {:?} must start with /", op.path))?;
    let last = last.replace("~1", "/").replace("~0", "~");
    let parent = doc
        .pointer_mut(parent_pointer)
        .ok_or_else(|| format!("patch path {:?}: no parent", op.path))?;
    let value = || -> Result<Value, String> { Ok(op.value.clone()) };
    match (op.op.as_str(), parent) {
        ("add" | "replace", Value::Object(map)) => {
            if op.op == "replace" && !map.contains_key(&last) {
                return Err(format!("replace {:?}: no such key", op.path));
            }
            map.insert(last, value()?);
        }
        ("remove", Value::Object(map)) => {
            map.remove(&last)
                .ok_or_else(|| format!("remove {:?}: no such key", op.path))?;
        }
        ("add", Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse().map_err(|_| "bad index")?
            };
            items.insert(index, value()?);
        }
        ("replace", Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| "bad index")?;
            *items.get_mut(index).ok_or("no such index")? = value()?;
        }
        ("remove", Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| "bad index")?;
            if index >= items.len() {
                return Err("no such index".into());
            }
            items.remove(index);
        }
        (other, _) => return Err(format!("unsupported patch op {other:?} at {:?}", op.path)),
    }
    Ok(())
}

/// Runs every compiled validator, as the service does.
pub fn validate(compiled: &CompiledModel, payload: &Value) -> ValidationReport {
    hex_core_service::validation::validate_compiled(compiled, payload)
}

pub type Finding = (String, String, String);

/// The report's violations of one severity as `(kind, path, constraint)`.
pub fn findings(report: &ValidationReport, severity: Severity) -> BTreeSet<Finding> {
    report
        .results
        .iter()
        .filter(|v| v.severity == severity)
        .map(|v| (v.kind.clone(), v.path.clone(), v.constraint.clone().unwrap_or_default()))
        .collect()
}
