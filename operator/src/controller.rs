//! The reconcilers: `ModelCatalog` (validate, summarise in status) and `HexCoreService` (children,
//! verified catalog delivery, status).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::apply::{self, Outcome};
use crate::conditions::{self, Decided};
use crate::crd::{HexCoreService, HexCoreServiceStatus, ModelCatalog, ModelCatalogStatus};
use crate::desired::{self, MANAGER, Names};
use crate::metrics::Metrics;
use crate::refresh::{self, RefreshClient};

/// Label every child carries; owned-object watches select on it.
const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=hex-core-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error("cannot generate the admin token: {0}")]
    Random(String),
    #[error("the ModelCatalog cache is not synced yet")]
    CacheNotReady,
}

impl Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::NoNamespace(_) => "NoNamespace",
            Error::Random(_) => "Random",
            Error::CacheNotReady => "CacheNotReady",
        }
    }
}

/// Tunables of the reconcilers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per-replica timeout of admin calls.
    pub refresh_timeout: Duration,
    /// Cap of the backoff while replicas have not converged, or after errors.
    pub backoff_cap: Duration,
    /// Re-check period of a converged HexCoreService (catches missed events; writes nothing).
    pub resync: Duration,
    /// Name reported on Events.
    pub instance: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_timeout: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(60),
            resync: Duration::from_secs(300),
            instance: "hex-core-operator".to_string(),
        }
    }
}

/// What the reconciler remembers between reconciles of one HexCoreService.
#[derive(Default)]
struct Memo {
    /// Consecutive reconciles that ended unconverged or failed (drives the backoff).
    attempts: u32,
    /// Catalogs the last reconcile selected or named: a catalog leaving the selection must still
    /// trigger the HexCoreService that used to serve it.
    catalogs: BTreeSet<String>,
}

type Key = (String, String);

pub struct Context {
    pub client: Client,
    pub catalogs: Store<ModelCatalog>,
    pub refresh: RefreshClient,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub settings: Settings,
    memo: Arc<Mutex<HashMap<Key, Memo>>>,
}

impl Context {
    fn memo<T>(&self, key: &Key, f: impl FnOnce(&mut Memo) -> T) -> T {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        f(memo.entry(key.clone()).or_default())
    }
}

fn key_of<K: Resource>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

pub use crate::desired::selects;

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Runs both controllers over one scope (`None`: all namespaces) until the future is dropped.
pub async fn run(client: Client, namespace: Option<String>, settings: Settings, metrics: Arc<Metrics>) {
    fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }

    let refresh = match RefreshClient::new(settings.refresh_timeout) {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "cannot build the refresh HTTP client");
            return;
        }
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.to_string(),
            instance: Some(settings.instance.clone()),
        },
    );
    let owned = || watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let controller_config = ControllerConfig::default().debounce(Duration::from_millis(200));

    let catalog_controller = Controller::new(api::<ModelCatalog>(&client, &namespace), watcher::Config::default())
        .with_config(controller_config.clone());
    let catalogs = catalog_controller.store();

    let memo: Arc<Mutex<HashMap<Key, Memo>>> = Arc::default();
    let ctx = Arc::new(Context {
        client: client.clone(),
        catalogs: catalogs.clone(),
        refresh,
        metrics,
        recorder,
        settings,
        memo: memo.clone(),
    });

    let service_controller = Controller::new(api::<HexCoreService>(&client, &namespace), watcher::Config::default())
        .with_config(controller_config);
    let services = service_controller.store();

    let (by_catalog, by_secret, by_slice) = (services.clone(), services.clone(), services.clone());
    let catalog_memo = memo.clone();
    let service_controller = service_controller
        .owns(api::<ConfigMap>(&client, &namespace), owned())
        .owns(api::<Deployment>(&client, &namespace), owned())
        .owns(api::<Service>(&client, &namespace), owned())
        .owns(api::<PodDisruptionBudget>(&client, &namespace), owned())
        .watches(
            api::<ModelCatalog>(&client, &namespace),
            watcher::Config::default(),
            move |catalog: ModelCatalog| {
                let memo = catalog_memo.lock().unwrap_or_else(|e| e.into_inner());
                let name = catalog.name_any();
                by_catalog
                    .state()
                    .into_iter()
                    .filter(|h| {
                        selects(h, &catalog)
                            || (h.namespace() == catalog.namespace()
                                && memo
                                    .get(&key_of(h.as_ref()))
                                    .is_some_and(|m| m.catalogs.contains(&name)))
                    })
                    .map(|h| ObjectRef::from_obj(h.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            api::<Secret>(&client, &namespace),
            watcher::Config::default(),
            move |secret: Secret| {
                let name = secret.name_any();
                by_secret
                    .state()
                    .into_iter()
                    .filter(|h| {
                        h.namespace() == secret.namespace()
                            && desired::referenced_secrets(h).iter().any(|r| r.name == name)
                    })
                    .map(|h| ObjectRef::from_obj(h.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            api::<EndpointSlice>(&client, &namespace),
            watcher::Config::default().labels("kubernetes.io/service-name"),
            move |slice: EndpointSlice| {
                let service = slice.labels().get("kubernetes.io/service-name").cloned();
                let namespace = slice.namespace();
                by_slice
                    .state()
                    .into_iter()
                    .filter(|h| h.namespace() == namespace && Some(Names::of(&h.name_any()).service) == service)
                    .map(|h| ObjectRef::from_obj(h.as_ref()))
                    .collect::<Vec<_>>()
            },
        );

    let catalogs_run = catalog_controller
        .run(reconcile_catalog, catalog_error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "modelcatalog controller event");
            }
        });
    let services_run = service_controller
        .run(reconcile_service, service_error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "hexcoreservice controller event");
            }
        });
    tokio::join!(catalogs_run, services_run);
}

