//! JSON payload -> RDF graph, the way LinkML maps JSON to RDF, so SHACL shapes and OWL axioms
//! generated from the same LinkML schema apply to it.
//!
//! - every object is a node typed with its class: the target class at the root, the `sh:class`
//!   (or LinkML range) of the property it sits under below;
//! - keys become predicates through the LinkML schema (slot name or alias -> `slot_uri`, with
//!   inheritance and prefixes expanded); without a LinkML schema, or for keys it does not know,
//!   through the shape whose path has the key as local name, and failing that the shape whose
//!   `sh:description` equals the key's JSON Schema description (LinkML generates both from the
//!   same slot); unknown keys stay, under the default namespace, so closed shapes report them;
//! - scalars are typed with the property's `sh:datatype` (or LinkML range), so a malformed value
//!   is an ill-formed literal; a JSON type that cannot carry the datatype keeps its natural type
//!   (`5` under an `xsd:string` property is `xsd:integer`) and fails `sh:datatype`;
//! - arrays are one triple per item, `null` is dropped, a string under a class-ranged property is
//!   a reference (an IRI);
//! - nodes are named by their JSON path (`urn:hex:payload:$.a%5B2%5D`), and every triple
//!   remembers the JSON path of its value, so every result maps back to a path like `$.a[2].b`.
//!
//! The plan (which key is which predicate, per class) is compiled once per catalog load.

use std::collections::{HashMap, HashSet, VecDeque};

use oxrdf::{Graph, Literal, NamedNode, NamedOrBlankNodeRef, Term, TermRef, Triple};
use serde_json::Value;

use super::linkml::{LinkmlSchema, SlotRange};
use super::literal::{self, LexicalCheck};
use super::rdf::{RDF_TYPE, local_name, namespace_of, payload_node_iri, percent_encode_into};
use super::shacl::shapes::ShapesIndex;
use crate::domain::report::child_path;

/// How one JSON key of one class becomes triples.
#[derive(Debug, Clone)]
struct PropertyPlan {
    predicate: NamedNode,
    /// The LinkML-native predicate (default prefix + slot name), which `gen-owl` uses.
    native_predicate: Option<NamedNode>,
    datatype: Option<NamedNode>,
    /// The plan of nested objects (the property's class), if the property is class-ranged.
    nested: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct ClassPlan {
    class_iri: Option<NamedNode>,
    /// The LinkML-native class IRI (default prefix + class name), which `gen-owl` uses.
    native_class_iri: Option<NamedNode>,
    keys: HashMap<String, PropertyPlan>,
    /// predicate IRI (shape or native) -> JSON key, to name a missing value in a report.
    key_by_predicate: HashMap<String, String>,
}

/// Which IRIs a mapped payload uses: the shapes' (`class_uri`, `slot_uri`, as `gen-shacl` and
/// LinkML's RDF dumper use) or LinkML's native ones (as `gen-owl` uses by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    Shapes,
    Native,
}

/// Everything needed to map payloads of one model version, compiled once.
#[derive(Debug, Clone)]
pub struct MappingPlan {
    /// Index 0 is the target class.
    classes: Vec<ClassPlan>,
    /// For objects whose class is not known (under an unknown key, or a literal-valued property).
    untyped: ClassPlan,
    default_namespace: String,
    /// The LinkML prefixes, for expanding references given as CURIEs (the plan keeps only these,
    /// not the whole schema, which is megabytes for re-indicators).
    prefixes: HashMap<String, String>,
}

/// One JSON key of a class while the plan is built.
struct KeyEntry<'a> {
    key: String,
    predicate: String,
    native_predicate: Option<String>,
    datatype: Option<String>,
    /// The class of nested objects, its LinkML name and its JSON Schema definition.
    nested_iri: Option<String>,
    nested_linkml: Option<String>,
    nested_def: Option<&'a Value>,
}

/// What the plan is built from.
pub struct PlanSources<'a> {
    pub target_class: &'a str,
    pub linkml: Option<&'a std::sync::Arc<LinkmlSchema>>,
    pub shapes: Option<&'a ShapesIndex>,
    pub json_schema: Option<&'a Value>,
}

