//! In-process validation benchmark on the real CE-RISE models (`HEX_MODELS_DIR`).
//!
//! Prints one table: compile time per model, the registry load of all four (fetch from local
//! files + compile, as the service does it), and validation timings (median, p99, ops/s on one
//! thread) for JSON Schema, SHACL, OWL and all of them together, on the re-indicators known-good
//! example and a dp-record-metadata record. Run: `cargo bench -p hex-core-service --bench
//! validation` (scripts/bench-validation runs it, then the HTTP benchmark).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hex_core_service::domain::catalog::CatalogEntry;
use hex_core_service::domain::model::{ArtifactKind, ModelKey};
use hex_core_service::domain::report::{ValidationReport, ValidatorResult};
use hex_core_service::ports::{ArtifactSet, CompiledModel, FetchedArtifact, ModelCompiler};
use hex_core_service::usecases::validation_pool;
use hex_core_service::validation::StandardCompiler;
use serde_json::Value;

struct Model {
    name: &'static str,
    version: &'static str,
    root_class: Option<&'static str>,
    files: &'static [(ArtifactKind, &'static str)],
}

const ALL: &[(ArtifactKind, &str)] = &[
    (ArtifactKind::Schema, "schema.json"),
    (ArtifactKind::Shacl, "shacl.ttl"),
    (ArtifactKind::Owl, "model.ttl"),
    (ArtifactKind::Linkml, "schema.yaml"),
];

const MODELS: &[Model] = &[
    Model {
        name: "re-indicators-specification",
        version: "0.0.5",
        root_class: Some("Assessment"),
        files: ALL,
    },
    Model {
        name: "product-profile",
        version: "0.0.3",
        root_class: Some("UniqueProductIdentifier"),
        files: ALL,
    },
    Model {
        name: "usage-and-maintenance",
        version: "0.0.2",
        root_class: None,
        files: ALL,
    },
    Model {
        name: "dp-record-metadata",
        version: "0.0.2",
        root_class: None,
        files: &[
            (ArtifactKind::Schema, "schema.json"),
            (ArtifactKind::Shacl, "shacl.ttl"),
        ],
    },
];

fn models_dir() -> PathBuf {
    PathBuf::from(std::env::var("HEX_MODELS_DIR").unwrap_or_else(|_| {
        panic!("HEX_MODELS_DIR is not set: this benchmark needs the real CE-RISE models (../shared/models)")
    }))
}

fn entry(model: &Model) -> CatalogEntry {
    CatalogEntry {
        key: ModelKey::new(model.name, model.version),
        artifacts: model.files.iter().map(|(k, f)| (*k, f.to_string())).collect(),
        root_class: model.root_class.map(str::to_string),
    }
}

fn artifacts(model: &Model) -> ArtifactSet {
    let dir = models_dir().join(model.name).join(model.version);
    model
        .files
        .iter()
        .map(|(kind, file)| {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            (
                *kind,
                FetchedArtifact {
                    url: file.to_string(),
                    bytes: Bytes::from(bytes),
                    from_cache: false,
                },
            )
        })
        .collect()
}

struct Stats {
    median: Duration,
    p99: Duration,
    ops_per_sec: f64,
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(iterations);
    let started = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    Stats {
        median: samples[samples.len() / 2],
        p99: samples[(samples.len() * 99 / 100).min(samples.len() - 1)],
        ops_per_sec: iterations as f64 / total.as_secs_f64(),
    }
}

