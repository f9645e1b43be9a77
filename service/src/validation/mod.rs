//! Validators behind the `ModelCompiler` / `PayloadValidator` ports.
//!
//! One catalog load compiles, per model version: the target class (see `target`), the JSON
//! Schema validator, the payload-to-RDF mapping plan, the SHACL validator (shapes pruned to what
//! the target class reaches) and the OWL validator. Requests only run what was compiled here.

pub mod json_schema;
pub mod linkml;
pub mod literal;
pub mod mapping;
pub mod owl;
pub mod rdf;
pub mod shacl;
pub mod target;

use std::sync::Arc;

use serde_json::Value;

use crate::domain::catalog::CatalogEntry;
use crate::domain::model::ArtifactKind;
use crate::domain::report::{Severity, Violation};
use crate::ports::{ArtifactSet, CompileError, CompiledModel, ModelCompiler, PayloadValidator, TargetClass};

use self::linkml::LinkmlSchema;
use self::mapping::{MappingPlan, PlanSources};
use self::shacl::shapes::ShapesIndex;

/// The default compiler: every validator this build knows, each compiled when its artifact exists.
#[derive(Debug, Default, Clone)]
pub struct StandardCompiler;

/// The parsed artifacts of one entry, before compilation.
struct Parsed {
    linkml: Option<Arc<LinkmlSchema>>,
    json_schema: Option<Value>,
    shapes: Option<ShapesIndex>,
    ontology: Option<oxrdf::Graph>,
}

impl StandardCompiler {
    /// Parses the artifacts; the big ones (JSON Schema, shapes, ontology, LinkML YAML can each be
    /// megabytes) are parsed on parallel threads.
    fn parse(artifacts: &ArtifactSet) -> Result<Parsed, CompileError> {
        let err = |artifact: ArtifactKind| move |message: String| CompileError { artifact, message };
        std::thread::scope(|scope| {
            let linkml = scope.spawn(|| {
                artifacts
                    .get(&ArtifactKind::Linkml)
                    .map(|a| LinkmlSchema::parse(&a.bytes).map(Arc::new))
                    .transpose()
                    .map_err(err(ArtifactKind::Linkml))
            });
            let shapes = scope.spawn(|| {
                artifacts
                    .get(&ArtifactKind::Shacl)
                    .map(|a| rdf::parse_rdf(&a.bytes, &a.url, "shapes graph").map(ShapesIndex::new))
                    .transpose()
                    .map_err(err(ArtifactKind::Shacl))
            });
            let ontology = scope.spawn(|| {
                artifacts
                    .get(&ArtifactKind::Owl)
                    .map(|a| rdf::parse_rdf(&a.bytes, &a.url, "ontology"))
                    .transpose()
                    .map_err(err(ArtifactKind::Owl))
            });
            let json_schema = artifacts
                .get(&ArtifactKind::Schema)
                .map(|a| serde_json::from_slice::<Value>(&a.bytes).map_err(|e| format!("not valid JSON: {e}")))
                .transpose()
                .map_err(err(ArtifactKind::Schema))?;
            Ok(Parsed {
                linkml: join(linkml.join(), ArtifactKind::Linkml)?,
                json_schema,
                shapes: join(shapes.join(), ArtifactKind::Shacl)?,
                ontology: join(ontology.join(), ArtifactKind::Owl)?,
            })
        })
    }
}

/// A parser thread's result; a panic becomes a compile error of that artifact.
fn join<T>(result: std::thread::Result<Result<T, CompileError>>, artifact: ArtifactKind) -> Result<T, CompileError> {
    result.unwrap_or_else(|_| {
        Err(CompileError {
            artifact,
            message: "parser panicked".into(),
        })
    })
}

