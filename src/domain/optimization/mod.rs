//! Optimization maths: how the optimization agent splits traffic between variants, judges a test,
//! spots drift, searches creative dimensions, moves budget between channels and forecasts a goal.
//!
//! One concept per file, all pure: every random choice takes a seeded generator or a recorded seed,
//! so any decision can be replayed exactly. Nothing here reads a clock, a file or the network, and
//! nothing here may panic on any input (counts of zero, empty arm lists, NaN inputs are answered
//! with an error or an empty result).
//!
//! On top of the maths sit the optimizer's rules over one campaign's [`Experiment`]: folding
//! observations, the day's buys by phase ([`buys`]), what drift is watched on ([`drift_watch`]),
//! moving budget between channels ([`rebalance`], [`handoff`]), the creative space the genetic
//! search breeds in ([`creative_pool`]) and whether a day delivered the split it was planned
//! with ([`srm`]).

pub mod allocation;
pub mod bandit;
mod best_arm;
pub mod buys;
pub mod creative_pool;
pub mod drift;
pub mod drift_watch;
pub mod experiment;
pub mod forecast;
pub mod genetic;
pub mod handoff;
pub mod playbook;
pub mod rebalance;
pub mod regret;
pub mod response;
pub mod srm;
pub mod stats;
pub mod thompson;
pub mod winner;

pub use allocation::{AllocationError, ChannelBudget, SpendBounds, allocate};
pub use bandit::{BanditPolicy, EpsilonGreedy, PolicyKind, ThompsonPolicy, UniformSplit};
pub use buys::{phase_weight, plan_buys, split_seed};
pub use creative_pool::{CreativePool, creative_pools, genetic_due, genetic_seed, retirements};
pub use drift::{Cusum, DriftCheck, DriftError, DriftRule, reopen_exploration};
pub use drift_watch::{Drift, DriftWindow, drift_windows, first_drift, window_start};
pub use experiment::{Arm, ArmState, ChannelPlans, Experiment, Observed, Progress};
pub use forecast::{
    Forecast, ForecastError, daily_points, forecast_daily, forecast_goal, prediction_band,
};
pub use genetic::{CreativeSpace, GeneticError, GeneticMix, Genome, genetic_step};
pub use handoff::{Handoff, Refund, hand_off_unfunded, refund_joined};
pub use playbook::{OptimizationPlaybook, PlaybookError as OptimizationPlaybookError};
pub use rebalance::{
    BudgetPacing, ChannelEvidence, Reallocation, ReturnPosterior, budget_seed, channel_evidence,
    is_move, moved, rebalance,
};
pub use regret::{RegretRun, run_policy};
pub use response::{CurveError, ResponseCurve, Shape};
pub use srm::{CellRatio, SRM_ALPHA, SampleRatio, SplitCell, day_ratios, sample_ratio};
pub use stats::{
    StatsError, ZTest, credible_interval, prob_b_beats_a, sample_size_per_arm,
    two_proportion_z_test,
};
pub use thompson::{
    ArmStats, SplitDecision, SplitMethod, ThompsonError, decision_seed, monte_carlo_split,
    traffic_split,
};
pub use winner::{Winner, winner};
