//! Delivery: the routing table, admission control and the three ways a message travels.
//!
//! One [`Core`] is shared by the runtime handle, the supervisor and every agent. It maps agent names
//! to slots; a slot holds the current incarnation (actor and in-flight counter) of each of the
//! agent's workers, which the supervisor swaps on restart, so senders never hold a stale actor. A
//! message goes to the worker its campaign (or tenant) hashes to, so one campaign's messages are
//! handled in the order they were sent while other campaigns run on other cores. Messages stay typed in process
//! (boxed, never encoded per hop). Nothing here may block or wait without a bound.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::oneshot;

use crate::protocol::{
    Address, AgentName, CampaignId, CorrelationId, Envelope, Kind, MessageId, Origin, Payload,
    TenantId, Topic,
};

use super::actor::Spawn;
use super::agent::{AnyBox, Body, Request, ShardBy};
use super::clock::Clock;
use super::error::{DeliveryError, Unavailable};
use super::metrics::{self, AgentMetrics};
use super::services::Services;
use super::spec::AgentSpec;
use super::status::{AgentState, AgentStatus};

/// One message in an agent's mailbox: a type-erased envelope and, for requests and commands, where
/// the answer goes.
pub(crate) struct Delivery {
    pub type_id: TypeId,
    pub kind: Kind,
    pub action: &'static str,
    /// Copied out of the envelope, whose type the actor cannot name, for the handling span.
    pub correlation_id: CorrelationId,
    pub message_id: MessageId,
    /// The envelope behind a pointer: one allocation, and a pointer to move instead of the whole
    /// envelope.
    pub envelope: Body,
    pub reply: Option<oneshot::Sender<Result<AnyBox, DeliveryError>>>,
}

/// One run of one worker's actor. A restart makes a new one with a fresh counter, so late
/// decrements from a dead incarnation cannot corrupt the live one.
pub(crate) struct Incarnation {
    pub actor: ActorRef<Delivery>,
    pub in_flight: Arc<AtomicUsize>,
}

/// Supervision bookkeeping for one agent, all its workers together: one restart window, one
/// restart count, one state.
pub(crate) struct Health {
    pub state: AgentState,
    pub restarts: u32,
    pub last_error: Option<String>,
    /// When the restarts inside the current intensity window happened.
    pub window: VecDeque<tokio::time::Instant>,
    /// Workers that failed and wait for their backoff delay; the agent is `Restarting` while any
    /// does.
    pub down: BTreeSet<usize>,
}

/// Everything the runtime knows about one configured agent.
pub(crate) struct Slot {
    pub name: AgentName,
    pub spawner: Arc<dyn Spawn>,
    pub handles: HashSet<(Kind, TypeId)>,
    pub shard_by: ShardBy,
    pub spec: Mutex<AgentSpec>,
    // Read on every delivery, so kept outside the spec's lock.
    pub mailbox: AtomicUsize,
    pub timeout_nanos: AtomicU64,
    /// Each worker's current incarnation; the supervisor swaps one on its restart.
    pub workers: Vec<RwLock<Option<Arc<Incarnation>>>>,
    pub health: Mutex<Health>,
    pub metrics: Arc<AgentMetrics>,
}

impl Slot {
    pub fn new(spec: AgentSpec, spawner: Arc<dyn Spawn>) -> Self {
        let handles = spawner.handles().into_iter().collect();
        Slot {
            name: spec.name.clone(),
            shard_by: spawner.shard_by(),
            spawner,
            handles,
            metrics: Arc::new(AgentMetrics::new(&spec.name)),
            mailbox: AtomicUsize::new(spec.mailbox),
            timeout_nanos: AtomicU64::new(duration_nanos(spec.request_timeout)),
            workers: (0..spec.workers.max(1))
                .map(|_| RwLock::new(None))
                .collect(),
            spec: Mutex::new(spec),
            health: Mutex::new(Health {
                state: AgentState::Stopped,
                restarts: 0,
                last_error: None,
                window: VecDeque::new(),
                down: BTreeSet::new(),
            }),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout_nanos.load(Ordering::Relaxed))
    }

    /// Applies a changed definition; the number of workers stays as the runtime started it.
    pub fn apply_spec(&self, mut spec: AgentSpec) {
        spec.workers = self.workers.len();
        self.mailbox.store(spec.mailbox, Ordering::Relaxed);
        self.timeout_nanos
            .store(duration_nanos(spec.request_timeout), Ordering::Relaxed);
        *lock(&self.spec) = spec;
    }

