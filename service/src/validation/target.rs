//! Which class a model version validates payloads as.
//!
//! In order: the catalog entry's `root_class`; LinkML's `tree_root`; the single shape class (or,
//! without shapes, the single JSON Schema object definition) that nothing else references; a
//! JSON Schema whose root itself constrains payloads; otherwise unknown, with a warning naming the
//! candidates, and validation then reports that no target class is known.

use std::collections::BTreeSet;

use serde_json::Value;

use super::linkml::LinkmlSchema;
use super::rdf::local_name;
use super::shacl::shapes::ShapesIndex;
use crate::ports::TargetClass;

pub struct TargetInputs<'a> {
    pub catalog_root_class: Option<&'a str>,
    pub linkml: Option<&'a LinkmlSchema>,
    pub shapes: Option<&'a ShapesIndex>,
    pub json_schema: Option<&'a Value>,
}

/// The target class and, when it is unknown or a guess, a warning for the model detail endpoint.
pub fn choose(inputs: &TargetInputs<'_>) -> (TargetClass, Option<String>) {
    let chosen = |name: &str, by: &str| TargetClass {
        name: Some(name.to_string()),
        chosen_by: by.to_string(),
        detail: None,
    };
    if let Some(name) = inputs.catalog_root_class {
        return (chosen(name, "catalog_root_class"), None);
    }
    if let Some(linkml) = inputs.linkml {
        match linkml.tree_roots().as_slice() {
            [one] => return (chosen(one, "linkml_tree_root"), None),
            [] => {}
            several => {
                let warning = format!(
                    "the LinkML schema marks {} classes as tree_root ({}); set root_class in the catalog entry",
                    several.len(),
                    several.join(", ")
                );
                return (unknown(), Some(warning));
            }
        }
    }
    let candidates = unreferenced_candidates(inputs);
    if let [one] = candidates.as_slice() {
        return (chosen(one, "single_unreferenced_class"), None);
    }
    if inputs.shapes.is_none() && inputs.json_schema.is_some_and(|s| !is_permissive_root(s)) {
        return (
            TargetClass {
                name: None,
                chosen_by: "schema_root".into(),
                detail: None,
            },
            None,
        );
    }
    if inputs.shapes.is_none() && inputs.json_schema.is_none() {
        return (
            TargetClass {
                name: None,
                chosen_by: "unknown".into(),
                detail: None,
            },
            None,
        );
    }
    let shown: Vec<&str> = candidates.iter().take(8).map(String::as_str).collect();
    let more = candidates.len().saturating_sub(shown.len());
    let warning = format!(
        "no target class is known: no root_class in the catalog entry, no LinkML tree_root, and {} classes \
         are referenced by no other ({}{}); set root_class in the catalog entry. Validation reports this \
         instead of passing.",
        candidates.len(),
        shown.join(", "),
        if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        }
    );
    (unknown(), Some(warning))
}

fn unknown() -> TargetClass {
    TargetClass {
        name: None,
        chosen_by: "unknown".into(),
        detail: None,
    }
}

/// Class names no other class references: from the shapes when there are shapes (named through
/// LinkML when possible), else from the JSON Schema definitions.
fn unreferenced_candidates(inputs: &TargetInputs<'_>) -> Vec<String> {
    if let Some(shapes) = inputs.shapes {
        return shapes
            .unreferenced_classes()
            .into_iter()
            .map(|iri| {
                inputs
                    .linkml
                    .and_then(|l| l.class_by_iri(iri))
                    .or_else(|| json_def_named(inputs.json_schema, local_name(iri)))
                    .unwrap_or_else(|| local_name(iri))
                    .to_string()
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    }
    let Some(defs) = inputs
        .json_schema
        .and_then(|s| s.get("$defs").or_else(|| s.get("definitions")))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut referenced = BTreeSet::new();
    collect_refs(inputs.json_schema.expect("has defs"), &mut referenced);
    defs.iter()
        .filter(|(_, def)| def.get("type").and_then(Value::as_str) == Some("object") || def.get("properties").is_some())
        .filter(|(name, _)| !referenced.contains(name.as_str()))
        .map(|(name, _)| name.clone())
        .collect()
}

fn json_def_named<'a>(schema: Option<&Value>, name: &'a str) -> Option<&'a str> {
    let schema = schema?;
    ["$defs", "definitions"]
        .iter()
        .any(|k| schema.get(*k).and_then(|d| d.get(name)).is_some())
        .then_some(name)
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref"
                    && let Some(r) = v.as_str()
                    && let Some(name) = r.rsplit('/').next()
                {
                    out.insert(name.replace("~1", "/").replace("~0", "~"));
                }
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// A JSON Schema root that accepts any object: only annotations, `type: object` and
/// `additionalProperties: true` (what LinkML emits when it has no tree root).
pub fn is_permissive_root(schema: &Value) -> bool {
    let Some(root) = schema.as_object() else { return false };
    root.iter().all(|(key, value)| match key.as_str() {
        "$schema" | "$id" | "$defs" | "definitions" | "$comment" | "title" | "description" | "version"
        | "metamodel_version" | "examples" => true,
        "type" => value == "object",
        "additionalProperties" => value == &Value::Bool(true),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalog_root_class_wins_then_tree_root() {
        let linkml = LinkmlSchema::parse(b"id: x\nclasses: {A: {tree_root: true}, B: {}}\n").unwrap();
        let (target, warning) = choose(&TargetInputs {
            catalog_root_class: Some("B"),
            linkml: Some(&linkml),
            shapes: None,
            json_schema: None,
        });
        assert_eq!(
            (target.name.as_deref(), target.chosen_by.as_str()),
            (Some("B"), "catalog_root_class")
        );
        assert!(warning.is_none());
        let (target, _) = choose(&TargetInputs {
            catalog_root_class: None,
            linkml: Some(&linkml),
            shapes: None,
            json_schema: None,
        });
        assert_eq!(
            (target.name.as_deref(), target.chosen_by.as_str()),
            (Some("A"), "linkml_tree_root")
        );
    }

    #[test]
    fn single_unreferenced_definition_is_chosen_and_ambiguity_is_reported() {
        let one = json!({"type": "object", "$defs": {
            "Root": {"type": "object", "properties": {"c": {"$ref": "#/$defs/Child"}}},
            "Child": {"type": "object"},
            "Kind": {"type": "string", "enum": ["a"]}
        }});
        let (target, _) = choose(&TargetInputs {
            catalog_root_class: None,
            linkml: None,
            shapes: None,
            json_schema: Some(&one),
        });
        assert_eq!(target.name.as_deref(), Some("Root"));
        assert_eq!(target.chosen_by, "single_unreferenced_class");

        let two = json!({"type": "object", "$defs": {"A": {"type": "object"}, "B": {"type": "object"}}});
        let (target, warning) = choose(&TargetInputs {
            catalog_root_class: None,
            linkml: None,
            shapes: None,
            json_schema: Some(&two),
        });
        assert_eq!(target.chosen_by, "unknown");
        assert!(warning.unwrap().contains("A, B"));
    }

    #[test]
    fn a_constraining_schema_root_is_used_as_is() {
        let schema = json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
        let (target, warning) = choose(&TargetInputs {
            catalog_root_class: None,
            linkml: None,
            shapes: None,
            json_schema: Some(&schema),
        });
        assert_eq!(target.chosen_by, "schema_root");
        assert!(warning.is_none());
        assert!(!is_permissive_root(&schema));
        assert!(is_permissive_root(
            &json!({"$schema": "x", "type": "object", "additionalProperties": true, "$defs": {}})
        ));
    }
}
