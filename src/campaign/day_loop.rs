//! The campaign loop on the clock: once per campaign day it ticks the orchestrator for every
//! campaign, places the buys it answers on the built-in market simulator and feeds the day's
//! observations through [`ingest`], the same path the HTTP API uses. With `[market] source =
//! "api"` there is no simulator: the day's buys are logged as the instructions for the ad
//! platforms, and observations arrive only through the API.
//!
//! Given the daemon's [`LiveSettings`], the loop re-reads the campaign list whenever a reload put
//! other settings in force: a new campaign is ticked from the next step, a campaign not started
//! yet takes its changed goal, and a removed one is no longer ticked. A running campaign keeps the
//! goal the orchestrator anchored when it planned it. After a restart each campaign resumes at the
//! day after the last one the optimizer learned from (see [`resume`](super::resume)). The loop only
//! moves data between the market and the agents; it never decides anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::board::CampaignBoard;
use super::clock::save_simulated_time;
use super::ingest::{Batch, IngestReport, ItemResult, ingest_kept};
use super::options::LoopOptions;
use super::orders;
use super::resume::{CampaignRun, planned_start};
use super::sim_market::{add_joined, build_market, priors_from, record_audience_consent};
use super::wake::Wake;
use crate::agents::ledger;
use crate::agents::messages::{Tick, TickReport, WithdrawApprovals, is_last_day};
use crate::agents::orchestrator::Orchestrator;
use crate::domain::campaign::CampaignGoal;
use crate::domain::pacing::goal_fraction;
use crate::kb::KnowledgeBase;
use crate::protocol::{CampaignId, Origin};
use crate::runtime::{Agent, Runtime};
use crate::settings::{LiveSettings, Settings};

/// What one day did for one campaign.
#[derive(Clone, Debug)]
pub struct DayReport {
    pub campaign: CampaignId,
    pub day: u32,
    pub tick: Option<TickReport>,
    pub ingest: Option<IngestReport>,
    pub error: Option<String>,
    /// Why the day did not run though the orchestrator was not asked: an undelivered order.
    pub held: Option<String>,
}

/// The campaign loop, stepped by hand ([`CampaignLoop::step`]) or on the clock ([`spawn`]).
pub struct CampaignLoop {
    runtime: Runtime,
    kb: KnowledgeBase,
    options: LoopOptions,
    runs: Vec<CampaignRun>,
    board: CampaignBoard,
    /// The daemon's settings in force, re-read at each step; `None` for a fixed campaign list.
    live: Option<LiveSettings>,
    /// The settings the campaign list was last synced with.
    synced: Option<Arc<Settings>>,
    /// Names the campaigns whose held day to run again between days ([`spawn`]).
    wake: Option<Wake>,
    /// Campaigns a reload removed whose pending approval requests are still to be withdrawn.
    removed: Vec<CampaignGoal>,
}

impl CampaignLoop {
    /// A loop over `campaigns`, each resuming after its last recorded day.
    pub fn new(
        runtime: Runtime,
        kb: KnowledgeBase,
        campaigns: Vec<CampaignGoal>,
        options: LoopOptions,
    ) -> Self {
        let runs: Vec<CampaignRun> = campaigns
            .into_iter()
            .map(|goal| CampaignRun::resume(&kb, goal))
            .collect();
        let board = CampaignBoard::new();
        for run in &runs {
            board.restore(&run.goal, &run.resumed);
        }
        CampaignLoop {
            runtime,
            kb,
            options,
            runs,
            board,
            live: None,
            synced: None,
            wake: None,
            removed: Vec::new(),
        }
    }

