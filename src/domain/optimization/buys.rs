//! The day's buys: each channel's daily budget split between its variants by their traffic
//! shares, leaned on more or less according to the campaign's phase.
//!
//! Explore (and exploration forced after drift) mixes the shares half and half with an even split,
//! optimize follows them with a tenth of an even split mixed in, stabilize squares them to sharpen
//! toward the leader. A variant never split yet counts with an even share.
//!
//! Every live variant keeps a traffic floor (the playbook's `traffic_floor`, 1 %): stabilize would
//! otherwise starve a variant whose posterior is still wide, and a variant without traffic can
//! never show that it improved or that the leader fell. With many variants the floor shrinks to
//! half an even share, so the floors never take more than half the channel.

use super::experiment::Experiment;
use crate::domain::buy::Buy;
use crate::domain::campaign::Channel;
use crate::domain::optimization::thompson::decision_seed;
use crate::domain::phase::Phase;

/// The weight of a variant with traffic share `share` among `arms` variants, before normalising.
pub fn phase_weight(phase: Phase, exploring: bool, share: f64, arms: usize) -> f64 {
    let even = 1.0 / arms as f64;
    match (phase, exploring) {
        (_, true) | (Phase::Explore, _) => 0.5 * share + 0.5 * even,
        (Phase::Optimize, _) => 0.9 * share + 0.1 * even,
        (Phase::Stabilize, _) => share * share,
    }
}

/// The buys for `day` in `phase`: per budgeted channel in channel order, per started variant in
/// variant id order, each variant with at least `floor` of its channel's spend (at most half an
/// even share). Channels without variants or budget buy nothing.
pub fn plan_buys(exp: &Experiment, day: u32, phase: Phase, floor: f64) -> Vec<Buy> {
    let exploring = exp.exploring(day);
    let mut buys = Vec::new();
    for (&channel, &spend) in &exp.daily {
        let arms = exp.arms_of(channel);
        if arms.is_empty() || spend <= 0.0 {
            continue;
        }
        let even = 1.0 / arms.len() as f64;
        // Stabilize concentrates only a channel that has a significant winner.
        let phase = match phase {
            Phase::Stabilize if !exp.winners.contains_key(&channel) => Phase::Optimize,
            other => other,
        };
        let weights: Vec<f64> = arms
            .iter()
            .map(|(id, _)| exp.shares.get(id).copied().unwrap_or(even))
            .map(|s| phase_weight(phase, exploring, s, arms.len()))
            .collect();
        let total: f64 = weights.iter().sum();
        let floor = floor.clamp(0.0, 0.5 * even);
        for ((id, _), w) in arms.iter().zip(weights) {
            let share = if total > 0.0 { w / total } else { even };
            let share = floor + (1.0 - floor * arms.len() as f64) * share;
            let Some(arm) = exp.arms.get(id).and_then(|s| s.arm.as_ref()) else {
                continue;
            };
            buys.push(Buy {
                channel,
                segment: arm.segment.clone(),
                variant: id.clone(),
                spend: spend * share,
            });
        }
    }
    buys
}

