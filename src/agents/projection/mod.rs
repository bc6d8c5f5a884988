//! The one place that reads decision records back: every reader's state is rebuilt from the
//! knowledge base here, and live updates go through the same merge functions, so what an agent
//! holds after a restart is what it held before.
//!
//! Readers: the orchestrator's campaign state, the optimizer's experiment, the campaign loop's
//! resume (last learned day, planned start, the variants of the experiment), ingestion's catalog
//! and the decisions an observation links to, the compliance ledger, strategy's previous plan and
//! observed outcomes. Outside this module no code compares a decision kind or reads a choice by
//! key; it decodes records into the types of [`decisions`](super::decisions). A record that does
//! not decode (written by a newer campaignd, or damaged) is skipped, as an unknown kind is.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::decisions::{self as kinds, DecisionKind, OBSERVATION_OUTCOME, ObservationMetrics};
use crate::domain::campaign::{CampaignGoal, Channel, Phase};
use crate::domain::compliance::{ConsentLedger, ledger_of};
use crate::domain::optimization::{Arm, Experiment, Observed, Progress};
use crate::domain::strategy::ChannelOutcome;
use crate::kb::{Decision, DecisionId, Outcome, OutcomeId, Record};
use crate::market::{IdCatalog, Observation};

/// The inputs and choice of `decision` when it is of kind `K` and decodes.
pub fn decode<K: DecisionKind>(decision: &Decision) -> Option<(K::Inputs, K::Choice)>
where
    K::Inputs: DeserializeOwned,
    K::Choice: DeserializeOwned,
{
    if decision.kind != K::KIND {
        return None;
    }
    let inputs = Deserialize::deserialize(&decision.inputs).ok()?;
    let choice = Deserialize::deserialize(&decision.choice).ok()?;
    Some((inputs, choice))
}

/// The choice of `decision` when it is of kind `K` and its choice decodes (its inputs may not).
pub fn choice<K: DecisionKind>(decision: &Decision) -> Option<K::Choice>
where
    K::Choice: DeserializeOwned,
{
    (decision.kind == K::KIND)
        .then(|| Deserialize::deserialize(&decision.choice).ok())
        .flatten()
}

/// The inputs of `decision` when it is of kind `K` and its inputs decode (its choice may not).
pub fn inputs<K: DecisionKind>(decision: &Decision) -> Option<K::Inputs>
where
    K::Inputs: DeserializeOwned,
{
    (decision.kind == K::KIND)
        .then(|| Deserialize::deserialize(&decision.inputs).ok())
        .flatten()
}

/// Whether `decision` is of kind `K` (whatever its payload).
pub fn is<K: DecisionKind>(decision: &Decision) -> bool {
    decision.kind == K::KIND
}

/// The step of its campaign a decision was recorded for (`plan/0`, `split/day/3/sms`), as
/// [`ledger::record`](super::ledger::record) notes it in the inputs.
pub fn step_of(decision: &Decision) -> Option<&str> {
    decision.inputs.get("step").and_then(|s| s.as_str())
}

/// The day and observation of an observation outcome.
pub fn observation(outcome: &Outcome) -> Option<ObservationMetrics> {
    if outcome.kind != OBSERVATION_OUTCOME {
        return None;
    }
    Deserialize::deserialize(&outcome.metrics).ok()
}

/// Every observation outcome among `records`, in order, with its id.
pub fn observations(records: &[Record]) -> impl Iterator<Item = (OutcomeId, ObservationMetrics)> {
    records
        .iter()
        .filter_map(Record::as_outcome)
        .filter_map(|o| observation(o).map(|m| (o.id, m)))
}

/// The orchestrator's state of one campaign.
#[derive(Clone, Debug, Default)]
pub struct CampaignView {
    /// The goal with its start fixed (from its sub-goals).
    pub goal: Option<CampaignGoal>,
    pub set_up: bool,
    pub attempt: u32,
    pub last_replan_day: Option<u32>,
    pub phase: Option<Phase>,
    pub paused: bool,
    pub achieved: bool,
    /// An operator's re-plan order not carried out yet, with its reason.
    pub replan_requested: Option<String>,
    /// Operator commands recorded (they number the command steps).
    pub commands: u32,
}

impl CampaignView {
    /// Rebuilds from the orchestrator's own decisions, in the order they were recorded.
    pub fn rebuild<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> Self {
        let mut view = CampaignView::default();
        for decision in decisions {
            view.apply(decision);
        }
        view
    }

