//! The optimization agent: runs each campaign's experiment. On every batch of observations it
//! updates the posteriors of the approved variants, splits traffic between them by Thompson
//! sampling (seeded per campaign and day, seed recorded), moves budget between channels toward the
//! highest marginal return, watches the leading variants for drift and re-opens exploration when one
//! drops, breeds the next generation of creative combinations, and forecasts when the goal will be met.
//!
//! Its working state is the projection of its own decisions and the campaign's observations
//! ([`ExperimentState`]), rebuilt the first time a campaign is touched after a start and updated
//! through the same merge as each decision is recorded, so a restart loses nothing learned. The
//! rules are the domain's ([`crate::domain::optimization`]). It only ever sees observations, never
//! the market's true rates, and it never buys anything itself: the orchestrator asks it for the
//! day's buys.
//!
//! # Layout
//!
//! - this file: the agent, its requests (start an experiment, progress, the day's buys) and the
//!   re-explore command; `learn`: what it decides from a batch of observations; `join`: variants
//!   joining a running experiment; `budget_approval`: acting on an answered budget move.

mod budget_approval;
mod join;
mod learn;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::approvals::ApprovalBook;
use super::decisions::{self as kinds, AllocationChoice, AllocationInputs, ExperimentChoice};
use super::ledger::{self, Draft};
use super::messages::{GoalAchieved, ObservationsRecorded, Phase, Reexplore};
use super::playbook::LivePlaybook;
use super::projection::{ExperimentState, Generation};
use super::resident::Resident;
use crate::domain::campaign::{Buy, CampaignGoal, Channel};
use crate::domain::money::money_text;
use crate::domain::optimization::{
    OptimizationPlaybook, ResponseCurve, SpendBounds, hand_off_unfunded, plan_buys,
};
use crate::kb::{Decision, DecisionId, KnowledgeBase};
use crate::protocol::{CampaignId, Envelope, Payload, TenantId};
use crate::runtime::{
    Agent, AgentError, Context, HandleCommand, HandleEvent, HandleRequest, Request, Routes,
    StartContext,
};

pub use super::messages::{Arm, BudgetMix};
pub use crate::domain::optimization::Progress;

/// Start (attempt 0) or re-budget (a re-plan) a campaign's experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartExperiment {
    pub goal: CampaignGoal,
    pub attempt: u32,
    pub arms: Vec<Arm>,
    /// Planned spend per channel and day.
    pub daily: BTreeMap<Channel, f64>,
    /// The plan's response curve per channel.
    pub curves: BTreeMap<Channel, ResponseCurve>,
    /// The plan's bounds on each channel's daily spend.
    #[serde(default)]
    pub bounds: BTreeMap<Channel, SpendBounds>,
    /// The plan decision this follows from.
    pub plan: DecisionId,
}

impl Payload for StartExperiment {
    const ACTION: &'static str = "start_experiment";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
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

/// The day's buys for a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanBuys {
    pub goal: CampaignGoal,
    pub day: u32,
    pub phase: Phase,
}

impl Payload for PlanBuys {
    const ACTION: &'static str = "plan_buys";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
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

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for GetProgress {
    type Response = Standing;
}

/// How far a campaign is, its channels' budgets against the plan, and a bred generation waiting
/// to be written, reviewed and joined.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Standing {
    pub progress: Progress,
    pub mix: BudgetMix,
    #[serde(default)]
    pub bred: Option<Generation>,
}

/// Approved variants join the experiment: a bred generation's, or creatives a person approved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinArms {
    pub goal: CampaignGoal,
    /// The campaign day they join on.
    pub day: u32,
    pub source: ArmsSource,
    /// Content's decision writing them.
    pub creatives: Option<DecisionId>,
    /// The approved variants.
    pub arms: Vec<Arm>,
}

/// Where joining variants come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ArmsSource {
    /// The generation they were written from (it is closed by joining, whatever joins).
    Bred(Generation),
    /// The approval request a person approved them in.
    Approved { request: DecisionId },
}

