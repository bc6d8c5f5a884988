//! How the campaign loop runs: the market's seed and priors, the length of a campaign day, and
//! what tests and benchmarks force on it (biased channels, injected drift, a day limit).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::campaign::Channel;
use crate::domain::strategy::StrategyPlaybook;
use crate::market::{DriftEvent, MarketFile};
use crate::protocol::CampaignId;

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// `[market] seed`: the same seed gives the same markets.
    pub seed: u64,
    /// One campaign day in simulated time (the clock decides how long that is for real).
    pub day: Duration,
    /// The priors the simulated markets are built around.
    pub priors: StrategyPlaybook,
    /// Conversion-rate multipliers forced on a campaign's channels (instead of the seeded ones),
    /// e.g. to make a channel under-deliver in a test.
    pub channel_bias: BTreeMap<(CampaignId, Channel), f64>,
    /// Drift injected into a campaign's market.
    pub drift: BTreeMap<CampaignId, Vec<DriftEvent>>,
    /// A campaign's market as a what-if file describes it, instead of one drawn around the priors.
    pub markets: BTreeMap<CampaignId, MarketFile>,
    /// Stop a campaign after this many days even if its deadline is later.
    pub max_days: Option<u32>,
    /// Record in the compliance agent's ledger that the simulated audience (each segment) opted in
    /// to messages a month before the start. Real audiences' consent comes from the API instead.
    pub audience_consent: bool,
    /// Place the buys on the built-in simulator (`[market] source = "simulator"`). When false the
    /// buys are only logged, and the days' observations come through the API.
    pub simulate: bool,
    /// How many campaigns run their day at the same time. Enough to keep every agent worker busy;
    /// bounded so that a thousand campaigns do not fill the agents' mailboxes at once.
    pub concurrency: usize,
}

impl LoopOptions {
    pub fn new(seed: u64, priors: StrategyPlaybook) -> Self {
        LoopOptions {
            seed,
            day: Duration::from_secs(86_400),
            priors,
            channel_bias: BTreeMap::new(),
            drift: BTreeMap::new(),
            markets: BTreeMap::new(),
            max_days: None,
            audience_consent: true,
            simulate: true,
            concurrency: 64,
        }
    }

    /// For `[market] source = "api"`: no simulator, no simulated audience.
    pub fn without_simulator(mut self) -> Self {
        self.simulate = false;
        self.audience_consent = false;
        self
    }
}
