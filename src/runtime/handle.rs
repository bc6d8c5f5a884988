//! The runtime handle: start the agents, send to them from outside, ask how they are, stop them.
//!
//! This is the whole surface the daemon, the API and the command line use. Cloning it is cheap and
//! every clone drives the same runtime. It must never hand out an actor reference: agents are
//! reached by name only, so a restart is invisible to callers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::oneshot;

use crate::protocol::{AgentName, Envelope, Origin, Payload};

use super::agent::Request;
use super::clock::Clock;
use super::context::Client;
use super::core::{Core, Slot, Source, write};
use super::error::{DeliveryError, ReviveError, StartError};
use super::registry::Registry;
use super::services::Services;
use super::spec::AgentSpec;
use super::status::AgentStatus;
use super::supervisor::{Supervisor, SupervisorMsg};

/// The agent allowed to send commands when the builder is not told otherwise.
pub const ORCHESTRATOR: &str = "orchestrator";

/// A running set of supervised agents.
#[derive(Clone)]
pub struct Runtime {
    core: Arc<Core>,
    supervisor: ActorRef<SupervisorMsg>,
}

/// Collects what the runtime needs; [`RuntimeBuilder::start`] starts it.
pub struct RuntimeBuilder {
    registry: Registry,
    specs: Vec<AgentSpec>,
    services: Services,
    clock: Clock,
    command_senders: HashSet<AgentName>,
}

/// How a shutdown went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether every admitted message was handled before the deadline.
    pub drained: bool,
    /// Messages still admitted when the agents were stopped; their senders got `Unavailable`.
    pub abandoned: usize,
}

/// A change the runtime could not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no agent named `{0}` is running (a new agent needs a restart of campaignd)")]
    UnknownAgent(AgentName),
    #[error("agent `{0}` has mailbox = 0 in agents/{0}.toml; it must admit at least one message")]
    ZeroMailbox(AgentName),
    #[error("could not revive agent `{agent}`: {reason}")]
    Revive {
        agent: AgentName,
        reason: ReviveError,
    },
    #[error("the runtime has been shut down")]
    ShutDown,
}

impl RuntimeBuilder {
    /// Adds one agent to start.
    pub fn agent(mut self, spec: AgentSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Adds agents to start.
    pub fn agents(mut self, specs: impl IntoIterator<Item = AgentSpec>) -> Self {
        self.specs.extend(specs);
        self
    }

    /// The shared services agents reach through `ctx.services()` (the knowledge base, …).
    pub fn services(mut self, services: Services) -> Self {
        self.services = services;
        self
    }

    /// The clock that stamps envelopes and that agents read; the real clock by default.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The agents allowed to send commands (operators always may). Replaces the default, which is
    /// [`ORCHESTRATOR`] alone.
    pub fn command_senders<N: Into<AgentName>>(
        mut self,
        agents: impl IntoIterator<Item = N>,
    ) -> Self {
        self.command_senders = agents.into_iter().map(Into::into).collect();
        self
    }

    /// Starts the supervisor and every agent. Fails if an agent is not registered, defined twice,
    /// has a zero mailbox, or its `start` fails; then nothing is left running.
    pub async fn start(self) -> Result<Runtime, StartError> {
        let mut slots: HashMap<AgentName, Arc<Slot>> = HashMap::new();
        for spec in self.specs {
            if slots.contains_key(&spec.name) {
                return Err(StartError::Duplicate { agent: spec.name });
            }
            if spec.mailbox == 0 {
                return Err(StartError::ZeroMailbox { agent: spec.name });
            }
            let Some(spawner) = self.registry.spawner(&spec.name) else {
                let known: Vec<&str> = self.registry.names().map(AgentName::as_str).collect();
                return Err(StartError::NotRegistered {
                    agent: spec.name,
                    known: known.join(", "),
                });
            };
            slots.insert(spec.name.clone(), Arc::new(Slot::new(spec, spawner)));
        }
        let topics = Core::subscribers_by_topic(&slots);
        let core = Arc::new(Core {
            slots,
            topics: std::sync::RwLock::new(topics),
            services: self.services,
            clock: self.clock,
            command_senders: self.command_senders,
            accepting: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
        });
        let (supervisor, _join) = Actor::spawn(
            None,
            Supervisor {
                core: Arc::clone(&core),
            },
            (),
        )
        .await
        .map_err(|e| StartError::Supervisor(e.to_string()))?;
        let (reply, started) = oneshot::channel();
        if supervisor
            .send_message(SupervisorMsg::StartAll(reply))
            .is_err()
        {
            return Err(StartError::Supervisor(
                "the supervisor stopped before starting the agents".to_owned(),
            ));
        }
        let result = started.await.unwrap_or_else(|_| {
            Err(StartError::Supervisor(
                "the supervisor stopped while starting the agents".to_owned(),
            ))
        });
        if let Err(err) = result {
            supervisor.stop(None);
            return Err(err);
        }
        Ok(Runtime { core, supervisor })
    }
}

impl Runtime {
    /// A builder for a runtime that runs agents from `registry`.
    pub fn builder(registry: Registry) -> RuntimeBuilder {
        RuntimeBuilder {
            registry,
            specs: Vec::new(),
            services: Services::new(),
            clock: Clock::real(),
            command_senders: HashSet::from([AgentName::new(ORCHESTRATOR)]),
        }
    }