/// The seed of a channel's traffic split on `day`, so a recorded split can be replayed.
pub fn split_seed(campaign: &str, channel: Channel, day: u32) -> u64 {
    decision_seed(&format!("{campaign}/{channel}"), u64::from(day))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::campaign::test_goal;
    use crate::domain::optimization::experiment::tests::arm;

    fn experiment() -> Experiment {
        let mut exp = Experiment::new(test_goal(&["sms", "push"]));
        exp.set_arms(&[
            arm(Channel::Sms, "a"),
            arm(Channel::Sms, "b"),
            arm(Channel::Push, "p"),
        ]);
        exp.daily = BTreeMap::from([(Channel::Sms, 100.0), (Channel::Push, 40.0)]);
        exp.shares = BTreeMap::from([("a".to_owned(), 0.8), ("b".to_owned(), 0.2)]);
        // Stabilize concentrates only a channel with a declared winner.
        exp.winners = BTreeMap::from([
            (Channel::Sms, "a".to_owned()),
            (Channel::Push, "p".to_owned()),
        ]);
        exp
    }

    fn spend(buys: &[Buy], variant: &str) -> f64 {
        buys.iter()
            .find(|b| b.variant == variant)
            .map_or(f64::NAN, |b| b.spend)
    }

    #[test]
    fn each_phase_leans_on_the_shares_by_its_own_amount() {
        let exp = experiment();
        // Explore: 0.5·0.8 + 0.25 = 0.65 and 0.5·0.2 + 0.25 = 0.35 (sum 1).
        let explore = plan_buys(&exp, 0, Phase::Explore, 0.0);
        assert!((spend(&explore, "a") - 65.0).abs() < 1e-9);
        assert!((spend(&explore, "b") - 35.0).abs() < 1e-9);
        // Optimize: 0.72 + 0.05 = 0.77 and 0.18 + 0.05 = 0.23.
        let optimize = plan_buys(&exp, 0, Phase::Optimize, 0.0);
        assert!((spend(&optimize, "a") - 77.0).abs() < 1e-9);
        // Stabilize: 0.64 and 0.04, normalised: 0.64 / 0.68.
        let stabilize = plan_buys(&exp, 0, Phase::Stabilize, 0.0);
        assert!((spend(&stabilize, "a") - 100.0 * 0.64 / 0.68).abs() < 1e-9);
        assert!((spend(&stabilize, "b") - 100.0 * 0.04 / 0.68).abs() < 1e-9);
        // A lone variant takes its channel's whole budget whatever its share.
        assert!((spend(&stabilize, "p") - 40.0).abs() < 1e-9);
    }

    #[test]
    fn forced_exploration_overrides_the_phase_until_its_last_day() {
        let mut exp = experiment();
        exp.explore_until = Some(5);
        assert!((spend(&plan_buys(&exp, 5, Phase::Stabilize, 0.0), "a") - 65.0).abs() < 1e-9);
        assert!(
            (spend(&plan_buys(&exp, 6, Phase::Stabilize, 0.0), "a") - 100.0 * 0.64 / 0.68).abs()
                < 1e-9
        );
    }

    #[test]
    fn buys_come_in_channel_then_variant_order_and_skip_what_cannot_be_bought() {
        let mut exp = experiment();
        exp.daily.insert(Channel::Email, 30.0);
        exp.daily.insert(Channel::Push, 0.0);
        exp.shares.clear();
        let buys = plan_buys(&exp, 0, Phase::Optimize, 0.0);
        let order: Vec<(&str, f64)> = buys.iter().map(|b| (b.variant.as_str(), b.spend)).collect();
        assert_eq!(
            order,
            vec![("a", 50.0), ("b", 50.0)],
            "email has no variant, push no budget"
        );
        assert_eq!(buys[0].segment, "students");
    }

    #[test]
    fn stabilize_with_zero_shares_falls_back_to_an_even_split() {
        let mut exp = experiment();
        exp.shares = BTreeMap::from([("a".to_owned(), 0.0), ("b".to_owned(), 0.0)]);
        let buys = plan_buys(&exp, 0, Phase::Stabilize, 0.0);
        assert_eq!(spend(&buys, "a"), 50.0);
        assert_eq!(
            phase_weight(Phase::Optimize, false, 0.5, 4),
            0.9 * 0.5 + 0.1 * 0.25
        );
    }

    #[test]
    fn stabilize_without_a_winner_weighs_the_channel_as_optimize_does() {
        let mut exp = experiment();
        exp.winners.remove(&Channel::Sms);
        let undecided = plan_buys(&exp, 0, Phase::Stabilize, 0.0);
        let optimize = plan_buys(&exp, 0, Phase::Optimize, 0.0);
        assert_eq!(spend(&undecided, "a"), spend(&optimize, "a"));
        assert!((spend(&undecided, "a") - 77.0).abs() < 1e-9);
        // Reopening exploration forgets the winners.
        let mut reopened = experiment();
        reopened.reopen(0.1);
        assert!(reopened.winners.is_empty());
    }

    #[test]
    fn every_live_variant_keeps_its_traffic_floor() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        let ids: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
        let arms: Vec<_> = ids.iter().map(|id| arm(Channel::Sms, id)).collect();
        exp.set_arms(&arms);
        exp.daily = BTreeMap::from([(Channel::Sms, 100.0)]);
        exp.shares = ids
            .iter()
            .map(|id| (id.clone(), if id == "v0" { 0.991 } else { 0.001 }))
            .collect();
        exp.winners.insert(Channel::Sms, "v0".to_owned());
        let buys = plan_buys(&exp, 0, Phase::Stabilize, 0.01);
        for buy in &buys {
            assert!(buy.spend >= 1.0 - 1e-9, "{buy:?}");
        }
        assert!((buys.iter().map(|b| b.spend).sum::<f64>() - 100.0).abs() < 1e-9);
        assert!(spend(&buys, "v0") > 90.0);
        // Two hundred variants: the floor is half an even share, 0.25 %, not 1 %.
        let many: Vec<String> = (0..200).map(|i| format!("w{i:03}")).collect();
        let mut wide = Experiment::new(test_goal(&["sms"]));
        wide.set_arms(
            &many
                .iter()
                .map(|id| arm(Channel::Sms, id))
                .collect::<Vec<_>>(),
        );
        wide.daily = BTreeMap::from([(Channel::Sms, 100.0)]);
        wide.shares = BTreeMap::from([("w000".to_owned(), 1.0)]);
        wide.winners.insert(Channel::Sms, "w000".to_owned());
        let buys = plan_buys(&wide, 0, Phase::Stabilize, 0.01);
        let least = buys.iter().map(|b| b.spend).fold(f64::INFINITY, f64::min);
        assert!((0.25..0.26).contains(&least), "{least}");
    }

    #[test]
    fn split_seeds_differ_by_channel_and_day() {
        let seed = split_seed("spring", Channel::Sms, 3);
        assert_eq!(seed, decision_seed("spring/sms", 3));
        assert_ne!(seed, split_seed("spring", Channel::Push, 3));
        assert_ne!(seed, split_seed("spring", Channel::Sms, 4));
    }
}
