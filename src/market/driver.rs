//! The campaign loop on the clock: once per simulated day it ticks the orchestrator for every
//! campaign, places the buys it answers on the built-in market simulator and feeds the day's
//! observations through [`ingest`], the same path the HTTP API uses. With `[market] source =
//! "api"` there is no simulator: the day's buys are logged as the instructions for the ad
//! platforms, and observations arrive only through the API.
//!
//! Given the daemon's [`LiveSettings`], the loop re-reads the campaign list whenever a reload put
//! other settings in force: a new campaign is ticked from the next step, a campaign not started
//! yet takes its changed goal, and a removed one is no longer ticked. A running campaign keeps the
//! goal the orchestrator anchored when it planned it.
//!
//! Each campaign's market is a simulator seeded from `[market] seed` and the campaign id, with
//! hidden true rates near the strategy playbook's priors (so plans are roughly right but not
//! exactly), per-segment and per-creative-level effects, and optional injected drift. After a
//! restart the loop resumes at the day after the last one whose observations are in the knowledge
//! base. The driver only moves data between the market and the agents; it never decides anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::agents::compliance::{RecordConsent, segment_subject};
use crate::agents::ledger;
use crate::agents::optimization::Arm;
use crate::agents::orchestrator::{Tick, TickReport};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::compliance::{ConsentRecord, MessageChannel};
use crate::domain::optimization::decision_seed;
use crate::domain::strategy::StrategyPlaybook;
use crate::kb::KnowledgeBase;
use crate::protocol::{CampaignId, Origin};
use crate::runtime::Runtime;
use crate::settings::{LiveSettings, Settings};

use super::board::CampaignBoard;
use super::ingest::{Batch, IngestReport, ingest};
use super::observation::IdCatalog;
use super::simulator::{
    ChannelMarket, DriftEvent, LevelEffect, MarketSimulator, MarketSpec, SegmentMarket,
    VariantFeatures,
};

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// `[market] seed`: the same seed gives the same markets.
    pub seed: u64,
    /// One campaign day in simulated time (the clock decides how long that is for real).
    pub day: Duration,
    /// The priors the simulated markets are built around.
    pub priors: StrategyPlaybook,
    /// Conversion-rate multipliers forced on a campaign's channels (instead of the seeded ones),
    /// e.g. to make a channel under-deliver in a test.
    pub channel_bias: BTreeMap<(CampaignId, Channel), f64>,
    /// Drift injected into a campaign's market.
    pub drift: BTreeMap<CampaignId, Vec<DriftEvent>>,
    /// Stop a campaign after this many days even if its deadline is later.
    pub max_days: Option<u32>,
    /// Record in the compliance agent's ledger that the simulated audience (each segment) opted in
    /// to messages a month before the start. Real audiences' consent comes from the API instead.
    pub audience_consent: bool,
    /// Place the buys on the built-in simulator (`[market] source = "simulator"`). When false the
    /// buys are only logged, and the days' observations come through the API.
    pub simulate: bool,
}

impl DriverOptions {
    pub fn new(seed: u64, priors: StrategyPlaybook) -> Self {
        DriverOptions {
            seed,
            day: Duration::from_secs(86_400),
            priors,
            channel_bias: BTreeMap::new(),
            drift: BTreeMap::new(),
            max_days: None,
            audience_consent: true,
            simulate: true,
        }
    }

    /// For `[market] source = "api"`: no simulator, no simulated audience.
    pub fn without_simulator(mut self) -> Self {
        self.simulate = false;
        self.audience_consent = false;
        self
    }
}

struct CampaignRun {
    /// The goal as configured (what a reload compares against).
    declared: CampaignGoal,
    /// The goal as the orchestrator last answered it (its start fixed).
    goal: CampaignGoal,
    next_day: u32,
    market: Option<MarketSimulator>,
    catalog: IdCatalog,
    done: bool,
    consent_recorded: bool,
}

