//! What the payload mapper and the target-class choice need to know about a shapes graph, and the
//! pruning that keeps only the shapes a payload of the target class can reach.

use std::collections::{BTreeSet, HashMap, HashSet};

use oxrdf::{Graph, NamedNodeRef, NamedOrBlankNode, NamedOrBlankNodeRef, TermRef};

use crate::validation::rdf::{RDF_TYPE, iri_object, iri_objects, literal_object, sh};

/// One property shape with a single-predicate path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyInfo {
    pub path: String,
    pub datatype: Option<String>,
    pub class: Option<String>,
    /// `sh:nodeKind sh:IRI`: values are references, not nested objects.
    pub iri_only: bool,
    pub description: Option<String>,
}

/// Index of a parsed shapes graph.
pub struct ShapesIndex {
    pub graph: Graph,
    /// class IRI -> the property shapes of every node shape targeting it (in graph order).
    properties_by_class: HashMap<String, Vec<PropertyInfo>>,
    /// Classes targeted by node shapes, in a stable order.
    target_classes: BTreeSet<String>,
    /// Classes named by `sh:class` anywhere.
    referenced_classes: HashSet<String>,
}

impl ShapesIndex {
    pub fn new(graph: Graph) -> Self {
        let mut properties_by_class: HashMap<String, Vec<PropertyInfo>> = HashMap::new();
        let mut target_classes = BTreeSet::new();
        for triple in graph.triples_for_predicate(sh("targetClass")) {
            let TermRef::NamedNode(class) = triple.object else {
                continue;
            };
            target_classes.insert(class.as_str().to_string());
            let properties = properties_by_class.entry(class.as_str().to_string()).or_default();
            for property in graph.objects_for_subject_predicate(triple.subject, sh("property")) {
                let Some(node) = as_subject(property) else { continue };
                if let Some(info) = property_info(&graph, node) {
                    properties.push(info);
                }
            }
        }
        let referenced_classes = graph
            .triples_for_predicate(sh("class"))
            .filter_map(|t| match t.object {
                TermRef::NamedNode(n) => Some(n.as_str().to_string()),
                _ => None,
            })
            .collect();
        Self {
            graph,
            properties_by_class,
            target_classes,
            referenced_classes,
        }
    }

