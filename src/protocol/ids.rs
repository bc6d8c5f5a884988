//! Identifiers carried by every envelope and every knowledge-base record.
//!
//! Message and correlation ids are uuid v7, so they sort by creation time; that keeps the knowledge
//! base's indexes in time order without a separate timestamp key. Names (agents, topics, tenants,
//! campaigns) are short strings chosen by operators in config.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The 16 bytes of the id, big-endian, as used in knowledge-base keys.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies one message.
    MessageId
);
uuid_id!(
    /// Identifies one chain of work: copied onto every message and decision the chain causes.
    CorrelationId
);

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

name_id!(
    /// An agent's name, as in its definition file `agents/<name>.toml` (`compliance`, `strategy`, …).
    AgentName
);
name_id!(
    /// A topic events are published on (`spend`, `agent_isolated`, …).
    Topic
);
name_id!(
    /// The tenant a message or record belongs to: an organization, or `organization/client`.
    TenantId
);
name_id!(
    /// A campaign's id, as in `config/campaigns/<id>.toml`.
    CampaignId
);
