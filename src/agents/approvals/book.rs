//! The approval book: the index of approval requests beside their decisions (a small sled tree,
//! `aux/approvals`), with the pending ones, each request's key by id and the notices to send,
//! and each campaign's autonomy as people set it. It lists; it decides nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::approval::{ApprovalKind, Autonomy, OnExpiry, Verdict};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{DecisionId, KbError, KnowledgeBase};
use crate::protocol::{CampaignId, TenantId};

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
