//! `kb export --salvage`: every record that can still be read out of a damaged knowledge base.
//!
//! A sled tree is a B-tree of pages; a page that is lost (a removed or damaged blob file, a
//! corrupt stretch of the log) makes every iteration that reaches it fail, so a plain export stops
//! at the first such page. Salvage treats the key space as numbers: after a failure it searches
//! (galloping, then bisecting) for the smallest key from which sled reads again, reports the key
//! range it had to skip, and goes on from there. The posting lists are then scanned the same way,
//! and every record they point to inside a skipped range is looked up on its own: a readable
//! record the range scan stepped over is still exported. Nothing is written to the directory
//! beyond what sled itself does when it opens it (keep a copy before salvaging). Every sled call
//! runs under `guard`, since sled may panic on damaged pages.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::error::KbError;
use super::guard;
use super::keys::{self, RECORD_KEY_LEN};
use super::postings;
use super::query::{CorruptRecord, Scope};
use super::store::{decode_record, open_sled};

/// What a salvage wrote and what it could not read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SalvageSummary {
    /// Records written, one JSON object per line.
    pub records: usize,
    /// Records whose bytes were read but do not decode.
    pub skipped: Vec<CorruptRecord>,
    /// Key ranges of the records tree sled could not read; the records in them (if any) are lost.
    pub unreadable: Vec<UnreadableRange>,
    /// Records found through the posting lists inside an unreadable range.
    pub recovered_through_index: usize,
}

/// Keys `from` (inclusive) to `to` (exclusive; `None`: to the end) that could not be read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnreadableRange {
    pub from: String,
    pub to: Option<String>,
    pub reason: String,
}

/// Writes every readable record of the knowledge base at `path` visible in `scope` as JSON Lines,
/// in the export's format, and reports what it skipped.
pub fn salvage_jsonl(
    path: &Path,
    scope: &Scope,
    mut out: impl Write,
) -> Result<SalvageSummary, KbError> {
    let (_db, trees) = open_sled(path, 64 * 1024 * 1024)?;
    let mut summary = SalvageSummary::default();
    let mut gaps: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut write = |key: &[u8], value: &[u8], summary: &mut SalvageSummary| {
        match decode_record(key, value) {
            Ok(record) if scope.admits(record.tenant()) => {
                serde_json::to_writer(&mut out, &record).map_err(|e| KbError::Export(e.into()))?;
                out.write_all(b"\n").map_err(KbError::Export)?;
                summary.records += 1;
            }
            Ok(_) => {}
            Err(corrupt) => summary.skipped.push(corrupt),
        }
        Ok::<(), KbError>(())
    };
    let mut failed = None;
    scan(&trees.records, RECORD_KEY_LEN, |entry| match entry {
        Entry::Item(key, value) => {
            if let Err(err) = write(&key, &value, &mut summary) {
                failed = Some(err);
                return false;
            }
            true
        }
        Entry::Gap { from, to, reason } => {
            summary.unreadable.push(UnreadableRange {
                from: keys::display_key(&from),
                to: to.as_deref().map(keys::display_key),
                reason,
            });
            gaps.push((from, to));
            true
        }
    });
    if let Some(err) = failed {
        return Err(err);
    }
    if gaps.is_empty() {
        out.flush().map_err(KbError::Export)?;
        return Ok(summary);
    }
    // The range scan may have stepped over readable pages between two lost ones: look up every
    // record the posting lists know inside a gap.
    let in_gap = |key: &[u8]| {
        gaps.iter()
            .any(|(from, to)| key >= &from[..] && to.as_deref().is_none_or(|to| key < to))
    };
    let mut wanted = Vec::new();
    let mut seen = HashSet::new();
    scan(&trees.index, 64, |entry| {
        if let Entry::Item(_, value) = entry
            && let Ok(pointers) = postings::decode_pointers(&value)
        {
            for pointer in pointers {
                let key = postings::record_key(&pointer).to_vec();
                if in_gap(&key) && seen.insert(key.clone()) {
                    wanted.push(key);
                }
            }
        }
        true
    });
    wanted.sort_unstable();
    for key in wanted {
        if let Ok(Ok(Some(value))) = guard::unpanicked(|| trees.records.get(&key)) {
            write(&key, &value, &mut summary)?;
            summary.recovered_through_index += 1;
        }
    }
    out.flush().map_err(KbError::Export)?;
    Ok(summary)
}

enum Entry {
    Item(sled::IVec, sled::IVec),
    Gap {
        from: Vec<u8>,
        to: Option<Vec<u8>>,
        reason: String,
    },
}

