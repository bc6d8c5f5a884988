//! The working state an agent's worker keeps in memory, per campaign, and the gauge that shows
//! how many campaigns that is (`campaignd_agent_campaigns{agent,worker}`).
//!
//! State is loaded from the knowledge base at a campaign's first message and dropped once the
//! campaign is over (its goal reached, its last day learned from), so memory follows the campaigns
//! that run, not every campaign ever run; a campaign asked about again is rebuilt on demand. The
//! gauge is set, never counted up and down, so a worker's restart (which empties its map) cannot
//! leave it wrong.

use std::collections::BTreeMap;

use crate::protocol::CampaignId;

/// The gauge's name.
pub const AGENT_CAMPAIGNS: &str = "campaignd_agent_campaigns";

/// Per-campaign state of one worker, with its gauge.
pub struct Resident<V> {
    campaigns: BTreeMap<CampaignId, V>,
    gauge: metrics::Gauge,
}

impl<V> Resident<V> {
    pub fn new(agent: &'static str, worker: usize) -> Self {
        let gauge =
            metrics::gauge!(AGENT_CAMPAIGNS, "agent" => agent, "worker" => worker.to_string());
        gauge.set(0.0);
        Resident {
            campaigns: BTreeMap::new(),
            gauge,
        }
    }

    pub fn contains_key(&self, campaign: &CampaignId) -> bool {
        self.campaigns.contains_key(campaign)
    }

    pub fn get(&self, campaign: &CampaignId) -> Option<&V> {
        self.campaigns.get(campaign)
    }

    pub fn get_mut(&mut self, campaign: &CampaignId) -> Option<&mut V> {
        self.campaigns.get_mut(campaign)
    }

    pub fn insert(&mut self, campaign: CampaignId, state: V) {
        self.campaigns.insert(campaign, state);
        self.show();
    }

    pub fn remove(&mut self, campaign: &CampaignId) -> Option<V> {
        let removed = self.campaigns.remove(campaign);
        self.show();
        removed
    }

    fn show(&self) {
        self.gauge.set(self.campaigns.len() as f64);
    }
}
