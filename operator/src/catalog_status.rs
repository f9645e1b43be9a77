//! What the operator says about a ModelCatalog: whether it is well-formed (`Ready`), and whether
//! a HexCoreService that selects it serves every entry of its current content (`Loaded`, with
//! `loadedBy` and the sticky `lastLoadedGeneration` / `lastLoadedTime`). A pure function of the
//! catalog and the HexCoreServices of its namespace, as their own status reports them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::catalog::{merge_catalogs, select_and_merge, selects};
use crate::conditions::{self, Decided};
use crate::crd::{HexCoreService, ModelCatalog, ModelCatalogStatus};

/// HexCoreServices named in `loadedBy`.
pub const MAX_LOADED_BY: usize = 10;
/// Failures named in the `Loaded` condition's message.
const MAX_FAILURES_NAMED: usize = 5;

/// True when `hcs` reports that every ready replica serves `sha256` with every entry loaded.
fn serves_fully(hcs: &HexCoreService, sha256: &str) -> bool {
    let Some(status) = &hcs.status else { return false };
    let synced = status
        .conditions
        .as_deref()
        .and_then(|c| conditions::find(c, conditions::CATALOG_SYNCED))
        .is_some_and(|c| c.status == "True");
    synced && status.catalog_sha256.as_deref() == Some(sha256) && status.converged_replicas.unwrap_or(0) > 0
}

