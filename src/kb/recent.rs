//! The recent-keys list: the keys of the records whose index entries may so far live only in the
//! in-memory tail, kept in the sled tree `recent` so that the open after an unclean stop repairs
//! the indexes from those records alone instead of re-reading every record.
//!
//! Each group commit writes, before it inserts its records, one entry per 128 of their keys:
//! `seq (u64, big-endian) → tag | id, tag | id, …`, `seq` counting up across restarts. A fold
//! writes its posting lists, then stores in `meta` the highest `seq` it covers
//! (`recent_folded_through`), then removes the entries up to it; the repair ignores entries at or
//! below that mark. So the list holds at most the keys filed in the tail since the last fold began,
//! plus the few removals a kill can interrupt.
//!
//! Why this is enough: sled 0.34 replays its log at open in order and stops at the first torn or
//! corrupted message, so what survives a kill is a prefix of the writes in log order; a write made
//! after another one returned (on the same thread, or after taking a lock the other released) is
//! later in the log. An entry is written before its records, a fold's posting lists after the
//! records they point to (a fold takes the tail only after the writer filed them) and its mark
//! after its posting lists. Hence every record that survives has its entry, or its posting lists
//! and a mark at or above its entry; and a mark that survives has its posting lists. No
//! `sled::Batch` or transaction is needed (in sled 0.34 both switch every later operation of the
//! process to a global lock).
//!
//! The list is read only when the clean marker says an open by a build that keeps it, not a clean
//! close, was the last to touch the database (see [`MARK_LISTED`]); otherwise, or when an entry or
//! the mark does not parse, the open re-derives every index entry instead.

use super::keys::RECORD_KEY_LEN;

/// The sled tree holding the entries.
pub(super) const TREE: &str = "recent";
/// The `meta` key of the highest entry whose records are known to be in posting lists.
pub(super) const FOLDED_THROUGH_KEY: &[u8] = b"recent_folded_through";
/// The `meta` key that says how the database was last left: [`MARK_CLEAN`], [`MARK_LISTED`], or
/// anything else (builds before this list wrote `0` at open): open by a build that kept no list.
pub(super) const CLEAN_KEY: &[u8] = b"clean_shutdown";
/// What builds before this list wrote at open, and what a full rebuild writes before it clears the
/// index: the list does not cover what the index lacks.
pub(super) const MARK_UNLISTED: u8 = 0;
/// Closed cleanly: every index entry is in posting lists.
pub(super) const MARK_CLEAN: u8 = 1;
/// Open (or stopped uncleanly) by a build that keeps this list, format 1. Builds before it compare
/// the marker with [`MARK_CLEAN`] only, so they take this for an unclean stop and rebuild.
pub(super) const MARK_LISTED: u8 = 2;

/// Keys per entry: 128 keys are 2 176 bytes. sled 0.34 rewrites a whole leaf (up to 16 entries)
/// and moves one above 128 KiB to a blob file, so entries stay small, like posting lists.
const KEYS_PER_ENTRY: usize = 128;
const SEQ_LEN: usize = 8;

/// A list that cannot be trusted for a repair; the open then re-derives every index entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unreadable {
    #[error("a recent-keys entry key is {0} bytes, expected {SEQ_LEN}")]
    EntryKey(usize),
    #[error("recent-keys entry {seq} holds {len} bytes, not a whole number of record keys")]
    EntryValue { seq: u64, len: usize },
    #[error("the recent-keys mark is {0} bytes, expected {SEQ_LEN}")]
    Mark(usize),
}

/// What a repair has to re-file.
#[derive(Debug, Default)]
pub(super) struct Listed {
    /// The keys of the entries above the mark, in the order they were written (possibly repeated:
    /// a key refused as a duplicate is listed again).
    pub keys: Vec<[u8; RECORD_KEY_LEN]>,
    /// The highest entry in the tree, if any.
    pub last: Option<u64>,
}

