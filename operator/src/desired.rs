//! Desired state: pure functions from a HexCoreService (and its selected ModelCatalogs) to the
//! objects the operator applies. No I/O here; the apply layer compares and writes.
//!
//! Objects are built as JSON values because that is what server-side apply sends; unit tests
//! deserialize them into the typed k8s-openapi structs, which proves they are well-formed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::core::{Selector, SelectorExt};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::crd::{CatalogModel, HexCoreService, ModelCatalog, ModelCatalogSpec, SecretKeyRef};

/// Field manager of every server-side apply the operator makes.
pub const MANAGER: &str = "hex-core-operator";
/// Pod template annotation: hash of the environment configuration (a change rolls the pods).
pub const CONFIG_HASH_ANNOTATION: &str = "hex-core.dev/config-hash";
/// Object annotation: hash of the desired object the operator last applied.
pub const APPLIED_HASH_ANNOTATION: &str = "hex-core.dev/applied-hash";
/// Key of the catalog file in the catalog ConfigMap.
pub const CATALOG_KEY: &str = "catalog.json";
/// Where the catalog ConfigMap is mounted; `REGISTRY_CATALOG_FILE` points into it.
pub const CATALOG_DIR: &str = "/etc/hex-core/catalog";
/// Where the admin-token Secret is mounted; the file name is `token`.
pub const ADMIN_TOKEN_DIR: &str = "/var/run/hex-core/admin";
/// Key of the token in the operator-created admin-token Secret.
pub const ADMIN_TOKEN_KEY: &str = "token";
/// Name of the container port (and Service port, and EndpointSlice port).
pub const PORT_NAME: &str = "http";
pub const CONTAINER_NAME: &str = "hex-core-service";
const DEFAULT_PORT: i32 = 8080;
const DATA_DIR: &str = "/var/lib/hex-core/data";

/// Names of the children of one HexCoreService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub service: String,
    pub catalog_config_map: String,
    pub env_config_map: String,
    pub deployment: String,
    pub pdb: String,
    pub admin_token_secret: String,
}

impl Names {
    pub fn of(hcs_name: &str) -> Self {
        Self {
            service: hcs_name.to_string(),
            catalog_config_map: format!("{hcs_name}-catalog"),
            env_config_map: format!("{hcs_name}-env"),
            deployment: hcs_name.to_string(),
            pdb: hcs_name.to_string(),
            admin_token_secret: format!("{hcs_name}-admin-token"),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// Catalog merge
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// A referenced Secret (or key) that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    #[error("Secret {name:?} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("Secret {name:?} has no key {key:?}")]
    KeyNotFound { name: String, key: String },
}

impl SecretProblem {
    /// The condition reason reporting this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            SecretProblem::NotFound { .. } => "SecretNotFound",
            SecretProblem::KeyNotFound { .. } => "SecretKeyNotFound",
        }
    }
}

/// What the pods' Secrets contribute: content digests (for the config hash) and the admin token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretsRead {
    /// `name/key` → SHA-256 of the value.
    pub digests: BTreeMap<String, String>,
    /// The admin token, trimmed.
    pub admin_token: Option<String>,
    pub problems: Vec<SecretProblem>,
}

/// The value of `key` in `secret` (`data`, or `stringData` for a Secret read from a file).
fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(bytes.0.clone());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.as_bytes().to_vec())
}

/// Reads every Secret `hcs` references from `secrets` (by name, same namespace).
pub fn read_secrets(hcs: &HexCoreService, secrets: &BTreeMap<String, Secret>) -> SecretsRead {
    let namespace = kube::ResourceExt::namespace(hcs).unwrap_or_default();
    let admin_ref = admin_token_ref(hcs);
    let mut read = SecretsRead::default();
    for reference in referenced_secrets(hcs) {
        let Some(secret) = secrets.get(&reference.name) else {
            read.problems.push(SecretProblem::NotFound {
                name: reference.name.clone(),
                namespace: namespace.clone(),
            });
            continue;
        };
        let Some(bytes) = secret_value(secret, &reference.key) else {
            read.problems.push(SecretProblem::KeyNotFound {
                name: reference.name.clone(),
                key: reference.key.clone(),
            });
            continue;
        };
        if reference == admin_ref {
            read.admin_token = Some(String::from_utf8_lossy(&bytes).trim().to_string());
        }
        read.digests
            .insert(format!("{}/{}", reference.name, reference.key), sha256_hex(&bytes));
    }
    read
}

