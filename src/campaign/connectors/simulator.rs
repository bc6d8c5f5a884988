//! `simulator`: the built-in market as a connector. The market lives in the daemon and the
//! campaign loop runs each day's buys on it in the same step that writes the day's orders, so
//! there is nothing to carry: the order is delivered as soon as it is durable, and its results
//! come back as the day's simulated observations.

use super::{Connector, Delivery};
use crate::domain::order::Order;

pub struct SimulatorConnector;

impl Connector for SimulatorConnector {
    fn deliver<'a>(&'a self, _order: &'a Order) -> Delivery<'a> {
        Box::pin(async { Ok(()) })
    }
}
