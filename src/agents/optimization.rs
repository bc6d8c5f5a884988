//! The optimization agent: runs each campaign's experiment. On every batch of observations it
//! updates the posteriors of the approved variants, splits traffic between them by Thompson
//! sampling (seeded per campaign and day, seed recorded), moves budget between channels toward the
//! highest marginal return, watches the leading variants for drift and re-opens exploration when one
//! drops, breeds the next generation of creative combinations, and forecasts when the goal will be met.
//!
//! Its working state is rebuilt from the knowledge base (its own decisions and the campaign's
//! observations) the first time a campaign is touched after a start, so a restart loses nothing
//! learned. It only ever sees observations, never the market's true rates, and it never buys
//! anything itself: the orchestrator asks it for the day's buys.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ledger::{self, Draft};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::content::{LevelChoice, Variant};
use crate::domain::optimization::{
    ArmStats, ChannelBudget, CreativeSpace, Forecast, Genome, OptimizationPlaybook, ResponseCurve,
    allocate, decision_seed, forecast_daily, genetic_step, reopen_exploration, traffic_split,
};
use crate::kb::{DecisionId, KnowledgeBase, OutcomeId};
use crate::market::{Buy, Observation};
use crate::protocol::{CampaignId, Envelope, Payload};
use crate::runtime::{
    Agent, AgentError, Context, HandleCommand, HandleEvent, HandleRequest, Request, Routes,
    StartContext,
};

/// The topic ingestion publishes each recorded batch on.
pub const OBSERVATIONS_TOPIC: &str = "observations_recorded";

/// One approved variant as the experiment knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    pub variant: String,
    pub channel: Channel,
    pub segment: String,
    pub levels: Vec<LevelChoice>,
}

impl Arm {
    pub fn of(variant: &Variant) -> Self {
        Arm {
            variant: variant.id.clone(),
            channel: variant.channel,
            segment: variant.segment.clone(),
            levels: variant.levels.clone(),
        }
    }
}

/// Start (attempt 0) or re-budget (a re-plan) a campaign's experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartExperiment {
    pub goal: CampaignGoal,
    pub attempt: u32,
    pub arms: Vec<Arm>,
    /// Planned spend per channel and day.
    pub daily: BTreeMap<Channel, f64>,
    /// The plan's response curve per channel (daily conversions ≈ a·ln(1 + spend/b)).
    pub curves: BTreeMap<Channel, ResponseCurve>,
    /// The plan decision this follows from.
    pub plan: DecisionId,
}

impl Payload for StartExperiment {
    const ACTION: &'static str = "start_experiment";
}

impl Request for StartExperiment {
    type Response = ExperimentStarted;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExperimentStarted {
    pub decision: DecisionId,
}

impl Payload for ExperimentStarted {
    const ACTION: &'static str = "experiment_started";
}

/// Where the campaign is, for the orchestrator's phases and the decision to buy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Explore,
    Optimize,
    Stabilize,
}

impl Phase {
    /// < 30 % of the goal: explore; 30–70 %: optimize; > 70 %: stabilize.
    pub fn of_progress(progress: f64) -> Phase {
        if progress < 0.3 {
            Phase::Explore
        } else if progress <= 0.7 {
            Phase::Optimize
        } else {
            Phase::Stabilize
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Explore => "explore",
            Phase::Optimize => "optimize",
            Phase::Stabilize => "stabilize",
        }
    }
}

/// The day's buys for a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanBuys {
    pub goal: CampaignGoal,
    pub day: u32,
    pub phase: Phase,
}

impl Payload for PlanBuys {
    const ACTION: &'static str = "plan_buys";
}

impl Request for PlanBuys {
    type Response = Buys;
}

/// Money per channel × segment × variant for the day.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Buys {
    pub buys: Vec<Buy>,
}

impl Payload for Buys {
    const ACTION: &'static str = "buys";
}

/// How far a campaign is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetProgress {
    pub goal: CampaignGoal,
}

impl Payload for GetProgress {
    const ACTION: &'static str = "get_progress";
}

impl Request for GetProgress {
    type Response = Progress;
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    pub started: bool,
    pub conversions: u64,
    pub spend: f64,
    /// Days with observations.
    pub days: u32,
    pub forecast: Option<Forecast>,
}

impl Payload for Progress {
    const ACTION: &'static str = "progress";
}

/// A recorded batch of observations (published by ingestion).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservationsRecorded {
    pub goal: CampaignGoal,
    pub day: u32,
    pub observations: Vec<Observation>,
    /// The outcome each observation was recorded as, in the same order.
    pub outcomes: Vec<OutcomeId>,
}

