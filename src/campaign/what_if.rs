//! What-if runs: one campaign from its start to its deadline through the real agents, on a market
//! whose truth is known, with no clock wait; and what an oracle knowing that truth, and a plan that
//! never learns, would have done on the same market.
//!
//! The run is the campaign loop itself on a manual clock, stepped one day at a time: each day
//! waits only for the optimizer to have learned from the day before (a progress request queued
//! behind the day's batch). The baselines are expected values from the market's true rates:
//!
//! - the oracle spends the plan's daily budget every day, on the best static split between channels
//!   for the whole horizon (equal marginal return on the true curves), each channel's money on its
//!   best creative and segment (the highest true conversion rate; clicks do not depend on either);
//! - the static plan spends the plan's split every day with the traffic even over the approved
//!   variants, as a campaign that never learns would.
//!
//! Nobody answers approval requests in a what-if run, so it runs the campaign `autonomous`: what
//! the agents would decide alone (docs/approvals.md).
//!
//! campaignd's figures are what the simulated market delivered (binomial draws), up to the day the
//! target was reached or the deadline, and what its buys were worth in expectation on the true
//! rates. The comparisons use the expected figures, so that they judge the decisions, not the luck
//! of the draws; its cost per conversion is comparable with the baselines' because every day
//! spends the same daily budget.

use std::collections::BTreeMap;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::day_loop::CampaignLoop;
use super::options::LoopOptions;
use super::sim_market::{SimulationError, build_market, priors_from};
use crate::agents::Registry;
use crate::agents::decisions as kinds;
use crate::agents::ledger;
use crate::agents::messages::Arm;
use crate::agents::optimization::{GetProgress, Optimization};
use crate::agents::projection;
use crate::domain::approval::Autonomy;
use crate::domain::campaign::{Buy, CampaignGoal, Channel};
use crate::domain::money::{round_money, round_to};
use crate::domain::optimization::{ChannelBudget, ResponseCurve, allocate, moved};
use crate::kb::{Durability, KbError, KbOptions, KnowledgeBase};
use crate::market::{MarketError, MarketFile, MarketSimulator};
use crate::protocol::Origin;
use crate::runtime::{Agent, Clock, DeliveryError, Runtime, Services};
use crate::settings::{LiveSettings, Settings};

