//! Beta-Bernoulli Thompson sampling: each variant's conversion rate has the posterior
//! Beta(1 + successes, 1 + failures), and a variant's share of traffic is its probability of being
//! the best, estimated from joint posterior draws.
//!
//! Every split is drawn from a generator seeded per (campaign, epoch), and the seed travels with
//! the result, so a recorded decision can be replayed bit for bit. This file must never draw from
//! an unseeded (thread or OS) generator.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

/// What is known about one variant: how many trials (impressions, clicks, sends) and how many of
/// them succeeded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmStats {
    pub successes: u64,
    pub trials: u64,
}

impl ArmStats {
    pub fn new(successes: u64, trials: u64) -> Self {
        Self { successes, trials }
    }

    pub fn failures(&self) -> u64 {
        self.trials.saturating_sub(self.successes)
    }

    /// Observed rate; 0 when nothing has been tried yet.
    pub fn rate(&self) -> f64 {
        if self.trials == 0 {
            0.0
        } else {
            self.successes as f64 / self.trials as f64
        }
    }

    /// Parameters of the posterior Beta(1 + successes, 1 + failures) under a uniform prior.
    pub fn posterior(&self) -> (f64, f64) {
        (1.0 + self.successes as f64, 1.0 + self.failures() as f64)
    }

    /// Mean of the posterior: (1 + s) / (2 + n).
    pub fn posterior_mean(&self) -> f64 {
        let (a, b) = self.posterior();
        a / (a + b)
    }

    fn check(&self, index: usize) -> Result<(), ThompsonError> {
        if self.successes > self.trials {
            return Err(ThompsonError::MoreSuccessesThanTrials {
                index,
                successes: self.successes,
                trials: self.trials,
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThompsonError {
    #[error("no variants to split traffic between")]
    NoArms,
    #[error("variant {index}: successes ({successes}) exceed trials ({trials})")]
    MoreSuccessesThanTrials {
        index: usize,
        successes: u64,
        trials: u64,
    },
    #[error("the number of posterior draws must be at least 1")]
    NoDraws,
}

/// A traffic split and everything needed to replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitDecision {
    /// The generator seed the draws came from; `traffic_split(arms, draws, seed)` reproduces it.
    pub seed: u64,
    pub draws: usize,
    /// Share of traffic per variant, in the order given; sums to 1.
    pub shares: Vec<f64>,
}

/// A stable seed for one decision epoch of one campaign.
///
/// FNV-1a over the campaign id, then the epoch mixed in with splitmix64. Stable across builds and
/// platforms (unlike the standard library's hasher), which replay depends on.
pub fn decision_seed(campaign: &str, epoch: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in campaign.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(hash ^ splitmix64(epoch))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The posterior of each arm as a sampler.
pub(crate) fn posteriors(arms: &[ArmStats]) -> Result<Vec<Beta<f64>>, ThompsonError> {
    arms.iter()
        .enumerate()
        .map(|(index, arm)| {
            arm.check(index)?;
            let (a, b) = arm.posterior();
            // a, b >= 1 and finite, which Beta always accepts; map the error anyway rather than panic.
            Beta::new(a, b).map_err(|_| ThompsonError::MoreSuccessesThanTrials {
                index,
                successes: arm.successes,
                trials: arm.trials,
            })
        })
        .collect()
}

/// One joint draw from the posteriors: the index of the arm whose sampled rate is highest.
/// Ties go to the lower index. `None` only when there are no arms.
pub(crate) fn draw_best<R: rand::Rng + ?Sized>(
    posteriors: &[Beta<f64>],
    rng: &mut R,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (index, dist) in posteriors.iter().enumerate() {
        let sample = dist.sample(rng);
        if best.is_none_or(|(_, top)| sample > top) {
            best = Some((index, sample));
        }
    }
    best.map(|(index, _)| index)
}

/// Traffic split by probability of being best, from `draws` joint posterior draws with a generator
/// seeded by `seed` (use [`decision_seed`] for a campaign's epoch).
pub fn traffic_split(
    arms: &[ArmStats],
    draws: usize,
    seed: u64,
) -> Result<SplitDecision, ThompsonError> {
    if arms.is_empty() {
        return Err(ThompsonError::NoArms);
    }
    if draws == 0 {
        return Err(ThompsonError::NoDraws);
    }
    let posteriors = posteriors(arms)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut wins = vec![0u64; arms.len()];
    for _ in 0..draws {
        if let Some(best) = draw_best(&posteriors, &mut rng)
            && let Some(count) = wins.get_mut(best)
        {
            *count += 1;
        }
    }
    let shares = wins.iter().map(|&w| w as f64 / draws as f64).collect();
    Ok(SplitDecision {
        seed,
        draws,
        shares,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearly_better_arm_gets_most_traffic() {
        let arms = [ArmStats::new(20, 1000), ArmStats::new(60, 1000)];
        let split = traffic_split(&arms, 10_000, 7).unwrap();
        assert!(split.shares[1] > 0.99, "{:?}", split.shares);
        assert!((split.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn seed_differs_by_epoch_and_campaign() {
        assert_ne!(decision_seed("spring", 1), decision_seed("spring", 2));
        assert_ne!(decision_seed("spring", 1), decision_seed("autumn", 1));
        assert_eq!(decision_seed("spring", 1), decision_seed("spring", 1));
    }

    #[test]
    fn bad_counts_are_refused() {
        assert!(matches!(
            traffic_split(&[ArmStats::new(5, 3)], 10, 1),
            Err(ThompsonError::MoreSuccessesThanTrials { index: 0, .. })
        ));
        assert_eq!(traffic_split(&[], 10, 1), Err(ThompsonError::NoArms));
    }
}
