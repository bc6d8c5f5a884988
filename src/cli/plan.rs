//! `campaignd plan CAMPAIGN.toml [--playbook PATH]`: print the strategy plan for one campaign goal
//! as JSON — KPIs, feasibility with reasons and fixes, budget per channel and per day, ICE-ranked
//! tactics and the 70-20-10 split — without starting anything.
//!
//! Exit 0 with a plan (an infeasible goal is still a plan: it says why). Bad input — a missing file,
//! bad TOML, an unknown key, an invalid value — is an error naming the file and key (exit 2).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::strategy::{DEFAULT_STRATEGY_TOML, StrategyPlaybook, plan};

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The campaign goal file (e.g. config/campaigns/spring.toml).
    pub campaign: PathBuf,
    /// The strategy agent definition whose [playbook] holds the channel priors; defaults to the
    /// embedded agents/strategy.toml.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
}

pub fn execute(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let path = args.campaign.display().to_string();
    let text = std::fs::read_to_string(&args.campaign)
        .with_context(|| format!("cannot read campaign file {path}"))?;
    let goal: CampaignGoal =
        toml::from_str(&text).with_context(|| format!("invalid campaign file {path}"))?;

    let playbook = match &args.playbook {
        Some(playbook_path) => {
            let shown = playbook_path.display();
            let text = std::fs::read_to_string(playbook_path)
                .with_context(|| format!("cannot read playbook file {shown}"))?;
            StrategyPlaybook::from_toml_str(&text)
                .with_context(|| format!("invalid playbook file {shown}"))?
        }
        None => StrategyPlaybook::from_toml_str(DEFAULT_STRATEGY_TOML)
            .context("the embedded agents/strategy.toml is invalid")?,
    };

    let plan = plan(&goal, &playbook, chrono::Utc::now())
        .with_context(|| format!("cannot plan campaign file {path}"))?;
    println!("{}", serde_json::to_string_pretty(&plan)?);
    Ok(ExitCode::SUCCESS)
}
