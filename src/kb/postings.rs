//! The index layout: which index keys a record has, and how pointers to records are packed into
//! posting lists in the `index` tree.
//!
//! A pointer is `time | tag | id` (25 bytes): where a record sits in time and the key it is stored
//! under. An index key names what a query looks for (`campaign | tenant`, `agent | tenant`,
//! `correlation | tenant`, `decision | tenant`, `minute | tenant`). The `index` tree holds posting
//! lists under `0x01 | index | index key | seq`: the pointers of one index key folded from the
//! in-memory tail (see `tail`) at one time. A query reads a few long lists per key plus the tail.
//! (Keys starting `0x00` held per-batch manifests in earlier builds; none is read, and the repair
//! that follows an unclean stop clears them with the rest of the tree.)
//!
//! Posting lists decode without panicking on any bytes; what does not decode is reported, never
//! trusted. This file builds and parses bytes only: it must never touch sled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::keys::{self, RECORD_KEY_LEN};
use super::record::{Decision, Outcome};

/// `time | tag | id`.
pub(super) const POINTER_LEN: usize = 8 + RECORD_KEY_LEN;

/// A record's place in time and its key in the `records` tree.
pub(super) type Pointer = [u8; POINTER_LEN];

/// The first byte of a posting list's key.
pub(super) const POSTING_PREFIX: u8 = 1;
/// `seq`, the u64 that ends a posting list's key.
const SEQ_LEN: usize = 8;
/// The time index groups records by the minute: one posting entry per minute and tenant, and a
/// time-range query reads at most a minute's pointers beyond each end of its range.
const TIME_BUCKET_MICROS: i64 = 60 * 1_000_000;

/// The indexes, as the byte that follows [`POSTING_PREFIX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Index {
    /// `campaign | tenant`
    Campaign = 1,
    /// `agent | tenant` (decisions only)
    Agent = 2,
    /// `minute | tenant`
    Time = 3,
    /// `correlation id | tenant`
    Correlation = 4,
    /// `decision id | tenant` (outcomes, once per decision they cite)
    Decision = 5,
}

/// Index keys grouped with the pointers filed under each.
pub(super) type Groups = BTreeMap<(Index, Vec<u8>), Vec<Pointer>>;

pub(super) fn pointer(at: &DateTime<Utc>, record_key: &[u8; RECORD_KEY_LEN]) -> Pointer {
    let mut pointer = [0u8; POINTER_LEN];
    pointer[..8].copy_from_slice(&keys::time_bytes(at));
    pointer[8..].copy_from_slice(record_key);
    pointer
}

/// The record key a pointer points to.
pub(super) fn record_key(pointer: &Pointer) -> &[u8] {
    &pointer[8..]
}

/// The time bytes a pointer carries (see [`keys::time_bytes`]).
pub(super) fn time_of(pointer: &Pointer) -> &[u8] {
    &pointer[..8]
}

/// Files one record's pointer under each of its index keys.
pub(super) fn add(groups: &mut Groups, pointer: Pointer, index: Vec<(Index, Vec<u8>)>) {
    for entry in index {
        groups.entry(entry).or_default().push(pointer);
    }
}

/// The index keys of a decision.
pub(super) fn decision_keys(decision: &Decision) -> Vec<(Index, Vec<u8>)> {
    let tenant = decision.tenant.as_str();
    let mut index = Vec::with_capacity(4);
    if let Some(campaign) = &decision.campaign {
        index.push((Index::Campaign, named(campaign.as_str(), tenant)));
    }
    index.push((Index::Agent, named(decision.agent.as_str(), tenant)));
    index.push((Index::Time, time_key(&decision.decided_at, tenant)));
    index.push((
        Index::Correlation,
        id_key(decision.correlation_id.as_bytes(), tenant),
    ));
    index
}

/// The index keys of an outcome.
pub(super) fn outcome_keys(outcome: &Outcome) -> Vec<(Index, Vec<u8>)> {
    let tenant = outcome.tenant.as_str();
    let mut index = Vec::with_capacity(3 + outcome.decisions.len());
    if let Some(campaign) = &outcome.campaign {
        index.push((Index::Campaign, named(campaign.as_str(), tenant)));
    }
    index.push((Index::Time, time_key(&outcome.observed_at, tenant)));
    if let Some(correlation) = &outcome.correlation_id {
        index.push((Index::Correlation, id_key(correlation.as_bytes(), tenant)));
    }
    for decision in &outcome.decisions {
        index.push((Index::Decision, id_key(decision.0.as_bytes(), tenant)));
    }
    index.sort();
    index.dedup();
    index
}

/// `name | tenant`, both length-prefixed.
pub(super) fn named(name: &str, tenant: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + name.len() + tenant.len());
    keys::push_name(&mut key, name);
    keys::push_name(&mut key, tenant);
    key
}

/// `id | tenant`.
pub(super) fn id_key(id: &[u8; 16], tenant: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(18 + tenant.len());
    key.extend_from_slice(id);
    keys::push_name(&mut key, tenant);
    key
}

