//! People in the loop, the orchestrator's part: it records every answer (a person's through the
//! API, or a request's expiry), sets a campaign's autonomy, and acts on the answers to its own
//! requests (a day's buys, a re-plan) at the campaign's tick.
//!
//! Every answer goes through here, on the campaign's worker, so two people answering at once are
//! served one after the other and the second finds the first (and the knowledge base's
//! compare-and-swap backs that up across workers). An expired request gets its configured default
//! as an answer by `expiry`: rejected, or the campaign paused until an operator resumes it.

use super::Orchestrator;
use crate::agents::approvals::{self, Answer, Ask, CampaignAutonomy, Listed};
use crate::agents::decisions::{self as kinds, ApprovalAppliedInputs, OperatorInputs, Proposal};
use crate::agents::ledger::Draft;
use crate::agents::messages::{AnswerApproval, AnswerReply, AutonomySet, SetAutonomy};
use crate::agents::projection;
use crate::domain::approval::{ApprovalKind, OnExpiry, Verdict, amend_budget, amend_buys};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::kb::{Decision, DecisionId};
use crate::protocol::Envelope;
use crate::runtime::{AgentError, Clock, Context, HandleRequest};

/// What became of one of the orchestrator's requests.
pub(super) enum Resolution {
    Pending,
    Approved {
        proposal: Proposal,
        answer: DecisionId,
    },
    Refused {
        verdict: Verdict,
        answer: DecisionId,
    },
}

impl Orchestrator {
    /// Raises an approval request and takes it into the campaign's state: the orchestrator then
    /// waits for its answer.
    pub(super) async fn ask<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        ask: Ask,
    ) -> Result<Decision, AgentError> {
        let policy = approvals::policy(ctx);
        let decision =
            approvals::propose(&self.kb, &self.book, ctx, envelope, goal, &policy, ask).await?;
        self.state(goal)?.apply(&decision);
        Ok(decision)
    }

    /// Answers every pending request of the campaign whose time is up with its default, and
    /// pauses the campaign for those whose default is to hold it.
    pub(super) async fn expire_due<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
    ) -> Result<(), AgentError> {
        let now = Clock::wall_now();
        let due: Vec<Listed> = self
            .book
            .campaign(&goal.tenant, &goal.id)?
            .into_iter()
            .filter(|l| l.pending() && l.expires_at <= now)
            .collect();
        for request in due {
            self.expire(ctx, envelope, goal, &request).await?;
        }
        Ok(())
    }

    async fn expire<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        request: &Listed,
    ) -> Result<(), AgentError> {
        let answer = Answer {
            verdict: Verdict::Expired,
            by: "expiry".to_owned(),
            why: format!("nobody answered by {}", request.expires_at.to_rfc3339()),
            apply: None,
            amended: false,
        };
        let recorded =
            approvals::record_answer(&self.kb, &self.book, ctx, envelope, goal, request, answer)
                .await?;
        let Ok(answer) = recorded else {
            return Ok(());
        };
        tracing::warn!(campaign = %goal.id, request = %request.id, kind = request.kind.as_str(), on_expiry = ?request.on_expiry, "approval request expired unanswered");
        if request.on_expiry == OnExpiry::Hold {
            let draft = Draft::new::<kinds::Pause>(
                format!("approval/hold/{}", request.id),
                OperatorInputs {
                    from: "expiry".to_owned(),
                    at: Clock::wall_now(),
                    why: Some(format!("approval request {} expired", request.id)),
                },
                "pause".to_owned(),
            )
            .reason(format!(
                "paused: the {} request {} was not answered by {}, and an unanswered {} holds the campaign; an operator resumes it (answer {})",
                request.kind.as_str(),
                request.id,
                request.expires_at.to_rfc3339(),
                request.kind.as_str(),
                answer.id
            ))
            .confidence(1.0);
            self.record(ctx, envelope, goal, draft).await?;
        }
        Ok(())
    }

    /// What became of the orchestrator's own request `id`: its answer, if it has one. A pending
    /// request is listed again if a crash lost its book entry.
    pub(super) async fn resolve(
        &mut self,
        goal: &CampaignGoal,
        id: DecisionId,
    ) -> Result<Resolution, AgentError> {
        match approvals::answer_of(&self.kb, goal, id)? {
            Some((answer, choice)) => Ok(match (choice.verdict, choice.apply) {
                (Verdict::Approved, Some(proposal)) => Resolution::Approved { proposal, answer },
                (verdict, _) => Resolution::Refused { verdict, answer },
            }),
            None => {
                if let Some(request) = self.kb.decision(&crate::agents::ledger::scope(goal), id)? {
                    approvals::ensure_listed(&self.book, goal, &request).await?;
                }
                Ok(Resolution::Pending)
            }
        }
    }

    /// Records what the orchestrator did with the answer to its request: the request is acted on.
    pub(super) async fn applied<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        done: ApprovalAppliedInputs,
        what: String,
    ) -> Result<(), AgentError> {
        let request = done.request;
        let verdict = done.verdict;
        let draft = Draft::new::<kinds::ApprovalApplied>(
            format!("approval/applied/{request}"),
            done,
            what.clone(),
        )
        .reason(format!("request {request} {}: {what}", verdict.as_str()))
        .confidence(1.0);
        self.record(ctx, envelope, goal, draft).await?;
        Ok(())
    }

    /// The waiting request of `kind` (for buys, of `day`), if any.
    pub(super) fn waiting(
        &mut self,
        goal: &CampaignGoal,
        kind: ApprovalKind,
    ) -> Result<Option<(DecisionId, Proposal)>, AgentError> {
        Ok(self
            .state(goal)?
            .waiting
            .iter()
            .find(|(_, p)| p.kind() == kind)
            .map(|(id, p)| (*id, p.clone())))
    }
}

