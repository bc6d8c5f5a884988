//! The byte layout of record keys and of the pieces index keys are built from.
//!
//! A record lives in the `records` tree under `tag | id` (tag `d` for a decision, `o` for an
//! outcome; ids are 16 bytes big-endian: uuid v7, or a stable uuid derived from a campaign step, so
//! the key says nothing about time and point lookups need nothing but the id). Names in index keys
//! are length-prefixed (u16 big-endian), which keeps composite keys unambiguous; times are stored so
//! that byte order is time order. The index layout itself is in `postings`. This file only builds
//! and parses bytes: it must never touch sled.

use chrono::{DateTime, Utc};

/// The tag byte of a decision's record key.
pub const DECISION_TAG: u8 = b'd';
/// The tag byte of an outcome's record key.
pub const OUTCOME_TAG: u8 = b'o';
/// `tag | uuid`.
pub const RECORD_KEY_LEN: usize = 17;
/// The longest tenant, campaign or agent name that can be stored.
pub const MAX_NAME_BYTES: usize = 1024;

/// `tag | id`.
pub fn record_key(tag: u8, id: &[u8; 16]) -> [u8; RECORD_KEY_LEN] {
    let mut key = [0u8; RECORD_KEY_LEN];
    key[0] = tag;
    key[1..].copy_from_slice(id);
    key
}

/// Microseconds since the epoch with the sign bit flipped, so that byte order is time order,
/// including before 1970.
pub fn time_bytes(at: &DateTime<Utc>) -> [u8; 8] {
    ((at.timestamp_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

/// Appends a length-prefixed name. The caller has checked the length against [`MAX_NAME_BYTES`].
pub fn push_name(key: &mut Vec<u8>, name: &str) {
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(name.as_bytes());
}

/// The smallest key greater than every key starting with `prefix`; `None` when there is none.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A record key for people: `decision/<uuid>`, `outcome/<uuid>`, or hex when it is not one of ours.
pub fn display_key(key: &[u8]) -> String {
    let kind = match key.first() {
        Some(&DECISION_TAG) => "decision",
        Some(&OUTCOME_TAG) => "outcome",
        _ => "",
    };
    match (
        kind,
        key.get(1..).and_then(|id| uuid::Uuid::from_slice(id).ok()),
    ) {
        ("", _) | (_, None) => key.iter().map(|b| format!("{b:02x}")).collect(),
        (kind, Some(id)) if key.len() == RECORD_KEY_LEN => format!("{kind}/{id}"),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_bytes_sort_like_time() {
        let times = [
            Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 1).unwrap(),
        ];
        for pair in times.windows(2) {
            assert!(time_bytes(&pair[0]) < time_bytes(&pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn names_cannot_run_into_each_other() {
        let mut a = Vec::new();
        push_name(&mut a, "ab");
        push_name(&mut a, "c");
        let mut b = Vec::new();
        push_name(&mut b, "a");
        push_name(&mut b, "bc");
        assert_ne!(a, b);
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
    }

    #[test]
    fn record_keys_display_readably() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            display_key(&record_key(DECISION_TAG, id.as_bytes())),
            format!("decision/{id}")
        );
        assert_eq!(display_key(&[1, 2]), "0102");
    }
}
