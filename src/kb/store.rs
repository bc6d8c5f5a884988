//! [`KnowledgeBase`]: opening the sled directory, recording decisions and outcomes through the
//! group-commit writer, and reading them back through the indexes.
//!
//! Every query reads the posting lists of its index key (which includes the tenant, except in the
//! explicit all-tenants form) plus the in-memory tail of entries not yet folded into them, then
//! loads the records they point to; none reads the whole database except the export. Whatever the
//! index says, a record is returned only if its own tenant is in scope. A record or posting list
//! that does not decode is logged, reported in the result and skipped. Reads must never panic on
//! stored bytes, and no query may return a record of a tenant outside its scope.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, oneshot};

use super::error::{InvalidReason, KbError};
use super::faults::{Faults, WriteFaults};
use super::guard;
use super::health::WriteHealth;
use super::keys::{self, DECISION_TAG, MAX_NAME_BYTES, OUTCOME_TAG, RECORD_KEY_LEN};
use super::metrics as kb_metrics;
use super::options::{KbOptions, MAX_RECORD_BYTES_CEILING};
use super::postings::{self, Groups, Index, Pointer};
use super::query::{CorruptRecord, ExportSummary, QueryResult, Scope};
use super::recent::{self, CLEAN_KEY, MARK_CLEAN, MARK_LISTED, MARK_UNLISTED};
use super::record::{Decision, DecisionId, Outcome, OutcomeId, Record, SCHEMA_VERSION};
use super::recovery::{FullRebuildReason, Recovery};
use super::tail::{FOLD_AFTER_RECORDS, Tail, write_postings};
use super::tenants::TenantMemo;
use super::writer::{Message, PreparedWrite, Trees, Writer};
use crate::protocol::{AgentName, CampaignId, CorrelationId, TenantId, decode, encode};

const SCHEMA_KEY: &[u8] = b"schema_version";

