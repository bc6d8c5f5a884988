//! The agent registry: which Rust type runs under which agent name.
//!
//! The daemon builds one at start (one `register` line per built-in agent) and the runtime starts
//! the registered agents that config names. It must never start anything itself or read config.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::protocol::{AgentName, Topic};

use super::actor::{Spawn, Spawner};
use super::agent::{Agent, Routes};
use super::status::AGENT_ISOLATED;

/// Agent types by name, and who publishes on which topic.
#[derive(Clone)]
pub struct Registry {
    agents: BTreeMap<AgentName, Arc<dyn Spawn>>,
    /// Topic → who publishes on it (an agent's name, or a part of campaignd outside the agents).
    publishers: BTreeMap<Topic, Vec<String>>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut registry = Registry {
            agents: BTreeMap::new(),
            publishers: BTreeMap::new(),
        };
        registry.publisher(AGENT_ISOLATED, "the runtime");
        registry
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs agent type `A` under its own name, [`Agent::NAME`].
    pub fn agent<A: Agent>(mut self) -> Self {
        self.register::<A>(A::NAME);
        self
    }

    /// Notes that something other than a registered agent (`by`) publishes on `topic`.
    pub fn publisher(&mut self, topic: impl Into<Topic>, by: impl Into<String>) -> &mut Self {
        self.publishers
            .entry(topic.into())
            .or_default()
            .push(by.into());
        self
    }

    /// Who publishes on `topic`; empty when nothing does, so a subscription to it receives nothing.
    pub fn publishers_of(&self, topic: &Topic) -> &[String] {
        self.publishers.get(topic).map_or(&[], Vec::as_slice)
    }

    /// Runs agent type `A` under `name` (the name of its `agents/<name>.toml`), which may differ
    /// from [`Agent::NAME`] to run one type under several names. Registering a name again replaces
    /// the earlier type.
    pub fn register<A: Agent>(&mut self, name: impl Into<AgentName>) -> &mut Self {
        let name = name.into();
        for topic in Routes::<A>::of_agent().published() {
            self.publishers
                .entry(topic.clone())
                .or_default()
                .push(name.to_string());
        }
        self.agents.insert(name, Arc::new(Spawner::<A>::new()));
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
