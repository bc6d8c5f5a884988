//! People in the loop, the orchestrator's part: it records every answer (a person's through the
//! API, or a request's expiry), sets a campaign's autonomy, offers to stop asking about a kind a
//! person keeps approving unchanged (earned autonomy), and acts on the answers to its own
//! requests (a day's buys, a re-plan, an earned autonomy) at the campaign's tick.
//!
//! Every answer goes through here, on the campaign's worker, so two people answering at once are
//! served one after the other and the second finds the first (and the knowledge base's
//! compare-and-swap backs that up across workers). An expired request gets its configured default
//! as an answer by `expiry`: rejected, or the campaign paused until an operator resumes it.

use super::Orchestrator;
use crate::agents::approvals::{self, Answer, Ask, CampaignAutonomy, Listed, ListedAnswer};
use crate::agents::decisions::{self as kinds, ApprovalAppliedInputs, OperatorInputs, Proposal};
use crate::agents::ledger::{self, Draft};
use crate::agents::messages::{
    AnswerApproval, AnswerReply, AutonomySet, SetAutonomy, WithdrawApprovals, Withdrawn,
};
use crate::agents::projection;
use crate::domain::approval::{
    ApprovalKind, OnExpiry, PastAnswer, Verdict, amend_budget, amend_buys, amend_creatives,
    earned_autonomy,
};
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
        // A step run again finds its request; one already acted on waits for nothing.
        let applied = ledger::step_id(goal, &applied_step(decision.id));
        if self.kb.decision(&ledger::scope(goal), applied)?.is_none() {
            self.state(goal)?.apply(&decision);
        }
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
        for request in self.book.pending_of(&goal.tenant, &goal.id)? {
            if !self.listed_answered(goal, &request).await? && request.expires_at <= now {
                self.expire(ctx, envelope, goal, &request).await?;
            }
        }
        Ok(())
    }

    /// Whether a request the book lists as pending has an answer after all (a crash between
    /// the answer and its listing), listing it answered if so.
    async fn listed_answered(
        &self,
        goal: &CampaignGoal,
        request: &Listed,
    ) -> Result<bool, AgentError> {
        let Some((answer, _)) = approvals::answer_of(&self.kb, goal, request.id)? else {
            return Ok(false);
        };
        if let Some(recorded) = self.kb.decision(&ledger::scope(goal), answer)? {
            approvals::mark_answered(&self.book, request, &recorded).await?;
        }
        Ok(true)
    }

    async fn expire<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        request: &Listed,
    ) -> Result<(), AgentError> {
        if self.listed_answered(goal, request).await? {
            return Ok(());
        }
        // The hold first: a crash after it leaves the campaign paused and the request pending,
        // expired again at the next tick; never answered and running on.
        if request.on_expiry == OnExpiry::Hold {
            let answer = approvals::answer_id(goal, request.id);
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
                "paused: the {} request {} was not answered by {}, and an unanswered {} holds the campaign; an operator resumes it (answer {answer})",
                request.kind.as_str(),
                request.id,
                request.expires_at.to_rfc3339(),
                request.kind.as_str(),
            ))
            .confidence(1.0);
            self.record(ctx, envelope, goal, draft).await?;
        }
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
        if recorded.is_ok() {
            tracing::warn!(campaign = %goal.id, request = %request.id, kind = request.kind.as_str(), on_expiry = ?request.on_expiry, "approval request expired unanswered");
        }
        Ok(())
    }

    /// Answers every pending request of a campaign that is over (nothing it covers can take
    /// effect any more), so none waits for a person for ever.
    pub(super) async fn withdraw_pending<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        why: &str,
    ) -> Result<usize, AgentError> {
        let pending = self.book.pending_of(&goal.tenant, &goal.id)?;
        for request in &pending {
            let answer = Answer {
                verdict: Verdict::Expired,
                by: "campaignd".to_owned(),
                why: format!("withdrawn: {why}"),
                apply: None,
                amended: false,
            };
            // `Ok(Err(_))`: answered meanwhile, and that answer stands.
            let _ = approvals::record_answer(
                &self.kb, &self.book, ctx, envelope, goal, request, answer,
            )
            .await?;
        }
        Ok(pending.len())
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
        let draft = Draft::new::<kinds::ApprovalApplied>(applied_step(request), done, what.clone())
            .reason(format!("request {request} {}: {what}", verdict.as_str()))
            .confidence(1.0);
        self.record(ctx, envelope, goal, draft).await?;
        Ok(())
    }

    /// Earned autonomy: when a person's answers to the campaign's `kind` requests clear the
    /// policy's bar, asks whether to stop asking about that kind. Once per window: while such a
    /// request waits nothing more is offered, and after a refusal only the answers since count.
    async fn offer_earned<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        kind: ApprovalKind,
        day: u32,
    ) -> Result<(), AgentError> {
        if kind == ApprovalKind::Autonomy || self.book.autonomy(goal)?.not_asked.contains(&kind) {
            return Ok(());
        }
        let listed = self.book.campaign(&goal.tenant, &goal.id)?;
        let mut offers = Vec::new();
        for entry in listed.iter().filter(|l| l.kind == ApprovalKind::Autonomy) {
            if self.offered(goal, entry.id)? == Some(kind) {
                offers.push(entry);
            }
        }
        if offers.iter().any(|o| o.pending()) {
            return Ok(());
        }
        let since = offers
            .iter()
            .filter_map(|o| o.answer.as_ref())
            .map(|a| a.at)
            .max();
        let answered: Vec<&ListedAnswer> = listed
            .iter()
            .filter(|l| l.kind == kind)
            .filter_map(|l| l.answer.as_ref())
            .filter(|a| since.is_none_or(|since| a.at > since))
            .collect();
        let past: Vec<PastAnswer> = answered
            .iter()
            .map(|a| PastAnswer {
                verdict: a.verdict,
                amended: a.amended,
            })
            .collect();
        let policy = approvals::policy(ctx);
        let Some(share) = earned_autonomy(&past, &policy) else {
            return Ok(());
        };
        let window = policy.earned_window;
        let evidence = answered[answered.len() - window as usize..]
            .iter()
            .map(|a| a.id)
            .collect();
        let ask = Ask {
            day,
            step_key: format!("{}/{}", kind.as_str(), offers.len() + 1),
            what: format!(
                "stop asking a person about {} decisions on this campaign: {:.0} % of the last {window} were approved unchanged",
                kind.as_str(),
                share * 100.0
            ),
            proposal: Proposal::Autonomy {
                stop_asking: kind,
                share,
                window,
            },
            risk: format!(
                "campaignd never widens its own autonomy without a person's yes (the bar is {:.0} % of {window})",
                policy.earned_bar * 100.0
            ),
            meanwhile: format!("{} decisions keep waiting for a person", kind.as_str()),
            evidence,
        };
        self.ask(ctx, envelope, goal, ask).await?;
        Ok(())
    }

    /// The kind an earned-autonomy request `id` offers to stop asking about.
    fn offered(
        &self,
        goal: &CampaignGoal,
        id: DecisionId,
    ) -> Result<Option<ApprovalKind>, AgentError> {
        let request = self.kb.decision(&crate::agents::ledger::scope(goal), id)?;
        Ok(request
            .as_ref()
            .and_then(projection::choice::<kinds::ApprovalRequested>)
            .and_then(|c| match c.proposal {
                Proposal::Autonomy { stop_asking, .. } => Some(stop_asking),
                _ => None,
            }))
    }

    /// Acts on the answers to the campaign's earned-autonomy requests: an approved one stops
    /// asking about its kind from now on; a refused one changes nothing.
    pub(super) async fn autonomy_answered<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
    ) -> Result<(), AgentError> {
        for id in self.waiting(goal, ApprovalKind::Autonomy)? {
            let (verdict, answer, what) = match self.resolve(goal, id).await? {
                Resolution::Pending => continue,
                Resolution::Approved {
                    proposal: Proposal::Autonomy { .. },
                    answer,
                } if self.autonomy_set_since(goal, id)? => (
                    Verdict::Approved,
                    answer,
                    "not applied: a person set the campaign's autonomy after this answer, and everything it asks about is asked".to_owned(),
                ),
                Resolution::Approved {
                    proposal: Proposal::Autonomy { stop_asking, .. },
                    answer,
                } => {
                    let mut autonomy = self.book.autonomy(goal)?;
                    autonomy.not_asked.insert(stop_asking);
                    self.book.set_autonomy(goal, &autonomy).await?;
                    let what = format!(
                        "{} decisions no longer wait for a person on this campaign (setting its autonomy asks again)",
                        stop_asking.as_str()
                    );
                    (Verdict::Approved, answer, what)
                }
                Resolution::Approved { answer, .. } => (
                    Verdict::Approved,
                    answer,
                    "nothing changed: the approval did not carry an autonomy proposal".to_owned(),
                ),
                Resolution::Refused { verdict, answer } => (
                    verdict,
                    answer,
                    "everything asked before is still asked; it is offered again only after another full window of answers".to_owned(),
                ),
            };
            let done = ApprovalAppliedInputs {
                request: id,
                answer,
                verdict,
            };
            self.applied(ctx, envelope, goal, done, what).await?;
        }
        Ok(())
    }

    /// Whether a person set the campaign's autonomy after `request` was answered.
    fn autonomy_set_since(
        &self,
        goal: &CampaignGoal,
        request: DecisionId,
    ) -> Result<bool, AgentError> {
        let set_at = self.book.autonomy(goal)?.set_at;
        let answered_at = self
            .book
            .request(&goal.tenant, &goal.id, request)?
            .and_then(|l| l.answer)
            .map(|a| a.at);
        Ok(matches!((set_at, answered_at), (Some(set), Some(answered)) if set > answered))
    }

    /// The campaign's requests of `kind` not acted on yet.
    pub(super) fn waiting(
        &mut self,
        goal: &CampaignGoal,
        kind: ApprovalKind,
    ) -> Result<Vec<DecisionId>, AgentError> {
        Ok(self
            .state(goal)?
            .waiting
            .iter()
            .filter(|(_, p)| p.kind() == kind)
            .map(|(id, _)| *id)
            .collect())
    }
}

