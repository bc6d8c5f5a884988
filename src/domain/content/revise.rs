//! Revising a variant compliance blocked: apply the fixes compliance suggested, check the fixed
//! creative against its format's limits again, and keep it only if it still fits.
//!
//! A Korean SMS that grew past its 90 bytes (a label or an opt-out line added) is sent as an LMS
//! when it fits one, rather than dropped. A variant without a mechanical fix, or whose fixed text
//! fits no format, is dropped with the reason. A revision never approves anything: the revised
//! variant goes back to compliance.

use chrono::{DateTime, FixedOffset};

use super::Variant;
use crate::domain::channel::{ChannelLimits, Format};
use crate::domain::compliance::{Finding, Message, MessageChannel, Sender, apply_fixes};

/// A variant as compliance reviews it: its text and subject, from `sender`, for a product of
/// `category`. A Korean LMS is reviewed as an LMS; anything else on its campaign channel.
pub fn message_of(variant: &Variant, sender: &Sender, category: &str) -> Message {
    let channel = match variant.format {
        Format::KrLms => MessageChannel::Lms,
        _ => MessageChannel::from(variant.channel),
    };
    let mut message = Message::advert(channel, variant.creative.text.clone());
    message.subject = variant.creative.subject.clone();
    message.sender = sender.clone();
    message.product_category = Some(category.to_owned());
    message
}

/// A blocked variant and what compliance said about it.
#[derive(Clone, Copy, Debug)]
pub struct BlockedVariant<'a> {
    pub variant: &'a Variant,
    /// When it was to be sent.
    pub send_at: DateTime<FixedOffset>,
    pub findings: &'a [Finding],
    pub fixable: bool,
}

/// A revised variant, and its new send time when a fix moved it.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    pub variant: Variant,
    pub send_at: Option<DateTime<FixedOffset>>,
}

/// Why a blocked variant is dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    #[error("blocked by {} with no mechanical fix", .rules.join(", "))]
    NoMechanicalFix {
        /// The blocking findings' rule ids.
        rules: Vec<String>,
    },
    #[error("compliance suggested no fix")]
    NoFixSuggested,
    #[error("the fixed text no longer fits: {}", .violations.join("; "))]
    NoLongerFits {
        /// The broken limits, as they are recorded.
        violations: Vec<String>,
    },
}

