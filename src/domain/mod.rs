//! What the agents know: campaigns and goals, compliance rules, channel limits, brand voice, content
//! generation, strategy and optimization maths.
//!
//! Plain data and pure functions only: no actors, no I/O, no clock reads (time comes in as an
//! argument), so that every rule and formula can be tested on its own and replayed exactly.

pub mod approval;
pub mod bounds;
pub mod brand;
pub mod brief;
pub mod buy;
pub mod campaign;
pub mod channel;
pub mod compliance;
pub mod content;
pub mod money;
pub mod optimization;
pub mod order;
pub mod pacing;
pub mod phase;
pub mod platform;
pub mod playbook;
pub mod send_time;
pub mod strategy;