/// `minute | tenant`: the minute first, so that one range covers a time window for every tenant.
pub(super) fn time_key(at: &DateTime<Utc>, tenant: &str) -> Vec<u8> {
    let mut key = minute_bytes(at).to_vec();
    keys::push_name(&mut key, tenant);
    key
}

/// The time bytes of the start of the minute holding `at`.
pub(super) fn minute_bytes(at: &DateTime<Utc>) -> [u8; 8] {
    let micros = at.timestamp_micros();
    let start = micros - micros.rem_euclid(TIME_BUCKET_MICROS);
    ((start as u64) ^ (1 << 63)).to_be_bytes()
}

/// The tenant part of a time index key (`minute | tenant`), length prefix included.
pub(super) fn time_key_tenant(key: &[u8]) -> Option<&[u8]> {
    key.get(8..)
}

/// A posting list whose length is not a whole number of pointers: it is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes of pointers is not a multiple of {POINTER_LEN}")]
pub(super) struct MisalignedPostings {
    pub len: usize,
}

/// The pointers packed in a posting list.
pub(super) fn decode_pointers(
    bytes: &[u8],
) -> Result<impl Iterator<Item = Pointer> + '_, MisalignedPostings> {
    if !bytes.len().is_multiple_of(POINTER_LEN) {
        return Err(MisalignedPostings { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(POINTER_LEN)
        .filter_map(|chunk| Pointer::try_from(chunk).ok()))
}

pub(super) fn encode_pointers(pointers: &[Pointer]) -> Vec<u8> {
    pointers.concat()
}

/// `0x01 | index | index key | seq`.
pub(super) fn posting_key(which: Index, key: &[u8], seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key.len() + SEQ_LEN);
    out.push(POSTING_PREFIX);
    out.push(which as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// The index key inside a posting list's key, if it is one of `which`.
pub(super) fn posting_index_key(which: Index, posting_key: &[u8]) -> Option<&[u8]> {
    match posting_key {
        [POSTING_PREFIX, byte, rest @ ..] if *byte == which as u8 => {
            rest.get(..rest.len().checked_sub(SEQ_LEN)?)
        }
        _ => None,
    }
}

/// The sled key range holding the posting lists of `which` whose index keys lie in `[low, high)`
/// (`high = None`: no upper bound).
pub(super) fn posting_range(which: Index, low: &[u8], high: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let start = [&[POSTING_PREFIX, which as u8][..], low].concat();
    let end = match high {
        Some(high) => [&[POSTING_PREFIX, which as u8][..], high].concat(),
        None => vec![POSTING_PREFIX, which as u8 + 1],
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn some_pointer(n: u8) -> Pointer {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 23, 13, 30, n.into())
            .unwrap();
        pointer(&at, &keys::record_key(keys::DECISION_TAG, &[n; 16]))
    }

    #[test]
    fn pointers_decode_to_what_was_encoded() {
        let pointers = vec![some_pointer(1), some_pointer(2)];
        let bytes = encode_pointers(&pointers);
        let decoded: Vec<Pointer> = decode_pointers(&bytes).unwrap().collect();
        assert_eq!(decoded, pointers);
        for cut in 1..bytes.len() {
            // A cut that is not a whole number of pointers is an error; never a panic.
            if cut % POINTER_LEN != 0 {
                let err = decode_pointers(&bytes[..cut]).err();
                assert_eq!(err, Some(MisalignedPostings { len: cut }));
            }
        }
    }

    #[test]
    fn posting_keys_fall_inside_their_ranges() {
        let key = named("spring", "acme");
        let posting = posting_key(Index::Campaign, &key, 7);
        assert_eq!(posting_index_key(Index::Campaign, &posting), Some(&key[..]));
        assert_eq!(posting_index_key(Index::Agent, &posting), None);
        let mut prefix = Vec::new();
        keys::push_name(&mut prefix, "spring");
        let high = keys::prefix_end(&prefix).unwrap();
        let (start, end) = posting_range(Index::Campaign, &prefix, Some(&high));
        assert!(start <= posting && posting < end);
        let other = posting_key(Index::Campaign, &named("springs", "acme"), 7);
        assert!(!(start <= other && other < end));
        let (start, end) = posting_range(Index::Campaign, &[], None);
        assert!(start <= posting && posting < end);
        assert!(posting_index_key(Index::Campaign, &[POSTING_PREFIX, 1, 0]).is_none());
    }

    #[test]
    fn minutes_sort_like_time_and_hold_their_tenant() {
        let early = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 30).unwrap();
        let late = Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 59).unwrap();
        assert!(minute_bytes(&early) < minute_bytes(&late));
        assert_eq!(
            minute_bytes(&late),
            minute_bytes(&Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 0).unwrap())
        );
        assert_eq!(
            minute_bytes(&early),
            keys::time_bytes(&Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 0).unwrap())
        );
        let mut tenant = Vec::new();
        keys::push_name(&mut tenant, "acme");
        assert_eq!(time_key_tenant(&time_key(&late, "acme")), Some(&tenant[..]));
    }
}
