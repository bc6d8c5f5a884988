//! The strategy agent's playbook: the `[playbook]` table of `agents/strategy.toml` — the channel
//! priors (CTR, CVR, CPC, daily response curve, maturity, spend bounds), the tier split, how much
//! weight the priors keep against observed outcomes, and the tactics to rank.
//!
//! Typed and strict: unknown keys are refused and every value is checked, with errors that name the
//! key (`playbook.channels.search.ctr`). This file parses text it is given; it never reads a file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tactics::{Maturity, Tactic, TierSplit};
use crate::domain::campaign::Channel;
use crate::domain::optimization::response::ResponseCurve;
use crate::domain::playbook;

/// The embedded default: the agent definition file shipped with campaignd.
pub const DEFAULT_STRATEGY_TOML: &str = include_str!("../../../agents/strategy.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyPlaybook {
    /// The currency the priors' money figures (CPC, response b, daily bounds) are in.
    pub currency: String,
    /// Units of another currency per unit of `currency` (`KRW = 1350.0`), so a campaign budgeted
    /// in that currency can use these priors.
    #[serde(default)]
    pub exchange_rates: BTreeMap<String, f64>,
    /// Budget share per maturity tier.
    pub tiers: TierSplit,
    /// How much evidence a prior is worth when blended with observed outcomes.
    pub prior_strength: PriorStrength,
    pub channels: BTreeMap<Channel, ChannelPrior>,
    #[serde(default)]
    pub tactics: Vec<Tactic>,
}

/// Pseudo-counts: a prior CTR weighs as much as `impressions` observed impressions; a prior CVR and
/// CPC as much as `clicks` observed clicks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorStrength {
    pub impressions: f64,
    pub clicks: f64,
}

/// What campaignd expects of a channel before (and between) campaigns.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPrior {
    pub maturity: Maturity,
    pub ctr: f64,
    pub cvr: f64,
    pub cpc: f64,
    /// Daily conversions of a daily spend: a·ln(1 + spend / b) by default, or a Hill curve, either
    /// with adstock (see [`ResponseCurve`]).
    pub response: ResponseCurve,
    /// Bounds on daily spend.
    #[serde(default)]
    pub min_daily: f64,
    #[serde(default)]
    pub max_daily: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaybookError {
    #[error("strategy playbook: {0}")]
    Parse(playbook::TableError),
    #[error("strategy playbook: there is no [playbook] table")]
    Missing,
    #[error("strategy playbook: `playbook.{key}` {reason}, got {value}")]
    Invalid {
        key: String,
        reason: &'static str,
        value: String,
    },
}

impl StrategyPlaybook {
    /// The playbook of the embedded `agents/strategy.toml`.
    pub fn embedded() -> Result<Self, PlaybookError> {
        Self::from_toml_str(DEFAULT_STRATEGY_TOML)
    }

    /// Read the `[playbook]` table of a whole agent definition file (other tables are ignored).
    pub fn from_toml_str(text: &str) -> Result<Self, PlaybookError> {
        match playbook::table_of(text).map_err(PlaybookError::Parse)? {
            Some(table) => Self::from_table(&table),
            None => Err(PlaybookError::Missing),
        }
    }

    /// Read the contents of a `[playbook]` table.
    pub fn from_table(table: &toml::Table) -> Result<Self, PlaybookError> {
        let parsed: Self = playbook::parse_table(table).map_err(PlaybookError::Parse)?;
        parsed.validate()?;
        Ok(parsed)
    }