    /// A client that sends as `origin`. The caller vouches for the origin: the API should only
    /// build an operator client after authenticating the operator.
    pub fn client(&self, origin: Origin) -> Client {
        Client::outside(Arc::clone(&self.core), origin)
    }

    /// A client for an authenticated operator (may send commands).
    pub fn operator(&self, who: impl Into<String>) -> Client {
        self.client(Origin::Operator(who.into()))
    }

    /// Delivers a fully built request envelope (its kind is set to `Request`).
    pub async fn request<R: Request>(
        &self,
        envelope: Envelope<R>,
    ) -> Result<R::Response, DeliveryError> {
        self.core.request(envelope, Source::Outside).await
    }

    /// Publishes a fully built event envelope to its topic; returns the number of subscribers reached.
    pub fn publish<E: Payload + Clone>(
        &self,
        envelope: Envelope<E>,
    ) -> Result<usize, DeliveryError> {
        self.core.publish(envelope, Source::Outside)
    }

    /// Delivers a fully built command envelope and waits until it has been carried out.
    pub async fn command<C: Payload>(&self, envelope: Envelope<C>) -> Result<(), DeliveryError> {
        self.core.command(envelope, Source::Outside).await
    }

    /// Every agent's status, sorted by name.
    pub fn status(&self) -> Vec<AgentStatus> {
        let mut all: Vec<AgentStatus> = self.core.slots.values().map(|s| s.status()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One agent's status, if it is configured.
    pub fn agent_status(&self, agent: &str) -> Option<AgentStatus> {
        self.core
            .slots
            .get(&AgentName::new(agent))
            .map(|s| s.status())
    }

    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }

    pub fn services(&self) -> &Services {
        &self.core.services
    }

    /// Applies a changed definition of a running agent (mailbox, subscriptions, request timeout,
    /// supervision policy) without restarting it. Agents cannot be added or removed this way.
    pub fn update_spec(&self, spec: AgentSpec) -> Result<(), ControlError> {
        let Some(slot) = self.core.slots.get(&spec.name) else {
            return Err(ControlError::UnknownAgent(spec.name));
        };
        if spec.mailbox == 0 {
            return Err(ControlError::ZeroMailbox(spec.name));
        }
        slot.apply_spec(spec);
        *write(&self.core.topics) = Core::subscribers_by_topic(&self.core.slots);
        Ok(())
    }

    /// Restarts an isolated agent with a fresh restart window (after an operator fixed the cause).
    pub async fn revive(&self, agent: &str) -> Result<(), ControlError> {
        let name = AgentName::new(agent);
        let (reply, done) = oneshot::channel();
        if self.core.stopping.load(Ordering::Acquire)
            || self
                .supervisor
                .send_message(SupervisorMsg::Revive(name.clone(), reply))
                .is_err()
        {
            return Err(ControlError::ShutDown);
        }
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(ControlError::Revive {
                agent: name,
                reason,
            }),
            Err(_) => Err(ControlError::ShutDown),
        }
    }

    /// Stops taking work from outside, lets admitted messages finish (handlers may still send
    /// within their chains) until `deadline`, then stops every agent and the supervisor.
    /// Calling it again is harmless.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.core.accepting.store(false, Ordering::Release);
        let until = tokio::time::Instant::now() + deadline;
        let mut abandoned = self.core.in_flight_total();
        while abandoned > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
            abandoned = self.core.in_flight_total();
        }
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "shutdown deadline passed with messages still in flight"
            );
        }
        let (reply, done) = oneshot::channel();
        let grace = until
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_millis(100));
        if self
            .supervisor
            .send_message(SupervisorMsg::Shutdown(grace, reply))
            .is_ok()
        {
            let _ = tokio::time::timeout(grace + Duration::from_secs(1), done).await;
        }
        self.core.stopping.store(true, Ordering::Release);
        let _ = self
            .supervisor
            .stop_and_wait(Some("shutdown".to_owned()), Some(Duration::from_secs(1)))
            .await;
        ShutdownReport {
            drained: abandoned == 0,
            abandoned,
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("agents", &self.core.slots.len())
            .finish()
    }
}
