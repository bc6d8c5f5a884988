//! The group-commit writer: one thread owns every insert of a record, a second one every flush.
//!
//! Callers encode their record and build its index keys on their own task, then hand the bytes to
//! the writer thread and wait. It takes everything that queued up while it was busy (up to
//! `batch_max`), lists the records' keys in the recent-keys list (see `recent`), inserts the
//! records, files their index entries in the in-memory index tail (see `tail`) and hands the
//! batch's acknowledgements to the flusher thread. The flusher flushes (and
//! with `durability = power` fsyncs) once for all the batches handed over since its last flush
//! began, and only then acknowledges their callers: a flush that holds many records costs about as
//! much as one that holds one, and the writer inserts the next batch while the flusher waits for
//! the disk. A third thread folds the tail into posting lists every few thousand records, beside
//! the other two.
//!
//! Every record is inserted from the one writer thread: records have time-ordered (uuid v7) or
//! hashed ids, and two threads inserting into the same sled 0.34 leaf conflict and retry, which
//! measured slower than one thread while taking twice the CPU from the callers. Neither
//! cross-tree transactions nor `sled::Batch` are used: in sled 0.34 both take a process-wide
//! exclusive lock, and transactions build multi-second flushes. No record may ever be acknowledged
//! before a flush that began after it was inserted has reached the configured durability.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SendError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::error::KbError;
use super::faults::Faults;
use super::keys::{self, RECORD_KEY_LEN};
use super::metrics as kb_metrics;
use super::options::Durability;
use super::postings::{Index, Pointer};
use super::recent::{self, CLEAN_KEY, MARK_CLEAN};
use super::tail::{FOLD_AFTER_RECORDS, Tail};

/// The sled trees of one knowledge base.
#[derive(Clone)]
pub(super) struct Trees {
    pub records: sled::Tree,
    /// Manifests and posting lists (see `postings`).
    pub index: sled::Tree,
    pub meta: sled::Tree,
    /// The keys of the records the tail may hold (see `recent`).
    pub recent: sled::Tree,
}

/// One encoded record with its pointer and index keys, ready to apply.
pub(super) struct PreparedWrite {
    pub what: &'static str,
    pub record_key: [u8; RECORD_KEY_LEN],
    /// Built on the caller's task: sled stores it as it is, so the writer thread neither copies
    /// nor frees it.
    pub value: sled::IVec,
    pub pointer: Pointer,
    pub index: Vec<(Index, Vec<u8>)>,
}

pub(super) type Ack = oneshot::Sender<Result<(), KbError>>;

pub(super) enum Message {
    Write(PreparedWrite, Ack),
    /// Write the probe key and make it durable like a record: answers whether the writer, the
    /// flusher and the disk complete a write right now (readiness).
    Probe(Ack),
    /// Commit what is queued, refuse what comes after, mark the database cleanly closed.
    Shutdown(Ack),
}

/// The meta key a readiness probe overwrites; its value means nothing.
const PROBE_KEY: &[u8] = b"write_probe";

/// What one entry of a batch writes.
enum Op {
    Record(PreparedWrite),
    Probe,
}

pub(super) struct Writer {
    pub db: sled::Db,
    pub trees: Trees,
    pub tail: Arc<Tail>,
    pub durability: Durability,
    pub batch_max: usize,
    pub path: PathBuf,
    pub faults: Faults,
    /// The `seq` of the next recent-keys entry.
    pub next_seq: u64,
}

/// How many batches may wait for the flusher before the writer is held back. Each flush covers all
/// of them, so this only bounds how far the writer runs ahead.
const FLUSH_QUEUE: usize = 4;

type FlusherHandle = (SyncSender<Waiting>, JoinHandle<Option<PowerSync>>);

