//! The group-commit writer: one thread owns every write to sled.
//!
//! Callers encode their record and build its index keys on their own task, then hand the bytes to
//! this thread and wait. The thread takes everything that queued up while it was busy (up to
//! `batch_max`), inserts the records, then their index entries (each phase split over two threads
//! when the batch is large), and flushes once for the whole batch. Only then is each caller
//! acknowledged: a flush that holds many records costs about as much as a flush that holds one,
//! which is where the throughput comes from. Neither cross-tree transactions nor `sled::Batch` are
//! used: in sled 0.34 both take a process-wide exclusive lock, and transactions build multi-second
//! flushes. The price is that a crash in the middle of a batch can leave a record without some of
//! its index entries (never an entry whose record was not inserted first), which the store repairs
//! at the next open (see `KnowledgeBase::open`); nothing unacknowledged is promised anyway. This
//! thread must never acknowledge a record before its batch has reached the configured durability.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use super::error::KbError;
use super::keys::{self, RECORD_KEY_LEN};
use super::options::Durability;

/// The index trees, in the order of [`Trees::index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Index {
    /// `campaign | tenant | time | tag | id`
    Campaign = 0,
    /// `agent | tenant | time | tag | id` (decisions only)
    Agent = 1,
    /// `tenant | time | tag | id`
    Time = 2,
    /// `correlation id | tenant | time | tag | id`
    Correlation = 3,
    /// `decision id | tenant | time | tag | outcome id` (outcomes, once per decision they cite)
    Decision = 4,
}

pub(super) const INDEX_TREES: [(&str, Index); 5] = [
    ("by_campaign", Index::Campaign),
    ("by_agent", Index::Agent),
    ("by_time", Index::Time),
    ("by_correlation", Index::Correlation),
    ("by_decision", Index::Decision),
];

/// The sled trees of one knowledge base.
#[derive(Clone)]
pub(super) struct Trees {
    pub records: sled::Tree,
    pub index: [sled::Tree; 5],
    pub meta: sled::Tree,
}

impl Trees {
    pub fn index(&self, which: Index) -> &sled::Tree {
        &self.index[which as usize]
    }
}

/// One encoded record with its index keys, ready to apply.
pub(super) struct PreparedWrite {
    pub what: &'static str,
    pub record_key: [u8; RECORD_KEY_LEN],
    pub value: Vec<u8>,
    pub index: Vec<(Index, Vec<u8>)>,
}

pub(super) type Ack = oneshot::Sender<Result<(), KbError>>;

pub(super) enum Message {
    Write(PreparedWrite, Ack),
    /// Commit what is queued, refuse what comes after, mark the database cleanly closed.
    Shutdown(Ack),
}

/// Marks the database as cleanly closed; its absence at open means the indexes may need repair.
pub(super) const CLEAN_KEY: &[u8] = b"clean_shutdown";

pub(super) struct Writer {
    pub db: sled::Db,
    pub trees: Trees,
    pub durability: Durability,
    pub batch_max: usize,
    pub path: PathBuf,
}

impl Writer {
    /// Starts the writer thread. It runs until every sender is gone or a shutdown arrives.
    pub fn spawn(self, rx: mpsc::Receiver<Message>) -> io::Result<std::thread::JoinHandle<()>> {
        let syncer = match self.durability {
            Durability::Power => Some(PowerSync::new(&self.path)?),
            _ => None,
        };
        std::thread::Builder::new()
            .name("kb-writer".into())
            .spawn(move || self.run(rx, syncer))
    }

