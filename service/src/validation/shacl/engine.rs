//! The SHACL engine behind the SHACL validator. The validator only needs "validate this data graph
//! against the compiled shapes and give me the results", so the engine is a trait and the
//! `shacl-rust` adapter is one implementation; see docs/validation.md for why this one.

use oxrdf::{Graph, NamedNode, NamedOrBlankNode, Term};

use crate::domain::report::Severity;

/// One SHACL validation result, owned and engine-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineResult {
    pub focus: Term,
    /// The result path when it is a single predicate (what LinkML shapes use).
    pub path: Option<NamedNode>,
    /// The result path as text when it is anything else (sequence, inverse, ...).
    pub complex_path: Option<String>,
    pub value: Option<Term>,
    pub component: Option<NamedNode>,
    pub severity: Severity,
    pub messages: Vec<String>,
    pub source_shape: NamedOrBlankNode,
}

/// A SHACL engine with its shapes compiled once.
pub trait ShaclEngine: Send + Sync {
    /// The engine's name and version, for logs and the docs.
    fn name(&self) -> &'static str;
    /// Validates a data graph; `Err` only when the engine itself fails.
    fn validate(&self, data: Graph) -> Result<Vec<EngineResult>, String>;
}

/// `sh:Violation` / `sh:Warning` / `sh:Info` (anything else counts as a violation).
pub fn severity_of(iri: &str) -> Severity {
    match iri {
        "http://www.w3.org/ns/shacl#Warning" => Severity::Warning,
        "http://www.w3.org/ns/shacl#Info" => Severity::Info,
        _ => Severity::Error,
    }
}

pub mod shacl_rust_engine {
    //! Adapter for the `shacl-rust` crate.
    //!
    //! `shacl-rust` parses shapes into `Shape<'a>` values that borrow the shapes graph, so the
    //! graph and its parsed shapes live together in one self-referential cell, built once per
    //! catalog load.

    use oxrdf::{Graph, TermRef};
    use shacl_rust::validation::dataset::ValidationDataset;
    use shacl_rust::{PathElement, Shape};

    use super::{EngineResult, ShaclEngine, severity_of};

    type ShapeList<'a> = Vec<Shape<'a>>;

    self_cell::self_cell!(
        struct CompiledShapes {
            owner: Graph,
            #[covariant]
            dependent: ShapeList,
        }
    );

    pub struct ShaclRustEngine {
        shapes: CompiledShapes,
        /// Whether SPARQL constraints may read `$shapesGraph`; only then is the shapes graph
        /// copied into each validation's dataset.
        needs_shapes_graph: bool,
    }

    impl ShaclRustEngine {
        pub fn compile(shapes_graph: Graph) -> Result<Self, String> {
            let needs_shapes_graph = shapes_graph.iter().any(|t| match t.object {
                TermRef::Literal(l) => l.value().contains("shapesGraph"),
                _ => false,
            });
            let shapes = CompiledShapes::try_new(shapes_graph, |graph| {
                shacl_rust::parse_shapes(graph).map_err(|e| format!("shapes graph not understood: {e}"))
            })?;
            Ok(Self {
                shapes,
                needs_shapes_graph,
            })
        }
    }

    impl ShaclEngine for ShaclRustEngine {
        fn name(&self) -> &'static str {
            "shacl-rust 0.2"
        }

        fn validate(&self, data: Graph) -> Result<Vec<EngineResult>, String> {
            let shapes_graph = if self.needs_shapes_graph {
                self.shapes.borrow_owner().clone()
            } else {
                Graph::new()
            };
            let dataset = ValidationDataset::from_graphs(data, shapes_graph).map_err(|e| e.to_string())?;
            let shapes = self.shapes.borrow_dependent();
            let report = shacl_rust::validate(&dataset, shapes);
            Ok(report
                .get_results()
                .iter()
                .map(|result| {
                    let (path, complex_path) = match result.result_path().map(|p| p.get_elements()) {
                        Some([PathElement::Iri(predicate)]) => (Some(predicate.into_owned()), None),
                        Some(_) => (None, result.result_path().map(|p| p.to_string())),
                        None => (None, None),
                    };
                    EngineResult {
                        focus: result.focus_node().into_owned(),
                        path,
                        complex_path,
                        value: result.value().map(|v| v.into_owned()),
                        component: result.source_constraint_component().map(|c| c.into_owned()),
                        severity: severity_of(result.severity().as_str()),
                        messages: result.messages().to_vec(),
                        source_shape: result.source_shape().into_owned(),
                    }
                })
                .collect())
        }
    }
}
