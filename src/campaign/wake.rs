//! Running a held campaign day again as soon as what held it may have changed: a person answered
//! one of the campaign's approval requests, or one reached its expiry. Without it a held day waits
//! for the clock's next campaign day, which on a real clock is a day away: approved buys would go
//! out a day late.
//!
//! The API and the notifier name the campaign ([`Wake::campaign`]); the campaign loop, between
//! its days, takes the names ([`Wake::woken`]) and runs the day again of each named campaign whose
//! last day was held. A campaign named while its day was not held waits for its next day as
//! usual, so nothing is ever bought twice in a day.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::protocol::CampaignId;

/// The campaigns to run again; cloning shares it.
#[derive(Clone, Default)]
pub struct Wake {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    campaigns: Mutex<BTreeSet<CampaignId>>,
    notify: Notify,
}

impl Wake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the loop to run `campaign`'s held day again.
    pub fn campaign(&self, campaign: &CampaignId) {
        self.lock().insert(campaign.clone());
        // A permit is kept when the loop is not waiting yet, so no name is missed.
        self.inner.notify.notify_one();
    }

    /// Waits until a campaign is named, and takes every name given so far.
    pub async fn woken(&self) -> BTreeSet<CampaignId> {
        loop {
            let taken = std::mem::take(&mut *self.lock());
            if !taken.is_empty() {
                return taken;
            }
            self.inner.notify.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<CampaignId>> {
        // A panic while holding it cannot leave the set half-changed.
        self.inner
            .campaigns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_given_before_the_wait_are_taken_at_once_and_only_once() {
        let wake = Wake::new();
        wake.campaign(&"a".into());
        wake.campaign(&"b".into());
        wake.campaign(&"a".into());
        let taken = wake.woken().await;
        assert_eq!(taken.len(), 2);
        let later = tokio::time::timeout(std::time::Duration::from_millis(50), wake.woken()).await;
        assert!(later.is_err(), "nothing more was named");
        let waiter = {
            let wake = wake.clone();
            tokio::spawn(async move { wake.woken().await })
        };
        wake.campaign(&"c".into());
        let taken = waiter.await.expect("the waiter");
        assert_eq!(
            taken.into_iter().collect::<Vec<_>>(),
            [CampaignId::from("c")]
        );
    }
}
