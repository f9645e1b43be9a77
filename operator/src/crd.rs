//! The operator's custom resources, `hex-core.dev/v1alpha1`: `ModelCatalog` and `HexCoreService`.
//!
//! Design rules for these schemas:
//! - No schema `default`s: a defaulted field shows up in the live object but not in Git, and
//!   GitOps tools then report permanent drift. Absent fields are defaulted by the operator instead,
//!   and the defaults are documented on each field.
//! - What the API server can check, it checks (CEL `x-kubernetes-validations`, lengths, minimums),
//!   so a bad object is refused at `kubectl apply` time with a clear message rather than surfacing
//!   later as a condition. Every list and string a CEL rule iterates over has a maximum size, so
//!   the rules stay within the API server's cost budget.

// `printcolumn(...)` repeats `type_ = ...` per column, which this lint mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use hex_core_settings as settings;
use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the operator's resources.
pub const GROUP: &str = "hex-core.dev";
/// API version of the operator's resources.
pub const VERSION: &str = "v1alpha1";

// ---------------------------------------------------------------------------------------------
// ModelCatalog
// ---------------------------------------------------------------------------------------------

/// A list of model versions and the URLs of their artifacts. HexCoreServices select catalogs;
/// the operator merges the selected ones into the catalog file each data plane serves.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "hex-core.dev",
    version = "v1alpha1",
    kind = "ModelCatalog",
    namespaced,
    status = "ModelCatalogStatus",
    derive = "PartialEq",
    shortname = "mcat",
    category = "hexcore",
    doc = "A catalog of model versions and the URLs of their artifacts, selected by HexCoreServices.",
    printcolumn(name = "Models", type_ = "integer", json_path = ".status.modelCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Catalog",
        type_ = "string",
        json_path = ".status.catalogSha256",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ModelCatalogSpec {
    /// The model versions. A `(model, version)` pair appears at most once.
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(x, self.exists_one(y, y.model == x.model && y.version == x.version))",
        "message": "each (model, version) pair may appear only once in a catalog"
    }]))]
    pub models: Vec<CatalogModel>,
}

/// One model version and where its artifacts live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.schemaUrl) || has(self.shaclUrl) || has(self.owlUrl) || has(self.openapiUrl) || has(self.routeUrl)",
    "message": "each model needs at least one of schemaUrl, shaclUrl, owlUrl, openapiUrl or routeUrl"
}]))]
pub struct CatalogModel {
    /// Model name, e.g. `dp-record-metadata`.
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9._+-]+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "!self.contains('..')", "message": "must not contain '..'"}]))]
    pub model: String,
    /// Model version, e.g. `0.0.4`.
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9._+-]+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "!self.contains('..')", "message": "must not contain '..'"}]))]
    pub version: String,
    /// JSON Schema URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub schema_url: Option<String>,
    /// SHACL shapes URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub shacl_url: Option<String>,
    /// OWL ontology URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub owl_url: Option<String>,
    /// OpenAPI document URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub openapi_url: Option<String>,
    /// Route (storage mapping) artifact URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub route_url: Option<String>,
    /// LinkML source URL (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub linkml_url: Option<String>,
    /// Root class of the model's records (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub root_class: Option<String>,
}

/// What the operator last observed about a ModelCatalog.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelCatalogStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of model versions in the catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_count: Option<i32>,
    /// SHA-256 of this catalog alone, in the service's catalog format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_sha256: Option<String>,
    /// HexCoreServices (at most 10, sorted) whose every ready replica serves every entry of this
    /// catalog's current content, with no entry failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_by: Option<Vec<String>>,
    /// The last `metadata.generation` whose entries were all seen loaded by a HexCoreService that
    /// selects this catalog. Kept when later generations fail: "was this catalog ever loaded".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_loaded_generation: Option<i64>,
    /// When `lastLoadedGeneration` was first seen loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_loaded_time: Option<Time>,
    /// `Ready`: the catalog is well-formed and usable by HexCoreServices. `Loaded`: a
    /// HexCoreService that selects it serves every entry of its current content.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
}

// ---------------------------------------------------------------------------------------------
// HexCoreService
// ---------------------------------------------------------------------------------------------

