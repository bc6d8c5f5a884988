//! The index tail: the index entries of the records written since the last fold, held in memory
//! and shared between the writer, the folder thread and every query.
//!
//! The writer files each record's pointer under its index keys here right after inserting the
//! record, before the record is acknowledged, so a query that starts after an acknowledgement
//! finds the record. Every few thousand records the folder thread writes the tail to the `index`
//! tree as posting lists, one entry per distinct index key, and only then drops those entries from
//! memory: a query reads the tail before the posting lists, so it finds each pointer in one or the
//! other (possibly both: queries drop duplicates).
//!
//! The tail is not made durable with the records: writing every index entry to sled on every group
//! commit cost about a third of the throughput at 256 concurrent writers. A stop that did not close
//! the database cleanly loses it; what the next open needs to rebuild it is the list of the keys
//! written since the last fold (see `recent`), which each group commit writes before its records
//! and each fold trims once its posting lists are written.

use std::ops::Bound;
use std::sync::{Arc, RwLock};

use super::postings::{self, Groups, Index, Pointer};
use super::recent;
use super::writer::Trees;

/// The tail is folded once this many records were listed since the last fold. Larger means fewer
/// posting entries (under load, one per key per fold), more memory (about 100 bytes per record) and
/// a longer recent-keys list for the repair after an unclean stop to read.
pub(super) const FOLD_AFTER_RECORDS: usize = 4096;
/// The most pointers one posting entry holds (25 bytes each). sled 0.34 copies a whole leaf (up to
/// 16 entries) on every insert into it and writes a leaf above 128 KiB to a blob file of its own,
/// so index values are kept to a few KiB: larger ones measured markedly slower.
const POSTING_POINTERS: usize = 128;

#[derive(Default)]
struct Entries {
    /// Filed since the last fold began.
    live: Groups,
    /// Keys listed since the last fold began (refused ones included: they are in the list too).
    listed: usize,
    /// The last recent-keys entry of the group commits filed in `live`.
    live_through: Option<u64>,
    /// Taken by the fold in progress (or one that failed and will be retried), still read by
    /// queries until its posting lists are in the `index` tree.
    folding: Arc<Groups>,
    /// The last recent-keys entry `folding` covers.
    folding_through: Option<u64>,
}

impl Entries {
    /// Whether a fold took entries and has not written them yet.
    fn fold_pending(&self) -> bool {
        !self.folding.is_empty() || self.folding_through.is_some()
    }
}

#[derive(Default)]
pub(super) struct Tail {
    entries: RwLock<Entries>,
}

impl Tail {
    /// Files the pointers of one group commit's inserted records, whose `listed` keys went to the
    /// recent-keys list up to entry `through`; returns how many keys were listed since the last
    /// fold began.
    pub fn add(
        &self,
        records: impl IntoIterator<Item = (Pointer, Vec<(Index, Vec<u8>)>)>,
        listed: usize,
        through: Option<u64>,
    ) -> usize {
        let mut entries = self.write();
        for (pointer, index) in records {
            postings::add(&mut entries.live, pointer, index);
        }
        entries.listed += listed;
        if through.is_some() {
            entries.live_through = through;
        }
        entries.listed
    }

    /// Appends to `found` the pointers filed under the keys of index `which` in `[low, high)`
    /// (`high = None`: to the end of that index) that `keep` accepts.
    pub fn pointers(
        &self,
        which: Index,
        (low, high): (&[u8], Option<&[u8]>),
        keep: &dyn Fn(&[u8]) -> bool,
        found: &mut Vec<Pointer>,
    ) {
        // BTreeMap::range panics on a reversed range; a reversed range holds nothing.
        if high.is_some_and(|high| high < low) {
            return;
        }
        let start = Bound::Included((which, low.to_vec()));
        let end = high.map_or(Bound::Unbounded, |high| {
            Bound::Excluded((which, high.to_vec()))
        });
        let entries = self.read();
        for groups in [&entries.live, &*entries.folding] {
            let filed = groups
                .range((start.clone(), end.clone()))
                .take_while(|((index, _), _)| *index == which)
                .filter(|((_, key), _)| keep(key));
            for (_, pointers) in filed {
                found.extend_from_slice(pointers);
            }
        }
    }

    /// Writes everything filed so far to the `index` tree as posting lists, drops it from memory,
    /// then trims the recent-keys list of what it wrote. Only one fold may run at a time (the
    /// folder thread, or the writer once the folder has stopped). A failed fold keeps its entries;
    /// the next fold writes those first, then everything filed since.
    pub fn fold(&self, db: &sled::Db, trees: &Trees) -> Result<(), sled::Error> {
        if self.read().fold_pending() {
            self.fold_once(db, trees)?;
        }
        self.fold_once(db, trees)
    }

    fn fold_once(&self, db: &sled::Db, trees: &Trees) -> Result<(), sled::Error> {
        let (folding, through) = self.take_for_fold();
        if !folding.is_empty() {
            write_postings(db, &trees.index, &folding)?;
        }
        {
            let mut entries = self.write();
            entries.folding = Arc::default();
            entries.folding_through = None;
        }
        // After the posting lists, never before: a trim that survives a kill must imply them. A
        // trim that fails leaves entries the next one removes (it covers everything below it).
        match through {
            Some(through) => recent::trim(&trees.meta, &trees.recent, through),
            None => Ok(()),
        }
    }

