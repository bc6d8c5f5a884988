//! Consent to advertising: the record kept per subject and channel, and the rules that read it
//! (KR-OPTIN, KR-RECONFIRM, EU-GDPR-CONSENT).
//!
//! A withdrawal always wins over anything else on the record. Time comes in as the send time;
//! nothing here reads a clock.

use chrono::{DateTime, FixedOffset, Months, Utc};
use serde::{Deserialize, Serialize};

use super::message::{Jurisdiction, MessageChannel};
use super::playbook::{GdprConsentRule, OptInRule, ReconfirmRule};
use super::rules::{GDPR_CONSENT, KR_OPTIN, KR_RECONFIRM};
use super::verdict::{Field, Finding};

/// What a subject agreed to, when, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// Who consented (a customer id, a hashed phone number).
    pub subject: String,
    /// The channel consented to.
    pub channel: MessageChannel,
    /// What for (`marketing`).
    pub purpose: String,
    #[serde(default)]
    pub granted_at: Option<DateTime<Utc>>,
    /// How consent was given (`web_form`, `paper`, `os_push_permission`, `pre_ticked`, …).
    #[serde(default)]
    pub source: Option<String>,
    /// A hash of the consent text shown, so the wording can be proved later.
    #[serde(default)]
    pub text_hash: Option<String>,
    /// A separate prior consent to advertising at night (Korea).
    #[serde(default)]
    pub night_consent: bool,
    #[serde(default)]
    pub withdrawn_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_reconfirmed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub jurisdiction: Option<Jurisdiction>,
    /// The last transaction for the same kind of goods, for Korea's existing-customer exception.
    #[serde(default)]
    pub existing_transaction_at: Option<DateTime<Utc>>,
    /// The audience segments (a campaign file's segment names, tenant-wide) the subject belongs
    /// to: a send list of a segment is drawn from the subjects whose record in force names it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
}

impl ConsentRecord {
    /// A record with only the subject, channel and purpose known.
    pub fn new(
        subject: impl Into<String>,
        channel: MessageChannel,
        purpose: impl Into<String>,
    ) -> Self {
        ConsentRecord {
            subject: subject.into(),
            channel,
            purpose: purpose.into(),
            granted_at: None,
            source: None,
            text_hash: None,
            night_consent: false,
            withdrawn_at: None,
            last_reconfirmed_at: None,
            jurisdiction: None,
            existing_transaction_at: None,
            segments: Vec::new(),
        }
    }

    /// Withdrawn at or before `at`.
    pub fn is_withdrawn(&self, at: DateTime<Utc>) -> bool {
        self.withdrawn_at.is_some_and(|w| w <= at)
    }

    fn covers_channel(&self, channel: MessageChannel, groups: &[Vec<MessageChannel>]) -> bool {
        self.channel == channel
            || groups
                .iter()
                .any(|g| g.contains(&self.channel) && g.contains(&channel))
    }

    fn has_purpose(&self, purposes: &[String]) -> bool {
        purposes
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case(self.purpose.trim()))
    }

    fn invalid_source<'a>(&'a self, invalid: &[String]) -> Option<&'a str> {
        self.source
            .as_deref()
            .filter(|s| invalid.iter().any(|i| i.eq_ignore_ascii_case(s.trim())))
    }
}

fn finding(rule_id: &str, rule_severity: super::verdict::Severity, message: String) -> Finding {
    Finding {
        rule_id: rule_id.to_owned(),
        severity: rule_severity,
        field: Field::Consent,
        span: None,
        message,
        fix: None,
    }
}

/// Why a record does not amount to advertising consent for `channel` at `at`, or `None` when it does.
fn consent_gap(
    record: &ConsentRecord,
    channel: MessageChannel,
    at: DateTime<Utc>,
    rule: &OptInRule,
) -> Option<String> {
    if let Some(source) = record.invalid_source(&rule.invalid_sources) {
        return Some(format!(
            "the consent's source `{source}` is not advertising consent (an OS push permission or a \
             pre-ticked box does not count)"
        ));
    }
    if !record.covers_channel(channel, &rule.channel_groups) {
        return Some(format!(
            "the consent covers {}, not {channel}",
            record.channel
        ));
    }
    if !record.has_purpose(&rule.purposes) {
        return Some(format!(
            "the consent's purpose `{}` is not one of {}",
            record.purpose,
            rule.purposes.join(", ")
        ));
    }
    match record.granted_at {
        None => Some("no time of consent is recorded".to_owned()),
        Some(g) if g > at => Some(format!("consent was granted at {g}, after the send time")),
        Some(_) => None,
    }
}

