//! The group-commit writer: one thread owns every write to sled, a second one every flush.
//!
//! Callers encode their record and build its index keys on their own task, then hand the bytes to
//! the writer thread and wait. It takes everything that queued up while it was busy (up to
//! `batch_max`), inserts the records, then one manifest per 32 records holding every index key of
//! those records with their pointers, and hands the batch's acknowledgements to the flusher thread.
//! The flusher flushes (and with `durability = power` fsyncs) once for all the batches handed over
//! since its last flush began, and only then acknowledges their callers: records and index entries
//! are durable together, a flush that holds many records costs about as much as one that holds
//! one, and the writer inserts the next batch while the flusher waits for the disk. Every few
//! thousand records the writer folds the manifests into posting lists (one entry per distinct
//! index key), inserting the lists before removing the manifests, so a reader always finds each
//! pointer in one or the other (possibly both: readers drop duplicates).
//!
//! Everything is inserted from the one writer thread: records have time-ordered (uuid v7) or
//! hashed ids, and two threads inserting into the same sled 0.34 leaf conflict and retry, which
//! measured slower than one thread while taking twice the CPU from the callers. Neither
//! cross-tree transactions nor `sled::Batch` are used: in sled 0.34 both take a process-wide
//! exclusive lock, and transactions build multi-second flushes. The price is that a crash in the
//! middle of a batch can leave records without their manifest (never a manifest whose records
//! were not inserted first), which the store repairs at the next open (see `KnowledgeBase::open`);
//! nothing unacknowledged is promised anyway. No record may ever be acknowledged before a flush
//! that began after its batch, manifest included, was inserted has reached the configured
//! durability.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::error::KbError;
use super::keys::{self, RECORD_KEY_LEN};
use super::metrics as kb_metrics;
use super::options::Durability;
use super::postings::{self, Groups, Index, Pointer};

/// The most records one manifest describes (about 130 bytes each). sled 0.34 copies a whole leaf
/// (up to 16 entries) on every insert into it and writes a leaf above 128 KiB to a blob file of its
/// own, so index values are kept to a few KiB: larger ones measured markedly slower.
const MANIFEST_RECORDS: usize = 32;
/// Manifests are folded into posting lists once they describe this many records, or once there
/// are [`FOLD_AFTER_MANIFESTS`] of them (under light load each holds a record or two). Larger means
/// fewer posting entries (under load, one per key per fold) but a longer tail that each query
/// decodes.
pub(super) const FOLD_AFTER_RECORDS: usize = 4096;
const FOLD_AFTER_MANIFESTS: usize = 128;
/// The most pointers one posting entry holds (25 bytes each), for the same reason as
/// [`MANIFEST_RECORDS`].
const POSTING_POINTERS: usize = 128;

/// The sled trees of one knowledge base.
#[derive(Clone)]
pub(super) struct Trees {
    pub records: sled::Tree,
    /// Manifests and posting lists (see `postings`).
    pub index: sled::Tree,
    pub meta: sled::Tree,
}

/// One encoded record with its pointer and index keys, ready to apply.
pub(super) struct PreparedWrite {
    pub what: &'static str,
    pub record_key: [u8; RECORD_KEY_LEN],
    pub value: Vec<u8>,
    pub pointer: Pointer,
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

/// The manifests written since the last fold, and what they hold.
#[derive(Default)]
pub(super) struct Unfolded {
    manifests: Vec<Vec<u8>>,
    groups: Groups,
    records: usize,
}

impl Unfolded {
    /// The manifests already in the index tree (left by a stop that did not fold them).
    pub fn load(index: &sled::Tree) -> Result<Self, sled::Error> {
        let mut unfolded = Self::default();
        for entry in index.range(vec![postings::MANIFEST_PREFIX]..vec![postings::POSTING_PREFIX]) {
            let (key, value) = entry?;
            let Ok(groups) = postings::decode_manifest(&value) else {
                // Left in place: queries report it; folding cannot make it readable.
                continue;
            };
            for group in groups {
                let Ok(pointers) = postings::decode_pointers(group.pointers) else {
                    continue;
                };
                let filed = unfolded
                    .groups
                    .entry((group.index, group.key.to_vec()))
                    .or_default();
                let count = filed.len();
                filed.extend(pointers);
                // Every record has exactly one time key: counting those counts the records.
                if group.index == Index::Time {
                    unfolded.records += filed.len() - count;
                }
            }
            unfolded.manifests.push(key.to_vec());
        }
        Ok(unfolded)
    }
}

pub(super) struct Writer {
    pub db: sled::Db,
    pub trees: Trees,
    pub durability: Durability,
    pub batch_max: usize,
    pub path: PathBuf,
    pub unfolded: Unfolded,
}

impl Writer {
    /// Starts the writer thread, and the flusher thread unless `durability = none`. They run until
    /// every sender is gone or a shutdown arrives.
    pub fn spawn(self, rx: mpsc::Receiver<Message>) -> io::Result<std::thread::JoinHandle<()>> {
        let flusher = match self.durability {
            Durability::None => None,
            durability => {
                let syncer = match durability {
                    Durability::Power => Some(PowerSync::new(&self.path)?),
                    _ => None,
                };
                let flusher = Flusher {
                    db: self.db.clone(),
                    durability,
                    syncer,
                    path: self.path.clone(),
                };
                let (to_flusher, waiting) = std::sync::mpsc::sync_channel(FLUSH_QUEUE);
                let thread = std::thread::Builder::new()
                    .name("kb-flusher".into())
                    .spawn(move || flusher.run(waiting))?;
                Some((to_flusher, thread))
            }
        };
        std::thread::Builder::new()
            .name("kb-writer".into())
            .spawn(move || self.run(rx, flusher))
    }

