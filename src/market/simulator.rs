//! The built-in market simulator: a seeded stand-in for ad platforms, with hidden true rates per
//! channel × segment × variant, diminishing returns of spend, and optional drift from a chosen day.
//!
//! A variant is known to the market only by its creative features (dimension → level pairs), so any
//! content variant maps onto it. The true rates are exposed ([`MarketSimulator::true_rates`]) for
//! measuring pseudo-regret; the optimizer must only ever see [`Observation`]s. The same spec, seed
//! and buys always produce the same observations.
//!
//! The model: rates multiply — channel base × segment × each level's effect (× drift once it
//! starts). Spend on a channel in a day buys (b/cpc)·ln(1 + X/b) expected clicks for total spend X,
//! shared among that day's buys in proportion to their spend; impressions follow from CTR, and
//! clicks and conversions are binomial draws.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};

use super::observation::Observation;
use crate::domain::campaign::CampaignId;
use crate::domain::campaign::{Buy, Channel};

/// A variant as the market sees it: its creative-dimension levels, e.g. (`offer`, `free shipping`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantFeatures {
    pub levels: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMarket {
    pub channel: Channel,
    pub ctr: f64,
    pub cvr: f64,
    pub cpc: f64,
    /// Daily spend at which the channel's returns start to flatten (b).
    pub saturation_spend: f64,
    /// Revenue per conversion.
    #[serde(default)]
    pub order_value: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentMarket {
    pub id: String,
    pub ctr_multiplier: f64,
    pub cvr_multiplier: f64,
}

/// How one level of one creative dimension changes the rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelEffect {
    pub dimension: String,
    pub level: String,
    pub ctr_multiplier: f64,
    pub cvr_multiplier: f64,
}

/// From `from_day` on, conversion rates of the matching channel/variant (all when `None`) are
/// multiplied by `cvr_multiplier`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftEvent {
    pub from_day: u32,
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub variant: Option<String>,
    pub cvr_multiplier: f64,
}

/// A market as a what-if file describes it: the truth per channel, segment and creative level,
/// and drift. A segment or level the file does not name has multipliers of 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketFile {
    pub channels: Vec<ChannelMarket>,
    #[serde(default)]
    pub segments: Vec<SegmentMarket>,
    #[serde(default)]
    pub effects: Vec<LevelEffect>,
    #[serde(default)]
    pub drift: Vec<DriftEvent>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    pub seed: u64,
    pub campaign: CampaignId,
    /// Day 0 begins here; day d's window is [start + d days, start + d + 1 days).
    pub start: DateTime<Utc>,
    pub channels: Vec<ChannelMarket>,
    pub segments: Vec<SegmentMarket>,
    #[serde(default)]
    pub effects: Vec<LevelEffect>,
    #[serde(default)]
    pub drift: Vec<DriftEvent>,
}

/// The hidden truth for one channel × segment × variant on one day.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrueRates {
    pub ctr: f64,
    pub cvr: f64,
}

impl TrueRates {
    /// Conversions per impression.
    pub fn per_impression(&self) -> f64 {
        self.ctr * self.cvr
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MarketError {
    #[error("market spec: `{field}` {reason}, got {value}")]
    InvalidSpec {
        field: String,
        reason: &'static str,
        value: String,
    },
    #[error("the market has no channel `{0}`")]
    UnknownChannel(Channel),
    #[error("the market has no segment `{0}`")]
    UnknownSegment(String),
    #[error("the market has no variant `{0}`; add it with add_variant first")]
    UnknownVariant(String),
    #[error(
        "buy of `{variant}` on {channel}: spend must be a finite number of at least 0, got {spend}"
    )]
    BadSpend {
        channel: Channel,
        variant: String,
        spend: f64,
    },
}

