//! The records the knowledge base keeps: decisions, with everything that went into them, and the
//! outcomes observed afterwards, linked back to the decisions that caused them.
//!
//! Records are append-only. Each carries the schema version it was written with, and every field
//! added later must have a serde default, so that old records keep decoding.
//!
//! Two times are kept: `decided_at` / `observed_at` in the campaign's time (which the accelerated
//! or simulated clock runs ahead of the world, and which orders queries), and `recorded_at`, the
//! wall-clock time the record was made, for the audit trail. Records written by campaignd 0.1.0
//! have no `recorded_at` and read back with `None`: that build did not keep the wall clock, and
//! no later time would be true.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::protocol::{AgentName, CampaignId, CorrelationId, MessageId, TenantId};

/// The record format written by this build. Stored in the database at creation and checked at open.
/// Version 2 replaced the five per-record index trees with posting lists in one `index` tree; a
/// version 1 database is refused with a clear error. A field added with a serde default (such as
/// `recorded_at`) keeps the version: older records decode, and older builds ignore the field.
pub const SCHEMA_VERSION: u32 = 2;

/// Identifies one decision (uuid v7: sorts by creation time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DecisionId(pub Uuid);

/// Identifies one outcome record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutcomeId(pub Uuid);

impl DecisionId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for DecisionId {
    fn default() -> Self {
        Self::new()
    }
}

impl OutcomeId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for OutcomeId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for DecisionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for OutcomeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One option an agent weighed, with the score it gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// What the option was, as the agent describes it (a channel mix, a variant id, …).
    pub option: serde_json::Value,
    pub score: f64,
    /// Why it scored so, if the agent says.
    #[serde(default)]
    pub note: Option<String>,
}

/// One decision: who decided what, for which campaign, in which chain of work, from which inputs,
/// among which alternatives, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: DecisionId,
    pub schema_version: u32,
    pub agent: AgentName,
    pub tenant: TenantId,
    pub campaign: Option<CampaignId>,
    pub correlation_id: CorrelationId,
    /// The message that led to the decision.
    pub causation_id: Option<MessageId>,
    /// What sort of decision (`plan`, `allocation`, `review`, `traffic_split`, …).
    pub kind: String,
    pub inputs: serde_json::Value,
    pub alternatives: Vec<Alternative>,
    pub choice: serde_json::Value,
    pub reason: String,
    /// 0.0 – 1.0.
    pub confidence: f64,
    /// In the campaign's time (the runtime's clock).
    pub decided_at: DateTime<Utc>,
    /// The wall-clock time the decision was made; `None` for a record written by 0.1.0.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// Observed performance, recorded against the decisions that produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub id: OutcomeId,
    pub schema_version: u32,
    pub tenant: TenantId,
    pub campaign: Option<CampaignId>,
    /// The decisions this outcome is evidence for (the feedback loop).
    pub decisions: Vec<DecisionId>,
    pub correlation_id: Option<CorrelationId>,
    /// What was observed (`observation`, `goal_progress`, …).
    pub kind: String,
    pub metrics: serde_json::Value,
    /// In the campaign's time: the end of the observed window.
    pub observed_at: DateTime<Utc>,
    /// The wall-clock time the outcome was recorded; `None` for a record written by 0.1.0.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A decision or an outcome, as queries and the export return them. In JSON it is the record's own
/// fields plus `"record": "decision"` or `"record": "outcome"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Decision(Decision),
    Outcome(Outcome),
}

impl Record {
    pub fn tenant(&self) -> &TenantId {
        match self {
            Record::Decision(d) => &d.tenant,
            Record::Outcome(o) => &o.tenant,
        }
    }

    /// When it was decided or observed: the order queries return records in.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Record::Decision(d) => d.decided_at,
            Record::Outcome(o) => o.observed_at,
        }
    }

    /// The record's id.
    pub fn id(&self) -> Uuid {
        match self {
            Record::Decision(d) => d.id.0,
            Record::Outcome(o) => o.id.0,
        }
    }

    pub fn as_decision(&self) -> Option<&Decision> {
        match self {
            Record::Decision(d) => Some(d),
            Record::Outcome(_) => None,
        }
    }

    pub fn as_outcome(&self) -> Option<&Outcome> {
        match self {
            Record::Outcome(o) => Some(o),
            Record::Decision(_) => None,
        }
    }

    pub fn into_decision(self) -> Option<Decision> {
        match self {
            Record::Decision(d) => Some(d),
            Record::Outcome(_) => None,
        }
    }

    pub fn into_outcome(self) -> Option<Outcome> {
        match self {
            Record::Outcome(o) => Some(o),
            Record::Decision(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_recorded_at_decodes_with_none_and_a_new_one_keeps_it() {
        // A decision as campaignd 0.1.0 wrote it: the same fields, without `recorded_at`.
        #[derive(Serialize)]
        struct WrittenBy010 {
            id: DecisionId,
            schema_version: u32,
            agent: AgentName,
            tenant: TenantId,
            campaign: Option<CampaignId>,
            correlation_id: CorrelationId,
            causation_id: Option<MessageId>,
            kind: String,
            inputs: serde_json::Value,
            alternatives: Vec<Alternative>,
            choice: serde_json::Value,
            reason: String,
            confidence: f64,
            decided_at: DateTime<Utc>,
        }
        let old = WrittenBy010 {
            id: DecisionId::new(),
            schema_version: 2,
            agent: "strategy".into(),
            tenant: "acme".into(),
            campaign: Some("c".into()),
            correlation_id: CorrelationId::new(),
            causation_id: None,
            kind: "plan".into(),
            inputs: serde_json::json!({}),
            alternatives: Vec::new(),
            choice: serde_json::json!({}),
            reason: "r".into(),
            confidence: 1.0,
            decided_at: "2026-10-01T00:00:00Z".parse().unwrap(),
        };
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        let decision: Decision = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(decision.recorded_at, None);
        let now: DateTime<Utc> = "2026-12-02T01:30:00Z".parse().unwrap();
        let stamped = Decision {
            recorded_at: Some(now),
            ..decision
        };
        let back: Decision =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&stamped).unwrap()).unwrap();
        assert_eq!(back.recorded_at, Some(now));
        let outcome: Outcome = serde_json::from_value(serde_json::json!({
            "id": "0190a6c4-0000-7000-8000-000000000003", "schema_version": 2, "tenant": "acme",
            "campaign": "c", "decisions": [], "correlation_id": null, "kind": "observation",
            "metrics": {}, "observed_at": "2026-10-02T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(outcome.recorded_at, None);
    }
}
