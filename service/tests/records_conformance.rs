//! ONE conformance suite for every record store adapter: the same cases and the same expected
//! results against `memory`, `embedded` (a temp dir), `postgres` (a fresh database per run, from
//! `HEX_TEST_DATABASE_URL`) and `http` (a real IO adapter server on 127.0.0.1).

mod support;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use hex_core_service::domain::payload::Payload;
use hex_core_service::domain::query::Query;
use hex_core_service::domain::record::{IdempotencyKey, NewRecord, Record, RecordScope};
use hex_core_service::ports::{CallerToken, RecordStore, StoreError};
use hex_core_service::store::embedded::EmbeddedStore;
use hex_core_service::store::http::HttpStore;
use hex_core_service::store::memory::MemoryStore;
use serde_json::{Value, json};
use support::records::{IoAdapterServer, postgres_store};
use time::OffsetDateTime;
use time::macros::datetime;

/// A store plus whatever must live as long as it (temp dir, server).
pub struct Harness {
    store: Arc<dyn RecordStore>,
    _keep: Box<dyn Any + Send>,
}

async fn memory() -> Harness {
    Harness {
        store: Arc::new(MemoryStore::new()),
        _keep: Box::new(()),
    }
}

async fn embedded() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    Harness {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

async fn postgres() -> Harness {
    Harness {
        store: postgres_store().await,
        _keep: Box::new(()),
    }
}

async fn http() -> Harness {
    let server = IoAdapterServer::start().await;
    let store = HttpStore::new(&server.base_url(), Duration::from_secs(5)).unwrap();
    Harness {
        store: Arc::new(store),
        _keep: Box::new(server),
    }
}

/// A scope no other test (or earlier run on the same database) uses.
fn fresh_scope(tenant: Option<&str>) -> RecordScope {
    RecordScope::new(
        tenant.map(str::to_string),
        format!("m-{}", uuid::Uuid::new_v4().simple()),
        "1.0.0",
    )
}

fn new_record(scope: &RecordScope, key: &str, id: &str, payload: impl Into<Payload>, at: OffsetDateTime) -> NewRecord {
    let payload: Payload = payload.into();
    NewRecord {
        scope: scope.clone(),
        record: Record {
            id: id.into(),
            model: scope.model.clone(),
            version: scope.version.clone(),
            payload: payload.clone(),
            created_at: at,
            updated_at: at,
        },
        idempotency_key: IdempotencyKey::parse(Some(key)).unwrap(),
        payload_sha256: payload.sha256(),
    }
}

fn nobody() -> CallerToken {
    CallerToken(None)
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

async fn query(store: &dyn RecordStore, scope: &RecordScope, filter: Value) -> Vec<Record> {
    let query = Query::parse_filter(&filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    store.query(&nobody(), scope, &query).await.unwrap()
}

const T0: OffsetDateTime = datetime!(2025-03-01 10:00:00.000001 UTC);

mod cases {
    use super::*;

    pub async fn create_then_get_returns_the_same_record(h: Harness) {
        let scope = fresh_scope(None);
        let payload = json!({"id": "r-1", "name": "laptop", "mass_kg": 1.5});
        let outcome = h
            .store
            .create(&nobody(), new_record(&scope, "k1", "r-1", payload.clone(), T0))
            .await
            .unwrap();
        assert!(!outcome.replayed);
        assert_eq!(outcome.record.payload, payload);
        assert_eq!(outcome.record.created_at, T0);
        let read = h.store.get(&nobody(), &scope, "r-1").await.unwrap();
        assert_eq!(read, Some(outcome.record));
        assert_eq!(h.store.get(&nobody(), &scope, "absent").await.unwrap(), None);
    }

    pub async fn payload_text_comes_back_exactly(h: Harness) {
        let scope = fresh_scope(None);
        let text = r#"{"big":123456789012345678901234567890,"z":-0,"d":1.10,"e":1E5,"s":"\u00e9"}"#;
        let payload = Payload::parse(text).unwrap();
        let created = h
            .store
            .create(&nobody(), new_record(&scope, "k", "exact", payload.clone(), T0))
            .await
            .unwrap();
        assert_eq!(created.record.payload.text(), text);
        let read = h.store.get(&nobody(), &scope, "exact").await.unwrap().unwrap();
        assert_eq!(read.payload.text(), text);
        assert_eq!(read.payload, payload);
        let found = query(&*h.store, &scope, json!({})).await;
        assert_eq!(found[0].payload.text(), text);
        // The same values spelt otherwise replay: hashes compare by value.
        let same =
            Payload::parse(r#"{"s":"é","e":100000,"d":1.1,"z":0,"big":1234567890123456789012345678900e-1}"#).unwrap();
        let again = h
            .store
            .create(&nobody(), new_record(&scope, "k", "other", same, T0))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.record.payload.text(), text);
    }

    pub async fn same_key_and_payload_replays_the_first_record(h: Harness) {
        let scope = fresh_scope(None);
        let first = h
            .store
            .create(
                &nobody(),
                new_record(&scope, "k", "a", json!({"x": 1, "y": [1, 2]}), T0),
            )
            .await
            .unwrap();
        // Same payload with another key order, another generated id and a later clock.
        let later = T0 + Duration::from_secs(5);
        let again = h
            .store
            .create(
                &nobody(),
                new_record(&scope, "k", "b", json!({"y": [1, 2], "x": 1}), later),
            )
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.record, first.record);
        assert_eq!(ids(&query(&*h.store, &scope, json!({})).await), ["a"]);
    }

    pub async fn same_key_with_another_payload_is_a_conflict(h: Harness) {
        let scope = fresh_scope(None);
        h.store
            .create(&nobody(), new_record(&scope, "k", "a", json!({"x": 1}), T0))
            .await
            .unwrap();
        let err = h
            .store
            .create(&nobody(), new_record(&scope, "k", "b", json!({"x": 2}), T0))
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::IdempotencyConflict);
        assert_eq!(ids(&query(&*h.store, &scope, json!({})).await), ["a"]);
    }

    pub async fn an_existing_id_under_another_key_is_refused(h: Harness) {
        let scope = fresh_scope(None);
        h.store
            .create(&nobody(), new_record(&scope, "k1", "same", json!({"x": 1}), T0))
            .await
            .unwrap();
        let err = h
            .store
            .create(&nobody(), new_record(&scope, "k2", "same", json!({"x": 2}), T0))
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::RecordExists { id: "same".into() });
        // The refused create did not consume its key.
        let ok = h
            .store
            .create(&nobody(), new_record(&scope, "k2", "other", json!({"x": 2}), T0))
            .await
            .unwrap();
        assert!(!ok.replayed);
    }

    pub async fn concurrent_creates_with_one_key_write_exactly_one_record(h: Harness) {
        let scope = fresh_scope(None);
        let attempts = (0..16).map(|n| {
            let store = h.store.clone();
            // Every attempt carries its own (generated) id: only one may win.
            let new = new_record(&scope, "shared", &format!("id-{n}"), json!({"v": "same"}), T0);
            tokio::spawn(async move { store.create(&CallerToken(None), new).await })
        });
        let outcomes: Vec<_> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().unwrap())
            .collect();
        let winners: Vec<_> = outcomes.iter().filter(|o| !o.replayed).collect();
        assert_eq!(winners.len(), 1, "exactly one create wins: {outcomes:?}");
        assert!(outcomes.iter().all(|o| o.record == winners[0].record));
        let stored = query(&*h.store, &scope, json!({})).await;
        assert_eq!(ids(&stored), [winners[0].record.id.as_str()]);
    }

    pub async fn scopes_keep_records_and_keys_apart(h: Harness) {
        let a = fresh_scope(Some("tenant-a"));
        let b = RecordScope::new(Some("tenant-b".into()), a.model.clone(), a.version.clone());
        let none = RecordScope::new(None, a.model.clone(), a.version.clone());
        let other_version = RecordScope::new(Some("tenant-a".into()), a.model.clone(), "2.0.0");
        for scope in [&a, &b, &none, &other_version] {
            // Same key and same id in every scope: independent.
            let outcome = h
                .store
                .create(&nobody(), new_record(scope, "k", "r", json!({"s": scope.tenant}), T0))
                .await
                .unwrap();
            assert!(!outcome.replayed, "{scope:?}");
        }
        let read = h.store.get(&nobody(), &b, "r").await.unwrap().unwrap();
        assert_eq!(read.payload, json!({"s": "tenant-b"}));
        assert_eq!(read.version, "1.0.0");
        let only_a = query(&*h.store, &a, json!({})).await;
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].payload, json!({"s": "tenant-a"}));
        let unscoped = fresh_scope(None);
        assert!(h.store.get(&nobody(), &unscoped, "r").await.unwrap().is_none());
        assert!(query(&*h.store, &unscoped, json!({})).await.is_empty());
    }

    /// A fixed data set and a table of filters with the ids each must return, in order.
    pub async fn query_operators_sort_limit_and_offset(h: Harness) {
        let scope = fresh_scope(None);
        let rows = [
            (
                "a",
                json!({"n": 1, "s": "steel", "tags": ["x", 2], "m": [{"name": "al"}], "o": {"k": "v"}}),
            ),
            (
                "b",
                json!({"n": 2.5, "s": "aluminium", "tags": [], "nil": null, "m": [{"name": "cu"}, {"name": "al"}]}),
            ),
            ("c", json!({"n": "3", "s": 5, "tags": ["y"]})),
            ("d", json!({"n": -4, "s": "Steel", "flag": true})),
            ("e", json!({"n": 10, "s": "zinc", "flag": false, "tags": "x-ray"})),
            ("f", json!({})),
        ];
        for (n, (id, payload)) in rows.iter().enumerate() {
            let at = T0 + Duration::from_secs(60 * (rows.len() - n) as u64);
            h.store
                .create(
                    &nobody(),
                    new_record(&scope, &format!("k-{id}"), id, payload.clone(), at),
                )
                .await
                .unwrap();
        }
        let by_id = json!([{"field": "id", "direction": "asc"}]);
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"where": [{"field": "payload.n", "op": "eq", "value": 1}]}),
                vec!["a"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "eq", "value": 2.5}]}),
                vec!["b"],
            ),
            // Numbers compare by value: 1.0 is 1, 10.0 is 10.
            (
                json!({"where": [{"field": "payload.n", "op": "eq", "value": 1.0}]}),
                vec!["a"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "in", "value": [10.0, -4.0]}]}),
                vec!["d", "e"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "ne", "value": 1}]}),
                vec!["b", "c", "d", "e", "f"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "in", "value": [10, "3", 99]}]}),
                vec!["c", "e"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "gt", "value": 1}]}),
                vec!["b", "e"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "gte", "value": 1}]}),
                vec!["a", "b", "e"],
            ),
            (
                json!({"where": [{"field": "payload.n", "op": "lt", "value": 2}]}),
                vec!["a", "d"],
            ),
            (
                json!({"where": [{"field": "payload.s", "op": "lte", "value": "Steel"}]}),
                vec!["d"],
            ),
            (
                json!({"where": [{"field": "payload.s", "op": "gt", "value": "steel"}]}),
                vec!["e"],
            ),
            (
                json!({"where": [{"field": "payload.s", "op": "contains", "value": "teel"}]}),
                vec!["a", "d"],
            ),
            (
                json!({"where": [{"field": "payload.tags", "op": "contains", "value": "x"}]}),
                vec!["a", "e"],
            ),
            (
                json!({"where": [{"field": "payload.tags", "op": "contains", "value": 2}]}),
                vec!["a"],
            ),
            (
                json!({"where": [{"field": "payload.nil", "op": "exists", "value": true}]}),
                vec!["b"],
            ),
            (
                json!({"where": [{"field": "payload.flag", "op": "exists", "value": false}]}),
                vec!["a", "b", "c", "f"],
            ),
            (
                json!({"where": [{"field": "payload.flag", "op": "eq", "value": false}]}),
                vec!["e"],
            ),
            (
                json!({"where": [{"field": "payload.m[0].name", "op": "eq", "value": "al"}]}),
                vec!["a"],
            ),
            (
                json!({"where": [{"field": "payload.m[1].name", "op": "eq", "value": "al"}]}),
                vec!["b"],
            ),
            (
                json!({"where": [{"field": "payload.o", "op": "eq", "value": {"k": "v"}}]}),
                vec!["a"],
            ),
            (
                json!({"where": [{"field": "payload.o.k", "op": "in", "value": ["v", "w"]}]}),
                vec!["a"],
            ),
            (
                json!({"where": [{"field": "id", "op": "in", "value": ["b", "f", "zz"]}]}),
                vec!["b", "f"],
            ),
            (
                json!({"where": [{"field": "id", "op": "gte", "value": "e"}]}),
                vec!["e", "f"],
            ),
            (
                json!({"where": [{"field": "created_at", "op": "lt", "value": "2025-03-01T10:03:00.000001Z"}]}),
                vec!["e", "f"],
            ),
            (
                json!({"where": [
                    {"field": "payload.n", "op": "exists", "value": true},
                    {"field": "payload.s", "op": "contains", "value": "l"}
                ]}),
                vec!["a", "b", "d"],
            ),
            (
                json!({"where": [{"field": "model", "op": "eq", "value": "other"}]}),
                vec![],
            ),
        ];
        for (mut filter, expected) in cases {
            filter["sort"] = by_id.clone();
            let found = query(&*h.store, &scope, filter.clone()).await;
            assert_eq!(ids(&found), expected, "{filter}");
        }

        // Default order: created_at ascending (rows were created newest first).
        assert_eq!(
            ids(&query(&*h.store, &scope, json!({})).await),
            ["f", "e", "d", "c", "b", "a"]
        );
        let sorted = [
            (
                json!({"field": "payload.n", "direction": "asc"}),
                vec!["d", "a", "b", "e", "c", "f"],
            ),
            (
                json!({"field": "payload.n", "direction": "desc"}),
                vec!["c", "e", "b", "a", "d", "f"],
            ),
            (
                json!({"field": "payload.s", "direction": "asc"}),
                vec!["c", "d", "b", "a", "e", "f"],
            ),
            (
                json!({"field": "created_at", "direction": "desc"}),
                vec!["a", "b", "c", "d", "e", "f"],
            ),
            (json!({"field": "payload.flag"}), vec!["e", "d", "a", "b", "c", "f"]),
        ];
        for (sort, expected) in sorted {
            let found = query(&*h.store, &scope, json!({"sort": [sort.clone()]})).await;
            assert_eq!(ids(&found), expected, "sort {sort}");
        }
        let page = query(
            &*h.store,
            &scope,
            json!({"sort": {"field": "id", "direction": "desc"}, "limit": 2, "offset": 1}),
        )
        .await;
        assert_eq!(ids(&page), ["e", "d"]);
        assert!(query(&*h.store, &scope, json!({"limit": 0})).await.is_empty());
        assert!(query(&*h.store, &scope, json!({"offset": 6})).await.is_empty());
    }
}

macro_rules! conformance {
    ($adapter:ident) => {
        mod $adapter {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn create_then_get_returns_the_same_record() {
                cases::create_then_get_returns_the_same_record(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn payload_text_comes_back_exactly() {
                cases::payload_text_comes_back_exactly(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn same_key_and_payload_replays_the_first_record() {
                cases::same_key_and_payload_replays_the_first_record(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn same_key_with_another_payload_is_a_conflict() {
                cases::same_key_with_another_payload_is_a_conflict(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_existing_id_under_another_key_is_refused() {
                cases::an_existing_id_under_another_key_is_refused(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_creates_with_one_key_write_exactly_one_record() {
                cases::concurrent_creates_with_one_key_write_exactly_one_record(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn scopes_keep_records_and_keys_apart() {
                cases::scopes_keep_records_and_keys_apart(super::$adapter().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn query_operators_sort_limit_and_offset() {
                cases::query_operators_sort_limit_and_offset(super::$adapter().await).await
            }
        }
    };
}

conformance!(memory);
conformance!(embedded);
conformance!(postgres);
conformance!(http);
