//! Send lists: which members of an audience segment one day's message may go to, each checked
//! against their own consent, and which variant each gets.
//!
//! An audience with no consent record of its own (anything but the built-in market's simulated
//! sign-up) is reviewed without the rules that read consent ([`super::ReviewRequest::per_recipient`]);
//! those rules run here instead, once per member, when the day's send list is drawn. A member is
//! a subject whose record in force for the channel (or a sibling channel, KR-OPTIN's
//! `channel_groups`) names the segment. A member is left out when their record is withdrawn
//! (whatever grace a rule allows: a person who said stop gets nothing more), or when any rule that
//! reads consent blocks the send for them: no opt-in, a stale re-confirmation, no night consent
//! for a send at night, no GDPR consent. Pure: the send time comes in with the request.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ledger::{ConsentLedger, consent_for};
use super::message::{Jurisdiction, MessageChannel};
use super::playbook::CompliancePlaybook;
use super::rules::recipient_findings;
use super::verdict::Verdict;

/// Why a member of the segment was left out, for the rule that left them out.
pub const WITHDRAWN: &str = "withdrawn";

/// One variant's part of the day: its spend, in the campaign's currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendLine {
    pub variant: String,
    pub spend: f64,
}

/// One message to one person, named by pseudonym.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub segment: String,
    pub variant: String,
    /// The subject's pseudonym (what `POST /v1/consents` answered for them).
    pub subject: String,
}

/// A drawn send list: who gets which variant, and how many members were left out, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SendList {
    /// When the day's message goes out (what each member's consent was checked at).
    pub send_at: Option<DateTime<FixedOffset>>,
    pub recipients: Vec<Recipient>,
    /// Members eligible but over what the spend buys at the send price.
    pub over_budget: usize,
    /// Rule id (or [`WITHDRAWN`]) → members it left out.
    pub excluded: BTreeMap<String, usize>,
}

/// What a send list is drawn for.
pub struct Audience<'a> {
    pub segment: &'a str,
    pub channel: MessageChannel,
    pub send_at: DateTime<FixedOffset>,
    pub jurisdictions: &'a [Jurisdiction],
    /// The price of one message, in the campaign's currency; `None`: every eligible member gets
    /// the day's message.
    pub price: Option<f64>,
    /// What orders the members, so each day reaches a different part of a segment the spend
    /// cannot cover whole (the order's key).
    pub seed: &'a str,
}

/// The members of `audience.segment` who may get the message, split between the `lines` in
/// proportion to their spend: each line gets at most `spend / price` members (all of them, pooled
/// by spend share, without a price).
pub fn draw_send_list(
    ledger: &ConsentLedger,
    playbook: &CompliancePlaybook,
    audience: &Audience<'_>,
    lines: &[SendLine],
) -> SendList {
    let groups = &playbook.rules.opt_in.channel_groups;
    let at = audience.send_at.with_timezone(&Utc);
    let mut list = SendList {
        send_at: Some(audience.send_at),
        ..SendList::default()
    };
    let mut eligible = Vec::new();
    let mut subjects: Vec<&str> = ledger.keys().map(|(s, _)| s.as_str()).collect();
    subjects.dedup();
    for subject in subjects {
        let Some(record) = consent_for(ledger, subject, audience.channel, groups) else {
            continue;
        };
        if !record.segments.iter().any(|s| s == audience.segment) {
            continue;
        }
        let why = if record.is_withdrawn(at) {
            Some(WITHDRAWN.to_owned())
        } else {
            let findings = recipient_findings(
                playbook,
                audience.channel,
                audience.send_at,
                Some(record),
                audience.jurisdictions,
            );
            let first_block = findings
                .iter()
                .find(|f| f.is_blocking())
                .map(|f| f.rule_id.clone());
            let verdict = Verdict::from_findings(findings, &playbook.risk);
            first_block.or_else(|| (!verdict.approved).then(|| "risk".to_owned()))
        };
        match why {
            Some(rule) => *list.excluded.entry(rule).or_default() += 1,
            None => eligible.push(subject.to_owned()),
        }
    }
    // A stable order of its own per seed, not the pseudonyms' (which would always favour the
    // same members).
    eligible.sort_by_cached_key(|s| rank(audience.seed, s));
    let quotas = quotas(lines, eligible.len(), audience.price);
    let mut members = eligible.into_iter();
    for (line, quota) in lines.iter().zip(quotas) {
        for subject in members.by_ref().take(quota) {
            list.recipients.push(Recipient {
                segment: audience.segment.to_owned(),
                variant: line.variant.clone(),
                subject,
            });
        }
    }
    list.over_budget = members.count();
    list
}

fn rank(seed: &str, subject: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(seed.as_bytes());
    hash.update([0xff]);
    hash.update(subject.as_bytes());
    hash.finalize().into()
}