    fn run(self, mut rx: mpsc::Receiver<Message>, mut syncer: Option<PowerSync>) {
        let mut batch: Vec<(PreparedWrite, Ack)> = Vec::with_capacity(self.batch_max);
        let mut shutdown: Option<Ack> = None;
        while shutdown.is_none() {
            // Wait for one write, then take whatever else queued meanwhile: a lone writer is
            // committed at once, and under load each flush carries many records.
            match rx.blocking_recv() {
                Some(Message::Write(write, ack)) => batch.push((write, ack)),
                Some(Message::Shutdown(ack)) => shutdown = Some(ack),
                None => break,
            }
            while shutdown.is_none() && batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(Message::Write(write, ack)) => batch.push((write, ack)),
                    Ok(Message::Shutdown(ack)) => shutdown = Some(ack),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch, syncer.as_mut());
        }
        // Writes already queued behind a shutdown were sent before the caller could know: commit
        // them too rather than fail them.
        rx.close();
        while let Some(message) = rx.blocking_recv() {
            match message {
                Message::Write(write, ack) => {
                    batch.push((write, ack));
                    if batch.len() >= self.batch_max {
                        self.commit(&mut batch, syncer.as_mut());
                    }
                }
                Message::Shutdown(ack) => {
                    let _ = ack.send(Ok(()));
                }
            }
        }
        self.commit(&mut batch, syncer.as_mut());
        let result = self.mark_clean(syncer.as_mut());
        if let Err(err) = &result {
            tracing::error!(path = %self.path.display(), error = %err, "could not close the knowledge base cleanly");
        }
        if let Some(ack) = shutdown {
            let _ = ack.send(result);
        }
    }

    fn storage_error(&self, reason: impl std::fmt::Display) -> KbError {
        KbError::Storage {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    fn commit(&self, batch: &mut Vec<(PreparedWrite, Ack)>, syncer: Option<&mut PowerSync>) {
        if batch.is_empty() {
            return;
        }
        let (writes, acks): (Vec<PreparedWrite>, Vec<Ack>) = batch.drain(..).unzip();
        let mut results = self.insert_records(&writes);
        let indexed = self.insert_index_entries(&writes, &results);
        let durable = indexed.and_then(|()| self.make_durable(syncer));
        if let Err(reason) = durable {
            for result in results.iter_mut().filter(|r| r.is_ok()) {
                *result = Err(self.storage_error(&reason));
            }
        }
        for (ack, result) in acks.into_iter().zip(results) {
            // A caller that stopped waiting is no reason to stop committing.
            let _ = ack.send(result);
        }
    }

    /// Inserts each record if its key is free (append-only: a key is written once, ever). One
    /// compare-and-swap is both the duplicate check and the insert.
    fn insert_records(&self, writes: &[PreparedWrite]) -> Vec<Result<(), KbError>> {
        let insert = |writes: &[PreparedWrite]| -> Vec<Result<(), KbError>> {
            writes
                .iter()
                .map(|write| {
                    let key = &write.record_key[..];
                    match self.trees.records.compare_and_swap(
                        key,
                        None::<&[u8]>,
                        Some(&write.value[..]),
                    ) {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(_)) => Err(KbError::Duplicate {
                            what: write.what,
                            id: keys::display_key(key),
                        }),
                        Err(err) => Err(self.storage_error(err)),
                    }
                })
                .collect()
        };
        let (mut first, second) = in_two(writes, insert);
        first.extend(second);
        first
    }

    /// Inserts the index entries of the records that were inserted, after all of them: an index
    /// entry then never reaches the log before its record.
    fn insert_index_entries(
        &self,
        writes: &[PreparedWrite],
        results: &[Result<(), KbError>],
    ) -> Result<(), String> {
        let entries: Vec<(Index, &[u8])> = writes
            .iter()
            .zip(results)
            .filter(|(_, result)| result.is_ok())
            .flat_map(|(write, _)| write.index.iter().map(|(which, key)| (*which, &key[..])))
            .collect();
        let insert = |entries: &[(Index, &[u8])]| -> Result<(), String> {
            for (which, key) in entries {
                self.trees
                    .index(*which)
                    .insert(key, &[][..])
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        let (first, second) = in_two(&entries, insert);
        first.and(second)
    }

    fn make_durable(&self, syncer: Option<&mut PowerSync>) -> Result<(), String> {
        match self.durability {
            Durability::None => Ok(()),
            Durability::Process => self.db.flush().map(|_| ()).map_err(|e| e.to_string()),
            Durability::Power => {
                self.db.flush().map_err(|e| e.to_string())?;
                match syncer {
                    Some(syncer) => syncer.sync().map_err(|e| format!("fsync failed: {e}")),
                    None => Err("no fsync handle for durability = power".into()),
                }
            }
        }
    }

    fn mark_clean(&self, syncer: Option<&mut PowerSync>) -> Result<(), KbError> {
        self.trees
            .meta
            .insert(CLEAN_KEY, &[1u8][..])
            .map_err(|e| self.storage_error(e))?;
        // Whatever the durability mode, a clean close leaves everything flushed.
        self.db.flush().map_err(|e| self.storage_error(e))?;
        match syncer {
            Some(syncer) => syncer
                .sync()
                .map_err(|e| self.storage_error(format!("fsync failed: {e}"))),
            None => Ok(()),
        }
    }
}

/// fsync for `durability = power`. sled's flush uses `sync_file_range`, which neither flushes the
/// drive's cache nor the file's metadata, and writes blob files (records above ~128 KiB) without
/// any sync; fsync on our own descriptor of each file covers all of it, because fsync acts on the
/// file, not the descriptor.
pub(super) struct PowerSync {
    dir: PathBuf,
    log: File,
    synced_blobs: HashSet<OsString>,
}

impl PowerSync {
    pub fn new(dir: &Path) -> io::Result<Self> {
        let log = File::open(dir.join("db"))?;
        // The files sled created at open and their directory entries.
        log.sync_all()?;
        sync_if_exists(&dir.join("conf"))?;
        sync_if_exists(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
            synced_blobs: HashSet::new(),
        })
    }

    pub fn sync(&mut self) -> io::Result<()> {
        let blobs = self.dir.join("blobs");
        let mut new_blobs = false;
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            let mut present = HashSet::new();
            for entry in entries {
                let name = entry?.file_name();
                if !self.synced_blobs.contains(&name) {
                    sync_if_exists(&blobs.join(&name))?;
                    new_blobs = true;
                }
                present.insert(name);
            }
            // Forget blobs sled has garbage-collected, so the set does not grow forever.
            self.synced_blobs = present;
        }
        if new_blobs {
            sync_if_exists(&blobs)?;
        }
        self.log.sync_all()
    }
}

/// fsyncs a file or directory; one that has just been removed (a collected blob) is not an error.
fn sync_if_exists(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_all(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Below this many items a batch is applied on the writer thread alone: starting a helper thread
/// costs more than it saves.
const PARALLEL_FROM: usize = 64;

/// Runs `work` on both halves of `items`, the first half on a helper thread when the batch is
/// large. sled inserts on different threads proceed in parallel; `sled::Batch` would not help here,
/// since applying one takes a process-wide exclusive lock.
fn in_two<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> (R, R) {
    let (first, second) = items.split_at(items.len() / 2);
    if items.len() < PARALLEL_FROM {
        return (work(first), work(second));
    }
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("kb-writer-helper".into())
            .spawn_scoped(scope, || work(first));
        let second = work(second);
        // If no thread could be started, or it panicked, do the first half here instead.
        let first = match helper.map(|h| h.join()) {
            Ok(Ok(first)) => first,
            _ => work(first),
        };
        (first, second)
    })
}
