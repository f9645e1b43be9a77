//! What keeping a payload's exact numbers costs per create (a command, not a test):
//! `cargo bench -p hex-core-service --bench payload`.
//!
//! Compares, on the demo passport payload (about 300 bytes) and on a 10 KB one, the work a create
//! did before (parse the body's payload into a `serde_json::Value`, hash its canonical JSON) with
//! what it does now (`Payload::parse`: the value plus a scan of the text for numbers the value would
//! write differently, and `Payload::sha256`), once with ordinary numbers and once with numbers kept
//! exactly (`-0`, `1.10`, beyond a double's precision). Prints the median of 15 rounds per row.

use std::fmt::Write as _;
use std::time::Instant;

use hex_core_service::domain::payload::Payload;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The previous version's create work: parse, then SHA-256 of the canonical JSON.
fn before(text: &str) -> String {
    let value: Value = serde_json::from_str(text).unwrap();
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

fn after(text: &str) -> String {
    Payload::parse(text).unwrap().sha256()
}

fn median_micros(text: &str, work: fn(&str) -> String) -> f64 {
    let iterations = (2_000_000 / text.len().max(1)).clamp(200, 20_000);
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..iterations {
                std::hint::black_box(work(std::hint::black_box(text)));
            }
            started.elapsed().as_secs_f64() * 1e6 / iterations as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn passport(mass: &str, shares: [&str; 2]) -> String {
    format!(
        r#"{{"id":"passport-0001","product_name":"Refurbished laptop L14","record_scope":"product","manufactured_on":"2025-03-14","mass_kg":{mass},"manufacturer":{{"name":"Example Devices","country":"DE"}},"materials":[{{"name":"aluminium","share_percent":{}}},{{"name":"ABS","share_percent":{}}}]}}"#,
        shares[0], shares[1]
    )
}

fn large(exact: bool) -> String {
    let items: Vec<String> = (0..120)
        .map(|n| {
            let number = if exact { format!("{n}.50") } else { format!("{n}.5") };
            format!(r#"{{"name":"part {n}","share_percent":{number},"grams":{n}}}"#)
        })
        .collect();
    format!(r#"{{"id":"big","materials":[{}]}}"#, items.join(","))
}

fn main() {
    let cases = [
        ("passport, ordinary numbers", passport("1.46", ["38.5", "21"])),
        (
            "passport, exact numbers kept",
            passport("1.460", ["-0", "38.50000000000000000001"]),
        ),
        ("10 KB, ordinary numbers", large(false)),
        ("10 KB, exact numbers kept", large(true)),
    ];
    println!("| payload | bytes | before µs | after µs | ratio |");
    println!("|---|---|---|---|---|");
    for (name, text) in &cases {
        let old = median_micros(text, before);
        let new = median_micros(text, after);
        println!("| {name} | {} | {old:.2} | {new:.2} | {:.2} |", text.len(), new / old);
    }
}
