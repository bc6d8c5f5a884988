//! Calls into sled that read stored state, with sled's panics turned into errors.
//!
//! sled 0.34 trusts its files: a truncated log or a missing blob file makes `sled::Config::open`
//! panic (an index out of bounds while it reads a segment, `tried to serialize Uninitialized` while
//! it rewrites its page-table snapshot) instead of returning an error. A damaged data directory is
//! an operator's problem to be told about, never a crash, so every such call runs here under
//! `catch_unwind`, and the panic's message becomes the reason of a typed error. The default panic
//! hook would still print a backtrace on stderr for a panic that is caught; a hook installed once
//! stays silent for the calls made here (on this thread only) and passes every other panic on to
//! the hook that was there before.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs a guarded call: its panic is reported as an error instead.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs `call`; a panic inside it comes back as `Err` with the panic's message.
pub(super) fn unpanicked<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(call));
    GUARDED.with(|g| g.set(was));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        format!("sled gave up reading it: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_thread_goes_on() {
        let err = unpanicked(|| -> u32 { panic!("index out of bounds") }).unwrap_err();
        assert_eq!(err, "sled gave up reading it: index out of bounds");
        assert_eq!(unpanicked(|| 7), Ok(7));
        // Outside a guarded call the flag is off again, so other panics reach the usual hook.
        assert!(!GUARDED.with(Cell::get));
    }
}
