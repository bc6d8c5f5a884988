//! Setting a campaign up on its first day: the plan and its sub-goals, the creatives, the review
//! loop with content's revisions, and the start of the experiment with the approved variants (the
//! risky ones once a person approves them, see `creatives`).
//!
//! Every finished step is recorded and not redone, so a set-up cut short (a peer that did not
//! answer, a restart) goes on from where it stopped at the next tick. Nothing unapproved leaves.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};

use super::Orchestrator;
use super::approvals::Resolution;
use super::creatives::approved_arms;
use crate::agents::compliance::{Compliance, ReviewItem, ReviewVariants, VariantVerdict};
use crate::agents::content::{Blocked, Content, ReviseVariants, WriteCreatives};
use crate::agents::decisions::{
    self as kinds, ApprovalAppliedInputs, Funnel, SetupChoice, SetupInputs, SubGoalsChoice,
    SubGoalsInputs,
};
use crate::agents::ledger::Draft;
use crate::agents::messages::{Arm, Tick};
use crate::agents::optimization::{Optimization, StartExperiment};
use crate::agents::strategy::{PlanCampaign, Strategy};
use crate::domain::approval::Verdict;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::compliance::Sender;
use crate::domain::content::Variant;
use crate::domain::content::message_of;
use crate::domain::money::money_text;
use crate::domain::send_time::send_time;
use crate::kb::DecisionId;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, Context};

/// Revision rounds before a still-blocked variant is dropped.
const MAX_REVIEW_ROUNDS: u32 = 3;

impl Orchestrator {
    /// Plan, write, review and start the experiment. Returns why it could not finish, if so (a
    /// peer that did not answer, no plan, nothing approved); the tick records the day as held and
    /// the next tick tries again (every finished step is recorded and not redone).
    pub(super) async fn set_up(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<Tick>,
        goal: &CampaignGoal,
    ) -> Result<Option<String>, AgentError> {
        let plan = ctx
            .request(
                Strategy::NAME,
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
        let mut draft = Draft::new::<kinds::SubGoals>(
            "sub_goals",
            SubGoalsInputs {
                plan: reply.decision,
                target: goal.target,
                budget: goal.budget.clone(),
            },
            SubGoalsChoice {
                goal: goal.clone(),
                funnel: Funnel {
                    conversions: plan.kpis.conversions,
                    clicks: plan.kpis.clicks,
                    impressions: plan.kpis.impressions,
                    cpa: plan.kpis.cpa,
                },
                daily_budget: daily.clone(),
                days: plan.days,
            },
        )
        .reason(format!(
            "{} {} by {} split into the funnel {} conversions ← {} clicks ← {} impressions, and {} a day: {}",
            goal.target,
            goal.objective.as_str(),
            goal.deadline.format("%Y-%m-%d"),
            plan.kpis.conversions,
            plan.kpis.clicks,
            plan.kpis.impressions,
            money_text(plan.daily_budget, &goal.budget.currency),
            daily.iter().map(|(c, s)| format!("{c} {}", money_text(*s, &goal.budget.currency))).collect::<Vec<_>>().join(", ")
        ))
        .confidence(if plan.feasibility.feasible { 0.7 } else { 0.3 });
        for c in &plan.channels {
            draft = draft.alternative(
                c.channel,
                c.share,
                Some(format!(
                    "{} a day",
                    money_text(c.daily_spend, &goal.budget.currency)
                )),
            );
        }
        self.record(ctx, envelope, goal, draft).await?;

        let creatives = match ctx
            .request(Content::NAME, WriteCreatives { goal: goal.clone() })
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(Some(format!("content did not answer: {e}"))),
        };
        if let Some(error) = creatives.error {
            return Ok(Some(format!("content wrote nothing: {error}")));
        }
        let start = goal.start.unwrap_or_else(|| ctx.now());
        let approved = match self
            .review_loop(ctx, goal, creatives.variants, &creatives.sender, "", start)
            .await
        {
            Ok(approved) => approved,
            // The tick records the held day with this reason.
            Err(why) => return Ok(Some(why)),
        };
        if approved.is_empty() {
            return Ok(Some("compliance approved no variant".to_owned()));
        }
        let day = envelope.payload.day;
        let split = self
            .hold_risky(ctx, envelope, goal, day, "setup", approved)
            .await?;
        let others_wait = split.waiting.filter(|_| !split.now.is_empty());
        let arms = match (split.now.is_empty(), split.waiting) {
            // Every creative waits: the experiment starts with those a person approves.
            (true, Some(request)) => {
                match self.first_creatives(ctx, envelope, goal, request).await? {
                    Ok(arms) => arms,
                    Err(why) => return Ok(Some(why)),
                }
            }
            _ => split.now,
        };
        let started = ctx
            .request(
                Optimization::NAME,
                StartExperiment {
                    goal: goal.clone(),
                    attempt: 0,
                    arms: arms.clone(),
                    daily: daily.clone(),
                    curves: reply.curves.clone(),
                    bounds: reply.bounds.clone(),
                    plan: reply.decision,
                },
            )
            .await;
        if let Err(e) = started {
            return Ok(Some(format!("optimization did not answer: {e}")));
        }
        let draft = Draft::new::<kinds::Setup>(
            "setup",
            SetupInputs {
                plan: reply.decision,
                creatives: creatives.decision,
            },
            SetupChoice {
                approved: arms.iter().map(|a| a.variant.clone()).collect(),
            },
        )
        .reason(format!(
            "{} variants approved by compliance enter the experiment on {}{}",
            arms.len(),
            daily
                .keys()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            others_wait.map_or(String::new(), |request| format!(
                "; the others wait for a person (request {request})"
            ))
        ))
        .confidence(0.8);
        self.record(ctx, envelope, goal, draft).await?;
        Ok(None)
    }

