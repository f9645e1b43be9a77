//! Generated queries: random records and random filters give the same ids in the same order from
//! the reference evaluator (`memory`) and from the SQL translation (`postgres`).

mod support;

use std::time::Duration;

use hex_core_service::domain::payload::Payload;
use hex_core_service::domain::query::Query;
use hex_core_service::domain::record::{IdempotencyKey, NewRecord, Record, RecordScope};
use hex_core_service::ports::{CallerToken, RecordStore};
use hex_core_service::store::memory::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use support::records::postgres_store;
use time::macros::datetime;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::from),
        prop_oneof![Just(0.5), Just(-1.5), Just(2.0)].prop_map(|f| json!(f)),
        prop_oneof![Just("a"), Just("b"), Just("ab"), Just("B"), Just("")].prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        1 => scalar().prop_map(|v| json!({"x": v})),
    ]
}

/// Payloads over a few shared keys, each one absent or present.
fn payload() -> impl Strategy<Value = Value> {
    (
        prop::option::of(field_value()),
        prop::option::of(field_value()),
        prop::option::of(prop::collection::vec(field_value(), 0..3)),
        prop::option::of(field_value()),
    )
        .prop_map(|(a, b, list, nested)| {
            let mut object = serde_json::Map::new();
            if let Some(a) = a {
                object.insert("a".into(), a);
            }
            if let Some(b) = b {
                object.insert("b".into(), b);
            }
            if let Some(list) = list {
                object.insert("list".into(), Value::Array(list));
            }
            if let Some(nested) = nested {
                object.insert("o".into(), json!({"x": nested}));
            }
            Value::Object(object)
        })
}

const FIELDS: &[&str] = &[
    "payload.a",
    "payload.b",
    "payload.list",
    "payload.list[0]",
    "payload.o.x",
    "payload.a.x",
    "id",
];

fn condition() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(FIELDS);
    let op = prop::sample::select(&["eq", "ne", "in", "contains", "exists", "gt", "gte", "lt", "lte"][..]);
    (
        field,
        op,
        field_value(),
        prop::collection::vec(scalar(), 0..3),
        any::<bool>(),
    )
        .prop_filter_map("operand fits the op", |(field, op, value, list, flag)| {
            let value = match (field, op) {
                ("id", "exists") => json!(flag),
                ("id", "in") => json!(["r1", "r3", "r10"]),
                ("id", _) => json!(format!("r{}", list.len() * 3)),
                (_, "in") => Value::Array(list),
                (_, "exists") => json!(flag),
                (_, "gt" | "gte" | "lt" | "lte") if !(value.is_number() || value.is_string()) => return None,
                _ => value,
            };
            Some(json!({"field": field, "op": op, "value": value}))
        })
}

fn filter() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(condition(), 0..3),
        // One or two sort keys: the postgres translation extracts each payload sort value once,
        // in a subquery, and names them by position.
        prop::collection::vec((prop::sample::select(FIELDS), any::<bool>()), 1..3),
        0u64..8,
        0u64..4,
    )
        .prop_map(|(conditions, sort_keys, limit, offset)| {
            let sort: Vec<Value> = sort_keys
                .into_iter()
                .map(
                    |(field, descending)| json!({"field": field, "direction": if descending { "desc" } else { "asc" }}),
                )
                .collect();
            json!({
                "where": conditions,
                "sort": sort,
                "limit": limit,
                "offset": offset,
            })
        })
}

fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

#[test]
fn memory_and_postgres_agree_on_generated_queries() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let postgres = runtime.block_on(postgres_store());
    let mut runner = TestRunner::new(Config {
        cases: 100,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(payload(), 1..12),
        prop::collection::vec(filter(), 6),
    );
    runner
        .run(&strategy, |(payloads, filters)| {
            runtime.block_on(async {
                let memory = MemoryStore::new();
                let scope = RecordScope::new(None, format!("gen-{}", uuid::Uuid::new_v4().simple()), "1");
                let base = datetime!(2025-01-01 00:00:00 UTC);
                for (n, payload) in payloads.iter().enumerate() {
                    // Some timestamps collide on purpose: ties must break on id in both.
                    let at = base + Duration::from_secs((n % 3) as u64);
                    let payload = Payload::from(payload.clone());
                    let new = NewRecord {
                        scope: scope.clone(),
                        record: Record {
                            id: format!("r{n}"),
                            model: scope.model.clone(),
                            version: scope.version.clone(),
                            payload: payload.clone(),
                            created_at: at,
                            updated_at: at,
                        },
                        idempotency_key: IdempotencyKey::parse(Some(&format!("k{n}"))).unwrap(),
                        payload_sha256: payload.sha256(),
                    };
                    memory.create(&CallerToken(None), new.clone()).await.unwrap();
                    postgres.create(&CallerToken(None), new).await.unwrap();
                }
                for filter in &filters {
                    let query = Query::parse_filter(filter).unwrap();
                    let expected = memory.query(&CallerToken(None), &scope, &query).await.unwrap();
                    let actual = postgres.query(&CallerToken(None), &scope, &query).await.unwrap();
                    prop_assert_eq!(ids(&actual), ids(&expected), "filter {} over {:?}", filter, payloads);
                    prop_assert_eq!(actual, expected);
                }
                Ok(())
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
