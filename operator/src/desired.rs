//! Desired state: pure functions from a HexCoreService (with its merged catalog, its Secrets'
//! digests and the operator's defaults) to the typed k8s-openapi objects the operator applies.
//! No I/O here: `decide` chooses which of them to apply, `act` writes them.
//!
//! Typed objects rather than JSON: a misspelt field does not compile, and absent (`None`) fields
//! are left out of the serialized object, so server-side apply owns exactly what is set here.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, Secret, SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::catalog::MergedCatalog;
use crate::crd::HexCoreService;
use crate::secrets::admin_token_ref;

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
/// Name of the management listener's port (probes and `/admin/metrics`, no authentication).
pub const MANAGEMENT_PORT_NAME: &str = "management";
/// `SERVER_MANAGEMENT_PORT` of every replica (interface 2 of docs/operator.md).
pub const MANAGEMENT_PORT: i32 = 9464;
pub const CONTAINER_NAME: &str = "hex-core-service";
const DEFAULT_PORT: i32 = 8080;
const DATA_DIR: &str = "/var/lib/hex-core/data";
/// Where `registry.caSecretRef` is mounted (`REGISTRY_CA_FILE`).
pub const REGISTRY_CA_DIR: &str = "/etc/hex-core/registry-ca";
pub const REGISTRY_CA_FILE_NAME: &str = "ca.pem";
/// Seconds the kubelet waits after SIGTERM beyond the service's own shutdown grace.
const TERMINATION_GRACE_MARGIN_SECS: i64 = 10;
/// Size of the data claim the operator creates for the embedded store when the spec names none.
pub const DEFAULT_DATA_CLAIM_SIZE: &str = "1Gi";

/// Names of the children of one HexCoreService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub service: String,
    pub catalog_config_map: String,
    pub env_config_map: String,
    pub deployment: String,
    pub pdb: String,
    pub admin_token_secret: String,
    /// The PersistentVolumeClaim the operator creates for the embedded store.
    pub data_claim: String,
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
            data_claim: format!("{hcs_name}-data"),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn name_of(hcs: &HexCoreService) -> String {
    kube::ResourceExt::name_any(hcs)
}

// ---------------------------------------------------------------------------------------------
// Record store and replicas
// ---------------------------------------------------------------------------------------------

/// `IO_ADAPTER_ID`: `memory` when the spec names no adapter.
pub fn io_adapter_id(hcs: &HexCoreService) -> &str {
    hcs.spec.io_adapter.as_ref().map(|a| a.id.as_str()).unwrap_or("memory")
}

/// True when every replica reads and writes the same records (`http`, `postgres`). `memory`
/// and `embedded` keep records inside one pod.
pub fn records_shared(hcs: &HexCoreService) -> bool {
    matches!(io_adapter_id(hcs), "http" | "postgres")
}

/// `spec.replicas` (default 1).
pub fn wanted_replicas(hcs: &HexCoreService) -> i32 {
    hcs.spec.replicas.unwrap_or(1)
}

/// The replicas the Deployment runs: `spec.replicas`, except at most one when the record store is
/// not shared. The CRD refuses such specs at admission; objects stored before that rule existed
/// (or with the rule bypassed) still never get a second pod: for `embedded`, two pods must never
/// open the same redb file, and for `memory` each pod would answer with different records.
pub fn deployment_replicas(hcs: &HexCoreService) -> i32 {
    let wanted = wanted_replicas(hcs);
    if records_shared(hcs) { wanted } else { wanted.min(1) }
}

/// The problem of a spec asking for more replicas than its record store allows, if it does.
pub fn unshared_records_problem(hcs: &HexCoreService) -> Option<String> {
    let wanted = wanted_replicas(hcs);
    (wanted > 1 && !records_shared(hcs)).then(|| {
        format!(
            "spec.replicas is {wanted} but the {} record store keeps records inside each replica; running 1 \
             replica until spec.replicas is 1 or ioAdapter.id is http or postgres (the shared stores)",
            io_adapter_id(hcs)
        )
    })
}

