//! Drift: the leading variant stops performing as it did. Two detectors, used together:
//!
//! - the 20 % rule ([`DriftRule`]): the last-7-day rate fell more than 20 % below the baseline,
//!   confirmed by a significant z-test and a minimum sample, so one bad afternoon is not drift;
//! - a one-sided CUSUM ([`Cusum`]) over observation batches, which accumulates small standardised
//!   shortfalls and catches a slow decline the window rule would see late.
//!
//! Either one firing re-opens exploration ([`reopen_exploration`]). Nothing here decides what to
//! do with the traffic; it only says whether the world has changed, and why.

use serde::{Deserialize, Serialize};

use super::stats::{StatsError, two_proportion_z_test};
use super::thompson::ArmStats;

/// The 20 % rule and its guards.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftRule {
    /// Relative drop that counts as drift (0.2 = 20 %).
    pub max_drop: f64,
    /// Trials the recent window needs before the rule may fire.
    pub min_sample: u64,
    /// Significance level of the confirming z-test.
    pub alpha: f64,
}

impl Default for DriftRule {
    fn default() -> Self {
        Self {
            max_drop: 0.2,
            min_sample: 1000,
            alpha: 0.05,
        }
    }
}

/// The rule's verdict and the figures behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftCheck {
    pub baseline_rate: f64,
    pub recent_rate: f64,
    /// Relative drop of the recent rate against the baseline (negative when it rose).
    pub drop: f64,
    pub p_value: f64,
    pub enough_sample: bool,
    pub drifted: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    #[error("baseline has no successes, so a relative drop is undefined")]
    ZeroBaseline,
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error("{name} must be {expected}, got {value}")]
    BadParameter {
        name: &'static str,
        expected: &'static str,
        value: f64,
    },
}

impl DriftRule {
    /// Compare the recent window (e.g. the last 7 days) with the baseline (the period before it).
    pub fn check(&self, baseline: ArmStats, recent: ArmStats) -> Result<DriftCheck, DriftError> {
        if !(self.max_drop > 0.0 && self.max_drop < 1.0) {
            return Err(DriftError::BadParameter {
                name: "max_drop",
                expected: "between 0 and 1",
                value: self.max_drop,
            });
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(DriftError::BadParameter {
                name: "alpha",
                expected: "between 0 and 1",
                value: self.alpha,
            });
        }
        let test = two_proportion_z_test(baseline, recent)?;
        if baseline.successes == 0 {
            return Err(DriftError::ZeroBaseline);
        }
        let (baseline_rate, recent_rate) = (baseline.rate(), recent.rate());
        let drop = 1.0 - recent_rate / baseline_rate;
        let enough_sample = recent.trials >= self.min_sample;
        let significant = test.z < 0.0 && test.significant(self.alpha);
        let drifted = drop > self.max_drop && significant && enough_sample;
        let pct = |x: f64| x * 100.0;
        let reason = if drifted {
            format!(
                "rate fell {:.1} % ({:.3} % → {:.3} %), more than {:.0} %, p = {:.4} on {} recent trials",
                pct(drop),
                pct(baseline_rate),
                pct(recent_rate),
                pct(self.max_drop),
                test.p_value,
                recent.trials
            )
        } else if drop <= self.max_drop {
            format!(
                "rate moved {:.1} % ({:.3} % → {:.3} %), within the {:.0} % tolerance",
                pct(-drop),
                pct(baseline_rate),
                pct(recent_rate),
                pct(self.max_drop)
            )
        } else if !enough_sample {
            format!(
                "rate fell {:.1} % but only {} recent trials (need {}); waiting for more data",
                pct(drop),
                recent.trials,
                self.min_sample
            )
        } else {
            format!(
                "rate fell {:.1} % but the drop is not significant (p = {:.4} ≥ {})",
                pct(drop),
                test.p_value,
                self.alpha
            )
        };
        Ok(DriftCheck {
            baseline_rate,
            recent_rate,
            drop,
            p_value: test.p_value,
            enough_sample,
            drifted,
            reason,
        })
    }
}

/// One-sided (downward) CUSUM on standardised batch rates:
/// Sₜ = max(0, Sₜ₋₁ + (p₀ − p̂ₜ)/σₜ − k), alarm when Sₜ > h, with σₜ = √(p₀(1 − p₀)/nₜ).
/// Standardising per batch lets batches of different sizes count by their evidence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    /// The in-control rate p₀ (the baseline).
    pub target: f64,
    /// Slack per batch, in standard deviations (0.5 is usual).
    pub k: f64,
    /// Alarm threshold, in standard deviations (4–5 is usual).
    pub h: f64,
    /// The running statistic.
    pub statistic: f64,
}

impl Cusum {
    pub fn new(target: f64, k: f64, h: f64) -> Result<Self, DriftError> {
        if !(target > 0.0 && target < 1.0) {
            return Err(DriftError::BadParameter {
                name: "target",
                expected: "between 0 and 1",
                value: target,
            });
        }
        if !(k.is_finite() && k >= 0.0) {
            return Err(DriftError::BadParameter {
                name: "k",
                expected: "a finite number of at least 0",
                value: k,
            });
        }
        if !(h.is_finite() && h > 0.0) {
            return Err(DriftError::BadParameter {
                name: "h",
                expected: "a finite number above 0",
                value: h,
            });
        }
        Ok(Self {
            target,
            k,
            h,
            statistic: 0.0,
        })
    }

    /// Add one batch; `true` when the alarm fires. An empty batch changes nothing.
    pub fn update(&mut self, batch: ArmStats) -> bool {
        if batch.trials == 0 {
            return self.alarm();
        }
        let sigma = (self.target * (1.0 - self.target) / batch.trials as f64).sqrt();
        let z = (self.target - batch.rate().min(1.0)) / sigma;
        self.statistic = (self.statistic + z - self.k).max(0.0);
        self.alarm()
    }

    pub fn alarm(&self) -> bool {
        self.statistic > self.h
    }

    pub fn reset(&mut self) {
        self.statistic = 0.0;
    }
}

/// Re-open exploration after drift: shrink every arm's evidence to `keep` of its counts, so the
/// posteriors widen and Thompson sampling tries the other variants again while still leaning on
/// what it knew. `keep` is clamped to [0, 1].
pub fn reopen_exploration(arms: &mut [ArmStats], keep: f64) {
    let keep = if keep.is_nan() {
        0.0
    } else {
        keep.clamp(0.0, 1.0)
    };
    for arm in arms {
        let trials = (arm.trials as f64 * keep).round() as u64;
        let successes = ((arm.successes.min(arm.trials)) as f64 * keep).round() as u64;
        *arm = ArmStats {
            successes: successes.min(trials),
            trials,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sample_does_not_fire() {
        let check = DriftRule::default()
            .check(ArmStats::new(500, 10_000), ArmStats::new(10, 500))
            .unwrap();
        assert!(!check.drifted, "{}", check.reason);
        assert!(check.reason.contains("only 500"));
    }

    #[test]
    fn reopen_keeps_rates_but_widens() {
        let mut arms = [ArmStats::new(400, 10_000)];
        reopen_exploration(&mut arms, 0.1);
        assert_eq!(arms[0], ArmStats::new(40, 1000));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(
            Cusum::new(1.5, 0.5, 5.0),
            Err(DriftError::BadParameter { name: "target", .. })
        ));
    }
}
