//! Shared services the application hands to its agents: the knowledge base, a market data source,
//! anything an agent needs to reach that is not a message.
//!
//! A map from type to one shared value, so the runtime can carry them without depending on what they
//! are. It must never hold per-agent state: everything in it is shared by every agent and every
//! restart.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;

use super::error::AgentError;

/// A typed map of shared services, one value per type.
#[derive(Clone, Default)]
pub struct Services {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Services {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the service of type `T`.
    pub fn with<T: Send + Sync + 'static>(mut self, service: T) -> Self {
        self.insert(Arc::new(service));
        self
    }

    /// Adds (or replaces) a service already behind an `Arc`, so the application can keep its own
    /// handle to the same value.
    pub fn insert<T: Send + Sync + 'static>(&mut self, service: Arc<T>) {
        self.by_type.insert(TypeId::of::<T>(), service);
    }

    /// The service of type `T`, if the application provided one.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|s| Arc::clone(s).downcast::<T>().ok())
    }

    /// The service of type `T`, or an error naming the missing type; for an agent's `start`.
    pub fn require<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, AgentError> {
        self.get::<T>().ok_or_else(|| {
            AgentError::msg(format!(
                "service {} was not provided to the runtime (add it with Services::with)",
                type_name::<T>()
            ))
        })
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("count", &self.by_type.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_service_by_type() {
        let services = Services::new().with(42u32).with(String::from("kb"));
        assert_eq!(services.get::<u32>().as_deref(), Some(&42));
        assert_eq!(
            services.get::<String>().as_deref().map(String::as_str),
            Some("kb")
        );
        assert!(services.get::<u64>().is_none());
        let err = services.require::<u64>().unwrap_err().to_string();
        assert!(err.contains("u64"), "{err}");
    }
}
