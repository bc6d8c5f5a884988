//! `campaignd review`.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ReviewArgs {}

pub fn execute(_args: ReviewArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("campaignd review is not built yet")
}
