//! The byte layout of every key the knowledge base writes, in one place.
//!
//! A record lives in the `records` tree under `tag | id` (tag `d` for a decision, `o` for an
//! outcome; ids are uuid v7, 16 bytes big-endian). Each index is its own tree whose keys end with
//! `time | tag | id`, so an index scan yields record keys in time order without touching a record.
//! Names are length-prefixed (u16 big-endian), which keeps composite keys unambiguous; the
//! tenant is always part of the key, so a tenant's scan can never reach another tenant's entries.
//! This file only builds and parses bytes: it must never touch sled.

use chrono::{DateTime, Utc};

/// The tag byte of a decision's record key.
pub const DECISION_TAG: u8 = b'd';
/// The tag byte of an outcome's record key.
pub const OUTCOME_TAG: u8 = b'o';
/// `tag | uuid`.
pub const RECORD_KEY_LEN: usize = 17;
/// `time | tag | uuid`: the suffix every index key ends with.
pub const SUFFIX_LEN: usize = 8 + RECORD_KEY_LEN;
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

/// Appends `time | tag | id`.
pub fn push_suffix(key: &mut Vec<u8>, at: &DateTime<Utc>, record_key: &[u8; RECORD_KEY_LEN]) {
    key.extend_from_slice(&time_bytes(at));
    key.extend_from_slice(record_key);
}

/// The record key an index key points to (its last 17 bytes).
pub fn record_key_of(index_key: &[u8]) -> Option<&[u8]> {
    index_key
        .len()
        .checked_sub(RECORD_KEY_LEN)
        .and_then(|start| index_key.get(start..))
}

/// The first length-prefixed name at the start of `key`, with its prefix: `(whole prefix, name)`.
pub fn leading_name(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let len_bytes: [u8; 2] = key.get(..2)?.try_into().ok()?;
    let end = 2 + usize::from(u16::from_be_bytes(len_bytes));
    Some((key.get(..end)?, key.get(2..end)?))
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
        assert_eq!(leading_name(&a), Some((&a[..4], &b"ab"[..])));
        assert_eq!(leading_name(&[0, 5, 1]), None);
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
        assert_eq!(record_key_of(&[1, 2]), None);
    }
}
