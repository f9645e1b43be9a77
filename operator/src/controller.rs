//! The reconcilers and what they watch. `ModelCatalog`: validate, summarise, say whether a
//! service loaded it. `HexCoreService`: observe → decide → act (see `observe`, `decide`, `act`).
//!
//! What is watched, and why it stays small in a large cluster:
//! - owned children (ConfigMaps, Deployments, Services, PodDisruptionBudgets, the embedded
//!   store's PersistentVolumeClaims), the pods and the EndpointSlices of the operator's Services:
//!   each by the label `app.kubernetes.io/managed-by=hex-core-operator` (the endpointslice
//!   controller copies a Service's labels onto its slices), into a reflector store that `observe`
//!   reads instead of a GET per child per reconcile;
//! - Secrets: metadata only (no content), in small pages, and not stored; a change of a Secret a
//!   service references triggers that service, whose reconcile GETs just the Secrets it uses.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::catalog_status::decide_catalog;
use crate::crd::{GROUP, HexCoreService, ModelCatalog, VERSION};
use crate::decide::{Verdict, decide};
use crate::desired::{INSTANCE_LABEL, MANAGER};
use crate::metrics::Metrics;
use crate::observe::observe;
use crate::replicas::{self, ReplicaClient};
use crate::{act, secrets};

/// Label every child carries; owned-object watches select on it.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=hex-core-operator";
/// The EndpointSlices of the operator's Services (label copied from the Service).
pub const SLICE_SELECTOR: &str = "app.kubernetes.io/managed-by=hex-core-operator,kubernetes.io/service-name";
/// Page size of the Secret metadata list: a Secret's metadata can carry a large
/// `kubectl.kubernetes.io/last-applied-configuration` annotation (the whole Secret, data
/// included; the API server caps annotations at 256 KiB per object), so a page holds at most
/// about 2.5 MiB. With pages of 50 the operator peaked at 73 MiB with 240 such Secrets, with 10 at
/// 31 MiB (benches/memory.rs, `HEX_BENCH_LAST_APPLIED=1`).
pub const SECRET_PAGE_SIZE: u32 = 10;
/// How long a reconcile waits for the reflector stores' first list.
const CACHE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error("cannot generate the admin token: {0}")]
    Random(String),
    #[error("the operator's caches are not synced yet")]
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

/// The image of HexCoreServices without `spec.image`: `repository` at the operator's version.
pub fn default_service_image(repository: &str) -> String {
    format!("{repository}:{}", env!("CARGO_PKG_VERSION"))
}

/// Repository of the default service image when the operator is given none.
pub const DEFAULT_SERVICE_IMAGE_REPOSITORY: &str = "hex-core-service";

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
    /// Image of HexCoreServices whose spec names none.
    pub default_service_image: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_timeout: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(60),
            resync: Duration::from_secs(300),
            instance: "hex-core-operator".to_string(),
            default_service_image: default_service_image(DEFAULT_SERVICE_IMAGE_REPOSITORY),
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

/// The reflector stores `observe` reads.
#[derive(Clone)]
pub struct Stores {
    pub catalogs: Store<ModelCatalog>,
    pub hexcoreservices: Store<HexCoreService>,
    pub config_maps: Store<ConfigMap>,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub pdbs: Store<PodDisruptionBudget>,
    pub claims: Store<PersistentVolumeClaim>,
    pub pods: Store<Pod>,
    pub slices: Store<EndpointSlice>,
}

impl Stores {
    /// Waits until every store has listed once: deciding from a store that has not would
    /// recreate children that exist, or deliver an empty catalog after every operator restart.
    pub async fn wait_until_ready(&self) -> Result<(), Error> {
        let all = async {
            self.catalogs.wait_until_ready().await?;
            self.hexcoreservices.wait_until_ready().await?;
            self.config_maps.wait_until_ready().await?;
            self.deployments.wait_until_ready().await?;
            self.services.wait_until_ready().await?;
            self.pdbs.wait_until_ready().await?;
            self.claims.wait_until_ready().await?;
            self.pods.wait_until_ready().await?;
            self.slices.wait_until_ready().await
        };
        match tokio::time::timeout(CACHE_WAIT, all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Error::CacheNotReady),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub stores: Stores,
    pub replicas: ReplicaClient,
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

/// A reflector over `api` narrowed by `config`: its store, and its stream of touched objects
/// (which must be polled for the store to fill; the controller polls it as a trigger).
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer).touched_objects();
    (reader, stream)
}

