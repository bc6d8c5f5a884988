//! Agent definitions: `agents/<name>.toml`, one per agent. The `[agent]` section says how the
//! runtime treats the agent (enabled, mailbox, subscriptions, timeout, supervision); the optional
//! `[playbook]` table is the agent's domain data, kept raw here and parsed by the agent's own
//! domain module (see [`AgentDefinition::parse_playbook`]).
//!
//! The file stem is the agent's name. This module reads and validates definitions; it must never
//! interpret a playbook or start an agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::config::{RuntimeSettings, out_of_range, ranges};
use super::problem::{self, Problem};
use super::{SourceFile, is_snake_case};
use crate::protocol::{AgentName, Topic};
use crate::runtime::{AgentSpec, SupervisionPolicy};

/// The shipped definitions (generated from `agents/` at build time), used when the default
/// `agents/` folder does not exist.
pub const EMBEDDED_AGENTS: &[(&str, &str)] = super::embedded::AGENTS;

/// One agent as its definition file declares it, with the `[runtime]` defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentDefinition {
    /// The file stem.
    pub name: AgentName,
    /// Where the definition came from, as problems name it.
    pub file: String,
    pub enabled: bool,
    /// How many workers run the agent (resolved: at least 1).
    pub workers: usize,
    /// Messages admitted before senders are answered "overloaded".
    pub mailbox: usize,
    pub subscribe: Vec<Topic>,
    pub request_timeout: Duration,
    pub supervision: Supervision,
    /// The `[playbook]` table, unparsed; `None` when the file has none.
    pub playbook: Option<toml::Table>,
    /// The file's text, kept so a playbook parser can report lines and key paths.
    text: String,
}

/// `[agent.supervision]`: OTP-style restart intensity with exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supervision {
    /// At most this many restarts within `within`; past that the agent is isolated.
    pub max_restarts: u32,
    pub within: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl AgentDefinition {
    /// The runtime's view of this definition.
    pub fn spec(&self) -> AgentSpec {
        let s = self.supervision;
        AgentSpec {
            name: self.name.clone(),
            workers: self.workers,
            mailbox: self.mailbox,
            subscribe: self.subscribe.clone(),
            request_timeout: self.request_timeout,
            supervision: SupervisionPolicy {
                max_restarts: s.max_restarts,
                within: s.within,
                backoff_initial: s.backoff_initial,
                backoff_max: s.backoff_max,
            },
        }
    }

    /// Parses the `[playbook]` table into a domain type, reporting errors with this file, the key
    /// path under `playbook` and the line, like every other config problem.
    pub fn parse_playbook<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        #[derive(Deserialize)]
        struct File<T> {
            playbook: T,
            #[serde(rename = "agent")]
            _agent: IgnoredAny,
        }
        toml::from_str::<File<T>>(&self.text)
            .map(|file| file.playbook)
            .map_err(|e| problem::deserialize_problem(&self.file, &self.text, &e))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    agent: RawAgent,
    #[serde(default)]
    playbook: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    workers: Option<usize>,
    #[serde(default)]
    mailbox: Option<usize>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    request_timeout_ms: Option<u64>,
    #[serde(default)]
    supervision: RawSupervision,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSupervision {
    max_restarts: u32,
    within_secs: u64,
    backoff_initial_ms: u64,
    backoff_max_ms: u64,
}

impl Default for RawSupervision {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within_secs: 60,
            backoff_initial_ms: 100,
            backoff_max_ms: 5000,
        }
    }
}

/// Parses and validates one definition file.
pub(super) fn parse(
    source: &SourceFile,
    defaults: &RuntimeSettings,
) -> Result<AgentDefinition, Vec<Problem>> {
    let file = source.label.as_str();
    let text = source.text.as_str();
    let mut problems = Vec::new();
    if !is_snake_case(&source.stem) {
        problems.push(Problem::new(
            file,
            "",
            format!(
                "`{}` is not a valid agent name: the file name must be lowercase letters, digits and `_`, starting with a letter",
                source.stem
            ),
        ));
    }
    let syntax = problem::syntax_problems(file, text);
    if !syntax.is_empty() {
        problems.extend(syntax);
        return Err(problems);
    }
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(problem::deserialize_problem(file, text, &e));
            return Err(problems);
        }
    };
    let agent = raw.agent;
    let sup = agent.supervision;
    let mut range = |problem: Option<String>, key: &str| {
        if let Some(message) = problem {
            problems.push(Problem::new(file, key, message));
        }
    };
    if let Some(mailbox) = agent.mailbox {
        range(out_of_range(mailbox, ranges::MAILBOX), "agent.mailbox");
    }
    if let Some(workers) = agent.workers {
        range(out_of_range(workers, ranges::WORKERS), "agent.workers");
    }
    if let Some(timeout) = agent.request_timeout_ms {
        range(
            out_of_range(timeout, ranges::REQUEST_TIMEOUT_MS),
            "agent.request_timeout_ms",
        );
    }
    range(
        out_of_range(sup.max_restarts, ranges::MAX_RESTARTS),
        "agent.supervision.max_restarts",
    );
    range(
        out_of_range(sup.within_secs, ranges::WITHIN_SECS),
        "agent.supervision.within_secs",
    );
    range(
        out_of_range(sup.backoff_initial_ms, ranges::BACKOFF_MS),
        "agent.supervision.backoff_initial_ms",
    );
    range(
        out_of_range(sup.backoff_max_ms, ranges::BACKOFF_MS),
        "agent.supervision.backoff_max_ms",
    );
    let mut check = |ok: bool, key: &str, message: String| {
        if !ok {
            problems.push(Problem::new(file, key, message));
        }
    };
    for (index, topic) in agent.subscribe.iter().enumerate() {
        check(
            is_snake_case(topic),
            &format!("agent.subscribe[{index}]"),
            format!("`{topic}` is not a topic name (lowercase letters, digits and `_`)"),
        );
    }
    check(
        sup.backoff_initial_ms <= sup.backoff_max_ms,
        "agent.supervision.backoff_max_ms",
        format!(
            "is {} ms, less than backoff_initial_ms ({} ms); the backoff starts at the initial delay and grows up to the maximum",
            sup.backoff_max_ms, sup.backoff_initial_ms
        ),
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(AgentDefinition {
        name: AgentName::new(source.stem.clone()),
        file: source.label.clone(),
        enabled: agent.enabled,
        workers: RuntimeSettings::resolve_workers(agent.workers.unwrap_or(defaults.workers)),
        mailbox: agent.mailbox.unwrap_or(defaults.mailbox),
        subscribe: agent.subscribe.into_iter().map(Topic::new).collect(),
        request_timeout: Duration::from_millis(
            agent
                .request_timeout_ms
                .unwrap_or(defaults.request_timeout_ms),
        ),
        supervision: Supervision {
            max_restarts: sup.max_restarts,
            within: Duration::from_secs(sup.within_secs),
            backoff_initial: Duration::from_millis(sup.backoff_initial_ms),
            backoff_max: Duration::from_millis(sup.backoff_max_ms),
        },
        playbook: raw.playbook,
        text: source.text.clone(),
    })
}