/// A hex-core data plane: a Deployment of `hex-core-service` serving the merged selected catalogs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "hex-core.dev",
    version = "v1alpha1",
    kind = "HexCoreService",
    namespaced,
    status = "HexCoreServiceStatus",
    derive = "PartialEq",
    shortname = "hcs",
    category = "hexcore",
    doc = "A hex-core data plane: Deployment, Service and configuration of hex-core-service, serving the merged selected ModelCatalogs.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Catalog", type_ = "string", json_path = ".status.catalogConvergence"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.replicas) || self.replicas <= 1 || (has(self.ioAdapter) && self.ioAdapter.id in ['http', 'postgres'])",
    "message": "replicas > 1 needs a record store the replicas share: ioAdapter.id http or postgres (memory, the default, and embedded keep records inside each replica)",
    "fieldPath": ".replicas"
}]))]
pub struct HexCoreServiceSpec {
    /// Container image of hex-core-service, e.g. `registry.example/hex-core-service:0.1.0`.
    /// Default: the operator's `--service-image-repository` (chart value `serviceImage.repository`)
    /// at the operator's own version, so omitting it runs the service released with the operator.
    /// Roll back by restoring the previous value here (the operator undoes `kubectl set image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Image pull policy (`Always`, `IfNotPresent`, `Never`); Kubernetes' default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self in ['Always', 'IfNotPresent', 'Never']", "message": "must be Always, IfNotPresent or Never"}]))]
    pub image_pull_policy: Option<String>,
    /// Number of replicas (default 1). Served by the `scale` subresource, so `kubectl scale` works.
    /// More than one needs a shared record store (`ioAdapter.id` `http` or `postgres`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Which ModelCatalogs (in this namespace) this service serves, merged.
    pub catalogs: CatalogSelection,
    /// Artifact fetch policy.
    pub registry: RegistryPolicy,
    /// Where records are stored (default: the in-memory adapter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_adapter: Option<IoAdapterSpec>,
    /// Authentication of callers.
    pub auth: AuthSpec,
    /// HTTP server settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,
    /// Limits of one validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSpec>,
    /// Log level (default `info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self in ['trace', 'debug', 'info', 'warn', 'error']", "message": "must be one of trace, debug, info, warn, error"}]))]
    pub log_level: Option<String>,
    /// Prometheus metrics at `/admin/metrics` (default: on). Served without authentication on
    /// the management port (9464), which the Service does not expose, and with an admin
    /// identity on the API port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsSpec>,
    /// Container resources (default requests 100m CPU / 128Mi, limits 500m CPU / 512Mi).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Pod scheduling and metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
    /// A PodDisruptionBudget for the pods (none when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PdbSpec>,
    /// While true, the operator changes nothing but this object's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// ModelCatalogs to serve: by label selector, by name, or both (the union).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.selector) || (has(self.names) && size(self.names) > 0)",
    "message": "select catalogs with a selector, names, or both"
}]))]
pub struct CatalogSelection {
    /// Label selector over ModelCatalogs in this namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// ModelCatalog names in this namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub names: Option<Vec<String>>,
}

