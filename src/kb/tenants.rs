//! The tenants of decisions that outcomes cited recently, so that recording an outcome does not
//! read every decision it cites back from disk to check its tenant: a campaign's outcomes cite
//! the same approvals, experiment and allocation day after day, and a decision record is several
//! times larger than the tenant it is read for. A record is never changed or removed once
//! written, so a remembered tenant stays true; the memo is bounded and starts over when full.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::record::DecisionId;
use crate::protocol::TenantId;

/// How many decisions' tenants are remembered: about 4 MiB at most, enough for the approvals of
/// a thousand running campaigns of a hundred variants.
const CAPACITY: usize = 1 << 17;

#[derive(Debug, Default)]
pub(super) struct TenantMemo(Mutex<HashMap<DecisionId, TenantId>>);

impl TenantMemo {
    pub fn get(&self, id: DecisionId) -> Option<TenantId> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Remembers the tenant of a decision read from the records tree.
    pub fn remember(&self, id: DecisionId, tenant: &TenantId) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(id, tenant.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_starts_over_when_full() {
        let memo = TenantMemo::default();
        let first = DecisionId(uuid::Uuid::now_v7());
        memo.remember(first, &TenantId::from("acme"));
        assert_eq!(memo.get(first), Some(TenantId::from("acme")));
        for _ in 1..CAPACITY {
            memo.remember(DecisionId(uuid::Uuid::now_v7()), &TenantId::from("acme"));
        }
        // Full: the next one clears the memo before it is remembered.
        let last = DecisionId(uuid::Uuid::now_v7());
        memo.remember(last, &TenantId::from("other"));
        assert_eq!(memo.get(first), None);
        assert_eq!(memo.get(last), Some(TenantId::from("other")));
    }
}
