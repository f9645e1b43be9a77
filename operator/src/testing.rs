//! Fixtures shared by the unit tests of several modules.

use kube::api::ObjectMeta;

use crate::crd::*;

pub fn model(name: &str, version: &str, schema: &str) -> CatalogModel {
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

pub fn catalog_spec(models: Vec<CatalogModel>) -> ModelCatalogSpec {
    ModelCatalogSpec { models }
}

/// A ModelCatalog `name` in namespace `ns1` with `labels`.
pub fn named_catalog(name: &str, labels: &[(&str, &str)], models: Vec<CatalogModel>) -> ModelCatalog {
    let mut c = ModelCatalog::new(name, catalog_spec(models));
    c.metadata.namespace = Some("ns1".into());
    c.metadata.generation = Some(1);
    c.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    c
}

/// An IO adapter of kind `id` with nothing else set.
pub fn io_adapter(id: &str) -> IoAdapterSpec {
    IoAdapterSpec {
        id: id.into(),
        version: None,
        base_url: (id == "http").then(|| "https://records.example".to_string()),
        timeout_ms: None,
        credentials_secret_ref: None,
        storage: None,
    }
}

/// The postgres IO adapter with its database URL in Secret `name`, key `key`.
pub fn postgres_with_credentials_in(name: &str, key: &str) -> IoAdapterSpec {
    IoAdapterSpec {
        credentials_secret_ref: Some(SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }),
        ..io_adapter("postgres")
    }
}

/// A HexCoreService `name` in namespace `ns1` (uid `uid-1`, generation 1): 2 replicas on the
/// http record store, catalog `a` by name, forward_auth.
pub fn hcs(name: &str) -> HexCoreService {
    let mut hcs = HexCoreService::new(
        name,
        HexCoreServiceSpec {
            image: Some("registry.example/hex-core-service:0.1.0".into()),
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
                artifact_max_bytes: None,
                fetch_concurrency: None,
                retry: None,
                ca_secret_ref: None,
            },
            io_adapter: Some(io_adapter("http")),
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
            validation: None,
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
