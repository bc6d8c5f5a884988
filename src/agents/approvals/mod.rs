//! Approval requests, shared by every agent whose decisions can wait for a person: raising one
//! ([`propose`]), answering one ([`record_answer`], the orchestrator's, for people and for
//! expiry), reading an answer ([`answer_of`]), and the [`ApprovalBook`], which lists requests for
//! the API, the metrics and the expiry sweep and keeps each campaign's autonomy as people set it.
//!
//! The knowledge base holds the record: a request, its answer and what the proposing agent did
//! then are decisions in the campaign's trace. The answer's id is derived from the request's, so
//! a request is answered once: a second answer, or a second person answering at the same moment,
//! finds the first (the knowledge base's insert is a compare-and-swap). The book is an index
//! beside the record (a small sled tree), written after the decision it lists; an entry lost to a
//! crash between the two is listed again when the proposing agent next looks at its request
//! ([`ensure_listed`]). Nothing here decides whether anything waits: that is `domain::approval`.

mod book;

#[cfg(test)]
pub(crate) use book::tests;
pub use book::{ApprovalBook, CampaignAutonomy, Listed, ListedAnswer, Notice};

use chrono::Duration;

use super::decisions::{
    self as kinds, ApprovalAnswerChoice, ApprovalAnswerInputs, ApprovalRequestChoice,
    ApprovalRequestInputs, Proposal,
};
use super::ledger::{self, Draft};
use super::projection;
use crate::domain::approval::{ApprovalKind, ApprovalPolicy, Autonomy, OnExpiry, Verdict};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{Decision, DecisionId, KbError, KnowledgeBase};
use crate::protocol::Envelope;
use crate::runtime::{AgentError, Context};
use crate::settings::LiveSettings;

pub fn policy(ctx: &Context) -> ApprovalPolicy {
    ctx.services()
        .get::<LiveSettings>()
        .map(|live| live.current().config.approvals.clone())
        .unwrap_or_default()
}

/// The autonomy `kind` is decided under on `goal`'s campaign, `None` when it is no longer asked
/// about (earned autonomy).
pub fn asked(
    book: &ApprovalBook,
    goal: &CampaignGoal,
    kind: ApprovalKind,
) -> Result<Option<Autonomy>, AgentError> {
    Ok(book.autonomy(goal)?.asks(goal.autonomy, kind))
}

/// The step of a campaign's request, e.g. `approval/buys/day/4`.
pub fn request_step(kind: ApprovalKind, key: &str) -> String {
    format!("approval/{}/{key}", kind.as_str())
}

/// The step of the answer to `request`: one per request, so it is answered once.
fn answer_step(request: DecisionId) -> String {
    format!("approval/answer/{request}")
}

/// What a new request says, besides its proposal.
pub struct Ask {
    pub day: u32,
    pub step_key: String,
    pub proposal: Proposal,
    /// Why it waits: the policy's rule.
    pub risk: String,
    /// What is proposed, in a sentence.
    pub what: String,
    pub meanwhile: String,
    pub evidence: Vec<DecisionId>,
}

/// Records a request (once per step: a replayed step returns the recorded one) and lists it.
pub async fn propose<P>(
    kb: &KnowledgeBase,
    book: &ApprovalBook,
    ctx: &Context,
    envelope: &Envelope<P>,
    goal: &CampaignGoal,
    policy: &ApprovalPolicy,
    ask: Ask,
) -> Result<Decision, AgentError> {
    let kind = ask.proposal.kind();
    let expiry = policy.expiry(kind);
    let requested_at = crate::runtime::Clock::wall_now();
    let expires_at = requested_at + Duration::minutes(i64::from(expiry.after_minutes));
    let if_unanswered = match expiry.on_expiry {
        OnExpiry::Reject => format!(
            "if nobody answers by {}, it is rejected: {}",
            expires_at.to_rfc3339(),
            ask.meanwhile
        ),
        OnExpiry::Hold => format!(
            "if nobody answers by {}, the campaign is paused until an operator resumes it",
            expires_at.to_rfc3339()
        ),
    };
    let draft = Draft::new::<kinds::ApprovalRequested>(
        request_step(kind, &ask.step_key),
        ApprovalRequestInputs {
            day: ask.day,
            risk: ask.risk.clone(),
            evidence: ask.evidence,
            requested_at,
            expires_at,
            on_expiry: expiry.on_expiry,
        },
        ApprovalRequestChoice {
            proposal: ask.proposal,
            meanwhile: ask.meanwhile.clone(),
            if_unanswered,
        },
    )
    .alternative("approve", 1.0, Some(ask.what.clone()))
    .alternative("reject", 0.0, Some(ask.meanwhile))
    .reason(format!("{}; it waits for a person: {}", ask.what, ask.risk))
    .confidence(0.5);
    let decision = ledger::record(kb, ctx, envelope, goal, draft).await?;
    let new = book.request(&goal.tenant, &goal.id, decision.id)?.is_none();
    ensure_listed(book, goal, &decision).await?;
    if new {
        tracing::info!(campaign = %goal.id, request = %decision.id, kind = kind.as_str(), expires_at = %expires_at.to_rfc3339(), what = %decision.reason, "approval request waiting for a person (campaignd approvals lists it; campaignd approve ID --reason WHY answers it)");
    }
    Ok(decision)
}