impl CampaignRun {
    /// A campaign resuming after its last recorded day (day 0 when it has none).
    fn resume(kb: &KnowledgeBase, declared: CampaignGoal) -> Self {
        let next_day = last_recorded_day(kb, &declared).map_or(0, |d| d + 1);
        if next_day > 0 {
            tracing::info!(campaign = %declared.id, day = next_day, "resuming from the knowledge base");
        }
        let mut goal = declared.clone();
        // A goal without a start was given one when first planned; the simulated consent is
        // dated from that start, not from the restart.
        if goal.start.is_none() {
            goal.start = planned_start(kb, &goal);
        }
        CampaignRun {
            declared,
            goal,
            next_day,
            market: None,
            catalog: IdCatalog::default(),
            done: false,
            consent_recorded: false,
        }
    }
}

/// What one day did for one campaign.
#[derive(Clone, Debug)]
pub struct DayReport {
    pub campaign: CampaignId,
    pub day: u32,
    pub tick: Option<TickReport>,
    pub ingest: Option<IngestReport>,
    pub error: Option<String>,
}

/// The campaign loop, stepped by hand ([`CampaignLoop::step`]) or on the clock ([`spawn`]).
pub struct CampaignLoop {
    runtime: Runtime,
    kb: KnowledgeBase,
    options: DriverOptions,
    runs: Vec<CampaignRun>,
    board: CampaignBoard,
    /// The daemon's settings in force, re-read at each step; `None` for a fixed campaign list.
    live: Option<LiveSettings>,
    /// The settings the campaign list was last synced with.
    synced: Option<Arc<Settings>>,
}

impl CampaignLoop {
    /// A loop over `campaigns`, each resuming after its last recorded day.
    pub fn new(
        runtime: Runtime,
        kb: KnowledgeBase,
        campaigns: Vec<CampaignGoal>,
        options: DriverOptions,
    ) -> Self {
        let runs: Vec<CampaignRun> = campaigns
            .into_iter()
            .map(|goal| CampaignRun::resume(&kb, goal))
            .collect();
        let board = CampaignBoard::new();
        for run in &runs {
            board.register(&run.goal);
        }
        CampaignLoop {
            runtime,
            kb,
            options,
            runs,
            board,
            live: None,
            synced: None,
        }
    }

    /// Follows `settings`: at each step the campaign list (and the market priors for markets
    /// built from then on) is re-read when a reload put other settings in force.
    pub fn with_settings(mut self, settings: LiveSettings) -> Self {
        self.live = Some(settings);
        self.synced = None;
        self
    }

    /// Reports every tick to `board` (shared with the API) instead of a board of its own.
    pub fn with_board(mut self, board: CampaignBoard) -> Self {
        for run in &self.runs {
            board.register(&run.goal);
        }
        self.board = board;
        self
    }

    /// The board this loop reports to.
    pub fn board(&self) -> &CampaignBoard {
        &self.board
    }

    /// Whether every campaign has reached its goal, its deadline or `max_days`.
    pub fn finished(&self) -> bool {
        self.runs.iter().all(|r| r.done)
    }

    /// The campaigns this loop ticks, by id.
    pub fn campaigns(&self) -> Vec<CampaignId> {
        self.runs.iter().map(|r| r.goal.id.clone()).collect()
    }

