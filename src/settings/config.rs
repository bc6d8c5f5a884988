//! The deployment config, `config/campaignd.toml`: where data lives, how logs look, how durable the
//! knowledge base is, message and mailbox limits, which clock to run on, where market data comes
//! from.
//!
//! Every key has a default, and the shipped `config/campaignd.toml` is compiled in as the embedded
//! defaults, so the daemon runs on a machine with no files at all; a test keeps the file and the
//! defaults in code identical. Unknown keys are errors. This module parses and validates; it must
//! never act on a setting (open a database, install a logger, start a clock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::problem::{self, Problem};
use crate::kb::{self, KbOptions};
use crate::logging::LogFormat;
use crate::protocol::DEFAULT_MAX_MESSAGE_BYTES;

/// The shipped `config/campaignd.toml`, used when no config file is found.
pub const EMBEDDED_CONFIG: &str = include_str!("../../config/campaignd.toml");

/// The prefix of environment overrides: `CAMPAIGND__LOG__FORMAT=json` sets `[log] format`.
pub const ENV_PREFIX: &str = "CAMPAIGND";
/// Separates the prefix, the section and the key in an override's name.
pub const ENV_SEPARATOR: &str = "__";

/// The whole of `config/campaignd.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub daemon: DaemonSettings,
    pub log: LogSettings,
    /// `[kb]`: the knowledge base's writer; its directory is `<daemon.data_dir>/kb`.
    pub kb: KbOptions,
    pub protocol: ProtocolSettings,
    pub runtime: RuntimeSettings,
    pub clock: ClockSettings,
    pub market: MarketSettings,
    pub api: ApiSettings,
    /// `[approvals]`: what waits for a person under `supervised`, and for how long.
    pub approvals: crate::domain::approval::ApprovalPolicy,
    /// `[webhook]`: where approval notifications are sent.
    pub webhook: WebhookSettings,
    /// `[outbox]`: how orders' deliveries are retried.
    pub outbox: super::connectors::OutboxSettings,
    /// `[connectors.<name>]`: where campaign files can send their channels' orders.
    pub connectors: std::collections::BTreeMap<String, super::connectors::ConnectorSettings>,
}

/// `[daemon]`: folders and shutdown.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSettings {
    /// Where campaignd keeps its state (the knowledge base lives in `<data_dir>/kb`). Relative
    /// paths are relative to the current folder.
    pub data_dir: PathBuf,
    /// How long a shutdown may spend draining in-flight work before it gives up.
    pub shutdown_timeout_secs: u64,
    /// The folder of agent definitions, one `<name>.toml` per agent.
    pub agents_dir: PathBuf,
    /// The folder of campaign goals, one `<id>.toml` per campaign.
    pub campaigns_dir: PathBuf,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            shutdown_timeout_secs: 30,
            agents_dir: PathBuf::from("agents"),
            campaigns_dir: PathBuf::from("config/campaigns"),
        }
    }
}

impl DaemonSettings {
    /// The knowledge base's sled directory: `<data_dir>/kb`.
    pub fn kb_path(&self) -> PathBuf {
        self.data_dir.join("kb")
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `campaignd=debug,sled=warn`); `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info".to_owned(),
        }
    }
}

/// `[protocol]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolSettings {
    /// The largest encoded envelope the codec accepts when decoding from bytes, for messages that
    /// cross a process boundary; in-process delivery passes typed values and never encodes.
    pub max_message_bytes: usize,
}

impl Default for ProtocolSettings {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// `[runtime]`: defaults for agents and who may send commands.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// The workers of an agent whose definition does not set `workers`; 0 (the default) runs one
    /// per core the machine has.
    pub workers: usize,
    /// The mailbox bound of an agent whose definition does not set `mailbox`.
    pub mailbox: usize,
    /// The request timeout of an agent whose definition does not set `request_timeout_ms`.
    pub request_timeout_ms: u64,
    /// The agents allowed to send commands; every other agent's commands are refused.
    pub command_senders: Vec<String>,
}

impl RuntimeSettings {
    /// How many workers `workers` (an agent's own or this default) stands for: 0 is one per core.
    pub fn resolve_workers(workers: usize) -> usize {
        if workers == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        } else {
            workers
        }
    }
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            mailbox: 1024,
            request_timeout_ms: 5000,
            command_senders: vec!["orchestrator".to_owned()],
        }
    }
}

/// Which time the daemon runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    #[default]
    Real,
    /// Simulated time running `factor` times faster than real time.
    Accelerated,
    /// Time moves only when a test or an operator moves it.
    Manual,
}

