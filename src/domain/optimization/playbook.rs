//! The optimization agent's playbook: the `[playbook]` table of `agents/optimization.toml`, with the
//! test thresholds, drift guards and search settings the agent works from. Operators tune these
//! without recompiling; unknown keys are refused so a misspelt key is an error, not a silent default.
//!
//! This file only parses and checks values; it never reads the file itself (settings does).

use serde::{Deserialize, Serialize};

use super::drift::DriftRule;
use super::genetic::GeneticMix;
use super::rebalance::BudgetPacing;
use crate::domain::playbook;

/// The embedded default: the agent definition file shipped with campaignd.
pub const DEFAULT_OPTIMIZATION_TOML: &str = include_str!("../../../agents/optimization.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizationPlaybook {
    /// Joint posterior draws behind one traffic split.
    pub split_draws: usize,
    /// Significance level and power for tests and sample sizes.
    pub alpha: f64,
    pub power: f64,
    /// The recent window the 20 % drift rule compares with the baseline, in days.
    pub drift_window_days: u32,
    pub drift: DriftRule,
    pub cusum: CusumSettings,
    /// Share of each variant's evidence kept when drift re-opens exploration.
    pub explore_keep: f64,
    /// The least share of its channel's daily spend a live variant gets (at most half an even
    /// share). Defaults to 1 % when absent, so a playbook written before it still loads.
    #[serde(default = "default_traffic_floor")]
    pub traffic_floor: f64,
    pub genetic: GeneticSettings,
    /// How budget moves between channels. Defaults when the table is absent, so a playbook written
    /// before budget pacing existed still loads.
    #[serde(default)]
    pub budget: BudgetPacing,
}

