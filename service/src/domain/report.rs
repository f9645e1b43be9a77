//! The merged validation report.
//!
//! The published contract (0.0.9) declares `results[]` as flat `{path, message, severity}` items,
//! while the reference service sent one item per validator (`{kind, passed, violations}`), so SDKs
//! generated from the contract saw empty items and lost every violation. Here `results` holds one
//! item per violation in exactly the contract's shape (plus additive fields such as `kind`), and the
//! per-validator view lives beside it in `validators`. See README, "Validation reports".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One finding, addressed by a JSON path into the payload (`$.a[2].b`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub path: String,
    pub message: String,
    pub severity: Severity,
    /// Which validator produced it: `json_schema`, `shacl`, `owl`.
    pub kind: String,
    /// The failing keyword (JSON Schema) or constraint component (SHACL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// The schema location or shape that was violated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorResult {
    pub kind: String,
    pub passed: bool,
    pub violations: Vec<Violation>,
}

/// The class a payload was validated as, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetClass {
    pub name: Option<String>,
    /// `catalog_root_class`, `linkml_tree_root`, `single_unreferenced_class`, `schema_root`,
    /// `payload_keys` (inferred per payload), `unknown`.
    pub chosen_by: String,
    /// For `payload_keys`: why this class, or why none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub passed: bool,
    pub results: Vec<Violation>,
    pub validators: Vec<ValidatorResult>,
    /// Addition: the class the payload was validated as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_class: Option<TargetClass>,
}

impl ValidationReport {
    /// Merges per-validator results; `passed` only when no error-level violation exists anywhere.
    pub fn merge(validators: Vec<ValidatorResult>) -> Self {
        let results: Vec<Violation> = validators.iter().flat_map(|v| v.violations.iter().cloned()).collect();
        let passed = results.iter().all(|v| v.severity != Severity::Error);
        Self {
            passed,
            results,
            validators,
            target_class: None,
        }
    }
}

impl ValidatorResult {
    pub fn from_violations(kind: &str, violations: Vec<Violation>) -> Self {
        Self {
            kind: kind.to_string(),
            passed: violations.iter().all(|v| v.severity != Severity::Error),
            violations,
        }
    }
}

/// Appends an object key to a JSON path, quoting it when it is not a plain identifier.
pub fn child_path(parent: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        format!("{parent}.{key}")
    } else {
        format!("{parent}['{}']", key.replace('\'', "\\'"))
    }
}

/// Turns an RFC 6901 JSON pointer (`/a/2/b`) into the JSON path form used in reports (`$.a[2].b`).
pub fn pointer_to_json_path(pointer: &str) -> String {
    let mut path = String::from("$");
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push('[');
            path.push_str(&segment);
            path.push(']');
        } else if !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            path.push('.');
            path.push_str(&segment);
        } else {
            path.push_str("['");
            path.push_str(&segment.replace('\'', "\\'"));
            path.push_str("']");
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(severity: Severity) -> Violation {
        Violation {
            path: "$.a".into(),
            message: "m".into(),
            severity,
            kind: "shacl".into(),
            constraint: None,
            source: None,
        }
    }

    #[test]
    fn warnings_alone_still_pass() {
        let report = ValidationReport::merge(vec![ValidatorResult::from_violations(
            "shacl",
            vec![violation(Severity::Warning)],
        )]);
        assert!(report.passed);
        assert_eq!(report.results.len(), 1);
    }

    #[test]
    fn any_error_fails_and_all_violations_are_flattened() {
        let report = ValidationReport::merge(vec![
            ValidatorResult::from_violations("json_schema", vec![]),
            ValidatorResult::from_violations("shacl", vec![violation(Severity::Error), violation(Severity::Info)]),
        ]);
        assert!(!report.passed);
        assert_eq!(report.results.len(), 2);
        assert!(report.validators[0].passed);
        assert!(!report.validators[1].passed);
    }

    #[test]
    fn pointers_become_json_paths() {
        assert_eq!(pointer_to_json_path(""), "$");
        assert_eq!(pointer_to_json_path("/a/2/b_c"), "$.a[2].b_c");
        assert_eq!(pointer_to_json_path("/we ird/x~1y"), "$['we ird']['x/y']");
    }
}
