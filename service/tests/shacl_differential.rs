//! Differential SHACL test: every payload of the golden corpus is mapped to RDF, validated by our
//! engine (shacl-rust on the pruned shapes, plus the mapper's own lexical checks) and by pyshacl
//! (on the same pruned shapes, and on the full published shapes), and the three must agree on
//! the conformance verdict and on every result's focus node, path, constraint component and
//! severity.
//!
//! pyshacl runs as a subprocess: `HEX_PYSHACL_PYTHON` names the interpreter (scripts/test sets it
//! after installing the pinned pyshacl into a venv); without it the test fails and says how to
//! install it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hex_core_service::domain::model::ArtifactKind;
use hex_core_service::domain::report::Severity;
use hex_core_service::validation::linkml::LinkmlSchema;
use hex_core_service::validation::mapping::{MappingPlan, PlanSources};
use hex_core_service::validation::rdf::parse_rdf;
use hex_core_service::validation::shacl::ShaclValidator;
use hex_core_service::validation::shacl::shapes::ShapesIndex;
use serde_json::{Value, json};
use support::corpus;

const PYSHACL_VERSION: &str = "0.40.1";

fn install_hint() -> String {
    format!(
        "pyshacl {PYSHACL_VERSION} is needed for this test. Run scripts/test (it installs it into \
         target/pyshacl-venv and sets HEX_PYSHACL_PYTHON), or install it yourself: \
         python3 -m venv target/pyshacl-venv && target/pyshacl-venv/bin/pip install pyshacl=={PYSHACL_VERSION} \
         && export HEX_PYSHACL_PYTHON=$PWD/target/pyshacl-venv/bin/python"
    )
}

/// The interpreter that has pyshacl: `HEX_PYSHACL_PYTHON`, else the venv scripts/test creates.
fn pyshacl_python() -> PathBuf {
    let candidate = match std::env::var_os("HEX_PYSHACL_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("pyshacl-venv/bin/python")
        }
    };
    let probe = Command::new(&candidate)
        .args(["-c", "import pyshacl; print(pyshacl.__version__)"])
        .output();
    match probe {
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == PYSHACL_VERSION => candidate,
        Ok(out) => panic!(
            "{} does not have pyshacl {PYSHACL_VERSION} ({}{}). {}",
            candidate.display(),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim(),
            install_hint()
        ),
        Err(e) => panic!("cannot run {}: {e}. {}", candidate.display(), install_hint()),
    }
}

/// One result as both sides can print it: focus, path, component, severity (N-Triples terms).
type Row = Vec<Option<String>>;

struct Outcome {
    conforms: bool,
    rows: Vec<Row>,
}

fn severity_iri(severity: Severity) -> String {
    let local = match severity {
        Severity::Error => "Violation",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    };
    format!("<http://www.w3.org/ns/shacl#{local}>")
}

/// Builds the SHACL validator of a golden model the way the compiler does, but keeps the concrete
/// type so the test can reach the mapped graph, the pruned shapes and the raw engine results.
fn shacl_validator(golden: &corpus::GoldenModel) -> ShaclValidator {
    let artifacts = golden.spec.artifact_set();
    let shapes = ShapesIndex::new(parse_rdf(&artifacts[&ArtifactKind::Shacl].bytes, "shacl.ttl", "shapes").unwrap());
    let linkml = artifacts
        .get(&ArtifactKind::Linkml)
        .map(|a| Arc::new(LinkmlSchema::parse(&a.bytes).unwrap()));
    let schema: Option<Value> = artifacts
        .get(&ArtifactKind::Schema)
        .map(|a| serde_json::from_slice(&a.bytes).unwrap());
    let target = golden
        .compiled
        .target_class
        .name
        .clone()
        .expect("golden models have a target class");
    let plan = Arc::new(MappingPlan::build(&PlanSources {
        target_class: &target,
        linkml: linkml.as_ref(),
        shapes: Some(&shapes),
        json_schema: schema.as_ref(),
    }));
    ShaclValidator::compile(&shapes, plan).unwrap()
}

