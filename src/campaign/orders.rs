//! A campaign day's orders: what the orchestrator's tick decided, written to the outbox before
//! anything is sent (and before the built-in market runs the day). Per channel, in this order:
//! the creatives of each audience segment when the set bought there changed, the daily budget
//! when it changed, and the day's buys. Each order's key comes from its step
//! (`creatives/day/3/search/students`, `budget/day/3/search`, `buys/day/3/search`), so a day run
//! again after a restart writes nothing twice. On SMS, email and push, a day's buys carry the
//! send list compliance drew for each audience whose consent is each member's own.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::connectors::connector_for;
use super::outbox::Outbox;
use crate::agents::compliance::{Compliance, DrawSendList};
use crate::agents::ledger;
use crate::agents::messages::TickReport;
use crate::agents::projection::approved_creatives;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::compliance::recipients::{SendLine, SendList};
use crate::domain::money::round_money;
use crate::domain::order::{BuyLine, Creative, Order, OrderBody, order_key};
use crate::kb::{KbError, KnowledgeBase};
use crate::runtime::{Agent, Client, DeliveryError};

/// Why a day's orders were not all written; the day is run again.
#[derive(Debug, thiserror::Error)]
#[error("the day's orders cannot be written: {0}")]
pub struct OrderError(#[from] KbError);

/// (channel, segment) → the day's send list, for the audiences whose consent is each member's own.
pub type SendLists = BTreeMap<(Channel, String), SendList>;

/// The day's send lists: for each messaging channel and segment bought, the members compliance
/// lets the day's message go to. An audience with a consent record of its own (the built-in
/// market's) has none.
pub async fn draw_send_lists(
    client: &Client,
    goal: &CampaignGoal,
    day: u32,
    tick: &TickReport,
) -> Result<SendLists, DeliveryError> {
    let mut wanted: BTreeMap<(Channel, String), Vec<SendLine>> = BTreeMap::new();
    for buy in &tick.buys {
        if matches!(buy.channel, Channel::Sms | Channel::Email | Channel::Push) {
            wanted
                .entry((buy.channel, buy.segment.clone()))
                .or_default()
                .push(SendLine {
                    variant: buy.variant.clone(),
                    spend: buy.spend,
                });
        }
    }
    let mut lists = SendLists::new();
    for ((channel, segment), lines) in wanted {
        let buys = order_key(&goal.tenant, &goal.id, &buys_step(day, channel));
        let drawn = client
            .request(
                Compliance::NAME,
                DrawSendList {
                    goal: goal.clone(),
                    day,
                    channel,
                    segment: segment.clone(),
                    lines,
                    seed: format!("{buys}/{segment}"),
                },
            )
            .await?;
        if let Some(list) = drawn.list {
            lists.insert((channel, segment), list);
        }
    }
    Ok(lists)
}

fn buys_step(day: u32, channel: Channel) -> String {
    format!("buys/day/{day}/{channel}")
}

/// Writes the orders of `tick` (the day `day` of `goal`); answers how many were new.
pub async fn write_day(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    day: u32,
    tick: &TickReport,
    send_lists: &SendLists,
    simulated: bool,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    let outbox = Outbox::open(kb)?;
    let wall = crate::runtime::Clock::wall_now();
    let make = |step: String, channel: Channel, body: OrderBody| Order {
        key: order_key(&goal.tenant, &goal.id, &step),
        tenant: goal.tenant.clone(),
        campaign: goal.id.clone(),
        step,
        channel,
        day,
        currency: goal.budget.currency.clone(),
        body,
        created_at: now,
    };
    let mut orders: Vec<(Order, Option<(String, String)>)> = Vec::new();

    // What was bought where: channel → segment → variants, and channel → buy lines.
    let mut bought: BTreeMap<Channel, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut lines: BTreeMap<Channel, Vec<BuyLine>> = BTreeMap::new();
    for buy in &tick.buys {
        let variants = bought
            .entry(buy.channel)
            .or_default()
            .entry(buy.segment.clone())
            .or_default();
        if !variants.contains(&buy.variant) {
            variants.push(buy.variant.clone());
        }
        lines.entry(buy.channel).or_default().push(BuyLine {
            segment: buy.segment.clone(),
            variant: buy.variant.clone(),
            spend: round_money(buy.spend, &goal.budget.currency),
        });
    }

    let mut approved: Option<BTreeMap<String, Creative>> = None;
    for (channel, segments) in &bought {
        for (segment, variants) in segments {
            let mut set = variants.clone();
            set.sort();
            let what = format!("creatives/{channel}/{segment}");
            let value = set.join(",");
            if outbox.last(&goal.tenant, &goal.id, &what)?.as_deref() == Some(value.as_str()) {
                continue;
            }
            // Read only when a segment's creatives changed: the first day and a new generation.
            if approved.is_none() {
                let found = kb.decisions_by_campaign(&ledger::scope(goal), &goal.id)?;
                approved = Some(approved_creatives(&found.records));
            }
            let known = approved.as_ref().map(|a| {
                set.iter()
                    .filter_map(|v| a.get(v).cloned())
                    .collect::<Vec<_>>()
            });
            let creatives = known.unwrap_or_default();
            if creatives.len() < set.len() {
                tracing::warn!(campaign = %goal.id, %channel, %segment, "a bought variant has no approved review; its creative is not ordered");
            }
            let landing_url = goal.brief.as_ref().map(|b| b.landing_url.clone());
            orders.push((
                make(
                    format!("creatives/day/{day}/{channel}/{segment}"),
                    *channel,
                    OrderBody::Creatives {
                        segment: segment.clone(),
                        creatives,
                        landing_url,
                    },
                ),
                Some((what, value)),
            ));
        }
    }
    for mix in &tick.mix.channels {
        let daily = round_money(mix.daily, &goal.budget.currency);
        let what = format!("budget/{}", mix.channel);
        let value = daily.to_string();
        if outbox.last(&goal.tenant, &goal.id, &what)?.as_deref() == Some(value.as_str()) {
            continue;
        }
        orders.push((
            make(
                format!("budget/day/{day}/{}", mix.channel),
                mix.channel,
                OrderBody::Budget { daily },
            ),
            Some((what, value)),
        ));
    }
    for (channel, mut lines) in lines {
        let mut recipients = Vec::new();
        let mut send_at = None;
        // On an audience whose consent is each member's own, a line nobody may get buys nothing.
        lines.retain(
            |line| match send_lists.get(&(channel, line.segment.clone())) {
                None => true,
                Some(list) => {
                    send_at = send_at.or(list.send_at);
                    let listed = list.recipients.iter().filter(|r| r.variant == line.variant);
                    let before = recipients.len();
                    recipients.extend(listed.cloned());
                    recipients.len() > before
                }
            },
        );
        if lines.is_empty() {
            tracing::info!(campaign = %goal.id, day, %channel, "no member of the day's audiences may get its message: nothing is ordered");
            continue;
        }
        orders.push((
            make(
                buys_step(day, channel),
                channel,
                OrderBody::Buys {
                    lines,
                    recipients,
                    send_at,
                },
            ),
            None,
        ));
    }

    let mut written = 0;
    for (order, remembered) in orders {
        // Remembered first: the order's flush makes both durable together.
        if let Some((what, value)) = remembered {
            outbox.remember(&goal.tenant, &goal.id, &what, &value)?;
        }
        let connector = connector_for(goal, order.channel, simulated);
        if outbox.write(&order, &connector, wall).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// Why the campaign's days are held by its outbox, if they are: a dead-lettered order.
pub fn held_by(kb: &KnowledgeBase, goal: &CampaignGoal) -> Result<Option<String>, KbError> {
    let mut dead = Outbox::open(kb)?.dead_letters(&goal.tenant, &goal.id)?;
    dead.sort_by(|a, b| (a.order.day, &a.order.step).cmp(&(b.order.day, &b.order.step)));
    Ok(dead.first().map(|entry| {
        format!(
            "order {} ({}) could not be delivered to `{}` after {} attempts ({}); retry or cancel it: POST /v1/orders/{}/retry or /cancel, or campaignd orders retry|cancel {}",
            entry.order.key,
            entry.order.step,
            entry.connector,
            entry.failures,
            entry.last_error.as_deref().unwrap_or("no reason recorded"),
            entry.order.key,
            entry.order.key
        )
    }))
}
