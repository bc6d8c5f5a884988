//! Budget between channels after each day, learned under uncertainty and paced.
//!
//! Each funded channel returns its plan's response curve times an unknown factor m. The plan is
//! the prior, m ~ Gamma(k, k): mean 1, worth k predicted conversions. Observing c conversions
//! where the plan's curve predicted p for the money spent (Poisson counts, with p as the
//! exposure) gives the posterior Gamma(k + c, k + p), whose mean (k + c)/(k + p) shrinks the
//! observed return c/p toward the plan until there is evidence.
//!
//! The plan's split is where the prior puts the money. The plan divides the budget by maturity
//! tier (70-20-10) as well as by the curves, so its split is not one of equal marginal return on
//! the bare curves. Each curve is weighted so that the plan's split is the optimum while nothing is
//! learned, and the weight fades as the channel's evidence grows (see [`tilt_toward_the_plan`]):
//! without it the first day would move the tiers' money to whichever curve is steepest, on no
//! evidence at all; with it for ever, money would never follow the curves past the tiers.
//!
//! Each day one factor per channel is drawn from its posterior (Thompson sampling, seeded by
//! campaign and day, so the decision replays), and the day's budget is allocated for equal
//! marginal return on the weighted, drawn curves within each channel's bounds. A channel the
//! evidence is still thin on gets a wide posterior, so its draws range widely and it keeps being
//! tried. The move toward that target is then paced:
//!
//! - a channel with less than `min_evidence` predicted conversions keeps at least `floor` of the
//!   day's budget, or what it has if that is less: budget never leaves a channel on thin evidence;
//! - at most `max_move` of the day's budget changes channels in a day; a longer move is shortened
//!   along the way to its target (every channel moves the same fraction of its distance);
//! - a move of 5 % of the day's budget or less is not made, so the split does not churn on noise.
//!
//! Only channels with variants to buy take part: money moved to a channel without any would never
//! be spent.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Gamma as ExactGamma, Normal};

use super::allocation::{ChannelBudget, allocate};
use super::experiment::Experiment;
use super::response::ResponseCurve;
use super::thompson::decision_seed;
use crate::domain::campaign::Channel;

/// The share of the day's budget that must change hands for a move to be made.
pub const MOVE_THRESHOLD: f64 = 0.05;
/// The two-sided coverage of the intervals recorded with each move.
pub const INTERVAL: f64 = 0.9;

/// How the budget learns and how fast it may move: the `[playbook.budget]` table of
/// `agents/optimization.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetPacing {
    /// The most of the day's budget one day's move may hand between channels (0 < x ≤ 1).
    pub max_move: f64,
    /// The share of the day's budget a channel on thin evidence keeps (0 ≤ x < 1).
    pub floor: f64,
    /// Predicted conversions a channel needs before its budget may go below the floor.
    pub min_evidence: f64,
    /// How many predicted conversions the plan's curve weighs as (k, above 0).
    pub prior_conversions: f64,
}

impl Default for BudgetPacing {
    fn default() -> Self {
        BudgetPacing {
            max_move: 0.2,
            floor: 0.1,
            min_evidence: 20.0,
            prior_conversions: 20.0,
        }
    }
}

impl BudgetPacing {
    /// The first value out of range, as (key, what it must be, value).
    pub fn out_of_range(&self) -> Option<(&'static str, &'static str, f64)> {
        let checks: [(&'static str, &'static str, f64, bool); 4] = [
            (
                "max_move",
                "must be above 0 and at most 1",
                self.max_move,
                self.max_move > 0.0 && self.max_move <= 1.0,
            ),
            (
                "floor",
                "must be at least 0 and below 1",
                self.floor,
                (0.0..1.0).contains(&self.floor),
            ),
            (
                "min_evidence",
                "must be a finite number of at least 0",
                self.min_evidence,
                self.min_evidence.is_finite() && self.min_evidence >= 0.0,
            ),
            (
                "prior_conversions",
                "must be a finite number above 0",
                self.prior_conversions,
                self.prior_conversions.is_finite() && self.prior_conversions > 0.0,
            ),
        ];
        checks
            .into_iter()
            .find(|check| !check.3)
            .map(|(key, reason, value, _)| (key, reason, value))
    }
}

/// The posterior of a channel's return against its plan: Gamma(shape, rate) over the factor m.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReturnPosterior {
    pub shape: f64,
    pub rate: f64,
}