    /// Runs a held day again between days when `wake` names its campaign.
    pub fn with_wake(mut self, wake: Wake) -> Self {
        self.wake = Some(wake);
        self
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
            board.restore(&run.goal, &run.resumed);
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
        self.removed.extend(
            self.runs
                .iter()
                .filter(|run| !wanted.contains_key(&run.goal.id))
                .map(|run| run.goal.clone()),
        );
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
                    self.board.restore(&run.goal, &run.resumed);
                    // Only a change after the first sync is news; the first is the start-up list.
                    if self.synced.is_some() {
                        tracing::info!(campaign = %goal.id, "campaign added by a reload; ticked from the next day");
                    }
                    self.runs.push(run);
                }
                Some(run) if run.declared != *goal => {
                    // The autonomy is the file's in force, running or not: who decides is not
                    // part of the goal a campaign was planned for.
                    let mut planned_for = goal.clone();
                    planned_for.autonomy = run.declared.autonomy;
                    if planned_for == run.declared {
                        tracing::info!(campaign = %goal.id, autonomy = goal.autonomy.as_str(), "campaign autonomy changed by a reload; in force from its next day");
                        run.declared = goal.clone();
                    } else if planned_start(&self.kb, goal).is_none() {
                        // Started means planned: the orchestrator anchors the goal it first
                        // planned (its `sub_goals` decision) and ignores a different one after.
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

    /// Runs one day of every unfinished campaign. Campaigns run their days side by side (at most
    /// [`LoopOptions::concurrency`] at once), so the agents' workers have every core's worth of
    /// work; each campaign's own day is one chain, in order. A campaign whose day panicked takes
    /// the loop down with the panic, as a loop running them one by one would.
    pub async fn step(&mut self) -> Vec<DayReport> {
        self.sync_campaigns();
        self.withdraw_removed().await;
        self.step_where(|_| true).await
    }

    /// Has the orchestrator withdraw the pending approval requests of the campaigns a reload
    /// removed: nothing they cover can take effect any more. One it could not reach is tried
    /// again at the next step.
    async fn withdraw_removed(&mut self) {
        for goal in std::mem::take(&mut self.removed) {
            let withdrawn = self
                .runtime
                .client(Origin::Runtime)
                .with_tenant(goal.tenant.clone())
                .with_campaign(goal.id.clone())
                .with_correlation(ledger::campaign_correlation(&goal))
                .request(
                    Orchestrator::NAME,
                    WithdrawApprovals {
                        goal: goal.clone(),
                        why: "the campaign was removed from the configuration".to_owned(),
                    },
                )
                .await;
            if let Err(error) = withdrawn {
                tracing::warn!(campaign = %goal.id, %error, "pending approval requests of a removed campaign not withdrawn yet; tried again at the next step");
                self.removed.push(goal);
            }
        }
    }

    /// Runs again the held day of each of `campaigns` (named through [`Wake`]); a campaign whose
    /// last day was not held is left for its next day.
    pub async fn step_held(&mut self, campaigns: &BTreeSet<CampaignId>) -> Vec<DayReport> {
        self.step_where(|run| run.held && campaigns.contains(&run.goal.id))
            .await
    }

    async fn step_where(&mut self, wanted: impl Fn(&CampaignRun) -> bool) -> Vec<DayReport> {
        let limit = Arc::new(tokio::sync::Semaphore::new(self.options.concurrency.max(1)));
        let mut days = tokio::task::JoinSet::new();
        let mut skipped = Vec::new();
        for (index, mut run) in std::mem::take(&mut self.runs).into_iter().enumerate() {
            if !wanted(&run) {
                skipped.push((index, run, None));
                continue;
            }
            let (runtime, kb, options) =
                (self.runtime.clone(), self.kb.clone(), self.options.clone());
            let limit = Arc::clone(&limit);
            days.spawn(async move {
                // The semaphore is never closed, so a permit always comes.
                let _permit = limit.acquire_owned().await.ok();
                let report = step_campaign(&runtime, &kb, &options, &mut run).await;
                (index, run, report)
            });
        }
        let mut done = skipped;
        while let Some(joined) = days.join_next().await {
            match joined {
                Ok(day) => done.push(day),
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => tracing::error!(%err, "a campaign day was cancelled"),
            }
        }
        done.sort_by_key(|(index, _, _)| *index);
        let mut reports = Vec::new();
        for (_, run, report) in done {
            if let Some(report) = report {
                let now = self.runtime.clock().now();
                match (&report.tick, &report.error) {
                    _ if report.held.is_some() => self.board.record_hold(
                        &report.campaign,
                        report.held.as_deref().unwrap_or_default(),
                        now,
                    ),
                    (_, Some(error)) => {
                        self.board
                            .record_error(&report.campaign, report.day, error, now)
                    }
                    (Some(tick), None) => self.board.record_tick(report.day, tick, run.done, now),
                    (None, None) => {}
                }
                reports.push(report);
            }
            self.runs.push(run);
        }
        reports
    }
}

/// One day of one campaign: tick, buy on the simulated market, ingest what it observed.
async fn step_campaign(
    runtime: &Runtime,
    kb: &KnowledgeBase,
    options: &LoopOptions,
    run: &mut CampaignRun,
) -> Option<DayReport> {
    if run.done {
        return None;
    }
    // A campaign starts on its own start date, not before.
    if run.goal.start.is_some_and(|s| runtime.clock().now() < s) {
        return None;
    }
    let day = run.next_day;
    // Until the day is consumed below, it is to be run again.
    run.held = true;
    let mut report = DayReport {
        campaign: run.goal.id.clone(),
        day,
        tick: None,
        ingest: None,
        error: None,
        held: None,
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
                report.error = Some(e.to_string());
                return Some(report);
            }
        }
    }
    // An order that could not be delivered holds the campaign: nothing more is sent until an
    // operator retries or cancels it.
    match orders::held_by(kb, &run.goal) {
        Ok(None) => {}
        Ok(Some(why)) => {
            tracing::warn!(campaign = %run.goal.id, day, held = %why, "campaign day held by an undelivered order");
            report.held = Some(why);
            return Some(report);
        }
        Err(e) => {
            report.error = Some(format!("cannot read the outbox: {e}"));
            return Some(report);
        }
    }
    let mut goal = run.goal.clone();
    goal.autonomy = run.declared.autonomy;
    let tick = client.request(Orchestrator::NAME, Tick { goal, day }).await;
    let mut tick = match tick {
        Ok(tick) => tick,
        Err(e) => {
            // The day is not consumed: the orchestrator may be restarting.
            report.error = Some(e.to_string());
            return Some(report);
        }
    };
    run.goal = tick.goal.clone();
    // A held last day is not over: it runs again once answered (or expired), as any held day
    // does (held days are not campaign days).
    let held = tick.buys.is_empty() && tick.held.is_some();
    if tick.achieved
        || (is_last_day(&tick.goal, day) && !held)
        || options.max_days.is_some_and(|m| day + 1 >= m)
    {
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
            why = tick.skipped.as_deref().or(tick.held.as_deref()).unwrap_or(
                "the optimizer planned no buys (no channel has both a budget and an approved variant)"
            ),
            "campaign day without buys"
        );
        run.next_day += 1;
        run.held = false;
        report.tick = Some(tick);
        return Some(report);
    }
    // The simulated audience consented as a whole; any other is checked member by member.
    let send_lists = if options.audience_consent {
        orders::SendLists::new()
    } else {
        match orders::draw_send_lists(&client, &run.goal, day, &tick).await {
            Ok(lists) => lists,
            Err(e) => {
                report.error = Some(format!("the day's send lists cannot be drawn: {e}"));
                report.tick = Some(tick);
                return Some(report);
            }
        }
    };
    // Durable before anything is sent or simulated; the day runs again if they are not.
    if let Err(e) = orders::write_day(
        kb,
        &run.goal,
        day,
        &tick,
        &send_lists,
        options.simulate,
        runtime.clock().now(),
    )
    .await
    {
        report.error = Some(e.to_string());
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
        run.held = false;
        report.tick = Some(tick);
        return Some(report);
    }
    if run.market.is_none() {
        match build_market(kb, &run.goal, options) {
            Ok(market) => run.market = Some(market),
            Err(e) => {
                report.error = Some(e.to_string());
                report.tick = Some(tick);
                return Some(report);
            }
        }
    }
    let Some(market) = run.market.as_mut() else {
        return Some(report);
    };
    if tick.buys.iter().any(|b| !market.knows(&b.variant))
        && let Err(e) = add_joined(kb, &run.goal, market)
    {
        report.error = Some(e.to_string());
        report.tick = Some(tick);
        return Some(report);
    }
    let (buys, unknown): (Vec<_>, Vec<_>) = tick
        .buys
        .iter()
        .cloned()
        .partition(|b| market.knows(&b.variant));
    for buy in unknown {
        tracing::warn!(campaign = %run.goal.id, day, variant = %buy.variant, "a buy of a variant no experiment decision names is not simulated");
    }
    let observations = match market.simulate_day(day, &buys) {
        Ok(observations) => observations,
        Err(e) => {
            report.error = Some(e.to_string());
            report.tick = Some(tick);
            return Some(report);
        }
    };
    let observed: Vec<(u64, f64)> = observations
        .iter()
        .map(|o| (u64::try_from(o.conversions).unwrap_or(0), o.spend))
        .collect();
    let batch = Batch {
        goal: run.goal.clone(),
        day,
        observations,
    };
    match ingest_kept(kb, &client, &mut run.known, batch).await {
        Ok(ingested) => {
            // The tick's figures are as of the day's start; what the day itself recorded is
            // added, so that the board (and a campaign's last day above all) shows every
            // conversion and all spend the knowledge base holds.
            for (item, (conversions, spend)) in ingested.items.iter().zip(&observed) {
                if matches!(item, ItemResult::Recorded(_)) {
                    tick.conversions = tick.conversions.saturating_add(*conversions);
                    tick.spend += spend;
                }
            }
            tick.progress = goal_fraction(tick.conversions, run.goal.target);
            report.ingest = Some(ingested);
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    if run.done {
        // A finished campaign buys and observes nothing more: what served its days goes.
        run.market = None;
        run.known = Default::default();
    }
    run.next_day += 1;
    run.held = false;
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

/// The loop running on the runtime's clock in the background.
pub struct RunningLoop {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs `campaign_loop` one day per `options.day` of the runtime's clock until
/// [`RunningLoop::stop`] is called, or, for a loop without live settings (nothing can add a
/// campaign), until every campaign is finished.
pub fn spawn(campaign_loop: CampaignLoop) -> RunningLoop {
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
            log_errors(campaign_loop.step().await);
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
            // Between days, a held day whose campaign is woken runs again at once.
            let wake = campaign_loop.wake.clone();
            loop {
                tokio::select! {
                    _ = clock.sleep_until(next) => break,
                    woken = woken(wake.as_ref()) => {
                        log_errors(campaign_loop.step_held(&woken).await);
                    }
                    _ = stopped.changed() => return,
                }
            }
        }
    });
    RunningLoop { stop, task }
}

