//! `campaignd check`: validates the config, the agent definitions and the campaigns, and prints
//! every problem with its file and key, one per line on stderr.
//!
//! Exit 0 when everything is valid, 1 when anything is not. It only reads: it must never open the
//! knowledge base or start anything.

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {}

pub fn execute(config: Option<&Path>, _args: CheckArgs) -> anyhow::Result<ExitCode> {
    let problems = match campaignd::agents::registry().load(config) {
        Ok(settings) => {
            eprintln!("config: {}", settings.source);
            println!(
                "ok: {} agents, {} campaigns",
                settings.agents.len(),
                settings.campaigns.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(problems) => problems.0,
    };
    for problem in &problems {
        eprintln!("{problem}");
    }
    eprintln!(
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(1))
}
