//! The orchestrator: turns a campaign goal into sub-goals (funnel targets, budget per channel and
//! day), drives strategy → content → compliance → optimization, and on every clock tick computes the
//! campaign's progress and phase (explore below 30 % of the goal, optimize to 70 %, stabilize above),
//! re-plans when the forecast misses the deadline, announces `GoalAchieved`, and obeys operators'
//! pause, resume and re-plan commands.
//!
//! It fails closed: a variant reaches the market only with compliance's approval, and while
//! compliance is isolated or unreachable nothing is approved and nothing is bought. Its state is
//! rebuilt from its own decisions in the knowledge base, so a restart resumes where it stopped
//! (every step has a deterministic id; a replayed step is not decided twice).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::compliance::{ReviewItem, ReviewVariants, recipient_tz};
use super::content::{Blocked, ReviseVariants, WriteCreatives, message_of};
use super::ledger::{self, Draft};
use super::optimization::{
    Arm, GetProgress, ObservationsRecorded, Phase, PlanBuys, Progress, Reexplore, StartExperiment,
};
use super::strategy::PlanCampaign;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::content::Variant;
use crate::kb::{DecisionId, KnowledgeBase};
use crate::market::Buy;
use crate::protocol::{CampaignId, Envelope, Payload};
use crate::runtime::{
    Agent, AgentError, AgentIsolated, Context, HandleCommand, HandleEvent, HandleRequest, Request,
    Routes, StartContext,
};

/// The topic `GoalAchieved` is published on.
pub const GOAL_ACHIEVED_TOPIC: &str = "goal_achieved";
/// The topic each tick's progress is published on.
pub const GOAL_PROGRESS_TOPIC: &str = "goal_progress";

/// Revision rounds before a still-blocked variant is dropped.
const MAX_REVIEW_ROUNDS: u32 = 3;

/// One clock tick (one simulated day) of one campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tick {
    pub goal: CampaignGoal,
    /// Days since the campaign started (0 is the first day).
    pub day: u32,
}

impl Payload for Tick {
    const ACTION: &'static str = "tick";
}

impl Request for Tick {
    type Response = TickReport;
}

/// What a tick decided: progress, phase, and the buys to place today (none when held).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TickReport {
    /// The goal with its start fixed (the moment it was first planned when it had none).
    pub goal: CampaignGoal,
    pub phase: Phase,
    pub conversions: u64,
    pub progress: f64,
    /// Spend to date, in the campaign's currency (0 when held: not computed).
    pub spend: f64,
    pub eta_day: Option<f64>,
    pub buys: Vec<Buy>,
    pub achieved: bool,
    /// Why nothing is bought today, if so.
    pub held: Option<String>,
}

impl Payload for TickReport {
    const ACTION: &'static str = "tick_report";
}

/// Published once when a campaign reaches its target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoalAchieved {
    pub campaign: CampaignId,
    pub conversions: u64,
    pub target: u64,
    pub day: u32,
    pub decision: DecisionId,
}

impl Payload for GoalAchieved {
    const ACTION: &'static str = "goal_achieved";
}

/// Published on every tick.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoalProgress {
    pub campaign: CampaignId,
    pub day: u32,
    pub phase: Phase,
    pub conversions: u64,
    pub target: u64,
    pub eta_day: Option<f64>,
    pub spend: f64,
}

impl Payload for GoalProgress {
    const ACTION: &'static str = "goal_progress";
}

/// Operator commands. Pause stops buying; resume restarts it (and clears a compliance hold once
/// the operator has revived compliance); re-plan asks strategy for a new plan at the next tick.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pause {
    pub campaign: CampaignId,
    pub why: String,
}

