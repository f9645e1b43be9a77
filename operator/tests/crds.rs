//! The committed CRDs on a real API server: installable, served, and validating with CEL.

mod support;

use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use kube::api::PostParams;
use kube::{Api, CustomResourceExt};
use serde_json::{Value, json};
use support::{TestNs, api_error_message, install_crds};

fn catalog(name: &str, models: Value) -> ModelCatalog {
    serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1",
        "kind": "ModelCatalog",
        "metadata": {"name": name},
        "spec": {"models": models},
    }))
    .expect("ModelCatalog JSON")
}

fn service(name: &str, spec_patch: Value) -> HexCoreService {
    let mut spec = json!({
        "image": "registry.example/hex-core-service:0.1.0",
        "replicas": 1,
        "catalogs": {"names": ["c"]},
        "registry": {"allowedHosts": ["models.example"]},
        "auth": {"mode": "forward_auth"},
    });
    merge(&mut spec, spec_patch);
    serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1",
        "kind": "HexCoreService",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("HexCoreService JSON")
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Creates `obj` raw (bypassing the Rust types' own checks) and returns the API server's verdict.
async fn create_raw<K>(api: &Api<K>, obj: &K) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), obj).await
}

#[tokio::test]
async fn a_valid_catalog_is_accepted_and_read_back() {
    let ns = TestNs::new("crd-valid").await;
    install_crds(&ns.client).await;
    let api: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let models = json!([
        {"model": "m", "version": "1.0.0", "schemaUrl": "https://models.example/m/1.0.0/schema.json"},
        {"model": "m", "version": "2.0.0", "shaclUrl": "http://models.example/m/2.0.0/shapes.ttl", "rootClass": "Root"},
    ]);
    create_raw(&api, &catalog("ok", models)).await.expect("a valid catalog");
    let read = api.get("ok").await.unwrap();
    assert_eq!(read.spec.models.len(), 2);
    assert_eq!(read.spec.models[1].root_class.as_deref(), Some("Root"));
}

#[tokio::test]
async fn cel_rejects_a_duplicate_model_version_with_the_servers_message() {
    let ns = TestNs::new("crd-dup").await;
    install_crds(&ns.client).await;
    let api: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let models = json!([
        {"model": "m", "version": "1.0.0", "schemaUrl": "https://h/a.json"},
        {"model": "m", "version": "1.0.0", "schemaUrl": "https://h/b.json"},
    ]);
    let (code, message) = api_error_message(create_raw(&api, &catalog("dup", models)).await);
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("each (model, version) pair may appear only once in a catalog"),
        "{message}"
    );
    assert!(
        message.contains("spec.models"),
        "the message names the field: {message}"
    );
}

#[tokio::test]
async fn cel_rejects_non_http_urls_and_entries_without_any_url() {
    let ns = TestNs::new("crd-url").await;
    install_crds(&ns.client).await;
    let api: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);

    for (name, url) in [
        ("ftp", "ftp://h/schema.json"),
        ("relative", "models/schema.json"),
        ("file", "file:///etc/passwd"),
    ] {
        let models = json!([{"model": "m", "version": "1", "schemaUrl": url}]);
        let (code, message) = api_error_message(create_raw(&api, &catalog(name, models)).await);
        assert_eq!(code, 422, "{url}: {message}");
        assert!(
            message.contains("must be an absolute http:// or https:// URL"),
            "{url}: {message}"
        );
        assert!(message.contains("schemaUrl"), "{url}: {message}");
    }

    let models = json!([{"model": "m", "version": "1", "linkmlUrl": "https://h/schema.yaml"}]);
    let (code, message) = api_error_message(create_raw(&api, &catalog("nourl", models)).await);
    assert_eq!(code, 422);
    assert!(
        message.contains("each model needs at least one of schemaUrl, shaclUrl, owlUrl, openapiUrl or routeUrl"),
        "{message}"
    );

    let models = json!([{"model": "../etc", "version": "1", "schemaUrl": "https://h/s.json"}]);
    let (code, message) = api_error_message(create_raw(&api, &catalog("dots", models)).await);
    assert_eq!(code, 422, "{message}");
}

