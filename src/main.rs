//! The `order-router` binary: parses the command line and hands it to the library.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = order_router::cli::Cli::parse();
    match order_router::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("order-router: {error:#}");
            ExitCode::FAILURE
        }
    }
}
