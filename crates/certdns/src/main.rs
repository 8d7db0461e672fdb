//! The certdns binary. `main` parses the command line, loads the configuration and
//! hands over to one module per subcommand; errors end the process with one line
//! on stderr and exit code 1 (2 for usage errors, from clap).

mod admin;
mod bootstrap;
mod cli;
mod config;
mod files;
mod import;
mod ops;
mod serve;
mod telemetry;
mod tls_acme;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

// The request paths allocate many small, short-lived buffers; mimalloc serves
// them with less contention and fewer cycles than glibc's malloc (measured on
// `/update`: loadtest/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    files::private_by_default();
    // One crypto provider for every TLS client and server in the process (see Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Migrate(args) => admin::migrate(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::ImportAcmeDns(args) => import::run(args).await,
            Command::Config(args) => config::print(&args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `{:#}` prints the whole context chain on one line.
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ExitCode {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("certdns: error: {one_line}");
    ExitCode::FAILURE
}