    /// Takes in the campaign list of the settings in force, if they changed since the last step.
    fn sync_campaigns(&mut self) {
        let Some(live) = &self.live else {
            return;
        };
        let current = live.current();
        if self
            .synced
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &current))
        {
            return;
        }
        let wanted: BTreeMap<&CampaignId, &CampaignGoal> =
            current.campaigns.iter().map(|g| (&g.id, g)).collect();
        let board = &self.board;
        self.runs.retain(|run| {
            let keep = wanted.contains_key(&run.goal.id);
            if !keep {
                board.remove(&run.goal.id);
                tracing::info!(campaign = %run.goal.id, "campaign removed from the configuration; no longer ticked (its decisions stay in the knowledge base)");
            }
            keep
        });
        for goal in &current.campaigns {
            match self.runs.iter_mut().find(|r| r.goal.id == goal.id) {
                None => {
                    let run = CampaignRun::resume(&self.kb, goal.clone());
                    self.board.register(&run.goal);
                    // Only a change after the first sync is news; the first is the start-up list.
                    if self.synced.is_some() {
                        tracing::info!(campaign = %goal.id, "campaign added by a reload; ticked from the next day");
                    }
                    self.runs.push(run);
                }
                Some(run) if run.declared != *goal => {
                    // Started means planned: the orchestrator anchors the goal it first planned
                    // (its `sub_goals` decision) and ignores a different one afterwards.
                    if planned_start(&self.kb, goal).is_none() {
                        tracing::info!(campaign = %goal.id, "campaign goal changed by a reload before the campaign started; the new goal is used");
                        *run = CampaignRun::resume(&self.kb, goal.clone());
                        self.board.register(goal);
                    } else {
                        tracing::warn!(campaign = %goal.id, day = run.next_day, "campaign goal changed by a reload while the campaign runs; it keeps the goal it was planned with (give the changed goal a new id to start it)");
                        run.declared = goal.clone();
                    }
                }
                Some(_) => {}
            }
        }
        if let Some(priors) = priors_from(&current) {
            self.options.priors = priors;
        }
        self.synced = Some(current);
    }

    /// Runs one day of every unfinished campaign.
    pub async fn step(&mut self) -> Vec<DayReport> {
        self.sync_campaigns();
        let mut reports = Vec::new();
        for index in 0..self.runs.len() {
            if let Some(report) = self.step_campaign(index).await {
                let now = self.runtime.clock().now();
                match (&report.tick, &report.error) {
                    (_, Some(error)) => {
                        self.board
                            .record_error(&report.campaign, report.day, error, now)
                    }
                    (Some(tick), None) => {
                        let ended = self.runs.get(index).is_some_and(|r| r.done);
                        self.board.record_tick(report.day, tick, ended, now);
                    }
                    (None, None) => {}
                }
                reports.push(report);
            }
        }
        reports
    }

    async fn step_campaign(&mut self, index: usize) -> Option<DayReport> {
        let runtime = self.runtime.clone();
        let kb = self.kb.clone();
        let options = self.options.clone();
        let run = self.runs.get_mut(index)?;
        if run.done {
            return None;
        }
        // A campaign starts on its own start date, not before.
        if run.goal.start.is_some_and(|s| runtime.clock().now() < s) {
            return None;
        }
        let day = run.next_day;
        let mut report = DayReport {
            campaign: run.goal.id.clone(),
            day,
            tick: None,
            ingest: None,
            error: None,
        };
        let client = runtime
            .client(Origin::Runtime)
            .with_tenant(run.goal.tenant.clone())
            .with_campaign(run.goal.id.clone())
            .with_correlation(ledger::campaign_correlation(&run.goal));
        if options.audience_consent && !run.consent_recorded {
            // A goal without a start starts now (the orchestrator fixes it at this first tick).
            let start = run.goal.start.unwrap_or_else(|| runtime.clock().now());
            match record_audience_consent(&client, &run.goal, start).await {
                Ok(()) => run.consent_recorded = true,
                Err(e) => {
                    report.error = Some(e);
                    return Some(report);
                }
            }
        }
        let tick = client
            .request(
                "orchestrator",
                Tick {
                    goal: run.goal.clone(),
                    day,
                },
            )
            .await;
        let tick = match tick {
            Ok(tick) => tick,
            Err(e) => {
                // The day is not consumed: the orchestrator may be restarting.
                report.error = Some(e.to_string());
                return Some(report);
            }
        };
        run.goal = tick.goal.clone();
        let past_deadline = tick
            .goal
            .start
            .is_some_and(|s| s + chrono::Duration::days(i64::from(day) + 1) > run.goal.deadline);
        if tick.achieved || past_deadline || options.max_days.is_some_and(|m| day + 1 >= m) {
            run.done = true;
        }
        if tick.buys.is_empty() {
            if tick.held.is_some() && !tick.achieved {
                // Held days (paused, compliance down, not set up) are not market days.
                tracing::info!(
                    campaign = %run.goal.id,
                    day,
                    held = tick.held.as_deref().unwrap_or_default(),
                    "campaign day held: nothing bought; the day is run again at the next tick"
                );
                report.tick = Some(tick);
                return Some(report);
            }
            // Said out loud: a day that passes without buying is how a campaign stalls.
            tracing::info!(
                campaign = %run.goal.id,
                day,
                achieved = tick.achieved,
                why = tick.held.as_deref().unwrap_or(
                    "the optimizer planned no buys (no channel has both a budget and an approved variant)"
                ),
                "campaign day without buys"
            );
            run.next_day += 1;
            report.tick = Some(tick);
            return Some(report);
        }
        if !options.simulate {
            // No simulator: the buys are the day's instructions; results come through the API.
            let spend: f64 = tick.buys.iter().map(|b| b.spend).sum();
            for buy in &tick.buys {
                tracing::debug!(campaign = %run.goal.id, day, channel = %buy.channel, segment = %buy.segment, variant = %buy.variant, spend = buy.spend, "buy");
            }
            tracing::info!(
                campaign = %run.goal.id,
                day,
                buys = tick.buys.len(),
                spend,
                currency = %run.goal.budget.currency,
                phase = tick.phase.as_str(),
                conversions = tick.conversions,
                target = run.goal.target,
                "campaign day: buys to place (observations come through POST /v1/observations)"
            );
            run.next_day += 1;
            report.tick = Some(tick);
            return Some(report);
        }
        if run.market.is_none() {
            match build_market(&kb, &run.goal, &tick, &options) {
                Ok((market, catalog)) => {
                    run.market = Some(market);
                    run.catalog = catalog;
                }
                Err(e) => {
                    report.error = Some(e);
                    report.tick = Some(tick);
                    return Some(report);
                }
            }
        }
        let Some(market) = run.market.as_mut() else {
            return Some(report);
        };
        // Variants that appeared since the market was built (none today) would be unknown to it.
        let buys: Vec<_> = tick
            .buys
            .iter()
            .filter(|b| {
                market
                    .true_rates(b.channel, &b.segment, &b.variant, day)
                    .is_ok()
            })
            .cloned()
            .collect();
        let observations = match market.simulate_day(day, &buys) {
            Ok(observations) => observations,
            Err(e) => {
                report.error = Some(e.to_string());
                report.tick = Some(tick);
                return Some(report);
            }
        };
        let batch = Batch {
            goal: run.goal.clone(),
            day,
            observations,
        };
        match ingest(&kb, &client, Some(&run.catalog), batch).await {
            Ok(ingested) => report.ingest = Some(ingested),
            Err(e) => report.error = Some(e.to_string()),
        }
        run.next_day += 1;
        tracing::info!(
            campaign = %run.goal.id,
            day,
            phase = tick.phase.as_str(),
            conversions = tick.conversions,
            target = run.goal.target,
            eta_day = tick.eta_day.map(|e| (e + 1.0).round()),
            "campaign day"
        );
        report.tick = Some(tick);
        Some(report)
    }
}

