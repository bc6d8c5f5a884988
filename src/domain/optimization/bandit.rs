//! Traffic policies that choose one variant per impression: Thompson sampling (what campaignd uses)
//! and the two baselines it is measured against, a uniform split and ε-greedy.
//!
//! A policy only chooses; it never sees the true rates and never updates counts itself (the caller
//! feeds it observed counts, per impression or per batch). Randomness comes from the caller's
//! seeded generator.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::Beta;
use serde::{Deserialize, Serialize};

use super::thompson::{ArmStats, draw_best, posteriors};

/// Chooses the arm for the next impression from the counts observed so far.
pub trait BanditPolicy {
    fn name(&self) -> &'static str;
    /// The arm to show next; 0 when `arms` is empty (callers never pass an empty list).
    fn choose(&mut self, arms: &[ArmStats], rng: &mut ChaCha8Rng) -> usize;
}

/// Which policy, as named in configuration and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum PolicyKind {
    Thompson,
    Uniform,
    EpsilonGreedy { epsilon: f64 },
}

impl PolicyKind {
    pub fn build(self) -> Box<dyn BanditPolicy> {
        match self {
            PolicyKind::Thompson => Box::new(ThompsonPolicy::default()),
            PolicyKind::Uniform => Box::new(UniformSplit),
            PolicyKind::EpsilonGreedy { epsilon } => Box::new(EpsilonGreedy::new(epsilon)),
        }
    }
}

/// One posterior draw per arm, show the highest. Posteriors are cached until the counts change,
/// so batched updates cost one rebuild per batch rather than one per impression.
#[derive(Debug, Default)]
pub struct ThompsonPolicy {
    cached_for: Vec<ArmStats>,
    cached: Vec<Beta<f64>>,
}

impl BanditPolicy for ThompsonPolicy {
    fn name(&self) -> &'static str {
        "thompson"
    }

    fn choose(&mut self, arms: &[ArmStats], rng: &mut ChaCha8Rng) -> usize {
        if self.cached_for != arms {
            match posteriors(arms) {
                Ok(p) => {
                    self.cached = p;
                    self.cached_for = arms.to_vec();
                }
                // Inconsistent counts: nothing sound to sample from, so spread traffic evenly.
                Err(_) => return uniform(arms.len(), rng),
            }
        }
        draw_best(&self.cached, rng).unwrap_or(0)
    }
}

/// Every arm equally often, at random.
#[derive(Debug, Default, Clone, Copy)]
pub struct UniformSplit;

impl BanditPolicy for UniformSplit {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn choose(&mut self, arms: &[ArmStats], rng: &mut ChaCha8Rng) -> usize {
        uniform(arms.len(), rng)
    }
}

/// With probability ε a random arm, otherwise the best observed rate (untried arms first, ties at
/// random).
#[derive(Debug, Clone, Copy)]
pub struct EpsilonGreedy {
    pub epsilon: f64,
}

impl EpsilonGreedy {
    /// ε is clamped to [0, 1]; NaN counts as 0.
    pub fn new(epsilon: f64) -> Self {
        Self {
            epsilon: if epsilon.is_nan() {
                0.0
            } else {
                epsilon.clamp(0.0, 1.0)
            },
        }
    }
}

impl BanditPolicy for EpsilonGreedy {
    fn name(&self) -> &'static str {
        "epsilon_greedy"
    }

    fn choose(&mut self, arms: &[ArmStats], rng: &mut ChaCha8Rng) -> usize {
        if arms.is_empty() {
            return 0;
        }
        if rng.random_bool(self.epsilon) {
            return uniform(arms.len(), rng);
        }
        if let Some(untried) = arms.iter().position(|a| a.trials == 0) {
            return untried;
        }
        let mut best = 0;
        let mut best_rate = f64::NEG_INFINITY;
        let mut ties = 0u32;
        for (i, arm) in arms.iter().enumerate() {
            let rate = arm.rate();
            if rate > best_rate {
                (best, best_rate, ties) = (i, rate, 1);
            } else if rate == best_rate {
                // Reservoir choice among equals, so early all-zero rates do not lock onto arm 0.
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
        }
        best
    }
}

fn uniform(n: usize, rng: &mut ChaCha8Rng) -> usize {
    if n == 0 { 0 } else { rng.random_range(0..n) }
}
