//! The target class of one payload, inferred from its top-level keys, for model versions whose
//! catalog entry names no `root_class` and whose schema marks no root (the published CE-RISE
//! catalogs; re-indicators has 1 264 classes and no `tree_root`).
//!
//! The rule (docs/validation.md, "Target class"), on the classes a record can be (LinkML classes
//! that are neither abstract nor mixins; the JSON Schema's object definitions) and their keys:
//! 1. keys that no class declares are set aside (they are reported by the validators as unknown);
//! 2. the candidates are the classes that declare every remaining key;
//! 3. exactly one candidate: it is the class; several: the one candidate whose required keys are
//!    all present, if exactly one is; otherwise no class is chosen and the report says why.
//!
//! The validators of an inferred class are exactly those a catalog `root_class` of that class
//! gives: they are compiled from the same artifacts on the first payload of that class (on a
//! validation thread, never the reactor) and kept for the next ones.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::StandardCompiler;
use super::linkml::LinkmlSchema;
use crate::domain::catalog::CatalogEntry;
use crate::ports::{ArtifactSet, ModelCompiler, TargetClass, TargetInference, ValidatorSet};

/// How many classes' validators one model version keeps; payloads of further classes are
/// validated with validators compiled for them alone (correct, slower), so a client sending
/// payloads of many classes cannot grow memory without bound.
pub const MAX_CACHED_CLASSES: usize = 16;

/// The `chosen_by` of an inferred class.
pub const CHOSEN_BY: &str = "payload_keys";

/// One class a record can be: the JSON keys it declares and those it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClassKeys {
    name: String,
    keys: HashSet<String>,
    required: HashSet<String>,
}

/// Every class a record can be, with its keys.
#[derive(Debug, Clone)]
pub struct ClassIndex {
    classes: Vec<ClassKeys>,
    known_keys: HashSet<String>,
}

impl ClassIndex {
    /// From the JSON Schema's object definitions (their `properties` and `required`, which is
    /// what payloads are checked against) when it has any, else from the LinkML classes (their
    /// induced slots; no required information). `None` when neither names a class.
    pub fn build(linkml: Option<&LinkmlSchema>, json_schema: Option<&Value>) -> Option<Self> {
        let instantiable = |name: &str| linkml.is_none_or(|l| !l.has_class(name) || l.is_instantiable(name));
        let mut classes: Vec<ClassKeys> = json_schema
            .and_then(|s| s.get("$defs").or_else(|| s.get("definitions")))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(name, _)| instantiable(name))
            .filter_map(|(name, def)| {
                let keys: HashSet<String> = def.get("properties")?.as_object()?.keys().cloned().collect();
                let required = def
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect();
                Some(ClassKeys {
                    name: name.clone(),
                    keys,
                    required,
                })
            })
            .collect();
        if classes.is_empty()
            && let Some(linkml) = linkml
        {
            classes = linkml
                .class_names()
                .filter(|name| linkml.is_instantiable(name))
                .map(|name| ClassKeys {
                    name: name.to_string(),
                    keys: linkml.induced_slots(name).into_iter().map(|s| s.key).collect(),
                    required: HashSet::new(),
                })
                .collect();
        }
        if classes.is_empty() {
            return None;
        }
        classes.sort_by(|a, b| a.name.cmp(&b.name));
        let known_keys = classes.iter().flat_map(|c| c.keys.iter().cloned()).collect();
        Some(Self { classes, known_keys })
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The class of a payload with these top-level keys, with the reason; or why there is none.
    pub fn choose<'k>(&self, payload_keys: impl IntoIterator<Item = &'k str>) -> Result<(String, String), String> {
        let keys: BTreeSet<&str> = payload_keys.into_iter().collect();
        let (known, unknown): (Vec<&str>, Vec<&str>) = keys.iter().partition(|k| self.known_keys.contains(**k));
        let set_aside = match unknown.as_slice() {
            [] => String::new(),
            some => format!(
                " ({} key(s) no class declares set aside: {})",
                some.len(),
                some.join(", ")
            ),
        };
        if known.is_empty() {
            return Err(if keys.is_empty() {
                "the payload has no top-level key to identify its class by; set root_class in the catalog entry".into()
            } else {
                format!(
                    "no class declares any of the payload's top-level keys{set_aside}; set root_class in the catalog entry"
                )
            });
        }
        let candidates: Vec<&ClassKeys> = self
            .classes
            .iter()
            .filter(|c| known.iter().all(|k| c.keys.contains(*k)))
            .collect();
        match candidates.as_slice() {
            [] => Err(format!(
                "no class declares all of the payload's top-level keys ({}){set_aside}; set root_class in the catalog entry",
                known.join(", ")
            )),
            [one] => Ok((
                one.name.clone(),
                format!(
                    "the only class declaring all {} top-level key(s) of the payload{set_aside}",
                    known.len()
                ),
            )),
            several => {
                let complete: Vec<&&ClassKeys> = several
                    .iter()
                    .filter(|c| c.required.iter().all(|r| keys.contains(r.as_str())))
                    .collect();
                if let [one] = complete.as_slice() {
                    return Ok((
                        one.name.clone(),
                        format!(
                            "of the {} classes declaring all {} top-level key(s) of the payload, the only one whose \
                             required keys are all present{set_aside}",
                            several.len(),
                            known.len()
                        ),
                    ));
                }
                let shown: Vec<&str> = several.iter().take(8).map(|c| c.name.as_str()).collect();
                Err(format!(
                    "{} classes declare all of the payload's top-level keys ({}{}); set root_class in the catalog entry",
                    several.len(),
                    shown.join(", "),
                    if several.len() > shown.len() { ", ..." } else { "" }
                ))
            }
        }
    }
}

