//! The language agents speak: ids, the envelope every message travels in, and its MessagePack codec.
//!
//! This layer knows nothing of agents, actors or marketing. Everything here is plain data that can be
//! encoded, stored in the knowledge base and sent to another process, so it must never hold a handle,
//! a channel or anything else that only makes sense inside one process.

mod codec;
mod envelope;
mod ids;

pub use codec::{
    CodecError, DEFAULT_MAX_MESSAGE_BYTES, decode, decode_envelope, encode, encode_envelope,
};
pub use envelope::{Address, Envelope, Kind, Origin, Payload, WirePayload};
pub use ids::{AgentName, CampaignId, CorrelationId, MessageId, TenantId, Topic};