/// `[clock]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSettings {
    pub mode: ClockMode,
    /// How much faster than real time an accelerated clock runs.
    pub factor: f64,
    /// Where an accelerated or manual clock starts; the moment the daemon starts when absent.
    #[serde(deserialize_with = "crate::domain::campaign::datetime::optional")]
    pub start: Option<DateTime<Utc>>,
}

impl Default for ClockSettings {
    /// The shipped `[clock]`: the example campaigns on an accelerated clock, a campaign day every
    /// half second from their first start date, so a fresh `campaignd run` shows the whole loop.
    fn default() -> Self {
        Self {
            mode: ClockMode::Accelerated,
            factor: 172_800.0,
            start: DateTime::parse_from_rfc3339("2026-09-01T00:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// Where performance data comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketSource {
    /// The built-in market simulator.
    #[default]
    Simulator,
    /// Only what arrives through the HTTP API.
    Api,
}

/// `[market]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketSettings {
    pub source: MarketSource,
    /// The simulator's seed: the same seed gives the same market.
    pub seed: u64,
}

impl Default for MarketSettings {
    fn default() -> Self {
        Self {
            source: MarketSource::Simulator,
            seed: 42,
        }
    }
}

/// `[api]`: the HTTP ops API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The address to listen on, `host:port`; port 0 picks a free port.
    pub listen: String,
    /// The largest request body accepted, in bytes; a larger one is answered 413.
    pub body_limit_bytes: usize,
    /// Bearer tokens written inline. After loading, this also holds the entries of `tokens_file`.
    pub tokens: Vec<ApiToken>,
    /// A TOML file of `[[tokens]]` entries, so secrets can live apart from the config.
    pub tokens_file: Option<PathBuf>,
    /// Seconds a connection has to send a request's headers, counted from when it is ready for
    /// one (just opened, or its previous answer sent).
    pub header_timeout_secs: u64,
    /// Seconds a request has to send its whole body.
    pub body_timeout_secs: u64,
    /// Seconds a connection may go without a byte read or written before it is closed.
    pub idle_timeout_secs: u64,
    /// Connections served at once; capped below the process's open-file limit at start.
    pub max_connections: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            body_limit_bytes: 1024 * 1024,
            tokens: Vec::new(),
            tokens_file: None,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 256,
        }
    }
}

/// `[webhook]`: the endpoint told of new, escalated and expired approval requests. Its `Debug`
/// form hides the secret.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `http://` or `https://`; empty sends nothing.
    pub url: String,
    /// The HMAC-SHA256 key each delivery is signed with, at least 16 characters.
    pub secret: String,
    /// Seconds one delivery may take, connecting included.
    pub timeout_secs: u64,
    /// Deliveries tried before a notification is given up.
    pub max_attempts: u32,
    /// The wait before the second attempt, doubled after each failure up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// The share of a request's time to answer after which a pending request is escalated; 1
    /// sends no escalation (the expiry is sent instead).
    pub escalate_after: f64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            secret: String::new(),
            timeout_secs: 10,
            max_attempts: 8,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            escalate_after: 0.5,
        }
    }
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout_secs", &self.timeout_secs)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("escalate_after", &self.escalate_after)
            .finish()
    }
}

impl WebhookSettings {
    /// What is wrong with these settings, by key under `webhook.`.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        let ranged = [
            (
                "timeout_secs",
                out_of_range(self.timeout_secs, ranges::HEADER_TIMEOUT_SECS),
            ),
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
            (
                "escalate_after",
                out_of_range(self.escalate_after, (0.0, 1.0)),
            ),
        ];
        found.extend(ranged.into_iter().filter_map(|(k, p)| p.map(|p| (k, p))));
        if self.backoff_max_ms < self.backoff_initial_ms {
            found.push((
                "backoff_max_ms",
                format!(
                    "is {}; it must be at least backoff_initial_ms ({})",
                    self.backoff_max_ms, self.backoff_initial_ms
                ),
            ));
        }
        if self.url.is_empty() {
            return found;
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://"))
            || self.url.parse::<ureq::http::Uri>().is_err()
        {
            found.push((
                "url",
                format!("`{}` is not an http:// or https:// URL", self.url),
            ));
        }
        if self.secret.chars().count() < MIN_TOKEN_CHARS {
            found.push((
                "secret",
                format!(
                    "is too short for a signing key; use at least {MIN_TOKEN_CHARS} random characters (CAMPAIGND__WEBHOOK__SECRET keeps it out of the file)"
                ),
            ));
        }
        found
    }
}

