//! `:validate` over real HTTP on the in-process service with the bundled demo catalog: JSON
//! Schema and SHACL both run, and every violation comes back with a JSON path.

mod support;

use serde_json::{Value, json};
use support::{InProcessService, client, demo_dir, demo_env};

fn example(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(demo_dir().join("examples").join(name)).unwrap()).unwrap()
}

async fn validate(service: &InProcessService, body: &Value) -> (u16, Value) {
    let response = client()
        .post(service.url("/models/demo-passport/versions/0.1.0:validate"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn invalid_demo_payload_gets_shacl_and_json_schema_violations_with_json_paths() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let (status, report) = validate(&service, &example("passport-invalid.json")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], false);

    let results = report["results"].as_array().unwrap();
    let has = |kind: &str, path: &str, constraint: &str| {
        results
            .iter()
            .any(|r| r["kind"] == kind && r["path"] == path && r["constraint"] == constraint)
    };
    for (path, constraint) in [
        ("$.manufacturer.country", "sh:PatternConstraintComponent"),
        ("$.colour", "sh:ClosedConstraintComponent"),
        ("$.record_scope", "sh:InConstraintComponent"),
        ("$.product_name", "sh:MinCountConstraintComponent"),
        ("$.mass_kg", "sh:MinInclusiveConstraintComponent"),
    ] {
        assert!(
            has("shacl", path, constraint),
            "no shacl {constraint} at {path}: {report:#}"
        );
    }
    assert!(has("json_schema", "$.manufacturer.country", "pattern"), "{report:#}");
    for result in results {
        assert!(result["path"].as_str().unwrap().starts_with('$'), "{result}");
        // The demo's OWL ontology reports the undeclared `colour` as a warning; the rest are errors.
        let expected = if result["kind"] == "owl" { "warning" } else { "error" };
        assert_eq!(result["severity"], expected, "{result}");
        assert!(!result["message"].as_str().unwrap().is_empty());
        assert!(result["source"].is_string(), "{result}");
    }
    let validators: Vec<(&str, bool)> = report["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["kind"].as_str().unwrap(), v["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        validators,
        vec![("json_schema", false), ("shacl", false), ("owl", true)]
    );
}

#[tokio::test]
async fn valid_demo_payload_passes_json_schema_and_shacl() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let (status, report) = validate(&service, &example("passport-valid.json")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["results"], json!([]));
    assert_eq!(
        report["validators"].as_array().unwrap().len(),
        3,
        "json_schema, shacl and owl ran"
    );
}

#[tokio::test]
async fn model_detail_shows_the_target_class_and_enforced_shacl() {
    let service = InProcessService::start(&demo_env(&[])).await;
    let detail: Value = client()
        .get(service.url("/models/demo-passport/versions/0.1.0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["target_class"],
        json!({"name": "Passport", "chosen_by": "catalog_root_class"})
    );
    assert_eq!(detail["validators"], json!(["json_schema", "shacl", "owl"]));
    assert_eq!(
        detail["warnings"],
        json!([]),
        "SHACL is enforced, so no 'not enforced' warning"
    );
}

#[tokio::test]
async fn payload_with_more_values_than_the_limit_is_refused_before_validation() {
    let service = InProcessService::start(&demo_env(&[("VALIDATION_MAX_NODES", "10")])).await;
    let mut payload = example("passport-valid.json");
    payload["payload"]["materials"] = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]);
    let (status, body) = validate(&service, &payload).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "PAYLOAD_TOO_COMPLEX");
    assert!(
        body["message"].as_str().unwrap().contains("VALIDATION_MAX_NODES"),
        "{body}"
    );
    assert_eq!(body["details"]["limit_nodes"], 10);

    // The valid example itself is within a limit that fits it.
    let service = InProcessService::start(&demo_env(&[("VALIDATION_MAX_NODES", "40")])).await;
    let (status, body) = validate(&service, &example("passport-valid.json")).await;
    assert_eq!(status, 200, "{body}");
}
