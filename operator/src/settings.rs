//! Where each of the service's variables comes from in a cluster: a HexCoreService field, the
//! operator itself, or deliberately nowhere (with the reason). The bounded fields take their
//! CRD `minimum`/`maximum` from `hex-core-settings`, the same constants the service's parser
//! uses; the tests here walk every bounded field at both ends through [`environment`] into the
//! service's own `Config::from_env`, and `operator/tests/crds.rs` checks the API server refuses
//! one step outside.
//!
//! [`environment`]: crate::desired::environment

use hex_core_settings::{self as settings, IntSetting};

/// Who sets a variable of the service in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A HexCoreService field (dotted path under `spec`).
    Spec(&'static str),
    /// The operator, from its own layout (mounts, ports, log format).
    Operator,
    /// Not settable in a cluster, and why.
    NotForClusters(&'static str),
}

/// Every variable of `hex_core_settings::VARIABLES`, with its source.
pub const SOURCES: &[(&str, Source)] = &[
    ("AUTH_ADMIN_ROLE", Source::Spec("auth.adminRole")),
    ("AUTH_ADMIN_TOKEN_FILE", Source::Spec("auth.adminTokenSecretRef")),
    ("AUTH_ALLOW_INSECURE_NONE", Source::Spec("auth.none.allowInsecure")),
    ("AUTH_AUDIENCE", Source::Spec("auth.jwt.audience")),
    ("AUTH_ENFORCE_SCOPES", Source::Spec("auth.enforceScopes")),
    ("AUTH_FORWARD_ROLES_HEADER", Source::Spec("auth.forward.rolesHeader")),
    ("AUTH_FORWARD_SCOPES_HEADER", Source::Spec("auth.forward.scopesHeader")),
    (
        "AUTH_FORWARD_SUBJECT_HEADER",
        Source::Spec("auth.forward.subjectHeader"),
    ),
    ("AUTH_FORWARD_TENANT_HEADER", Source::Spec("auth.forward.tenantHeader")),
    ("AUTH_FORWARD_TOKEN_HEADER", Source::Spec("auth.forward.tokenHeader")),
    ("AUTH_ISSUER", Source::Spec("auth.jwt.issuer")),
    ("AUTH_JWKS_MIN_REFETCH_SECS", Source::Spec("auth.jwt.minRefetchSeconds")),
    ("AUTH_JWKS_REFRESH_SECS", Source::Spec("auth.jwt.refreshSeconds")),
    ("AUTH_JWKS_URL", Source::Spec("auth.jwt.jwksUrl")),
    ("AUTH_LEEWAY_SECS", Source::Spec("auth.jwt.leewaySeconds")),
    ("AUTH_MODE", Source::Spec("auth.mode")),
    ("AUTH_NONE_ROLES", Source::Spec("auth.none.roles")),
    ("AUTH_NONE_SCOPES", Source::Spec("auth.none.scopes")),
    ("AUTH_NONE_SUBJECT", Source::Spec("auth.none.subject")),
    ("AUTH_NONE_TENANT", Source::Spec("auth.none.tenant")),
    ("AUTH_TENANT_CLAIM", Source::Spec("auth.jwt.tenantClaim")),
    ("CORS_ALLOWED_ORIGINS", Source::Spec("server.cors.allowedOrigins")),
    ("CORS_ALLOW_CREDENTIALS", Source::Spec("server.cors.allowCredentials")),
    ("CORS_MAX_AGE_SECS", Source::Spec("server.cors.maxAgeSeconds")),
    ("IO_ADAPTER_BASE_URL", Source::Spec("ioAdapter.baseUrl")),
    (
        "IO_ADAPTER_DATABASE_URL",
        Source::Spec("ioAdapter.credentialsSecretRef"),
    ),
    ("IO_ADAPTER_DATA_DIR", Source::Operator),
    ("IO_ADAPTER_ID", Source::Spec("ioAdapter.id")),
    ("IO_ADAPTER_TIMEOUT_MS", Source::Spec("ioAdapter.timeoutMs")),
    ("IO_ADAPTER_VERSION", Source::Spec("ioAdapter.version")),
    ("LOG_FORMAT", Source::Operator),
    ("LOG_LEVEL", Source::Spec("logLevel")),
    ("METRICS_ENABLED", Source::Spec("metrics.enabled")),
    ("REGISTRY_ALLOWED_HOSTS", Source::Spec("registry.allowedHosts")),
    (
        "REGISTRY_ALLOW_LOCAL_ARTIFACTS",
        Source::NotForClusters(
            "artifacts on the pod's own disk are for running without an artifact server; in a cluster they come from allowedHosts",
        ),
    ),
    ("REGISTRY_ARTIFACT_MAX_BYTES", Source::Spec("registry.artifactMaxBytes")),
    ("REGISTRY_CACHE_ENABLED", Source::Spec("registry.cache.enabled")),
    ("REGISTRY_CACHE_TTL_SECS", Source::Spec("registry.cache.ttlSeconds")),
    ("REGISTRY_CA_FILE", Source::Spec("registry.caSecretRef")),
    ("REGISTRY_CATALOG_FILE", Source::Operator),
    (
        "REGISTRY_CATALOG_JSON",
        Source::NotForClusters("the operator delivers the merged ModelCatalogs as a file"),
    ),
    (
        "REGISTRY_CATALOG_URL",
        Source::NotForClusters("the operator delivers the merged ModelCatalogs as a file"),
    ),
    ("REGISTRY_FETCH_CONCURRENCY", Source::Spec("registry.fetchConcurrency")),
    ("REGISTRY_FETCH_TIMEOUT_MS", Source::Spec("registry.fetchTimeoutMs")),
    (
        "REGISTRY_MODE",
        Source::NotForClusters("the operator delivers the merged ModelCatalogs as a file"),
    ),
    (
        "REGISTRY_READY_MAX_WAIT_SECS",
        Source::Spec("registry.retry.readyMaxWaitSeconds"),
    ),
    ("REGISTRY_REQUIRE_HTTPS", Source::Spec("registry.requireHttps")),
    (
        "REGISTRY_RETRY_MAX_DELAY_SECS",
        Source::Spec("registry.retry.maxDelaySeconds"),
    ),
    ("REGISTRY_RETRY_MIN_DELAY_MS", Source::Spec("registry.retry.minDelayMs")),
    ("SERVER_BODY_READ_TIMEOUT_MS", Source::Spec("server.bodyReadTimeoutMs")),
    (
        "SERVER_HEADER_READ_TIMEOUT_MS",
        Source::Spec("server.headerReadTimeoutMs"),
    ),
    ("SERVER_HOST", Source::Operator),
    ("SERVER_IDLE_TIMEOUT_SECS", Source::Spec("server.idleTimeoutSeconds")),
    ("SERVER_MANAGEMENT_PORT", Source::Operator),
    ("SERVER_MAX_CONNECTIONS", Source::Spec("server.maxConnections")),
    ("SERVER_PORT", Source::Spec("server.port")),
    ("SERVER_REQUEST_MAX_BYTES", Source::Spec("server.requestMaxBytes")),
    (
        "SERVER_SHUTDOWN_GRACE_SECS",
        Source::Spec("server.shutdownGraceSeconds"),
    ),
    ("VALIDATION_MAX_NODES", Source::Spec("validation.maxNodes")),
    ("VALIDATION_TIMEOUT_MS", Source::Spec("validation.timeoutMs")),
];

/// The bounded integer fields of a HexCoreService and the setting each one carries. (Its
/// `server.port` is narrower than `SERVER_PORT`: 1-65535 without the management port.)
pub const BOUNDED_FIELDS: &[(&str, IntSetting)] = &[
    ("registry.fetchTimeoutMs", settings::REGISTRY_FETCH_TIMEOUT_MS),
    ("registry.artifactMaxBytes", settings::REGISTRY_ARTIFACT_MAX_BYTES),
    ("registry.fetchConcurrency", settings::REGISTRY_FETCH_CONCURRENCY),
    ("registry.retry.minDelayMs", settings::REGISTRY_RETRY_MIN_DELAY_MS),
    (
        "registry.retry.maxDelaySeconds",
        settings::REGISTRY_RETRY_MAX_DELAY_SECS,
    ),
    (
        "registry.retry.readyMaxWaitSeconds",
        settings::REGISTRY_READY_MAX_WAIT_SECS,
    ),
    ("registry.cache.ttlSeconds", settings::REGISTRY_CACHE_TTL_SECS),
    ("ioAdapter.timeoutMs", settings::IO_ADAPTER_TIMEOUT_MS),
    ("auth.jwt.refreshSeconds", settings::AUTH_JWKS_REFRESH_SECS),
    ("auth.jwt.leewaySeconds", settings::AUTH_LEEWAY_SECS),
    ("auth.jwt.minRefetchSeconds", settings::AUTH_JWKS_MIN_REFETCH_SECS),
    ("server.requestMaxBytes", settings::SERVER_REQUEST_MAX_BYTES),
    ("server.shutdownGraceSeconds", settings::SERVER_SHUTDOWN_GRACE_SECS),
    ("server.headerReadTimeoutMs", settings::SERVER_HEADER_READ_TIMEOUT_MS),
    ("server.bodyReadTimeoutMs", settings::SERVER_BODY_READ_TIMEOUT_MS),
    ("server.idleTimeoutSeconds", settings::SERVER_IDLE_TIMEOUT_SECS),
    ("server.maxConnections", settings::SERVER_MAX_CONNECTIONS),
    ("server.cors.maxAgeSeconds", settings::CORS_MAX_AGE_SECS),
    ("validation.timeoutMs", settings::VALIDATION_TIMEOUT_MS),
    ("validation.maxNodes", settings::VALIDATION_MAX_NODES),
];

/// A spec (JSON) that sets every settable group, so each bounded field has its context (JWT
/// fields need `auth.mode: jwt_jwks`, the cache TTL an enabled cache, the IO timeout the http
/// adapter). Shared by the tests here and the API-server test.
pub fn example_spec_json() -> serde_json::Value {
    serde_json::json!({
        "image": "registry.example/hex-core-service:0.1.0",
        "replicas": 1,
        "catalogs": {"names": ["c"]},
        "registry": {
            "allowedHosts": ["models.example"],
            "cache": {"enabled": true},
            "retry": {},
        },
        "ioAdapter": {"id": "http", "baseUrl": "https://records.example"},
        "auth": {
            "mode": "jwt_jwks",
            "jwt": {"jwksUrl": "https://idp.example/jwks", "issuer": "https://idp.example", "audience": "hex"},
        },
        "server": {"cors": {"allowedOrigins": ["https://app.example"]}},
        "validation": {},
    })
}

/// A HexCoreService `name` with `spec` (JSON), as a client would send it.
pub fn service_with_spec(name: &str, spec: serde_json::Value) -> crate::crd::HexCoreService {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "HexCoreService",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("a HexCoreService")
}

/// Sets `path` (dotted, under `spec`) in a spec JSON.
pub fn set_path(spec: &mut serde_json::Value, path: &str, value: serde_json::Value) {
    let mut node = spec;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        node = node
            .as_object_mut()
            .expect("an object on the path")
            .entry(part.to_string())
            .or_insert_with(|| serde_json::json!({}));
    }
    node[parts[parts.len() - 1]] = value;
}

