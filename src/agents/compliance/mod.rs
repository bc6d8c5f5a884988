//! The compliance agent: reviews every variant against the campaign's jurisdictions, its send
//! window and the consent ledger, and keeps that ledger in the knowledge base (every grant and
//! withdrawal is a decision record, read back after a restart).
//!
//! It fails closed: anything it cannot review is not approved (a campaign region without a rule
//! set blocks every variant), and nothing else in campaignd may approve a variant. It never edits a
//! creative itself; it suggests fixes and content applies them. Superlatives and health claims are
//! substantiated from the claims registry of the campaign's own tenant file (the same file content
//! writes the brand voice from), never another tenant's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::content::{tenants_dir, voice_for};
use super::decisions::{self as kinds, ReviewChoice, ReviewInputs};
use super::ledger::{self, Draft};
use super::messages::{ConsentsOf, EraseSubject, RecordConsent};
use super::playbook::LivePlaybook;
use super::projection;
use crate::domain::brief::review_claims;
use crate::domain::campaign::CampaignGoal;
use crate::domain::compliance::{
    CompliancePlaybook, ConsentLedger, ConsentRecord, FixedMessage, Message, MessageChannel,
    ReviewRequest, Verdict, apply_fixes, consent_for, jurisdictions, recipient_tz, segment_subject,
};
use crate::kb::{DecisionId, KnowledgeBase, Scope};
use crate::protocol::{CampaignId, Envelope, Payload, TenantId};
use crate::runtime::{
    Agent, AgentError, Context, HandleRequest, Request, Routes, ShardBy, StartContext,
};

/// One variant to review: the message as it would be sent, when, and to which audience.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewItem {
    pub variant: String,
    pub segment: String,
    pub message: Message,
    pub send_at: DateTime<FixedOffset>,
}

/// Review a campaign's variants.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewVariants {
    pub goal: CampaignGoal,
    pub items: Vec<ReviewItem>,
    /// Which review round of which batch (with the batch, part of each decision's step id).
    pub round: u32,
    /// The batch of variants: empty for the first generation, `gen/7` for the one bred on day 7.
    #[serde(default)]
    pub batch: String,
}