/// The HexCoreService named by `label` of `object`, in its namespace.
fn owner_by_label<K: Resource>(object: &K, label: &str) -> Option<ObjectRef<HexCoreService>> {
    let name = object.labels().get(label)?;
    Some(ObjectRef::new(name).within(&object.namespace()?))
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Runs both controllers over one scope (`None`: all namespaces) until the future is dropped.
pub async fn run(client: Client, namespace: Option<String>, settings: Settings, metrics: Arc<Metrics>) {
    let replicas = match ReplicaClient::new(settings.refresh_timeout) {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "cannot build the replicas' HTTP client");
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
    let service_controller = Controller::new(api::<HexCoreService>(&client, &namespace), watcher::Config::default())
        .with_config(controller_config);

    let (config_maps, config_map_events) = reflect(api::<ConfigMap>(&client, &namespace), owned());
    let (deployments, deployment_events) = reflect(api::<Deployment>(&client, &namespace), owned());
    let (services, service_events) = reflect(api::<Service>(&client, &namespace), owned());
    let (pdbs, pdb_events) = reflect(api::<PodDisruptionBudget>(&client, &namespace), owned());
    let (claims, claim_events) = reflect(api::<PersistentVolumeClaim>(&client, &namespace), owned());
    let (pods, pod_events) = reflect(api::<Pod>(&client, &namespace), owned());
    let (slices, slice_events) = reflect(
        api::<EndpointSlice>(&client, &namespace),
        watcher::Config::default().labels(SLICE_SELECTOR),
    );
    // `Api<PartialObjectMeta<_>>` asks for metadata only (`as=PartialObjectMetadata`).
    let secret_events = watcher(
        api::<PartialObjectMeta<Secret>>(&client, &namespace),
        watcher::Config::default().page_size(SECRET_PAGE_SIZE),
    )
    .default_backoff()
    .touched_objects();

    let stores = Stores {
        catalogs: catalog_controller.store(),
        hexcoreservices: service_controller.store(),
        config_maps,
        deployments,
        services,
        pdbs,
        claims,
        pods,
        slices,
    };
    let memo: Arc<Mutex<HashMap<Key, Memo>>> = Arc::default();
    let ctx = Arc::new(Context {
        client: client.clone(),
        stores: stores.clone(),
        replicas,
        metrics,
        recorder,
        settings,
        memo: memo.clone(),
    });

    let by_catalog = stores.hexcoreservices.clone();
    let by_secret = stores.hexcoreservices.clone();
    let service_controller = service_controller
        .owns_stream(config_map_events)
        .owns_stream(deployment_events)
        .owns_stream(service_events)
        .owns_stream(pdb_events)
        .owns_stream(claim_events)
        .watches_stream(pod_events, |pod: Pod| owner_by_label(&pod, INSTANCE_LABEL))
        .watches_stream(slice_events, |slice: EndpointSlice| {
            owner_by_label(&slice, "kubernetes.io/service-name")
        })
        .watches_stream(secret_events, move |secret: PartialObjectMeta<Secret>| {
            let name = secret.name_any();
            by_secret
                .state()
                .into_iter()
                .filter(|h| {
                    h.namespace() == secret.namespace() && secrets::referenced_secrets(h).iter().any(|r| r.name == name)
                })
                .map(|h| ObjectRef::from_obj(h.as_ref()))
                .collect::<Vec<_>>()
        })
        .watches(
            api::<ModelCatalog>(&client, &namespace),
            watcher::Config::default(),
            move |catalog: ModelCatalog| {
                let memo = memo.lock().unwrap_or_else(|e| e.into_inner());
                let name = catalog.name_any();
                by_catalog
                    .state()
                    .into_iter()
                    .filter(|h| {
                        crate::catalog::selects(h, &catalog)
                            || (h.namespace() == catalog.namespace()
                                && memo
                                    .get(&key_of(h.as_ref()))
                                    .is_some_and(|m| m.catalogs.contains(&name)))
                    })
                    .map(|h| ObjectRef::from_obj(h.as_ref()))
                    .collect::<Vec<_>>()
            },
        );

    // A HexCoreService's status (what its replicas load) changes its catalogs' `Loaded`.
    let catalogs_of_service = stores.catalogs.clone();
    let catalog_controller = catalog_controller.watches(
        api::<HexCoreService>(&client, &namespace),
        watcher::Config::default(),
        move |hcs: HexCoreService| {
            catalogs_of_service
                .state()
                .into_iter()
                .filter(|c| crate::catalog::selects(&hcs, c))
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        },
    );

    let metrics = ctx.metrics.clone();
    let catalogs_run = catalog_controller
        .run(reconcile_catalog, catalog_error_policy, ctx.clone())
        .for_each(move |result| controller_event(result.err(), "modelcatalog", metrics.clone()));
    let metrics = ctx.metrics.clone();
    let services_run = service_controller
        .run(reconcile_service, service_error_policy, ctx.clone())
        .for_each(move |result| {
            // A reconcile scheduled for an object no longer in the store: it was deleted.
            if let Err(kube::runtime::controller::Error::ObjectNotFound(object)) = &result {
                metrics.forget_service(object.namespace.as_deref().unwrap_or_default(), &object.name);
            }
            controller_event(result.err(), "hexcoreservice", metrics.clone())
        });
    tokio::join!(catalogs_run, services_run);
}

/// A controller's error event. Reconcile failures are counted and logged where they happen; a
/// failed list or watch (kube-runtime retries it with backoff) is logged as an error and counted
/// here, since the operator does not see the objects it cannot watch: with a ClusterRole older
/// than the operator (a forbidden resource) it would otherwise look healthy and do nothing.
async fn controller_event<E: std::fmt::Display>(
    error: Option<kube::runtime::controller::Error<E, watcher::Error>>,
    controller: &'static str,
    metrics: Arc<Metrics>,
) {
    match error {
        None => {}
        Some(kube::runtime::controller::Error::QueueError(error)) => {
            metrics
                .watch_errors
                .get_or_create(&vec![("controller", controller.to_string())])
                .inc();
            metrics
                .watch_health
                .record_failure(controller, error.to_string(), std::time::Instant::now());
            tracing::error!(%error, controller, "a list or watch failed; objects it covers are not seen until it recovers (a 403 means the operator's RBAC lacks that resource)");
        }
        Some(error) => tracing::debug!(%error, controller, "controller event"),
    }
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
    ctx.stores.wait_until_ready().await?;
    let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
    let services: Vec<Arc<HexCoreService>> = ctx
        .stores
        .hexcoreservices
        .state()
        .into_iter()
        .filter(|s| in_namespace(s.namespace()))
        .collect();
    let catalogs: Vec<Arc<ModelCatalog>> = ctx
        .stores
        .catalogs
        .state()
        .into_iter()
        .filter(|c| in_namespace(c.namespace()))
        .collect();
    let catalog_refs: Vec<&ModelCatalog> = catalogs.iter().map(|c| c.as_ref()).collect();
    let status = decide_catalog(
        catalog,
        services.iter().map(|s| s.as_ref()),
        &catalog_refs,
        Timestamp::now(),
    );
    if let Some(status) = status {
        let api: Api<ModelCatalog> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({"apiVersion": format!("{GROUP}/{VERSION}"), "kind": "ModelCatalog", "status": status});
        api.patch_status(
            &catalog.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(patch),
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
        Ok(Verdict::Idle) => {
            ctx.memo(&key, |m| m.attempts = 0);
            Ok(Action::await_change())
        }
        Ok(Verdict::Retry) => {
            let attempt = ctx.memo(&key, |m| {
                m.attempts = m.attempts.saturating_add(1);
                m.attempts - 1
            });
            Ok(Action::requeue(replicas::backoff(attempt, ctx.settings.backoff_cap)))
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
    Action::requeue(replicas::backoff(attempt, ctx.settings.backoff_cap))
}

/// Observe, decide, act. When the plan writes, `decide` runs once more on what the writes
/// returned (a rejected object, a refreshed replica), so the status written says so now rather
/// than one reconcile later; that second plan's writes are not carried out.
async fn reconcile_service_inner(hcs: &HexCoreService, ctx: &Context) -> Result<Verdict, Error> {
    let mut observed = observe(ctx, hcs).await?;
    let plan = decide(&observed, Timestamp::now());
    if plan.verdict != Verdict::Idle {
        ctx.memo(&key_of(hcs), |m| m.catalogs = plan.catalogs_used.clone());
    }
    let plan = if plan.writes() {
        act::write(ctx, &plan, &mut observed).await?;
        decide(&observed, Timestamp::now())
    } else {
        plan
    };
    act::report(ctx, hcs, &plan).await?;
    // The status just written, or the one found when nothing changed.
    let status = plan.status.as_ref().or(hcs.status.as_ref());
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let (namespace, name) = key_of(hcs);
    ctx.metrics.record_service_conditions(&namespace, &name, conditions);
    Ok(plan.verdict)
}