    /// The worker that handles a message about `campaign` of `tenant` (as its payload names them,
    /// or else its envelope: see [`Payload::campaign`]). A message to an agent
    /// sharded by tenant must name its tenant: on whichever worker it landed, it would bypass the
    /// order that worker keeps for the tenant.
    pub fn worker_for(
        &self,
        tenant: Option<&TenantId>,
        campaign: Option<&CampaignId>,
        action: &str,
    ) -> Result<usize, DeliveryError> {
        let key = match self.shard_by {
            ShardBy::Campaign => campaign.map(CampaignId::as_str),
            ShardBy::Tenant => match tenant {
                Some(tenant) => Some(tenant.as_str()),
                None => {
                    return Err(DeliveryError::Rejected {
                        agent: self.name.clone(),
                        action: action.to_owned(),
                        reason: "this agent keeps state per tenant; a message to it must name its tenant".to_owned(),
                    });
                }
            },
        };
        let count = self.workers.len() as u64;
        Ok(key.map_or(0, |key| {
            // FNV-1a: cheap, and the same key always lands on the same worker.
            let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            usize::try_from(hash % count.max(1)).unwrap_or(0)
        }))
    }

    pub fn incarnation(&self, worker: usize) -> Option<Arc<Incarnation>> {
        self.workers.get(worker).and_then(|w| read(w).clone())
    }

    /// Messages admitted to the agent and not yet handled, over all its workers.
    pub fn in_flight(&self) -> usize {
        self.workers
            .iter()
            .filter_map(|w| {
                read(w)
                    .as_ref()
                    .map(|i| i.in_flight.load(Ordering::Acquire))
            })
            .sum()
    }

    pub fn status(&self) -> AgentStatus {
        let in_flight = self.in_flight();
        let health = lock(&self.health);
        AgentStatus {
            name: self.name.clone(),
            state: health.state,
            restarts: health.restarts,
            last_error: health.last_error.clone(),
            in_flight,
            mailbox: self.mailbox.load(Ordering::Relaxed),
            workers: self.workers.len(),
        }
    }

    fn unavailable(&self) -> Unavailable {
        match lock(&self.health).state {
            AgentState::Isolated => Unavailable::Isolated,
            AgentState::Restarting => Unavailable::Restarting,
            // Running without an incarnation is the instant between a failure and the supervisor
            // noticing it.
            AgentState::Running => Unavailable::Restarting,
            AgentState::Stopped => Unavailable::Stopped,
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// A poisoned lock only means another thread panicked while holding it; the data it guards is
// simple enough to stay usable, and delivery must keep working.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// The state shared by the runtime handle, the supervisor and every agent.
pub(crate) struct Core {
    pub slots: HashMap<AgentName, Arc<Slot>>,
    pub topics: RwLock<HashMap<Topic, Vec<Arc<Slot>>>>,
    pub services: Services,
    pub clock: Clock,
    /// Agents allowed to send commands (besides operators).
    pub command_senders: HashSet<AgentName>,
    /// False once shutdown begins: no new work from outside.
    pub accepting: AtomicBool,
    /// True once actors are being stopped: exits are no longer failures.
    pub stopping: AtomicBool,
}

/// Where a message comes from, for the shutdown rule: handlers may finish their chains while the
/// runtime drains, outside callers may not start new ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Outside,
    Handler,
}

impl Core {
    pub fn subscribers_by_topic(
        slots: &HashMap<AgentName, Arc<Slot>>,
    ) -> HashMap<Topic, Vec<Arc<Slot>>> {
        let mut topics: HashMap<Topic, Vec<Arc<Slot>>> = HashMap::new();
        let mut names: Vec<&AgentName> = slots.keys().collect();
        names.sort();
        for name in names {
            let Some(slot) = slots.get(name) else {
                continue;
            };
            for topic in lock(&slot.spec).subscribe.iter() {
                let subscribers = topics.entry(topic.clone()).or_default();
                if !subscribers.iter().any(|s| Arc::ptr_eq(s, slot)) {
                    subscribers.push(Arc::clone(slot));
                }
            }
        }
        topics
    }

    fn check_open(&self, source: Source, action: &str) -> Result<(), DeliveryError> {
        if source == Source::Outside && !self.accepting.load(Ordering::Acquire) {
            return Err(DeliveryError::ShuttingDown {
                action: action.to_owned(),
            });
        }
        Ok(())
    }

    fn target<'a>(
        &'a self,
        to: &Address,
        action: &str,
        kind: Kind,
    ) -> Result<&'a Arc<Slot>, DeliveryError> {
        match to {
            Address::Agent(agent) => {
                self.slots
                    .get(agent)
                    .ok_or_else(|| DeliveryError::Unavailable {
                        agent: agent.clone(),
                        action: action.to_owned(),
                        reason: Unavailable::Unknown,
                    })
            }
            Address::Topic(topic) => Err(DeliveryError::Rejected {
                agent: AgentName::new(format!("topic:{topic}")),
                action: action.to_owned(),
                reason: format!(
                    "a {} goes to one agent, not to a topic; publish an event instead",
                    kind_name(kind)
                ),
            }),
        }
    }

