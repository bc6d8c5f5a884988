//! What the runtime needs to know about one agent: its name, how many workers run it, its mailbox
//! bound, subscriptions, request timeout and supervision policy.
//!
//! These are plain values. The settings layer converts `agents/<name>.toml` into them; the runtime
//! must never read files or know the TOML layout.

use std::time::Duration;

use crate::protocol::{AgentName, Topic};

/// One agent's definition as the runtime uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSpec {
    /// The agent's name; it must match a name in the [`Registry`](super::Registry).
    pub name: AgentName,
    /// How many actors run the agent side by side, each with its own state, so that different
    /// campaigns are handled on different cores. Each campaign (or tenant, see
    /// [`ShardBy`](super::ShardBy)) always goes to the same worker, so its messages stay in order.
    /// At least 1; fixed for the life of the runtime.
    pub workers: usize,
    /// Messages admitted (queued or being handled, over all workers) before senders are answered
    /// `Overloaded`.
    pub mailbox: usize,
    /// Topics whose events this agent receives.
    pub subscribe: Vec<Topic>,
    /// How long a request to this agent may take before the caller gets `Timeout`.
    pub request_timeout: Duration,
    pub supervision: SupervisionPolicy,
}

/// OTP-style restart intensity with exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupervisionPolicy {
    /// At most this many restarts within `within`; the next failure isolates the agent.
    pub max_restarts: u32,
    pub within: Duration,
    /// The first restart waits this long; each further restart in the window doubles it.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for SupervisionPolicy {
    /// The values the shipped `agents/*.toml` files use.
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl SupervisionPolicy {
    /// The delay before restart number `attempt` (0 for the first restart in the window).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt).unwrap_or(u32::MAX);
        self.backoff_initial
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

impl AgentSpec {
    /// A definition with one worker and the defaults of the shipped `agents/*.toml` files:
    /// mailbox 1024, no subscriptions, 5 s request timeout, 3 restarts within 60 s.
    pub fn new(name: impl Into<AgentName>) -> Self {
        Self {
            name: name.into(),
            workers: 1,
            mailbox: 1024,
            subscribe: Vec::new(),
            request_timeout: Duration::from_secs(5),
            supervision: SupervisionPolicy::default(),
        }
    }

    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    pub fn with_mailbox(mut self, mailbox: usize) -> Self {
        self.mailbox = mailbox;
        self
    }

    pub fn with_subscription(mut self, topic: impl Into<Topic>) -> Self {
        self.subscribe.push(topic.into());
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_supervision(mut self, supervision: SupervisionPolicy) -> Self {
        self.supervision = supervision;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = SupervisionPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(5), Duration::from_millis(3200));
        assert_eq!(p.backoff(6), Duration::from_secs(5));
        assert_eq!(p.backoff(40), Duration::from_secs(5));
    }
}
