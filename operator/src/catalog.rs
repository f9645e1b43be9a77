//! The catalog a HexCoreService serves: which ModelCatalogs it selects, and their merge into the
//! exact file (and hash) its replicas load. Pure functions, shared by the controller and `render`.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Selector, SelectorExt};
use serde::Serialize;
use serde_json::json;

use crate::crd::{CatalogModel, HexCoreService, ModelCatalog, ModelCatalogSpec};
use crate::desired::sha256_hex;

/// One entry in the service's catalog format (`service/src/domain/catalog.rs`); field order is
/// the serialization order, which keeps the bytes (and their hash) deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ServiceCatalogEntry<'a> {
    model: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shacl_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owl_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    openapi_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    linkml_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    root_class: Option<&'a str>,
}

impl<'a> From<&'a CatalogModel> for ServiceCatalogEntry<'a> {
    fn from(m: &'a CatalogModel) -> Self {
        Self {
            model: &m.model,
            version: &m.version,
            schema_url: m.schema_url.as_deref(),
            shacl_url: m.shacl_url.as_deref(),
            owl_url: m.owl_url.as_deref(),
            openapi_url: m.openapi_url.as_deref(),
            route_url: m.route_url.as_deref(),
            linkml_url: m.linkml_url.as_deref(),
            root_class: m.root_class.as_deref(),
        }
    }
}

/// The catalog file a data plane serves, and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedCatalog {
    /// Exact file content; the service hashes these bytes, so they are delivered unchanged.
    pub json: String,
    /// Hex SHA-256 of `json`: what every replica must report as `catalog_sha256`.
    pub sha256: String,
    pub model_count: usize,
    /// Names of the merged ModelCatalogs, sorted.
    pub catalogs: Vec<String>,
}

/// Why catalogs cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{model}@{version} is declared differently by ModelCatalog {first:?} and ModelCatalog {second:?}; \
         make the declarations identical or remove one"
    )]
    Conflict {
        model: String,
        version: String,
        first: String,
        second: String,
    },
}

/// Merges catalogs into the service's format `{"models": [...]}`, sorted by `(model, version)`.
/// The same `(model, version)` declared identically by several catalogs is one entry; declared
/// differently it is a conflict naming both catalogs (the caller keeps the previous catalog).
pub fn merge_catalogs<'a>(
    sources: impl IntoIterator<Item = (&'a str, &'a ModelCatalogSpec)>,
) -> Result<MergedCatalog, MergeError> {
    let mut sources: Vec<(&str, &ModelCatalogSpec)> = sources.into_iter().collect();
    // Sorted by name so "first" and "second" in a conflict do not depend on list order.
    sources.sort_by(|a, b| a.0.cmp(b.0));
    let mut entries: BTreeMap<(&str, &str), (&str, &CatalogModel)> = BTreeMap::new();
    for (catalog, spec) in &sources {
        for model in &spec.models {
            let key = (model.model.as_str(), model.version.as_str());
            match entries.get(&key) {
                Some((first, existing)) if *existing != model => {
                    return Err(MergeError::Conflict {
                        model: model.model.clone(),
                        version: model.version.clone(),
                        first: first.to_string(),
                        second: catalog.to_string(),
                    });
                }
                Some(_) => {}
                None => {
                    entries.insert(key, (catalog, model));
                }
            }
        }
    }
    let models: Vec<ServiceCatalogEntry> = entries.values().map(|(_, m)| ServiceCatalogEntry::from(*m)).collect();
    let mut json = serde_json::to_string_pretty(&json!({ "models": models })).unwrap_or_default();
    json.push('\n');
    let mut catalogs: Vec<String> = sources.iter().map(|(n, _)| n.to_string()).collect();
    catalogs.dedup();
    Ok(MergedCatalog {
        sha256: sha256_hex(json.as_bytes()),
        json,
        model_count: models.len(),
        catalogs,
    })
}

// ---------------------------------------------------------------------------------------------
// Selection
// ---------------------------------------------------------------------------------------------

