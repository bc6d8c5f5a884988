//! The runtime's own Prometheus figures: messages handled, request latency and failures, refused
//! commands and undelivered events, each labelled by agent.
//!
//! Label values are bounded: an agent name from the configuration, one of the four message kinds,
//! one of the fixed error names. Nothing from a message (ids, actions, payloads) ever becomes a
//! label. The handles are resolved once per configured agent when the runtime starts and kept in
//! its slot, so the delivery path only bumps atomics; a recorder must therefore be installed before
//! [`crate::runtime::RuntimeBuilder::start`] for these figures to reach it. Without a recorder every
//! handle is a no-op. This module must never block, allocate per message, or read the clock other
//! than once at each end of a request.

use metrics::{Counter, Histogram, Unit, counter, histogram};

use crate::protocol::{AgentName, Kind};

use super::error::DeliveryError;

/// Messages handled, by receiving agent and kind.
pub const MESSAGES_TOTAL: &str = "campaignd_messages_total";
/// Time from sending a request to its response or error, by target agent.
pub const REQUEST_DURATION_SECONDS: &str = "campaignd_request_duration_seconds";
/// Requests that ended in an error, by target agent and error.
pub const REQUEST_ERRORS_TOTAL: &str = "campaignd_request_errors_total";
/// Commands refused because their sender may not give orders, by target agent.
pub const COMMANDS_REJECTED_TOTAL: &str = "campaignd_commands_rejected_total";
/// Events a subscriber did not get (overloaded, unavailable), by subscriber and reason.
pub const EVENTS_UNDELIVERED_TOTAL: &str = "campaignd_events_undelivered_total";

/// Buckets for [`REQUEST_DURATION_SECONDS`], in seconds: a delivery takes microseconds, a request
/// that does real work milliseconds, a timeout seconds. Pass them to the exporter
/// (`set_buckets_for_metric`) so the histogram aggregates across instances instead of rendering as
/// a summary.
pub const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The error label of each [`DeliveryError`].
const ERRORS: [&str; 7] = [
    "timeout",
    "unavailable",
    "rejected",
    "overloaded",
    "failed",
    "shutting_down",
    "refused",
];

/// Registers the `# HELP` text of every runtime metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        MESSAGES_TOTAL,
        "Messages handled, by receiving agent and kind (request, event, command; response counts \
         the answers an agent gave)"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from sending a request to its response or error, by target agent"
    );
    describe_counter!(
        REQUEST_ERRORS_TOTAL,
        "Requests that ended in an error, by target agent and error (timeout, unavailable, \
         rejected, overloaded, failed, shutting_down)"
    );
    describe_counter!(
        COMMANDS_REJECTED_TOTAL,
        "Commands refused because their sender may not give orders, by target agent"
    );
    describe_counter!(
        EVENTS_UNDELIVERED_TOTAL,
        "Events a subscriber did not receive, by subscriber and reason (overloaded, unavailable)"
    );
}

/// Where a delivery error's label sits in [`ERRORS`].
fn error_index(error: &DeliveryError) -> usize {
    match error {
        DeliveryError::Timeout { .. } => 0,
        DeliveryError::Unavailable { .. } => 1,
        DeliveryError::Rejected { .. } => 2,
        DeliveryError::Overloaded { .. } => 3,
        DeliveryError::Failed { .. } => 4,
        DeliveryError::ShuttingDown { .. } => 5,
        DeliveryError::Refused { .. } => 6,
    }
}

/// One agent's metric handles, resolved once.
pub(crate) struct AgentMetrics {
    requests: Counter,
    responses: Counter,
    events: Counter,
    commands: Counter,
    request_seconds: Histogram,
    /// In the order of [`ERRORS`].
    request_errors: [Counter; 7],
    commands_rejected: Counter,
    events_overloaded: Counter,
    events_unavailable: Counter,
}

impl AgentMetrics {
    pub fn new(agent: &AgentName) -> Self {
        let name = agent.as_str().to_owned();
        let kind =
            |kind: &'static str| counter!(MESSAGES_TOTAL, "agent" => name.clone(), "kind" => kind);
        let error = |error: &'static str| counter!(REQUEST_ERRORS_TOTAL, "agent" => name.clone(), "error" => error);
        let undelivered = |reason: &'static str| counter!(EVENTS_UNDELIVERED_TOTAL, "agent" => name.clone(), "reason" => reason);
        AgentMetrics {
            requests: kind("request"),
            responses: kind("response"),
            events: kind("event"),
            commands: kind("command"),
            request_seconds: histogram!(REQUEST_DURATION_SECONDS, "agent" => name.clone()),
            request_errors: ERRORS.map(error),
            commands_rejected: counter!(COMMANDS_REJECTED_TOTAL, "agent" => name.clone()),
            events_overloaded: undelivered("overloaded"),
            events_unavailable: undelivered("unavailable"),
        }
    }

    /// One message of `kind` handled by this agent.
    pub fn handled(&self, kind: Kind) {
        match kind {
            Kind::Request => &self.requests,
            Kind::Response => &self.responses,
            Kind::Event => &self.events,
            Kind::Command => &self.commands,
        }
        .increment(1);
    }

    /// One request to this agent ended after `seconds`, with `error` if it failed.
    pub fn request_done(&self, seconds: f64, error: Option<&DeliveryError>) {
        self.request_seconds.record(seconds);
        if let Some(counter) = error.and_then(|e| self.request_errors.get(error_index(e))) {
            counter.increment(1);
        }
    }

    pub fn command_rejected(&self) {
        self.commands_rejected.increment(1);
    }

    /// An event was not delivered to this agent.
    pub fn event_undelivered(&self, error: &DeliveryError) {
        match error {
            DeliveryError::Overloaded { .. } => self.events_overloaded.increment(1),
            _ => self.events_unavailable.increment(1),
        }
    }
}

/// A request that names no configured agent (an unknown name, a topic): counted under one fixed
/// label, since the name came from the sender and could be anything.
pub(crate) fn unknown_target_request(error: &DeliveryError) {
    let label = ERRORS
        .get(error_index(error))
        .copied()
        .unwrap_or("unavailable");
    counter!(REQUEST_ERRORS_TOTAL, "agent" => "(unknown)", "error" => label).increment(1);
}
