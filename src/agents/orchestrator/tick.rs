//! One campaign day: progress and phase from the optimizer, the goal check, a re-plan when the
//! forecast misses the deadline (or an operator ordered one), a bred generation joined, and the
//! day's buys.
//!
//! A day is held, with the reason recorded, while compliance is isolated (read from the runtime's
//! live status), while the campaign cannot be set up, and when a peer does not answer (a timeout,
//! an overload); a paused or achieved campaign buys nothing.

use std::collections::BTreeMap;

use super::Orchestrator;
use super::approvals::Resolution;
use super::hold::Held;
use crate::agents::approvals::{Ask, asked, policy, request_step};
use crate::agents::decisions::{
    self as kinds, ApprovalAppliedInputs, GoalAchievedChoice, GoalAchievedInputs, PhaseChoice,
    PhaseInputs, Proposal, ReplanChoice, ReplanInputs,
};
use crate::agents::ledger::{self, Draft};
use crate::agents::messages::{
    GOAL_ACHIEVED, GOAL_PROGRESS, GoalAchieved, GoalProgress, PAUSED, Phase, Reexplore, Tick,
    TickReport, deadline_day, is_last_day,
};
use crate::agents::optimization::{GetProgress, Optimization, PlanBuys, Progress, StartExperiment};
use crate::agents::strategy::{PlanCampaign, Strategy};
use crate::domain::approval::{ApprovalKind, Verdict, buys_wait, replan_waits};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::money::money_text;
use crate::domain::pacing::{ReplanInput, achieved, goal_fraction, remaining, replan_due};
use crate::domain::send_time::day_start;
use crate::kb::DecisionId;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, Context, DeliveryError, HandleRequest};

impl HandleRequest<Tick> for Orchestrator {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<Tick>,
    ) -> Result<TickReport, AgentError> {
        let report = self.tick(ctx, &request).await?;
        // Over: nothing will tick it again, so nothing it asked can take effect any more, and its
        // state need not stay in memory (a rebuild from the knowledge base brings it back if
        // anything asks). A held last day is not over: it runs again once answered.
        let last = is_last_day(&report.goal, request.payload.day) && report.held.is_none();
        if report.achieved || last {
            let why = if report.achieved {
                "the campaign reached its goal"
            } else {
                "the campaign's last day is over"
            };
            self.withdraw_pending(ctx, &request, &report.goal, why)
                .await?;
            self.campaigns.remove(&report.goal.id);
        }
        Ok(report)
    }
}

