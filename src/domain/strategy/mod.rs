//! Strategy maths: from a campaign goal and the channel priors of the playbook to a plan — the
//! funnel and its KPIs, whether the goal is feasible (and what would make it so), budget per channel
//! and per day, ICE-ranked tactics and the 70-20-10 split — and the update of the priors from
//! observed outcomes, so the next plan starts from what happened.
//!
//! Pure functions over plain data: the current time comes in as an argument, and nothing here reads
//! a file, a clock or the knowledge base.

pub mod feedback;
pub mod funnel;
pub mod learning;
pub mod plan;
pub mod playbook;
pub mod tactics;

pub use feedback::{
    Delivery, DeliveryVerdict, delivery_ratio, judged, learn_outcomes, plan_goal, predicted_return,
    retier,
};
pub use funnel::{FunnelKpis, FunnelRates, UnitEconomics, funnel};
pub use learning::{ChannelOutcome, LearnError};
pub use plan::{ChannelPlan, DayPlan, Feasibility, Infeasibility, Plan, PlanError, plan};
pub use playbook::{
    ChannelPrior, DEFAULT_STRATEGY_TOML, PlaybookError, PriorStrength, StrategyPlaybook,
};
pub use tactics::{Maturity, RankedTactic, Tactic, TierSplit, ice_score, rank_tactics};
