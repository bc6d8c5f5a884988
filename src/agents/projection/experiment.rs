//! The optimizer's experiment of a campaign, rebuilt from its decisions and the campaign's
//! observations in the order the optimizer took them in, with the same merge the live path
//! applies.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{choice, decode, inputs, is, observations};
use crate::agents::decisions as kinds;
use crate::agents::messages::{BudgetMix, ChannelMix};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::content::Bred;
use crate::domain::optimization::{ChannelPlans, Experiment, Observed};
use crate::kb::{Decision, DecisionId, OutcomeId, Record};
use crate::market::Observation;

/// The optimizer's state of one campaign: the experiment and the observations already folded in,
/// by outcome id (a replayed batch is not counted twice, and a late batch for a day already
/// learned from is still counted for the days after it).
#[derive(Clone, Debug)]
pub struct ExperimentState {
    pub experiment: Experiment,
    pub folded: std::collections::HashSet<OutcomeId>,
    /// The latest budget decision since the plan's experiment decision, with its reason: why
    /// the channels' budgets are not the plan's.
    pub last_move: Option<(DecisionId, String)>,
    /// A bred generation not joined yet: content writes it, compliance reviews it and the
    /// approved variants join at the next tick.
    pub bred: Option<Generation>,
    /// A budget move waiting for a person (its approval request), until the optimizer acts on
    /// the answer.
    pub waiting_budget: Option<DecisionId>,
}

/// A genetic step's combinations waiting to be written, reviewed and joined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The day it was bred on.
    pub day: u32,
    pub decision: DecisionId,
    pub bred: Vec<Bred>,
}

impl ExperimentState {
    pub fn new(goal: CampaignGoal) -> Self {
        ExperimentState {
            experiment: Experiment::new(goal),
            folded: Default::default(),
            last_move: None,
            bred: None,
            waiting_budget: None,
        }
    }

    /// Each channel's daily budget against the plan's, and why they differ.
    pub fn mix(&self) -> BudgetMix {
        let exp = &self.experiment;
        let channels: BTreeSet<Channel> = exp
            .planned
            .keys()
            .chain(exp.daily.keys())
            .copied()
            .collect();
        BudgetMix {
            channels: channels
                .into_iter()
                .map(|channel| ChannelMix {
                    channel,
                    planned: exp.planned.get(&channel).copied().unwrap_or(0.0),
                    daily: exp.daily.get(&channel).copied().unwrap_or(0.0),
                })
                .collect(),
            why: self.last_move.as_ref().map(|(_, why)| why.clone()),
            decision: self.last_move.as_ref().map(|(id, _)| *id),
        }
    }

    /// Rebuilds from the optimizer's decisions and the campaign's observations, in the order the
    /// optimizer took them in: a day's observations are folded right before the first decision
    /// of that day (they were recorded just before it), whatever their time stamps say — an
    /// observation is stamped with the end of its window in campaign time, which may come before
    /// the experiment decision itself. A day is complete once its forecast is recorded (the last
    /// step of a batch); observations of a day the agent did not finish are folded when that batch
    /// is delivered again.
    ///
    /// The knowledge base keeps a campaign's records in campaign time, and decisions made within
    /// one tick of the campaign's clock share a time stamp (a day's set-up and its first budget
    /// move, say); their wall-clock record times keep the order they were made in. A record of
    /// 0.1, without one, comes first (it is older than any that has one).
    pub fn rebuild(goal: &CampaignGoal, records: &[Record], agent: &str) -> Option<Self> {
        let mut decisions: Vec<&Decision> = records
            .iter()
            .filter_map(Record::as_decision)
            .filter(|d| d.agent.as_str() == agent)
            .collect();
        decisions.sort_by_key(|d| d.recorded_at);
        let completed = learned_days(decisions.iter().copied(), agent);
        let mut by_day: BTreeMap<u32, Vec<(OutcomeId, Observation)>> = BTreeMap::new();
        for (id, metrics) in observations(records) {
            if completed.contains(&metrics.day) {
                by_day
                    .entry(metrics.day)
                    .or_default()
                    .push((id, metrics.observation));
            }
        }
        let mut state: Option<ExperimentState> = None;
        for decision in decisions {
            if let (Some(day), Some(state)) = (day_of(decision), state.as_mut()) {
                state.fold_days_through(&mut by_day, day);
            }
            ExperimentState::apply(&mut state, goal, decision);
        }
        if let Some(state) = state.as_mut() {
            state.fold_days_through(&mut by_day, u32::MAX);
            state.experiment.seen_days = completed;
        }
        state
    }