impl Payload for ReviewVariants {
    const ACTION: &'static str = "review_variants";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for ReviewVariants {
    type Response = Reviews;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VariantVerdict {
    pub variant: String,
    pub verdict: Verdict,
    pub decision: DecisionId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reviews {
    pub verdicts: Vec<VariantVerdict>,
}

impl Payload for Reviews {
    const ACTION: &'static str = "reviews";
}

mod consents;
mod send_list;

pub use send_list::{DrawSendList, SendListDrawn};

pub struct Compliance {
    kb: Arc<KnowledgeBase>,
    /// The rule sets in force; a reload changes them for the next review.
    playbook: LivePlaybook<CompliancePlaybook>,
    /// Per tenant, (subject, channel) → latest consent record. Loaded per tenant on first use.
    ledger: BTreeMap<TenantId, ConsentLedger>,
    /// Where the tenants' files (and their claims registries) are.
    tenants_dir: PathBuf,
}

impl Agent for Compliance {
    const NAME: &'static str = "compliance";
    // The consent ledger is the tenant's, for all its campaigns: one worker per tenant sees every
    // grant and withdrawal in the order it was recorded, so a review can never read a stale grant.
    const SHARD_BY: ShardBy = ShardBy::Tenant;

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        let playbook = LivePlaybook::<CompliancePlaybook>::load(&ctx.services, Self::NAME)?;
        Ok(Compliance {
            kb,
            playbook,
            ledger: BTreeMap::new(),
            tenants_dir: tenants_dir(&ctx.services),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<ReviewVariants>()
            .request::<RecordConsent>()
            .request::<ConsentsOf>()
            .request::<EraseSubject>()
            .request::<DrawSendList>();
    }
}

impl Compliance {
    fn tenant_ledger(&mut self, tenant: &TenantId) -> Result<&ConsentLedger, AgentError> {
        if !self.ledger.contains_key(tenant) {
            let found = self
                .kb
                .by_agent(&Scope::Tenant(tenant.clone()), &Self::NAME.into())?;
            self.ledger
                .insert(tenant.clone(), projection::consent_ledger(&found.records));
        }
        self.ledger
            .get(tenant)
            .ok_or_else(|| AgentError::msg("consent ledger missing right after loading"))
    }

    /// The consent that covers `subject` on `channel`: its own record, or a sibling channel's in
    /// one of the configured channel groups (KR-OPTIN's `channel_groups`).
    fn consent(
        &mut self,
        tenant: &TenantId,
        subject: &str,
        channel: MessageChannel,
    ) -> Result<Option<ConsentRecord>, AgentError> {
        let groups = self.playbook.get().rules.opt_in.channel_groups.clone();
        let ledger = self.tenant_ledger(tenant)?;
        Ok(consent_for(ledger, subject, channel, &groups).cloned())
    }
}

impl HandleRequest<ReviewVariants> for Compliance {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<ReviewVariants>,
    ) -> Result<Reviews, AgentError> {
        let ReviewVariants {
            goal,
            items,
            round,
            batch,
        } = &request.payload;
        let round = ledger::round_step(batch, *round);
        self.playbook.refresh(ctx.services());
        let jurisdictions = jurisdictions(&goal.regions);
        let tz = recipient_tz(&goal.regions);
        // Read at every review, so an edited registry counts from the next one. A file that cannot
        // be read fails the review (and nothing is approved): content could not have written
        // creatives from it either.
        let voice = voice_for(&self.tenants_dir, goal)
            .map_err(|e| AgentError::caused("reading the campaign's claims registry", e))?;
        let claims = review_claims(goal, voice.claim_registry(), &voice.preferred_terms);
        let mut reviewed = Vec::with_capacity(items.len());
        let mut drafts = Vec::with_capacity(items.len());
        for item in items {
            let subject = segment_subject(goal, &item.segment);
            let consent = self.consent(&goal.tenant, &subject, item.message.channel)?;
            let review = ReviewRequest {
                message: item.message.clone(),
                send_at: item.send_at,
                recipient_tz: tz,
                consent: consent.clone(),
                // An audience without a record of its own (every audience but the built-in
                // market's) is checked member by member when the send list is drawn.
                per_recipient: consent.is_none(),
                claims: claims.clone(),
                jurisdictions: jurisdictions.clone(),
            };
            let verdict = self
                .playbook
                .get()
                .review_in_regions(&review, &goal.regions);
            let fixed: Option<FixedMessage> = (!verdict.approved && verdict.fixable)
                .then(|| apply_fixes(&item.message, &verdict.findings));
            let findings: Vec<String> = verdict
                .findings
                .iter()
                .map(|f| format!("{} ({:?}): {}", f.rule_id, f.severity, f.message))
                .collect();
            let mut reason = if verdict.approved {
                if findings.is_empty() {
                    format!(
                        "approved: no finding under {jurisdictions:?}, risk {}{}",
                        verdict.risk,
                        if claims.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", with {} claims of the brief and the registry",
                                claims.len()
                            )
                        }
                    )
                } else {
                    format!(
                        "approved with risk {}: {}",
                        verdict.risk,
                        findings.join("; ")
                    )
                }
            } else if verdict.fixable {
                format!(
                    "blocked (risk {}), fixable: {}",
                    verdict.risk,
                    findings.join("; ")
                )
            } else {
                format!(
                    "blocked (risk {}), no mechanical fix: {}",
                    verdict.risk,
                    findings.join("; ")
                )
            };
            if review.per_recipient && verdict.approved {
                reason.push_str(
                    "; the audience has no consent record of its own, so each member's consent is checked when a day's send list is drawn",
                );
            }
            let draft = Draft::new::<kinds::Review>(
                format!("review/{round}/{}", item.variant),
                ReviewInputs {
                    variant: item.variant.clone(),
                    message: item.message.clone(),
                    send_at: item.send_at,
                    jurisdictions: jurisdictions.clone(),
                    consent: consent.clone(),
                },
                ReviewChoice {
                    approved: verdict.approved,
                    risk: verdict.risk,
                    fixable: verdict.fixable,
                    fixes: verdict.fixes.clone(),
                },
            )
            .alternative("approve", f64::from(100 - verdict.risk.min(100)), None)
            .alternative(
                "block",
                f64::from(verdict.risk),
                fixed
                    .as_ref()
                    .map(|f| format!("with fixes the text would read: {}", f.message.text)),
            )
            .reason(reason)
            .confidence(0.9);
            drafts.push(draft);
            reviewed.push((item.variant.clone(), verdict));
        }
        let decisions = ledger::record_all(&self.kb, ctx, &request, goal, drafts).await?;
        let verdicts = reviewed
            .into_iter()
            .zip(decisions)
            .map(|((variant, mut verdict), decision)| {
                // After a restart the recorded verdict stands, so a replayed review never flips.
                verdict.approved = verdict.approved && projection::review_approved(&decision);
                VariantVerdict {
                    variant,
                    verdict,
                    decision: decision.id,
                }
            })
            .collect();
        Ok(Reviews { verdicts })
    }
}