/// The simulated audience's opt-in, one record per segment and message channel of the campaign.
async fn record_audience_consent(
    client: &crate::runtime::Client,
    goal: &CampaignGoal,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    // Before the first send: a consent dated after it is no consent (KR-OPTIN).
    let granted = start - chrono::Duration::days(30);
    for segment in &goal.segments {
        for &channel in &goal.channels {
            let channel = MessageChannel::from(channel);
            if !matches!(
                channel,
                MessageChannel::Sms | MessageChannel::Email | MessageChannel::Push
            ) {
                continue;
            }
            let mut record =
                ConsentRecord::new(segment_subject(goal, &segment.id), channel, "marketing");
            record.granted_at = Some(granted);
            record.source = Some("simulated_signup_form".to_owned());
            record.text_hash = Some("simulated".to_owned());
            client
                .request(
                    "compliance",
                    RecordConsent {
                        tenant: goal.tenant.clone(),
                        record,
                    },
                )
                .await
                .map_err(|e| format!("cannot record the simulated audience's consent: {e}"))?;
        }
    }
    Ok(())
}

/// The last day the optimizer finished learning from (its forecast of the day is recorded). A day
/// whose observations were recorded but not learned from before a crash is run again; its
/// recorded observations stand.
pub fn last_recorded_day(kb: &KnowledgeBase, goal: &CampaignGoal) -> Option<u32> {
    let found = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .ok()?;
    found
        .records
        .iter()
        .filter(|d| d.agent.as_str() == "optimization" && d.kind == "forecast")
        .filter_map(|d| d.inputs.get("day").and_then(|v| v.as_u64()))
        .filter_map(|d| u32::try_from(d).ok())
        .max()
}