/// Writes the entries for one group commit's keys under `next`, `next + 1`, …, and advances `next`.
/// Returns the last `seq` written (`None` for no keys).
pub(super) fn append(
    tree: &sled::Tree,
    next: &mut u64,
    keys: &[[u8; RECORD_KEY_LEN]],
) -> sled::Result<Option<u64>> {
    let mut last = None;
    for chunk in keys.chunks(KEYS_PER_ENTRY) {
        let seq = *next;
        tree.insert(seq.to_be_bytes(), chunk.concat())?;
        *next = seq.saturating_add(1);
        last = Some(seq);
    }
    Ok(last)
}

/// Records that every entry up to `through` is in posting lists, then removes those entries. Call
/// only once the posting lists holding their records have been inserted.
pub(super) fn trim(meta: &sled::Tree, tree: &sled::Tree, through: u64) -> sled::Result<()> {
    meta.insert(FOLDED_THROUGH_KEY, &through.to_be_bytes()[..])?;
    let end = through.saturating_add(1).to_be_bytes();
    let folded: Vec<sled::IVec> = tree.range(..end).keys().collect::<sled::Result<_>>()?;
    for key in folded {
        tree.remove(key)?;
    }
    Ok(())
}

/// The keys a repair has to re-file: those of every entry above the mark.
pub(super) fn read(
    meta: &sled::Tree,
    tree: &sled::Tree,
) -> sled::Result<Result<Listed, Unreadable>> {
    let mark = match read_mark(meta)? {
        Ok(mark) => mark,
        Err(unreadable) => return Ok(Err(unreadable)),
    };
    let mut listed = Listed::default();
    for entry in tree.iter() {
        let (key, value) = entry?;
        let seq = match parse_entry(&key, &value) {
            Ok(seq) => seq,
            Err(unreadable) => return Ok(Err(unreadable)),
        };
        listed.last = Some(seq);
        if mark.is_some_and(|mark| seq <= mark) {
            // Folded; a kill came between the mark and this removal.
            continue;
        }
        listed.keys.extend(
            value
                .chunks_exact(RECORD_KEY_LEN)
                .filter_map(|key| <[u8; RECORD_KEY_LEN]>::try_from(key).ok()),
        );
    }
    Ok(Ok(listed))
}

/// Empties the list after a full rebuild or a clean close (every index entry is in posting lists),
/// keeping the mark at or above every `seq` used so far, so numbering goes on upwards. Whatever
/// does not parse is dropped with the rest.
pub(super) fn reset(meta: &sled::Tree, tree: &sled::Tree) -> sled::Result<()> {
    let mark = read_mark(meta)?;
    if mark.is_ok() && tree.is_empty() {
        return Ok(());
    }
    let through = mark.ok().flatten().max(highest_seq(tree)?).unwrap_or(0);
    trim(meta, tree, through)?;
    // Keys that are not `seq`s sort anywhere: remove whatever the range left.
    tree.clear()
}

/// The `seq` the writer starts from: above the mark and above every entry.
pub(super) fn next_seq(meta: &sled::Tree, tree: &sled::Tree) -> sled::Result<u64> {
    let mark = read_mark(meta)?.ok().flatten();
    Ok(mark
        .max(highest_seq(tree)?)
        .map_or(0, |seq| seq.saturating_add(1)))
}

/// The highest entry's `seq`, skipping keys that are not one.
fn highest_seq(tree: &sled::Tree) -> sled::Result<Option<u64>> {
    for key in tree.iter().keys().rev() {
        if let Ok(seq) = <[u8; SEQ_LEN]>::try_from(key?.as_ref()) {
            return Ok(Some(u64::from_be_bytes(seq)));
        }
    }
    Ok(None)
}

fn read_mark(meta: &sled::Tree) -> sled::Result<Result<Option<u64>, Unreadable>> {
    Ok(match meta.get(FOLDED_THROUGH_KEY)? {
        None => Ok(None),
        Some(bytes) => <[u8; SEQ_LEN]>::try_from(bytes.as_ref())
            .map(|seq| Some(u64::from_be_bytes(seq)))
            .map_err(|_| Unreadable::Mark(bytes.len())),
    })
}

