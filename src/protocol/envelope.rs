//! The envelope: who sent what to whom, when, in which chain of work, for which tenant and campaign.
//!
//! The payload is generic. Inside one process it is the agent's own Rust type, so a wrong reply does
//! not compile; on the wire and in the knowledge base it is a [`WirePayload`]: the action name and the
//! payload's own MessagePack bytes, so that a process can route and log a message whose type it
//! does not know.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ids::{AgentName, CampaignId, CorrelationId, MessageId, TenantId, Topic};

/// What a message asks of its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Expects exactly one response (or a typed error).
    Request,
    /// Answers one request; its causation id is the request's id.
    Response,
    /// A fact published on a topic; any number of subscribers, no answer.
    Event,
    /// An order (pause, re-plan, …); only the orchestrator and an operator may send one.
    Command,
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    Agent(AgentName),
    Topic(Topic),
}

/// Who sent a message. Operators and the runtime itself are not agents, and the command rule needs
/// to tell them apart from agents.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Agent(AgentName),
    /// An authenticated operator (through the command line or the API); the name is for the audit log.
    Operator(String),
    /// The runtime (supervision events, the clock).
    Runtime,
}

impl Origin {
    pub fn agent(name: impl Into<AgentName>) -> Self {
        Origin::Agent(name.into())
    }

    /// The agent name, if an agent sent it.
    pub fn agent_name(&self) -> Option<&AgentName> {
        match self {
            Origin::Agent(name) => Some(name),
            _ => None,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Agent(name) => write!(f, "agent:{name}"),
            Origin::Operator(who) => write!(f, "operator:{who}"),
            Origin::Runtime => f.write_str("runtime"),
        }
    }
}

/// A typed payload: every message type names its action, which is how it is routed, logged and
/// recognised after a trip through MessagePack.
pub trait Payload: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// A stable snake_case name, unique across the system (`plan_campaign`, `review_variant`, …).
    const ACTION: &'static str;

    /// The campaign this payload is about, when it names one. An agent that runs several workers
    /// gets the message on the worker holding this campaign; the envelope's `campaign` header is
    /// used when the payload names none. Implement it for every payload that carries a campaign
    /// (or a goal), so a sender that forgot the header still reaches the right state.
    fn campaign(&self) -> Option<&CampaignId> {
        None
    }

    /// The tenant this payload is about, when it names one; the same as [`Payload::campaign`] for
    /// agents whose workers are split by tenant.
    fn tenant(&self) -> Option<&TenantId> {
        None
    }
}

/// A payload whose type is not known here: the action name and the payload's named-field
/// MessagePack bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePayload {
    pub action: String,
    #[serde(with = "serde_bytes_compat")]
    pub data: Vec<u8>,
}

/// An envelope around a payload `P`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P> {
    pub id: MessageId,
    pub kind: Kind,
    pub from: Origin,
    pub to: Address,
    pub timestamp: DateTime<Utc>,
    pub correlation_id: CorrelationId,
    /// The message that caused this one; `None` only for the first message of a chain.
    #[serde(default)]
    pub causation_id: Option<MessageId>,
    #[serde(default)]
    pub tenant: Option<TenantId>,
    #[serde(default)]
    pub campaign: Option<CampaignId>,
    pub payload: P,
}

impl<P: Payload> Envelope<P> {
    /// The first message of a new chain of work: a fresh correlation id, no cause.
    pub fn new(
        kind: Kind,
        from: Origin,
        to: Address,
        timestamp: DateTime<Utc>,
        payload: P,
    ) -> Self {
        Self {
            id: MessageId::new(),
            kind,
            from,
            to,
            timestamp,
            correlation_id: CorrelationId::new(),
            causation_id: None,
            tenant: None,
            campaign: None,
            payload,
        }
    }

    /// A message caused by `cause`: same correlation id, tenant and campaign; `cause` as its cause.
    pub fn caused_by<Q>(
        cause: &Envelope<Q>,
        kind: Kind,
        from: Origin,
        to: Address,
        timestamp: DateTime<Utc>,
        payload: P,
    ) -> Self {
        Self {
            id: MessageId::new(),
            kind,
            from,
            to,
            timestamp,
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.id),
            tenant: cause.tenant.clone(),
            campaign: cause.campaign.clone(),
            payload,
        }
    }

    /// The payload's action name.
    pub fn action(&self) -> &'static str {
        P::ACTION
    }

    pub fn with_tenant(mut self, tenant: impl Into<TenantId>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn with_campaign(mut self, campaign: impl Into<CampaignId>) -> Self {
        self.campaign = Some(campaign.into());
        self
    }

    pub fn with_correlation(mut self, correlation_id: CorrelationId) -> Self {
        self.correlation_id = correlation_id;
        self
    }
}

impl<P> Envelope<P> {
    /// The same headers around the payload `f` makes of this one. Every change of payload type
    /// (typed to wire bytes, to a type-erased box and back) goes through here, so a header added
    /// to the envelope is carried over in one place.
    pub fn try_map_payload<Q, E>(
        self,
        f: impl FnOnce(P) -> Result<Q, E>,
    ) -> Result<Envelope<Q>, E> {
        let Envelope {
            id,
            kind,
            from,
            to,
            timestamp,
            correlation_id,
            causation_id,
            tenant,
            campaign,
            payload,
        } = self;
        Ok(Envelope {
            id,
            kind,
            from,
            to,
            timestamp,
            correlation_id,
            causation_id,
            tenant,
            campaign,
            payload: f(payload)?,
        })
    }

    /// A copy of the headers without the payload, for building another envelope from a borrowed one.
    pub fn headers(&self) -> Envelope<()> {
        Envelope {
            id: self.id,
            kind: self.kind,
            from: self.from.clone(),
            to: self.to.clone(),
            timestamp: self.timestamp,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            tenant: self.tenant.clone(),
            campaign: self.campaign.clone(),
            payload: (),
        }
    }

    /// [`Envelope::try_map_payload`] for a change that cannot fail.
    pub fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> Envelope<Q> {
        match self.try_map_payload(|p| Ok::<Q, std::convert::Infallible>(f(p))) {
            Ok(envelope) => envelope,
            Err(never) => match never {},
        }
    }
}

/// MessagePack has a binary type; serde without `serde_bytes` would write a `Vec<u8>` as an array of
/// integers, twice the size. This keeps it binary without another dependency.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}
