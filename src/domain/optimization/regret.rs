//! Pseudo-regret of a traffic policy against an oracle that knows the true rates: over a horizon of
//! impressions, the sum of (best true rate − true rate of the arm shown). It is the measure the
//! optimizer is judged by (benches/regret.rs, tests/it/optimization.rs).
//!
//! Counts reach the policy in batches, as observation batches reach the optimization agent in the
//! product; a batch of 1 is the textbook per-impression bandit. The true rates come from the caller
//! (for instance the market simulator); this file never invents them.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::bandit::BanditPolicy;
use super::thompson::ArmStats;

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegretRun {
    pub policy: String,
    pub seed: u64,
    /// Expected conversions lost against always showing the best arm.
    pub pseudo_regret: f64,
    /// Conversions actually drawn.
    pub conversions: u64,
    /// Impressions given to each arm.
    pub pulls: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegretError {
    #[error("no arms to choose between")]
    NoArms,
    #[error("arm {index}: true rate must be between 0 and 1, got {rate}")]
    BadRate { index: usize, rate: f64 },
    #[error("batch size must be at least 1")]
    ZeroBatch,
}

/// Run `policy` for `horizon` impressions against Bernoulli arms with `true_rates`, revealing counts
/// to the policy every `batch` impressions. Deterministic for a given `seed`.
pub fn run_policy(
    policy: &mut dyn BanditPolicy,
    true_rates: &[f64],
    horizon: u64,
    batch: u64,
    seed: u64,
) -> Result<RegretRun, RegretError> {
    if true_rates.is_empty() {
        return Err(RegretError::NoArms);
    }
    if batch == 0 {
        return Err(RegretError::ZeroBatch);
    }
    for (index, &rate) in true_rates.iter().enumerate() {
        if !(0.0..=1.0).contains(&rate) {
            return Err(RegretError::BadRate { index, rate });
        }
    }
    let best = true_rates.iter().copied().fold(0.0, f64::max);
    // Separate streams: the world's coin flips do not depend on how many draws the policy used.
    let mut world = ChaCha8Rng::seed_from_u64(seed);
    let mut chooser = ChaCha8Rng::seed_from_u64(seed ^ 0x5deece66d);
    let mut visible = vec![ArmStats::default(); true_rates.len()];
    let mut pending = visible.clone();
    let mut pulls = vec![0u64; true_rates.len()];
    let (mut regret, mut conversions) = (0.0, 0u64);
    for t in 0..horizon {
        let arm = policy
            .choose(&visible, &mut chooser)
            .min(true_rates.len() - 1);
        let rate = true_rates.get(arm).copied().unwrap_or(0.0);
        regret += best - rate;
        let converted = world.random_bool(rate);
        if let (Some(p), Some(n)) = (pending.get_mut(arm), pulls.get_mut(arm)) {
            p.trials += 1;
            p.successes += u64::from(converted);
            *n += 1;
        }
        conversions += u64::from(converted);
        if (t + 1) % batch == 0 {
            visible.clone_from(&pending);
        }
    }
    Ok(RegretRun {
        policy: policy.name().to_owned(),
        seed,
        pseudo_regret: regret,
        conversions,
        pulls,
    })
}
