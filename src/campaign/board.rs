//! The campaign board: the latest known state of every campaign — its goal, phase, progress, spend,
//! ETA and today's allocation — as the orchestrator last reported it to the campaign loop.
//!
//! The board exists so that readers (the HTTP API, `/metrics`, the `campaigns` command) can answer
//! at once without asking an agent, which may be busy or restarting. It is a cache of reports, not
//! a source of truth: every figure on it comes from a tick whose decisions are in the knowledge
//! base, and after a restart the board fills again at the first tick. It never decides anything.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::agents::messages::{BudgetMix, PAUSED, TickReport};
use crate::agents::projection::CampaignFigures;
use crate::domain::campaign::Phase;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::pacing::goal_fraction;
use crate::protocol::CampaignId;

/// Where a campaign is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Configured; not ticked yet (its start date is ahead, or the loop has not reached it).
    Waiting,
    /// Buying on its plan.
    Running,
    /// Not buying today; `held` says why (paused by an operator, compliance isolated, not set up).
    Held,
    /// The target is reached; buying stopped.
    Achieved,
    /// The deadline (or the loop's day limit) passed before the target was reached.
    Ended,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Waiting => "waiting",
            CampaignState::Running => "running",
            CampaignState::Held => "held",
            CampaignState::Achieved => "achieved",
            CampaignState::Ended => "ended",
        }
    }
}

/// One channel's share of today's buys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelAllocation {
    pub channel: Channel,
    /// Planned spend today, in the campaign's currency.
    pub spend: f64,
    /// Share of today's planned spend (0–1).
    pub share: f64,
    /// Variants bought on this channel today.
    pub variants: usize,
}

/// One campaign as last reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignStatus {
    pub goal: CampaignGoal,
    pub state: CampaignState,
    /// Why nothing is bought today, when `state` is `held`.
    pub held: Option<String>,
    /// The last day ticked (days since the start; 0 is the first).
    pub day: Option<u32>,
    pub phase: Option<Phase>,
    pub conversions: u64,
    /// Conversions as a fraction of the target.
    pub progress: f64,
    /// Spend to date, in the campaign's currency.
    pub spend: f64,
    /// The forecast day the target is reached (days since the start), if the forecast reaches it.
    pub eta_day: Option<f64>,
    /// `eta_day` as a date.
    pub eta: Option<DateTime<Utc>>,
    /// Today's buys by channel (empty while held).
    pub allocation: Vec<ChannelAllocation>,
    /// Each channel's daily budget against the plan's, and why (the last known, while held).
    pub mix: BudgetMix,
    /// Why the last day could not complete, if it did not.
    pub last_error: Option<String>,
    /// When the board last heard of this campaign (clock time).
    pub updated_at: Option<DateTime<Utc>>,
}

impl CampaignStatus {
    /// A campaign not ticked yet: no figures.
    pub fn waiting(goal: CampaignGoal) -> Self {
        CampaignStatus {
            goal,
            state: CampaignState::Waiting,
            held: None,
            day: None,
            phase: None,
            conversions: 0,
            progress: 0.0,
            spend: 0.0,
            eta_day: None,
            eta: None,
            allocation: Vec::new(),
            mix: BudgetMix::default(),
            last_error: None,
            updated_at: None,
        }
    }
}

/// The shared board: cheap to clone, safe to read from any thread.
#[derive(Clone, Default)]
pub struct CampaignBoard {
    campaigns: Arc<RwLock<BTreeMap<CampaignId, CampaignStatus>>>,
}

