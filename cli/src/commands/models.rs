//! `hex-cli models list|show`.

use clap::Subcommand;

use crate::Context;
use crate::client::segment;
use crate::error::CliError;
use crate::output::OutputMode;

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// List loaded model versions.
    List,
    /// Show one model version: artifacts with sha256, target class, validators, warnings.
    Show { model: String, version: String },
}

pub async fn run(command: ModelsCommand, ctx: &Context) -> Result<(), CliError> {
    let client = ctx.client().await?;
    match command {
        ModelsCommand::List => {
            let body = client.get("/models").await?.json()?;
            if ctx.output.mode == OutputMode::Json {
                ctx.output.json(&body);
                return Ok(());
            }
            let rows = body["models"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|m| {
                    vec![
                        m["id"].as_str().unwrap_or("").to_string(),
                        m["version"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            ctx.output.table(&["MODEL", "VERSION"], rows);
        }
        ModelsCommand::Show { model, version } => {
            let path = format!("/models/{}/versions/{}", segment(&model), segment(&version));
            let body = client.get(&path).await?.json()?;
            if ctx.output.mode == OutputMode::Json {
                ctx.output.json(&body);
                return Ok(());
            }
            let target = &body["target_class"];
            ctx.output.pairs(&[
                ("model", body["id"].as_str().unwrap_or("").to_string()),
                ("version", body["version"].as_str().unwrap_or("").to_string()),
                (
                    "target class",
                    format!(
                        "{} (chosen by {})",
                        target["name"].as_str().unwrap_or("unknown"),
                        target["chosen_by"].as_str().unwrap_or("?")
                    ),
                ),
                (
                    "validators",
                    body["validators"]
                        .as_array()
                        .map(|v| v.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                ),
                ("loaded at", body["loaded_at"].as_str().unwrap_or("").to_string()),
            ]);
            println!();
            let rows = body["artifacts"]
                .as_object()
                .map(|artifacts| {
                    artifacts
                        .iter()
                        .map(|(kind, a)| {
                            vec![
                                kind.clone(),
                                a["sha256"].as_str().unwrap_or("").to_string(),
                                a["size_bytes"].to_string(),
                                a["url"].as_str().unwrap_or("").to_string(),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            ctx.output.table(&["ARTIFACT", "SHA256", "BYTES", "URL"], rows);
            for warning in body["warnings"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                println!("{} {}", ctx.output.warn("warning:"), warning.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}