/// Why a what-if run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error("campaign {0} has no start; give it one (the run starts there)")]
    NoStart(String),
    #[error("day {day}: {error}")]
    Day { day: u32, error: String },
    #[error("the optimizer did not answer: {0}")]
    Optimizer(#[from] DeliveryError),
    #[error("cannot read the run's knowledge base: {0}")]
    Kb(#[from] KbError),
    #[error("{0}")]
    Market(#[from] SimulationError),
    #[error("the market's truth cannot be read: {0}")]
    Truth(#[from] MarketError),
    #[error("the campaign never started: no experiment was recorded")]
    NoExperiment,
    #[error("{0}")]
    Setup(String),
}

/// One what-if run, as `campaignd simulate` prints it. Money is in the campaign's currency,
/// rounded to its minor unit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhatIf {
    pub campaign: String,
    pub seed: u64,
    pub currency: String,
    pub target: u64,
    /// Days from the start to the deadline.
    pub days: u32,
    pub conversions: u64,
    pub spend: f64,
    /// Spend per conversion; `None` without a conversion.
    pub cpa: Option<f64>,
    /// The conversions campaignd's buys would bring in expectation, from the market's true rates:
    /// what its decisions were worth, without the luck of the day's draws.
    pub expected_conversions: f64,
    /// Spend per expected conversion: the figure compared with the baselines'.
    pub expected_cpa: Option<f64>,
    /// The day (from 0) the target was reached, `None` if it was not by the deadline.
    pub reached_on_day: Option<u32>,
    /// What was bought each day, by channel.
    pub allocation: Vec<DayAllocation>,
    /// The largest share of a day's budget one budget move handed between channels.
    pub largest_move: f64,
    pub oracle: Baseline,
    pub static_plan: Baseline,
    /// campaignd's expected CPA over the oracle's (1 is as good as knowing the truth).
    pub cpa_vs_oracle: Option<f64>,
    /// campaignd's expected CPA over the static plan's (below 1 is better than not learning).
    pub cpa_vs_static: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayAllocation {
    pub day: u32,
    pub spend: BTreeMap<Channel, f64>,
}

/// What a baseline would have done over the whole horizon, in expected values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Baseline {
    /// Its daily spend per channel.
    pub daily: BTreeMap<Channel, f64>,
    pub conversions: f64,
    pub spend: f64,
    pub cpa: Option<f64>,
    /// The oracle only: the best creative per channel and segment on day 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub best_creatives: Vec<BestCreative>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestCreative {
    pub channel: Channel,
    pub segment: String,
    pub variant: String,
    /// Its true conversions per click.
    pub cvr: f64,
}

/// One what-if run of `goal` on its own agents (`registry`'s, as `settings` define them), its own
/// throw-away knowledge base and a manual clock at the goal's start, all gone when it returns.
/// `market` states the truth; without it the market is the built-in simulator's for `seed`.
pub async fn simulate(
    settings: &Settings,
    registry: &Registry,
    goal: &CampaignGoal,
    market: Option<&MarketFile>,
    seed: u64,
) -> Result<WhatIf, WhatIfError> {
    let start = goal
        .start
        .ok_or_else(|| WhatIfError::NoStart(goal.id.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| {
        WhatIfError::Setup(format!("cannot make a folder for the knowledge base: {e}"))
    })?;
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options)?;
    let clock = Clock::manual(start);
    let settings = Arc::new(settings.clone());
    let services = Services::new()
        .with(kb.clone())
        .with(Arc::clone(&settings))
        .with(LiveSettings::new(Arc::clone(&settings)));
    let agents = Runtime::builder(registry.runtime().clone())
        .agents(registry.specs(&settings))
        .services(services)
        .clock(clock.clone())
        .start()
        .await
        .map_err(|e| WhatIfError::Setup(format!("cannot start the agents: {e}")))?;
    let priors = priors_from(&settings)
        .ok_or_else(|| WhatIfError::Setup("the strategy playbook in force is invalid".into()))?;
    let mut loop_options = LoopOptions::new(seed, priors);
    if let Some(market) = market {
        loop_options.markets.insert(goal.id.clone(), market.clone());
    }
    let alone = CampaignGoal {
        autonomy: Autonomy::Autonomous,
        ..goal.clone()
    };
    let result = run_what_if(&agents, &kb, &clock, alone, loop_options).await;
    agents.shutdown(Duration::from_secs(5)).await;
    let _ = kb.shutdown().await;
    result
}

/// Runs `goal` (which must have a start: the clock's time) from its start to its deadline on
/// `runtime`, whose clock is the manual `clock`, with `kb` empty and `options` as the market.
pub async fn run_what_if(
    runtime: &Runtime,
    kb: &KnowledgeBase,
    clock: &Clock,
    goal: CampaignGoal,
    options: LoopOptions,
) -> Result<WhatIf, WhatIfError> {
    let start = goal
        .start
        .ok_or_else(|| WhatIfError::NoStart(goal.id.to_string()))?;
    let days = u32::try_from((goal.deadline - start).num_days().max(1)).unwrap_or(u32::MAX);
    let client = runtime
        .client(Origin::Runtime)
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone());
    let mut campaign_loop = CampaignLoop::new(
        runtime.clone(),
        kb.clone(),
        vec![goal.clone()],
        options.clone(),
    );
    let mut bought: Vec<(u32, Vec<Buy>)> = Vec::new();
    // A day past the deadline lets the loop see that the campaign is over.
    for day in 0..=days.saturating_add(1) {
        for report in campaign_loop.step().await {
            if let Some(error) = report.error {
                return Err(WhatIfError::Day { day, error });
            }
            if let Some(tick) = report.tick.filter(|t| !t.buys.is_empty()) {
                bought.push((report.day, tick.buys));
            }
        }
        // Queued behind the day's batch: once it answers, the optimizer has learned from it.
        client
            .request(Optimization::NAME, GetProgress { goal: goal.clone() })
            .await?;
        if campaign_loop.finished() {
            break;
        }
        let _ = clock.advance(options.day);
    }
    let standing = client
        .request(Optimization::NAME, GetProgress { goal: goal.clone() })
        .await?;
    let decisions = kb
        .decisions_by_campaign(&ledger::scope(&goal), &goal.id)?
        .records;
    let reached_on_day = decisions
        .iter()
        .find_map(projection::inputs::<kinds::GoalAchieved>)
        .map(|i| i.day);
    let largest_move = decisions
        .iter()
        .filter_map(projection::decode::<kinds::Allocation>)
        .filter(|(inputs, _)| inputs.day.is_some())
        .map(|(inputs, choice)| {
            let total: f64 = inputs.before.values().sum();
            let moved = moved(&inputs.before, &choice.daily);
            if total > 0.0 { moved / total } else { 0.0 }
        })
        .fold(0.0, f64::max);
    let planned = decisions
        .iter()
        .filter_map(projection::decode::<kinds::Experiment>)
        .find(|(inputs, _)| inputs.attempt == 0)
        .map(|(_, choice)| choice.daily)
        .ok_or(WhatIfError::NoExperiment)?;
    let market = build_market(kb, &goal, &options)?;
    let arms = projection::experiment_arms(&decisions);
    let currency = goal.budget.currency.as_str();
    let cvrs = true_cvrs(&market, &arms, planned.keys().copied(), days)?;
    let oracle = oracle(&market, &planned, days, &cvrs);
    let static_plan = static_plan(&market, &planned, days, &cvrs);
    let progress = standing.progress;
    let cpa = (progress.conversions > 0).then(|| progress.spend / progress.conversions as f64);
    let expected_conversions = bought
        .iter()
        .map(|(day, buys)| expected_of_buys(&market, *day, buys))
        .sum::<Result<f64, MarketError>>()?;
    let spent: f64 = bought.iter().flat_map(|(_, b)| b).map(|b| b.spend).sum();
    let expected_cpa = (expected_conversions > 0.0).then(|| spent / expected_conversions);
    let ratio = |baseline: &Baseline| Some(expected_cpa? / baseline.cpa?);
    Ok(WhatIf {
        campaign: goal.id.to_string(),
        seed: options.seed,
        currency: currency.to_owned(),
        target: goal.target,
        days,
        conversions: progress.conversions,
        spend: round_money(progress.spend, currency),
        cpa: cpa.map(|c| round_money(c, currency)),
        expected_conversions: round_to(expected_conversions, 2),
        expected_cpa: expected_cpa.map(|c| round_money(c, currency)),
        reached_on_day,
        allocation: bought
            .iter()
            .map(|(day, buys)| DayAllocation {
                day: *day,
                spend: spend_by_channel(buys)
                    .into_iter()
                    .map(|(c, s)| (c, round_money(s, currency)))
                    .collect(),
            })
            .collect(),
        largest_move: round_to(largest_move, 4),
        cpa_vs_oracle: ratio(&oracle).map(|r| round_to(r, 4)),
        cpa_vs_static: ratio(&static_plan).map(|r| round_to(r, 4)),
        oracle: oracle.rounded(currency),
        static_plan: static_plan.rounded(currency),
    })
}

impl Baseline {
    fn of(daily: BTreeMap<Channel, f64>, days: u32, conversions: f64) -> Self {
        let spend = daily.values().sum::<f64>() * f64::from(days);
        Baseline {
            daily,
            conversions,
            spend,
            cpa: (conversions > 0.0).then(|| spend / conversions),
            best_creatives: Vec::new(),
        }
    }

    fn rounded(mut self, currency: &str) -> Self {
        self.daily
            .values_mut()
            .for_each(|s| *s = round_money(*s, currency));
        self.spend = round_money(self.spend, currency);
        self.cpa = self.cpa.map(|c| round_money(c, currency));
        self.conversions = round_to(self.conversions, 2);
        self.best_creatives
            .iter_mut()
            .for_each(|b| b.cvr = round_to(b.cvr, 6));
        self
    }
}

/// The true conversions per click of each channel's (segment, variant) placements, by channel and
/// day.
type Cvrs<'a> = BTreeMap<(Channel, u32), Vec<(&'a str, &'a str, f64)>>;

fn true_cvrs<'a>(
    market: &MarketSimulator,
    arms: &'a [Arm],
    channels: impl Iterator<Item = Channel>,
    days: u32,
) -> Result<Cvrs<'a>, MarketError> {
    let mut cvrs = Cvrs::new();
    for channel in channels {
        for day in 0..days {
            let mut of_day = Vec::new();
            for arm in arms.iter().filter(|a| a.channel == channel) {
                let rates = market.true_rates(channel, &arm.segment, &arm.variant, day)?;
                of_day.push((arm.segment.as_str(), arm.variant.as_str(), rates.cvr));
            }
            cvrs.insert((channel, day), of_day);
        }
    }
    Ok(cvrs)
}

