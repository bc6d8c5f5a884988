//! Optimization maths: how the optimization agent splits traffic between variants, judges a test,
//! spots drift, searches creative dimensions, moves budget between channels and forecasts a goal.
//!
//! One concept per file, all pure: every random choice takes a seeded generator or a recorded seed,
//! so any decision can be replayed exactly. Nothing here reads a clock, a file or the network, and
//! nothing here may panic on any input (counts of zero, empty arm lists, NaN inputs are answered
//! with an error or an empty result).

pub mod allocation;
pub mod bandit;
pub mod drift;
pub mod experiment;
pub mod forecast;
pub mod genetic;
pub mod playbook;
pub mod regret;
pub mod stats;
pub mod thompson;

pub use allocation::{AllocationError, ChannelBudget, ResponseCurve, allocate};
pub use bandit::{BanditPolicy, EpsilonGreedy, PolicyKind, ThompsonPolicy, UniformSplit};
pub use drift::{Cusum, DriftCheck, DriftError, DriftRule, reopen_exploration};
pub use experiment::Arm;
pub use forecast::{Forecast, ForecastError, forecast_daily, forecast_goal};
pub use genetic::{CreativeSpace, GeneticError, GeneticMix, Genome, genetic_step};
pub use playbook::{OptimizationPlaybook, PlaybookError as OptimizationPlaybookError};
pub use regret::{RegretRun, run_policy};
pub use stats::{StatsError, ZTest, prob_b_beats_a, sample_size_per_arm, two_proportion_z_test};
pub use thompson::{ArmStats, SplitDecision, ThompsonError, decision_seed, traffic_split};
