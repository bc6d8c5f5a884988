//! The orchestrator's view of a campaign, and where a campaign stood for the board after a
//! restart, rebuilt from recorded decisions with the same merge the live path applies.

use super::experiment::{ExperimentState, learned_days};
use super::{choice, inputs, is};
use crate::agents::decisions as kinds;
use std::collections::BTreeMap;

use crate::agents::decisions::Proposal;
use crate::agents::messages::BudgetMix;
use crate::domain::campaign::{CampaignGoal, Phase};
use crate::domain::optimization::Progress;
use crate::domain::pacing::goal_fraction;
use crate::kb::{Decision, DecisionId, Record};

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
    /// The day the goal was reached.
    pub achieved_day: Option<u32>,
    /// An operator's re-plan order not carried out yet, with its reason.
    pub replan_requested: Option<String>,
    /// Operator commands recorded (they number the command steps).
    pub commands: u32,
    /// Its approval requests not yet acted on, by request: what each proposes.
    pub waiting: BTreeMap<DecisionId, Proposal>,
    /// Autonomy changes recorded (they number their steps).
    pub autonomy_changes: u32,
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
        } else if is::<kinds::Replan>(decision) {
            // Counted whatever its payload: the count numbers the next re-plan's step.
            self.attempt += 1;
            if let Some(inputs) = inputs::<kinds::Replan>(decision) {
                self.last_replan_day = Some(inputs.day);
            }
            self.replan_requested = None;
        } else if let Some(choice) = choice::<kinds::PhaseChange>(decision) {
            self.phase = Some(choice.phase);
        } else if is::<kinds::ReplanOrdered>(decision) {
            self.commands += 1;
            let why = inputs::<kinds::ReplanOrdered>(decision).and_then(|i| i.why);
            self.replan_requested = Some(why.unwrap_or_else(|| decision.reason.clone()));
        } else if is::<kinds::Pause>(decision) {
            self.paused = true;
            self.commands += 1;
        } else if is::<kinds::Resume>(decision) {
            self.paused = false;
            self.commands += 1;
        } else if let Some(choice) = choice::<kinds::ApprovalRequested>(decision) {
            self.waiting.insert(decision.id, choice.proposal);
        } else if let Some(inputs) = inputs::<kinds::ApprovalApplied>(decision) {
            self.waiting.remove(&inputs.request);
        } else if is::<kinds::AutonomySet>(decision) {
            self.autonomy_changes += 1;
        } else if is::<kinds::GoalAchieved>(decision) {
            self.achieved = true;
            if let Some(inputs) = inputs::<kinds::GoalAchieved>(decision) {
                self.achieved_day = Some(inputs.day);
                // The tick that reaches the goal reports the phase of its progress without
                // recording a phase change; the rebuild derives the same phase.
                if let Some(goal) = &self.goal {
                    self.phase = Some(Phase::of_progress(goal_fraction(
                        inputs.conversions,
                        goal.target,
                    )));
                }
            }
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
    /// The channels' budgets against the plan's, as the optimizer last had them.
    pub mix: BudgetMix,
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
        let state = ExperimentState::rebuild(goal, records, optimizer);
        CampaignFigures {
            view: CampaignView::rebuild(
                decisions
                    .clone()
                    .filter(|d| d.agent.as_str() == orchestrator),
            ),
            day: learned_days(decisions, optimizer).last().copied(),
            progress: state.as_ref().map(|s| s.experiment.progress()),
            mix: state.map(|s| s.mix()).unwrap_or_default(),
        }
    }
}