/// KR-OPTIN and KR-RECONFIRM for one message.
pub fn check_korea(
    consent: Option<&ConsentRecord>,
    channel: MessageChannel,
    send_at: DateTime<FixedOffset>,
    opt_in: Option<&OptInRule>,
    reconfirm: Option<&ReconfirmRule>,
) -> Vec<Finding> {
    let at = send_at.with_timezone(&Utc);
    let mut findings = Vec::new();
    let Some(opt_in) = opt_in else {
        // Without KR-OPTIN the consent is taken as relied on, so that re-confirmation still runs.
        if let (Some(record), Some(rule)) = (consent, reconfirm) {
            findings.extend(reconfirm_gap(record, at, rule));
        }
        return findings;
    };
    let Some(record) = consent else {
        findings.push(finding(
            KR_OPTIN,
            opt_in.severity,
            "no consent record: advertising needs prior opt-in consent or an existing transaction"
                .to_owned(),
        ));
        return findings;
    };
    if let Some(w) = record.withdrawn_at.filter(|&w| w <= at) {
        findings.push(finding(
            KR_OPTIN,
            opt_in.severity,
            format!(
                "consent was withdrawn at {w}; a withdrawal overrides any consent or transaction"
            ),
        ));
        return findings;
    }
    match consent_gap(record, channel, at, opt_in) {
        None => {
            if let Some(rule) = reconfirm {
                findings.extend(reconfirm_gap(record, at, rule));
            }
        }
        Some(gap) => {
            let window = Months::new(opt_in.existing_transaction_months);
            let transaction_ok = record.existing_transaction_at.is_some_and(|t| {
                t <= at && t.checked_add_months(window).is_some_and(|limit| at < limit)
            });
            if !transaction_ok {
                let exception = match record.existing_transaction_at {
                    Some(t) if t <= at => format!(
                        "; the last transaction ({t}) is older than {} months",
                        opt_in.existing_transaction_months
                    ),
                    _ => String::new(),
                };
                findings.push(finding(
                    KR_OPTIN,
                    opt_in.severity,
                    format!("no valid opt-in consent: {gap}{exception}"),
                ));
            }
        }
    }
    findings
}

fn reconfirm_gap(
    record: &ConsentRecord,
    at: DateTime<Utc>,
    rule: &ReconfirmRule,
) -> Option<Finding> {
    let last = match (record.granted_at, record.last_reconfirmed_at) {
        (Some(g), Some(r)) => g.max(r),
        (Some(g), None) => g,
        (None, Some(r)) => r,
        (None, None) => return None,
    };
    let due = last.checked_add_months(Months::new(rule.interval_months))?;
    (at >= due).then(|| {
        finding(
            KR_RECONFIRM,
            rule.severity,
            format!(
                "consent was last given or re-confirmed at {last}; it had to be re-confirmed by {due} \
                 (every {} months)",
                rule.interval_months
            ),
        )
    })
}

/// EU-GDPR-CONSENT for one message: one finding per missing element.
pub fn check_gdpr(
    consent: Option<&ConsentRecord>,
    channel: MessageChannel,
    send_at: DateTime<FixedOffset>,
    rule: &GdprConsentRule,
) -> Vec<Finding> {
    let at = send_at.with_timezone(&Utc);
    let f = |m: String| finding(GDPR_CONSENT, rule.severity, m);
    let Some(record) = consent else {
        return vec![f(
            "no consent record: direct marketing needs recorded consent".to_owned(),
        )];
    };
    if let Some(w) = record.withdrawn_at.filter(|&w| w <= at) {
        return vec![f(format!(
            "consent was withdrawn (or the subject objected) at {w}; direct marketing must stop"
        ))];
    }
    let mut findings = Vec::new();
    if let Some(source) = record.invalid_source(&rule.invalid_sources) {
        findings.push(f(format!(
            "the consent's source `{source}` is not freely given, specific consent"
        )));
    }
    if record.source.as_deref().is_none_or(|s| s.trim().is_empty()) {
        findings.push(f("the record does not say how consent was given".to_owned()));
    }
    match record.granted_at {
        None => findings.push(f(
            "the record does not say when consent was given".to_owned()
        )),
        Some(g) if g > at => findings.push(f(format!(
            "consent was granted at {g}, after the send time"
        ))),
        Some(_) => {}
    }
    if record
        .text_hash
        .as_deref()
        .is_none_or(|h| h.trim().is_empty())
    {
        findings.push(f(
            "the record does not keep the consent text shown (text hash)".to_owned(),
        ));
    }
    if !record.has_purpose(&rule.purposes) {
        findings.push(f(format!(
            "the consent's purpose `{}` is not specific to marketing ({})",
            record.purpose,
            rule.purposes.join(", ")
        )));
    }
    if record.channel != channel {
        findings.push(f(format!(
            "the consent covers {}, not {channel}",
            record.channel
        )));
    }
    findings
}