    /// The entries a fold writes: those of a fold that failed, or else everything filed since the
    /// last fold, which queries keep reading until the fold is done; and the last recent-keys entry
    /// they cover.
    fn take_for_fold(&self) -> (Arc<Groups>, Option<u64>) {
        let mut entries = self.write();
        if !entries.fold_pending() {
            entries.folding = Arc::new(std::mem::take(&mut entries.live));
            entries.folding_through = entries.live_through.take();
            entries.listed = 0;
        }
        (Arc::clone(&entries.folding), entries.folding_through)
    }

    // A panic while holding the lock cannot leave the maps half-updated in a way that matters to
    // readers (pointers are only ever appended), so a poisoned lock is used as it is.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Inserts `groups` as posting lists under fresh sequence numbers, at most [`POSTING_POINTERS`]
/// pointers per entry.
pub(super) fn write_postings(
    db: &sled::Db,
    index: &sled::Tree,
    groups: &Groups,
) -> Result<(), sled::Error> {
    let seq = db.generate_id()?;
    for ((which, key), pointers) in groups {
        for (n, chunk) in pointers.chunks(POSTING_POINTERS).enumerate() {
            // Keys only have to be unique per index key: the fold's number serves the first
            // chunk, a fresh one each further chunk.
            let seq = if n == 0 { seq } else { db.generate_id()? };
            index.insert(
                postings::posting_key(*which, key, seq),
                postings::encode_pointers(chunk),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::keys;
    use chrono::{TimeZone, Utc};

    fn pointer(n: u8) -> Pointer {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, n.into()).unwrap();
        postings::pointer(&at, &keys::record_key(keys::DECISION_TAG, &[n; 16]))
    }

    fn trees() -> (tempfile::TempDir, sled::Db, Trees) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let trees = Trees {
            records: db.open_tree("records").unwrap(),
            index: db.open_tree("index").unwrap(),
            meta: db.open_tree("meta").unwrap(),
            recent: db.open_tree(recent::TREE).unwrap(),
        };
        (dir, db, trees)
    }

    fn found(tail: &Tail, low: &[u8], high: Option<&[u8]>) -> Vec<Pointer> {
        let mut found = Vec::new();
        tail.pointers(Index::Campaign, (low, high), &|_| true, &mut found);
        found
    }

    /// Every pointer in the posting lists `entries` holds, sorted.
    fn posted(
        entries: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    ) -> Vec<Pointer> {
        let mut pointers: Vec<Pointer> = entries
            .flat_map(|entry| {
                let (_, value) = entry.unwrap();
                postings::decode_pointers(&value)
                    .unwrap()
                    .collect::<Vec<_>>()
            })
            .collect();
        pointers.sort();
        pointers
    }

    #[test]
    fn queries_see_what_was_filed_until_a_fold_writes_it_out() {
        let spring = postings::named("spring", "acme");
        let autumn = postings::named("autumn", "acme");
        let tail = Tail::default();
        let filed = tail.add(
            [
                (pointer(1), vec![(Index::Campaign, spring.clone())]),
                (pointer(2), vec![(Index::Campaign, autumn.clone())]),
                (pointer(3), vec![(Index::Agent, spring.clone())]),
            ],
            3,
            Some(0),
        );
        assert_eq!(filed, 3);
        let end = keys::prefix_end(&spring);
        assert_eq!(found(&tail, &spring, end.as_deref()), vec![pointer(1)]);
        assert_eq!(found(&tail, &[], None), vec![pointer(2), pointer(1)]);
        // A reversed range holds nothing, and is no reason to panic.
        assert!(found(&tail, &spring, Some(&autumn)).is_empty());

        let (_dir, db, trees) = trees();
        let mut next = 0;
        recent::append(&trees.recent, &mut next, &[[1; 17], [2; 17], [3; 17]]).unwrap();
        recent::append(&trees.recent, &mut next, &[[4; 17]]).unwrap();
        tail.fold(&db, &trees).unwrap();
        assert!(found(&tail, &[], None).is_empty());
        assert_eq!(tail.add([], 0, None), 0, "a fold starts the count again");
        let (start, end) = postings::posting_range(Index::Campaign, &spring, end.as_deref());
        assert_eq!(posted(trees.index.range(start..end)), vec![pointer(1)]);
        // The fold trimmed the list entry it covered, and only that one.
        let listed = recent::read(&trees.meta, &trees.recent).unwrap().unwrap();
        assert_eq!(listed.keys, vec![[4; 17]]);
    }

    #[test]
    fn a_fold_after_a_failed_one_writes_both_what_it_left_and_what_came_since() {
        let spring = postings::named("spring", "acme");
        let tail = Tail::default();
        let (_dir, db, trees) = trees();
        let mut next = 0;
        recent::append(&trees.recent, &mut next, &[[1; 17]]).unwrap();
        tail.add(
            [(pointer(1), vec![(Index::Campaign, spring.clone())])],
            1,
            Some(0),
        );
        // A fold that took its entries and then failed to write them.
        let _ = tail.take_for_fold();
        recent::append(&trees.recent, &mut next, &[[2; 17]]).unwrap();
        tail.add(
            [(pointer(2), vec![(Index::Campaign, spring.clone())])],
            1,
            Some(1),
        );
        assert_eq!(found(&tail, &[], None), vec![pointer(2), pointer(1)]);

        tail.fold(&db, &trees).unwrap();
        assert!(found(&tail, &[], None).is_empty());
        assert_eq!(posted(trees.index.iter()), vec![pointer(1), pointer(2)]);
        let listed = recent::read(&trees.meta, &trees.recent).unwrap().unwrap();
        assert!(listed.keys.is_empty() && trees.recent.is_empty());
    }
}
