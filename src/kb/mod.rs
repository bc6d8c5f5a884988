//! The knowledge base: the system's memory and audit log, on sled.
//!
//! Every decision an agent makes is recorded with its inputs, alternatives, choice and reason; the
//! outcomes observed afterwards are recorded against the decisions that caused them. Records are
//! append-only. They can be read back by campaign, by agent, by time range, by correlation id (the
//! causal trace of one chain of work) and by decision (its outcomes), always within a tenant unless
//! the caller explicitly asks for all tenants. Writes go through a group-commit writer that
//! acknowledges a record only once it is as durable as `[kb] durability` says.
//!
//! This module depends only on [`crate::protocol`]; it must never know about agents, the runtime,
//! settings or the domain.
//!
//! # Layout
//!
//! - `record`: the decision and outcome types.
//! - `options`: the `[kb]` config section and the durability modes.
//! - `store`: [`KnowledgeBase`], its queries, the export and the import; `salvage`: the export
//!   of what is still readable in a damaged directory.
//! - `writer`: the group-commit writer and flusher threads; `tail`: the index entries not yet
//!   folded into posting lists, in memory.
//! - `recent`: the durable list of the keys written since the last fold, from which the open after
//!   an unclean stop repairs the indexes; `recovery`: what that open reports.
//! - `keys`: the byte layout of records; `postings`: the index layout (posting lists).
//! - `metrics`: the knowledge base's Prometheus metrics.
//! - `query`, `error`: what queries return, what can go wrong.
//! - `health`: whether writes complete right now (readiness); `faults`: the switch tests use to
//!   make them fail or stall.
//! - `guard`: sled calls that read stored state, with sled's panics on damaged files turned into
//!   errors.

mod error;
mod faults;
mod guard;
mod health;
mod keys;
pub mod metrics;
mod options;
mod postings;
mod query;
mod recent;
pub mod record;
mod recovery;
mod salvage;
mod store;
mod tail;
mod tenants;
mod writer;

pub use error::{InvalidReason, KbError};
pub use faults::WriteFaults;
pub use health::STALLED_AFTER;
pub use metrics::describe_metrics;
pub use options::{
    Durability, KbOptions, MAX_RECORD_BYTES_CEILING, OptionsError, UnknownDurability,
};
pub use query::{CorruptRecord, ExportSummary, QueryResult, Scope};
pub use record::{Alternative, Decision, DecisionId, Outcome, OutcomeId, Record, SCHEMA_VERSION};
pub use recovery::{FullRebuildReason, Recovery};
pub use salvage::{SalvageSummary, UnreadableRange, salvage_jsonl};
pub use store::{ImportedTenants, KnowledgeBase, decode_record};
