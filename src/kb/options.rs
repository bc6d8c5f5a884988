//! How the knowledge base is opened: where it lives, how durable an acknowledgement is, how large a
//! commit batch and a record may be. This is the `[kb]` section of `config/campaignd.toml`.
//!
//! Plain data only: settings embeds [`KbOptions`] as is, so this file must never read files,
//! environment or anything else; the settings layer does that.

use std::path::PathBuf;

use serde::Deserialize;

/// The largest `max_record_bytes` accepted. Reads decode with this limit, so lowering
/// `max_record_bytes` later never makes an older, larger record unreadable.
pub const MAX_RECORD_BYTES_CEILING: usize = 16 * 1024 * 1024;

/// What an acknowledged write survives. The writer acknowledges a record only once its batch has
/// reached the level named here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Acknowledged once applied in memory, before any flush. A crash or kill loses whatever sled's
    /// background flush (every 500 ms) has not written yet. For tests and benchmarks only.
    None,
    /// Acknowledged after sled's `flush()`, which writes the log with `sync_file_range` but does not
    /// fsync: the record is in the operating system's page cache, so it survives the process being
    /// killed at any moment, but not a power loss or kernel crash.
    #[default]
    Process,
    /// Acknowledged after sled's `flush()` and an `fsync` of the database files (the log, any blob
    /// files and their directories): the record survives a power loss, on storage that honours fsync.
    Power,
}

impl Durability {
    /// The config spelling (`none`, `process`, `power`).
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Process => "process",
            Durability::Power => "power",
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Durability {
    type Err = UnknownDurability;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Durability::None),
            "process" => Ok(Durability::Process),
            "power" => Ok(Durability::Power),
            other => Err(UnknownDurability(other.to_owned())),
        }
    }
}

/// The `[kb]` section of `config/campaignd.toml`. Every field has a default, so an empty section
/// (or none) is valid; a misspelled key is an error rather than silently ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KbOptions {
    /// The sled directory. Not a config key: the daemon sets it to `<daemon.data_dir>/kb`, so that
    /// one key says where all state lives. Default `data/kb`.
    #[serde(skip)]
    pub path: PathBuf,
    /// When a write is acknowledged: `none`, `process` (default) or `power`. See [`Durability`].
    pub durability: Durability,
    /// The most records one group commit applies and flushes together. Default 1024. Larger batches
    /// raise throughput under load; a lone writer is never held back waiting for a batch to fill.
    pub batch_max: usize,
    /// How many writes may wait for the writer before callers are held back (backpressure).
    /// Default 8192.
    pub queue_capacity: usize,
    /// The largest encoded record accepted, in bytes. Default 1 MiB; at most 16 MiB.
    pub max_record_bytes: usize,
    /// sled's page cache limit in bytes. Default 16 MiB (sled's own default is 1 GiB): it bounds
    /// how far the daemon's resident memory grows with the knowledge base, and reads past it cost
    /// little (see docs/knowledge-base.md, "Memory").
    pub cache_capacity_bytes: u64,
}

impl Default for KbOptions {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/kb"),
            durability: Durability::Process,
            batch_max: 1024,
            queue_capacity: 8192,
            max_record_bytes: 1024 * 1024,
            cache_capacity_bytes: 16 * 1024 * 1024,
        }
    }
}

impl KbOptions {
    /// The defaults with another path.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// Checks the values a config file could get wrong; the message names the key.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.batch_max == 0 {
            return Err(OptionsError::ZeroBatchMax);
        }
        if self.queue_capacity == 0 {
            return Err(OptionsError::ZeroQueueCapacity);
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_BYTES_CEILING {
            return Err(OptionsError::MaxRecordBytes(self.max_record_bytes));
        }
        if self.path.as_os_str().is_empty() {
            return Err(OptionsError::EmptyPath);
        }
        Ok(())
    }
}

/// A `[kb]` value out of range; the message names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("kb.batch_max must be at least 1")]
    ZeroBatchMax,
    #[error("kb.queue_capacity must be at least 1")]
    ZeroQueueCapacity,
    #[error("kb.max_record_bytes is {0}; it must be between 1 and {MAX_RECORD_BYTES_CEILING}")]
    MaxRecordBytes(usize),
    #[error("kb.path is empty")]
    EmptyPath,
}

/// A `durability` that is not `none`, `process` or `power`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown durability `{0}`: expected none, process or power")]
pub struct UnknownDurability(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_gives_the_defaults() {
        let options: KbOptions = toml::from_str("").unwrap();
        assert_eq!(options, KbOptions::default());
        assert_eq!(options.durability, Durability::Process);
    }

    #[test]
    fn a_section_sets_fields_and_refuses_unknown_keys() {
        let options: KbOptions = toml::from_str("durability = \"power\"\nbatch_max = 64").unwrap();
        assert_eq!(options.durability, Durability::Power);
        assert_eq!(options.batch_max, 64);
        let err = toml::from_str::<KbOptions>("durabilty = \"power\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("durabilty"), "{err}");
        assert!(toml::from_str::<KbOptions>("durability = \"fsync\"").is_err());
        // The directory follows daemon.data_dir; a second key for it would be a second truth.
        assert!(toml::from_str::<KbOptions>("path = \"/var/lib/kb\"").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let bad = KbOptions {
            batch_max: 0,
            ..KbOptions::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err, OptionsError::ZeroBatchMax);
        assert_eq!(err.to_string(), "kb.batch_max must be at least 1");
        let bad = KbOptions {
            max_record_bytes: MAX_RECORD_BYTES_CEILING + 1,
            ..KbOptions::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("kb.max_record_bytes")
        );
        assert!(KbOptions::default().validate().is_ok());
    }
}