// ---------------------------------------------------------------------------------------------
// ModelCatalog
// ---------------------------------------------------------------------------------------------

async fn reconcile_catalog(catalog: Arc<ModelCatalog>, ctx: Arc<Context>) -> Result<Action, Error> {
    let labels = vec![("controller", "modelcatalog".to_string())];
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let started = Instant::now();
    let result = reconcile_catalog_inner(&catalog, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_catalog_inner(catalog: &ModelCatalog, ctx: &Context) -> Result<Action, Error> {
    let namespace = catalog
        .namespace()
        .ok_or_else(|| Error::NoNamespace(catalog.name_any()))?;
    if catalog.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let previous = catalog.status.clone().unwrap_or_default();
    let generation = catalog.metadata.generation;
    let mut status = ModelCatalogStatus {
        observed_generation: generation,
        ..previous.clone()
    };
    let decided = match desired::merge_catalogs([(catalog.name_any().as_str(), &catalog.spec)]) {
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
    status.conditions = Some(conditions::merge(
        previous.conditions.as_deref().unwrap_or_default(),
        &[decided],
        generation,
        Timestamp::now(),
    ));
    if status != previous {
        let api: Api<ModelCatalog> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &catalog.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        ctx.metrics.write("ModelCatalog/status");
    }
    Ok(Action::requeue(Duration::from_secs(3600)))
}

fn catalog_error_policy(catalog: Arc<ModelCatalog>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(catalog = %catalog.name_any(), %error, "modelcatalog reconcile failed");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&vec![
            ("controller", "modelcatalog".to_string()),
            ("reason", error.reason().to_string()),
        ])
        .inc();
    Action::requeue(Duration::from_secs(5))
}

// ---------------------------------------------------------------------------------------------
// HexCoreService
// ---------------------------------------------------------------------------------------------

async fn reconcile_service(hcs: Arc<HexCoreService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let labels = vec![("controller", "hexcoreservice".to_string())];
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let started = Instant::now();
    let result = reconcile_service_inner(&hcs, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let key = key_of(hcs.as_ref());
    match result {
        Ok(Verdict::Settled) => {
            ctx.memo(&key, |m| m.attempts = 0);
            Ok(Action::requeue(ctx.settings.resync))
        }
        Ok(Verdict::Paused) => {
            ctx.memo(&key, |m| m.attempts = 0);
            Ok(Action::await_change())
        }
        Ok(Verdict::Retry) => {
            let attempt = ctx.memo(&key, |m| {
                m.attempts = m.attempts.saturating_add(1);
                m.attempts - 1
            });
            Ok(Action::requeue(refresh::backoff(attempt, ctx.settings.backoff_cap)))
        }
        Err(error) => Err(error),
    }
}

fn service_error_policy(hcs: Arc<HexCoreService>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(service = %hcs.name_any(), namespace = ?hcs.namespace(), %error, "hexcoreservice reconcile failed");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&vec![
            ("controller", "hexcoreservice".to_string()),
            ("reason", error.reason().to_string()),
        ])
        .inc();
    let attempt = ctx.memo(&key_of(hcs.as_ref()), |m| {
        m.attempts = m.attempts.saturating_add(1);
        m.attempts - 1
    });
    Action::requeue(refresh::backoff(attempt, ctx.settings.backoff_cap))
}

/// How a reconcile ended, deciding when the next one runs.
enum Verdict {
    /// Everything converged: re-check at the resync period.
    Settled,
    /// `spec.paused`: wait for a change.
    Paused,
    /// Not there yet (replicas unconverged, missing references, rejected writes): back off.
    Retry,
}

/// The problems found in one reconcile, each a reason and a message.
#[derive(Default)]
struct Problems(Vec<(&'static str, String)>);

impl Problems {
    fn push(&mut self, reason: &'static str, message: impl Into<String>) {
        self.0.push((reason, message.into()));
    }
    fn first_reason(&self) -> Option<&'static str> {
        self.0.first().map(|(r, _)| *r)
    }
    fn message(&self) -> String {
        self.0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")
    }
}

async fn reconcile_service_inner(hcs: &HexCoreService, ctx: &Context) -> Result<Verdict, Error> {
    let namespace = hcs.namespace().ok_or_else(|| Error::NoNamespace(hcs.name_any()))?;
    if hcs.meta().deletion_timestamp.is_some() {
        // Children carry controller owner references; the garbage collector removes them.
        return Ok(Verdict::Paused);
    }
    // Selecting from a cache that has not listed the catalogs yet would deliver an empty (or
    // partial) catalog to running replicas after every operator restart.
    match tokio::time::timeout(Duration::from_secs(30), ctx.catalogs.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::CacheNotReady),
    }
    let name = hcs.name_any();
    let names = Names::of(&name);
    let generation = hcs.metadata.generation;
    let previous = hcs.status.clone().unwrap_or_default();
    let previous_conditions = previous.conditions.clone().unwrap_or_default();
    let client = &ctx.client;
    let status_api: Api<HexCoreService> = Api::namespaced(client.clone(), &namespace);

    if hcs.spec.paused == Some(true) {
        let mut status = previous.clone();
        status.observed_generation = generation;
        status.conditions = Some(conditions::merge(
            &previous_conditions,
            &[Decided::new(
                conditions::RECONCILIATION_PAUSED,
                true,
                "Paused",
                "spec.paused is true: the operator changes nothing but this status",
            )],
            generation,
            Timestamp::now(),
        ));
        write_status(ctx, &status_api, &name, &previous, &status).await?;
        if !conditions::is_true(&previous_conditions, conditions::RECONCILIATION_PAUSED) {
            publish(
                ctx,
                hcs,
                EventType::Normal,
                "Paused",
                "reconciliation paused (spec.paused)",
            )
            .await;
        }
        return Ok(Verdict::Paused);
    }

    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let deploy_api: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let svc_api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let pdb_api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &namespace);
    let slice_api: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);

    let mut degraded = Problems::default();
    let mut applied: Vec<String> = Vec::new();

    // 1. Catalogs: the selected ones, merged; the previous catalog stays on any problem.
    let selection = desired::select_and_merge(hcs, ctx.catalogs.state().iter().map(|c| c.as_ref()));
    ctx.memo(&key_of(hcs), |m| {
        m.catalogs = selection.selected.union(&selection.listed).cloned().collect();
    });
    let merged = match selection.merged {
        Ok(merged) => Some(merged),
        Err(error) => {
            degraded.push(error.reason(), format!("{error}; serving the previous catalog"));
            None
        }
    };

    // 2. Secrets: the admin token (created once if the operator owns it) and every reference.
    if hcs.spec.auth.admin_token_secret_ref.is_none() && secret_api.get_opt(&names.admin_token_secret).await?.is_none()
    {
        let token = desired::random_token().map_err(|e| Error::Random(e.to_string()))?;
        let secret: Secret = serde_json::from_value(desired::admin_token_secret(hcs, &token))
            .map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
        if apply::create_if_absent(&secret_api, &secret).await? {
            ctx.metrics.write("Secret");
            applied.push(format!("created Secret {}", names.admin_token_secret));
        }
    }
    let mut live_secrets = BTreeMap::new();
    for reference in desired::referenced_secrets(hcs) {
        if let Some(secret) = secret_api.get_opt(&reference.name).await? {
            live_secrets.insert(reference.name, secret);
        }
    }
    let secrets = desired::read_secrets(hcs, &live_secrets);
    for problem in &secrets.problems {
        degraded.push(problem.reason(), problem.to_string());
    }
    let secrets_ok = secrets.problems.is_empty();
    let admin_token = secrets.admin_token.clone();

    // 3. Children.
    let live_catalog = cm_api.get_opt(&names.catalog_config_map).await?;
    let mut delivered_sha = live_catalog
        .as_ref()
        .and_then(|cm| cm.data.as_ref()?.get(desired::CATALOG_KEY).cloned())
        .map(|json| desired::sha256_hex(json.as_bytes()));
    if let Some(merged) = &merged {
        let outcome = apply_child(
            ctx,
            &cm_api,
            live_catalog.as_ref(),
            desired::catalog_config_map(hcs, merged),
            &mut degraded,
        )
        .await?;
        note(&mut applied, outcome, "ConfigMap", &names.catalog_config_map);
        if outcome.is_some() {
            delivered_sha = Some(merged.sha256.clone());
        }
    }

    let env = desired::environment(hcs);
    let live_env = cm_api.get_opt(&names.env_config_map).await?;
    let outcome = apply_child(
        ctx,
        &cm_api,
        live_env.as_ref(),
        desired::env_config_map(hcs, &env),
        &mut degraded,
    )
    .await?;
    note(&mut applied, outcome, "ConfigMap", &names.env_config_map);

    let live_deployment = deploy_api.get_opt(&names.deployment).await?;
    // Without its Secrets or any catalog a pod cannot start; keep what runs instead.
    if secrets_ok && delivered_sha.is_some() {
        let config_hash = desired::config_hash(&env, &secrets.digests);
        let outcome = apply_child(
            ctx,
            &deploy_api,
            live_deployment.as_ref(),
            desired::deployment(hcs, &config_hash),
            &mut degraded,
        )
        .await?;
        note(&mut applied, outcome, "Deployment", &names.deployment);
    }

    let live_service = svc_api.get_opt(&names.service).await?;
    let outcome = apply_child(
        ctx,
        &svc_api,
        live_service.as_ref(),
        desired::service(hcs),
        &mut degraded,
    )
    .await?;
    note(&mut applied, outcome, "Service", &names.service);

    let live_pdb = pdb_api.get_opt(&names.pdb).await?;
    match desired::pod_disruption_budget(hcs) {
        Some(pdb) => {
            let outcome = apply_child(ctx, &pdb_api, live_pdb.as_ref(), pdb, &mut degraded).await?;
            note(&mut applied, outcome, "PodDisruptionBudget", &names.pdb);
        }
        None => {
            let ours = live_pdb.as_ref().is_some_and(|p| {
                p.owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == hcs.metadata.uid.as_ref())
            });
            if ours {
                pdb_api.delete(&names.pdb, &DeleteParams::default()).await?;
                ctx.metrics.write("PodDisruptionBudget/delete");
                applied.push(format!("deleted PodDisruptionBudget {}", names.pdb));
            }
        }
    }
    if !applied.is_empty() {
        tracing::info!(service = %name, %namespace, changes = ?applied, "applied children");
        publish(ctx, hcs, EventType::Normal, "Applied", &applied.join(", ")).await;
    }

    // 4. Delivery: every ready replica must report the delivered catalog's hash.
    let slices = slice_api
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={}", names.service)))
        .await?;
    let endpoints = refresh::ready_endpoints(&slices.items);
    let mut converged = 0usize;
    let mut refreshed_any = false;
    let mut delivery_problems: Vec<String> = Vec::new();
    let mut entry_errors: Vec<String> = Vec::new();
    match (&delivered_sha, &admin_token) {
        (Some(sha), Some(token)) if !endpoints.is_empty() => {
            let outcomes =
                futures::future::join_all(endpoints.iter().map(|ep| ctx.refresh.converge(ep, token, sha))).await;
            for (endpoint, outcome) in endpoints.iter().zip(&outcomes) {
                ctx.metrics
                    .refreshes
                    .get_or_create(&vec![("outcome", outcome.label().to_string())])
                    .inc();
                match outcome {
                    refresh::Outcome::Converged { refreshed, errors } => {
                        converged += 1;
                        refreshed_any |= *refreshed;
                        entry_errors.extend(errors.iter().cloned());
                    }
                    refresh::Outcome::Stale { reported } => delivery_problems.push(format!(
                        "{} reports catalog {}",
                        endpoint.pod.as_deref().unwrap_or(&endpoint.authority),
                        reported.as_deref().map(short).unwrap_or("none")
                    )),
                    refresh::Outcome::Failed { error } => delivery_problems.push(error.clone()),
                }
            }
        }
        _ => {}
    }
    entry_errors.sort();
    entry_errors.dedup();

    // 5. Status.
    let desired_replicas = hcs.spec.replicas.unwrap_or(1);
    let deployment_status = live_deployment
        .as_ref()
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    let all_converged = converged == endpoints.len();
    let serving = !endpoints.is_empty() || desired_replicas == 0;
    let catalog_current = merged.is_some() && degraded.0.iter().all(|(r, _)| !r.starts_with("Catalog"));

    let mut decided = vec![Decided::new(
        conditions::RECONCILIATION_PAUSED,
        false,
        "NotPaused",
        "spec.paused is not set",
    )];
    decided.push(match degraded.first_reason() {
        Some(reason) => Decided::new(conditions::DEGRADED, true, reason, degraded.message()),
        None => Decided::new(conditions::DEGRADED, false, "AsExpected", "no problems found"),
    });
    let sha_text = delivered_sha.as_deref().map(short).unwrap_or("none");
    let synced = if !catalog_current {
        Decided::new(
            conditions::CATALOG_SYNCED,
            false,
            degraded.first_reason().unwrap_or("CatalogPending"),
            degraded.message(),
        )
    } else if !all_converged {
        Decided::new(
            conditions::CATALOG_SYNCED,
            false,
            "RefreshPending",
            format!(
                "{converged}/{} ready replicas serve catalog {sha_text}: {}",
                endpoints.len(),
                delivery_problems.join("; ")
            ),
        )
    } else {
        let mut message = format!(
            "{converged}/{} ready replicas serve catalog {sha_text}",
            endpoints.len()
        );
        if !entry_errors.is_empty() {
            message.push_str(&format!("; model load errors reported: {}", entry_errors.join("; ")));
        }
        Decided::new(conditions::CATALOG_SYNCED, true, "Delivered", message)
    };
    decided.push(synced);
    let rolling = deployment_status.updated_replicas.unwrap_or(0) < desired_replicas
        || deployment_status.ready_replicas.unwrap_or(0) < desired_replicas;
    decided.push(if !all_converged {
        Decided::new(
            conditions::PROGRESSING,
            true,
            "DeliveringCatalog",
            format!("refreshing replicas onto catalog {sha_text}"),
        )
    } else if rolling {
        Decided::new(
            conditions::PROGRESSING,
            true,
            "RollingOut",
            format!(
                "{}/{desired_replicas} replicas updated, {} ready",
                deployment_status.updated_replicas.unwrap_or(0),
                deployment_status.ready_replicas.unwrap_or(0)
            ),
        )
    } else {
        Decided::new(conditions::PROGRESSING, false, "Stable", "nothing in progress")
    });
    let ready = degraded.0.is_empty() && catalog_current && all_converged && serving;
    decided.push(if ready {
        Decided::new(
            conditions::READY,
            true,
            "Converged",
            format!(
                "{converged}/{} ready replicas serve catalog {sha_text}",
                endpoints.len()
            ),
        )
    } else if let Some(reason) = degraded.first_reason() {
        Decided::new(conditions::READY, false, reason, degraded.message())
    } else if !serving {
        Decided::new(
            conditions::READY,
            false,
            "NoReadyReplicas",
            "no ready replica yet (no ready endpoint in the Service's EndpointSlices)",
        )
    } else {
        Decided::new(
            conditions::READY,
            false,
            "CatalogNotConverged",
            format!(
                "{converged}/{} ready replicas serve catalog {sha_text}",
                endpoints.len()
            ),
        )
    });

    let now = Timestamp::now();
    let status = HexCoreServiceStatus {
        observed_generation: generation,
        replicas: Some(deployment_status.replicas.unwrap_or(0)),
        ready_replicas: Some(deployment_status.ready_replicas.unwrap_or(0)),
        selector: Some(desired::selector_string(&name)),
        catalog_sha256: delivered_sha.clone(),
        catalog_convergence: Some(format!("{converged}/{} on {sha_text}", endpoints.len())),
        converged_replicas: Some(converged as i32),
        catalogs: merged
            .as_ref()
            .map(|m| m.catalogs.clone())
            .or(previous.catalogs.clone()),
        last_refresh_time: if refreshed_any {
            Some(Time(now))
        } else {
            previous.last_refresh_time.clone()
        },
        conditions: Some(conditions::merge(&previous_conditions, &decided, generation, now)),
    };
    write_status(ctx, &status_api, &name, &previous, &status).await?;

    // Events on transitions only, so a steady state publishes nothing.
    let was_degraded = conditions::find(&previous_conditions, conditions::DEGRADED);
    if let Some(reason) = degraded.first_reason()
        && was_degraded.is_none_or(|c| c.status != "True" || c.reason != reason)
    {
        publish(ctx, hcs, EventType::Warning, reason, &degraded.message()).await;
    }
    if ready && !conditions::is_true(&previous_conditions, conditions::READY) {
        publish(
            ctx,
            hcs,
            EventType::Normal,
            "CatalogDelivered",
            &format!(
                "{converged}/{} ready replicas serve catalog {sha_text}",
                endpoints.len()
            ),
        )
        .await;
    }

    Ok(if ready { Verdict::Settled } else { Verdict::Retry })
}