impl Payload for JoinArms {
    const ACTION: &'static str = "join_arms";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for JoinArms {
    type Response = Joined;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Joined {
    pub decision: DecisionId,
    pub joined: usize,
    pub retired: usize,
}

impl Payload for Joined {
    const ACTION: &'static str = "joined";
}

impl Payload for Standing {
    const ACTION: &'static str = "standing";
}

pub struct Optimization {
    kb: Arc<KnowledgeBase>,
    book: ApprovalBook,
    playbook: LivePlaybook<OptimizationPlaybook>,
    experiments: Resident<ExperimentState>,
    /// Per campaign, the latest day's buys answered, until that day's observations are learned
    /// from: what the sample-ratio check compares the delivered split with. Not kept across a
    /// restart (a day planned before one is not checked).
    planned: HashMap<CampaignId, (u32, Vec<Buy>)>,
}

impl Agent for Optimization {
    const NAME: &'static str = "optimization";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        let playbook = LivePlaybook::<OptimizationPlaybook>::load(&ctx.services, Self::NAME)?;
        let book = ApprovalBook::open(&kb)?;
        Ok(Optimization {
            kb,
            book,
            playbook,
            experiments: Resident::new(Self::NAME, ctx.worker),
            planned: HashMap::new(),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<StartExperiment>()
            .request::<PlanBuys>()
            .request::<GetProgress>()
            .request::<JoinArms>()
            .event::<ObservationsRecorded>()
            .event::<GoalAchieved>()
            .command::<Reexplore>();
    }
}

impl Optimization {
    /// The campaign's experiment, rebuilt from the knowledge base when it is not in memory.
    fn experiment(
        &mut self,
        goal: &CampaignGoal,
    ) -> Result<Option<&mut ExperimentState>, AgentError> {
        if !self.experiments.contains_key(&goal.id) {
            let found = self.kb.by_campaign(&ledger::scope(goal), &goal.id)?;
            if let Some(rebuilt) = ExperimentState::rebuild(goal, &found.records, Self::NAME) {
                self.experiments.insert(goal.id.clone(), rebuilt);
            }
        }
        Ok(self.experiments.get_mut(&goal.id))
    }