/// The best rate of a channel on a day, or the mean over its placements.
fn best(cvrs: &Cvrs, channel: Channel, day: u32) -> f64 {
    cvrs.get(&(channel, day))
        .map_or(0.0, |c| c.iter().map(|x| x.2).fold(0.0, f64::max))
}

fn mean(cvrs: &Cvrs, channel: Channel, day: u32) -> f64 {
    match cvrs.get(&(channel, day)) {
        Some(c) if !c.is_empty() => c.iter().map(|x| x.2).sum::<f64>() / c.len() as f64,
        _ => 0.0,
    }
}

/// A day's buys summed per channel.
fn spend_by_channel(buys: &[Buy]) -> BTreeMap<Channel, f64> {
    let mut per_channel = BTreeMap::new();
    for buy in buys {
        *per_channel.entry(buy.channel).or_insert(0.0) += buy.spend;
    }
    per_channel
}

/// The conversions one day's buys bring in expectation: each channel's clicks for its day's
/// spend, shared in proportion to spend, times each buy's true conversion rate.
fn expected_of_buys(market: &MarketSimulator, day: u32, buys: &[Buy]) -> Result<f64, MarketError> {
    let per_channel = spend_by_channel(buys);
    let mut total = 0.0;
    for buy in buys {
        let channel_spend = per_channel.get(&buy.channel).copied().unwrap_or(0.0);
        if channel_spend <= 0.0 {
            continue;
        }
        let clicks =
            market.expected_clicks(buy.channel, channel_spend)? * buy.spend / channel_spend;
        let rates = market.true_rates(buy.channel, &buy.segment, &buy.variant, day)?;
        total += clicks * rates.cvr;
    }
    Ok(total)
}

