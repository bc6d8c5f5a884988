//! Connectors: where orders go. Each is one file behind [`Connector`], as a log shipper's sinks
//! are: `webhook` (a signed JSON POST), `files` (dated bulk-upload files in the platforms'
//! formats), `simulator` (the built-in market) and `log` (the day's instructions in the log).
//!
//! A `files` folder, like `[daemon] data_dir`, is relative to the current folder.
//!
//! A connector delivers one order at least once: it may be called again with an order it already
//! delivered (after a crash between its delivery and the outbox's record of it), and must then
//! have the same effect once, by the order's key. It answers `Err` with a reason a person can act
//! on; the outbox retries, and dead-letters after `[outbox] max_attempts`.

mod files;
mod log;
mod simulator;
mod webhook;

use std::future::Future;
use std::pin::Pin;

pub use files::FilesConnector;
pub use webhook::{WebhookConnector, signature};

use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::order::Order;
use crate::settings::Settings;
use crate::settings::connectors::ConnectorSettings;

/// What a delivery attempt comes to.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One place orders can go.
pub trait Connector: Send + Sync {
    /// Delivers `order`, or says why it could not.
    fn deliver<'a>(&'a self, order: &'a Order) -> Delivery<'a>;
}

/// The connector named `name` in `settings`, or why there is none.
pub fn build(name: &str, settings: &Settings) -> Result<Box<dyn Connector>, String> {
    match name {
        "simulator" => return Ok(Box::new(simulator::SimulatorConnector)),
        "log" => return Ok(Box::new(log::LogConnector)),
        _ => {}
    }
    match settings.config.connectors.get(name) {
        Some(ConnectorSettings::Webhook {
            url,
            secret,
            timeout_secs,
        }) => Ok(Box::new(WebhookConnector {
            url: url.clone(),
            secret: secret.clone(),
            timeout_secs: *timeout_secs,
        })),
        Some(ConnectorSettings::Files { dir }) => Ok(Box::new(FilesConnector { dir: dir.clone() })),
        None => Err(format!(
            "no connector `{name}` is configured ([connectors.{name}] in the deployment's config)"
        )),
    }
}

/// The connector a campaign's `channel` sends to: the campaign file's, else the market source's
/// (`simulator` with the built-in market, `log` without).
pub fn connector_for(goal: &CampaignGoal, channel: Channel, simulated: bool) -> String {
    goal.connectors.get(&channel).cloned().unwrap_or_else(|| {
        if simulated {
            "simulator".to_owned()
        } else {
            "log".to_owned()
        }
    })
}