/// The table of docs/operator.md ("Settings"): each variable of the service, the HexCoreService
/// field that sets it and the accepted range, from [`SOURCES`] and [`BOUNDED_FIELDS`].
pub fn settings_table() -> String {
    let mut out = String::from("| variable | set by | range (default) |\n|---|---|---|\n");
    for (var, source) in SOURCES {
        let set_by = match source {
            Source::Spec(path) => format!("`spec.{path}`"),
            Source::Operator => "the operator".to_string(),
            Source::NotForClusters(why) => format!("not settable: {why}"),
        };
        let range = settings::ALL
            .iter()
            .find(|s| s.var == *var)
            .map(|s| format!("{}–{} ({})", s.min, s.max, s.default))
            .unwrap_or_default();
        out.push_str(&format!("| `{var}` | {set_by} | {range} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::HexCoreService;
    use crate::desired::{deployment, environment};
    use hex_core_service::config::{Config, Env};
    use kube::CustomResourceExt;
    use serde_json::{Value, json};
    use std::collections::{BTreeMap, BTreeSet};

    fn hcs_from(spec: Value) -> HexCoreService {
        let mut hcs = service_with_spec("svc", spec);
        hcs.metadata.namespace = Some("ns1".into());
        hcs
    }

    /// The environment a pod of `hcs` starts with: the operator's ConfigMap, plus the Secret
    /// values it injects (a stand-in value; the service only parses it).
    fn pod_environment(hcs: &HexCoreService) -> BTreeMap<String, String> {
        let mut env = environment(hcs);
        let pod = deployment(hcs, "hash", "image").spec.unwrap().template.spec.unwrap();
        for var in pod.containers[0].env.clone().unwrap_or_default() {
            env.insert(var.name, "postgres://u:p@db.example/records".into());
        }
        env
    }

    #[test]
    fn every_variable_of_the_service_has_exactly_one_source() {
        let listed: Vec<&str> = SOURCES.iter().map(|(v, _)| *v).collect();
        let unique: BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(unique.len(), listed.len(), "a variable listed twice");
        let service: BTreeSet<&str> = settings::VARIABLES.iter().copied().collect();
        assert_eq!(unique, service, "SOURCES and the service's variables differ");
    }

    /// Each variable a HexCoreService sets reaches the pod when its field is set.
    #[test]
    fn every_spec_sourced_variable_reaches_the_pod() {
        let mut spec = example_spec_json();
        for (path, setting) in BOUNDED_FIELDS {
            set_path(&mut spec, path, json!(setting.default));
        }
        set_path(&mut spec, "registry.requireHttps", json!(false));
        set_path(
            &mut spec,
            "registry.caSecretRef",
            json!({"name": "ca", "key": "ca.crt"}),
        );
        set_path(&mut spec, "auth.adminRole", json!("ops"));
        set_path(&mut spec, "auth.enforceScopes", json!(true));
        set_path(&mut spec, "auth.jwt.tenantClaim", json!("org"));
        set_path(&mut spec, "server.port", json!(8081));
        set_path(&mut spec, "server.cors.allowCredentials", json!(true));
        set_path(&mut spec, "ioAdapter.version", json!("v1"));
        set_path(&mut spec, "logLevel", json!("debug"));
        set_path(&mut spec, "metrics", json!({"enabled": true}));
        let jwt = pod_environment(&hcs_from(spec.clone()));

        // The identity settings of the other modes, and the postgres credential.
        let mut forward = example_spec_json();
        set_path(
            &mut forward,
            "auth",
            json!({"mode": "forward_auth", "forward": {
            "subjectHeader": "x-s", "rolesHeader": "x-r", "scopesHeader": "x-sc",
            "tenantHeader": "x-t", "tokenHeader": "x-tok"}}),
        );
        set_path(
            &mut forward,
            "ioAdapter",
            json!({"id": "postgres", "credentialsSecretRef": {"name": "db", "key": "url"}}),
        );
        let forward = pod_environment(&hcs_from(forward));
        let mut none = example_spec_json();
        set_path(
            &mut none,
            "auth",
            json!({"mode": "none", "none": {
            "allowInsecure": true, "subject": "dev", "roles": ["admin"], "scopes": ["records:read"], "tenant": "t"}}),
        );
        let none = pod_environment(&hcs_from(none));

        for (var, source) in SOURCES {
            if let Source::Spec(path) = source {
                assert!(
                    jwt.contains_key(*var) || forward.contains_key(*var) || none.contains_key(*var),
                    "{var} (spec.{path}) never reaches the pod's environment"
                );
            }
        }
    }

    /// The CRD's bounds are the service's: read back from the generated schema.
    #[test]
    fn the_crd_schema_carries_the_services_bounds() {
        let crd = serde_json::to_value(HexCoreService::crd()).unwrap();
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        for (path, setting) in BOUNDED_FIELDS {
            let mut node = root;
            for part in path.split('.') {
                node = &node["properties"][part];
            }
            // schemars writes bounds as floats (`100.0`), as OpenAPI types them.
            assert_eq!(
                node["minimum"].as_f64(),
                Some(setting.min as f64),
                "spec.{path} minimum ({})",
                setting.var
            );
            // schemars writes bounds as floats (`100.0`), as OpenAPI types them.
            assert_eq!(
                node["maximum"].as_f64(),
                Some(setting.max as f64),
                "spec.{path} maximum ({})",
                setting.var
            );
        }
    }

    /// Every value the API server accepts for a bounded field, at both ends, is accepted by
    /// the service's own parser once the operator has rendered it.
    #[test]
    fn every_bounded_field_at_its_minimum_and_maximum_starts_the_service() {
        for (path, setting) in BOUNDED_FIELDS {
            for value in [setting.min, setting.max] {
                let mut spec = example_spec_json();
                set_path(&mut spec, path, json!(value));
                if *path == "registry.retry.minDelayMs" {
                    // The CRD's rule: the cap (default 30 s) is at least the first delay.
                    set_path(
                        &mut spec,
                        "registry.retry.maxDelaySeconds",
                        json!(value.div_ceil(1000).max(30)),
                    );
                }
                let hcs = hcs_from(spec);
                let env = pod_environment(&hcs);
                assert_eq!(
                    env.get(setting.var).map(String::as_str),
                    Some(value.to_string().as_str()),
                    "spec.{path} = {value} renders {}",
                    setting.var
                );
                if let Err(e) = Config::from_env(&Env::from_map(&env)) {
                    panic!("spec.{path} = {value}: the service refuses its environment: {e}");
                }
            }
        }
    }

    /// docs/operator.md carries the generated table; `HEX_UPDATE_DOCS=1` rewrites it.
    #[test]
    fn the_settings_table_in_the_docs_is_generated() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operator.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- settings-table:begin -->\n", "<!-- settings-table:end -->");
        let start = doc
            .find(begin)
            .expect("docs/operator.md has the settings-table markers")
            + begin.len();
        let stop = doc.find(end).expect("the end marker");
        let wanted = settings_table();
        if doc[start..stop] != wanted {
            if std::env::var_os("HEX_UPDATE_DOCS").is_some() {
                std::fs::write(path, format!("{}{wanted}{}", &doc[..start], &doc[stop..])).unwrap();
            } else {
                panic!(
                    "docs/operator.md's settings table is stale: run `HEX_UPDATE_DOCS=1 cargo test -p hex-core-operator --lib settings`"
                );
            }
        }
    }
}
