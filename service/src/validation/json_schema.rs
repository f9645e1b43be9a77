//! JSON Schema validation, compiled once per catalog load with the `jsonschema` crate.

use serde_json::{Value, json};

use crate::domain::model::ArtifactKind;
use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;

use crate::domain::report::{Severity, Violation, child_path, pointer_to_json_path};
use crate::ports::{CompileError, PayloadValidator};

pub struct JsonSchemaValidator {
    validator: jsonschema::Validator,
}

impl JsonSchemaValidator {
    /// Compiles `schema_bytes`. With a `target_class`, payloads validate against
    /// `#/$defs/<target_class>` (LinkML schemas often have a root that accepts anything).
    pub fn compile(schema_bytes: &[u8], target_class: Option<&str>) -> Result<Self, CompileError> {
        let schema: Value =
            serde_json::from_slice(schema_bytes).map_err(|e| compile_error(format!("not valid JSON: {e}")))?;
        Self::compile_value(schema, target_class)
    }

    /// Like [`Self::compile`], for a schema already parsed.
    pub fn compile_value(mut schema: Value, target_class: Option<&str>) -> Result<Self, CompileError> {
        if let Some(class) = target_class {
            schema = retarget(schema, class).map_err(compile_error)?;
        }
        // `format` is an annotation by default in 2019-09/2020-12; LinkML emits it for dates and
        // times, and a malformed date is exactly what a caller wants to hear about.
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| compile_error(format!("not a valid JSON Schema: {e}")))?;
        Ok(Self { validator })
    }
}

fn compile_error(message: String) -> CompileError {
    CompileError {
        artifact: ArtifactKind::Schema,
        message,
    }
}

/// Points the schema root at one of its definitions while keeping every definition resolvable.
fn retarget(mut schema: Value, class: &str) -> Result<Value, String> {
    let Some(object) = schema.as_object_mut() else {
        return Err("schema root is not an object".into());
    };
    let defs_key = ["$defs", "definitions"]
        .into_iter()
        .find(|k| object.get(*k).and_then(|d| d.get(class)).is_some())
        .ok_or_else(|| format!("target class {class:?} is not among the schema's $defs"))?;
    let pointer = format!("#/{defs_key}/{}", class.replace('~', "~0").replace('/', "~1"));
    let mut root = serde_json::Map::new();
    for keep in ["$schema", "$id", "$defs", "definitions"] {
        if let Some(v) = object.remove(keep) {
            root.insert(keep.to_string(), v);
        }
    }
    root.insert("$ref".into(), json!(pointer));
    Ok(Value::Object(root))
}

impl PayloadValidator for JsonSchemaValidator {
    fn kind(&self) -> &'static str {
        "json_schema"
    }

    fn validate(&self, payload: &Value) -> Vec<Violation> {
        let mut violations = Vec::new();
        for error in self.validator.iter_errors(payload) {
            collect(&error, &mut violations);
        }
        violations
    }
}

/// Turns one error into violations. LinkML writes every optional inlined object as
/// `anyOf: [{$ref: Class}, {type: null}]`, so an error deep inside such an object surfaces as
/// one `anyOf` failure on the object; when exactly one branch failed for a reason other than the
/// value's JSON type, its errors are reported instead, at their own paths.
fn collect(error: &ValidationError<'_>, out: &mut Vec<Violation>) {
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } = error.kind() {
        let at = error.instance_path().as_str();
        let informative: Vec<&Vec<ValidationError<'static>>> = context
            .iter()
            .filter(|branch| {
                !(branch.len() == 1
                    && matches!(branch[0].kind(), ValidationErrorKind::Type { .. })
                    && branch[0].instance_path().as_str() == at)
            })
            .collect();
        if let [branch] = informative.as_slice() {
            for inner in branch.iter() {
                collect(inner, out);
            }
            return;
        }
    }
    let base = pointer_to_json_path(error.instance_path().as_str());
    // `required` and `additionalProperties` are reported on the parent object; name the
    // offending key itself so a client can highlight the field.
    let keys: Vec<String> = match error.kind() {
        ValidationErrorKind::Required { property } => vec![property.as_str().unwrap_or_default().to_string()],
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected.clone(),
        _ => vec![],
    };
    let paths: Vec<String> = if keys.is_empty() {
        vec![base]
    } else {
        keys.iter().map(|k| child_path(&base, k)).collect()
    };
    for path in paths {
        out.push(Violation {
            path,
            message: error.to_string(),
            severity: Severity::Error,
            kind: "json_schema".into(),
            constraint: Some(error.kind().keyword().to_string()),
            source: Some(format!("#{}", error.schema_path().as_str())),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "Passport": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string"}, "mass_kg": {"type": "number", "minimum": 0}},
                "additionalProperties": false
            }
        }
    }"#;

    #[test]
    fn root_schema_accepts_anything_but_target_class_checks() {
        let root = JsonSchemaValidator::compile(SCHEMA.as_bytes(), None).unwrap();
        assert!(root.validate(&json!({"whatever": 1})).is_empty());

        let targeted = JsonSchemaValidator::compile(SCHEMA.as_bytes(), Some("Passport")).unwrap();
        let violations = targeted.validate(&json!({"mass_kg": -1, "extra": true}));
        let keywords: Vec<_> = violations.iter().filter_map(|v| v.constraint.clone()).collect();
        assert!(keywords.contains(&"required".to_string()), "{violations:?}");
        assert!(keywords.contains(&"minimum".to_string()), "{violations:?}");
        assert!(keywords.contains(&"additionalProperties".to_string()), "{violations:?}");
        assert!(violations.iter().any(|v| v.path == "$.mass_kg"));
        assert!(
            violations
                .iter()
                .any(|v| v.path == "$.id" && v.constraint.as_deref() == Some("required"))
        );
        assert!(violations.iter().any(|v| v.path == "$.extra"));
    }

    #[test]
    fn unknown_target_class_is_a_compile_error() {
        let err = JsonSchemaValidator::compile(SCHEMA.as_bytes(), Some("Nope"))
            .err()
            .unwrap();
        assert!(err.message.contains("Nope"));
    }

    #[test]
    fn invalid_schema_is_a_compile_error() {
        assert!(JsonSchemaValidator::compile(b"{\"type\": 12}", None).is_err());
        assert!(JsonSchemaValidator::compile(b"not json", None).is_err());
    }
}
