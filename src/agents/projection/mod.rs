//! The one place that reads decision records back: every reader's state is rebuilt from the
//! knowledge base here, and live updates go through the same merge functions, so what an agent
//! holds after a restart is what it held before.
//!
//! Readers: the orchestrator's campaign state, the optimizer's experiment, the campaign loop's
//! resume (last learned day, planned start, the variants of the experiment), ingestion's catalog
//! and the decisions an observation links to, the compliance ledger, strategy's previous plan and
//! observed outcomes, the campaign board at start. Outside this module no code compares a decision
//! kind or reads a choice by key; it decodes records into the types of
//! [`decisions`](super::decisions). A record that does not decode (written by a newer campaignd, or
//! damaged) is skipped, as an unknown kind is.
//!
//! # Layout
//!
//! - this file: decoding, and the small readers (resume, ingestion, compliance, strategy).
//! - `campaign`: [`CampaignView`] (the orchestrator's state) and [`CampaignFigures`] (the board's).
//! - `experiment`: [`ExperimentState`] (the optimizer's), and the days it learned from.
//! - `history`: [`CampaignHistory`], what the dashboard draws of one campaign.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

mod campaign;
mod creatives;
mod experiment;
mod history;

pub use campaign::{CampaignFigures, CampaignView};
pub use creatives::approved_creatives;
pub use experiment::{ExperimentState, Generation, learned_days};
pub use history::{CampaignHistory, Marker, Standing};

use super::decisions::{
    self as kinds, DecisionKind, KindVisitor, OBSERVATION_OUTCOME, OBSERVATIONS_OUTCOME,
    ObservationMetrics, ObservationReport,
};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::compliance::{ConsentLedger, ledger_of};
use crate::domain::optimization::Arm;
use crate::domain::strategy::ChannelOutcome;
use crate::kb::{Decision, DecisionId, Outcome, OutcomeId, Record};
use crate::market::{IdCatalog, Observation, Placement};

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