/// Which artifact hosts the service may fetch from, and how.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPolicy {
    /// `REGISTRY_ALLOWED_HOSTS`: `host` (any port) or `host:port` entries.
    #[schemars(length(min = 1, max = 64))]
    pub allowed_hosts: Vec<String>,
    /// `REGISTRY_REQUIRE_HTTPS` (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_https: Option<bool>,
    /// Artifact cache across refreshes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,
    /// `REGISTRY_FETCH_TIMEOUT_MS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_FETCH_TIMEOUT_MS.min, max = settings::REGISTRY_FETCH_TIMEOUT_MS.max))]
    pub fetch_timeout_ms: Option<i64>,
    /// `REGISTRY_ARTIFACT_MAX_BYTES`: largest artifact (and catalog) accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_ARTIFACT_MAX_BYTES.min, max = settings::REGISTRY_ARTIFACT_MAX_BYTES.max))]
    pub artifact_max_bytes: Option<i64>,
    /// `REGISTRY_FETCH_CONCURRENCY`: artifacts fetched at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_FETCH_CONCURRENCY.min, max = settings::REGISTRY_FETCH_CONCURRENCY.max))]
    pub fetch_concurrency: Option<i64>,
    /// Automatic retries of entries that failed to load, and how long they may keep a replica
    /// not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// `REGISTRY_CA_FILE`: a PEM bundle of extra CAs trusted for artifact hosts (a private CA),
    /// from this Secret key; mounted read-only, and the pods roll when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.minDelayMs) || (has(self.maxDelaySeconds) ? self.maxDelaySeconds : 30) * 1000 >= self.minDelayMs",
    "message": "maxDelaySeconds (default 30) must be at least minDelayMs"
}]))]
pub struct RetrySpec {
    /// `REGISTRY_RETRY_MIN_DELAY_MS`: first delay before retrying a failed entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_RETRY_MIN_DELAY_MS.min, max = settings::REGISTRY_RETRY_MIN_DELAY_MS.max))]
    pub min_delay_ms: Option<i64>,
    /// `REGISTRY_RETRY_MAX_DELAY_SECS`: cap of the doubling delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_RETRY_MAX_DELAY_SECS.min, max = settings::REGISTRY_RETRY_MAX_DELAY_SECS.max))]
    pub max_delay_seconds: Option<i64>,
    /// `REGISTRY_READY_MAX_WAIT_SECS`: longest a never-loaded, transiently failing entry keeps a
    /// replica not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_READY_MAX_WAIT_SECS.min, max = settings::REGISTRY_READY_MAX_WAIT_SECS.max))]
    pub ready_max_wait_seconds: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheSpec {
    /// `REGISTRY_CACHE_ENABLED`.
    pub enabled: bool,
    /// `REGISTRY_CACHE_TTL_SECS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::REGISTRY_CACHE_TTL_SECS.min, max = settings::REGISTRY_CACHE_TTL_SECS.max))]
    pub ttl_seconds: Option<i64>,
}

/// The record store behind the service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.id != 'http' || has(self.baseUrl)", "message": "the http adapter needs baseUrl"},
    {"rule": "self.id != 'postgres' || has(self.credentialsSecretRef)", "message": "the postgres adapter needs credentialsSecretRef (the database URL)"},
    {"rule": "!has(self.storage) || self.id == 'embedded'", "message": "storage is only for the embedded adapter"}
]))]
pub struct IoAdapterSpec {
    /// `IO_ADAPTER_ID`: `memory`, `embedded`, `http` or `postgres`.
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self in ['memory', 'embedded', 'http', 'postgres']", "message": "must be one of memory, embedded, http, postgres"}]))]
    pub id: String,
    /// `IO_ADAPTER_VERSION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub version: Option<String>,
    /// `IO_ADAPTER_BASE_URL` (http adapter).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub base_url: Option<String>,
    /// `IO_ADAPTER_TIMEOUT_MS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::IO_ADAPTER_TIMEOUT_MS.min, max = settings::IO_ADAPTER_TIMEOUT_MS.max))]
    pub timeout_ms: Option<i64>,
    /// Secret key holding the adapter's credential: for `postgres`, the database URL
    /// (`IO_ADAPTER_DATABASE_URL`). Injected from the Secret, never copied into a ConfigMap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// `embedded` only: the PersistentVolumeClaim holding the redb file (default: the operator
    /// creates `<name>-data`, 1Gi, ReadWriteOnce, the cluster's default storage class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
}

