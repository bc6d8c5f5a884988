//! The shapes of the approval decisions: what a request proposes ([`Proposal`]), what it says
//! while it waits, how it was answered and what was done with the answer. Their kinds are listed
//! with every other in the parent module.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AllocationInputs;
use crate::domain::approval::{ApprovalKind, Autonomy, OnExpiry, Verdict};
use crate::domain::campaign::{Buy, Channel};
use crate::domain::optimization::{Arm, ResponseCurve, SpendBounds};
use crate::kb::DecisionId;

/// What a request proposes, by kind: what takes effect if it is approved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Proposal {
    /// The day's buys, as the optimizer planned them.
    Buys { buys: Vec<Buy> },
    /// Daily budgets per channel, from `before`; `allocation` is the move's evidence.
    BudgetMove {
        before: BTreeMap<Channel, f64>,
        daily: BTreeMap<Channel, f64>,
        allocation: Box<AllocationInputs>,
    },
    /// A new plan's daily budgets, curves and bounds (what the experiment re-starts with).
    Replan {
        attempt: u32,
        daily: BTreeMap<Channel, f64>,
        curves: BTreeMap<Channel, ResponseCurve>,
        #[serde(default)]
        bounds: BTreeMap<Channel, SpendBounds>,
        plan: DecisionId,
    },
    /// Stop asking for `stop_asking` on this campaign: `share` of the last `window` were approved
    /// unchanged.
    Autonomy {
        stop_asking: ApprovalKind,
        share: f64,
        window: u32,
    },
    /// Creatives compliance approved with findings a person should see, held out of the
    /// experiment: those approved join it. `batch` is `setup` or `gen/<day>`.
    Creatives {
        batch: String,
        held: Vec<HeldCreative>,
    },
}

/// One creative waiting for a person: what would be sent, and why it waits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeldCreative {
    pub arm: Arm,
    pub creative: crate::domain::channel::Creative,
    /// Compliance's risk score.
    pub risk: u8,
    /// Why it waits (the policy's rule).
    pub why: String,
    /// Compliance's findings, for the person who decides.
    pub findings: Vec<String>,
    /// Compliance's review of it.
    pub review: DecisionId,
}

impl Proposal {
    pub fn kind(&self) -> ApprovalKind {
        match self {
            Proposal::Buys { .. } => ApprovalKind::Buys,
            Proposal::BudgetMove { .. } => ApprovalKind::BudgetMove,
            Proposal::Replan { .. } => ApprovalKind::Replan,
            Proposal::Autonomy { .. } => ApprovalKind::Autonomy,
            Proposal::Creatives { .. } => ApprovalKind::Creatives,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalRequestInputs {
    /// The campaign day it was raised on.
    pub day: u32,
    /// Why it waits (the policy's rule).
    pub risk: String,
    /// The decisions and outcomes it follows from.
    #[serde(default)]
    pub evidence: Vec<DecisionId>,
    /// Wall-clock times: people answer in real time, whatever the campaign's clock.
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub on_expiry: OnExpiry,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalRequestChoice {
    pub proposal: Proposal,
    /// What goes on while it waits, and what happens if nobody answers.
    pub meanwhile: String,
    pub if_unanswered: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalAnswerInputs {
    pub request: DecisionId,
    pub kind: ApprovalKind,
    /// The token's name, or `expiry`.
    pub by: String,
    /// Wall clock.
    pub at: DateTime<Utc>,
    pub why: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalAnswerChoice {
    pub verdict: Verdict,
    /// What takes effect: the proposal, or the person's amendment of it (approved only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<Proposal>,
    #[serde(default)]
    pub amended: bool,
    /// An expired request's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_expiry: Option<OnExpiry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalAppliedInputs {
    pub request: DecisionId,
    pub answer: DecisionId,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AutonomyChoice {
    pub autonomy: Autonomy,
    /// Kinds no longer asked about (earned autonomy).
    #[serde(default)]
    pub not_asked: BTreeSet<ApprovalKind>,
}
