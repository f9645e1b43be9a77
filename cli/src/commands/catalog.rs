//! `hex-cli catalog lint FILE [--fetch]`: the registry's own rules (shape, duplicates, URL policy),
//! and with `--fetch` the registry's own loader fetching and compiling every entry.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use hex_core_service::domain::catalog::Catalog;
use hex_core_service::metrics::Metrics;
use hex_core_service::registry::fetch::{FetchSettings, HttpArtifactSource, LocalArtifactSource, RoutedArtifactSource};
use hex_core_service::registry::policy::{AllowList, UrlPolicy};
use hex_core_service::registry::{CatalogLocation, Loader};
use hex_core_service::validation::StandardCompiler;
use serde_json::{Value, json};

use crate::Context;
use crate::error::CliError;
use crate::output::OutputMode;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Check a catalog file: shape, duplicates, URL policy; with --fetch, download and compile.
    Lint {
        file: PathBuf,
        /// Allow-list to check URLs against (as REGISTRY_ALLOWED_HOSTS); default: the hosts the catalog names.
        #[arg(long, env = "REGISTRY_ALLOWED_HOSTS")]
        allowed_hosts: Option<String>,
        /// Refuse plain-http URLs (as REGISTRY_REQUIRE_HTTPS).
        #[arg(long, env = "REGISTRY_REQUIRE_HTTPS", default_value_t = true, action = clap::ArgAction::Set)]
        require_https: bool,
        /// Download and compile every artifact, as the service would.
        #[arg(long)]
        fetch: bool,
        /// Relative artifact paths resolve beside the catalog file (as REGISTRY_ALLOW_LOCAL_ARTIFACTS).
        #[arg(long)]
        allow_local_artifacts: bool,
        /// Per-fetch time limit in seconds.
        #[arg(long, default_value_t = 10)]
        fetch_timeout: u64,
    },
}