impl MappingPlan {
    pub fn build(sources: &PlanSources<'_>) -> Self {
        let linkml = sources.linkml.map(|l| l.as_ref());
        let root_iri = class_iri_for_name(sources, sources.target_class);
        let default_namespace = linkml
            .map(|l| l.default_namespace.clone())
            .unwrap_or_else(|| namespace_of(&root_iri).to_string());

        let mut classes: Vec<ClassPlan> = Vec::new();
        // Two LinkML classes may share one class_uri (usage-and-maintenance maps MaintenanceHistory
        // and RepairHistory both to prov:Activity), so a plan is per (IRI, LinkML class).
        let mut index_by_iri: HashMap<(String, Option<String>), usize> = HashMap::new();
        let root_linkml = linkml
            .filter(|l| l.has_class(sources.target_class))
            .map(|_| sources.target_class.to_string());
        let root_def = sources.json_schema.and_then(|s| json_def(s, sources.target_class));
        let mut queue: VecDeque<(String, Option<String>, Option<&Value>)> = VecDeque::new();
        index_by_iri.insert((root_iri.clone(), root_linkml.clone()), 0);
        queue.push_back((root_iri, root_linkml, root_def));
        classes.push(ClassPlan::default());

        while let Some((iri, linkml_class, def)) = queue.pop_front() {
            let index = index_by_iri[&(iri.clone(), linkml_class.clone())];
            let native_class_iri = match (linkml, linkml_class.as_deref()) {
                (Some(schema), Some(class)) => NamedNode::new(schema.native_class_iri(class)).ok(),
                _ => None,
            };
            let mut plan = ClassPlan {
                class_iri: NamedNode::new(&iri).ok(),
                native_class_iri,
                ..ClassPlan::default()
            };
            let mut entries: Vec<KeyEntry<'_>> = Vec::new();
            let shape_properties = sources.shapes.map(|s| s.properties(&iri)).unwrap_or(&[]);
            let mut matched_paths: HashSet<&str> = HashSet::new();

            if let (Some(schema), Some(class)) = (linkml, linkml_class.as_deref()) {
                for slot in schema.induced_slots(class) {
                    let shape = shape_properties.iter().find(|p| p.path == slot.predicate);
                    if let Some(shape) = shape {
                        matched_paths.insert(shape.path.as_str());
                    }
                    let (datatype, nested_iri, nested_linkml) = match &slot.range {
                        SlotRange::Class(c) => (None, schema.class_iri(c), Some(c.clone())),
                        SlotRange::Enum => (None, None, None),
                        SlotRange::Datatype(d) => (Some(d.clone()), None, None),
                    };
                    let nested_iri = shape.and_then(|s| s.class.clone()).or(nested_iri);
                    let nested_linkml = nested_linkml.or_else(|| {
                        nested_iri
                            .as_deref()
                            .and_then(|i| schema.class_by_iri(i).map(str::to_string))
                    });
                    let datatype = shape.and_then(|s| s.datatype.clone()).or(datatype);
                    let nested_def = def.and_then(|d| property_def(sources.json_schema, d, &slot.key));
                    entries.push(KeyEntry {
                        native_predicate: Some(schema.native_slot_iri(&slot.name)),
                        key: slot.key,
                        predicate: slot.predicate,
                        datatype,
                        nested_iri,
                        nested_linkml,
                        nested_def,
                    });
                }
            }

            let taken: HashSet<String> = entries.iter().map(|e| e.key.clone()).collect();
            let mut taken = taken;
            // Fallback 1: a shape path whose local name is the key.
            for shape in shape_properties {
                if matched_paths.contains(shape.path.as_str()) {
                    continue;
                }
                let key = local_name(&shape.path).to_string();
                let json_knows_key = def.is_none_or(|d| d.pointer(&format!("/properties/{key}")).is_some());
                if taken.contains(&key) || !json_knows_key {
                    continue;
                }
                matched_paths.insert(shape.path.as_str());
                taken.insert(key.clone());
                let nested_def = def.and_then(|d| property_def(sources.json_schema, d, &key));
                let nested_linkml = shape
                    .class
                    .as_deref()
                    .and_then(|c| linkml.and_then(|l| l.class_by_iri(c)).map(str::to_string));
                entries.push(KeyEntry {
                    native_predicate: None,
                    key,
                    predicate: shape.path.clone(),
                    datatype: shape.datatype.clone(),
                    nested_iri: shape.class.clone(),
                    nested_linkml,
                    nested_def,
                });
            }
            // Fallback 2: the JSON Schema property and the shape share their description.
            if let Some(properties) = def.and_then(|d| d.get("properties")).and_then(Value::as_object) {
                for (key, property) in properties {
                    if taken.contains(key) {
                        continue;
                    }
                    let Some(description) = property.get("description").and_then(Value::as_str) else {
                        continue;
                    };
                    let mut candidates = shape_properties.iter().filter(|s| {
                        !matched_paths.contains(s.path.as_str()) && s.description.as_deref() == Some(description)
                    });
                    let (Some(shape), None) = (candidates.next(), candidates.next()) else {
                        continue;
                    };
                    matched_paths.insert(shape.path.as_str());
                    taken.insert(key.clone());
                    let nested_linkml = shape
                        .class
                        .as_deref()
                        .and_then(|c| linkml.and_then(|l| l.class_by_iri(c)).map(str::to_string));
                    entries.push(KeyEntry {
                        native_predicate: None,
                        key: key.clone(),
                        predicate: shape.path.clone(),
                        datatype: shape.datatype.clone(),
                        nested_iri: shape.class.clone(),
                        nested_linkml,
                        nested_def: property_def(sources.json_schema, def.expect("has properties"), key),
                    });
                }
            }

            for KeyEntry {
                key,
                predicate,
                native_predicate,
                datatype,
                nested_iri,
                nested_linkml,
                nested_def,
            } in entries
            {
                let Ok(predicate) = NamedNode::new(predicate) else {
                    continue;
                };
                let nested = nested_iri.map(|nested_iri| {
                    let id = (nested_iri, nested_linkml);
                    match index_by_iri.get(&id) {
                        Some(i) => *i,
                        None => {
                            let i = classes.len();
                            classes.push(ClassPlan::default());
                            index_by_iri.insert(id.clone(), i);
                            queue.push_back((id.0, id.1, nested_def));
                            i
                        }
                    }
                });
                let native_predicate = native_predicate.and_then(|p| NamedNode::new(p).ok());
                for iri in std::iter::once(&predicate).chain(native_predicate.as_ref()) {
                    plan.key_by_predicate
                        .entry(iri.as_str().to_string())
                        .or_insert_with(|| key.clone());
                }
                plan.keys.insert(
                    key,
                    PropertyPlan {
                        predicate,
                        native_predicate,
                        datatype: datatype.and_then(|d| NamedNode::new(d).ok()),
                        nested,
                    },
                );
            }
            classes[index] = plan;
        }

        Self {
            classes,
            untyped: ClassPlan::default(),
            default_namespace,
            prefixes: linkml.map(LinkmlSchema::prefixes).unwrap_or_default(),
        }
    }

