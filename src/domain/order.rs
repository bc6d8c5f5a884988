//! Orders: what campaignd sends out to a channel — the creatives a campaign runs, a channel's daily
//! budget, a day's buys — each with the idempotency key a receiver applies it once by, and the
//! retry schedule of its delivery.
//!
//! An order's key is derived from tenant × campaign × step (`buys/day/3/search`), so the same step
//! decided again after a restart is the same order, and a receiver that has seen the key drops the
//! repeat. Pure: no clock, no randomness of its own (the jitter comes in as a number).

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::campaign::Channel;
use super::compliance::Message;
pub use super::compliance::recipients::Recipient;
use crate::protocol::{CampaignId, TenantId};

/// An order as the outbox keeps it and a connector delivers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The idempotency key: `ord_` and 32 hex digits of SHA-256 over tenant, campaign and step.
    pub key: String,
    pub tenant: TenantId,
    pub campaign: CampaignId,
    /// The campaign step the order carries out: `creatives/<batch>/<channel>/<segment>`,
    /// `budget/day/<n>/<channel>`, `buys/day/<n>/<channel>`.
    pub step: String,
    pub channel: Channel,
    /// The campaign day it was decided on (0 is the first).
    pub day: u32,
    /// ISO 4217, for every amount in the body.
    pub currency: String,
    pub body: OrderBody,
    /// The campaign's time the order was made.
    pub created_at: DateTime<Utc>,
}

/// What an order asks the channel to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderBody {
    /// Run these approved creatives for one audience segment.
    Creatives {
        segment: String,
        creatives: Vec<Creative>,
        /// Where the ads lead (the brief's `landing_url`).
        #[serde(default)]
        landing_url: Option<String>,
    },
    /// Set the channel's daily budget, in currency units.
    Budget { daily: f64 },
    /// Buy today's traffic: spend per segment and variant, in currency units. On a messaging
    /// channel whose audience's consent is each member's own, also the send list: who gets which
    /// variant, each checked against their own consent (a line nobody may get is left out).
    Buys {
        lines: Vec<BuyLine>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recipients: Vec<Recipient>,
        /// When the send list's messages go out (with a send list only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send_at: Option<DateTime<FixedOffset>>,
    },
}

/// One approved creative: the variant and its message as compliance approved it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Creative {
    pub variant: String,
    /// The headline, where the format has one (search, display).
    #[serde(default)]
    pub headline: Option<String>,
    /// The display path of a search ad.
    #[serde(default)]
    pub path: Option<String>,
    pub message: Message,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuyLine {
    pub segment: String,
    pub variant: String,
    pub spend: f64,
}

impl OrderBody {
    /// `creatives`, `budget` or `buys`.
    pub fn kind(&self) -> &'static str {
        match self {
            OrderBody::Creatives { .. } => "creatives",
            OrderBody::Budget { .. } => "budget",
            OrderBody::Buys { .. } => "buys",
        }
    }
}

/// The key of the order that carries out `step` of `campaign`.
pub fn order_key(tenant: &TenantId, campaign: &CampaignId, step: &str) -> String {
    let mut hash = Sha256::new();
    for part in [tenant.as_str(), campaign.as_str(), step] {
        hash.update(part.as_bytes());
        // A separator no part holds, so ("a", "bc") and ("ab", "c") differ.
        hash.update([0xff]);
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("ord_{hex}")
}

/// How a delivery is retried: the wait after the first failure, doubled per failure up to a
/// ceiling, and the attempts before the order is dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt, with "equal jitter": half the doubled
    /// backoff, plus `jitter` (in [0, 1]) of the other half, so that receivers coming back from an
    /// outage are not hit by every order at the same instant.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let doubled = self
            .initial_ms
            .saturating_mul(1u64 << failures.saturating_sub(1).min(40))
            .min(self.max_ms);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = doubled / 2;
        Duration::from_millis(half + ((doubled - half) as f64 * jitter) as u64)
    }

    /// Whether an order that failed `failures` times is dead-lettered.
    pub fn exhausted(&self, failures: u32) -> bool {
        failures >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_stable_and_distinct_per_part() {
        let (t, c) = (TenantId::new("acme"), CampaignId::new("spring"));
        let key = order_key(&t, &c, "buys/day/3/search");
        assert_eq!(key, order_key(&t, &c, "buys/day/3/search"));
        assert!(key.starts_with("ord_") && key.len() == 36, "{key}");
        assert_ne!(key, order_key(&t, &c, "buys/day/4/search"));
        assert_ne!(
            key,
            order_key(&TenantId::new("globex"), &c, "buys/day/3/search")
        );
        assert_ne!(
            order_key(&TenantId::new("a"), &CampaignId::new("bc"), "s"),
            order_key(&TenantId::new("ab"), &CampaignId::new("c"), "s")
        );
    }

    #[test]
    fn the_delay_doubles_within_its_jitter_up_to_the_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_ms: 1_000,
            max_ms: 8_000,
        };
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(policy.delay(1, 1.0), Duration::from_millis(1_000));
        assert_eq!(policy.delay(3, 0.5), Duration::from_millis(3_000));
        assert_eq!(policy.delay(30, 1.0), Duration::from_millis(8_000));
        assert_eq!(policy.delay(2, f64::NAN), Duration::from_millis(1_000));
        assert!(!policy.exhausted(4) && policy.exhausted(5));
    }

    #[test]
    fn an_order_reads_back_as_written() {
        let order = Order {
            key: "ord_x".to_owned(),
            tenant: TenantId::new("acme"),
            campaign: CampaignId::new("spring"),
            step: "buys/day/0/sms".to_owned(),
            channel: Channel::Sms,
            day: 0,
            currency: "KRW".to_owned(),
            body: OrderBody::Buys {
                lines: vec![BuyLine {
                    segment: "students".to_owned(),
                    variant: "v1".to_owned(),
                    spend: 1200.0,
                }],
                recipients: Vec::new(),
                send_at: None,
            },
            created_at: "2026-09-01T00:00:00Z".parse().unwrap(),
        };
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["body"]["kind"], "buys");
        assert_eq!(serde_json::from_value::<Order>(json).unwrap(), order);
    }
}
