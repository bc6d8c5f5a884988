//! `campaignd simulate CAMPAIGN_FILE [--market MARKET_FILE] [--seed N] [--runs N]`: what-if runs
//! of one campaign through the real agents, start to deadline, in a throw-away knowledge base and
//! with no clock wait, printed as JSON with the oracle's and a static plan's figures for the same
//! market (see `campaign::what_if`).
//!
//! Without `--market` each run uses the built-in simulator's market for its seed. The agents'
//! playbooks are the deployment's (`--config`, else `config/campaignd.toml` when it exists, else
//! the embedded defaults). Exit 0 with the runs; bad input (a file that cannot be read, an unknown
//! key, a market without one of the campaign's channels) exits 2 naming the file and what is wrong.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use campaignd::campaign::{WhatIf, simulate};
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::money::round_to;
use campaignd::market::MarketFile;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  campaignd simulate config/campaigns/kr_students_signups.toml --runs 5\n  \
    campaignd simulate config/campaigns/kr_students_signups.toml --market docs/examples/market.toml --seed 7"
)]
pub struct SimulateArgs {
    /// The campaign goal file.
    pub campaign: PathBuf,
    /// A market file: the true CTR, CVR, CPC and saturation of each channel, segment and creative
    /// level multipliers, drift (see docs/optimization.md, "What-if runs").
    #[arg(long)]
    pub market: Option<PathBuf>,
    /// The first run's seed; run k uses seed + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many runs, each on its own seed (1–1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
}

/// What several runs print: each run, and how they compare.
#[derive(Serialize)]
struct Runs {
    summary: Summary,
    runs: Vec<WhatIf>,
}

#[derive(Serialize)]
struct Summary {
    runs: usize,
    /// The median of campaignd's CPA over the oracle's, over the runs with conversions.
    median_cpa_vs_oracle: Option<f64>,
    /// The share of runs whose CPA beat the static plan's.
    better_than_static: f64,
    /// The share of runs that reached the target by the deadline.
    reached: f64,
    /// The largest share of a day's budget any budget move handed between channels.
    largest_move: f64,
}

pub fn execute(config: Option<&Path>, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let path = args.campaign.display().to_string();
    let text = std::fs::read_to_string(&args.campaign)
        .with_context(|| format!("cannot read campaign file {path}"))?;
    let mut goal: CampaignGoal =
        toml::from_str(&text).with_context(|| format!("invalid campaign file {path}"))?;
    let market = match &args.market {
        None => None,
        Some(file) => {
            let shown = file.display();
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read market file {shown}"))?;
            let market: MarketFile =
                toml::from_str(&text).with_context(|| format!("invalid market file {shown}"))?;
            Some(market)
        }
    };
    let registry = campaignd::agents::registry();
    let settings = registry.load(config).map_err(|problems| {
        anyhow::anyhow!(
            "the configuration has {} problem(s):\n{}",
            problems.0.len(),
            problems
                .0
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    // A goal without a start starts now, as the daemon would start it.
    let start = *goal.start.get_or_insert_with(chrono::Utc::now);
    if goal.deadline <= start {
        anyhow::bail!(
            "campaign file {path}: the deadline {} is not after the start {start}",
            goal.deadline
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let mut results = Vec::with_capacity(args.runs as usize);
    for k in 0..u64::from(args.runs) {
        let seed = args.seed.wrapping_add(k);
        let run = runtime.block_on(simulate(&settings, &registry, &goal, market.as_ref(), seed));
        results.push(run.with_context(|| format!("campaign file {path}, run with seed {seed}"))?);
    }
    if results.len() == 1 {
        print(&results[0])?;
    } else {
        print(&Runs {
            summary: summary(&results),
            runs: results,
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(runs: &[WhatIf]) -> Summary {
    let mut ratios: Vec<f64> = runs.iter().filter_map(|r| r.cpa_vs_oracle).collect();
    ratios.sort_by(f64::total_cmp);
    let median = match ratios.len() {
        0 => None,
        n if n % 2 == 1 => Some(ratios[n / 2]),
        n => Some(round_to((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0, 4)),
    };
    let share = |count: usize| count as f64 / runs.len().max(1) as f64;
    Summary {
        runs: runs.len(),
        median_cpa_vs_oracle: median,
        better_than_static: share(
            runs.iter()
                .filter(|r| r.cpa_vs_static.is_some_and(|x| x < 1.0))
                .count(),
        ),
        reached: share(runs.iter().filter(|r| r.reached_on_day.is_some()).count()),
        largest_move: runs.iter().map(|r| r.largest_move).fold(0.0, f64::max),
    }
}

fn print(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
