//! Resuming a campaign after a restart: the day after the last one the optimizer finished
//! learning from, and the start the orchestrator fixed when it first planned the campaign. Both
//! are read from the knowledge base through the agents' projection.

use chrono::{DateTime, Utc};

use super::known::KnownDecisions;
use crate::agents::ledger;
use crate::agents::optimization::Optimization;
use crate::agents::orchestrator::Orchestrator;
use crate::agents::projection::{self, CampaignFigures};
use crate::domain::campaign::CampaignGoal;
use crate::kb::KnowledgeBase;
use crate::market::MarketSimulator;
use crate::runtime::Agent;

pub(super) struct CampaignRun {
    /// The goal as configured (what a reload compares against).
    pub declared: CampaignGoal,
    /// The goal as the orchestrator last answered it (its start fixed).
    pub goal: CampaignGoal,
    pub next_day: u32,
    pub market: Option<MarketSimulator>,
    /// What ingestion derived from its decisions so far.
    pub known: KnownDecisions,
    pub done: bool,
    /// Whether its last day was held (nothing bought, the day to run again).
    pub held: bool,
    pub consent_recorded: bool,
    /// Where it stood when the daemon started, for the board until its first tick.
    pub resumed: CampaignFigures,
}

impl CampaignRun {
    /// A campaign resuming after its last recorded day (day 0 when it has none).
    pub(super) fn resume(kb: &KnowledgeBase, declared: CampaignGoal) -> Self {
        let resumed = match kb.by_campaign(&ledger::scope(&declared), &declared.id) {
            Ok(found) => CampaignFigures::of(
                &declared,
                &found.records,
                Orchestrator::NAME,
                Optimization::NAME,
            ),
            Err(err) => {
                tracing::error!(campaign = %declared.id, %err, "cannot read the campaign's records; it starts from day 0");
                CampaignFigures::default()
            }
        };
        let next_day = resumed.day.map_or(0, |d| d + 1);
        if next_day > 0 {
            tracing::info!(campaign = %declared.id, day = next_day, "resuming from the knowledge base");
        }
        let mut goal = declared.clone();
        // A goal without a start was given one when first planned; the simulated consent is
        // dated from that start, not from the restart.
        if goal.start.is_none() {
            goal.start = resumed.view.goal.as_ref().and_then(|g| g.start);
        }
        CampaignRun {
            declared,
            goal,
            next_day,
            market: None,
            known: KnownDecisions::default(),
            done: false,
            held: false,
            consent_recorded: false,
            resumed,
        }
    }
}

/// The last day the optimizer finished learning from (its forecast of the day is recorded). A day
/// whose observations were recorded but not learned from before a crash is run again; its
/// recorded observations stand.
pub fn last_recorded_day(kb: &KnowledgeBase, goal: &CampaignGoal) -> Option<u32> {
    let found = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .ok()?;
    projection::learned_days(&found.records, Optimization::NAME)
        .last()
        .copied()
}

/// The start the orchestrator fixed when it first planned a campaign (its sub-goals decision).
pub fn planned_start(kb: &KnowledgeBase, goal: &CampaignGoal) -> Option<DateTime<Utc>> {
    let found = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .ok()?;
    projection::planned_start(&found.records, Orchestrator::NAME)
}