    fn run(mut self, mut rx: mpsc::Receiver<Message>, flusher: Option<FlusherHandle>) {
        let (to_flusher, flusher_thread) = flusher.unzip();
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
            self.commit(&mut batch, to_flusher.as_ref());
        }
        // Writes already queued behind a shutdown were sent before the caller could know: commit
        // them too rather than fail them.
        rx.close();
        while let Some(message) = rx.blocking_recv() {
            match message {
                Message::Write(write, ack) => {
                    batch.push((write, ack));
                    if batch.len() >= self.batch_max {
                        self.commit(&mut batch, to_flusher.as_ref());
                    }
                }
                Message::Shutdown(ack) => {
                    let _ = ack.send(Ok(()));
                }
            }
        }
        self.commit(&mut batch, to_flusher.as_ref());
        // Every acknowledgement is sent before the database is marked clean.
        drop(to_flusher);
        let mut syncer = flusher_thread
            .and_then(|thread| thread.join().ok())
            .flatten();
        let result = self.close_cleanly(syncer.as_mut());
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

    fn commit(&mut self, batch: &mut Vec<(PreparedWrite, Ack)>, to_flusher: Option<&ToFlusher>) {
        if batch.is_empty() {
            return;
        }
        let (writes, acks): (Vec<PreparedWrite>, Vec<Ack>) = batch.drain(..).unzip();
        let records = writes.len();
        let mut results = self.insert_records(&writes);
        let indexed = self.insert_manifests(writes, &results);
        if let Err(reason) = indexed {
            for result in results.iter_mut().filter(|r| r.is_ok()) {
                *result = Err(self.storage_error(&reason));
            }
        }
        kb_metrics::batch_committed(records);
        let waiting: Vec<(Ack, Result<(), KbError>)> = acks.into_iter().zip(results).collect();
        match to_flusher {
            // durability = none: acknowledged once applied.
            None => acknowledge(waiting, &Ok(()), &self.path),
            Some(to_flusher) => {
                if let Err(std::sync::mpsc::SendError(waiting)) = to_flusher.send(waiting) {
                    let reason = Err("the flusher thread has stopped".to_string());
                    acknowledge(waiting, &reason, &self.path);
                }
            }
        }
        if (self.unfolded.records >= FOLD_AFTER_RECORDS
            || self.unfolded.manifests.len() >= FOLD_AFTER_MANIFESTS)
            && let Err(err) = self.fold()
        {
            // The manifests stay and queries keep reading them; the next fold tries again.
            tracing::error!(path = %self.path.display(), error = %err, "could not fold knowledge-base manifests into posting lists");
        }
    }

    /// Inserts each record if its key is free (append-only: a key is written once, ever). One
    /// compare-and-swap is both the duplicate check and the insert.
    fn insert_records(&self, writes: &[PreparedWrite]) -> Vec<Result<(), KbError>> {
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
    }