    /// Every class a mapped payload can be typed with (for pruning shapes).
    pub fn class_iris(&self) -> HashSet<String> {
        self.classes
            .iter()
            .filter_map(|c| c.class_iri.as_ref().map(|n| n.as_str().to_string()))
            .collect()
    }

    pub fn root_class_iri(&self) -> Option<&str> {
        self.classes[0].class_iri.as_ref().map(NamedNode::as_str)
    }

    /// The LinkML-native IRI of the target class, when there is a LinkML schema.
    pub fn root_native_class_iri(&self) -> Option<&str> {
        self.classes[0].native_class_iri.as_ref().map(NamedNode::as_str)
    }

    /// Every native class IRI a mapped payload can be typed with.
    pub fn native_class_iris(&self) -> HashSet<String> {
        self.classes
            .iter()
            .filter_map(|c| c.native_class_iri.as_ref().or(c.class_iri.as_ref()))
            .map(|n| n.as_str().to_string())
            .collect()
    }

    /// Maps a payload with the shapes' vocabulary. Lexical errors found on the way are returned
    /// with the graph.
    pub fn map(&self, payload: &Value) -> MappedPayload {
        self.map_with(payload, Vocabulary::Shapes)
    }

    pub fn map_with(&self, payload: &Value, vocabulary: Vocabulary) -> MappedPayload {
        let mut mapped = MappedPayload {
            graph: Graph::new(),
            nodes: HashMap::new(),
            value_paths: Vec::new(),
            lexical_errors: Vec::new(),
            vocabulary,
        };
        let root = NamedNode::new_unchecked(payload_node_iri("$"));
        if let Value::Object(_) = payload {
            self.map_object(payload, root, "$".to_string(), Some(0), &mut mapped);
        }
        mapped
    }

