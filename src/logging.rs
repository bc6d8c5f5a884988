//! Structured logs for the daemon and the command line: human-readable or JSON lines.
//!
//! Every message an agent handles runs inside a span carrying its correlation id, agent and action
//! (see `runtime`), so both formats show the chain of work each line belongs to. JSON keeps span
//! fields under `span`/`spans` and the event's own under `fields`, so a line never has a key twice.
//! Logs go to stderr: stdout belongs to commands that print data (ids, JSON, JSON Lines).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Coloured, multi-field lines for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}`: expected `pretty` or `json`"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter `{filter}`: {reason}")]
    Filter { filter: String, reason: String },
    #[error("a global logger was already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax (`info`, `campaignd=debug,sled=warn`);
/// the `RUST_LOG` environment variable, when set, wins over it.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => from_env,
        _ => filter.to_owned(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| LoggingError::Filter {
        filter: filter.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    installed.map_err(|_| LoggingError::AlreadyInstalled)
}
