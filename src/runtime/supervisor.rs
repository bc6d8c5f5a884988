//! The root supervisor: starts every configured agent's workers, restarts a failed worker with
//! exponential backoff, isolates an agent that fails too often, and stops them all at shutdown.
//!
//! Supervision is per agent, whatever its number of workers: every worker's failure counts
//! against the agent's one restart window, and isolation stops all of its workers, so an agent is
//! either trusted or not. A failed worker is restarted alone; the campaigns on the other workers
//! go on. It is the only writer of a slot's incarnations and health. Because it handles one message at a
//! time, a restart and a shutdown can never interleave. It must never run agent code itself (only
//! spawn it), so a misbehaving agent cannot stall supervision for longer than its `start`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;

use crate::protocol::{Address, AgentName, Envelope, Kind, Origin, Topic};

use super::core::{Core, Slot, Source, lock, write};
use super::error::{ReviveError, SpawnError, StartError};
use super::status::{AGENT_ISOLATED_TOPIC, AgentIsolated, AgentState};

pub(crate) enum SupervisorMsg {
    /// Start every agent; the first that fails to start stops the others and is reported.
    StartAll(oneshot::Sender<Result<(), StartError>>),
    /// A backoff delay has passed: start the agent's worker again.
    Restart(AgentName, usize),
    /// An operator brings an isolated agent back with a fresh restart window.
    Revive(AgentName, oneshot::Sender<Result<(), ReviveError>>),
    /// Stop every agent (waiting at most the duration for each), then answer.
    Shutdown(Duration, oneshot::Sender<()>),
}

pub(crate) struct Supervisor {
    pub core: Arc<Core>,
}

pub(crate) struct SupervisorState {
    /// Which agent and worker each live child actor runs.
    children: HashMap<ActorId, (AgentName, usize)>,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        _: (),
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            children: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::StartAll(reply) => {
                let result = self.start_all(&myself, state).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::Restart(agent, worker) => {
                self.restart(&myself, state, &agent, worker).await
            }
            SupervisorMsg::Revive(agent, reply) => {
                let _ = reply.send(self.revive(&myself, state, &agent).await);
            }
            SupervisorMsg::Shutdown(wait, reply) => {
                self.core.stopping.store(true, Ordering::Release);
                myself
                    .stop_children_and_wait(
                        Some("campaignd is shutting down".to_owned()),
                        Some(wait),
                    )
                    .await;
                for slot in self.core.slots.values() {
                    for worker in &slot.workers {
                        *write(worker) = None;
                    }
                    lock(&slot.health).state = AgentState::Stopped;
                }
                state.children.clear();
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    // The default would stop the supervisor when a child exits; here an exit is a failure to handle.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (id, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell.get_id(),
                reason.unwrap_or_else(|| "the agent stopped on its own".to_owned()),
            ),
            _ => return Ok(()),
        };
        let Some((agent, worker)) = state.children.remove(&id) else {
            return Ok(());
        };
        if self.core.stopping.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(slot) = self.core.slots.get(&agent).cloned() else {
            return Ok(());
        };
        // The other workers of an agent being isolated stop on purpose; not failures.
        if lock(&slot.health).state == AgentState::Isolated {
            return Ok(());
        }
        if let Some(current) = slot.workers.get(worker) {
            let mut current = write(current);
            if current.as_ref().is_some_and(|i| i.actor.get_id() == id) {
                *current = None;
            }
        }
        self.failed(&myself, &slot, worker, reason);
        Ok(())
    }
}