pub async fn run(command: CatalogCommand, ctx: &Context) -> Result<(), CliError> {
    let CatalogCommand::Lint {
        file,
        allowed_hosts,
        require_https,
        fetch,
        allow_local_artifacts,
        fetch_timeout,
    } = command;
    let bytes = std::fs::read(&file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let catalog = match Catalog::parse(&bytes) {
        Ok(catalog) => catalog,
        Err(error) => {
            report(ctx, false, &[], &[error.to_string()], &[]);
            return Err(CliError::ValidationFailed);
        }
    };
    let hosts = allowed_hosts.unwrap_or_else(|| catalog_hosts(&catalog));
    let policy = if hosts.is_empty() {
        None
    } else {
        let list = AllowList::parse(&hosts).map_err(|e| CliError::Usage(format!("--allowed-hosts: {e}")))?;
        Some(UrlPolicy::new(list, require_https))
    };

    let mut rows = Vec::new();
    let mut ok = true;
    for entry in &catalog.entries {
        let mut problems = Vec::new();
        for (kind, url) in &entry.artifacts {
            if allow_local_artifacts && LocalArtifactSource::is_local_reference(url) {
                continue;
            }
            match &policy {
                Some(policy) => {
                    if let Err(violation) = policy.check_str(url) {
                        problems.push(format!("{}: {violation}", kind.catalog_field()));
                    }
                }
                None => problems.push(format!("{}: {url} is not an absolute URL", kind.catalog_field())),
            }
        }
        ok &= problems.is_empty();
        rows.push(json!({
            "model": entry.key.model, "version": entry.key.version,
            "artifacts": entry.artifacts.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            "ok": problems.is_empty(), "problems": problems,
        }));
    }

    if fetch && ok {
        let policy = policy.ok_or_else(|| CliError::Usage("--fetch needs --allowed-hosts".into()))?;
        let options = FetchOptions {
            allow_local: allow_local_artifacts,
            timeout: fetch_timeout,
            extra_ca_pem: ctx.cacert_pem.clone(),
        };
        ok &= fetch_all(&catalog, &file, policy, options, &mut rows).await?;
    }
    report(ctx, ok, &rows, &[], &catalog.warnings);
    if ok { Ok(()) } else { Err(CliError::ValidationFailed) }
}

/// Every host the catalog names, with its port when it has one: the default allow-list.
fn catalog_hosts(catalog: &Catalog) -> String {
    let mut hosts: Vec<String> = catalog
        .entries
        .iter()
        .flat_map(|e| e.artifacts.values())
        .filter_map(|u| reqwest::Url::parse(u).ok())
        .filter_map(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts.join(",")
}

/// How `--fetch` downloads: local artifacts allowed, the per-fetch time limit in seconds, and
/// `--cacert`'s roots.
struct FetchOptions {
    allow_local: bool,
    timeout: u64,
    extra_ca_pem: Option<Vec<u8>>,
}

async fn fetch_all(
    catalog: &Catalog,
    file: &std::path::Path,
    policy: UrlPolicy,
    options: FetchOptions,
    rows: &mut [Value],
) -> Result<bool, CliError> {
    let FetchOptions {
        allow_local,
        timeout,
        extra_ca_pem,
    } = options;
    let http = Arc::new(
        HttpArtifactSource::new(FetchSettings {
            policy,
            max_bytes: 64 * 1024 * 1024,
            timeout: std::time::Duration::from_secs(timeout.max(1)),
            cache_ttl: None,
            extra_ca_pem,
        })
        .map_err(|e| CliError::Usage(e.to_string()))?,
    );
    let dir = file
        .parent()
        .map(|p| p.to_path_buf())
        .filter(|p| !p.as_os_str().is_empty());
    let local = allow_local.then(|| {
        LocalArtifactSource::new(dir.unwrap_or_else(|| ".".into()), 64 * 1024 * 1024)
            .with_timeout(std::time::Duration::from_secs(timeout.max(1)))
    });
    let loader = Loader {
        location: CatalogLocation::File(file.to_path_buf()),
        catalog_source: http.clone(),
        artifact_source: Arc::new(RoutedArtifactSource { http, local }),
        compiler: Arc::new(StandardCompiler),
        fetch_concurrency: 4,
        metrics: Arc::new(Metrics::new()),
        local_file_limits: hex_core_service::registry::local_file::LocalFileLimits {
            max_bytes: 64 * 1024 * 1024,
            timeout: std::time::Duration::from_secs(timeout.max(1)),
        },
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(catalog.entries.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} fetching and compiling [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let mut all_ok = true;
    for (entry, row) in catalog.entries.iter().zip(rows.iter_mut()) {
        if let Some(bar) = &progress {
            bar.set_message(entry.key.to_string());
        }
        let started = std::time::Instant::now();
        let (_, result) = loader.load_entry(entry.clone()).await;
        row["fetch_ms"] = json!(started.elapsed().as_millis() as u64);
        match result {
            Ok(model) => {
                row["validators"] = json!(model.compiled.validators.iter().map(|v| v.kind()).collect::<Vec<_>>());
                row["target_class"] = json!(model.compiled.target_class);
                row["warnings"] = json!(model.compiled.warnings);
            }
            Err(errors) => {
                all_ok = false;
                row["ok"] = json!(false);
                let problems = row["problems"].as_array_mut().expect("array");
                problems.extend(errors.iter().map(|e| json!(e.to_string())));
            }
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(all_ok)
}

fn report(ctx: &Context, ok: bool, rows: &[Value], catalog_errors: &[String], warnings: &[String]) {
    if ctx.output.mode == OutputMode::Json {
        ctx.output
            .json(&json!({"valid": ok, "entries": rows, "errors": catalog_errors, "warnings": warnings}));
        return;
    }
    for error in catalog_errors {
        println!("{} {error}", ctx.output.bad("catalog:"));
    }
    let table_rows = rows
        .iter()
        .map(|row| {
            let status = if row["ok"] == true {
                ctx.output.ok("ok")
            } else {
                ctx.output.bad("FAIL")
            };
            let detail = row["problems"]
                .as_array()
                .filter(|p| !p.is_empty())
                .map(|p| p.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
                .unwrap_or_else(|| {
                    row["validators"]
                        .as_array()
                        .map(|v| {
                            format!(
                                "validators: {}",
                                v.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
                            )
                        })
                        .unwrap_or_default()
                });
            vec![
                row["model"].as_str().unwrap_or("").to_string(),
                row["version"].as_str().unwrap_or("").to_string(),
                status,
                detail,
            ]
        })
        .collect();
    if !rows.is_empty() {
        ctx.output.table(&["MODEL", "VERSION", "STATUS", "DETAIL"], table_rows);
    }
    for warning in warnings {
        println!("{} {warning}", ctx.output.warn("warning:"));
    }
    println!(
        "{}",
        if ok {
            ctx.output.ok("catalog is valid")
        } else {
            ctx.output.bad("catalog has problems")
        }
    );
}