pub struct MarketSimulator {
    spec: MarketSpec,
    /// Variant → the positions in `spec.effects` of the effects its levels have, in the order
    /// they multiply its rates: a variant's features are needed only through them, and a thousand
    /// campaigns' markets would otherwise keep every level's wording once per variant.
    variants: BTreeMap<String, Vec<u32>>,
    rng: ChaCha8Rng,
}

fn check_positive(field: String, value: f64, upper_one: bool) -> Result<(), MarketError> {
    let ok = value.is_finite() && value > 0.0 && (!upper_one || value <= 1.0);
    if ok {
        Ok(())
    } else {
        let reason = if upper_one {
            "must be above 0 and at most 1"
        } else {
            "must be a finite number above 0"
        };
        Err(MarketError::InvalidSpec {
            field,
            reason,
            value: value.to_string(),
        })
    }
}

impl MarketSimulator {
    pub fn new(spec: MarketSpec) -> Result<Self, MarketError> {
        for (i, c) in spec.channels.iter().enumerate() {
            check_positive(format!("channels[{i}].ctr"), c.ctr, true)?;
            check_positive(format!("channels[{i}].cvr"), c.cvr, true)?;
            check_positive(format!("channels[{i}].cpc"), c.cpc, false)?;
            check_positive(
                format!("channels[{i}].saturation_spend"),
                c.saturation_spend,
                false,
            )?;
            if !(c.order_value.is_finite() && c.order_value >= 0.0) {
                return Err(MarketError::InvalidSpec {
                    field: format!("channels[{i}].order_value"),
                    reason: "must be a finite number of at least 0",
                    value: c.order_value.to_string(),
                });
            }
        }
        for (i, s) in spec.segments.iter().enumerate() {
            check_positive(
                format!("segments[{i}].ctr_multiplier"),
                s.ctr_multiplier,
                false,
            )?;
            check_positive(
                format!("segments[{i}].cvr_multiplier"),
                s.cvr_multiplier,
                false,
            )?;
        }
        for (i, e) in spec.effects.iter().enumerate() {
            check_positive(
                format!("effects[{i}].ctr_multiplier"),
                e.ctr_multiplier,
                false,
            )?;
            check_positive(
                format!("effects[{i}].cvr_multiplier"),
                e.cvr_multiplier,
                false,
            )?;
        }
        for (i, d) in spec.drift.iter().enumerate() {
            check_positive(
                format!("drift[{i}].cvr_multiplier"),
                d.cvr_multiplier,
                false,
            )?;
        }
        let rng = ChaCha8Rng::seed_from_u64(spec.seed);
        Ok(Self {
            spec,
            variants: BTreeMap::new(),
            rng,
        })
    }

    pub fn spec(&self) -> &MarketSpec {
        &self.spec
    }

    /// Make a variant known to the market (replacing its features if it was known).
    pub fn add_variant(&mut self, id: impl Into<String>, features: VariantFeatures) {
        let effects = &self.spec.effects;
        let positions = features
            .levels
            .iter()
            .flat_map(|(dimension, level)| {
                effects
                    .iter()
                    .enumerate()
                    .filter(move |(_, e)| &e.dimension == dimension && &e.level == level)
                    .map(|(at, _)| u32::try_from(at).unwrap_or(u32::MAX))
            })
            .collect();
        self.variants.insert(id.into(), positions);
    }

    /// Whether `variant` was made known with [`MarketSimulator::add_variant`].
    pub fn knows(&self, variant: &str) -> bool {
        self.variants.contains_key(variant)
    }

    fn channel(&self, channel: Channel) -> Result<&ChannelMarket, MarketError> {
        self.spec
            .channels
            .iter()
            .find(|c| c.channel == channel)
            .ok_or(MarketError::UnknownChannel(channel))
    }