impl Payload for Pause {
    const ACTION: &'static str = "pause_campaign";
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Resume {
    pub campaign: CampaignId,
    /// Why, in the operator's words (recorded in the resume decision).
    #[serde(default)]
    pub why: String,
}

impl Payload for Resume {
    const ACTION: &'static str = "resume_campaign";
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Replan {
    pub campaign: CampaignId,
    pub why: String,
}

impl Payload for Replan {
    const ACTION: &'static str = "replan_campaign";
}

#[derive(Clone, Debug, Default)]
struct CampaignState {
    /// The goal with its start fixed.
    goal: Option<CampaignGoal>,
    set_up: bool,
    attempt: u32,
    last_replan_day: Option<u32>,
    phase: Option<Phase>,
    paused: bool,
    achieved: bool,
    replan_requested: Option<String>,
    commands: u32,
}

pub struct Orchestrator {
    kb: Arc<KnowledgeBase>,
    campaigns: BTreeMap<CampaignId, CampaignState>,
    /// Agents reported isolated; while compliance is among them nothing is approved or bought.
    isolated: BTreeSet<String>,
}

impl Agent for Orchestrator {
    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        Ok(Orchestrator {
            kb,
            campaigns: BTreeMap::new(),
            isolated: BTreeSet::new(),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<Tick>()
            .event::<AgentIsolated>()
            .event::<GoalProgress>()
            .event::<ObservationsRecorded>()
            .command::<Pause>()
            .command::<Resume>()
            .command::<Replan>();
    }
}

/// Rebuilds a campaign's state from the orchestrator's own decisions.
fn rebuild(kb: &KnowledgeBase, goal: &CampaignGoal) -> Result<CampaignState, AgentError> {
    let found = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .map_err(AgentError::msg)?;
    let mut state = CampaignState::default();
    for d in found
        .records
        .iter()
        .filter(|d| d.agent.as_str() == "orchestrator")
    {
        match d.kind.as_str() {
            "sub_goals" => {
                state.goal = d
                    .choice
                    .get("goal")
                    .and_then(|g| serde_json::from_value(g.clone()).ok());
            }
            "setup" => state.set_up = true,
            "replan" => {
                state.attempt += 1;
                state.last_replan_day = d
                    .inputs
                    .get("day")
                    .and_then(|v| v.as_u64())
                    .and_then(|v| u32::try_from(v).ok());
            }
            "phase" => {
                state.phase = d
                    .choice
                    .get("phase")
                    .and_then(|p| serde_json::from_value(p.clone()).ok());
            }
            "replan_ordered" => state.commands += 1,
            "pause" => {
                state.paused = true;
                state.commands += 1;
            }
            "resume" => {
                state.paused = false;
                state.commands += 1;
            }
            "goal_achieved" => state.achieved = true,
            _ => {}
        }
    }
    Ok(state)
}

/// The send time of a campaign's day: 10:00 in the recipients' time zone (UTC when unknown).
fn send_time(
    goal: &CampaignGoal,
    day_start: DateTime<Utc>,
) -> chrono::DateTime<chrono::FixedOffset> {
    let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default();
    match recipient_tz(&goal.regions) {
        Some(tz) => {
            let local_date = day_start.with_timezone(&tz).date_naive();
            tz.from_local_datetime(&local_date.and_time(ten))
                .earliest()
                .map(|t| t.fixed_offset())
                .unwrap_or_else(|| day_start.fixed_offset())
        }
        None => day_start
            .date_naive()
            .and_time(ten)
            .and_utc()
            .fixed_offset(),
    }
}

impl Orchestrator {
    fn state(&mut self, goal: &CampaignGoal) -> Result<&mut CampaignState, AgentError> {
        if !self.campaigns.contains_key(&goal.id) {
            let state = rebuild(&self.kb, goal)?;
            self.campaigns.insert(goal.id.clone(), state);
        }
        self.campaigns
            .get_mut(&goal.id)
            .ok_or_else(|| AgentError::msg("campaign state missing right after loading"))
    }

    fn compliance_down(&self) -> bool {
        self.isolated.contains("compliance")
    }