    /// The first creatives when every one of them waited for a person: those approved, once
    /// answered; why the campaign cannot start yet otherwise.
    async fn first_creatives(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<Tick>,
        goal: &CampaignGoal,
        request: DecisionId,
    ) -> Result<Result<Vec<Arm>, String>, AgentError> {
        let (verdict, answer, what, arms) = match self.resolve(goal, request).await? {
            Resolution::Pending => {
                return Ok(Err(format!(
                    "waiting for a person to approve the first creatives (request {request})"
                )));
            }
            Resolution::Approved { proposal, answer } => {
                let arms = approved_arms(proposal);
                let what = format!("the experiment starts with {} creatives", arms.len());
                (Verdict::Approved, answer, what, arms)
            }
            Resolution::Refused { verdict, answer } => {
                let what = "none is sent: the campaign has no creative to start with".to_owned();
                (verdict, answer, what, Vec::new())
            }
        };
        let done = ApprovalAppliedInputs {
            request,
            answer,
            verdict,
        };
        self.applied(ctx, envelope, goal, done, what).await?;
        if arms.is_empty() {
            return Ok(Err(format!(
                "every creative compliance approved was refused by a person (request {request}); the campaign cannot start"
            )));
        }
        Ok(Ok(arms))
    }

    /// Review, revise what can be fixed, review again; only approved variants come back. Any
    /// failure to reach compliance approves nothing. `batch` names the variants' generation in
    /// the decisions' step ids (empty for the first); they are first sent on the day starting at
    /// `from`.
    pub(super) async fn review_loop(
        &self,
        ctx: &Context,
        goal: &CampaignGoal,
        variants: Vec<Variant>,
        sender: &Sender,
        batch: &str,
        from: DateTime<Utc>,
    ) -> Result<Vec<(Variant, VariantVerdict)>, String> {
        let first_send = send_time(&goal.regions, from);
        let mut send_at: BTreeMap<String, DateTime<FixedOffset>> = BTreeMap::new();
        let mut pending = variants;
        let mut approved = Vec::new();
        for round in 0..MAX_REVIEW_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if let Some(why) = Self::compliance_down(ctx) {
                return Err(why);
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
                    Compliance::NAME,
                    ReviewVariants {
                        goal: goal.clone(),
                        items,
                        round,
                        batch: batch.to_owned(),
                    },
                )
                .await
                .map_err(|e| format!("compliance did not answer: {e}"))?;
            let by_id: BTreeMap<&str, &VariantVerdict> = reviews
                .verdicts
                .iter()
                .map(|v| (v.variant.as_str(), v))
                .collect();
            let mut blocked = Vec::new();
            for variant in pending.drain(..) {
                match by_id.get(variant.id.as_str()) {
                    Some(v) if v.verdict.approved => approved.push((variant, (*v).clone())),
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
                    Content::NAME,
                    ReviseVariants {
                        goal: goal.clone(),
                        blocked,
                        round: round + 1,
                        batch: batch.to_owned(),
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
