//! The consent ledger: per (subject, channel), the one consent record reviews go by, and the merge
//! that keeps it — the same for a record arriving live and for records read back after a restart,
//! in whatever order they come.
//!
//! A withdrawal wins over any grant that is not newer than it: a stale grant replayed after a
//! withdrawal loses, a fresh grant after it (the subject opted in again) wins. Otherwise the newer
//! record wins: a withdrawal by its withdrawal time, a grant by its grant and then its
//! re-confirmation time. Records equal in all of these are ordered by their remaining fields, so
//! the ledger never depends on the order records are merged in.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::consent::ConsentRecord;
use super::message::MessageChannel;
use crate::domain::campaign::CampaignGoal;

/// The audience subject a campaign segment's consent is recorded under: `<campaign>/<segment>`.
pub fn segment_subject(goal: &CampaignGoal, segment: &str) -> String {
    format!("{}/{segment}", goal.id)
}

/// (subject, channel) → the record in force.
pub type ConsentLedger = BTreeMap<(String, MessageChannel), ConsentRecord>;

/// What decides between two records of the same subject and channel, compared in order: the time
/// of the record's event, then withdrawal over grant at the same time, then a grant's
/// re-confirmation.
fn precedence(record: &ConsentRecord) -> (Option<DateTime<Utc>>, bool, Option<DateTime<Utc>>) {
    match record.withdrawn_at {
        Some(withdrawn) => (Some(withdrawn), true, None),
        None => (record.granted_at, false, record.last_reconfirmed_at),
    }
}

/// Whether `new` replaces `old` (a record of the same subject and channel): a newer event, or a
/// correction of the same one (the same times, recorded later), does; an older event does not.
pub fn supersedes(new: &ConsentRecord, old: &ConsentRecord) -> bool {
    precedence(new).cmp(&precedence(old)) != Ordering::Less
}

/// Merges `record` into `ledger`; `true` when it is now the record in force for its subject and
/// channel (a replay of the record in force changes nothing and answers `false`).
pub fn merge_consent(ledger: &mut ConsentLedger, record: ConsentRecord) -> bool {
    let key = (record.subject.clone(), record.channel);
    match ledger.get(&key) {
        Some(old) if *old == record || !supersedes(&record, old) => false,
        _ => {
            ledger.insert(key, record);
            true
        }
    }
}

/// The ledger of a sequence of records, as a restart rebuilds it.
pub fn ledger_of(records: impl IntoIterator<Item = ConsentRecord>) -> ConsentLedger {
    let mut ledger = ConsentLedger::new();
    for record in records {
        merge_consent(&mut ledger, record);
    }
    ledger
}

