//! `Idempotency-Key`: a client that retries a request with the same key and the same body gets the
//! first answer again instead of a second effect. Keys live in the knowledge base's `idempotency`
//! auxiliary tree, per tenant (an operator's keys share one space), with the SHA-256 and the
//! length of the body they were first used with and the answer given; the tree is flushed before
//! the answer goes out, so a retry after a crash also counts once. A cryptographic hash, because a
//! client that can pick bodies must not be able to make a different body pass for the first one.
//! Keys stored by campaignd 0.1 carry a 64-bit FNV-1a hash instead; they are still compared with it
//! until they expire (within a week), and new keys are always stored with SHA-256.
//!
//! This is the first line of defence only: ingestion is itself idempotent per campaign × day ×
//! channel × variant. Nothing here may store a key whose request failed: a failed request must be
//! retryable. A key is remembered for [`RETENTION`] (a week) of wall-clock time ([`now`]), never
//! of the campaign's clock, which may run thousands of times faster: a retry comes within minutes
//! or hours, and the tree must not grow for as long as the daemon runs. An expired key counts as
//! new, and expired keys are swept out hourly.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorCode};
use crate::kb::KnowledgeBase;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header set on a replayed answer.
pub const REPLAYED: &str = "idempotency-replayed";
/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// How long a stored key replays its answer.
pub const RETENTION: TimeDelta = TimeDelta::days(7);
/// How often expired keys are swept out of the tree.
pub const SWEEP_EVERY: TimeDelta = TimeDelta::hours(1);

