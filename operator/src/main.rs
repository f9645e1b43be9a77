//! `hex-core-operator` binary.

use clap::Parser;

/// hex-core Kubernetes operator (reconciles ModelCatalog and HexCoreService).
#[derive(Parser, Debug)]
#[command(name = "hex-core-operator", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("hex-core-operator: the reconcilers are not part of this build yet (see the operator issue)");
    std::process::exit(2);
}
