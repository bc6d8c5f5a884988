//! The built-in agents, and the registry that maps each agent name in `agents/<name>.toml` to the
//! Rust type that runs it.
//!
//! Adding an agent is three steps: a module here, one `register` line below, and a definition file
//! `agents/<name>.toml` (see the README's "Adding an agent"). Nothing in `protocol` or `runtime`
//! changes. This module must never start agents itself: the daemon starts the ones config enables.

use crate::runtime::Registry;

/// Every agent built into this binary, by name.
pub fn registry() -> Registry {
    Registry::new()
}
