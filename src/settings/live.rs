//! The settings in force in a running daemon: one shared handle that a successful reload swaps
//! whole, so every reader (the API, the campaign loop, the agents) sees either the old settings or
//! the new ones, never a mix. Readers take a snapshot per use and must not hold it across a reload
//! boundary they care about.

use std::sync::{Arc, PoisonError, RwLock};

use super::Settings;

/// A cheap-to-clone handle on the settings in force.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    current: Arc<RwLock<Arc<Settings>>>,
}

impl LiveSettings {
    pub fn new(settings: Arc<Settings>) -> Self {
        LiveSettings {
            current: Arc::new(RwLock::new(settings)),
        }
    }

    /// The settings in force right now.
    pub fn current(&self) -> Arc<Settings> {
        // A poisoned lock still holds a whole `Arc`: the swap below is a single assignment.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `settings` in force; returns the ones it replaces.
    pub fn replace(&self, settings: Arc<Settings>) -> Arc<Settings> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, settings)
    }
}
