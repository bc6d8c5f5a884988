//! Operators' orders (pause, resume, re-plan), each recorded as a decision with who and why, and
//! the events the orchestrator hears: an agent isolated, its own progress reports, recorded
//! observations (the optimizer's to learn from).

use super::Orchestrator;
use crate::agents::decisions::{self as kinds, DecisionKind, OperatorInputs};
use crate::agents::ledger::Draft;
use crate::agents::messages::{
    AgentIsolated, GoalProgress, ObservationsRecorded, Pause, Replan, Resume,
};
use crate::protocol::{CampaignId, Envelope, Payload};
use crate::runtime::{AgentError, Context, HandleCommand, HandleEvent};

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
                at: ctx.now(),
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
        let agent = event.payload.agent.to_string();
        tracing::error!(%agent, last_error = %event.payload.last_error, "agent isolated; degrading");
        self.isolated.insert(agent);
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
        // Resuming is also how an operator says a revived agent may be trusted again.
        self.isolated.clear();
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
