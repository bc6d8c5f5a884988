//! `campaignd check`.

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {}

pub fn execute(_config: Option<&Path>, _args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("campaignd check is not built yet")
}
