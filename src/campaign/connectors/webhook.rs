//! `webhook`: each order POSTed as JSON to a URL, signed like the approval webhook (HMAC-SHA256
//! over `<timestamp>.<body>` in `X-Campaignd-Signature`, the time in `X-Campaignd-Timestamp`), with
//! the order's key in `Idempotency-Key` so a receiver applies a repeat once. A 2xx answer is a
//! delivery; any other answer, or none within `timeout_secs`, is a failure to retry. https goes
//! through rustls.

use super::{Connector, Delivery};
use crate::campaign::signed;
use crate::domain::order::Order;

pub use crate::campaign::signed::signature;

pub struct WebhookConnector {
    pub url: String,
    pub secret: String,
    pub timeout_secs: u64,
}

impl Connector for WebhookConnector {
    fn deliver<'a>(&'a self, order: &'a Order) -> Delivery<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(order).map_err(|e| e.to_string())?;
            let headers = vec![
                ("Idempotency-Key", order.key.clone()),
                ("X-Campaignd-Event", format!("order.{}", order.body.kind())),
            ];
            let timestamp = chrono::Utc::now().timestamp();
            signed::post(
                &self.url,
                &self.secret,
                self.timeout_secs,
                timestamp,
                headers,
                body,
            )
            .await
        })
    }
}