// ---------------------------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------------------------

fn selector_labels(hcs_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "hex-core-service".to_string()),
        ("app.kubernetes.io/instance".to_string(), hcs_name.to_string()),
    ])
}

/// Labels on every child.
pub fn labels(hcs_name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(hcs_name);
    labels.insert("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string());
    labels.insert("app.kubernetes.io/part-of".to_string(), "hex-core".to_string());
    labels
}

/// The pods' label selector as a string (status.selector, for the scale subresource).
pub fn selector_string(hcs_name: &str) -> String {
    selector_labels(hcs_name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata of a child. A HexCoreService read from a file (`hex-core-operator render`) has no uid,
/// so no owner reference, and possibly no namespace; those keys are then left out rather than
/// written as empty values, which keeps the objects applicable as they are.
fn metadata(hcs: &HexCoreService, name: &str) -> Value {
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(namespace) = kube::ResourceExt::namespace(hcs) {
        meta.insert("namespace".into(), json!(namespace));
    }
    meta.insert("labels".into(), json!(labels(&kube::ResourceExt::name_any(hcs))));
    if let Some(owner) = kube::Resource::controller_owner_ref(hcs, &()) {
        meta.insert("ownerReferences".into(), json!([owner]));
    }
    Value::Object(meta)
}

pub fn port(hcs: &HexCoreService) -> i32 {
    hcs.spec.server.as_ref().and_then(|s| s.port).unwrap_or(DEFAULT_PORT)
}

/// The catalog ConfigMap: one key, the exact merged catalog bytes.
pub fn catalog_config_map(hcs: &HexCoreService, catalog: &MergedCatalog) -> Value {
    let names = Names::of(&kube::ResourceExt::name_any(hcs));
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(hcs, &names.catalog_config_map),
        "data": { CATALOG_KEY: catalog.json },
    })
}

/// The admin token Secret the service reads from `AUTH_ADMIN_TOKEN_FILE` and the operator
/// presents as `Authorization: Bearer`.
pub fn admin_token_ref(hcs: &HexCoreService) -> SecretKeyRef {
    hcs.spec
        .auth
        .admin_token_secret_ref
        .clone()
        .unwrap_or_else(|| SecretKeyRef {
            name: Names::of(&kube::ResourceExt::name_any(hcs)).admin_token_secret,
            key: ADMIN_TOKEN_KEY.to_string(),
        })
}

/// The operator-created admin token Secret (created once; never updated by reconcile).
pub fn admin_token_secret(hcs: &HexCoreService, token: &str) -> Value {
    let names = Names::of(&kube::ResourceExt::name_any(hcs));
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(hcs, &names.admin_token_secret),
        "type": "Opaque",
        "stringData": { ADMIN_TOKEN_KEY: token },
    })
}

/// A random admin token: 32 bytes from the OS, hex.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn bool_str(b: bool) -> String {
    b.to_string()
}