    /// Whether an experiment of `goal` was recorded by any attempt up to `attempt`.
    fn experiment_recorded(&self, goal: &CampaignGoal, attempt: u32) -> Result<bool, AgentError> {
        let scope = ledger::scope(goal);
        for earlier in 0..=attempt {
            let id = ledger::step_id(goal, &experiment_step(earlier));
            if self.kb.decision(&scope, id)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Records `draft` about `goal` and takes the recorded decision into its experiment.
    async fn record<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        draft: Draft,
    ) -> Result<Decision, AgentError> {
        let mut state = self.experiments.remove(&goal.id);
        let recorded = record_into(&self.kb, ctx, envelope, goal, draft, &mut state).await;
        if let Some(state) = state {
            self.experiments.insert(goal.id.clone(), state);
        }
        recorded
    }
}

/// Records `draft` about `goal` and takes the recorded decision into `state`, through the same
/// merge a rebuild uses.
async fn record_into<P>(
    kb: &KnowledgeBase,
    ctx: &Context,
    envelope: &Envelope<P>,
    goal: &CampaignGoal,
    draft: Draft,
    state: &mut Option<ExperimentState>,
) -> Result<Decision, AgentError> {
    let decision = ledger::record(kb, ctx, envelope, goal, draft).await?;
    ExperimentState::apply(state, goal, &decision);
    Ok(decision)
}

/// The step an attempt's experiment is recorded under.
fn experiment_step(attempt: u32) -> String {
    format!("experiment/{attempt}")
}

impl HandleRequest<StartExperiment> for Optimization {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<StartExperiment>,
    ) -> Result<ExperimentStarted, AgentError> {
        let p = &request.payload;
        // Loads what is recorded so far, so that a re-plan's experiment joins it. A campaign that
        // has started no experiment yet has nothing to join: asking for its earlier attempts'
        // experiments by their step ids spares reading every record of a new campaign (a review
        // per variant among them), which was a tenth of a thousand new campaigns' cycles.
        if self.experiments.contains_key(&p.goal.id)
            || self.experiment_recorded(&p.goal, p.attempt)?
        {
            self.experiment(&p.goal)?;
        }
        let mut draft = Draft::new::<kinds::Experiment>(
            experiment_step(p.attempt),
            kinds::ExperimentInputs {
                plan: p.plan,
                attempt: p.attempt,
            },
            ExperimentChoice {
                arms: p.arms.clone(),
                daily: p.daily.clone(),
                curves: p.curves.clone(),
                bounds: p.bounds.clone(),
            },
        )
        .confidence(0.5);
        for arm in &p.arms {
            draft = draft.alternative(
                &arm.variant,
                1.0,
                Some(format!("{} / {}", arm.channel, arm.segment)),
            );
        }
        let draft = draft.reason(format!(
            "{} approved variants enter the test with even shares per channel; daily budget {}",
            p.arms.len(),
            p.daily
                .iter()
                .map(|(c, s)| format!("{c} {}", money_text(*s, &p.goal.budget.currency)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let decision = self.record(ctx, &request, &p.goal, draft).await?;
        // A channel whose every variant was blocked would keep its budget unspent (and the
        // allocation could even move everything there): hand its budget to the funded channels.
        let handoff = self
            .experiment(&p.goal)?
            .and_then(|state| hand_off_unfunded(&state.experiment).map(|h| (state, h)))
            .map(|(state, h)| (state.experiment.daily.clone(), h));
        if let Some((before, handoff)) = handoff {
            let draft = Draft::new::<kinds::Allocation>(
                format!("allocation/unfunded/{}", p.attempt),
                AllocationInputs {
                    attempt: Some(p.attempt),
                    before,
                    unfunded: handoff.unfunded.clone(),
                    ..AllocationInputs::default()
                },
                AllocationChoice {
                    daily: handoff.daily.clone(),
                },
            )
            .reason(format!(
                "no approved variant on {}: its {} a day goes to {} in proportion to their planned budgets ({})",
                handoff.unfunded.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                money_text(handoff.moved, &p.goal.budget.currency),
                handoff.funded.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                handoff.daily.iter().map(|(c, s)| format!("{c} {}", money_text(*s, &p.goal.budget.currency))).collect::<Vec<_>>().join(", ")
            ))
            .confidence(1.0);
            self.record(ctx, &request, &p.goal, draft).await?;
        }
        Ok(ExperimentStarted {
            decision: decision.id,
        })
    }
}

impl HandleRequest<GetProgress> for Optimization {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<GetProgress>,
    ) -> Result<Standing, AgentError> {
        Ok(self
            .experiment(&request.payload.goal)?
            .map(|state| Standing {
                progress: state.experiment.progress(),
                mix: state.mix(),
                bred: state.bred.clone(),
            })
            .unwrap_or_default())
    }
}

/// A campaign that reached its goal buys nothing more: its experiment leaves memory (a question
/// about it later rebuilds it from the knowledge base).
impl HandleEvent<GoalAchieved> for Optimization {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<GoalAchieved>,
    ) -> Result<(), AgentError> {
        self.experiments.remove(&event.payload.campaign);
        self.planned.remove(&event.payload.campaign);
        Ok(())
    }
}

impl HandleRequest<PlanBuys> for Optimization {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<PlanBuys>,
    ) -> Result<Buys, AgentError> {
        let PlanBuys { goal, day, phase } = &request.payload;
        self.budget_answered(ctx, &request, goal).await?;
        self.playbook.refresh(ctx.services());
        let floor = self.playbook.get().traffic_floor;
        let buys = self
            .experiment(goal)?
            .map(|state| plan_buys(&state.experiment, *day, *phase, floor))
            .unwrap_or_default();
        self.planned.insert(goal.id.clone(), (*day, buys.clone()));
        Ok(Buys { buys })
    }
}

impl HandleCommand<Reexplore> for Optimization {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Reexplore>,
    ) -> Result<(), AgentError> {
        self.playbook.refresh(ctx.services());
        let keep = self.playbook.get().explore_keep;
        let Some(goal) = self
            .experiments
            .get(&command.payload.campaign)
            .map(|state| state.experiment.goal.clone())
        else {
            tracing::warn!(campaign = %command.payload.campaign, "re-explore ordered for a campaign without an experiment here; ignored");
            return Ok(());
        };
        // Recorded, so that a rebuild re-opens exploration where the live experiment did; the
        // order's own id makes a replayed order idempotent.
        let why = command.payload.why.clone();
        let draft = Draft::new::<kinds::Reexplored>(
            format!("reexplore/{}", command.id),
            kinds::ReexploreInputs {
                why: why.clone(),
                keep,
            },
            "reexplore".to_owned(),
        )
        .reason(format!(
            "exploration re-opened, keeping {:.0} % of the evidence: {why}",
            keep * 100.0
        ))
        .confidence(1.0);
        self.record(ctx, &command, &goal, draft).await?;
        tracing::info!(campaign = %command.payload.campaign, %why, "exploration re-opened");
        Ok(())
    }
}
