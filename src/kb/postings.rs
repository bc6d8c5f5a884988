//! The index layout: which index keys a record has, and how pointers to records are packed into
//! batch manifests and posting lists in the `index` tree.
//!
//! A pointer is `time | tag | id` (25 bytes): where a record sits in time and the key it is stored
//! under. An index key names what a query looks for (`campaign | tenant`, `agent | tenant`,
//! `correlation | tenant`, `decision | tenant`, `minute | tenant`). The `index` tree holds two kinds
//! of entry, told apart by their first byte:
//!
//! - `0x00 | seq`: a manifest, written with each group commit (one per 32 records at most): every
//!   index key of that batch with the pointers of the batch's records under it. One insert per batch,
//!   however many keys the batch touches, so indexing costs the writer almost nothing per record.
//! - `0x01 | index | index key | seq`: a posting list, the pointers of one index key over many
//!   batches. The writer folds manifests into posting lists every few thousand records, so a query
//!   reads a few long lists plus the short tail of manifests not yet folded.
//!
//! Both decode without panicking on any bytes; what does not decode is reported, never trusted.
//! This file builds and parses bytes only: it must never touch sled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::keys::{self, RECORD_KEY_LEN};
use super::record::{Decision, Outcome};

/// `time | tag | id`.
pub(super) const POINTER_LEN: usize = 8 + RECORD_KEY_LEN;

/// A record's place in time and its key in the `records` tree.
pub(super) type Pointer = [u8; POINTER_LEN];

/// The first byte of a manifest's key.
pub(super) const MANIFEST_PREFIX: u8 = 0;
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

impl Index {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Index::Campaign),
            2 => Some(Index::Agent),
            3 => Some(Index::Time),
            4 => Some(Index::Correlation),
            5 => Some(Index::Decision),
            _ => None,
        }
    }
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

pub(super) fn manifest_key(seq: u64) -> [u8; 9] {
    let mut key = [MANIFEST_PREFIX; 9];
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `index | count of keys`, then for each key: `index byte | key length u32 | key | pointer count
/// u32 | pointers`.
pub(super) fn encode_manifest(groups: &Groups) -> Vec<u8> {
    let size: usize = groups
        .iter()
        .map(|((_, key), pointers)| 9 + key.len() + pointers.len() * POINTER_LEN)
        .sum();
    let mut out = Vec::with_capacity(size);
    for ((which, key), pointers) in groups {
        out.push(*which as u8);
        out.extend_from_slice(&len_u32(key.len()).to_be_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&len_u32(pointers.len()).to_be_bytes());
        for pointer in pointers {
            out.extend_from_slice(pointer);
        }
    }
    out
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One key of a decoded manifest.
pub(super) struct ManifestGroup<'a> {
    pub index: Index,
    pub key: &'a [u8],
    pub pointers: &'a [u8],
}

/// Decodes a manifest written by [`encode_manifest`]; any bytes that do not parse are an error
/// naming the offset, never a panic.
pub(super) fn decode_manifest(bytes: &[u8]) -> Result<Vec<ManifestGroup<'_>>, String> {
    let mut groups = Vec::new();
    let mut rest = bytes;
    while let Some((&which, after)) = rest.split_first() {
        let at = bytes.len() - rest.len();
        let index =
            Index::from_byte(which).ok_or_else(|| format!("unknown index {which} at byte {at}"))?;
        let (key, after) =
            take_counted(after, 1).ok_or_else(|| format!("key cut off at byte {at}"))?;
        let (pointers, after) = take_counted(after, POINTER_LEN)
            .ok_or_else(|| format!("pointers cut off at byte {at}"))?;
        groups.push(ManifestGroup {
            index,
            key,
            pointers,
        });
        rest = after;
    }
    Ok(groups)
}

/// Splits `count u32 | count × unit bytes` off the front of `bytes`.
fn take_counted(bytes: &[u8], unit: usize) -> Option<(&[u8], &[u8])> {
    let count: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(count))
        .ok()?
        .checked_mul(unit)?;
    let body = bytes.get(4..)?;
    Some((body.get(..len)?, body.get(len..)?))
}

/// The pointers packed in a posting list or a manifest group.
pub(super) fn decode_pointers(bytes: &[u8]) -> Result<impl Iterator<Item = Pointer> + '_, String> {
    if !bytes.len().is_multiple_of(POINTER_LEN) {
        return Err(format!(
            "{} bytes of pointers is not a multiple of {POINTER_LEN}",
            bytes.len()
        ));
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
    fn a_manifest_decodes_to_what_was_encoded() {
        let mut groups = Groups::new();
        add(
            &mut groups,
            some_pointer(1),
            vec![
                (Index::Campaign, named("spring", "acme")),
                (Index::Agent, named("strategy", "acme")),
            ],
        );
        add(
            &mut groups,
            some_pointer(2),
            vec![(Index::Campaign, named("spring", "acme"))],
        );
        let bytes = encode_manifest(&groups);
        let decoded = decode_manifest(&bytes).unwrap();
        assert_eq!(decoded.len(), 2);
        let campaign = &decoded[0];
        assert_eq!(campaign.index, Index::Campaign);
        assert_eq!(campaign.key, named("spring", "acme"));
        let pointers: Vec<Pointer> = decode_pointers(campaign.pointers).unwrap().collect();
        assert_eq!(pointers, vec![some_pointer(1), some_pointer(2)]);
        for cut in 0..bytes.len() {
            // Any prefix either decodes to fewer groups or is an error; never a panic.
            let _ = decode_manifest(&bytes[..cut]);
        }
        assert!(decode_manifest(&[9, 0, 0, 0, 0]).is_err());
        assert!(decode_pointers(&[0; 24]).is_err());
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
