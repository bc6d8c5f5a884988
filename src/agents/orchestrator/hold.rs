//! Why a campaign day is held, and the held day's decision.
//!
//! The compliance hold is read from the supervisor's live status of the compliance agent at every
//! use, never remembered from an event: an `agent_isolated` event can be missed (a full mailbox, a
//! restart of the orchestrator) and an operator's `resume` cannot clear a status, so the hold lasts
//! exactly as long as compliance cannot review. A peer that times out or is overloaded while the
//! orchestrator handles a tick holds that day (recorded with the reason); it must never fail the
//! handler, which would restart the orchestrator and, three times within a minute, isolate it.

use std::collections::BTreeSet;

use super::Orchestrator;
use crate::agents::compliance::Compliance;
use crate::agents::decisions::{self as kinds, DayInputs};
use crate::agents::ledger::Draft;
use crate::agents::messages::{Tick, TickReport};
use crate::domain::campaign::CampaignGoal;
use crate::protocol::Envelope;
use crate::runtime::{Agent, AgentError, AgentState, AgentStatus, Context, DeliveryError};

/// Why nothing can be approved or bought while compliance is in `status` (`None`: no compliance
/// agent is configured), or `None` when it can review. A restart in progress is not a hold: the
/// agent answers again after its backoff, and a review sent meanwhile fails closed on its own.
pub(super) fn compliance_hold(status: Option<&AgentStatus>) -> Option<String> {
    let Some(status) = status else {
        return Some(format!(
            "no {} agent is running (agents/{}.toml is missing or disabled), so nothing can be reviewed",
            Compliance::NAME,
            Compliance::NAME
        ));
    };
    let last_error = status
        .last_error
        .as_deref()
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default();
    match status.state {
        AgentState::Running | AgentState::Restarting => None,
        AgentState::Isolated => Some(format!("{} is isolated{last_error}", Compliance::NAME)),
        AgentState::Stopped => Some(format!("{} is stopped{last_error}", Compliance::NAME)),
    }
}

/// A held day: the step naming its cause (one decision per day and cause, however often the day
/// is retried), the agents found isolated, and why.
pub(super) struct Held {
    pub step: String,
    pub isolated: BTreeSet<String>,
    pub why: String,
}

/// The agent a delivery error is about, for the held day's step and inputs.
fn peer_of(error: &DeliveryError) -> &str {
    match error {
        DeliveryError::Timeout { agent, .. }
        | DeliveryError::Unavailable { agent, .. }
        | DeliveryError::Rejected { agent, .. }
        | DeliveryError::Overloaded { agent, .. }
        | DeliveryError::Failed { agent, .. }
        | DeliveryError::Refused { agent, .. } => agent.as_str(),
        DeliveryError::ShuttingDown { .. } => "runtime",
    }
}

impl Orchestrator {
    /// Why nothing may be approved or bought right now because of compliance, if so.
    pub(super) fn compliance_down(ctx: &Context) -> Option<String> {
        compliance_hold(ctx.agent_status(Compliance::NAME).as_ref())
    }

    /// Records the day as held and answers the report with nothing bought.
    pub(super) async fn hold_day(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        mut report: TickReport,
        Held {
            step,
            isolated,
            why,
        }: Held,
    ) -> Result<TickReport, AgentError> {
        let day = request.payload.day;
        let draft = Draft::new::<kinds::Hold>(
            step,
            DayInputs { day, isolated },
            "nothing approved, nothing sent".to_owned(),
        )
        .reason(format!("failing closed: {why}"))
        .confidence(1.0);
        self.record(ctx, request, goal, draft).await?;
        report.buys.clear();
        report.held = Some(why);
        Ok(report)
    }

    /// The day held because compliance cannot review.
    pub(super) async fn hold_for_compliance(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        report: TickReport,
        why: String,
    ) -> Result<TickReport, AgentError> {
        let day = request.payload.day;
        let reason = format!(
            "{why}; no variant can be approved and nothing is bought until an operator revives it (campaignd revive {0}) and resumes the campaign",
            Compliance::NAME
        );
        let held = Held {
            step: format!("hold/day/{day}"),
            isolated: BTreeSet::from([Compliance::NAME.to_owned()]),
            why: reason,
        };
        self.hold_day(ctx, request, goal, report, held).await
    }

    /// The day held because a peer did not answer in time, was overloaded or failed.
    pub(super) async fn hold_for_peer(
        &mut self,
        ctx: &Context,
        request: &Envelope<Tick>,
        goal: &CampaignGoal,
        report: TickReport,
        error: DeliveryError,
    ) -> Result<TickReport, AgentError> {
        let day = request.payload.day;
        let peer = peer_of(&error).to_owned();
        tracing::warn!(campaign = %goal.id, day, %peer, %error, "a peer did not answer; the day is held and run again at the next tick");
        let held = Held {
            step: format!("hold/day/{day}/{peer}"),
            isolated: BTreeSet::new(),
            why: format!(
                "{error}; nothing is bought today and the day is run again at the next tick"
            ),
        };
        self.hold_day(ctx, request, goal, report, held).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AgentName;

    fn status(state: AgentState) -> AgentStatus {
        AgentStatus {
            name: AgentName::new("compliance"),
            state,
            restarts: 3,
            last_error: Some("rule engine unavailable".to_owned()),
            in_flight: 0,
            mailbox: 8,
            workers: 2,
        }
    }

    #[test]
    fn compliance_holds_while_it_is_isolated_stopped_or_missing() {
        let isolated = compliance_hold(Some(&status(AgentState::Isolated))).unwrap_or_default();
        assert!(isolated.contains("compliance is isolated"), "{isolated}");
        assert!(isolated.contains("rule engine unavailable"), "{isolated}");
        let stopped = compliance_hold(Some(&status(AgentState::Stopped))).unwrap_or_default();
        assert!(stopped.contains("compliance is stopped"), "{stopped}");
        let missing = compliance_hold(None).unwrap_or_default();
        assert!(missing.contains("no compliance agent"), "{missing}");
        assert_eq!(compliance_hold(Some(&status(AgentState::Running))), None);
        assert_eq!(compliance_hold(Some(&status(AgentState::Restarting))), None);
    }
}