impl Payload for ObservationsRecorded {
    const ACTION: &'static str = "observations_recorded";
}

/// An order to re-open exploration (from the orchestrator or an operator).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reexplore {
    pub campaign: CampaignId,
    pub why: String,
}

impl Payload for Reexplore {
    const ACTION: &'static str = "reexplore";
}

#[derive(Clone, Debug, Default)]
struct ArmState {
    arm: Option<Arm>,
    /// What the posterior is built from (shrunk when exploration re-opens).
    stats: ArmStats,
    /// Raw per-day counts, for drift windows.
    daily: BTreeMap<u32, ArmStats>,
}

#[derive(Clone, Debug)]
struct Experiment {
    goal: CampaignGoal,
    arms: BTreeMap<String, ArmState>,
    daily: BTreeMap<Channel, f64>,
    curves: BTreeMap<Channel, ResponseCurve>,
    shares: BTreeMap<String, f64>,
    conversions_by_day: BTreeMap<u32, u64>,
    spend: f64,
    spend_by_channel: BTreeMap<Channel, (f64, u64)>,
    /// Days whose batch was learned from (their decisions are made once).
    seen_days: std::collections::BTreeSet<u32>,
    /// Observations folded in, by outcome id: a replayed batch is not counted twice, and a late
    /// batch for a day already learned from is still counted (for the days after it).
    folded: std::collections::HashSet<OutcomeId>,
    /// Exploration is forced up to this day after drift.
    explore_until: Option<u32>,
}

pub struct Optimization {
    kb: Arc<KnowledgeBase>,
    playbook: ledger::LivePlaybook<OptimizationPlaybook>,
    experiments: BTreeMap<CampaignId, Experiment>,
}