/// The service's environment (everything but Secrets), as the env ConfigMap's data.
pub fn environment(hcs: &HexCoreService) -> BTreeMap<String, String> {
    let spec = &hcs.spec;
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };

    set("REGISTRY_CATALOG_FILE", format!("{CATALOG_DIR}/{CATALOG_KEY}"));
    set("REGISTRY_ALLOWED_HOSTS", spec.registry.allowed_hosts.join(","));
    set(
        "REGISTRY_REQUIRE_HTTPS",
        bool_str(spec.registry.require_https.unwrap_or(true)),
    );
    if let Some(cache) = &spec.registry.cache {
        set("REGISTRY_CACHE_ENABLED", bool_str(cache.enabled));
        if let Some(ttl) = cache.ttl_seconds {
            set("REGISTRY_CACHE_TTL_SECS", ttl.to_string());
        }
    }
    if let Some(ms) = spec.registry.fetch_timeout_ms {
        set("REGISTRY_FETCH_TIMEOUT_MS", ms.to_string());
    }

    let io = spec.io_adapter.as_ref();
    let io_id = io.map(|a| a.id.as_str()).unwrap_or("memory");
    set("IO_ADAPTER_ID", io_id.to_string());
    if let Some(io) = io {
        if let Some(v) = &io.version {
            set("IO_ADAPTER_VERSION", v.clone());
        }
        if let Some(v) = &io.base_url {
            set("IO_ADAPTER_BASE_URL", v.clone());
        }
        if let Some(v) = io.timeout_ms {
            set("IO_ADAPTER_TIMEOUT_MS", v.to_string());
        }
    }
    if io_id == "embedded" {
        set("IO_ADAPTER_DATA_DIR", DATA_DIR.to_string());
    }

    let auth = &spec.auth;
    set("AUTH_MODE", auth.mode.clone());
    if let Some(jwt) = &auth.jwt {
        set("AUTH_JWKS_URL", jwt.jwks_url.clone());
        set("AUTH_ISSUER", jwt.issuer.clone());
        set("AUTH_AUDIENCE", jwt.audience.clone());
        if let Some(v) = jwt.refresh_seconds {
            set("AUTH_JWKS_REFRESH_SECS", v.to_string());
        }
        if let Some(v) = jwt.leeway_seconds {
            set("AUTH_LEEWAY_SECS", v.to_string());
        }
    }
    if let Some(fwd) = &auth.forward {
        for (key, value) in [
            ("AUTH_FORWARD_SUBJECT_HEADER", &fwd.subject_header),
            ("AUTH_FORWARD_ROLES_HEADER", &fwd.roles_header),
            ("AUTH_FORWARD_SCOPES_HEADER", &fwd.scopes_header),
            ("AUTH_FORWARD_TENANT_HEADER", &fwd.tenant_header),
            ("AUTH_FORWARD_TOKEN_HEADER", &fwd.token_header),
        ] {
            if let Some(v) = value {
                set(key, v.clone());
            }
        }
    }
    if let Some(none) = &auth.none {
        set("AUTH_ALLOW_INSECURE_NONE", bool_str(none.allow_insecure));
        if let Some(v) = &none.subject {
            set("AUTH_NONE_SUBJECT", v.clone());
        }
        if let Some(v) = &none.roles {
            set("AUTH_NONE_ROLES", v.join(","));
        }
        if let Some(v) = &none.scopes {
            set("AUTH_NONE_SCOPES", v.join(" "));
        }
        if let Some(v) = &none.tenant {
            set("AUTH_NONE_TENANT", v.clone());
        }
    }
    if let Some(v) = &auth.admin_role {
        set("AUTH_ADMIN_ROLE", v.clone());
    }
    if let Some(v) = auth.enforce_scopes {
        set("AUTH_ENFORCE_SCOPES", bool_str(v));
    }
    set("AUTH_ADMIN_TOKEN_FILE", format!("{ADMIN_TOKEN_DIR}/token"));

    set("SERVER_HOST", "0.0.0.0".to_string());
    set("SERVER_PORT", port(hcs).to_string());
    if let Some(v) = spec.server.as_ref().and_then(|s| s.request_max_bytes) {
        set("SERVER_REQUEST_MAX_BYTES", v.to_string());
    }
    set(
        "LOG_LEVEL",
        spec.log_level.clone().unwrap_or_else(|| "info".to_string()),
    );
    set("LOG_FORMAT", "json".to_string());
    set(
        "METRICS_ENABLED",
        bool_str(spec.metrics.as_ref().is_some_and(|m| m.enabled)),
    );
    env
}

pub fn env_config_map(hcs: &HexCoreService, env: &BTreeMap<String, String>) -> Value {
    let names = Names::of(&kube::ResourceExt::name_any(hcs));
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(hcs, &names.env_config_map),
        "data": env,
    })
}

/// Hash that rolls the pods when their configuration changes: the environment, and the content
/// of the Secrets they read at start (`secret_digests`: name/key → sha256 of the value). The
/// catalog is deliberately NOT part of it: catalog changes are delivered by refresh, without
/// restarts.
pub fn config_hash(env: &BTreeMap<String, String>, secret_digests: &BTreeMap<String, String>) -> String {
    let doc = json!({ "env": env, "secrets": secret_digests });
    sha256_hex(doc.to_string().as_bytes())
}

