//! The runtime: supervised agents and the delivery of messages between them.
//!
//! Agents are ractor actors under one root supervisor. They talk through typed envelopes in three
//! ways: a request gets exactly one response or a typed [`DeliveryError`]; an event goes to every
//! agent subscribed to its topic; a command is an order only operators and the orchestrator may
//! give. Mailboxes are bounded at admission. A failed agent is restarted with backoff and rebuilds
//! its state in [`Agent::start`]; one that fails too often is isolated. The runtime knows nothing of
//! marketing: it must never depend on the knowledge base, settings or the domain; the application
//! hands it shared [`Services`] instead.
//!
//! # Layout
//!
//! - `agent`: the [`Agent`] trait, [`Request`], the `Handle…` traits and [`Routes`].
//! - `registry`: [`Registry`], agent types by name.
//! - `spec`: [`AgentSpec`] and [`SupervisionPolicy`], an agent's definition as plain values.
//! - `handle`: [`Runtime`], [`RuntimeBuilder`]: start, send from outside, status, shutdown.
//! - `context`: [`Client`] and a handler's [`Context`], which carry the chain of work on.
//! - `core`: routing, admission control, delivery. `actor`: the ractor actor around one agent.
//! - `supervisor`: restarts, backoff, isolation. `status`: [`AgentStatus`], [`AgentIsolated`].
//! - `topic`: [`EventTopic`], a topic tied to its event type.
//! - `services`: [`Services`], a typed map of shared services. `clock`: [`clock::Clock`].
//! - `metrics`: the runtime's Prometheus figures and [`metrics::describe_metrics`].

mod actor;
mod agent;
pub mod clock;
mod context;
mod core;
mod error;
mod handle;
pub mod metrics;
mod registry;
mod services;
mod spec;
mod status;
mod supervisor;
mod topic;

pub use agent::{
    Agent, HandleCommand, HandleEvent, HandleRequest, Request, Routes, ShardBy, StartContext,
};
pub use clock::Clock;
pub use context::{Client, Context};
pub use error::{AgentError, DeliveryError, ReviveError, SpawnError, StartError, Unavailable};
pub use handle::{ControlError, ORCHESTRATOR, Runtime, RuntimeBuilder, ShutdownReport};
pub use registry::Registry;
pub use services::Services;
pub use spec::{AgentSpec, SupervisionPolicy};
pub use status::{AGENT_ISOLATED, AGENT_ISOLATED_TOPIC, AgentIsolated, AgentState, AgentStatus};
pub use topic::{EventTopic, TopicFor};
