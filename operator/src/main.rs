//! `hex-core-operator` binary: `run` (the default), `crdgen` and `render`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hex_core_operator::controller::{DEFAULT_SERVICE_IMAGE_REPOSITORY, Settings, default_service_image};
use hex_core_operator::lease::ElectionTiming;
use hex_core_operator::operator::{self, Election, Options};

/// hex-core Kubernetes operator (reconciles ModelCatalog and HexCoreService).
#[derive(Parser, Debug)]
#[command(name = "hex-core-operator", version, about)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the CustomResourceDefinitions as YAML files into a directory.
    Crdgen {
        /// Output directory.
        #[arg(long, default_value = "crds")]
        out: PathBuf,
    },
    /// Print the objects the operator would apply for the HexCoreServices and ModelCatalogs in
    /// YAML files (multi-document), as multi-document YAML, without a cluster.
    Render {
        /// Input YAML files: HexCoreServices, ModelCatalogs, and the Secrets the services
        /// reference (other kinds are ignored). Repeatable.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// File holding the admin token of services without `auth.adminTokenSecretRef`
        /// (whitespace trimmed). Without it a random token is generated, as the operator does.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// Namespace of input objects that name none.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Repository of the image of HexCoreServices without `spec.image` (the tag is this
        /// operator's version), as the running operator's setting of the same name.
        #[arg(long, env = "HEX_OPERATOR_SERVICE_IMAGE_REPOSITORY", default_value = DEFAULT_SERVICE_IMAGE_REPOSITORY)]
        service_image_repository: String,
    },
}

/// Without a subcommand the operator runs the controllers.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Namespaces to watch, comma-separated; empty: all namespaces.
    #[arg(long, env = "HEX_OPERATOR_NAMESPACES", value_delimiter = ',', num_args = 0..)]
    namespaces: Vec<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "HEX_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8081")]
    http_addr: SocketAddr,
    /// Disable leader election (only safe with a single replica).
    #[arg(long, env = "HEX_OPERATOR_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Namespace of the leader Lease (default: the pod's namespace, POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "HEX_OPERATOR_LEASE_NAME", default_value = "hex-core-operator")]
    lease_name: String,
    /// This replica's identity in the Lease (default: POD_NAME, else hostname-pid).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Repository of the image of HexCoreServices without `spec.image`; the tag is this
    /// operator's version, so omitting `spec.image` runs the service released with the operator.
    #[arg(long, env = "HEX_OPERATOR_SERVICE_IMAGE_REPOSITORY", default_value = DEFAULT_SERVICE_IMAGE_REPOSITORY)]
    service_image_repository: String,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crdgen { out }) => match hex_core_operator::crdgen::write_all(&out) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
            }
            Err(e) => {
                eprintln!("hex-core-operator crdgen: {e}");
                std::process::exit(1);
            }
        },
        Some(Command::Render {
            files,
            admin_token_file,
            namespace,
            service_image_repository,
        }) => render(files, admin_token_file, namespace, &service_image_repository),
        None => run(cli.run),
    }
}

fn render(files: Vec<PathBuf>, admin_token_file: Option<PathBuf>, namespace: Option<String>, repository: &str) {
    use hex_core_operator::render::{self, AdminToken, Options};
    let result = admin_token_file
        .as_deref()
        .map(render::read_token_file)
        .transpose()
        .and_then(|token| {
            render::render(&Options {
                files,
                admin_token: token.map_or(AdminToken::Random, AdminToken::Fixed),
                namespace,
                default_image: default_service_image(repository),
            })
        });
    match result {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("hex-core-operator render: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: RunArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level).unwrap_or_else(|e| {
        eprintln!("invalid configuration: LOG_LEVEL={:?}: {e}", args.log_level);
        std::process::exit(2);
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("hex-core-operator: cannot start the runtime: {e}");
            std::process::exit(1);
        });
    runtime.block_on(async move {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, "no Kubernetes client configuration (in-cluster or KUBECONFIG)");
                std::process::exit(1);
            }
        };
        let identity = args.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        let options = Options {
            namespaces: args.namespaces.iter().filter(|n| !n.is_empty()).cloned().collect(),
            election: (!args.no_leader_election).then(|| Election {
                namespace: args.lease_namespace.clone(),
                lease_name: args.lease_name.clone(),
                identity: identity.clone(),
                timing: ElectionTiming::default(),
            }),
            settings: Settings {
                instance: identity,
                default_service_image: default_service_image(&args.service_image_repository),
                ..Settings::default()
            },
        };
        let shutdown = async {
            shutdown_signal().await;
            tracing::info!("shutting down");
        };
        let (handle, operator) = operator::start_until(client, options, shutdown);
        let server = operator::serve(args.http_addr, handle);
        // The operator future ends after an orderly shutdown (controllers stopped, Lease
        // released); the health server runs until then so probes do not fail early.
        tokio::select! {
            _ = operator => {}
            result = server => {
                if let Err(error) = result {
                    tracing::error!(%error, addr = %args.http_addr, "cannot serve the health endpoints");
                    std::process::exit(2);
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