/// A handle on one knowledge base. Cheap to clone; every clone shares the database and the writer.
/// The writer stops, after committing what is queued, when [`KnowledgeBase::shutdown`] is called or
/// the last handle is dropped.
#[derive(Clone)]
pub struct KnowledgeBase {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    trees: Trees,
    tail: Arc<Tail>,
    path: PathBuf,
    max_record_bytes: usize,
    recovery: Recovery,
    health: Arc<WriteHealth>,
    /// The tenants of decisions outcomes cited, read once (see `tenants`).
    cited: TenantMemo,
    sender: Option<mpsc::Sender<Message>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer commit what is queued, mark the database clean and
        // exit; waiting for it means the directory is released when the last handle is gone.
        self.sender.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the knowledge-base writer thread panicked");
        }
    }
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// Opens (or creates) the knowledge base at `options.path` and starts its writer.
    ///
    /// Refuses a database written by a newer schema, and anything that holds records but no schema
    /// version. After an unclean stop (a crash or kill) it repairs the indexes, because the index
    /// entries not yet folded into posting lists lived only in memory: from the records the
    /// recent-keys list names, or, when the list is missing, unreadable or was not kept (a
    /// database last opened by a build before it), from every record.
    /// [`KnowledgeBase::recovery`] says which, and how many records it read.
    pub fn open(options: &KbOptions) -> Result<Self, KbError> {
        Self::open_with(options, Faults::none(), Repair::FromList)
    }

    /// [`KnowledgeBase::open`], except that after an unclean stop it always re-derives every index
    /// entry from every record, as builds before the recent-keys list did: the reference the tests
    /// compare a repair with, and the benchmark's baseline.
    pub fn open_rebuilding(options: &KbOptions) -> Result<Self, KbError> {
        Self::open_with(options, Faults::none(), Repair::Full)
    }

    /// [`KnowledgeBase::open`] with a fault switch that tests use to make the writer fail or stall
    /// as a full or wedged disk would (see [`WriteFaults`]). The binary never calls it.
    pub fn open_with_faults(
        options: &KbOptions,
        faults: Arc<WriteFaults>,
    ) -> Result<Self, KbError> {
        Self::open_with(options, Faults::from(faults), Repair::FromList)
    }

    fn open_with(options: &KbOptions, faults: Faults, repair: Repair) -> Result<Self, KbError> {
        options.validate().map_err(KbError::Options)?;
        let path = options.path.clone();
        let (db, trees) = open_sled(&path, options.cache_capacity_bytes)?;
        let storage = |e: sled::Error| KbError::Storage {
            path: path.clone(),
            reason: e.to_string(),
        };
        // Reading the meta tree and re-deriving the indexes are the first reads of stored pages:
        // sled may panic on them as it does at open.
        let damaged = |reason: String| KbError::Damaged {
            path: path.clone(),
            reason,
        };
        guard::unpanicked(|| check_schema(&trees, &path)).map_err(damaged)??;
        let recovery = guard::unpanicked(|| recover(&db, &trees, &path, repair))
            .map_err(damaged)?
            .map_err(|err| match err {
                KbError::Storage { path, reason } => KbError::Damaged {
                    path,
                    reason: format!(
                        "the index repair after an unclean stop could not read the records: {reason}"
                    ),
                },
                other => other,
            })?;
        match &recovery {
            Recovery::Clean => {}
            Recovery::RecentKeys { listed, read } => {
                tracing::info!(path = %path.display(), listed, read, "knowledge base was not closed cleanly; index entries re-derived from the recent-keys list");
            }
            Recovery::FullRebuild { read, reason } => {
                tracing::info!(path = %path.display(), read, %reason, "knowledge base was not closed cleanly; index entries re-derived from every record");
            }
        }
        // From here on every group commit lists its keys, which the marker tells the next open.
        trees
            .meta
            .insert(CLEAN_KEY, &[MARK_LISTED][..])
            .map_err(storage)?;
        let next_seq = recent::next_seq(&trees.meta, &trees.recent).map_err(storage)?;
        db.flush().map_err(storage)?;
        let tail = Arc::new(Tail::default());
        let (sender, receiver) = mpsc::channel(options.queue_capacity);
        let writer = Writer {
            db: db.clone(),
            trees: trees.clone(),
            tail: Arc::clone(&tail),
            durability: options.durability,
            batch_max: options.batch_max,
            path: path.clone(),
            faults,
            next_seq,
        }
        .spawn(receiver)
        .map_err(|e| KbError::Unopenable {
            path: path.clone(),
            reason: format!("cannot start the writer: {e}"),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                trees,
                tail,
                path,
                max_record_bytes: options.max_record_bytes,
                recovery,
                health: Arc::new(WriteHealth::default()),
                cited: TenantMemo::default(),
                sender: Some(sender),
                writer: Some(writer),
            }),
        })
    }

    /// The directory this knowledge base lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the open had to repair, and how many records it read to do it.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// A named sled tree in the same database, for small operational state that is not a decision
    /// or an outcome (the API's idempotency keys). Writes to it are not group-committed: the caller
    /// flushes when it needs durability.
    pub(crate) fn auxiliary_tree(&self, name: &str) -> Result<sled::Tree, KbError> {
        self.inner
            .db
            .open_tree(format!("aux/{name}"))
            .map_err(|e| self.storage(e))
    }

    /// The bytes the database takes on disk (for metrics).
    pub fn size_on_disk(&self) -> Result<u64, KbError> {
        self.inner.db.size_on_disk().map_err(|e| self.storage(e))
    }

    /// Records a decision. Resolves once the decision is as durable as `[kb] durability` says; an
    /// `Ok` is the acknowledgement. If the future is dropped before it resolves, the decision may or
    /// may not have been recorded.
    pub async fn record_decision(&self, decision: &Decision) -> Result<DecisionId, KbError> {
        let write = self.prepare_decision(decision).inspect_err(count_failure)?;
        self.submit(write).await.inspect_err(count_failure)?;
        kb_metrics::acknowledged("decision");
        Ok(decision.id)
    }

    /// Records an outcome against the decisions it cites, which must already be recorded for the
    /// same tenant. Acknowledged like [`KnowledgeBase::record_decision`].
    pub async fn record_outcome(&self, outcome: &Outcome) -> Result<OutcomeId, KbError> {
        let write = self
            .prepare_outcome(outcome, Cited::MustExist)
            .inspect_err(count_failure)?;
        self.submit(write).await.inspect_err(count_failure)?;
        kb_metrics::acknowledged("outcome");
        Ok(outcome.id)
    }

    /// Records a record read back from an export (`campaignd kb import`), as it was: same id, same
    /// times. An outcome may cite decisions the export does not hold (a salvage can lose them); it
    /// is still refused if a decision it cites is recorded for another tenant. Returns whether the
    /// record cites a decision that is not recorded. `known` holds the tenants of decisions
    /// imported so far, so that an outcome's check reads no decision back (decisions can be large,
    /// outcomes cite several); one not in it is looked up.
    pub async fn import(&self, record: &Record, known: &ImportedTenants) -> Result<bool, KbError> {
        match record {
            Record::Decision(decision) => {
                self.record_decision(decision).await?;
                known.insert(decision.id, decision.tenant.clone());
                Ok(false)
            }
            Record::Outcome(outcome) => {
                let mut dangling = false;
                let write = self
                    .prepare_outcome(outcome, Cited::OwnTenantIfPresent(&mut dangling, known))
                    .inspect_err(count_failure)?;
                self.submit(write).await.inspect_err(count_failure)?;
                kb_metrics::acknowledged("outcome");
                Ok(dangling)
            }
        }
    }

    /// Commits everything queued, refuses later writes with [`KbError::Closed`], flushes and marks
    /// the database cleanly closed. Reads keep working. Calling it twice is harmless.
    pub async fn shutdown(&self) -> Result<(), KbError> {
        let Some(sender) = &self.inner.sender else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        if sender.send(Message::Shutdown(ack)).await.is_err() {
            return Ok(());
        }
        done.await.unwrap_or(Ok(()))
    }

    async fn submit(&self, write: PreparedWrite) -> Result<(), KbError> {
        let sender = self.inner.sender.clone();
        submit(sender, &self.inner.health, |ack| Message::Write(write, ack)).await
    }

    /// Whether the knowledge base completes writes right now; `Err` says why not.
    ///
    /// Sends a probe write through the writer and the flusher (unless one is still on its way) and
    /// waits for it up to `wait`; then answers from every write's fate: the last one whose storage
    /// failed (until a later one succeeded), and any write accepted more than
    /// [`STALLED_AFTER`](super::STALLED_AFTER) ago and still not acknowledged. A probe that
    /// outlasts `wait` goes on in the background and counts as such a write.
    pub async fn write_readiness(&self, wait: std::time::Duration) -> Result<(), String> {
        let health = &self.inner.health;
        if !health
            .probing
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            // The probe holds a sender, not the knowledge base: a stalled probe must not keep the
            // handle (and its shutdown on drop) alive.
            let (sender, probe_health) = (self.inner.sender.clone(), Arc::clone(health));
            let probe = tokio::spawn(async move {
                let _ = submit(sender, &probe_health, Message::Probe).await;
                probe_health
                    .probing
                    .store(false, std::sync::atomic::Ordering::Release);
            });
            let _ = tokio::time::timeout(wait, probe).await;
        }
        health.verdict(std::time::Instant::now())
    }

    fn prepare_decision(&self, decision: &Decision) -> Result<PreparedWrite, KbError> {
        let invalid = |reason: InvalidReason| KbError::InvalidRecord {
            what: "decision",
            id: decision.id.to_string(),
            reason,
        };
        check_schema_field(decision.schema_version).map_err(invalid)?;
        check_name("tenant", decision.tenant.as_str()).map_err(invalid)?;
        check_name("agent", decision.agent.as_str()).map_err(invalid)?;
        if let Some(campaign) = &decision.campaign {
            check_name("campaign", campaign.as_str()).map_err(invalid)?;
        }
        if !(0.0..=1.0).contains(&decision.confidence) {
            return Err(invalid(InvalidReason::Confidence(decision.confidence)));
        }
        let value = encode("decision", decision).map_err(|e| invalid(InvalidReason::Encode(e)))?;
        self.check_size("decision", decision.id.to_string(), &value)?;
        let record_key = keys::record_key(DECISION_TAG, decision.id.0.as_bytes());
        Ok(PreparedWrite {
            what: "decision",
            record_key,
            value: value.into(),
            pointer: postings::pointer(&decision.decided_at, &record_key),
            index: postings::decision_keys(decision),
        })
    }

    fn prepare_outcome(&self, outcome: &Outcome, cited: Cited) -> Result<PreparedWrite, KbError> {
        let invalid = |reason: InvalidReason| KbError::InvalidRecord {
            what: "outcome",
            id: outcome.id.to_string(),
            reason,
        };
        check_schema_field(outcome.schema_version).map_err(invalid)?;
        check_name("tenant", outcome.tenant.as_str()).map_err(invalid)?;
        if let Some(campaign) = &outcome.campaign {
            check_name("campaign", campaign.as_str()).map_err(invalid)?;
        }
        // The feedback link must point at real decisions of the same tenant, or `outcomes_of`
        // would connect one tenant's outcome to another's decision.
        let mut cited = cited;
        for decision in &outcome.decisions {
            // Only the tenant is decoded: decisions can be large, and outcomes cite several.
            let tenant = match &cited {
                Cited::OwnTenantIfPresent(_, known) => match known.get(*decision) {
                    Some(tenant) => Some(tenant),
                    None => self.decision_tenant(*decision)?,
                },
                Cited::MustExist => self.decision_tenant(*decision)?,
            };
            let missing = match &mut cited {
                Cited::MustExist => tenant.as_ref() != Some(&outcome.tenant),
                Cited::OwnTenantIfPresent(dangling, _) => {
                    **dangling |= tenant.is_none();
                    tenant.is_some_and(|tenant| tenant != outcome.tenant)
                }
            };
            if missing {
                return Err(KbError::UnknownDecision {
                    outcome: outcome.id.to_string(),
                    decision: decision.to_string(),
                    tenant: outcome.tenant.to_string(),
                });
            }
        }
        let value = encode("outcome", outcome).map_err(|e| invalid(InvalidReason::Encode(e)))?;
        self.check_size("outcome", outcome.id.to_string(), &value)?;
        let record_key = keys::record_key(OUTCOME_TAG, outcome.id.0.as_bytes());
        Ok(PreparedWrite {
            what: "outcome",
            record_key,
            value: value.into(),
            pointer: postings::pointer(&outcome.observed_at, &record_key),
            index: postings::outcome_keys(outcome),
        })
    }

    /// The tenant of a recorded decision, `None` when it is not recorded.
    fn decision_tenant(&self, id: DecisionId) -> Result<Option<TenantId>, KbError> {
        #[derive(serde::Deserialize)]
        struct TenantOnly {
            tenant: TenantId,
        }
        if let Some(tenant) = self.inner.cited.get(id) {
            return Ok(Some(tenant));
        }
        let key = keys::record_key(DECISION_TAG, id.0.as_bytes());
        let Some(value) = self
            .inner
            .trees
            .records
            .get(key)
            .map_err(|e| self.storage(e))?
        else {
            return Ok(None);
        };
        decode::<TenantOnly>("decision", &value, MAX_RECORD_BYTES_CEILING)
            .map(|found| {
                self.inner.cited.remember(id, &found.tenant);
                Some(found.tenant)
            })
            .map_err(|e| KbError::Corrupt {
                key: keys::display_key(&key),
                reason: e.to_string(),
            })
    }

    fn check_size(&self, what: &'static str, id: String, value: &[u8]) -> Result<(), KbError> {
        if value.len() > self.inner.max_record_bytes {
            return Err(KbError::TooLarge {
                what,
                id,
                size: value.len(),
                limit: self.inner.max_record_bytes,
            });
        }
        Ok(())
    }

    fn storage(&self, err: sled::Error) -> KbError {
        KbError::Storage {
            path: self.inner.path.clone(),
            reason: err.to_string(),
        }
    }

    /// One decision by id, if it is recorded and visible in `scope`.
    pub fn decision(&self, scope: &Scope, id: DecisionId) -> Result<Option<Decision>, KbError> {
        let key = keys::record_key(DECISION_TAG, id.0.as_bytes());
        match self.load(&key, scope)? {
            Some(Ok(Record::Decision(decision))) => Ok(Some(decision)),
            Some(Ok(Record::Outcome(_))) | None => Ok(None),
            Some(Err(corrupt)) => Err(KbError::Corrupt {
                key: corrupt.key,
                reason: corrupt.reason,
            }),
        }
    }

    /// One outcome by id, if it is recorded and visible in `scope`.
    pub fn outcome(&self, scope: &Scope, id: OutcomeId) -> Result<Option<Outcome>, KbError> {
        let key = keys::record_key(OUTCOME_TAG, id.0.as_bytes());
        match self.load(&key, scope)? {
            Some(Ok(Record::Outcome(outcome))) => Ok(Some(outcome)),
            Some(Ok(Record::Decision(_))) | None => Ok(None),
            Some(Err(corrupt)) => Err(KbError::Corrupt {
                key: corrupt.key,
                reason: corrupt.reason,
            }),
        }
    }

    /// Every decision and outcome of a campaign, in time order.
    pub fn by_campaign(
        &self,
        scope: &Scope,
        campaign: &CampaignId,
    ) -> Result<QueryResult<Record>, KbError> {
        self.scan_named(Index::Campaign, campaign.as_str(), scope, None)
    }

    /// The decisions of a campaign, in time order (its outcomes are not read).
    pub fn decisions_by_campaign(
        &self,
        scope: &Scope,
        campaign: &CampaignId,
    ) -> Result<QueryResult<Decision>, KbError> {
        let found = self.scan_named(
            Index::Campaign,
            campaign.as_str(),
            scope,
            Some(DECISION_TAG),
        )?;
        Ok(narrow(found, Record::into_decision))
    }

    /// The outcomes of a campaign, in time order (its decisions are not read).
    pub fn outcomes_by_campaign(
        &self,
        scope: &Scope,
        campaign: &CampaignId,
    ) -> Result<QueryResult<Outcome>, KbError> {
        let found =
            self.scan_named(Index::Campaign, campaign.as_str(), scope, Some(OUTCOME_TAG))?;
        Ok(narrow(found, Record::into_outcome))
    }

    /// The decisions of a campaign that `seen` does not hold, in time order: a reader that keeps
    /// what it derived from a campaign's decisions (ingestion does) reads only those recorded
    /// since it last looked. Only the index is read for the others, never their records.
    pub fn decisions_by_campaign_unseen(
        &self,
        scope: &Scope,
        campaign: &CampaignId,
        seen: &dyn Fn(DecisionId) -> bool,
    ) -> Result<QueryResult<Decision>, KbError> {
        let prefix = named_prefix(campaign.as_str(), scope);
        let mut found = QueryResult::default();
        let lookup = Lookup {
            which: Index::Campaign,
            low: prefix.clone(),
            high: keys::prefix_end(&prefix),
            keep: &|_| true,
        };
        let mut pointers = self.pointers(&lookup, &mut found.skipped)?;
        pointers.retain(
            |pointer| match postings::record_key(pointer).split_first() {
                Some((&DECISION_TAG, id)) => uuid::Uuid::from_slice(id)
                    .map(|id| !seen(DecisionId(id)))
                    .unwrap_or(true),
                _ => false,
            },
        );
        self.load_pointers(&pointers, scope, Some(DECISION_TAG), &mut found)?;
        Ok(narrow(found, Record::into_decision))
    }

    /// Every decision an agent made, in time order.
    pub fn by_agent(
        &self,
        scope: &Scope,
        agent: &AgentName,
    ) -> Result<QueryResult<Decision>, KbError> {
        let found = self.scan_named(Index::Agent, agent.as_str(), scope, Some(DECISION_TAG))?;
        Ok(narrow(found, Record::into_decision))
    }

    /// The causal trace of one chain of work: every decision and outcome carrying `correlation`, in
    /// time order. The links are in the records: a decision's `causation_id` (the message that led
    /// to it) and an outcome's `decisions`.
    pub fn trace(
        &self,
        scope: &Scope,
        correlation: CorrelationId,
    ) -> Result<QueryResult<Record>, KbError> {
        let prefix = match scope {
            Scope::Tenant(tenant) => postings::id_key(correlation.as_bytes(), tenant.as_str()),
            Scope::AllTenants => correlation.as_bytes().to_vec(),
        };
        self.scan_prefix(Index::Correlation, &prefix, scope, None)
    }

    /// The outcomes recorded against one decision, in time order: the feedback loop.
    pub fn outcomes_of(
        &self,
        scope: &Scope,
        decision: DecisionId,
    ) -> Result<QueryResult<Outcome>, KbError> {
        let prefix = match scope {
            Scope::Tenant(tenant) => postings::id_key(decision.0.as_bytes(), tenant.as_str()),
            Scope::AllTenants => decision.0.as_bytes().to_vec(),
        };
        let found = self.scan_prefix(Index::Decision, &prefix, scope, Some(OUTCOME_TAG))?;
        Ok(narrow(found, Record::into_outcome))
    }

    /// Every decision and outcome decided or observed in `[from, to)`, in time order.
    pub fn by_time(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<QueryResult<Record>, KbError> {
        let mut result = QueryResult::default();
        if from >= to {
            return Ok(result);
        }
        // Pointers hold microseconds: widen the range by one on each side and filter on the exact
        // time once the records are read.
        let low = from
            .checked_sub_signed(TimeDelta::microseconds(1))
            .unwrap_or(from);
        let high = to
            .checked_add_signed(TimeDelta::microseconds(1))
            .unwrap_or(to);
        let tenant_key = match scope {
            Scope::Tenant(tenant) => {
                let mut key = Vec::new();
                keys::push_name(&mut key, tenant.as_str());
                Some(key)
            }
            Scope::AllTenants => None,
        };
        // Time keys are `minute | tenant`: one range covers the window for every tenant, and other
        // tenants' entries are dropped by their key before any record is read.
        let lookup = Lookup {
            which: Index::Time,
            low: postings::minute_bytes(&low).to_vec(),
            high: keys::prefix_end(&postings::minute_bytes(&high)),
            keep: &|key: &[u8]| {
                tenant_key
                    .as_deref()
                    .is_none_or(|own| postings::time_key_tenant(key) == Some(own))
            },
        };
        let mut pointers = self.pointers(&lookup, &mut result.skipped)?;
        let (low, high) = (keys::time_bytes(&low), keys::time_bytes(&high));
        pointers.retain(|p| postings::time_of(p) >= &low[..] && postings::time_of(p) < &high[..]);
        self.load_pointers(&pointers, scope, None, &mut result)?;
        result
            .records
            .retain(|record| record.at() >= from && record.at() < to);
        sort_by_time(&mut result.records);
        Ok(result)
    }

    /// Writes every record visible in `scope` as JSON Lines (one object per line, with a `record`
    /// field saying `decision` or `outcome`), decisions first, each kind in id order.
    pub fn export_jsonl(
        &self,
        scope: &Scope,
        mut out: impl Write,
    ) -> Result<ExportSummary, KbError> {
        let mut summary = ExportSummary::default();
        for entry in self.inner.trees.records.iter() {
            let (key, value) = entry.map_err(|e| self.storage(e))?;
            match decode_record(&key, &value) {
                Ok(record) if scope.admits(record.tenant()) => {
                    serde_json::to_writer(&mut out, &record)
                        .map_err(|e| KbError::Export(e.into()))?;
                    out.write_all(b"\n").map_err(KbError::Export)?;
                    summary.records += 1;
                }
                Ok(_) => {}
                Err(corrupt) => {
                    warn_corrupt(&corrupt);
                    summary.skipped.push(corrupt);
                }
            }
        }
        out.flush().map_err(KbError::Export)?;
        Ok(summary)
    }

    /// Re-derives every index entry from the records (idempotent). `open` does this after an unclean
    /// stop without a usable recent-keys list; an operator may also run it after restoring a
    /// backup. Returns the records indexed.
    pub fn rebuild_indexes(&self) -> Result<usize, KbError> {
        rebuild_indexes(&self.inner.db, &self.inner.trees, &self.inner.path).map(|r| r.indexed)
    }

    /// Scans an index whose keys start with `name | tenant`.
    fn scan_named(
        &self,
        which: Index,
        name: &str,
        scope: &Scope,
        tag: Option<u8>,
    ) -> Result<QueryResult<Record>, KbError> {
        self.scan_prefix(which, &named_prefix(name, scope), scope, tag)
    }

    fn scan_prefix(
        &self,
        which: Index,
        prefix: &[u8],
        scope: &Scope,
        tag: Option<u8>,
    ) -> Result<QueryResult<Record>, KbError> {
        let mut result = QueryResult::default();
        let lookup = Lookup {
            which,
            low: prefix.to_vec(),
            high: keys::prefix_end(prefix),
            keep: &|_| true,
        };
        let pointers = self.pointers(&lookup, &mut result.skipped)?;
        self.load_pointers(&pointers, scope, tag, &mut result)?;
        Ok(result)
    }

    /// The pointers filed under the index keys `lookup` names, in time order, each once.
    fn pointers(
        &self,
        lookup: &Lookup<'_>,
        skipped: &mut Vec<CorruptRecord>,
    ) -> Result<Vec<Pointer>, KbError> {
        let wanted = |key: &[u8]| {
            key >= &lookup.low[..]
                && lookup.high.as_deref().is_none_or(|high| key < high)
                && (lookup.keep)(key)
        };
        let tree = &self.inner.trees.index;
        let mut found = Vec::new();
        let mut take =
            |key: &[u8], bytes: &[u8], found: &mut Vec<Pointer>| match postings::decode_pointers(
                bytes,
            ) {
                Ok(pointers) => found.extend(pointers),
                Err(err) => report(skipped, key, err.to_string()),
            };
        // The tail before the posting lists: a fold inserts its posting lists before it drops the
        // tail's entries, so a pointer gone from the tail by the time it is read here is in the
        // posting lists read next. Seeing it in both is harmless: duplicates are dropped below.
        self.inner.tail.pointers(
            lookup.which,
            (&lookup.low, lookup.high.as_deref()),
            lookup.keep,
            &mut found,
        );
        let mut unreadable = Vec::new();
        let (start, end) =
            postings::posting_range(lookup.which, &lookup.low, lookup.high.as_deref());
        for entry in tree.range(start..end) {
            let (key, value) = entry.map_err(|e| self.storage(e))?;
            match postings::posting_index_key(lookup.which, &key) {
                Some(index_key) if wanted(index_key) => take(&key, &value, &mut found),
                Some(_) => {}
                None => unreadable.push((key, "index entry too short to hold a key".into())),
            }
        }
        for (key, reason) in unreadable {
            report(skipped, &key, reason);
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Loads the records `pointers` name into `result`, keeping those with the wanted tag that are
    /// visible in `scope`, and leaves them in time order.
    fn load_pointers(
        &self,
        pointers: &[Pointer],
        scope: &Scope,
        tag: Option<u8>,
        result: &mut QueryResult<Record>,
    ) -> Result<(), KbError> {
        for pointer in pointers {
            let record_key = postings::record_key(pointer);
            if tag.is_some_and(|tag| record_key.first() != Some(&tag)) {
                continue;
            }
            match self.load(record_key, scope)? {
                Some(Ok(record)) => result.records.push(record),
                Some(Err(corrupt)) => result.skipped.push(corrupt),
                // Not visible in this scope, or a pointer whose record is gone: nothing to show.
                None => {}
            }
        }
        // Pointers are in microsecond order; records tie-break on id, as they always have.
        sort_by_time(&mut result.records);
        Ok(())
    }

    /// Reads and decodes one record. `None` when absent or outside `scope`; a record that does not
    /// decode is logged and returned as [`CorruptRecord`].
    fn load(
        &self,
        record_key: &[u8],
        scope: &Scope,
    ) -> Result<Option<Result<Record, CorruptRecord>>, KbError> {
        let Some(value) = self
            .inner
            .trees
            .records
            .get(record_key)
            .map_err(|e| self.storage(e))?
        else {
            tracing::debug!(key = %keys::display_key(record_key), "index entry without its record; ignored");
            return Ok(None);
        };
        match decode_record(record_key, &value) {
            Ok(record) if scope.admits(record.tenant()) => Ok(Some(Ok(record))),
            Ok(_) => Ok(None),
            Err(corrupt) => {
                warn_corrupt(&corrupt);
                Ok(Some(Err(corrupt)))
            }
        }
    }
}

/// Which decisions an outcome may cite.
enum Cited<'a> {
    /// Recorded ones of its own tenant (every live write).
    MustExist,
    /// Its own tenant's, when recorded at all (an import, whose export may have lost some); the
    /// flag is set when one is not recorded.
    OwnTenantIfPresent(&'a mut bool, &'a ImportedTenants),
}

/// The tenants of the decisions an import has recorded so far (see [`KnowledgeBase::import`]).
#[derive(Debug, Default)]
pub struct ImportedTenants(std::sync::Mutex<std::collections::HashMap<DecisionId, TenantId>>);

impl ImportedTenants {
    fn insert(&self, id: DecisionId, tenant: TenantId) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, tenant);
    }

    fn get(&self, id: DecisionId) -> Option<TenantId> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

