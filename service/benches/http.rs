//! Data-plane HTTP benchmark: `scripts/bench` (or `cargo bench -p hex-core-service --bench http`).
//!
//! Starts the real `hex-core-service` binary (bench profile = release) as a child process and
//! prints two tables:
//! 1. requests/s and p50/p99 latency for `GET /admin/health` (the cheapest route), `GET /models`
//!    and an artifact GET at concurrency 1 and 8 on the demo catalog; start-to-ready and RSS;
//! 2. with the four real CE-RISE models (`HEX_MODELS_DIR`) served from a local HTTP server:
//!    start-to-ready, refresh of an unchanged catalog and refresh after one model's artifact
//!    changed (wall time, and the service's CPU time summed over its threads from
//!    `/proc/<pid>/stat`, per refresh over a batch of 10), idle RSS after the load and after 10 refreshes, and
//!    `GET /admin/health` throughput at c=8. With `HEX_BENCH_BASELINE=<another hex-core-service
//!    binary>` (e.g. a release build of main) every row is measured for it too, alternating with
//!    this build, and with `HEX_BENCH_REFERENCE=<binary>` for a third; each row shows the 1-minute
//!    load average when it was taken.
//!
//! The load generator runs in this process on the same 2 cores, so absolute figures are
//! pessimistic; compare within a run.

#[path = "../tests/support/mod.rs"]
mod support;

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

    println!();
    registry_comparison(total).await;
}

/// The 1-minute load average, to print beside each figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// CPU time (user + system) of a process so far, threads that have exited included (the
/// compile threads do): /proc/<pid>/stat counts clock ticks (10 ms), so callers measure a batch.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One binary under comparison.
struct Side {
    label: String,
    binary: String,
}

