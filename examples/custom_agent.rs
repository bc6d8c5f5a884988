//! A sixth agent added without touching `protocol` or `runtime`: a pacing guard that watches every
//! recorded batch of observations, and when a campaign spends faster than its budget allows, records
//! why in the knowledge base and orders the orchestrator to pause it.
//!
//! Run it with `cargo run --example custom_agent`. It builds a runtime with the five built-in agents
//! plus the guard, runs a Korean campaign on the built-in market simulator on a manual clock (days
//! pass in milliseconds) and prints the guard's decision and the days that followed. It writes only
//! to a temporary folder.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use campaignd::agents::ledger::{self, Draft};
use campaignd::agents::optimization::ObservationsRecorded;
use campaignd::agents::orchestrator::Pause;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::strategy::StrategyPlaybook;
use campaignd::kb::{Durability, KbOptions, KnowledgeBase};
use campaignd::market::driver::{CampaignLoop, DriverOptions};
use campaignd::protocol::{CampaignId, Envelope};
use campaignd::runtime::{
    Agent, AgentError, AgentSpec, Clock, Context, HandleEvent, Routes, Runtime, Services,
    StartContext,
};

/// Step 1: the agent's struct holds its working state.
struct PacingGuard {
    kb: Arc<KnowledgeBase>,
    /// Spend allowed per day as a multiple of the even daily budget (budget / days). This example is
    /// deliberately strict (50 %) so that it shows a pause on the first day.
    tolerance: f64,
    /// Campaigns already paused, so one overspend is acted on once.
    paused: std::collections::BTreeSet<CampaignId>,
}

/// Step 2: `start` builds it from shared services (and rebuilds it after a restart); `routes`
/// declares the messages it handles. It reuses the optimizer's public event type, so nothing in
/// `protocol` changes.
impl Agent for PacingGuard {
    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(PacingGuard {
            kb: ctx.services.require::<KnowledgeBase>()?,
            tolerance: 0.5,
            paused: Default::default(),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.event::<ObservationsRecorded>();
    }
}

/// Step 3: one handler per message type. The context keeps the chain: the decision and the pause
/// command carry the batch's correlation id, with the batch as their cause.
impl HandleEvent<ObservationsRecorded> for PacingGuard {
    async fn handle_event(
        &mut self,
        ctx: &Context,
        event: Envelope<ObservationsRecorded>,
    ) -> Result<(), AgentError> {
        let batch = &event.payload;
        let goal = &batch.goal;
        if self.paused.contains(&goal.id) {
            return Ok(());
        }
        let spent: f64 = batch.observations.iter().map(|o| o.spend).sum();
        let days = goal
            .start
            .map(|s| (goal.deadline - s).num_days().max(1) as f64)
            .unwrap_or(1.0);
        let allowed = goal.budget.total / days * self.tolerance;
        if spent <= allowed {
            return Ok(());
        }
        let draft = Draft::new("pacing", format!("pacing/day/{}", batch.day))
            .inputs(serde_json::json!({ "day": batch.day, "spent": spent, "allowed": allowed }))
            .alternative("pause", spent / allowed, None)
            .alternative("keep spending", allowed / spent, None)
            .choice("pause")
            .reason(format!(
                "day {} spent {spent:.0} {}, more than the {allowed:.0} the guard allows ({:.0} % of an even daily budget); pausing",
                batch.day,
                goal.budget.currency,
                self.tolerance * 100.0
            ))
            .confidence(0.9);
        ledger::record(&self.kb, ctx, &event, goal, draft).await?;
        ctx.command(
            "orchestrator",
            Pause {
                campaign: goal.id.clone(),
                why: format!("pacing guard: {spent:.0} spent on day {}", batch.day),
            },
        )
        .await
        .map_err(AgentError::msg)?;
        self.paused.insert(goal.id.clone());
        Ok(())
    }
}

fn goal() -> Result<CampaignGoal, Box<dyn Error>> {
    Ok(toml::from_str(
        r#"
        id = "kr_paced"
        tenant = "acme/kr_retail"
        objective = "signups"
        target = 400
        start = 2026-09-01T00:00:00Z
        deadline = 2026-10-31T00:00:00Z
        channels = ["sms", "search"]
        regions = ["KR"]
        budget = { total = 9000.0, currency = "USD" }
        segments = [{ id = "university_students" }]
        "#,
    )?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options)?;
    let clock = Clock::manual("2026-09-01T00:00:00Z".parse()?);

    // Step 4: register it next to the built-in agents (in the daemon: one line in
    // `campaignd::agents::registry()`), ...
    let mut registry = campaignd::agents::registry();
    registry.register::<PacingGuard>("pacing_guard");
    // ... define it (in the daemon: `agents/pacing_guard.toml` with `subscribe =
    // ["observations_recorded"]`), and allow it to give orders (in the daemon:
    // `[runtime] command_senders = ["orchestrator", "pacing_guard"]`).
    let specs = vec![
        AgentSpec::new("orchestrator").with_subscription("agent_isolated"),
        AgentSpec::new("strategy"),
        AgentSpec::new("content"),
        AgentSpec::new("compliance"),
        AgentSpec::new("optimization").with_subscription("observations_recorded"),
        AgentSpec::new("pacing_guard").with_subscription("observations_recorded"),
    ];
    let runtime = Runtime::builder(registry)
        .agents(specs)
        .services(Services::new().with(kb.clone()))
        .clock(clock.clone())
        .command_senders(["orchestrator", "pacing_guard"])
        .start()
        .await?;

    let goal = goal()?;
    let priors = StrategyPlaybook::embedded()?;
    let mut campaign_loop = CampaignLoop::new(
        runtime.clone(),
        kb.clone(),
        vec![goal.clone()],
        DriverOptions::new(42, priors),
    );
    for _ in 0..6 {
        for report in campaign_loop.step().await {
            if let Some(tick) = report.tick {
                println!(
                    "day {:>2}: {:>3} conversions, {} buys{}",
                    report.day,
                    tick.conversions,
                    tick.buys.len(),
                    tick.held
                        .map(|h| format!(" (held: {h})"))
                        .unwrap_or_default()
                );
            }
        }
        clock.advance(Duration::from_secs(86_400))?;
        // Let the guard and the optimizer handle the day's batch before the next tick.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let decisions = kb.decisions_by_campaign(&ledger::scope(&goal), &goal.id)?;
    for d in decisions
        .records
        .iter()
        .filter(|d| d.agent.as_str() == "pacing_guard" || d.kind == "pause")
    {
        println!("{} {}: {}", d.agent, d.kind, d.reason);
    }
    let report = runtime.shutdown(Duration::from_secs(5)).await;
    kb.shutdown().await?;
    println!("drained: {}", report.drained);
    Ok(())
}