fn run_all(compiled: &CompiledModel, payload: &Value) -> ValidationReport {
    ValidationReport::merge(
        compiled
            .validators
            .iter()
            .map(|v| ValidatorResult::from_violations(v.kind(), v.validate(payload)))
            .collect(),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The registry load as the service does it: a catalog file, local artifacts, compile on the
/// blocking pool, all entries concurrently.
fn registry_load_time() -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for model in MODELS {
        let target = dir.path().join(model.name);
        std::fs::create_dir_all(&target).unwrap();
        let mut entry = serde_json::json!({"model": model.name, "version": model.version});
        for (kind, file) in model.files {
            std::fs::copy(
                models_dir().join(model.name).join(model.version).join(file),
                target.join(file),
            )
            .unwrap();
            entry[kind.catalog_field()] = Value::String(format!("{}/{file}", model.name));
        }
        if let Some(root) = model.root_class {
            entry["root_class"] = Value::String(root.into());
        }
        entries.push(entry);
    }
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, serde_json::json!({ "models": entries }).to_string()).unwrap();
    let env: BTreeMap<String, String> = [
        ("REGISTRY_CATALOG_FILE", catalog.to_str().unwrap()),
        ("REGISTRY_ALLOW_LOCAL_ARTIFACTS", "true"),
        ("REGISTRY_ALLOWED_HOSTS", "localhost"),
        ("REGISTRY_REQUIRE_HTTPS", "true"),
        ("REGISTRY_ARTIFACT_MAX_BYTES", "16777216"),
        ("AUTH_MODE", "none"),
        ("AUTH_ALLOW_INSECURE_NONE", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = hex_core_service::config::Config::from_env(&hex_core_service::config::Env::from_map(&env)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let state = hex_core_service::app::build_state(&config).unwrap();
        let started = Instant::now();
        let report = state.registry.refresh().await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(report.models_found, 4, "all four load: {:?}", report.errors);
        elapsed
    })
}

fn golden_payload(model: &str, case: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{model}/cases/{case}.json"));
    let case: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    case["payload"].clone()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rss_before = rss_mib();
    println!("\n## Model load (in-process, release build)\n");
    println!("| model | compile (parse + compile all validators) |");
    println!("|---|---|");
    let mut compiled = BTreeMap::new();
    for model in MODELS {
        let artifacts = artifacts(model);
        let started = Instant::now();
        let result = StandardCompiler.compile(&entry(model), &artifacts).unwrap();
        println!("| {} {} | {} |", model.name, model.version, ms(started.elapsed()));
        compiled.insert(model.name, result);
    }
    println!(
        "| RSS of this process with the four compiled (delta) | {:.1} MiB ({:+.1} MiB) |",
        rss_mib(),
        rss_mib() - rss_before
    );
    compile_phases(&MODELS[0]);
    let load = registry_load_time();
    println!(
        "| registry load of all four (fetch from files + compile, concurrent) | {} |",
        ms(load)
    );

    let reind = &compiled["re-indicators-specification"];
    let reind_payload: Value = serde_json::from_slice(
        &std::fs::read(models_dir().join("re-indicators-specification/0.0.5/examples/valid-reuse-laptop.json"))
            .unwrap(),
    )
    .unwrap();
    let dprm = &compiled["dp-record-metadata"];
    let dprm_payload = golden_payload("dp-record-metadata", "valid");
    assert!(
        run_all(reind, &reind_payload).passed,
        "the re-indicators example validates"
    );
    assert!(
        run_all(dprm, &dprm_payload).passed,
        "the dp-record-metadata record validates"
    );

    println!("\n## Validation (in-process, one thread, valid payloads)\n");
    println!("| payload | validator | median | p99 | ops/s |");
    println!("|---|---|---|---|---|");
    for (label, model, payload, iterations) in [
        ("re-indicators valid-reuse-laptop.json", reind, &reind_payload, 3000),
        ("dp-record-metadata golden valid.json", dprm, &dprm_payload, 5000),
    ] {
        for validator in &model.validators {
            let stats = measure(iterations, || {
                std::hint::black_box(validator.validate(payload));
            });
            println!(
                "| {label} | {} | {} | {} | {:.0} |",
                validator.kind(),
                ms(stats.median),
                ms(stats.p99),
                stats.ops_per_sec
            );
        }
        let stats = measure(iterations, || {
            std::hint::black_box(run_all(model, payload));
        });
        println!(
            "| {label} | all combined | {} | {} | {:.0} |",
            ms(stats.median),
            ms(stats.p99),
            stats.ops_per_sec
        );
        // As the service runs them: on a thread that is its own single-worker rayon pool, so
        // shacl-rust's par_iter/join run inline (above, they hand work to rayon's global pool).
        let stats = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    validation_pool::run_here(|| {
                        measure(iterations, || {
                            std::hint::black_box(run_all(model, payload));
                        })
                    })
                    .unwrap()
                })
                .join()
                .unwrap()
        });
        println!(
            "| {label} | all combined, rayon inline (as in the service) | {} | {} | {:.0} |",
            ms(stats.median),
            ms(stats.p99),
            stats.ops_per_sec
        );
    }
    println!();
}

/// Where one model's compile time goes, phase by phase on one thread (the service parses the
/// LinkML, shapes and ontology on parallel threads).
fn compile_phases(model: &Model) {
    use hex_core_service::validation::json_schema::JsonSchemaValidator;
    use hex_core_service::validation::linkml::LinkmlSchema;
    use hex_core_service::validation::mapping::{MappingPlan, PlanSources};
    use hex_core_service::validation::owl::OwlValidator;
    use hex_core_service::validation::rdf::parse_rdf;
    use hex_core_service::validation::shacl::ShaclValidator;
    use hex_core_service::validation::shacl::shapes::ShapesIndex;
    use std::sync::Arc;

    let artifacts = artifacts(model);
    let bytes = |kind| &artifacts[&kind].bytes;
    let mut rows = Vec::new();
    let mut time = |label: &str, started: Instant| rows.push((label.to_string(), started.elapsed()));
    let t = Instant::now();
    let linkml = Arc::new(LinkmlSchema::parse(bytes(ArtifactKind::Linkml)).unwrap());
    time("parse LinkML YAML", t);
    let t = Instant::now();
    let shapes = ShapesIndex::new(parse_rdf(bytes(ArtifactKind::Shacl), "shacl.ttl", "shapes").unwrap());
    time("parse + index SHACL shapes", t);
    let t = Instant::now();
    let ontology = parse_rdf(bytes(ArtifactKind::Owl), "model.ttl", "ontology").unwrap();
    time("parse OWL ontology", t);
    let t = Instant::now();
    let schema: Value = serde_json::from_slice(bytes(ArtifactKind::Schema)).unwrap();
    time("parse JSON Schema", t);
    let target = model.root_class.unwrap();
    let t = Instant::now();
    let _json = JsonSchemaValidator::compile_value(schema.clone(), Some(target)).unwrap();
    time("compile JSON Schema (retargeted)", t);
    let t = Instant::now();
    let plan = Arc::new(MappingPlan::build(&PlanSources {
        target_class: target,
        linkml: Some(&linkml),
        shapes: Some(&shapes),
        json_schema: Some(&schema),
    }));
    time("mapping plan", t);
    let t = Instant::now();
    let _shacl = ShaclValidator::compile(&shapes, plan.clone()).unwrap();
    time("prune + compile SHACL", t);
    let t = Instant::now();
    let _owl = OwlValidator::new(plan, &ontology);
    time("OWL validator", t);
    println!("\n| {} compile phase (one thread) | time |", model.name);
    println!("|---|---|");
    for (label, elapsed) in rows {
        println!("| {label} | {} |", ms(elapsed));
    }
    println!();
}