    /// The hidden true rates on `day`; for measuring regret, never for deciding.
    pub fn true_rates(
        &self,
        channel: Channel,
        segment: &str,
        variant: &str,
        day: u32,
    ) -> Result<TrueRates, MarketError> {
        let market = self.channel(channel)?;
        let seg = self
            .spec
            .segments
            .iter()
            .find(|s| s.id == segment)
            .ok_or_else(|| MarketError::UnknownSegment(segment.to_owned()))?;
        let effects = self
            .variants
            .get(variant)
            .ok_or_else(|| MarketError::UnknownVariant(variant.to_owned()))?;
        let (mut ctr, mut cvr) = (
            market.ctr * seg.ctr_multiplier,
            market.cvr * seg.cvr_multiplier,
        );
        for effect in effects
            .iter()
            .filter_map(|&at| self.spec.effects.get(at as usize))
        {
            ctr *= effect.ctr_multiplier;
            cvr *= effect.cvr_multiplier;
        }
        for drift in &self.spec.drift {
            let applies = day >= drift.from_day
                && drift.channel.is_none_or(|c| c == channel)
                && drift.variant.as_deref().is_none_or(|v| v == variant);
            if applies {
                cvr *= drift.cvr_multiplier;
            }
        }
        Ok(TrueRates {
            ctr: ctr.clamp(0.0, 1.0),
            cvr: cvr.clamp(0.0, 1.0),
        })
    }

    /// Expected clicks a day's total spend on a channel buys: (b/cpc)·ln(1 + X/b).
    pub fn expected_clicks(&self, channel: Channel, total_spend: f64) -> Result<f64, MarketError> {
        let m = self.channel(channel)?;
        Ok(m.saturation_spend / m.cpc * (total_spend.max(0.0) / m.saturation_spend).ln_1p())
    }

    /// Run one day: one observation per buy, in the order given.
    pub fn simulate_day(
        &mut self,
        day: u32,
        buys: &[Buy],
    ) -> Result<Vec<Observation>, MarketError> {
        let mut per_channel: BTreeMap<Channel, f64> = BTreeMap::new();
        for buy in buys {
            if !(buy.spend.is_finite() && buy.spend >= 0.0) {
                return Err(MarketError::BadSpend {
                    channel: buy.channel,
                    variant: buy.variant.clone(),
                    spend: buy.spend,
                });
            }
            // Check every id before drawing anything, so a bad buy leaves the generator untouched.
            self.true_rates(buy.channel, &buy.segment, &buy.variant, day)?;
            *per_channel.entry(buy.channel).or_default() += buy.spend;
        }
        let window_start = self.spec.start + Duration::days(i64::from(day));
        let window_end = window_start + Duration::days(1);
        let mut out = Vec::with_capacity(buys.len());
        for buy in buys {
            let rates = self.true_rates(buy.channel, &buy.segment, &buy.variant, day)?;
            let total = per_channel.get(&buy.channel).copied().unwrap_or(0.0);
            let clicks_expected = if total > 0.0 {
                self.expected_clicks(buy.channel, total)? * buy.spend / total
            } else {
                0.0
            };
            let impressions = if rates.ctr > 0.0 {
                (clicks_expected / rates.ctr).round().min(1e15) as u64
            } else {
                0
            };
            let clicks = binomial(impressions, rates.ctr, &mut self.rng);
            let conversions = binomial(clicks, rates.cvr, &mut self.rng);
            let order_value = self.channel(buy.channel)?.order_value;
            out.push(Observation {
                campaign: self.spec.campaign.clone(),
                channel: buy.channel,
                segment: Some(buy.segment.clone()),
                variant: buy.variant.clone(),
                window_start,
                window_end,
                impressions: i64::try_from(impressions).unwrap_or(i64::MAX),
                clicks: i64::try_from(clicks).unwrap_or(i64::MAX),
                conversions: i64::try_from(conversions).unwrap_or(i64::MAX),
                spend: buy.spend,
                revenue: conversions as f64 * order_value,
            });
        }
        Ok(out)
    }
}

