//! Golden validation tests: every model of `tests/golden/` (the demo model, and the four real
//! CE-RISE models read from `HEX_MODELS_DIR`) validates its corpus of valid and invalid payloads
//! with exactly the expected verdict and the expected violations, by validator, JSON path and
//! constraint.
//!
//! To see what the validators report for a corpus while writing expectations, run with
//! `HEX_GOLDEN_PRINT=1`; the test still fails on every mismatch.

mod support;

use std::collections::BTreeSet;

use hex_core_service::domain::catalog::CatalogEntry;
use hex_core_service::domain::report::Severity;
use hex_core_service::ports::{CompiledModel, ModelCompiler};
use hex_core_service::validation::StandardCompiler;
use serde_json::json;
use support::corpus::{self, Finding, WithoutRootClass, findings};

fn set(items: &[(String, String, String)]) -> BTreeSet<Finding> {
    items.iter().cloned().collect()
}

/// Checks every case of one golden model and reports all mismatches at once.
fn check_corpus(name: &str) {
    let golden = corpus::load(name);
    check_cases(name, &golden, &golden.compiled, false);
}

/// The same corpus with the model compiled as an upstream catalog gives it, without `root_class`:
/// every case must get the same findings (its class inferred from its keys, or named by the
/// schema), except cases marked `"without_root_class": "not_inferable"`, whose keys identify no
/// single class and whose report must say so.
fn check_corpus_without_root_class(name: &str) {
    let golden = corpus::load(name);
    let entry = CatalogEntry {
        root_class: None,
        ..golden.spec.entry()
    };
    let compiled = StandardCompiler.compile(&entry, &golden.spec.artifact_set()).unwrap();
    check_cases(name, &golden, &compiled, true);
}

