//! The built-in agents, and the registry that maps each agent name in `agents/<name>.toml` to the
//! Rust type that runs it.
//!
//! Adding an agent is three steps: a module here, one `register` line below, and a definition file
//! `agents/<name>.toml` (see the README's "Adding an agent"). Nothing in `protocol` or `runtime`
//! changes. This module must never start agents itself: the daemon starts the ones config enables.
//!
//! # Layout
//!
//! - `orchestrator`: goal → sub-goals, the campaign loop on clock ticks, phases, re-plans, commands.
//! - `strategy`: plans and re-plans from outcomes. `content`: creatives and their revisions.
//! - `compliance`: reviews and the consent ledger. `optimization`: the experiment.
//! - `ledger`: deterministic step ids and idempotent decision recording, shared by all five.

pub mod compliance;
pub mod content;
pub mod ledger;
pub mod optimization;
pub mod orchestrator;
pub mod strategy;

use crate::runtime::Registry;

/// Every agent built into this binary, by name.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<orchestrator::Orchestrator>("orchestrator")
        .register::<strategy::Strategy>("strategy")
        .register::<content::Content>("content")
        .register::<compliance::Compliance>("compliance")
        .register::<optimization::Optimization>("optimization");
    registry
}