/// The image the pods run: `spec.image`, else `default_image` (the operator's own version).
pub fn image(hcs: &HexCoreService, default_image: &str) -> String {
    hcs.spec.image.clone().unwrap_or_else(|| default_image.to_string())
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

/// Label every child carries; the operator's watches select on it (the endpointslice
/// controller copies a Service's labels onto its EndpointSlices, so those carry it too).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label naming the HexCoreService of a child or pod.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Labels on every child.
pub fn labels(hcs_name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(hcs_name);
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGER.to_string());
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
fn metadata(hcs: &HexCoreService, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: kube::ResourceExt::namespace(hcs),
        labels: Some(labels(&name_of(hcs))),
        owner_references: kube::Resource::controller_owner_ref(hcs, &()).map(|o| vec![o]),
        ..Default::default()
    }
}

pub fn port(hcs: &HexCoreService) -> i32 {
    hcs.spec.server.as_ref().and_then(|s| s.port).unwrap_or(DEFAULT_PORT)
}

/// The catalog ConfigMap: one key, the exact merged catalog bytes.
pub fn catalog_config_map(hcs: &HexCoreService, catalog: &MergedCatalog) -> ConfigMap {
    ConfigMap {
        metadata: metadata(hcs, &Names::of(&name_of(hcs)).catalog_config_map),
        data: Some(BTreeMap::from([(CATALOG_KEY.to_string(), catalog.json.clone())])),
        ..Default::default()
    }
}

