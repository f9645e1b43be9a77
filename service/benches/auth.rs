//! What bearer-JWT authentication costs per request, per algorithm: the full
//! `Authenticator::authenticate` path (header parsing, kid lookup, signature, claims, identity)
//! against keys fetched from a real JWKS server on 127.0.0.1. Prints median, p99, throughput and
//! the process RSS.
//!
//! Run: `cargo bench -p hex-core-service --bench auth` (ITERATIONS=N to change the sample size).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::FutureExt;
use hex_core_service::auth::Authenticator;
use hex_core_service::auth::jwks::JwksAuthenticator;
use hex_core_service::config::JwtConfig;
use http::HeaderMap;
use jsonwebtoken::Algorithm;
use support::idp::{self, AUDIENCE, ISSUER, TestKey};
use support::{ArtifactServer, Route};

const JWKS_PATH: &str = "/certs";

fn main() {
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(iterations));
}

async fn run(iterations: usize) {
    let keys = [
        TestKey::rsa("rs256", Algorithm::RS256, 0),
        TestKey::rsa("ps256", Algorithm::PS256, 1),
        TestKey::p256("es256"),
        TestKey::p384("es384"),
        TestKey::ed25519("eddsa"),
    ];
    let server = ArtifactServer::http().await;
    server.set(JWKS_PATH, Route::ok(idp::jwks(&keys.iter().collect::<Vec<_>>())));
    let config = JwtConfig {
        jwks_url: server.url(JWKS_PATH),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_refresh: Duration::from_secs(3600),
        leeway_secs: 30,
        jwks_min_refetch: Duration::from_secs(10),
        tenant_claim: "tenant".into(),
    };
    let authenticator = JwksAuthenticator::start(&config, Default::default()).expect("authenticator starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !authenticator.health().ready {
        assert!(Instant::now() < deadline, "the JWKS never loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    println!("bearer JWT verification, {iterations} iterations per algorithm, one thread, Keycloak-shaped claims");
    println!(
        "{:<8} {:>7} {:>11} {:>10} {:>10} {:>11}",
        "alg", "key", "token_bytes", "median_us", "p99_us", "ops_per_s"
    );
    for key in &keys {
        let token = key.sign(&idp::claims("alice", &["admin", "editor"]));
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        let verify_once = || {
            // A known kid never waits: the future completes on its first poll.
            authenticator
                .authenticate(&headers)
                .now_or_never()
                .expect("verification of a known kid does not await")
                .expect("token verifies")
        };
        for _ in 0..iterations / 10 {
            verify_once();
        }
        let mut samples = Vec::with_capacity(iterations);
        let total = Instant::now();
        for _ in 0..iterations {
            let started = Instant::now();
            let identity = verify_once();
            samples.push(started.elapsed());
            std::hint::black_box(identity);
        }
        let total = total.elapsed();
        samples.sort_unstable();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{:<8} {:>7} {:>11} {:>10.1} {:>10.1} {:>11.0}",
            format!("{:?}", key.alg),
            key_label(key.alg),
            token.len(),
            micros(samples[samples.len() / 2]),
            micros(samples[samples.len() * 99 / 100]),
            iterations as f64 / total.as_secs_f64(),
        );
    }
    let (rss, peak) = rss_kib();
    println!("process RSS {rss} KiB (peak {peak} KiB)");
}

fn key_label(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => "RSA2048",
        Algorithm::ES256 => "P-256",
        Algorithm::ES384 => "P-384",
        Algorithm::EdDSA => "Ed25519",
        _ => "?",
    }
}

/// Current and peak resident set size from /proc (Linux); zeros elsewhere.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