impl ReturnPosterior {
    /// The prior Gamma(k, k) updated with `conversions` observed against `predicted`.
    pub fn of(prior_conversions: f64, conversions: u64, predicted: f64) -> Self {
        ReturnPosterior {
            shape: prior_conversions + conversions as f64,
            rate: prior_conversions + predicted.max(0.0),
        }
    }

    pub fn mean(&self) -> f64 {
        self.shape / self.rate
    }

    /// The `p` quantile by the Wilson–Hilferty cube-root approximation: within 1 % of the exact
    /// quantile from a shape of 5 (20 with the default prior), and far cheaper than inverting the
    /// incomplete gamma function for every channel of every campaign each day. Smaller shapes are
    /// inverted exactly.
    pub fn quantile(&self, p: f64) -> f64 {
        let a = self.shape;
        if a < 5.0 {
            // Too skewed for the approximation: invert the exact distribution.
            return ExactGamma::new(a, self.rate).map_or(self.mean(), |g| g.inverse_cdf(p));
        }
        let z = Normal::standard().inverse_cdf(p);
        let cube = 1.0 - 1.0 / (9.0 * a) + z / (3.0 * a.sqrt());
        (a / self.rate * cube.max(0.0).powi(3)).max(0.0)
    }

    /// One draw; the mean if the parameters cannot make a distribution.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> f64 {
        Gamma::new(self.shape, 1.0 / self.rate).map_or(self.mean(), |g| g.sample(rng))
    }
}

/// The seed of campaign `campaign`'s budget draws on `day`.
pub fn budget_seed(campaign: &str, day: u32) -> u64 {
    decision_seed(&format!("{campaign}/budget"), u64::from(day))
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

/// What one funded channel delivered against its curve, what that says of its return, and what
/// it is allocated with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelEvidence {
    pub channel: Channel,
    pub conversions: u64,
    /// What the plan's curve predicts for the spend so far, over the days learned from: the
    /// channel's evidence.
    pub predicted: f64,
    /// The posterior mean of the channel's return against its plan (1: as planned).
    pub mean: f64,
    /// The [`INTERVAL`] credible interval of that return.
    pub low: f64,
    pub high: f64,
    /// The return drawn for today's allocation.
    pub draw: f64,
    /// The weight that makes the plan's split the optimum while nothing is learned, fading to 1
    /// as the channel's evidence grows (1 without a plan).
    pub weight: f64,
    /// The plan's curve scaled by the draw and the weight, and the channel's bounds for today (its
    /// minimum is the floor while the evidence is thin).
    pub budget: ChannelBudget,
    /// Whether the channel is under `min_evidence` and kept at its floor or above.
    pub thin: bool,
}

/// The evidence of `channel` in `exp`, with today's draw from `rng`. A channel without a curve in
/// the plan is taken as a = 1, b = 1.
pub fn channel_evidence(
    exp: &Experiment,
    channel: Channel,
    pacing: &BudgetPacing,
    rng: &mut ChaCha8Rng,
) -> ChannelEvidence {
    let curve = exp
        .curves
        .get(&channel)
        .copied()
        .unwrap_or(ResponseCurve::log(1.0, 1.0));
    let (spent, conversions) = exp
        .spend_by_channel
        .get(&channel)
        .map_or((0.0, 0), |(spent, conversions)| {
            (spent.as_f64(), *conversions)
        });
    let days = f64::from(exp.seen_days.len().max(1) as u32);
    let predicted = curve.value(spent / days) * days;
    let posterior = ReturnPosterior::of(pacing.prior_conversions, conversions, predicted);
    let draw = posterior.draw(rng);
    let bounds = exp.bounds.get(&channel).copied().unwrap_or_default();
    ChannelEvidence {
        channel,
        conversions,
        predicted,
        mean: posterior.mean(),
        low: posterior.quantile((1.0 - INTERVAL) / 2.0),
        high: posterior.quantile((1.0 + INTERVAL) / 2.0),
        draw,
        weight: 1.0,
        budget: ChannelBudget {
            curve: curve.scaled(draw),
            min: bounds.min,
            max: bounds.max,
        },
        thin: predicted < pacing.min_evidence,
    }
}

