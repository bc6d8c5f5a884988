//! `Idempotency-Key`: a client that retries a request with the same key and the same body gets the
//! first answer again instead of a second effect. Keys live in the knowledge base's `idempotency`
//! auxiliary tree, per tenant (an operator's keys share one space), with an FNV-1a hash and the
//! length of the body they were first used with and the answer given; the tree is flushed before
//! the answer goes out, so a retry after a crash also counts once.
//!
//! This is the first line of defence only: ingestion is itself idempotent per campaign × day ×
//! channel × variant. Nothing here may store a key whose request failed: a failed request must be
//! retryable. Stored keys do not expire.

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use crate::kb::KnowledgeBase;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header set on a replayed answer.
pub const REPLAYED: &str = "idempotency-replayed";
/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 200;

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not), which a stored
/// fingerprint must be.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The request's `Idempotency-Key`, if it sent one: 1 to 200 visible ASCII characters.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bad = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!("the Idempotency-Key header {why}"),
        )
    };
    let key = value
        .to_str()
        .map_err(|_| bad("must be visible ASCII characters".to_owned()))?
        .trim();
    if key.is_empty() {
        return Err(bad("is empty".to_owned()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(bad(format!(
            "is {} bytes long; at most {MAX_KEY_BYTES} are accepted",
            key.len()
        )));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(bad("must be visible ASCII characters".to_owned()));
    }
    Ok(Some(key.to_owned()))
}

/// What a key has seen before.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Not used yet: go ahead, then [`IdempotencyStore::store`] the answer.
    New,
    /// Used with this same body: answer this again, do nothing.
    Replay { status: StatusCode, answer: Vec<u8> },
}

#[derive(Serialize, Deserialize)]
struct Stored {
    body_fnv1a64: u64,
    body_len: u64,
    status: u16,
    /// The JSON answer as sent.
    answer: String,
    stored_at: DateTime<Utc>,
}

/// The stored keys.
pub struct IdempotencyStore {
    tree: sled::Tree,
}

impl IdempotencyStore {
    pub fn open(kb: &KnowledgeBase) -> Result<Self, ApiError> {
        kb.auxiliary_tree("idempotency")
            .map(|tree| IdempotencyStore { tree })
            .map_err(|e| ApiError::internal("the idempotency keys cannot be opened", e))
    }

    /// Which of the API's idempotency locks guards this caller's `key`.
    pub fn lock_index(caller: &Caller, key: &str) -> usize {
        fnv1a64(&Self::tree_key(caller, key)) as usize
    }

    /// Each tenant has its own key space, so one tenant's key never replays another's answer.
    fn tree_key(caller: &Caller, key: &str) -> Vec<u8> {
        let space = match caller {
            Caller::Operator { .. } => "operator".to_owned(),
            Caller::Tenant { tenant, .. } => format!("tenant:{tenant}"),
        };
        let mut bytes = space.into_bytes();
        bytes.push(0);
        bytes.extend_from_slice(key.as_bytes());
        bytes
    }

    /// Whether `key` was used before, and with the same body. The same key with another body is
    /// an error (422 `idempotency_key_reused`): the client reused a key for a different request.
    pub fn lookup(&self, caller: &Caller, key: &str, body: &[u8]) -> Result<Lookup, ApiError> {
        let found = self
            .tree
            .get(Self::tree_key(caller, key))
            .map_err(|e| ApiError::internal("the idempotency keys cannot be read", e))?;
        let Some(found) = found else {
            return Ok(Lookup::New);
        };
        let stored: Stored = serde_json::from_slice(&found)
            .map_err(|e| ApiError::internal("a stored idempotency key is unreadable", e))?;
        if stored.body_fnv1a64 != fnv1a64(body) || stored.body_len != body.len() as u64 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key `{key}` was already used at {} with a different body; use a new key for a new request",
                    stored.stored_at.to_rfc3339()
                ),
            ));
        }
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        Ok(Lookup::Replay {
            status,
            answer: stored.answer.into_bytes(),
        })
    }

    /// Remembers the answer given for `key` and `body`, durably (flushed) before returning.
    pub async fn store(
        &self,
        caller: &Caller,
        key: &str,
        body: &[u8],
        status: StatusCode,
        answer: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let stored = Stored {
            body_fnv1a64: fnv1a64(body),
            body_len: body.len() as u64,
            status: status.as_u16(),
            answer: answer.to_owned(),
            stored_at: now,
        };
        let bytes = serde_json::to_vec(&stored)
            .map_err(|e| ApiError::internal("an idempotency key cannot be encoded", e))?;
        self.tree
            .insert(Self::tree_key(caller, key), bytes)
            .map_err(|e| ApiError::internal("an idempotency key cannot be stored", e))?;
        self.tree
            .flush_async()
            .await
            .map_err(|e| ApiError::internal("an idempotency key cannot be flushed", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(key_of(&headers).unwrap(), None);
        headers.insert(HEADER, HeaderValue::from_static("batch-2026-11-25-001"));
        assert_eq!(
            key_of(&headers).unwrap().as_deref(),
            Some("batch-2026-11-25-001")
        );
        headers.insert(HEADER, HeaderValue::from_str(&"k".repeat(201)).unwrap());
        let err = key_of(&headers).unwrap_err();
        assert_eq!(err.code, "invalid_idempotency_key");
        assert!(err.message.contains("201"), "{}", err.message);
        headers.insert(HEADER, HeaderValue::from_static("  "));
        assert_eq!(
            key_of(&headers).unwrap_err().code,
            "invalid_idempotency_key"
        );
    }
}
