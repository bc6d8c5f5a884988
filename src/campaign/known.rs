//! What ingestion derives from a campaign's decisions (the decisions its observations link to,
//! the variants its experiments named, whether its goal was achieved), kept between batches by a
//! caller that ingests the same campaign day after day: the campaign loop. Each refresh reads
//! only the decisions recorded since the last one (the index says which), instead of decoding
//! all of them for every batch; a campaign has a review per variant, and decoding them all again
//! was most of a steady-state day's cost.
//!
//! Decisions are taken in the order they are read: a refresh applies the new ones after the
//! ones already applied, so "latest" means latest recorded, as it does within one read.

use std::collections::HashSet;

use crate::agents::ledger;
use crate::agents::orchestrator::Orchestrator;
use crate::agents::projection::{self, Links};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{Decision, DecisionId, KbError, KnowledgeBase};
use crate::market::IdCatalog;
use crate::runtime::Agent;

#[derive(Debug, Default)]
pub struct KnownDecisions {
    /// The decisions applied so far.
    seen: HashSet<DecisionId>,
    pub links: Links,
    /// The campaign and every variant its experiment decisions named, placed.
    pub catalog: IdCatalog,
    /// The orchestrator's decision that the goal was achieved, with the day it was reached on.
    pub achieved: Option<(DecisionId, Option<u32>)>,
    /// The first day the campaign loop recorded a batch of through these decisions.
    pub looped_from: Option<u32>,
}

impl KnownDecisions {
    /// Reads the campaign's decisions recorded since the last refresh and applies them. A record
    /// that does not decode is logged by the knowledge base, and read again next time.
    pub fn refresh(&mut self, kb: &KnowledgeBase, goal: &CampaignGoal) -> Result<(), KbError> {
        let found = kb.decisions_by_campaign_unseen(&ledger::scope(goal), &goal.id, &|id| {
            self.seen.contains(&id)
        })?;
        self.apply(goal, &found.records);
        Ok(())
    }

    fn apply(&mut self, goal: &CampaignGoal, decisions: &[Decision]) {
        projection::add_to_catalog(&mut self.catalog, goal, decisions);
        self.links.add(decisions);
        if self.achieved.is_none() {
            self.achieved = projection::goal_achieved(decisions, Orchestrator::NAME);
        }
        self.seen.extend(decisions.iter().map(|d| d.id));
    }
}