/// One bearer token of the API. Its `Debug` form hides the secret, so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds the token, for logs and audit (never the secret itself).
    pub name: String,
    /// The secret, at least 16 characters.
    pub token: String,
    /// `organization` or `organization/client`; absent for an operator token, which may do
    /// everything.
    #[serde(default)]
    pub tenant: Option<String>,
    /// What the token may do: `read-only` (read), `approver` (also answer approval requests and
    /// post observations) or `operator` (everything; only a token without a tenant). Absent: an
    /// operator's without a tenant, an approver's with one.
    #[serde(default)]
    pub role: Option<Role>,
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ReadOnly,
    Approver,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::Approver => "approver",
            Role::Operator => "operator",
        }
    }
}

impl ApiToken {
    /// The token's role: the configured one, else by whether it has a tenant.
    pub fn role(&self) -> Role {
        self.role.unwrap_or(if self.tenant.is_none() {
            Role::Operator
        } else {
            Role::Approver
        })
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// The shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The body of a `tokens_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<ApiToken>,
}

/// Checks a list of tokens; `prefix` is the key path of the list (`api.tokens` or `tokens`).
fn token_problems(tokens: &[ApiToken], prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let key = |field: &str| format!("{prefix}[{index}].{field}");
        if token.name.trim().is_empty() {
            found.push((key("name"), "must not be empty".to_owned()));
        }
        if token.role == Some(Role::Operator) && token.tenant.is_some() {
            found.push((
                key("role"),
                "is operator, which sees every tenant; remove `tenant`, or give the token role = \"approver\" or \"read-only\"".to_owned(),
            ));
        }
        if token.token.chars().count() < MIN_TOKEN_CHARS {
            found.push((
                key("token"),
                format!("is too short; use at least {MIN_TOKEN_CHARS} random characters"),
            ));
        }
        if token
            .token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            found.push((
                key("token"),
                "must not contain spaces or control characters".to_owned(),
            ));
        }
        if let Some(tenant) = &token.tenant {
            let parts: Vec<&str> = tenant.split('/').collect();
            let well_formed = parts.len() <= 2
                && parts.iter().all(|p| {
                    !p.is_empty() && !p.chars().any(|c| c.is_whitespace() || c.is_control())
                });
            if !well_formed {
                found.push((
                    key("tenant"),
                    format!("`{tenant}` is not `organization` or `organization/client`"),
                ));
            }
        }
        if tokens[..index].iter().any(|other| other.name == token.name) {
            found.push((key("name"), format!("`{}` names two tokens", token.name)));
        }
        if tokens[..index]
            .iter()
            .any(|other| other.token == token.token)
        {
            found.push((
                key("token"),
                "is the same secret as an earlier token".to_owned(),
            ));
        }
    }
    found
}

/// A problem about a token's value must not repeat the value: it is (or was meant to be) a secret,
/// and problems end up in logs and API answers. The line and column stay.
fn hide_secret(mut problem: Problem) -> Problem {
    if problem.key.ends_with(".token") {
        let at = problem
            .message
            .rfind(" (line ")
            .map(|i| problem.message[i..].to_owned())
            .unwrap_or_default();
        problem.message = format!(
            "must be a string of at least {MIN_TOKEN_CHARS} characters (the value is not repeated: it is a secret){at}"
        );
    }
    problem
}

/// Reads `api.tokens_file` and appends its entries to `api.tokens`, reporting problems against
/// that file. Relative paths are relative to the current folder, like every path in the config.
fn load_tokens_file(api: &mut ApiSettings, file: &str, env: &EnvOverrides) -> Vec<Problem> {
    let Some(path) = api.tokens_file.clone() else {
        return Vec::new();
    };
    let label = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            let message = format!("cannot read `{label}`: {e}");
            return vec![match env_var_for("api.tokens_file", env) {
                Some(variable) => Problem::new(
                    "environment",
                    format!("{variable} (api.tokens_file)"),
                    message,
                ),
                None => Problem::new(file, "api.tokens_file", message),
            }];
        }
    };
    if let Some(message) = exposed_secret_file(&path) {
        return vec![Problem::new(label, "", message)];
    }
    let parsed: TokensFile = match toml::from_str(&text) {
        Ok(parsed) => parsed,
        Err(e) => return vec![hide_secret(problem::deserialize_problem(&label, &text, &e))],
    };
    let problems: Vec<Problem> = token_problems(&parsed.tokens, "tokens")
        .into_iter()
        .map(|(key, message)| Problem::new(label.clone(), key, message))
        .collect();
    if !problems.is_empty() {
        return problems;
    }
    api.tokens.extend(parsed.tokens);
    let together = token_problems(&api.tokens, "api.tokens");
    together
        .into_iter()
        .map(|(key, message)| {
            Problem::new(
                label.clone(),
                "tokens",
                format!("together with {file}: {key} {message}"),
            )
        })
        .collect()
}