impl Orchestrator {
    async fn tick(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
    ) -> Result<TickReport, AgentError> {
        let day = request.payload.day;
        let mut goal = request.payload.goal.clone();
        let compliance_down = Self::compliance_down(ctx);
        let state = self.state(&goal)?;
        if let Some(anchored) = &state.goal {
            // Planned for the anchored goal, decided under the autonomy in force.
            goal = CampaignGoal {
                autonomy: goal.autonomy,
                ..anchored.clone()
            };
        } else if goal.start.is_none() {
            goal.start = Some(ctx.now());
        }
        let mut report = TickReport {
            goal: goal.clone(),
            phase: state.phase.unwrap_or(Phase::Explore),
            conversions: 0,
            progress: 0.0,
            spend: 0.0,
            eta_day: None,
            buys: Vec::new(),
            achieved: state.achieved,
            held: None,
            skipped: None,
            mix: Default::default(),
        };
        if state.achieved {
            report.held = Some("goal achieved".to_owned());
            return Ok(report);
        }
        if let Some(why) = compliance_down {
            return self
                .hold_for_compliance(ctx, request, &goal, report, why)
                .await;
        }
        // Requests past their time get their default before anything else is decided today,
        // the first creatives' included.
        self.expire_due(ctx, request, &goal).await?;
        let set_up = self.state(&goal)?.set_up;
        if !set_up && let Some(why) = self.set_up(ctx, request, &goal).await? {
            tracing::warn!(campaign = %goal.id, %why, "campaign not started yet");
            let held = Held {
                step: format!("hold/setup/{day}"),
                isolated: Default::default(),
                why,
            };
            return self.hold_day(ctx, request, &goal, report, held).await;
        }
        self.autonomy_answered(ctx, request, &goal).await?;

        // A paused campaign buys nothing, but what its last buys brought in still counts: the
        // board shows the figures a rebuild after a restart would.
        let recorded = self.state(&goal)?;
        let paused = recorded.paused.then_some(recorded.phase);
        let (progress, bred): (Progress, _) = match ctx
            .request(Optimization::NAME, GetProgress { goal: goal.clone() })
            .await
        {
            Ok(standing) => {
                report.mix = standing.mix;
                (standing.progress, standing.bred)
            }
            Err(_) if paused.is_some() => {
                report.held = Some(PAUSED.to_owned());
                return Ok(report);
            }
            Err(error) => {
                return self.hold_for_peer(ctx, request, &goal, report, error).await;
            }
        };
        let fraction = goal_fraction(progress.conversions, goal.target);
        let phase = Phase::of_progress(fraction);
        report.conversions = progress.conversions;
        report.progress = fraction;
        report.spend = progress.spend;
        report.phase = phase;
        report.eta_day = progress.forecast.and_then(|f| f.eta_day);
        let _ = ctx.publish(
            GOAL_PROGRESS,
            GoalProgress {
                campaign: goal.id.clone(),
                day,
                phase,
                conversions: progress.conversions,
                target: goal.target,
                eta_day: report.eta_day,
                spend: progress.spend,
            },
        );

        // Its phase stays the recorded one: a phase change is decided on a day it buys.
        if let Some(phase) = paused {
            report.phase = phase.unwrap_or(Phase::Explore);
            report.held = Some(PAUSED.to_owned());
            return Ok(report);
        }
        if achieved(progress.conversions, goal.target) {
            let draft = Draft::new::<kinds::GoalAchieved>(
                "goal_achieved",
                GoalAchievedInputs {
                    day,
                    conversions: progress.conversions,
                    spend: progress.spend,
                },
                GoalAchievedChoice { stop_buying: true },
            )
            .reason(format!(
                "{} of {} {} reached on day {} having spent {}; buying stops",
                progress.conversions,
                goal.target,
                goal.objective.as_str(),
                day,
                money_text(progress.spend, &goal.budget.currency)
            ))
            .confidence(1.0);
            let decision = self.record(ctx, request, &goal, draft).await?;
            let _ = ctx.publish(
                GOAL_ACHIEVED,
                GoalAchieved {
                    campaign: goal.id.clone(),
                    conversions: progress.conversions,
                    target: goal.target,
                    day,
                    decision: decision.id,
                },
            );
            report.achieved = true;
            report.held = Some("goal achieved".to_owned());
            return Ok(report);
        }

        let state = self.state(&goal)?;
        if state.phase != Some(phase) {
            let before = state.phase;
            let draft = Draft::new::<kinds::PhaseChange>(
                format!("phase/{}", phase.as_str()),
                PhaseInputs {
                    day,
                    conversions: progress.conversions,
                    target: goal.target,
                },
                PhaseChoice {
                    phase,
                    from: before,
                },
            )
            .alternative(
                "explore",
                if phase == Phase::Explore { 1.0 } else { 0.0 },
                Some("below 30 % of the goal".into()),
            )
            .alternative(
                "optimize",
                if phase == Phase::Optimize { 1.0 } else { 0.0 },
                Some("30–70 % of the goal".into()),
            )
            .alternative(
                "stabilize",
                if phase == Phase::Stabilize { 1.0 } else { 0.0 },
                Some("above 70 % of the goal".into()),
            )
            .reason(format!(
                "{:.0} % of the goal ({} of {}) on day {day}: {}",
                fraction * 100.0,
                progress.conversions,
                goal.target,
                match phase {
                    Phase::Explore => "explore: spread traffic to learn which variants work",
                    Phase::Optimize => "optimize: follow the posterior",
                    Phase::Stabilize => "stabilize: concentrate on the proven leaders",
                }
            ))
            .confidence(1.0);
            self.record(ctx, request, &goal, draft).await?;
        }

        // A re-plan waiting for a person is acted on once answered; until then no other is asked.
        let deadline_day = deadline_day(&goal);
        if let Some((id, _)) = self.waiting(&goal, ApprovalKind::Replan)? {
            if let Err(error) = self.replan_answered(ctx, request, &goal, id).await? {
                return self.hold_for_peer(ctx, request, &goal, report, error).await;
            }
        } else if let Err(error) = self
            .replan_if_due(ctx, request, &goal, &progress, &report, deadline_day)
            .await?
        {
            return self.hold_for_peer(ctx, request, &goal, report, error).await;
        }

        // Creatives a person approved join before today's buys; those refused are never sent.
        if let Err(error) = self.creatives_answered(ctx, request, &goal, day).await? {
            return self.hold_for_peer(ctx, request, &goal, report, error).await;
        }
        // A generation bred yesterday joins before today's buys, if compliance approves it.
        if let Some(generation) = bred
            && let Err(why) = self
                .join_generation(ctx, request, &goal, day, generation)
                .await
        {
            tracing::warn!(campaign = %goal.id, day, %why, "bred generation not joined yet; tried again at the next tick");
        }

        // Today's buys, once asked about, go out only as answered (as amended), or not at all.
        // The request is today's step, so a day run again (a restart, a wake) finds its own.
        let step = request_step(ApprovalKind::Buys, &format!("day/{day}"));
        let todays = ledger::step_id(&goal, &step);
        if self.kb.decision(&ledger::scope(&goal), todays)?.is_some() {
            return self
                .buys_answered(ctx, request, &goal, report, todays)
                .await;
        }
        let planned = ctx
            .request(
                Optimization::NAME,
                PlanBuys {
                    goal: goal.clone(),
                    day,
                    phase,
                },
            )
            .await;
        let buys = match planned {
            Ok(planned) => planned.buys,
            Err(error) => {
                return self.hold_for_peer(ctx, request, &goal, report, error).await;
            }
        };
        let today: f64 = buys.iter().map(|b| b.spend).sum();
        let waits = match asked(&self.book, &goal, ApprovalKind::Buys)? {
            Some(autonomy) if !buys.is_empty() => {
                let elapsed = (f64::from(day) + 1.0) / deadline_day.max(1.0);
                let allowed = goal.budget.total * elapsed.min(1.0);
                buys_wait(autonomy, progress.spend, today, allowed, &policy(ctx))
            }
            _ => None,
        };
        let Some(risk) = waits else {
            report.buys = buys;
            return Ok(report);
        };
        let currency = goal.budget.currency.clone();
        let ask = Ask {
            day,
            step_key: format!("day/{day}"),
            what: format!(
                "buy {} placements for {} on day {}",
                buys.len(),
                money_text(today, &currency),
                day + 1
            ),
            proposal: Proposal::Buys { buys },
            risk,
            meanwhile: "nothing is bought: the day waits for the answer".to_owned(),
            evidence: Vec::new(),
        };
        let asked = self.ask(ctx, request, &goal, ask).await?;
        self.buys_answered(ctx, request, &goal, report, asked.id)
            .await
    }
}

