//! `campaignd run`.

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RunArgs {}

pub fn execute(_config: Option<&Path>, _args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("campaignd run is not built yet")
}
