//! `hex-core-service`: the data-plane binary. Exit codes: 0 clean stop, 1 runtime failure,
//! 2 configuration error (one line naming the variable, the value and what is accepted).

use std::process::ExitCode;

use hex_core_service::app;
use hex_core_service::config::{Config, Env};
use hex_core_service::{telemetry, termination};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("hex-core-service {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "hex-core-service {}\nConfigured by environment variables; see docs/configuration.md.",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(unknown) = args.first() {
        eprintln!(
            "hex-core-service: unknown argument {unknown:?}; the service is configured by environment variables (see --help)"
        );
        return ExitCode::from(2);
    }

    let config = match Config::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => return fatal(&format!("hex-core-service: {error}"), 2),
    };
    hex_core_service::memory::limit_malloc_arenas();
    telemetry::init(&config.log_level, config.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fatal(&format!("hex-core-service: cannot start the async runtime: {error}"), 1),
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "hex-core-service stopped");
            fatal(&format!("hex-core-service: {error}"), error.exit_code() as u8)
        }
    }
}

/// Reports a fatal error on stderr and in the termination-message file, and exits with `code`.
fn fatal(line: &str, code: u8) -> ExitCode {
    eprintln!("{line}");
    termination::write(line);
    ExitCode::from(code)
}

async fn run(config: Config) -> Result<(), app::StartError> {
    let state = app::build_state(&config)?;
    let listeners = app::bind(&config).await?;
    let addr = listeners.main_addr()?;
    if let Some(management) = listeners.management_addr()? {
        tracing::info!(
            management_address = %management,
            "management port listening: /admin/health, /admin/ready and /admin/metrics without authentication"
        );
    }
    tracing::info!(
        address = %addr,
        url = %format!("http://{addr}"),
        auth_mode = config.auth.mode.as_str(),
        io_adapter = config.io_adapter.kind.as_str(),
        "hex-core-service listening"
    );
    app::spawn_initial_load(&state);
    app::serve(listeners, state, &config.server).await
}
