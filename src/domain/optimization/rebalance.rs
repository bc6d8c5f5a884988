//! Budget between channels after each day: the plan's response curves, scaled by each channel's
//! observed return against the curve's prediction, allocated for equal marginal return.
//!
//! The observed return is shrunk toward the plan until there is evidence (a weight of
//! predicted / (predicted + 20), so 20 predicted conversions count half), and clamped to 1/20 … 20
//! times the plan. Only channels with variants to buy take part: money moved to a channel without
//! any would never be spent. Budget moves only when more than 5 % of the day's total would change
//! hands, so the split does not churn on noise.

use std::collections::BTreeMap;

use super::allocation::{ChannelBudget, ResponseCurve, allocate};
use super::experiment::Experiment;
use crate::domain::campaign::Channel;

/// Predicted conversions at which the observed return counts as much as the plan.
pub const EVIDENCE_CONVERSIONS: f64 = 20.0;
/// The share of the day's budget that must change hands for a move to be made.
pub const MOVE_THRESHOLD: f64 = 0.05;

/// The factor a channel's curve is scaled by: observed / predicted conversions, shrunk toward 1
/// with weight predicted / (predicted + 20), clamped to 0.05 … 20. 1 without a prediction.
pub fn shrunk_ratio(conversions: u64, predicted: f64) -> f64 {
    let weight = predicted / (predicted + EVIDENCE_CONVERSIONS);
    let ratio = if predicted > 0.0 {
        (1.0 - weight) + weight * (conversions as f64 / predicted)
    } else {
        1.0
    };
    ratio.clamp(0.05, 20.0)
}

/// Money that changes hands between `before` and `after`: half the summed absolute change over
/// the channels of `after` (a channel missing from `before` had 0).
pub fn moved(before: &BTreeMap<Channel, f64>, after: &BTreeMap<Channel, f64>) -> f64 {
    after
        .iter()
        .map(|(c, s)| (s - before.get(c).copied().unwrap_or(0.0)).abs())
        .sum::<f64>()
        / 2.0
}

/// Whether moving `moved` of a daily `total` is worth a decision.
pub fn is_move(moved: f64, total: f64) -> bool {
    moved > MOVE_THRESHOLD * total
}

/// What one funded channel delivered against its curve, and the curve it is allocated with.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelEvidence {
    pub channel: Channel,
    pub conversions: u64,
    /// What the plan's curve predicts for the spend so far, over the days learned from.
    pub predicted: f64,
    /// [`shrunk_ratio`] of the two.
    pub ratio: f64,
    /// The curve scaled by the ratio (a × ratio, same b).
    pub budget: ChannelBudget,
}

/// The evidence of `channel` in `exp`. A channel without a curve in the plan is taken as
/// a = 1, b = 1.
pub fn channel_evidence(exp: &Experiment, channel: Channel) -> ChannelEvidence {
    let curve = exp
        .curves
        .get(&channel)
        .copied()
        .unwrap_or(ResponseCurve { a: 1.0, b: 1.0 });
    let (spent, conversions) = exp
        .spend_by_channel
        .get(&channel)
        .map_or((0.0, 0), |(spent, conversions)| {
            (spent.as_f64(), *conversions)
        });
    let days = f64::from(exp.seen_days.len().max(1) as u32);
    let predicted = curve.value(spent / days) * days;
    let ratio = shrunk_ratio(conversions, predicted);
    ChannelEvidence {
        channel,
        conversions,
        predicted,
        ratio,
        budget: ChannelBudget::new(curve.a * ratio, curve.b),
    }
}

/// A budget move worth making.
#[derive(Clone, Debug, PartialEq)]
pub struct Reallocation {
    /// The funded channels, in channel order.
    pub evidence: Vec<ChannelEvidence>,
    /// The new daily budget of every planned channel (0 for the unfunded ones).
    pub daily: BTreeMap<Channel, f64>,
    pub moved: f64,
    /// The day's total, unchanged by the move.
    pub total: f64,
}