fn default_traffic_floor() -> f64 {
    0.01
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CusumSettings {
    pub k: f64,
    pub h: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneticSettings {
    /// Children bred per content cell each generation (those that are arms already are not
    /// written again).
    pub population: usize,
    /// Live arms a content cell keeps at most: when a generation joins, the arms with the
    /// smallest traffic shares are retired down to it. Defaults to 18 (the first generation's
    /// size per cell) when absent, so a playbook written before it still loads.
    #[serde(default = "default_max_live")]
    pub max_live: usize,
    #[serde(flatten)]
    pub mix: GeneticMix,
}

fn default_max_live() -> usize {
    18
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaybookError {
    #[error("optimization playbook: {0}")]
    Parse(playbook::TableError),
    #[error("optimization playbook: there is no [playbook] table")]
    Missing,
    #[error("optimization playbook: `playbook.{key}` {reason}, got {value}")]
    Invalid {
        key: &'static str,
        reason: &'static str,
        value: String,
    },
}

impl OptimizationPlaybook {
    /// The playbook of the embedded `agents/optimization.toml`.
    pub fn embedded() -> Result<Self, PlaybookError> {
        Self::from_toml_str(DEFAULT_OPTIMIZATION_TOML)
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
        let unit = |key: &'static str, value: f64| {
            if value > 0.0 && value < 1.0 {
                Ok(())
            } else {
                Err(PlaybookError::Invalid {
                    key,
                    reason: "must be between 0 and 1",
                    value: value.to_string(),
                })
            }
        };
        unit("alpha", self.alpha)?;
        unit("power", self.power)?;
        unit("drift.max_drop", self.drift.max_drop)?;
        unit("drift.alpha", self.drift.alpha)?;
        if !(0.0..=1.0).contains(&self.explore_keep) {
            return Err(PlaybookError::Invalid {
                key: "explore_keep",
                reason: "must be between 0 and 1",
                value: self.explore_keep.to_string(),
            });
        }
        if !(0.0..0.5).contains(&self.traffic_floor) {
            return Err(PlaybookError::Invalid {
                key: "traffic_floor",
                reason: "must be at least 0 and below 0.5",
                value: self.traffic_floor.to_string(),
            });
        }
        if self.split_draws == 0 {
            return Err(PlaybookError::Invalid {
                key: "split_draws",
                reason: "must be at least 1",
                value: "0".into(),
            });
        }
        if self.drift_window_days == 0 {
            return Err(PlaybookError::Invalid {
                key: "drift_window_days",
                reason: "must be at least 1",
                value: "0".into(),
            });
        }
        if !(self.cusum.k.is_finite() && self.cusum.k >= 0.0) {
            return Err(PlaybookError::Invalid {
                key: "cusum.k",
                reason: "must be a finite number of at least 0",
                value: self.cusum.k.to_string(),
            });
        }
        if !(self.cusum.h.is_finite() && self.cusum.h > 0.0) {
            return Err(PlaybookError::Invalid {
                key: "cusum.h",
                reason: "must be a finite number above 0",
                value: self.cusum.h.to_string(),
            });
        }
        if self.genetic.population == 0 {
            return Err(PlaybookError::Invalid {
                key: "genetic.population",
                reason: "must be at least 1",
                value: "0".into(),
            });
        }
        if self.genetic.max_live < self.genetic.population {
            return Err(PlaybookError::Invalid {
                key: "genetic.max_live",
                reason: "must be at least genetic.population (a generation must fit beside the arms it was bred from)",
                value: self.genetic.max_live.to_string(),
            });
        }
        let mix = self.genetic.mix;
        for (key, value) in [
            ("genetic.elite", mix.elite),
            ("genetic.crossover", mix.crossover),
            ("genetic.mutation", mix.mutation),
            ("genetic.random", mix.random),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(PlaybookError::Invalid {
                    key,
                    reason: "must be a finite number of at least 0",
                    value: value.to_string(),
                });
            }
        }
        if let Some((key, reason, value)) = self.budget.out_of_range() {
            return Err(PlaybookError::Invalid {
                key: match key {
                    "max_move" => "budget.max_move",
                    "floor" => "budget.floor",
                    "min_evidence" => "budget.min_evidence",
                    _ => "budget.prior_conversions",
                },
                reason,
                value: value.to_string(),
            });
        }
        let sum = mix.elite + mix.crossover + mix.mutation + mix.random;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(PlaybookError::Invalid {
                key: "genetic",
                reason: "shares (elite + crossover + mutation + random) must add up to 1",
                value: sum.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_playbook_loads() {
        let playbook = OptimizationPlaybook::embedded().unwrap();
        assert_eq!(playbook.drift.max_drop, 0.2);
        assert_eq!(playbook.genetic.mix, GeneticMix::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let text = DEFAULT_OPTIMIZATION_TOML.replace("explore_keep", "explore_kep");
        let err = OptimizationPlaybook::from_toml_str(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("explore_kep"), "{err}");
    }

    #[test]
    fn budget_pacing_loads_defaults_when_absent_and_names_bad_values() {
        let playbook = OptimizationPlaybook::embedded().unwrap();
        assert_eq!(playbook.budget, BudgetPacing::default());
        let start = DEFAULT_OPTIMIZATION_TOML.find("[playbook.budget]").unwrap();
        let end = DEFAULT_OPTIMIZATION_TOML[start..]
            .find("\n\n")
            .map_or(DEFAULT_OPTIMIZATION_TOML.len(), |e| start + e);
        let without = format!(
            "{}{}",
            &DEFAULT_OPTIMIZATION_TOML[..start],
            &DEFAULT_OPTIMIZATION_TOML[end..]
        );
        assert_eq!(
            OptimizationPlaybook::from_toml_str(&without)
                .unwrap()
                .budget,
            BudgetPacing::default()
        );
        let text = DEFAULT_OPTIMIZATION_TOML.replace("max_move = 0.2", "max_move = 1.5");
        let err = OptimizationPlaybook::from_toml_str(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("playbook.budget.max_move"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let text = DEFAULT_OPTIMIZATION_TOML.replace("max_drop = 0.2", "max_drop = 1.2");
        let err = OptimizationPlaybook::from_toml_str(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("playbook.drift.max_drop"), "{err}");
    }
}