#[tokio::test]
async fn invalid_services_are_rejected_with_the_servers_message() {
    let ns = TestNs::new("crd-hcs").await;
    install_crds(&ns.client).await;
    let api: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);

    create_raw(&api, &service("ok", json!({})))
        .await
        .expect("a valid service");

    let cases = [
        (
            "negative",
            json!({"replicas": -1}),
            "should be greater than or equal to 0",
        ),
        (
            "mode",
            json!({"auth": {"mode": "basic"}}),
            "must be one of jwt_jwks, forward_auth, none",
        ),
        (
            "jwt",
            json!({"auth": {"mode": "jwt_jwks"}}),
            "mode jwt_jwks needs the jwt settings",
        ),
        (
            "none",
            json!({"auth": {"mode": "none", "none": {"allowInsecure": false}}}),
            "mode none needs none.allowInsecure: true",
        ),
        (
            "pg",
            json!({"ioAdapter": {"id": "postgres"}}),
            "the postgres adapter needs credentialsSecretRef",
        ),
        (
            "http",
            json!({"ioAdapter": {"id": "http"}}),
            "the http adapter needs baseUrl",
        ),
        (
            "nocat",
            json!({"catalogs": {"names": []}}),
            "select catalogs with a selector, names, or both",
        ),
        (
            "loglevel",
            json!({"logLevel": "verbose"}),
            "must be one of trace, debug, info, warn, error",
        ),
        (
            "pdb",
            json!({"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}),
            "set exactly one of minAvailable and maxUnavailable",
        ),
        (
            "memory3",
            json!({"replicas": 3}),
            "replicas > 1 needs a record store the replicas share: ioAdapter.id http or postgres",
        ),
        (
            "embedded2",
            json!({"replicas": 2, "ioAdapter": {"id": "embedded"}}),
            "memory, the default, and embedded keep records inside each replica",
        ),
        (
            "storage",
            json!({"ioAdapter": {"id": "postgres", "credentialsSecretRef": {"name": "db", "key": "url"},
                                 "storage": {"size": "1Gi"}}}),
            "storage is only for the embedded adapter",
        ),
        (
            "claim",
            json!({"ioAdapter": {"id": "embedded", "storage": {"claimName": "mine", "size": "1Gi"}}}),
            "name an existing claim (claimName) or let the operator create one (size, storageClassName), not both",
        ),
    ];
    for (name, patch, expected) in cases {
        let (code, message) = api_error_message(create_raw(&api, &service(name, patch)).await);
        assert_eq!(code, 422, "{name}: {message}");
        assert!(message.contains(expected), "{name}: expected {expected:?} in {message}");
    }
    let (_, message) = api_error_message(create_raw(&api, &service("field", json!({"replicas": 2}))).await);
    assert!(
        message.contains("spec.replicas"),
        "the message names the field: {message}"
    );
}

#[tokio::test]
async fn replicas_beyond_one_need_a_shared_record_store_and_kubectl_scale_obeys_it() {
    let ns = TestNs::new("crd-replicas").await;
    install_crds(&ns.client).await;
    let api: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    for (name, adapter) in [
        ("http", json!({"id": "http", "baseUrl": "https://records.example"})),
        (
            "pg",
            json!({"id": "postgres", "credentialsSecretRef": {"name": "db", "key": "url"}}),
        ),
    ] {
        create_raw(&api, &service(name, json!({"replicas": 3, "ioAdapter": adapter})))
            .await
            .unwrap_or_else(|e| panic!("{name}: shared stores take any replica count: {e}"));
    }
    for (name, adapter) in [
        ("mem", json!({"id": "memory"})),
        (
            "emb",
            json!({"id": "embedded", "storage": {"size": "2Gi", "storageClassName": "fast"}}),
        ),
    ] {
        create_raw(&api, &service(name, json!({"replicas": 1, "ioAdapter": adapter})))
            .await
            .unwrap_or_else(|e| panic!("{name}: one replica is always allowed: {e}"));
        let out = ns.kubectl(&["scale", &format!("hexcoreservice/{name}"), "--replicas=2"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: kubectl scale to 2 must be refused");
        assert!(
            stderr.contains("replicas > 1 needs a record store the replicas share"),
            "{name}: {stderr}"
        );
        let out = ns.kubectl(&["scale", &format!("hexcoreservice/{name}"), "--replicas=0"]);
        assert!(
            out.status.success(),
            "{name}: scaling to zero: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // spec.image may be omitted (the operator's own version then runs).
    let mut no_image = service("noimage", json!({}));
    no_image.spec.image = None;
    create_raw(&api, &no_image).await.expect("spec.image is optional");
}

/// The CRD as it was before the replicas rule (standing in for the previous release's).
fn crd_without_the_replicas_rule()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    let mut crd = serde_json::to_value(HexCoreService::crd()).unwrap();
    let rules = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations")
        .and_then(Value::as_array_mut)
        .expect("the spec's CEL rules");
    rules.retain(|r| !r["rule"].as_str().unwrap_or_default().contains("self.replicas"));
    assert!(rules.is_empty(), "the replicas rule is the only one on spec");
    let spec = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
        .and_then(Value::as_object_mut)
        .unwrap();
    spec.remove("x-kubernetes-validations");
    serde_json::from_value(crd).unwrap()
}

#[tokio::test]
async fn a_service_stored_before_the_replicas_rule_keeps_working_until_its_spec_changes() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};

    // CRDs are cluster-wide: this test swaps them on a plane of its own.
    let own = support::OwnPlane::up();
    let client = own.client("default").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply_crd = |crd: CustomResourceDefinition| {
        let crds = crds.clone();
        async move {
            crds.patch(
                "hexcoreservices.hex-core.dev",
                &PatchParams::apply("hex-core-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                await_condition(crds, "hexcoreservices.hex-core.dev", conditions::is_crd_established()),
            )
            .await
            .unwrap()
            .unwrap();
        }
    };
    apply_crd(crd_without_the_replicas_rule()).await;
    let api: Api<HexCoreService> = Api::namespaced(client.clone(), "default");
    create_raw(&api, &service("old", json!({"replicas": 3})))
        .await
        .expect("the previous CRD admitted it");

    apply_crd(HexCoreService::crd()).await;
    // CRD validation ratcheting: what does not touch the spec is accepted as before...
    api.patch_metadata(
        "old",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .expect("metadata edits");
    api.patch_status(
        "old",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
    )
    .await
    .expect("status writes (the operator's) are accepted");
    // ...and any spec change must fix the replica count or the record store.
    let (code, message) = api_error_message(
        api.patch(
            "old",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"logLevel": "debug"}})),
        )
        .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("replicas > 1 needs a record store"), "{message}");
    api.patch(
        "old",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"logLevel": "debug", "replicas": 1}})),
    )
    .await
    .expect("fixed by scaling to one");
}

