//! A consent as it arrives from outside (`POST /v1/consents`, `campaignd consents import`): the
//! item's form, every check it must pass before it may enter the ledger, and the keyed pseudonym
//! its subject is looked up by.
//!
//! The subject arrives in the clear (a phone number, an address, a customer id) and never goes
//! further than this module's [`lookup_key`]: the ledger and every decision hold only a
//! pseudonym. A phone number written `010-1234-5678` and `01012345678`, or an address in another
//! case, is the same person, so the subject is normalized before it is keyed. Pure: the time the
//! item is received at comes in as an argument.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::consent::ConsentRecord;
use super::message::{Jurisdiction, MessageChannel};

/// The longest subject accepted, in characters (an email address is at most 320).
pub const MAX_SUBJECT_CHARS: usize = 320;
/// The longest purpose or source accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// How far past the time it is received an item's times may be (clocks of other systems drift).
pub const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// One consent event as a client sends it: a grant, a re-confirmation or (with `withdrawn_at`) a
/// withdrawal. Its fields are the [`ConsentRecord`]'s, with the subject in the clear.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentItem {
    pub subject: String,
    pub channel: MessageChannel,
    pub purpose: String,
    #[serde(default)]
    pub granted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub text_hash: Option<String>,
    #[serde(default)]
    pub night_consent: bool,
    #[serde(default)]
    pub withdrawn_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_reconfirmed_at: Option<DateTime<Utc>>,
    pub jurisdiction: Jurisdiction,
    #[serde(default)]
    pub existing_transaction_at: Option<DateTime<Utc>>,
    /// The audience segments the subject belongs to (see [`ConsentRecord::segments`]).
    #[serde(default)]
    pub segments: Vec<String>,
}

/// The most segments one item may name.
pub const MAX_SEGMENTS: usize = 32;

impl ConsentItem {
    /// Every problem with the item, each naming its field; empty when it may be recorded.
    /// `received_at` bounds its times: consent is not given in the future.
    pub fn problems(&self, received_at: DateTime<Utc>) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(why) = normalize_subject(&self.subject) {
            problems.push(format!("field `subject`: {why}"));
        }
        label("purpose", Some(&self.purpose), &mut problems);
        let latest = received_at + CLOCK_SKEW;
        let times = [
            ("granted_at", self.granted_at),
            ("withdrawn_at", self.withdrawn_at),
            ("last_reconfirmed_at", self.last_reconfirmed_at),
            ("existing_transaction_at", self.existing_transaction_at),
        ];
        for (field, time) in times {
            if let Some(time) = time.filter(|t| *t > latest) {
                problems.push(format!(
                    "field `{field}`: {time} is after the time the item was received ({received_at})"
                ));
            }
        }
        if self.withdrawn_at.is_none() {
            // A grant must say when and how, or it proves nothing (KR-OPTIN, EU-GDPR-CONSENT).
            if self.granted_at.is_none() {
                problems.push(
                    "field `granted_at`: missing; a grant needs it (a withdrawal sends `withdrawn_at`)"
                        .to_owned(),
                );
            }
            if self.source.is_none() {
                problems.push(
                    "field `source`: missing; a grant needs how consent was given (`web_form`, `paper`, …)"
                        .to_owned(),
                );
            }
        }
        label("source", self.source.as_deref(), &mut problems);
        if let (Some(granted), Some(reconfirmed)) = (self.granted_at, self.last_reconfirmed_at)
            && reconfirmed < granted
        {
            problems.push(format!(
                "field `last_reconfirmed_at`: {reconfirmed} is before `granted_at` ({granted})"
            ));
        }
        if let Some(hash) = &self.text_hash
            && !is_sha256(hash)
        {
            problems.push(format!(
                "field `text_hash`: `{}` is not a SHA-256 of the consent text (64 hex digits, optionally after `sha256:`)",
                shorten(hash)
            ));
        }
        if self.segments.len() > MAX_SEGMENTS {
            problems.push(format!(
                "field `segments`: names {} segments; at most {MAX_SEGMENTS} are accepted",
                self.segments.len()
            ));
        }
        for segment in &self.segments {
            label("segments", Some(segment), &mut problems);
        }
        problems
    }

    /// The record the ledger keeps, under `pseudonym` instead of the subject.
    pub fn into_record(self, pseudonym: String) -> ConsentRecord {
        ConsentRecord {
            subject: pseudonym,
            channel: self.channel,
            purpose: self.purpose.trim().to_owned(),
            granted_at: self.granted_at,
            source: self.source.map(|s| s.trim().to_owned()),
            text_hash: self.text_hash.map(|h| h.trim().to_ascii_lowercase()),
            night_consent: self.night_consent,
            withdrawn_at: self.withdrawn_at,
            last_reconfirmed_at: self.last_reconfirmed_at,
            jurisdiction: Some(self.jurisdiction),
            existing_transaction_at: self.existing_transaction_at,
            segments: normalize_segments(self.segments),
        }
    }
}

/// Trimmed, sorted and without repeats, so the same membership is always the same record.
fn normalize_segments(segments: Vec<String>) -> Vec<String> {
    let mut segments: Vec<String> = segments.into_iter().map(|s| s.trim().to_owned()).collect();
    segments.sort();
    segments.dedup();
    segments
}

