//! What an OWL ontology can decide about one record without a reasoner.
//!
//! The payload is mapped to RDF exactly as for SHACL, then checked against the ontology's
//! declarations and the restrictions its classes carry. The profile (docs/validation.md, "OWL"):
//!
//! - a class or property the ontology does not declare: **warning** (OWL is open-world, so an
//!   undeclared term is not a contradiction; it is still almost always a typo or a wrong model);
//! - an object property with a literal value, or a datatype property with a node value: **error**
//!   (not expressible in OWL 2 DL), except where the schema's own mapping makes the value a
//!   literal (LinkML declares enum-valued slots as object properties in OWL but writes enum
//!   values as literals in RDF);
//! - a literal outside a datatype property's `rdfs:range`, or outside an `owl:allValuesFrom` data
//!   range of one of the node's classes (named datatypes, `owl:onDatatype` + `owl:withRestrictions`
//!   facets, `owl:intersectionOf`, `owl:unionOf`, `owl:oneOf`), or ill-formed for its datatype:
//!   **error** (the record would make the ontology inconsistent);
//! - more distinct values than `owl:maxCardinality` / `owl:cardinality` / `owl:FunctionalProperty`
//!   allow: **error** for datatype properties (distinct literals are distinct values), **warning**
//!   for object properties (without the unique name assumption two node names may denote the same
//!   individual).
//!
//! Not decided (open world): minimum cardinalities, `owl:someValuesFrom`, `owl:allValuesFrom` with
//! a class filler, domains and class ranges (they infer types, they never contradict alone),
//! disjointness and anything that needs a reasoner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use oxrdf::{Graph, Literal, NamedNodeRef, NamedOrBlankNodeRef, TermRef};
use regex::Regex;
use serde_json::Value;

use super::literal::is_well_formed;
use super::mapping::{MappedPayload, MappingPlan, Vocabulary};
use super::rdf::{RDF_TYPE, XSD, list_members};
use crate::domain::report::{Severity, Violation};
use crate::ports::PayloadValidator;

const OWL: &str = "http://www.w3.org/2002/07/owl#";
const RDFS: &str = "http://www.w3.org/2000/01/rdf-schema#";
const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

fn owl(local: &str) -> String {
    format!("{OWL}{local}")
}

#[derive(Debug, Clone)]
enum Facet {
    Pattern(Regex),
    MinInclusive(f64),
    MaxInclusive(f64),
    MinExclusive(f64),
    MaxExclusive(f64),
    MinLength(usize),
    MaxLength(usize),
    Length(usize),
}