impl Supervisor {
    async fn start_all(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), StartError> {
        let mut names: Vec<&AgentName> = self.core.slots.keys().collect();
        names.sort();
        for name in names {
            let Some(slot) = self.core.slots.get(name).cloned() else {
                continue;
            };
            if let Err(reason) = self.spawn_all(myself, state, &slot).await {
                self.core.stopping.store(true, Ordering::Release);
                myself
                    .stop_children_and_wait(
                        Some("another agent failed to start".to_owned()),
                        Some(Duration::from_secs(5)),
                    )
                    .await;
                return Err(StartError::Agent {
                    agent: slot.name.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Starts every worker of the agent; the agent is running once all are.
    async fn spawn_all(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        slot: &Arc<Slot>,
    ) -> Result<(), SpawnError> {
        for worker in 0..slot.workers.len() {
            self.spawn(myself, state, slot, worker).await?;
        }
        Ok(())
    }

    async fn spawn(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        slot: &Arc<Slot>,
        worker: usize,
    ) -> Result<(), SpawnError> {
        let restarts = lock(&slot.health).restarts;
        let (incarnation, cell) = slot
            .spawner
            .spawn(
                Arc::clone(&self.core),
                Arc::clone(slot),
                worker,
                restarts,
                myself.get_cell(),
            )
            .await?;
        state
            .children
            .insert(cell.get_id(), (slot.name.clone(), worker));
        if let Some(current) = slot.workers.get(worker) {
            *write(current) = Some(incarnation);
        }
        let mut health = lock(&slot.health);
        health.down.remove(&worker);
        if health.down.is_empty() {
            health.state = AgentState::Running;
        }
        drop(health);
        tracing::info!(agent = %slot.name, worker, restarts, "agent running");
        Ok(())
    }

    async fn restart(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        agent: &AgentName,
        worker: usize,
    ) {
        if self.core.stopping.load(Ordering::Acquire) {
            return;
        }
        let Some(slot) = self.core.slots.get(agent).cloned() else {
            return;
        };
        {
            let health = lock(&slot.health);
            if health.state != AgentState::Restarting || !health.down.contains(&worker) {
                return;
            }
        }
        if let Err(reason) = self.spawn(myself, state, &slot, worker).await {
            self.failed(myself, &slot, worker, format!("restart failed: {reason}"));
        }
    }

    async fn revive(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        agent: &AgentName,
    ) -> Result<(), ReviveError> {
        let Some(slot) = self.core.slots.get(agent).cloned() else {
            return Err(ReviveError::Unknown(agent.clone()));
        };
        {
            let mut health = lock(&slot.health);
            if health.state != AgentState::Isolated {
                return Err(ReviveError::NotIsolated {
                    agent: agent.clone(),
                    state: health.state,
                });
            }
            health.window.clear();
            health.state = AgentState::Restarting;
            health.down = (0..slot.workers.len()).collect();
        }
        tracing::info!(agent = %agent, "operator revives isolated agent");
        for worker in 0..slot.workers.len() {
            if let Err(reason) = self.spawn(myself, state, &slot, worker).await {
                self.failed(myself, &slot, worker, format!("revive failed: {reason}"));
                return Err(ReviveError::from(reason));
            }
        }
        Ok(())
    }

    /// Counts a failure of one worker against the agent's restart intensity: schedule the worker's
    /// restart after its backoff, or isolate the agent (every worker) and tell the
    /// `agent_isolated` topic.
    fn failed(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        slot: &Arc<Slot>,
        worker: usize,
        reason: String,
    ) {
        let policy = lock(&slot.spec).supervision;
        let now = tokio::time::Instant::now();
        let mut health = lock(&slot.health);
        health.last_error = Some(reason.clone());
        while health
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.within)
        {
            health.window.pop_front();
        }
        if health.window.len() >= policy.max_restarts as usize {
            health.state = AgentState::Isolated;
            health.down.clear();
            let restarts = health.restarts;
            drop(health);
            for current in &slot.workers {
                if let Some(incarnation) = write(current).take() {
                    incarnation
                        .actor
                        .stop(Some("the agent is isolated".to_owned()));
                }
            }
            tracing::error!(
                agent = %slot.name, restarts, error = %reason,
                "agent failed {} times within {} s; isolated", policy.max_restarts + 1, policy.within.as_secs()
            );
            let event = AgentIsolated {
                agent: slot.name.clone(),
                restarts,
                last_error: reason,
            };
            let envelope = Envelope::new(
                Kind::Event,
                Origin::Runtime,
                Address::Topic(Topic::new(AGENT_ISOLATED_TOPIC)),
                self.core.clock.now(),
                event,
            );
            if let Err(err) = self.core.publish(envelope, Source::Handler) {
                tracing::error!(agent = %slot.name, "could not publish agent_isolated: {err}");
            }
            return;
        }
        let attempt = u32::try_from(health.window.len()).unwrap_or(u32::MAX);
        let delay = policy.backoff(attempt);
        health.window.push_back(now);
        health.restarts = health.restarts.saturating_add(1);
        health.state = AgentState::Restarting;
        health.down.insert(worker);
        drop(health);
        tracing::warn!(agent = %slot.name, worker, error = %reason, delay_ms = delay.as_millis() as u64, "agent failed; restarting");
        let agent = slot.name.clone();
        // The timer runs on its own; its handle is not needed to deliver the restart.
        drop(myself.send_after(delay, move || SupervisorMsg::Restart(agent, worker)));
    }
}