/// The record that covers `subject` on `channel`: its own, or else one of a sibling channel in a
/// group with it (a consent to text messages covers SMS, LMS and MMS alike), the first found going
/// through `groups` and each group's channels in order.
pub fn consent_for<'a>(
    ledger: &'a ConsentLedger,
    subject: &str,
    channel: MessageChannel,
    groups: &[Vec<MessageChannel>],
) -> Option<&'a ConsentRecord> {
    let key = |c: MessageChannel| (subject.to_owned(), c);
    ledger.get(&key(channel)).or_else(|| {
        groups
            .iter()
            .filter(|g| g.contains(&channel))
            .flat_map(|g| g.iter())
            .find_map(|c| ledger.get(&key(*c)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32) -> Option<DateTime<Utc>> {
        Some(format!("2026-03-{day:02}T09:00:00Z").parse().unwrap())
    }

    fn grant(day: u32) -> ConsentRecord {
        ConsentRecord {
            granted_at: at(day),
            source: Some("web_form".to_owned()),
            ..ConsentRecord::new("acme/students", MessageChannel::Sms, "marketing")
        }
    }

    fn withdrawal(granted: u32, withdrawn: u32) -> ConsentRecord {
        ConsentRecord {
            withdrawn_at: at(withdrawn),
            ..grant(granted)
        }
    }

    fn in_force(ledger: &ConsentLedger) -> &ConsentRecord {
        &ledger[&("acme/students".to_owned(), MessageChannel::Sms)]
    }

    #[test]
    fn a_stale_grant_replayed_after_a_withdrawal_loses() {
        let mut ledger = ledger_of([grant(1), withdrawal(1, 10)]);
        assert!(!merge_consent(&mut ledger, grant(1)), "the replayed grant");
        assert!(
            !merge_consent(&mut ledger, grant(5)),
            "granted before the withdrawal"
        );
        assert!(
            !merge_consent(&mut ledger, grant(10)),
            "granted at the same instant"
        );
        let untimed = ConsentRecord {
            granted_at: None,
            ..grant(1)
        };
        assert!(
            !merge_consent(&mut ledger, untimed),
            "no grant time is no newer"
        );
        assert_eq!(in_force(&ledger).withdrawn_at, at(10));
    }

    #[test]
    fn a_grant_after_the_withdrawal_wins_and_a_stale_withdrawal_then_loses() {
        let mut ledger = ledger_of([withdrawal(1, 10)]);
        assert!(merge_consent(&mut ledger, grant(12)));
        assert_eq!(in_force(&ledger), &grant(12));
        assert!(
            !merge_consent(&mut ledger, withdrawal(1, 10)),
            "the old withdrawal replayed"
        );
        assert!(
            merge_consent(&mut ledger, withdrawal(12, 20)),
            "a new withdrawal"
        );
        assert_eq!(in_force(&ledger).withdrawn_at, at(20));
    }

    #[test]
    fn a_re_confirmation_replaces_the_grant_it_confirms() {
        let confirmed = ConsentRecord {
            last_reconfirmed_at: at(20),
            ..grant(1)
        };
        let ledger = ledger_of([confirmed.clone(), grant(1)]);
        assert_eq!(in_force(&ledger), &confirmed);
        // But it does not revive a withdrawn consent: its grant is older than the withdrawal.
        let ledger = ledger_of([withdrawal(1, 10), confirmed]);
        assert_eq!(in_force(&ledger).withdrawn_at, at(10));
    }

    /// Every permutation of `items` (Heap's algorithm).
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        fn go<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
            if k <= 1 {
                out.push(items.clone());
                return;
            }
            for i in 0..k {
                go(k - 1, items, out);
                let j = if k.is_multiple_of(2) { i } else { 0 };
                items.swap(j, k - 1);
            }
        }
        let mut out = Vec::new();
        go(items.len(), &mut items.to_vec(), &mut out);
        out
    }

    #[test]
    fn the_order_events_of_different_times_are_merged_in_does_not_matter() {
        let email = ConsentRecord {
            channel: MessageChannel::Email,
            ..grant(3)
        };
        let records = vec![
            grant(1),
            withdrawal(1, 10),
            grant(12),
            withdrawal(12, 9),
            email,
        ];
        let orders = permutations(&records);
        assert_eq!(orders.len(), 120);
        let first = ledger_of(records.clone());
        for order in orders {
            assert_eq!(ledger_of(order), first);
        }
        // The re-grant of day 12 is in force, and the email consent stands beside it.
        assert_eq!(in_force(&first).granted_at, at(12));
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn a_correction_of_the_same_event_recorded_later_replaces_it() {
        let night = ConsentRecord {
            night_consent: true,
            ..grant(12)
        };
        let corrected = ledger_of([night.clone(), grant(12)]);
        assert!(!in_force(&corrected).night_consent, "the correction stands");
        let corrected = ledger_of([grant(12), night]);
        assert!(in_force(&corrected).night_consent, "the correction stands");
    }

    #[test]
    fn a_segments_subject_is_named_after_its_campaign() {
        let goal = crate::domain::campaign::test_goal(&["sms"]);
        assert_eq!(segment_subject(&goal, "students"), "kr_students/students");
    }

    #[test]
    fn a_consent_covers_its_sibling_channels_in_group_order() {
        let groups = vec![vec![
            MessageChannel::Sms,
            MessageChannel::Lms,
            MessageChannel::Mms,
        ]];
        let mms = ConsentRecord {
            channel: MessageChannel::Mms,
            ..grant(2)
        };
        let lms = ConsentRecord {
            channel: MessageChannel::Lms,
            ..grant(3)
        };
        let ledger = ledger_of([mms.clone(), lms.clone()]);
        let find = |c| consent_for(&ledger, "acme/students", c, &groups);
        assert_eq!(
            find(MessageChannel::Lms),
            Some(&lms),
            "its own record first"
        );
        assert_eq!(find(MessageChannel::Mms), Some(&mms));
        assert_eq!(
            find(MessageChannel::Sms),
            Some(&lms),
            "LMS comes before MMS in the group"
        );
        assert_eq!(find(MessageChannel::Push), None, "push is in no group");
        assert_eq!(
            consent_for(&ledger, "acme/students", MessageChannel::Sms, &[]),
            None
        );
        assert_eq!(
            consent_for(&ledger, "acme/other", MessageChannel::Lms, &groups),
            None
        );
    }
}
