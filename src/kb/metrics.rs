//! The knowledge base's metrics, through the `metrics` facade: what was acknowledged, what failed,
//! how long each batch's flush took and how many records it carried. The process-wide recorder is
//! installed elsewhere (the HTTP API); without one these calls cost next to nothing.
//!
//! Only names, descriptions and the recording helpers live here: this file must never install a
//! recorder or read the database.

use std::time::Duration;

/// Decisions acknowledged (durable as configured).
pub const DECISIONS_WRITTEN: &str = "campaignd_kb_decisions_written_total";
/// Outcomes acknowledged (durable as configured).
pub const OUTCOMES_WRITTEN: &str = "campaignd_kb_outcomes_written_total";
/// Writes refused or failed, labelled `reason` (`invalid`, `duplicate`, `unknown_decision`,
/// `storage`, `closed`).
pub const WRITE_ERRORS: &str = "campaignd_kb_write_errors_total";
/// Seconds each group commit spent in sled's flush (and the fsync, with `durability = power`).
pub const FLUSH_SECONDS: &str = "campaignd_kb_flush_seconds";
/// Records per group commit.
pub const BATCH_RECORDS: &str = "campaignd_kb_batch_records";

/// Registers the descriptions of every knowledge-base metric with the installed recorder. Call once
/// after installing it.
pub fn describe_metrics() {
    ::metrics::describe_counter!(
        DECISIONS_WRITTEN,
        "Decisions acknowledged by the knowledge base (durable as [kb] durability says)."
    );
    ::metrics::describe_counter!(
        OUTCOMES_WRITTEN,
        "Outcomes acknowledged by the knowledge base (durable as [kb] durability says)."
    );
    ::metrics::describe_counter!(
        WRITE_ERRORS,
        "Knowledge-base writes refused or failed, by reason."
    );
    ::metrics::describe_histogram!(
        FLUSH_SECONDS,
        ::metrics::Unit::Seconds,
        "Time each group commit spent flushing (and fsyncing, with durability = power)."
    );
    ::metrics::describe_histogram!(
        BATCH_RECORDS,
        ::metrics::Unit::Count,
        "Records carried by each group commit."
    );
}

pub(super) fn acknowledged(what: &'static str) {
    match what {
        "outcome" => ::metrics::counter!(OUTCOMES_WRITTEN).increment(1),
        _ => ::metrics::counter!(DECISIONS_WRITTEN).increment(1),
    }
}

pub(super) fn write_failed(reason: &'static str) {
    ::metrics::counter!(WRITE_ERRORS, "reason" => reason).increment(1);
}

pub(super) fn flushed(took: Duration) {
    ::metrics::histogram!(FLUSH_SECONDS).record(took.as_secs_f64());
}

pub(super) fn batch_committed(records: usize) {
    ::metrics::histogram!(BATCH_RECORDS).record(records as f64);
}
