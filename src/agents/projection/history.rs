//! A campaign's history as a marketer reads it on the dashboard: conversions day by day against
//! the target and the forecast, each day's spend per channel against the budgets then in force,
//! the variants' standings, and the days something changed course (drift, re-plans, an
//! operator's commands, a declared winner, the goal reached, buys cut to the budget).
//!
//! It is rebuilt from the same records and through the same [`ExperimentState`] the optimizer
//! rebuilds after a restart, so the dashboard shows what the agents themselves hold.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{ExperimentState, choice, decode, inputs, is, observations};
use crate::agents::decisions as kinds;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::optimization::{ArmStats, Forecast};
use crate::kb::{Decision, DecisionId, Record};

/// What the dashboard draws for one campaign.
#[derive(Clone, Debug, Default)]
pub struct CampaignHistory {
    /// Cumulative conversions at the end of each day from day 0, as the optimizer counts them.
    pub cumulative: Vec<f64>,
    /// The line fitted through them (absent before two days are learned).
    pub forecast: Option<Forecast>,
    /// Each day's observed spend per channel.
    pub spend: BTreeMap<u32, BTreeMap<Channel, f64>>,
    /// The daily budgets in force from each day on where they changed: the plan's, then each
    /// budget move's (a move made after learning day `d` applies from day `d + 1`).
    pub budgets: BTreeMap<u32, BTreeMap<Channel, f64>>,
    pub markers: Vec<Marker>,
    /// Every started variant, best observed rate first.
    pub standings: Vec<Standing>,
}

/// A day something changed course, and the decision that did it.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// Days since the campaign's start (absent for a campaign without one).
    pub day: Option<u32>,
    /// The decision kind (`drift`, `replan`, `pause`, …).
    pub kind: &'static str,
    pub decision: DecisionId,
    pub reason: String,
}

/// One variant's evidence and its latest traffic share.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub variant: String,
    pub channel: Channel,
    pub segment: String,
    pub stats: ArmStats,
    pub share: Option<f64>,
    pub retired: bool,
}

impl CampaignHistory {
    /// Reads a campaign's records (in the order the knowledge base keeps them) as the optimizer
    /// named `optimizer` rebuilds them; `goal` is the running goal, whose start dates the markers.
    pub fn of(goal: &CampaignGoal, records: &[Record], optimizer: &str) -> Self {
        let mut history = CampaignHistory::default();
        for (_, line) in observations(records) {
            let day = history.spend.entry(line.day).or_default();
            *day.entry(line.observation.channel).or_default() += line.observation.spend.max(0.0);
        }
        let mut decisions: Vec<&Decision> =
            records.iter().filter_map(Record::as_decision).collect();
        decisions.sort_by_key(|d| d.recorded_at);
        for decision in &decisions {
            history.take(goal, decision, optimizer);
        }
        if let Some(state) = ExperimentState::rebuild(goal, records, optimizer) {
            let exp = &state.experiment;
            history.cumulative = exp.cumulative();
            history.forecast = exp.progress().forecast;
            history.standings = exp
                .arms
                .iter()
                .filter_map(|(variant, arm)| {
                    let started = arm.arm.as_ref()?;
                    Some(Standing {
                        variant: variant.clone(),
                        channel: started.channel,
                        segment: started.segment.clone(),
                        stats: arm.stats,
                        share: exp.shares.get(variant).copied(),
                        retired: arm.retired.is_some(),
                    })
                })
                .collect();
            history.standings.sort_by(|a, b| {
                b.stats
                    .rate()
                    .total_cmp(&a.stats.rate())
                    .then_with(|| a.variant.cmp(&b.variant))
            });
        }
        history
    }

    /// Takes in one decision: a budget setting or a marker.
    fn take(&mut self, goal: &CampaignGoal, decision: &Decision, optimizer: &str) {
        let day = campaign_day(goal, decision.decided_at);
        if decision.agent.as_str() == optimizer {
            if let Some(choice) = choice::<kinds::Experiment>(decision) {
                self.budgets.insert(day.unwrap_or(0), choice.daily);
            } else if let Some((inputs, choice)) = decode::<kinds::Allocation>(decision) {
                let from = inputs.day.map(|d| d + 1).or(day).unwrap_or(0);
                self.budgets.insert(from, choice.daily);
            }
        }
        let kind = [
            (is::<kinds::Drift>(decision), "drift"),
            (is::<kinds::Replan>(decision), "replan"),
            (is::<kinds::ReplanOrdered>(decision), "replan_ordered"),
            (is::<kinds::Pause>(decision), "pause"),
            (is::<kinds::Resume>(decision), "resume"),
            (is::<kinds::AutonomySet>(decision), "autonomy"),
            (is::<kinds::WinnerDeclared>(decision), "winner"),
            (is::<kinds::GoalAchieved>(decision), "goal_achieved"),
            (is::<kinds::BudgetCap>(decision), "budget_cap"),
        ]
        .into_iter()
        .find_map(|(matches, kind)| matches.then_some(kind));
        let Some(kind) = kind else { return };
        // A drift decision without `reexplore` only watched; it changed nothing.
        if kind == "drift" && choice::<kinds::Drift>(decision).is_some_and(|c| !c.reexplore) {
            return;
        }
        let day = inputs::<kinds::Replan>(decision)
            .map(|i| i.day)
            .or_else(|| inputs::<kinds::WinnerDeclared>(decision).map(|i| i.day))
            .or(day);
        self.markers.push(Marker {
            day,
            kind,
            decision: decision.id,
            reason: decision.reason.clone(),
        });
    }

    /// The budgets in force on `day`: the latest setting from that day or before.
    pub fn budgets_on(&self, day: u32) -> Option<&BTreeMap<Channel, f64>> {
        self.budgets.range(..=day).next_back().map(|(_, b)| b)
    }
}

/// Whole days from the goal's start to `at` (absent without a start, or before it).
fn campaign_day(goal: &CampaignGoal, at: DateTime<Utc>) -> Option<u32> {
    let since = at.signed_duration_since(goal.start?);
    u32::try_from(since.num_days())
        .ok()
        .filter(|_| since >= chrono::Duration::zero())
}
