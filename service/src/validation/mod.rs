//! Validators behind the `ModelCompiler` / `PayloadValidator` ports.
//!
//! One catalog load compiles, per model version: the target class (see `target`), the JSON
//! Schema validator, the payload-to-RDF mapping plan, the SHACL validator (shapes pruned to what
//! the target class reaches) and the OWL validator. Requests only run what was compiled here.

pub mod inference;
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
use crate::domain::report::{Severity, ValidationReport, ValidatorResult, Violation};
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

        let (mut target_class, mut target_warning) = target::choose(&target::TargetInputs {
            catalog_root_class: entry.root_class.as_deref(),
            linkml: parsed.linkml.as_deref(),
            shapes: parsed.shapes.as_ref(),
            json_schema: parsed.json_schema.as_ref(),
        });
        // Nothing names the class: infer it per payload from its keys when the schema lists classes.
        let undecided = target_class.name.is_none() && target_warning.is_some();
        let inference = match undecided {
            true => inference::ClassIndex::build(parsed.linkml.as_deref(), parsed.json_schema.as_ref()).map(|index| {
                target_warning = Some(format!(
                    "no root_class in the catalog entry and no LinkML tree_root: each payload's class is inferred \
                         from its top-level keys among {} classes (docs/validation.md, \"Target class\"); set \
                         root_class to fix it",
                    index.len()
                ));
                target_class = TargetClass {
                    name: None,
                    chosen_by: inference::CHOSEN_BY.into(),
                    detail: None,
                };
                Arc::new(inference::PayloadClassInference::new(
                    index,
                    entry.clone(),
                    artifacts.clone(),
                )) as Arc<dyn crate::ports::TargetInference>
            }),
            false => None,
        };
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
                // With inference the target_class violation is built per payload, with its reason.
                if let (Some(message), None) = (target_warning, &inference) {
                    validators.push(Arc::new(MissingTargetClass { message }));
                }
            }
        }

        // The parse peak is several times what the validators keep (re-indicators: a 2.8 MB YAML
        // tree, 2.1 MB of OWL and 1.2 MB of shapes as RDF graphs).
        drop(parsed);
        crate::memory::release_freed_memory();
        Ok(CompiledModel {
            validators,
            target_class,
            warnings,
            inference,
        })
    }
}

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

/// Runs every validator of a compiled model on a payload and merges their results; for a model
/// whose class is inferred per payload, those of the payload's class (or, when none fits, the
/// model's own and a `target_class` error saying why).
pub fn validate_compiled(compiled: &CompiledModel, payload: &Value) -> ValidationReport {
    let run = |validators: &[Arc<dyn PayloadValidator>]| -> Vec<ValidatorResult> {
        validators
            .iter()
            .map(|validator| ValidatorResult::from_violations(validator.kind(), validator.validate(payload)))
            .collect()
    };
    let (results, target) = match compiled.inference.as_ref().map(|i| i.validators_for(payload)) {
        Some(Ok((target, validators))) => (run(&validators[..]), target),
        Some(Err(target)) => {
            let mut results = run(&compiled.validators[..]);
            let message = target.detail.clone().unwrap_or_default();
            results.push(ValidatorResult::from_violations(
                "target_class",
                MissingTargetClass { message }.validate(payload),
            ));
            (results, target)
        }
        None => (run(&compiled.validators[..]), compiled.target_class.clone()),
    };
    let mut report = ValidationReport::merge(results);
    report.target_class = Some(target);
    report
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