/// Visits every readable entry of `tree` in key order, and every key range it cannot read, until
/// `visit` answers `false`. Positions in the key space are `width`-byte big-endian numbers.
fn scan(tree: &sled::Tree, width: usize, mut visit: impl FnMut(Entry) -> bool) {
    let mut start: Vec<u8> = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    loop {
        let mut iter = tree.range(start.clone()..);
        let reason = loop {
            match guard::unpanicked(|| iter.next()) {
                Ok(None) => return,
                Ok(Some(Ok((key, value)))) => {
                    // The smallest key after this one.
                    start = key.to_vec();
                    start.push(0);
                    last = Some(key.to_vec());
                    if !visit(Entry::Item(key, value)) {
                        return;
                    }
                }
                Ok(Some(Err(err))) => break err.to_string(),
                Err(panic) => break panic,
            }
        };
        // The first position after the last key read (a key longer than `width` is cut, so the
        // positions after it that share its first `width` bytes are given up with the gap).
        let from = match &last {
            None => vec![0; width],
            Some(key) => match add_power_of_two(&position(key, width), 0) {
                Some(from) => from,
                None => return,
            },
        };
        let next = next_readable(tree, &from);
        let more = visit(Entry::Gap {
            from: from.clone(),
            to: next.clone(),
            reason,
        });
        match next {
            Some(next) if more => start = next,
            _ => return,
        }
    }
}

/// Whether sled can read from `start` on (it may find nothing: the end is readable too).
fn readable(tree: &sled::Tree, start: &[u8]) -> bool {
    matches!(
        guard::unpanicked(|| tree.range(start..).next()),
        Ok(None | Some(Ok(_)))
    )
}

/// The smallest position after `from` (which cannot be read) from which sled reads again, or
/// `None` when nothing after it can be read. Gallops (from + 1, + 2, + 4, …) to the first readable
/// position, then bisects back to the edge between it and the last unreadable one.
fn next_readable(tree: &sled::Tree, from: &[u8]) -> Option<Vec<u8>> {
    if readable(tree, from) {
        return Some(from.to_vec());
    }
    let mut unreadable = from.to_vec();
    let mut bit = 0;
    let mut readable_at = loop {
        let candidate = add_power_of_two(from, bit)?;
        if readable(tree, &candidate) {
            break candidate;
        }
        unreadable = candidate;
        bit += 1;
    };
    loop {
        let middle = midpoint(&unreadable, &readable_at);
        if middle == unreadable {
            return Some(readable_at);
        }
        if readable(tree, &middle) {
            readable_at = middle;
        } else {
            unreadable = middle;
        }
    }
}

/// `key` as a `width`-byte number: cut or padded with zeros.
fn position(key: &[u8], width: usize) -> Vec<u8> {
    let mut out = key.to_vec();
    out.resize(width, 0);
    out
}

/// `x + 2^bit`, or `None` past the largest `x.len()`-byte number.
fn add_power_of_two(x: &[u8], bit: usize) -> Option<Vec<u8>> {
    let mut out = x.to_vec();
    let mut index = out.len().checked_sub(1 + bit / 8)?;
    let mut carry = 1u16 << (bit % 8);
    loop {
        let sum = u16::from(out[index]) + carry;
        out[index] = (sum & 0xff) as u8;
        carry = sum >> 8;
        if carry == 0 {
            return Some(out);
        }
        index = index.checked_sub(1)?;
    }
}

/// `(a + b) / 2` of two numbers of the same width.
fn midpoint(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut sum = vec![0u16; a.len() + 1];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        sum[i + 1] = s & 0xff;
        carry = s >> 8;
    }
    sum[0] = carry;
    // Shift the (width + 1)-byte sum right by one bit and drop its top byte.
    let mut out = vec![0u8; a.len()];
    for i in 0..a.len() {
        out[i] = (((sum[i] << 8) | sum[i + 1]) >> 1) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_add_and_halve_as_numbers() {
        assert_eq!(add_power_of_two(&[0, 0xff], 0), Some(vec![1, 0]));
        assert_eq!(add_power_of_two(&[0, 0], 9), Some(vec![2, 0]));
        assert_eq!(add_power_of_two(&[0xff, 0xff], 0), None);
        assert_eq!(add_power_of_two(&[0, 0], 16), None);
        assert_eq!(midpoint(&[0, 2], &[0, 4]), vec![0, 3]);
        assert_eq!(midpoint(&[0xff, 0xff], &[0xff, 0xfd]), vec![0xff, 0xfe]);
        assert_eq!(midpoint(&[0, 0xff], &[1, 0x01]), vec![1, 0]);
        assert_eq!(position(b"ab", 4), b"ab\0\0".to_vec());
    }

    #[test]
    fn a_tree_without_damage_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("t").unwrap();
        for n in 0u8..50 {
            tree.insert([n; 3], &[n][..]).unwrap();
        }
        let mut seen = 0;
        scan(&tree, 3, |entry| {
            assert!(matches!(entry, Entry::Item(..)));
            seen += 1;
            true
        });
        assert_eq!(seen, 50);
        // Past the last key everything (nothing) is readable.
        assert_eq!(next_readable(&tree, &[60, 0, 0]), Some(vec![60, 0, 0]));
    }
}