/// Persistent storage of the `embedded` record store. The Deployment then runs one replica with
/// the `Recreate` strategy: two pods never open the same redb file, not even during a rollout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.claimName) || (!has(self.size) && !has(self.storageClassName))",
    "message": "name an existing claim (claimName) or let the operator create one (size, storageClassName), not both"
}]))]
pub struct StorageSpec {
    /// An existing PersistentVolumeClaim in this namespace to use as it is (never modified or
    /// deleted by the operator). When absent the operator creates and owns `<name>-data`, which
    /// is deleted with the HexCoreService.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: Option<String>,
    /// Requested size of the claim the operator creates (default `1Gi`; it can grow, not shrink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Storage class of the claim the operator creates (default: the cluster's default class).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// How callers authenticate. The operator itself always uses the machine admin credential
/// (`AUTH_ADMIN_TOKEN_FILE`), which the service accepts for admin endpoints in every mode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.mode != 'jwt_jwks' || has(self.jwt)", "message": "mode jwt_jwks needs the jwt settings"},
    {"rule": "self.mode != 'none' || (has(self.none) && self.none.allowInsecure)", "message": "mode none needs none.allowInsecure: true"}
]))]
pub struct AuthSpec {
    /// `AUTH_MODE`: `jwt_jwks`, `forward_auth` or `none`.
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self in ['jwt_jwks', 'forward_auth', 'none']", "message": "must be one of jwt_jwks, forward_auth, none"}]))]
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<ForwardAuthSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub none: Option<NoneAuthSpec>,
    /// `AUTH_ADMIN_ROLE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub admin_role: Option<String>,
    /// `AUTH_ENFORCE_SCOPES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce_scopes: Option<bool>,
    /// The machine admin token the operator uses for `POST /admin/registry/refresh`. When absent,
    /// the operator creates a Secret `<name>-admin-token` with a random token once and never
    /// rotates it (delete the Secret to rotate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_secret_ref: Option<SecretKeyRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtSpec {
    /// `AUTH_JWKS_URL`.
    #[schemars(length(max = 2048), extend("x-kubernetes-validations" = [{"rule": "isURL(self) && url(self).getScheme() in ['http', 'https']", "message": "must be an absolute http:// or https:// URL"}]))]
    pub jwks_url: String,
    /// `AUTH_ISSUER`.
    pub issuer: String,
    /// `AUTH_AUDIENCE`.
    pub audience: String,
    /// `AUTH_JWKS_REFRESH_SECS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::AUTH_JWKS_REFRESH_SECS.min, max = settings::AUTH_JWKS_REFRESH_SECS.max))]
    pub refresh_seconds: Option<i64>,
    /// `AUTH_LEEWAY_SECS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::AUTH_LEEWAY_SECS.min, max = settings::AUTH_LEEWAY_SECS.max))]
    pub leeway_seconds: Option<i64>,
    /// `AUTH_JWKS_MIN_REFETCH_SECS`: shortest interval between two JWKS fetches triggered by
    /// unknown key ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::AUTH_JWKS_MIN_REFETCH_SECS.min, max = settings::AUTH_JWKS_MIN_REFETCH_SECS.max))]
    pub min_refetch_seconds: Option<i64>,
    /// `AUTH_TENANT_CLAIM`: the token claim naming the caller's tenant (default `tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub tenant_claim: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardAuthSpec {
    /// `AUTH_FORWARD_SUBJECT_HEADER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_header: Option<String>,
    /// `AUTH_FORWARD_ROLES_HEADER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles_header: Option<String>,
    /// `AUTH_FORWARD_SCOPES_HEADER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_header: Option<String>,
    /// `AUTH_FORWARD_TENANT_HEADER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_header: Option<String>,
    /// `AUTH_FORWARD_TOKEN_HEADER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_header: Option<String>,
}

/// `AUTH_MODE=none`: every caller gets this identity. For development only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoneAuthSpec {
    /// `AUTH_ALLOW_INSECURE_NONE`: must be true for mode none.
    pub allow_insecure: bool,
    /// `AUTH_NONE_SUBJECT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `AUTH_NONE_ROLES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// `AUTH_NONE_SCOPES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `AUTH_NONE_TENANT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// `SERVER_PORT` and the container/Service port (default 8080).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("x-kubernetes-validations" = [{"rule": "self != 9464", "message": "9464 is the management port (probes and /admin/metrics)"}]))]
    pub port: Option<i32>,
    /// `SERVER_REQUEST_MAX_BYTES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::SERVER_REQUEST_MAX_BYTES.min, max = settings::SERVER_REQUEST_MAX_BYTES.max))]
    pub request_max_bytes: Option<i64>,
    /// `SERVER_SHUTDOWN_GRACE_SECS`: how long in-flight requests may finish after SIGTERM. The
    /// pods' `terminationGracePeriodSeconds` is set 10 s above it (at least 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::SERVER_SHUTDOWN_GRACE_SECS.min, max = settings::SERVER_SHUTDOWN_GRACE_SECS.max))]
    pub shutdown_grace_seconds: Option<i64>,
    /// `SERVER_HEADER_READ_TIMEOUT_MS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::SERVER_HEADER_READ_TIMEOUT_MS.min, max = settings::SERVER_HEADER_READ_TIMEOUT_MS.max))]
    pub header_read_timeout_ms: Option<i64>,
    /// `SERVER_BODY_READ_TIMEOUT_MS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::SERVER_BODY_READ_TIMEOUT_MS.min, max = settings::SERVER_BODY_READ_TIMEOUT_MS.max))]
    pub body_read_timeout_ms: Option<i64>,
    /// `SERVER_IDLE_TIMEOUT_SECS`: set it above the idle timeout of the proxy in front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::SERVER_IDLE_TIMEOUT_SECS.min, max = settings::SERVER_IDLE_TIMEOUT_SECS.max))]
    pub idle_timeout_seconds: Option<i64>,
    /// `SERVER_MAX_CONNECTIONS`: connections served at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::SERVER_MAX_CONNECTIONS.min, max = settings::SERVER_MAX_CONNECTIONS.max))]
    pub max_connections: Option<i64>,
    /// CORS for browser clients (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorsSpec {
    /// `CORS_ALLOWED_ORIGINS`: `*`, or exact origins (`https://app.example.org`: scheme, host,
    /// port; no path).
    #[schemars(length(min = 1, max = 64))]
    pub allowed_origins: Vec<String>,
    /// `CORS_ALLOW_CREDENTIALS` (not with `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// `CORS_MAX_AGE_SECS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::CORS_MAX_AGE_SECS.min, max = settings::CORS_MAX_AGE_SECS.max))]
    pub max_age_seconds: Option<i64>,
}

