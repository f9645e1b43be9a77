//! `hex-cli`: the admin and client command line for hex-core-service.

use clap::Parser;

/// Admin and client command line for hex-core-service.
#[derive(Parser, Debug)]
#[command(name = "hex-cli", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("hex-cli: no commands are available in this build yet (see the hex-cli issue)");
    std::process::exit(2);
}