/// Applies one child; an API rejection of the object itself (4xx other than conflicts) becomes
/// a `Degraded` problem instead of an error, so a bad spec is reported, not retried hot.
async fn apply_child<K>(
    ctx: &Context,
    api: &Api<K>,
    live: Option<&K>,
    desired: serde_json::Value,
    degraded: &mut Problems,
) -> Result<Option<Outcome>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match apply::apply(api, live, desired).await {
        Ok(outcome) => {
            if outcome.wrote() {
                ctx.metrics.write(&K::kind(&()));
            }
            Ok(Some(outcome))
        }
        Err(kube::Error::Api(status))
            if (400..500).contains(&status.code) && status.code != 409 && status.code != 429 =>
        {
            degraded.push(
                "ApplyRejected",
                format!("the API server rejected the {}: {}", K::kind(&()), status.message),
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn note(applied: &mut Vec<String>, outcome: Option<Outcome>, kind: &str, name: &str) {
    match outcome {
        Some(Outcome::Created) => applied.push(format!("created {kind} {name}")),
        Some(Outcome::Updated) => applied.push(format!("updated {kind} {name}")),
        _ => {}
    }
}

async fn write_status(
    ctx: &Context,
    api: &Api<HexCoreService>,
    name: &str,
    previous: &HexCoreServiceStatus,
    status: &HexCoreServiceStatus,
) -> Result<(), Error> {
    if status == previous {
        return Ok(());
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    ctx.metrics.write("HexCoreService/status");
    Ok(())
}

async fn publish(ctx: &Context, hcs: &HexCoreService, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    match ctx.recorder.publish(&event, &hcs.object_ref(&())).await {
        Ok(()) => ctx.metrics.write("Event"),
        Err(error) => tracing::debug!(%error, "cannot publish an event"),
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::crd::{CatalogSelection, ModelCatalogSpec};

    fn catalog(ns: &str, name: &str, labels: &[(&str, &str)]) -> ModelCatalog {
        let mut c = ModelCatalog::new(name, ModelCatalogSpec { models: vec![] });
        c.metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        };
        c
    }

    fn service(ns: &str, selection: CatalogSelection) -> HexCoreService {
        let mut h: HexCoreService = serde_json::from_value(serde_json::json!({
            "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService",
            "metadata": {"name": "svc", "namespace": ns},
            "spec": {"image": "i", "catalogs": {}, "registry": {"allowedHosts": ["h"]}, "auth": {"mode": "forward_auth"}}
        }))
        .unwrap();
        h.spec.catalogs = selection;
        h
    }

    #[test]
    fn selection_by_name_or_label_within_the_namespace_only() {
        let by_name = service(
            "a",
            CatalogSelection {
                selector: None,
                names: Some(vec!["one".into()]),
            },
        );
        assert!(selects(&by_name, &catalog("a", "one", &[])));
        assert!(!selects(&by_name, &catalog("a", "two", &[])));
        assert!(
            !selects(&by_name, &catalog("b", "one", &[])),
            "other namespaces never match"
        );

        let by_label = service(
            "a",
            CatalogSelection {
                selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("tier".into(), "prod".into())])),
                    match_expressions: None,
                }),
                names: None,
            },
        );
        assert!(selects(&by_label, &catalog("a", "x", &[("tier", "prod")])));
        assert!(!selects(&by_label, &catalog("a", "x", &[("tier", "dev")])));
        assert!(!selects(&by_label, &catalog("b", "x", &[("tier", "prod")])));
    }
}
