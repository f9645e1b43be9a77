//! `hex-cli validate`: against a service, or `--offline` through the same library code the service
//! runs (the registry's compiler and the validate use case), not a second implementation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use hex_core_service::domain::catalog::CatalogEntry;
use hex_core_service::domain::model::{ArtifactKind, ModelKey};
use hex_core_service::ports::{ArtifactSet, FetchedArtifact, ModelCompiler};
use hex_core_service::usecases::validate::run_compiled;
use hex_core_service::validation::StandardCompiler;
use reqwest::Method;
use serde_json::{Value, json};

use super::{payload_of, read_json_input};
use crate::Context;
use crate::client::segment;
use crate::error::CliError;

#[derive(Args, Debug)]
#[command(
    group(clap::ArgGroup::new("schema_or_shacl").multiple(true)),
    after_help = "Examples:\n  hex-cli validate demo-passport 0.1.0 payload.json\n  hex-cli validate --offline --schema schema.json --shacl shacl.ttl --linkml schema.yaml --root-class Passport payload.json"
)]
pub struct ValidateArgs {
    /// Model (online mode).
    #[arg(required_unless_present = "offline")]
    model: Option<String>,
    /// Version (online mode).
    #[arg(required_unless_present = "offline")]
    version: Option<String>,
    /// Payload file (a bare object or {"payload": ...}); `-` or absent: stdin.
    file: Option<PathBuf>,
    /// Validate locally, without a service.
    #[arg(long, requires = "schema_or_shacl")]
    offline: bool,
    /// JSON Schema file (offline).
    #[arg(long, group = "schema_or_shacl", requires = "offline")]
    schema: Option<PathBuf>,
    /// SHACL shapes file (offline).
    #[arg(long, group = "schema_or_shacl", requires = "offline")]
    shacl: Option<PathBuf>,
    /// LinkML schema.yaml (offline): slot URIs and tree_root.
    #[arg(long, requires = "offline")]
    linkml: Option<PathBuf>,
    /// OWL ontology (offline).
    #[arg(long, requires = "offline")]
    owl: Option<PathBuf>,
    /// Class payloads validate as (offline); default: as the service chooses it.
    #[arg(long, requires = "offline")]
    root_class: Option<String>,
}

pub async fn run(mut args: ValidateArgs, ctx: &Context) -> Result<(), CliError> {
    if args.offline {
        // In offline mode the positionals are optional; a single positional is the file.
        if args.file.is_none() && args.version.is_none() {
            args.file = args.model.take().map(PathBuf::from);
        }
        return offline(args, ctx);
    }
    let (model, version) = (args.model.unwrap_or_default(), args.version.unwrap_or_default());
    let payload = payload_of(read_json_input(args.file.as_deref())?)?;
    let client = ctx.client().await?;
    let path = format!("/models/{}/versions/{}:validate", segment(&model), segment(&version));
    let report = client
        .send(
            client.request(Method::POST, &path).json(&json!({"payload": payload})),
            &[],
        )
        .await?
        .json()?;
    finish(&report, ctx)
}

fn finish(report: &Value, ctx: &Context) -> Result<(), CliError> {
    ctx.output.report(report);
    if report["passed"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(CliError::ValidationFailed)
    }
}

fn offline(args: ValidateArgs, ctx: &Context) -> Result<(), CliError> {
    let payload = payload_of(read_json_input(args.file.as_deref())?)?;
    let mut artifacts: ArtifactSet = BTreeMap::new();
    let mut urls = BTreeMap::new();
    for (kind, path) in [
        (ArtifactKind::Schema, &args.schema),
        (ArtifactKind::Shacl, &args.shacl),
        (ArtifactKind::Linkml, &args.linkml),
        (ArtifactKind::Owl, &args.owl),
    ] {
        let Some(path) = path else { continue };
        let bytes = std::fs::read(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        let url = path.display().to_string();
        urls.insert(kind, url.clone());
        artifacts.insert(
            kind,
            FetchedArtifact {
                url,
                bytes: Bytes::from(bytes),
                from_cache: false,
            },
        );
    }
    let entry = CatalogEntry {
        key: ModelKey::new("offline", "local"),
        artifacts: urls,
        root_class: args.root_class,
    };
    let compiled = StandardCompiler
        .compile(&entry, &artifacts)
        .map_err(|e| CliError::Usage(format!("cannot compile the model: {e}")))?;
    for warning in &compiled.warnings {
        eprintln!("hex-cli: warning: {warning}");
    }
    if ctx.verbose {
        eprintln!(
            "hex-cli: target class {:?} (chosen by {})",
            compiled.target_class.name, compiled.target_class.chosen_by
        );
    }
    let report = serde_json::to_value(run_compiled(&compiled, &payload)).expect("report serialises");
    finish(&report, ctx)
}
