//! Tactics and channel maturity: ICE scores (impact × confidence × ease, each 1–10) to rank what to
//! try, and the 70-20-10 split of budget across proven, emerging and experimental channels.
//!
//! Only ranking and arithmetic; which tactics exist and how mature a channel is come from the
//! playbook.

use serde::{Deserialize, Serialize};

use crate::domain::campaign::Channel;

/// How much a channel is trusted, which decides its tier of the 70-20-10 split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Maturity {
    Proven,
    Emerging,
    Experimental,
}

impl Maturity {
    pub const ALL: [Maturity; 3] = [Maturity::Proven, Maturity::Emerging, Maturity::Experimental];

    /// As the playbook and decisions spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Maturity::Proven => "proven",
            Maturity::Emerging => "emerging",
            Maturity::Experimental => "experimental",
        }
    }
}

/// Budget share per maturity tier (70-20-10 by default).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSplit {
    pub proven: f64,
    pub emerging: f64,
    pub experimental: f64,
}

impl Default for TierSplit {
    fn default() -> Self {
        Self {
            proven: 0.7,
            emerging: 0.2,
            experimental: 0.1,
        }
    }
}

impl TierSplit {
    pub fn share(&self, tier: Maturity) -> f64 {
        match tier {
            Maturity::Proven => self.proven,
            Maturity::Emerging => self.emerging,
            Maturity::Experimental => self.experimental,
        }
    }

    /// Shares renormalised over the tiers a campaign actually has, so a campaign with no
    /// experimental channel does not leave 10 % of its budget unspent. Tiers absent get 0.
    pub fn over(&self, present: &[Maturity]) -> TierSplit {
        let has = |t: Maturity| present.contains(&t);
        let sum: f64 = Maturity::ALL
            .iter()
            .filter(|t| has(**t))
            .map(|t| self.share(*t))
            .sum();
        let scaled = |t: Maturity| {
            if has(t) && sum > 0.0 {
                self.share(t) / sum
            } else {
                0.0
            }
        };
        TierSplit {
            proven: scaled(Maturity::Proven),
            emerging: scaled(Maturity::Emerging),
            experimental: scaled(Maturity::Experimental),
        }
    }
}

/// A tactic to try, scored by ICE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tactic {
    pub name: String,
    /// The channel it needs; `None` for a tactic that applies to any channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    pub impact: u8,
    pub confidence: u8,
    pub ease: u8,
}

/// impact × confidence × ease. Example: (5, 8, 9) → 360.
pub fn ice_score(impact: u8, confidence: u8, ease: u8) -> u32 {
    u32::from(impact) * u32::from(confidence) * u32::from(ease)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedTactic {
    pub rank: usize,
    pub name: String,
    pub channel: Option<Channel>,
    pub ice: u32,
}

/// Tactics usable on `channels`, highest ICE first (ties by name, so the order is stable).
pub fn rank_tactics(tactics: &[Tactic], channels: &[Channel]) -> Vec<RankedTactic> {
    let mut usable: Vec<&Tactic> = tactics
        .iter()
        .filter(|t| t.channel.is_none_or(|c| channels.contains(&c)))
        .collect();
    usable.sort_by(|a, b| {
        ice_score(b.impact, b.confidence, b.ease)
            .cmp(&ice_score(a.impact, a.confidence, a.ease))
            .then_with(|| a.name.cmp(&b.name))
    });
    usable
        .into_iter()
        .enumerate()
        .map(|(i, t)| RankedTactic {
            rank: i + 1,
            name: t.name.clone(),
            channel: t.channel,
            ice: ice_score(t.impact, t.confidence, t.ease),
        })
        .collect()
}
