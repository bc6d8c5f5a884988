//! The outbox: every order campaignd sends, durable before any connector sees it, with where its
//! delivery stands (a small sled tree beside the knowledge base, `aux/outbox`).
//!
//! An order is written once under its key (writing it again, after a restart re-ran its day, does
//! nothing) and is `pending` until a connector delivers it. A failed attempt is retried after a
//! jittered, doubling backoff; after `[outbox] max_attempts` failures the order is
//! `dead_lettered`, and its campaign's days are held until an operator retries or cancels it.
//! Each change is one sled transaction over the entry and its indexes: `q` (pending, for the
//! delivery worker), `x` (dead letters, for the hold) and `c` (a campaign's orders in day order,
//! for the API), so the worker and the hold read what waits, never the history.
//!
//! The tree also remembers what each campaign last ordered per channel (its daily budget, the
//! creatives of each segment), so an unchanged budget or creative set is not ordered again.

pub mod delivery;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::domain::order::{Order, RetryPolicy};
use crate::kb::{KbError, KnowledgeBase};
use crate::protocol::{CampaignId, TenantId};

/// Where an order's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Pending,
    Delivered,
    DeadLettered,
    Cancelled,
}

impl OrderState {
    pub const ALL: [OrderState; 4] = [
        OrderState::Pending,
        OrderState::Delivered,
        OrderState::DeadLettered,
        OrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Delivered => "delivered",
            OrderState::DeadLettered => "dead_lettered",
            OrderState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An order with its delivery's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub order: Order,
    /// The connector it goes to, fixed when it is written.
    pub connector: String,
    pub state: OrderState,
    /// Failed attempts since it was written or last retried by an operator.
    pub failures: u32,
    pub last_error: Option<String>,
    /// Wall-clock times.
    pub written_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Who retried or cancelled it, and why.
    #[serde(default)]
    pub operator_note: Option<String>,
}

fn storage(e: impl std::fmt::Display) -> KbError {
    KbError::Storage {
        path: "aux/outbox".into(),
        reason: e.to_string(),
    }
}

fn corrupt(key: &[u8], e: impl std::fmt::Display) -> KbError {
    KbError::Corrupt {
        key: format!("aux/outbox {}", String::from_utf8_lossy(key)),
        reason: e.to_string(),
    }
}

fn entry_key(order: &str) -> Vec<u8> {
    [b"o\0".as_slice(), order.as_bytes()].concat()
}

fn pending_key(order: &str) -> Vec<u8> {
    [b"q\0".as_slice(), order.as_bytes()].concat()
}

fn campaign_prefix(tenant: &TenantId, campaign: &CampaignId) -> Vec<u8> {
    format!("c\0{tenant}\0{campaign}\0").into_bytes()
}

fn campaign_key(order: &Order) -> Vec<u8> {
    let mut key = campaign_prefix(&order.tenant, &order.campaign);
    key.extend_from_slice(format!("{:08}\0{}", order.day, order.key).as_bytes());
    key
}

fn dead_prefix(tenant: &TenantId, campaign: &CampaignId) -> Vec<u8> {
    format!("x\0{tenant}\0{campaign}\0").into_bytes()
}

fn dead_key(order: &Order) -> Vec<u8> {
    [
        dead_prefix(&order.tenant, &order.campaign),
        order.key.as_bytes().to_vec(),
    ]
    .concat()
}

fn last_key(tenant: &TenantId, campaign: &CampaignId, what: &str) -> Vec<u8> {
    format!("l\0{tenant}\0{campaign}\0{what}").into_bytes()
}

/// Why an operator's retry or cancel was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no order `{0}`")]
    Unknown(String),
    #[error("order `{key}` is {state} and cannot be {wanted}")]
    Refused {
        key: String,
        state: &'static str,
        wanted: &'static str,
    },
    #[error(transparent)]
    Kb(#[from] KbError),
}

#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
}