/// Whether `hcs` serves `catalog` (same namespace; named, or matched by the selector).
pub fn selects(hcs: &HexCoreService, catalog: &ModelCatalog) -> bool {
    use kube::ResourceExt;
    if hcs.namespace() != catalog.namespace() {
        return false;
    }
    let selection = &hcs.spec.catalogs;
    if selection
        .names
        .as_ref()
        .is_some_and(|names| names.iter().any(|n| *n == catalog.name_any()))
    {
        return true;
    }
    match &selection.selector {
        Some(selector) => Selector::try_from(selector.clone())
            .map(|s| s.matches(catalog.labels()))
            .unwrap_or(false),
        None => false,
    }
}

/// Why a HexCoreService's catalogs cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error(
        "ModelCatalog {} not found in namespace {namespace}",
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
    )]
    NotFound { names: Vec<String>, namespace: String },
    #[error(transparent)]
    Conflict(#[from] MergeError),
}

impl SelectionError {
    /// The condition reason reporting this error.
    pub fn reason(&self) -> &'static str {
        match self {
            SelectionError::NotFound { .. } => "CatalogNotFound",
            SelectionError::Conflict(_) => "CatalogConflict",
        }
    }
}

/// The catalogs one HexCoreService serves, and their merge.
#[derive(Debug)]
pub struct Selection {
    /// Names of the candidate catalogs it selects.
    pub selected: BTreeSet<String>,
    /// Names it lists in `spec.catalogs.names` (selected or not).
    pub listed: BTreeSet<String>,
    pub merged: Result<MergedCatalog, SelectionError>,
}