/// The proposal a person's answer puts into effect: the request's, or its amendment within the
/// proposal's bounds.
fn amended(proposal: Proposal, amend: Option<&serde_json::Value>) -> Result<Proposal, String> {
    let Some(amend) = amend else {
        return Ok(proposal);
    };
    let number = |key: &str| amend.get(key).and_then(serde_json::Value::as_f64);
    match proposal {
        Proposal::Buys { buys } => {
            let spend = number("spend")
                .ok_or("a day's buys are amended with {\"spend\": <the day's total, at most the proposed>}")?;
            let buys = amend_buys(&buys, spend).map_err(|e| e.to_string())?;
            Ok(Proposal::Buys { buys })
        }
        Proposal::BudgetMove {
            before,
            daily,
            allocation,
        } => {
            let wanted: std::collections::BTreeMap<Channel, f64> = amend
                .get("daily")
                .cloned()
                .and_then(|d| serde_json::from_value(d).ok())
                .ok_or("a budget move is amended with {\"daily\": {\"<channel>\": <daily budget>, ...}}")?;
            let daily = amend_budget(&before, &daily, &wanted).map_err(|e| e.to_string())?;
            Ok(Proposal::BudgetMove {
                before,
                daily,
                allocation,
            })
        }
        other => Err(format!(
            "a {} request cannot be amended: approve or reject it as proposed",
            other.kind().as_str()
        )),
    }
}