/// Hands one message to the writer and waits for its answer, registered with `health` while it
/// is on its way.
async fn submit(
    sender: Option<mpsc::Sender<Message>>,
    health: &Arc<WriteHealth>,
    message: impl FnOnce(super::writer::Ack) -> Message,
) -> Result<(), KbError> {
    let sender = sender.ok_or(KbError::Closed)?;
    let outstanding = health.accepted();
    let (ack, done) = oneshot::channel();
    let result = match sender.send(message(ack)).await {
        Ok(()) => done.await.unwrap_or(Err(KbError::Closed)),
        Err(_) => Err(KbError::Closed),
    };
    health.completed(&result);
    drop(outstanding);
    result
}

/// Opens the sled database at `path` and its trees. sled's refusals and panics on what it finds
/// there (see `guard`) are [`KbError::Damaged`]; only a held lock gets the hint about another
/// process.
pub(super) fn open_sled(
    path: &Path,
    cache_capacity_bytes: u64,
) -> Result<(sled::Db, Trees), KbError> {
    std::fs::create_dir_all(path).map_err(|e| KbError::Unopenable {
        path: path.to_path_buf(),
        reason: format!("cannot create the directory: {e}"),
    })?;
    let classify = |err: sled::Error| match err {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => KbError::Open {
            path: path.to_path_buf(),
            reason: io.to_string(),
        },
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::NotADirectory
            ) =>
        {
            KbError::Unopenable {
                path: path.to_path_buf(),
                reason: io.to_string(),
            }
        }
        sled::Error::Corruption { at, .. } => KbError::Damaged {
            path: path.to_path_buf(),
            reason: match at {
                Some(at) => format!("sled found corrupted data at {at:?}"),
                None => "sled found corrupted data".to_owned(),
            },
        },
        other => KbError::Damaged {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    };
    let damaged = |reason: String| KbError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let db = guard::unpanicked(|| {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .open()
    })
    .map_err(damaged)?
    .map_err(classify)?;
    let tree = |name: &str| {
        guard::unpanicked(|| db.open_tree(name))
            .map_err(damaged)?
            .map_err(|e| damaged(format!("cannot open tree `{name}`: {e}")))
    };
    let trees = Trees {
        records: tree("records")?,
        index: tree("index")?,
        meta: tree("meta")?,
        recent: tree(recent::TREE)?,
    };
    Ok((db, trees))
}

