//! The agent registry: which Rust type runs under which agent name.
//!
//! The daemon builds one at start (one `register` line per built-in agent) and the runtime starts
//! the registered agents that config names. It must never start anything itself or read config.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::protocol::AgentName;

use super::actor::{Spawn, Spawner};
use super::agent::Agent;

/// Agent types by name.
#[derive(Clone, Default)]
pub struct Registry {
    agents: BTreeMap<AgentName, Arc<dyn Spawn>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs agent type `A` under `name` (the name of its `agents/<name>.toml`). Registering a name
    /// again replaces the earlier type.
    pub fn register<A: Agent>(&mut self, name: impl Into<AgentName>) -> &mut Self {
        self.agents
            .insert(name.into(), Arc::new(Spawner::<A>::new()));
        self
    }

    /// [`Registry::register`] in builder form.
    pub fn with<A: Agent>(mut self, name: impl Into<AgentName>) -> Self {
        self.register::<A>(name);
        self
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &AgentName> {
        self.agents.keys()
    }

    pub fn contains(&self, name: &AgentName) -> bool {
        self.agents.contains_key(name)
    }

    pub(crate) fn spawner(&self, name: &AgentName) -> Option<Arc<dyn Spawn>> {
        self.agents.get(name).cloned()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.agents.keys()).finish()
    }
}
