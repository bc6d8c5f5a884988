//! One campaign day: progress and phase from the optimizer, the goal check, a re-plan when the
//! forecast misses the deadline (or an operator ordered one; see `replan`), a bred generation joined,
//! and the day's buys (asked about where the campaign's autonomy says so).
//!
//! A day is held, with the reason recorded, while compliance is isolated (read from the runtime's
//! live status), while the campaign cannot be set up, and when a peer does not answer (a timeout,
//! an overload); a paused or achieved campaign buys nothing.

use super::Orchestrator;
use super::approvals::Resolution;
use super::hold::Held;
use crate::agents::approvals::{Ask, asked, policy, request_step};
use crate::agents::decisions::{
    self as kinds, ApprovalAppliedInputs, GoalAchievedChoice, GoalAchievedInputs, PhaseChoice,
    PhaseInputs, Proposal,
};
use crate::agents::ledger::{self, Draft};
use crate::agents::messages::{
    GOAL_ACHIEVED, GOAL_PROGRESS, GoalAchieved, GoalProgress, PAUSED, Phase, Tick, TickReport,
    deadline_day, is_last_day,
};
use crate::agents::optimization::{GetProgress, Optimization, PlanBuys, Progress};
use crate::domain::approval::{ApprovalKind, Verdict, buys_wait};
use crate::domain::campaign::CampaignGoal;
use crate::domain::money::money_text;
use crate::domain::pacing::{BudgetCut, achieved, goal_fraction, within_budget};
use crate::kb::DecisionId;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, Context, HandleRequest};

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
        if let Some(&id) = self.waiting(&goal, ApprovalKind::Replan)?.first() {
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
        let mut buys = match planned {
            Ok(planned) => planned.buys,
            Err(error) => {
                return self.hold_for_peer(ctx, request, &goal, report, error).await;
            }
        };
        // Before anyone is asked: a person approves buys that fit the budget, and an amendment
        // only cuts them.
        if let Some(cut) = within_budget(&mut buys, progress.spend, goal.budget.total) {
            self.record_budget_cut(ctx, request, &goal, &progress, cut)
                .await?;
        }
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
    /// Acts on the answer to the day's waiting buys: approved, they are bought (as amended);
    /// rejected or expired, the day passes without buying. While it waits the day is held.
    /// Records that the day's buys were cut to what is left of the budget.
    async fn record_budget_cut(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        progress: &Progress,
        cut: BudgetCut,
    ) -> Result<(), AgentError> {
        let day = request.payload.day;
        let currency = &goal.budget.currency;
        let draft = Draft::new::<kinds::BudgetCap>(
            format!("budget_cap/day/{day}"),
            kinds::BudgetCapInputs {
                day,
                spent: progress.spend,
                total: goal.budget.total,
                planned: cut.planned,
            },
            kinds::BudgetCapChoice {
                allowed: cut.allowed,
            },
        )
        .reason(format!(
            "day {}'s buys of {} would take the spend past the budget: {} of {} is spent, so they are cut to {}",
            day + 1,
            money_text(cut.planned, currency),
            money_text(progress.spend, currency),
            money_text(goal.budget.total, currency),
            money_text(cut.allowed, currency)
        ))
        .confidence(1.0);
        tracing::warn!(campaign = %goal.id, day, planned = cut.planned, allowed = cut.allowed, "day's buys cut to the budget left");
        self.record(ctx, request, goal, draft).await?;
        Ok(())
    }

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
