//! The strategy agent: answers plan requests with KPIs, channel mix and budget from predicted
//! return, and re-plans from the outcomes the knowledge base holds for the campaign (the feedback
//! loop: a channel that delivers less than its prior predicted is believed less, gets less budget,
//! and the decision's reason says so with the numbers).
//!
//! It works from its playbook's channel priors and never sends anything or talks to the market; a
//! goal it cannot plan is answered with the reason, never with an agent failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::decisions::{self as kinds, PlanChoice, PlanInputs, PlannedChannel};
use super::ledger::{self, Draft};
use super::playbook::LivePlaybook;
use super::projection;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::money::money_text;
use crate::domain::optimization::{ResponseCurve, SpendBounds};
use crate::domain::strategy::{
    ChannelOutcome, ChannelPrior, DeliveryVerdict, Maturity, Plan, StrategyPlaybook,
    learn_outcomes, plan, plan_goal,
};
use crate::kb::{DecisionId, KnowledgeBase};
use crate::protocol::{CampaignId, Envelope, Payload, TenantId};
use crate::runtime::{Agent, AgentError, Context, HandleRequest, Request, Routes, StartContext};

/// Plan (or re-plan) a campaign. For a re-plan, `remaining_target` and `remaining_budget` say what
/// is left; the plan then starts now and covers the time to the deadline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanCampaign {
    pub goal: CampaignGoal,
    /// 0 for the first plan, then one more per re-plan (part of the decision's step id).
    pub attempt: u32,
    #[serde(default)]
    pub remaining_target: Option<u64>,
    #[serde(default)]
    pub remaining_budget: Option<f64>,
    /// Why the plan is asked for, copied into the decision's inputs.
    pub why: String,
    /// The campaign's own time a re-plan starts from (the start of its current day); the clock's
    /// time when absent.
    #[serde(default)]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

impl Payload for PlanCampaign {
    const ACTION: &'static str = "plan_campaign";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for PlanCampaign {
    type Response = PlanReply;
}

/// The plan, or why there is none.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanReply {
    pub plan: Option<Plan>,
    /// Each planned channel's response curve in the campaign's currency, as the plan believed it
    /// (after learning from outcomes, for a re-plan).
    #[serde(default)]
    pub curves: BTreeMap<Channel, ResponseCurve>,
    /// Each planned channel's bounds on daily spend, in the campaign's currency.
    #[serde(default)]
    pub bounds: BTreeMap<Channel, SpendBounds>,
    pub error: Option<String>,
    pub decision: DecisionId,
}

impl Payload for PlanReply {
    const ACTION: &'static str = "plan_reply";
}

pub struct Strategy {
    kb: Arc<KnowledgeBase>,
    /// The channel priors in force; a reload changes them for the next plan.
    playbook: LivePlaybook<StrategyPlaybook>,
}

impl Agent for Strategy {
    const NAME: &'static str = "strategy";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        let playbook = LivePlaybook::<StrategyPlaybook>::load(&ctx.services, Self::NAME)?;
        Ok(Strategy { kb, playbook })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.request::<PlanCampaign>();
    }
}

impl Strategy {
    /// The campaign's observed outcomes per channel (the feedback loop), read from the knowledge
    /// base within the campaign's tenant.
    fn outcomes(
        &self,
        goal: &CampaignGoal,
    ) -> Result<BTreeMap<Channel, ChannelOutcome>, AgentError> {
        let found = self
            .kb
            .outcomes_by_campaign(&ledger::scope(goal), &goal.id)?;
        Ok(projection::channel_outcomes(&found.records))
    }
}

