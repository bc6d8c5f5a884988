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

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::decisions::{
    self as kinds, ApprovalAnswerChoice, ApprovalAnswerInputs, ApprovalRequestChoice,
    ApprovalRequestInputs, Proposal,
};
use super::ledger::{self, Draft};
use super::projection;
use crate::domain::approval::{ApprovalKind, ApprovalPolicy, Autonomy, OnExpiry, Verdict};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{Decision, DecisionId, KbError, KnowledgeBase};
use crate::protocol::{CampaignId, Envelope, TenantId};
use crate::runtime::{AgentError, Context};
use crate::settings::LiveSettings;

/// One request as the book lists it: enough to filter, show and expire it without reading the
/// decision.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Listed {
    /// The request's decision.
    pub id: DecisionId,
    pub tenant: TenantId,
    pub campaign: CampaignId,
    pub kind: ApprovalKind,
    /// The agent whose decision waits.
    pub agent: String,
    pub day: u32,
    /// The request's reason: what is proposed and why it waits.
    pub summary: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub on_expiry: OnExpiry,
    #[serde(default)]
    pub answer: Option<ListedAnswer>,
}

/// How a listed request was answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListedAnswer {
    pub id: DecisionId,
    pub verdict: Verdict,
    pub by: String,
    pub at: DateTime<Utc>,
    pub amended: bool,
    pub why: String,
}

impl Listed {
    pub fn pending(&self) -> bool {
        self.answer.is_none()
    }

    /// `pending`, `approved`, `rejected` or `expired`.
    pub fn state(&self) -> &'static str {
        self.answer
            .as_ref()
            .map_or("pending", |a| a.verdict.as_str())
    }
}

/// A campaign's autonomy as people set it, over what its file says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignAutonomy {
    /// Set through the API; `None`: the campaign file's.
    #[serde(default)]
    pub autonomy: Option<Autonomy>,
    /// Kinds no longer asked about, each by an approved earned-autonomy request.
    #[serde(default)]
    pub not_asked: BTreeSet<ApprovalKind>,
}

impl CampaignAutonomy {
    /// Whether `kind` is asked about on a campaign whose file says `declared`: `None` when it
    /// is not asked, else the autonomy in force.
    pub fn asks(&self, declared: Autonomy, kind: ApprovalKind) -> Option<Autonomy> {
        let autonomy = self.autonomy.unwrap_or(declared);
        (!self.not_asked.contains(&kind)).then_some(autonomy)
    }
}

/// The index of approval requests and each campaign's autonomy, in the knowledge base's
/// database (`aux/approvals`). Cloning shares it.
#[derive(Clone)]
pub struct ApprovalBook {
    tree: sled::Tree,
}

fn request_key(tenant: &TenantId, campaign: &CampaignId, id: DecisionId) -> Vec<u8> {
    let mut key = campaign_prefix(b'r', tenant, campaign);
    key.extend_from_slice(id.to_string().as_bytes());
    key
}

fn campaign_prefix(tag: u8, tenant: &TenantId, campaign: &CampaignId) -> Vec<u8> {
    let mut key = vec![tag, 0];
    key.extend_from_slice(tenant.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(campaign.as_str().as_bytes());
    key.push(0);
    key
}

fn storage(e: impl std::fmt::Display) -> KbError {
    KbError::Storage {
        path: "aux/approvals".into(),
        reason: e.to_string(),
    }
}

impl ApprovalBook {
    pub fn open(kb: &KnowledgeBase) -> Result<Self, KbError> {
        Ok(ApprovalBook {
            tree: kb.auxiliary_tree("approvals")?,
        })
    }

    /// Writes `entry` and flushes: requests are rare, and one listed is one a person can find.
    pub async fn put(&self, entry: &Listed) -> Result<(), KbError> {
        let bytes = serde_json::to_vec(entry).map_err(storage)?;
        self.tree
            .insert(request_key(&entry.tenant, &entry.campaign, entry.id), bytes)
            .map_err(storage)?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(())
    }

    /// Every request of one campaign, oldest first.
    pub fn campaign(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<Vec<Listed>, KbError> {
        self.scan(&campaign_prefix(b'r', tenant, campaign))
    }

    /// Every request of every campaign.
    pub fn all(&self) -> Result<Vec<Listed>, KbError> {
        self.scan(&[b'r', 0])
    }

    /// The request `id`, wherever it is.
    pub fn get(&self, id: DecisionId) -> Result<Option<Listed>, KbError> {
        Ok(self.all()?.into_iter().find(|l| l.id == id))
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Listed>, KbError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (key, value) = item.map_err(storage)?;
            match serde_json::from_slice::<Listed>(&value) {
                Ok(entry) => out.push(entry),
                // A damaged entry hides one request from the list, never the others; the
                // request itself is still in the knowledge base.
                Err(e) => {
                    tracing::warn!(key = %String::from_utf8_lossy(&key), %e, "an approval book entry does not decode; skipped")
                }
            }
        }
        out.sort_by_key(|l| l.requested_at);
        Ok(out)
    }

    /// The campaign's autonomy as people set it.
    pub fn autonomy(&self, goal: &CampaignGoal) -> Result<CampaignAutonomy, KbError> {
        let key = campaign_prefix(b'a', &goal.tenant, &goal.id);
        match self.tree.get(key).map_err(storage)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(storage),
            None => Ok(CampaignAutonomy::default()),
        }
    }

    pub async fn set_autonomy(
        &self,
        goal: &CampaignGoal,
        autonomy: &CampaignAutonomy,
    ) -> Result<(), KbError> {
        let bytes = serde_json::to_vec(autonomy).map_err(storage)?;
        self.tree
            .insert(campaign_prefix(b'a', &goal.tenant, &goal.id), bytes)
            .map_err(storage)?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(())
    }
}

/// The `[approvals]` policy in force (the embedded default when the daemon gave no settings).
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
    let new = !book
        .campaign(&goal.tenant, &goal.id)?
        .iter()
        .any(|l| l.id == decision.id);
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
    if book
        .campaign(&goal.tenant, &goal.id)?
        .iter()
        .any(|l| l.id == request.id)
    {
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
    let reason = if expired {
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