    pub fn properties(&self, class_iri: &str) -> &[PropertyInfo] {
        self.properties_by_class
            .get(class_iri)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn targets_class(&self, class_iri: &str) -> bool {
        self.target_classes.contains(class_iri)
    }

    pub fn target_classes(&self) -> impl Iterator<Item = &str> {
        self.target_classes.iter().map(String::as_str)
    }

    /// Target classes that no `sh:class` names: the candidates for the record's root class.
    pub fn unreferenced_classes(&self) -> Vec<&str> {
        self.target_classes
            .iter()
            .filter(|c| !self.referenced_classes.contains(*c))
            .map(String::as_str)
            .collect()
    }

    /// The shapes a payload whose nodes are typed with `classes` can reach: every node shape
    /// targeting one of them, every shape with another kind of target (those may match any node),
    /// and everything those shapes reference (property shapes, lists, `sh:node`, nested shapes),
    /// transitively. Shapes outside this set produce no focus node on such a payload, so
    /// validating against the pruned graph gives the same results as against the whole graph.
    /// SHACL-SPARQL constraints whose query needs a class no payload node can have are left out
    /// for the same reason (see `sparql_constraint_can_match`).
    pub fn prune(&self, classes: &HashSet<String>) -> Graph {
        let graph = &self.graph;
        let mut stack: Vec<NamedOrBlankNodeRef<'_>> = Vec::new();
        for triple in graph.triples_for_predicate(sh("targetClass")) {
            if let TermRef::NamedNode(class) = triple.object
                && classes.contains(class.as_str())
            {
                stack.push(triple.subject);
            }
        }
        for other in ["targetNode", "targetSubjectsOf", "targetObjectsOf", "target"] {
            stack.extend(graph.triples_for_predicate(sh(other)).map(|t| t.subject));
        }

        let mut seen: HashSet<NamedOrBlankNode> = HashSet::new();
        let mut pruned = Graph::new();
        while let Some(node) = stack.pop() {
            if !seen.insert(node.into_owned()) {
                continue;
            }
            for triple in graph.triples_for_subject(node) {
                if triple.predicate == sh("sparql") && !sparql_constraint_can_match(graph, triple.object, classes) {
                    continue;
                }
                pruned.insert(triple);
                match triple.object {
                    TermRef::BlankNode(b) => stack.push(b.into()),
                    TermRef::NamedNode(n) if triple.predicate == sh("class") => {
                        // Values of this property are typed with the class: its shapes apply.
                        stack.extend(graph.subjects_for_predicate_object(sh("targetClass"), n));
                    }
                    // `sh:node`, `sh:property`, list members and the like name other shapes;
                    // anything the graph describes is kept.
                    TermRef::NamedNode(n)
                        if triple.predicate != RDF_TYPE && graph.triples_for_subject(n).next().is_some() =>
                    {
                        stack.push(n.into());
                    }
                    _ => {}
                }
            }
        }
        pruned
    }
}

/// Whether a SHACL-SPARQL constraint can produce a result on a payload graph: not when its query
/// requires a node of a class no payload node is typed with (`?config a ex:Configuration` where
/// payloads never contain an `ex:Configuration`), since such a query has no solution on any
/// payload. Anything the check does not understand counts as "can match".
fn sparql_constraint_can_match(graph: &Graph, constraint: TermRef<'_>, classes: &HashSet<String>) -> bool {
    let Some(node) = as_subject(constraint) else {
        return true;
    };
    let Some(query) = literal_object(graph, node, sh("select")) else {
        return true;
    };
    match spargebra::SparqlParser::new().parse_query(query) {
        Ok(spargebra::Query::Select { pattern, .. }) => !requires_absent_class(&pattern, classes),
        _ => true,
    }
}

/// True when every solution of `pattern` needs an `rdf:type` triple with a class outside
/// `classes`.
fn requires_absent_class(pattern: &spargebra::algebra::GraphPattern, classes: &HashSet<String>) -> bool {
    use spargebra::algebra::GraphPattern as P;
    use spargebra::term::{NamedNodePattern, TermPattern};
    match pattern {
        P::Bgp { patterns } => patterns.iter().any(|t| {
            matches!(&t.predicate, NamedNodePattern::NamedNode(p) if p.as_ref() == RDF_TYPE)
                && matches!(&t.object, TermPattern::NamedNode(c) if !classes.contains(c.as_str()))
        }),
        P::Join { left, right } => requires_absent_class(left, classes) || requires_absent_class(right, classes),
        P::Union { left, right } => requires_absent_class(left, classes) && requires_absent_class(right, classes),
        P::LeftJoin { left, .. } | P::Minus { left, .. } => requires_absent_class(left, classes),
        P::Filter { inner, .. }
        | P::Extend { inner, .. }
        | P::OrderBy { inner, .. }
        | P::Project { inner, .. }
        | P::Distinct { inner }
        | P::Reduced { inner }
        | P::Slice { inner, .. } => requires_absent_class(inner, classes),
        // An aggregate without GROUP BY yields one row even from no solution.
        P::Group { inner, variables, .. } => !variables.is_empty() && requires_absent_class(inner, classes),
        _ => false,
    }
}

fn as_subject(term: TermRef<'_>) -> Option<NamedOrBlankNodeRef<'_>> {
    match term {
        TermRef::NamedNode(n) => Some(n.into()),
        TermRef::BlankNode(b) => Some(b.into()),
        _ => None,
    }
}

fn property_info(graph: &Graph, node: NamedOrBlankNodeRef<'_>) -> Option<PropertyInfo> {
    let path: NamedNodeRef<'_> = iri_object(graph, node, sh("path"))?;
    Some(PropertyInfo {
        path: path.as_str().to_string(),
        datatype: iri_object(graph, node, sh("datatype")).map(|d| d.as_str().to_string()),
        class: iri_objects(graph, node, sh("class"))
            .next()
            .map(|c| c.as_str().to_string()),
        iri_only: iri_object(graph, node, sh("nodeKind")) == Some(sh("IRI")),
        description: literal_object(graph, node, sh("description")).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::rdf::parse_turtle;

    const SHAPES: &str = r#"
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        @prefix ex: <https://ex.org/> .
        @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
        ex:Root a sh:NodeShape ; sh:targetClass ex:Root ;
            sh:property [ sh:path ex:child ; sh:class ex:Child ] , [ sh:path ex:name ; sh:datatype xsd:string ] .
        ex:Child a sh:NodeShape ; sh:targetClass ex:Child ;
            sh:property [ sh:path ex:ref ; sh:class ex:Other ; sh:nodeKind sh:IRI ] .
        ex:ChildExtra a sh:NodeShape ; sh:targetClass ex:Child ; sh:node ex:Helper .
        ex:Helper a sh:NodeShape ; sh:property [ sh:path ex:x ; sh:minCount 1 ] .
        ex:Other a sh:NodeShape ; sh:targetClass ex:Other .
        ex:Unrelated a sh:NodeShape ; sh:targetClass ex:Unrelated ; sh:property [ sh:path ex:y ] .
        ex:ByNode a sh:NodeShape ; sh:targetNode ex:someone .
    "#;

    #[test]
    fn indexes_properties_and_unreferenced_classes() {
        let index = ShapesIndex::new(parse_turtle(SHAPES.as_bytes(), "shapes").unwrap());
        let root = index.properties("https://ex.org/Root");
        assert_eq!(root.len(), 2);
        let child = root.iter().find(|p| p.path == "https://ex.org/child").unwrap();
        assert_eq!(child.class.as_deref(), Some("https://ex.org/Child"));
        assert!(index.properties("https://ex.org/Child")[0].iri_only);
        assert_eq!(
            index.unreferenced_classes(),
            vec!["https://ex.org/Root", "https://ex.org/Unrelated"]
        );
    }

    #[test]
    fn pruning_keeps_reachable_shapes_and_other_targets_only() {
        let index = ShapesIndex::new(parse_turtle(SHAPES.as_bytes(), "shapes").unwrap());
        let classes: HashSet<String> = ["https://ex.org/Root".to_string()].into();
        let pruned = index.prune(&classes);
        let subjects: HashSet<String> = pruned
            .iter()
            .filter_map(|t| match t.subject {
                NamedOrBlankNodeRef::NamedNode(n) => Some(n.as_str().to_string()),
                _ => None,
            })
            .collect();
        for kept in ["Root", "Child", "ChildExtra", "Helper", "Other", "ByNode"] {
            assert!(subjects.contains(&format!("https://ex.org/{kept}")), "{kept} kept");
        }
        assert!(!subjects.contains("https://ex.org/Unrelated"));
    }

    #[test]
    fn sparql_constraints_needing_a_class_no_payload_has_are_pruned() {
        let shapes = r#"
            @prefix sh: <http://www.w3.org/ns/shacl#> .
            @prefix ex: <https://ex.org/> .
            ex:Root sh:targetClass ex:Root ;
                sh:sparql [ sh:select "PREFIX ex: <https://ex.org/> SELECT $this WHERE { ?c a ex:Config ; ex:id ?id . $this ex:ref ?id }" ] ,
                          [ sh:select "PREFIX ex: <https://ex.org/> SELECT $this WHERE { $this ex:a ?x . FILTER NOT EXISTS { $this ex:b ?y } }" ] ,
                          [ sh:select "PREFIX ex: <https://ex.org/> SELECT $this WHERE { { ?c a ex:Config } UNION { $this ex:a ?x } }" ] ,
                          [ sh:select "PREFIX ex: <https://ex.org/> SELECT (COUNT(?c) AS ?n) WHERE { ?c a ex:Config }" ] .
        "#;
        let index = ShapesIndex::new(parse_turtle(shapes.as_bytes(), "shapes").unwrap());
        let pruned = index.prune(&["https://ex.org/Root".to_string()].into());
        let kept: Vec<String> = pruned
            .triples_for_predicate(sh("select"))
            .map(|t| t.object.to_string())
            .collect();
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(
            !kept.iter().any(|q| q.contains("ex:id")),
            "the Config join is pruned: {kept:?}"
        );
    }
}