/// Decodes stored bytes as the record its key names. Never panics: anything that is not a valid
/// record under that key (unknown tag, bytes that do not decode, an id that differs from the key)
/// comes back as a [`CorruptRecord`].
pub fn decode_record(key: &[u8], bytes: &[u8]) -> Result<Record, CorruptRecord> {
    let corrupt = |reason: String| CorruptRecord {
        key: keys::display_key(key),
        reason,
    };
    let id = match key.get(1..) {
        Some(id) if key.len() == RECORD_KEY_LEN => id,
        _ => {
            return Err(corrupt(format!(
                "record key is {} bytes, expected {RECORD_KEY_LEN}",
                key.len()
            )));
        }
    };
    let record = match key.first() {
        Some(&DECISION_TAG) => Record::Decision(
            decode("decision", bytes, MAX_RECORD_BYTES_CEILING)
                .map_err(|e| corrupt(e.to_string()))?,
        ),
        Some(&OUTCOME_TAG) => Record::Outcome(
            decode("outcome", bytes, MAX_RECORD_BYTES_CEILING)
                .map_err(|e| corrupt(e.to_string()))?,
        ),
        _ => return Err(corrupt("unknown record tag".into())),
    };
    if record.id().as_bytes() != id {
        return Err(corrupt(format!(
            "the record's own id {} differs from its key",
            record.id()
        )));
    }
    Ok(record)
}

