//! Variants joining a running experiment: a bred generation's approved combinations (retiring
//! the weakest arms so no cell has more than `max_live`), or creatives a person approved, which
//! also give a channel that had none its planned budget back.

use std::collections::{BTreeMap, BTreeSet};

use super::{Arm, ArmsSource, JoinArms, Joined, Optimization, learn};
use crate::agents::decisions::{
    self as kinds, AllocationChoice, AllocationInputs, JoinChoice, JoinInputs, RetiredArm,
};
use crate::agents::ledger::Draft;
use crate::domain::campaign::CampaignGoal;
use crate::domain::money::money_text;
use crate::domain::optimization::{refund_joined, retirements};
use crate::kb::DecisionId;
use crate::protocol::Envelope;
use crate::runtime::{AgentError, Context, HandleRequest};

impl HandleRequest<JoinArms> for Optimization {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<JoinArms>,
    ) -> Result<Joined, AgentError> {
        let p = &request.payload;
        self.playbook.refresh(ctx.services());
        let max_live = self.playbook.get().genetic.max_live;
        let Some(state) = self.experiment(&p.goal)? else {
            return Err(AgentError::msg(format!(
                "campaign {} has no experiment to join variants to",
                p.goal.id
            )));
        };
        let exp = &state.experiment;
        // A variant already tested (an earlier generation wrote the same copy) keeps its arm.
        let joined: Vec<Arm> = p
            .arms
            .iter()
            .filter(|a| exp.arms.get(&a.variant).is_none_or(|s| s.arm.is_none()))
            .cloned()
            .collect();
        let mut by_cell: BTreeMap<_, BTreeSet<&str>> = BTreeMap::new();
        for arm in &joined {
            if let Some(cell) = arm.cell() {
                by_cell
                    .entry(cell)
                    .or_default()
                    .insert(arm.variant.as_str());
            }
        }
        let retired: Vec<RetiredArm> = by_cell
            .iter()
            .flat_map(|(cell, new)| retirements(exp, cell, new, max_live))
            .map(|variant| {
                let stats = exp.arms.get(&variant).map(|s| s.stats).unwrap_or_default();
                RetiredArm {
                    share: exp.shares.get(&variant).copied(),
                    conversions: stats.successes,
                    trials: stats.trials,
                    variant,
                }
            })
            .collect();
        let (step, generation, approval) = match &p.source {
            ArmsSource::Bred(g) => (format!("genetic/day/{}/join", g.day), Some(g), None),
            ArmsSource::Approved { request } => (
                format!("approval/creatives/{request}/join"),
                None,
                Some(*request),
            ),
        };
        let mut draft = Draft::new::<kinds::ArmsJoined>(
            step,
            JoinInputs {
                day: p.day,
                generation: generation.map(|g| g.decision),
                approval,
                creatives: p.creatives,
                max_live,
            },
            JoinChoice {
                joined: joined.clone(),
                retired: retired.clone(),
            },
        );
        for arm in &joined {
            draft = draft.alternative(
                &arm.variant,
                1.0,
                Some("joins: approved by compliance".to_owned()),
            );
        }
        for r in &retired {
            draft = draft.alternative(
                &r.variant,
                0.0,
                Some(format!(
                    "retired with {} conversions in {} impressions{}",
                    r.conversions,
                    r.trials,
                    r.share.map_or(String::new(), |s| format!(
                        ", traffic share {:.1} %",
                        s * 100.0
                    ))
                )),
            );
        }
        let counted = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let bred = match generation {
            Some(g) => format!(
                "{} bred on day {}",
                counted(
                    g.bred.iter().map(|b| b.combinations.len()).sum(),
                    "combination"
                ),
                g.day
            ),
            None => format!("{} a person approved", counted(p.arms.len(), "creative")),
        };
        let reason = match (joined.len(), retired.len()) {
            (0, _) => format!(
                "none of {bred} joins the experiment: {} written and approved, none of them new",
                p.arms.len()
            ),
            (new, 0) => format!(
                "{new} of {bred} joined the experiment, written by content and approved by compliance; every cell stays within {max_live} live arms"
            ),
            (new, old) => format!(
                "{new} of {bred} joined the experiment, written by content and approved by compliance; {} retired (the smallest traffic shares, keeping their evidence) so no cell has more than {max_live} live arms",
                counted(old, "arm")
            ),
        };
        let decision = self
            .record(ctx, &request, &p.goal, draft.reason(reason).confidence(0.6))
            .await?;
        if let ArmsSource::Approved { request: approval } = &p.source {
            self.refund(ctx, &request, &p.goal, *approval).await?;
        }
        Ok(Joined {
            decision: decision.id,
            joined: joined.len(),
            retired: retired.len(),
        })
    }
}

impl Optimization {
    /// Gives a channel that had no budget for lack of approved variants its planned budget back,
    /// once the creatives a person approved in `approval` gave it some: part of that approval.
    async fn refund<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        approval: DecisionId,
    ) -> Result<(), AgentError> {
        let Some((before, refund)) = self
            .experiment(goal)?
            .and_then(|s| refund_joined(&s.experiment).map(|r| (s.experiment.daily.clone(), r)))
        else {
            return Ok(());
        };
        let money = |amount: f64| money_text(amount, &goal.budget.currency);
        let draft = Draft::new::<kinds::Allocation>(
            format!("allocation/refunded/{approval}"),
            AllocationInputs {
                before: before.clone(),
                ..AllocationInputs::default()
            },
            AllocationChoice {
                daily: refund.daily.clone(),
            },
        )
        .reason(format!(
            "the creatives a person approved (request {approval}) give {} approved variants again: {} a day of the plan's budget goes back to it from the others ({})",
            refund.refunded.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
            money(refund.moved),
            learn::budget_changes(&before, &refund.daily, &goal.budget.currency)
        ))
        .confidence(1.0);
        self.record(ctx, envelope, goal, draft).await?;
        Ok(())
    }
}