#[derive(Debug, Clone)]
enum DataRange {
    Datatype(String),
    Restricted {
        base: String,
        facets: Vec<Facet>,
    },
    And(Vec<DataRange>),
    Or(Vec<DataRange>),
    OneOf(Vec<Literal>),
    /// A range this profile does not judge (`owl:datatypeComplementOf`, unknown facets).
    Undecided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PropertyKind {
    Data,
    Object,
    Other,
}

#[derive(Debug, Clone)]
struct PropertyDecl {
    kind: PropertyKind,
    functional: bool,
    ranges: Vec<DataRange>,
}

#[derive(Debug, Clone, Default)]
struct ClassRules {
    /// property -> maximum number of values.
    max: HashMap<String, u64>,
    /// property -> data ranges every value must be in.
    data_ranges: HashMap<String, Vec<DataRange>>,
}

/// The parts of an ontology this profile uses, indexed once per load.
pub struct Ontology {
    classes: HashSet<String>,
    properties: HashMap<String, PropertyDecl>,
    /// Rules per class, inherited rules (named superclasses) included.
    rules: HashMap<String, ClassRules>,
    /// Facet patterns that did not compile (reported as load warnings).
    pub skipped_patterns: Vec<String>,
}

impl Ontology {
    pub fn from_graph(graph: &Graph, classes_of_interest: &HashSet<String>) -> Self {
        let mut skipped_patterns = Vec::new();
        let type_of = |kind: &str| {
            let object = oxrdf::NamedNode::new_unchecked(kind.to_string());
            graph
                .subjects_for_predicate_object(RDF_TYPE, &object)
                .filter_map(|s| match s {
                    NamedOrBlankNodeRef::NamedNode(n) => Some(n.as_str().to_string()),
                    _ => None,
                })
                .collect::<HashSet<String>>()
        };
        let mut classes = type_of(&owl("Class"));
        classes.extend(type_of(&format!("{RDFS}Class")));
        let data = type_of(&owl("DatatypeProperty"));
        let object = type_of(&owl("ObjectProperty"));
        let functional = type_of(&owl("FunctionalProperty"));
        let mut other = type_of(&owl("AnnotationProperty"));
        other.extend(type_of(&format!("{RDF}Property")));

        let range_predicate = oxrdf::NamedNode::new_unchecked(format!("{RDFS}range"));
        let mut properties = HashMap::new();
        for iri in data.iter().chain(&object).chain(&other).chain(&functional) {
            let kind = if data.contains(iri) {
                PropertyKind::Data
            } else if object.contains(iri) {
                PropertyKind::Object
            } else {
                PropertyKind::Other
            };
            let node = oxrdf::NamedNode::new_unchecked(iri.clone());
            let ranges = if kind == PropertyKind::Data {
                graph
                    .objects_for_subject_predicate(&node, &range_predicate)
                    .map(|r| parse_range(graph, r, 0, &mut skipped_patterns))
                    .collect()
            } else {
                Vec::new()
            };
            properties.insert(
                iri.clone(),
                PropertyDecl {
                    kind,
                    functional: functional.contains(iri),
                    ranges,
                },
            );
        }

        // Only the classes a payload can be typed with need rules; LinkML ontologies carry
        // thousands of restrictions on classes a given record never uses.
        let mut rules = HashMap::new();
        for class in classes_of_interest {
            rules.insert(class.clone(), class_rules(graph, class, &data, &mut skipped_patterns));
        }
        Self {
            classes,
            properties,
            rules,
            skipped_patterns,
        }
    }
}

/// The rules of `class` and of its named superclasses.
fn class_rules(graph: &Graph, class: &str, data_properties: &HashSet<String>, skipped: &mut Vec<String>) -> ClassRules {
    let sub_class_of = oxrdf::NamedNode::new_unchecked(format!("{RDFS}subClassOf"));
    let on_property = oxrdf::NamedNode::new_unchecked(owl("onProperty"));
    let max_predicates: Vec<oxrdf::NamedNode> = ["maxCardinality", "cardinality"]
        .iter()
        .map(|l| oxrdf::NamedNode::new_unchecked(owl(l)))
        .collect();
    let all_values_from = oxrdf::NamedNode::new_unchecked(owl("allValuesFrom"));
    let datatype_class = format!("{RDFS}Datatype");

    let mut rules = ClassRules::default();
    let mut seen = HashSet::new();
    let mut stack = vec![class.to_string()];
    while let Some(current) = stack.pop() {
        if !seen.insert(current.clone()) {
            continue;
        }
        let node = oxrdf::NamedNode::new_unchecked(current);
        for parent in graph.objects_for_subject_predicate(&node, &sub_class_of) {
            match parent {
                TermRef::NamedNode(n) => stack.push(n.as_str().to_string()),
                TermRef::BlankNode(b) => {
                    let Some(TermRef::NamedNode(property)) = graph.object_for_subject_predicate(b, &on_property) else {
                        continue;
                    };
                    let property = property.as_str().to_string();
                    for predicate in &max_predicates {
                        if let Some(TermRef::Literal(n)) = graph.object_for_subject_predicate(b, predicate)
                            && let Ok(n) = n.value().parse::<u64>()
                        {
                            let entry = rules.max.entry(property.clone()).or_insert(n);
                            *entry = (*entry).min(n);
                        }
                    }
                    if let Some(filler) = graph.object_for_subject_predicate(b, &all_values_from) {
                        let is_data_range = match filler {
                            TermRef::NamedNode(n) => {
                                n.as_str().starts_with(XSD)
                                    || n.as_str() == format!("{RDFS}Literal")
                                    || data_properties.contains(&property)
                            }
                            TermRef::BlankNode(f) => graph
                                .objects_for_subject_predicate(f, RDF_TYPE)
                                .any(|t| matches!(t, TermRef::NamedNode(n) if n.as_str() == datatype_class)),
                            _ => false,
                        };
                        if is_data_range {
                            rules
                                .data_ranges
                                .entry(property)
                                .or_default()
                                .push(parse_range(graph, filler, 0, skipped));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    rules
}

fn parse_range(graph: &Graph, term: TermRef<'_>, depth: usize, skipped: &mut Vec<String>) -> DataRange {
    if depth > 16 {
        return DataRange::Undecided;
    }
    let node: NamedOrBlankNodeRef<'_> = match term {
        TermRef::NamedNode(n) => return DataRange::Datatype(n.as_str().to_string()),
        TermRef::BlankNode(b) => b.into(),
        _ => return DataRange::Undecided,
    };
    let get = |local: &str| {
        let predicate = oxrdf::NamedNode::new_unchecked(owl(local));
        graph.object_for_subject_predicate(node, &predicate)
    };
    if let Some(list) = get("intersectionOf") {
        return DataRange::And(
            list_members(graph, list)
                .into_iter()
                .map(|m| parse_range(graph, m, depth + 1, skipped))
                .collect(),
        );
    }
    if let Some(list) = get("unionOf") {
        return DataRange::Or(
            list_members(graph, list)
                .into_iter()
                .map(|m| parse_range(graph, m, depth + 1, skipped))
                .collect(),
        );
    }
    if let Some(list) = get("oneOf") {
        return DataRange::OneOf(
            list_members(graph, list)
                .into_iter()
                .filter_map(|m| match m {
                    TermRef::Literal(l) => Some(l.into_owned()),
                    _ => None,
                })
                .collect(),
        );
    }
    if let (Some(TermRef::NamedNode(base)), Some(list)) = (get("onDatatype"), get("withRestrictions")) {
        let mut facets = Vec::new();
        for restriction in list_members(graph, list) {
            let TermRef::BlankNode(r) = restriction else {
                return DataRange::Undecided;
            };
            for triple in graph.triples_for_subject(r) {
                let TermRef::Literal(value) = triple.object else {
                    continue;
                };
                match parse_facet(triple.predicate, value.value()) {
                    Ok(facet) => facets.push(facet),
                    Err(problem) => {
                        skipped.push(problem);
                        return DataRange::Undecided;
                    }
                }
            }
        }
        return DataRange::Restricted {
            base: base.as_str().to_string(),
            facets,
        };
    }
    DataRange::Undecided
}

fn parse_facet(predicate: NamedNodeRef<'_>, value: &str) -> Result<Facet, String> {
    let number = || {
        value
            .parse::<f64>()
            .map_err(|_| format!("facet {predicate} {value:?} is not a number"))
    };
    let length = || {
        value
            .parse::<usize>()
            .map_err(|_| format!("facet {predicate} {value:?} is not a length"))
    };
    match predicate.as_str().strip_prefix(XSD) {
        // LinkML copies its (ECMAScript-style, anchored with ^ and $) patterns verbatim, so the
        // pattern is applied as SHACL applies sh:pattern: a regex search.
        Some("pattern") => Regex::new(value)
            .map(Facet::Pattern)
            .map_err(|e| format!("xsd:pattern {value:?} does not compile: {e}")),
        Some("minInclusive") => number().map(Facet::MinInclusive),
        Some("maxInclusive") => number().map(Facet::MaxInclusive),
        Some("minExclusive") => number().map(Facet::MinExclusive),
        Some("maxExclusive") => number().map(Facet::MaxExclusive),
        Some("minLength") => length().map(Facet::MinLength),
        Some("maxLength") => length().map(Facet::MaxLength),
        Some("length") => length().map(Facet::Length),
        _ => Err(format!("facet {predicate} is not supported")),
    }
}

/// `derived` is `base` or derived from it by restriction (for the XSD types LinkML uses).
fn derives_from(derived: &str, base: &str) -> bool {
    if derived == base || base == format!("{RDFS}Literal") {
        return true;
    }
    let (Some(d), Some(b)) = (derived.strip_prefix(XSD), base.strip_prefix(XSD)) else {
        return false;
    };
    let parent = |t: &str| -> Option<&'static str> {
        Some(match t {
            "integer" => "decimal",
            "long" | "nonNegativeInteger" | "nonPositiveInteger" => "integer",
            "int" => "long",
            "short" => "int",
            "byte" => "short",
            "unsignedLong" | "positiveInteger" => "nonNegativeInteger",
            "unsignedInt" => "unsignedLong",
            "unsignedShort" => "unsignedInt",
            "unsignedByte" => "unsignedShort",
            "negativeInteger" => "nonPositiveInteger",
            "dateTimeStamp" => "dateTime",
            "normalizedString" => "string",
            "token" => "normalizedString",
            "language" | "Name" | "NMTOKEN" => "token",
            "NCName" => "Name",
            _ => return None,
        })
    };
    let mut current = d;
    for _ in 0..8 {
        match parent(current) {
            Some(p) if p == b => return true,
            Some(p) => current = p,
            None => return false,
        }
    }
    false
}

impl DataRange {
    fn accepts(&self, literal: &Literal) -> bool {
        match self {
            DataRange::Datatype(datatype) => {
                if !datatype.starts_with(XSD) && datatype.as_str() != format!("{RDFS}Literal") {
                    return true; // a datatype this profile does not know is not judged
                }
                derives_from(literal.datatype().as_str(), datatype) && is_well_formed(literal)
            }
            DataRange::Restricted { base, facets } => {
                DataRange::Datatype(base.clone()).accepts(literal) && facets.iter().all(|f| facet_accepts(f, literal))
            }
            DataRange::And(ranges) => ranges.iter().all(|r| r.accepts(literal)),
            DataRange::Or(ranges) => ranges.is_empty() || ranges.iter().any(|r| r.accepts(literal)),
            DataRange::OneOf(values) => values.contains(literal),
            DataRange::Undecided => true,
        }
    }

    fn describe(&self) -> String {
        match self {
            DataRange::Datatype(d) => compact(d),
            DataRange::Restricted { base, facets } => {
                let facets: Vec<String> = facets.iter().map(describe_facet).collect();
                format!("{} [{}]", compact(base), facets.join(", "))
            }
            DataRange::And(ranges) => ranges.iter().map(DataRange::describe).collect::<Vec<_>>().join(" and "),
            DataRange::Or(ranges) => ranges.iter().map(DataRange::describe).collect::<Vec<_>>().join(" or "),
            DataRange::OneOf(values) => format!(
                "one of {}",
                values
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DataRange::Undecided => "(not judged)".into(),
        }
    }
}

fn describe_facet(facet: &Facet) -> String {
    match facet {
        Facet::Pattern(r) => format!("pattern {}", r.as_str()),
        Facet::MinInclusive(v) => format!(">= {v}"),
        Facet::MaxInclusive(v) => format!("<= {v}"),
        Facet::MinExclusive(v) => format!("> {v}"),
        Facet::MaxExclusive(v) => format!("< {v}"),
        Facet::MinLength(n) => format!("length >= {n}"),
        Facet::MaxLength(n) => format!("length <= {n}"),
        Facet::Length(n) => format!("length = {n}"),
    }
}

fn facet_accepts(facet: &Facet, literal: &Literal) -> bool {
    let text = literal.value();
    let number = || text.trim().parse::<f64>().ok();
    match facet {
        Facet::Pattern(regex) => regex.is_match(text),
        Facet::MinInclusive(min) => number().is_some_and(|n| n >= *min),
        Facet::MaxInclusive(max) => number().is_some_and(|n| n <= *max),
        Facet::MinExclusive(min) => number().is_some_and(|n| n > *min),
        Facet::MaxExclusive(max) => number().is_some_and(|n| n < *max),
        Facet::MinLength(n) => text.chars().count() >= *n,
        Facet::MaxLength(n) => text.chars().count() <= *n,
        Facet::Length(n) => text.chars().count() == *n,
    }
}

fn compact(iri: &str) -> String {
    if let Some(local) = iri.strip_prefix(XSD) {
        format!("xsd:{local}")
    } else {
        format!("<{iri}>")
    }
}

pub struct OwlValidator {
    plan: Arc<MappingPlan>,
    ontology: Ontology,
    vocabulary: Vocabulary,
}

impl OwlValidator {
    /// Maps payloads with LinkML's native IRIs when the ontology uses them (what `gen-owl` does
    /// by default, linking `class_uri`s with `skos:exactMatch`), else with the shapes' IRIs.
    pub fn new(plan: Arc<MappingPlan>, graph: &Graph) -> Self {
        let native_root = plan.root_native_class_iri().map(str::to_string);
        let uses_native = native_root.as_deref().is_some_and(|root| {
            let root = oxrdf::NamedNode::new_unchecked(root.to_string());
            graph.triples_for_subject(&root).next().is_some()
        });
        let (vocabulary, classes) = if uses_native {
            (Vocabulary::Native, plan.native_class_iris())
        } else {
            (Vocabulary::Shapes, plan.class_iris())
        };
        let ontology = Ontology::from_graph(graph, &classes);
        Self {
            plan,
            ontology,
            vocabulary,
        }
    }

    /// Facet patterns of the ontology that this profile could not compile.
    pub fn skipped_patterns(&self) -> &[String] {
        &self.ontology.skipped_patterns
    }

    fn check(&self, mapped: &MappedPayload) -> Vec<Violation> {
        let mut violations = Vec::new();
        let graph = &mapped.graph;
        let mut seen = HashSet::new();
        let subjects: Vec<NamedOrBlankNodeRef<'_>> =
            graph.iter().map(|t| t.subject).filter(|s| seen.insert(*s)).collect();
        for subject in subjects {
            let focus = TermRef::from(subject);
            let types: Vec<&str> = graph
                .objects_for_subject_predicate(subject, RDF_TYPE)
                .filter_map(|t| match t {
                    TermRef::NamedNode(n) => Some(n.as_str()),
                    _ => None,
                })
                .collect();
            for class in &types {
                if !self.ontology.classes.contains(*class) {
                    violations.push(self.violation(
                        mapped.result_path(&self.plan, focus, None, None),
                        format!("class <{class}> is not declared in the ontology"),
                        Severity::Warning,
                        "owl:Class",
                        class,
                    ));
                }
            }
            let mut values_by_property: HashMap<&str, Vec<TermRef<'_>>> = HashMap::new();
            for triple in graph.triples_for_subject(subject) {
                if triple.predicate != RDF_TYPE {
                    values_by_property
                        .entry(triple.predicate.as_str())
                        .or_default()
                        .push(triple.object);
                }
            }
            let mut properties: Vec<_> = values_by_property.into_iter().collect();
            properties.sort_by_key(|(p, _)| *p);
            for (property, values) in properties {
                self.check_property(mapped, focus, &types, property, &values, &mut violations);
            }
        }
        violations.sort_by(|a, b| (&a.path, &a.constraint, &a.message).cmp(&(&b.path, &b.constraint, &b.message)));
        violations
    }

    fn check_property(
        &self,
        mapped: &MappedPayload,
        focus: TermRef<'_>,
        types: &[&str],
        property: &str,
        values: &[TermRef<'_>],
        out: &mut Vec<Violation>,
    ) {
        let path_of = |value: Option<TermRef<'_>>| mapped.result_path(&self.plan, focus, Some(property), value);
        let Some(decl) = self.ontology.properties.get(property) else {
            out.push(self.violation(
                path_of(None),
                format!("property <{property}> is not declared in the ontology"),
                Severity::Warning,
                "owl:DatatypeProperty|owl:ObjectProperty",
                property,
            ));
            return;
        };
        let class_rules: Vec<&ClassRules> = types.iter().filter_map(|t| self.ontology.rules.get(*t)).collect();
        let mut ranges: Vec<&DataRange> = decl.ranges.iter().collect();
        for rules in &class_rules {
            if let Some(more) = rules.data_ranges.get(property) {
                ranges.extend(more);
            }
        }
        for value in values {
            match (decl.kind, value) {
                (PropertyKind::Data, TermRef::Literal(literal)) => {
                    let literal = literal.into_owned();
                    if let Some(range) = ranges.iter().find(|r| !r.accepts(&literal)) {
                        out.push(self.violation(
                            path_of(Some(*value)),
                            format!(
                                "{:?} is outside the range {} of <{property}>",
                                literal.value(),
                                range.describe()
                            ),
                            Severity::Error,
                            "owl:allValuesFrom|rdfs:range",
                            property,
                        ));
                    }
                }
                (PropertyKind::Data, _) => out.push(self.violation(
                    path_of(Some(*value)),
                    format!("<{property}> is a datatype property but the value is an object"),
                    Severity::Error,
                    "owl:DatatypeProperty",
                    property,
                )),
                // LinkML's OWL declares enum-valued slots as object properties while its RDF
                // (and the shapes) give enum values as literals: follow the schema there.
                (PropertyKind::Object, TermRef::Literal(_))
                    if mapped.schema_expects_literal(&self.plan, focus, property) => {}
                (PropertyKind::Object, TermRef::Literal(_)) => out.push(self.violation(
                    path_of(Some(*value)),
                    format!("<{property}> is an object property but the value is a literal"),
                    Severity::Error,
                    "owl:ObjectProperty",
                    property,
                )),
                _ => {}
            }
        }
        let max = class_rules
            .iter()
            .filter_map(|r| r.max.get(property).copied())
            .chain(decl.functional.then_some(1))
            .min();
        let distinct: HashSet<&TermRef<'_>> = values.iter().collect();
        if let Some(max) = max
            && distinct.len() as u64 > max
        {
            let (severity, why) = if decl.kind == PropertyKind::Data {
                (Severity::Error, "")
            } else {
                (
                    Severity::Warning,
                    " (not a contradiction without the unique name assumption: the values may denote one individual)",
                )
            };
            out.push(self.violation(
                path_of(None),
                format!(
                    "<{property}> has {} values, the ontology allows at most {max}{why}",
                    distinct.len()
                ),
                severity,
                "owl:maxCardinality",
                property,
            ));
        }
    }

    fn violation(
        &self,
        path: String,
        message: String,
        severity: Severity,
        constraint: &str,
        source: &str,
    ) -> Violation {
        Violation {
            path,
            message,
            severity,
            kind: "owl".into(),
            constraint: Some(constraint.into()),
            source: Some(format!("<{source}>")),
        }
    }
}

impl PayloadValidator for OwlValidator {
    fn kind(&self) -> &'static str {
        "owl"
    }

    fn validate(&self, payload: &Value) -> Vec<Violation> {
        let mapped = self.plan.map_with(payload, self.vocabulary);
        self.check(&mapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::linkml::LinkmlSchema;
    use crate::validation::mapping::PlanSources;
    use crate::validation::rdf::parse_turtle;
    use serde_json::json;

    const ONTOLOGY: &str = r#"
        @prefix owl: <http://www.w3.org/2002/07/owl#> .
        @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
        @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
        @prefix ex: <https://ex.org/> .
        ex:Thing a owl:Class .
        ex:Root a owl:Class ; rdfs:subClassOf ex:Thing ,
            [ a owl:Restriction ; owl:onProperty ex:code ; owl:maxCardinality 1 ] ,
            [ a owl:Restriction ; owl:onProperty ex:code ; owl:allValuesFrom [ a rdfs:Datatype ;
                owl:intersectionOf ( xsd:string [ a rdfs:Datatype ; owl:onDatatype xsd:string ;
                    owl:withRestrictions ( [ xsd:pattern "^[A-Z]{2}$" ] ) ] ) ] ] .
        ex:Thing rdfs:subClassOf [ a owl:Restriction ; owl:onProperty ex:made ; owl:allValuesFrom xsd:date ] .
        ex:code a owl:DatatypeProperty .
        ex:made a owl:DatatypeProperty .
        ex:part a owl:ObjectProperty, owl:FunctionalProperty .
    "#;

    fn validator() -> OwlValidator {
        // The plan types `made` as xsd:date (from LinkML), as shapes or LinkML do for real models.
        let linkml = Arc::new(
            LinkmlSchema::parse(
                b"id: https://ex.org\nprefixes: {ex: 'https://ex.org/'}\ndefault_prefix: ex\n\
                  classes: {Root: {attributes: {made: {range: date}, code: {}}}}\n",
            )
            .unwrap(),
        );
        let plan = Arc::new(MappingPlan::build(&PlanSources {
            target_class: "Root",
            linkml: Some(&linkml),
            shapes: None,
            json_schema: Some(&json!({"$id": "https://ex.org/", "$defs": {"Root": {}}})),
        }));
        let graph = parse_turtle(ONTOLOGY.as_bytes(), "ontology").unwrap();
        OwlValidator::new(plan, &graph)
    }

    #[test]
    fn inherited_data_ranges_facets_and_cardinality_are_errors() {
        let violations = validator().validate(&json!({"code": ["DE", "France"], "made": "not a date"}));
        let find = |path: &str, constraint: &str| {
            violations
                .iter()
                .find(|v| v.path == path && v.constraint.as_deref() == Some(constraint))
                .unwrap_or_else(|| panic!("no {constraint} at {path}: {violations:#?}"))
        };
        assert_eq!(
            find("$.code[1]", "owl:allValuesFrom|rdfs:range").severity,
            Severity::Error
        );
        assert_eq!(find("$.code", "owl:maxCardinality").severity, Severity::Error);
        assert_eq!(find("$.made", "owl:allValuesFrom|rdfs:range").severity, Severity::Error);
        assert!(!violations.iter().any(|v| v.path == "$.code[0]"), "{violations:#?}");
    }

    #[test]
    fn undeclared_terms_are_warnings_and_object_properties_need_nodes() {
        let violations = validator().validate(&json!({"colour": "red", "part": "text"}));
        let colour = violations.iter().find(|v| v.path == "$.colour").unwrap();
        assert_eq!(colour.severity, Severity::Warning);
        let part = violations.iter().find(|v| v.path == "$.part").unwrap();
        assert_eq!(part.severity, Severity::Error);
        assert_eq!(part.constraint.as_deref(), Some("owl:ObjectProperty"));
    }

    #[test]
    fn conforming_record_has_no_violations() {
        let violations = validator().validate(&json!({"code": "DE", "made": "2025-01-02"}));
        assert!(violations.is_empty(), "{violations:#?}");
    }
}
