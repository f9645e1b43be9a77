//! What a payload becomes, through the real REST API and every record store adapter (`memory`,
//! `embedded` in a temp dir, `http` against a real IO adapter server, `postgres` on a real
//! database): numbers come back exactly as sent, idempotent replays compare payloads by JSON value,
//! and what no adapter can store (U+0000) or use as an id (invisible and reordering characters) is
//! refused with the same 400 everywhere, never a 502 that looks like a store outage.

mod support;

use std::any::Any;
use std::collections::BTreeMap;

use serde_json::Value;
use support::records::{IoAdapterServer, postgres_test_url};
use support::{InProcessService, client, demo_env};

const BASE: &str = "/models/demo-passport/versions/0.1.0";

/// The service on one adapter, plus what must outlive it.
struct Harness {
    service: InProcessService,
    _keep: Box<dyn Any + Send>,
}

async fn start(adapter: &[(&str, String)], keep: Box<dyn Any + Send>) -> Harness {
    let mut env: BTreeMap<String, String> = demo_env(&[]);
    env.extend(adapter.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Harness {
        service: InProcessService::start(&env).await,
        _keep: keep,
    }
}

async fn memory() -> Harness {
    start(&[("IO_ADAPTER_ID", "memory".into())], Box::new(())).await
}

async fn embedded() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    start(
        &[("IO_ADAPTER_ID", "embedded".into()), ("IO_ADAPTER_DATA_DIR", data_dir)],
        Box::new(dir),
    )
    .await
}

async fn http() -> Harness {
    let server = IoAdapterServer::start().await;
    let base_url = server.base_url();
    start(
        &[("IO_ADAPTER_ID", "http".into()), ("IO_ADAPTER_BASE_URL", base_url)],
        Box::new(server),
    )
    .await
}

async fn postgres() -> Harness {
    start(
        &[
            ("IO_ADAPTER_ID", "postgres".into()),
            ("IO_ADAPTER_DATABASE_URL", postgres_test_url()),
        ],
        Box::new(()),
    )
    .await
}

struct Answer {
    status: u16,
    text: String,
    replayed: bool,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

/// POSTs `body` exactly as written (no client-side JSON round trip).
async fn post_text(h: &Harness, path: &str, key: Option<&str>, body: &str) -> Answer {
    let mut request = client()
        .post(h.service.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        replayed: response.headers().get("idempotency-replayed").is_some(),
        text: response.text().await.unwrap(),
    }
}

async fn get_text(h: &Harness, path: &str) -> Answer {
    let response = client().get(h.service.url(path)).send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        replayed: false,
        text: response.text().await.unwrap(),
    }
}

