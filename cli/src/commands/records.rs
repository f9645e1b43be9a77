//! `hex-cli create`, `hex-cli records get`, `hex-cli query`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::{payload_of, read_json_input};
use crate::Context;
use crate::client::segment;
use crate::error::CliError;
use crate::output::OutputMode;

#[derive(Args, Debug)]
pub struct CreateArgs {
    model: String,
    version: String,
    /// Payload file (a bare object or {"payload": ...}); `-` or absent: stdin.
    file: Option<PathBuf>,
    /// Idempotency-Key; default: a fresh UUID, printed to stderr so a retry can reuse it.
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RecordsCommand {
    /// Read one record by id.
    Get { model: String, version: String, id: String },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  hex-cli query demo-passport 0.1.0 --where 'payload.record_scope eq product' --sort created_at:desc --limit 10\n  hex-cli query demo-passport 0.1.0 --where 'payload.mass_kg gt 1' --where 'payload.manufacturer.country in [\"DE\",\"FR\"]'\n  hex-cli query demo-passport 0.1.0 --filter filter.json"
)]
pub struct QueryArgs {
    model: String,
    version: String,
    /// A condition `FIELD OP VALUE` (AND-ed; repeatable). OP: eq ne in contains exists gt gte lt lte.
    /// VALUE is JSON when it parses as JSON (numbers, true/false, ["a","b"]), else a string.
    #[arg(long = "where", value_name = "FIELD OP VALUE", conflicts_with = "filter")]
    conditions: Vec<String>,
    /// Sort `FIELD[:asc|desc]` (repeatable).
    #[arg(long, value_name = "FIELD:DIR", conflicts_with = "filter")]
    sort: Vec<String>,
    #[arg(long, conflicts_with = "filter")]
    limit: Option<u64>,
    #[arg(long, conflicts_with = "filter")]
    offset: Option<u64>,
    /// A JSON file with the query ({"filter": {...}} or just the filter).
    #[arg(long)]
    filter: Option<PathBuf>,
}

pub async fn create(args: CreateArgs, ctx: &Context) -> Result<(), CliError> {
    let payload = payload_of(read_json_input(args.file.as_deref())?)?;
    let key = args.idempotency_key.unwrap_or_else(|| {
        let key = uuid::Uuid::new_v4().to_string();
        eprintln!("hex-cli: Idempotency-Key: {key}");
        key
    });
    let client = ctx.client().await?;
    let path = format!(
        "/models/{}/versions/{}:create",
        segment(&args.model),
        segment(&args.version)
    );
    let request = client
        .request(Method::POST, &path)
        .header("Idempotency-Key", key)
        .json(&json!({"payload": payload}));
    let record = client.send(request, &[]).await?.json()?;
    print_records(std::slice::from_ref(&record), &record, ctx);
    Ok(())
}

pub async fn run(command: RecordsCommand, ctx: &Context) -> Result<(), CliError> {
    match command {
        RecordsCommand::Get { model, version, id } => {
            let client = ctx.client().await?;
            let path = format!(
                "/models/{}/versions/{}/records/{}",
                segment(&model),
                segment(&version),
                segment(&id)
            );
            let record = client.get(&path).await?.json()?;
            print_records(std::slice::from_ref(&record), &record, ctx);
            Ok(())
        }
    }
}

pub async fn query(args: QueryArgs, ctx: &Context) -> Result<(), CliError> {
    let body = match &args.filter {
        Some(path) => {
            let value = read_json_input(Some(path))?;
            if value.get("filter").is_some() {
                value
            } else {
                json!({"filter": value})
            }
        }
        None => json!({"filter": build_filter(&args)?}),
    };
    let client = ctx.client().await?;
    let path = format!(
        "/models/{}/versions/{}:query",
        segment(&args.model),
        segment(&args.version)
    );
    let answer = client
        .send(client.request(Method::POST, &path).json(&body), &[])
        .await?
        .json()?;
    let records = answer["records"].as_array().cloned().unwrap_or_default();
    print_records(&records, &answer, ctx);
    Ok(())
}

