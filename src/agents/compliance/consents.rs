//! The consent ledger's own requests: recording consent events, reading a subject's records in
//! force, and erasing a subject. Every event is a `consent` decision and every erasure an
//! `erasure` decision, so the ledger a restart rebuilds is the one reviews read now.

use chrono::{DateTime, Utc};

use super::Compliance;
use crate::agents::decisions::{self as kinds, DecisionKind, ErasureChoice, ErasureInputs};
use crate::agents::ledger::{self, Keyed};
use crate::agents::messages::{
    ConsentFate, ConsentRecorded, Consents, ConsentsOf, EraseSubject, RecordConsent,
    RecordedConsent, SubjectErased,
};
use crate::domain::compliance::{ConsentRecord, MessageChannel, merge_consent};
use crate::kb::{Decision, DecisionId, SCHEMA_VERSION, Scope};
use crate::protocol::{Envelope, TenantId};
use crate::runtime::{AgentError, Context, HandleRequest};

/// A consent event's decision id: the same event sent twice (a retried import) is one decision.
fn consent_id(tenant: &TenantId, record: &ConsentRecord) -> DecisionId {
    let stamp = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let (granted, withdrawn, reconfirmed) = (
        stamp(record.granted_at),
        stamp(record.withdrawn_at),
        stamp(record.last_reconfirmed_at),
    );
    let night = record.night_consent.to_string();
    let mut parts = vec![
        "consent",
        tenant.as_str(),
        &record.subject,
        record.channel.as_str(),
        &granted,
        &withdrawn,
        &reconfirmed,
        &night,
    ];
    // A new membership is a new event; records without one keep the ids they always had.
    let segments = record.segments.join("\u{1f}");
    if !segments.is_empty() {
        parts.push(&segments);
    }
    DecisionId(ledger::stable_uuid(&parts))
}

fn erasure_id(tenant: &TenantId, subject: &str) -> DecisionId {
    DecisionId(ledger::stable_uuid(&["erasure", tenant.as_str(), subject]))
}

fn consent_reason(record: &ConsentRecord) -> String {
    let what = if record.withdrawn_at.is_some() {
        "withdrawn"
    } else {
        "granted"
    };
    format!(
        "consent of {} for {} {what} (source {}, night consent {}); the newest event of a subject and channel is the one reviews use, and a withdrawal beats every grant that is not newer than it",
        record.subject,
        record.channel,
        record.source.as_deref().unwrap_or("unknown"),
        record.night_consent
    )
}

impl HandleRequest<RecordConsent> for Compliance {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<RecordConsent>,
    ) -> Result<ConsentRecorded, AgentError> {
        let RecordConsent { tenant, records } = &request.payload;
        let scope = Scope::Tenant(tenant.clone());
        let mut decisions = Vec::with_capacity(records.len());
        let mut writes = tokio::task::JoinSet::new();
        let mut merged = Vec::with_capacity(records.len());
        for record in records {
            // An event of an erased pseudonym (one that raced its erasure) is not recorded: the
            // erasure stands.
            let erasure = erasure_id(tenant, &record.subject);
            if self.kb.decision(&scope, erasure)?.is_some() {
                decisions.push(RecordedConsent {
                    decision: erasure,
                    fate: ConsentFate::Erased,
                });
                continue;
            }
            merged.push(record);
            let id = consent_id(tenant, record);
            let new = self.kb.decision(&scope, id)?.is_none();
            let fate = if new {
                ConsentFate::Recorded
            } else {
                ConsentFate::Duplicate
            };
            decisions.push(RecordedConsent { decision: id, fate });
            if !new {
                continue;
            }
            let decision = Decision {
                id,
                schema_version: SCHEMA_VERSION,
                agent: ctx.agent().clone(),
                tenant: tenant.clone(),
                campaign: request.campaign.clone(),
                correlation_id: request.correlation_id,
                causation_id: Some(request.id),
                kind: kinds::Consent::KIND.to_owned(),
                inputs: ledger::json(record),
                alternatives: Vec::new(),
                choice: ledger::json(record),
                reason: consent_reason(record),
                confidence: 1.0,
                decided_at: ctx.now(),
                recorded_at: Some(ledger::recorded_now()),
            };
            // One group commit for the batch, not one per record.
            let kb = self.kb.clone();
            writes.spawn(async move { kb.record_decision(&decision).await });
        }
        while let Some(done) = writes.join_next().await {
            done??;
        }
        // Load first (so the map exists), then keep it current without re-reading.
        self.tenant_ledger(tenant)?;
        if let Some(map) = self.ledger.get_mut(tenant) {
            for record in merged {
                merge_consent(map, record.clone());
            }
        }
        Ok(ConsentRecorded { decisions })
    }
}

impl HandleRequest<ConsentsOf> for Compliance {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<ConsentsOf>,
    ) -> Result<Consents, AgentError> {
        let ConsentsOf { tenant, subject } = &request.payload;
        let ledger = self.tenant_ledger(tenant)?;
        let records = MessageChannel::ALL
            .iter()
            .filter_map(|channel| ledger.get(&(subject.clone(), *channel)).cloned())
            .collect();
        Ok(Consents { records })
    }
}

impl HandleRequest<EraseSubject> for Compliance {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<EraseSubject>,
    ) -> Result<SubjectErased, AgentError> {
        let EraseSubject {
            tenant,
            subject,
            by,
        } = &request.payload;
        let ledger = self.tenant_ledger(tenant)?;
        let channels: Vec<MessageChannel> = MessageChannel::ALL
            .into_iter()
            .filter(|channel| ledger.contains_key(&(subject.clone(), *channel)))
            .collect();
        let id = erasure_id(tenant, subject);
        let reason = format!(
            "subject {subject} erased at the request of {by} (GDPR article 17): its consents on {} stop, and nothing links a person to this pseudonym any more",
            if channels.is_empty() {
                "no channel".to_owned()
            } else {
                channels
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let filed = Keyed {
            id,
            tenant: tenant.clone(),
            campaign: None,
        };
        let inputs = ErasureInputs {
            subject: subject.clone(),
            requested_by: by.clone(),
        };
        let choice = ErasureChoice {
            channels: channels.clone(),
        };
        ledger::record_keyed::<kinds::Erasure, _>(
            &self.kb,
            ctx,
            &request,
            filed,
            (inputs, choice),
            reason,
        )
        .await?;
        if let Some(map) = self.ledger.get_mut(tenant) {
            map.retain(|(s, _), _| s != subject);
        }
        Ok(SubjectErased {
            decision: id,
            channels,
        })
    }
}