/// Weighs each channel's curve so that, with nothing learned, the plan's split is the optimum:
/// channel c's weight is (λ̄ / m_c)^(k / (k + p_c)), where m_c is its curve's marginal return at the
/// plan's spend, λ̄ their geometric mean, k the prior's weight and p_c the channel's evidence. The
/// plan's tiers are a prior over the split, and their pull fades as each channel's evidence grows:
/// with much evidence the weight goes to 1, and money follows the learned curves alone.
fn tilt_toward_the_plan(exp: &Experiment, pacing: &BudgetPacing, evidence: &mut [ChannelEvidence]) {
    let at_plan: Vec<Option<f64>> = evidence
        .iter()
        .map(|e| {
            let planned = exp.planned.get(&e.channel).copied().unwrap_or(0.0);
            let curve = exp.curves.get(&e.channel)?;
            let m = curve.marginal(planned);
            (planned > 0.0 && m.is_finite() && m > 0.0).then_some(m)
        })
        .collect();
    let logs: Vec<f64> = at_plan.iter().flatten().map(|m| m.ln()).collect();
    if logs.len() < 2 {
        return;
    }
    let mean = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
    let k = pacing.prior_conversions;
    for (e, m) in evidence.iter_mut().zip(at_plan) {
        if let Some(m) = m {
            e.weight = (mean / m).powf(k / (k + e.predicted.max(0.0)));
            e.budget.curve = e.budget.curve.scaled(e.weight);
        }
    }
}

/// A budget move worth making.
#[derive(Clone, Debug, PartialEq)]
pub struct Reallocation {
    /// The funded channels, in channel order.
    pub evidence: Vec<ChannelEvidence>,
    /// Where the drawn curves would put the money today.
    pub target: BTreeMap<Channel, f64>,
    /// The new daily budget of every planned channel (0 for the unfunded ones): the target, or the
    /// part of the way to it that `max_move` allows.
    pub daily: BTreeMap<Channel, f64>,
    pub moved: f64,
    /// Whether the move was shortened to `max_move`.
    pub capped: bool,
    /// The day's total, unchanged by the move.
    pub total: f64,
    pub seed: u64,
}