/// The status of `catalog`, given the HexCoreServices and ModelCatalogs of its namespace;
/// `None` when the live status is already that.
pub fn decide_catalog<'a>(
    catalog: &ModelCatalog,
    services: impl IntoIterator<Item = &'a HexCoreService>,
    catalogs: &[&ModelCatalog],
    now: Timestamp,
) -> Option<ModelCatalogStatus> {
    let previous = catalog.status.clone().unwrap_or_default();
    let previous_conditions = previous.conditions.clone().unwrap_or_default();
    let generation = catalog.metadata.generation;
    let name = catalog.name_any();
    let mut status = ModelCatalogStatus {
        observed_generation: generation,
        ..previous.clone()
    };
    let ready = match merge_catalogs([(name.as_str(), &catalog.spec)]) {
        Ok(merged) => {
            status.model_count = Some(merged.model_count as i32);
            status.catalog_sha256 = Some(merged.sha256);
            Decided::new(
                conditions::READY,
                true,
                "Valid",
                format!("{} model versions", merged.model_count),
            )
        }
        Err(error) => Decided::new(conditions::READY, false, "DuplicateModel", error.to_string()),
    };

    let mut selecting: Vec<&HexCoreService> = services.into_iter().filter(|s| selects(s, catalog)).collect();
    selecting.sort_by_key(|s| s.name_any());
    let mut loaded_by = Vec::new();
    let mut failures = Vec::new();
    for service in &selecting {
        // The service serves this catalog's current content when it reports the hash of the
        // merge it would make now (which includes this catalog as it is).
        if let Ok(merged) = select_and_merge(service, catalogs.iter().copied()).merged
            && serves_fully(service, &merged.sha256)
        {
            loaded_by.push(service.name_any());
        }
        let replicas = service.status.iter().flat_map(|s| s.replica_statuses.iter().flatten());
        for replica in replicas {
            for failed in replica.failed_entries.iter().flatten() {
                let ours = catalog
                    .spec
                    .models
                    .iter()
                    .any(|m| m.model == failed.model && m.version == failed.version);
                if ours {
                    failures.push(format!(
                        "{}@{} on {}/{}: {}",
                        failed.model,
                        failed.version,
                        service.name_any(),
                        replica.pod.as_deref().unwrap_or(&replica.address),
                        failed.error
                    ));
                }
            }
        }
    }
    let loaded = if !loaded_by.is_empty() {
        Decided::new(
            conditions::LOADED,
            true,
            "Loaded",
            format!("every entry is served by HexCoreService {}", loaded_by.join(", ")),
        )
    } else if selecting.is_empty() {
        Decided::new(
            conditions::LOADED,
            false,
            "NotSelected",
            format!(
                "no HexCoreService in namespace {} selects this catalog",
                catalog.namespace().unwrap_or_default()
            ),
        )
    } else if !failures.is_empty() {
        let mut message = failures
            .iter()
            .take(MAX_FAILURES_NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if failures.len() > MAX_FAILURES_NAMED {
            message.push_str(&format!("; and {} more", failures.len() - MAX_FAILURES_NAMED));
        }
        Decided::new(conditions::LOADED, false, "LoadFailed", message)
    } else {
        Decided::new(
            conditions::LOADED,
            false,
            "Pending",
            format!(
                "selected by HexCoreService {}, whose replicas do not serve this content yet",
                selecting.iter().map(|s| s.name_any()).collect::<Vec<_>>().join(", ")
            ),
        )
    };
    if !loaded_by.is_empty() && previous.last_loaded_generation != generation {
        status.last_loaded_generation = generation;
        status.last_loaded_time = Some(Time(now));
    }
    loaded_by.truncate(MAX_LOADED_BY);
    status.loaded_by = (!loaded_by.is_empty()).then_some(loaded_by);
    status.conditions = Some(conditions::merge(
        &previous_conditions,
        &[ready, loaded],
        generation,
        now,
    ));
    (status != previous).then_some(status)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;
    use crate::catalog::merge_catalogs;
    use crate::conditions::find;
    use crate::crd::{FailedEntry, HexCoreServiceStatus, ReplicaStatus};
    use crate::testing::{hcs, model, named_catalog};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn loaded(status: &ModelCatalogStatus) -> &Condition {
        find(status.conditions.as_deref().unwrap(), conditions::LOADED).unwrap()
    }

    /// `svc` selecting catalog `a`, reporting that its replicas serve `sha` (or not).
    fn service_serving(sha: &str, synced: bool, failed: Option<&str>) -> HexCoreService {
        let mut h = hcs("svc");
        h.status = Some(HexCoreServiceStatus {
            catalog_sha256: Some(sha.into()),
            converged_replicas: Some(if synced { 2 } else { 0 }),
            replica_statuses: failed.map(|model| {
                vec![ReplicaStatus {
                    pod: Some("svc-x".into()),
                    address: "10.0.0.1:8080".into(),
                    failed_entries: Some(vec![FailedEntry {
                        model: model.into(),
                        version: "1".into(),
                        state: "failed".into(),
                        error: "HTTP 404".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }]
            }),
            conditions: Some(conditions::merge(
                &[],
                &[Decided::new(
                    conditions::CATALOG_SYNCED,
                    synced,
                    if synced { "Delivered" } else { "ModelLoadFailed" },
                    "",
                )],
                Some(1),
                at(0),
            )),
            ..Default::default()
        });
        h
    }

    #[test]
    fn a_catalog_nobody_selects_is_valid_but_not_selected() {
        let a = named_catalog("a", &[], vec![model("m", "1", "https://h/m.json")]);
        let status = decide_catalog(&a, Vec::<&HexCoreService>::new(), &[&a], at(1)).unwrap();
        assert_eq!(status.model_count, Some(1));
        let ready = find(status.conditions.as_deref().unwrap(), conditions::READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Valid"));
        assert_eq!(loaded(&status).reason, "NotSelected");
        assert_eq!(status.loaded_by, None);
        assert_eq!(status.last_loaded_generation, None);
    }

    #[test]
    fn a_catalog_is_loaded_when_a_selecting_service_serves_its_current_content() {
        let a = named_catalog("a", &[], vec![model("m", "1", "https://h/m.json")]);
        let sha = merge_catalogs([("a", &a.spec)]).unwrap().sha256;
        let pending = decide_catalog(&a, [&service_serving("older", true, None)], &[&a], at(1)).unwrap();
        assert_eq!(
            (loaded(&pending).status.as_str(), loaded(&pending).reason.as_str()),
            ("False", "Pending")
        );

        let status = decide_catalog(&a, [&service_serving(&sha, true, None)], &[&a], at(2)).unwrap();
        assert_eq!(
            (loaded(&status).status.as_str(), loaded(&status).reason.as_str()),
            ("True", "Loaded")
        );
        assert_eq!(status.loaded_by, Some(vec!["svc".to_string()]));
        assert_eq!(status.last_loaded_generation, Some(1));
        assert_eq!(status.last_loaded_time, Some(Time(at(2))));

        // Unchanged: no write. A later failure keeps "was loaded" (generation and time).
        let mut a = a;
        a.status = Some(status);
        assert_eq!(
            decide_catalog(&a, [&service_serving(&sha, true, None)], &[&a], at(3)),
            None
        );
        let failed = decide_catalog(&a, [&service_serving(&sha, false, Some("m"))], &[&a], at(4)).unwrap();
        assert_eq!(
            (loaded(&failed).status.as_str(), loaded(&failed).reason.as_str()),
            ("False", "LoadFailed")
        );
        assert_eq!(loaded(&failed).message, "m@1 on svc/svc-x: HTTP 404");
        assert_eq!(failed.last_loaded_generation, Some(1));
        assert_eq!(failed.last_loaded_time, Some(Time(at(2))));
        assert_eq!(failed.loaded_by, None);
    }

    #[test]
    fn failures_of_other_catalogs_models_are_not_this_catalogs() {
        let a = named_catalog("a", &[], vec![model("m", "1", "https://h/m.json")]);
        let status = decide_catalog(&a, [&service_serving("x", false, Some("other"))], &[&a], at(1)).unwrap();
        assert_eq!(loaded(&status).reason, "Pending");
    }

    #[test]
    fn a_duplicate_model_is_not_ready() {
        let a = named_catalog(
            "a",
            &[],
            vec![model("m", "1", "https://h/1.json"), model("m", "1", "https://h/2.json")],
        );
        let status = decide_catalog(&a, Vec::<&HexCoreService>::new(), &[&a], at(1)).unwrap();
        let ready = find(status.conditions.as_deref().unwrap(), conditions::READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "DuplicateModel")
        );
    }
}