/// The `seq` of one entry, if its key and value have the shape [`append`] writes.
fn parse_entry(key: &[u8], value: &[u8]) -> Result<u64, Unreadable> {
    let seq = <[u8; SEQ_LEN]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| Unreadable::EntryKey(key.len()))?;
    if value.is_empty() || !value.len().is_multiple_of(RECORD_KEY_LEN) {
        return Err(Unreadable::EntryValue {
            seq,
            len: value.len(),
        });
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; RECORD_KEY_LEN] {
        let mut key = [n; RECORD_KEY_LEN];
        key[0] = b'd';
        key
    }

    fn trees() -> (tempfile::TempDir, sled::Tree, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        let tree = db.open_tree(TREE).unwrap();
        (dir, meta, tree)
    }

    #[test]
    fn a_repair_reads_what_no_fold_has_covered() {
        let (_dir, meta, tree) = trees();
        let mut next = next_seq(&meta, &tree).unwrap();
        assert_eq!(next, 0);
        let many: Vec<_> = (0..=KEYS_PER_ENTRY as u8).map(key).collect();
        assert_eq!(append(&tree, &mut next, &many).unwrap(), Some(1));
        assert_eq!(tree.len(), 2, "129 keys take two entries");
        assert_eq!(append(&tree, &mut next, &[]).unwrap(), None);
        assert_eq!(append(&tree, &mut next, &[key(200)]).unwrap(), Some(2));

        let listed = read(&meta, &tree).unwrap().unwrap();
        assert_eq!(listed.keys.len(), many.len() + 1);
        assert_eq!(listed.last, Some(2));

        trim(&meta, &tree, 1).unwrap();
        let listed = read(&meta, &tree).unwrap().unwrap();
        assert_eq!(listed.keys, vec![key(200)]);
        // An entry the mark covers but whose removal a kill interrupted is not read again.
        tree.insert(0u64.to_be_bytes(), &key(9)[..]).unwrap();
        assert_eq!(read(&meta, &tree).unwrap().unwrap().keys, vec![key(200)]);
        assert_eq!(next_seq(&meta, &tree).unwrap(), 3);
    }

    #[test]
    fn a_reset_empties_the_list_and_numbering_goes_on() {
        let (_dir, meta, tree) = trees();
        let mut next = 0;
        append(&tree, &mut next, &[key(1), key(2)]).unwrap();
        append(&tree, &mut next, &[key(3)]).unwrap();
        tree.insert(b"odd", &b"x"[..]).unwrap();
        reset(&meta, &tree).unwrap();
        assert!(tree.is_empty());
        assert_eq!(next_seq(&meta, &tree).unwrap(), 2);
        assert!(read(&meta, &tree).unwrap().unwrap().keys.is_empty());
    }

    #[test]
    fn entries_and_marks_of_another_shape_are_unreadable() {
        let (_dir, meta, tree) = trees();
        tree.insert(7u64.to_be_bytes(), &[1u8; 5][..]).unwrap();
        assert_eq!(
            read(&meta, &tree).unwrap().unwrap_err(),
            Unreadable::EntryValue { seq: 7, len: 5 }
        );
        tree.clear().unwrap();
        tree.insert(b"short", &key(1)[..]).unwrap();
        assert_eq!(
            read(&meta, &tree).unwrap().unwrap_err(),
            Unreadable::EntryKey(5)
        );
        tree.clear().unwrap();
        meta.insert(FOLDED_THROUGH_KEY, &[0u8; 3][..]).unwrap();
        assert_eq!(
            read(&meta, &tree).unwrap().unwrap_err(),
            Unreadable::Mark(3)
        );
        // A reset replaces a mark it cannot read.
        reset(&meta, &tree).unwrap();
        assert!(read(&meta, &tree).unwrap().is_ok());
    }
}