/// The new split of `exp`'s daily budget over its planned channels, or `None` when fewer than two
/// channels have variants, there is no budget, the allocation fails, or too little would move.
pub fn rebalance(exp: &Experiment, pacing: &BudgetPacing, seed: u64) -> Option<Reallocation> {
    let before = &exp.daily;
    let total: f64 = before.values().sum();
    let funded: Vec<Channel> = before
        .keys()
        .copied()
        .filter(|c| !exp.arms_of(*c).is_empty())
        .collect();
    if !(total > 0.0 && funded.len() > 1) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut evidence: Vec<ChannelEvidence> = funded
        .iter()
        .map(|c| channel_evidence(exp, *c, pacing, &mut rng))
        .collect();
    tilt_toward_the_plan(exp, pacing, &mut evidence);
    for e in evidence.iter_mut().filter(|e| e.thin) {
        let had = before.get(&e.channel).copied().unwrap_or(0.0);
        let floor = (pacing.floor * total).min(had);
        e.budget.min = e.budget.min.max(floor);
        if let Some(max) = e.budget.max {
            e.budget.min = e.budget.min.min(max);
        }
    }
    let budgets: Vec<ChannelBudget> = evidence.iter().map(|e| e.budget).collect();
    let spend = allocate(&budgets, total).ok()?;
    let mut target: BTreeMap<Channel, f64> = before.keys().map(|c| (*c, 0.0)).collect();
    target.extend(funded.iter().copied().zip(spend));
    let wanted = moved(before, &target);
    let cap = pacing.max_move * total;
    let capped = wanted > cap;
    let daily = if capped {
        let step = cap / wanted;
        target
            .iter()
            .map(|(c, t)| {
                let had = before.get(c).copied().unwrap_or(0.0);
                (*c, had + (t - had) * step)
            })
            .collect()
    } else {
        target.clone()
    };
    let moved = moved(before, &daily);
    is_move(moved, total).then_some(Reallocation {
        evidence,
        target,
        daily,
        moved,
        capped,
        total,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::bounds::Money;
    use crate::domain::campaign::test_goal;
    use crate::domain::optimization::allocation::SpendBounds;
    use crate::domain::optimization::experiment::Observed;
    use crate::domain::optimization::experiment::tests::arm;

    #[test]
    fn the_posterior_mean_shrinks_the_observed_return_toward_the_plan() {
        // k = 20 and 20 predicted: 40 observed (2×) counts as 1.5×.
        assert!((ReturnPosterior::of(20.0, 40, 20.0).mean() - 1.5).abs() < 1e-12);
        // 180 predicted: 90 observed (0.5×) counts as 110 / 200 = 0.55×.
        assert!((ReturnPosterior::of(20.0, 90, 180.0).mean() - 0.55).abs() < 1e-12);
        assert_eq!(
            ReturnPosterior::of(20.0, 0, 0.0).mean(),
            1.0,
            "nothing seen: the plan"
        );
    }

    #[test]
    fn the_interval_matches_the_exact_gamma_quantiles_and_narrows_with_evidence() {
        for (k, c, p) in [
            (20.0, 0, 0.0),
            (20.0, 4, 2.0),
            (5.0, 300, 150.0),
            (1.0, 0, 40.0),
        ] {
            let posterior = ReturnPosterior::of(k, c, p);
            let exact = ExactGamma::new(posterior.shape, posterior.rate).unwrap();
            for q in [0.05, 0.5, 0.95] {
                let (ours, truth) = (posterior.quantile(q), exact.inverse_cdf(q));
                assert!(
                    (ours - truth).abs() < 0.01 * truth,
                    "{k} {c} {p} at {q}: {ours} vs {truth}"
                );
            }
        }
        let thin = ReturnPosterior::of(20.0, 4, 2.0);
        let thick = ReturnPosterior::of(20.0, 400, 200.0);
        assert!(
            thick.quantile(0.95) - thick.quantile(0.05)
                < (thin.quantile(0.95) - thin.quantile(0.05)) / 2.0
        );
    }

    #[test]
    fn draws_follow_the_posterior_and_replay_from_the_seed() {
        let posterior = ReturnPosterior::of(20.0, 40, 20.0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws: Vec<f64> = (0..4000).map(|_| posterior.draw(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 1.5).abs() < 0.02, "{mean}");
        let mut again = ChaCha8Rng::seed_from_u64(7);
        assert_eq!(posterior.draw(&mut again), draws[0]);
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

    /// Two funded channels of the same curve, 100 a day each, and email without variants.
    /// Each has spent `spent` and converted as given.
    fn experiment(spent: f64, sms: i64, push: i64) -> Experiment {
        let mut exp = Experiment::new(test_goal(&["sms", "push", "email"]));
        exp.set_arms(&[arm(Channel::Sms, "s"), arm(Channel::Push, "p")]);
        let curve = ResponseCurve::log(10.0, 100.0);
        exp.curves = BTreeMap::from([(Channel::Sms, curve), (Channel::Push, curve)]);
        exp.daily = BTreeMap::from([
            (Channel::Sms, 100.0),
            (Channel::Push, 100.0),
            (Channel::Email, 0.0),
        ]);
        exp.planned = exp.daily.clone();
        exp.seen_days.extend([0, 1]);
        for (variant, channel, conversions) in
            [("s", Channel::Sms, sms), ("p", Channel::Push, push)]
        {
            exp.fold(
                0,
                &Observed {
                    variant,
                    channel,
                    conversions,
                    impressions: 1000,
                    spend: spent,
                },
            );
        }
        exp
    }

    #[test]
    fn evidence_is_the_plans_prediction_and_the_posterior_of_the_return() {
        let exp = experiment(200.0, 40, 10);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let sms = channel_evidence(&exp, Channel::Sms, &BudgetPacing::default(), &mut rng);
        // 200 over 2 days: 10·ln 2 a day, 2·10·ln 2 ≈ 13.86 predicted against 40 observed.
        let predicted = 20.0 * 2f64.ln();
        assert!((sms.predicted - predicted).abs() < 1e-9);
        assert!((sms.mean - 60.0 / (20.0 + predicted)).abs() < 1e-12);
        assert!(sms.low < sms.mean && sms.mean < sms.high);
        assert!(sms.thin, "13.9 predicted is under 20");
        assert_eq!(
            sms.weight, 1.0,
            "weighed against the other channels in rebalance"
        );
        assert_eq!(sms.budget.curve, ResponseCurve::log(10.0 * sms.draw, 100.0));
        // No curve in the plan: a = b = 1, nothing predicted, the prior.
        let email = channel_evidence(&exp, Channel::Email, &BudgetPacing::default(), &mut rng);
        assert_eq!((email.predicted, email.mean), (0.0, 1.0));
    }

    #[test]
    fn budget_moves_toward_the_channel_that_over_delivers_at_most_the_cap_a_day() {
        // Much evidence: 10 000 spent each, sms converting at four times push's rate.
        let exp = experiment(10_000.0, 800, 200);
        let pacing = BudgetPacing::default();
        let moving = rebalance(&exp, &pacing, 3).expect("sms returns far more than push");
        let channels: Vec<Channel> = moving.evidence.iter().map(|e| e.channel).collect();
        assert_eq!(
            channels,
            vec![Channel::Sms, Channel::Push],
            "email has no variant"
        );
        assert_eq!(moving.daily[&Channel::Email], 0.0);
        assert!(moving.capped, "the target is far: {:?}", moving.target);
        assert!(moving.target[&Channel::Sms] > 150.0);
        assert!(
            (moving.moved - 0.2 * 200.0).abs() < 1e-6,
            "{}",
            moving.moved
        );
        assert!((moving.daily[&Channel::Sms] - 140.0).abs() < 1e-6);
        assert!((moving.daily.values().sum::<f64>() - 200.0).abs() < 1e-6);
        assert_eq!(
            moving,
            rebalance(&exp, &pacing, 3).unwrap(),
            "replays from its seed"
        );
        // Uncapped, the target is equal marginal return on the drawn curves.
        let free = BudgetPacing {
            max_move: 1.0,
            ..pacing
        };
        let moving = rebalance(&experiment(10_000.0, 800, 500), &free, 3).unwrap();
        assert_eq!(moving.daily, moving.target);
        let marginal = |e: &ChannelEvidence| e.budget.curve.marginal(moving.daily[&e.channel]);
        assert!(
            (marginal(&moving.evidence[0]) - marginal(&moving.evidence[1])).abs() < 1e-6,
            "{moving:?}"
        );
    }

    #[test]
    fn a_plan_split_by_tiers_stays_until_the_evidence_says_otherwise() {
        // The tiers gave search 7/9 of the money, though sms's curve is steeper at the margin.
        let mut exp = Experiment::new(test_goal(&["sms", "search"]));
        exp.set_arms(&[arm(Channel::Sms, "s"), arm(Channel::Search, "q")]);
        exp.curves = BTreeMap::from([
            (Channel::Search, ResponseCurve::log(10.0, 300.0)),
            (Channel::Sms, ResponseCurve::log(9.0, 100.0)),
        ]);
        exp.daily = BTreeMap::from([(Channel::Search, 116.67), (Channel::Sms, 33.33)]);
        exp.planned = exp.daily.clone();
        // A prior so strong that every draw is 1: nothing is learned, nothing moves.
        let certain = BudgetPacing {
            prior_conversions: 1e12,
            max_move: 1.0,
            ..BudgetPacing::default()
        };
        assert_eq!(rebalance(&exp, &certain, 5), None);
        // Much evidence that both curves are right: the tiers' pull has faded, and money follows
        // the curves to sms.
        exp.seen_days.extend(0..200);
        for (channel, daily) in [(Channel::Search, 116.67), (Channel::Sms, 33.33)] {
            let curve = exp.curves[&channel];
            let conversions = (curve.value(daily) * 200.0).round() as u64;
            exp.spend_by_channel
                .insert(channel, (Money::of(daily * 200.0), conversions));
        }
        let learned = BudgetPacing {
            max_move: 1.0,
            ..BudgetPacing::default()
        };
        let moving = rebalance(&exp, &learned, 5).expect("the learned curves move money");
        assert!(
            moving
                .evidence
                .iter()
                .all(|e| (e.weight - 1.0).abs() < 0.05),
            "{:?}",
            moving.evidence
        );
        assert!(moving.daily[&Channel::Sms] > 75.0, "{:?}", moving.daily);
        // Without a plan to weigh against, the bare curves move it at once.
        exp.planned.clear();
        exp.spend_by_channel.clear();
        let moving = rebalance(&exp, &certain, 5).expect("the bare curves move");
        assert!(moving.daily[&Channel::Sms] > 75.0, "{:?}", moving.daily);
    }

    #[test]
    fn a_channel_on_thin_evidence_keeps_its_floor() {
        // Push converted nothing, but on 20 spent the plan predicted only about 1.4.
        let exp = experiment(20.0, 12, 0);
        let free = BudgetPacing {
            max_move: 1.0,
            ..BudgetPacing::default()
        };
        for seed in 0..50 {
            if let Some(moving) = rebalance(&exp, &free, seed) {
                assert!(
                    moving.daily[&Channel::Push] >= 20.0 - 1e-9,
                    "{seed}: {:?}",
                    moving.daily
                );
            }
        }
        // With the evidence floor reached, push may lose everything.
        let none = BudgetPacing {
            min_evidence: 0.0,
            ..free
        };
        let exp = experiment(10_000.0, 800, 0);
        let moving = rebalance(&exp, &none, 1).unwrap();
        assert!(moving.daily[&Channel::Push] < 1.0, "{:?}", moving.daily);
    }

    #[test]
    fn the_channels_bounds_hold() {
        let mut exp = experiment(10_000.0, 800, 200);
        exp.bounds.insert(
            Channel::Sms,
            SpendBounds {
                min: 0.0,
                max: Some(120.0),
            },
        );
        let free = BudgetPacing {
            max_move: 1.0,
            ..BudgetPacing::default()
        };
        let moving = rebalance(&exp, &free, 3).unwrap();
        assert!(
            (moving.daily[&Channel::Sms] - 120.0).abs() < 1e-6,
            "{:?}",
            moving.daily
        );
    }

    #[test]
    fn nothing_moves_with_one_funded_channel_no_budget_or_a_balanced_split() {
        let pacing = BudgetPacing::default();
        let mut one = experiment(200.0, 40, 10);
        one.arms.remove("p");
        assert_eq!(rebalance(&one, &pacing, 1), None);
        let mut broke = experiment(200.0, 40, 10);
        broke.daily.values_mut().for_each(|s| *s = 0.0);
        assert_eq!(rebalance(&broke, &pacing, 1), None);
        // Two identical channels on a great deal of identical evidence sit at equal return.
        let mut even = experiment(10_000.0, 800, 800);
        even.spend_by_channel
            .insert(Channel::Push, (Money::of(10_000.0), 800));
        assert_eq!(rebalance(&even, &pacing, 1), None);
    }

    #[test]
    fn pacing_values_out_of_range_are_named() {
        assert_eq!(BudgetPacing::default().out_of_range(), None);
        let bad = BudgetPacing {
            max_move: 0.0,
            ..BudgetPacing::default()
        };
        assert_eq!(bad.out_of_range().map(|b| b.0), Some("max_move"));
        let bad = BudgetPacing {
            floor: 1.0,
            ..BudgetPacing::default()
        };
        assert_eq!(bad.out_of_range().map(|b| b.0), Some("floor"));
        let bad = BudgetPacing {
            prior_conversions: f64::NAN,
            ..BudgetPacing::default()
        };
        assert_eq!(bad.out_of_range().map(|b| b.0), Some("prior_conversions"));
    }

    proptest! {
        /// Whatever the evidence and the split, a day's move stays within the cap, keeps the
        /// day's total, and leaves every thin channel at its floor or above.
        #[test]
        fn no_move_passes_the_cap_or_empties_a_thin_channel(
            daily in prop::collection::vec(1.0f64..1_000.0, 3),
            spent in prop::collection::vec(0.0f64..20_000.0, 3),
            rates in prop::collection::vec(0.0f64..0.2, 3),
            max_move in 0.01f64..1.0,
            floor in 0.0f64..0.3,
            min_evidence in 0.0f64..200.0,
            seed in any::<u64>(),
        ) {
            let channels = [Channel::Sms, Channel::Push, Channel::Email];
            let mut exp = Experiment::new(test_goal(&["sms", "push", "email"]));
            exp.set_arms(&[arm(Channel::Sms, "s"), arm(Channel::Push, "p"), arm(Channel::Email, "e")]);
            exp.seen_days.extend([0, 1, 2]);
            for (i, channel) in channels.iter().enumerate() {
                exp.curves.insert(*channel, ResponseCurve::log(5.0 + i as f64, 50.0 * (i + 1) as f64));
                exp.daily.insert(*channel, daily[i]);
                let variant = ["s", "p", "e"][i];
                exp.fold(0, &Observed {
                    variant,
                    channel: *channel,
                    conversions: (spent[i] * rates[i]) as i64,
                    impressions: 1000,
                    spend: spent[i],
                });
            }
            let pacing = BudgetPacing { max_move, floor, min_evidence, prior_conversions: 20.0 };
            let total: f64 = daily.iter().sum();
            if let Some(moving) = rebalance(&exp, &pacing, seed) {
                prop_assert!(moving.moved <= max_move * total * (1.0 + 1e-9) + 1e-9);
                prop_assert!((moving.daily.values().sum::<f64>() - total).abs() < 1e-6 * total);
                for e in moving.evidence.iter().filter(|e| e.thin) {
                    let had = exp.daily[&e.channel];
                    let floor = (floor * total).min(had);
                    prop_assert!(moving.daily[&e.channel] >= floor - 1e-6 * total, "{:?} {:?}", e.channel, moving.daily);
                }
            }
        }
    }
}
