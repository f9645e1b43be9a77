//! `hex-cli`: the admin and client command line for hex-core-service.
//!
//! Exit codes: 0 success, 1 validation did not pass, 2 usage error, 3 the service answered with
//! an error (its envelope code is printed), 4 network or timeout.

mod client;
mod commands;
mod error;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::client::ApiClient;
use crate::error::{CliError, exit};
use crate::output::{Output, OutputMode};

/// Admin and client command line for hex-core-service.
#[derive(Parser, Debug)]
#[command(name = "hex-cli", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// Base URL of the service.
    #[arg(long, global = true, env = "HEX_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token for the service.
    #[arg(
        long,
        global = true,
        env = "HEX_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// Read the bearer token from a file (first line).
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Output format; default: table on a terminal, JSON otherwise.
    #[arg(long, short = 'o', global = true, value_enum)]
    output: Option<OutputMode>,
    /// Request timeout in seconds.
    #[arg(long, global = true, default_value_t = 30.0)]
    timeout: f64,
    /// Print what is being done to stderr.
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List and describe the models the service has loaded.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// Validate a payload, against the service or offline with the service's own engine.
    Validate(commands::validate::ValidateArgs),
    /// Validate and create a record (Idempotency-Key: a fresh one unless given).
    Create(commands::records::CreateArgs),
    /// Read records.
    #[command(subcommand)]
    Records(commands::records::RecordsCommand),
    /// Query records with the canonical AND-only dialect.
    Query(commands::records::QueryArgs),
    /// Operational endpoints: probes, status, version, metrics, refresh.
    Admin(commands::admin::AdminArgs),
    /// Check a catalog file with the registry's own rules.
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command gets: output settings and (lazily) a client.
pub struct Context {
    pub output: Output,
    pub verbose: bool,
    url: String,
    token: Option<String>,
    timeout: Duration,
}

impl Context {
    pub fn client(&self) -> Result<ApiClient, CliError> {
        if self.verbose {
            eprintln!("hex-cli: talking to {}", self.url);
        }
        ApiClient::new(&self.url, self.token.clone(), self.timeout)
    }
}

fn context(global: Global) -> Result<Context, CliError> {
    let token = match (&global.token, &global.token_file) {
        (Some(token), _) => Some(token.trim().to_string()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--token-file {}: {e}", path.display())))?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
        (None, None) => None,
    }
    .filter(|t| !t.is_empty());
    if !(global.timeout > 0.0 && global.timeout.is_finite()) {
        return Err(CliError::Usage("--timeout must be a positive number of seconds".into()));
    }
    Ok(Context {
        output: Output::detect(global.output),
        verbose: global.verbose,
        url: global.url,
        token,
        timeout: Duration::from_secs_f64(global.timeout),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match context(cli.global) {
        Ok(ctx) => runtime.block_on(run(cli.command, &ctx)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(CliError::ValidationFailed) => ExitCode::from(exit::VALIDATION_FAILED),
        Err(error) => {
            eprintln!("hex-cli: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(command: Command, ctx: &Context) -> Result<(), CliError> {
    match command {
        Command::Models(cmd) => commands::models::run(cmd, ctx).await,
        Command::Validate(args) => commands::validate::run(args, ctx).await,
        Command::Create(args) => commands::records::create(args, ctx).await,
        Command::Records(cmd) => commands::records::run(cmd, ctx).await,
        Command::Query(args) => commands::records::query(args, ctx).await,
        Command::Admin(args) => commands::admin::run(args, ctx).await,
        Command::Catalog(cmd) => commands::catalog::run(cmd, ctx).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "hex-cli", &mut std::io::stdout());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