    /// Plan, write, review and start the experiment. Returns why it could not finish, if so; the
    /// next tick tries again (every finished step is recorded and not redone).
    async fn set_up(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<Tick>,
        goal: &CampaignGoal,
    ) -> Result<Option<String>, AgentError> {
        let kb = Arc::clone(&self.kb);
        let plan = ctx
            .request(
                "strategy",
                PlanCampaign {
                    goal: goal.clone(),
                    attempt: 0,
                    remaining_target: None,
                    remaining_budget: None,
                    why: "first plan of the campaign".to_owned(),
                    as_of: None,
                },
            )
            .await;
        let reply = match plan {
            Ok(reply) => reply,
            Err(e) => return Ok(Some(format!("strategy did not answer: {e}"))),
        };
        let Some(plan) = reply.plan else {
            return Ok(Some(format!(
                "no plan: {}",
                reply.error.unwrap_or_default()
            )));
        };
        let daily: BTreeMap<Channel, f64> = plan
            .channels
            .iter()
            .map(|c| (c.channel, c.daily_spend))
            .collect();
        let mut draft = Draft::new("sub_goals", "sub_goals")
            .inputs(serde_json::json!({ "plan": reply.decision, "target": goal.target, "budget": goal.budget }))
            .choice(serde_json::json!({
                "goal": goal,
                "funnel": { "conversions": plan.kpis.conversions, "clicks": plan.kpis.clicks, "impressions": plan.kpis.impressions, "cpa": plan.kpis.cpa },
                "daily_budget": daily,
                "days": plan.days,
            }))
            .reason(format!(
                "{} {:?} by {} split into the funnel {} conversions ← {} clicks ← {} impressions, and {} a day: {}",
                goal.target,
                goal.objective,
                goal.deadline.format("%Y-%m-%d"),
                plan.kpis.conversions,
                plan.kpis.clicks,
                plan.kpis.impressions,
                format_args!("{:.0} {}", plan.daily_budget, goal.budget.currency),
                daily.iter().map(|(c, s)| format!("{c} {s:.0}")).collect::<Vec<_>>().join(", ")
            ))
            .confidence(if plan.feasibility.feasible { 0.7 } else { 0.3 });
        for c in &plan.channels {
            draft = draft.alternative(
                c.channel,
                c.share,
                Some(format!("{:.0} a day", c.daily_spend)),
            );
        }
        ledger::record(&kb, ctx, envelope, goal, draft).await?;

        let creatives = match ctx
            .request("content", WriteCreatives { goal: goal.clone() })
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(Some(format!("content did not answer: {e}"))),
        };
        if let Some(error) = creatives.error {
            return Ok(Some(format!("content wrote nothing: {error}")));
        }
        let approved = match self
            .review_loop(ctx, goal, creatives.variants, &creatives.sender)
            .await
        {
            Ok(approved) => approved,
            Err(why) => {
                let draft = Draft::new("hold", format!("hold/setup/{}", envelope.payload.day))
                    .inputs(serde_json::json!({ "day": envelope.payload.day }))
                    .choice("nothing approved, nothing sent")
                    .reason(format!("failing closed: {why}"))
                    .confidence(1.0);
                ledger::record(&kb, ctx, envelope, goal, draft).await?;
                return Ok(Some(why));
            }
        };
        if approved.is_empty() {
            return Ok(Some("compliance approved no variant".to_owned()));
        }
        let arms: Vec<Arm> = approved.iter().map(Arm::of).collect();
        let started = ctx
            .request(
                "optimization",
                StartExperiment {
                    goal: goal.clone(),
                    attempt: 0,
                    arms: arms.clone(),
                    daily: daily.clone(),
                    curves: reply.curves.clone(),
                    plan: reply.decision,
                },
            )
            .await;
        if let Err(e) = started {
            return Ok(Some(format!("optimization did not answer: {e}")));
        }
        let draft = Draft::new("setup", "setup")
            .inputs(serde_json::json!({ "plan": reply.decision, "creatives": creatives.decision }))
            .choice(serde_json::json!({ "approved": arms.iter().map(|a| &a.variant).collect::<Vec<_>>() }))
            .reason(format!(
                "{} variants approved by compliance enter the experiment on {}",
                arms.len(),
                daily.keys().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .confidence(0.8);
        ledger::record(&kb, ctx, envelope, goal, draft).await?;
        Ok(None)
    }

    /// Review, revise what can be fixed, review again; only approved variants come back. Any
    /// failure to reach compliance approves nothing.
    async fn review_loop(
        &self,
        ctx: &Context,
        goal: &CampaignGoal,
        variants: Vec<Variant>,
        sender: &crate::domain::compliance::Sender,
    ) -> Result<Vec<Variant>, String> {
        let start = goal.start.unwrap_or_else(|| ctx.now());
        let first_send = send_time(goal, start);
        let mut send_at: BTreeMap<String, chrono::DateTime<chrono::FixedOffset>> = BTreeMap::new();
        let mut pending = variants;
        let mut approved = Vec::new();
        for round in 0..MAX_REVIEW_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if self.compliance_down() {
                return Err("compliance is isolated".to_owned());
            }
            let items = pending
                .iter()
                .map(|v| ReviewItem {
                    variant: v.id.clone(),
                    segment: v.segment.clone(),
                    message: message_of(v, sender, &goal.product_category),
                    send_at: send_at.get(&v.id).copied().unwrap_or(first_send),
                })
                .collect();
            let reviews = ctx
                .request(
                    "compliance",
                    ReviewVariants {
                        goal: goal.clone(),
                        items,
                        round,
                    },
                )
                .await
                .map_err(|e| format!("compliance did not answer: {e}"))?;
            let by_id: BTreeMap<&str, &super::compliance::VariantVerdict> = reviews
                .verdicts
                .iter()
                .map(|v| (v.variant.as_str(), v))
                .collect();
            let mut blocked = Vec::new();
            for variant in pending.drain(..) {
                match by_id.get(variant.id.as_str()) {
                    Some(v) if v.verdict.approved => approved.push(variant),
                    Some(v) => blocked.push(Blocked {
                        send_at: send_at.get(&variant.id).copied().unwrap_or(first_send),
                        findings: v.verdict.findings.clone(),
                        fixable: v.verdict.fixable,
                        variant,
                    }),
                    // Not reviewed is not approved.
                    None => {}
                }
            }
            if blocked.is_empty() || round + 1 == MAX_REVIEW_ROUNDS {
                break;
            }
            let revised = ctx
                .request(
                    "content",
                    ReviseVariants {
                        goal: goal.clone(),
                        blocked,
                        round: round + 1,
                    },
                )
                .await
                .map_err(|e| format!("content did not answer: {e}"))?;
            send_at.extend(revised.reschedule);
            pending = revised.variants;
        }
        Ok(approved)
    }
}

impl HandleRequest<Tick> for Orchestrator {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<Tick>,
    ) -> Result<TickReport, AgentError> {
        let day = request.payload.day;
        let kb = Arc::clone(&self.kb);
        let mut goal = request.payload.goal.clone();
        let compliance_down = self.compliance_down();
        let state = self.state(&goal)?;
        if let Some(anchored) = &state.goal {
            goal = anchored.clone();
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
        };
        if state.achieved {
            report.held = Some("goal achieved".to_owned());
            return Ok(report);
        }
        if compliance_down {
            let draft = Draft::new("hold", format!("hold/day/{day}"))
                .inputs(serde_json::json!({ "day": day, "isolated": self.isolated }))
                .choice("nothing approved, nothing sent")
                .reason("failing closed: compliance is isolated, so no variant can be approved and nothing is bought until an operator revives it and resumes the campaign")
                .confidence(1.0);
            ledger::record(&kb, ctx, &request, &goal, draft).await?;
            report.held = Some("compliance is isolated".to_owned());
            return Ok(report);
        }
        let set_up = self.state(&goal)?.set_up;
        if !set_up {
            if let Some(why) = self.set_up(ctx, &request, &goal).await? {
                tracing::warn!(campaign = %goal.id, %why, "campaign not started yet");
                report.held = Some(why);
                return Ok(report);
            }
            let state = self.state(&goal)?;
            state.set_up = true;
            state.goal = Some(goal.clone());
        }
        let state = self.state(&goal)?;
        if state.paused {
            report.held = Some("paused by a command (see its pause decision)".to_owned());
            return Ok(report);
        }

        let progress: Progress = ctx
            .request("optimization", GetProgress { goal: goal.clone() })
            .await
            .map_err(AgentError::msg)?;
        let fraction = progress.conversions as f64 / goal.target.max(1) as f64;
        let phase = Phase::of_progress(fraction);
        report.conversions = progress.conversions;
        report.progress = fraction;
        report.spend = progress.spend;
        report.phase = phase;
        report.eta_day = progress.forecast.and_then(|f| f.eta_day);
        let _ = ctx.publish(
            GOAL_PROGRESS_TOPIC,
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

        if progress.conversions >= goal.target {
            let draft = Draft::new("goal_achieved", "goal_achieved")
                .inputs(serde_json::json!({ "day": day, "conversions": progress.conversions, "spend": progress.spend }))
                .choice(serde_json::json!({ "stop_buying": true }))
                .reason(format!(
                    "{} of {} {:?} reached on day {} having spent {:.0} {}; buying stops",
                    progress.conversions, goal.target, goal.objective, day, progress.spend, goal.budget.currency
                ))
                .confidence(1.0);
            let decision = ledger::record(&kb, ctx, &request, &goal, draft).await?;
            let _ = ctx.publish(
                GOAL_ACHIEVED_TOPIC,
                GoalAchieved {
                    campaign: goal.id.clone(),
                    conversions: progress.conversions,
                    target: goal.target,
                    day,
                    decision: decision.id,
                },
            );
            self.state(&goal)?.achieved = true;
            report.achieved = true;
            report.held = Some("goal achieved".to_owned());
            return Ok(report);
        }

        let state = self.state(&goal)?;
        if state.phase != Some(phase) {
            let before = state.phase;
            let draft = Draft::new("phase", format!("phase/{}", phase.as_str()))
                .inputs(serde_json::json!({ "day": day, "conversions": progress.conversions, "target": goal.target }))
                .alternative("explore", if phase == Phase::Explore { 1.0 } else { 0.0 }, Some("below 30 % of the goal".into()))
                .alternative("optimize", if phase == Phase::Optimize { 1.0 } else { 0.0 }, Some("30–70 % of the goal".into()))
                .alternative("stabilize", if phase == Phase::Stabilize { 1.0 } else { 0.0 }, Some("above 70 % of the goal".into()))
                .choice(serde_json::json!({ "phase": phase, "from": before }))
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
            ledger::record(&kb, ctx, &request, &goal, draft).await?;
            self.state(&goal)?.phase = Some(phase);
        }

        // Re-plan when the forecast misses the deadline (or an operator asked), at most once a week.
        let deadline_day = super::optimization::deadline_day(&goal);
        let state = self.state(&goal)?;
        let late =
            progress.days >= 3 && progress.forecast.is_some_and(|f| !f.on_track(deadline_day));
        let cooled = state.last_replan_day.is_none_or(|d| day >= d + 7);
        let asked = state.replan_requested.take();
        if (late && cooled) || asked.is_some() {
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
            self.replan(ctx, &request, &goal, attempt, &progress, why)
                .await?;
        }

        report.buys = ctx
            .request(
                "optimization",
                PlanBuys {
                    goal: goal.clone(),
                    day,
                    phase,
                },
            )
            .await
            .map_err(AgentError::msg)?
            .buys;
        Ok(report)
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
    ) -> Result<(), AgentError> {
        let day = request.payload.day;
        let kb = Arc::clone(&self.kb);
        let remaining_target = goal.target.saturating_sub(progress.conversions);
        let remaining_budget = (goal.budget.total - progress.spend).max(0.0);
        let reply = ctx
            .request(
                "strategy",
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
            .map_err(AgentError::msg)?;
        let daily: Option<BTreeMap<Channel, f64>> = reply.plan.as_ref().map(|p| {
            p.channels
                .iter()
                .map(|c| (c.channel, c.daily_spend))
                .collect()
        });
        let draft = Draft::new("replan", format!("replan/{attempt}"))
            .inputs(serde_json::json!({ "day": day, "progress": progress, "plan": reply.decision }))
            .choice(serde_json::json!({ "daily_budget": daily, "error": reply.error }))
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
        ledger::record(&kb, ctx, request, goal, draft).await?;
        if let Some(daily) = daily {
            ctx.request(
                "optimization",
                StartExperiment {
                    goal: goal.clone(),
                    attempt,
                    arms: Vec::new(),
                    daily,
                    curves: reply.curves,
                    plan: reply.decision,
                },
            )
            .await
            .map_err(AgentError::msg)?;
            // A new plan learns again: exploration re-opens for the new budget.
            let _ = ctx
                .command(
                    "optimization",
                    Reexplore {
                        campaign: goal.id.clone(),
                        why: "re-plan".to_owned(),
                    },
                )
                .await;
        }
        let state = self.state(goal)?;
        state.attempt = attempt;
        state.last_replan_day = Some(day);
        Ok(())
    }

    async fn operator_decision<C: Payload>(
        &mut self,
        ctx: &Context,
        command: &Envelope<C>,
        campaign: &CampaignId,
        kind: &'static str,
        reason: String,
    ) -> Result<Option<CampaignGoal>, AgentError> {
        let Some(goal) = self.campaigns.get(campaign).and_then(|s| s.goal.clone()) else {
            tracing::warn!(%campaign, kind, "command for a campaign this orchestrator has not started; ignored");
            return Ok(None);
        };
        let kb = Arc::clone(&self.kb);
        let n = {
            let state = self.state(&goal)?;
            state.commands += 1;
            state.commands
        };
        let draft = Draft::new(kind, format!("operator/{n}/{kind}"))
            .inputs(serde_json::json!({ "from": command.from.to_string(), "at": ctx.now() }))
            .choice(kind)
            .reason(reason)
            .confidence(1.0);
        ledger::record(&kb, ctx, command, &goal, draft).await?;
        Ok(Some(goal))
    }
}

impl HandleEvent<AgentIsolated> for Orchestrator {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<AgentIsolated>,
    ) -> Result<(), AgentError> {
        let agent = event.payload.agent.to_string();
        tracing::error!(%agent, last_error = %event.payload.last_error, "agent isolated; degrading");
        self.isolated.insert(agent);
        Ok(())
    }
}

/// Its own progress reports come back on the topic it subscribes to; they are already recorded.
impl HandleEvent<GoalProgress> for Orchestrator {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<GoalProgress>,
    ) -> Result<(), AgentError> {
        let p = &event.payload;
        tracing::debug!(campaign = %p.campaign, day = p.day, conversions = p.conversions, "progress");
        Ok(())
    }
}

/// Batches are the optimizer's to learn from; the orchestrator reads progress at its next tick.
impl HandleEvent<ObservationsRecorded> for Orchestrator {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<ObservationsRecorded>,
    ) -> Result<(), AgentError> {
        let p = &event.payload;
        tracing::debug!(campaign = %p.goal.id, day = p.day, observations = p.observations.len(), "observations recorded");
        Ok(())
    }
}

impl HandleCommand<Pause> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Pause>,
    ) -> Result<(), AgentError> {
        let reason = format!("paused by {}: {}", command.from, command.payload.why);
        if let Some(goal) = self
            .operator_decision(ctx, &command, &command.payload.campaign, "pause", reason)
            .await?
        {
            self.state(&goal)?.paused = true;
        }
        Ok(())
    }
}

