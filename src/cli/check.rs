//! `campaignd check`: validates the config, the agent definitions and the campaigns, and prints
//! every problem with its file and key, one per line on stderr.
//!
//! Exit 0 when everything is valid, 1 when anything is not. It only reads: it must never open the
//! knowledge base or start anything.

use std::path::Path;
use std::process::ExitCode;

use campaignd::settings::{Problem, Settings};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {}

pub fn execute(config: Option<&Path>, _args: CheckArgs) -> anyhow::Result<ExitCode> {
    let problems = match Settings::load(config) {
        Ok(settings) => {
            let problems = validate_playbooks(&settings);
            if problems.is_empty() {
                eprintln!("config: {}", settings.source);
                println!(
                    "ok: {} agents, {} campaigns",
                    settings.agents.len(),
                    settings.campaigns.len()
                );
                return Ok(ExitCode::SUCCESS);
            }
            problems
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

/// HOOK for the domain playbooks: each agent's `[playbook]` table is loaded but not yet checked.
/// Validation belongs here, one parser per agent, e.g.
/// `settings.agent("compliance").map(|a| a.parse_playbook::<RuleSet>())`, collecting each
/// `Err(problem)`. Until those parsers are wired in, nothing is validated and nothing is reported.
fn validate_playbooks(_settings: &Settings) -> Vec<Problem> {
    Vec::new()
}
