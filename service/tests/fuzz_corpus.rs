//! Every fuzz target's corpus (`fuzz/corpus/<target>/`) and every crash fuzzing found
//! (`fuzz/regressions/<target>/`, kept with its fix) replayed on stable through the same functions
//! the cargo-fuzz targets call (`hex_core_service::fuzzing`), so a fixed crash stays fixed without
//! nightly. `scripts/fuzz` grows the corpora.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use hex_core_service::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_passes_its_target() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        assert!(
            fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")).is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} holds no seed");
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        for input in corpus.iter().chain(&regressions) {
            let bytes = std::fs::read(input).unwrap();
            if catch_unwind(AssertUnwindSafe(|| target(&bytes))).is_err() {
                failures.push(input.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "inputs that fail their fuzz target:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_is_replayed() {
    let declared: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in &declared {
        assert!(
            TARGETS.iter().any(|(target, _)| target == name),
            "fuzz/fuzz_targets/{name}.rs has no entry in hex_core_service::fuzzing::TARGETS"
        );
    }
}