/// The time keys are stored and expire by: the wall clock, whatever the campaign clock does.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The body's fingerprint as stored: SHA-256, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not). Picks a key's lock,
/// and compares bodies with the keys campaignd 0.1 stored; never a new key's fingerprint.
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
    if headers.get_all(HEADER).iter().nth(1).is_some() {
        return Err(ApiError::new(
            ErrorCode::RepeatedHeader,
            "the Idempotency-Key header is sent more than once; send it once",
        ));
    }
    let bad = |why: String| {
        ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
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
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "must be visible ASCII characters (no spaces inside)".to_owned()
        ));
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
    /// The body's SHA-256 (hex); absent in keys stored by campaignd 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_sha256: Option<String>,
    /// campaignd 0.1's fingerprint, read only from the keys it stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_fnv1a64: Option<u64>,
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

    /// Whether `key` was used before (less than [`RETENTION`] before `now`), and with the same
    /// body. The same key with another body is an error (422 `idempotency_key_reused`): the client
    /// reused a key for a different request.
    pub fn lookup(
        &self,
        caller: &Caller,
        key: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Lookup, ApiError> {
        let found = self
            .tree
            .get(Self::tree_key(caller, key))
            .map_err(|e| ApiError::internal("the idempotency keys cannot be read", e))?;
        let Some(found) = found else {
            return Ok(Lookup::New);
        };
        let stored: Stored = serde_json::from_slice(&found)
            .map_err(|e| ApiError::internal("a stored idempotency key is unreadable", e))?;
        if expired(&stored, now) {
            return Ok(Lookup::New);
        }
        if !same_body(&stored, body) {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
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
            body_sha256: Some(sha256_hex(body)),
            body_fnv1a64: None,
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

    /// Removes every key stored [`RETENTION`] or longer before `now`; returns how many. A stored
    /// value that does not decode is left for [`IdempotencyStore::lookup`] to report.
    pub fn sweep(&self, now: DateTime<Utc>) -> Result<usize, sled::Error> {
        let mut removed = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            let Ok(stored) = serde_json::from_slice::<Stored>(&value) else {
                continue;
            };
            // Compare and remove: a retry that stored the key again meanwhile keeps it.
            if expired(&stored, now)
                && self
                    .tree
                    .compare_and_swap(&key, Some(&value), None::<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Answers a write at most once per `key` and body: with no key, `run` runs and its JSON answer
/// is sent; with one, a retry replays the first answer (`Idempotency-Replayed: true`) and `run`
/// does not run again. `what` names the request in the log. `run` goes on in its own task even if
/// the client disconnects, so the key is never left unstored after the effect happened.
pub async fn answer_once<F>(
    state: ApiState,
    caller: Caller,
    key: Option<String>,
    body: Bytes,
    what: &'static str,
    run: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<String, ApiError>> + Send + 'static,
{
    let Some(key) = key else {
        let answer = run.await?;
        return Ok(json_response(StatusCode::OK, answer.into_bytes(), false));
    };
    tokio::spawn(async move {
        // Two concurrent tries of the same key must not both miss the lookup and both run.
        let lock = IdempotencyStore::lock_index(&caller, &key) % state.inner.idempotency.len();
        let _serial = state.inner.idempotency[lock].lock().await;
        let store = IdempotencyStore::open(state.kb())?;
        if let Lookup::Replay { status, answer } = store.lookup(&caller, &key, &body, now())? {
            tracing::info!(
                token_name = caller.name(),
                "{what} replayed from its Idempotency-Key"
            );
            return Ok(json_response(status, answer, true));
        }
        let answer = run.await?;
        let now = now();
        store
            .store(&caller, &key, &body, StatusCode::OK, &answer, now)
            .await?;
        if state.idempotency_sweep_due(now) {
            // Not on the request's path: the answer is ready, and the sweep reads every key.
            tokio::task::spawn_blocking(move || match store.sweep(now) {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "expired Idempotency-Keys removed"),
                Err(err) => tracing::warn!(%err, "could not sweep expired Idempotency-Keys"),
            });
        }
        Ok(json_response(StatusCode::OK, answer.into_bytes(), false))
    })
    .await
    .map_err(|e| ApiError::internal("the request's task stopped", e))?
}

/// A JSON answer, marked as a replay when it is one.
pub fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Whether `body` is the body `stored` was first used with. A key with neither fingerprint is
/// taken for another body: refusing a retry is safe, a second effect is not.
fn same_body(stored: &Stored, body: &[u8]) -> bool {
    let hashed = match (&stored.body_sha256, stored.body_fnv1a64) {
        (Some(sha256), _) => *sha256 == sha256_hex(body),
        (None, Some(fnv)) => fnv == fnv1a64(body),
        (None, None) => false,
    };
    hashed && stored.body_len == body.len() as u64
}

fn expired(stored: &Stored, now: DateTime<Utc>) -> bool {
    now - stored.stored_at >= RETENTION
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
    fn sha256_matches_the_reference_values() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn new_keys_store_sha256_and_keys_of_0_1_are_still_compared_by_fnv() {
        let dir = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(&crate::kb::KbOptions::at(dir.path())).unwrap();
        let store = IdempotencyStore::open(&kb).unwrap();
        let ops = Caller::Operator {
            name: "ops".into(),
            role: crate::settings::config::Role::Operator,
        };
        let now = now();
        let old = serde_json::json!({
            "body_fnv1a64": fnv1a64(b"{\"day\":1}"),
            "body_len": 9,
            "status": 200,
            "answer": "{\"recorded\":1}",
            "stored_at": now,
        });
        store
            .tree
            .insert(
                IdempotencyStore::tree_key(&ops, "from-0.1"),
                serde_json::to_vec(&old).unwrap(),
            )
            .unwrap();
        assert!(matches!(
            store.lookup(&ops, "from-0.1", b"{\"day\":1}", now).unwrap(),
            Lookup::Replay { .. }
        ));
        let err = store
            .lookup(&ops, "from-0.1", b"{\"day\":2}", now)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::IdempotencyKeyReused);

        store
            .store(&ops, "new", b"{}", StatusCode::OK, "{}", now)
            .await
            .unwrap();
        let raw = store
            .tree
            .get(IdempotencyStore::tree_key(&ops, "new"))
            .unwrap()
            .unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(stored["body_sha256"], serde_json::json!(sha256_hex(b"{}")));
        assert!(stored.get("body_fnv1a64").is_none(), "{stored}");
        let err = store.lookup(&ops, "new", b"[]", now).unwrap_err();
        assert_eq!(err.code, ErrorCode::IdempotencyKeyReused);
    }

    #[test]
    fn a_repeated_key_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(HEADER, HeaderValue::from_static("a"));
        headers.append(HEADER, HeaderValue::from_static("a"));
        assert_eq!(
            key_of(&headers).unwrap_err().code,
            ErrorCode::RepeatedHeader
        );
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
        assert_eq!(err.code, ErrorCode::InvalidIdempotencyKey);
        assert!(err.message.contains("201"), "{}", err.message);
        headers.insert(HEADER, HeaderValue::from_static("  "));
        assert_eq!(
            key_of(&headers).unwrap_err().code,
            ErrorCode::InvalidIdempotencyKey
        );
        // Spaces around the key are trimmed; one inside it is not a visible character.
        headers.insert(HEADER, HeaderValue::from_static(" a-b "));
        assert_eq!(key_of(&headers).unwrap().as_deref(), Some("a-b"));
        headers.insert(HEADER, HeaderValue::from_static("a b"));
        assert_eq!(
            key_of(&headers).unwrap_err().code,
            ErrorCode::InvalidIdempotencyKey
        );
    }

    #[tokio::test]
    async fn a_key_replays_for_a_week_then_counts_as_new_and_is_swept_out() {
        let dir = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(&crate::kb::KbOptions::at(dir.path())).unwrap();
        let store = IdempotencyStore::open(&kb).unwrap();
        let acme = Caller::Tenant {
            name: "acme-etl".into(),
            tenant: crate::protocol::TenantId::new("acme"),
            role: crate::settings::config::Role::Approver,
        };
        let then = "2026-11-01T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for key in ["old", "recent"] {
            let at = if key == "old" {
                then
            } else {
                then + TimeDelta::days(6)
            };
            store
                .store(&acme, key, b"{}", StatusCode::OK, "{\"recorded\":1}", at)
                .await
                .unwrap();
        }
        let almost = then + RETENTION - TimeDelta::seconds(1);
        assert!(matches!(
            store.lookup(&acme, "old", b"{}", almost).unwrap(),
            Lookup::Replay { .. }
        ));
        let week = then + RETENTION;
        assert_eq!(
            store.lookup(&acme, "old", b"{}", week).unwrap(),
            Lookup::New
        );
        // Expired, a key may even come back with another body.
        assert_eq!(
            store.lookup(&acme, "old", b"[]", week).unwrap(),
            Lookup::New
        );
        assert_eq!(store.sweep(week).unwrap(), 1);
        assert_eq!(store.sweep(week).unwrap(), 0);
        assert!(matches!(
            store.lookup(&acme, "recent", b"{}", week).unwrap(),
            Lookup::Replay { .. }
        ));
    }
}