impl CampaignBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists a campaign as waiting. A campaign already on the board keeps its figures; it takes
    /// the new goal only while it is still waiting, as the campaign loop does (a running campaign
    /// keeps the goal it was planned with).
    pub fn register(&self, goal: &CampaignGoal) {
        let mut campaigns = self.write();
        match campaigns.get_mut(&goal.id) {
            Some(status) if status.state == CampaignState::Waiting => status.goal = goal.clone(),
            Some(_) => {}
            None => {
                campaigns.insert(goal.id.clone(), CampaignStatus::waiting(goal.clone()));
            }
        }
    }

    /// Makes the board list exactly `campaigns`: the ones no longer configured leave, new ones are
    /// listed as waiting, and those already listed are registered again (see
    /// [`CampaignBoard::register`]).
    pub fn sync(&self, campaigns: &[CampaignGoal]) {
        self.write()
            .retain(|id, _| campaigns.iter().any(|goal| &goal.id == id));
        for goal in campaigns {
            self.register(goal);
        }
    }

    /// Lists a campaign with where it stood when the daemon started (see
    /// [`CampaignFigures`]): a restart shows the same figures as before it, until the next tick
    /// reports. A campaign without recorded days is listed as waiting.
    pub fn restore(&self, goal: &CampaignGoal, figures: &CampaignFigures) {
        self.register(goal);
        let (Some(day), Some(progress)) = (figures.day, &figures.progress) else {
            return;
        };
        let mut campaigns = self.write();
        let Some(status) = campaigns.get_mut(&goal.id) else {
            return;
        };
        if status.state != CampaignState::Waiting {
            return;
        }
        let goal = figures.view.goal.clone().unwrap_or_else(|| goal.clone());
        status.mix = figures.mix.clone();
        let eta_day = progress.forecast.and_then(|f| f.eta_day);
        // The day a held or achieved campaign last showed is the one its last tick was for: the
        // day it reached its goal, or the day after the last one learned from, which a paused
        // campaign's ticks hold without consuming.
        status.day = Some(if figures.view.achieved {
            figures.view.achieved_day.unwrap_or(day)
        } else if figures.view.paused {
            day.saturating_add(1)
        } else {
            day
        });
        status.phase = figures.view.phase;
        status.conversions = progress.conversions;
        status.progress = goal_fraction(progress.conversions, goal.target);
        status.spend = progress.spend;
        status.eta_day = eta_day;
        status.eta = eta(&goal, eta_day);
        (status.state, status.held) = if figures.view.achieved {
            (CampaignState::Achieved, Some("goal achieved".to_owned()))
        } else if figures.view.paused {
            (CampaignState::Held, Some(PAUSED.to_owned()))
        } else {
            (CampaignState::Running, None)
        };
        status.goal = goal;
    }

    /// Takes a campaign off the board (a reload removed it from the configuration).
    pub fn remove(&self, campaign: &CampaignId) {
        self.write().remove(campaign);
    }

    /// Takes in what the orchestrator answered for `day`. A held tick carries no progress figures
    /// (the orchestrator did not compute them), so the last known ones stay.
    pub fn record_tick(&self, day: u32, report: &TickReport, ended: bool, now: DateTime<Utc>) {
        let mut campaigns = self.write();
        let status = campaigns
            .entry(report.goal.id.clone())
            .or_insert_with(|| CampaignStatus::waiting(report.goal.clone()));
        status.goal = report.goal.clone();
        status.day = Some(day);
        status.updated_at = Some(now);
        status.last_error = None;
        let computed = report.held.is_none() || report.conversions > 0;
        if computed {
            status.phase = Some(report.phase);
            status.conversions = report.conversions;
            status.progress = report.progress;
            status.spend = report.spend;
            status.eta_day = report.eta_day;
            status.eta = eta(&report.goal, report.eta_day);
        }
        status.allocation = allocation(report);
        if !report.mix.channels.is_empty() {
            status.mix = report.mix.clone();
        }
        status.held = report.held.clone();
        status.state = if report.achieved {
            CampaignState::Achieved
        } else if ended {
            CampaignState::Ended
        } else if report.held.is_some() {
            CampaignState::Held
        } else {
            CampaignState::Running
        };
    }

    /// Notes that the campaign is held by something outside the orchestrator (an order that could
    /// not be delivered): no day runs until it is resolved, and `held` says why.
    pub fn record_hold(&self, campaign: &CampaignId, why: &str, now: DateTime<Utc>) {
        if let Some(status) = self.write().get_mut(campaign) {
            status.state = CampaignState::Held;
            status.held = Some(why.to_owned());
            status.last_error = None;
            status.updated_at = Some(now);
        }
    }

    /// Notes that `day` could not complete (the loop retries it on the next tick).
    pub fn record_error(&self, campaign: &CampaignId, day: u32, error: &str, now: DateTime<Utc>) {
        if let Some(status) = self.write().get_mut(campaign) {
            status.last_error = Some(format!("day {day}: {error}"));
            status.updated_at = Some(now);
        }
    }

    /// One campaign, if it is on the board.
    pub fn get(&self, campaign: &CampaignId) -> Option<CampaignStatus> {
        self.read().get(campaign).cloned()
    }

    /// What the board knows of the configured `goal`: its entry when that is the same campaign
    /// (same id and tenant), else the goal as waiting. A reload that gives an id to another tenant
    /// must never show the new tenant the old one's figures.
    pub fn status_of(&self, goal: &CampaignGoal) -> CampaignStatus {
        self.get(&goal.id)
            .filter(|s| s.goal.tenant == goal.tenant)
            .unwrap_or_else(|| CampaignStatus::waiting(goal.clone()))
    }

    /// Every campaign, ordered by id.
    pub fn list(&self) -> Vec<CampaignStatus> {
        self.read().values().cloned().collect()
    }

    // A poisoned lock still holds a consistent map: every update above is a plain assignment.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<CampaignId, CampaignStatus>> {
        self.campaigns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<CampaignId, CampaignStatus>> {
        self.campaigns
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn eta(goal: &CampaignGoal, eta_day: Option<f64>) -> Option<DateTime<Utc>> {
    let start = goal.start?;
    let days = eta_day.filter(|d| d.is_finite() && *d >= 0.0 && *d < 36_500.0)?;
    // Whole seconds are precise enough for a date and keep the conversion exact.
    let seconds = (days * 86_400.0).round() as i64;
    start.checked_add_signed(chrono::Duration::seconds(seconds))
}

fn allocation(report: &TickReport) -> Vec<ChannelAllocation> {
    let mut by_channel: BTreeMap<Channel, (f64, usize)> = BTreeMap::new();
    for buy in &report.buys {
        let entry = by_channel.entry(buy.channel).or_default();
        entry.0 += buy.spend;
        entry.1 += 1;
    }
    let total: f64 = by_channel.values().map(|(spend, _)| spend).sum();
    by_channel
        .into_iter()
        .map(|(channel, (spend, variants))| ChannelAllocation {
            channel,
            spend,
            share: if total > 0.0 { spend / total } else { 0.0 },
            variants,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::messages::ChannelMix;
    use crate::domain::campaign::Buy;

    fn goal() -> CampaignGoal {
        crate::domain::campaign::test_goal(&["sms", "search"])
    }

    fn report(goal: &CampaignGoal, held: Option<&str>, conversions: u64) -> TickReport {
        TickReport {
            goal: goal.clone(),
            phase: Phase::Optimize,
            conversions,
            progress: conversions as f64 / goal.target as f64,
            spend: 1200.0,
            eta_day: Some(10.5),
            buys: if held.is_some() {
                Vec::new()
            } else {
                vec![
                    buy(goal.channels[0], 300.0),
                    buy(goal.channels[0], 100.0),
                    buy(goal.channels[1], 400.0),
                ]
            },
            achieved: false,
            held: held.map(str::to_owned),
            skipped: None,
            mix: if held.is_some() {
                BudgetMix::default()
            } else {
                BudgetMix {
                    channels: vec![ChannelMix {
                        channel: goal.channels[0],
                        planned: 300.0,
                        daily: 400.0,
                    }],
                    why: Some("moved 100.00 USD a day".into()),
                    decision: None,
                }
            },
        }
    }

    fn buy(channel: Channel, spend: f64) -> Buy {
        Buy {
            channel,
            segment: "all".into(),
            variant: "v".into(),
            spend,
        }
    }

    #[test]
    fn a_tick_sets_figures_and_allocation_and_a_held_tick_keeps_them() {
        let mut goal = goal();
        goal.start = Some(Utc::now());
        let board = CampaignBoard::new();
        board.register(&goal);
        assert_eq!(
            board.get(&goal.id).map(|s| s.state),
            Some(CampaignState::Waiting)
        );

        board.record_tick(3, &report(&goal, None, 40), false, Utc::now());
        let status = board.get(&goal.id).expect("on the board");
        assert_eq!(status.state, CampaignState::Running);
        assert_eq!(status.conversions, 40);
        assert_eq!(status.allocation.len(), 2);
        let first = status
            .allocation
            .iter()
            .find(|a| a.channel == goal.channels[0])
            .expect("the first channel is allocated");
        assert!((first.share - 0.5).abs() < 1e-9);
        assert_eq!(first.variants, 2);
        assert!(status.eta.is_some());
        assert_eq!(status.mix.channels[0].daily, 400.0);

        board.record_tick(4, &report(&goal, Some("paused"), 0), false, Utc::now());
        let status = board.get(&goal.id).expect("on the board");
        assert_eq!(status.state, CampaignState::Held);
        assert_eq!(status.held.as_deref(), Some("paused"));
        assert_eq!(status.conversions, 40, "a held tick keeps the last figures");
        assert!(status.allocation.is_empty());
        assert_eq!(
            status.mix.why.as_deref(),
            Some("moved 100.00 USD a day"),
            "a held tick keeps the last mix"
        );
        assert_eq!(status.day, Some(4));
    }

    #[test]
    fn registering_again_changes_only_a_waiting_goal_and_remove_takes_it_off() {
        let goal = goal();
        let board = CampaignBoard::new();
        board.register(&goal);
        let mut changed = goal.clone();
        changed.target += 100;
        board.register(&changed);
        let status = board.get(&goal.id).expect("on the board");
        assert_eq!(status.goal.target, goal.target + 100, "still waiting");

        let mut running = changed.clone();
        running.start = Some(Utc::now());
        board.record_tick(0, &report(&running, None, 5), false, Utc::now());
        let mut later = changed.clone();
        later.target += 100;
        board.register(&later);
        let status = board.get(&goal.id).expect("on the board");
        assert_eq!(
            status.goal, running,
            "a running campaign keeps its planned goal"
        );
        assert_eq!(status.conversions, 5);

        let mut moved = later.clone();
        moved.tenant = "globex".into();
        let seen = board.status_of(&moved);
        assert_eq!(
            (seen.state, seen.conversions, seen.goal),
            (CampaignState::Waiting, 0, moved),
            "another tenant never sees the old tenant's figures"
        );

        board.remove(&goal.id);
        assert!(board.get(&goal.id).is_none());
        assert!(board.list().is_empty());

        let mut other = goal.clone();
        other.id = "other".into();
        board.sync(&[goal.clone(), other.clone()]);
        board.sync(std::slice::from_ref(&other));
        let listed: Vec<_> = board.list().into_iter().map(|s| s.goal.id).collect();
        assert_eq!(listed, vec![other.id]);
    }

    #[test]
    fn a_restart_shows_the_figures_recorded_before_it_until_the_next_tick() {
        let mut goal = goal();
        goal.start = Some("2026-09-01T00:00:00Z".parse().expect("a time"));
        let progress = |conversions| crate::domain::optimization::Progress {
            started: true,
            conversions,
            spend: 850.0,
            days: 12,
            forecast: None,
        };
        let figures = |achieved, paused, conversions| CampaignFigures {
            view: crate::agents::projection::CampaignView {
                goal: Some(goal.clone()),
                set_up: true,
                phase: Some(Phase::Stabilize),
                achieved,
                achieved_day: achieved.then_some(13),
                paused,
                ..Default::default()
            },
            day: Some(11),
            progress: Some(progress(conversions)),
            mix: BudgetMix {
                why: Some("moved".into()),
                ..BudgetMix::default()
            },
        };
        // The day shown is the one the last tick was for: the day the goal was reached, the day
        // after the last learned one that a paused campaign holds, or the last learned day.
        for (achieved, paused, state, day) in [
            (true, false, CampaignState::Achieved, 13),
            (false, true, CampaignState::Held, 12),
            (false, false, CampaignState::Running, 11),
        ] {
            let board = CampaignBoard::new();
            board.restore(&goal, &figures(achieved, paused, goal.target));
            let status = board.get(&goal.id).expect("listed");
            assert_eq!(status.state, state);
            assert_eq!(status.mix.why.as_deref(), Some("moved"));
            assert_eq!(status.conversions, goal.target);
            assert_eq!(status.spend, 850.0);
            assert_eq!(status.phase, Some(Phase::Stabilize));
            assert_eq!(status.day, Some(day));
            // An achieved campaign's next tick is held and carries no figures: they stay.
            if achieved {
                let mut held = report(&goal, Some("goal achieved"), 0);
                held.achieved = true;
                board.record_tick(12, &held, true, chrono::Utc::now());
                let status = board.get(&goal.id).expect("listed");
                assert_eq!(status.conversions, goal.target);
                assert_eq!(status.state, CampaignState::Achieved);
            }
        }
        let board = CampaignBoard::new();
        board.restore(&goal, &CampaignFigures::default());
        let status = board.get(&goal.id).expect("listed");
        assert_eq!(status.state, CampaignState::Waiting, "nothing recorded yet");
    }
}