impl Orchestrator {
    /// Re-plans when the forecast misses the deadline (or an operator asked), at most once a week.
    async fn replan_if_due(
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
    async fn replan_answered(
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

    /// Acts on the answer to the day's waiting buys: approved, they are bought (as amended);
    /// rejected or expired, the day passes without buying. While it waits the day is held.
    async fn buys_answered(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        mut report: TickReport,
        id: DecisionId,
    ) -> Result<TickReport, AgentError> {
        let day = request.payload.day;
        let (verdict, answer, what) = match self.resolve(goal, id).await? {
            Resolution::Pending => {
                report.held = Some(format!(
                    "waiting for a person to approve day {}'s buys (request {id})",
                    day + 1
                ));
                return Ok(report);
            }
            Resolution::Approved {
                proposal: Proposal::Buys { buys },
                answer,
            } => {
                let spend: f64 = buys.iter().map(|b| b.spend).sum();
                let what = format!(
                    "{} placements bought for {}",
                    buys.len(),
                    money_text(spend, &goal.budget.currency)
                );
                report.buys = buys;
                (Verdict::Approved, answer, what)
            }
            Resolution::Approved { answer, .. } => {
                let what = "nothing bought: the approval did not carry buys".to_owned();
                report.skipped = Some(what.clone());
                (Verdict::Approved, answer, what)
            }
            Resolution::Refused { verdict, answer } => {
                let what = format!("nothing bought on day {}", day + 1);
                report.skipped = Some(format!("the day's buys were {}: {what}", verdict.as_str()));
                (verdict, answer, what)
            }
        };
        let done = ApprovalAppliedInputs {
            request: id,
            answer,
            verdict,
        };
        self.applied(ctx, request, goal, done, what).await?;
        Ok(report)
    }
}
