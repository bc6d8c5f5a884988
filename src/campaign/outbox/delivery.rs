//! The delivery worker: every quarter of a second it takes the pending orders whose attempt is
//! due, hands each to its connector (up to [`PARALLEL`] at once, so one slow receiver does not
//! hold back the others) and records how it went in the outbox. A restart resumes where the
//! outbox stands: an order is pending until a delivery of it is recorded, so at worst it is
//! delivered again, which its key makes harmless. Connectors are read from the settings in force
//! at each round, so a reload changes a URL or a folder without a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::{Entry, OrderState, Outbox};
use crate::campaign::connectors::{self, Connector};
use crate::kb::{KbError, KnowledgeBase};
use crate::runtime::Clock;
use crate::settings::LiveSettings;

/// Orders delivered, by `connector` and `kind`.
pub const DELIVERED: &str = "campaignd_orders_delivered_total";
/// Failed delivery attempts, by `connector` and `kind`.
pub const FAILED: &str = "campaignd_order_delivery_failures_total";
/// Orders dead-lettered, by `connector`.
pub const DEAD_LETTERED: &str = "campaignd_orders_dead_lettered_total";
/// Seconds from an order's writing to its delivery, by `connector`.
pub const LATENCY: &str = "campaignd_order_delivery_latency_seconds";

const ROUND: Duration = Duration::from_millis(250);
/// Deliveries in flight at once.
pub const PARALLEL: usize = 16;

pub struct RunningDelivery {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningDelivery {
    /// Stops after the deliveries in flight (each bounded by its connector's timeout).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(%e, "the order delivery worker ended abnormally");
        }
    }
}

pub fn spawn(kb: &KnowledgeBase, settings: LiveSettings) -> Result<RunningDelivery, KbError> {
    let outbox = Outbox::open(kb)?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(outbox, settings, stopped));
    Ok(RunningDelivery { stop, task })
}

async fn run(outbox: Outbox, settings: LiveSettings, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => round(&outbox, &settings).await,
        }
    }
}

/// One round: every due order, delivered or settled as failed.
pub async fn round(outbox: &Outbox, settings: &LiveSettings) {
    let now = Clock::wall_now();
    let due: Vec<Entry> = match outbox.pending() {
        Ok(pending) => pending
            .into_iter()
            .filter(|e| e.state == OrderState::Pending && e.next_attempt_at <= now)
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "cannot read the outbox");
            return;
        }
    };
    if due.is_empty() {
        return;
    }
    let settings = settings.current();
    let policy = settings.config.outbox.policy();
    let mut built: BTreeMap<String, Result<Arc<dyn Connector>, String>> = BTreeMap::new();
    let mut flight = JoinSet::new();
    let mut queue = due.into_iter();
    loop {
        while flight.len() < PARALLEL {
            let Some(entry) = queue.next() else { break };
            let connector = built
                .entry(entry.connector.clone())
                .or_insert_with(|| connectors::build(&entry.connector, &settings).map(Arc::from))
                .clone();
            flight.spawn(async move {
                let result = match connector {
                    Ok(connector) => connector.deliver(&entry.order).await,
                    Err(why) => Err(why),
                };
                (entry, result)
            });
        }
        let Some(done) = flight.join_next().await else {
            break;
        };
        let Ok((entry, result)) = done else {
            tracing::error!("an order delivery task panicked; the order is tried again");
            continue;
        };
        settle(outbox, &policy, entry, result).await;
    }
}

async fn settle(
    outbox: &Outbox,
    policy: &crate::domain::order::RetryPolicy,
    entry: Entry,
    result: Result<(), String>,
) {
    let (connector, kind) = (entry.connector.clone(), entry.order.body.kind());
    let now = Clock::wall_now();
    match &result {
        Ok(()) => {
            metrics::counter!(DELIVERED, "connector" => connector.clone(), "kind" => kind)
                .increment(1);
            let latency = (now - entry.written_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!(LATENCY, "connector" => connector.clone()).record(latency);
        }
        Err(why) => {
            metrics::counter!(FAILED, "connector" => connector.clone(), "kind" => kind)
                .increment(1);
            tracing::warn!(order = %entry.order.key, campaign = %entry.order.campaign, %connector, attempt = entry.failures + 1, %why, "order not delivered");
        }
    }
    let jitter: f64 = rand::random();
    match outbox
        .settle(&entry.order.key, result, policy, jitter, now)
        .await
    {
        Ok(settled) if settled.state == OrderState::DeadLettered => {
            metrics::counter!(DEAD_LETTERED, "connector" => connector.clone()).increment(1);
            tracing::error!(order = %settled.order.key, campaign = %settled.order.campaign, %connector, attempts = settled.failures, why = settled.last_error.as_deref().unwrap_or_default(), "order dead-lettered: the campaign's days are held until an operator retries or cancels it");
        }
        Ok(_) => {}
        // Not recorded: the order stays pending and is delivered again, which its key makes
        // harmless.
        Err(err) => {
            tracing::warn!(order = %entry.order.key, %err, "cannot record an order's delivery")
        }
    }
}
