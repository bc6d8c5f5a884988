//! What an operator can ask about an agent, and the event published when one is isolated.
//!
//! Plain, serializable values: the API and the command line show them as they are. Nothing here may
//! hold a handle into the running system.

use serde::{Deserialize, Serialize};

use crate::protocol::{AgentName, Payload};

use super::topic::EventTopic;

/// The topic [`AgentIsolated`] events are published on.
pub const AGENT_ISOLATED_TOPIC: &str = AGENT_ISOLATED.name();
/// The same topic, typed: its events are [`AgentIsolated`]. The runtime itself publishes on it.
pub const AGENT_ISOLATED: EventTopic<AgentIsolated> = EventTopic::new("agent_isolated");

/// Where an agent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Running,
    /// Failed; waiting for its backoff delay before it starts again.
    Restarting,
    /// Failed more often than its supervision policy allows; requests fail at once.
    Isolated,
    Stopped,
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AgentState::Running => "running",
            AgentState::Restarting => "restarting",
            AgentState::Isolated => "isolated",
            AgentState::Stopped => "stopped",
        })
    }
}

/// A snapshot of one agent's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: AgentName,
    pub state: AgentState,
    /// Restarts since the runtime started.
    pub restarts: u32,
    /// The last failure (panic message or returned error), if any.
    pub last_error: Option<String>,
    /// Messages admitted and not yet handled.
    pub in_flight: usize,
    /// The admission bound, over all workers.
    pub mailbox: usize,
    /// How many workers run the agent.
    pub workers: usize,
}

/// Published on [`AGENT_ISOLATED_TOPIC`] when an agent exceeds its restart intensity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentIsolated {
    pub agent: AgentName,
    pub restarts: u32,
    pub last_error: String,
}

impl Payload for AgentIsolated {
    const ACTION: &'static str = "agent_isolated";
}
