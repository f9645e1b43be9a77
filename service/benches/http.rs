//! Data-plane HTTP benchmark: `scripts/bench` (or `cargo bench -p hex-core-service --bench http`).
//!
//! Starts the real `hex-core-service` binary (bench profile = release) as a child process and
//! prints one table: requests/s and p50/p99 latency for `GET /admin/health` (the baseline: the
//! cheapest route), `GET /models` and an artifact GET at concurrency 1 and 8; start-to-ready for
//! the demo catalog; refresh time for the four real CE-RISE models served from a local HTTP server
//! (through `HEX_MODELS_DIR`); idle and peak RSS. The load generator runs in this process on the
//! same 2 cores, so absolute figures are pessimistic; compare ratios against the baseline row.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ArtifactServer, Route, ServiceProcess, client, demo_env};

const WARMUP: usize = 200;

struct LoadResult {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

impl LoadResult {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `total` GETs of `url` from `concurrency` keep-alive connections.
async fn load(url: &str, concurrency: usize, total: usize) -> LoadResult {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    for _ in 0..WARMUP.min(total) {
        let _ = http.get(url).send().await.and_then(|r| r.error_for_status());
    }
    let per_worker = total / concurrency;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let http = http.clone();
        let url = url.to_string();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            let mut errors = 0;
            for _ in 0..per_worker {
                let t = Instant::now();
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    LoadResult {
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
        errors,
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Serves the four real models from `HEX_MODELS_DIR` and returns the catalog that names them.
fn real_models_catalog(server: &ArtifactServer) -> Option<String> {
    let dir = std::env::var("HEX_MODELS_DIR").ok()?;
    let dir = std::path::PathBuf::from(dir);
    let mut entries = Vec::new();
    for (model, version) in [
        ("re-indicators-specification", "0.0.5"),
        ("product-profile", "0.0.3"),
        ("usage-and-maintenance", "0.0.2"),
        ("dp-record-metadata", "0.0.2"),
    ] {
        let mut entry = json!({"model": model, "version": version});
        for (field, file) in [
            ("schema_url", "schema.json"),
            ("shacl_url", "shacl.ttl"),
            ("owl_url", "model.ttl"),
            ("linkml_url", "schema.yaml"),
        ] {
            let path = dir.join(model).join(version).join(file);
            if let Ok(bytes) = std::fs::read(&path) {
                let url_path = format!("/{model}/{version}/{file}");
                server.set(&url_path, Route::ok(bytes));
                entry[field] = Value::String(server.url(&url_path));
            }
        }
        entries.push(entry);
    }
    Some(json!({"models": entries}).to_string())
}

fn row(name: &str, result: &LoadResult, baseline: Option<&LoadResult>) {
    let ratio = baseline
        .map(|b| {
            format!(
                "{:.2}",
                result.percentile(0.5).as_secs_f64() / b.percentile(0.5).as_secs_f64()
            )
        })
        .unwrap_or_else(|| "1.00".into());
    println!(
        "| {name:<34} | {:>9.0} | {:>8.3} | {:>8.3} | {:>6} | {:>13} |",
        result.throughput(),
        result.percentile(0.5).as_secs_f64() * 1000.0,
        result.percentile(0.99).as_secs_f64() * 1000.0,
        result.errors,
        ratio,
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let total: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);

    // Start-to-ready on the demo catalog, five runs, median.
    let mut start_times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let service = ServiceProcess::spawn(&demo_env(&[("AUTH_NONE_ROLES", "admin"), ("LOG_LEVEL", "info")]));
        service.wait_ready().await;
        start_times.push(started.elapsed());
    }
    start_times.sort_unstable();

    let service = ServiceProcess::spawn(&demo_env(&[("AUTH_NONE_ROLES", "admin"), ("LOG_LEVEL", "info")]));
    service.wait_ready().await;
    let idle_demo = rss_kib(service.pid(), "VmRSS:");

    println!(
        "\nhex-core-service HTTP benchmark ({} requests per row, load generator on the same host)\n",
        total
    );
    println!("| route (concurrency)                |   req/s   | p50 (ms) | p99 (ms) | errors | p50 / health |");
    println!("|------------------------------------|-----------|----------|----------|--------|---------------|");
    for concurrency in [1, 8] {
        let health = load(&service.url("/admin/health"), concurrency, total).await;
        row(&format!("GET /admin/health (c={concurrency})"), &health, None);
        let models = load(&service.url("/models"), concurrency, total).await;
        row(&format!("GET /models (c={concurrency})"), &models, Some(&health));
        let artifact = load(
            &service.url("/models/demo-passport/versions/0.1.0/schema"),
            concurrency,
            total,
        )
        .await;
        row(&format!("GET .../schema (c={concurrency})"), &artifact, Some(&health));
    }
    let peak_demo = rss_kib(service.pid(), "VmHWM:");
    drop(service);

    println!();
    println!("| measure                                   | value |");
    println!("|-------------------------------------------|-------|");
    println!(
        "| start-to-ready, demo catalog (median of 5) | {:.1} ms (min {:.1}, max {:.1}) |",
        start_times[2].as_secs_f64() * 1000.0,
        start_times[0].as_secs_f64() * 1000.0,
        start_times[4].as_secs_f64() * 1000.0
    );
    println!(
        "| RSS idle, demo catalog                     | {:.1} MiB |",
        idle_demo as f64 / 1024.0
    );
    println!(
        "| RSS peak after the load above              | {:.1} MiB |",
        peak_demo as f64 / 1024.0
    );

    let artifacts = ArtifactServer::http().await;
    let Some(catalog) = real_models_catalog(&artifacts) else {
        println!(
            "| four real models                          | NOT MEASURED: HEX_MODELS_DIR is not set (scripts/bench sets it from ../shared/models) |"
        );
        std::process::exit(1);
    };
    let mut env = demo_env(&[("AUTH_NONE_ROLES", "admin"), ("LOG_LEVEL", "info")]);
    env.remove("REGISTRY_CATALOG_FILE");
    env.insert("REGISTRY_CATALOG_JSON".into(), catalog);
    env.insert("REGISTRY_ALLOWED_HOSTS".into(), artifacts.host_port());
    env.insert("REGISTRY_REQUIRE_HTTPS".into(), "false".into());
    let started = Instant::now();
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    let ready_real = started.elapsed();
    let http = client();
    let mut refreshes = Vec::new();
    let mut models_found = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let report: Value = http
            .post(service.url("/admin/registry/refresh"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        refreshes.push(t.elapsed());
        models_found = report["models_found"].as_u64().unwrap_or(0);
        if let Some(errors) = report["errors"].as_array().filter(|e| !e.is_empty()) {
            eprintln!("refresh reported entry errors: {errors:?}");
        }
    }
    refreshes.sort_unstable();
    let idle_real = rss_kib(service.pid(), "VmRSS:");
    let concurrency = 8;
    let models = load(&service.url("/models"), concurrency, total).await;
    let peak_real = rss_kib(service.pid(), "VmHWM:");
    println!(
        "| start-to-ready, four real models           | {:.1} ms |",
        ready_real.as_secs_f64() * 1000.0
    );
    println!(
        "| refresh, four real models (median of 5)    | {:.1} ms (min {:.1}, max {:.1}), {} models loaded |",
        refreshes[2].as_secs_f64() * 1000.0,
        refreshes[0].as_secs_f64() * 1000.0,
        refreshes[4].as_secs_f64() * 1000.0,
        models_found
    );
    println!(
        "| RSS idle, four real models loaded          | {:.1} MiB |",
        idle_real as f64 / 1024.0
    );
    println!(
        "| RSS peak, four real models, after load     | {:.1} MiB (GET /models c=8: {:.0} req/s, p99 {:.3} ms) |",
        peak_real as f64 / 1024.0,
        models.throughput(),
        models.percentile(0.99).as_secs_f64() * 1000.0
    );
    let _ = Arc::new(());
}