fn build_filter(args: &QueryArgs) -> Result<Value, CliError> {
    let conditions = args
        .conditions
        .iter()
        .map(|c| parse_condition(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut filter = json!({"where": conditions});
    if !args.sort.is_empty() {
        let sort = args.sort.iter().map(|s| parse_sort(s)).collect::<Result<Vec<_>, _>>()?;
        filter["sort"] = Value::Array(sort);
    }
    if let Some(limit) = args.limit {
        filter["limit"] = json!(limit);
    }
    if let Some(offset) = args.offset {
        filter["offset"] = json!(offset);
    }
    Ok(filter)
}

const OPS: [&str; 9] = ["eq", "ne", "in", "contains", "exists", "gt", "gte", "lt", "lte"];

/// `FIELD OP VALUE`; the service checks the rest and names the clause when it refuses one.
pub fn parse_condition(text: &str) -> Result<Value, CliError> {
    let mut parts = text.trim().splitn(3, char::is_whitespace);
    let field = parts.next().unwrap_or("");
    let op = parts.next().unwrap_or("");
    let raw = parts.next().unwrap_or("").trim();
    if field.is_empty() || op.is_empty() || raw.is_empty() {
        return Err(CliError::Usage(format!(
            "--where {text:?}: expected `FIELD OP VALUE`, e.g. 'payload.record_scope eq product'"
        )));
    }
    if !OPS.contains(&op) {
        return Err(CliError::Usage(format!(
            "--where {text:?}: unknown operator {op:?}; use one of {}",
            OPS.join(" ")
        )));
    }
    let value = serde_json::from_str::<Value>(raw).unwrap_or_else(|_| {
        if op == "in" {
            Value::Array(raw.split(',').map(|s| Value::String(s.trim().to_string())).collect())
        } else {
            Value::String(raw.to_string())
        }
    });
    Ok(json!({"field": field, "op": op, "value": value}))
}

fn parse_sort(text: &str) -> Result<Value, CliError> {
    let (field, direction) = text.rsplit_once(':').unwrap_or((text, "asc"));
    if field.is_empty() || !matches!(direction, "asc" | "desc") {
        return Err(CliError::Usage(format!("--sort {text:?}: expected FIELD[:asc|desc]")));
    }
    Ok(json!({"field": field, "direction": direction}))
}

fn print_records(records: &[Value], raw: &Value, ctx: &Context) {
    if ctx.output.mode == OutputMode::Json {
        ctx.output.json(raw);
        return;
    }
    let rows = records
        .iter()
        .map(|r| {
            let payload = r["payload"].to_string();
            let payload = if payload.chars().count() > 60 {
                format!("{}…", payload.chars().take(59).collect::<String>())
            } else {
                payload
            };
            vec![
                r["id"].as_str().unwrap_or("").to_string(),
                r["created_at"].as_str().unwrap_or("").to_string(),
                payload,
            ]
        })
        .collect();
    ctx.output.table(&["ID", "CREATED", "PAYLOAD"], rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_json_values_or_strings() {
        assert_eq!(
            parse_condition("payload.record_scope eq product").unwrap(),
            json!({"field": "payload.record_scope", "op": "eq", "value": "product"})
        );
        assert_eq!(parse_condition("payload.mass_kg gt 1.5").unwrap()["value"], json!(1.5));
        assert_eq!(parse_condition("payload.x exists true").unwrap()["value"], json!(true));
        assert_eq!(
            parse_condition("payload.c in DE, FR").unwrap()["value"],
            json!(["DE", "FR"])
        );
        assert_eq!(
            parse_condition("payload.n eq hello world").unwrap()["value"],
            json!("hello world")
        );
    }

    #[test]
    fn bad_conditions_are_usage_errors() {
        assert!(parse_condition("payload.x").is_err());
        assert!(parse_condition("payload.x like y").is_err());
        assert!(parse_sort("created_at:sideways").is_err());
        assert_eq!(parse_sort("created_at").unwrap()["direction"], "asc");
    }
}
