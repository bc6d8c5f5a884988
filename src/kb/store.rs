//! [`KnowledgeBase`]: opening the sled directory, recording decisions and outcomes through the
//! group-commit writer, and reading them back through the indexes.
//!
//! Every query is an index scan bounded by a key prefix that includes the tenant (or, for the
//! explicit all-tenants form, skips from tenant to tenant); none reads the whole database except
//! the export. A record that does not decode is logged, reported in the result and skipped. Reads
//! must never panic on stored bytes, and no query may return a record of a tenant outside its scope.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, oneshot};

use super::error::KbError;
use super::keys::{self, DECISION_TAG, MAX_NAME_BYTES, OUTCOME_TAG, RECORD_KEY_LEN};
use super::options::{KbOptions, MAX_RECORD_BYTES_CEILING};
use super::query::{CorruptRecord, ExportSummary, QueryResult, Scope};
use super::record::{Decision, DecisionId, Outcome, OutcomeId, Record, SCHEMA_VERSION};
use super::writer::{CLEAN_KEY, INDEX_TREES, Index, Message, PreparedWrite, Trees, Writer};
use crate::protocol::{AgentName, CampaignId, CorrelationId, decode, encode};

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
    path: PathBuf,
    max_record_bytes: usize,
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
    /// version. After an unclean stop (a crash or kill) it re-derives the index entries from the
    /// records, because the last batch may have reached disk without all of its index entries.
    pub fn open(options: &KbOptions) -> Result<Self, KbError> {
        options.validate().map_err(KbError::Options)?;
        let path = options.path.clone();
        let open_error = |reason: String| KbError::Open {
            path: path.clone(),
            reason,
        };
        std::fs::create_dir_all(&path)
            .map_err(|e| open_error(format!("cannot create the directory: {e}")))?;
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_capacity_bytes)
            .open()
            .map_err(|e| open_error(e.to_string()))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| open_error(format!("cannot open tree `{name}`: {e}")))
        };
        let [campaign, agent, time, correlation, decision] = INDEX_TREES.map(|(name, _)| name);
        let trees = Trees {
            records: tree("records")?,
            index: [
                tree(campaign)?,
                tree(agent)?,
                tree(time)?,
                tree(correlation)?,
                tree(decision)?,
            ],
            meta: tree("meta")?,
        };
        let storage = |e: sled::Error| KbError::Storage {
            path: path.clone(),
            reason: e.to_string(),
        };
        check_schema(&trees, &path)?;
        let clean = trees
            .meta
            .get(CLEAN_KEY)
            .map_err(storage)?
            .is_some_and(|v| v.as_ref() == [1]);
        if !clean && db.was_recovered() {
            let repaired = rebuild_indexes(&trees, &path)?;
            tracing::info!(path = %path.display(), records = repaired, "knowledge base was not closed cleanly; index entries re-derived");
        }
        trees.meta.insert(CLEAN_KEY, &[0u8][..]).map_err(storage)?;
        db.flush().map_err(storage)?;

        let (sender, receiver) = mpsc::channel(options.queue_capacity);
        let writer = Writer {
            db: db.clone(),
            trees: trees.clone(),
            durability: options.durability,
            batch_max: options.batch_max,
            path: path.clone(),
        }
        .spawn(receiver)
        .map_err(|e| open_error(format!("cannot start the writer: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                trees,
                path,
                max_record_bytes: options.max_record_bytes,
                sender: Some(sender),
                writer: Some(writer),
            }),
        })
    }

    /// The directory this knowledge base lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
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
        let write = self.prepare_decision(decision)?;
        self.submit(write).await?;
        Ok(decision.id)
    }

    /// Records an outcome against the decisions it cites, which must already be recorded for the
    /// same tenant. Acknowledged like [`KnowledgeBase::record_decision`].
    pub async fn record_outcome(&self, outcome: &Outcome) -> Result<OutcomeId, KbError> {
        let write = self.prepare_outcome(outcome)?;
        self.submit(write).await?;
        Ok(outcome.id)
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
        let sender = self.inner.sender.as_ref().ok_or(KbError::Closed)?;
        let (ack, done) = oneshot::channel();
        sender
            .send(Message::Write(write, ack))
            .await
            .map_err(|_| KbError::Closed)?;
        done.await.map_err(|_| KbError::Closed)?
    }

    fn prepare_decision(&self, decision: &Decision) -> Result<PreparedWrite, KbError> {
        let invalid = |reason: String| KbError::InvalidRecord {
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
            return Err(invalid(format!(
                "confidence is {}; it must be between 0.0 and 1.0",
                decision.confidence
            )));
        }
        let value = encode("decision", decision).map_err(|e| invalid(e.to_string()))?;
        self.check_size("decision", decision.id.to_string(), &value)?;
        let record_key = keys::record_key(DECISION_TAG, decision.id.0.as_bytes());
        Ok(PreparedWrite {
            what: "decision",
            record_key,
            value,
            index: decision_index_keys(decision, &record_key),
        })
    }

    fn prepare_outcome(&self, outcome: &Outcome) -> Result<PreparedWrite, KbError> {
        let invalid = |reason: String| KbError::InvalidRecord {
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
        let scope = Scope::Tenant(outcome.tenant.clone());
        for decision in &outcome.decisions {
            if self.decision(&scope, *decision)?.is_none() {
                return Err(KbError::UnknownDecision {
                    outcome: outcome.id.to_string(),
                    decision: decision.to_string(),
                    tenant: outcome.tenant.to_string(),
                });
            }
        }
        let value = encode("outcome", outcome).map_err(|e| invalid(e.to_string()))?;
        self.check_size("outcome", outcome.id.to_string(), &value)?;
        let record_key = keys::record_key(OUTCOME_TAG, outcome.id.0.as_bytes());
        Ok(PreparedWrite {
            what: "outcome",
            record_key,
            value,
            index: outcome_index_keys(outcome, &record_key),
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
        Ok(narrow(found, Record::as_decision))
    }

    /// Every decision an agent made, in time order.
    pub fn by_agent(
        &self,
        scope: &Scope,
        agent: &AgentName,
    ) -> Result<QueryResult<Decision>, KbError> {
        let found = self.scan_named(Index::Agent, agent.as_str(), scope, Some(DECISION_TAG))?;
        Ok(narrow(found, Record::as_decision))
    }

    /// The causal trace of one chain of work: every decision and outcome carrying `correlation`, in
    /// time order. The links are in the records: a decision's `causation_id` (the message that led
    /// to it) and an outcome's `decisions`.
    pub fn trace(
        &self,
        scope: &Scope,
        correlation: CorrelationId,
    ) -> Result<QueryResult<Record>, KbError> {
        let mut prefix = correlation.as_bytes().to_vec();
        if let Scope::Tenant(tenant) = scope {
            keys::push_name(&mut prefix, tenant.as_str());
        }
        self.scan_prefix(Index::Correlation, &prefix, scope, None)
    }

    /// The outcomes recorded against one decision, in time order: the feedback loop.
    pub fn outcomes_of(
        &self,
        scope: &Scope,
        decision: DecisionId,
    ) -> Result<QueryResult<Outcome>, KbError> {
        let mut prefix = decision.0.as_bytes().to_vec();
        if let Scope::Tenant(tenant) = scope {
            keys::push_name(&mut prefix, tenant.as_str());
        }
        let found = self.scan_prefix(Index::Decision, &prefix, scope, Some(OUTCOME_TAG))?;
        Ok(narrow(found, Record::as_outcome))
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
        let tree = self.inner.trees.index(Index::Time);
        // Keys hold microseconds: widen the key range by one on each side and filter on the exact time.
        let low = keys::time_bytes(
            &from
                .checked_sub_signed(TimeDelta::microseconds(1))
                .unwrap_or(from),
        );
        let high = keys::time_bytes(
            &to.checked_add_signed(TimeDelta::microseconds(1))
                .unwrap_or(to),
        );
        let scan_tenant =
            |tenant_prefix: &[u8], result: &mut QueryResult<Record>| -> Result<(), KbError> {
                let start = [tenant_prefix, &low[..]].concat();
                let end = [tenant_prefix, &high[..]].concat();
                for entry in tree.range(start..end) {
                    let (key, _) = entry.map_err(|e| self.storage(e))?;
                    self.collect(&key, scope, None, result)?;
                }
                Ok(())
            };
        match scope {
            Scope::Tenant(tenant) => {
                let mut prefix = Vec::new();
                keys::push_name(&mut prefix, tenant.as_str());
                scan_tenant(&prefix, &mut result)?;
            }
            Scope::AllTenants => {
                // Skip from one tenant's key range to the next: one seek per tenant, not a full scan.
                let mut cursor: Vec<u8> = Vec::new();
                while let Some(entry) = tree.range(cursor.clone()..).next() {
                    let (key, _) = entry.map_err(|e| self.storage(e))?;
                    let Some((tenant_prefix, _)) = keys::leading_name(&key) else {
                        cursor = [&key[..], &[0]].concat();
                        continue;
                    };
                    scan_tenant(tenant_prefix, &mut result)?;
                    match keys::prefix_end(tenant_prefix) {
                        Some(next) => cursor = next,
                        None => break,
                    }
                }
            }
        }
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
    /// stop; an operator may also run it after restoring a backup. Returns the records indexed.
    pub fn rebuild_indexes(&self) -> Result<usize, KbError> {
        rebuild_indexes(&self.inner.trees, &self.inner.path)
    }

    /// Scans an index whose keys start with `name | tenant`.
    fn scan_named(
        &self,
        which: Index,
        name: &str,
        scope: &Scope,
        tag: Option<u8>,
    ) -> Result<QueryResult<Record>, KbError> {
        let mut prefix = Vec::new();
        keys::push_name(&mut prefix, name);
        if let Scope::Tenant(tenant) = scope {
            keys::push_name(&mut prefix, tenant.as_str());
        }
        self.scan_prefix(which, &prefix, scope, tag)
    }

    fn scan_prefix(
        &self,
        which: Index,
        prefix: &[u8],
        scope: &Scope,
        tag: Option<u8>,
    ) -> Result<QueryResult<Record>, KbError> {
        let mut result = QueryResult::default();
        for entry in self.inner.trees.index(which).scan_prefix(prefix) {
            let (key, _) = entry.map_err(|e| self.storage(e))?;
            self.collect(&key, scope, tag, &mut result)?;
        }
        // Within one tenant the keys are already in time order; across tenants they are grouped by
        // tenant first.
        if matches!(scope, Scope::AllTenants) {
            sort_by_time(&mut result.records);
        }
        Ok(result)
    }

    /// Loads the record an index entry points to into `result`, if it has the wanted tag.
    fn collect(
        &self,
        index_key: &[u8],
        scope: &Scope,
        tag: Option<u8>,
        result: &mut QueryResult<Record>,
    ) -> Result<(), KbError> {
        let Some(record_key) = keys::record_key_of(index_key) else {
            result.skipped.push(CorruptRecord {
                key: keys::display_key(index_key),
                reason: "index entry too short to name a record".into(),
            });
            return Ok(());
        };
        if tag.is_some_and(|tag| record_key.first() != Some(&tag)) {
            return Ok(());
        }
        match self.load(record_key, scope)? {
            Some(Ok(record)) => result.records.push(record),
            Some(Err(corrupt)) => result.skipped.push(corrupt),
            // Not visible in this scope, or an index entry whose record is gone: nothing to show.
            None => {}
        }
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

fn narrow<T: Clone>(found: QueryResult<Record>, pick: fn(&Record) -> Option<&T>) -> QueryResult<T> {
    QueryResult {
        records: found.records.iter().filter_map(pick).cloned().collect(),
        skipped: found.skipped,
    }
}

fn check_schema_field(version: u32) -> Result<(), String> {
    if version != SCHEMA_VERSION {
        return Err(format!(
            "schema_version is {version}; this build writes {SCHEMA_VERSION}"
        ));
    }
    Ok(())
}

fn check_name(field: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{field} is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    Ok(())
}

fn decision_index_keys(
    decision: &Decision,
    record_key: &[u8; RECORD_KEY_LEN],
) -> Vec<(Index, Vec<u8>)> {
    let tenant = decision.tenant.as_str();
    let at = &decision.decided_at;
    let mut index = Vec::with_capacity(4);
    if let Some(campaign) = &decision.campaign {
        index.push((
            Index::Campaign,
            named_key(&[campaign.as_str(), tenant], at, record_key),
        ));
    }
    index.push((
        Index::Agent,
        named_key(&[decision.agent.as_str(), tenant], at, record_key),
    ));
    index.push((Index::Time, named_key(&[tenant], at, record_key)));
    index.push((
        Index::Correlation,
        id_key(decision.correlation_id.as_bytes(), tenant, at, record_key),
    ));
    index
}

fn outcome_index_keys(
    outcome: &Outcome,
    record_key: &[u8; RECORD_KEY_LEN],
) -> Vec<(Index, Vec<u8>)> {
    let tenant = outcome.tenant.as_str();
    let at = &outcome.observed_at;
    let mut index = Vec::with_capacity(3 + outcome.decisions.len());
    if let Some(campaign) = &outcome.campaign {
        index.push((
            Index::Campaign,
            named_key(&[campaign.as_str(), tenant], at, record_key),
        ));
    }
    index.push((Index::Time, named_key(&[tenant], at, record_key)));
    if let Some(correlation) = &outcome.correlation_id {
        index.push((
            Index::Correlation,
            id_key(correlation.as_bytes(), tenant, at, record_key),
        ));
    }
    for decision in &outcome.decisions {
        index.push((
            Index::Decision,
            id_key(decision.0.as_bytes(), tenant, at, record_key),
        ));
    }
    index
}

fn named_key(names: &[&str], at: &DateTime<Utc>, record_key: &[u8; RECORD_KEY_LEN]) -> Vec<u8> {
    let mut key =
        Vec::with_capacity(names.iter().map(|n| 2 + n.len()).sum::<usize>() + keys::SUFFIX_LEN);
    for name in names {
        keys::push_name(&mut key, name);
    }
    keys::push_suffix(&mut key, at, record_key);
    key
}

fn id_key(
    id: &[u8; 16],
    tenant: &str,
    at: &DateTime<Utc>,
    record_key: &[u8; RECORD_KEY_LEN],
) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + 2 + tenant.len() + keys::SUFFIX_LEN);
    key.extend_from_slice(id);
    keys::push_name(&mut key, tenant);
    keys::push_suffix(&mut key, at, record_key);
    key
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

fn rebuild_indexes(trees: &Trees, path: &Path) -> Result<usize, KbError> {
    let storage = |e: sled::Error| KbError::Storage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut indexed = 0;
    let mut batches: [sled::Batch; 5] = Default::default();
    let mut pending = 0;
    for entry in trees.records.iter() {
        let (key, value) = entry.map_err(storage)?;
        let Ok(record_key) = <[u8; RECORD_KEY_LEN]>::try_from(key.as_ref()) else {
            continue;
        };
        let index = match decode_record(&key, &value) {
            Ok(Record::Decision(decision)) => decision_index_keys(&decision, &record_key),
            Ok(Record::Outcome(outcome)) => outcome_index_keys(&outcome, &record_key),
            Err(corrupt) => {
                warn_corrupt(&corrupt);
                continue;
            }
        };
        for (which, key) in index {
            batches[which as usize].insert(key, &[][..]);
            pending += 1;
        }
        indexed += 1;
        if pending >= 4096 {
            apply_index_batches(trees, &mut batches).map_err(storage)?;
            pending = 0;
        }
    }
    apply_index_batches(trees, &mut batches).map_err(storage)?;
    Ok(indexed)
}

fn apply_index_batches(trees: &Trees, batches: &mut [sled::Batch; 5]) -> Result<(), sled::Error> {
    for (tree, batch) in trees.index.iter().zip(batches.iter_mut()) {
        tree.apply_batch(std::mem::take(batch))?;
    }
    Ok(())
}