    /// Takes in one recorded decision.
    pub fn apply(&mut self, decision: &Decision) {
        if let Some(choice) = choice::<kinds::SubGoals>(decision) {
            self.goal = Some(choice.goal);
        } else if is::<kinds::Setup>(decision) {
            self.set_up = true;
        } else if let Some(inputs) = inputs::<kinds::Replan>(decision) {
            self.attempt += 1;
            self.last_replan_day = Some(inputs.day);
            self.replan_requested = None;
        } else if let Some(choice) = choice::<kinds::PhaseChange>(decision) {
            self.phase = Some(choice.phase);
        } else if let Some(inputs) = inputs::<kinds::ReplanOrdered>(decision) {
            self.commands += 1;
            self.replan_requested = Some(inputs.why.unwrap_or_else(|| decision.reason.clone()));
        } else if is::<kinds::Pause>(decision) {
            self.paused = true;
            self.commands += 1;
        } else if is::<kinds::Resume>(decision) {
            self.paused = false;
            self.commands += 1;
        } else if is::<kinds::GoalAchieved>(decision) {
            self.achieved = true;
        }
    }
}

/// Where a campaign stood after its last learned day, from the orchestrator's and the optimizer's
/// decisions and the observations: what the campaign board shows after a restart until the next
/// tick reports again.
#[derive(Clone, Debug, Default)]
pub struct CampaignFigures {
    pub view: CampaignView,
    /// The last day the optimizer learned from.
    pub day: Option<u32>,
    /// Conversions, spend and the forecast, as the optimizer counts them.
    pub progress: Option<Progress>,
}

impl CampaignFigures {
    /// Reads a campaign's records (decisions and outcomes, in the order the knowledge base keeps
    /// them) as the orchestrator (`orchestrator`) and the optimizer (`optimizer`) rebuild them.
    pub fn of(
        goal: &CampaignGoal,
        records: &[Record],
        orchestrator: &str,
        optimizer: &str,
    ) -> Self {
        let decisions = records.iter().filter_map(Record::as_decision);
        CampaignFigures {
            view: CampaignView::rebuild(
                decisions
                    .clone()
                    .filter(|d| d.agent.as_str() == orchestrator),
            ),
            day: learned_days(decisions, optimizer).last().copied(),
            progress: ExperimentState::rebuild(goal, records, optimizer)
                .map(|state| state.experiment.progress()),
        }
    }
}

/// The optimizer's state of one campaign: the experiment and the observations already folded in,
/// by outcome id (a replayed batch is not counted twice, and a late batch for a day already
/// learned from is still counted for the days after it).
#[derive(Clone, Debug)]
pub struct ExperimentState {
    pub experiment: Experiment,
    pub folded: std::collections::HashSet<OutcomeId>,
}

impl ExperimentState {
    pub fn new(goal: CampaignGoal) -> Self {
        ExperimentState {
            experiment: Experiment::new(goal),
            folded: Default::default(),
        }
    }

    /// Rebuilds from the optimizer's decisions and the campaign's observations, in the order the
    /// optimizer took them in: a day's observations are folded right before the first decision
    /// of that day (they were recorded just before it), whatever their time stamps say — an
    /// observation is stamped with the end of its window in campaign time, which may come before
    /// the experiment decision itself. A day is complete once its forecast is recorded (the last
    /// step of a batch); observations of a day the agent did not finish are folded when that batch
    /// is delivered again.
    pub fn rebuild(goal: &CampaignGoal, records: &[Record], agent: &str) -> Option<Self> {
        let decisions: Vec<&Decision> = records
            .iter()
            .filter_map(Record::as_decision)
            .filter(|d| d.agent.as_str() == agent)
            .collect();
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
            for (id, observation) in observations {
                self.fold(id, day, &observation);
            }
        }
    }

    /// Takes in one recorded decision of the optimizer; an experiment decision creates the state.
    pub fn apply(state: &mut Option<Self>, goal: &CampaignGoal, decision: &Decision) {
        if let Some(choice) = choice::<kinds::Experiment>(decision) {
            state
                .get_or_insert_with(|| ExperimentState::new(goal.clone()))
                .experiment
                .start(&choice.arms, choice.daily, choice.curves);
            return;
        }
        let Some(exp) = state.as_mut().map(|s| &mut s.experiment) else {
            return;
        };
        if let Some(choice) = choice::<kinds::Allocation>(decision) {
            exp.daily = choice.daily;
        } else if let Some(choice) = choice::<kinds::TrafficSplit>(decision) {
            exp.merge_shares(choice.shares);
        } else if let Some(choice) = choice::<kinds::Drift>(decision) {
            exp.drifted(choice.explore_until, choice.keep);
        }
    }

    /// Folds one recorded observation in once; returns whether it was new.
    pub fn fold(&mut self, outcome: OutcomeId, day: u32, observation: &Observation) -> bool {
        if !self.folded.insert(outcome) {
            return false;
        }
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
        true
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
        .or_else(|| inputs::<kinds::ForecastMade>(decision).map(|i| i.day))
}

/// The start the orchestrator fixed when it first planned the campaign (its sub-goals).
pub fn planned_start(decisions: &[Decision]) -> Option<DateTime<Utc>> {
    decisions
        .iter()
        .filter_map(choice::<kinds::SubGoals>)
        .find_map(|choice| choice.goal.start)
}

/// Every variant the campaign's experiment decisions named, over all attempts, in order.
pub fn experiment_arms(decisions: &[Decision]) -> Vec<Arm> {
    decisions
        .iter()
        .filter_map(choice::<kinds::Experiment>)
        .flat_map(|choice| choice.arms)
        .collect()
}