/// The new split of `exp`'s daily budget over its planned channels, or `None` when fewer than two
/// channels have variants, there is no budget, the allocation fails, or too little would move.
pub fn rebalance(exp: &Experiment) -> Option<Reallocation> {
    let channels: Vec<Channel> = exp.daily.keys().copied().collect();
    let funded: Vec<Channel> = channels
        .iter()
        .copied()
        .filter(|c| !exp.arms_of(*c).is_empty())
        .collect();
    let total: f64 = exp.daily.values().sum();
    if !(total > 0.0 && funded.len() > 1) {
        return None;
    }
    let evidence: Vec<ChannelEvidence> = funded.iter().map(|c| channel_evidence(exp, *c)).collect();
    let budgets: Vec<ChannelBudget> = evidence.iter().map(|e| e.budget).collect();
    let spend = allocate(&budgets, total).ok()?;
    let mut daily: BTreeMap<Channel, f64> = channels.iter().map(|c| (*c, 0.0)).collect();
    daily.extend(funded.iter().copied().zip(spend));
    let moved = moved(&exp.daily, &daily);
    is_move(moved, total).then_some(Reallocation {
        evidence,
        daily,
        moved,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bounds::Money;
    use crate::domain::campaign::test_goal;
    use crate::domain::optimization::experiment::Observed;
    use crate::domain::optimization::experiment::tests::arm;

    #[test]
    fn the_ratio_trusts_the_evidence_as_predictions_grow() {
        // 20 predicted: weight 1/2, so 40 observed (2×) counts as 1.5×.
        assert!((shrunk_ratio(40, 20.0) - 1.5).abs() < 1e-12);
        // 180 predicted: weight 0.9; 90 observed (0.5×) counts as 0.1 + 0.45 = 0.55×.
        assert!((shrunk_ratio(90, 180.0) - 0.55).abs() < 1e-12);
        assert_eq!(
            shrunk_ratio(7, 0.0),
            1.0,
            "nothing predicted, nothing learned"
        );
        assert_eq!(shrunk_ratio(0, 1e9), 0.05, "clamped below");
        assert_eq!(shrunk_ratio(1_000_000, 1000.0), 20.0, "clamped above");
    }

    #[test]
    fn moved_is_half_the_change_and_must_exceed_five_percent() {
        let before = BTreeMap::from([(Channel::Sms, 60.0), (Channel::Push, 40.0)]);
        let after = BTreeMap::from([(Channel::Sms, 50.0), (Channel::Push, 50.0)]);
        assert_eq!(moved(&before, &after), 10.0);
        assert!(is_move(10.0, 100.0));
        assert!(!is_move(5.0, 100.0), "exactly 5 % stays");
        let new_channel = BTreeMap::from([(Channel::Email, 30.0)]);
        assert_eq!(moved(&before, &new_channel), 15.0);
    }

    fn experiment() -> Experiment {
        let mut exp = Experiment::new(test_goal(&["sms", "push", "email"]));
        exp.set_arms(&[arm(Channel::Sms, "s"), arm(Channel::Push, "p")]);
        let curve = ResponseCurve { a: 10.0, b: 100.0 };
        exp.curves = BTreeMap::from([(Channel::Sms, curve), (Channel::Push, curve)]);
        exp.daily = BTreeMap::from([
            (Channel::Sms, 100.0),
            (Channel::Push, 100.0),
            (Channel::Email, 0.0),
        ]);
        exp.seen_days.extend([0, 1]);
        for (variant, channel, conversions) in [("s", Channel::Sms, 40), ("p", Channel::Push, 10)] {
            exp.fold(
                0,
                &Observed {
                    variant,
                    channel,
                    conversions,
                    impressions: 1000,
                    spend: 200.0,
                },
            );
        }
        exp
    }

    #[test]
    fn evidence_scales_the_curve_by_the_shrunk_ratio() {
        let exp = experiment();
        let sms = channel_evidence(&exp, Channel::Sms);
        // 200 over 2 days: 10·ln 2 a day, 2·10·ln 2 ≈ 13.86 predicted against 40 observed.
        let predicted = 20.0 * 2f64.ln();
        assert!((sms.predicted - predicted).abs() < 1e-9);
        let weight = predicted / (predicted + 20.0);
        assert!((sms.ratio - ((1.0 - weight) + weight * 40.0 / predicted)).abs() < 1e-12);
        assert!((sms.budget.curve.a - 10.0 * sms.ratio).abs() < 1e-12);
        assert_eq!(sms.budget.curve.b, 100.0);
        // No curve in the plan: a = b = 1.
        let email = channel_evidence(&exp, Channel::Email);
        assert_eq!((email.predicted, email.ratio), (0.0, 1.0));
        assert_eq!(email.budget.curve, ResponseCurve { a: 1.0, b: 1.0 });
    }

    #[test]
    fn budget_moves_toward_the_channel_that_over_delivers() {
        let exp = experiment();
        let moved = rebalance(&exp).expect("sms returns far more than push");
        let channels: Vec<Channel> = moved.evidence.iter().map(|e| e.channel).collect();
        assert_eq!(
            channels,
            vec![Channel::Sms, Channel::Push],
            "email has no variant"
        );
        assert_eq!(moved.daily[&Channel::Email], 0.0);
        assert!(moved.daily[&Channel::Sms] > 150.0);
        let total: f64 = moved.daily.values().sum();
        assert!((total - 200.0).abs() < 1e-6);
        assert_eq!(moved.total, 200.0);
        assert!((moved.moved - (moved.daily[&Channel::Sms] - 100.0)).abs() < 1e-6);
        // The marginal returns are equal where both channels are funded.
        let marginal = |e: &ChannelEvidence| e.budget.curve.marginal(moved.daily[&e.channel]);
        assert!((marginal(&moved.evidence[0]) - marginal(&moved.evidence[1])).abs() < 1e-6);
    }

    #[test]
    fn nothing_moves_with_one_funded_channel_no_budget_or_a_balanced_split() {
        let mut one = experiment();
        one.arms.remove("p");
        assert_eq!(rebalance(&one), None);
        let mut broke = experiment();
        broke.daily.values_mut().for_each(|s| *s = 0.0);
        assert_eq!(rebalance(&broke), None);
        // Two identical channels with identical evidence already sit at equal marginal return.
        let mut even = experiment();
        even.spend_by_channel
            .insert(Channel::Push, (Money::of(200.0), 40));
        assert_eq!(rebalance(&even), None);
    }
}