/// The observations an outcome recorded, each with its day: the lines of an `observations`
/// outcome, or the one of an `observation` outcome; none for any other outcome.
pub fn observed(outcome: &Outcome) -> Vec<ObservationMetrics> {
    match outcome.kind.as_str() {
        OBSERVATIONS_OUTCOME => ObservationReport::deserialize(&outcome.metrics)
            .map(|report| {
                let day = report.day;
                report
                    .observations
                    .into_iter()
                    .map(|observation| ObservationMetrics { day, observation })
                    .collect()
            })
            .unwrap_or_default(),
        OBSERVATION_OUTCOME => ObservationMetrics::deserialize(&outcome.metrics)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Every observation among `records`' outcomes, in order, each with the id of the outcome that
/// recorded it (several observations share the outcome of their channel and day).
pub fn observations(records: &[Record]) -> impl Iterator<Item = (OutcomeId, ObservationMetrics)> {
    records
        .iter()
        .filter_map(Record::as_outcome)
        .flat_map(|o| observed(o).into_iter().map(move |m| (o.id, m)))
}

/// The start the orchestrator (`orchestrator`) fixed when it first planned the campaign (its
/// sub-goals).
pub fn planned_start(decisions: &[Decision], orchestrator: &str) -> Option<DateTime<Utc>> {
    decisions
        .iter()
        .filter(|d| d.agent.as_str() == orchestrator)
        .filter_map(choice::<kinds::SubGoals>)
        .find_map(|choice| choice.goal.start)
}

/// The orchestrator's (`orchestrator`) decision that the campaign reached its goal, with the day
/// it was reached on (when its inputs decode): once recorded, the campaign is finished.
pub fn goal_achieved(
    decisions: &[Decision],
    orchestrator: &str,
) -> Option<(DecisionId, Option<u32>)> {
    decisions
        .iter()
        .filter(|d| d.agent.as_str() == orchestrator)
        .find(|d| is::<kinds::GoalAchieved>(d))
        .map(|d| (d.id, inputs::<kinds::GoalAchieved>(d).map(|i| i.day)))
}

/// Every variant the campaign's experiment decisions named (over all attempts) and every bred one
/// that joined it, in order.
pub fn experiment_arms(decisions: &[Decision]) -> Vec<Arm> {
    decisions
        .iter()
        .flat_map(|d| {
            let started = choice::<kinds::Experiment>(d).map(|c| c.arms);
            let joined = choice::<kinds::ArmsJoined>(d).map(|c| c.joined);
            started.or(joined).unwrap_or_default()
        })
        .collect()
}

/// Adds to `catalog` the campaign's variants as far as `decisions`' experiments name them, with
/// the channel and segment each was written for (every attempt's arms, so a variant of an earlier
/// plan still counts), for a reader that takes in a campaign's decisions a few at a time. The
/// campaign itself is always added, even before its experiment starts: an observation then comes
/// back as an unknown variant.
pub fn add_to_catalog(catalog: &mut IdCatalog, goal: &CampaignGoal, decisions: &[Decision]) {
    catalog.add_campaign(goal.id.clone());
    for arm in experiment_arms(decisions) {
        let placement = Placement {
            channel: arm.channel,
            segment: arm.segment,
        };
        catalog.add_placed(goal.id.clone(), &arm.variant, placement);
    }
}

/// The decisions observations are evidence for, found in one pass over a campaign's decisions:
/// each variant's latest approving review, the latest experiment, each channel's latest traffic
/// split and the latest budget allocation.
#[derive(Debug, Default)]
pub struct Links {
    approvals: HashMap<String, DecisionId>,
    experiment: Option<DecisionId>,
    splits: BTreeMap<Channel, DecisionId>,
    allocation: Option<DecisionId>,
}

impl Links {
    /// `decisions` in time order, as the knowledge base returns them: a later decision replaces
    /// an earlier one of the same role.
    pub fn of(decisions: &[Decision]) -> Self {
        let mut links = Links::default();
        links.add(decisions);
        links
    }

    /// Takes in decisions recorded after those already taken in, in time order.
    pub fn add(&mut self, decisions: &[Decision]) {
        for d in decisions {
            if is::<kinds::Review>(d) {
                if let Some(variant) = approved_variant(d) {
                    self.approvals.insert(variant.to_owned(), d.id);
                }
            } else if is::<kinds::Experiment>(d) {
                self.experiment = Some(d.id);
            } else if let Some(inputs) = inputs::<kinds::TrafficSplit>(d) {
                self.splits.insert(inputs.channel, d.id);
            } else if is::<kinds::Allocation>(d) {
                self.allocation = Some(d.id);
            }
        }
    }

    /// The decisions observations of one channel are evidence for: the experiment, the
    /// channel's split and the allocation.
    pub fn of_channel(&self, channel: Channel) -> Vec<DecisionId> {
        [
            self.experiment,
            self.splits.get(&channel).copied(),
            self.allocation,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The reviews that approved the variants of `observations`, each once, in order.
    pub fn approvals<'a>(
        &self,
        observations: impl IntoIterator<Item = &'a Observation>,
    ) -> Vec<DecisionId> {
        let mut seen = HashSet::new();
        observations
            .into_iter()
            .filter_map(|o| self.approvals.get(&o.variant).copied())
            .filter(|&approval| seen.insert(approval))
            .collect()
    }
}

/// The variant an approving review approved, read from those two fields alone: a review's inputs
/// hold the whole message, and a campaign has a review per variant. Whatever this refuses would
/// not decode as an approving review either.
fn approved_variant(review: &Decision) -> Option<&str> {
    #[derive(Deserialize)]
    struct Reviewed<'a> {
        variant: &'a str,
    }
    #[derive(Deserialize)]
    struct Verdict {
        approved: bool,
    }
    let approved = Verdict::deserialize(&review.choice).is_ok_and(|v| v.approved);
    approved
        .then(|| Reviewed::deserialize(&review.inputs).ok())
        .flatten()
        .map(|r| r.variant)
}

/// Whether a recorded review approved its variant (a replayed review keeps its first verdict).
pub fn review_approved(decision: &Decision) -> bool {
    choice::<kinds::Review>(decision).is_some_and(|choice| choice.approved)
}

/// A tenant's consent ledger, (subject, channel) → the record in force, from its consent
/// decisions in the order they were recorded, merged as live recording merges them. An erased
/// subject has no record at all, whatever order its erasure was read in.
pub fn consent_ledger<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> ConsentLedger {
    let decisions: Vec<&Decision> = decisions.into_iter().collect();
    let erased: BTreeSet<String> = decisions
        .iter()
        .filter_map(|d| inputs::<kinds::Erasure>(d))
        .map(|erasure| erasure.subject)
        .collect();
    ledger_of(
        decisions
            .into_iter()
            .filter_map(choice::<kinds::Consent>)
            .filter(|record| !erased.contains(&record.subject)),
    )
}

/// The channel shares of a plan decision, to show how a re-plan moved them (none for a plan that
/// found no plan); `None` for another kind of decision.
pub fn plan_shares(decision: &Decision) -> Option<BTreeMap<Channel, f64>> {
    if !is::<kinds::Plan>(decision) {
        return None;
    }
    Some(
        choice::<kinds::Plan>(decision)
            .flatten()
            .map(|plan| {
                plan.channels
                    .into_iter()
                    .map(|c| (c.channel, c.share))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// What each channel delivered so far, from the campaign's observation outcomes.
pub fn channel_outcomes(outcomes: &[Outcome]) -> BTreeMap<Channel, ChannelOutcome> {
    let mut per_channel: BTreeMap<Channel, ChannelOutcome> = BTreeMap::new();
    for metrics in outcomes.iter().flat_map(observed) {
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
    struct Check<'a> {
        decision: &'a Decision,
        decodes: Option<bool>,
    }
    impl KindVisitor for Check<'_> {
        fn visit<K>(&mut self)
        where
            K: DecisionKind,
            K::Inputs: DeserializeOwned,
            K::Choice: DeserializeOwned,
        {
            if is::<K>(self.decision) {
                self.decodes = Some(decode::<K>(self.decision).is_some());
            }
        }
    }
    let mut check = Check {
        decision,
        decodes: None,
    };
    kinds::every_kind(&mut check);
    check.decodes
}

#[cfg(test)]
mod tests;
