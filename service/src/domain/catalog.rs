//! The catalog: which model versions exist and where their artifacts live.
//!
//! Accepts an array of entries or `{"models": [...]}`. `model`/`version` may be omitted when the
//! artifact URLs follow the CE-RISE publication layout, from which they are inferred. A duplicate
//! `(model, version)` rejects the whole catalog, because serving either one silently would be a guess.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{ArtifactKind, ModelKey, validate_segment};

/// One model version in the catalog, after inference and checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    pub key: ModelKey,
    /// Artifact URL (or local relative path, when allowed) per kind.
    pub artifacts: BTreeMap<ArtifactKind, String>,
    pub root_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    /// Non-fatal remarks (unknown keys), reported with the refresh result.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid JSON: {message} (line {line}, column {column})")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("catalog must be an array of entries or an object with a \"models\" array")]
    Shape,
    #[error("catalog entry {index}: {problem}")]
    Entry { index: usize, problem: String },
    #[error("catalog declares {model}@{version} twice (entries {first} and {second})")]
    Duplicate {
        model: String,
        version: String,
        first: usize,
        second: usize,
    },
}

#[derive(Deserialize)]
struct RawEntry {
    model: Option<String>,
    version: Option<String>,
    schema_url: Option<String>,
    shacl_url: Option<String>,
    owl_url: Option<String>,
    openapi_url: Option<String>,
    route_url: Option<String>,
    linkml_url: Option<String>,
    root_class: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

impl Catalog {
    pub fn parse(bytes: &[u8]) -> Result<Self, CatalogError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| CatalogError::Json {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })?;
        let items = match value {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("models") {
                Some(Value::Array(items)) => items,
                _ => return Err(CatalogError::Shape),
            },
            _ => return Err(CatalogError::Shape),
        };

        let mut entries = Vec::with_capacity(items.len());
        let mut warnings = Vec::new();
        let mut seen: BTreeMap<ModelKey, usize> = BTreeMap::new();
        for (index, item) in items.into_iter().enumerate() {
            let raw: RawEntry = serde_json::from_value(item).map_err(|e| CatalogError::Entry {
                index,
                problem: e.to_string(),
            })?;
            for key in raw.unknown.keys() {
                warnings.push(format!("catalog entry {index}: unknown field {key:?} ignored"));
            }
            let entry = entry_from_raw(index, raw)?;
            if let Some(first) = seen.insert(entry.key.clone(), index) {
                return Err(CatalogError::Duplicate {
                    model: entry.key.model.clone(),
                    version: entry.key.version.clone(),
                    first,
                    second: index,
                });
            }
            entries.push(entry);
        }
        Ok(Self { entries, warnings })
    }
}

fn entry_from_raw(index: usize, raw: RawEntry) -> Result<CatalogEntry, CatalogError> {
    let err = |problem: String| CatalogError::Entry { index, problem };
    let mut artifacts = BTreeMap::new();
    for (kind, url) in [
        (ArtifactKind::Schema, raw.schema_url),
        (ArtifactKind::Shacl, raw.shacl_url),
        (ArtifactKind::Owl, raw.owl_url),
        (ArtifactKind::Openapi, raw.openapi_url),
        (ArtifactKind::Route, raw.route_url),
        (ArtifactKind::Linkml, raw.linkml_url),
    ] {
        if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
            artifacts.insert(kind, url.trim().to_string());
        }
    }
    if artifacts.is_empty() {
        return Err(err(
            "needs at least one of schema_url, shacl_url, owl_url, openapi_url, route_url".into(),
        ));
    }

    let inferred = artifacts.values().find_map(|url| infer_from_ce_rise_url(url));
    let model = raw
        .model
        .filter(|m| !m.trim().is_empty())
        .or_else(|| inferred.as_ref().map(|k| k.model.clone()))
        .ok_or_else(|| err("has no \"model\" and none can be inferred from its URLs".into()))?;
    let version = raw
        .version
        .filter(|v| !v.trim().is_empty())
        .or_else(|| inferred.as_ref().map(|k| k.version.clone()))
        .ok_or_else(|| err("has no \"version\" and none can be inferred from its URLs".into()))?;
    validate_segment(&model).map_err(|p| err(format!("model {model:?} {p}")))?;
    validate_segment(&version).map_err(|p| err(format!("version {version:?} {p}")))?;
    let root_class = raw.root_class.filter(|c| !c.trim().is_empty());

    Ok(CatalogEntry {
        key: ModelKey { model, version },
        artifacts,
        root_class,
    })
}

