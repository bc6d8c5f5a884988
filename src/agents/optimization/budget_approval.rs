//! A budget move that waits for a person: raised by a day's learning when the campaign's autonomy
//! asks about it (`allocation` in `learn`), and acted on when the next day's buys are planned,
//! once answered. While it waits the budgets in force stay, and no other move is proposed.

use super::learn::budget_changes;
use super::{Optimization, PlanBuys};
use crate::agents::approvals;
use crate::agents::decisions::{self as kinds, AllocationChoice, ApprovalAppliedInputs, Proposal};
use crate::agents::ledger::{self, Draft};
use crate::domain::approval::Verdict;
use crate::domain::campaign::CampaignGoal;
use crate::protocol::Envelope;
use crate::runtime::{AgentError, Context};

impl Optimization {
    /// Acts on the answer to the campaign's waiting budget move, if it has one: approved (as
    /// amended), its budgets are in force from today's buys; rejected or expired, the budgets
    /// stay. A move proposed before a re-plan changed the budgets is not applied.
    pub(super) async fn budget_answered(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<PlanBuys>,
        goal: &CampaignGoal,
    ) -> Result<(), AgentError> {
        let Some(request) = self.experiment(goal)?.and_then(|s| s.waiting_budget) else {
            return Ok(());
        };
        let Some((answer, choice)) = approvals::answer_of(&self.kb, goal, request)? else {
            if let Some(asked) = self.kb.decision(&ledger::scope(goal), request)? {
                approvals::ensure_listed(&self.book, goal, &asked).await?;
            }
            return Ok(());
        };
        let current = self
            .experiment(goal)?
            .map(|s| s.experiment.daily.clone())
            .unwrap_or_default();
        let what = match (choice.verdict, choice.apply) {
            (
                Verdict::Approved,
                Some(Proposal::BudgetMove {
                    before,
                    daily,
                    allocation,
                }),
            ) if before == current => {
                let changes = budget_changes(&before, &daily, &goal.budget.currency);
                let draft = Draft::new::<kinds::Allocation>(
                    format!("allocation/approved/{request}"),
                    *allocation,
                    AllocationChoice { daily },
                )
                .reason(format!(
                    "the budget move of request {request} approved{} (answer {answer}): {changes}",
                    if choice.amended { " as amended" } else { "" }
                ))
                .confidence(0.8);
                self.record(ctx, envelope, goal, draft).await?;
                format!("the approved budgets are in force: {changes}")
            }
            (Verdict::Approved, Some(_)) => {
                "not applied: the budgets changed since it was proposed (a re-plan), and those stay"
                    .to_owned()
            }
            _ => "the budgets in force stay".to_owned(),
        };
        let draft = Draft::new::<kinds::ApprovalApplied>(
            format!("approval/applied/{request}"),
            ApprovalAppliedInputs {
                request,
                answer,
                verdict: choice.verdict,
            },
            what.clone(),
        )
        .reason(format!(
            "request {request} {}: {what}",
            choice.verdict.as_str()
        ))
        .confidence(1.0);
        self.record(ctx, envelope, goal, draft).await?;
        Ok(())
    }
}