fn warn_corrupt(corrupt: &CorruptRecord) {
    tracing::warn!(key = %corrupt.key, reason = %corrupt.reason, "skipping a knowledge-base record that cannot be read");
}

fn sort_by_time(records: &mut [Record]) {
    records.sort_by_key(|record| (record.at(), record.id()));
}

/// The start of the index keys `name | tenant` of `scope` (every tenant's without one).
fn named_prefix(name: &str, scope: &Scope) -> Vec<u8> {
    let mut prefix = Vec::new();
    keys::push_name(&mut prefix, name);
    if let Scope::Tenant(tenant) = scope {
        keys::push_name(&mut prefix, tenant.as_str());
    }
    prefix
}

fn narrow<T>(found: QueryResult<Record>, pick: fn(Record) -> Option<T>) -> QueryResult<T> {
    QueryResult {
        records: found.records.into_iter().filter_map(pick).collect(),
        skipped: found.skipped,
    }
}

fn check_schema_field(version: u32) -> Result<(), InvalidReason> {
    if version != SCHEMA_VERSION {
        return Err(InvalidReason::SchemaVersion {
            found: version,
            writes: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn check_name(field: &'static str, name: &str) -> Result<(), InvalidReason> {
    if name.is_empty() {
        return Err(InvalidReason::EmptyName { field });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(InvalidReason::NameTooLong {
            field,
            len: name.len(),
            max: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

/// Which index entries a query reads: the keys of one index in `[low, high)` (`high = None`: to the
/// end of that index) for which `keep` holds.
struct Lookup<'a> {
    which: Index,
    low: Vec<u8>,
    high: Option<Vec<u8>>,
    keep: &'a dyn Fn(&[u8]) -> bool,
}

/// Reports an index entry that cannot be read; the query goes on without it.
fn report(skipped: &mut Vec<CorruptRecord>, key: &[u8], reason: String) {
    let corrupt = CorruptRecord {
        key: format!("index/{}", keys::display_key(key)),
        reason,
    };
    warn_corrupt(&corrupt);
    skipped.push(corrupt);
}

fn count_failure(err: &KbError) {
    kb_metrics::write_failed(match err {
        KbError::Duplicate { .. } => "duplicate",
        KbError::UnknownDecision { .. } => "unknown_decision",
        KbError::Closed => "closed",
        KbError::InvalidRecord { .. } | KbError::TooLarge { .. } => "invalid",
        _ => "storage",
    });
}

fn check_schema(trees: &Trees, path: &Path) -> Result<(), KbError> {
    let storage = |e: sled::Error| KbError::Storage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    match trees.meta.get(SCHEMA_KEY).map_err(storage)? {
        Some(stored) => {
            let bytes: [u8; 4] =
                stored
                    .as_ref()
                    .try_into()
                    .map_err(|_| KbError::NotAKnowledgeBase {
                        path: path.to_path_buf(),
                    })?;
            let found = u32::from_be_bytes(bytes);
            if found > SCHEMA_VERSION {
                return Err(KbError::NewerSchema {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            if found < SCHEMA_VERSION {
                return Err(KbError::UnsupportedSchema {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Ok(())
        }
        None if trees.records.is_empty() => {
            trees
                .meta
                .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()[..])
                .map_err(storage)?;
            Ok(())
        }
        None => Err(KbError::NotAKnowledgeBase {
            path: path.to_path_buf(),
        }),
    }
}

/// How the open repairs the indexes after an unclean stop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repair {
    /// From the recent-keys list where there is a usable one.
    FromList,
    /// From every record.
    Full,
}

/// Repairs the indexes if the database was not closed cleanly, and leaves the recent-keys list
/// empty: after this every index entry is in posting lists.
fn recover(db: &sled::Db, trees: &Trees, path: &Path, repair: Repair) -> Result<Recovery, KbError> {
    let storage = |e: sled::Error| KbError::Storage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let marker = trees.meta.get(CLEAN_KEY).map_err(storage)?;
    let marker = marker.as_deref();
    if marker == Some(&[MARK_CLEAN][..]) || !db.was_recovered() {
        // A clean close left the list empty; a build before it may have left entries behind.
        recent::reset(&trees.meta, &trees.recent).map_err(storage)?;
        return Ok(Recovery::Clean);
    }
    let reason = match (repair, marker) {
        (Repair::Full, _) => FullRebuildReason::Asked,
        (Repair::FromList, Some([MARK_LISTED])) => {
            match recent::read(&trees.meta, &trees.recent).map_err(storage)? {
                Ok(listed) => return refile(db, trees, listed).map_err(storage),
                Err(unreadable) => FullRebuildReason::Unreadable(unreadable.to_string()),
            }
        }
        (Repair::FromList, _) => FullRebuildReason::NotListed,
    };
    let rebuilt = rebuild_indexes(db, trees, path)?;
    recent::reset(&trees.meta, &trees.recent).map_err(storage)?;
    Ok(Recovery::FullRebuild {
        read: rebuilt.read,
        reason,
    })
}

/// Files the index entries of the records the recent-keys list names, then trims the list.
fn refile(db: &sled::Db, trees: &Trees, listed: recent::Listed) -> Result<Recovery, sled::Error> {
    let mut groups = Groups::new();
    let mut seen = std::collections::HashSet::with_capacity(listed.keys.len());
    let mut read = 0;
    for key in &listed.keys {
        if !seen.insert(*key) {
            continue;
        }
        // A listed key without its record: the kill came before the insert, or it was refused.
        let Some(value) = trees.records.get(key)? else {
            continue;
        };
        read += 1;
        if let Some((pointer, index)) = index_entries(key, &value) {
            postings::add(&mut groups, pointer, index);
        }
    }
    write_postings(db, &trees.index, &groups)?;
    if let Some(last) = listed.last {
        recent::trim(&trees.meta, &trees.recent, last)?;
    }
    Ok(Recovery::RecentKeys {
        listed: listed.keys.len(),
        read,
    })
}

/// A record's pointer and the index keys it is filed under.
type Filing = (Pointer, Vec<(Index, Vec<u8>)>);

/// A stored record's pointer and index keys; `None` (logged) when it does not decode.
fn index_entries(key: &[u8; RECORD_KEY_LEN], value: &[u8]) -> Option<Filing> {
    let (at, index) = match decode_record(key, value) {
        Ok(Record::Decision(decision)) => (decision.decided_at, postings::decision_keys(&decision)),
        Ok(Record::Outcome(outcome)) => (outcome.observed_at, postings::outcome_keys(&outcome)),
        Err(corrupt) => {
            warn_corrupt(&corrupt);
            return None;
        }
    };
    Some((postings::pointer(&at, key), index))
}

/// What a full rebuild did.
struct Rebuilt {
    /// Entries of the records tree read.
    read: usize,
    /// Records whose index entries were filed.
    indexed: usize,
}

/// Replaces every posting list with posting lists re-derived from the records.
fn rebuild_indexes(db: &sled::Db, trees: &Trees, path: &Path) -> Result<Rebuilt, KbError> {
    let storage = |e: sled::Error| KbError::Storage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // Before the index is cleared: a kill in the middle leaves a database the recent-keys list
    // cannot repair, and the marker makes the next open rebuild it all again.
    trees
        .meta
        .insert(CLEAN_KEY, &[MARK_UNLISTED][..])
        .map_err(storage)?;
    trees.index.clear().map_err(storage)?;
    let mut rebuilt = Rebuilt {
        read: 0,
        indexed: 0,
    };
    let mut groups = Groups::new();
    let mut pending = 0;
    for entry in trees.records.iter() {
        let (key, value) = entry.map_err(storage)?;
        rebuilt.read += 1;
        let Ok(record_key) = <[u8; RECORD_KEY_LEN]>::try_from(key.as_ref()) else {
            continue;
        };
        let Some((pointer, index)) = index_entries(&record_key, &value) else {
            continue;
        };
        postings::add(&mut groups, pointer, index);
        rebuilt.indexed += 1;
        pending += 1;
        // Written in slices so that memory stays bounded however large the database is.
        if pending >= 16 * FOLD_AFTER_RECORDS {
            write_postings(db, &trees.index, &std::mem::take(&mut groups)).map_err(storage)?;
            pending = 0;
        }
    }
    write_postings(db, &trees.index, &groups).map_err(storage)?;
    // Whatever was written meanwhile (the writer may be running) is listed as usual.
    trees
        .meta
        .insert(CLEAN_KEY, &[MARK_LISTED][..])
        .map_err(storage)?;
    Ok(rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_record_names_the_field() {
        assert_eq!(
            check_schema_field(SCHEMA_VERSION + 1)
                .unwrap_err()
                .to_string(),
            format!(
                "schema_version is {}; this build writes {SCHEMA_VERSION}",
                SCHEMA_VERSION + 1
            )
        );
        assert_eq!(
            check_name("tenant", "").unwrap_err(),
            InvalidReason::EmptyName { field: "tenant" }
        );
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            check_name("agent", &long).unwrap_err().to_string(),
            format!(
                "agent is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
                MAX_NAME_BYTES + 1
            )
        );
        assert!(check_name("campaign", "spring").is_ok());
    }
}
