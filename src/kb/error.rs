//! The knowledge base's errors: each names the path, record or field an operator or agent developer
//! has to look at. Nothing here may panic or hide a storage failure.

use std::path::PathBuf;

use super::options::OptionsError;
use crate::protocol::CodecError;

/// Everything that can go wrong opening, writing or reading the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("invalid [kb] options: {0}")]
    Options(OptionsError),
    /// Another process holds the directory's lock (sled allows one process per directory).
    #[error(
        "could not open the knowledge base at {path}: {reason} (is another campaignd using it?)"
    )]
    Open { path: PathBuf, reason: String },
    /// The directory cannot be created or read (permissions, a file in its place, …).
    #[error("could not open the knowledge base at {path}: {reason}")]
    Unopenable { path: PathBuf, reason: String },
    /// sled refuses (or panics on) what it finds in the directory: the files are damaged.
    #[error(
        "the knowledge base at {path} is damaged and cannot be opened: {reason}. Keep a copy of the \
         directory, then recover what is readable: `campaignd kb export --salvage --data-dir {path}` \
         into a file and `campaignd kb import` it into a fresh directory (docs/operations.md, \
         \"Recovering a damaged knowledge base\")"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "the knowledge base at {path} has schema version {found}, but this build reads only version {supported}; \
         use a newer campaignd or point kb.path elsewhere"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "the knowledge base at {path} has schema version {found}, which this build cannot read (it reads {supported})"
    )]
    UnsupportedSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "{path} holds records but no schema version: it is not a campaignd knowledge base, or it is damaged"
    )]
    NotAKnowledgeBase { path: PathBuf },
    #[error("invalid {what} {id}: {reason}")]
    InvalidRecord {
        what: &'static str,
        id: String,
        reason: InvalidReason,
    },
    #[error("{what} {id} encodes to {size} bytes, more than kb.max_record_bytes = {limit}")]
    TooLarge {
        what: &'static str,
        id: String,
        size: usize,
        limit: usize,
    },
    #[error("{what} {id} is already recorded; records are append-only")]
    Duplicate { what: &'static str, id: String },
    #[error(
        "outcome {outcome} refers to decision {decision}, which is not recorded for tenant `{tenant}`"
    )]
    UnknownDecision {
        outcome: String,
        decision: String,
        tenant: String,
    },
    #[error("record {key} cannot be read: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("knowledge base storage error at {path}: {reason}")]
    Storage { path: PathBuf, reason: String },
    #[error("the knowledge base writer has shut down; the write was not recorded")]
    Closed,
    #[error("could not write the export: {0}")]
    Export(#[source] std::io::Error),
}

/// Why a record is refused before it is written; the message names the field.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum InvalidReason {
    #[error("schema_version is {found}; this build writes {writes}")]
    SchemaVersion { found: u32, writes: u32 },
    #[error("{field} is empty")]
    EmptyName { field: &'static str },
    #[error("{field} is {len} bytes long; at most {max} are allowed")]
    NameTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("confidence is {0}; it must be between 0.0 and 1.0")]
    Confidence(f64),
    #[error("{0}")]
    Encode(CodecError),
}