/// The campaign's variants as far as its experiment decisions know them (every attempt's arms, so
/// a variant of an earlier plan still counts). The campaign itself is always known, even before
/// its experiment starts: an observation then comes back as an unknown variant.
pub fn catalog_of(goal: &CampaignGoal, decisions: &[Decision]) -> IdCatalog {
    let mut catalog = IdCatalog::default();
    catalog.add_campaign(goal.id.clone());
    for arm in experiment_arms(decisions) {
        catalog.add(goal.id.clone(), arm.variant);
    }
    catalog
}

/// The decisions an observation is evidence for: the variant's latest approving review, the latest
/// experiment, the latest traffic split of its channel and the latest budget allocation.
pub fn links(decisions: &[Decision], observation: &Observation) -> Vec<DecisionId> {
    let latest = |wanted: &dyn Fn(&Decision) -> bool| {
        decisions.iter().rev().find(|d| wanted(d)).map(|d| d.id)
    };
    [
        latest(&|d| {
            decode::<kinds::Review>(d).is_some_and(|(inputs, choice)| {
                inputs.variant == observation.variant && choice.approved
            })
        }),
        latest(&is::<kinds::Experiment>),
        latest(&|d| {
            inputs::<kinds::TrafficSplit>(d)
                .is_some_and(|inputs| inputs.channel == observation.channel)
        }),
        latest(&is::<kinds::Allocation>),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Whether a recorded review approved its variant (a replayed review keeps its first verdict).
pub fn review_approved(decision: &Decision) -> bool {
    choice::<kinds::Review>(decision).is_some_and(|choice| choice.approved)
}

/// A tenant's consent ledger, (subject, channel) → the record in force, from its consent
/// decisions in the order they were recorded, merged as live recording merges them.
pub fn consent_ledger<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> ConsentLedger {
    ledger_of(decisions.into_iter().filter_map(choice::<kinds::Consent>))
}

/// The channel shares of the campaign's latest plan, to show how a re-plan moved them.
pub fn latest_plan_shares(decisions: &[Decision]) -> BTreeMap<Channel, f64> {
    decisions
        .iter()
        .rev()
        .find(|d| is::<kinds::Plan>(d))
        .and_then(choice::<kinds::Plan>)
        .flatten()
        .map(|plan| {
            plan.channels
                .into_iter()
                .map(|c| (c.channel, c.share))
                .collect()
        })
        .unwrap_or_default()
}

/// What each channel delivered so far, from the campaign's observation outcomes.
pub fn channel_outcomes(records: &[Record]) -> BTreeMap<Channel, ChannelOutcome> {
    let mut per_channel: BTreeMap<Channel, ChannelOutcome> = BTreeMap::new();
    for (_, metrics) in observations(records) {
        let obs = metrics.observation;
        per_channel.entry(obs.channel).or_default().add_observed(
            obs.impressions,
            obs.clicks,
            obs.conversions,
            obs.spend,
        );
    }
    per_channel
}

/// Whether a decision of a kind the built-in agents write decodes into its type: `None` for a kind
/// they do not write (a custom agent's), `Some(false)` for a record this campaignd cannot read.
/// Used to check that knowledge bases written by earlier versions stay readable.
pub fn decodes_as_its_kind(decision: &Decision) -> Option<bool> {
    fn check<K: DecisionKind>(decision: &Decision) -> Option<bool>
    where
        K::Inputs: DeserializeOwned,
        K::Choice: DeserializeOwned,
    {
        is::<K>(decision).then(|| decode::<K>(decision).is_some())
    }
    check::<kinds::SubGoals>(decision)
        .or_else(|| check::<kinds::Setup>(decision))
        .or_else(|| check::<kinds::Hold>(decision))
        .or_else(|| check::<kinds::Replan>(decision))
        .or_else(|| check::<kinds::PhaseChange>(decision))
        .or_else(|| check::<kinds::Pause>(decision))
        .or_else(|| check::<kinds::Resume>(decision))
        .or_else(|| check::<kinds::ReplanOrdered>(decision))
        .or_else(|| check::<kinds::GoalAchieved>(decision))
        .or_else(|| check::<kinds::Plan>(decision))
        .or_else(|| check::<kinds::Creatives>(decision))
        .or_else(|| check::<kinds::Revision>(decision))
        .or_else(|| check::<kinds::Review>(decision))
        .or_else(|| check::<kinds::Consent>(decision))
        .or_else(|| check::<kinds::Experiment>(decision))
        .or_else(|| check::<kinds::Allocation>(decision))
        .or_else(|| check::<kinds::TrafficSplit>(decision))
        .or_else(|| check::<kinds::Drift>(decision))
        .or_else(|| check::<kinds::GeneticStep>(decision))
        .or_else(|| check::<kinds::ForecastMade>(decision))
}

#[cfg(test)]
mod tests;
