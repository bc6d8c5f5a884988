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
    /// When a person last set the autonomy (wall clock): an earned-autonomy approval given
    /// before it no longer applies.
    #[serde(default)]
    pub set_at: Option<DateTime<Utc>>,
}

impl CampaignAutonomy {
    /// Whether `kind` is asked about on a campaign whose file says `declared`: `None` when it
    /// is not asked, else the autonomy in force.
    pub fn asks(&self, declared: Autonomy, kind: ApprovalKind) -> Option<Autonomy> {
        let autonomy = self.autonomy.unwrap_or(declared);
        (!self.not_asked.contains(&kind)).then_some(autonomy)
    }
}

/// What the book has to tell a person of, once: a request raised, a request expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Requested,
    Expired,
}

impl Notice {
    fn tag(self) -> u8 {
        match self {
            Notice::Requested => b'q',
            Notice::Expired => b'x',
        }
    }
}

/// The index of approval requests and each campaign's autonomy, in the knowledge base's
/// database (`aux/approvals`). Beside each request (`r`) it keeps the pending ones (`p`), so the
/// expiry sweep, the metrics and the notifier read what waits without reading the history, each
/// request's key by its id (`i`), and the notices not yet told (`n`), all written in one batch
/// with the change they follow. Cloning shares it.
#[derive(Clone)]
pub struct ApprovalBook {
    tree: sled::Tree,
}

fn request_key(tenant: &TenantId, campaign: &CampaignId, id: DecisionId) -> Vec<u8> {
    let mut key = campaign_prefix(b'r', tenant, campaign);
    key.extend_from_slice(id.to_string().as_bytes());
    key
}

/// An index key: its tag, then the request's key.
fn tagged(tag: u8, request_key: &[u8]) -> Vec<u8> {
    let mut key = vec![tag, 0];
    key.extend_from_slice(request_key);
    key
}

/// Where a request's key is found by its id alone.
fn id_key(id: DecisionId) -> Vec<u8> {
    tagged(b'i', id.to_string().as_bytes())
}

fn notice_key(notice: Notice, request_key: &[u8]) -> Vec<u8> {
    tagged(b'n', &tagged(notice.tag(), request_key))
}

