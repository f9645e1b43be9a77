//! The parts of a LinkML `schema.yaml` that JSON-to-RDF mapping needs: prefixes, class URIs, the
//! induced slots of each class (inheritance, mixins, attributes, `slot_usage`), slot URIs, aliases
//! and ranges, and `tree_root`.
//!
//! This is not a LinkML implementation; it reads what `gen-shacl` and `gen-owl` also read to turn
//! a JSON key into a predicate, so the payload graph uses the same IRIs as the published shapes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_yaml::Value as Yaml;

/// The XSD datatype of each LinkML built-in type (`linkml:types`).
const BUILTIN_TYPES: &[(&str, &str)] = &[
    ("string", "http://www.w3.org/2001/XMLSchema#string"),
    ("integer", "http://www.w3.org/2001/XMLSchema#integer"),
    ("boolean", "http://www.w3.org/2001/XMLSchema#boolean"),
    ("float", "http://www.w3.org/2001/XMLSchema#float"),
    ("double", "http://www.w3.org/2001/XMLSchema#double"),
    ("decimal", "http://www.w3.org/2001/XMLSchema#decimal"),
    ("time", "http://www.w3.org/2001/XMLSchema#time"),
    ("date", "http://www.w3.org/2001/XMLSchema#date"),
    ("datetime", "http://www.w3.org/2001/XMLSchema#dateTime"),
    ("uri", "http://www.w3.org/2001/XMLSchema#anyURI"),
    ("uriorcurie", "http://www.w3.org/2001/XMLSchema#anyURI"),
    ("curie", "http://www.w3.org/2001/XMLSchema#string"),
    ("ncname", "http://www.w3.org/2001/XMLSchema#string"),
    ("jsonpointer", "http://www.w3.org/2001/XMLSchema#string"),
    ("jsonpath", "http://www.w3.org/2001/XMLSchema#string"),
    ("sparqlpath", "http://www.w3.org/2001/XMLSchema#string"),
];