type CompiledClass = Result<ValidatorSet, String>;

/// Chooses each payload's class with a [`ClassIndex`] and compiles that class's validators once.
pub struct PayloadClassInference {
    index: ClassIndex,
    entry: CatalogEntry,
    /// The entry's artifacts (the same buffers the registry serves, not copies).
    artifacts: ArtifactSet,
    compiled: Mutex<HashMap<String, Arc<OnceLock<CompiledClass>>>>,
}

impl PayloadClassInference {
    pub fn new(index: ClassIndex, entry: CatalogEntry, artifacts: ArtifactSet) -> Self {
        Self {
            index,
            entry,
            artifacts,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    fn compile(&self, class: &str) -> CompiledClass {
        let entry = CatalogEntry {
            root_class: Some(class.to_string()),
            ..self.entry.clone()
        };
        StandardCompiler
            .compile(&entry, &self.artifacts)
            .map(|compiled| ValidatorSet::from(compiled.validators))
            .map_err(|e| format!("compiling the validators of class {class} failed: {e}"))
    }

    /// The cached validators of `class`, compiling them on first use; each class compiles once
    /// even when payloads of it arrive together.
    fn validators(&self, class: &str) -> CompiledClass {
        let cell = {
            let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            match compiled.get(class) {
                Some(cell) => Some(cell.clone()),
                None if compiled.len() < MAX_CACHED_CLASSES => {
                    let cell = Arc::new(OnceLock::new());
                    compiled.insert(class.to_string(), cell.clone());
                    Some(cell)
                }
                None => None,
            }
        };
        match cell {
            Some(cell) => cell.get_or_init(|| self.compile(class)).clone(),
            None => self.compile(class),
        }
    }
}

impl TargetInference for PayloadClassInference {
    fn validators_for(&self, payload: &Value) -> Result<(TargetClass, ValidatorSet), TargetClass> {
        let keys = payload
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys().map(String::as_str));
        let not_chosen = |detail: String| TargetClass {
            name: None,
            chosen_by: CHOSEN_BY.into(),
            detail: Some(detail),
        };
        let (class, detail) = self.index.choose(keys).map_err(not_chosen)?;
        let validators = self.validators(&class).map_err(not_chosen)?;
        Ok((
            TargetClass {
                name: Some(class),
                chosen_by: CHOSEN_BY.into(),
                detail: Some(detail),
            },
            validators,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> ClassIndex {
        let schema = json!({"$defs": {
            "Assessment": {"type": "object", "properties": {"id": {}, "timestamp": {}, "answers": {}}, "required": ["id"]},
            "Answer": {"type": "object", "properties": {"id": {}, "value": {}}, "required": ["id", "value"]},
            "Note": {"type": "object", "properties": {"id": {}, "value": {}, "text": {}}, "required": ["text"]},
            "Base": {"type": "object", "properties": {"id": {}}},
            "Colour": {"type": "string", "enum": ["red"]}
        }});
        let linkml =
            LinkmlSchema::parse(b"id: x\nclasses: {Base: {abstract: true}, Assessment: {}, Answer: {}, Note: {}}\n")
                .unwrap();
        ClassIndex::build(Some(&linkml), Some(&schema)).unwrap()
    }

    #[test]
    fn the_only_class_declaring_every_key_is_chosen() {
        let (class, detail) = index().choose(["timestamp", "id"]).unwrap();
        assert_eq!(class, "Assessment");
        assert!(detail.contains("only class declaring all 2"), "{detail}");
    }

    #[test]
    fn keys_no_class_declares_are_set_aside() {
        let (class, detail) = index().choose(["timestamp", "colour"]).unwrap();
        assert_eq!(class, "Assessment");
        assert!(detail.contains("set aside: colour"), "{detail}");
    }

    #[test]
    fn required_keys_break_a_tie_between_classes_declaring_every_key() {
        // Answer and Note both declare id and value; only Answer's required keys are present.
        let (class, detail) = index().choose(["id", "value"]).unwrap();
        assert_eq!(class, "Answer");
        assert!(detail.contains("required keys are all present"), "{detail}");
    }

    #[test]
    fn ambiguous_and_empty_payloads_choose_nothing_and_say_why() {
        // Assessment, Answer and Note all declare `id`; only Assessment requires nothing else.
        assert_eq!(index().choose(["id"]).unwrap().0, "Assessment");
        let error = index().choose(["timestamp", "text"]).unwrap_err();
        assert!(error.contains("no class declares all"), "{error}");
        let error = index().choose(std::iter::empty()).unwrap_err();
        assert!(error.contains("no top-level key"), "{error}");
        let error = index().choose(["nothing"]).unwrap_err();
        assert!(error.contains("no class declares any"), "{error}");
    }

    #[test]
    fn abstract_classes_and_non_object_definitions_are_not_candidates() {
        let index = index();
        let names: Vec<&str> = index.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Answer", "Assessment", "Note"]);
    }

    #[test]
    fn without_json_schema_definitions_the_linkml_classes_are_used() {
        let linkml = LinkmlSchema::parse(
            b"id: x\nclasses: {A: {attributes: {a: {}, b: {}}}, B: {attributes: {b: {}, c: {}}}}\n",
        )
        .unwrap();
        let index = ClassIndex::build(Some(&linkml), None).unwrap();
        assert_eq!(index.choose(["a"]).unwrap().0, "A");
        assert!(index.choose(["b"]).is_err(), "both declare b, no required information");
    }
}
