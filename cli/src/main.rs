//! `hex-cli`: the admin and client command line for hex-core-service.
//!
//! Exit codes: 0 success, 1 validation did not pass (or, for `status`, a HexCoreService is not
//! Ready), 2 usage error, 3 the service (or the Kubernetes API server) answered with an error
//! (its code is printed), 4 network or timeout.

mod client;
mod cluster;
mod commands;
mod credentials;
mod error;
mod hcs_status;
mod oidc;
mod output;
mod token_cache;

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
    /// PEM file of CA certificates to trust besides the system's, for a service or issuer
    /// behind a private CA.
    #[arg(long, global = true, env = "HEX_CACERT", value_name = "FILE")]
    cacert: Option<PathBuf>,
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
    /// Get a token from an OpenID Connect issuer (client credentials) for --url; every command
    /// then uses it, renewed when it expires, unless --token is given.
    Login(commands::login::LoginArgs),
    /// Forget the login for --url (or every login with --all).
    Logout(commands::login::LogoutArgs),
    /// A HexCoreService as the cluster sees it (conditions, catalog per replica, failed models,
    /// pods, Events), or one line per HexCoreService; exits 1 when one is not Ready.
    Status(commands::status::StatusArgs),
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
    /// An explicit token (`--token`, `HEX_TOKEN`, `--token-file`); otherwise the login's.
    token: Option<String>,
    timeout: Duration,
    /// `--cacert`: extra trust roots for the service, the issuer and artifact fetches.
    extra_roots: Vec<reqwest::Certificate>,
    /// The same roots as PEM, for the registry's own fetcher (`catalog lint --fetch`).
    pub cacert_pem: Option<Vec<u8>>,
}

impl Context {
    /// The HTTP client every request goes through (service and issuer alike).
    pub fn http(&self) -> Result<reqwest::Client, CliError> {
        client::http_client(self.timeout, &self.extra_roots)
    }

    /// A client for the service, with the bearer token this command sends (explicit, or the
    /// login's, renewed when it has expired).
    pub async fn client(&self) -> Result<ApiClient, CliError> {
        if self.verbose {
            eprintln!("hex-cli: talking to {}", self.url);
        }
        let token = credentials::bearer(self).await?;
        ApiClient::new(self.http()?, &self.url, token, self.timeout)
    }
}

fn read_cacert(path: &std::path::Path) -> Result<(Vec<u8>, Vec<reqwest::Certificate>), CliError> {
    let pem = std::fs::read(path).map_err(|e| CliError::Usage(format!("--cacert {}: {e}", path.display())))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        CliError::Usage(format!(
            "--cacert {}: not a PEM certificate bundle ({e})",
            path.display()
        ))
    })?;
    if certificates.is_empty() {
        return Err(CliError::Usage(format!(
            "--cacert {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok((pem, certificates))
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
    let (cacert_pem, extra_roots) = match &global.cacert {
        Some(path) => {
            let (pem, certificates) = read_cacert(path)?;
            (Some(pem), certificates)
        }
        None => (None, Vec::new()),
    };
    Ok(Context {
        output: Output::detect(global.output),
        verbose: global.verbose,
        url: global.url,
        token,
        timeout: Duration::from_secs_f64(global.timeout),
        extra_roots,
        cacert_pem,
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
        Command::Login(args) => commands::login::login(args, ctx).await,
        Command::Logout(args) => commands::login::logout(args, ctx).await,
        Command::Status(args) => commands::status::run(args, ctx).await,
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