/// Why a file of secrets may not be used: it is readable (or writable) by group or others. The
/// tokens are the API's keys; anyone else on the machine who can read them can act as an operator.
fn exposed_secret_file(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "has mode {mode:04o}, so users other than campaignd's can read the API tokens; make it readable by its owner only: chmod 600 {}",
            path.display()
        )
    })
}

/// Where the main config came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// The file given with `--config` or `CAMPAIGND_CONFIG`.
    Explicit(PathBuf),
    /// `config/campaignd.toml` in the current folder.
    Default(PathBuf),
    /// No file: the defaults compiled into the binary.
    Embedded,
}

impl ConfigSource {
    /// How problems name this source.
    pub fn label(&self) -> String {
        match self {
            ConfigSource::Explicit(path) | ConfigSource::Default(path) => {
                path.display().to_string()
            }
            ConfigSource::Embedded => "<embedded config/campaignd.toml>".to_owned(),
        }
    }
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// Environment overrides: variable name → value, only the `CAMPAIGND__…` ones.
pub type EnvOverrides = BTreeMap<String, String>;

/// The overrides in this process's environment. Variables that are not valid Unicode cannot be
/// overrides and are skipped.
pub fn env_overrides() -> EnvOverrides {
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect()
}

/// Reads, layers (file, then environment) and validates the main config.
pub(super) fn load(
    source: &ConfigSource,
    text: &str,
    env: &EnvOverrides,
) -> Result<Config, Vec<Problem>> {
    let file = source.label();
    let syntax = problem::syntax_problems(&file, text);
    if !syntax.is_empty() {
        return Err(syntax);
    }
    // The file on its own first: toml's errors carry spans, which give the key and the line.
    let from_file: Config = toml::from_str(text)
        .map_err(|e| vec![hide_secret(problem::deserialize_problem(&file, text, &e))])?;
    let config = if env.is_empty() {
        from_file
    } else {
        with_env(text, env)?
    };
    let mut config = config;
    let factor_written =
        written(text, "clock", "factor") || env_var_for("clock.factor", env).is_some();
    let mut problems = validate(&config, &file, env, factor_written);
    if problems.is_empty() {
        problems = load_tokens_file(&mut config.api, &file, env);
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Layers the environment over the (already valid) file with the config crate.
fn with_env(text: &str, env: &EnvOverrides) -> Result<Config, Vec<Problem>> {
    let environment = config::Environment::with_prefix(ENV_PREFIX)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("runtime.command_senders")
        .source(Some(
            env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ));
    let layered = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(environment)
        .build()
        .map_err(|error| vec![env_problem(&error, env)])?;
    // The config crate only layers. Deserializing its result through toml once more gives the
    // overrides the same checks and the same wording as the file's own keys.
    let merged = layered
        .clone()
        .try_deserialize::<toml::Table>()
        .ok()
        .and_then(|table| toml::to_string(&table).ok());
    match merged {
        Some(merged) => toml::from_str::<Config>(&merged).map_err(|error| {
            let found = problem::deserialize_problem("environment", &merged, &error);
            // Lines and columns would point into the merged text, which nobody wrote.
            let message = match found.message.rfind(" (line ") {
                Some(at) => found.message[..at].to_owned(),
                None => found.message.clone(),
            };
            let key = match env_var_for(&found.key, env) {
                Some(variable) => format!("{variable} ({})", found.key),
                None => found.key,
            };
            vec![Problem::new("environment", key, message)]
        }),
        None => layered
            .try_deserialize::<Config>()
            .map_err(|error| vec![env_problem(&error, env)]),
    }
}

/// The file was valid alone, so an error after layering comes from an override: name its variable.
fn env_problem(error: &config::ConfigError, env: &EnvOverrides) -> Problem {
    use config::ConfigError;
    let (mut key, message) = match error {
        ConfigError::Type {
            key,
            unexpected,
            expected,
            ..
        } => (
            key.clone().unwrap_or_default(),
            format!("expected {expected}, found {unexpected}"),
        ),
        ConfigError::At { key, error, .. } => (
            key.clone().unwrap_or_default(),
            problem::humanize(&error.to_string()),
        ),
        other => (String::new(), problem::humanize(&other.to_string())),
    };
    if let Some(rest) = message.strip_prefix("unknown key `")
        && let Some((field, _)) = rest.split_once('`')
    {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(field);
    }
    let variable = env_var_for(&key, env);
    let key = match variable {
        Some(variable) => format!("{variable} ({key})"),
        None => key,
    };
    Problem::new("environment", key, message)
}

/// The override variable that sets `key` (`log.format` → `CAMPAIGND__LOG__FORMAT`), if one is set.
pub fn env_var_for(key: &str, env: &EnvOverrides) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let wanted = format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        key.replace('.', ENV_SEPARATOR)
    );
    env.keys()
        .find(|name| name.eq_ignore_ascii_case(&wanted))
        .cloned()
}

/// Whether the file itself writes `[section] key` (as opposed to taking its default).
fn written(text: &str, section: &str, key: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|table| table.get(section)?.get(key).map(|_| ()))
        .is_some()
}

