//! MessagePack encoding of envelopes and of anything else that is stored or sent.
//!
//! Always named fields (`to_vec_named`): a record written today must still decode after a field is
//! added, and positional encoding breaks on that. Decoding never trusts its input: a message larger
//! than the configured limit is refused before it is parsed, and malformed or truncated bytes come
//! back as an error value, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::envelope::{Envelope, Payload, WirePayload};

/// The size limit used when config does not set one: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error(
        "message of {size} bytes is larger than the limit of {limit} bytes (protocol.max_message_bytes)"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("could not encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("could not decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("payload action is `{found}`, expected `{expected}`")]
    WrongAction {
        expected: &'static str,
        found: String,
    },
}

/// Encodes any value as named-field MessagePack.
pub fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec_named(value).map_err(|e| CodecError::Encode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes a value, refusing input above `limit` bytes before looking inside it.
pub fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// Encodes a typed envelope for the wire: the payload becomes its own MessagePack bytes, tagged
/// with its action, so a receiver that does not know the type can still route and log it.
pub fn encode_envelope<P: Payload>(
    envelope: &Envelope<P>,
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    let wire = envelope.to_wire()?;
    let bytes = encode("envelope", &wire)?;
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}

/// Decodes an envelope whose payload stays opaque; see [`Envelope::open`] to get the typed payload.
pub fn decode_envelope(bytes: &[u8], limit: usize) -> Result<Envelope<WirePayload>, CodecError> {
    decode("envelope", bytes, limit)
}

impl<P: Payload> Envelope<P> {
    /// This envelope with its payload encoded.
    pub fn to_wire(&self) -> Result<Envelope<WirePayload>, CodecError> {
        let data = encode(P::ACTION, &self.payload)?;
        Ok(self.headers().map_payload(|()| WirePayload {
            action: P::ACTION.to_owned(),
            data,
        }))
    }
}

impl Envelope<WirePayload> {
    /// The typed payload, if the action matches `P` and the bytes decode as `P`.
    pub fn open<P: Payload>(self) -> Result<Envelope<P>, CodecError> {
        self.try_map_payload(|wire| {
            if wire.action != P::ACTION {
                return Err(CodecError::WrongAction {
                    expected: P::ACTION,
                    found: wire.action,
                });
            }
            decode(P::ACTION, &wire.data, usize::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Address, Kind, Origin};
    use chrono::Utc;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }
    impl Payload for Ping {
        const ACTION: &'static str = "ping";
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct PingV2 {
        n: u32,
        #[serde(default)]
        note: Option<String>,
    }
    impl Payload for PingV2 {
        const ACTION: &'static str = "ping";
    }

    fn ping() -> Envelope<Ping> {
        Envelope::new(
            Kind::Request,
            Origin::agent("a"),
            Address::Agent("b".into()),
            Utc::now(),
            Ping { n: 7 },
        )
        .with_tenant("acme")
        .with_campaign("spring")
    }

    #[test]
    fn round_trips_through_the_wire() {
        let env = ping();
        let bytes = encode_envelope(&env, DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        let back = decode_envelope(&bytes, DEFAULT_MAX_MESSAGE_BYTES)
            .unwrap()
            .open::<Ping>()
            .unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn an_older_record_decodes_into_a_newer_type() {
        let bytes = encode_envelope(&ping(), DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        let v2 = decode_envelope(&bytes, DEFAULT_MAX_MESSAGE_BYTES)
            .unwrap()
            .open::<PingV2>()
            .unwrap();
        assert_eq!(v2.payload, PingV2 { n: 7, note: None });
    }

    #[test]
    fn refuses_a_message_over_the_limit() {
        let bytes = encode_envelope(&ping(), DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        let err = decode_envelope(&bytes, 10).unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { limit: 10, .. }),
            "{err}"
        );
        assert!(matches!(
            encode_envelope(&ping(), 10),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_the_wrong_payload_type() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Other;
        impl Payload for Other {
            const ACTION: &'static str = "other";
        }
        let bytes = encode_envelope(&ping(), DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        let err = decode_envelope(&bytes, DEFAULT_MAX_MESSAGE_BYTES)
            .unwrap()
            .open::<Other>()
            .unwrap_err();
        assert_eq!(
            err,
            CodecError::WrongAction {
                expected: "other",
                found: "ping".into()
            }
        );
    }

    #[test]
    fn truncated_bytes_are_an_error() {
        let bytes = encode_envelope(&ping(), DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode_envelope(&bytes[..cut], DEFAULT_MAX_MESSAGE_BYTES).is_err(),
                "cut at {cut}"
            );
        }
    }
}