/// Expected conversions of a day's `spend` on `channel` at conversion rate `cvr`.
fn converted(market: &MarketSimulator, channel: Channel, spend: f64, cvr: f64) -> f64 {
    market
        .expected_clicks(channel, spend)
        .map_or(0.0, |clicks| clicks * cvr)
}

fn oracle(
    market: &MarketSimulator,
    planned: &BTreeMap<Channel, f64>,
    days: u32,
    cvrs: &Cvrs,
) -> Baseline {
    let channels: Vec<Channel> = planned.keys().copied().collect();
    let mut best_creatives = Vec::new();
    for &channel in &channels {
        let mut by_segment: BTreeMap<&str, (&str, f64)> = BTreeMap::new();
        for &(segment, variant, cvr) in cvrs.get(&(channel, 0)).into_iter().flatten() {
            let entry = by_segment.entry(segment).or_insert((variant, cvr));
            if cvr > entry.1 {
                *entry = (variant, cvr);
            }
        }
        best_creatives.extend(by_segment.into_iter().map(|(segment, (variant, cvr))| {
            BestCreative {
                channel,
                segment: segment.to_owned(),
                variant: variant.to_owned(),
                cvr,
            }
        }));
    }
    // Clicks are (b/cpc)·ln(1 + x/b), so a channel's conversions over the horizon at a static
    // daily x are Σ_d cvr_d·(b/cpc)·ln(1 + x/b): a log curve with the mean best rate.
    let budgets: Vec<ChannelBudget> = channels
        .iter()
        .map(|&channel| {
            let spec = market.spec().channels.iter().find(|c| c.channel == channel);
            let (b, cpc) = spec.map_or((1.0, 1.0), |c| (c.saturation_spend, c.cpc));
            let rate =
                (0..days).map(|d| best(cvrs, channel, d)).sum::<f64>() / f64::from(days.max(1));
            ChannelBudget::new(ResponseCurve::log(b / cpc * rate, b))
        })
        .collect();
    let total: f64 = planned.values().sum();
    let split = allocate(&budgets, total).unwrap_or_else(|_| planned.values().copied().collect());
    let daily: BTreeMap<Channel, f64> = channels.iter().copied().zip(split).collect();
    let conversions = expected(market, &daily, days, |channel, day| {
        best(cvrs, channel, day)
    });
    Baseline {
        best_creatives,
        ..Baseline::of(daily, days, conversions)
    }
}

fn static_plan(
    market: &MarketSimulator,
    planned: &BTreeMap<Channel, f64>,
    days: u32,
    cvrs: &Cvrs,
) -> Baseline {
    let conversions = expected(market, planned, days, |channel, day| {
        mean(cvrs, channel, day)
    });
    Baseline::of(planned.clone(), days, conversions)
}

/// Expected conversions of spending `daily` every day for `days` days at the rate `cvr` gives.
fn expected(
    market: &MarketSimulator,
    daily: &BTreeMap<Channel, f64>,
    days: u32,
    cvr: impl Fn(Channel, u32) -> f64,
) -> f64 {
    (0..days)
        .map(|day| {
            daily
                .iter()
                .map(|(&channel, &spend)| converted(market, channel, spend, cvr(channel, day)))
                .sum::<f64>()
        })
        .sum()
}
