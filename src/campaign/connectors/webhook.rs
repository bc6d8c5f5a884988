//! `webhook`: each order POSTed as JSON to a URL, signed like the approval webhook (HMAC-SHA256
//! over `<timestamp>.<body>` in `X-Campaignd-Signature`, the time in `X-Campaignd-Timestamp`), with
//! the order's key in `Idempotency-Key` so a receiver applies a repeat once. A 2xx answer is a
//! delivery; any other answer, or none within `timeout_secs`, is a failure to retry. https goes
//! through rustls.

use std::time::Duration;

use super::{Connector, Delivery};
use crate::domain::order::Order;

pub use crate::campaign::notifications::signature;

pub struct WebhookConnector {
    pub url: String,
    pub secret: String,
    pub timeout_secs: u64,
}

impl Connector for WebhookConnector {
    fn deliver<'a>(&'a self, order: &'a Order) -> Delivery<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(order).map_err(|e| e.to_string())?;
            let timestamp = chrono::Utc::now().timestamp();
            let signed = signature(self.secret.as_bytes(), timestamp, &body)?;
            let (url, timeout, key) = (self.url.clone(), self.timeout_secs, order.key.clone());
            let kind = order.body.kind();
            let sent = tokio::task::spawn_blocking(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(timeout)))
                    .build()
                    .into();
                agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", &key)
                    .header("X-Campaignd-Event", format!("order.{kind}"))
                    .header("X-Campaignd-Timestamp", timestamp.to_string())
                    .header("X-Campaignd-Signature", &signed)
                    .send(&body[..])
                    .map(|r| r.status())
            })
            .await
            .map_err(|e| format!("the delivery task stopped: {e}"))?;
            match sent {
                Ok(status) if status.is_success() => Ok(()),
                Ok(status) => Err(format!("{} answered {status}", self.url)),
                Err(e) => Err(format!("{}: {e}", self.url)),
            }
        })
    }
}