fn binomial(n: u64, p: f64, rng: &mut ChaCha8Rng) -> u64 {
    match Binomial::new(n, p.clamp(0.0, 1.0)) {
        Ok(dist) => dist.sample(rng),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::observation::IdCatalog;

    fn spec() -> MarketSpec {
        MarketSpec {
            seed: 42,
            campaign: CampaignId::new("spring"),
            start: "2026-09-01T00:00:00Z".parse().unwrap(),
            channels: vec![ChannelMarket {
                channel: Channel::Search,
                ctr: 0.04,
                cvr: 0.05,
                cpc: 1.5,
                saturation_spend: 300.0,
                order_value: 40.0,
            }],
            segments: vec![SegmentMarket {
                id: "students".into(),
                ctr_multiplier: 1.2,
                cvr_multiplier: 1.0,
            }],
            effects: vec![LevelEffect {
                dimension: "offer".into(),
                level: "free".into(),
                ctr_multiplier: 1.0,
                cvr_multiplier: 1.5,
            }],
            drift: vec![DriftEvent {
                from_day: 10,
                channel: None,
                variant: Some("b".into()),
                cvr_multiplier: 0.5,
            }],
        }
    }

    fn market() -> MarketSimulator {
        let mut m = MarketSimulator::new(spec()).unwrap();
        m.add_variant(
            "a",
            VariantFeatures {
                levels: vec![("offer".into(), "10%".into())],
            },
        );
        m.add_variant(
            "b",
            VariantFeatures {
                levels: vec![("offer".into(), "free".into())],
            },
        );
        m
    }

    fn buys(spend: f64) -> Vec<Buy> {
        ["a", "b"]
            .iter()
            .map(|v| Buy {
                channel: Channel::Search,
                segment: "students".into(),
                variant: (*v).into(),
                spend,
            })
            .collect()
    }

    #[test]
    fn true_rates_follow_features_and_drift() {
        let m = market();
        let a = m.true_rates(Channel::Search, "students", "a", 0).unwrap();
        let b = m.true_rates(Channel::Search, "students", "b", 0).unwrap();
        assert!((a.ctr - 0.048).abs() < 1e-12 && (a.cvr - 0.05).abs() < 1e-12);
        assert!((b.cvr - 0.075).abs() < 1e-12);
        let b_later = m.true_rates(Channel::Search, "students", "b", 10).unwrap();
        assert!((b_later.cvr - 0.0375).abs() < 1e-12);
        assert_eq!(
            m.true_rates(Channel::Search, "students", "a", 10).unwrap(),
            a
        );
    }

    #[test]
    fn seeded_and_valid() {
        let (mut m1, mut m2) = (market(), market());
        let o1 = m1.simulate_day(0, &buys(500.0)).unwrap();
        assert_eq!(o1, m2.simulate_day(0, &buys(500.0)).unwrap());
        let mut catalog = IdCatalog::default();
        catalog.add(CampaignId::new("spring"), "a");
        catalog.add(CampaignId::new("spring"), "b");
        for o in &o1 {
            assert!(o.validate(&catalog).is_ok(), "{o:?}");
            assert!(o.impressions > 0);
        }
    }

    #[test]
    fn returns_diminish() {
        let m = market();
        let one = m.expected_clicks(Channel::Search, 300.0).unwrap();
        let two = m.expected_clicks(Channel::Search, 600.0).unwrap();
        assert!(two < 2.0 * one && two > one);
    }

    #[test]
    fn unknown_ids_are_refused() {
        let mut m = market();
        let mut bad = buys(1.0);
        bad[1].variant = "zzz".into();
        assert_eq!(
            m.simulate_day(0, &bad),
            Err(MarketError::UnknownVariant("zzz".into()))
        );
        assert!(matches!(
            MarketSimulator::new(MarketSpec {
                channels: vec![ChannelMarket {
                    ctr: 2.0,
                    ..spec().channels[0].clone()
                }],
                ..spec()
            }),
            Err(MarketError::InvalidSpec { .. })
        ));
    }
}
