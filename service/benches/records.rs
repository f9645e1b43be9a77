//! Record store benchmark (a command, not a test): `scripts/bench-records`.
//!
//! Measures, in process through the record use case (`RecordService::write`: id, payload hash,
//! idempotency, store; no HTTP, no validation):
//! - create throughput and latency at concurrency 8 for `memory`, `embedded`, `postgres` (and 64
//!   for the durable ones: every acknowledged create waits for an fsync, so throughput at a given
//!   concurrency is bounded by the disk's fsync latency, and group commit shows as concurrency grows);
//! - query latency on 100,000 records of one model version: `eq` on a payload field plus a sort on
//!   another payload field, limit 50, for `embedded` and `postgres`.
//!
//! PostgreSQL comes from `HEX_TEST_DATABASE_URL` (scripts/bench-records starts a throwaway cluster);
//! a fresh database is created per run. Sizes can be lowered for a quick look with
//! `HEX_BENCH_CREATES` and `HEX_BENCH_QUERY_RECORDS`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hex_core_service::domain::query::Query;
use hex_core_service::domain::record::{IdempotencyKey, RecordScope};
use hex_core_service::metrics::Metrics;
use hex_core_service::ports::{CallerToken, RecordStore};
use hex_core_service::store::embedded::EmbeddedStore;
use hex_core_service::store::memory::MemoryStore;
use hex_core_service::store::postgres::PostgresStore;
use hex_core_service::usecases::records::RecordService;
use serde_json::{Value, json};

const CONCURRENCY: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn payload(n: usize) -> Value {
    json!({
        "id": format!("rec-{n:07}"),
        "product_name": format!("Refurbished laptop {n}"),
        "record_scope": "product",
        "category": format!("cat-{}", n % 100),
        "mass_kg": ((n * 7919) % 10_000) as f64 / 100.0,
        "manufacturer": {"name": "Example Devices", "country": "DE"},
        "materials": [{"name": "aluminium", "share_percent": 38.5}, {"name": "ABS", "share_percent": 21}]
    })
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Row {
    adapter: &'static str,
    operation: String,
    ops: usize,
    throughput: f64,
    p50: Duration,
    p99: Duration,
    rss: f64,
}

/// `total` creates (ids 0..total) from `concurrency` workers.
async fn create_load(
    service: Arc<RecordService>,
    scope: &RecordScope,
    concurrency: usize,
    total: usize,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let workers = (0..concurrency).map(|worker| {
        let service = service.clone();
        let scope = scope.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while n < total {
                let key = IdempotencyKey::parse(Some(&format!("key-{n}"))).unwrap();
                let t = Instant::now();
                service
                    .write(scope.clone(), &CallerToken(None), key, payload(n).into())
                    .await
                    .unwrap_or_else(|e| panic!("create {n}: {e}"));
                latencies.push(t.elapsed());
                n += concurrency;
            }
            latencies
        })
    });
    let mut latencies: Vec<Duration> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let throughput = total as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    (throughput, latencies)
}

async fn bench_creates(adapter: &'static str, store: Arc<dyn RecordStore>, concurrency: usize, total: usize) -> Row {
    let service = Arc::new(RecordService::new(store, Arc::new(Metrics::new())));
    let scope = RecordScope::new(None, format!("bench-create-{concurrency}"), "1");
    let (throughput, latencies) = create_load(service, &scope, concurrency, total).await;
    Row {
        adapter,
        operation: format!("create (concurrency {concurrency})"),
        ops: total,
        throughput,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        rss: rss_mib(),
    }
}

fn query_scope() -> RecordScope {
    RecordScope::new(None, "bench-query", "1")
}