/// One entry; a damaged one hides one request from the list, never the others (the request
/// itself is still in the knowledge base).
fn parse(key: &[u8], bytes: &[u8]) -> Option<Listed> {
    match serde_json::from_slice::<Listed>(bytes) {
        Ok(entry) => Some(entry),
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), %e, "an approval book entry does not decode; skipped");
            None
        }
    }
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

    /// Writes `entry`, its place in the pending index and what it has to tell (a new request,
    /// an expiry) in one batch, and flushes: requests are rare, and one listed is one a person
    /// can find.
    pub async fn put(&self, entry: &Listed) -> Result<(), KbError> {
        let key = request_key(&entry.tenant, &entry.campaign, entry.id);
        let before = self.entry(&key)?;
        let mut batch = sled::Batch::default();
        batch.insert(key.clone(), serde_json::to_vec(entry).map_err(storage)?);
        batch.insert(id_key(entry.id), key.clone());
        if entry.pending() {
            batch.insert(tagged(b'p', &key), b"".as_slice());
        } else {
            batch.remove(tagged(b'p', &key));
        }
        if before.is_none() {
            batch.insert(notice_key(Notice::Requested, &key), b"".as_slice());
        }
        let expired = |l: &Listed| {
            l.answer
                .as_ref()
                .is_some_and(|a| a.verdict == Verdict::Expired)
        };
        if expired(entry) && !before.as_ref().is_some_and(expired) {
            batch.insert(notice_key(Notice::Expired, &key), b"".as_slice());
        }
        self.tree.apply_batch(batch).map_err(storage)?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(())
    }

    fn entry(&self, key: &[u8]) -> Result<Option<Listed>, KbError> {
        Ok(self
            .tree
            .get(key)
            .map_err(storage)?
            .and_then(|bytes| parse(key, &bytes)))
    }

    /// Every pending request, oldest first.
    pub fn pending(&self) -> Result<Vec<Listed>, KbError> {
        self.indexed(&[b'p', 0])
    }

    /// The pending requests of one campaign, oldest first.
    pub fn pending_of(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<Vec<Listed>, KbError> {
        self.indexed(&tagged(b'p', &campaign_prefix(b'r', tenant, campaign)))
    }

    /// The notices not told yet, each with its key (for [`ApprovalBook::told`]) and request.
    pub fn notices(&self) -> Result<Vec<(Vec<u8>, Notice, Listed)>, KbError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([b'n', 0]) {
            let (key, _) = item.map_err(storage)?;
            let notice = match key.get(2) {
                Some(b'q') => Notice::Requested,
                Some(b'x') => Notice::Expired,
                _ => continue,
            };
            if let Some(entry) = key.get(4..).map(|k| self.entry(k)).transpose()?.flatten() {
                out.push((key.to_vec(), notice, entry));
            }
        }
        Ok(out)
    }

    /// Forgets a notice: told, given up, or with nobody to tell.
    pub fn told(&self, notice_key: &[u8]) -> Result<(), KbError> {
        self.tree.remove(notice_key).map_err(storage)?;
        Ok(())
    }

    /// The requests an index under `prefix` names, oldest first.
    fn indexed(&self, prefix: &[u8]) -> Result<Vec<Listed>, KbError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (key, _) = item.map_err(storage)?;
            if let Some(entry) = key.get(2..).map(|k| self.entry(k)).transpose()?.flatten() {
                out.push(entry);
            }
        }
        out.sort_by_key(|l| l.requested_at);
        Ok(out)
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
        match self.tree.get(id_key(id)).map_err(storage)? {
            Some(key) => self.entry(&key),
            None => Ok(None),
        }
    }

    /// The request `id` of one campaign.
    pub fn request(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        id: DecisionId,
    ) -> Result<Option<Listed>, KbError> {
        self.entry(&request_key(tenant, campaign, id))
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Listed>, KbError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (key, value) = item.map_err(storage)?;
            out.extend(parse(&key, &value));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kb::{Durability, KbOptions};

    /// A buys request of globex's `fall` campaign, raised at `requested_at`.
    pub(crate) fn listed(requested_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> Listed {
        Listed {
            id: DecisionId::new(),
            tenant: "globex".into(),
            campaign: "fall".into(),
            kind: ApprovalKind::Buys,
            agent: "orchestrator".to_owned(),
            day: 2,
            summary: "buy".to_owned(),
            requested_at,
            expires_at,
            on_expiry: OnExpiry::Reject,
            answer: None,
        }
    }

    /// An answer by its expiry at `at`.
    pub(crate) fn expired(at: DateTime<Utc>) -> ListedAnswer {
        ListedAnswer {
            id: DecisionId::new(),
            verdict: Verdict::Expired,
            by: "expiry".to_owned(),
            at,
            amended: false,
            why: "nobody answered".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_book_keeps_what_waits_and_what_is_to_be_told_beside_each_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = KbOptions::at(dir.path().join("kb"));
        options.durability = Durability::None;
        let kb = KnowledgeBase::open(&options).expect("a knowledge base");
        let book = ApprovalBook::open(&kb).expect("the book");
        let now = Utc::now();
        let mut request = listed(now, now);
        book.put(&request).await.expect("listed");
        book.put(&request).await.expect("listed again");
        let ids = |v: Vec<Listed>| v.into_iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(book.pending().expect("pending")), [request.id]);
        assert_eq!(
            ids(book
                .pending_of(&request.tenant, &request.campaign)
                .expect("pending")),
            [request.id]
        );
        assert!(
            book.pending_of(&request.tenant, &"spring".into())
                .expect("none")
                .is_empty()
        );
        assert_eq!(
            book.get(request.id).expect("by id").map(|l| l.id),
            Some(request.id)
        );
        let notices = book.notices().expect("notices");
        assert_eq!(
            notices.len(),
            1,
            "a request is told once, however often it is listed"
        );
        assert_eq!(notices[0].1, Notice::Requested);
        book.told(&notices[0].0).expect("told");

        request.answer = Some(expired(now));
        book.put(&request).await.expect("answered");
        book.put(&request).await.expect("answered again");
        assert!(book.pending().expect("pending").is_empty());
        let notices = book.notices().expect("notices");
        assert_eq!(
            notices.iter().map(|n| n.1).collect::<Vec<_>>(),
            [Notice::Expired]
        );
        assert_eq!(ids(book.all().expect("all")), [request.id]);
    }
}
