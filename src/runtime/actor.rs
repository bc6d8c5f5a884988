//! The ractor actor that runs one worker of an agent: it builds the agent with `Agent::start` in `pre_start`,
//! dispatches each delivery to the declared handler inside a tracing span, and answers the caller.
//!
//! A handler error or panic ends this incarnation (the supervisor restarts it); it must never be
//! swallowed here, or an agent with broken state would keep answering. The one exception is a
//! command handler's refusal ([`AgentError::refuse`]): a decision, answered as such.

use std::any::TypeId;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use crate::protocol::Kind;

use super::agent::{Agent, Routes, ShardBy, StartContext};
use super::context::Me;
use super::core::{Core, Delivery, Incarnation, Slot, lock, write};
use super::error::{AgentError, DeliveryError, SpawnError};
use super::metrics::AgentMetrics;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts incarnations of one agent type; what the registry stores per name.
pub(crate) trait Spawn: Send + Sync {
    /// The (kind, payload type) pairs the agent handles, for admission control.
    fn handles(&self) -> Vec<(Kind, TypeId)>;

    /// How the agent's messages are spread over its workers.
    fn shard_by(&self) -> ShardBy;

    /// Starts a new incarnation of worker `worker` linked to `supervisor`. The error is the
    /// reason it could not start (its `start` failed or panicked).
    fn spawn(
        &self,
        core: Arc<Core>,
        slot: Arc<Slot>,
        worker: usize,
        restarts: u32,
        supervisor: ActorCell,
    ) -> BoxFuture<'_, Result<(Arc<Incarnation>, ActorCell), SpawnError>>;
}

pub(crate) struct Spawner<A> {
    routes: Arc<Routes<A>>,
}

impl<A: Agent> Spawner<A> {
    pub fn new() -> Self {
        Spawner {
            routes: Arc::new(Routes::of_agent()),
        }
    }
}

impl<A: Agent> Spawn for Spawner<A> {
    fn handles(&self) -> Vec<(Kind, TypeId)> {
        self.routes.keys().collect()
    }

    fn shard_by(&self) -> ShardBy {
        A::SHARD_BY
    }

    fn spawn(
        &self,
        core: Arc<Core>,
        slot: Arc<Slot>,
        worker: usize,
        restarts: u32,
        supervisor: ActorCell,
    ) -> BoxFuture<'_, Result<(Arc<Incarnation>, ActorCell), SpawnError>> {
        Box::pin(async move {
            let in_flight = Arc::new(AtomicUsize::new(0));
            let start = StartContext {
                name: slot.name.clone(),
                spec: lock(&slot.spec).clone(),
                services: core.services.clone(),
                clock: core.clock.clone(),
                restarts,
                worker,
            };
            let actor = AgentActor {
                worker,
                metrics: Arc::clone(&slot.metrics),
                me: Arc::new(Me::new(core, slot.name.clone())),
                routes: Arc::clone(&self.routes),
                in_flight: Arc::clone(&in_flight),
            };
            match Actor::spawn_linked(None, actor, start, supervisor).await {
                Ok((actor, _join)) => {
                    let cell = actor.get_cell();
                    Ok((Arc::new(Incarnation { actor, in_flight }), cell))
                }
                Err(err) => Err(SpawnError(err.to_string())),
            }
        })
    }
}

/// One incarnation of one worker of agent `A`; its ractor state is the agent itself.
struct AgentActor<A> {
    worker: usize,
    me: Arc<Me>,
    metrics: Arc<AgentMetrics>,
    routes: Arc<Routes<A>>,
    in_flight: Arc<AtomicUsize>,
}

impl<A: Agent> Actor for AgentActor<A> {
    type Msg = Delivery;
    type State = A;
    type Arguments = StartContext;

    async fn pre_start(
        &self,
        _myself: ActorRef<Delivery>,
        start: StartContext,
    ) -> Result<A, ActorProcessingErr> {
        let span = tracing::info_span!("start", agent = %start.name, worker = start.worker, restarts = start.restarts);
        A::start(start)
            .instrument(span)
            .await
            .map_err(|e| e.into_boxed())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Delivery>,
        delivery: Delivery,
        agent: &mut A,
    ) -> Result<(), ActorProcessingErr> {
        let Delivery {
            type_id,
            kind,
            action,
            correlation_id,
            message_id,
            envelope,
            reply,
        } = delivery;
        self.metrics.handled(kind);
        let Some(handler) = self.routes.get(kind, type_id) else {
            // Admission checks the routes first, so this is only reachable through a runtime bug;
            // answer rather than leave the caller waiting for its timeout.
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            if let Some(reply) = reply {
                let _ = reply.send(Err(DeliveryError::Rejected {
                    agent: self.me.name.clone(),
                    action: action.to_owned(),
                    reason: "no handler for this message".to_owned(),
                }));
            }
            return Ok(());
        };
        // Everything logged while handling, the failure report below included, carries the chain.
        let span = tracing::info_span!(
            "handle",
            agent = %self.me.name,
            action,
            kind = ?kind,
            %correlation_id,
            %message_id,
        );
        let handling = CatchPanic(handler(agent, &self.me, envelope)).instrument(span.clone());
        let outcome = match handling.await {
            Ok(outcome) => outcome,
            Err(panic) => Err(AgentError::from(panic)),
        };
        // Free the mailbox slot before answering, so a caller that sees the answer also sees room.
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        match outcome {
            Ok(answer) => {
                if let Some(reply) = reply {
                    if kind == Kind::Request {
                        self.metrics.handled(Kind::Response);
                    }
                    // The caller may have timed out and gone; that is its business, not a failure.
                    let _ = reply.send(Ok(answer));
                }
                Ok(())
            }
            Err(err) if kind == Kind::Command && err.refusal().is_some() => {
                // The handler decided not to carry the order out: an answer, not a failure.
                let reason = err.refusal().unwrap_or_default().to_owned();
                span.in_scope(|| tracing::warn!(%reason, "command refused"));
                if let Some(reply) = reply {
                    let _ = reply.send(Err(DeliveryError::Refused {
                        agent: self.me.name.clone(),
                        action: action.to_owned(),
                        reason,
                    }));
                }
                Ok(())
            }
            Err(err) => {
                // Stop admitting to this incarnation now rather than when the supervisor gets to it,
                // so senders learn at once that the agent is restarting.
                self.retire();
                let reason = err.to_string();
                span.in_scope(|| {
                    tracing::error!(error = %reason, "handler failed; the agent will be restarted");
                });
                if let Some(reply) = reply {
                    let _ = reply.send(Err(DeliveryError::Failed {
                        agent: self.me.name.clone(),
                        action: action.to_owned(),
                        reason,
                    }));
                }
                Err(err.into_boxed())
            }
        }
    }
}

impl<A> AgentActor<A> {
    fn retire(&self) {
        if let Some(slot) = self.me.core.slots.get(&self.me.name) {
            let Some(worker) = slot.workers.get(self.worker) else {
                return;
            };
            let mut current = write(worker);
            if current
                .as_ref()
                .is_some_and(|i| Arc::ptr_eq(&i.in_flight, &self.in_flight))
            {
                *current = None;
            }
        }
    }
}

/// Turns a panic inside a handler into an error, so the caller hears the panic message instead of
/// a dropped reply. The agent is still restarted: its state may be half-updated.
struct CatchPanic<F>(F);

/// A handler panicked; the panic's message.
#[derive(Debug, thiserror::Error)]
#[error("panicked: {0}")]
struct Panicked(String);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(Panicked(panic_message(panic.as_ref())))),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