    /// Folds the observations of every day up to `day` still in `by_day`, in day order.
    fn fold_days_through(
        &mut self,
        by_day: &mut BTreeMap<u32, Vec<(OutcomeId, Observation)>>,
        day: u32,
    ) {
        while let Some(entry) = by_day.first_entry() {
            if *entry.key() > day {
                break;
            }
            let (day, observations) = entry.remove_entry();
            self.fold(day, observations.iter().map(|(id, o)| (*id, o)));
        }
    }

    /// Takes in one recorded decision of the optimizer; an experiment decision creates the state.
    pub fn apply(state: &mut Option<Self>, goal: &CampaignGoal, decision: &Decision) {
        if let Some(choice) = choice::<kinds::Experiment>(decision) {
            let state = state.get_or_insert_with(|| ExperimentState::new(goal.clone()));
            state.last_move = None;
            state.experiment.start(
                &choice.arms,
                ChannelPlans {
                    daily: choice.daily,
                    curves: choice.curves,
                    bounds: choice.bounds,
                },
            );
            return;
        }
        let Some(state) = state.as_mut() else {
            return;
        };
        let exp = &mut state.experiment;
        if let Some(choice) = choice::<kinds::Allocation>(decision) {
            exp.daily = choice.daily;
            state.last_move = Some((decision.id, decision.reason.clone()));
        } else if let Some(choice) = choice::<kinds::TrafficSplit>(decision) {
            exp.merge_shares(choice.shares);
        } else if let Some(choice) = choice::<kinds::WinnerDeclared>(decision) {
            exp.winners.insert(choice.channel, choice.variant);
        } else if let Some(choice) = choice::<kinds::Drift>(decision) {
            exp.drifted(choice.explore_until, choice.keep);
        } else if let Some(inputs) = inputs::<kinds::Reexplored>(decision) {
            exp.reopen(inputs.keep);
        } else if is::<kinds::ApprovalRequested>(decision) {
            state.waiting_budget = Some(decision.id);
        } else if let Some(inputs) = inputs::<kinds::ApprovalApplied>(decision) {
            if state.waiting_budget == Some(inputs.request) {
                state.waiting_budget = None;
            }
        } else if let Some((inputs, choice)) = decode::<kinds::GeneticStep>(decision) {
            state.bred = (!choice.bred.is_empty()).then_some(Generation {
                day: inputs.day,
                decision: decision.id,
                bred: choice.bred,
            });
        } else if let Some((inputs, choice)) = decode::<kinds::ArmsJoined>(decision) {
            exp.set_arms(&choice.joined);
            exp.retire(
                choice.retired.iter().map(|r| r.variant.as_str()),
                inputs.day,
            );
            if state
                .bred
                .as_ref()
                .is_some_and(|g| Some(g.decision) == inputs.generation)
            {
                state.bred = None;
            }
        }
    }

    /// Folds in one batch of a day's recorded observations, each with the outcome that recorded
    /// it; returns how many were new. An outcome is folded once: the observations of an outcome
    /// folded by an earlier call (a replayed batch, or a batch a rebuilt experiment already holds)
    /// are skipped, however many of them share it.
    pub fn fold<'a>(
        &mut self,
        day: u32,
        recorded: impl IntoIterator<Item = (OutcomeId, &'a Observation)>,
    ) -> usize {
        let mut now = std::collections::HashSet::new();
        let mut new = 0;
        for (outcome, observation) in recorded {
            if !now.contains(&outcome) && !self.folded.insert(outcome) {
                continue;
            }
            now.insert(outcome);
            new += 1;
            self.experiment.fold(
                day,
                &Observed {
                    variant: &observation.variant,
                    channel: observation.channel,
                    conversions: observation.conversions,
                    impressions: observation.impressions,
                    spend: observation.spend,
                },
            );
        }
        new
    }
}

/// The days `agent` (the optimizer) finished learning from: those with a recorded forecast.
pub fn learned_days<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
    agent: &str,
) -> BTreeSet<u32> {
    decisions
        .into_iter()
        .filter(|d| d.agent.as_str() == agent)
        .filter_map(inputs::<kinds::ForecastMade>)
        .map(|inputs| inputs.day)
        .collect()
}

/// The campaign day an optimizer decision was made for, for the kinds that are made once a day
/// after that day's observations.
fn day_of(decision: &Decision) -> Option<u32> {
    inputs::<kinds::TrafficSplit>(decision)
        .map(|i| i.day)
        .or_else(|| inputs::<kinds::Allocation>(decision).and_then(|i| i.day))
        .or_else(|| inputs::<kinds::GeneticStep>(decision).map(|i| i.day))
        .or_else(|| inputs::<kinds::WinnerDeclared>(decision).map(|i| i.day))
        .or_else(|| inputs::<kinds::ForecastMade>(decision).map(|i| i.day))
}
