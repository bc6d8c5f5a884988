//! Whether the knowledge base can write right now: the truth behind `/readyz`.
//!
//! Two things make it unable to: a write that failed (a full disk, an I/O error) and has not been
//! followed by one that succeeded, and a write that was accepted but is still not acknowledged
//! after [`STALLED_AFTER`] (a disk or writer that stopped completing). Every write registers when
//! it is handed to the writer and deregisters when its answer arrives (or its caller stops
//! waiting), so the oldest outstanding one is always known. Refused records (invalid, duplicate,
//! an unknown decision) are the caller's mistake and say nothing about the storage.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::error::KbError;

/// How long an accepted write may stay unacknowledged before the writer counts as stalled. A
/// group commit's flush takes a few milliseconds and an fsync on a slow disk well under a second
/// (benches/README.md); five seconds is far beyond both, and short enough that a probe taking
/// a replica out of rotation acts before callers' own timeouts (the agents' request timeout is
/// longer) pile up.
pub const STALLED_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(super) struct WriteHealth {
    next: AtomicU64,
    outstanding: Mutex<BTreeMap<u64, Instant>>,
    /// The error of the last write whose storage failed, until a later write succeeds.
    failure: Mutex<Option<String>>,
    /// Set while a readiness probe write is on its way, so probes never pile up behind a stall.
    pub probing: AtomicBool,
}

/// One write on its way to the writer; dropping it deregisters the write.
pub(super) struct Outstanding {
    health: Arc<WriteHealth>,
    ticket: u64,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.health.lock_outstanding().remove(&self.ticket);
    }
}

impl WriteHealth {
    /// Registers a write handed to the writer.
    pub fn accepted(self: &Arc<Self>) -> Outstanding {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock_outstanding().insert(ticket, Instant::now());
        Outstanding {
            health: Arc::clone(self),
            ticket,
        }
    }

    /// Notes how a write went; only storage failures and successes change the verdict.
    pub fn completed(&self, result: &Result<(), KbError>) {
        let failure = match result {
            Ok(()) => None,
            Err(err @ (KbError::Storage { .. } | KbError::Closed)) => Some(err.to_string()),
            Err(_) => return,
        };
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    }

    /// `Err` with the reason when the knowledge base cannot write now.
    pub fn verdict(&self, now: Instant) -> Result<(), String> {
        let oldest = self.lock_outstanding().values().next().copied();
        if let Some(accepted) = oldest {
            let waited = now.saturating_duration_since(accepted);
            if waited >= STALLED_AFTER {
                return Err(format!(
                    "a knowledge-base write accepted {}s ago is still not acknowledged (the bound is {}s): the writer or its disk has stalled",
                    waited.as_secs(),
                    STALLED_AFTER.as_secs()
                ));
            }
        }
        match &*self.failure.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(failure) => Err(format!("the last knowledge-base write failed: {failure}")),
            None => Ok(()),
        }
    }

    fn lock_outstanding(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Instant>> {
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn storage_error() -> KbError {
        KbError::Storage {
            path: PathBuf::from("data/kb"),
            reason: "No space left on device".into(),
        }
    }

    #[test]
    fn a_failed_write_counts_until_a_later_one_succeeds() {
        let health = Arc::new(WriteHealth::default());
        let now = Instant::now();
        assert_eq!(health.verdict(now), Ok(()));
        health.completed(&Err(storage_error()));
        let reason = health.verdict(now).unwrap_err();
        assert!(reason.contains("No space left on device"), "{reason}");
        // A refused record is no news about the disk.
        health.completed(&Err(KbError::Duplicate {
            what: "decision",
            id: "d".into(),
        }));
        assert!(health.verdict(now).is_err());
        health.completed(&Ok(()));
        assert_eq!(health.verdict(now), Ok(()));
    }

    #[test]
    fn an_unacknowledged_write_past_the_bound_is_a_stall() {
        let health = Arc::new(WriteHealth::default());
        let write = health.accepted();
        let now = Instant::now();
        assert_eq!(health.verdict(now), Ok(()));
        let reason = health.verdict(now + STALLED_AFTER).unwrap_err();
        assert!(reason.contains("still not acknowledged"), "{reason}");
        drop(write);
        assert_eq!(health.verdict(now + STALLED_AFTER), Ok(()));
    }
}