impl HandleRequest<PlanCampaign> for Strategy {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<PlanCampaign>,
    ) -> Result<PlanReply, AgentError> {
        let PlanCampaign {
            goal,
            attempt,
            remaining_target,
            remaining_budget,
            why,
            as_of,
        } = &request.payload;
        let now = as_of.unwrap_or_else(|| ctx.now());
        self.playbook.refresh(ctx.services());
        let mut playbook = self.playbook.get().clone();
        let rate = playbook.exchange_rate(&goal.budget.currency).unwrap_or(1.0);
        // A re-plan learns from what each channel delivered so far (the feedback loop).
        let deliveries = if *attempt > 0 {
            learn_outcomes(&mut playbook, rate, &self.outcomes(goal)?)
        } else {
            Vec::new()
        };
        let sub_goal = plan_goal(goal, *attempt, now, *remaining_target, *remaining_budget);
        let result = plan(&sub_goal, &playbook, now);
        let previous = previous_shares(&self.kb, goal, *attempt)?;
        let step = format!("plan/{attempt}");
        let inputs = PlanInputs {
            goal: goal.clone(),
            attempt: *attempt,
            why: why.clone(),
            remaining_target: *remaining_target,
            remaining_budget: *remaining_budget,
            observed: deliveries.clone(),
        };
        let (draft, reply) = match result {
            Ok(plan) => {
                let mut draft = Draft::new::<kinds::Plan>(
                    step,
                    inputs,
                    Some(PlanChoice {
                        channels: plan
                            .channels
                            .iter()
                            .map(|c| PlannedChannel {
                                channel: c.channel,
                                share: c.share,
                                daily_spend: c.daily_spend,
                            })
                            .collect(),
                        daily_budget: plan.daily_budget,
                        kpis: plan.kpis,
                        predicted_conversions: plan.predicted_conversions,
                        feasible: plan.feasibility.feasible,
                        tactics: plan.tactics.iter().take(5).cloned().collect(),
                    }),
                );
                for channel in &plan.channels {
                    draft = draft.alternative(
                        channel.channel,
                        channel.marginal_return,
                        Some(format!(
                            "{:.0} % of the budget, {:.1} predicted conversions, marginal return {:.4}",
                            channel.share * 100.0,
                            channel.predicted_conversions,
                            channel.marginal_return
                        )),
                    );
                }
                let mut reason = format!(
                    "{} {} predicted from {} over {} days ({}); ",
                    plan.predicted_conversions.round(),
                    goal.objective.as_str(),
                    money_text(plan.budget, &plan.currency),
                    plan.days,
                    if plan.feasibility.feasible {
                        "feasible".to_owned()
                    } else {
                        let problems: Vec<&str> = plan
                            .feasibility
                            .problems
                            .iter()
                            .map(|p| p.reason.as_str())
                            .collect();
                        format!("not feasible: {}", problems.join("; "))
                    }
                );
                let mix: Vec<String> = plan
                    .channels
                    .iter()
                    .map(|c| format!("{} {:.0} %", c.channel, c.share * 100.0))
                    .collect();
                reason.push_str(&format!("mix {}", mix.join(", ")));
                for d in &deliveries {
                    let before = previous.get(&d.channel).copied();
                    let after = plan
                        .channels
                        .iter()
                        .find(|c| c.channel == d.channel)
                        .map(|c| c.share);
                    let verdict = DeliveryVerdict::of(d.ratio).as_str();
                    reason.push_str(&format!(
                        "; {} {verdict}: {} conversions for {} ({:.0} % of the predicted return, now {}), share {} → {}",
                        d.channel,
                        d.conversions,
                        money_text(d.spend, &goal.budget.currency),
                        d.ratio * 100.0,
                        d.maturity.map_or("unranked", Maturity::as_str),
                        before.map_or("-".to_owned(), |s| format!("{:.0} %", s * 100.0)),
                        after.map_or("-".to_owned(), |s| format!("{:.0} %", s * 100.0)),
                    ));
                }
                let draft = draft
                    .reason(reason)
                    .confidence(if plan.feasibility.feasible { 0.7 } else { 0.3 });
                (draft, (Some(plan), None))
            }
            Err(err) => {
                let draft = Draft::new::<kinds::Plan>(step, inputs, None)
                    .reason(format!("no plan: {err}"))
                    .confidence(1.0);
                (draft, (None, Some(err.to_string())))
            }
        };
        let decision = ledger::record(&self.kb, ctx, &request, goal, draft).await?;
        let priors: Vec<(Channel, ChannelPrior)> = goal
            .channels
            .iter()
            .filter_map(|&c| playbook.prior(c).map(|p| (c, p.in_currency(rate))))
            .collect();
        Ok(PlanReply {
            curves: priors.iter().map(|(c, p)| (*c, p.response)).collect(),
            bounds: priors
                .iter()
                .map(|(c, p)| {
                    let bounds = SpendBounds {
                        min: p.min_daily,
                        max: p.max_daily,
                    };
                    (*c, bounds)
                })
                .collect(),
            plan: reply.0,
            error: reply.1,
            decision: decision.id,
        })
    }
}

/// The channel shares of the campaign's plan before attempt `attempt`, to show how a re-plan
/// moved them. Each attempt's plan has the id of its step (`plan/{attempt}`), so this reads the
/// few plan decisions by id instead of every decision of the campaign.
fn previous_shares(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    attempt: u32,
) -> Result<BTreeMap<Channel, f64>, AgentError> {
    let scope = ledger::scope(goal);
    for earlier in (0..attempt).rev() {
        let id = ledger::step_id(goal, &format!("plan/{earlier}"));
        if let Some(shares) = kb
            .decision(&scope, id)?
            .as_ref()
            .and_then(projection::plan_shares)
        {
            return Ok(shares);
        }
    }
    Ok(BTreeMap::new())
}
