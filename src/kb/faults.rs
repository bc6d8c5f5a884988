//! [`WriteFaults`]: a switch that makes the writer fail or stall the way a full or wedged disk
//! would, so that tests can watch what the daemon does then (readiness above all) with a real
//! sled directory behind it.
//!
//! Only [`KnowledgeBase::open_with_faults`](super::KnowledgeBase::open_with_faults) installs one;
//! the binary opens with [`KnowledgeBase::open`](super::KnowledgeBase::open), whose writer
//! checks an empty switch and never fails or waits because of it.

use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// What the writer's storage does while the switch is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Fault {
    #[default]
    Healthy,
    /// Every insert and flush fails with this error, as on a full disk (`StorageFull`).
    Fail(io::ErrorKind),
    /// Every insert and flush blocks until the switch changes: writes are accepted and never
    /// acknowledged, as with a disk that stops completing I/O.
    Stall,
}

/// A fault switch shared between a test and the writer and flusher threads of one knowledge base.
#[derive(Debug, Default)]
pub struct WriteFaults {
    fault: Mutex<Fault>,
    changed: Condvar,
}

impl WriteFaults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// From now on every insert and flush fails with an I/O error of this kind.
    pub fn fail(&self, kind: io::ErrorKind) {
        self.set(Fault::Fail(kind));
    }

    /// From now on every insert and flush blocks until [`WriteFaults::heal`].
    pub fn stall(&self) {
        self.set(Fault::Stall);
    }

    /// Storage works again; stalled inserts and flushes go on.
    pub fn heal(&self) {
        self.set(Fault::Healthy);
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
        self.changed.notify_all();
    }

    /// What the next insert or flush meets: waits while stalled.
    fn check(&self) -> io::Result<()> {
        let mut fault = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match *fault {
                Fault::Healthy => return Ok(()),
                Fault::Fail(kind) => {
                    return Err(io::Error::new(kind, "injected by a test's WriteFaults"));
                }
                Fault::Stall => {
                    fault = self
                        .changed
                        .wait(fault)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// The switch as the writer holds it: none at all outside tests.
#[derive(Clone, Debug, Default)]
pub(super) struct Faults(Option<Arc<WriteFaults>>);

impl Faults {
    pub fn none() -> Self {
        Self(None)
    }

    /// Called before every insert and flush of the writer and flusher threads.
    pub fn check(&self) -> io::Result<()> {
        match &self.0 {
            None => Ok(()),
            Some(faults) => faults.check(),
        }
    }
}

impl From<Arc<WriteFaults>> for Faults {
    fn from(faults: Arc<WriteFaults>) -> Self {
        Self(Some(faults))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_switch_fails_and_a_stalled_one_waits_until_healed() {
        assert!(Faults::none().check().is_ok());
        let switch = WriteFaults::new();
        let faults = Faults::from(Arc::clone(&switch));
        switch.fail(io::ErrorKind::StorageFull);
        assert_eq!(
            faults.check().unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        switch.stall();
        let waiting = std::thread::spawn(move || faults.check());
        // The stalled check returns only once healed; joining it below proves it did.
        switch.heal();
        assert!(waiting.join().unwrap().is_ok());
    }
}