    /// Admission control: the agent must be running, handle this message type and have room;
    /// the message goes to `worker`.
    fn admit(
        &self,
        slot: &Slot,
        worker: usize,
        kind: Kind,
        type_id: TypeId,
        action: &str,
    ) -> Result<Arc<Incarnation>, DeliveryError> {
        if !slot.handles.contains(&(kind, type_id)) {
            return Err(DeliveryError::Rejected {
                agent: slot.name.clone(),
                action: action.to_owned(),
                reason: format!(
                    "it does not handle {} {action} (add it to the agent's routes)",
                    kind_name(kind)
                ),
            });
        }
        let Some(incarnation) = slot.incarnation(worker) else {
            return Err(DeliveryError::Unavailable {
                agent: slot.name.clone(),
                action: action.to_owned(),
                reason: slot.unavailable(),
            });
        };
        let mailbox = slot.mailbox.load(Ordering::Relaxed);
        // The bound is the agent's, over all its workers; counting after the increment means two
        // racing senders can both be refused at the edge, never both admitted past it.
        let admitted = if slot.workers.len() == 1 {
            incarnation.in_flight.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            incarnation.in_flight.fetch_add(1, Ordering::AcqRel);
            slot.in_flight()
        };
        if admitted > mailbox {
            incarnation.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(DeliveryError::Overloaded {
                agent: slot.name.clone(),
                action: action.to_owned(),
                mailbox,
            });
        }
        Ok(incarnation)
    }

    fn send(
        &self,
        slot: &Slot,
        incarnation: &Incarnation,
        delivery: Delivery,
    ) -> Result<(), DeliveryError> {
        let action = delivery.action;
        if incarnation.actor.send_message(delivery).is_err() {
            incarnation.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(DeliveryError::Unavailable {
                agent: slot.name.clone(),
                action: action.to_owned(),
                reason: slot.unavailable(),
            });
        }
        Ok(())
    }

    /// Sends and waits for the handler's answer; times requests for the target's metrics.
    async fn call<P: Payload>(
        &self,
        mut envelope: Envelope<P>,
        kind: Kind,
        source: Source,
    ) -> Result<AnyBox, DeliveryError> {
        let action = P::ACTION;
        self.check_open(source, action)?;
        envelope.kind = kind;
        let slot = match self.target(&envelope.to, action, kind) {
            Ok(slot) => slot,
            Err(err) => {
                if kind == Kind::Request {
                    metrics::unknown_target_request(&err);
                }
                return Err(err);
            }
        };
        if kind != Kind::Request {
            return self.deliver_and_wait(slot, envelope, kind).await;
        }
        let started = std::time::Instant::now();
        let result = self.deliver_and_wait(slot, envelope, kind).await;
        slot.metrics
            .request_done(started.elapsed().as_secs_f64(), result.as_ref().err());
        result
    }

