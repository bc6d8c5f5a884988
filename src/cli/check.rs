//! `campaignd check`: validates the config, the agent definitions and the campaigns, and prints
//! every problem with its file and key, one per line on stderr.
//!
//! Exit 0 when everything is valid, 1 when anything is not. It only reads (and creates and removes
//! one probe file to learn whether the data directory is writable): it must never open the
//! knowledge base or start anything.

use std::path::Path;
use std::process::ExitCode;

use campaignd::settings::deployment::data_dir_problems;
use campaignd::settings::{Problems, Settings};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {}

pub fn execute(config: Option<&Path>, _args: CheckArgs) -> anyhow::Result<ExitCode> {
    // Everything the built-in agents need of their definitions counts here, including what `run`
    // only warns of (an agent without an implementation, a subscription nothing publishes on).
    let loaded = Settings::load(config).and_then(|settings| {
        let mut problems = campaignd::agents::registry().check(&settings);
        // What `run` would fail on when it opens the knowledge base.
        problems.extend(data_dir_problems(
            &settings.config,
            &settings.source.label(),
        ));
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(Problems(problems))
        }
    });
    let problems = match loaded {
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