impl Outbox {
    pub fn open(kb: &KnowledgeBase) -> Result<Self, KbError> {
        Ok(Outbox {
            tree: kb.auxiliary_tree("outbox")?,
        })
    }

    fn decode(key: &[u8], bytes: &[u8]) -> Result<Entry, KbError> {
        serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))
    }

    /// Writes `order` for `connector` if no order has its key yet, durably; `true` if written now.
    pub async fn write(
        &self,
        order: &Order,
        connector: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, KbError> {
        let key = entry_key(&order.key);
        if self.tree.contains_key(&key).map_err(storage)? {
            return Ok(false);
        }
        let entry = Entry {
            order: order.clone(),
            connector: connector.to_owned(),
            state: OrderState::Pending,
            failures: 0,
            last_error: None,
            written_at: now,
            next_attempt_at: now,
            delivered_at: None,
            operator_note: None,
        };
        let bytes = serde_json::to_vec(&entry).map_err(storage)?;
        let mut batch = sled::Batch::default();
        batch.insert(key, bytes);
        batch.insert(pending_key(&order.key), b"".as_slice());
        batch.insert(campaign_key(order), b"".as_slice());
        self.tree.apply_batch(batch).map_err(storage)?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(true)
    }

    pub fn get(&self, order: &str) -> Result<Option<Entry>, KbError> {
        let key = entry_key(order);
        self.tree
            .get(&key)
            .map_err(storage)?
            .map(|bytes| Self::decode(&key, &bytes))
            .transpose()
    }

    fn entries_of(
        &self,
        index: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        skip: usize,
    ) -> Result<Vec<Entry>, KbError> {
        let mut out = Vec::new();
        for item in index {
            let (key, _) = item.map_err(storage)?;
            let Some(order) = key.get(skip..).and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            let order = order.rsplit('\0').next().unwrap_or(order);
            if let Some(entry) = self.get(order)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Every pending order, due or not.
    pub fn pending(&self) -> Result<Vec<Entry>, KbError> {
        self.entries_of(self.tree.scan_prefix(b"q\0"), 2)
    }

    /// The campaign's dead-lettered orders: while there is one, its days are held.
    pub fn dead_letters(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<Vec<Entry>, KbError> {
        let prefix = dead_prefix(tenant, campaign);
        self.entries_of(self.tree.scan_prefix(&prefix), prefix.len())
    }

    /// Every dead-lettered order of every campaign.
    pub fn all_dead_letters(&self) -> Result<Vec<Entry>, KbError> {
        self.entries_of(self.tree.scan_prefix(b"x\0"), 2)
    }

    /// The campaign's orders in day order, from the one after `after` (an order key), at most
    /// `limit`.
    pub fn of_campaign(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        after: Option<&Entry>,
        limit: usize,
    ) -> Result<Vec<Entry>, KbError> {
        let prefix = campaign_prefix(tenant, campaign);
        let start = match after {
            Some(entry) => {
                let mut key = campaign_key(&entry.order);
                key.push(0);
                key
            }
            None => prefix.clone(),
        };
        let index = self
            .tree
            .range(start..)
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .take(limit);
        self.entries_of(index, prefix.len())
    }

    /// Changes one entry in a transaction with its indexes; `change` answers the entry as it
    /// should be, or an error that leaves everything as it was.
    fn update(
        &self,
        order: &str,
        change: impl Fn(Entry) -> Result<Entry, ChangeError>,
    ) -> Result<Entry, ChangeError> {
        let key = entry_key(order);
        let result = self.tree.transaction(|tx| {
            let Some(bytes) = tx.get(&key)? else {
                return Err(ConflictableTransactionError::Abort(ChangeError::Unknown(
                    order.to_owned(),
                )));
            };
            let old = Self::decode(&key, &bytes)
                .map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
            let new = change(old.clone()).map_err(ConflictableTransactionError::Abort)?;
            let encoded = serde_json::to_vec(&new)
                .map_err(|e| ConflictableTransactionError::Abort(storage(e).into()))?;
            tx.insert(key.clone(), encoded)?;
            let pending = pending_key(order);
            let dead = dead_key(&new.order);
            match new.state {
                OrderState::Pending => {
                    tx.insert(pending, b"".as_slice())?;
                    tx.remove(dead)?;
                }
                OrderState::DeadLettered => {
                    tx.remove(pending)?;
                    tx.insert(dead, b"".as_slice())?;
                }
                OrderState::Delivered | OrderState::Cancelled => {
                    tx.remove(pending)?;
                    tx.remove(dead)?;
                }
            }
            Ok(new)
        });
        match result {
            Ok(entry) => Ok(entry),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(storage(e).into()),
        }
    }

    /// Records how a delivery attempt went: delivered, or failed and retried after the policy's
    /// backoff (`jitter` in [0, 1]), or dead-lettered when out of attempts. An order an operator
    /// cancelled meanwhile stays cancelled.
    pub async fn settle(
        &self,
        order: &str,
        result: Result<(), String>,
        policy: &RetryPolicy,
        jitter: f64,
        now: DateTime<Utc>,
    ) -> Result<Entry, ChangeError> {
        let entry = self.update(order, |mut entry| {
            if entry.state != OrderState::Pending {
                return Ok(entry);
            }
            match &result {
                Ok(()) => {
                    entry.state = OrderState::Delivered;
                    entry.delivered_at = Some(now);
                    entry.last_error = None;
                }
                Err(why) => {
                    entry.failures += 1;
                    entry.last_error = Some(why.clone());
                    if policy.exhausted(entry.failures) {
                        entry.state = OrderState::DeadLettered;
                    } else {
                        let wait = policy.delay(entry.failures, jitter);
                        entry.next_attempt_at =
                            now + chrono::Duration::from_std(wait).unwrap_or_default();
                    }
                }
            }
            Ok(entry)
        })?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(entry)
    }

    /// An operator's retry: a dead-lettered (or pending) order is tried again now, with its
    /// attempts counted from zero.
    pub async fn retry(
        &self,
        order: &str,
        note: String,
        now: DateTime<Utc>,
    ) -> Result<Entry, ChangeError> {
        let entry = self.update(order, |mut entry| match entry.state {
            OrderState::DeadLettered | OrderState::Pending => {
                entry.state = OrderState::Pending;
                entry.failures = 0;
                entry.next_attempt_at = now;
                entry.operator_note = Some(note.clone());
                Ok(entry)
            }
            state => Err(ChangeError::Refused {
                key: entry.order.key.clone(),
                state: state.as_str(),
                wanted: "retried",
            }),
        })?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(entry)
    }

    /// An operator's cancel: the order is never delivered (its campaign's hold, if it was the
    /// reason, lifts).
    pub async fn cancel(&self, order: &str, note: String) -> Result<Entry, ChangeError> {
        let entry = self.update(order, |mut entry| match entry.state {
            OrderState::DeadLettered | OrderState::Pending => {
                entry.state = OrderState::Cancelled;
                entry.operator_note = Some(note.clone());
                Ok(entry)
            }
            state => Err(ChangeError::Refused {
                key: entry.order.key.clone(),
                state: state.as_str(),
                wanted: "cancelled",
            }),
        })?;
        self.tree.flush_async().await.map_err(storage)?;
        Ok(entry)
    }

    /// What the campaign last ordered under `what` (`budget/<channel>`, `creatives/<channel>/<segment>`).
    pub fn last(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        what: &str,
    ) -> Result<Option<String>, KbError> {
        self.tree
            .get(last_key(tenant, campaign, what))
            .map_err(storage)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(storage))
            .transpose()
    }

    /// Remembers what the campaign ordered under `what`; written with the order's flush.
    pub fn remember(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        what: &str,
        value: &str,
    ) -> Result<(), KbError> {
        self.tree
            .insert(last_key(tenant, campaign, what), value.as_bytes())
            .map_err(storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