fn check_cases(name: &str, golden: &corpus::GoldenModel, compiled: &CompiledModel, without_root_class: bool) {
    assert!(!golden.cases.is_empty(), "{name}: no cases");
    let print = std::env::var_os("HEX_GOLDEN_PRINT").is_some();
    let mut failures = Vec::new();
    for case in &golden.cases {
        let report = corpus::validate(compiled, &case.payload);
        let target = report
            .target_class
            .clone()
            .expect("every report names its target class");
        if without_root_class && case.without_root_class == Some(WithoutRootClass::NotInferable) {
            let reported = report.results.iter().any(|v| v.kind == "target_class" && v.path == "$");
            if report.passed || !reported || target.name.is_some() || target.chosen_by != "payload_keys" {
                failures.push(format!(
                    "{name}/{}: without root_class this payload identifies no class and the report must say so; \
                     got passed={} target_class={target:?}",
                    case.name, report.passed
                ));
            }
            continue;
        }
        // The class is the one the catalog named, found from the schema (tree_root) or the keys.
        if without_root_class
            && let Some(root) = &golden.spec.root_class
            && target.name.as_deref() != Some(root.as_str())
        {
            failures.push(format!(
                "{name}/{}: expected the class {root} without root_class, got {target:?}",
                case.name
            ));
        }
        let errors = findings(&report, Severity::Error);
        let warnings = findings(&report, Severity::Warning);
        if print {
            println!("== {name}/{}: passed={}", case.name, report.passed);
            println!("\"errors\": {}", serde_json::to_string(&errors).unwrap());
            println!("\"warnings\": {}", serde_json::to_string(&warnings).unwrap());
            for v in &report.results {
                println!(
                    "   {:?} {} {} {:?}: {}",
                    v.severity, v.kind, v.path, v.constraint, v.message
                );
            }
        }
        let expected_errors = set(&case.expect.errors);
        let expected_warnings = set(&case.expect.warnings);
        if report.passed != case.expect.passed || errors != expected_errors || warnings != expected_warnings {
            failures.push(format!(
                "{name}/{} ({}):\n  passed: {} (expected {})\n  missing errors: {:?}\n  unexpected errors: {:?}\n  \
                 missing warnings: {:?}\n  unexpected warnings: {:?}",
                case.name,
                case.description,
                report.passed,
                case.expect.passed,
                expected_errors.difference(&errors).collect::<Vec<_>>(),
                errors.difference(&expected_errors).collect::<Vec<_>>(),
                expected_warnings.difference(&warnings).collect::<Vec<_>>(),
                warnings.difference(&expected_warnings).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn demo_passport_corpus_matches_expectations() {
    check_corpus("demo-passport");
}

#[test]
fn re_indicators_specification_corpus_matches_expectations() {
    check_corpus("re-indicators-specification");
}

#[test]
fn dp_record_metadata_corpus_matches_expectations() {
    check_corpus("dp-record-metadata");
}

#[test]
fn usage_and_maintenance_corpus_matches_expectations() {
    check_corpus("usage-and-maintenance");
}

#[test]
fn product_profile_corpus_matches_expectations() {
    check_corpus("product-profile");
}

#[test]
fn every_corpus_matches_its_expectations_without_a_catalog_root_class() {
    // re-indicators and product-profile infer the class from each payload's keys; the demo and
    // usage-and-maintenance name it with tree_root; dp-record-metadata has one unreferenced class.
    let inferred = |name: &str| {
        let golden = corpus::load(name);
        let entry = CatalogEntry {
            root_class: None,
            ..golden.spec.entry()
        };
        StandardCompiler
            .compile(&entry, &golden.spec.artifact_set())
            .unwrap()
            .target_class
            .chosen_by
    };
    assert_eq!(inferred("re-indicators-specification"), "payload_keys");
    assert_eq!(inferred("product-profile"), "payload_keys");
    assert_eq!(inferred("demo-passport"), "linkml_tree_root");
    let mut failures = Vec::new();
    for name in [
        "demo-passport",
        "re-indicators-specification",
        "dp-record-metadata",
        "usage-and-maintenance",
        "product-profile",
    ] {
        if let Err(panic) = std::panic::catch_unwind(|| check_corpus_without_root_class(name)) {
            failures.push(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("{name}: panicked")),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_model_compiles_json_schema_and_shacl_and_owl_where_published() {
    for name in [
        "demo-passport",
        "re-indicators-specification",
        "dp-record-metadata",
        "usage-and-maintenance",
        "product-profile",
    ] {
        let golden = corpus::load(name);
        let kinds: Vec<&str> = golden.compiled.validators.iter().map(|v| v.kind()).collect();
        let mut expected = vec!["json_schema", "shacl"];
        if golden
            .spec
            .artifacts
            .contains_key(&hex_core_service::domain::model::ArtifactKind::Owl)
        {
            expected.push("owl");
        }
        assert_eq!(kinds, expected, "{name}");
        assert!(
            golden.compiled.warnings.is_empty(),
            "{name} loads without warnings: {:?}",
            golden.compiled.warnings
        );
    }
}

#[test]
fn target_class_comes_from_catalog_then_tree_root_then_the_single_unreferenced_class() {
    let chosen = |name: &str| {
        let golden = corpus::load(name);
        let target = golden.compiled.target_class;
        (target.name, target.chosen_by)
    };
    assert_eq!(
        chosen("re-indicators-specification"),
        (Some("Assessment".into()), "catalog_root_class".into())
    );
    assert_eq!(
        chosen("usage-and-maintenance"),
        (Some("UsageAndMaintenance".into()), "linkml_tree_root".into())
    );
    assert_eq!(
        chosen("dp-record-metadata"),
        (Some("DPRecordMetadata".into()), "single_unreferenced_class".into())
    );
}

/// product-profile 0.0.3 has 32 classes, none referenced by another and none marked tree_root:
/// without a root_class each payload's class is inferred from its keys, and a payload whose keys
/// fit no single class reports that no target class is known.
#[test]
fn ambiguous_model_infers_the_class_per_payload_and_reports_when_none_fits() {
    let golden = corpus::load("product-profile");
    let entry = CatalogEntry {
        root_class: None,
        ..golden.spec.entry()
    };
    let compiled = StandardCompiler.compile(&entry, &golden.spec.artifact_set()).unwrap();
    assert_eq!(compiled.target_class.name, None);
    assert_eq!(compiled.target_class.chosen_by, "payload_keys");
    assert!(
        compiled
            .warnings
            .iter()
            .any(|w| w.contains("inferred") && w.contains("root_class")),
        "{:?}",
        compiled.warnings
    );
    let report = corpus::validate(&compiled, &json!({"unique_product_identifier_value": "x"}));
    assert!(report.passed, "{report:?}");
    let target = report.target_class.unwrap();
    assert_eq!(target.name.as_deref(), Some("UniqueProductIdentifier"));
    assert!(target.detail.unwrap().contains("only class declaring all 1"));

    let report = corpus::validate(&compiled, &json!({}));
    assert!(!report.passed);
    assert!(
        report
            .target_class
            .unwrap()
            .detail
            .unwrap()
            .contains("no top-level key")
    );
    let target = report
        .results
        .iter()
        .find(|v| v.kind == "target_class")
        .expect("a target_class violation");
    assert_eq!(target.severity, Severity::Error);
    assert_eq!(target.path, "$");
    assert!(target.message.contains("root_class"), "{}", target.message);
}

/// The LinkML JSON Schema root of re-indicators accepts any object; the service validates
/// against the target class instead, so a payload of the wrong shape fails.
#[test]
fn permissive_json_schema_root_is_replaced_by_the_target_class() {
    let golden = corpus::load("re-indicators-specification");
    let report = corpus::validate(&golden.compiled, &json!({"anything": true}));
    assert!(!report.passed);
    let errors = findings(&report, Severity::Error);
    assert!(
        errors.contains(&("json_schema".into(), "$.id".into(), "required".into())),
        "{errors:?}"
    );
    assert!(
        errors.contains(&("shacl".into(), "$.id".into(), "sh:MinCountConstraintComponent".into())),
        "{errors:?}"
    );
}
