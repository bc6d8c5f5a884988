//! campaignd runs marketing campaigns with a team of supervised agents and records every decision
//! they make, with its reasons, in a knowledge base.
//!
//! # Layout
//!
//! Layers depend one way, downward; `tests/it/layers.rs` fails when an import runs back up.
//!
//! 1. [`protocol`] (ids, the envelope and its MessagePack codec; knows nothing of agents) and
//!    [`domain`] (campaigns, compliance, channels, brand voice, strategy and optimization maths:
//!    plain data and pure functions) at the bottom.
//! 2. Beside them: [`runtime`] (delivery, supervision, the `Agent` trait and registry, the clock;
//!    knows nothing of marketing) and [`kb`] (the knowledge base on sled). [`market`] is data only:
//!    observations, their validation and the built-in simulator, on `domain` alone.
//!    [`logging`]: structured logs, pretty or JSON.
//! 3. [`settings`]: loading and validating `config/` and `agents/`.
//! 4. [`agents`]: the built-in agents, the messages they share, the typed decision records and
//!    the one projection that reads them back, the registry.
//! 5. [`campaign`]: the loop of campaign days, ingestion, the campaign board, resume.
//! 6. [`api`] (the HTTP ops API) and [`daemon`] (`campaignd run`: start, serve, reload, drain), with
//!    the command line in the binary on top.

pub mod agents;
pub mod api;
pub mod campaign;
pub mod daemon;
pub mod domain;
pub mod kb;
pub mod logging;
pub mod market;
pub mod protocol;
pub mod runtime;
pub mod settings;