/// Lists `request` in the book if it is not (a crash between its record and its listing).
pub async fn ensure_listed(
    book: &ApprovalBook,
    goal: &CampaignGoal,
    request: &Decision,
) -> Result<(), AgentError> {
    if book.request(&goal.tenant, &goal.id, request.id)?.is_some() {
        return Ok(());
    }
    let Some((inputs, choice)) = projection::decode::<kinds::ApprovalRequested>(request) else {
        return Err(AgentError::msg(format!(
            "decision {} is not an approval request",
            request.id
        )));
    };
    let entry = Listed {
        id: request.id,
        tenant: goal.tenant.clone(),
        campaign: goal.id.clone(),
        kind: choice.proposal.kind(),
        agent: request.agent.as_str().to_owned(),
        day: inputs.day,
        summary: request.reason.clone(),
        requested_at: inputs.requested_at,
        expires_at: inputs.expires_at,
        on_expiry: inputs.on_expiry,
        answer: None,
    };
    book.put(&entry).await?;
    Ok(())
}

/// The id the answer to `request` has, or will have.
pub fn answer_id(goal: &CampaignGoal, request: DecisionId) -> DecisionId {
    ledger::step_id(goal, &answer_step(request))
}

/// The answer to `request`, if it has one: its decision's id and choice.
pub fn answer_of(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    request: DecisionId,
) -> Result<Option<(DecisionId, ApprovalAnswerChoice)>, AgentError> {
    let id = ledger::step_id(goal, &answer_step(request));
    Ok(kb
        .decision(&ledger::scope(goal), id)?
        .and_then(|d| projection::choice::<kinds::ApprovalAnswered>(&d).map(|c| (d.id, c))))
}

/// An answer about to be recorded.
pub struct Answer {
    pub verdict: Verdict,
    /// The token's name, or `expiry`.
    pub by: String,
    pub why: String,
    /// What takes effect when approved: the proposal, or its amendment.
    pub apply: Option<Proposal>,
    pub amended: bool,
}

/// Records the answer to `request` and marks it in the book. `Ok(Err(first))` when the request
/// was answered already (by another person, or by its expiry): nothing is written.
pub async fn record_answer<P>(
    kb: &KnowledgeBase,
    book: &ApprovalBook,
    ctx: &Context,
    envelope: &Envelope<P>,
    goal: &CampaignGoal,
    request: &Listed,
    answer: Answer,
) -> Result<Result<Decision, Decision>, AgentError> {
    let step = answer_step(request.id);
    let id = ledger::step_id(goal, &step);
    let scope = ledger::scope(goal);
    if let Some(first) = kb.decision(&scope, id)? {
        mark_answered(book, request, &first).await?;
        return Ok(Err(first));
    }
    let at = crate::runtime::Clock::wall_now();
    let expired = answer.verdict == Verdict::Expired;
    let reason = if expired && answer.by != "expiry" {
        answer.why.clone()
    } else if expired {
        format!(
            "nobody answered by {}: {}",
            request.expires_at.to_rfc3339(),
            match request.on_expiry {
                OnExpiry::Reject => "rejected, as configured for an unanswered request",
                OnExpiry::Hold => "the campaign is paused, as configured for an unanswered request",
            }
        )
    } else {
        format!(
            "{} {} by {}: {}",
            answer.verdict.as_str(),
            if answer.amended {
                "with an amendment"
            } else {
                ""
            },
            answer.by,
            answer.why
        )
        .replace("  ", " ")
    };
    let draft = Draft::new::<kinds::ApprovalAnswered>(
        step,
        ApprovalAnswerInputs {
            request: request.id,
            kind: request.kind,
            by: answer.by,
            at,
            why: answer.why,
        },
        ApprovalAnswerChoice {
            verdict: answer.verdict,
            apply: answer.apply,
            amended: answer.amended,
            on_expiry: expired.then_some(request.on_expiry),
        },
    )
    .reason(reason)
    .confidence(1.0);
    let decision = ledger::build(ctx, envelope, goal, id, draft);
    match kb.record_decision(&decision).await {
        Ok(_) => {}
        // Two answers at once: the other was recorded first, and it stands.
        Err(KbError::Duplicate { .. }) => {
            if let Some(first) = kb.decision(&scope, id)? {
                mark_answered(book, request, &first).await?;
                return Ok(Err(first));
            }
        }
        Err(e) => return Err(e.into()),
    }
    mark_answered(book, request, &decision).await?;
    Ok(Ok(decision))
}

/// Marks `request` answered by `answer` in the book.
pub async fn mark_answered(
    book: &ApprovalBook,
    request: &Listed,
    answer: &Decision,
) -> Result<(), AgentError> {
    let Some((inputs, choice)) = projection::decode::<kinds::ApprovalAnswered>(answer) else {
        return Ok(());
    };
    let mut entry = request.clone();
    entry.answer = Some(ListedAnswer {
        id: answer.id,
        verdict: choice.verdict,
        by: inputs.by,
        at: inputs.at,
        amended: choice.amended,
        why: inputs.why,
    });
    book.put(&entry).await?;
    Ok(())
}