impl Writer {
    /// Starts the writer and folder threads, and the flusher thread unless `durability = none`.
    /// They run until every sender is gone or a shutdown arrives.
    pub fn spawn(self, rx: mpsc::Receiver<Message>) -> io::Result<JoinHandle<()>> {
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
                    faults: self.faults.clone(),
                };
                let (to_flusher, waiting) = sync_channel(FLUSH_QUEUE);
                let thread = std::thread::Builder::new()
                    .name("kb-flusher".into())
                    .spawn(move || flusher.run(waiting))?;
                Some((to_flusher, thread))
            }
        };
        // One pending request is enough: a fold takes everything filed by the time it starts.
        let (to_folder, requests) = sync_channel::<()>(1);
        let (db, trees, tail, path) = (
            self.db.clone(),
            self.trees.clone(),
            Arc::clone(&self.tail),
            self.path.clone(),
        );
        let folder = std::thread::Builder::new()
            .name("kb-folder".into())
            .spawn(move || {
                while requests.recv().is_ok() {
                    if let Err(err) = tail.fold(&db, &trees) {
                        // The entries stay in memory and queries keep reading them; the next fold
                        // tries again.
                        tracing::error!(path = %path.display(), error = %err, "could not fold the knowledge-base index tail into posting lists");
                    }
                }
            })?;
        std::thread::Builder::new()
            .name("kb-writer".into())
            .spawn(move || self.run(rx, flusher, (to_folder, folder)))
    }

    fn run(
        mut self,
        mut rx: mpsc::Receiver<Message>,
        flusher: Option<FlusherHandle>,
        folder: (SyncSender<()>, JoinHandle<()>),
    ) {
        let (to_flusher, flusher_thread) = flusher.unzip();
        let (to_folder, folder_thread) = folder;
        let mut batch: Vec<(Op, Ack)> = Vec::with_capacity(self.batch_max);
        let mut shutdown: Option<Ack> = None;
        while shutdown.is_none() {
            // Wait for one write, then take whatever else queued meanwhile: a lone writer is
            // committed at once, and under load each flush carries many records.
            match rx.blocking_recv() {
                Some(Message::Write(write, ack)) => batch.push((Op::Record(write), ack)),
                Some(Message::Probe(ack)) => batch.push((Op::Probe, ack)),
                Some(Message::Shutdown(ack)) => shutdown = Some(ack),
                None => break,
            }
            while shutdown.is_none() && batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(Message::Write(write, ack)) => batch.push((Op::Record(write), ack)),
                    Ok(Message::Probe(ack)) => batch.push((Op::Probe, ack)),
                    Ok(Message::Shutdown(ack)) => shutdown = Some(ack),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch, to_flusher.as_ref(), &to_folder);
        }
        // Writes already queued behind a shutdown were sent before the caller could know: commit
        // them too rather than fail them.
        rx.close();
        while let Some(message) = rx.blocking_recv() {
            match message {
                Message::Write(write, ack) => {
                    batch.push((Op::Record(write), ack));
                    if batch.len() >= self.batch_max {
                        self.commit(&mut batch, to_flusher.as_ref(), &to_folder);
                    }
                }
                // Nobody waits for a probe after a shutdown: the writer is going away.
                Message::Shutdown(ack) | Message::Probe(ack) => {
                    let _ = ack.send(Ok(()));
                }
            }
        }
        self.commit(&mut batch, to_flusher.as_ref(), &to_folder);
        // Every acknowledgement is sent, and no other fold runs, before the database is marked
        // clean.
        drop(to_flusher);
        let mut syncer = flusher_thread
            .and_then(|thread| thread.join().ok())
            .flatten();
        drop(to_folder);
        let _ = folder_thread.join();
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

    fn commit(
        &mut self,
        batch: &mut Vec<(Op, Ack)>,
        to_flusher: Option<&SyncSender<Waiting>>,
        to_folder: &SyncSender<()>,
    ) {
        if batch.is_empty() {
            return;
        }
        kb_metrics::batch_committed(batch.len());
        let keys: Vec<[u8; RECORD_KEY_LEN]> = batch
            .iter()
            .filter_map(|(op, _)| match op {
                Op::Record(write) => Some(write.record_key),
                Op::Probe => None,
            })
            .collect();
        // Listed before any of them is inserted, so that no record can survive a kill unlisted.
        // The flush that acknowledges the records holds the list entries too.
        let through = match self.list(&keys) {
            Ok(through) => through,
            Err(reason) => {
                let waiting = batch
                    .drain(..)
                    .map(|(_, ack)| (ack, Err(self.storage_error(&reason))))
                    .collect();
                acknowledge(waiting, &Ok(()), &self.path);
                return;
            }
        };
        let mut indexed = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for (op, ack) in batch.drain(..) {
            let result = match op {
                Op::Record(write) => {
                    let result = self.insert_record(&write);
                    if result.is_ok() {
                        indexed.push((write.pointer, write.index));
                    }
                    result
                }
                Op::Probe => self.insert_probe(),
            };
            waiting.push((ack, result));
        }
        // Filed before the acknowledgement, so that a caller's next query finds its record.
        if self.tail.add(indexed, keys.len(), through) >= FOLD_AFTER_RECORDS {
            // Full means a fold is already requested.
            let _ = to_folder.try_send(());
        }
        match to_flusher {
            // durability = none: acknowledged once applied.
            None => acknowledge(waiting, &Ok(()), &self.path),
            Some(to_flusher) => {
                if let Err(SendError(waiting)) = to_flusher.send(waiting) {
                    acknowledge(waiting, &Err(NotDurable::FlusherStopped), &self.path);
                }
            }
        }
    }

    /// Writes the recent-keys entries for one batch's keys; returns the last one, or why the batch
    /// cannot be written.
    fn list(&mut self, keys: &[[u8; RECORD_KEY_LEN]]) -> Result<Option<u64>, String> {
        if keys.is_empty() {
            return Ok(None);
        }
        self.faults.check().map_err(|e| e.to_string())?;
        recent::append(&self.trees.recent, &mut self.next_seq, keys).map_err(|e| e.to_string())
    }

    /// Inserts a record if its key is free (append-only: a key is written once, ever). One
    /// compare-and-swap is both the duplicate check and the insert.
    fn insert_record(&self, write: &PreparedWrite) -> Result<(), KbError> {
        self.faults.check().map_err(|e| self.storage_error(e))?;
        let key = &write.record_key[..];
        match self.trees.records.compare_and_swap(
            key,
            None::<sled::IVec>,
            Some(write.value.clone()),
        ) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(KbError::Duplicate {
                what: write.what,
                id: keys::display_key(key),
            }),
            Err(err) => Err(self.storage_error(err)),
        }
    }

    fn insert_probe(&self) -> Result<(), KbError> {
        self.faults.check().map_err(|e| self.storage_error(e))?;
        self.trees
            .meta
            .insert(PROBE_KEY, &[1u8][..])
            .map(|_| ())
            .map_err(|e| self.storage_error(e))
    }

    fn close_cleanly(&mut self, syncer: Option<&mut PowerSync>) -> Result<(), KbError> {
        if self.durability == Durability::Power && syncer.is_none() {
            return Err(self.storage_error(
                "the flusher thread stopped; the database was not fsynced at close",
            ));
        }
        // The tail lives only in memory: a clean close writes it out, so the next open needs no
        // repair.
        self.tail
            .fold(&self.db, &self.trees)
            .map_err(|e| self.storage_error(e))?;
        self.trees
            .meta
            .insert(CLEAN_KEY, &[MARK_CLEAN][..])
            .map_err(|e| self.storage_error(e))?;
        // Whatever the durability mode, a clean close leaves everything flushed.
        self.db.flush().map_err(|e| self.storage_error(e))?;
        match syncer {
            Some(syncer) => syncer
                .sync()
                .map_err(|e| self.storage_error(NotDurable::Fsync(e))),
            None => Ok(()),
        }
    }
}