async fn load_query_records(adapter: &'static str, store: Arc<dyn RecordStore>, records: usize) {
    let service = Arc::new(RecordService::new(store, Arc::new(Metrics::new())));
    let loading = Instant::now();
    create_load(service, &query_scope(), 4 * CONCURRENCY, records).await;
    eprintln!(
        "{adapter}: loaded {records} records in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
}

async fn bench_query(adapter: &'static str, store: Arc<dyn RecordStore>, records: usize) -> Row {
    let scope = query_scope();
    let iterations = 300;
    let mut latencies = Vec::with_capacity(iterations);
    let started = Instant::now();
    for i in 0..iterations {
        let query = Query::parse_filter(&json!({
            "where": [{"field": "payload.category", "op": "eq", "value": format!("cat-{}", (i * 37) % 100)}],
            "sort": [{"field": "payload.mass_kg", "direction": "desc"}],
            "limit": 50
        }))
        .unwrap();
        let t = Instant::now();
        let found = store.query(&CallerToken(None), &scope, &query).await.unwrap();
        latencies.push(t.elapsed());
        assert_eq!(found.len(), 50.min(records / 100));
    }
    let throughput = iterations as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Row {
        adapter,
        operation: format!("query eq+sort, {records} records"),
        ops: iterations,
        throughput,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        rss: rss_mib(),
    }
}

/// A fresh database with the schema applied; also its connection settings, for `ANALYZE`.
async fn fresh_postgres() -> (Arc<dyn RecordStore>, tokio_postgres::Config) {
    let url = std::env::var("HEX_TEST_DATABASE_URL").expect(
        "HEX_TEST_DATABASE_URL is not set: run scripts/bench-records (it starts PostgreSQL with scripts/postgres up)",
    );
    let admin: tokio_postgres::Config = url.parse().expect("HEX_TEST_DATABASE_URL parses");
    let (client, connection) = admin
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connects to PostgreSQL");
    tokio::spawn(connection);
    let name = format!("hex_bench_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut config = admin;
    config.dbname(&name);
    let store = PostgresStore::from_config(config.clone(), Duration::from_secs(10)).unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), config)
}

/// Does after the bulk load what autovacuum would do shortly after it: planner statistics
/// (ANALYZE), hint bits and the visibility map (VACUUM). The timed queries then neither run on a
/// plan made for an empty table, nor race an autovacuum, nor pay for the first reads of fresh rows.
async fn vacuum_analyze(config: &tokio_postgres::Config) {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("VACUUM ANALYZE hex_records").await.unwrap();
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let creates = env_usize("HEX_BENCH_CREATES", 8000);
    let query_records = env_usize("HEX_BENCH_QUERY_RECORDS", 100_000);
    let load_before = load_average();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        rows.push(bench_creates("memory", Arc::new(MemoryStore::new()), CONCURRENCY, creates).await);

        let dir = tempfile::tempdir().unwrap();
        let embedded: Arc<dyn RecordStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        rows.push(bench_creates("embedded", embedded.clone(), CONCURRENCY, creates).await);
        rows.push(bench_creates("embedded", embedded.clone(), 8 * CONCURRENCY, creates).await);
        load_query_records("embedded", embedded.clone(), query_records).await;
        rows.push(bench_query("embedded", embedded.clone(), query_records).await);
        drop(embedded);

        let (postgres, postgres_config) = fresh_postgres().await;
        rows.push(bench_creates("postgres", postgres.clone(), CONCURRENCY, creates).await);
        rows.push(bench_creates("postgres", postgres.clone(), 8 * CONCURRENCY, creates).await);
        load_query_records("postgres", postgres.clone(), query_records).await;
        vacuum_analyze(&postgres_config).await;
        rows.push(bench_query("postgres", postgres, query_records).await);
        rows
    });
    let load_after = load_average();
    println!();
    println!("| adapter  | operation                         |   ops | ops/s    | p50 ms | p99 ms | RSS MiB |");
    println!("|----------|-----------------------------------|-------|----------|--------|--------|---------|");
    for row in rows {
        println!(
            "| {:<8} | {:<33} | {:>5} | {:>8.0} | {:>6} | {:>6} | {:>7.0} |",
            row.adapter,
            row.operation,
            row.ops,
            row.throughput,
            ms(row.p50),
            ms(row.p99),
            row.rss
        );
    }
    println!();
    println!("in process through RecordService::write (no HTTP, no validation); N concurrent writers as shown;");
    println!(
        "the 100,000 query records are loaded with {} writers (not timed in the table).",
        4 * CONCURRENCY
    );
    println!("query: eq on payload.category (1% of records) + sort on payload.mass_kg desc, limit 50, sequential;");
    println!("postgres: VACUUM ANALYZE after the load.");
    println!("load average (1, 5, 15 min) before: {load_before}; after: {load_after}.");
}
