//! `hex-cli admin health|ready|status|version|models-count|metrics|refresh`.

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::Value;

use crate::Context;
use crate::error::CliError;
use crate::output::OutputMode;

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[arg(value_enum)]
    action: AdminAction,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AdminAction {
    /// Liveness.
    Health,
    /// Readiness (exit 3 when not ready).
    Ready,
    /// Runtime status.
    Status,
    /// Service and contract versions.
    Version,
    /// Number of loaded model versions.
    ModelsCount,
    /// Prometheus metrics (text).
    Metrics,
    /// Reload the catalog on this replica (admin role).
    Refresh,
}

pub async fn run(args: AdminArgs, ctx: &Context) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let answer = match args.action {
        AdminAction::Health => client.get("/admin/health").await?,
        AdminAction::Ready => client.send(client.request(Method::GET, "/admin/ready"), &[503]).await?,
        AdminAction::Status => client.get("/admin/status").await?,
        AdminAction::Version => client.get("/admin/version").await?,
        AdminAction::ModelsCount => client.get("/admin/models/count").await?,
        AdminAction::Metrics => {
            let answer = client.get("/admin/metrics").await?;
            print!("{}", answer.text());
            return Ok(());
        }
        AdminAction::Refresh => {
            client
                .send(client.request(Method::POST, "/admin/registry/refresh"), &[])
                .await?
        }
    };
    let body = answer.json()?;
    print_object(&body, ctx);
    if answer.status == 503 {
        return Err(CliError::Service {
            status: 503,
            code: "NOT_READY".into(),
            message: body["reason"].as_str().unwrap_or("not ready").to_string(),
        });
    }
    Ok(())
}

/// JSON as is, or the top-level fields as aligned `key  value` lines.
fn print_object(body: &Value, ctx: &Context) {
    if ctx.output.mode == OutputMode::Json {
        ctx.output.json(body);
        return;
    }
    let Some(map) = body.as_object() else {
        ctx.output.json(body);
        return;
    };
    let pairs: Vec<(&str, String)> = map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            };
            (k.as_str(), text)
        })
        .collect();
    ctx.output.pairs(&pairs);
}
