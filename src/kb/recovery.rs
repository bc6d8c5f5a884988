//! What opening a knowledge base had to repair: nothing after a clean close; after an unclean stop
//! the indexes, either from the records the recent-keys list names or from every record. The
//! counts are what the repair read, so a caller (a test, the benchmark, the daemon's log) can see
//! that a repair read the list's records and not the whole database.
//!
//! Plain data: nothing here reads the database.

use serde::Serialize;

/// How [`KnowledgeBase::open`](super::KnowledgeBase::open) found the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Recovery {
    /// Closed cleanly, or new: nothing to repair.
    Clean,
    /// Not closed cleanly; the index entries of the records the recent-keys list names were filed
    /// again.
    RecentKeys {
        /// Keys in the list (a key is listed again when a write of it was refused as a duplicate).
        listed: usize,
        /// Records read: the distinct listed keys whose record is stored.
        read: usize,
    },
    /// Not closed cleanly; every index entry was re-derived from every record.
    FullRebuild {
        /// Entries of the records tree read.
        read: usize,
        reason: FullRebuildReason,
    },
}

/// Why the open re-derived every index entry rather than use the recent-keys list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum FullRebuildReason {
    /// The database was last open in a build that kept no list (campaignd 0.1.0 and every build
    /// before the list), or a full rebuild was interrupted.
    #[error(
        "the database was last opened by a build that keeps no recent-keys list, or a full rebuild was interrupted"
    )]
    NotListed,
    /// The list is there but does not parse.
    #[error("the recent-keys list cannot be read: {0}")]
    Unreadable(String),
    /// The caller asked for it ([`KnowledgeBase::open_rebuilding`](super::KnowledgeBase::open_rebuilding)).
    #[error("a full rebuild was asked for")]
    Asked,
}
