//! Operators' orders (pause, resume, re-plan), each recorded as a decision with who and why (at
//! the wall-clock time it was given, whatever the campaign clock says), an operator's revive of an
//! isolated agent, and the events the orchestrator hears: an agent isolated, its own progress
//! reports, recorded observations (the optimizer's to learn from).
//!
//! A `resume` while compliance is isolated is refused with the reason: the hold is compliance's
//! live status, which only a revive changes.

use super::Orchestrator;
use crate::agents::compliance::Compliance;
use crate::agents::decisions::{self as kinds, DecisionKind, OperatorInputs, ReviveInputs};
use crate::agents::ledger::{self, Draft};
use crate::agents::messages::{
    AgentIsolated, AgentRevived, GoalProgress, OPERATIONS_TENANT, ObservationsRecorded, Pause,
    Replan, Resume,
};
use crate::kb::DecisionId;
use crate::protocol::{CampaignId, Envelope, Origin, Payload, TenantId};
use crate::runtime::{Agent, AgentError, Context, HandleCommand, HandleEvent};

impl Orchestrator {
    /// Records an operator's command about `campaign` as a decision of kind `K` and takes it into
    /// the campaign's state. A campaign never started here has nothing to command: ignored.
    async fn operator_decision<K, C>(
        &mut self,
        ctx: &Context,
        command: &Envelope<C>,
        campaign: &CampaignId,
        why: Option<String>,
        reason: String,
    ) -> Result<(), AgentError>
    where
        K: DecisionKind<Inputs = OperatorInputs, Choice = String>,
        C: Payload,
    {
        let kind = K::KIND;
        let Some(goal) = self.campaigns.get(campaign).and_then(|s| s.goal.clone()) else {
            tracing::warn!(%campaign, kind, "command for a campaign this orchestrator has not started; ignored");
            return Ok(());
        };
        let n = self.state(&goal)?.commands + 1;
        let draft = Draft::new::<K>(
            format!("operator/{n}/{kind}"),
            OperatorInputs {
                from: command.from.to_string(),
                // An audit time: when the person acted, not the campaign's (simulated) day.
                at: chrono::Utc::now(),
                why,
            },
            kind.to_owned(),
        )
        .reason(reason)
        .confidence(1.0);
        self.record(ctx, command, &goal, draft).await?;
        Ok(())
    }
}

impl HandleEvent<AgentIsolated> for Orchestrator {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<AgentIsolated>,
    ) -> Result<(), AgentError> {
        // Logged only: every tick reads the agent's live status, so nothing depends on this event
        // arriving.
        let agent = event.payload.agent.to_string();
        tracing::error!(%agent, last_error = %event.payload.last_error, "agent isolated; degrading");
        Ok(())
    }
}

/// Its own progress reports come back on the topic it subscribes to; they are already recorded.
impl HandleEvent<GoalProgress> for Orchestrator {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<GoalProgress>,
    ) -> Result<(), AgentError> {
        let p = &event.payload;
        tracing::debug!(campaign = %p.campaign, day = p.day, conversions = p.conversions, "progress");
        Ok(())
    }
}

/// Batches are the optimizer's to learn from; the orchestrator reads progress at its next tick.
impl HandleEvent<ObservationsRecorded> for Orchestrator {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<ObservationsRecorded>,
    ) -> Result<(), AgentError> {
        let p = &event.payload;
        tracing::debug!(campaign = %p.goal.id, day = p.day, observations = p.observations.len(), "observations recorded");
        Ok(())
    }
}

impl HandleCommand<Pause> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Pause>,
    ) -> Result<(), AgentError> {
        let reason = format!("paused by {}: {}", command.from, command.payload.why);
        self.operator_decision::<kinds::Pause, _>(
            ctx,
            &command,
            &command.payload.campaign,
            None,
            reason,
        )
        .await
    }
}

impl HandleCommand<Resume> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Resume>,
    ) -> Result<(), AgentError> {
        // A configured compliance that is isolated (or stopped) holds every campaign until it is
        // revived; a resume cannot lift that, so it is refused with the reason. Without any
        // compliance agent the days stay held all the same (see `hold`), and a resume changes
        // nothing else.
        let status = ctx.agent_status(Compliance::NAME);
        if let Some(why) = status
            .as_ref()
            .and_then(|s| super::hold::compliance_hold(Some(s)))
        {
            return Err(AgentError::refuse(format!(
                "campaign `{}` stays held: {why}; revive it first (campaignd revive {1}, or POST /v1/agents/{1}/revive), then resume",
                command.payload.campaign,
                Compliance::NAME
            )));
        }
        let why = &command.payload.why;
        let reason = if why.is_empty() {
            format!("resumed by {}", command.from)
        } else {
            format!("resumed by {}: {why}", command.from)
        };
        self.operator_decision::<kinds::Resume, _>(
            ctx,
            &command,
            &command.payload.campaign,
            None,
            reason,
        )
        .await
    }
}

impl HandleCommand<Replan> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<Replan>,
    ) -> Result<(), AgentError> {
        let reason = format!(
            "re-plan ordered by {}: {}",
            command.from, command.payload.why
        );
        self.operator_decision::<kinds::ReplanOrdered, _>(
            ctx,
            &command,
            &command.payload.campaign,
            Some(command.payload.why.clone()),
            reason,
        )
        .await
    }
}

impl HandleCommand<AgentRevived> for Orchestrator {
    async fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<AgentRevived>,
    ) -> Result<(), AgentError> {
        let Origin::Operator(who) = &command.from else {
            return Err(AgentError::refuse(format!(
                "only an operator revives an agent, not {}",
                command.from
            )));
        };
        let revived = &command.payload;
        let id = DecisionId(ledger::stable_uuid(&[
            kinds::Revive::KIND,
            &revived.agent,
            &command.correlation_id.to_string(),
        ]));
        let inputs = ReviveInputs {
            agent: revived.agent.clone(),
            from: who.clone(),
            at: chrono::Utc::now(),
            why: revived.why.clone(),
            last_error: revived.last_error.clone(),
            restarts: revived.restarts,
        };
        let reason = format!(
            "{who} revived `{}` after {} restarts{}: {}; it runs under supervision again with a fresh restart window",
            revived.agent,
            revived.restarts,
            revived
                .last_error
                .as_deref()
                .map(|e| format!(" (isolated for: {e})"))
                .unwrap_or_default(),
            revived.why
        );
        let filed = ledger::Keyed {
            id,
            tenant: TenantId::new(OPERATIONS_TENANT),
            campaign: None,
        };
        ledger::record_keyed::<kinds::Revive, _>(
            &self.kb,
            ctx,
            &command,
            filed,
            (inputs, "revived".to_owned()),
            reason,
        )
        .await?;
        tracing::info!(agent = %revived.agent, by = %who, why = %revived.why, "agent revived by an operator");
        Ok(())
    }
}
