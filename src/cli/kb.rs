//! `campaignd kb …`: the knowledge base from the command line.

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum KbCommand {
    /// Write synthetic decisions through the real writer and print each acknowledged id.
    Bench {},
}

pub fn execute(_config: Option<&Path>, _command: KbCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("campaignd kb is not built yet")
}
