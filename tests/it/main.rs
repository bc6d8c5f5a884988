//! campaignd's integration tests, as one test crate: one module per area, and `support` for what
//! they share (the real binary started with a clean environment and killed when its guard drops,
//! bounded waits on a condition, deployment folders, scratch knowledge bases, the shipped agents'
//! specs and the goal fixtures).
//!
//! One crate links the library and its dependencies into one test binary instead of twelve, and
//! lets the tests share helpers instead of copying them. It also means every test runs in one
//! process: process-wide state (the metrics recorder above all) is shared, which the modules that
//! touch it say where they do.

mod support;

mod api;
mod approvals;
mod campaign;
mod compat;
mod compliance;
mod config;
mod consents;
mod content;
mod daemon;
mod dashboard;
mod docs;
mod ingest;
mod kb;
mod kb_recovery;
mod layers;
mod notifications;
mod observations;
mod ops;
mod optimization;
mod outbox;
mod pools;
mod protocol;
mod restart;
mod runtime;
mod safety;
mod simulate;
mod strategy;
