//! A sixth agent added without touching `protocol` or `runtime`: a pacing guard that watches every
//! recorded batch of observations, and when a campaign spends faster than its budget allows, records
//! why in the knowledge base and orders the orchestrator to pause it.
//!
//! Run it with `cargo run --example custom_agent`. It builds a runtime with the five built-in agents
//! plus the guard, runs a Korean campaign on the built-in market simulator on a manual clock (days
//! pass in milliseconds) and prints the guard's decision and the days that followed. It writes only
//! to a temporary folder.

use std::collections::BTreeSet;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use campaignd::agents::decisions::{self as kinds, DecisionKind};
use campaignd::agents::ledger::{self, Draft};
use campaignd::agents::messages::{ObservationsRecorded, Pause};
use campaignd::agents::orchestrator::Orchestrator;
use campaignd::agents::playbook::{LivePlaybook, Playbook, PlaybookError};
use campaignd::agents::projection;
use campaignd::campaign::{CampaignLoop, LoopOptions};
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::strategy::StrategyPlaybook;
use campaignd::kb::{Durability, KbOptions, KnowledgeBase};
use campaignd::protocol::{CampaignId, Envelope};
use campaignd::runtime::{
    Agent, AgentError, Clock, Context, HandleEvent, Routes, Runtime, Services, StartContext,
};
use campaignd::settings::{EnvOverrides, Settings};
use serde::{Deserialize, Serialize};

/// Step 1: its definition file, `agents/pacing_guard.toml` in a deployment: what it subscribes to
/// and its playbook. (The example writes it into a temporary deployment folder.)
const DEFINITION: &str = r#"
[agent]
subscribe = ["observations_recorded"]

[playbook]
# Spend allowed per day as a share of the even daily budget (budget / days). Deliberately strict
# here so that the example shows a pause on the first day.
tolerance = 0.5
"#;

/// Step 2: its playbook, read through the `Playbook` trait: parsing the table and reading the
/// embedded definition come by default; it adds only its own check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PacingPlaybook {
    tolerance: f64,
}

impl Playbook for PacingPlaybook {
    const EMBEDDED_FILE: &'static str = DEFINITION;

    fn validate(&self) -> Result<(), PlaybookError> {
        if self.tolerance > 0.0 && self.tolerance.is_finite() {
            Ok(())
        } else {
            Err(PlaybookError(format!(
                "tolerance must be a positive number, not {}",
                self.tolerance
            )))
        }
    }
}

/// Step 3: the decision it records, as a typed kind.
enum PacingPause {}

#[derive(Debug, Serialize, Deserialize)]
struct PacingInputs {
    day: u32,
    spent: f64,
    allowed: f64,
}

impl DecisionKind for PacingPause {
    const KIND: &'static str = "pacing_pause";
    type Inputs = PacingInputs;
    type Choice = String;
}

/// Step 4: the agent's struct holds its working state.
struct PacingGuard {
    kb: Arc<KnowledgeBase>,
    playbook: LivePlaybook<PacingPlaybook>,
    /// Campaigns already paused, so one overspend is acted on once. Rebuilt from its own decisions
    /// the first time a campaign is seen after a (re)start.
    paused: BTreeSet<CampaignId>,
    seen: BTreeSet<CampaignId>,
}

/// Step 5: `start` builds it from shared services (and again after every restart); `routes`
/// declares the messages it handles. It reuses the shared `ObservationsRecorded` event, so nothing
/// in `protocol` or `runtime` changes.
impl Agent for PacingGuard {
    const NAME: &'static str = "pacing_guard";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(PacingGuard {
            kb: ctx.services.require::<KnowledgeBase>()?,
            playbook: LivePlaybook::load(&ctx.services, Self::NAME)?,
            paused: BTreeSet::new(),
            seen: BTreeSet::new(),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.event::<ObservationsRecorded>();
    }
}

impl PacingGuard {
    /// Whether the guard already paused `goal`, from memory or, after a restart, from its own
    /// decisions in the knowledge base.
    fn already_paused(&mut self, goal: &CampaignGoal) -> Result<bool, AgentError> {
        if self.seen.insert(goal.id.clone()) {
            let found = self
                .kb
                .decisions_by_campaign(&ledger::scope(goal), &goal.id)?;
            if found.records.iter().any(projection::is::<PacingPause>) {
                self.paused.insert(goal.id.clone());
            }
        }
        Ok(self.paused.contains(&goal.id))
    }
}

