//! Shared knowledge-base helpers for the built-in agents: deterministic ids for a campaign's steps,
//! a decision builder that fills in who, when and in which chain, and idempotent recording.
//!
//! A step of a campaign (its plan, the review of a variant, the traffic split of day 12) has one id
//! derived from (tenant, campaign, step). Recording a decision whose id is already in the knowledge
//! base is a no-op, so a daemon killed mid-campaign and started again never repeats a decision it
//! had acknowledged. These helpers must never decide anything themselves, and never read another
//! tenant's records: every query here is scoped to the campaign's tenant.

use serde::Serialize;
use uuid::Uuid;

use super::decisions::DecisionKind;
use crate::domain::campaign::CampaignGoal;
use crate::kb::{
    Alternative, Decision, DecisionId, KnowledgeBase, OutcomeId, SCHEMA_VERSION, Scope,
};
use crate::protocol::{CampaignId, CorrelationId, Envelope, TenantId};
use crate::runtime::{AgentError, Context};

/// 128 stable bits from the given parts (two FNV-1a lanes), shaped as a UUID version 8 (custom).
/// Stable across builds and platforms, which restart idempotency depends on.
pub fn stable_uuid(parts: &[&str]) -> Uuid {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for part in parts {
        for byte in part.as_bytes().iter().chain([0xffu8].iter()) {
            a ^= u64::from(*byte);
            a = a.wrapping_mul(0x0000_0100_0000_01b3);
            b ^= u64::from(*byte).rotate_left(3);
            b = b.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(17);
        }
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    // Version 8, RFC 4122 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The id of one step of one campaign, e.g. `plan/0` or `split/day/12/sms`.
pub fn step_id(goal: &CampaignGoal, step: &str) -> DecisionId {
    DecisionId(stable_uuid(&[
        "decision",
        goal.tenant.as_str(),
        goal.id.as_str(),
        step,
    ]))
}

/// A review round's part of a step id: `2` for the first generation's third round, `gen/7/2`
/// for the third round of the generation bred on day 7 (`batch` `gen/7`).
pub fn round_step(batch: &str, round: u32) -> String {
    if batch.is_empty() {
        round.to_string()
    } else {
        format!("{batch}/{round}")
    }
}

/// The id of one outcome of one campaign, e.g. `observations/day/3/sms/0`.
pub fn outcome_id(goal: &CampaignGoal, step: &str) -> OutcomeId {
    OutcomeId(stable_uuid(&[
        "outcome",
        goal.tenant.as_str(),
        goal.id.as_str(),
        step,
    ]))
}

/// The correlation id every chain of work of a campaign carries, so `kb trace` of it shows the
/// campaign from its goal to its latest allocation.
pub fn campaign_correlation(goal: &CampaignGoal) -> CorrelationId {
    CorrelationId(stable_uuid(&[
        "campaign",
        goal.tenant.as_str(),
        goal.id.as_str(),
    ]))
}

/// The knowledge-base scope of a campaign: its own tenant, never another.
pub fn scope(goal: &CampaignGoal) -> Scope {
    Scope::Tenant(goal.tenant.clone())
}

/// One decision about to be recorded: a typed kind's inputs and choice, with its alternatives,
/// reason and confidence.
pub struct Draft {
    pub step: String,
    pub kind: &'static str,
    pub inputs: serde_json::Value,
    pub alternatives: Vec<Alternative>,
    pub choice: serde_json::Value,
    pub reason: String,
    pub confidence: f64,
}

impl Draft {
    /// A decision of kind `K` at `step` of the campaign.
    pub fn new<K: DecisionKind>(
        step: impl Into<String>,
        inputs: K::Inputs,
        choice: K::Choice,
    ) -> Self {
        Draft {
            step: step.into(),
            kind: K::KIND,
            inputs: json(inputs),
            alternatives: Vec::new(),
            choice: json(choice),
            reason: String::new(),
            confidence: 0.5,
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = if confidence.is_finite() {
            confidence.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    pub fn alternative(mut self, option: impl Serialize, score: f64, note: Option<String>) -> Self {
        self.alternatives.push(Alternative {
            option: json(option),
            score: if score.is_finite() { score } else { 0.0 },
            note,
        });
        self
    }
}

/// Any serializable value as JSON; a value that cannot be represented becomes its error text, so a
/// decision is never lost to a formatting problem.
pub fn json(value: impl Serialize) -> serde_json::Value {
    serde_json::to_value(value)
        .unwrap_or_else(|e| serde_json::Value::String(format!("unserializable: {e}")))
}

/// Records `draft` as a decision of the handling agent about `goal`, under the chain and cause of
/// the message being handled. Idempotent per (campaign, step): when the step's decision is already
/// recorded, that one is returned and nothing is written.
pub async fn record<P>(
    kb: &KnowledgeBase,
    ctx: &Context,
    envelope: &Envelope<P>,
    goal: &CampaignGoal,
    draft: Draft,
) -> Result<Decision, AgentError> {
    // A single write has no other write of this call to overlap with: awaited here, no task.
    let id = step_id(goal, &draft.step);
    if let Some(existing) = kb.decision(&scope(goal), id)? {
        return Ok(existing);
    }
    let decision = build(ctx, envelope, goal, id, draft);
    kb.record_decision(&decision).await?;
    Ok(decision)
}

/// [`record`] for many drafts at once, in their order. The writes are submitted together, so they
/// share the knowledge base's group commits instead of waiting for one acknowledgement each.
pub async fn record_all<P>(
    kb: &KnowledgeBase,
    ctx: &Context,
    envelope: &Envelope<P>,
    goal: &CampaignGoal,
    drafts: Vec<Draft>,
) -> Result<Vec<Decision>, AgentError> {
    let scope = scope(goal);
    let mut out: Vec<Option<Decision>> = Vec::with_capacity(drafts.len());
    let mut writes = tokio::task::JoinSet::new();
    for draft in drafts {
        let id = step_id(goal, &draft.step);
        if let Some(existing) = kb.decision(&scope, id)? {
            out.push(Some(existing));
            continue;
        }
        let decision = build(ctx, envelope, goal, id, draft);
        // The write task owns the decision and hands it back to its place once acknowledged: a
        // decision is a tree of JSON values, too costly to copy for the write.
        let place = out.len();
        out.push(None);
        let kb = kb.clone();
        writes.spawn(async move {
            kb.record_decision(&decision)
                .await
                .map(|_| (place, decision))
        });
    }
    while let Some(done) = writes.join_next().await {
        let (place, decision) = done??;
        if let Some(slot) = out.get_mut(place) {
            *slot = Some(decision);
        }
    }
    out.into_iter()
        .map(|decision| decision.ok_or_else(|| AgentError::msg("a recorded decision went missing")))
        .collect()
}

/// Where a decision that is no campaign step is filed: its id comes from what it decides (a
/// consent event, an operator's revive), under a tenant and, if it concerns one, a campaign.
pub struct Keyed {
    pub id: DecisionId,
    pub tenant: TenantId,
    pub campaign: Option<CampaignId>,
}

/// Records a [`Keyed`] decision of the handling agent, of kind `K`, under the chain and cause of
/// the message being handled. Idempotent per id: a decision already recorded stays as it is.
pub async fn record_keyed<K: DecisionKind, P>(
    kb: &KnowledgeBase,
    ctx: &Context,
    envelope: &Envelope<P>,
    filed: Keyed,
    (inputs, choice): (K::Inputs, K::Choice),
    reason: String,
) -> Result<DecisionId, AgentError> {
    let Keyed {
        id,
        tenant,
        campaign,
    } = filed;
    if kb.decision(&Scope::Tenant(tenant.clone()), id)?.is_none() {
        let decision = Decision {
            id,
            schema_version: SCHEMA_VERSION,
            agent: ctx.agent().clone(),
            tenant,
            campaign,
            correlation_id: envelope.correlation_id,
            causation_id: Some(envelope.id),
            kind: K::KIND.to_owned(),
            inputs: json(inputs),
            alternatives: Vec::new(),
            choice: json(choice),
            reason,
            confidence: 1.0,
            decided_at: ctx.now(),
            recorded_at: Some(recorded_now()),
        };
        kb.record_decision(&decision).await?;
    }
    Ok(id)
}

pub(super) fn build<P>(
    ctx: &Context,
    envelope: &Envelope<P>,
    goal: &CampaignGoal,
    id: DecisionId,
    draft: Draft,
) -> Decision {
    let mut inputs = draft.inputs;
    if let serde_json::Value::Object(map) = &mut inputs {
        map.insert("step".into(), serde_json::Value::String(draft.step));
    } else {
        inputs = serde_json::json!({ "step": draft.step, "value": inputs });
    }
    Decision {
        id,
        schema_version: SCHEMA_VERSION,
        agent: ctx.agent().clone(),
        tenant: goal.tenant.clone(),
        campaign: Some(goal.id.clone()),
        correlation_id: envelope.correlation_id,
        causation_id: Some(envelope.id),
        kind: draft.kind.to_owned(),
        inputs,
        alternatives: draft.alternatives,
        choice: draft.choice,
        reason: draft.reason,
        confidence: draft.confidence,
        decided_at: ctx.now(),
        recorded_at: Some(recorded_now()),
    }
}

/// The wall-clock time a record is made, kept beside the campaign's time (`ctx.now()`, which an
/// accelerated or simulated clock runs ahead of the world) for the audit trail.
pub fn recorded_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_are_stable_and_distinct() {
        let a = stable_uuid(&["x", "y"]);
        assert_eq!(a, stable_uuid(&["x", "y"]));
        assert_ne!(a, stable_uuid(&["xy"]));
        assert_ne!(a, stable_uuid(&["x", "z"]));
        assert_eq!(a.get_version_num(), 8);
    }
}