/// The start the orchestrator fixed when it first planned a campaign (its `sub_goals` decision).
fn planned_start(kb: &KnowledgeBase, goal: &CampaignGoal) -> Option<chrono::DateTime<chrono::Utc>> {
    kb.decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .ok()?
        .records
        .iter()
        .filter(|d| d.agent.as_str() == "orchestrator" && d.kind == "sub_goals")
        .filter_map(|d| d.choice.get("goal")?.get("start")?.as_str()?.parse().ok())
        .next()
}

/// A campaign's simulated market, built once its variants are known (from the experiment decision).
fn build_market(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    tick: &TickReport,
    options: &DriverOptions,
) -> Result<(MarketSimulator, IdCatalog), String> {
    let start = goal
        .start
        .ok_or_else(|| format!("campaign {} has no start yet", goal.id))?;
    let arms: Vec<Arm> = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .map_err(|e| e.to_string())?
        .records
        .iter()
        .filter(|d| d.kind == "experiment")
        .filter_map(|d| d.choice.get("arms"))
        .filter_map(|a| serde_json::from_value::<Vec<Arm>>(a.clone()).ok())
        .flatten()
        .collect();
    let seed = options.seed ^ decision_seed(goal.id.as_str(), 0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = options
        .priors
        .exchange_rate(&goal.budget.currency)
        .unwrap_or(1.0);
    let mut channels = Vec::new();
    for &channel in &goal.channels {
        let Some(prior) = options.priors.prior(channel) else {
            continue;
        };
        let prior = prior.in_currency(rate);
        let cvr_bias = options
            .channel_bias
            .get(&(goal.id.clone(), channel))
            .copied()
            .unwrap_or_else(|| rng.random_range(0.85..1.2));
        channels.push(ChannelMarket {
            channel,
            ctr: (prior.ctr * rng.random_range(0.9..1.1)).clamp(1e-6, 1.0),
            cvr: (prior.cvr * cvr_bias).clamp(1e-6, 1.0),
            cpc: prior.cpc,
            saturation_spend: prior.response.b,
            order_value: goal
                .economics
                .as_ref()
                .map_or(0.0, |e| e.average_order_value),
        });
    }
    let mut segment_ids: BTreeSet<String> = goal.segments.iter().map(|s| s.id.clone()).collect();
    segment_ids.extend(tick.buys.iter().map(|b| b.segment.clone()));
    segment_ids.extend(arms.iter().map(|a| a.segment.clone()));
    let segments = segment_ids
        .into_iter()
        .map(|id| SegmentMarket {
            id,
            ctr_multiplier: rng.random_range(0.9..1.1),
            cvr_multiplier: rng.random_range(0.85..1.15),
        })
        .collect();
    let mut levels: BTreeSet<(String, String)> = BTreeSet::new();
    for arm in &arms {
        for level in &arm.levels {
            levels.insert((level.dimension.clone(), level.value.clone()));
        }
    }
    let effects = levels
        .into_iter()
        .map(|(dimension, level)| LevelEffect {
            dimension,
            level,
            ctr_multiplier: rng.random_range(0.9..1.1),
            cvr_multiplier: rng.random_range(0.75..1.3),
        })
        .collect();
    let spec = MarketSpec {
        seed,
        campaign: goal.id.clone(),
        start,
        channels,
        segments,
        effects,
        drift: options.drift.get(&goal.id).cloned().unwrap_or_default(),
    };
    let mut market = MarketSimulator::new(spec).map_err(|e| e.to_string())?;
    let mut catalog = IdCatalog::default();
    for arm in &arms {
        market.add_variant(
            arm.variant.clone(),
            VariantFeatures {
                levels: arm
                    .levels
                    .iter()
                    .map(|l| (l.dimension.clone(), l.value.clone()))
                    .collect(),
            },
        );
        catalog.add(goal.id.clone(), arm.variant.clone());
    }
    Ok((market, catalog))
}

/// The loop running on the runtime's clock in the background.
pub struct MarketDriver {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs `campaign_loop` one day per `options.day` of the runtime's clock until
/// [`MarketDriver::stop`] is called, or, for a loop without live settings (nothing can add a
/// campaign), until every campaign is finished.
pub fn spawn(campaign_loop: CampaignLoop) -> MarketDriver {
    let (stop, mut stopped) = watch::channel(false);
    let clock = campaign_loop.runtime.clock().clone();
    let day = campaign_loop.options.day;
    let mut campaign_loop = campaign_loop;
    let task = tokio::spawn(async move {
        // Days start on a fixed schedule, so the time a step takes does not push later days back.
        let step = chrono::Duration::from_std(day).unwrap_or(chrono::Duration::days(1));
        let mut next = clock.now();
        let mut idle = false;
        let simulated = clock.mode() != "real";
        loop {
            if *stopped.borrow() {
                break;
            }
            if simulated {
                save_simulated_time(&campaign_loop.kb, clock.now());
            }
            for report in campaign_loop.step().await {
                if let Some(error) = report.error {
                    tracing::warn!(campaign = %report.campaign, day = report.day, %error, "campaign day not completed; retried on the next tick");
                }
            }
            let finished = campaign_loop.finished();
            if finished && campaign_loop.live.is_none() {
                tracing::info!("every campaign reached its goal or its deadline");
                break;
            }
            if finished && !idle {
                tracing::info!(
                    "every campaign reached its goal or its deadline; a reload can add one"
                );
            }
            idle = finished;
            next += step;
            tokio::select! {
                _ = clock.sleep_until(next) => {}
                _ = stopped.changed() => break,
            }
        }
    });
    MarketDriver { stop, task }
}

/// Where the simulated clock stood at the last campaign-loop step, so a restarted daemon on a
/// simulated clock continues from there instead of from `[clock] start` (which would hold every
/// campaign whose start date lies between the two until the clock caught up again).
pub fn saved_simulated_time(kb: &KnowledgeBase) -> Option<chrono::DateTime<chrono::Utc>> {
    let tree = kb.auxiliary_tree(CLOCK_TREE).ok()?;
    let bytes = tree.get(SIMULATED_NOW).ok()??;
    let millis = i64::from_be_bytes(bytes.as_ref().try_into().ok()?);
    chrono::DateTime::from_timestamp_millis(millis)
}

/// Notes the simulated time (not flushed: losing the last steps' mark only means resuming a
/// little earlier, and the campaign days themselves are decided by the knowledge base's records).
fn save_simulated_time(kb: &KnowledgeBase, now: chrono::DateTime<chrono::Utc>) {
    let saved = kb.auxiliary_tree(CLOCK_TREE).and_then(|tree| {
        tree.insert(SIMULATED_NOW, &now.timestamp_millis().to_be_bytes()[..])
            .map_err(|e| crate::kb::KbError::Storage {
                path: kb.path().to_path_buf(),
                reason: e.to_string(),
            })
    });
    if let Err(err) = saved {
        tracing::warn!(%err, "cannot note the simulated time; a restart resumes from an earlier one");
    }
}

const CLOCK_TREE: &str = "clock";
const SIMULATED_NOW: &str = "simulated_now";

impl MarketDriver {
    /// Stops after the day in progress (if any) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(%e, "the campaign loop ended abnormally");
        }
    }
}

/// The market's priors: the strategy agent's playbook in force, else the embedded one.
pub fn priors_from(settings: &crate::settings::Settings) -> Option<StrategyPlaybook> {
    match settings.agent("strategy").and_then(|d| d.playbook.clone()) {
        Some(table) => StrategyPlaybook::from_table(&table).ok(),
        None => StrategyPlaybook::embedded().ok(),
    }
}