/// The runtime's view of the shipped `agents/*.toml` (as compiled in), with the `[runtime]`
/// defaults: what tests, benchmarks and examples start so that they run the production mailboxes,
/// subscriptions and supervision. A shipped file that does not parse is a build defect, reported
/// with its problems.
pub fn shipped_agent_specs() -> Result<Vec<AgentSpec>, super::Problems> {
    let defaults = RuntimeSettings::default();
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for file in embedded(Path::new("agents")) {
        match parse(&file, &defaults) {
            Ok(definition) if definition.enabled => specs.push(definition.spec()),
            Ok(_) => {}
            Err(found) => problems.extend(found),
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(super::Problems(problems))
    }
}

/// The embedded definitions as source files, labelled so problems say where they came from.
pub(super) fn embedded(dir: &Path) -> Vec<SourceFile> {
    EMBEDDED_AGENTS
        .iter()
        .map(|(name, text)| SourceFile {
            label: format!(
                "<embedded {}>",
                PathBuf::from(dir).join(format!("{name}.toml")).display()
            ),
            stem: (*name).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(stem: &str, text: &str) -> SourceFile {
        SourceFile {
            label: format!("agents/{stem}.toml"),
            stem: stem.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn the_shipped_definitions_load() {
        for source in embedded(Path::new("agents")) {
            let def = parse(&source, &RuntimeSettings::default()).unwrap();
            assert!(def.enabled);
            assert_eq!(def.supervision.max_restarts, 3);
        }
    }

    #[test]
    fn runtime_defaults_fill_what_the_file_leaves_out() {
        let defaults = RuntimeSettings {
            mailbox: 7,
            request_timeout_ms: 250,
            ..RuntimeSettings::default()
        };
        let def = parse(&source("scout", "[agent]\n"), &defaults).unwrap();
        assert_eq!(def.mailbox, 7);
        assert_eq!(def.request_timeout, Duration::from_millis(250));
        assert!(def.playbook.is_none());
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_key() {
        let text = "[agent]\nmailbox = 0\nsubscribe = [\"ok\", \"Not Ok\"]\n[agent.supervision]\nbackoff_initial_ms = 500\nbackoff_max_ms = 100\n";
        let problems = parse(&source("Bad-Name", text), &RuntimeSettings::default()).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "",
                "agent.mailbox",
                "agent.subscribe[1]",
                "agent.supervision.backoff_max_ms"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_types_name_the_key() {
        let problems = parse(
            &source("a", "[agent]\nmailboxx = 3\n"),
            &RuntimeSettings::default(),
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "agent.mailboxx");
        let problems = parse(
            &source("a", "[agent.supervision]\nmax_restarts = \"three\"\n"),
            &RuntimeSettings::default(),
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "agent.supervision.max_restarts");
        let problems = parse(&source("a", "[agnt]\n"), &RuntimeSettings::default()).unwrap_err();
        assert_eq!(problems[0].key, "agnt");
    }

    #[test]
    fn playbooks_parse_with_file_and_key_in_errors() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Playbook {
            rules: Vec<Rule>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rule {
            id: String,
        }
        let text = "[agent]\n[playbook]\nrules = [{ id = \"KR-AD-LABEL\" }, { id = 3 }]\n";
        let def = parse(&source("compliance", text), &RuntimeSettings::default()).unwrap();
        assert!(def.playbook.is_some());
        let problem = def.parse_playbook::<Playbook>().unwrap_err();
        assert_eq!(problem.file, "agents/compliance.toml");
        assert_eq!(problem.key, "playbook.rules[1].id");

        let ok = "[agent]\n[playbook]\nrules = [{ id = \"KR-AD-LABEL\" }]\n";
        let def = parse(&source("compliance", ok), &RuntimeSettings::default()).unwrap();
        assert_eq!(
            def.parse_playbook::<Playbook>().unwrap().rules[0].id,
            "KR-AD-LABEL"
        );
    }
}