    fn plan(&self, index: Option<usize>) -> &ClassPlan {
        index.map(|i| &self.classes[i]).unwrap_or(&self.untyped)
    }

    fn map_object(
        &self,
        object: &Value,
        node: NamedNode,
        path: String,
        plan_index: Option<usize>,
        out: &mut MappedPayload,
    ) {
        let plan = self.plan(plan_index);
        let class = match out.vocabulary {
            Vocabulary::Shapes => plan.class_iri.as_ref(),
            Vocabulary::Native => plan.native_class_iri.as_ref().or(plan.class_iri.as_ref()),
        };
        if let Some(class) = class {
            out.graph.insert(&Triple::new(node.clone(), RDF_TYPE, class.clone()));
        }
        out.nodes.insert(node.as_str().to_string(), (path.clone(), plan_index));
        let Value::Object(map) = object else { return };
        for (key, value) in map {
            let key_path = child_path(&path, key);
            let (predicate, datatype, nested) = match plan.keys.get(key) {
                Some(p) if out.vocabulary == Vocabulary::Native && p.native_predicate.is_some() => (
                    p.native_predicate.clone().expect("checked"),
                    p.datatype.as_ref(),
                    p.nested,
                ),
                Some(p) => (p.predicate.clone(), p.datatype.as_ref(), p.nested),
                None => (self.unknown_key_predicate(key), None, None),
            };
            let target = ValueTarget {
                subject: &node,
                key,
                predicate: &predicate,
                datatype,
                nested,
            };
            match value {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.map_value(item, &target, format!("{key_path}[{i}]"), out);
                    }
                }
                _ => self.map_value(value, &target, key_path, out),
            }
        }
    }

    fn map_value(&self, value: &Value, target: &ValueTarget<'_>, path: String, out: &mut MappedPayload) {
        let ValueTarget {
            subject,
            predicate,
            datatype,
            nested,
            ..
        } = *target;
        let object: Term = match value {
            Value::Null => return,
            Value::Object(_) => {
                let child = NamedNode::new_unchecked(payload_node_iri(&path));
                let triple = Triple::new(subject.clone(), predicate.clone(), child.clone());
                out.graph.insert(&triple);
                out.value_paths.push(ValuePath {
                    triple,
                    path: path.clone(),
                    key: target.key.to_string(),
                });
                // A nested object where a literal is expected still becomes a node (untyped), so
                // `sh:datatype` / `sh:nodeKind` report it and its own keys are not lost.
                self.map_object(value, child, path, nested, out);
                return;
            }
            // Nested arrays are not JSON-LD/LinkML data; each inner item is mapped under the key.
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.map_value(item, target, format!("{path}[{i}]"), out);
                }
                return;
            }
            Value::String(s) if nested.is_some() => match self.reference_iri(s) {
                Some(iri) => Term::NamedNode(iri),
                None => Term::Literal(Literal::new_simple_literal(s)),
            },
            scalar => {
                let (literal, problem) = literal::to_literal(scalar, datatype);
                if let Some(LexicalCheck::Malformed(message)) = problem {
                    out.lexical_errors.push(LexicalError {
                        path: path.clone(),
                        focus: subject.clone(),
                        predicate: predicate.clone(),
                        datatype: datatype.cloned(),
                        message,
                    });
                }
                Term::Literal(literal)
            }
        };
        let triple = Triple::new(subject.clone(), predicate.clone(), object);
        out.graph.insert(&triple);
        out.value_paths.push(ValuePath {
            triple,
            path,
            key: target.key.to_string(),
        });
    }

    fn unknown_key_predicate(&self, key: &str) -> NamedNode {
        let mut iri = self.default_namespace.clone();
        percent_encode_into(&mut iri, key);
        NamedNode::new(&iri).unwrap_or_else(|_| NamedNode::new_unchecked(payload_node_iri("unknown-key")))
    }

    /// A reference to another object: an absolute IRI, a CURIE with a known prefix, or an
    /// identifier in the default namespace.
    fn reference_iri(&self, value: &str) -> Option<NamedNode> {
        if value.contains("://")
            && let Ok(iri) = NamedNode::new(value)
        {
            return Some(iri);
        }
        if let Some((prefix, local)) = value.split_once(':')
            && let Some(namespace) = self.prefixes.get(prefix)
            && let Ok(iri) = NamedNode::new(format!("{namespace}{local}"))
        {
            return Some(iri);
        }
        let mut iri = self.default_namespace.clone();
        percent_encode_into(&mut iri, value);
        NamedNode::new(iri).ok()
    }
}

