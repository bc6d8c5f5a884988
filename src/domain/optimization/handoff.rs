//! Hand-off of unfunded channels: a channel whose every variant was blocked by compliance would
//! keep its budget unspent (and the allocation could even move everything there), so its daily
//! budget goes to the channels that have variants, in proportion to their planned budgets.

use std::collections::BTreeMap;

use super::experiment::Experiment;
use crate::domain::campaign::Channel;

/// The daily budget of channels without any approved variant, handed to the channels that have
/// some.
#[derive(Clone, Debug, PartialEq)]
pub struct Handoff {
    pub unfunded: Vec<Channel>,
    pub funded: Vec<Channel>,
    /// Money per day taken from the unfunded channels.
    pub moved: f64,
    /// The new daily budget of every channel in the plan (0 for the unfunded ones).
    pub daily: BTreeMap<Channel, f64>,
}

/// `None` when every budgeted channel has a variant, or when none has (nothing to hand to).
pub fn hand_off_unfunded(exp: &Experiment) -> Option<Handoff> {
    let (funded, unfunded): (Vec<Channel>, Vec<Channel>) = exp
        .daily
        .iter()
        .filter(|(_, spend)| **spend > 0.0)
        .map(|(channel, _)| *channel)
        .partition(|channel| !exp.arms_of(*channel).is_empty());
    if unfunded.is_empty() || funded.is_empty() {
        return None;
    }
    let moved: f64 = unfunded.iter().filter_map(|c| exp.daily.get(c)).sum();
    let base: f64 = funded.iter().filter_map(|c| exp.daily.get(c)).sum();
    let mut daily = BTreeMap::new();
    for (&channel, &spend) in &exp.daily {
        let new = if funded.contains(&channel) {
            spend + moved * spend / base
        } else {
            0.0
        };
        daily.insert(channel, new);
    }
    Some(Handoff {
        unfunded,
        funded,
        moved,
        daily,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::test_goal;
    use crate::domain::optimization::experiment::tests::arm;

    #[test]
    fn a_channel_without_approved_variants_hands_its_budget_to_the_funded_ones() {
        let mut exp = Experiment::new(test_goal(&["push", "display", "social"]));
        exp.set_arms(&[arm(Channel::Display, "d1"), arm(Channel::Social, "s1")]);
        exp.daily = BTreeMap::from([
            (Channel::Push, 30_000.0),
            (Channel::Display, 10_000.0),
            (Channel::Social, 30_000.0),
        ]);
        let handoff = hand_off_unfunded(&exp).expect("push has no variant");
        assert_eq!(handoff.unfunded, vec![Channel::Push]);
        assert_eq!(handoff.funded, vec![Channel::Social, Channel::Display]);
        assert!((handoff.moved - 30_000.0).abs() < 1e-9);
        let get = |c| handoff.daily.get(&c).copied().unwrap_or(f64::NAN);
        assert_eq!(get(Channel::Push), 0.0);
        assert!((get(Channel::Display) - 17_500.0).abs() < 1e-6);
        assert!((get(Channel::Social) - 52_500.0).abs() < 1e-6);
        let total: f64 = handoff.daily.values().sum();
        assert!((total - 70_000.0).abs() < 1e-6, "the budget is kept whole");
    }

    #[test]
    fn nothing_is_handed_off_when_every_channel_or_no_channel_is_funded() {
        let mut exp = Experiment::new(test_goal(&["push", "display"]));
        exp.daily = BTreeMap::from([(Channel::Push, 30_000.0), (Channel::Display, 10_000.0)]);
        assert!(
            hand_off_unfunded(&exp).is_none(),
            "no channel has a variant"
        );
        exp.set_arms(&[arm(Channel::Push, "p1"), arm(Channel::Display, "d1")]);
        assert!(hand_off_unfunded(&exp).is_none(), "every channel has one");
    }

    #[test]
    fn a_channel_planned_at_zero_is_neither_funded_nor_unfunded() {
        let mut exp = Experiment::new(test_goal(&["push", "display", "email"]));
        exp.set_arms(&[arm(Channel::Display, "d1")]);
        exp.daily = BTreeMap::from([
            (Channel::Email, 0.0),
            (Channel::Push, 40.0),
            (Channel::Display, 60.0),
        ]);
        let handoff = hand_off_unfunded(&exp).unwrap();
        assert_eq!(handoff.unfunded, vec![Channel::Push]);
        assert_eq!(handoff.daily[&Channel::Email], 0.0);
        assert!((handoff.daily[&Channel::Display] - 100.0).abs() < 1e-9);
    }
}