/// The acknowledgements of one batch, each with the result of its insert.
type Waiting = Vec<(Ack, Result<(), KbError>)>;

/// Why an applied batch could not be made as durable as `[kb] durability` asks; every write in
/// it then fails with [`KbError::Storage`].
#[derive(Debug, thiserror::Error)]
enum NotDurable {
    #[error("the flusher thread has stopped")]
    FlusherStopped,
    #[error("{0}")]
    Flush(sled::Error),
    #[error("flush failed: {0}")]
    Io(io::Error),
    #[error("fsync failed: {0}")]
    Fsync(io::Error),
    #[error("no fsync handle for durability = power")]
    NoFsyncHandle,
}

/// Sends each caller its result, failed with `durable`'s error if that is one.
fn acknowledge(waiting: Waiting, durable: &Result<(), NotDurable>, path: &Path) {
    for (ack, result) in waiting {
        let result = match (result, durable) {
            (Ok(()), Err(reason)) => Err(KbError::Storage {
                path: path.to_path_buf(),
                reason: reason.to_string(),
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
    faults: Faults,
}

impl Flusher {
    /// Flushes once for every batch that arrived since the last flush began; returns the fsync
    /// handle for the writer's clean close.
    fn run(mut self, waiting: Receiver<Waiting>) -> Option<PowerSync> {
        while let Ok(mut batches) = waiting.recv() {
            while let Ok(more) = waiting.try_recv() {
                batches.extend(more);
            }
            let durable = self.make_durable();
            acknowledge(batches, &durable, &self.path);
        }
        self.syncer
    }

    fn make_durable(&mut self) -> Result<(), NotDurable> {
        let started = Instant::now();
        let flushed = match self.faults.check() {
            Ok(()) => self.db.flush().map(|_| ()).map_err(NotDurable::Flush),
            Err(err) => Err(NotDurable::Io(err)),
        };
        let result = match (self.durability, flushed) {
            (Durability::Power, Ok(())) => match self.syncer.as_mut() {
                Some(syncer) => syncer.sync().map_err(NotDurable::Fsync),
                None => Err(NotDurable::NoFsyncHandle),
            },
            (_, flushed) => flushed,
        };
        kb_metrics::flushed(started.elapsed());
        result
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