/// Where a JSON value lands: the triple's subject and predicate, and how to type it.
#[derive(Clone, Copy)]
struct ValueTarget<'a> {
    subject: &'a NamedNode,
    key: &'a str,
    predicate: &'a NamedNode,
    datatype: Option<&'a NamedNode>,
    nested: Option<usize>,
}

/// A triple whose object is a value of the payload, with the JSON path and key of that value.
struct ValuePath {
    triple: Triple,
    path: String,
    key: String,
}

/// A value whose lexical form is not valid for its datatype and which the SHACL engine does not
/// check itself.
#[derive(Debug, Clone)]
pub struct LexicalError {
    pub path: String,
    pub focus: NamedNode,
    pub predicate: NamedNode,
    pub datatype: Option<NamedNode>,
    pub message: String,
}

/// A payload as a graph, with what it takes to name every result by JSON path.
pub struct MappedPayload {
    pub graph: Graph,
    /// node IRI -> (JSON path, class plan index).
    nodes: HashMap<String, (String, Option<usize>)>,
    value_paths: Vec<ValuePath>,
    pub lexical_errors: Vec<LexicalError>,
    vocabulary: Vocabulary,
}

impl MappedPayload {
    /// The JSON path of a node, if it is a payload node.
    pub fn node_path(&self, node: TermRef<'_>) -> Option<&str> {
        match node {
            TermRef::NamedNode(n) => self.nodes.get(n.as_str()).map(|(p, _)| p.as_str()),
            _ => None,
        }
    }

    /// The JSON path a result points at: the value when it is a payload node or a payload value,
    /// else the key of `predicate` under the focus node (a missing or surplus value), else the
    /// focus node itself.
    pub fn result_path(
        &self,
        plan: &MappingPlan,
        focus: TermRef<'_>,
        predicate: Option<&str>,
        value: Option<TermRef<'_>>,
    ) -> String {
        if let Some(value) = value {
            if let Some(path) = self.node_path(value).filter(|_| predicate.is_some()) {
                return path.to_string();
            }
            if let (Some(predicate), NamedOrBlankOrNot::Named(focus_iri)) = (predicate, as_named(focus)) {
                let found = self.value_paths.iter().find(|v| {
                    v.triple.predicate.as_str() == predicate
                        && v.triple.object.as_ref() == value
                        && subject_is(&v.triple, focus_iri)
                });
                if let Some(found) = found {
                    return found.path.clone();
                }
            }
        }
        let (focus_path, plan_index) = match as_named(focus) {
            NamedOrBlankOrNot::Named(iri) => match self.nodes.get(iri) {
                Some((path, plan_index)) => (path.as_str(), *plan_index),
                None => return "$".to_string(),
            },
            NamedOrBlankOrNot::Other => return "$".to_string(),
        };
        match predicate {
            Some(predicate) => {
                let key = plan
                    .plan(plan_index)
                    .key_by_predicate
                    .get(predicate)
                    .cloned()
                    .or_else(|| self.key_used_for(focus, predicate))
                    .unwrap_or_else(|| local_name(predicate).to_string());
                child_path(focus_path, &key)
            }
            None => focus_path.to_string(),
        }
    }

