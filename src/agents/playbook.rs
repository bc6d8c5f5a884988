//! An agent's playbook: the domain data in the `[playbook]` table of its `agents/<name>.toml`
//! (rule sets, templates, channel priors, thresholds), read through one trait.
//!
//! [`Playbook`] gives reading the embedded definition, reading a configured table and validating
//! by default; a playbook type overrides what it does differently. The registry checks each
//! agent's playbook with it (so `campaignd check`, `run` and a reload refuse a broken one with its
//! file, key and line), and [`LivePlaybook`] hands an agent the playbook in force, following
//! reloads. Nothing here decides anything with a playbook.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::domain::compliance::CompliancePlaybook;
use crate::domain::content::ContentPlaybook;
use crate::domain::optimization::OptimizationPlaybook;
use crate::domain::playbook::{parse_table, table_of};
use crate::domain::strategy::StrategyPlaybook;
use crate::runtime::Services;
use crate::settings::{AgentDefinition, LiveSettings, Problem, Settings};

/// A playbook that cannot be read or is not valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PlaybookError(pub String);

impl PlaybookError {
    fn of(error: impl std::fmt::Display) -> Self {
        PlaybookError(error.to_string())
    }
}

/// The data an agent works from, kept in its definition file's `[playbook]` table.
pub trait Playbook: DeserializeOwned + Clone + Send + Sync + 'static {
    /// The compiled-in definition file whose `[playbook]` is used when the deployment has none.
    const EMBEDDED_FILE: &'static str;

    /// Checks what the types cannot (ranges, non-empty lists).
    fn validate(&self) -> Result<(), PlaybookError> {
        Ok(())
    }

    /// Reads a configured `[playbook]` table and validates it.
    fn from_table(table: &toml::Table) -> Result<Self, PlaybookError> {
        let playbook: Self = parse_table(table).map_err(PlaybookError::of)?;
        playbook.validate()?;
        Ok(playbook)
    }

    /// The playbook of the embedded definition file.
    fn embedded() -> Result<Self, PlaybookError> {
        match table_of(Self::EMBEDDED_FILE).map_err(PlaybookError::of)? {
            Some(table) => Self::from_table(&table),
            None => Err(PlaybookError(
                "the embedded definition has no [playbook] table".to_owned(),
            )),
        }
    }

    /// Every problem with `definition`'s playbook, naming its file, key and line.
    fn check(definition: &AgentDefinition) -> Option<Problem> {
        if definition.playbook.is_none() {
            return Some(Problem::new(
                &definition.file,
                "playbook",
                "missing: this agent works from a [playbook] table",
            ));
        }
        match definition.parse_playbook::<Self>() {
            Err(problem) => Some(problem),
            Ok(playbook) => playbook
                .validate()
                .err()
                .map(|e| Problem::new(&definition.file, "playbook", e.0)),
        }
    }
}

/// The built-in playbooks keep their own readers: compliance's and content's report the line in
/// the operator's file, every one validates on reading.
macro_rules! domain_playbook {
    ($type:ty, $file:expr) => {
        impl Playbook for $type {
            const EMBEDDED_FILE: &'static str = $file;

            fn validate(&self) -> Result<(), PlaybookError> {
                <$type>::validate(self).map_err(PlaybookError::of)
            }

            fn from_table(table: &toml::Table) -> Result<Self, PlaybookError> {
                <$type>::from_table(table).map_err(PlaybookError::of)
            }

            fn embedded() -> Result<Self, PlaybookError> {
                <$type>::embedded().map_err(PlaybookError::of)
            }
        }
    };
}

domain_playbook!(
    CompliancePlaybook,
    crate::domain::compliance::EMBEDDED_AGENT_FILE
);
domain_playbook!(ContentPlaybook, crate::domain::content::EMBEDDED_AGENT_FILE);
domain_playbook!(
    StrategyPlaybook,
    crate::domain::strategy::DEFAULT_STRATEGY_TOML
);
domain_playbook!(
    OptimizationPlaybook,
    crate::domain::optimization::playbook::DEFAULT_OPTIMIZATION_TOML
);

/// The settings in force: the daemon's live handle when the runtime carries one (a reload swaps
/// it), else the snapshot the runtime was built with; `None` for a runtime built without settings
/// (examples, benchmarks).
pub fn current_settings(services: &Services) -> Option<Arc<Settings>> {
    match services.get::<LiveSettings>() {
        Some(live) => Some(live.current()),
        None => services.get::<Arc<Settings>>().map(|s| Arc::clone(&*s)),
    }
}

/// An agent's playbook that follows reloads: [`LivePlaybook::refresh`] at each use re-reads it
/// only when a reload put other settings in force (a pointer comparison otherwise), and parses it
/// only when the agent's `[playbook]` table itself changed. A reloaded playbook that cannot be
/// read keeps the previous one (reload validation rejects such a change before it gets here).
pub struct LivePlaybook<P> {
    agent: &'static str,
    /// The settings `value` was last checked against.
    seen: Option<Arc<Settings>>,
    /// The table `value` was parsed from (`None`: the embedded playbook).
    table: Option<toml::Table>,
    value: P,
}

impl<P: Playbook> LivePlaybook<P> {
    /// The playbook in force for `agent` now.
    pub fn load(services: &Services, agent: &'static str) -> Result<Self, PlaybookError> {
        let seen = current_settings(services);
        let table = seen
            .as_ref()
            .and_then(|s| s.agent(agent))
            .and_then(|d| d.playbook.clone());
        let value = read::<P>(table.as_ref())
            .map_err(|e| PlaybookError(format!("the {agent} playbook cannot be read: {e}")))?;
        Ok(LivePlaybook {
            agent,
            seen,
            table,
            value,
        })
    }

    /// Takes in the settings in force; returns whether the playbook changed.
    pub fn refresh(&mut self, services: &Services) -> bool {
        let Some(current) = current_settings(services) else {
            return false;
        };
        if self.seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
            return false;
        }
        let table = current.agent(self.agent).and_then(|d| d.playbook.clone());
        self.seen = Some(current);
        if table == self.table {
            return false;
        }
        match read::<P>(table.as_ref()) {
            Ok(value) => {
                self.value = value;
                self.table = table;
                tracing::info!(agent = self.agent, "reloaded playbook in force");
                true
            }
            Err(error) => {
                tracing::error!(agent = self.agent, %error, "the reloaded playbook cannot be read; the previous one stays");
                false
            }
        }
    }

    /// The playbook as of the last refresh.
    pub fn get(&self) -> &P {
        &self.value
    }
}

/// `agent`'s playbook as `settings` define it: its file's table, else the embedded one.
pub fn in_force<P: Playbook>(settings: &Settings, agent: &str) -> Result<P, PlaybookError> {
    read(settings.agent(agent).and_then(|d| d.playbook.as_ref()))
}

fn read<P: Playbook>(table: Option<&toml::Table>) -> Result<P, PlaybookError> {
    match table {
        Some(table) => P::from_table(table),
        None => P::embedded(),
    }
}
