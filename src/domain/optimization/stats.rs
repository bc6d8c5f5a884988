//! The statistics a test is judged by: the exact probability that B beats A under Beta posteriors
//! (Evan Miller's closed form), the pooled two-proportion z-test, the sample size per arm a
//! test needs, and the central credible interval of an arm's rate (what a leaderboard shows).
//!
//! Sums are done in log space (ln-beta) so that counts in the millions neither overflow nor lose
//! precision. Nothing here samples: these are exact answers, used to confirm what sampling suggests.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF, Normal};
use statrs::function::beta::ln_beta;

use super::thompson::ArmStats;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{arm}: successes ({successes}) exceed trials ({trials})")]
    MoreSuccessesThanTrials {
        arm: &'static str,
        successes: u64,
        trials: u64,
    },
    #[error("{arm}: no trials yet, so there is no rate to test")]
    NoTrials { arm: &'static str },
    #[error("{name} must be strictly between 0 and 1, got {value}")]
    OutOfUnitInterval { name: &'static str, value: f64 },
    #[error("baseline and target rates are equal ({0}); no sample can tell them apart")]
    NoEffect(f64),
}

fn check(arm: &'static str, stats: ArmStats) -> Result<(), StatsError> {
    if stats.successes > stats.trials {
        return Err(StatsError::MoreSuccessesThanTrials {
            arm,
            successes: stats.successes,
            trials: stats.trials,
        });
    }
    Ok(())
}

/// The central `level` credible interval of an arm's rate under its Beta(1 + s, 1 + f)
/// posterior, e.g. `level` 0.9 gives the 5th and 95th percentiles.
pub fn credible_interval(stats: ArmStats, level: f64) -> Result<(f64, f64), StatsError> {
    check("arm", stats)?;
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::OutOfUnitInterval {
            name: "level",
            value: level,
        });
    }
    let (a, b) = stats.posterior();
    // a, b >= 1 and finite once checked, which Beta always accepts.
    let beta = Beta::new(a, b).map_err(|_| StatsError::MoreSuccessesThanTrials {
        arm: "arm",
        successes: stats.successes,
        trials: stats.trials,
    })?;
    let tail = (1.0 - level) / 2.0;
    Ok((beta.inverse_cdf(tail), beta.inverse_cdf(1.0 - tail)))
}

/// P(rate of B > rate of A) for posteriors Beta(1 + s, 1 + f), exactly.
///
/// Evan Miller's closed form sums over the integer α of one arm; by symmetry
/// (P(B > A) = 1 − P(A > B)) we sum over whichever arm has fewer successes, so the cost is
/// O(min(successes)).
pub fn prob_b_beats_a(a: ArmStats, b: ArmStats) -> Result<f64, StatsError> {
    check("A", a)?;
    check("B", b)?;
    let p = if b.successes <= a.successes {
        miller(a, b)
    } else {
        1.0 - miller(b, a)
    };
    Ok(p.clamp(0.0, 1.0))
}

/// Σ_{i=0}^{α_B−1} B(α_A + i, β_A + β_B) / ((β_B + i) · B(1 + i, β_B) · B(α_A, β_A)).
fn miller(a: ArmStats, b: ArmStats) -> f64 {
    let (alpha_a, beta_a) = a.posterior();
    let (_, beta_b) = b.posterior();
    let ln_beta_a = ln_beta(alpha_a, beta_a);
    // α_B = 1 + successes of B: i runs over 0..=successes.
    (0..=b.successes)
        .map(|i| {
            let i = i as f64;
            (ln_beta(alpha_a + i, beta_a + beta_b)
                - (beta_b + i).ln()
                - ln_beta(1.0 + i, beta_b)
                - ln_beta_a)
                .exp()
        })
        .sum()
}

/// Result of a pooled two-proportion z-test of B against A.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZTest {
    /// Positive when B's rate is higher.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

