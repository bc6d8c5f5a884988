//! Sending messages: [`Client`] for code outside the agents (the daemon, the API, tests) and
//! [`Context`] for a handler.
//!
//! A handler's context builds every outgoing envelope from the message being handled: the same
//! correlation id, tenant and campaign, and that message as the cause. An agent cannot forget to
//! propagate them and cannot claim to be someone else. Nothing here may bypass admission control.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::protocol::{
    Address, AgentName, CampaignId, CorrelationId, Envelope, Kind, MessageId, Origin, Payload,
    TenantId,
};

use super::agent::Request;
use super::clock::Clock;
use super::core::{Core, Source};
use super::error::DeliveryError;
use super::services::Services;
use super::status::AgentStatus;
use super::topic::TopicFor;

/// Sends requests, events and commands under one origin.
///
/// Without a cause, each message starts a new chain of work (a fresh correlation id) unless
/// [`Client::with_correlation`] pins one.
#[derive(Clone)]
pub struct Client {
    core: Arc<Core>,
    origin: Arc<Origin>,
    source: Source,
    cause: Option<MessageId>,
    correlation_id: Option<CorrelationId>,
    tenant: Option<TenantId>,
    campaign: Option<CampaignId>,
}

impl Client {
    pub(crate) fn outside(core: Arc<Core>, origin: Origin) -> Self {
        Client {
            core,
            origin: Arc::new(origin),
            source: Source::Outside,
            cause: None,
            correlation_id: None,
            tenant: None,
            campaign: None,
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Messages from this client belong to `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<TenantId>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Messages from this client concern `campaign`.
    pub fn with_campaign(mut self, campaign: impl Into<CampaignId>) -> Self {
        self.campaign = Some(campaign.into());
        self
    }

    /// Messages from this client continue the chain `correlation_id`.
    pub fn with_correlation(mut self, correlation_id: CorrelationId) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// The envelope this client would send: its origin, the clock's time, and the chain, cause,
    /// tenant and campaign it carries.
    pub fn envelope<P: Payload>(&self, kind: Kind, to: Address, payload: P) -> Envelope<P> {
        let id = MessageId::new();
        Envelope {
            id,
            kind,
            from: Origin::clone(&self.origin),
            to,
            timestamp: self.core.clock.now(),
            // A new chain is named after its first message: as unique as a fresh id, at half the cost
            // on the hot path.
            correlation_id: self.correlation_id.unwrap_or(CorrelationId(id.0)),
            causation_id: self.cause,
            tenant: self.tenant.clone(),
            campaign: self.campaign.clone(),
            payload,
        }
    }

    /// Asks agent `to` and waits for its answer (bounded by its request timeout).
    pub async fn request<R: Request>(
        &self,
        to: impl Into<AgentName>,
        payload: R,
    ) -> Result<R::Response, DeliveryError> {
        let envelope = self.envelope(Kind::Request, Address::Agent(to.into()), payload);
        self.core.request(envelope, self.source).await
    }

    /// Publishes an event on `topic`; returns how many subscribers it was delivered to.
    pub fn publish<E: Payload + Clone>(
        &self,
        topic: impl TopicFor<E>,
        payload: E,
    ) -> Result<usize, DeliveryError> {
        let envelope = self.envelope(Kind::Event, Address::Topic(topic.into()), payload);
        self.core.publish(envelope, self.source)
    }

    /// Orders agent `to` to do something and waits until it has been carried out. Refused unless
    /// this client is an operator or an agent allowed to give orders.
    pub async fn command<C: Payload>(
        &self,
        to: impl Into<AgentName>,
        payload: C,
    ) -> Result<(), DeliveryError> {
        let envelope = self.envelope(Kind::Command, Address::Agent(to.into()), payload);
        self.core.command(envelope, self.source).await
    }
}

/// What a handler gets besides its message: who it is, the chain it works in, shared services, the
/// clock, and a way to send that carries the chain on.
pub struct Context {
    me: Arc<Me>,
    message_id: MessageId,
    correlation_id: CorrelationId,
    tenant: Option<TenantId>,
    campaign: Option<CampaignId>,
}

impl Context {
    pub(crate) fn for_message<P>(me: &Arc<Me>, envelope: &Envelope<P>) -> Self {
        Context {
            me: Arc::clone(me),
            message_id: envelope.id,
            correlation_id: envelope.correlation_id,
            tenant: envelope.tenant.clone(),
            campaign: envelope.campaign.clone(),
        }
    }

    /// This agent's name.
    pub fn agent(&self) -> &AgentName {
        &self.me.name
    }

    /// The chain of work the message being handled belongs to.
    pub fn correlation_id(&self) -> CorrelationId {
        self.correlation_id
    }

    /// The id of the message being handled; the cause of everything this handler sends.
    pub fn message_id(&self) -> MessageId {
        self.message_id
    }

    /// The tenant of the message being handled, if it names one.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// The campaign of the message being handled, if it names one.
    pub fn campaign(&self) -> Option<&CampaignId> {
        self.campaign.as_ref()
    }

    pub fn services(&self) -> &Services {
        &self.me.core.services
    }

    pub fn clock(&self) -> &Clock {
        &self.me.core.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.me.core.clock.now()
    }

    /// Agent `name`'s status as the supervisor sees it right now (`None`: no such agent is
    /// configured). Read it whenever it matters instead of remembering an event: an event can be
    /// missed (a full mailbox, a restart of the reader), the status cannot.
    pub fn agent_status(&self, name: &str) -> Option<AgentStatus> {
        self.me
            .core
            .slots
            .get(&AgentName::new(name))
            .map(|slot| slot.status())
    }

    /// A client that sends on behalf of this handler, in its chain; for a spawned task or to send
    /// for another tenant or campaign (`ctx.client().with_campaign(…)`).
    pub fn client(&self) -> Client {
        Client {
            core: Arc::clone(&self.me.core),
            origin: Arc::new(self.me.origin.clone()),
            source: Source::Handler,
            cause: Some(self.message_id),
            correlation_id: Some(self.correlation_id),
            tenant: self.tenant.clone(),
            campaign: self.campaign.clone(),
        }
    }

    /// The envelope this handler would send: this agent as sender, the clock's time, this message's
    /// chain, tenant and campaign, and this message as the cause.
    pub fn envelope<P: Payload>(&self, kind: Kind, to: Address, payload: P) -> Envelope<P> {
        Envelope {
            id: MessageId::new(),
            kind,
            from: self.me.origin.clone(),
            to,
            timestamp: self.me.core.clock.now(),
            correlation_id: self.correlation_id,
            causation_id: Some(self.message_id),
            tenant: self.tenant.clone(),
            campaign: self.campaign.clone(),
            payload,
        }
    }

    /// Asks agent `to`, continuing this message's chain.
    pub async fn request<R: Request>(
        &self,
        to: impl Into<AgentName>,
        payload: R,
    ) -> Result<R::Response, DeliveryError> {
        let envelope = self.envelope(Kind::Request, Address::Agent(to.into()), payload);
        self.me.core.request(envelope, Source::Handler).await
    }

    /// Publishes an event on `topic`, continuing this message's chain; returns how many subscribers
    /// it reached.
    pub fn publish<E: Payload + Clone>(
        &self,
        topic: impl TopicFor<E>,
        payload: E,
    ) -> Result<usize, DeliveryError> {
        let envelope = self.envelope(Kind::Event, Address::Topic(topic.into()), payload);
        self.me.core.publish(envelope, Source::Handler)
    }

    /// Orders agent `to`, continuing this message's chain. Refused unless this agent may give orders.
    pub async fn command<C: Payload>(
        &self,
        to: impl Into<AgentName>,
        payload: C,
    ) -> Result<(), DeliveryError> {
        let envelope = self.envelope(Kind::Command, Address::Agent(to.into()), payload);
        self.me.core.command(envelope, Source::Handler).await
    }
}

/// An agent's identity and its way into the runtime, built once per incarnation so that handling a
/// message clones one agent-local `Arc` instead of touching shared reference counts.
pub(crate) struct Me {
    pub core: Arc<Core>,
    pub name: AgentName,
    pub origin: Origin,
}

impl Me {
    pub fn new(core: Arc<Core>, name: AgentName) -> Self {
        Me {
            core,
            origin: Origin::Agent(name.clone()),
            name,
        }
    }
}