/// The campaigns `wake` names; never, without one.
async fn woken(wake: Option<&Wake>) -> BTreeSet<CampaignId> {
    match wake {
        Some(wake) => wake.woken().await,
        None => std::future::pending().await,
    }
}

fn log_errors(reports: Vec<DayReport>) {
    for report in reports {
        if let Some(error) = report.error {
            tracing::warn!(campaign = %report.campaign, day = report.day, %error, "campaign day not completed; retried on the next tick");
        }
    }
}

impl RunningLoop {
    /// Waits until the loop ends by itself: when every campaign is finished and nothing can add
    /// one, or with the panic's message if its task panicked. A loop that follows live settings
    /// ends only when stopped, so for it this waits until a panic. Once this has returned, the
    /// loop is over: do not call [`RunningLoop::stop`].
    pub async fn ended(&mut self) -> Result<(), String> {
        (&mut self.task).await.map_err(|e| e.to_string())
    }

    /// Stops after the day in progress (if any) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(%e, "the campaign loop ended abnormally");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loop_whose_task_panicked_ends_with_the_panic() {
        let (stop, _stopped) = watch::channel(false);
        let mut running = RunningLoop {
            stop,
            task: tokio::spawn(async { panic!("the loop broke") }),
        };
        let ended = running.ended().await;
        assert!(
            ended
                .as_ref()
                .is_err_and(|why| why.contains("the loop broke")),
            "{ended:?}"
        );
    }
}
