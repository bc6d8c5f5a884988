//! Where performance data comes from: the [`Observation`] type every source produces (an ad
//! platform's export through the API, a webhook, or the built-in simulator) with its validation,
//! and the seeded [`MarketSimulator`] with hidden true rates, which lets `campaignd run` show the
//! whole loop on a fresh machine and lets the optimizer's regret be measured.
//!
//! This layer produces and checks data; it never decides anything about a campaign.

pub mod board;
pub mod driver;
pub mod ingest;
pub mod observation;
pub mod simulator;

pub use board::{CampaignBoard, CampaignState, CampaignStatus, ChannelAllocation};
pub use observation::{IdCatalog, KnownIds, Observation, ObservationProblem};
pub use simulator::{
    Buy, ChannelMarket, DriftEvent, LevelEffect, MarketError, MarketSimulator, MarketSpec,
    SegmentMarket, TrueRates, VariantFeatures,
};
