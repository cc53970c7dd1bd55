//! The `order-router` binary: parses the command line and hands it to the library.

use clap::Parser;
use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: the service allocates and frees a record, its
/// answer and its feed entry per order on several threads (docs/benchmarks.md, "The
/// allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