/// Applies compliance's fixes to a blocked variant, in the limits of `limits`.
pub fn revise(
    item: &BlockedVariant<'_>,
    sender: &Sender,
    category: &str,
    limits: &ChannelLimits,
) -> Result<Revision, RevisionError> {
    if !item.fixable {
        let rules = item
            .findings
            .iter()
            .filter(|f| f.is_blocking())
            .map(|f| f.rule_id.clone())
            .collect();
        return Err(RevisionError::NoMechanicalFix { rules });
    }
    let message = message_of(item.variant, sender, category);
    let fixed = apply_fixes(&message, item.findings);
    if fixed.applied.is_empty() {
        return Err(RevisionError::NoFixSuggested);
    }
    let mut variant = item.variant.clone();
    variant.creative.text = fixed.message.text;
    if variant.creative.subject.is_some() {
        variant.creative.subject = fixed.message.subject;
    }
    // A Korean SMS that grew past 90 bytes is sent as an LMS.
    let formats: &[Format] = if variant.format == Format::KrSms {
        &[Format::KrSms, Format::KrLms]
    } else {
        std::slice::from_ref(&variant.format)
    };
    let placed = limits.first_fit(formats, &variant.creative);
    if let Some(format) = placed.sent_as {
        variant.format = format;
    }
    let fit = placed.fit().cloned().unwrap_or_default();
    if !placed.fits() {
        let violations = fit.violations.iter().map(|v| format!("{v:?}")).collect();
        return Err(RevisionError::NoLongerFits { violations });
    }
    variant.measures = fit.measures;
    variant.warnings = fit.warnings;
    let send_at = fixed.send_at.filter(|at| *at != item.send_at);
    Ok(Revision { variant, send_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::Channel;
    use crate::domain::channel::Creative;
    use crate::domain::compliance::{Field, Fix, Severity};

    fn variant(format: Format, text: String) -> Variant {
        Variant {
            id: "students/kr_sms/ko/0.0".to_owned(),
            channel: Channel::Sms,
            format,
            segment: "students".to_owned(),
            language: "ko".to_owned(),
            levels: Vec::new(),
            creative: Creative {
                text,
                ..Creative::default()
            },
            measures: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn finding(rule: &str, severity: Severity, fix: Option<Fix>) -> Finding {
        Finding {
            rule_id: rule.to_owned(),
            severity,
            field: Field::Text,
            span: None,
            message: "fix me".to_owned(),
            fix,
        }
    }

    fn label() -> Finding {
        let fix = Fix::PrependLabel {
            field: Field::Text,
            label: "(광고)".to_owned(),
            replace: None,
        };
        finding("KR-AD-LABEL", Severity::Block, Some(fix))
    }

    fn noon() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-12-01T12:00:00+09:00").unwrap()
    }

    fn revise_one(
        v: &Variant,
        findings: &[Finding],
        fixable: bool,
    ) -> Result<Revision, RevisionError> {
        let item = BlockedVariant {
            variant: v,
            send_at: noon(),
            findings,
            fixable,
        };
        revise(
            &item,
            &Sender::default(),
            "general",
            &ChannelLimits::default(),
        )
    }

    #[test]
    fn an_sms_that_still_fits_stays_an_sms() {
        // 42 Hangul syllables are 84 bytes; with the 6-byte label, exactly 90.
        let v = variant(Format::KrSms, "가".repeat(42));
        let revised = revise_one(&v, &[label()], true).unwrap();
        assert_eq!(revised.variant.format, Format::KrSms);
        assert!(revised.variant.creative.text.starts_with("(광고)"));
        assert_eq!(revised.variant.measures[0].value, 90);
        assert_eq!(revised.send_at, None);
    }

    #[test]
    fn an_sms_grown_past_90_bytes_is_sent_as_an_lms() {
        let v = variant(Format::KrSms, "가".repeat(43));
        let revised = revise_one(&v, &[label()], true).unwrap();
        assert_eq!(revised.variant.format, Format::KrLms);
        assert_eq!(revised.variant.measures[0].value, 92);
        assert_eq!(revised.variant.measures[0].max, Some(2000));
        // Reviewed again as what it now is.
        let message = message_of(&revised.variant, &Sender::default(), "general");
        assert_eq!(message.channel, MessageChannel::Lms);
    }

    #[test]
    fn a_text_too_long_even_for_an_lms_is_dropped() {
        let v = variant(Format::KrSms, "가".repeat(998));
        let err = revise_one(&v, &[label()], true).unwrap_err();
        assert!(
            matches!(&err, RevisionError::NoLongerFits { violations } if violations.len() == 1)
        );
        assert!(
            err.to_string()
                .starts_with("the fixed text no longer fits: LimitFinding"),
            "{err}"
        );
    }

    #[test]
    fn without_a_fix_the_variant_is_dropped_with_the_blocking_rules() {
        let v = variant(Format::KrSms, "할인".to_owned());
        let claims = [
            finding("KR-CLAIM", Severity::Block, None),
            finding("KR-TONE", Severity::Low, None),
            finding("KR-HEALTH", Severity::Block, None),
        ];
        let err = revise_one(&v, &claims, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "blocked by KR-CLAIM, KR-HEALTH with no mechanical fix"
        );
        let err = revise_one(&v, &claims, true).unwrap_err();
        assert_eq!(err, RevisionError::NoFixSuggested);
        assert_eq!(err.to_string(), "compliance suggested no fix");
    }

    #[test]
    fn a_moved_send_time_comes_back_and_an_unchanged_one_does_not() {
        let v = variant(Format::KrSms, "(광고) 할인".to_owned());
        let morning = DateTime::parse_from_rfc3339("2026-12-02T08:00:00+09:00").unwrap();
        let later = finding(
            "KR-NIGHT",
            Severity::Block,
            Some(Fix::Reschedule { to: morning }),
        );
        assert_eq!(
            revise_one(&v, &[later], true).unwrap().send_at,
            Some(morning)
        );
        let same = finding(
            "KR-NIGHT",
            Severity::Block,
            Some(Fix::Reschedule { to: noon() }),
        );
        assert_eq!(revise_one(&v, &[same], true).unwrap().send_at, None);
    }

    #[test]
    fn the_message_names_the_sender_the_category_and_the_subject() {
        let mut v = variant(Format::Email, "Spring sale".to_owned());
        v.channel = Channel::Email;
        v.creative.subject = Some("Your spring offer".to_owned());
        let sender = Sender {
            business_name: Some("Acme".to_owned()),
            ..Sender::default()
        };
        let message = message_of(&v, &sender, "health_food");
        assert_eq!(message.channel, MessageChannel::Email);
        assert_eq!(message.subject.as_deref(), Some("Your spring offer"));
        assert_eq!(message.sender, sender);
        assert_eq!(message.product_category.as_deref(), Some("health_food"));
        assert!(message.commercial);
    }
}