    /// Admits, sends and waits for the answer, bounded by the target's request timeout.
    async fn deliver_and_wait<P: Payload>(
        &self,
        slot: &Slot,
        envelope: Envelope<P>,
        kind: Kind,
    ) -> Result<AnyBox, DeliveryError> {
        let action = P::ACTION;
        let worker = slot.worker_for(
            envelope.payload.tenant().or(envelope.tenant.as_ref()),
            envelope.payload.campaign().or(envelope.campaign.as_ref()),
            action,
        )?;
        let incarnation = self.admit(slot, worker, kind, TypeId::of::<P>(), action)?;
        let (reply, answer) = oneshot::channel();
        let delivery = Delivery {
            type_id: TypeId::of::<P>(),
            kind,
            action,
            correlation_id: envelope.correlation_id,
            message_id: envelope.id,
            envelope: Body::One(Box::new(envelope)),
            reply: Some(reply),
        };
        self.send(slot, &incarnation, delivery)?;
        drop(incarnation);
        let timeout = slot.timeout();
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            // The actor dropped the reply: it panicked, or it was stopped with this message queued.
            Ok(Err(_)) => Err(if self.stopping.load(Ordering::Acquire) {
                DeliveryError::Unavailable {
                    agent: slot.name.clone(),
                    action: action.to_owned(),
                    reason: Unavailable::Stopped,
                }
            } else {
                DeliveryError::Failed {
                    agent: slot.name.clone(),
                    action: action.to_owned(),
                    reason: "the agent stopped before answering (it failed while this message was queued; see its status)".to_owned(),
                }
            }),
            Err(_) => Err(DeliveryError::Timeout {
                agent: slot.name.clone(),
                action: action.to_owned(),
                after: timeout,
            }),
        }
    }

    pub async fn request<R: Request>(
        &self,
        envelope: Envelope<R>,
        source: Source,
    ) -> Result<R::Response, DeliveryError> {
        let agent = match &envelope.to {
            Address::Agent(a) => Some(a.clone()),
            Address::Topic(_) => None,
        };
        let answer = self.call(envelope, Kind::Request, source).await?;
        answer
            .downcast::<R::Response>()
            .map(|b| *b)
            .map_err(|_| DeliveryError::Failed {
                agent: agent.unwrap_or_else(|| AgentName::new("?")),
                action: R::ACTION.to_owned(),
                reason: format!("the answer was not a {}", <R::Response as Payload>::ACTION),
            })
    }

    pub async fn command<C: Payload>(
        &self,
        envelope: Envelope<C>,
        source: Source,
    ) -> Result<(), DeliveryError> {
        let allowed = match &envelope.from {
            Origin::Operator(_) => true,
            Origin::Agent(name) => self.command_senders.contains(name),
            Origin::Runtime => false,
        };
        if !allowed {
            let agent = match &envelope.to {
                Address::Agent(a) => a.clone(),
                Address::Topic(t) => AgentName::new(format!("topic:{t}")),
            };
            if let Some(slot) = self.slots.get(&agent) {
                slot.metrics.command_rejected();
            }
            tracing::warn!(
                sender = %envelope.from,
                agent = %agent,
                action = C::ACTION,
                correlation_id = %envelope.correlation_id,
                "command refused: sender may not give orders"
            );
            return Err(DeliveryError::Rejected {
                agent,
                action: C::ACTION.to_owned(),
                reason: format!(
                    "{} may not send commands (only operators and {})",
                    envelope.from,
                    self.allowed_senders()
                ),
            });
        }
        self.call(envelope, Kind::Command, source).await.map(drop)
    }

    fn allowed_senders(&self) -> String {
        let mut names: Vec<&str> = self.command_senders.iter().map(AgentName::as_str).collect();
        names.sort_unstable();
        if names.is_empty() {
            "no agent".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// Delivers an event to every subscriber of its topic that handles its type and has room.
    /// A full subscriber misses the event (logged); the others still get it.
    pub fn publish<E: Payload + Clone>(
        &self,
        mut envelope: Envelope<E>,
        source: Source,
    ) -> Result<usize, DeliveryError> {
        self.check_open(source, E::ACTION)?;
        envelope.kind = Kind::Event;
        let Address::Topic(topic) = &envelope.to else {
            return Err(DeliveryError::Rejected {
                agent: match &envelope.to {
                    Address::Agent(a) => a.clone(),
                    Address::Topic(_) => AgentName::new("?"),
                },
                action: E::ACTION.to_owned(),
                reason: "an event is published to a topic, not sent to an agent".to_owned(),
            });
        };
        let type_id = TypeId::of::<E>();
        let topics = read(&self.topics);
        // The map's own key names the topic in logs, so the envelope can move on.
        let Some((topic, subscribers)) = topics.get_key_value(topic) else {
            return Ok(0);
        };
        let (correlation_id, message_id) = (envelope.correlation_id, envelope.id);
        let tenant = envelope
            .payload
            .tenant()
            .or(envelope.tenant.as_ref())
            .cloned();
        let campaign = envelope
            .payload
            .campaign()
            .or(envelope.campaign.as_ref())
            .cloned();
        let shared: Arc<dyn std::any::Any + Send + Sync> = Arc::new(envelope);
        let mut delivered = 0;
        for slot in subscribers {
            if !slot.handles.contains(&(Kind::Event, type_id)) {
                tracing::warn!(subscriber = %slot.name, topic = %topic, action = E::ACTION,
                    "agent subscribes to the topic but does not handle this event type; skipped");
                continue;
            }
            let admitted = slot
                .worker_for(tenant.as_ref(), campaign.as_ref(), E::ACTION)
                .and_then(|worker| self.admit(slot, worker, Kind::Event, type_id, E::ACTION));
            let incarnation = match admitted {
                Ok(incarnation) => incarnation,
                Err(err) => {
                    slot.metrics.event_undelivered(&err);
                    tracing::warn!(subscriber = %slot.name, topic = %topic, "event not delivered: {err}");
                    continue;
                }
            };
            let delivery = Delivery {
                type_id,
                kind: Kind::Event,
                action: E::ACTION,
                correlation_id,
                message_id,
                envelope: Body::Shared(Arc::clone(&shared)),
                reply: None,
            };
            match self.send(slot, &incarnation, delivery) {
                Ok(()) => delivered += 1,
                Err(err) => {
                    slot.metrics.event_undelivered(&err);
                    tracing::warn!(subscriber = %slot.name, topic = %topic, "event not delivered: {err}")
                }
            }
        }
        Ok(delivered)
    }

    pub fn in_flight_total(&self) -> usize {
        self.slots.values().map(|s| s.in_flight()).sum()
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Request => "request",
        Kind::Response => "response",
        Kind::Event => "event",
        Kind::Command => "command",
    }
}
