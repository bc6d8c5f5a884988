//! What runs campaigns: the loop of campaign days on the clock, the one ingestion path for
//! performance data, the campaign board the API reads, resuming after a restart, the simulated
//! clock's persistence, the built-in simulator's market and audience, and the notifications that
//! tell people of the approval requests waiting for them.
//!
//! This layer sits above the agents: it asks the orchestrator for each day and hands recorded
//! observations to the optimizer, and it reads recorded decisions only through the agents'
//! projection. It never decides anything about a campaign itself.
//!
//! # Layout
//!
//! - `day_loop`: [`CampaignLoop`], one day of every campaign per step, and [`spawn`] on the clock.
//! - `options`: [`LoopOptions`]. `ingest`: validate, record, link and announce observations;
//!   `known`: what ingestion keeps of a campaign's decisions between the loop's batches.
//! - `board`: [`CampaignBoard`], the latest report of every campaign. `resume`: where a campaign
//!   picks up after a restart. `clock`: the simulated clock's persistence. `sim_market`: the
//!   simulator's market and audience for a campaign. `what_if`: one campaign run start to
//!   deadline on a known market, against an oracle and a plan that never learns.
//! - `notifications`: approval requests, escalations and expiries sent to the `[webhook]`.
//!   `signed`: the signed JSON POST both webhooks send. `wake`: a held day run again at once when an approval request is answered or expires.
//! - `outbox`: every order (creatives, budgets, a day's buys) durable before it leaves, its
//!   delivery worker, retries and dead letters; `orders`: a day's tick written as orders. `connectors`: where orders go, one file each.

pub mod board;
mod clock;
pub mod connectors;
pub mod day_loop;
pub mod ingest;
pub mod known;
pub mod notifications;
pub mod options;
pub mod orders;
pub mod outbox;
pub mod resume;
pub mod signed;
mod sim_market;
pub mod wake;
pub mod what_if;

pub use board::{CampaignBoard, CampaignState, CampaignStatus, ChannelAllocation};
pub use clock::saved_simulated_time;
pub use day_loop::{CampaignLoop, DayReport, RunningLoop, spawn};
pub use options::LoopOptions;
pub use sim_market::priors_from;
pub use wake::Wake;
pub use what_if::{WhatIf, WhatIfError, run_what_if, simulate};