    /// Whether the schema (shapes, LinkML) maps `predicate` of `focus`'s class to literal values,
    /// as LinkML does for enum-valued slots its OWL output declares as object properties.
    pub fn schema_expects_literal(&self, plan: &MappingPlan, focus: TermRef<'_>, predicate: &str) -> bool {
        let NamedOrBlankOrNot::Named(iri) = as_named(focus) else {
            return false;
        };
        let Some((_, plan_index)) = self.nodes.get(iri) else {
            return false;
        };
        plan.plan(*plan_index).keys.values().any(|p| {
            let native = p.native_predicate.as_ref().map(NamedNode::as_str);
            (p.predicate.as_str() == predicate || native == Some(predicate)) && p.nested.is_none()
        })
    }

    /// The key under which `predicate` appeared for `focus` (for keys outside the plan).
    fn key_used_for(&self, focus: TermRef<'_>, predicate: &str) -> Option<String> {
        let NamedOrBlankOrNot::Named(focus_iri) = as_named(focus) else {
            return None;
        };
        self.value_paths
            .iter()
            .find(|v| v.triple.predicate.as_str() == predicate && subject_is(&v.triple, focus_iri))
            .map(|v| v.key.clone())
    }
}

enum NamedOrBlankOrNot<'a> {
    Named(&'a str),
    Other,
}

fn as_named<'a>(term: TermRef<'a>) -> NamedOrBlankOrNot<'a> {
    match term {
        TermRef::NamedNode(n) => NamedOrBlankOrNot::Named(n.as_str()),
        _ => NamedOrBlankOrNot::Other,
    }
}

fn subject_is(triple: &Triple, iri: &str) -> bool {
    matches!(triple.subject.as_ref(), NamedOrBlankNodeRef::NamedNode(n) if n.as_str() == iri)
}

/// The class IRI of a class name: LinkML's, else a shape target class with that local name, else
/// the JSON Schema `$id` namespace + name.
pub fn class_iri_for_name(sources: &PlanSources<'_>, name: &str) -> String {
    if let Some(iri) = sources.linkml.and_then(|l| l.class_iri(name)) {
        return iri;
    }
    if let Some(shapes) = sources.shapes {
        let mut matching = shapes.target_classes().filter(|c| local_name(c) == name);
        if let (Some(one), None) = (matching.next(), matching.next()) {
            return one.to_string();
        }
    }
    let namespace = sources
        .json_schema
        .and_then(|s| s.get("$id"))
        .and_then(Value::as_str)
        .map(|id| {
            if id.ends_with(['/', '#']) {
                id.to_string()
            } else {
                format!("{id}/")
            }
        })
        .unwrap_or_else(|| "urn:hex:class:".to_string());
    let mut iri = namespace;
    percent_encode_into(&mut iri, name);
    iri
}

/// `$defs/<name>` (or `definitions/<name>`) of a JSON Schema.
pub fn json_def<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    ["$defs", "definitions"]
        .iter()
        .find_map(|k| schema.get(*k).and_then(|d| d.get(name)))
}

/// The definition that values of `key` in `def` follow, through `$ref`, `anyOf`/`oneOf` and
/// `items`.
fn property_def<'a>(schema: Option<&'a Value>, def: &'a Value, key: &str) -> Option<&'a Value> {
    let property = def.get("properties")?.get(key)?;
    resolve_object_def(schema?, property, 0)
}

