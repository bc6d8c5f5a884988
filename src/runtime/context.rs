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
    TenantId, Topic,
};

use super::agent::{AnyBox, Request};
use super::clock::Clock;
use super::core::{Core, Source};
use super::error::DeliveryError;
use super::services::Services;

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
        Envelope {
            id: MessageId::new(),
            kind,
            from: Origin::clone(&self.origin),
            to,
            timestamp: self.core.clock.now(),
            correlation_id: self.correlation_id.unwrap_or_default(),
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
        topic: impl Into<Topic>,
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
    client: Client,
    agent: Arc<AgentName>,
    message_id: MessageId,
    correlation_id: CorrelationId,
}

impl Context {
    pub(crate) fn for_message(core: &Arc<Core>, me: &Me, envelope: &Envelope<AnyBox>) -> Self {
        Context {
            agent: Arc::clone(&me.name),
            client: Client {
                core: Arc::clone(core),
                origin: Arc::clone(&me.origin),
                source: Source::Handler,
                cause: Some(envelope.id),
                correlation_id: Some(envelope.correlation_id),
                tenant: envelope.tenant.clone(),
                campaign: envelope.campaign.clone(),
            },
            message_id: envelope.id,
            correlation_id: envelope.correlation_id,
        }
    }

    /// This agent's name.
    pub fn agent(&self) -> &AgentName {
        &self.agent
    }

    /// The chain of work the message being handled belongs to.
    pub fn correlation_id(&self) -> CorrelationId {
        self.correlation_id
    }

    /// The id of the message being handled; the cause of everything this handler sends.
    pub fn message_id(&self) -> MessageId {
        self.message_id
    }

    pub fn services(&self) -> &Services {
        &self.client.core.services
    }

    pub fn clock(&self) -> &Clock {
        &self.client.core.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.client.core.clock.now()
    }

    /// The client that sends on behalf of this handler; clone it to send from a spawned task.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Asks agent `to`, continuing this message's chain.
    pub async fn request<R: Request>(
        &self,
        to: impl Into<AgentName>,
        payload: R,
    ) -> Result<R::Response, DeliveryError> {
        self.client.request(to, payload).await
    }

    /// Publishes an event on `topic`, continuing this message's chain.
    pub fn publish<E: Payload + Clone>(
        &self,
        topic: impl Into<Topic>,
        payload: E,
    ) -> Result<usize, DeliveryError> {
        self.client.publish(topic, payload)
    }

    /// Orders agent `to`, continuing this message's chain. Refused unless this agent may give orders.
    pub async fn command<C: Payload>(
        &self,
        to: impl Into<AgentName>,
        payload: C,
    ) -> Result<(), DeliveryError> {
        self.client.command(to, payload).await
    }
}

/// An agent's identity, built once per incarnation so that handling a message allocates nothing
/// for it.
pub(crate) struct Me {
    pub name: Arc<AgentName>,
    pub origin: Arc<Origin>,
}

impl Me {
    pub fn new(name: AgentName) -> Self {
        Me {
            origin: Arc::new(Origin::Agent(name.clone())),
            name: Arc::new(name),
        }
    }
}