/// The operator-created admin token Secret (created once; never updated by reconcile). The
/// service reads it from `AUTH_ADMIN_TOKEN_FILE`; the operator presents it as `Bearer`.
pub fn admin_token_secret(hcs: &HexCoreService, token: &str) -> Secret {
    Secret {
        metadata: metadata(hcs, &Names::of(&name_of(hcs)).admin_token_secret),
        type_: Some("Opaque".to_string()),
        string_data: Some(BTreeMap::from([(ADMIN_TOKEN_KEY.to_string(), token.to_string())])),
        ..Default::default()
    }
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
    let registry = &spec.registry;
    let retry = registry.retry.clone().unwrap_or_default();
    for (key, value) in [
        ("REGISTRY_FETCH_TIMEOUT_MS", registry.fetch_timeout_ms),
        ("REGISTRY_ARTIFACT_MAX_BYTES", registry.artifact_max_bytes),
        ("REGISTRY_FETCH_CONCURRENCY", registry.fetch_concurrency),
        ("REGISTRY_RETRY_MIN_DELAY_MS", retry.min_delay_ms),
        ("REGISTRY_RETRY_MAX_DELAY_SECS", retry.max_delay_seconds),
        ("REGISTRY_READY_MAX_WAIT_SECS", retry.ready_max_wait_seconds),
    ] {
        if let Some(v) = value {
            set(key, v.to_string());
        }
    }
    if registry.ca_secret_ref.is_some() {
        set("REGISTRY_CA_FILE", format!("{REGISTRY_CA_DIR}/{REGISTRY_CA_FILE_NAME}"));
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
        if let Some(v) = jwt.min_refetch_seconds {
            set("AUTH_JWKS_MIN_REFETCH_SECS", v.to_string());
        }
        if let Some(v) = &jwt.tenant_claim {
            set("AUTH_TENANT_CLAIM", v.clone());
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
    set("SERVER_MANAGEMENT_PORT", MANAGEMENT_PORT.to_string());
    let server = spec.server.clone().unwrap_or_default();
    let validation = spec.validation.clone().unwrap_or_default();
    for (key, value) in [
        ("SERVER_REQUEST_MAX_BYTES", server.request_max_bytes),
        ("SERVER_SHUTDOWN_GRACE_SECS", server.shutdown_grace_seconds),
        ("SERVER_HEADER_READ_TIMEOUT_MS", server.header_read_timeout_ms),
        ("SERVER_BODY_READ_TIMEOUT_MS", server.body_read_timeout_ms),
        ("SERVER_IDLE_TIMEOUT_SECS", server.idle_timeout_seconds),
        ("SERVER_MAX_CONNECTIONS", server.max_connections),
        ("VALIDATION_TIMEOUT_MS", validation.timeout_ms),
        ("VALIDATION_MAX_NODES", validation.max_nodes),
    ] {
        if let Some(v) = value {
            set(key, v.to_string());
        }
    }
    if let Some(cors) = &server.cors {
        set("CORS_ALLOWED_ORIGINS", cors.allowed_origins.join(","));
        if let Some(v) = cors.allow_credentials {
            set("CORS_ALLOW_CREDENTIALS", bool_str(v));
        }
        if let Some(v) = cors.max_age_seconds {
            set("CORS_MAX_AGE_SECS", v.to_string());
        }
    }
    set(
        "LOG_LEVEL",
        spec.log_level.clone().unwrap_or_else(|| "info".to_string()),
    );
    set("LOG_FORMAT", "json".to_string());
    set(
        "METRICS_ENABLED",
        // On unless turned off: the chart's PodMonitor scrapes every data plane, and the
        // management port that serves them is not reachable through the Service.
        bool_str(spec.metrics.as_ref().is_none_or(|m| m.enabled)),
    );
    env
}

pub fn env_config_map(hcs: &HexCoreService, env: &BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: metadata(hcs, &Names::of(&name_of(hcs)).env_config_map),
        data: Some(env.clone()),
        ..Default::default()
    }
}

/// Hash that rolls the pods when their configuration changes: the environment, and the content
/// of the Secrets they read at start (`secret_digests`: name/key → sha256 of the value). The
/// catalog is deliberately NOT part of it: catalog changes are delivered by refresh, without
/// restarts.
pub fn config_hash(env: &BTreeMap<String, String>, secret_digests: &BTreeMap<String, String>) -> String {
    let doc = json!({ "env": env, "secrets": secret_digests });
    sha256_hex(doc.to_string().as_bytes())
}

/// The kubelet's wait after SIGTERM: the service's shutdown grace (`server.shutdownGraceSeconds`,
/// default 20 s) plus a margin, at least the Kubernetes default of 30 s, so the kubelet never
/// kills a replica that is still draining as configured.
pub fn termination_grace_seconds(hcs: &HexCoreService) -> i64 {
    let grace = hcs
        .spec
        .server
        .as_ref()
        .and_then(|s| s.shutdown_grace_seconds)
        .unwrap_or(hex_core_settings::SERVER_SHUTDOWN_GRACE_SECS.default as i64);
    (grace + TERMINATION_GRACE_MARGIN_SECS).max(30)
}

/// The claim the embedded store's data volume mounts: `storage.claimName`, or the one the
/// operator creates. `None` for the other adapters.
pub fn data_claim_name(hcs: &HexCoreService) -> Option<String> {
    let adapter = hcs.spec.io_adapter.as_ref().filter(|a| a.id == "embedded")?;
    Some(
        adapter
            .storage
            .as_ref()
            .and_then(|s| s.claim_name.clone())
            .unwrap_or_else(|| Names::of(&name_of(hcs)).data_claim),
    )
}

/// The PersistentVolumeClaim the operator creates for the embedded store, unless the spec names
/// an existing one (or uses another adapter).
pub fn data_claim(hcs: &HexCoreService) -> Option<PersistentVolumeClaim> {
    let adapter = hcs.spec.io_adapter.as_ref().filter(|a| a.id == "embedded")?;
    let storage = adapter.storage.clone().unwrap_or(crate::crd::StorageSpec {
        claim_name: None,
        size: None,
        storage_class_name: None,
    });
    if storage.claim_name.is_some() {
        return None;
    }
    let size = storage
        .size
        .unwrap_or_else(|| Quantity(DEFAULT_DATA_CLAIM_SIZE.to_string()));
    Some(PersistentVolumeClaim {
        metadata: metadata(hcs, &Names::of(&name_of(hcs)).data_claim),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                ..Default::default()
            }),
            storage_class_name: storage.storage_class_name,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn default_resources() -> ResourceRequirements {
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
        ])
    };
    ResourceRequirements {
        requests: Some(quantities("100m", "128Mi")),
        limits: Some(quantities("500m", "512Mi")),
        ..Default::default()
    }
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(MANAGEMENT_PORT_NAME.to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// The Deployment of `image` whose pods carry `config_hash`.
pub fn deployment(hcs: &HexCoreService, config_hash: &str, image: &str) -> Deployment {
    let name = name_of(hcs);
    let names = Names::of(&name);
    let spec = &hcs.spec;
    let placement = spec.placement.clone().unwrap_or_default();
    let admin = admin_token_ref(hcs);

    let mut pod_annotations = placement.pod_annotations.clone().unwrap_or_default();
    pod_annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), config_hash.to_string());

    let env: Vec<EnvVar> = spec
        .io_adapter
        .as_ref()
        .and_then(|a| a.credentials_secret_ref.as_ref())
        .map(|r| EnvVar {
            name: "IO_ADAPTER_DATABASE_URL".to_string(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: r.name.clone(),
                    key: r.key.clone(),
                    optional: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .into_iter()
        .collect();

    let mut volume_mounts = vec![
        mount("catalog", CATALOG_DIR, true),
        mount("admin-token", ADMIN_TOKEN_DIR, true),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        Volume {
            name: "catalog".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.catalog_config_map.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "admin-token".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(admin.name.clone()),
                items: Some(vec![KeyToPath {
                    key: admin.key.clone(),
                    path: "token".to_string(),
                    mode: None,
                }]),
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    if let Some(ca) = &spec.registry.ca_secret_ref {
        volume_mounts.push(mount("registry-ca", REGISTRY_CA_DIR, true));
        volumes.push(Volume {
            name: "registry-ca".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(ca.name.clone()),
                items: Some(vec![KeyToPath {
                    key: ca.key.clone(),
                    path: REGISTRY_CA_FILE_NAME.to_string(),
                    mode: None,
                }]),
                default_mode: Some(0o444),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let data_claim = data_claim_name(hcs);
    if let Some(claim) = &data_claim {
        volume_mounts.push(mount("data", DATA_DIR, false));
        volumes.push(Volume {
            name: "data".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: None,
            }),
            ..Default::default()
        });
    }

    let container = Container {
        name: CONTAINER_NAME.to_string(),
        image: Some(image.to_string()),
        image_pull_policy: spec.image_pull_policy.clone(),
        ports: Some(vec![
            ContainerPort {
                name: Some(PORT_NAME.to_string()),
                container_port: port(hcs),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
            ContainerPort {
                name: Some(MANAGEMENT_PORT_NAME.to_string()),
                container_port: MANAGEMENT_PORT,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: names.env_config_map.clone(),
                optional: None,
            }),
            ..Default::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        liveness_probe: Some(probe("/admin/health", 10)),
        readiness_probe: Some(probe("/admin/ready", 5)),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        // The service writes its fatal configuration error to /dev/termination-log; when it
        // could not (or died otherwise), the last log lines stand in. Either way the pod's
        // status says why, and the operator repeats it in the HexCoreService's conditions.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        volume_mounts: Some(volume_mounts),
        ..Default::default()
    };

    let pod_spec = PodSpec {
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(termination_grace_seconds(hcs)),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            fs_group: Some(1000),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        containers: vec![container],
        volumes: Some(volumes),
        node_selector: placement.node_selector,
        tolerations: placement.tolerations,
        affinity: placement.affinity,
        topology_spread_constraints: placement.topology_spread_constraints,
        image_pull_secrets: placement.image_pull_secrets,
        priority_class_name: placement.priority_class_name,
        ..Default::default()
    };

    Deployment {
        metadata: metadata(hcs, &names.deployment),
        spec: Some(DeploymentSpec {
            replicas: Some(deployment_replicas(hcs)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&name)),
                match_expressions: None,
            },
            // A redb file is opened by one process at a time: the old pod must be gone before
            // the new one starts, never both during a rollout. The type is always set (the
            // rolling update's parameters are the API server's defaults), so a change between
            // the two is the operator's, whoever touched the field before.
            strategy: Some(DeploymentStrategy {
                type_: Some(
                    if data_claim.is_some() {
                        "Recreate"
                    } else {
                        "RollingUpdate"
                    }
                    .to_string(),
                ),
                rolling_update: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&name)),
                    annotations: Some(pod_annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn service(hcs: &HexCoreService) -> Service {
    let name = name_of(hcs);
    let service_port = |port_name: &str, port: i32| ServicePort {
        name: Some(port_name.to_string()),
        port,
        target_port: Some(IntOrString::String(port_name.to_string())),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    };
    Service {
        metadata: metadata(hcs, &Names::of(&name).service),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![
                service_port(PORT_NAME, port(hcs)),
                service_port(MANAGEMENT_PORT_NAME, MANAGEMENT_PORT),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The PodDisruptionBudget, when the spec asks for one.
pub fn pod_disruption_budget(hcs: &HexCoreService) -> Option<PodDisruptionBudget> {
    let pdb = hcs.spec.pod_disruption_budget.as_ref()?;
    let name = name_of(hcs);
    Some(PodDisruptionBudget {
        metadata: metadata(hcs, &Names::of(&name).pdb),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&name)),
                match_expressions: None,
            }),
            min_available: pdb.min_available.clone(),
            max_unavailable: pdb.max_unavailable.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// One object the operator server-side-applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    ConfigMap(ConfigMap),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Deployment(Box<Deployment>),
    Service(Service),
    PodDisruptionBudget(PodDisruptionBudget),
}

impl Child {
    pub fn kind(&self) -> &'static str {
        match self {
            Child::ConfigMap(_) => "ConfigMap",
            Child::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Child::Deployment(_) => "Deployment",
            Child::Service(_) => "Service",
            Child::PodDisruptionBudget(_) => "PodDisruptionBudget",
        }
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Child::ConfigMap(o) => &o.metadata,
            Child::PersistentVolumeClaim(o) => &o.metadata,
            Child::Deployment(o) => &o.metadata,
            Child::Service(o) => &o.metadata,
            Child::PodDisruptionBudget(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// The object as server-side apply sends it: `apiVersion`, `kind`, and the set fields only.
    pub fn to_value(&self) -> Value {
        fn typed<K: kube::Resource<DynamicType = ()> + serde::Serialize>(object: &K) -> Value {
            let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
            if let Some(map) = value.as_object_mut() {
                map.insert("apiVersion".into(), Value::String(K::api_version(&()).into_owned()));
                map.insert("kind".into(), Value::String(K::kind(&()).into_owned()));
            }
            value
        }
        match self {
            Child::ConfigMap(o) => typed(o),
            Child::PersistentVolumeClaim(o) => typed(o),
            Child::Deployment(o) => typed(o.as_ref()),
            Child::Service(o) => typed(o),
            Child::PodDisruptionBudget(o) => typed(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Toleration;

    use super::*;
    use crate::catalog::merge_catalogs;
    use crate::crd::*;
    use crate::secrets::referenced_secrets;
    use crate::testing::{catalog_spec, hcs, io_adapter, model, postgres_with_credentials_in};

    const IMAGE: &str = "registry.example/hex-core-service:0.1.0";

    #[test]
    fn catalog_config_map_carries_the_exact_bytes_and_an_owner_reference() {
        let spec = catalog_spec(vec![model("m", "1", "https://h/m.json")]);
        let merged = merge_catalogs([("a", &spec)]).unwrap();
        let cm = catalog_config_map(&hcs("svc"), &merged);
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
        assert_eq!(env["IO_ADAPTER_ID"], "http");
        assert_eq!(
            env["SERVER_MANAGEMENT_PORT"], "9464",
            "probes and metrics on their own listener"
        );
        assert_eq!(env["AUTH_MODE"], "forward_auth");
        assert_eq!(env["AUTH_ADMIN_TOKEN_FILE"], "/var/run/hex-core/admin/token");
        assert_eq!(env["SERVER_PORT"], "8080");
        assert_eq!(env["LOG_LEVEL"], "info");
        assert_eq!(
            env["METRICS_ENABLED"], "true",
            "metrics on unless spec.metrics.enabled is false"
        );
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
            version: Some("v2".into()),
            base_url: Some("https://io.example".into()),
            timeout_ms: Some(700),
            ..io_adapter("http")
        });
        h.spec.auth = AuthSpec {
            mode: "jwt_jwks".into(),
            jwt: Some(JwtSpec {
                jwks_url: "https://idp/jwks".into(),
                issuer: "https://idp".into(),
                audience: "hex".into(),
                refresh_seconds: Some(600),
                leeway_seconds: Some(5),
                min_refetch_seconds: Some(20),
                tenant_claim: Some("org".into()),
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
            shutdown_grace_seconds: Some(45),
            header_read_timeout_ms: Some(5000),
            body_read_timeout_ms: Some(60_000),
            idle_timeout_seconds: Some(700),
            max_connections: Some(2048),
            cors: Some(CorsSpec {
                allowed_origins: vec!["https://app.example".into(), "http://localhost:3000".into()],
                allow_credentials: Some(true),
                max_age_seconds: Some(60),
            }),
        });
        h.spec.validation = Some(ValidationSpec {
            timeout_ms: Some(2000),
            max_nodes: Some(1000),
        });
        h.spec.registry.artifact_max_bytes = Some(2048);
        h.spec.registry.fetch_concurrency = Some(4);
        h.spec.registry.retry = Some(RetrySpec {
            min_delay_ms: Some(100),
            max_delay_seconds: Some(5),
            ready_max_wait_seconds: Some(20),
        });
        h.spec.registry.ca_secret_ref = Some(SecretKeyRef {
            name: "ca".into(),
            key: "bundle.pem".into(),
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
            ("SERVER_SHUTDOWN_GRACE_SECS", "45"),
            ("SERVER_HEADER_READ_TIMEOUT_MS", "5000"),
            ("SERVER_BODY_READ_TIMEOUT_MS", "60000"),
            ("SERVER_IDLE_TIMEOUT_SECS", "700"),
            ("SERVER_MAX_CONNECTIONS", "2048"),
            ("CORS_ALLOWED_ORIGINS", "https://app.example,http://localhost:3000"),
            ("CORS_ALLOW_CREDENTIALS", "true"),
            ("CORS_MAX_AGE_SECS", "60"),
            ("VALIDATION_TIMEOUT_MS", "2000"),
            ("VALIDATION_MAX_NODES", "1000"),
            ("REGISTRY_ARTIFACT_MAX_BYTES", "2048"),
            ("REGISTRY_FETCH_CONCURRENCY", "4"),
            ("REGISTRY_RETRY_MIN_DELAY_MS", "100"),
            ("REGISTRY_RETRY_MAX_DELAY_SECS", "5"),
            ("REGISTRY_READY_MAX_WAIT_SECS", "20"),
            ("REGISTRY_CA_FILE", "/etc/hex-core/registry-ca/ca.pem"),
            ("AUTH_JWKS_MIN_REFETCH_SECS", "20"),
            ("AUTH_TENANT_CLAIM", "org"),
            ("LOG_LEVEL", "debug"),
            ("METRICS_ENABLED", "true"),
        ];
        for (k, v) in expect {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn metrics_are_on_unless_turned_off() {
        let mut h = hcs("svc");
        assert_eq!(environment(&h)["METRICS_ENABLED"], "true");
        h.spec.metrics = Some(crate::crd::MetricsSpec { enabled: false });
        assert_eq!(environment(&h)["METRICS_ENABLED"], "false");
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
    fn deployment_is_hardened_probed_on_the_management_port_and_mounts_catalog_and_token_read_only() {
        let d = deployment(&hcs("svc"), "cfg-hash", IMAGE);
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(
            spec.strategy.unwrap().type_.as_deref(),
            Some("RollingUpdate"),
            "a rolling update for a shared record store"
        );
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
        assert_eq!(c.image.as_deref(), Some(IMAGE));
        assert_eq!(c.termination_message_policy.as_deref(), Some("FallbackToLogsOnError"));
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.run_as_user, Some(1000));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let ports: Vec<(Option<&str>, i32)> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.as_deref(), p.container_port))
            .collect();
        assert_eq!(ports, [(Some("http"), 8080), (Some("management"), 9464)]);
        let live = c.liveness_probe.clone().unwrap().http_get.unwrap();
        let ready = c.readiness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(live.path.as_deref(), Some("/admin/health"));
        assert_eq!(ready.path.as_deref(), Some("/admin/ready"));
        for probe in [&live, &ready] {
            assert_eq!(probe.port, IntOrString::String("management".into()));
        }
        let resources = c.resources.clone().unwrap();
        let q = |m: &Option<BTreeMap<String, Quantity>>, k: &str| m.as_ref().unwrap()[k].0.clone();
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
        assert!(
            mounts.iter().all(|m| m.name != "data"),
            "no data volume for the http store"
        );
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
    fn the_serialized_deployment_holds_only_what_is_set() {
        let value = Child::Deployment(Box::new(deployment(&hcs("svc"), "h", IMAGE))).to_value();
        assert_eq!(value["apiVersion"], "apps/v1");
        assert_eq!(value["kind"], "Deployment");
        let container = &value["spec"]["template"]["spec"]["containers"][0];
        assert!(container.get("env").is_none(), "no empty env list: {container}");
        assert!(container.get("command").is_none());
        assert_eq!(
            value["spec"]["strategy"],
            serde_json::json!({"type": "RollingUpdate"}),
            "the parameters are the API server's defaults"
        );
        assert!(value.get("status").is_none());
    }

    #[test]
    fn embedded_gets_a_claim_one_replica_and_the_recreate_strategy() {
        let mut h = hcs("svc");
        h.spec.io_adapter = Some(io_adapter("embedded"));
        h.spec.replicas = Some(3); // stored before the admission rule existed
        let d = deployment(&h, "h", IMAGE);
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1), "never two pods on one redb file");
        assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let pod = spec.template.spec.unwrap();
        let data = pod.volumes.unwrap().into_iter().find(|v| v.name == "data").unwrap();
        assert_eq!(data.persistent_volume_claim.unwrap().claim_name, "svc-data");
        assert!(data.empty_dir.is_none());
        let mounts = pod.containers[0].volume_mounts.clone().unwrap();
        assert!(mounts.iter().any(|m| m.name == "data" && m.mount_path == DATA_DIR));
        assert!(unshared_records_problem(&h).unwrap().contains("embedded record store"));

        let claim = data_claim(&h).unwrap();
        assert_eq!(claim.metadata.name.as_deref(), Some("svc-data"));
        let claim_spec = claim.spec.unwrap();
        assert_eq!(claim_spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(claim_spec.resources.unwrap().requests.unwrap()["storage"].0, "1Gi");
        assert_eq!(claim_spec.storage_class_name, None);

        // A claim of the user's: mounted, never created.
        h.spec.io_adapter.as_mut().unwrap().storage = Some(StorageSpec {
            claim_name: Some("mine".into()),
            size: None,
            storage_class_name: None,
        });
        assert!(data_claim(&h).is_none());
        assert_eq!(data_claim_name(&h).as_deref(), Some("mine"));
        h.spec.io_adapter.as_mut().unwrap().storage = Some(StorageSpec {
            claim_name: None,
            size: Some(Quantity("5Gi".into())),
            storage_class_name: Some("fast".into()),
        });
        let claim_spec = data_claim(&h).unwrap().spec.unwrap();
        assert_eq!(claim_spec.resources.unwrap().requests.unwrap()["storage"].0, "5Gi");
        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast"));
    }

    #[test]
    fn memory_runs_one_replica_and_the_shared_stores_any_number() {
        let mut h = hcs("svc");
        h.spec.io_adapter = None;
        h.spec.replicas = Some(4);
        assert_eq!(io_adapter_id(&h), "memory");
        assert_eq!(deployment_replicas(&h), 1);
        assert!(unshared_records_problem(&h).unwrap().contains("memory record store"));
        h.spec.replicas = Some(1);
        assert_eq!(unshared_records_problem(&h), None);
        h.spec.replicas = Some(0);
        assert_eq!(deployment_replicas(&h), 0, "scaling to zero is always allowed");
        for id in ["http", "postgres"] {
            h.spec.io_adapter = Some(io_adapter(id));
            h.spec.replicas = Some(4);
            assert_eq!(deployment_replicas(&h), 4, "{id}");
            assert_eq!(unshared_records_problem(&h), None, "{id}");
        }
    }

    #[test]
    fn the_image_defaults_to_the_operators_own_version() {
        let mut h = hcs("svc");
        assert_eq!(image(&h, "hex-core-service:9.9.9"), IMAGE);
        h.spec.image = None;
        assert_eq!(image(&h, "hex-core-service:9.9.9"), "hex-core-service:9.9.9");
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
            tolerations: Some(vec![Toleration {
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
        let pod = deployment(&h, "h", IMAGE).spec.unwrap().template;
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
        assert_eq!(referenced_secrets(&h).len(), 2);
    }

    #[test]
    fn service_exposes_the_named_ports_and_selects_the_pods() {
        let spec = service(&hcs("svc")).spec.unwrap();
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/instance"], "svc");
        let ports: Vec<(Option<String>, i32)> = spec.ports.unwrap().into_iter().map(|p| (p.name, p.port)).collect();
        assert_eq!(
            ports,
            [
                (Some(PORT_NAME.to_string()), 8080),
                (Some("management".to_string()), 9464)
            ]
        );
    }

    #[test]
    fn pod_disruption_budget_only_when_asked_for() {
        let mut h = hcs("svc");
        assert!(pod_disruption_budget(&h).is_none());
        h.spec.pod_disruption_budget = Some(PdbSpec {
            min_available: Some(IntOrString::Int(1)),
            max_unavailable: None,
        });
        let pdb = pod_disruption_budget(&h).unwrap();
        assert_eq!(pdb.spec.unwrap().min_available, Some(IntOrString::Int(1)));
    }
}
