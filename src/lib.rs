//! campaignd runs marketing campaigns with a team of supervised agents and records every decision
//! they make, with its reasons, in a knowledge base.
//!
//! # Layout
//!
//! - [`daemon`]: `campaignd run`: start, serve until signalled, reload, drain and flush.
//! - [`api`]: the HTTP ops API: probes, metrics, agents, decisions, traces, reload, OpenAPI.
//! - [`agents`]: the built-in agents and the registry of agent names.
//! - [`protocol`]: ids, the envelope and its MessagePack codec. Knows nothing of agents.
//! - [`runtime`]: delivery (request/response, events, commands), supervision, the `Agent` trait and
//!   registry, the clock. Knows nothing of marketing.
//! - [`kb`]: the knowledge base on sled: decisions, outcomes, queries, the group-commit writer.
//! - [`settings`]: loading and validating `config/` and `agents/`.
//! - [`domain`]: campaigns, compliance, channels, brand voice, strategy and optimization maths.
//!   Plain data and pure functions.
//! - [`logging`]: structured logs, pretty or JSON.
//! - [`market`]: where performance data comes from: observations and the built-in simulator.

pub mod agents;
pub mod api;
pub mod daemon;
pub mod domain;
pub mod kb;
pub mod logging;
pub mod market;
pub mod protocol;
pub mod runtime;
pub mod settings;