impl HandleCommand<Resume> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Resume>,
    ) -> Result<(), AgentError> {
        // Resuming is also how an operator says a revived agent may be trusted again.
        self.isolated.clear();
        let why = &command.payload.why;
        let reason = if why.is_empty() {
            format!("resumed by {}", command.from)
        } else {
            format!("resumed by {}: {why}", command.from)
        };
        if let Some(goal) = self
            .operator_decision(ctx, &command, &command.payload.campaign, "resume", reason)
            .await?
        {
            self.state(&goal)?.paused = false;
        }
        Ok(())
    }
}

impl HandleCommand<Replan> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Replan>,
    ) -> Result<(), AgentError> {
        let reason = format!(
            "re-plan ordered by {}: {}",
            command.from, command.payload.why
        );
        if let Some(goal) = self
            .operator_decision(
                ctx,
                &command,
                &command.payload.campaign,
                "replan_ordered",
                reason,
            )
            .await?
        {
            self.state(&goal)?.replan_requested = Some(command.payload.why.clone());
        }
        Ok(())
    }
}

/// The start of day `day` of a campaign.
pub fn day_start(goal: &CampaignGoal, day: u32) -> Option<DateTime<Utc>> {
    goal.start.map(|s| s + Duration::days(i64::from(day)))
}