/// The range every numeric setting must be in, inclusive, as docs/configuration.md lists them.
/// Values outside these would overflow a timer, a channel bound or a date somewhere downstream.
pub mod ranges {
    /// `daemon.shutdown_timeout_secs`: up to an hour.
    pub const SHUTDOWN_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
    /// `kb.batch_max`.
    pub const KB_BATCH_MAX: (usize, usize) = (1, 65_536);
    /// `kb.queue_capacity`.
    pub const KB_QUEUE_CAPACITY: (usize, usize) = (1, 1_048_576);
    /// `kb.cache_capacity_bytes`: 1 MiB to 64 GiB (sled cannot run on an empty cache).
    pub const KB_CACHE_CAPACITY_BYTES: (u64, u64) = (1_048_576, 68_719_476_736);
    /// `protocol.max_message_bytes` and `api.body_limit_bytes`: 1 KiB to 64 MiB.
    pub const MESSAGE_BYTES: (usize, usize) = (1_024, 67_108_864);
    /// `runtime.mailbox` and an agent's `mailbox`.
    pub const MAILBOX: (usize, usize) = (1, 1_048_576);
    /// `runtime.workers` and an agent's `workers`; 0 means one per core.
    pub const WORKERS: (usize, usize) = (0, 256);
    /// `runtime.request_timeout_ms` and an agent's `request_timeout_ms`: up to an hour.
    pub const REQUEST_TIMEOUT_MS: (u64, u64) = (1, 3_600_000);
    /// `clock.factor`: what an accelerated clock accepts.
    pub const CLOCK_FACTOR: (f64, f64) = crate::runtime::clock::FACTOR_RANGE;
    /// `[agent.supervision] max_restarts`.
    pub const MAX_RESTARTS: (u32, u32) = (0, 1_000);
    /// `[agent.supervision] within_secs`: up to a day.
    pub const WITHIN_SECS: (u64, u64) = (1, 86_400);
    /// `[agent.supervision] backoff_initial_ms` and `backoff_max_ms`: up to an hour.
    pub const BACKOFF_MS: (u64, u64) = (1, 3_600_000);
    /// `api.header_timeout_secs`: up to five minutes.
    pub const HEADER_TIMEOUT_SECS: (u64, u64) = (1, 300);
    /// `api.body_timeout_secs`: up to an hour.
    pub const BODY_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
    /// `api.idle_timeout_secs`: up to an hour.
    pub const IDLE_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
    /// `api.max_connections` (lowered at start below the open-file limit).
    pub const MAX_CONNECTIONS: (usize, usize) = (1, 65_536);
    /// `webhook.max_attempts`.
    pub const WEBHOOK_ATTEMPTS: (u32, u32) = (1, 100);
}

/// `is V; it must be between LO and HI` when `value` is outside the inclusive `range`.
pub(super) fn out_of_range<T: PartialOrd + std::fmt::Display>(
    value: T,
    (lo, hi): (T, T),
) -> Option<String> {
    // NaN is in no range: both comparisons are false.
    let inside = value >= lo && value <= hi;
    (!inside).then(|| format!("is {value}; it must be between {lo} and {hi}"))
}

