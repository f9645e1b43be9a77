//! What one HexCoreService reconcile reads before deciding anything: the resource, the
//! ModelCatalogs of its namespace, its owned children, pods and EndpointSlices (all from the
//! controller's reflector stores), the Secrets it references (one GET each: Secrets are not
//! cached, see `controller`), and what each replica reports.
//!
//! [`Observed`] is plain data, so `decide` is a pure function of it: unit tests build one by
//! hand, and `render` builds one from YAML files.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use crate::controller::{Context, Error};
use crate::crd::{HexCoreService, ModelCatalog};
use crate::desired::{Child, Names};
use crate::replicas::{self, ReplicaRead};
use crate::secrets;

/// The children of one HexCoreService as they are in the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveChildren {
    pub catalog_config_map: Option<ConfigMap>,
    pub env_config_map: Option<ConfigMap>,
    pub data_claim: Option<PersistentVolumeClaim>,
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    pub pdb: Option<PodDisruptionBudget>,
}

impl LiveChildren {
    /// The live object `child` would replace, as JSON (for the containment check).
    pub fn value_of(&self, child: &Child) -> Option<serde_json::Value> {
        fn value<K: serde::Serialize>(object: &Option<K>) -> Option<serde_json::Value> {
            object.as_ref().and_then(|o| serde_json::to_value(o).ok())
        }
        match child {
            Child::ConfigMap(cm) => {
                let live = [&self.catalog_config_map, &self.env_config_map]
                    .into_iter()
                    .find(|live| live.as_ref().and_then(|l| l.metadata.name.as_ref()) == cm.metadata.name.as_ref())?;
                value(live)
            }
            Child::PersistentVolumeClaim(_) => value(&self.data_claim),
            Child::Deployment(_) => value(&self.deployment),
            Child::Service(_) => value(&self.service),
            Child::PodDisruptionBudget(_) => value(&self.pdb),
        }
    }

    /// Replaces the live object of `child`'s kind and name with `child` (what the server returned
    /// from an apply).
    pub fn replace(&mut self, child: Child, names: &Names) {
        match child {
            Child::ConfigMap(cm) if cm.metadata.name.as_deref() == Some(names.catalog_config_map.as_str()) => {
                self.catalog_config_map = Some(cm)
            }
            Child::ConfigMap(cm) => self.env_config_map = Some(cm),
            Child::PersistentVolumeClaim(o) => self.data_claim = Some(o),
            Child::Deployment(o) => self.deployment = Some(*o),
            Child::Service(o) => self.service = Some(o),
            Child::PodDisruptionBudget(o) => self.pdb = Some(o),
        }
    }
}

/// What this reconcile's own writes returned; `decide` runs a second time with them, so the
/// status it writes reflects a rejected object or a refreshed replica at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// Each child the API server refused.
    pub rejected: Vec<Rejection>,
    /// Addresses of the replicas asked to refresh (their new reads replaced the old ones).
    pub refreshed: Vec<String>,
}

/// A child the API server refused to apply (a 4xx other than conflicts and throttling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// Everything `decide` needs, read once per reconcile.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The resource, with the status the previous reconcile wrote.
    pub hcs: HexCoreService,
    /// The ModelCatalogs of its namespace (the selection candidates).
    pub catalogs: Vec<ModelCatalog>,
    /// The referenced Secrets that exist, by name.
    pub secrets: BTreeMap<String, Secret>,
    pub live: LiveChildren,
    /// Its pods (label `app.kubernetes.io/instance`), for why they do not run.
    pub pods: Vec<Pod>,
    /// What each endpoint of its Service reported, sorted by pod.
    pub replicas: Vec<ReplicaRead>,
    /// A fresh random token, used only when the admin-token Secret must be created (randomness
    /// is read here so that `decide` stays a function of its input).
    pub new_admin_token: String,
    /// The image of pods whose spec names none: the operator's own version.
    pub default_image: String,
    pub written: Written,
}

impl Observed {
    /// An observation with nothing live: the state before the operator's first write (and what
    /// `render` starts from).
    pub fn of(hcs: HexCoreService, default_image: &str, new_admin_token: &str) -> Self {
        Self {
            hcs,
            catalogs: Vec::new(),
            secrets: BTreeMap::new(),
            live: LiveChildren::default(),
            pods: Vec::new(),
            replicas: Vec::new(),
            new_admin_token: new_admin_token.to_string(),
            default_image: default_image.to_string(),
            written: Written::default(),
        }
    }

    pub fn names(&self) -> Names {
        Names::of(&self.hcs.name_any())
    }
}

fn get<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .get(&ObjectRef::new(name).within(namespace))
        .map(|o| o.as_ref().clone())
}

/// Reads everything [`Observed`] holds. A paused or deleted resource needs nothing but itself.
pub async fn observe(ctx: &Context, hcs: &HexCoreService) -> Result<Observed, Error> {
    let namespace = hcs.namespace().ok_or_else(|| Error::NoNamespace(hcs.name_any()))?;
    let default_image = ctx.settings.default_service_image.clone();
    let new_admin_token = secrets::random_token().map_err(|e| Error::Random(e.to_string()))?;
    let mut observed = Observed::of(hcs.clone(), &default_image, &new_admin_token);
    if hcs.spec.paused == Some(true) || hcs.metadata.deletion_timestamp.is_some() {
        return Ok(observed);
    }
    ctx.stores.wait_until_ready().await?;
    let names = observed.names();
    let stores = &ctx.stores;

    observed.catalogs = stores
        .catalogs
        .state()
        .iter()
        .filter(|c| c.namespace().as_deref() == Some(namespace.as_str()))
        .map(|c| c.as_ref().clone())
        .collect();

    let secret_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    for reference in secrets::referenced_secrets(hcs) {
        if observed.secrets.contains_key(&reference.name) {
            continue;
        }
        if let Some(secret) = secret_api.get_opt(&reference.name).await? {
            observed.secrets.insert(reference.name, secret);
        }
    }

    observed.live = LiveChildren {
        catalog_config_map: get(&stores.config_maps, &namespace, &names.catalog_config_map),
        env_config_map: get(&stores.config_maps, &namespace, &names.env_config_map),
        data_claim: get(&stores.claims, &namespace, &names.data_claim),
        deployment: get(&stores.deployments, &namespace, &names.deployment),
        service: get(&stores.services, &namespace, &names.service),
        pdb: get(&stores.pdbs, &namespace, &names.pdb),
    };
    let name = hcs.name_any();
    observed.pods = stores
        .pods
        .state()
        .iter()
        .filter(|p| {
            p.namespace().as_deref() == Some(namespace.as_str())
                && p.labels().get(crate::desired::INSTANCE_LABEL) == Some(&name)
        })
        .map(|p| p.as_ref().clone())
        .collect();
    let slices: Vec<_> = stores
        .slices
        .state()
        .iter()
        .filter(|s| {
            s.namespace().as_deref() == Some(namespace.as_str())
                && s.labels().get("kubernetes.io/service-name") == Some(&names.service)
        })
        .map(|s| s.as_ref().clone())
        .collect();

    let token = secrets::read_secrets(hcs, &observed.secrets).admin_token;
    let endpoints = replicas::endpoints(&slices);
    observed.replicas =
        futures::future::join_all(endpoints.iter().map(|e| ctx.replicas.read(e, token.as_deref()))).await;
    Ok(observed)
}
