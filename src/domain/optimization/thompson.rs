//! Beta-Bernoulli Thompson sampling: each variant's conversion rate has the posterior
//! Beta(1 + successes, 1 + failures), and a variant's share of traffic is its probability of being
//! the best. Two functions compute that probability:
//!
//! - [`traffic_split`], the live path: the probability is integrated numerically
//!   (`best_arm.rs`), with no generator at all: the same counts always give the same shares,
//!   accurate to 1e-8 (docs/optimization.md says how that is checked), and identical arms get
//!   identical shares.
//! - [`monte_carlo_split`], the reference: the share of `draws` joint posterior draws in which each
//!   arm came out highest, from a generator seeded per decision. It was the live path before, and
//!   it is kept because splits recorded with it replay through it, the quadrature is tested against
//!   it, and the benchmark measures against it. Its own noise is about √(p(1 − p)/draws) per share
//!   (0.005 at 10 000 draws), and at 10 000 draws it costs over a hundred times the quadrature
//!   (benches/README.md, "Traffic split").
//!
//! A [`SplitDecision`] names the method that made it ([`SplitMethod`]; Monte-Carlo when the field is
//! absent, as in every record written before the quadrature), and [`SplitDecision::replay`] makes
//! it again bit for bit. This file must never draw from an unseeded (thread or OS) generator.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use super::best_arm;

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
    #[error(
        "the counts are too large for the split to be computed in double precision (it is tested up to 10^9 trials per variant)"
    )]
    TooLarge,
}

/// How a split was computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    /// Joint posterior draws ([`monte_carlo_split`]) from the recorded seed. The default, because
    /// every split recorded before there was a choice was made this way.
    #[default]
    MonteCarlo,
    /// The probability of being best integrated numerically ([`traffic_split`]). Needs nothing
    /// but the counts; a change to its rule that moves any share is a new method, so recorded splits
    /// keep replaying as they were made.
    Quadrature,
}

/// A traffic split and everything needed to replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitDecision {
    #[serde(default)]
    pub method: SplitMethod,
    /// The generator seed the draws came from (Monte-Carlo only; 0 for quadrature).
    pub seed: u64,
    /// The number of joint draws (Monte-Carlo only; 0 for quadrature).
    pub draws: usize,
    /// Share of traffic per variant, in the order given; sums to 1.
    pub shares: Vec<f64>,
}

impl SplitDecision {
    /// The same split made again from the same counts, by the method that made it.
    pub fn replay(&self, arms: &[ArmStats]) -> Result<SplitDecision, ThompsonError> {
        match self.method {
            SplitMethod::MonteCarlo => monte_carlo_split(arms, self.draws, self.seed),
            SplitMethod::Quadrature => traffic_split(arms),
        }
    }
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

/// Traffic split by probability of being best, computed by quadrature: the live path.
pub fn traffic_split(arms: &[ArmStats]) -> Result<SplitDecision, ThompsonError> {
    check_all(arms)?;
    let shares = best_arm::probability_best(arms).map_err(|_| ThompsonError::TooLarge)?;
    Ok(SplitDecision {
        method: SplitMethod::Quadrature,
        seed: 0,
        draws: 0,
        shares,
    })
}

/// Traffic split by probability of being best, estimated from `draws` joint posterior draws with a
/// generator seeded by `seed` (use [`decision_seed`] for a campaign's epoch): the reference, and
/// how splits recorded with [`SplitMethod::MonteCarlo`] replay.
pub fn monte_carlo_split(
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
        method: SplitMethod::MonteCarlo,
        seed,
        draws,
        shares,
    })
}

fn check_all(arms: &[ArmStats]) -> Result<(), ThompsonError> {
    if arms.is_empty() {
        return Err(ThompsonError::NoArms);
    }
    arms.iter()
        .enumerate()
        .try_for_each(|(index, arm)| arm.check(index))
}

/// A seeded set of `count` variants at rates drawn from 1–8 %, with 50–500 trials each (flat
/// posteriors) or 10⁴–10⁶ drawn log-uniformly (concentrated ones): the posteriors the quadrature
/// is checked against Monte-Carlo on and benchmarked with (`benches/split.rs`), so both use the
/// same set.
pub fn realistic_arms(count: usize, concentrated: bool) -> Vec<ArmStats> {
    use rand::RngExt;
    let mut rng = ChaCha8Rng::seed_from_u64(count as u64 * 2 + u64::from(concentrated));
    (0..count)
        .map(|_| {
            let rate: f64 = rng.random_range(0.01..0.08);
            let trials = if concentrated {
                10f64.powf(rng.random_range(4.0..6.0))
            } else {
                rng.random_range(50.0..500.0)
            }
            .round();
            ArmStats::new((rate * trials).round() as u64, trials as u64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearly_better_arm_gets_most_traffic() {
        let arms = [ArmStats::new(20, 1000), ArmStats::new(60, 1000)];
        for split in [
            traffic_split(&arms).unwrap(),
            monte_carlo_split(&arms, 10_000, 7).unwrap(),
        ] {
            assert!(split.shares[1] > 0.99, "{split:?}");
            assert!((split.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn seed_differs_by_epoch_and_campaign() {
        assert_ne!(decision_seed("spring", 1), decision_seed("spring", 2));
        assert_ne!(decision_seed("spring", 1), decision_seed("autumn", 1));
        assert_eq!(decision_seed("spring", 1), decision_seed("spring", 1));
    }

    #[test]
    fn bad_counts_are_refused() {
        let bad = [ArmStats::new(1, 2), ArmStats::new(5, 3)];
        assert!(matches!(
            traffic_split(&bad),
            Err(ThompsonError::MoreSuccessesThanTrials { index: 1, .. })
        ));
        assert!(matches!(
            monte_carlo_split(&bad, 10, 1),
            Err(ThompsonError::MoreSuccessesThanTrials { index: 1, .. })
        ));
        assert_eq!(traffic_split(&[]), Err(ThompsonError::NoArms));
        assert_eq!(monte_carlo_split(&[], 10, 1), Err(ThompsonError::NoArms));
        assert_eq!(
            monte_carlo_split(&bad[..1], 0, 1),
            Err(ThompsonError::NoDraws)
        );
    }

    #[test]
    fn a_split_replays_by_the_method_it_records_and_old_records_are_monte_carlo() {
        let arms = [
            ArmStats::new(3, 80),
            ArmStats::new(5, 90),
            ArmStats::new(4, 70),
        ];
        let drawn = monte_carlo_split(&arms, 2000, decision_seed("spring", 3)).unwrap();
        let written =
            serde_json::json!({"seed": drawn.seed, "draws": 2000, "shares": drawn.shares});
        let old: SplitDecision = serde_json::from_value(written).unwrap();
        assert_eq!(old.method, SplitMethod::MonteCarlo);
        assert_eq!(old.replay(&arms).unwrap(), drawn);

        let live = traffic_split(&arms).unwrap();
        let text = serde_json::to_string(&live).unwrap();
        assert!(text.contains(r#""method":"quadrature""#), "{text}");
        let read: SplitDecision = serde_json::from_str(&text).unwrap();
        assert_eq!(read.replay(&arms).unwrap(), live);
    }
}
