//! The answer of a review: findings, each with a rule id, a severity, the span it concerns and a
//! mechanical fix when one exists; the risk score; and whether the message may be sent.
//!
//! Scoring lives here and nowhere else so that the agent, the command line and the tests agree on
//! what a verdict means. It must never look at the message itself: it only weighs findings.

use serde::{Deserialize, Serialize};

use super::fix::Fix;
use super::playbook::RiskWeights;

/// How much a finding matters. `Block` is a hard legal failure: the message must not go out as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Block,
}

/// Which part of the review input a finding is about; spans index into that field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Text,
    Subject,
    SendTime,
    Consent,
    Sender,
    Recipient,
}

/// One problem a rule found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's id as written in the playbook, such as `KR-AD-LABEL`.
    pub rule_id: String,
    pub severity: Severity,
    pub field: Field,
    /// Byte range `[start, end)` into `field` (the text or the subject), when the problem has a place.
    pub span: Option<(usize, usize)>,
    /// What is wrong and what would make it right, for a person.
    pub message: String,
    /// A change that cures this finding mechanically, when one exists.
    pub fix: Option<Fix>,
}

impl Finding {
    pub fn is_blocking(&self) -> bool {
        self.severity == Severity::Block
    }
}

/// The verdict on one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub approved: bool,
    /// 100 when any finding blocks; otherwise the weighted sum of findings, capped below 100.
    pub risk: u8,
    pub findings: Vec<Finding>,
    /// The distinct fixes the findings suggest, in the order `apply_fixes` applies them.
    pub fixes: Vec<Fix>,
    /// True when every blocking finding has a fix, so applying the fixes may clear the block.
    pub fixable: bool,
}

impl Verdict {
    /// Weighs `findings` with the playbook's risk weights.
    pub fn from_findings(findings: Vec<Finding>, weights: &RiskWeights) -> Verdict {
        let blocked = findings.iter().any(Finding::is_blocking);
        let risk = if blocked {
            100
        } else {
            let sum: u32 = findings
                .iter()
                .map(|f| match f.severity {
                    Severity::Low => u32::from(weights.low),
                    Severity::Medium => u32::from(weights.medium),
                    Severity::High => u32::from(weights.high),
                    Severity::Block => 0,
                })
                .sum();
            // The cap is validated below 100 so that only a blocking finding ever reads as 100.
            u8::try_from(sum.min(u32::from(weights.cap))).unwrap_or(weights.cap)
        };
        let fixable = findings
            .iter()
            .filter(|f| f.is_blocking())
            .all(|f| f.fix.is_some());
        let fixes = Fix::ordered(findings.iter().filter_map(|f| f.fix.clone()));
        Verdict {
            approved: !blocked && risk <= weights.approve_max,
            risk,
            findings,
            fixes,
            fixable,
        }
    }

    /// The findings of one rule.
    pub fn findings_of<'a>(&'a self, rule_id: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.rule_id == rule_id)
    }

    pub fn has_finding(&self, rule_id: &str) -> bool {
        self.findings_of(rule_id).next().is_some()
    }
}