impl Agent for Optimization {
    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        let playbook = ledger::LivePlaybook::load(
            &ctx.services,
            "optimization",
            |t| OptimizationPlaybook::from_table(t).map_err(|e| e.to_string()),
            || OptimizationPlaybook::embedded().map_err(|e| e.to_string()),
        )
        .map_err(AgentError::msg)?;
        Ok(Optimization {
            kb,
            playbook,
            experiments: BTreeMap::new(),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<StartExperiment>()
            .request::<PlanBuys>()
            .request::<GetProgress>()
            .event::<ObservationsRecorded>()
            .command::<Reexplore>();
    }
}

impl Optimization {
    /// The campaign's experiment, rebuilt from the knowledge base when it is not in memory.
    fn experiment(&mut self, goal: &CampaignGoal) -> Result<Option<&mut Experiment>, AgentError> {
        if !self.experiments.contains_key(&goal.id)
            && let Some(rebuilt) = rebuild(&self.kb, goal)?
        {
            self.experiments.insert(goal.id.clone(), rebuilt);
        }
        Ok(self.experiments.get_mut(&goal.id))
    }
}

/// Rebuilds an experiment from its decisions and the campaign's observations in the knowledge base.
fn rebuild(kb: &KnowledgeBase, goal: &CampaignGoal) -> Result<Option<Experiment>, AgentError> {
    let found = kb
        .by_campaign(&ledger::scope(goal), &goal.id)
        .map_err(AgentError::msg)?;
    // A day is complete once its forecast is recorded (the last step of a batch); observations of
    // a day the agent did not finish are folded when that batch is delivered again.
    let completed: std::collections::BTreeSet<u32> = found
        .records
        .iter()
        .filter_map(|r| r.as_decision())
        .filter(|d| d.agent.as_str() == "optimization" && d.kind == "forecast")
        .filter_map(|d| d.inputs.get("day").and_then(|v| v.as_u64()))
        .filter_map(|d| u32::try_from(d).ok())
        .collect();
    let mut experiment: Option<Experiment> = None;
    for record in &found.records {
        if let Some(decision) = record.as_decision() {
            if decision.agent.as_str() != "optimization" {
                continue;
            }
            match decision.kind.as_str() {
                "experiment" => {
                    let arms: Vec<Arm> = decision
                        .choice
                        .get("arms")
                        .and_then(|a| serde_json::from_value(a.clone()).ok())
                        .unwrap_or_default();
                    let daily = field(&decision.choice, "daily").unwrap_or_default();
                    let curves = field(&decision.choice, "curves").unwrap_or_default();
                    let exp = experiment.get_or_insert_with(|| Experiment::new(goal.clone()));
                    exp.set_arms(&arms);
                    exp.daily = daily;
                    exp.curves = curves;
                }
                "allocation" => {
                    if let (Some(exp), Some(daily)) =
                        (experiment.as_mut(), field(&decision.choice, "daily"))
                    {
                        exp.daily = daily;
                    }
                }
                "traffic_split" => {
                    if let (Some(exp), Some(shares)) = (
                        experiment.as_mut(),
                        field::<BTreeMap<String, f64>>(&decision.choice, "shares"),
                    ) {
                        exp.shares.extend(shares);
                    }
                }
                "drift" => {
                    if let Some(exp) = experiment.as_mut() {
                        let until = decision
                            .choice
                            .get("explore_until")
                            .and_then(|d| d.as_u64())
                            .and_then(|d| u32::try_from(d).ok());
                        exp.explore_until = until;
                        let keep = decision
                            .choice
                            .get("keep")
                            .and_then(|k| k.as_f64())
                            .unwrap_or(0.1);
                        exp.reopen(keep);
                    }
                }
                _ => {}
            }
        } else if let Some(outcome) = record.as_outcome()
            && outcome.kind == "observation"
            && let Some(exp) = experiment.as_mut()
            && let Some(day) = outcome.metrics.get("day").and_then(|d| d.as_u64())
            && let Ok(day) = u32::try_from(day)
            && completed.contains(&day)
            && let Some(obs) = outcome
                .metrics
                .get("observation")
                .and_then(|o| serde_json::from_value::<Observation>(o.clone()).ok())
        {
            exp.fold(day, &obs);
            exp.folded.insert(outcome.id);
        }
    }
    if let Some(exp) = experiment.as_mut() {
        exp.seen_days = completed;
    }
    Ok(experiment)
}

fn field<T: serde::de::DeserializeOwned>(value: &serde_json::Value, key: &str) -> Option<T> {
    value
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

impl Experiment {
    fn new(goal: CampaignGoal) -> Self {
        Experiment {
            goal,
            arms: BTreeMap::new(),
            daily: BTreeMap::new(),
            curves: BTreeMap::new(),
            shares: BTreeMap::new(),
            conversions_by_day: BTreeMap::new(),
            spend: 0.0,
            spend_by_channel: BTreeMap::new(),
            seen_days: Default::default(),
            folded: Default::default(),
            explore_until: None,
        }
    }

    fn set_arms(&mut self, arms: &[Arm]) {
        for arm in arms {
            self.arms.entry(arm.variant.clone()).or_default().arm = Some(arm.clone());
        }
    }

    /// Folds one observation into the counts (conversions per impression is the arm's rate).
    fn fold(&mut self, day: u32, obs: &Observation) {
        let conversions = u64::try_from(obs.conversions).unwrap_or(0);
        let impressions = u64::try_from(obs.impressions).unwrap_or(0);
        let state = self.arms.entry(obs.variant.clone()).or_default();
        state.stats.successes += conversions;
        state.stats.trials += impressions;
        let day_stats = state.daily.entry(day).or_default();
        day_stats.successes += conversions;
        day_stats.trials += impressions;
        *self.conversions_by_day.entry(day).or_default() += conversions;
        self.spend += obs.spend;
        let by_channel = self.spend_by_channel.entry(obs.channel).or_default();
        by_channel.0 += obs.spend;
        by_channel.1 += conversions;
    }

    fn reopen(&mut self, keep: f64) {
        let ids: Vec<String> = self.arms.keys().cloned().collect();
        let mut stats: Vec<ArmStats> = ids
            .iter()
            .filter_map(|id| self.arms.get(id).map(|s| s.stats))
            .collect();
        reopen_exploration(&mut stats, keep);
        for (id, s) in ids.iter().zip(stats) {
            if let Some(state) = self.arms.get_mut(id) {
                state.stats = s;
            }
        }
    }

    fn cumulative(&self) -> Vec<f64> {
        let Some(&last) = self.conversions_by_day.keys().next_back() else {
            return Vec::new();
        };
        let mut total = 0.0;
        (0..=last)
            .map(|d| {
                total += self.conversions_by_day.get(&d).copied().unwrap_or(0) as f64;
                total
            })
            .collect()
    }

    fn progress(&self) -> Progress {
        let cumulative = self.cumulative();
        let conversions = cumulative.last().copied().unwrap_or(0.0) as u64;
        Progress {
            started: true,
            conversions,
            spend: self.spend,
            days: u32::try_from(cumulative.len()).unwrap_or(u32::MAX),
            forecast: forecast_daily(&cumulative, self.goal.target as f64).ok(),
        }
    }

    fn arms_of(&self, channel: Channel) -> Vec<(String, ArmStats)> {
        self.arms
            .iter()
            .filter(|(_, s)| s.arm.as_ref().is_some_and(|a| a.channel == channel))
            .map(|(id, s)| (id.clone(), s.stats))
            .collect()
    }
}

impl HandleRequest<StartExperiment> for Optimization {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<StartExperiment>,
    ) -> Result<ExperimentStarted, AgentError> {
        let p = &request.payload;
        let kb = Arc::clone(&self.kb);
        let exp = match self.experiment(&p.goal)? {
            Some(exp) => exp,
            None => self
                .experiments
                .entry(p.goal.id.clone())
                .or_insert_with(|| Experiment::new(p.goal.clone())),
        };
        exp.set_arms(&p.arms);
        exp.daily = p.daily.clone();
        exp.curves = p.curves.clone();
        let mut draft = Draft::new("experiment", format!("experiment/{}", p.attempt))
            .inputs(serde_json::json!({ "plan": p.plan, "attempt": p.attempt }))
            .choice(serde_json::json!({ "arms": p.arms, "daily": p.daily, "curves": p.curves }))
            .confidence(0.5);
        for arm in &p.arms {
            draft = draft.alternative(
                &arm.variant,
                1.0,
                Some(format!("{} / {}", arm.channel, arm.segment)),
            );
        }
        draft = draft.reason(format!(
            "{} approved variants enter the test with even shares per channel; daily budget {}",
            p.arms.len(),
            p.daily
                .iter()
                .map(|(c, s)| format!("{c} {s:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let decision = ledger::record(&kb, ctx, &request, &p.goal, draft).await?;
        // A channel whose every variant was blocked would keep its budget unspent (and the
        // allocation could even move everything there): hand its budget to the funded channels.
        if let Some(handoff) = hand_off_unfunded(exp) {
            let draft = Draft::new("allocation", format!("allocation/unfunded/{}", p.attempt))
                .inputs(serde_json::json!({ "attempt": p.attempt, "before": exp.daily, "unfunded": handoff.unfunded }))
                .choice(serde_json::json!({ "daily": handoff.daily }))
                .reason(format!(
                    "no approved variant on {}: its {:.0} a day goes to {} in proportion to their planned budgets ({})",
                    handoff.unfunded.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                    handoff.moved,
                    handoff.funded.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                    handoff.daily.iter().map(|(c, s)| format!("{c} {s:.0}")).collect::<Vec<_>>().join(", ")
                ))
                .confidence(1.0);
            ledger::record(&kb, ctx, &request, &p.goal, draft).await?;
            exp.daily = handoff.daily;
        }
        Ok(ExperimentStarted {
            decision: decision.id,
        })
    }
}

/// The daily budget of channels without any approved variant, handed to the channels that have
/// some.
struct Handoff {
    unfunded: Vec<Channel>,
    funded: Vec<Channel>,
    moved: f64,
    daily: BTreeMap<Channel, f64>,
}

/// `None` when every budgeted channel has a variant, or when none has (nothing to hand to).
fn hand_off_unfunded(exp: &Experiment) -> Option<Handoff> {
    let (funded, unfunded): (Vec<Channel>, Vec<Channel>) = exp
        .daily
        .iter()
        .filter(|(_, spend)| **spend > 0.0)
        .map(|(channel, _)| *channel)
        .partition(|channel| !exp.arms_of(*channel).is_empty());
    if unfunded.is_empty() || funded.is_empty() {
        return None;
    }
    let moved: f64 = unfunded.iter().filter_map(|c| exp.daily.get(c)).sum();
    let base: f64 = funded.iter().filter_map(|c| exp.daily.get(c)).sum();
    let mut daily = BTreeMap::new();
    for (&channel, &spend) in &exp.daily {
        let new = if funded.contains(&channel) {
            spend + moved * spend / base
        } else {
            0.0
        };
        daily.insert(channel, new);
    }
    Some(Handoff {
        unfunded,
        funded,
        moved,
        daily,
    })
}

impl HandleRequest<GetProgress> for Optimization {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<GetProgress>,
    ) -> Result<Progress, AgentError> {
        Ok(self
            .experiment(&request.payload.goal)?
            .map(|e| e.progress())
            .unwrap_or_default())
    }
}

impl HandleRequest<PlanBuys> for Optimization {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<PlanBuys>,
    ) -> Result<Buys, AgentError> {
        let PlanBuys { goal, day, phase } = &request.payload;
        let Some(exp) = self.experiment(goal)? else {
            return Ok(Buys::default());
        };
        let exploring = exp.explore_until.is_some_and(|until| *day <= until);
        let mut buys = Vec::new();
        for (&channel, &spend) in &exp.daily {
            let arms = exp.arms_of(channel);
            if arms.is_empty() || spend <= 0.0 {
                continue;
            }
            let even = 1.0 / arms.len() as f64;
            let raw: Vec<f64> = arms
                .iter()
                .map(|(id, _)| exp.shares.get(id).copied().unwrap_or(even))
                .collect();
            // The phase decides how much the split leans on the posterior: explore mixes in an
            // even split, stabilize sharpens toward the leader.
            let weights: Vec<f64> = raw
                .iter()
                .map(|&s| match (phase, exploring) {
                    (_, true) | (Phase::Explore, _) => 0.5 * s + 0.5 * even,
                    (Phase::Optimize, _) => 0.9 * s + 0.1 * even,
                    (Phase::Stabilize, _) => s * s,
                })
                .collect();
            let total: f64 = weights.iter().sum();
            for ((id, _), w) in arms.iter().zip(weights) {
                let share = if total > 0.0 { w / total } else { even };
                let Some(arm) = exp.arms.get(id).and_then(|s| s.arm.as_ref()) else {
                    continue;
                };
                buys.push(Buy {
                    channel,
                    segment: arm.segment.clone(),
                    variant: id.clone(),
                    spend: spend * share,
                });
            }
        }
        Ok(Buys { buys })
    }
}

impl HandleEvent<ObservationsRecorded> for Optimization {
    async fn handle_event(
        &mut self,
        ctx: &Context,
        event: Envelope<ObservationsRecorded>,
    ) -> Result<(), AgentError> {
        let kb = Arc::clone(&self.kb);
        self.playbook.refresh(ctx.services());
        let playbook = self.playbook.get().clone();
        let ObservationsRecorded {
            goal,
            day,
            observations,
            outcomes,
        } = &event.payload;
        let day = *day;
        let Some(exp) = self.experiment(goal)? else {
            return Ok(());
        };
        // Fold what is new: a rebuilt experiment already holds a batch recorded before a restart.
        let mut new = 0;
        for (obs, outcome) in observations.iter().zip(outcomes) {
            if exp.folded.insert(*outcome) {
                exp.fold(day, obs);
                new += 1;
            }
        }
        // A day's decisions are made once, on its first batch; a later batch of the same day (a
        // second export, a late correction) is counted above and shapes the next day's decisions.
        if !exp.seen_days.insert(day) {
            if new > 0 {
                tracing::info!(campaign = %goal.id, day, observations = new, "late observations counted; the day's decisions stand");
            }
            return Ok(());
        }

        // 1. Traffic split per channel.
        let channels: Vec<Channel> = exp.daily.keys().copied().collect();
        for channel in &channels {
            let arms = exp.arms_of(*channel);
            if arms.is_empty() {
                continue;
            }
            let stats: Vec<ArmStats> = arms.iter().map(|(_, s)| *s).collect();
            let seed = decision_seed(&format!("{}/{channel}", goal.id), u64::from(day));
            let Ok(split) = traffic_split(&stats, playbook.split_draws.max(1), seed) else {
                continue;
            };
            let mut draft = Draft::new("traffic_split", format!("split/day/{day}/{channel}"));
            let mut shares = BTreeMap::new();
            for ((id, s), share) in arms.iter().zip(&split.shares) {
                shares.insert(id.clone(), *share);
                draft = draft.alternative(
                    id,
                    *share,
                    Some(format!(
                        "{} conversions in {} impressions, posterior mean {:.4} %",
                        s.successes,
                        s.trials,
                        s.posterior_mean() * 100.0
                    )),
                );
            }
            let leader = arms
                .iter()
                .zip(&split.shares)
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|((id, _), share)| (id.clone(), *share));
            draft = draft
                .inputs(serde_json::json!({ "day": day, "channel": channel, "outcomes": outcomes }))
                .choice(serde_json::json!({ "shares": shares, "seed": split.seed, "draws": split.draws }))
                .reason(match &leader {
                    Some((id, share)) => format!(
                        "Thompson sampling over {} variants on {channel} ({} joint draws, seed {}): {id} is best with probability {:.0} % and gets that share",
                        arms.len(), split.draws, split.seed, share * 100.0
                    ),
                    None => "no variants".to_owned(),
                })
                .confidence(leader.map_or(0.0, |l| l.1));
            ledger::record(&kb, ctx, &event, goal, draft).await?;
            exp.shares.extend(shares);
        }

        // 2. Drift: each channel's leading variant, and the channel as a whole (a market shift
        // shows there first, with far more evidence than any one variant has), the last window
        // against the days before it.
        let window = playbook.drift_window_days.max(1);
        for channel in &channels {
            if exp.explore_until.is_some_and(|u| day <= u) {
                break;
            }
            let leader = exp
                .arms_of(*channel)
                .into_iter()
                .max_by(|a, b| {
                    let sa = exp.shares.get(&a.0).copied().unwrap_or(0.0);
                    let sb = exp.shares.get(&b.0).copied().unwrap_or(0.0);
                    sa.total_cmp(&sb)
                })
                .map(|(id, _)| id);
            let from = day.saturating_sub(window - 1);
            let mut candidates: Vec<(String, ArmStats, ArmStats)> = Vec::new();
            let (mut all_base, mut all_recent) = (ArmStats::default(), ArmStats::default());
            for (id, state) in &exp.arms {
                if state.arm.as_ref().is_none_or(|a| a.channel != *channel) {
                    continue;
                }
                let (mut baseline, mut recent) = (ArmStats::default(), ArmStats::default());
                for (&d, s) in &state.daily {
                    let target = if d >= from {
                        &mut recent
                    } else {
                        &mut baseline
                    };
                    target.successes += s.successes;
                    target.trials += s.trials;
                }
                all_base.successes += baseline.successes;
                all_base.trials += baseline.trials;
                all_recent.successes += recent.successes;
                all_recent.trials += recent.trials;
                if leader.as_deref() == Some(id.as_str()) {
                    candidates.push((format!("leading variant {id}"), baseline, recent));
                }
            }
            candidates.push((format!("every variant on {channel}"), all_base, all_recent));
            for (what, baseline, recent) in candidates {
                if baseline.trials == 0 {
                    continue;
                }
                let Ok(check) = playbook.drift.check(baseline, recent) else {
                    continue;
                };
                if !check.drifted {
                    continue;
                }
                let until = day.saturating_add(window);
                let draft = Draft::new("drift", format!("drift/day/{day}/{channel}"))
                    .inputs(serde_json::json!({
                        "watched": what, "channel": channel, "baseline": baseline, "recent": recent,
                        "window_days": window,
                    }))
                    .alternative("reexplore", 1.0 - check.p_value, Some(check.reason.clone()))
                    .alternative("keep exploiting", check.p_value, None)
                    .choice(serde_json::json!({
                        "reexplore": true, "watched": what, "explore_until": until, "keep": playbook.explore_keep,
                    }))
                    .reason(format!(
                        "drift on {channel}: the {what}'s {}; exploration re-opened until day {until}, keeping {:.0} % of the evidence",
                        check.reason,
                        playbook.explore_keep * 100.0
                    ))
                    .confidence(1.0 - check.p_value);
                ledger::record(&kb, ctx, &event, goal, draft).await?;
                exp.reopen(playbook.explore_keep);
                exp.explore_until = Some(until);
                break;
            }
        }

        // 3. Budget between channels: the plan's response curves, scaled by each channel's observed
        // return against the curve's prediction, allocated for equal marginal return.
        // Only channels with variants to buy take part: money moved to a channel without any
        // would never be spent, and the campaign would stall.
        let funded: Vec<Channel> = channels
            .iter()
            .copied()
            .filter(|c| !exp.arms_of(*c).is_empty())
            .collect();
        let total: f64 = exp.daily.values().sum();
        if total > 0.0 && funded.len() > 1 {
            let mut budgets = Vec::new();
            let mut notes = Vec::new();
            for channel in &funded {
                let curve = exp
                    .curves
                    .get(channel)
                    .copied()
                    .unwrap_or(ResponseCurve { a: 1.0, b: 1.0 });
                let (spent, conversions) = exp
                    .spend_by_channel
                    .get(channel)
                    .copied()
                    .unwrap_or((0.0, 0));
                let days = f64::from(exp.seen_days.len().max(1) as u32);
                let predicted = curve.value(spent / days) * days;
                // Shrink toward the plan until there is evidence (20 predicted conversions).
                let weight = predicted / (predicted + 20.0);
                let ratio = if predicted > 0.0 {
                    (1.0 - weight) + weight * (conversions as f64 / predicted)
                } else {
                    1.0
                };
                let ratio = ratio.clamp(0.05, 20.0);
                budgets.push(ChannelBudget::new(curve.a * ratio, curve.b));
                notes.push((*channel, conversions, predicted, ratio));
            }
            if let Ok(spend) = allocate(&budgets, total) {
                let mut new: BTreeMap<Channel, f64> = channels.iter().map(|c| (*c, 0.0)).collect();
                new.extend(funded.iter().copied().zip(spend));
                let moved: f64 = new
                    .iter()
                    .map(|(c, s)| (s - exp.daily.get(c).copied().unwrap_or(0.0)).abs())
                    .sum::<f64>()
                    / 2.0;
                if moved > 0.05 * total {
                    let mut draft = Draft::new("allocation", format!("allocation/day/{day}"));
                    for ((channel, conversions, predicted, ratio), b) in notes.iter().zip(&budgets)
                    {
                        draft = draft.alternative(
                            channel,
                            b.curve.marginal(new.get(channel).copied().unwrap_or(0.0)),
                            Some(format!(
                                "{conversions} conversions against {predicted:.1} predicted (return × {ratio:.2}); {:.0} → {:.0} a day",
                                exp.daily.get(channel).copied().unwrap_or(0.0),
                                new.get(channel).copied().unwrap_or(0.0)
                            )),
                        );
                    }
                    draft = draft
                        .inputs(serde_json::json!({ "day": day, "before": exp.daily, "outcomes": outcomes }))
                        .choice(serde_json::json!({ "daily": new }))
                        .reason(format!(
                            "moved {moved:.0} of {total:.0} a day toward the channels with the highest marginal return: {}",
                            new.iter().map(|(c, s)| format!("{c} {s:.0}")).collect::<Vec<_>>().join(", ")
                        ))
                        .confidence(0.6);
                    ledger::record(&kb, ctx, &event, goal, draft).await?;
                    exp.daily = new;
                }
            }
        }

        // 4. Every `drift_window_days`, the next generation of creative combinations.
        if day > 0 && day % window == 0 {
            genetic(&kb, ctx, &event, exp, &playbook, day).await?;
        }

        // 5. The forecast. Recorded for every batch, even without a trend yet: it is the last step
        // of a day, so after a crash a day without it is processed again.
        let progress = exp.progress();
        let deadline_day = deadline_day(goal);
        let on_track = progress.forecast.is_some_and(|f| f.on_track(deadline_day));
        let draft = Draft::new("forecast", format!("forecast/day/{day}"))
            .inputs(serde_json::json!({ "day": day, "cumulative": exp.cumulative(), "target": goal.target }))
            .choice(serde_json::json!({ "forecast": progress.forecast, "deadline_day": deadline_day }))
            .alternative("on track", if on_track { 1.0 } else { 0.0 }, None)
            .reason(match progress.forecast.and_then(|f| f.eta_day.map(|eta| (f, eta))) {
                Some((forecast, eta)) => format!(
                    "{} of {} after {} days; at {:.1} a day the goal is met on day {:.1} (deadline day {:.1})",
                    progress.conversions, goal.target, progress.days, forecast.slope, eta + 1.0, deadline_day
                ),
                None => format!(
                    "{} of {} after {} days and no upward trend to forecast from yet",
                    progress.conversions, goal.target, progress.days
                ),
            })
            .confidence(0.5);
        ledger::record(&kb, ctx, &event, goal, draft).await?;
        Ok(())
    }
}

/// The deadline as a day index from the campaign's start (day 0); the forecast's days count from 1.
pub fn deadline_day(goal: &CampaignGoal) -> f64 {
    match goal.start {
        Some(start) => (goal.deadline - start).num_seconds() as f64 / 86_400.0,
        None => f64::INFINITY,
    }
}

async fn genetic(
    kb: &KnowledgeBase,
    ctx: &Context,
    event: &Envelope<ObservationsRecorded>,
    exp: &Experiment,
    playbook: &OptimizationPlaybook,
    day: u32,
) -> Result<(), AgentError> {
    // The creative space: every dimension and level the approved variants use.
    let mut dims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for state in exp.arms.values() {
        for level in state.arm.iter().flat_map(|a| &a.levels) {
            let levels = dims.entry(level.dimension.clone()).or_default();
            if !levels.contains(&level.value) {
                levels.push(level.value.clone());
            }
        }
    }
    let space = CreativeSpace {
        dimensions: dims
            .iter()
            .map(
                |(name, levels)| crate::domain::optimization::genetic::Dimension {
                    name: name.clone(),
                    levels: levels.clone(),
                },
            )
            .collect(),
    };
    let scored: Vec<(Genome, f64)> = exp
        .arms
        .values()
        .filter_map(|state| {
            let arm = state.arm.as_ref()?;
            let genes = dims
                .iter()
                .map(|(name, levels)| {
                    arm.levels
                        .iter()
                        .find(|l| &l.dimension == name)
                        .and_then(|l| levels.iter().position(|v| v == &l.value))
                        .unwrap_or(0)
                })
                .collect();
            Some((Genome(genes), state.stats.posterior_mean()))
        })
        .collect();
    let seed = decision_seed(exp.goal.id.as_str(), u64::from(day) << 32);
    let Ok(next) = genetic_step(
        &space,
        &scored,
        playbook.genetic.population.max(1),
        playbook.genetic.mix,
        seed,
    ) else {
        return Ok(());
    };
    let mut draft = Draft::new("genetic_step", format!("genetic/day/{day}"));
    for (genome, fitness) in &scored {
        draft = draft.alternative(space.features(genome), *fitness, None);
    }
    let proposals: Vec<Vec<(String, String)>> = next.iter().map(|g| space.features(g)).collect();
    draft = draft
        .inputs(serde_json::json!({ "day": day, "seed": seed, "space": dims }))
        .choice(serde_json::json!({ "next_generation": proposals }))
        .reason(format!(
            "bred {} combinations from {} scored variants (elite {:.0} %, crossover {:.0} %, mutation {:.0} %, random {:.0} %), seed {seed}",
            next.len(),
            scored.len(),
            playbook.genetic.mix.elite * 100.0,
            playbook.genetic.mix.crossover * 100.0,
            playbook.genetic.mix.mutation * 100.0,
            playbook.genetic.mix.random * 100.0
        ))
        .confidence(0.4);
    ledger::record(kb, ctx, event, &exp.goal, draft).await?;
    Ok(())
}

impl HandleCommand<Reexplore> for Optimization {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Reexplore>,
    ) -> Result<(), AgentError> {
        self.playbook.refresh(ctx.services());
        let keep = self.playbook.get().explore_keep;
        if let Some(exp) = self.experiments.get_mut(&command.payload.campaign) {
            exp.reopen(keep);
            tracing::info!(campaign = %command.payload.campaign, why = %command.payload.why, "exploration re-opened");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal() -> CampaignGoal {
        toml::from_str(
            r#"
            id = "spring"
            tenant = "acme"
            objective = "installs"
            target = 600
            deadline = 2027-03-31T23:59:59Z
            budget = { total = 18000000.0, currency = "KRW" }
            channels = ["push", "display", "social"]
            regions = ["KR"]
            segments = [{ id = "lapsed" }]
            "#,
        )
        .expect("a valid goal")
    }

    fn arm(channel: Channel, variant: &str) -> Arm {
        Arm {
            variant: variant.to_owned(),
            channel,
            segment: "lapsed".to_owned(),
            levels: Vec::new(),
        }
    }

    #[test]
    fn a_channel_without_approved_variants_hands_its_budget_to_the_funded_ones() {
        let mut exp = Experiment::new(goal());
        exp.set_arms(&[arm(Channel::Display, "d1"), arm(Channel::Social, "s1")]);
        exp.daily = BTreeMap::from([
            (Channel::Push, 30_000.0),
            (Channel::Display, 10_000.0),
            (Channel::Social, 30_000.0),
        ]);
        let handoff = hand_off_unfunded(&exp).expect("push has no variant");
        assert_eq!(handoff.unfunded, vec![Channel::Push]);
        assert!((handoff.moved - 30_000.0).abs() < 1e-9);
        let get = |c| handoff.daily.get(&c).copied().unwrap_or(f64::NAN);
        assert_eq!(get(Channel::Push), 0.0);
        assert!((get(Channel::Display) - 17_500.0).abs() < 1e-6);
        assert!((get(Channel::Social) - 52_500.0).abs() < 1e-6);
        let total: f64 = handoff.daily.values().sum();
        assert!((total - 70_000.0).abs() < 1e-6, "the budget is kept whole");
    }

    #[test]
    fn nothing_is_handed_off_when_every_channel_or_no_channel_is_funded() {
        let mut exp = Experiment::new(goal());
        exp.daily = BTreeMap::from([(Channel::Push, 30_000.0), (Channel::Display, 10_000.0)]);
        assert!(
            hand_off_unfunded(&exp).is_none(),
            "no channel has a variant"
        );
        exp.set_arms(&[arm(Channel::Push, "p1"), arm(Channel::Display, "d1")]);
        assert!(hand_off_unfunded(&exp).is_none(), "every channel has one");
    }
}
