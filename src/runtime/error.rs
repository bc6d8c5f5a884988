//! What can go wrong in delivery, in an agent's own work, and at start.
//!
//! Every delivery ends in a response or in one [`DeliveryError`] naming the agent and the action, so
//! a caller can always tell what failed and why. Nothing here may panic or hide the cause.

use std::fmt;

use super::status::AgentState;
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
    /// The agent looked at the command and will not carry it out (its handler returned
    /// [`AgentError::refuse`]); nothing was done and the agent keeps running.
    #[error("agent `{agent}` refused {action}: {reason}")]
    Refused {
        agent: AgentName,
        action: String,
        reason: String,
    },
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
/// Like `anyhow::Error`, any `std::error::Error` converts into it with `?` and is kept whole: its
/// `source()` chain is printed (`outer: inner: …`) in the agent's `last_error`, the log and the
/// caller's [`DeliveryError::Failed`], and [`AgentError::downcast_ref`] finds it again. Use
/// [`AgentError::caused`] to say what the agent was doing, and [`AgentError::msg`] only when
/// there is no error to keep. For that reason it does not implement `std::error::Error` itself.
pub struct AgentError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl AgentError {
    /// An error from a message, with no cause to keep.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }

    /// `err` with what the agent was doing when it happened: printed `context: err: …`, and `err`
    /// stays reachable through [`AgentError::source`] and [`AgentError::downcast_ref`].
    pub fn caused(
        context: impl fmt::Display,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self(Box::new(Caused {
            context: context.to_string(),
            source: Box::new(err),
        }))
    }

    /// A command handler's answer "I will not carry this out, and why": the sender gets
    /// [`DeliveryError::Refused`] with `reason`, and the agent is not restarted (its state is
    /// intact, it decided). Anywhere but a command handler it counts as a failure like any other.
    pub fn refuse(reason: impl fmt::Display) -> Self {
        Self(Box::new(Refusal(reason.to_string())))
    }

    /// The reason, when this error is a refusal ([`AgentError::refuse`]).
    pub fn refusal(&self) -> Option<&str> {
        self.0.downcast_ref::<Refusal>().map(|r| r.0.as_str())
    }

    /// The error itself: the one converted with `?`, or the context of [`AgentError::caused`].
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The error's cause, if it has one (for [`AgentError::caused`], the wrapped error).
    pub fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }

    /// The first error of type `E` in the chain (the error itself, then its sources).
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&*self.0);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }

    /// For ractor, which prints only an error's own message: one error whose message is the
    /// whole chain, so a restart's `last_error` names the cause too.
    pub(crate) fn into_boxed(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        if self.0.source().is_none() {
            return self.0;
        }
        self.to_string().into()
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

/// What [`AgentError::refuse`] builds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

/// What [`AgentError::caused`] builds: a context whose source is the error.
#[derive(Debug)]
struct Caused {
    context: String,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl fmt::Display for Caused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for Caused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Why one incarnation of an agent could not be started: its `start` failed or panicked (ractor's
/// report of it, which is not `Clone`, kept as its message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpawnError(pub String);

/// Why an operator's revive of an agent was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviveError {
    #[error("no agent named `{0}` is configured")]
    Unknown(AgentName),
    #[error("agent `{agent}` is {state}, not isolated")]
    NotIsolated { agent: AgentName, state: AgentState },
    #[error("{0}")]
    Spawn(SpawnError),
}

impl From<SpawnError> for ReviveError {
    fn from(err: SpawnError) -> Self {
        ReviveError::Spawn(err)
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
    Agent {
        agent: AgentName,
        reason: SpawnError,
    },
    #[error("the runtime's supervisor failed to start: {0}")]
    Supervisor(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the disk is full")]
    struct DiskFull;

    #[derive(Debug, thiserror::Error)]
    #[error("could not record the plan")]
    struct Record(#[source] DiskFull);

    fn recorded() -> Result<(), Record> {
        Err(Record(DiskFull))
    }

    fn handler() -> Result<(), AgentError> {
        recorded()?;
        Ok(())
    }

    #[test]
    fn question_mark_keeps_the_error_and_its_chain() {
        let err = handler().unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not record the plan: the disk is full"
        );
        assert!(err.downcast_ref::<Record>().is_some());
        assert!(err.downcast_ref::<DiskFull>().is_some());
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("the disk is full")
        );
        // ractor prints only the top message: it must carry the chain.
        assert_eq!(
            err.into_boxed().to_string(),
            "could not record the plan: the disk is full"
        );
    }

    #[test]
    fn caused_says_what_the_agent_was_doing() {
        let err = AgentError::caused("rebuilding campaign `spring`", Record(DiskFull));
        assert_eq!(
            err.to_string(),
            "rebuilding campaign `spring`: could not record the plan: the disk is full"
        );
        assert_eq!(err.as_error().to_string(), "rebuilding campaign `spring`");
        assert!(err.downcast_ref::<DiskFull>().is_some());
        assert!(err.downcast_ref::<DeliveryError>().is_none());
    }

    #[test]
    fn a_message_has_no_cause() {
        let err = AgentError::msg("state missing");
        assert!(err.source().is_none());
        assert_eq!(err.into_boxed().to_string(), "state missing");
    }
}