/// Start-to-ready, refreshes, RSS and health throughput for each side on the four real models.
async fn registry_comparison(total: usize) {
    let artifacts = ArtifactServer::http().await;
    let Some(catalog) = real_models_catalog(&artifacts) else {
        println!("NOT MEASURED: HEX_MODELS_DIR is not set (scripts/bench sets it from ../shared/models)");
        std::process::exit(1);
    };
    artifacts.set("/catalog.json", Route::ok(catalog));
    // The one-model change: product-profile's shapes gain a comment (new bytes, same meaning).
    let changed_path = "/product-profile/0.0.3/shacl.ttl";
    let original = std::fs::read(
        std::path::PathBuf::from(std::env::var("HEX_MODELS_DIR").unwrap()).join("product-profile/0.0.3/shacl.ttl"),
    )
    .unwrap();

    let mut sides = vec![Side {
        label: "this build".into(),
        binary: support::service_binary(),
    }];
    for (variable, label) in [("HEX_BENCH_BASELINE", "baseline"), ("HEX_BENCH_REFERENCE", "reference")] {
        if let Ok(binary) = std::env::var(variable)
            && !binary.is_empty()
        {
            sides.insert(
                0,
                Side {
                    label: label.into(),
                    binary,
                },
            );
        }
    }
    // More variants, `label=binary;label=binary` (e.g. wrappers that set MALLOC_ARENA_MAX or
    // LD_PRELOAD another allocator, for the memory evidence in docs/validation.md).
    for variant in std::env::var("HEX_BENCH_VARIANTS").unwrap_or_default().split(';') {
        if let Some((label, binary)) = variant.split_once('=') {
            sides.push(Side {
                label: label.trim().into(),
                binary: binary.trim().into(),
            });
        }
    }
    let mut env = demo_env(&[("AUTH_NONE_ROLES", "admin"), ("LOG_LEVEL", "info")]);
    env.remove("REGISTRY_CATALOG_FILE");
    env.remove("REGISTRY_ALLOW_LOCAL_ARTIFACTS");
    env.insert("REGISTRY_CATALOG_URL".into(), artifacts.url("/catalog.json"));
    env.insert("REGISTRY_ALLOWED_HOSTS".into(), artifacts.host_port());
    env.insert("REGISTRY_REQUIRE_HTTPS".into(), "false".into());

    println!("four real models served over HTTP from this process; medians; load = 1-minute load average\n");
    println!("| figure | side | value | load |");
    println!("|---|---|---|---|");
    let http = client();
    // Start-to-ready: five starts per side, alternating sides.
    let mut starts: Vec<Vec<Duration>> = vec![Vec::new(); sides.len()];
    for _ in 0..5 {
        for (i, side) in sides.iter().enumerate() {
            let started = Instant::now();
            let service = ServiceProcess::spawn_binary(&side.binary, &env);
            loop {
                if let Ok(r) = http.get(service.url("/admin/ready")).send().await
                    && r.status() == 200
                {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{} never became ready",
                    side.label
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            starts[i].push(started.elapsed());
        }
    }
    for (i, side) in sides.iter().enumerate() {
        let mut s = starts[i].clone();
        println!(
            "| start-to-ready (median of 5; min {}, max {}) | {} | {} | {} |",
            ms(*s.iter().min().unwrap()),
            ms(*s.iter().max().unwrap()),
            side.label,
            ms(median(&mut s)),
            load_average()
        );
    }

    // Refreshes and RSS, one service per side, started fresh.
    for side in &sides {
        artifacts.set(changed_path, Route::ok(original.clone()));
        let service = ServiceProcess::spawn_binary(&side.binary, &env);
        service.wait_ready().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_kib(service.pid(), "VmRSS:");
        println!(
            "| idle RSS after the load | {} | {:.1} MiB | {} |",
            side.label,
            idle as f64 / 1024.0,
            load_average()
        );
        let refresh = || async {
            let started = Instant::now();
            let report: Value = http
                .post(service.url("/admin/registry/refresh"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let wall = started.elapsed();
            assert_eq!(report["models_found"], 4, "{report}");
            wall
        };
        let mut walls = Vec::new();
        let cpu = process_cpu(service.pid());
        for _ in 0..10 {
            walls.push(refresh().await);
        }
        let cpu = process_cpu(service.pid()).saturating_sub(cpu) / 10;
        println!(
            "| refresh, unchanged catalog (10): median wall / mean service CPU | {} | {} / {} | {} |",
            side.label,
            ms(median(&mut walls)),
            ms(cpu),
            load_average()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!(
            "| idle RSS after 10 refreshes | {} | {:.1} MiB | {} |",
            side.label,
            rss_kib(service.pid(), "VmRSS:") as f64 / 1024.0,
            load_average()
        );
        let mut walls = Vec::new();
        let cpu = process_cpu(service.pid());
        for round in 0..10 {
            let mut bytes = original.clone();
            bytes.extend_from_slice(format!("\n# bench change {round}\n").as_bytes());
            artifacts.set(changed_path, Route::ok(bytes));
            walls.push(refresh().await);
        }
        let cpu = process_cpu(service.pid()).saturating_sub(cpu) / 10;
        println!(
            "| refresh after product-profile's shapes changed (10): median wall / mean service CPU | {} | {} / {} | {} |",
            side.label,
            ms(median(&mut walls)),
            ms(cpu),
            load_average()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!(
            "| idle RSS after those 20 refreshes | {} | {:.1} MiB | {} |",
            side.label,
            rss_kib(service.pid(), "VmRSS:") as f64 / 1024.0,
            load_average()
        );
    }

    // Health throughput: all sides up at once, runs alternating.
    let services: Vec<ServiceProcess> = sides
        .iter()
        .map(|s| ServiceProcess::spawn_binary(&s.binary, &env))
        .collect();
    for service in &services {
        service.wait_ready().await;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut loads: Vec<String> = vec![String::new(); sides.len()];
    for _ in 0..2 {
        for (i, service) in services.iter().enumerate() {
            let result = load(&service.url("/admin/health"), 8, total).await;
            rates[i].push(result.throughput());
            loads[i] = load_average();
        }
    }
    for (i, side) in sides.iter().enumerate() {
        println!(
            "| GET /admin/health c=8, {total} requests (two runs) | {} | {} req/s | {} |",
            side.label,
            rates[i]
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            loads[i]
        );
    }
    for side in &sides {
        println!("\n{}: {}", side.label, side.binary);
    }
}
