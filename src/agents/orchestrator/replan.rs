//! Re-plans: when the forecast misses the deadline (or an operator ordered one), at most once a
//! week, strategy re-plans from the outcomes so far; the new plan's budgets start the experiment
//! again, or wait for a person's approval where the campaign's autonomy says so.

use std::collections::BTreeMap;

use super::Orchestrator;
use super::approvals::Resolution;
use crate::agents::approvals::{Ask, asked};
use crate::agents::decisions::{
    self as kinds, ApprovalAppliedInputs, Proposal, ReplanChoice, ReplanInputs,
};
use crate::agents::ledger::Draft;
use crate::agents::messages::{Reexplore, Tick, TickReport};
use crate::agents::optimization::{Optimization, Progress, StartExperiment};
use crate::agents::strategy::{PlanCampaign, Strategy};
use crate::domain::approval::{ApprovalKind, Verdict, replan_waits};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::money::money_text;
use crate::domain::pacing::{ReplanInput, remaining, replan_due};
use crate::domain::send_time::day_start;
use crate::kb::DecisionId;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, Context, DeliveryError};
impl Orchestrator {
    /// Re-plans when the forecast misses the deadline (or an operator asked), at most once a week.
    pub(super) async fn replan_if_due(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        progress: &Progress,
        report: &TickReport,
        deadline_day: f64,
    ) -> Result<Result<(), DeliveryError>, AgentError> {
        let day = request.payload.day;
        let state = self.state(goal)?;
        let asked = state.replan_requested.clone();
        let due = replan_due(&ReplanInput {
            day,
            days_observed: progress.days,
            forecast: progress.forecast,
            deadline_day,
            last_replan_day: state.last_replan_day,
            asked: asked.is_some(),
        });
        if due.is_none() {
            return Ok(Ok(()));
        }
        let attempt = state.attempt + 1;
        let why = match &asked {
            Some(why) => format!("an operator asked: {why}"),
            None => format!(
                "the forecast misses the deadline: {} of {} after {} days, ETA day {} against deadline day {:.1}",
                progress.conversions,
                goal.target,
                progress.days,
                report
                    .eta_day
                    .map_or("never".to_owned(), |e| format!("{:.1}", e + 1.0)),
                deadline_day
            ),
        };
        self.replan(ctx, request, goal, attempt, progress, why)
            .await
    }
}

impl Orchestrator {
    async fn replan(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        attempt: u32,
        progress: &Progress,
        why: String,
    ) -> Result<Result<(), DeliveryError>, AgentError> {
        let day = request.payload.day;
        let (remaining_target, remaining_budget) =
            remaining(goal, progress.conversions, progress.spend);
        let reply = match ctx
            .request(
                Strategy::NAME,
                PlanCampaign {
                    goal: goal.clone(),
                    attempt,
                    remaining_target: Some(remaining_target),
                    remaining_budget: Some(remaining_budget),
                    why: why.clone(),
                    as_of: day_start(goal, day),
                },
            )
            .await
        {
            Ok(reply) => reply,
            Err(error) => return Ok(Err(error)),
        };
        let daily: Option<BTreeMap<Channel, f64>> = reply.plan.as_ref().map(|p| {
            p.channels
                .iter()
                .map(|c| (c.channel, c.daily_spend))
                .collect()
        });
        let draft = Draft::new::<kinds::Replan>(
            format!("replan/{attempt}"),
            ReplanInputs {
                day,
                progress: progress.clone(),
                plan: Some(reply.decision),
            },
            ReplanChoice {
                daily_budget: daily.clone(),
                error: reply.error.clone(),
            },
        )
        .reason(format!(
                "{why}; strategy re-planned {remaining_target} remaining conversions with {remaining_budget:.0} {} left{}",
                goal.budget.currency,
                match &reply.plan {
                    Some(p) if p.feasibility.feasible => format!(", predicting {:.0}", p.predicted_conversions),
                    Some(p) => format!(", predicting {:.0} (still short: the target or deadline needs changing)", p.predicted_conversions),
                    None => format!(", but no plan was possible: {}", reply.error.clone().unwrap_or_default()),
                }
            ))
            .confidence(0.6);
        let replanned = self.record(ctx, request, goal, draft).await?;
        let Some(daily) = daily else {
            return Ok(Ok(()));
        };
        let proposal = Proposal::Replan {
            attempt,
            daily,
            curves: reply.curves,
            bounds: reply.bounds,
            plan: reply.decision,
        };
        let waits = asked(&self.book, goal, ApprovalKind::Replan)?.and_then(replan_waits);
        let Some(risk) = waits else {
            return self.start_replanned(ctx, goal, proposal).await;
        };
        let what = match &proposal {
            Proposal::Replan { daily, .. } => format!(
                "re-plan {}: {}",
                why,
                daily
                    .iter()
                    .map(|(c, v)| format!("{c} {} a day", money_text(*v, &goal.budget.currency)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => why,
        };
        let ask = Ask {
            day,
            step_key: attempt.to_string(),
            proposal,
            risk,
            what,
            meanwhile: "the campaign goes on with the plan in force".to_owned(),
            evidence: vec![replanned.id, reply.decision],
        };
        self.ask(ctx, request, goal, ask).await?;
        Ok(Ok(()))
    }

    /// Starts the experiment again on a new plan's budgets, and re-opens exploration.
    async fn start_replanned(
        &mut self,
        ctx: &Context,
        goal: &CampaignGoal,
        proposal: Proposal,
    ) -> Result<Result<(), DeliveryError>, AgentError> {
        let Proposal::Replan {
            attempt,
            daily,
            curves,
            bounds,
            plan,
        } = proposal
        else {
            return Err(AgentError::msg("a re-plan's proposal is not a plan"));
        };
        let started = ctx
            .request(
                Optimization::NAME,
                StartExperiment {
                    goal: goal.clone(),
                    attempt,
                    arms: Vec::new(),
                    daily,
                    curves,
                    bounds,
                    plan,
                },
            )
            .await;
        if let Err(error) = started {
            return Ok(Err(error));
        }
        // A new plan learns again: exploration re-opens for the new budget.
        let _ = ctx
            .command(
                Optimization::NAME,
                Reexplore {
                    campaign: goal.id.clone(),
                    why: "re-plan".to_owned(),
                },
            )
            .await;
        Ok(Ok(()))
    }

    /// Acts on the answer to a waiting re-plan: an approved one starts, a rejected or expired one
    /// leaves the plan in force. Nothing while it waits.
    pub(super) async fn replan_answered(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        id: DecisionId,
    ) -> Result<Result<(), DeliveryError>, AgentError> {
        let (verdict, answer, what) = match self.resolve(goal, id).await? {
            Resolution::Pending => return Ok(Ok(())),
            Resolution::Approved { proposal, answer } => {
                if let Err(error) = self.start_replanned(ctx, goal, proposal).await? {
                    return Ok(Err(error));
                }
                let what = "the new plan's budgets are in force and exploration re-opens";
                (Verdict::Approved, answer, what)
            }
            Resolution::Refused { verdict, answer } => (
                verdict,
                answer,
                "the plan in force stays; the next re-plan is considered a week after this one",
            ),
        };
        let done = ApprovalAppliedInputs {
            request: id,
            answer,
            verdict,
        };
        self.applied(ctx, request, goal, done, what.to_owned())
            .await?;
        Ok(Ok(()))
    }
}
