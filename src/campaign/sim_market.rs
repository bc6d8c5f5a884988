//! The built-in simulator's side of a campaign: its simulated market, built once the experiment's
//! variants are known, with hidden true rates near the strategy playbook's priors (so plans are
//! roughly right but not exactly), per-segment and per-creative-level effects and optional drift;
//! and its simulated audience's opt-in. Real audiences' consent comes from the API instead.

use std::collections::BTreeSet;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::options::LoopOptions;
use crate::agents::compliance::Compliance;
use crate::agents::ledger;
use crate::agents::messages::Arm;
use crate::agents::messages::RecordConsent;
use crate::agents::playbook::in_force;
use crate::agents::projection;
use crate::domain::campaign::CampaignGoal;
use crate::domain::compliance::{ConsentRecord, MessageChannel, segment_subject};
use crate::domain::optimization::decision_seed;
use crate::domain::strategy::StrategyPlaybook;
use crate::kb::{KbError, KnowledgeBase};
use crate::market::{
    ChannelMarket, LevelEffect, MarketError, MarketFile, MarketSimulator, MarketSpec,
    SegmentMarket, VariantFeatures,
};
use crate::runtime::{Agent, DeliveryError};
use crate::settings::Settings;

/// Why the simulator's side of a campaign day could not be done; the day is tried again.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error("cannot record the simulated audience's consent: {0}")]
    Consent(#[source] DeliveryError),
    #[error("campaign {campaign} has no start yet")]
    NoStart { campaign: String },
    #[error("cannot read the campaign's experiment: {0}")]
    Kb(#[from] KbError),
    #[error("cannot build the simulated market: {0}")]
    Market(#[from] MarketError),
    #[error("market file: {0}")]
    MarketFile(String),
}

/// The simulated audience's opt-in, one record per segment and message channel of the campaign.
pub(super) async fn record_audience_consent(
    client: &crate::runtime::Client,
    goal: &CampaignGoal,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<(), SimulationError> {
    // Before the first send: a consent dated after it is no consent (KR-OPTIN).
    let granted = start - chrono::Duration::days(30);
    for segment in &goal.segments {
        for &channel in &goal.channels {
            let channel = MessageChannel::from(channel);
            if !matches!(
                channel,
                MessageChannel::Sms | MessageChannel::Email | MessageChannel::Push
            ) {
                continue;
            }
            let mut record =
                ConsentRecord::new(segment_subject(goal, &segment.id), channel, "marketing");
            record.granted_at = Some(granted);
            record.source = Some("simulated_signup_form".to_owned());
            record.text_hash = Some("simulated".to_owned());
            client
                .request(
                    Compliance::NAME,
                    RecordConsent {
                        tenant: goal.tenant.clone(),
                        records: vec![record],
                    },
                )
                .await
                .map_err(SimulationError::Consent)?;
        }
    }
    Ok(())
}

/// A campaign's simulated market, built once its variants are known (from the experiment
/// decision): the what-if file's truth when the options hold one for it, else rates drawn near
/// the priors from the market seed. The same knowledge base and options always build the same
/// market.
pub fn build_market(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    options: &LoopOptions,
) -> Result<MarketSimulator, SimulationError> {
    let start = goal.start.ok_or_else(|| SimulationError::NoStart {
        campaign: goal.id.to_string(),
    })?;
    let decisions = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)?
        .records;
    let arms = projection::experiment_arms(&decisions);
    let seed = options.seed ^ decision_seed(goal.id.as_str(), 0);
    let mut segment_ids: BTreeSet<String> = goal.segments.iter().map(|s| s.id.clone()).collect();
    segment_ids.extend(arms.iter().map(|a| a.segment.clone()));
    let mut levels: BTreeSet<(String, String)> = BTreeSet::new();
    for arm in &arms {
        for level in &arm.levels {
            levels.insert((level.dimension.to_string(), level.value.to_string()));
        }
    }
    let truth = match options.markets.get(&goal.id) {
        Some(file) => described(goal, file, segment_ids)?,
        None => drawn(goal, options, seed, segment_ids, levels),
    };
    let spec = MarketSpec {
        seed,
        campaign: goal.id.clone(),
        start,
        channels: truth.channels,
        segments: truth.segments,
        effects: truth.effects,
        drift: truth
            .drift
            .into_iter()
            .chain(options.drift.get(&goal.id).cloned().unwrap_or_default())
            .collect(),
    };
    let mut market = MarketSimulator::new(spec)?;
    add_arms(&mut market, &arms);
    Ok(market)
}

/// Makes the arms the market does not know yet known to it.
fn add_arms(market: &mut MarketSimulator, arms: &[Arm]) {
    for arm in arms {
        if market.knows(&arm.variant) {
            continue;
        }
        market.add_variant(
            arm.variant.clone(),
            VariantFeatures {
                levels: arm
                    .levels
                    .iter()
                    .map(|l| (l.dimension.to_string(), l.value.to_string()))
                    .collect(),
            },
        );
    }
}

/// Makes the variants that joined `goal`'s experiment since `market` was built (a bred
/// generation) known to it. Their levels are recombined from the arms the market was built
/// with, so their effects are the ones drawn then: a market rebuilt after a restart is the same.
pub fn add_joined(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    market: &mut MarketSimulator,
) -> Result<(), SimulationError> {
    let decisions = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)?
        .records;
    add_arms(market, &projection::experiment_arms(&decisions));
    Ok(())
}

/// The what-if file's market for `goal`: every channel the campaign buys must be in it; segments
/// it does not name have multipliers of 1.
fn described(
    goal: &CampaignGoal,
    file: &MarketFile,
    segment_ids: BTreeSet<String>,
) -> Result<MarketFile, SimulationError> {
    for channel in &goal.channels {
        if !file.channels.iter().any(|c| c.channel == *channel) {
            return Err(SimulationError::MarketFile(format!(
                "the market has no channel `{channel}`, which campaign {} buys; add a [[channels]] table with channel = \"{channel}\"",
                goal.id
            )));
        }
    }
    let mut market = file.clone();
    for id in segment_ids {
        if !market.segments.iter().any(|s| s.id == id) {
            market.segments.push(SegmentMarket {
                id,
                ctr_multiplier: 1.0,
                cvr_multiplier: 1.0,
            });
        }
    }
    Ok(market)
}

/// Rates drawn near the priors from the market seed: plans are roughly right but not exactly.
fn drawn(
    goal: &CampaignGoal,
    options: &LoopOptions,
    seed: u64,
    segment_ids: BTreeSet<String>,
    levels: BTreeSet<(String, String)>,
) -> MarketFile {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = options
        .priors
        .exchange_rate(&goal.budget.currency)
        .unwrap_or(1.0);
    let mut channels = Vec::new();
    for &channel in &goal.channels {
        let Some(prior) = options.priors.prior(channel) else {
            continue;
        };
        let prior = prior.in_currency(rate);
        let cvr_bias = options
            .channel_bias
            .get(&(goal.id.clone(), channel))
            .copied()
            .unwrap_or_else(|| rng.random_range(0.85..1.2));
        channels.push(ChannelMarket {
            channel,
            ctr: (prior.ctr * rng.random_range(0.9..1.1)).clamp(1e-6, 1.0),
            cvr: (prior.cvr * cvr_bias).clamp(1e-6, 1.0),
            cpc: prior.cpc,
            saturation_spend: prior.response.half_saturation(),
            order_value: goal
                .economics
                .as_ref()
                .map_or(0.0, |e| e.average_order_value),
        });
    }
    let segments = segment_ids
        .into_iter()
        .map(|id| SegmentMarket {
            id,
            ctr_multiplier: rng.random_range(0.9..1.1),
            cvr_multiplier: rng.random_range(0.85..1.15),
        })
        .collect();
    let effects = levels
        .into_iter()
        .map(|(dimension, level)| LevelEffect {
            dimension,
            level,
            ctr_multiplier: rng.random_range(0.9..1.1),
            cvr_multiplier: rng.random_range(0.75..1.3),
        })
        .collect();
    MarketFile {
        channels,
        segments,
        effects,
        drift: Vec::new(),
    }
}

/// The market's priors: the strategy agent's playbook in force, else the embedded one.
pub fn priors_from(settings: &Settings) -> Option<StrategyPlaybook> {
    in_force(settings, crate::agents::strategy::Strategy::NAME).ok()
}