impl ModelCompiler for StandardCompiler {
    fn compile(&self, entry: &CatalogEntry, artifacts: &ArtifactSet) -> Result<CompiledModel, CompileError> {
        let parsed = Self::parse(artifacts)?;
        let mut validators: Vec<Arc<dyn PayloadValidator>> = Vec::new();
        let mut warnings = Vec::new();

        let (target_class, target_warning) = target::choose(&target::TargetInputs {
            catalog_root_class: entry.root_class.as_deref(),
            linkml: parsed.linkml.as_deref(),
            shapes: parsed.shapes.as_ref(),
            json_schema: parsed.json_schema.as_ref(),
        });
        warnings.extend(target_warning.clone());

        if let Some(schema) = &parsed.json_schema {
            let retarget = json_schema_target(schema, &target_class, &mut warnings);
            let compiled = json_schema::JsonSchemaValidator::compile_value(schema.clone(), retarget.as_deref())?;
            validators.push(Arc::new(compiled));
        }

        match target_class.name.as_deref() {
            Some(name) => {
                let plan = Arc::new(MappingPlan::build(&PlanSources {
                    target_class: name,
                    linkml: parsed.linkml.as_ref(),
                    shapes: parsed.shapes.as_ref(),
                    json_schema: parsed.json_schema.as_ref(),
                }));
                if let Some(shapes) = &parsed.shapes {
                    let root = plan.root_class_iri().unwrap_or_default();
                    if !shapes.targets_class(root) {
                        warnings.push(format!(
                            "no SHACL shape targets the target class {name} (<{root}>): SHACL checks nothing on the record root"
                        ));
                    }
                    validators.push(Arc::new(shacl::ShaclValidator::compile(shapes, plan.clone())?));
                }
                if let Some(graph) = &parsed.ontology {
                    let validator = owl::OwlValidator::new(plan, graph);
                    warnings.extend(
                        validator
                            .skipped_patterns()
                            .iter()
                            .map(|p| format!("OWL facet not checked: {p}")),
                    );
                    validators.push(Arc::new(validator));
                }
            }
            None => {
                if let Some(message) = target_warning {
                    validators.push(Arc::new(MissingTargetClass { message }));
                }
            }
        }

        drop(parsed);
        release_freed_memory();
        Ok(CompiledModel {
            validators,
            target_class,
            warnings,
        })
    }
}

/// Parsing a model's artifacts on parallel threads peaks at several times what the compiled
/// validators keep (re-indicators: a 2.8 MB YAML tree, 2.1 MB of OWL and 1.2 MB of shapes as RDF
/// graphs), and glibc keeps freed memory of its per-thread arenas mapped. Trimming after each
/// compile hands it back, so the resident size reflects what the snapshot holds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    // SAFETY: `malloc_trim` only releases free memory of glibc's heaps; it touches no live
    // allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

/// The `$defs` entry the JSON Schema validator targets: the class given in the catalog always;
/// an inferred class only when the schema root accepts any object (a root that constrains
/// payloads is the publisher's own statement and is kept).
fn json_schema_target(schema: &Value, target: &TargetClass, warnings: &mut Vec<String>) -> Option<String> {
    let name = target.name.as_ref()?;
    if target.chosen_by == "catalog_root_class" {
        return Some(name.clone());
    }
    if !target::is_permissive_root(schema) {
        return None;
    }
    if mapping::json_def(schema, name).is_none() {
        warnings.push(format!(
            "the JSON Schema has no $defs/{name}; its root (which accepts any object) is used"
        ));
        return None;
    }
    Some(name.clone())
}

/// Stands in for SHACL and OWL when no target class is known: validation says so instead of
/// passing a payload nothing was checked against.
struct MissingTargetClass {
    message: String,
}

impl PayloadValidator for MissingTargetClass {
    fn kind(&self) -> &'static str {
        "target_class"
    }

    fn validate(&self, _payload: &Value) -> Vec<Violation> {
        vec![Violation {
            path: "$".into(),
            message: self.message.clone(),
            severity: Severity::Error,
            kind: "target_class".into(),
            constraint: Some("target_class".into()),
            source: Some("catalog entry root_class".into()),
        }]
    }
}
