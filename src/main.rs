//! The `campaignd` binary: parses the command line and hands over to the library.

mod cli;

use std::process::ExitCode;

/// jemalloc instead of the system allocator: faster on the decision path and with less memory
/// kept after busy days (measured in benches/README.md, "The allocator, the approvals' index
/// entries and per-campaign memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cli::main()
}