impl ZTest {
    pub fn significant(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// Pooled two-proportion z-test: z = (p_B − p_A) / √(p̄(1 − p̄)(1/n_A + 1/n_B)).
/// When both arms have all or no successes the variance is zero; z is then 0 and p is 1.
pub fn two_proportion_z_test(a: ArmStats, b: ArmStats) -> Result<ZTest, StatsError> {
    check("A", a)?;
    check("B", b)?;
    if a.trials == 0 {
        return Err(StatsError::NoTrials { arm: "A" });
    }
    if b.trials == 0 {
        return Err(StatsError::NoTrials { arm: "B" });
    }
    let (na, nb) = (a.trials as f64, b.trials as f64);
    let pooled = (a.successes + b.successes) as f64 / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se <= 0.0 || !se.is_finite() {
        return Ok(ZTest {
            z: 0.0,
            p_value: 1.0,
        });
    }
    let z = (b.rate() - a.rate()) / se;
    let p_value = (2.0 * Normal::standard().sf(z.abs())).min(1.0);
    Ok(ZTest { z, p_value })
}

/// Trials per arm for a two-sided test at level `alpha` with `power` to detect a change of rate
/// from `baseline` to `target`:
/// n = (z_{1−α/2}·√(2p̄q̄) + z_{power}·√(p₁q₁ + p₂q₂))² / (p₂ − p₁)², rounded up.
pub fn sample_size_per_arm(
    baseline: f64,
    target: f64,
    alpha: f64,
    power: f64,
) -> Result<u64, StatsError> {
    for (name, value) in [
        ("baseline", baseline),
        ("target", target),
        ("alpha", alpha),
        ("power", power),
    ] {
        if !(value > 0.0 && value < 1.0) {
            return Err(StatsError::OutOfUnitInterval { name, value });
        }
    }
    if baseline == target {
        return Err(StatsError::NoEffect(baseline));
    }
    let normal = Normal::standard();
    let z_alpha = normal.inverse_cdf(1.0 - alpha / 2.0);
    let z_power = normal.inverse_cdf(power);
    let mean = (baseline + target) / 2.0;
    let numerator = z_alpha * (2.0 * mean * (1.0 - mean)).sqrt()
        + z_power * (baseline * (1.0 - baseline) + target * (1.0 - target)).sqrt();
    let n = (numerator / (target - baseline)).powi(2);
    // The value is finite and positive here; the cast saturates rather than panics in any case.
    Ok(n.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credible_interval_holds_the_rate_and_narrows_with_evidence() {
        // Beta(1, 1) is uniform: its central 90 % runs from 0.05 to 0.95.
        let (low, high) = credible_interval(ArmStats::new(0, 0), 0.9).unwrap();
        assert!(
            (low - 0.05).abs() < 1e-6 && (high - 0.95).abs() < 1e-6,
            "{low} {high}"
        );
        let few = credible_interval(ArmStats::new(10, 100), 0.9).unwrap();
        let many = credible_interval(ArmStats::new(1000, 10_000), 0.9).unwrap();
        assert!(few.0 < 0.1 && 0.1 < few.1, "{few:?}");
        assert!(many.0 < 0.1 && 0.1 < many.1, "{many:?}");
        assert!(many.1 - many.0 < (few.1 - few.0) / 5.0, "{few:?} {many:?}");
        assert!(credible_interval(ArmStats::new(5, 4), 0.9).is_err());
        assert!(credible_interval(ArmStats::new(1, 4), 1.0).is_err());
    }

    #[test]
    fn equal_arms_are_a_coin_flip() {
        let p = prob_b_beats_a(ArmStats::new(30, 1000), ArmStats::new(30, 1000)).unwrap();
        assert!((p - 0.5).abs() < 1e-9, "{p}");
    }

    #[test]
    fn symmetric() {
        let a = ArmStats::new(12, 400);
        let b = ArmStats::new(19, 380);
        let ab = prob_b_beats_a(a, b).unwrap();
        let ba = prob_b_beats_a(b, a).unwrap();
        assert!((ab + ba - 1.0).abs() < 1e-9);
    }

    #[test]
    fn large_counts_stay_finite() {
        let p = prob_b_beats_a(
            ArmStats::new(200_000, 5_000_000),
            ArmStats::new(202_000, 5_000_000),
        )
        .unwrap();
        assert!(p.is_finite() && p > 0.99, "{p}");
    }

    #[test]
    fn zero_variance_is_not_significant() {
        let t = two_proportion_z_test(ArmStats::new(0, 10), ArmStats::new(0, 10)).unwrap();
        assert_eq!(t.p_value, 1.0);
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(matches!(
            sample_size_per_arm(0.04, 1.5, 0.05, 0.8),
            Err(StatsError::OutOfUnitInterval { name: "target", .. })
        ));
        assert!(matches!(
            two_proportion_z_test(ArmStats::new(1, 0), ArmStats::new(0, 1)),
            Err(StatsError::MoreSuccessesThanTrials { arm: "A", .. })
        ));
    }
}
