//! Hand-off of unfunded channels: a channel whose every variant was blocked by compliance (or
//! waits for a person) would keep its budget unspent (and the allocation could even move
//! everything there), so its daily budget goes to the channels that have variants, in proportion
//! to their planned budgets. Once variants join such a channel (a person approved them), it takes
//! its planned budget back ([`refund_joined`]).

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

/// Channels that had no budget and now have variants, given their planned budget back.
#[derive(Clone, Debug, PartialEq)]
pub struct Refund {
    pub refunded: Vec<Channel>,
    /// Money per day taken from the other channels, in proportion to what they have.
    pub moved: f64,
    /// The new daily budget of every channel; the day's total is unchanged.
    pub daily: BTreeMap<Channel, f64>,
}

/// `None` when no channel planned with a budget is at 0 with variants, or when the others have
/// nothing to give. The refund is at most what the others have.
pub fn refund_joined(exp: &Experiment) -> Option<Refund> {
    let refunded: Vec<Channel> = exp
        .planned
        .iter()
        .filter(|(c, planned)| {
            **planned > 0.0
                && exp.daily.get(c).copied().unwrap_or(0.0) <= 0.0
                && !exp.arms_of(**c).is_empty()
        })
        .map(|(c, _)| *c)
        .collect();
    let base: f64 = exp
        .daily
        .iter()
        .filter(|(c, _)| !refunded.contains(c))
        .map(|(_, s)| *s)
        .sum();
    let wanted: f64 = refunded.iter().filter_map(|c| exp.planned.get(c)).sum();
    if refunded.is_empty() || base <= 0.0 {
        return None;
    }
    let moved = wanted.min(base);
    let scale = moved / wanted;
    let mut daily = BTreeMap::new();
    for (&channel, &spend) in &exp.daily {
        daily.insert(channel, spend - moved * spend / base);
    }
    for channel in &refunded {
        let planned = exp.planned.get(channel).copied().unwrap_or(0.0);
        daily.insert(*channel, planned * scale);
    }
    Some(Refund {
        refunded,
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
    fn a_channel_given_variants_again_takes_its_planned_budget_back() {
        let mut exp = Experiment::new(test_goal(&["push", "display", "social"]));
        exp.planned = BTreeMap::from([
            (Channel::Push, 30_000.0),
            (Channel::Display, 10_000.0),
            (Channel::Social, 30_000.0),
        ]);
        exp.daily = BTreeMap::from([
            (Channel::Push, 0.0),
            (Channel::Display, 17_500.0),
            (Channel::Social, 52_500.0),
        ]);
        exp.set_arms(&[arm(Channel::Display, "d1"), arm(Channel::Social, "s1")]);
        assert!(refund_joined(&exp).is_none(), "push has no variant yet");
        exp.set_arms(&[arm(Channel::Push, "p1")]);
        let refund = refund_joined(&exp).expect("push has one now");
        assert_eq!(refund.refunded, vec![Channel::Push]);
        let get = |c| refund.daily.get(&c).copied().unwrap_or(f64::NAN);
        assert!((get(Channel::Push) - 30_000.0).abs() < 1e-6);
        assert!((get(Channel::Display) - 10_000.0).abs() < 1e-6);
        assert!((get(Channel::Social) - 30_000.0).abs() < 1e-6);
        let total: f64 = refund.daily.values().sum();
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