/// Checks the values types cannot: ranges, names, filters.
fn validate(config: &Config, file: &str, env: &EnvOverrides, factor_written: bool) -> Vec<Problem> {
    let mut found: Vec<(&str, String)> = Vec::new();
    let mut check = |ok: bool, key: &'static str, message: String| {
        if !ok {
            found.push((key, message));
        }
    };
    let d = &config.daemon;
    check(
        !d.data_dir.as_os_str().is_empty(),
        "daemon.data_dir",
        "must not be empty".into(),
    );
    check(
        !d.agents_dir.as_os_str().is_empty(),
        "daemon.agents_dir",
        "must not be empty".into(),
    );
    check(
        !d.campaigns_dir.as_os_str().is_empty(),
        "daemon.campaigns_dir",
        "must not be empty".into(),
    );
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.filter) {
        check(
            false,
            "log.filter",
            format!("`{}` is not a valid tracing filter: {e}", config.log.filter),
        );
    }
    for sender in &config.runtime.command_senders {
        check(
            super::is_snake_case(sender),
            "runtime.command_senders",
            format!("`{sender}` is not an agent name (lowercase letters, digits and `_`)"),
        );
    }
    let clock = &config.clock;
    // A factor with a clock that ignores it is almost always a forgotten `mode` (or a `mode =
    // "real"` put in for production with the simulation's factor left behind).
    check(
        clock.mode == ClockMode::Accelerated || !factor_written,
        "clock.factor",
        format!(
            "is {}, but only an accelerated clock uses it; set clock.mode = \"accelerated\" or remove the factor",
            clock.factor
        ),
    );
    let api = &config.api;
    check(
        api.listen.parse::<std::net::SocketAddr>().is_ok(),
        "api.listen",
        format!(
            "`{}` is not an address like 127.0.0.1:8080 (an IP address and a port)",
            api.listen
        ),
    );

    let kb = &config.kb;
    let rt = &config.runtime;
    let ranged = [
        (
            "daemon.shutdown_timeout_secs",
            out_of_range(d.shutdown_timeout_secs, ranges::SHUTDOWN_TIMEOUT_SECS),
        ),
        (
            "kb.batch_max",
            out_of_range(kb.batch_max, ranges::KB_BATCH_MAX),
        ),
        (
            "kb.queue_capacity",
            out_of_range(kb.queue_capacity, ranges::KB_QUEUE_CAPACITY),
        ),
        (
            "kb.max_record_bytes",
            out_of_range(kb.max_record_bytes, (1, kb::MAX_RECORD_BYTES_CEILING)),
        ),
        (
            "kb.cache_capacity_bytes",
            out_of_range(kb.cache_capacity_bytes, ranges::KB_CACHE_CAPACITY_BYTES),
        ),
        (
            "protocol.max_message_bytes",
            out_of_range(config.protocol.max_message_bytes, ranges::MESSAGE_BYTES),
        ),
        ("runtime.mailbox", out_of_range(rt.mailbox, ranges::MAILBOX)),
        ("runtime.workers", out_of_range(rt.workers, ranges::WORKERS)),
        (
            "runtime.request_timeout_ms",
            out_of_range(rt.request_timeout_ms, ranges::REQUEST_TIMEOUT_MS),
        ),
        (
            "clock.factor",
            out_of_range(clock.factor, ranges::CLOCK_FACTOR),
        ),
        (
            "api.body_limit_bytes",
            out_of_range(api.body_limit_bytes, ranges::MESSAGE_BYTES),
        ),
        (
            "api.header_timeout_secs",
            out_of_range(api.header_timeout_secs, ranges::HEADER_TIMEOUT_SECS),
        ),
        (
            "api.body_timeout_secs",
            out_of_range(api.body_timeout_secs, ranges::BODY_TIMEOUT_SECS),
        ),
        (
            "api.idle_timeout_secs",
            out_of_range(api.idle_timeout_secs, ranges::IDLE_TIMEOUT_SECS),
        ),
        (
            "api.max_connections",
            out_of_range(api.max_connections, ranges::MAX_CONNECTIONS),
        ),
    ];
    for (key, problem) in ranged {
        if let Some(message) = problem {
            found.push((key, message));
        }
    }
    let mut found: Vec<(String, String)> = found
        .into_iter()
        .map(|(key, message)| (key.to_owned(), message))
        .collect();
    found.extend(token_problems(&api.tokens, "api.tokens"));
    found.extend(
        config
            .approvals
            .problems()
            .into_iter()
            .map(|(key, message)| (format!("approvals.{key}"), message)),
    );
    found.extend(
        config
            .webhook
            .problems()
            .into_iter()
            .map(|(key, message)| (format!("webhook.{key}"), message)),
    );
    found.extend(config.outbox.problems());
    found.extend(super::connectors::problems(&config.connectors));

    found
        .into_iter()
        .map(|(key, message)| match env_var_for(&key, env) {
            Some(variable) => Problem::new("environment", format!("{variable} ({key})"), message),
            None => Problem::new(file, key, message),
        })
        .collect()
}

/// The folders named in a config that did not load, so agents and campaigns can still be checked.
pub(super) fn folders_of_broken(text: &str) -> (PathBuf, PathBuf) {
    let defaults = DaemonSettings::default();
    let table: Option<toml::Table> = toml::from_str(text).ok();
    let folder = |key: &str, default: PathBuf| {
        table
            .as_ref()
            .and_then(|t| t.get("daemon"))
            .and_then(|d| d.get(key))
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
            .unwrap_or(default)
    };
    (
        folder("agents_dir", defaults.agents_dir),
        folder("campaigns_dir", defaults.campaigns_dir),
    )
}