/// Step 6: one handler per message type. The context keeps the chain: the decision and the pause
/// command carry the batch's correlation id, with the batch as their cause.
impl HandleEvent<ObservationsRecorded> for PacingGuard {
    async fn handle_event(
        &mut self,
        ctx: &Context,
        event: Envelope<ObservationsRecorded>,
    ) -> Result<(), AgentError> {
        let batch = &event.payload;
        let goal = &batch.goal;
        if self.already_paused(goal)? {
            return Ok(());
        }
        self.playbook.refresh(ctx.services());
        let tolerance = self.playbook.get().tolerance;
        let spent: f64 = batch.observations.iter().map(|o| o.spend).sum();
        let days = goal
            .start
            .map(|s| (goal.deadline - s).num_days().max(1) as f64)
            .unwrap_or(1.0);
        let allowed = goal.budget.total / days * tolerance;
        if spent <= allowed {
            return Ok(());
        }
        let draft = Draft::new::<PacingPause>(
            format!("pacing/day/{}", batch.day),
            PacingInputs {
                day: batch.day,
                spent,
                allowed,
            },
            "pause".to_owned(),
        )
        .alternative("pause", spent / allowed, None)
        .alternative("keep spending", allowed / spent, None)
        .reason(format!(
            "day {} spent {spent:.0} {}, more than the {allowed:.0} the guard allows ({:.0} % of an even daily budget); pausing",
            batch.day,
            goal.budget.currency,
            tolerance * 100.0
        ))
        .confidence(0.9);
        ledger::record(&self.kb, ctx, &event, goal, draft).await?;
        ctx.command(
            Orchestrator::NAME,
            Pause {
                campaign: goal.id.clone(),
                why: format!("pacing guard: {spent:.0} spent on day {}", batch.day),
            },
        )
        .await?;
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
    // Step 7: one line in the registry (in the daemon: `campaignd::agents::registry()`).
    let registry =
        campaignd::agents::registry().agent_with_playbook::<PacingGuard, PacingPlaybook>();

    // A deployment with the shipped agents, the guard's definition, and the guard allowed to give
    // orders, loaded and checked as `campaignd check` and `run` do.
    let agents = dir.path().join("agents");
    std::fs::create_dir_all(&agents)?;
    for (name, text) in campaignd::settings::agents::EMBEDDED_AGENTS {
        std::fs::write(agents.join(format!("{name}.toml")), text)?;
    }
    std::fs::write(agents.join("pacing_guard.toml"), DEFINITION)?;
    std::fs::create_dir_all(dir.path().join("config"))?;
    let config = dir.path().join("config/campaignd.toml");
    std::fs::write(
        &config,
        "[runtime]\ncommand_senders = [\"orchestrator\", \"pacing_guard\"]\n",
    )?;
    let settings = Settings::load_from(dir.path(), Some(&config), EnvOverrides::new())?;
    let problems = registry.check(&settings);
    if !problems.is_empty() {
        return Err(campaignd::settings::Problems(problems).into());
    }

    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options)?;
    let clock = Clock::manual("2026-09-01T00:00:00Z".parse()?);
    let runtime = Runtime::builder(registry.runtime().clone())
        .agents(settings.enabled_agents().map(|d| d.spec()))
        .services(
            Services::new()
                .with(kb.clone())
                .with(Arc::new(settings.clone())),
        )
        .clock(clock.clone())
        .command_senders(
            settings
                .config
                .runtime
                .command_senders
                .iter()
                .map(String::as_str),
        )
        .start()
        .await?;

    let goal = goal()?;
    let priors = <StrategyPlaybook as Playbook>::embedded()?;
    let mut campaign_loop = CampaignLoop::new(
        runtime.clone(),
        kb.clone(),
        vec![goal.clone()],
        LoopOptions::new(42, priors),
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
        .filter(|d| projection::is::<PacingPause>(d) || projection::is::<kinds::Pause>(d))
    {
        println!("{} {}: {}", d.agent, d.kind, d.reason);
    }
    let report = runtime.shutdown(Duration::from_secs(5)).await;
    kb.shutdown().await?;
    println!("drained: {}", report.drained);
    Ok(())
}
