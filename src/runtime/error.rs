//! What can go wrong in delivery, in an agent's own work, and at start.
//!
//! Every delivery ends in a response or in one [`DeliveryError`] naming the agent and the action, so
//! a caller can always tell what failed and why. Nothing here may panic or hide the cause.

use std::fmt;

use crate::protocol::AgentName;

/// Why a message was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The agent did not answer in time. Its work is not cancelled; the answer is dropped.
    #[error(
        "agent `{agent}` did not answer {action} within {} ms (request_timeout_ms in agents/{agent}.toml)",
        after.as_millis()
    )]
    Timeout {
        agent: AgentName,
        action: String,
        after: std::time::Duration,
    },
    /// The agent cannot take work now: unknown, restarting, isolated or stopped. Fails at once.
    #[error("agent `{agent}` cannot take {action}: {reason}")]
    Unavailable {
        agent: AgentName,
        action: String,
        reason: Unavailable,
    },
    /// The message is not allowed: a command from a sender that may not give orders, an action the
    /// agent does not handle, a request addressed to a topic.
    #[error("agent `{agent}` refused {action}: {reason}")]
    Rejected {
        agent: AgentName,
        action: String,
        reason: String,
    },
    /// The agent's mailbox is full; try again later instead of queueing without limit.
    #[error(
        "agent `{agent}` is overloaded: {mailbox} messages already admitted (mailbox in agents/{agent}.toml); {action} refused"
    )]
    Overloaded {
        agent: AgentName,
        action: String,
        mailbox: usize,
    },
    /// The agent failed (returned an error or panicked) while handling the message; it is being
    /// restarted.
    #[error("agent `{agent}` failed while handling {action}: {reason}")]
    Failed {
        agent: AgentName,
        action: String,
        reason: String,
    },
    /// The runtime is shutting down and takes no new work from outside.
    #[error("campaignd is shutting down; {action} was not accepted")]
    ShuttingDown { action: String },
}

/// Why an agent is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No agent of that name was started.
    Unknown,
    /// The agent failed and waits for its restart.
    Restarting,
    /// The agent failed too often and was isolated; an operator must look at it.
    Isolated,
    /// The agent was stopped (shutdown).
    Stopped,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::Unknown => {
                "no agent of that name is running (is it in the registry and enabled in agents/?)"
            }
            Unavailable::Restarting => "it failed and is being restarted",
            Unavailable::Isolated => {
                "it failed too often and was isolated (see its status and last error)"
            }
            Unavailable::Stopped => "it has been stopped",
        })
    }
}

/// An agent's own failure: returned from `start` or a handler. Returning one restarts the agent, so
/// use it for "my working state may be broken", not for a business answer like "plan infeasible"
/// (that belongs in the response type).
///
/// Like `anyhow::Error`, any `std::error::Error` converts into it with `?`; for that reason it does
/// not implement `std::error::Error` itself.
pub struct AgentError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl AgentError {
    /// An error from a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }

    pub(crate) fn into_boxed(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for AgentError {
    fn from(e: E) -> Self {
        Self(Box::new(e))
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why the runtime could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(
        "agents/{agent}.toml defines agent `{agent}`, but no agent of that name is registered; registered agents: {known}"
    )]
    NotRegistered { agent: AgentName, known: String },
    #[error("agent `{agent}` is defined twice")]
    Duplicate { agent: AgentName },
    #[error(
        "agent `{agent}` has mailbox = 0 in agents/{agent}.toml; it must admit at least one message"
    )]
    ZeroMailbox { agent: AgentName },
    #[error("agent `{agent}` failed to start: {reason}")]
    Agent { agent: AgentName, reason: String },
    #[error("the runtime's supervisor failed to start: {0}")]
    Supervisor(String),
}