/// Members per line: what its spend buys at `price`, or its spend share of `members` without a
/// price; never more than there are members, in line order.
fn quotas(lines: &[SendLine], members: usize, price: Option<f64>) -> Vec<usize> {
    let spend = |l: &SendLine| {
        if l.spend.is_finite() && l.spend > 0.0 {
            l.spend
        } else {
            0.0
        }
    };
    let total: f64 = lines.iter().map(spend).sum();
    let mut left = members;
    let mut quotas = Vec::with_capacity(lines.len());
    let mut share_so_far = 0.0;
    let mut given = 0usize;
    for line in lines {
        let want = match price.filter(|p| p.is_finite() && *p > 0.0) {
            Some(price) => (spend(line) / price).floor(),
            // Cumulative rounding, so the shares add up to every member.
            None if total > 0.0 => {
                share_so_far += spend(line);
                ((share_so_far / total) * members as f64).round() - given as f64
            }
            None => 0.0,
        };
        let quota = if want.is_finite() && want > 0.0 {
            (want as usize).min(left)
        } else {
            0
        };
        left -= quota;
        given += quota;
        quotas.push(quota);
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compliance::{ConsentRecord, ledger_of};

    fn playbook() -> CompliancePlaybook {
        CompliancePlaybook::embedded().unwrap()
    }

    fn grant(subject: &str, segments: &[&str]) -> ConsentRecord {
        ConsentRecord {
            granted_at: Some("2026-03-01T09:00:00Z".parse().unwrap()),
            source: Some("web_form".to_owned()),
            jurisdiction: Some(Jurisdiction::Kr),
            segments: segments.iter().map(|s| s.to_string()).collect(),
            ..ConsentRecord::new(subject, MessageChannel::Sms, "marketing")
        }
    }

    fn audience<'a>(send_at: &str, price: Option<f64>, seed: &'a str) -> Audience<'a> {
        Audience {
            segment: "students",
            channel: MessageChannel::Sms,
            send_at: DateTime::parse_from_rfc3339(send_at).unwrap(),
            jurisdictions: &[Jurisdiction::Kr],
            price,
            seed,
        }
    }

    fn lines(spends: &[f64]) -> Vec<SendLine> {
        spends
            .iter()
            .enumerate()
            .map(|(i, &spend)| SendLine {
                variant: format!("v{i}"),
                spend,
            })
            .collect()
    }

    const MORNING: &str = "2026-04-01T10:00:00+09:00";

    #[test]
    fn only_members_whose_own_consent_passes_are_listed() {
        let mut withdrawn = grant("subject:w", &["students"]);
        withdrawn.withdrawn_at = Some("2026-03-20T00:00:00Z".parse().unwrap());
        let mut pushed = grant("subject:p", &["students"]);
        pushed.source = Some("os_push_permission".to_owned());
        let email = ConsentRecord {
            channel: MessageChannel::Email,
            ..grant("subject:e", &["students"])
        };
        let ledger = ledger_of([
            grant("subject:a", &["students"]),
            grant("subject:b", &["students", "alumni"]),
            grant("subject:c", &["alumni"]),
            grant("kr_spring/students", &[]),
            withdrawn,
            pushed,
            email,
        ]);
        let list = draw_send_list(
            &ledger,
            &playbook(),
            &audience(MORNING, None, "k"),
            &lines(&[10.0]),
        );
        let mut listed: Vec<&str> = list.recipients.iter().map(|r| r.subject.as_str()).collect();
        listed.sort();
        assert_eq!(listed, ["subject:a", "subject:b"]);
        assert_eq!(list.excluded.get(WITHDRAWN), Some(&1));
        assert_eq!(
            list.excluded.get("KR-OPTIN"),
            Some(&1),
            "{:?}",
            list.excluded
        );
        assert_eq!(list.over_budget, 0);
    }

    #[test]
    fn a_night_send_goes_only_to_members_with_night_consent() {
        let mut night = grant("subject:n", &["students"]);
        night.night_consent = true;
        let ledger = ledger_of([night, grant("subject:d", &["students"])]);
        let list = draw_send_list(
            &ledger,
            &playbook(),
            &audience("2026-04-01T22:00:00+09:00", None, "k"),
            &lines(&[10.0]),
        );
        assert_eq!(list.recipients.len(), 1);
        assert_eq!(list.recipients[0].subject, "subject:n");
        assert_eq!(list.excluded.get("KR-NIGHT"), Some(&1));
    }

    #[test]
    fn the_price_caps_each_line_and_the_seed_rotates_who_is_reached() {
        let members: Vec<ConsentRecord> = (0..40)
            .map(|i| grant(&format!("subject:{i:02}"), &["students"]))
            .collect();
        let ledger = ledger_of(members);
        let draw = |seed: &str| {
            draw_send_list(
                &ledger,
                &playbook(),
                &audience(MORNING, Some(2.0), seed),
                &lines(&[10.0, 21.0]),
            )
        };
        let day = draw("day 1");
        let per_variant =
            |list: &SendList, v: &str| list.recipients.iter().filter(|r| r.variant == v).count();
        assert_eq!((per_variant(&day, "v0"), per_variant(&day, "v1")), (5, 10));
        assert_eq!(day.over_budget, 25);
        assert_eq!(day, draw("day 1"), "the same seed draws the same list");
        assert_ne!(day.recipients, draw("day 2").recipients);
        let mut subjects: Vec<&str> = day.recipients.iter().map(|r| r.subject.as_str()).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), 15, "nobody gets two variants");
    }

    #[test]
    fn without_a_price_every_eligible_member_is_split_by_spend_share() {
        let members: Vec<ConsentRecord> = (0..10)
            .map(|i| grant(&format!("subject:{i}"), &["students"]))
            .collect();
        let ledger = ledger_of(members);
        let list = draw_send_list(
            &ledger,
            &playbook(),
            &audience(MORNING, None, "k"),
            &lines(&[1.0, 1.0, 1.0, f64::NAN]),
        );
        let counts: Vec<usize> = ["v0", "v1", "v2", "v3"]
            .iter()
            .map(|v| list.recipients.iter().filter(|r| r.variant == *v).count())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 10);
        assert!(
            counts[..3].iter().all(|&c| (3..=4).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(counts[3], 0, "a line without a sane spend gets nobody");
    }
}