/// Whether `path` is the default `config/campaignd.toml`.
pub(super) fn default_path() -> &'static Path {
    Path::new("config/campaignd.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvOverrides {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_text(text: &str, pairs: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        load(&ConfigSource::Explicit("c.toml".into()), text, &env(pairs))
    }

    #[test]
    fn embedded_file_equals_the_defaults_in_code() {
        let parsed = load(
            &ConfigSource::Embedded,
            EMBEDDED_CONFIG,
            &EnvOverrides::new(),
        )
        .unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(load_text("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load_text(
            "[log]\nformat = \"pretty\"\n[clock]\nmode = \"accelerated\"\nfactor = 60.0\nstart = 2026-09-01T00:00:00Z\n",
            &[
                ("CAMPAIGND__LOG__FORMAT", "json"),
                ("CAMPAIGND__DAEMON__SHUTDOWN_TIMEOUT_SECS", "5"),
                ("CAMPAIGND__RUNTIME__COMMAND_SENDERS", "orchestrator,planner"),
            ],
        )
        .unwrap();
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.daemon.shutdown_timeout_secs, 5);
        assert_eq!(config.runtime.command_senders, ["orchestrator", "planner"]);
        assert_eq!(config.clock.factor, 60.0);
        assert_eq!(
            config.clock.start,
            Some("2026-09-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn a_bad_override_names_the_variable() {
        let problems =
            load_text("", &[("CAMPAIGND__DAEMON__SHUTDOWN_TIMEOUT_SECS", "soon")]).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].file, "environment");
        assert_eq!(
            problems[0].key,
            "CAMPAIGND__DAEMON__SHUTDOWN_TIMEOUT_SECS (daemon.shutdown_timeout_secs)"
        );
        assert!(problems[0].message.contains("\"soon\""), "{}", problems[0]);

        let problems = load_text("", &[("CAMPAIGND__LOG__FORMATT", "json")]).unwrap_err();
        assert_eq!(problems[0].key, "CAMPAIGND__LOG__FORMATT (log.formatt)");

        let problems = load_text("", &[("CAMPAIGND__LOG__FORMAT", "xml")]).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "environment: CAMPAIGND__LOG__FORMAT (log.format): unknown value `xml`, expected `pretty` or `json`"
        );

        let problems = load_text("", &[("CAMPAIGND__CLOCK__FACTOR", "0")]).unwrap_err();
        assert_eq!(problems[0].key, "CAMPAIGND__CLOCK__FACTOR (clock.factor)");
    }

    #[test]
    fn every_invalid_value_is_reported() {
        let problems = load_text(
            "[daemon]\nshutdown_timeout_secs = 0\n[log]\nfilter = \"campaignd=loud\"\n[kb]\nbatch_max = 0\n[clock]\nmode = \"real\"\nfactor = -1.0\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "log.filter",
                "clock.factor",
                "daemon.shutdown_timeout_secs",
                "kb.batch_max",
                "clock.factor"
            ]
        );
        assert!(problems.iter().all(|p| p.file == "c.toml"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let problems = load_text("[log]\nformatt = \"json\"\n", &[]).unwrap_err();
        assert_eq!(problems[0].key, "log.formatt");
        let problems = load_text("[market]\nseed = \"lucky\"\n", &[]).unwrap_err();
        assert_eq!(problems[0].key, "market.seed");
        let problems = load_text("[clock]\nstart = \"tomorrow\"\n", &[]).unwrap_err();
        assert_eq!(problems[0].key, "clock.start");
        let problems = load_text("[log]\nformat = \"xml\"\n", &[]).unwrap_err();
        assert_eq!(problems[0].key, "log.format");
        assert!(
            problems[0].message.starts_with("unknown value `xml`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn api_settings_name_the_key_at_fault() {
        let problems = load_text(
            "[api]\nlisten = \"localhost\"\nbody_limit_bytes = 10\n[[api.tokens]]\nname = \"ops\"\ntoken = \"short\"\n[[api.tokens]]\nname = \"ops\"\ntoken = \"a-long-enough-secret\"\ntenant = \"acme/kr/x\"\n",
            &[],
        )
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "api.listen",
                "api.body_limit_bytes",
                "api.tokens[0].token",
                "api.tokens[1].tenant",
                "api.tokens[1].name"
            ]
        );
        let problems = load_text("[api]\nport = 80\n", &[]).unwrap_err();
        assert_eq!(problems[0].key, "api.port");
    }

    fn owner_only(path: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_tokens_file_others_can_read_is_refused_naming_the_mode_to_set() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.toml");
        std::fs::write(
            &file,
            "[[tokens]]\nname = \"ops\"\ntoken = \"ops-secret-0123456789\"\n",
        )
        .unwrap();
        let text = format!("[api]\ntokens_file = {:?}\n", file.display().to_string());
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let problems = load_text(&text, &[]).unwrap_err();
            assert_eq!(problems[0].file, file.display().to_string());
            assert!(
                problems[0].message.contains(&format!("mode {mode:04o}")),
                "{}",
                problems[0]
            );
            assert!(problems[0].message.contains("chmod 600"), "{}", problems[0]);
        }
        owner_only(&file);
        assert_eq!(load_text(&text, &[]).unwrap().api.tokens.len(), 1);
    }

    #[test]
    fn numbers_outside_their_range_are_refused_with_the_range() {
        for (text, key, range) in [
            (
                "[clock]\nfactor = 1e300\n",
                "clock.factor",
                "between 0.001 and 10000000",
            ),
            (
                "[daemon]\nshutdown_timeout_secs = 9223372036854775807\n",
                "daemon.shutdown_timeout_secs",
                "between 1 and 3600",
            ),
            (
                "[kb]\ncache_capacity_bytes = 0\n",
                "kb.cache_capacity_bytes",
                "between 1048576 and 68719476736",
            ),
            (
                "[runtime]\nmailbox = 9223372036854775807\n",
                "runtime.mailbox",
                "between 1 and 1048576",
            ),
            (
                "[runtime]\nrequest_timeout_ms = 18446744073709551615\n",
                "runtime.request_timeout_ms",
                "between 1 and 3600000",
            ),
            (
                "[kb]\nqueue_capacity = 0\n",
                "kb.queue_capacity",
                "between 1 and 1048576",
            ),
        ] {
            let problems = load_text(text, &[]).unwrap_err();
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert_eq!(problems[0].key, key);
            assert!(problems[0].message.contains(range), "{}", problems[0]);
        }
    }

    #[test]
    fn a_factor_written_beside_a_clock_that_ignores_it_is_refused() {
        for text in [
            "[clock]\nmode = \"real\"\nfactor = 172800.0\n",
            "[clock]\nmode = \"manual\"\nfactor = 1.0\n",
        ] {
            let problems = load_text(text, &[]).unwrap_err();
            assert_eq!(problems[0].key, "clock.factor", "{text}");
        }
        let problems = load_text(
            "[clock]\nmode = \"real\"\n",
            &[("CAMPAIGND__CLOCK__FACTOR", "60")],
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "CAMPAIGND__CLOCK__FACTOR (clock.factor)");
        assert!(load_text("[clock]\nmode = \"real\"\n", &[]).is_ok());
    }

    #[test]
    fn tokens_file_entries_join_the_inline_ones_and_stay_out_of_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.toml");
        std::fs::write(
            &file,
            "[[tokens]]\nname = \"acme\"\ntoken = \"acme-secret-0123456789\"\ntenant = \"acme\"\n",
        )
        .unwrap();
        let text = format!(
            "[api]\ntokens_file = {:?}\n[[api.tokens]]\nname = \"ops\"\ntoken = \"ops-secret-0123456789\"\n",
            file.display().to_string()
        );
        owner_only(&file);
        let config = load_text(&text, &[]).unwrap();
        let names: Vec<&str> = config.api.tokens.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ops", "acme"]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret-0123456789"), "{shown}");

        std::fs::write(&file, "[[tokens]]\nname = \"acme\"\ntoken = \"tiny\"\n").unwrap();
        let problems = load_text(&text, &[]).unwrap_err();
        assert_eq!(problems[0].file, file.display().to_string());
        assert_eq!(problems[0].key, "tokens[0].token");

        std::fs::write(
            &file,
            "[[tokens]]\nname = \"acme\"\ntoken = 98765432109876543210\n",
        )
        .unwrap();
        let problems = load_text(&text, &[]).unwrap_err();
        assert_eq!(problems[0].key, "tokens[0].token");
        assert!(!problems[0].message.contains("98765"), "{}", problems[0]);
        assert!(problems[0].message.contains("line 3"), "{}", problems[0]);

        let missing = format!(
            "[api]\ntokens_file = {:?}\n",
            dir.path().join("nope.toml").display().to_string()
        );
        let problems = load_text(&missing, &[]).unwrap_err();
        assert_eq!(problems[0].key, "api.tokens_file");
    }

    #[test]
    fn folders_are_read_from_a_broken_file_when_possible() {
        let (agents, campaigns) = folders_of_broken("[daemon]\nagents_dir = \"a\"\nbogus = 1\n");
        assert_eq!(agents, PathBuf::from("a"));
        assert_eq!(campaigns, PathBuf::from("config/campaigns"));
    }
}
