//! Learning from outcomes: a channel's prior is blended with what the channel actually delivered,
//! weighting the prior as a fixed number of pseudo-observations (a Beta-Binomial posterior mean
//! for CTR and CVR, a click-weighted mean for CPC). A channel that under-delivers comes out with a
//! lower prior — and a lower response curve — so the next plan gives it less budget.
//!
//! Only arithmetic on one prior and one outcome; storing outcomes is the knowledge base's job.

use serde::{Deserialize, Serialize};

use super::playbook::{ChannelPrior, PriorStrength, StrategyPlaybook};
use crate::domain::campaign::Channel;

/// What a channel delivered over some period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelOutcome {
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub spend: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LearnError {
    #[error("outcome for {channel}: clicks ({clicks}) exceed impressions ({impressions})")]
    ClicksAboveImpressions {
        channel: Channel,
        clicks: u64,
        impressions: u64,
    },
    #[error("outcome for {channel}: conversions ({conversions}) exceed clicks ({clicks})")]
    ConversionsAboveClicks {
        channel: Channel,
        conversions: u64,
        clicks: u64,
    },
    #[error("outcome for {channel}: spend must be a finite number of at least 0, got {spend}")]
    BadSpend { channel: Channel, spend: f64 },
    #[error("no prior for channel {0} in the strategy playbook; add [playbook.channels.{0}]")]
    UnknownChannel(Channel),
}

impl ChannelPrior {
    /// The prior after observing `outcome`.
    pub fn updated(
        &self,
        channel: Channel,
        outcome: ChannelOutcome,
        strength: PriorStrength,
    ) -> Result<ChannelPrior, LearnError> {
        let ChannelOutcome {
            impressions,
            clicks,
            conversions,
            spend,
        } = outcome;
        if clicks > impressions {
            return Err(LearnError::ClicksAboveImpressions {
                channel,
                clicks,
                impressions,
            });
        }
        if conversions > clicks {
            return Err(LearnError::ConversionsAboveClicks {
                channel,
                conversions,
                clicks,
            });
        }
        if !(spend.is_finite() && spend >= 0.0) {
            return Err(LearnError::BadSpend { channel, spend });
        }
        let (n0, m0) = (strength.impressions, strength.clicks);
        let blend = |prior: f64, weight: f64, observed: f64, count: f64| {
            if weight + count > 0.0 {
                (prior * weight + observed) / (weight + count)
            } else {
                prior
            }
        };
        let (imp, clk, conv) = (impressions as f64, clicks as f64, conversions as f64);
        // Keep rates strictly positive so the updated prior stays valid for planning.
        let ctr = blend(self.ctr, n0, clk, imp).clamp(1e-9, 1.0);
        let cvr = blend(self.cvr, m0, conv, clk).clamp(1e-9, 1.0);
        let cpc = blend(self.cpc, m0, spend, clk).max(1e-9);
        // The response curve's height follows the channel's return per unit of money (CVR / CPC);
        // its bend (b or ec, an audience size in spend) is not something one campaign's outcome reveals.
        let efficiency = |p: f64, q: f64| p / q;
        let scale = efficiency(cvr, cpc) / efficiency(self.cvr, self.cpc);
        let response = if scale.is_finite() && scale > 0.0 {
            self.response.scaled(scale)
        } else {
            self.response
        };
        Ok(ChannelPrior {
            ctr,
            cvr,
            cpc,
            response,
            ..*self
        })
    }
}

impl StrategyPlaybook {
    /// Fold an observed outcome of `channel` into its prior.
    pub fn learn(&mut self, channel: Channel, outcome: ChannelOutcome) -> Result<(), LearnError> {
        let strength = self.prior_strength;
        let prior = self
            .channels
            .get_mut(&channel)
            .ok_or(LearnError::UnknownChannel(channel))?;
        *prior = prior.updated(channel, outcome, strength)?;
        Ok(())
    }
}