fn ours(validator: &ShaclValidator, payload: &Value) -> Outcome {
    let (mapped, results) = validator.run_engine(payload);
    let results = results.expect("engine runs");
    let mut rows: Vec<Row> = results
        .iter()
        .map(|r| {
            vec![
                Some(r.focus.to_string()),
                r.path
                    .as_ref()
                    .map(|p| p.to_string())
                    .or_else(|| r.complex_path.clone()),
                r.component.as_ref().map(|c| c.to_string()),
                Some(severity_iri(r.severity)),
            ]
        })
        .collect();
    rows.extend(mapped.lexical_errors.iter().map(|e| {
        vec![
            Some(e.focus.to_string()),
            Some(e.predicate.to_string()),
            Some("<http://www.w3.org/ns/shacl#DatatypeConstraintComponent>".into()),
            Some(severity_iri(Severity::Error)),
        ]
    }));
    rows.sort();
    Outcome {
        conforms: rows.is_empty(),
        rows,
    }
}

/// Writes the graphs, runs pyshacl once for the pruned shapes and once for the full shapes, and
/// compares both with our results, case by case.
fn check_model(name: &str) {
    let golden = corpus::load(name);
    let validator = shacl_validator(&golden);
    let dir = tempfile::tempdir().unwrap();
    let pruned_path = dir.path().join("pruned.nt");
    std::fs::write(&pruned_path, validator.shapes_graph().to_string()).unwrap();
    let full_path = dir.path().join("full.ttl");
    std::fs::write(&full_path, &golden.spec.artifact_set()[&ArtifactKind::Shacl].bytes).unwrap();

    let mut data = Vec::new();
    let mut expected: BTreeMap<String, Outcome> = BTreeMap::new();
    for case in &golden.cases {
        let file = dir.path().join(format!("{}.nt", case.name));
        std::fs::write(&file, validator.plan().map(&case.payload).graph.to_string()).unwrap();
        data.push(json!({"name": case.name, "file": file}));
        expected.insert(case.name.clone(), ours(&validator, &case.payload));
    }
    let manifest = json!({"runs": [
        {"name": "pruned", "shapes": pruned_path, "data": data},
        {"name": "full", "shapes": full_path, "data": data},
    ]});
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let output = Command::new(pyshacl_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyshacl_driver.py"))
        .arg(&manifest_path)
        .output()
        .expect("pyshacl driver runs");
    assert!(
        output.status.success(),
        "pyshacl driver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: BTreeMap<String, Value> = serde_json::from_slice(&output.stdout).expect("driver prints JSON");

    let mut failures = Vec::new();
    let mut invalid_cases = 0;
    for (case, mine) in &expected {
        if !mine.conforms {
            invalid_cases += 1;
        }
        for run in ["pruned", "full"] {
            let key = format!("{run}/{case}");
            let theirs = &theirs[&key];
            let conforms = theirs["conforms"].as_bool().unwrap();
            let mut rows: Vec<Row> = serde_json::from_value(theirs["results"].clone()).unwrap();
            rows.sort();
            if conforms != mine.conforms || rows != mine.rows {
                failures.push(format!(
                    "{name}/{key}: conforms ours={} pyshacl={conforms}\n  ours:    {:?}\n  pyshacl: {:?}",
                    mine.conforms, mine.rows, rows
                ));
            }
        }
    }
    assert!(failures.is_empty(), "SHACL engines disagree:\n{}", failures.join("\n"));
    // A differential test that only ever compares empty reports proves nothing.
    assert!(
        invalid_cases >= 3,
        "{name}: only {invalid_cases} non-conforming cases compared"
    );
}

#[test]
fn demo_passport_agrees_with_pyshacl() {
    check_model("demo-passport");
}

#[test]
fn re_indicators_specification_agrees_with_pyshacl_on_pruned_and_full_shapes() {
    check_model("re-indicators-specification");
}

#[test]
fn dp_record_metadata_agrees_with_pyshacl_on_pruned_and_full_shapes() {
    check_model("dp-record-metadata");
}

#[test]
fn usage_and_maintenance_agrees_with_pyshacl_on_pruned_and_full_shapes() {
    check_model("usage-and-maintenance");
}

#[test]
fn product_profile_agrees_with_pyshacl_on_pruned_and_full_shapes() {
    check_model("product-profile");
}