/// Infers `(model, version)` from `.../CE-RISE-models/<model>/(raw|src)/tag/pages-v<version>/generated/<file>`.
pub fn infer_from_ce_rise_url(url: &str) -> Option<ModelKey> {
    let path = url.split(['?', '#']).next()?;
    let segments: Vec<&str> = path.split('/').collect();
    let start = segments.iter().position(|s| *s == "CE-RISE-models")?;
    match &segments[start + 1..] {
        [model, "raw" | "src", "tag", tag, "generated", _file, ..] => {
            let version = tag.strip_prefix("pages-v")?;
            (!model.is_empty() && !version.is_empty()).then(|| ModelKey {
                model: model.to_string(),
                version: version.to_string(),
            })
        }
        _ => None,
    }
}

impl fmt::Display for CatalogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://codeberg.org/CE-RISE-models";

    #[test]
    fn accepts_array_and_object_forms() {
        let entry = r#"{"model":"m","version":"1.0.0","schema_url":"https://x.org/s.json"}"#;
        let a = Catalog::parse(format!("[{entry}]").as_bytes()).unwrap();
        let b = Catalog::parse(format!("{{\"models\":[{entry}]}}").as_bytes()).unwrap();
        assert_eq!(a.entries, b.entries);
        assert_eq!(a.entries[0].key.model, "m");
    }

    #[test]
    fn infers_model_and_version_from_ce_rise_urls() {
        let json = format!(r#"[{{"schema_url":"{BASE}/product-profile/raw/tag/pages-v0.0.3/generated/schema.json"}}]"#);
        let catalog = Catalog::parse(json.as_bytes()).unwrap();
        assert_eq!(
            catalog.entries[0].key,
            ModelKey {
                model: "product-profile".into(),
                version: "0.0.3".into()
            }
        );
        let src = format!("{BASE}/dp-record-metadata/src/tag/pages-v0.0.2/generated/shacl.ttl");
        assert_eq!(infer_from_ce_rise_url(&src).unwrap().model, "dp-record-metadata");
        assert!(infer_from_ce_rise_url("https://x.org/a/b/schema.json").is_none());
    }

    #[test]
    fn duplicate_model_version_rejects_whole_catalog() {
        let json = r#"[{"model":"m","version":"1","schema_url":"https://x/a"},
                       {"model":"n","version":"1","schema_url":"https://x/b"},
                       {"model":"m","version":"1","shacl_url":"https://x/c"}]"#;
        assert_eq!(
            Catalog::parse(json.as_bytes()).unwrap_err(),
            CatalogError::Duplicate {
                model: "m".into(),
                version: "1".into(),
                first: 0,
                second: 2
            }
        );
    }

    #[test]
    fn entry_without_urls_is_rejected_with_its_index() {
        let json = r#"[{"model":"m","version":"1","schema_url":"https://x/a"},{"model":"n","version":"1"}]"#;
        let err = Catalog::parse(json.as_bytes()).unwrap_err();
        assert!(matches!(err, CatalogError::Entry { index: 1, .. }), "{err}");
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = Catalog::parse(b"[\n  {\"model\": }\n]").unwrap_err();
        assert!(matches!(err, CatalogError::Json { line: 2, .. }), "{err}");
    }

    #[test]
    fn traversal_in_names_is_rejected() {
        let json = r#"[{"model":"../etc","version":"1","schema_url":"https://x/a"}]"#;
        assert!(matches!(
            Catalog::parse(json.as_bytes()).unwrap_err(),
            CatalogError::Entry { index: 0, .. }
        ));
    }

    #[test]
    fn unknown_fields_become_warnings() {
        let json = r#"[{"model":"m","version":"1","schema_url":"https://x/a","colour":"red"}]"#;
        let catalog = Catalog::parse(json.as_bytes()).unwrap();
        assert_eq!(catalog.warnings.len(), 1);
        assert!(catalog.warnings[0].contains("colour"));
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        assert_eq!(Catalog::parse(b"{}").unwrap_err(), CatalogError::Shape);
        assert_eq!(Catalog::parse(b"42").unwrap_err(), CatalogError::Shape);
        assert!(matches!(
            Catalog::parse(br#"[{"model":1,"version":"1","schema_url":"https://x"}]"#).unwrap_err(),
            CatalogError::Entry { index: 0, .. }
        ));
    }
}
