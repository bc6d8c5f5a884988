//! Where performance data comes from: the [`Observation`] type every source produces (an ad
//! platform's export through the API, a webhook, or the built-in simulator) with its validation,
//! and the seeded [`MarketSimulator`] with hidden true rates, which lets `campaignd run` show the
//! whole loop on a fresh machine and lets the optimizer's regret be measured.
//!
//! This layer is data only: it depends on `domain` alone, decides nothing about a campaign and
//! knows no agent.

pub mod observation;
pub mod simulator;

pub use crate::domain::campaign::Buy;
pub use observation::{
    CampaignSpan, IdCatalog, KnownIds, Observation, ObservationProblem, Placement,
};
pub use simulator::{
    ChannelMarket, DriftEvent, LevelEffect, MarketError, MarketFile, MarketSimulator, MarketSpec,
    SegmentMarket, TrueRates, VariantFeatures,
};