    pub fn validate(&self) -> Result<(), PlaybookError> {
        let invalid = |key: String, reason: &'static str, value: String| {
            Err(PlaybookError::Invalid { key, reason, value })
        };
        let tiers = [
            ("tiers.proven", self.tiers.proven),
            ("tiers.emerging", self.tiers.emerging),
            ("tiers.experimental", self.tiers.experimental),
        ];
        for (key, value) in tiers {
            if !(0.0..=1.0).contains(&value) {
                return invalid(key.into(), "must be between 0 and 1", value.to_string());
            }
        }
        let sum = self.tiers.proven + self.tiers.emerging + self.tiers.experimental;
        if (sum - 1.0).abs() > 1e-6 {
            return invalid("tiers".into(), "shares must add up to 1", sum.to_string());
        }
        for (key, value) in [
            (
                "prior_strength.impressions",
                self.prior_strength.impressions,
            ),
            ("prior_strength.clicks", self.prior_strength.clicks),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return invalid(
                    key.into(),
                    "must be a finite number of at least 0",
                    value.to_string(),
                );
            }
        }
        if self.currency.trim().is_empty() {
            return invalid(
                "currency".into(),
                "must name a currency (ISO 4217, e.g. USD)",
                "\"\"".into(),
            );
        }
        for (code, rate) in &self.exchange_rates {
            if !(rate.is_finite() && *rate > 0.0) {
                return invalid(
                    format!("exchange_rates.{code}"),
                    "must be a finite number above 0",
                    rate.to_string(),
                );
            }
        }
        for (channel, prior) in &self.channels {
            prior.validate(&format!("channels.{channel}"))?;
        }
        for (i, tactic) in self.tactics.iter().enumerate() {
            for (field, value) in [
                ("impact", tactic.impact),
                ("confidence", tactic.confidence),
                ("ease", tactic.ease),
            ] {
                if !(1..=10).contains(&value) {
                    return invalid(
                        format!("tactics[{i}].{field}"),
                        "must be between 1 and 10",
                        value.to_string(),
                    );
                }
            }
            if tactic.name.trim().is_empty() {
                return invalid(
                    format!("tactics[{i}].name"),
                    "must not be empty",
                    "\"\"".into(),
                );
            }
        }
        Ok(())
    }

    pub fn prior(&self, channel: Channel) -> Option<&ChannelPrior> {
        self.channels.get(&channel)
    }

    /// Units of `currency` per unit of the playbook's currency; `None` when no rate is known.
    pub fn exchange_rate(&self, currency: &str) -> Option<f64> {
        if currency.eq_ignore_ascii_case(&self.currency) {
            return Some(1.0);
        }
        self.exchange_rates
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(currency))
            .map(|(_, rate)| *rate)
    }
}

impl ChannelPrior {
    /// The same prior with its money figures in a currency worth `rate` units per playbook unit.
    /// Rates per click and the curve's height are unchanged; a/b (conversions per unit of money)
    /// scales by 1/rate as it should.
    pub fn in_currency(&self, rate: f64) -> ChannelPrior {
        let mut prior = *self;
        prior.cpc *= rate;
        prior.response = prior.response.in_currency(rate);
        prior.min_daily *= rate;
        prior.max_daily = prior.max_daily.map(|m| m * rate);
        prior
    }

    /// Check every value; `at` is the key path used in messages (`channels.search`).
    pub fn validate(&self, at: &str) -> Result<(), PlaybookError> {
        let invalid = |field: &str, reason: &'static str, value: f64| {
            Err(PlaybookError::Invalid {
                key: format!("{at}.{field}"),
                reason,
                value: value.to_string(),
            })
        };
        for (field, value) in [("ctr", self.ctr), ("cvr", self.cvr)] {
            if !(value > 0.0 && value <= 1.0) {
                return invalid(field, "must be above 0 and at most 1", value);
            }
        }
        if !(self.cpc.is_finite() && self.cpc > 0.0) {
            return invalid("cpc", "must be a finite number above 0", self.cpc);
        }
        if let Err(e) = self.response.check() {
            return Err(PlaybookError::Invalid {
                key: format!("{at}.response.{}", e.field),
                reason: e.reason,
                value: e.value.to_string(),
            });
        }
        if self.response.peak_marginal() <= 0.0 {
            return invalid(
                "response",
                "must return something: its a or beta must be above 0",
                0.0,
            );
        }
        if !(self.min_daily.is_finite() && self.min_daily >= 0.0) {
            return invalid(
                "min_daily",
                "must be a finite number of at least 0",
                self.min_daily,
            );
        }
        if let Some(max) = self.max_daily
            && !(max.is_finite() && max >= self.min_daily)
        {
            return invalid(
                "max_daily",
                "must be a finite number of at least min_daily",
                max,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_playbook_loads() {
        let playbook = StrategyPlaybook::embedded().unwrap();
        assert_eq!(playbook.tiers, TierSplit::default());
        assert!(playbook.prior(Channel::Search).is_some());
        assert!(!playbook.tactics.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        let bad_value = DEFAULT_STRATEGY_TOML.replacen("ctr = 0.04", "ctr = 1.4", 1);
        let err = StrategyPlaybook::from_toml_str(&bad_value)
            .unwrap_err()
            .to_string();
        assert!(err.contains("playbook.channels.search.ctr"), "{err}");

        let unknown = DEFAULT_STRATEGY_TOML.replacen(
            "maturity = \"proven\"",
            "maturity = \"proven\"\nctrr = 0.1",
            1,
        );
        let err = StrategyPlaybook::from_toml_str(&unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ctrr"), "{err}");

        let table: toml::Table = toml::from_str("currency = \"USD\"\ntiers = { proven = 0.7, emerging = 0.2, experimental = 0.1 }\nprior_strength = { impressions = 1, clicks = 1 }\n[channels.tv]\n").unwrap();
        let err = StrategyPlaybook::from_table(&table)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tv"), "{err}");
    }
}