impl HandleRequest<AnswerApproval> for Orchestrator {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        message: Envelope<AnswerApproval>,
    ) -> Result<AnswerReply, AgentError> {
        let ask = &message.payload;
        let goal = &ask.goal;
        let Some(request) = self
            .book
            .campaign(&goal.tenant, &goal.id)?
            .into_iter()
            .find(|l| l.id == ask.request)
        else {
            return Ok(AnswerReply::Unknown);
        };
        if let Some(first) = &request.answer {
            return Ok(AnswerReply::AlreadyAnswered {
                answer: first.id,
                verdict: first.verdict,
                by: first.by.clone(),
            });
        }
        // Past its time it is answered by its expiry, now, whoever asks.
        if request.expires_at <= Clock::wall_now() {
            self.expire(ctx, &message, goal, &request).await?;
            return Ok(match approvals::answer_of(&self.kb, goal, request.id)? {
                Some((answer, choice)) => AnswerReply::AlreadyAnswered {
                    answer,
                    verdict: choice.verdict,
                    by: "expiry".to_owned(),
                },
                None => AnswerReply::Unknown,
            });
        }
        let Some(decision) = self
            .kb
            .decision(&crate::agents::ledger::scope(goal), request.id)?
        else {
            return Ok(AnswerReply::Unknown);
        };
        let Some(proposed) = projection::choice::<kinds::ApprovalRequested>(&decision) else {
            return Ok(AnswerReply::Unknown);
        };
        let apply = match ask.verdict {
            Verdict::Approved => match amended(proposed.proposal, ask.amend.as_ref()) {
                Ok(apply) => Some(apply),
                Err(why) => return Ok(AnswerReply::Invalid { why }),
            },
            Verdict::Rejected if ask.amend.is_some() => {
                return Ok(AnswerReply::Invalid {
                    why: "only an approval can be amended".to_owned(),
                });
            }
            Verdict::Rejected => None,
            Verdict::Expired => {
                return Ok(AnswerReply::Invalid {
                    why: "a person approves or rejects; expiry is the daemon's".to_owned(),
                });
            }
        };
        let answer = Answer {
            verdict: ask.verdict,
            by: ask.by.clone(),
            why: ask.why.clone(),
            apply,
            amended: ask.amend.is_some(),
        };
        let recorded =
            approvals::record_answer(&self.kb, &self.book, ctx, &message, goal, &request, answer)
                .await?;
        Ok(match recorded {
            Ok(answer) => {
                tracing::info!(campaign = %goal.id, request = %request.id, kind = request.kind.as_str(), verdict = ask.verdict.as_str(), by = %ask.by, "approval request answered");
                AnswerReply::Recorded { answer: answer.id }
            }
            Err(first) => {
                let choice = projection::decode::<kinds::ApprovalAnswered>(&first);
                AnswerReply::AlreadyAnswered {
                    answer: first.id,
                    verdict: choice.as_ref().map_or(Verdict::Expired, |(_, c)| c.verdict),
                    by: choice.map(|(i, _)| i.by).unwrap_or_default(),
                }
            }
        })
    }
}

impl HandleRequest<SetAutonomy> for Orchestrator {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        message: Envelope<SetAutonomy>,
    ) -> Result<AutonomySet, AgentError> {
        let set = &message.payload;
        let goal = &set.goal;
        let n = self.state(goal)?.autonomy_changes + 1;
        let before = self.book.autonomy(goal)?;
        let now = CampaignAutonomy {
            autonomy: Some(set.autonomy),
            not_asked: before.not_asked.clone(),
        };
        let draft = Draft::new::<kinds::AutonomySet>(
            format!("autonomy/{n}"),
            OperatorInputs {
                from: set.by.clone(),
                at: Clock::wall_now(),
                why: Some(set.why.clone()),
            },
            kinds::AutonomyChoice {
                autonomy: set.autonomy,
                not_asked: now.not_asked.clone(),
            },
        )
        .reason(format!(
            "{} set the campaign's autonomy from {} to {}: {}",
            set.by,
            before.autonomy.unwrap_or(goal.autonomy).as_str(),
            set.autonomy.as_str(),
            set.why
        ))
        .confidence(1.0);
        let decision = self.record(ctx, &message, goal, draft).await?;
        self.book.set_autonomy(goal, &now).await?;
        Ok(AutonomySet {
            decision: decision.id,
        })
    }
}