fn resolve_object_def<'a>(schema: &'a Value, node: &'a Value, depth: usize) -> Option<&'a Value> {
    if depth > 8 {
        return None;
    }
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#')?;
        return schema.pointer(pointer);
    }
    if let Some(items) = node.get("items") {
        return resolve_object_def(schema, items, depth + 1);
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = node.get(combinator).and_then(Value::as_array) {
            return branches.iter().find_map(|b| resolve_object_def(schema, b, depth + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::rdf::parse_turtle;
    use serde_json::json;
    use std::sync::Arc;

    const SHAPES: &str = r#"
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        @prefix ex: <https://ex.org/> .
        @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
        ex:Root sh:targetClass ex:Root ;
            sh:property [ sh:path ex:items ; sh:class ex:Item ] ,
                        [ sh:path ex:made ; sh:datatype xsd:date ] ,
                        [ sh:path <http://purl.org/dc/terms/created> ; sh:datatype xsd:dateTime ;
                          sh:description "When it was created" ] .
        ex:Item sh:targetClass ex:Item ; sh:property [ sh:path ex:n ; sh:datatype xsd:integer ] .
    "#;

    fn plan(linkml: Option<&str>) -> MappingPlan {
        let shapes = ShapesIndex::new(parse_turtle(SHAPES.as_bytes(), "shapes").unwrap());
        let schema = json!({"$defs": {"Root": {"properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "made": {"type": "string"},
            "created_at": {"type": "string", "description": "When it was created"}
        }}, "Item": {"properties": {"n": {"type": "integer"}}}}});
        let linkml = linkml.map(|y| Arc::new(LinkmlSchema::parse(y.as_bytes()).unwrap()));
        MappingPlan::build(&PlanSources {
            target_class: "Root",
            linkml: linkml.as_ref(),
            shapes: Some(&shapes),
            json_schema: Some(&schema),
        })
    }

    #[test]
    fn maps_nested_objects_arrays_and_datatypes_with_json_paths() {
        let plan = plan(None);
        let mapped = plan.map(&json!({
            "items": [{"n": 1}, {"n": "x"}],
            "made": "2025-01-02",
            "created_at": "2025-01-02T00:00:00Z",
            "extra": null,
            "colour": "red"
        }));
        let nt = mapped.graph.to_string();
        assert!(
            nt.contains("<urn:hex:payload:$> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://ex.org/Root>"),
            "{nt}"
        );
        assert!(nt.contains("<urn:hex:payload:$.items%5B1%5D> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://ex.org/Item>"), "{nt}");
        assert!(
            nt.contains("\"2025-01-02\"^^<http://www.w3.org/2001/XMLSchema#date>"),
            "{nt}"
        );
        assert!(
            nt.contains("<http://purl.org/dc/terms/created> \"2025-01-02T00:00:00Z\""),
            "description fallback: {nt}"
        );
        assert!(nt.contains("<https://ex.org/colour> \"red\""), "unknown key kept: {nt}");
        assert!(!nt.contains("extra"), "null dropped: {nt}");

        let item1 = NamedNode::new("urn:hex:payload:$.items%5B1%5D").unwrap();
        let bad = Literal::new_typed_literal("x", NamedNode::new("http://www.w3.org/2001/XMLSchema#integer").unwrap());
        let path = mapped.result_path(
            &plan,
            item1.as_ref().into(),
            Some("https://ex.org/n"),
            Some(bad.as_ref().into()),
        );
        assert_eq!(path, "$.items[1].n");
        let missing = mapped.result_path(&plan, item1.as_ref().into(), Some("https://ex.org/n"), None);
        assert_eq!(missing, "$.items[1].n");
        let root = NamedNode::new("urn:hex:payload:$").unwrap();
        let missing_created = mapped.result_path(
            &plan,
            root.as_ref().into(),
            Some("http://purl.org/dc/terms/created"),
            None,
        );
        assert_eq!(missing_created, "$.created_at");
        let unknown = mapped.result_path(&plan, root.as_ref().into(), Some("https://ex.org/colour"), None);
        assert_eq!(unknown, "$.colour");
    }

    #[test]
    fn linkml_slot_uris_win_over_local_names() {
        let plan = plan(Some(
            "id: https://ex.org\nprefixes: {ex: 'https://ex.org/', dct: 'http://purl.org/dc/terms/'}\ndefault_prefix: ex\n\
             classes:\n  Root:\n    attributes:\n      made: {range: date, slot_uri: ex:made}\n      created_at: {slot_uri: dct:created, range: datetime}\n",
        ));
        let mapped = plan.map(&json!({"created_at": "2025-01-02T00:00:00Z", "made": "2025-01-02"}));
        let nt = mapped.graph.to_string();
        assert!(nt.contains("<http://purl.org/dc/terms/created> \"2025-01-02T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime>"), "{nt}");
    }

    #[test]
    fn strings_under_class_ranged_properties_are_references() {
        let plan = plan(None);
        let mapped = plan.map(&json!({"items": ["item-7", "https://other.example/x"]}));
        let nt = mapped.graph.to_string();
        assert!(nt.contains("<https://ex.org/items> <https://ex.org/item-7>"), "{nt}");
        assert!(nt.contains("<https://ex.org/items> <https://other.example/x>"), "{nt}");
    }
}
