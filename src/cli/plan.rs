//! `campaignd plan`.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {}

pub fn execute(_args: PlanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("campaignd plan is not built yet")
}