    /// Inserts the manifests of the records that were inserted, after all of them: a manifest then
    /// never reaches the log before its records.
    fn insert_manifests(
        &mut self,
        writes: Vec<PreparedWrite>,
        results: &[Result<(), KbError>],
    ) -> Result<(), String> {
        let mut inserted: Vec<PreparedWrite> = writes
            .into_iter()
            .zip(results)
            .filter(|(_, result)| result.is_ok())
            .map(|(write, _)| write)
            .collect();
        for chunk in inserted.chunks_mut(MANIFEST_RECORDS) {
            let mut groups = Groups::new();
            for write in chunk.iter_mut() {
                postings::add(&mut groups, write.pointer, std::mem::take(&mut write.index));
            }
            let seq = self.db.generate_id().map_err(|e| e.to_string())?;
            let key = postings::manifest_key(seq);
            self.trees
                .index
                .insert(key, postings::encode_manifest(&groups))
                .map_err(|e| e.to_string())?;
            self.unfolded.manifests.push(key.to_vec());
            self.unfolded.records += chunk.len();
            for (group, pointers) in groups {
                self.unfolded
                    .groups
                    .entry(group)
                    .or_default()
                    .extend(pointers);
            }
        }
        Ok(())
    }

    /// Writes the unfolded pointers as posting lists, then removes the manifests they came from.
    fn fold(&mut self) -> Result<(), sled::Error> {
        if self.unfolded.manifests.is_empty() {
            return Ok(());
        }
        write_postings(&self.db, &self.trees.index, &self.unfolded.groups)?;
        for manifest in &self.unfolded.manifests {
            self.trees.index.remove(manifest)?;
        }
        self.unfolded = Unfolded::default();
        Ok(())
    }

    fn close_cleanly(&mut self, syncer: Option<&mut PowerSync>) -> Result<(), KbError> {
        if self.durability == Durability::Power && syncer.is_none() {
            return Err(self.storage_error(
                "the flusher thread stopped; the database was not fsynced at close",
            ));
        }
        // A clean close leaves no manifest behind, so the next open starts with an empty tail.
        self.fold().map_err(|e| self.storage_error(e))?;
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

/// The acknowledgements of one batch, each with the result of its insert.
type Waiting = Vec<(Ack, Result<(), KbError>)>;
type ToFlusher = std::sync::mpsc::SyncSender<Waiting>;
type FlusherHandle = (ToFlusher, std::thread::JoinHandle<Option<PowerSync>>);

/// How many batches may wait for the flusher before the writer is held back. Each flush covers all
/// of them, so this only bounds how far the writer runs ahead.
const FLUSH_QUEUE: usize = 4;

/// Sends each caller its result, failed with `durable`'s error if that is one.
fn acknowledge(waiting: Waiting, durable: &Result<(), String>, path: &Path) {
    for (ack, result) in waiting {
        let result = match (result, durable) {
            (Ok(()), Err(reason)) => Err(KbError::Storage {
                path: path.to_path_buf(),
                reason: reason.clone(),
            }),
            (result, _) => result,
        };
        // A caller that stopped waiting is no reason to stop committing.
        let _ = ack.send(result);
    }
}

/// The thread that makes inserted batches durable and acknowledges them.
struct Flusher {
    db: sled::Db,
    durability: Durability,
    syncer: Option<PowerSync>,
    path: PathBuf,
}

impl Flusher {
    /// Flushes once for every batch that arrived since the last flush began; returns the fsync
    /// handle for the writer's clean close.
    fn run(mut self, waiting: std::sync::mpsc::Receiver<Waiting>) -> Option<PowerSync> {
        while let Ok(mut batches) = waiting.recv() {
            while let Ok(more) = waiting.try_recv() {
                batches.extend(more);
            }
            let durable = self.make_durable();
            acknowledge(batches, &durable, &self.path);
        }
        self.syncer
    }

    fn make_durable(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let flushed = self.db.flush().map(|_| ()).map_err(|e| e.to_string());
        let result = match (self.durability, flushed) {
            (Durability::Power, Ok(())) => match self.syncer.as_mut() {
                Some(syncer) => syncer.sync().map_err(|e| format!("fsync failed: {e}")),
                None => Err("no fsync handle for durability = power".into()),
            },
            (_, flushed) => flushed,
        };
        kb_metrics::flushed(started.elapsed());
        result
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
    let mut entries = Vec::with_capacity(groups.len());
    for ((which, key), pointers) in groups {
        for (n, chunk) in pointers.chunks(POSTING_POINTERS).enumerate() {
            // Keys only have to be unique per index key: the fold's number serves the first
            // chunk, a fresh one each further chunk.
            let seq = if n == 0 { seq } else { db.generate_id()? };
            entries.push((
                postings::posting_key(*which, key, seq),
                postings::encode_pointers(chunk),
            ));
        }
    }
    for (key, value) in entries {
        index.insert(key, value)?;
    }
    Ok(())
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
