//! Compliance: reviews one message against advertising and privacy law (Korea, the United States,
//! the European Union) and answers a verdict with findings, a risk score and mechanical fixes.
//!
//! The rules' word lists, windows and jurisdictions live in the `[playbook]` table of
//! `agents/compliance.toml` ([`CompliancePlaybook`]); the code holds only how each rule looks.
//! Plain data and pure functions: no I/O and no clock (the send time is part of the request), so a
//! verdict can be replayed exactly. It must never approve what it could not check.
//!
//! # Layout
//!
//! - [`message`]: what is reviewed: [`Message`], [`ReviewRequest`], channels, jurisdictions.
//! - [`consent`]: the consent record and the opt-in, re-confirmation and GDPR rules.
//! - [`intake`]: a consent as it arrives, its checks and its subject's keyed pseudonym.
//! - [`ledger`]: the consent ledger, its merge and the lookup across sibling channels.
//! - [`claims`]: the brand's claims registry.
//! - [`playbook`]: the rules' data, parsed and validated.
//! - [`recipients`]: send lists: the members of a segment each checked against their own consent.
//! - [`region`]: a campaign's jurisdictions and the recipients' time zone.
//! - [`rules`]: the engine ([`review`]) and the text rules.
//! - [`schedule`]: the time-of-day rules.
//! - [`substantiation`]: claims a message states and whether the brief or registry proves them.
//! - [`fix`]: mechanical fixes and [`apply_fixes`].
//! - [`verdict`]: findings, severities, the risk score.

pub mod claims;
pub mod consent;
pub mod fix;
pub mod intake;
pub mod ledger;
pub mod message;
pub mod playbook;
pub mod recipients;
pub mod region;
pub mod rules;
pub mod schedule;
pub mod substantiation;
mod text;
pub mod verdict;

pub use claims::{Claim, ClaimPeriod};
pub use consent::ConsentRecord;
pub use fix::{Fix, FixedMessage, apply_fixes};
pub use ledger::{
    ConsentLedger, consent_for, ledger_of, merge_consent, segment_subject, supersedes,
};
pub use message::{Jurisdiction, Message, MessageChannel, ReviewRequest, Sender};
pub use playbook::{CompliancePlaybook, EMBEDDED_AGENT_FILE, PlaybookError};
pub use region::{jurisdiction_of, jurisdictions, recipient_tz, without_rule_set};
pub use rules::{NO_RULESET, RULE_IDS, review, review_in_regions};
pub use verdict::{Field, Finding, Severity, Verdict};

impl CompliancePlaybook {
    /// Reviews one message; see [`review`].
    pub fn review(&self, request: &ReviewRequest) -> Verdict {
        rules::review(self, request)
    }

    /// Reviews one message to an audience in `regions`; see [`review_in_regions`].
    pub fn review_in_regions(&self, request: &ReviewRequest, regions: &[String]) -> Verdict {
        rules::review_in_regions(self, request, regions)
    }
}
