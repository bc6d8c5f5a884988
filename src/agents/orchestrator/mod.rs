//! The orchestrator: turns a campaign goal into sub-goals (funnel targets, budget per channel and
//! day), drives strategy → content → compliance → optimization, and on every clock tick computes the
//! campaign's progress and phase (explore below 30 % of the goal, optimize to 70 %, stabilize above),
//! re-plans when the forecast misses the deadline, announces `GoalAchieved`, and obeys operators'
//! pause, resume and re-plan commands.
//!
//! It fails closed: a variant reaches the market only with compliance's approval, and while
//! compliance is isolated or unreachable nothing is approved and nothing is bought. Whether it is
//! isolated is read from the runtime's live status at every tick, never remembered, so neither a
//! restart, a missed event nor a `resume` can lift the hold; a peer that does not answer holds
//! the day instead of failing the handler. Its state is
//! the projection of its own decisions in the knowledge base ([`CampaignView`]), rebuilt after a
//! restart and updated by the same merge as each decision is recorded, so a restart resumes where
//! it stopped (every step has a deterministic id; a replayed step is not decided twice).
//!
//! # Layout
//!
//! - this file: the agent, its routes and its state; `setup`: plan, write, review, start the
//!   experiment; `tick`: one campaign day; `generation`: a bred generation written, reviewed and
//!   joined; `commands`: operators' orders and the events it hears; `approvals`: people's
//!   answers, expiries, autonomy, and acting on the answers to its own requests; `creatives`:
//!   risky creatives held for a person; `replan`: re-plans and their answers; `hold`: why a day
//!   is held and its decision.

mod approvals;
mod commands;
mod creatives;
mod generation;
mod hold;
mod replan;
mod setup;
mod tick;

use std::sync::Arc;

use super::approvals::ApprovalBook;
use super::ledger::{self, Draft};
use super::messages::{
    AgentIsolated, AgentRevived, AnswerApproval, GOAL_ACHIEVED, GOAL_PROGRESS, GoalProgress,
    ObservationsRecorded, Pause, Replan, Resume, SetAutonomy, Tick, WithdrawApprovals,
};
use super::projection::CampaignView;
use super::resident::Resident;
use crate::domain::campaign::CampaignGoal;
use crate::kb::KnowledgeBase;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, Context, Routes, StartContext};

pub struct Orchestrator {
    kb: Arc<KnowledgeBase>,
    book: ApprovalBook,
    campaigns: Resident<CampaignView>,
}

impl Agent for Orchestrator {
    const NAME: &'static str = "orchestrator";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        let book = ApprovalBook::open(&kb)?;
        Ok(Orchestrator {
            kb,
            book,
            campaigns: Resident::new(Self::NAME, ctx.worker),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<Tick>()
            .request::<AnswerApproval>()
            .request::<SetAutonomy>()
            .request::<WithdrawApprovals>()
            .event::<AgentIsolated>()
            .event::<GoalProgress>()
            .event::<ObservationsRecorded>()
            .command::<Pause>()
            .command::<Resume>()
            .command::<Replan>()
            .command::<AgentRevived>()
            .publishes(GOAL_PROGRESS)
            .publishes(GOAL_ACHIEVED);
    }
}

impl Orchestrator {
    /// The campaign's state, rebuilt from the orchestrator's decisions when it is not in memory.
    fn state(&mut self, goal: &CampaignGoal) -> Result<&mut CampaignView, AgentError> {
        if !self.campaigns.contains_key(&goal.id) {
            let found = self
                .kb
                .decisions_by_campaign(&ledger::scope(goal), &goal.id)?;
            let own = found
                .records
                .iter()
                .filter(|d| d.agent.as_str() == Self::NAME);
            self.campaigns
                .insert(goal.id.clone(), CampaignView::rebuild(own));
        }
        self.campaigns
            .get_mut(&goal.id)
            .ok_or_else(|| AgentError::msg("campaign state missing right after loading"))
    }

    /// Records `draft` about `goal` and takes the recorded decision into the campaign's state,
    /// through the same merge a rebuild uses.
    async fn record<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        draft: Draft,
    ) -> Result<crate::kb::Decision, AgentError> {
        let kb = Arc::clone(&self.kb);
        let decision = ledger::record(&kb, ctx, envelope, goal, draft).await?;
        self.state(goal)?.apply(&decision);
        Ok(decision)
    }
}