fn label(field: &str, value: Option<&str>, problems: &mut Vec<String>) {
    let Some(value) = value else { return };
    let value = value.trim();
    if value.is_empty() {
        problems.push(format!("field `{field}`: is empty"));
    } else if value.chars().count() > MAX_LABEL_CHARS {
        problems.push(format!(
            "field `{field}`: is {} characters long; at most {MAX_LABEL_CHARS} are accepted",
            value.chars().count()
        ));
    } else if value.chars().any(char::is_control) {
        problems.push(format!("field `{field}`: holds a control character"));
    }
}

fn is_sha256(hash: &str) -> bool {
    let hex = hash.trim().strip_prefix("sha256:").unwrap_or(hash.trim());
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// At most 40 characters of a bad value, so an error message stays readable.
fn shorten(value: &str) -> String {
    let mut short: String = value.chars().take(40).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    short
}

/// A subject in its normalized form, the only form it is keyed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    /// See [`normalize_subject`].
    pub fn parse(subject: &str) -> Result<Subject, String> {
        normalize_subject(subject).map(Subject)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The subject as it is keyed: trimmed; an address (with `@`) in lower case; a phone number or
/// id without the spaces, dashes, dots and brackets people write them with. The error says why a
/// subject cannot be one (empty, too long, a control character), never repeating the subject.
pub fn normalize_subject(subject: &str) -> Result<String, String> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err("is empty".to_owned());
    }
    let chars = subject.chars().count();
    if chars > MAX_SUBJECT_CHARS {
        return Err(format!(
            "is {chars} characters long; at most {MAX_SUBJECT_CHARS} are accepted"
        ));
    }
    if subject.chars().any(char::is_control) {
        return Err("holds a control character".to_owned());
    }
    Ok(if subject.contains('@') {
        subject.to_lowercase()
    } else {
        subject
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect()
    })
}

/// The key a subject's pseudonym is filed under: HMAC-SHA256 of the normalized subject with the
/// tenant's secret. Without the secret it cannot be computed from a phone number, and it is never
/// written into a decision.
pub fn lookup_key(secret: &[u8], subject: &Subject) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(subject.as_str().as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn grant() -> ConsentItem {
        serde_json::from_value(serde_json::json!({
            "subject": "010-1234-5678",
            "channel": "sms",
            "purpose": "marketing",
            "granted_at": "2026-03-01T09:00:00Z",
            "source": "web_form",
            "text_hash": "sha256:".to_owned() + &"ab".repeat(32),
            "jurisdiction": "KR"
        }))
        .unwrap()
    }

    const NOW: &str = "2026-04-01T00:00:00Z";

    #[test]
    fn a_complete_grant_has_no_problem() {
        assert!(grant().problems(at(NOW)).is_empty());
    }

    #[test]
    fn a_withdrawal_needs_no_grant_time_or_source() {
        let item = ConsentItem {
            granted_at: None,
            source: None,
            withdrawn_at: Some(at("2026-03-20T00:00:00Z")),
            ..grant()
        };
        assert!(item.problems(at(NOW)).is_empty());
        let record = item.into_record("p".to_owned());
        assert!(record.is_withdrawn(at(NOW)));
        assert_eq!(record.subject, "p");
    }

    #[test]
    fn each_problem_names_its_field() {
        let item = ConsentItem {
            subject: "  ".to_owned(),
            purpose: String::new(),
            granted_at: Some(at("2026-05-01T00:00:00Z")),
            source: None,
            text_hash: Some("not a hash".to_owned()),
            last_reconfirmed_at: Some(at("2026-02-01T00:00:00Z")),
            ..grant()
        };
        let problems = item.problems(at(NOW));
        for field in [
            "subject",
            "purpose",
            "granted_at",
            "source",
            "text_hash",
            "last_reconfirmed_at",
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("field `{field}`"))),
                "{field} in {problems:?}"
            );
        }
    }

    #[test]
    fn a_grant_within_the_clock_skew_is_accepted() {
        let item = ConsentItem {
            granted_at: Some(at(NOW) + TimeDelta::minutes(4)),
            ..grant()
        };
        assert!(item.problems(at(NOW)).is_empty());
    }

    #[test]
    fn unknown_fields_and_channels_are_refused() {
        let mut value = serde_json::to_value(serde_json::json!({
            "subject": "a", "channel": "fax", "purpose": "m", "jurisdiction": "KR"
        }))
        .unwrap();
        assert!(serde_json::from_value::<ConsentItem>(value.clone()).is_err());
        value["channel"] = "sms".into();
        value["phone"] = "x".into();
        assert!(serde_json::from_value::<ConsentItem>(value).is_err());
    }

    #[test]
    fn the_same_person_written_two_ways_is_one_subject() {
        assert_eq!(
            normalize_subject(" 010-1234-5678 ").unwrap(),
            normalize_subject("01012345678").unwrap()
        );
        assert_eq!(
            normalize_subject("Kim@Example.COM").unwrap(),
            "kim@example.com"
        );
        assert!(
            normalize_subject(&"9".repeat(MAX_SUBJECT_CHARS + 1))
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn the_lookup_key_depends_on_the_secret() {
        let subject = Subject::parse("01012345678").unwrap();
        let next = Subject::parse("01012345679").unwrap();
        assert_eq!(lookup_key(b"a", &subject), lookup_key(b"a", &subject));
        assert_ne!(lookup_key(b"a", &subject), lookup_key(b"b", &subject));
        assert_ne!(lookup_key(b"a", &subject), lookup_key(b"a", &next));
    }
}
