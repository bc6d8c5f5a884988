//! Risky creatives waiting for a person: of the variants compliance approved, those the
//! campaign's autonomy holds back (a risk score above `[approvals] creative_risk`, a product in a
//! sensitive category) are not sent. One approval request per batch (the first creatives, or a
//! bred generation) lists them with their text, risk and findings; the others go to market at
//! once. Approved (all, or the subset a person names), they join the experiment; rejected or
//! expired, they are never sent.

use super::Orchestrator;
use super::approvals::Resolution;
use crate::agents::approvals::{Ask, asked, policy};
use crate::agents::compliance::VariantVerdict;
use crate::agents::decisions::{ApprovalAppliedInputs, HeldCreative, Proposal};
use crate::agents::messages::Arm;
use crate::agents::optimization::{ArmsSource, JoinArms, Optimization};
use crate::domain::approval::{ApprovalKind, Verdict, creative_waits};
use crate::domain::campaign::CampaignGoal;
use crate::domain::content::Variant;
use crate::kb::DecisionId;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, Context, DeliveryError};

/// A batch compliance approved, split by whether it may be sent now.
pub(super) struct Split {
    /// What goes to market now.
    pub now: Vec<Arm>,
    /// The request for the rest, if any waits.
    pub waiting: Option<DecisionId>,
}

impl Orchestrator {
    /// Splits `approved` into what is sent now and what waits for a person, and asks about the
    /// latter (once per `batch`: a replayed batch finds its request).
    pub(super) async fn hold_risky<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        day: u32,
        batch: &str,
        approved: Vec<(Variant, VariantVerdict)>,
    ) -> Result<Split, AgentError> {
        let autonomy = asked(&self.book, goal, ApprovalKind::Creatives)?;
        let policy = policy(ctx);
        let mut now = Vec::new();
        let mut held = Vec::new();
        for (variant, review) in approved {
            let waits = autonomy.and_then(|a| {
                creative_waits(a, review.verdict.risk, &goal.product_category, &policy)
            });
            match waits {
                None => now.push(Arm::of(&variant)),
                Some(why) => held.push(HeldCreative {
                    arm: Arm::of(&variant),
                    creative: variant.creative,
                    risk: review.verdict.risk,
                    why,
                    findings: review
                        .verdict
                        .findings
                        .iter()
                        .map(|f| f.message.clone())
                        .collect(),
                    review: review.decision,
                }),
            }
        }
        if held.is_empty() {
            return Ok(Split { now, waiting: None });
        }
        let ids: Vec<&str> = held.iter().map(|h| h.arm.variant.as_str()).collect();
        let ask = Ask {
            day,
            step_key: batch.to_owned(),
            what: format!(
                "send {} creative{} compliance approved: {}",
                held.len(),
                if held.len() == 1 { "" } else { "s" },
                ids.join(", ")
            ),
            risk: held[0].why.clone(),
            meanwhile: if now.is_empty() {
                "they are not sent, and nothing else of this batch is".to_owned()
            } else {
                format!(
                    "they are not sent; the experiment runs on the {} other variants approved",
                    now.len()
                )
            },
            evidence: held.iter().map(|h| h.review).collect(),
            proposal: Proposal::Creatives {
                batch: batch.to_owned(),
                held,
            },
        };
        let request = self.ask(ctx, envelope, goal, ask).await?;
        Ok(Split {
            now,
            waiting: Some(request.id),
        })
    }

    /// Acts on the answers to the campaign's waiting creatives: those approved join the
    /// experiment, those refused are never sent. A peer that does not answer leaves the request
    /// waiting for the next tick.
    pub(super) async fn creatives_answered<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        day: u32,
    ) -> Result<Result<(), DeliveryError>, AgentError> {
        for id in self.waiting(goal, ApprovalKind::Creatives)? {
            let (verdict, answer, what) = match self.resolve(goal, id).await? {
                Resolution::Pending => continue,
                Resolution::Approved { proposal, answer } => {
                    let arms = approved_arms(proposal);
                    let joined = ctx
                        .request(
                            Optimization::NAME,
                            JoinArms {
                                goal: goal.clone(),
                                day,
                                source: ArmsSource::Approved { request: id },
                                creatives: None,
                                arms: arms.clone(),
                            },
                        )
                        .await;
                    if let Err(error) = joined {
                        return Ok(Err(error));
                    }
                    let what = format!(
                        "{} creative{} joined the experiment: {}",
                        arms.len(),
                        if arms.len() == 1 { "" } else { "s" },
                        arms.iter()
                            .map(|a| a.variant.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    (Verdict::Approved, answer, what)
                }
                Resolution::Refused { verdict, answer } => (
                    verdict,
                    answer,
                    "none of them is sent; the experiment goes on with the variants it has"
                        .to_owned(),
                ),
            };
            let done = ApprovalAppliedInputs {
                request: id,
                answer,
                verdict,
            };
            self.applied(ctx, envelope, goal, done, what).await?;
        }
        Ok(Ok(()))
    }
}

/// The arms an approval of creatives puts into the experiment.
pub(super) fn approved_arms(proposal: Proposal) -> Vec<Arm> {
    match proposal {
        Proposal::Creatives { held, .. } => held.into_iter().map(|h| h.arm).collect(),
        _ => Vec::new(),
    }
}
