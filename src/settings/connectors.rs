//! `[outbox]` and `[connectors.<name>]` of `campaignd.toml`: how orders are retried, and the
//! connectors a campaign file's `connectors = { search = "<name>" }` can name. Two are built in
//! and need no table: `simulator` (the built-in market, the default for every channel with
//! `[market] source = "simulator"`) and `log` (the order is written to the log as the day's
//! instructions, the default with `source = "api"`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::config::{MIN_TOKEN_CHARS, out_of_range, ranges};
use crate::domain::order::RetryPolicy;

/// The connectors every deployment has.
pub const BUILT_IN: [&str; 2] = ["simulator", "log"];

/// `[outbox]`: the retry schedule of every order's delivery.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Failed deliveries before an order is dead-lettered and its campaign's day held.
    pub max_attempts: u32,
    /// The wait after the first failure, doubled after each (with jitter) up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
        }
    }
}

impl OutboxSettings {
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            initial_ms: self.backoff_initial_ms,
            max_ms: self.backoff_max_ms,
        }
    }

    pub(super) fn problems(&self) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = [
            (
                "max_attempts",
                out_of_range(self.max_attempts, ranges::WEBHOOK_ATTEMPTS),
            ),
            (
                "backoff_initial_ms",
                out_of_range(self.backoff_initial_ms, ranges::BACKOFF_MS),
            ),
            (
                "backoff_max_ms",
                out_of_range(self.backoff_max_ms, ranges::BACKOFF_MS),
            ),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.map(|p| (format!("outbox.{k}"), p)))
        .collect();
        if self.backoff_max_ms < self.backoff_initial_ms {
            found.push((
                "outbox.backoff_max_ms".to_owned(),
                format!(
                    "is {}; it must be at least backoff_initial_ms ({})",
                    self.backoff_max_ms, self.backoff_initial_ms
                ),
            ));
        }
        found
    }
}

/// `[connectors.<name>]`: one place orders can go.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectorSettings {
    /// POST each order as JSON, signed like the approval webhook.
    Webhook {
        url: String,
        /// The HMAC-SHA256 key, at least 16 characters.
        secret: String,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
    /// Write each order as a dated bulk-upload file in `dir`, in its platform's format.
    Files { dir: PathBuf },
}

fn default_timeout() -> u64 {
    10
}

impl std::fmt::Debug for ConnectorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectorSettings::Webhook {
                url, timeout_secs, ..
            } => f
                .debug_struct("Webhook")
                .field("url", url)
                .field("secret", &"<redacted>")
                .field("timeout_secs", timeout_secs)
                .finish(),
            ConnectorSettings::Files { dir } => f.debug_struct("Files").field("dir", dir).finish(),
        }
    }
}

/// What is wrong with the connector tables, by key.
pub(super) fn problems(connectors: &BTreeMap<String, ConnectorSettings>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (name, connector) in connectors {
        let key = |k: &str| format!("connectors.{name}.{k}");
        if BUILT_IN.contains(&name.as_str()) {
            found.push((
                format!("connectors.{name}"),
                format!("`{name}` is a built-in connector's name; pick another"),
            ));
        }
        match connector {
            ConnectorSettings::Webhook {
                url,
                secret,
                timeout_secs,
            } => {
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || url.parse::<ureq::http::Uri>().is_err()
                {
                    found.push((
                        key("url"),
                        format!("`{url}` is not an http:// or https:// URL"),
                    ));
                }
                if secret.chars().count() < MIN_TOKEN_CHARS {
                    found.push((
                        key("secret"),
                        format!("is too short for a signing key; use at least {MIN_TOKEN_CHARS} random characters"),
                    ));
                }
                if let Some(p) = out_of_range(*timeout_secs, ranges::HEADER_TIMEOUT_SECS) {
                    found.push((key("timeout_secs"), p));
                }
            }
            ConnectorSettings::Files { dir } => {
                if dir.as_os_str().is_empty() {
                    found.push((
                        key("dir"),
                        "is empty; name the folder the files go to".to_owned(),
                    ));
                }
            }
        }
    }
    found
}