/// Limits of one validation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSpec {
    /// `VALIDATION_TIMEOUT_MS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::VALIDATION_TIMEOUT_MS.min, max = settings::VALIDATION_TIMEOUT_MS.max))]
    pub timeout_ms: Option<i64>,
    /// `VALIDATION_MAX_NODES`: RDF nodes one payload may produce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = settings::VALIDATION_MAX_NODES.min, max = settings::VALIDATION_MAX_NODES.max))]
    pub max_nodes: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// `METRICS_ENABLED` (`false` turns the data plane's metrics off).
    pub enabled: bool,
}

/// Where and how pods run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Extra pod annotations (the operator's own `hex-core.dev/*` keys win).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// A PodDisruptionBudget: exactly one of `minAvailable` and `maxUnavailable`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.minAvailable) != has(self.maxUnavailable)",
    "message": "set exactly one of minAvailable and maxUnavailable"
}]))]
pub struct PdbSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// What the operator last observed about a HexCoreService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HexCoreServiceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the Deployment (for the scale subresource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Ready pods of the Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the pods, as a string (for the scale subresource and HPAs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// SHA-256 of the merged catalog file the operator delivered (what replicas must report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_sha256: Option<String>,
    /// How many ready replicas serve `catalogSha256`, e.g. `2/3 on 1a2b3c4d5e6f`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_convergence: Option<String>,
    /// Ready replicas confirmed to serve `catalogSha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged_replicas: Option<i32>,
    /// ModelCatalogs merged into the catalog, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogs: Option<Vec<String>>,
    /// When a replica last confirmed a refresh onto the current catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refresh_time: Option<Time>,
    /// The image the pods run: `spec.image`, or the operator's default when it is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// What each replica reported (`GET /admin/ready`, `GET /admin/version`), sorted by pod, at
    /// most 10; `omittedReplicaStatuses` counts the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_statuses: Option<Vec<ReplicaStatus>>,
    /// Replicas not listed in `replicaStatuses` (beyond the first 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted_replica_statuses: Option<i32>,
    /// `Ready`, `CatalogSynced`, `Progressing`, `Degraded`, `ReconciliationPaused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
}

/// One replica as the operator last read it. Only fields that change when something happens are
/// kept (no retry counters), so a steady replica does not rewrite the status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The pod behind the endpoint, when the EndpointSlice names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `ip:port` the operator reads.
    pub address: String,
    /// The endpoint's `ready` condition in the Service's EndpointSlice.
    pub ready: bool,
    /// Serves `status.catalogSha256` with every entry loaded.
    pub converged: bool,
    /// `catalog_sha256` of `GET /admin/ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_sha256: Option<String>,
    /// `service_version` of `GET /admin/version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why the replica is not ready (`reason` of `GET /admin/ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready_reason: Option<String>,
    /// Catalog entries by load state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<EntryCounts>,
    /// Entries not serving their current definition, at most 5; `omittedFailedEntries` counts
    /// the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_entries: Option<Vec<FailedEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted_failed_entries: Option<i32>,
    /// Why the replica could not be read (connection refused, timeout, unreadable answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Catalog entries of one replica by load state (`entries` of `GET /admin/ready`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryCounts {
    pub total: i64,
    pub loaded: i64,
    pub stale: i64,
    pub failed: i64,
}

/// A catalog entry a replica does not serve in its current definition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedEntry {
    pub model: String,
    pub version: String,
    /// `failed` (not served) or `stale` (the previous artifacts of this model version are served).
    pub state: String,
    /// The artifact kind that failed (`schema`, `shacl`, ...), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The replica's error, at most 256 characters.
    pub error: String,
    /// Retried automatically by the replica (transport errors, 5xx, 429, 408); false: permanent
    /// until the catalog or the artifact changes.
    pub transient: bool,
    /// First failure of this entry's current definition, as the replica reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}
