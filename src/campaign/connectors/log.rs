//! `log`: the order written to the log as the day's instructions, for an operator to place by
//! hand (the default with `[market] source = "api"` for a channel that names no connector).
//! Results come back through `POST /v1/observations`.

use super::{Connector, Delivery};
use crate::domain::order::Order;

pub struct LogConnector;

impl Connector for LogConnector {
    fn deliver<'a>(&'a self, order: &'a Order) -> Delivery<'a> {
        Box::pin(async move {
            let body = serde_json::to_string(&order.body).map_err(|e| e.to_string())?;
            tracing::info!(
                order = %order.key,
                campaign = %order.campaign,
                day = order.day,
                channel = %order.channel,
                kind = order.body.kind(),
                currency = %order.currency,
                %body,
                "order to place"
            );
            Ok(())
        })
    }
}