/// Selects from `candidates` what `hcs` serves and merges it. A listed name with no catalog is an
/// error, not an empty contribution: serving fewer models than declared must be noticed.
pub fn select_and_merge<'a>(hcs: &HexCoreService, candidates: impl IntoIterator<Item = &'a ModelCatalog>) -> Selection {
    let chosen: Vec<&ModelCatalog> = candidates.into_iter().filter(|c| selects(hcs, c)).collect();
    let selected: BTreeSet<String> = chosen.iter().map(|c| kube::ResourceExt::name_any(*c)).collect();
    let listed: BTreeSet<String> = hcs.spec.catalogs.names.iter().flatten().cloned().collect();
    let missing: Vec<String> = listed.difference(&selected).cloned().collect();
    let merged = if missing.is_empty() {
        let sources = chosen
            .iter()
            .map(|c| (c.metadata.name.as_deref().unwrap_or_default(), &c.spec));
        merge_catalogs(sources).map_err(SelectionError::from)
    } else {
        Err(SelectionError::NotFound {
            names: missing,
            namespace: kube::ResourceExt::namespace(hcs).unwrap_or_default(),
        })
    };
    Selection {
        selected,
        listed,
        merged,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::testing::{catalog_spec as catalog, hcs, model, named_catalog};

    #[test]
    fn merged_catalog_is_sorted_deterministic_and_in_the_service_format() {
        let a = catalog(vec![
            model("zeta", "1.0.0", "https://h/z.json"),
            model("alpha", "2.0.0", "https://h/a2.json"),
        ]);
        let b = catalog(vec![model("alpha", "1.0.0", "https://h/a1.json")]);
        let one = merge_catalogs([("b", &b), ("a", &a)]).unwrap();
        let two = merge_catalogs([("a", &a), ("b", &b)]).unwrap();
        assert_eq!(one, two, "input order does not change the bytes");
        assert_eq!(one.catalogs, ["a", "b"]);
        assert_eq!(one.model_count, 3);
        assert_eq!(one.sha256, sha256_hex(one.json.as_bytes()));

        let value: Value = serde_json::from_str(&one.json).unwrap();
        let keys: Vec<(String, String)> = value["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["model"].as_str().unwrap().into(),
                    m["version"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("alpha".into(), "1.0.0".into()),
                ("alpha".into(), "2.0.0".into()),
                ("zeta".into(), "1.0.0".into())
            ]
        );
        assert_eq!(value["models"][0]["schema_url"], "https://h/a1.json");
        assert!(
            value["models"][0].get("shacl_url").is_none(),
            "absent URLs are omitted, not null"
        );

        // The service itself accepts the bytes, with no warnings.
        let parsed = hex_core_service::domain::catalog::Catalog::parse(one.json.as_bytes()).unwrap();
        assert_eq!(parsed.entries.len(), 3);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn every_field_of_a_catalog_model_reaches_the_service_format() {
        let full = CatalogModel {
            model: "m".into(),
            version: "1".into(),
            schema_url: Some("https://h/s".into()),
            shacl_url: Some("https://h/sh".into()),
            owl_url: Some("https://h/o".into()),
            openapi_url: Some("https://h/oa".into()),
            route_url: Some("https://h/r".into()),
            linkml_url: Some("https://h/l".into()),
            root_class: Some("Root".into()),
        };
        let spec = catalog(vec![full]);
        let merged = merge_catalogs([("c", &spec)]).unwrap();
        let value: Value = serde_json::from_str(&merged.json).unwrap();
        let entry = value["models"][0].as_object().unwrap();
        let keys: Vec<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "model",
                "version",
                "schema_url",
                "shacl_url",
                "owl_url",
                "openapi_url",
                "route_url",
                "linkml_url",
                "root_class"
            ]
        );
        let parsed = hex_core_service::domain::catalog::Catalog::parse(merged.json.as_bytes()).unwrap();
        assert_eq!(parsed.entries[0].root_class.as_deref(), Some("Root"));
        assert_eq!(parsed.entries[0].artifacts.len(), 6);
    }

    #[test]
    fn identical_declarations_in_two_catalogs_merge_into_one_entry() {
        let a = catalog(vec![model("m", "1", "https://h/m.json")]);
        let b = catalog(vec![
            model("m", "1", "https://h/m.json"),
            model("n", "1", "https://h/n.json"),
        ]);
        let merged = merge_catalogs([("a", &a), ("b", &b)]).unwrap();
        assert_eq!(merged.model_count, 2);
    }

    #[test]
    fn conflicting_declarations_name_both_catalogs() {
        let a = catalog(vec![model("m", "1", "https://h/one.json")]);
        let b = catalog(vec![model("m", "1", "https://h/two.json")]);
        let error = merge_catalogs([("zz-second", &b), ("aa-first", &a)]).unwrap_err();
        assert_eq!(
            error,
            MergeError::Conflict {
                model: "m".into(),
                version: "1".into(),
                first: "aa-first".into(),
                second: "zz-second".into()
            }
        );
        let message = error.to_string();
        assert!(message.contains("\"aa-first\"") && message.contains("\"zz-second\"") && message.contains("m@1"));
    }

    #[test]
    fn an_empty_selection_is_an_empty_but_valid_catalog() {
        let merged = merge_catalogs(std::iter::empty()).unwrap();
        assert_eq!(merged.model_count, 0);
        hex_core_service::domain::catalog::Catalog::parse(merged.json.as_bytes()).unwrap();
    }

    #[test]
    fn selection_merges_named_and_labelled_catalogs_of_the_namespace_only() {
        let mut h = hcs("svc");
        h.spec.catalogs.names = Some(vec!["a".into()]);
        h.spec.catalogs.selector = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(BTreeMap::from([("tier".into(), "prod".into())])),
            ..Default::default()
        });
        let a = named_catalog("a", &[], vec![model("m", "1", "https://h/m.json")]);
        let b = named_catalog("b", &[("tier", "prod")], vec![model("n", "1", "https://h/n.json")]);
        let dev = named_catalog("dev", &[("tier", "dev")], vec![model("x", "1", "https://h/x.json")]);
        let mut elsewhere = named_catalog("c", &[("tier", "prod")], vec![model("y", "1", "https://h/y.json")]);
        elsewhere.metadata.namespace = Some("ns2".into());
        let selection = select_and_merge(&h, [&a, &b, &dev, &elsewhere]);
        assert_eq!(selection.selected, BTreeSet::from(["a".to_string(), "b".to_string()]));
        let merged = selection.merged.unwrap();
        assert_eq!(
            (merged.model_count, merged.catalogs.clone()),
            (2, vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn a_listed_catalog_that_is_absent_is_not_found_rather_than_empty() {
        let mut h = hcs("svc");
        h.spec.catalogs.names = Some(vec!["z".into(), "a".into(), "y".into()]);
        let a = named_catalog("a", &[], vec![model("m", "1", "https://h/m.json")]);
        let selection = select_and_merge(&h, [&a]);
        let error = selection.merged.unwrap_err();
        assert_eq!(error.reason(), "CatalogNotFound");
        assert_eq!(
            error.to_string(),
            "ModelCatalog \"y\", \"z\" not found in namespace ns1"
        );
        assert_eq!(
            selection.listed.len(),
            3,
            "listed names are remembered for re-triggering"
        );
    }
}
