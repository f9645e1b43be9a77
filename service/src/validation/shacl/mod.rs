//! SHACL validation: the payload is mapped to RDF (see `validation::mapping`) and validated by a
//! SHACL engine against the shapes the target class can reach, pruned and compiled once per load.

pub mod engine;
pub mod shapes;

use std::collections::HashMap;
use std::sync::Arc;

use oxrdf::{Graph, NamedOrBlankNode, NamedOrBlankNodeRef, TermRef};
use serde_json::Value;

use self::engine::{EngineResult, ShaclEngine};
use self::shapes::ShapesIndex;
use super::mapping::{MappedPayload, MappingPlan};
use super::rdf::{iri_object, sh};
use crate::domain::model::ArtifactKind;
use crate::domain::report::{Severity, Violation};
use crate::ports::{CompileError, PayloadValidator};

pub struct ShaclValidator {
    plan: Arc<MappingPlan>,
    engine: Box<dyn ShaclEngine>,
    /// The pruned shapes graph the engine was compiled from (also what pyshacl gets in the
    /// differential test).
    shapes_graph: Graph,
    /// How each shape is named in a violation's `source`.
    shape_labels: HashMap<NamedOrBlankNode, String>,
}

impl ShaclValidator {
    /// Prunes the shapes to those the plan's classes reach and compiles them with `shacl-rust`.
    pub fn compile(index: &ShapesIndex, plan: Arc<MappingPlan>) -> Result<Self, CompileError> {
        let pruned = index.prune(&plan.class_iris());
        let engine =
            engine::shacl_rust_engine::ShaclRustEngine::compile(pruned.clone()).map_err(|message| CompileError {
                artifact: ArtifactKind::Shacl,
                message,
            })?;
        Ok(Self::with_engine(plan, Box::new(engine), pruned))
    }

    /// Any engine, for a build that swaps `shacl-rust` for another.
    pub fn with_engine(plan: Arc<MappingPlan>, engine: Box<dyn ShaclEngine>, shapes_graph: Graph) -> Self {
        let shape_labels = shape_labels(&shapes_graph);
        Self {
            plan,
            engine,
            shapes_graph,
            shape_labels,
        }
    }

    pub fn shapes_graph(&self) -> &Graph {
        &self.shapes_graph
    }

    pub fn plan(&self) -> &MappingPlan {
        &self.plan
    }

    /// The mapped payload (without its graph, which the engine consumed) and the engine's raw
    /// results; the differential test compares these with pyshacl's on `plan().map(payload)`.
    pub fn run_engine(&self, payload: &Value) -> (MappedPayload, Result<Vec<EngineResult>, String>) {
        let mut mapped = self.plan.map(payload);
        // Result paths come from the mapper's own index, so the engine can own the graph.
        let results = self.engine.validate(std::mem::take(&mut mapped.graph));
        (mapped, results)
    }

    fn to_violation(&self, mapped: &MappedPayload, result: &EngineResult) -> Violation {
        let path = mapped.result_path(
            &self.plan,
            result.focus.as_ref(),
            result.path.as_ref().map(|p| p.as_str()),
            result.value.as_ref().map(|v| v.as_ref()),
        );
        let mut message = if result.messages.is_empty() {
            "value does not conform".to_string()
        } else {
            result.messages.join("; ")
        };
        if let Some(TermRef::Literal(value)) = result.value.as_ref().map(|v| v.as_ref())
            && !message.contains(&format!("\"{}\"", value.value()))
        {
            message.push_str(&format!(" (value: {:?})", value.value()));
        }
        if let Some(complex) = &result.complex_path {
            message.push_str(&format!(" (path: {complex})"));
        }
        Violation {
            path,
            message,
            severity: result.severity,
            kind: "shacl".into(),
            constraint: result.component.as_ref().map(|c| compact_sh(c.as_str())),
            source: Some(
                self.shape_labels
                    .get(&result.source_shape)
                    .cloned()
                    .unwrap_or_else(|| result.source_shape.to_string()),
            ),
        }
    }
}

impl PayloadValidator for ShaclValidator {
    fn kind(&self) -> &'static str {
        "shacl"
    }

    fn validate(&self, payload: &Value) -> Vec<Violation> {
        let (mapped, results) = self.run_engine(payload);
        let mut violations: Vec<Violation> = match results {
            Ok(results) => results.iter().map(|r| self.to_violation(&mapped, r)).collect(),
            Err(error) => vec![Violation {
                path: "$".into(),
                message: format!("the SHACL engine failed: {error}"),
                severity: Severity::Error,
                kind: "shacl".into(),
                constraint: Some("engine_error".into()),
                source: Some(self.engine.name().into()),
            }],
        };
        violations.extend(mapped.lexical_errors.iter().map(|e| Violation {
            path: e.path.clone(),
            message: e.message.clone(),
            severity: Severity::Error,
            kind: "shacl".into(),
            constraint: Some("sh:DatatypeConstraintComponent".into()),
            source: Some(format!(
                "payload mapper: lexical form of {}",
                e.datatype.as_ref().map(|d| d.to_string()).unwrap_or_default()
            )),
        }));
        // Engines run shapes in parallel; a stable order keeps reports comparable.
        violations.sort_by(|a, b| (&a.path, &a.constraint, &a.message).cmp(&(&b.path, &b.constraint, &b.message)));
        violations
    }
}

/// `http://www.w3.org/ns/shacl#MinCountConstraintComponent` -> `sh:MinCountConstraintComponent`.
pub fn compact_sh(iri: &str) -> String {
    match iri.strip_prefix(super::rdf::SH) {
        Some(local) => format!("sh:{local}"),
        None => iri.to_string(),
    }
}

/// Names property shapes (blank nodes in LinkML output) by their node shape and path, so a
/// violation's `source` points at something a reader can find in shacl.ttl.
fn shape_labels(graph: &Graph) -> HashMap<NamedOrBlankNode, String> {
    let mut labels = HashMap::new();
    for triple in graph.triples_for_predicate(sh("property")) {
        let property = match triple.object {
            TermRef::BlankNode(b) => NamedOrBlankNodeRef::from(b),
            TermRef::NamedNode(n) => NamedOrBlankNodeRef::from(n),
            _ => continue,
        };
        let path = iri_object(graph, property, sh("path"))
            .map(|p| p.to_string())
            .unwrap_or_else(|| "(complex path)".into());
        labels.insert(
            property.into_owned(),
            format!("{} sh:property [ sh:path {} ]", triple.subject, path),
        );
    }
    labels
}
