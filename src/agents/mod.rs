//! The built-in agents, what they say to each other, the decisions they record and how their state
//! is read back, and the registry that maps each agent name in `agents/<name>.toml` to the Rust
//! type that runs it.
//!
//! Adding an agent is three steps: a module here, one line in [`registry`], and a definition file
//! `agents/<name>.toml` (see `docs/agents.md`). Nothing in `protocol` or `runtime` changes. This
//! module must never start agents itself: the daemon starts the ones config enables.
//!
//! # Layout
//!
//! - `orchestrator`: goal → sub-goals, the campaign day on clock ticks, phases, re-plans, commands.
//! - `strategy`: plans and re-plans from outcomes. `content`: creatives and their revisions.
//! - `compliance`: reviews and the consent ledger; `subjects`: the pseudonyms consents are recorded
//!   under, and erasure. `optimization`: the experiment.
//! - `messages`: the vocabulary they share with each other and the campaign layer.
//! - `decisions`: one type per decision kind. `projection`: the one reader of recorded decisions.
//! - `ledger`: deterministic step ids and idempotent recording. `playbook`: the `Playbook` trait.
//! - `approvals`: approval requests and answers, shared by the agents whose decisions wait for a
//!   person, and the book that lists them.
//! - `registry`: [`Registry`], agent types with their playbook and subscription checks.
//! - `resident`: the per-campaign state a worker keeps in memory, dropped when a campaign is over.

pub mod approvals;
pub mod compliance;
pub mod content;
pub mod decisions;
pub mod ledger;
pub mod messages;
pub mod optimization;
pub mod orchestrator;
pub mod playbook;
pub mod projection;
pub mod registry;
pub mod resident;
pub mod strategy;
pub mod subjects;

pub use registry::Registry;

use crate::domain::compliance::CompliancePlaybook;
use crate::domain::content::ContentPlaybook;
use crate::domain::optimization::OptimizationPlaybook;
use crate::domain::strategy::StrategyPlaybook;

/// Every agent built into this binary.
pub fn registry() -> Registry {
    Registry::new()
        .agent::<orchestrator::Orchestrator>()
        .agent_with_playbook::<strategy::Strategy, StrategyPlaybook>()
        .agent_with_playbook::<content::Content, ContentPlaybook>()
        .agent_with_playbook::<compliance::Compliance, CompliancePlaybook>()
        .agent_with_playbook::<optimization::Optimization, OptimizationPlaybook>()
}