/// Secrets the pods need, as references (for existence checks and the config hash).
pub fn referenced_secrets(hcs: &HexCoreService) -> Vec<SecretKeyRef> {
    let mut refs = vec![admin_token_ref(hcs)];
    if let Some(r) = hcs
        .spec
        .io_adapter
        .as_ref()
        .and_then(|a| a.credentials_secret_ref.clone())
    {
        refs.push(r);
    }
    refs
}

fn default_resources() -> Value {
    json!({
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    })
}

pub fn deployment(hcs: &HexCoreService, config_hash: &str) -> Value {
    let name = kube::ResourceExt::name_any(hcs);
    let names = Names::of(&name);
    let spec = &hcs.spec;
    let placement = spec.placement.clone().unwrap_or_default();
    let admin = admin_token_ref(hcs);

    let mut pod_annotations = placement.pod_annotations.clone().unwrap_or_default();
    pod_annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), config_hash.to_string());

    let mut env = Vec::new();
    if let Some(r) = spec.io_adapter.as_ref().and_then(|a| a.credentials_secret_ref.as_ref()) {
        env.push(json!({
            "name": "IO_ADAPTER_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}},
        }));
    }

    let mut volume_mounts = vec![
        json!({"name": "catalog", "mountPath": CATALOG_DIR, "readOnly": true}),
        json!({"name": "admin-token", "mountPath": ADMIN_TOKEN_DIR, "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    let mut volumes = vec![
        json!({"name": "catalog", "configMap": {"name": names.catalog_config_map}}),
        json!({"name": "admin-token", "secret": {
            "secretName": admin.name,
            "items": [{"key": admin.key, "path": "token"}],
            "defaultMode": 0o440,
        }}),
        json!({"name": "tmp", "emptyDir": {}}),
    ];
    if spec.io_adapter.as_ref().is_some_and(|a| a.id == "embedded") {
        volume_mounts.push(json!({"name": "data", "mountPath": DATA_DIR}));
        volumes.push(json!({"name": "data", "emptyDir": {}}));
    }

    let probe = |path: &str, period: i32| {
        json!({
            "httpGet": {"path": path, "port": PORT_NAME},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        })
    };

    let mut container = json!({
        "name": CONTAINER_NAME,
        "image": spec.image,
        "ports": [{"name": PORT_NAME, "containerPort": port(hcs), "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": names.env_config_map}}],
        "livenessProbe": probe("/admin/health", 10),
        "readinessProbe": probe("/admin/ready", 5),
        "resources": spec.resources.as_ref().map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .unwrap_or_else(default_resources),
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": volume_mounts,
    });
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    if let Some(policy) = &spec.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }

    let mut pod_spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    });
    let optional = [
        ("nodeSelector", serde_json::to_value(&placement.node_selector)),
        ("tolerations", serde_json::to_value(&placement.tolerations)),
        ("affinity", serde_json::to_value(&placement.affinity)),
        (
            "topologySpreadConstraints",
            serde_json::to_value(&placement.topology_spread_constraints),
        ),
        ("imagePullSecrets", serde_json::to_value(&placement.image_pull_secrets)),
        (
            "priorityClassName",
            serde_json::to_value(&placement.priority_class_name),
        ),
    ];
    for (key, value) in optional {
        if let Ok(value) = value
            && !value.is_null()
        {
            pod_spec[key] = value;
        }
    }

    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(hcs, &names.deployment),
        "spec": {
            "replicas": spec.replicas.unwrap_or(1),
            "selector": {"matchLabels": selector_labels(&name)},
            "template": {
                "metadata": {"labels": labels(&name), "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    })
}

pub fn service(hcs: &HexCoreService) -> Value {
    let name = kube::ResourceExt::name_any(hcs);
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(hcs, &Names::of(&name).service),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(&name),
            "ports": [{"name": PORT_NAME, "port": port(hcs), "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    })
}

/// The PodDisruptionBudget, when the spec asks for one.
pub fn pod_disruption_budget(hcs: &HexCoreService) -> Option<Value> {
    let pdb = hcs.spec.pod_disruption_budget.as_ref()?;
    let name = kube::ResourceExt::name_any(hcs);
    let mut spec = json!({"selector": {"matchLabels": selector_labels(&name)}});
    if let Some(v) = &pdb.min_available {
        spec["minAvailable"] = serde_json::to_value(v).ok()?;
    }
    if let Some(v) = &pdb.max_unavailable {
        spec["maxUnavailable"] = serde_json::to_value(v).ok()?;
    }
    Some(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(hcs, &Names::of(&name).pdb),
        "spec": spec,
    }))
}

/// Every object the operator applies for `hcs` once its catalog is merged and its Secrets are
/// read, in apply order: catalog ConfigMap, env ConfigMap, Deployment, Service, and the
/// PodDisruptionBudget when asked for. (The operator-created admin token Secret is not here: it
/// is created once, never applied.)
pub fn children(hcs: &HexCoreService, catalog: &MergedCatalog, secrets: &SecretsRead) -> Vec<Value> {
    let env = environment(hcs);
    let hash = config_hash(&env, &secrets.digests);
    let mut objects = vec![
        catalog_config_map(hcs, catalog),
        env_config_map(hcs, &env),
        deployment(hcs, &hash),
        service(hcs),
    ];
    objects.extend(pod_disruption_budget(hcs));
    objects
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Service};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::crd::*;

    fn model(name: &str, version: &str, schema: &str) -> CatalogModel {
        CatalogModel {
            model: name.into(),
            version: version.into(),
            schema_url: Some(schema.into()),
            shacl_url: None,
            owl_url: None,
            openapi_url: None,
            route_url: None,
            linkml_url: None,
            root_class: None,
        }
    }

    fn catalog(models: Vec<CatalogModel>) -> ModelCatalogSpec {
        ModelCatalogSpec { models }
    }

    /// The postgres IO adapter with its database URL in Secret `name`, key `key`.
    fn postgres_with_credentials_in(name: &str, key: &str) -> IoAdapterSpec {
        IoAdapterSpec {
            id: "postgres".into(),
            version: None,
            base_url: None,
            timeout_ms: None,
            credentials_secret_ref: Some(SecretKeyRef {
                name: name.into(),
                key: key.into(),
            }),
        }
    }

    pub(crate) fn hcs(name: &str) -> HexCoreService {
        let mut hcs = HexCoreService::new(
            name,
            HexCoreServiceSpec {
                image: "registry.example/hex-core-service:0.1.0".into(),
                image_pull_policy: None,
                replicas: Some(2),
                catalogs: CatalogSelection {
                    selector: None,
                    names: Some(vec!["a".into()]),
                },
                registry: RegistryPolicy {
                    allowed_hosts: vec!["models.example".into(), "127.0.0.1:8443".into()],
                    require_https: None,
                    cache: None,
                    fetch_timeout_ms: None,
                },
                io_adapter: None,
                auth: AuthSpec {
                    mode: "forward_auth".into(),
                    jwt: None,
                    forward: None,
                    none: None,
                    admin_role: None,
                    enforce_scopes: None,
                    admin_token_secret_ref: None,
                },
                server: None,
                log_level: None,
                metrics: None,
                resources: None,
                placement: None,
                pod_disruption_budget: None,
                paused: None,
            },
        );
        hcs.metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns1".into()),
            uid: Some("uid-1".into()),
            generation: Some(1),
            ..Default::default()
        };
        hcs
    }

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
    fn catalog_config_map_carries_the_exact_bytes_and_an_owner_reference() {
        let spec = catalog(vec![model("m", "1", "https://h/m.json")]);
        let merged = merge_catalogs([("a", &spec)]).unwrap();
        let cm: ConfigMap = serde_json::from_value(catalog_config_map(&hcs("svc"), &merged)).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("svc-catalog"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("ns1"));
        let data = cm.data.unwrap();
        assert_eq!(sha256_hex(data[CATALOG_KEY].as_bytes()), merged.sha256);
        let owner = &cm.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str(),
                owner.controller
            ),
            ("HexCoreService", "svc", "uid-1", Some(true))
        );
    }

    #[test]
    fn environment_covers_registry_auth_server_and_the_admin_token_file() {
        let env = environment(&hcs("svc"));
        assert_eq!(env["REGISTRY_CATALOG_FILE"], "/etc/hex-core/catalog/catalog.json");
        assert_eq!(env["REGISTRY_ALLOWED_HOSTS"], "models.example,127.0.0.1:8443");
        assert_eq!(
            env["REGISTRY_REQUIRE_HTTPS"], "true",
            "HTTPS is required unless the spec says otherwise"
        );
        assert_eq!(env["IO_ADAPTER_ID"], "memory");
        assert_eq!(env["AUTH_MODE"], "forward_auth");
        assert_eq!(env["AUTH_ADMIN_TOKEN_FILE"], "/var/run/hex-core/admin/token");
        assert_eq!(env["SERVER_PORT"], "8080");
        assert_eq!(env["LOG_LEVEL"], "info");
        assert_eq!(env["METRICS_ENABLED"], "false");
        assert!(
            !env.contains_key("IO_ADAPTER_DATABASE_URL"),
            "secrets never go into the ConfigMap"
        );
    }

    #[test]
    fn environment_maps_every_optional_setting() {
        let mut h = hcs("svc");
        h.spec.registry.require_https = Some(false);
        h.spec.registry.cache = Some(CacheSpec {
            enabled: true,
            ttl_seconds: Some(60),
        });
        h.spec.registry.fetch_timeout_ms = Some(2500);
        h.spec.io_adapter = Some(IoAdapterSpec {
            id: "http".into(),
            version: Some("v2".into()),
            base_url: Some("https://io.example".into()),
            timeout_ms: Some(700),
            credentials_secret_ref: None,
        });
        h.spec.auth = AuthSpec {
            mode: "jwt_jwks".into(),
            jwt: Some(JwtSpec {
                jwks_url: "https://idp/jwks".into(),
                issuer: "https://idp".into(),
                audience: "hex".into(),
                refresh_seconds: Some(600),
                leeway_seconds: Some(5),
            }),
            forward: None,
            none: None,
            admin_role: Some("ops".into()),
            enforce_scopes: Some(true),
            admin_token_secret_ref: None,
        };
        h.spec.server = Some(ServerSpec {
            port: Some(9000),
            request_max_bytes: Some(4096),
        });
        h.spec.log_level = Some("debug".into());
        h.spec.metrics = Some(MetricsSpec { enabled: true });
        let env = environment(&h);
        let expect = [
            ("REGISTRY_REQUIRE_HTTPS", "false"),
            ("REGISTRY_CACHE_ENABLED", "true"),
            ("REGISTRY_CACHE_TTL_SECS", "60"),
            ("REGISTRY_FETCH_TIMEOUT_MS", "2500"),
            ("IO_ADAPTER_ID", "http"),
            ("IO_ADAPTER_VERSION", "v2"),
            ("IO_ADAPTER_BASE_URL", "https://io.example"),
            ("IO_ADAPTER_TIMEOUT_MS", "700"),
            ("AUTH_MODE", "jwt_jwks"),
            ("AUTH_JWKS_URL", "https://idp/jwks"),
            ("AUTH_ISSUER", "https://idp"),
            ("AUTH_AUDIENCE", "hex"),
            ("AUTH_JWKS_REFRESH_SECS", "600"),
            ("AUTH_LEEWAY_SECS", "5"),
            ("AUTH_ADMIN_ROLE", "ops"),
            ("AUTH_ENFORCE_SCOPES", "true"),
            ("SERVER_PORT", "9000"),
            ("SERVER_REQUEST_MAX_BYTES", "4096"),
            ("LOG_LEVEL", "debug"),
            ("METRICS_ENABLED", "true"),
        ];
        for (k, v) in expect {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn environment_for_mode_none_passes_identity_settings() {
        let mut h = hcs("svc");
        h.spec.auth.mode = "none".into();
        h.spec.auth.none = Some(NoneAuthSpec {
            allow_insecure: true,
            subject: Some("dev".into()),
            roles: Some(vec!["admin".into(), "reader".into()]),
            scopes: Some(vec!["records:read".into(), "records:write".into()]),
            tenant: Some("t1".into()),
        });
        let env = environment(&h);
        assert_eq!(env["AUTH_ALLOW_INSECURE_NONE"], "true");
        assert_eq!(env["AUTH_NONE_ROLES"], "admin,reader");
        assert_eq!(env["AUTH_NONE_SCOPES"], "records:read records:write");
        assert_eq!(env["AUTH_NONE_TENANT"], "t1");
    }

    #[test]
    fn config_hash_changes_with_the_environment_and_secret_content_only() {
        let env = environment(&hcs("svc"));
        let secrets = BTreeMap::from([("svc-admin-token/token".to_string(), "d1".to_string())]);
        let base = config_hash(&env, &secrets);
        assert_eq!(base, config_hash(&env, &secrets));
        let mut env2 = env.clone();
        env2.insert("LOG_LEVEL".into(), "debug".into());
        assert_ne!(base, config_hash(&env2, &secrets));
        let secrets2 = BTreeMap::from([("svc-admin-token/token".to_string(), "d2".to_string())]);
        assert_ne!(base, config_hash(&env, &secrets2));
    }

    #[test]
    fn deployment_is_hardened_probed_and_mounts_catalog_and_token_read_only() {
        let d: Deployment = serde_json::from_value(deployment(&hcs("svc"), "cfg-hash")).unwrap();
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let template = spec.template;
        let annotations = template.metadata.as_ref().unwrap().annotations.clone().unwrap();
        assert_eq!(annotations[CONFIG_HASH_ANNOTATION], "cfg-hash");
        assert_eq!(
            annotations.len(),
            1,
            "no catalog hash on the pod template: catalogs are refreshed, not rolled"
        );
        let pod = template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let psc = pod.security_context.unwrap();
        assert_eq!((psc.run_as_non_root, psc.run_as_user), (Some(true), Some(1000)));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = &pod.containers[0];
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.run_as_user, Some(1000));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let live = c.liveness_probe.clone().unwrap().http_get.unwrap();
        let ready = c.readiness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(live.path.as_deref(), Some("/admin/health"));
        assert_eq!(ready.path.as_deref(), Some("/admin/ready"));
        let resources = c.resources.clone().unwrap();
        let q = |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>, k: &str| {
            m.as_ref().unwrap()[k].0.clone()
        };
        assert_eq!(q(&resources.requests, "cpu"), "100m");
        assert_eq!(q(&resources.requests, "memory"), "128Mi");
        assert_eq!(q(&resources.limits, "cpu"), "500m");
        assert_eq!(q(&resources.limits, "memory"), "512Mi");
        let mounts = c.volume_mounts.clone().unwrap();
        let mount = |n: &str| mounts.iter().find(|m| m.name == n).unwrap().clone();
        assert_eq!(mount("catalog").mount_path, CATALOG_DIR);
        assert_eq!(mount("catalog").read_only, Some(true));
        assert_eq!(mount("admin-token").mount_path, ADMIN_TOKEN_DIR);
        assert_eq!(mount("admin-token").read_only, Some(true));
        let volumes = pod.volumes.unwrap();
        let catalog_volume = volumes.iter().find(|v| v.name == "catalog").unwrap();
        assert_eq!(catalog_volume.config_map.as_ref().unwrap().name, "svc-catalog");
        let token_volume = volumes.iter().find(|v| v.name == "admin-token").unwrap();
        let secret = token_volume.secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("svc-admin-token"));
        assert_eq!(secret.items.as_ref().unwrap()[0].path, "token");
        assert_eq!(
            c.env_from.as_ref().unwrap()[0].config_map_ref.as_ref().unwrap().name,
            "svc-env"
        );
        assert_eq!(spec.selector.match_labels.unwrap()["app.kubernetes.io/instance"], "svc");
    }

    #[test]
    fn deployment_takes_placement_resources_and_secret_backed_credentials_from_the_spec() {
        let mut h = hcs("svc");
        h.spec.io_adapter = Some(postgres_with_credentials_in("db", "url"));
        h.spec.auth.admin_token_secret_ref = Some(SecretKeyRef {
            name: "my-token".into(),
            key: "value".into(),
        });
        h.spec.placement = Some(PlacementSpec {
            node_selector: Some(BTreeMap::from([("zone".into(), "a".into())])),
            tolerations: Some(vec![k8s_openapi::api::core::v1::Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            affinity: None,
            topology_spread_constraints: None,
            image_pull_secrets: Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
                name: "pull".into(),
            }]),
            pod_annotations: Some(BTreeMap::from([("team".into(), "x".into())])),
            priority_class_name: Some("high".into()),
        });
        h.spec.image_pull_policy = Some("Always".into());
        let d: Deployment = serde_json::from_value(deployment(&h, "h")).unwrap();
        let pod = d.spec.unwrap().template;
        assert_eq!(pod.metadata.unwrap().annotations.unwrap()["team"], "x");
        let pod = pod.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["zone"], "a");
        assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("dedicated"));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "pull");
        assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
        let c = &pod.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        let env = c.env.as_ref().unwrap();
        assert_eq!(env[0].name, "IO_ADAPTER_DATABASE_URL");
        let key_ref = env[0].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((key_ref.name.as_str(), key_ref.key.as_str()), ("db", "url"));
        let token = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "admin-token")
            .unwrap();
        let secret = token.secret.unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("my-token"));
        assert_eq!(secret.items.unwrap()[0].key, "value");
        let refs = referenced_secrets(&h);
        assert_eq!(refs.len(), 2);
    }

    #[test]
    fn service_exposes_the_named_port_and_selects_the_pods() {
        let s: Service = serde_json::from_value(service(&hcs("svc"))).unwrap();
        let spec = s.spec.unwrap();
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/instance"], "svc");
        let port = &spec.ports.unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some(PORT_NAME), 8080));
    }

    #[test]
    fn pod_disruption_budget_only_when_asked_for() {
        let mut h = hcs("svc");
        assert!(pod_disruption_budget(&h).is_none());
        h.spec.pod_disruption_budget = Some(PdbSpec {
            min_available: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)),
            max_unavailable: None,
        });
        let pdb: PodDisruptionBudget = serde_json::from_value(pod_disruption_budget(&h).unwrap()).unwrap();
        assert_eq!(
            pdb.spec.unwrap().min_available,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
    }

    fn named_catalog(name: &str, labels: &[(&str, &str)], models: Vec<CatalogModel>) -> ModelCatalog {
        let mut c = ModelCatalog::new(name, catalog(models));
        c.metadata.namespace = Some("ns1".into());
        c.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        c
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

    #[test]
    fn secrets_are_read_from_data_or_string_data_and_problems_are_named() {
        let mut h = hcs("svc");
        h.spec.io_adapter = Some(postgres_with_credentials_in("db", "url"));
        let admin = Secret {
            data: Some(BTreeMap::from([(
                "token".to_string(),
                k8s_openapi::ByteString(b"t0k3n\n".to_vec()),
            )])),
            ..Default::default()
        };
        let secrets = BTreeMap::from([("svc-admin-token".to_string(), admin.clone())]);
        let read = read_secrets(&h, &secrets);
        assert_eq!(read.admin_token.as_deref(), Some("t0k3n"), "trimmed");
        assert_eq!(
            read.digests["svc-admin-token/token"],
            sha256_hex(b"t0k3n\n"),
            "digest of the raw bytes"
        );
        assert_eq!(
            read.problems,
            [SecretProblem::NotFound {
                name: "db".into(),
                namespace: "ns1".into()
            }]
        );

        let db = Secret {
            string_data: Some(BTreeMap::from([("other".to_string(), "x".to_string())])),
            ..Default::default()
        };
        let secrets = BTreeMap::from([("svc-admin-token".to_string(), admin), ("db".to_string(), db)]);
        let read = read_secrets(&h, &secrets);
        assert_eq!(read.problems[0].reason(), "SecretKeyNotFound");
        assert_eq!(read.problems[0].to_string(), "Secret \"db\" has no key \"url\"");
    }

    #[test]
    fn children_come_in_apply_order_with_the_pdb_last_when_asked_for() {
        let mut h = hcs("svc");
        h.spec.pod_disruption_budget = Some(PdbSpec {
            min_available: None,
            max_unavailable: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)),
        });
        let merged = merge_catalogs(std::iter::empty()).unwrap();
        let kinds: Vec<String> = children(&h, &merged, &SecretsRead::default())
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "ConfigMap/svc-catalog",
                "ConfigMap/svc-env",
                "Deployment/svc",
                "Service/svc",
                "PodDisruptionBudget/svc"
            ]
        );
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