#[tokio::test]
async fn short_names_categories_and_printer_columns_work_with_kubectl() {
    let ns = TestNs::new("crd-kubectl").await;
    install_crds(&ns.client).await;
    let api: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    create_raw(
        &api,
        &catalog(
            "c",
            json!([{"model": "m", "version": "1", "schemaUrl": "https://h/s.json"}]),
        ),
    )
    .await
    .unwrap();
    let out = ns.kubectl(&["get", "mcat"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("MODELS") && stdout.contains("READY") && stdout.contains("AGE"),
        "{stdout}"
    );
    let out = ns.kubectl(&["get", "hexcore", "-o", "name"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("modelcatalog.hex-core.dev/c"));
}

/// Every bounded field: the API server accepts the service's minimum and maximum and refuses
/// one step outside, so a spec it accepts never makes the pods exit 2 (before, e.g.
/// `registry.fetchTimeoutMs: 50` was accepted and every pod refused it).
#[tokio::test]
async fn bounded_fields_are_refused_exactly_outside_the_services_range() {
    use hex_core_operator::settings::{BOUNDED_FIELDS, example_spec_json, service_with_spec, set_path};
    let ns = TestNs::new("crd-bounds").await;
    install_crds(&ns.client).await;
    let api: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    let object = |name: String, path: &str, value: i64| -> HexCoreService {
        let mut spec = example_spec_json();
        set_path(&mut spec, path, json!(value));
        if path == "registry.retry.minDelayMs" {
            set_path(&mut spec, "registry.retry.maxDelaySeconds", json!(3600));
        }
        service_with_spec(&name, spec)
    };
    for (i, (path, setting)) in BOUNDED_FIELDS.iter().enumerate() {
        let (min, max) = (setting.min as i64, setting.max as i64);
        for (end, value) in [("min", min), ("max", max)] {
            create_raw(&api, &object(format!("b{i}-{end}"), path, value))
                .await
                .unwrap_or_else(|e| panic!("spec.{path} = {value} ({end} of {}) refused: {e}", setting.var));
        }
        let mut outside = vec![("over", max + 1, "less than or equal to")];
        if min > 0 {
            outside.push(("under", min - 1, "greater than or equal to"));
        }
        for (end, value, expected) in outside {
            let (code, message) =
                api_error_message(create_raw(&api, &object(format!("b{i}-{end}"), path, value)).await);
            assert_eq!(code, 422, "spec.{path} = {value}: {message}");
            assert!(
                message.contains(expected) && message.contains(path.rsplit('.').next().unwrap()),
                "spec.{path} = {value}: expected {expected:?} naming the field in {message}"
            );
        }
    }
    // Cross-field rules the service checks at start.
    let mut spec = example_spec_json();
    set_path(&mut spec, "registry.retry.minDelayMs", json!(45_000));
    let hcs = service_with_spec("retry-cap", spec);
    let (code, message) = api_error_message(create_raw(&api, &hcs).await);
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("maxDelaySeconds (default 30) must be at least minDelayMs"),
        "{message}"
    );
    let (code, message) =
        api_error_message(create_raw(&api, &service("mgmt", json!({"server": {"port": 9464}}))).await);
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("9464 is the management port"), "{message}");
}