/// The step of what the orchestrator did with the answer to its `request`.
fn applied_step(request: DecisionId) -> String {
    format!("approval/applied/{request}")
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
        Proposal::Creatives { batch, held } => {
            let wanted: Vec<String> = amend
                .get("variants")
                .cloned()
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or("creatives are amended with {\"variants\": [\"<variant id>\", ...]}: the ones to send")?;
            let ids: Vec<String> = held.iter().map(|h| h.arm.variant.clone()).collect();
            let keep = amend_creatives(&ids, &wanted).map_err(|e| e.to_string())?;
            Ok(Proposal::Creatives {
                batch,
                held: held
                    .into_iter()
                    .filter(|h| keep.contains(&h.arm.variant))
                    .collect(),
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
        let Some(request) = self.book.request(&goal.tenant, &goal.id, ask.request)? else {
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
                self.offer_earned(ctx, &message, goal, request.kind, request.day)
                    .await?;
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

impl HandleRequest<WithdrawApprovals> for Orchestrator {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        message: Envelope<WithdrawApprovals>,
    ) -> Result<Withdrawn, AgentError> {
        let WithdrawApprovals { goal, why } = &message.payload;
        let requests = self.withdraw_pending(ctx, &message, goal, why).await?;
        if requests > 0 {
            tracing::info!(campaign = %goal.id, requests, %why, "pending approval requests withdrawn");
        }
        Ok(Withdrawn { requests })
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
        // A person's setting starts afresh: what was earned under the old one is asked again.
        let now = CampaignAutonomy {
            autonomy: Some(set.autonomy),
            not_asked: Default::default(),
            set_at: Some(Clock::wall_now()),
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