/// Prefixes LinkML resolves without a declaration.
const WELL_KNOWN_PREFIXES: &[(&str, &str)] = &[
    ("linkml", "https://w3id.org/linkml/"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("schema", "http://schema.org/"),
    ("dcterms", "http://purl.org/dc/terms/"),
    ("shex", "http://www.w3.org/ns/shex#"),
];

#[derive(Debug, Clone, Default)]
struct SlotDef {
    slot_uri: Option<String>,
    alias: Option<String>,
    range: Option<String>,
    is_a: Option<String>,
    mixins: Vec<String>,
}

impl SlotDef {
    fn from_yaml(value: &Yaml) -> Self {
        Self {
            slot_uri: str_field(value, "slot_uri"),
            alias: str_field(value, "alias"),
            range: str_field(value, "range"),
            is_a: str_field(value, "is_a"),
            mixins: list_field(value, "mixins"),
        }
    }

    /// Fills every field still unset from `other` (a more general definition).
    fn inherit(&mut self, other: &SlotDef) {
        if self.slot_uri.is_none() {
            self.slot_uri = other.slot_uri.clone();
        }
        if self.alias.is_none() {
            self.alias = other.alias.clone();
        }
        if self.range.is_none() {
            self.range = other.range.clone();
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ClassDef {
    class_uri: Option<String>,
    is_a: Option<String>,
    mixins: Vec<String>,
    slots: Vec<String>,
    attributes: Vec<(String, SlotDef)>,
    slot_usage: BTreeMap<String, SlotDef>,
    tree_root: bool,
    /// `abstract: true` or `mixin: true`: never the class of a record.
    not_instantiable: bool,
}

/// What a slot's values are: a class (nested objects or references), an enum or a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRange {
    Class(String),
    Enum,
    /// The XSD (or other) datatype IRI of a LinkML type.
    Datatype(String),
}

/// One slot of a class as the JSON payload sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InducedSlot {
    /// The JSON key: the alias when one is declared, else the slot name.
    pub key: String,
    pub name: String,
    /// The predicate IRI (`slot_uri` expanded, or the default prefix + slot name).
    pub predicate: String,
    pub range: SlotRange,
}

#[derive(Debug, Clone)]
pub struct LinkmlSchema {
    prefixes: HashMap<String, String>,
    /// The namespace of every name without an explicit URI.
    pub default_namespace: String,
    classes: BTreeMap<String, ClassDef>,
    slots: BTreeMap<String, SlotDef>,
    enums: HashSet<String>,
    /// Schema-declared types: name -> (uri, typeof).
    types: HashMap<String, (Option<String>, Option<String>)>,
    default_range: Option<String>,
    /// class IRI -> class name, for finding the LinkML class of a shape's `sh:class`.
    names_by_iri: HashMap<String, String>,
}

impl LinkmlSchema {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let root: Yaml = serde_yaml::from_slice(bytes).map_err(|e| format!("not valid YAML: {e}"))?;
        if !root.is_mapping() {
            return Err("not a LinkML schema: the document is not a mapping".into());
        }
        let mut prefixes: HashMap<String, String> = WELL_KNOWN_PREFIXES
            .iter()
            .map(|(p, iri)| (p.to_string(), iri.to_string()))
            .collect();
        if let Some(map) = root.get("prefixes").and_then(Yaml::as_mapping) {
            for (name, value) in map {
                let Some(name) = name.as_str() else { continue };
                // Either `p: iri` or the expanded form `p: {prefix_prefix, prefix_reference}`.
                let reference = value
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| str_field(value, "prefix_reference"));
                if let Some(reference) = reference {
                    prefixes.insert(name.to_string(), reference);
                }
            }
        }
        let schema_id = str_field(&root, "id");
        let default_namespace = match str_field(&root, "default_prefix") {
            Some(p) if prefixes.contains_key(&p) => prefixes[&p].clone(),
            Some(p) if p.contains("://") => p,
            _ => schema_id
                .map(|id| if id.ends_with(['/', '#']) { id } else { format!("{id}/") })
                .unwrap_or_else(|| "urn:hex:default:".to_string()),
        };

        let classes = mapping_entries(&root, "classes")
            .map(|(name, value)| {
                let attributes = mapping_entries(value, "attributes")
                    .map(|(slot, def)| (slot.to_string(), SlotDef::from_yaml(def)))
                    .collect();
                let slot_usage = mapping_entries(value, "slot_usage")
                    .map(|(slot, def)| (slot.to_string(), SlotDef::from_yaml(def)))
                    .collect();
                let class = ClassDef {
                    class_uri: str_field(value, "class_uri"),
                    is_a: str_field(value, "is_a"),
                    mixins: list_field(value, "mixins"),
                    slots: list_field(value, "slots"),
                    attributes,
                    slot_usage,
                    tree_root: value.get("tree_root").and_then(Yaml::as_bool).unwrap_or(false),
                    not_instantiable: ["abstract", "mixin"]
                        .iter()
                        .any(|flag| value.get(*flag).and_then(Yaml::as_bool).unwrap_or(false)),
                };
                (name.to_string(), class)
            })
            .collect();
        let slots = mapping_entries(&root, "slots")
            .map(|(name, value)| (name.to_string(), SlotDef::from_yaml(value)))
            .collect();
        let enums = mapping_entries(&root, "enums")
            .map(|(name, _)| name.to_string())
            .collect();
        let types = mapping_entries(&root, "types")
            .map(|(name, value)| (name.to_string(), (str_field(value, "uri"), str_field(value, "typeof"))))
            .collect();
        let mut schema = Self {
            prefixes,
            default_namespace,
            classes,
            slots,
            enums,
            types,
            default_range: str_field(&root, "default_range"),
            names_by_iri: HashMap::new(),
        };
        schema.names_by_iri = schema
            .classes
            .keys()
            .filter_map(|name| Some((schema.class_iri(name)?, name.clone())))
            .collect();
        Ok(schema)
    }

    /// Expands a CURIE (`schema:url`) or keeps an absolute IRI; `None` when neither.
    pub fn expand(&self, curie_or_iri: &str) -> Option<String> {
        if let Some((prefix, local)) = curie_or_iri.split_once(':') {
            if let Some(ns) = self.prefixes.get(prefix) {
                return Some(format!("{ns}{local}"));
            }
            if local.starts_with("//") {
                return Some(curie_or_iri.to_string());
            }
        }
        None
    }

    /// The declared (and well-known) prefixes.
    pub fn prefixes(&self) -> HashMap<String, String> {
        self.prefixes.clone()
    }

    pub fn has_class(&self, name: &str) -> bool {
        self.classes.contains_key(name)
    }

    pub fn class_names(&self) -> impl Iterator<Item = &str> {
        self.classes.keys().map(String::as_str)
    }

    /// Whether records can be of this class (it exists and is neither abstract nor a mixin).
    pub fn is_instantiable(&self, name: &str) -> bool {
        self.classes.get(name).is_some_and(|c| !c.not_instantiable)
    }

    /// The classes marked `tree_root: true`.
    pub fn tree_roots(&self) -> Vec<&str> {
        self.classes
            .iter()
            .filter(|(_, c)| c.tree_root)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The class IRI: `class_uri` expanded, else the default namespace + name.
    pub fn class_iri(&self, name: &str) -> Option<String> {
        let class = self.classes.get(name)?;
        Some(
            class
                .class_uri
                .as_deref()
                .and_then(|u| self.expand(u))
                .unwrap_or_else(|| format!("{}{}", self.default_namespace, name.replace(' ', "_"))),
        )
    }

    /// The IRI `gen-owl` gives a class by default (native URIs): default prefix + name.
    pub fn native_class_iri(&self, name: &str) -> String {
        format!("{}{}", self.default_namespace, name.replace(' ', "_"))
    }

    /// The IRI `gen-owl` gives a slot by default (native URIs): default prefix + name.
    pub fn native_slot_iri(&self, name: &str) -> String {
        format!("{}{}", self.default_namespace, name.replace(' ', "_"))
    }

    /// The LinkML class whose IRI is `iri`.
    pub fn class_by_iri(&self, iri: &str) -> Option<&str> {
        self.names_by_iri.get(iri).map(String::as_str)
    }

    /// Ancestors first-to-last: the class itself, then `is_a` parents and mixins, depth first.
    fn lineage(&self, name: &str) -> Vec<&str> {
        let mut order = Vec::new();
        let mut stack = vec![name];
        while let Some(current) = stack.pop() {
            if order.contains(&current) {
                continue;
            }
            let Some((key, class)) = self.classes.get_key_value(current) else {
                continue;
            };
            order.push(key.as_str());
            for mixin in class.mixins.iter().rev() {
                stack.push(mixin);
            }
            if let Some(parent) = &class.is_a {
                stack.push(parent);
            }
        }
        order
    }

    /// The slots of a class with inheritance applied: own slots and attributes, then those of every
    /// ancestor; `slot_usage` of the nearest class wins, then the slot's own definition and its
    /// `is_a` chain.
    pub fn induced_slots(&self, class: &str) -> Vec<InducedSlot> {
        let lineage = self.lineage(class);
        let mut names: Vec<String> = Vec::new();
        let mut attribute_defs: HashMap<String, SlotDef> = HashMap::new();
        for ancestor in &lineage {
            let def = &self.classes[*ancestor];
            for slot in &def.slots {
                if !names.contains(slot) {
                    names.push(slot.clone());
                }
            }
            for (slot, attribute) in &def.attributes {
                if !names.contains(slot) {
                    names.push(slot.clone());
                }
                attribute_defs.entry(slot.clone()).or_insert_with(|| attribute.clone());
            }
        }
        names
            .into_iter()
            .map(|name| {
                let mut def = SlotDef::default();
                for ancestor in &lineage {
                    if let Some(usage) = self.classes[*ancestor].slot_usage.get(&name) {
                        def.inherit(usage);
                    }
                }
                if let Some(attribute) = attribute_defs.get(&name) {
                    def.inherit(attribute);
                }
                self.inherit_global_slot(&mut def, &name);
                self.induced(name, def)
            })
            .collect()
    }

    fn inherit_global_slot(&self, def: &mut SlotDef, name: &str) {
        let mut seen = HashSet::new();
        let mut next = Some(name.to_string());
        while let Some(current) = next.take() {
            if !seen.insert(current.clone()) {
                break;
            }
            if let Some(global) = self.slots.get(&current) {
                def.inherit(global);
                for mixin in &global.mixins {
                    if let Some(m) = self.slots.get(mixin) {
                        def.inherit(m);
                    }
                }
                next = global.is_a.clone();
            }
        }
    }

    fn induced(&self, name: String, def: SlotDef) -> InducedSlot {
        let predicate = def
            .slot_uri
            .as_deref()
            .and_then(|u| self.expand(u))
            .unwrap_or_else(|| format!("{}{}", self.default_namespace, name.replace(' ', "_")));
        let range_name = def.range.or_else(|| self.default_range.clone());
        let range = match range_name {
            Some(r) if self.classes.contains_key(&r) => SlotRange::Class(r),
            Some(r) if self.enums.contains(&r) => SlotRange::Enum,
            Some(r) => SlotRange::Datatype(self.type_iri(&r)),
            None => SlotRange::Datatype(BUILTIN_TYPES[0].1.to_string()),
        };
        InducedSlot {
            key: def.alias.unwrap_or_else(|| name.clone()),
            name,
            predicate,
            range,
        }
    }

    /// The datatype IRI of a type name: built-in, or a schema type's `uri` / `typeof` chain.
    fn type_iri(&self, name: &str) -> String {
        let mut current = name.to_string();
        for _ in 0..16 {
            if let Some((_, iri)) = BUILTIN_TYPES.iter().find(|(n, _)| *n == current) {
                return iri.to_string();
            }
            match self.types.get(&current) {
                Some((Some(uri), _)) => return self.expand(uri).unwrap_or_else(|| uri.clone()),
                Some((None, Some(parent))) => current = parent.clone(),
                _ => break,
            }
        }
        BUILTIN_TYPES[0].1.to_string()
    }
}

fn str_field(value: &Yaml, key: &str) -> Option<String> {
    value.get(key).and_then(Yaml::as_str).map(str::to_string)
}

fn list_field(value: &Yaml, key: &str) -> Vec<String> {
    match value.get(key) {
        Some(Yaml::Sequence(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        Some(Yaml::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn mapping_entries<'a>(value: &'a Yaml, key: &str) -> impl Iterator<Item = (&'a str, &'a Yaml)> {
    value
        .get(key)
        .and_then(Yaml::as_mapping)
        .into_iter()
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
id: https://example.org/m
prefixes:
  ex: https://example.org/m/
  schema: http://schema.org/
  long:
    prefix_prefix: long
    prefix_reference: https://long.example/
default_prefix: ex
classes:
  Thing:
    slots: [id, name]
  Device:
    is_a: Thing
    tree_root: true
    mixins: [Dated]
    attributes:
      url:
        slot_uri: schema:url
      parts:
        range: Part
        multivalued: true
    slot_usage:
      name:
        alias: label
  Dated:
    mixin: true
    slots: [made_on]
  Part:
    class_uri: long:Part
    slots: [name]
slots:
  id:
    identifier: true
  name:
    slot_uri: schema:name
  made_on:
    range: date
"#;

    #[test]
    fn induced_slots_follow_is_a_mixins_attributes_and_slot_usage() {
        let schema = LinkmlSchema::parse(SCHEMA.as_bytes()).unwrap();
        let slots = schema.induced_slots("Device");
        let by_key: HashMap<_, _> = slots.iter().map(|s| (s.key.as_str(), s)).collect();
        assert_eq!(by_key["url"].predicate, "http://schema.org/url");
        assert_eq!(by_key["parts"].range, SlotRange::Class("Part".into()));
        assert_eq!(
            by_key["label"].predicate, "http://schema.org/name",
            "alias from slot_usage"
        );
        assert_eq!(by_key["id"].predicate, "https://example.org/m/id");
        assert_eq!(
            by_key["made_on"].range,
            SlotRange::Datatype("http://www.w3.org/2001/XMLSchema#date".into())
        );
        assert_eq!(schema.class_iri("Part").unwrap(), "https://long.example/Part");
        assert_eq!(schema.class_iri("Device").unwrap(), "https://example.org/m/Device");
        assert_eq!(schema.class_by_iri("https://long.example/Part"), Some("Part"));
        assert_eq!(schema.tree_roots(), vec!["Device"]);
    }

    #[test]
    fn default_prefix_may_be_an_iri() {
        let schema = LinkmlSchema::parse(b"id: x\ndefault_prefix: https://d.example/ns/\nclasses: {A: {}}\n").unwrap();
        assert_eq!(schema.class_iri("A").unwrap(), "https://d.example/ns/A");
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        assert!(LinkmlSchema::parse(b"classes: [unclosed").is_err());
        assert!(LinkmlSchema::parse(b"- a list").is_err());
    }
}