/// A valid demo passport as JSON text, with `id` and the numbers written as given.
fn passport(id: &str, mass_kg: &str, shares: [&str; 2]) -> String {
    format!(
        r#"{{"id":"{id}","product_name":"Laptop","record_scope":"product","mass_kg":{mass_kg},"manufacturer":{{"name":"Example Devices","country":"DE"}},"materials":[{{"name":"aluminium","share_percent":{}}},{{"name":"ABS","share_percent":{}}}]}}"#,
        shares[0], shares[1]
    )
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

mod cases {
    use super::*;

    pub async fn numbers_come_back_exactly_as_sent(h: Harness) {
        let id = unique("exact");
        // Beyond a double's precision, a negative zero. (The demo model's SHACL decimals stop near
        // 1.7e20, so the digits beyond a double are in the fraction here.)
        let payload = passport(&id, "12345678901234567.890123", ["38.50000000000000000001", "-0"]);
        let created = post_text(
            &h,
            &format!("{BASE}:create"),
            Some(&id),
            &format!(r#"{{"payload":{payload}}}"#),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.text);
        assert!(
            created.text.contains(&payload),
            "create answered {} for {payload}",
            created.text
        );
        let read = get_text(&h, &format!("{BASE}/records/{id}")).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert!(read.text.contains(&payload), "read {} for {payload}", read.text);
        let found = post_text(
            &h,
            &format!("{BASE}:query"),
            None,
            &format!(r#"{{"filter":{{"where":[{{"field":"id","op":"eq","value":"{id}"}}]}}}}"#),
        )
        .await;
        assert_eq!(found.status, 200, "{}", found.text);
        assert!(found.text.contains(&payload), "query {} for {payload}", found.text);

        // Another record with exponents and trailing zeros in the other number fields.
        let id = unique("exact");
        let payload = passport(&id, "1.10", ["1E1", "2.50e-1"]);
        let created = post_text(
            &h,
            &format!("{BASE}:create"),
            Some(&id),
            &format!(r#"{{"payload":{payload}}}"#),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.text);
        let read = get_text(&h, &format!("{BASE}/records/{id}")).await;
        assert!(read.text.contains(&payload), "read {} for {payload}", read.text);
        // Queries compare numbers by value: 1.10 is 1.1.
        let found = post_text(
            &h,
            &format!("{BASE}:query"),
            None,
            &format!(
                r#"{{"filter":{{"where":[{{"field":"id","op":"eq","value":"{id}"}},{{"field":"payload.mass_kg","op":"eq","value":1.1}}]}}}}"#
            ),
        )
        .await;
        assert_eq!(found.json()["records"].as_array().unwrap().len(), 1, "{}", found.text);
    }

    pub async fn replays_compare_payloads_by_json_value(h: Harness) {
        let id = unique("replay");
        let key = unique("key");
        let first = post_text(
            &h,
            &format!("{BASE}:create"),
            Some(&key),
            &format!(r#"{{"payload":{}}}"#, passport(&id, "1", ["38.5", "21"])),
        )
        .await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert!(!first.replayed);
        // The same values written differently: 1.0, 385e-1, 21.000, and another key order.
        let same = format!(
            r#"{{"payload":{{"record_scope":"product","id":"{id}","product_name":"Laptop","mass_kg":1.0,"manufacturer":{{"country":"DE","name":"Example Devices"}},"materials":[{{"share_percent":385e-1,"name":"aluminium"}},{{"name":"ABS","share_percent":21.000}}]}}}}"#
        );
        let again = post_text(&h, &format!("{BASE}:create"), Some(&key), &same).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert!(again.replayed, "{}", again.text);
        assert_eq!(again.json(), first.json(), "the replay answers the first record");
        // Another value under the same key is a conflict.
        let other = post_text(
            &h,
            &format!("{BASE}:create"),
            Some(&key),
            &format!(
                r#"{{"payload":{}}}"#,
                passport(&id, "1.000000000000000000001", ["38.5", "21"])
            ),
        )
        .await;
        assert_eq!(other.status, 409, "{}", other.text);
        assert_eq!(other.json()["code"], "IDEMPOTENCY_CONFLICT");
    }

    pub async fn nul_characters_are_refused_never_a_store_error(h: Harness) {
        let id = unique("nul");
        let in_string = passport(&id, "1", ["1", "2"]).replace("Laptop", "Lap\\u0000top");
        let answer = post_text(
            &h,
            &format!("{BASE}:create"),
            Some(&id),
            &format!(r#"{{"payload":{in_string}}}"#),
        )
        .await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        let error = answer.json();
        assert_eq!(error["code"], "PAYLOAD_NOT_STORABLE", "{error}");
        assert_eq!(error["details"]["path"], "$.product_name", "{error}");
        assert_eq!(
            get_text(&h, &format!("{BASE}/records/{id}")).await.status,
            404,
            "nothing written"
        );

        let in_key = passport(&id, "1", ["1", "2"]).replacen(
            r#""name":"Example Devices""#,
            r#""na\u0000me":"x","name":"Example Devices""#,
            1,
        );
        let answer = post_text(
            &h,
            &format!("{BASE}:create"),
            Some(&unique("k")),
            &format!(r#"{{"payload":{in_key}}}"#),
        )
        .await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.json()["code"], "PAYLOAD_NOT_STORABLE");

        let query = post_text(
            &h,
            &format!("{BASE}:query"),
            None,
            r#"{"filter":{"where":[{"field":"payload.product_name","op":"contains","value":"a\u0000"}]}}"#,
        )
        .await;
        assert_eq!(query.status, 400, "{}", query.text);
        assert_eq!(query.json()["code"], "INVALID_QUERY");
        let by_id = get_text(&h, &format!("{BASE}/records/a%00b")).await;
        assert_eq!(by_id.status, 404, "{}", by_id.text);
        assert_eq!(by_id.json()["code"], "RECORD_NOT_FOUND");
    }

    pub async fn unusable_ids_are_refused_not_replaced(h: Harness) {
        for (id, code_point) in [
            ("invoice-\\u202Egpj.exe", Some("U+202E")),
            ("a\\u200Bb", Some("U+200B")),
            ("a\\u00A0b", Some("U+00A0")),
            ("\\u2066x", Some("U+2066")),
        ] {
            let body = format!(r#"{{"payload":{}}}"#, passport(id, "1", ["1", "2"]));
            let answer = post_text(&h, &format!("{BASE}:create"), Some(&unique("k")), &body).await;
            assert_eq!(answer.status, 400, "{id}: {}", answer.text);
            let error = answer.json();
            assert_eq!(error["code"], "BAD_REQUEST");
            assert_eq!(error["details"]["field"], "payload.id");
            assert_eq!(error["details"]["code_point"].as_str(), code_point, "{error}");
        }
        // Longer than 255 bytes: refused (the README said a UUID was generated instead).
        let long = "x".repeat(256);
        let body = format!(r#"{{"payload":{}}}"#, passport(&long, "1", ["1", "2"]));
        let answer = post_text(&h, &format!("{BASE}:create"), Some(&unique("k")), &body).await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert!(answer.text.contains("longer than 255 bytes"), "{}", answer.text);
    }
}

macro_rules! for_every_adapter {
    ($adapter:ident) => {
        mod $adapter {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn numbers_come_back_exactly_as_sent() {
                cases::numbers_come_back_exactly_as_sent(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn replays_compare_payloads_by_json_value() {
                cases::replays_compare_payloads_by_json_value(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nul_characters_are_refused_never_a_store_error() {
                cases::nul_characters_are_refused_never_a_store_error(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unusable_ids_are_refused_not_replaced() {
                cases::unusable_ids_are_refused_not_replaced(super::$adapter().await).await
            }
        }
    };
}

for_every_adapter!(memory);
for_every_adapter!(embedded);
for_every_adapter!(http);
for_every_adapter!(postgres);
