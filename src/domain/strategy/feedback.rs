//! The feedback loop of a re-plan: what each channel delivered against what its prior predicted,
//! and what that changes in the playbook before the next plan.
//!
//! A channel is judged once it has real evidence (5 conversions, or spend that its prior says
//! should have bought 10). A judged channel that clearly under-delivers (below 70 % of the
//! predicted return) drops one maturity tier and one that clearly over-delivers (above 130 %)
//! rises one, which is what moves its share of the 70-20-10 split; every channel's prior then
//! learns from its outcome. The decision calls a channel under-delivering below 90 % and
//! over-delivering above 110 %.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::learning::ChannelOutcome;
use super::playbook::{ChannelPrior, StrategyPlaybook};
use super::tactics::Maturity;
use crate::domain::bounds::{add_count, add_money};
use crate::domain::campaign::{CampaignGoal, Channel};

/// Conversions that make a channel's delivery worth judging.
pub const JUDGED_CONVERSIONS: u64 = 5;
/// Predicted conversions (spend × predicted return) that make it worth judging.
pub const JUDGED_PREDICTED: f64 = 10.0;

impl ChannelOutcome {
    /// Adds one observation's counts (signed as the market reports them; a negative count, which
    /// validation refuses upstream, adds nothing). The sums saturate, so they stay finite.
    pub fn add_observed(&mut self, impressions: i64, clicks: i64, conversions: i64, spend: f64) {
        self.impressions = add_count(self.impressions, impressions);
        self.clicks = add_count(self.clicks, clicks);
        self.conversions = add_count(self.conversions, conversions);
        self.spend = add_money(self.spend, spend);
    }
}

/// Conversions per unit of the campaign's money that `prior` predicts, for a campaign currency
/// worth `rate` units per playbook unit.
pub fn predicted_return(prior: &ChannelPrior, rate: f64) -> f64 {
    prior.cvr / (prior.cpc * rate)
}

/// Observed return over `predicted` (1 when nothing is predicted; the prediction itself stands in
/// for the observation when nothing was spent).
pub fn delivery_ratio(outcome: &ChannelOutcome, predicted: f64) -> f64 {
    let observed = if outcome.spend > 0.0 {
        outcome.conversions as f64 / outcome.spend
    } else {
        predicted
    };
    if predicted > 0.0 {
        observed / predicted
    } else {
        1.0
    }
}

/// Whether there is enough evidence to move a channel's tier.
pub fn judged(outcome: &ChannelOutcome, predicted: f64) -> bool {
    outcome.conversions >= JUDGED_CONVERSIONS || outcome.spend * predicted >= JUDGED_PREDICTED
}

/// A judged channel's tier after delivering `ratio` of its predicted return: one tier down below
/// 0.7, one up above 1.3.
pub fn retier(maturity: Maturity, ratio: f64) -> Maturity {
    match (maturity, ratio) {
        (Maturity::Proven, r) if r < 0.7 => Maturity::Emerging,
        (Maturity::Emerging, r) if r < 0.7 => Maturity::Experimental,
        (Maturity::Experimental, r) if r > 1.3 => Maturity::Emerging,
        (Maturity::Emerging, r) if r > 1.3 => Maturity::Proven,
        (m, _) => m,
    }
}

/// How a delivery is described in the plan's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryVerdict {
    Under,
    AsPredicted,
    Over,
}

impl DeliveryVerdict {
    /// Below 0.9 under, above 1.1 over, as predicted in between.
    pub fn of(ratio: f64) -> Self {
        if ratio < 0.9 {
            DeliveryVerdict::Under
        } else if ratio > 1.1 {
            DeliveryVerdict::Over
        } else {
            DeliveryVerdict::AsPredicted
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryVerdict::Under => "under-delivered",
            DeliveryVerdict::AsPredicted => "delivered as predicted",
            DeliveryVerdict::Over => "over-delivered",
        }
    }
}

/// What one channel delivered so far, against what its prior predicted (recorded in the plan's
/// inputs as `observed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: Channel,
    /// In the campaign's currency.
    pub spend: f64,
    pub conversions: u64,
    /// Conversions per unit of money observed / predicted by the prior.
    pub ratio: f64,
    /// Its tier after this evidence.
    pub maturity: Option<Maturity>,
}

/// Learns every channel's outcome (money in the campaign's currency, `rate` units per playbook
/// unit) into `playbook`, in channel order: re-tiers the judged ones, then updates the priors.
/// Channels without a prior are skipped; a channel whose outcome the prior cannot learn from
/// keeps its new tier but is not reported.
pub fn learn_outcomes(
    playbook: &mut StrategyPlaybook,
    rate: f64,
    outcomes: &BTreeMap<Channel, ChannelOutcome>,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for (&channel, &outcome) in outcomes {
        let Some(prior) = playbook.prior(channel) else {
            continue;
        };
        let predicted = predicted_return(prior, rate);
        // The prior's currency is the playbook's; the outcome's is the campaign's.
        let in_playbook = ChannelOutcome {
            spend: outcome.spend / rate,
            ..outcome
        };
        let ratio = delivery_ratio(&outcome, predicted);
        if judged(&outcome, predicted)
            && let Some(prior) = playbook.channels.get_mut(&channel)
        {
            prior.maturity = retier(prior.maturity, ratio);
        }
        if playbook.learn(channel, in_playbook).is_ok() {
            deliveries.push(Delivery {
                channel,
                spend: outcome.spend,
                conversions: outcome.conversions,
                ratio,
                maturity: playbook.prior(channel).map(|p| p.maturity),
            });
        }
    }
    deliveries
}

/// The goal a plan is made for: a re-plan (attempt > 0) starts `now`, and plans what is left (at
/// least one conversion, never a negative budget).
pub fn plan_goal(
    goal: &CampaignGoal,
    attempt: u32,
    now: chrono::DateTime<chrono::Utc>,
    remaining_target: Option<u64>,
    remaining_budget: Option<f64>,
) -> CampaignGoal {
    let mut sub_goal = goal.clone();
    if attempt > 0 {
        sub_goal.start = Some(now);
    }
    if let Some(target) = remaining_target {
        sub_goal.target = target.max(1);
    }
    if let Some(budget) = remaining_budget {
        sub_goal.budget.total = budget.max(0.0);
    }
    sub_goal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::test_goal;

    fn outcome(impressions: u64, clicks: u64, conversions: u64, spend: f64) -> ChannelOutcome {
        ChannelOutcome {
            impressions,
            clicks,
            conversions,
            spend,
        }
    }

    #[test]
    fn one_tier_per_clear_miss_or_beat() {
        use Maturity::*;
        assert_eq!(retier(Proven, 0.69), Emerging);
        assert_eq!(retier(Proven, 0.7), Proven, "0.7 is not below 0.7");
        assert_eq!(retier(Emerging, 0.5), Experimental);
        assert_eq!(retier(Experimental, 0.1), Experimental, "no tier below");
        assert_eq!(retier(Experimental, 1.31), Emerging);
        assert_eq!(retier(Emerging, 2.0), Proven);
        assert_eq!(retier(Emerging, 1.3), Emerging);
        assert_eq!(retier(Proven, 5.0), Proven, "no tier above");
    }

    #[test]
    fn the_reason_calls_a_delivery_by_ten_percent_bands() {
        assert_eq!(DeliveryVerdict::of(0.89).as_str(), "under-delivered");
        assert_eq!(DeliveryVerdict::of(0.9), DeliveryVerdict::AsPredicted);
        assert_eq!(DeliveryVerdict::of(1.1), DeliveryVerdict::AsPredicted);
        assert_eq!(DeliveryVerdict::of(1.11).as_str(), "over-delivered");
        assert_eq!(Maturity::Experimental.as_str(), "experimental");
    }

    #[test]
    fn the_ratio_and_the_evidence_needed_to_judge() {
        let playbook = StrategyPlaybook::embedded().unwrap();
        let sms = playbook.prior(Channel::Sms).unwrap();
        // 0.03 conversions per click at 0.33 a click, in KRW at 1380 a dollar.
        let predicted = predicted_return(sms, 1380.0);
        assert!((predicted - 0.03 / (0.33 * 1380.0)).abs() < 1e-15);
        let spent = outcome(10_000, 500, 6, 276_000.0);
        // Observed 6 / 276 000 against 0.03 / 455.4.
        let ratio = delivery_ratio(&spent, predicted);
        assert!((ratio - (6.0 / 276_000.0) / predicted).abs() < 1e-12);
        assert!(judged(&spent, predicted), "6 conversions");
        assert!(
            !judged(&outcome(100, 10, 4, 1000.0), predicted),
            "4 conversions, 0.07 predicted"
        );
        assert!(
            judged(&outcome(100, 10, 0, 151_800.0), predicted),
            "10 predicted"
        );
        assert_eq!(
            delivery_ratio(&outcome(0, 0, 0, 0.0), predicted),
            1.0,
            "nothing spent"
        );
        assert_eq!(delivery_ratio(&spent, 0.0), 1.0, "nothing predicted");
    }

    #[test]
    fn a_re_plan_re_tiers_judged_channels_and_learns_every_prior() {
        let mut playbook = StrategyPlaybook::embedded().unwrap();
        let before_sms = *playbook.prior(Channel::Sms).unwrap();
        let outcomes = BTreeMap::from([
            // Proven, 2× its predicted 1/30 per dollar: stays proven (there is nothing above).
            (Channel::Search, outcome(20_000, 800, 20, 300.0)),
            // Emerging, 0.22× (0.02 against 0.0909), judged on spend (18 predicted): experimental.
            (Channel::Sms, outcome(5_000, 300, 4, 200.0)),
            // Experimental, 0.5×, but 3 conversions and 6 predicted: not judged.
            (Channel::Push, outcome(2_000, 60, 3, 30.0)),
            // Experimental, 2.4×: emerging (one tier only).
            (Channel::Display, outcome(500_000, 2_000, 40, 1000.0)),
        ]);
        let deliveries = learn_outcomes(&mut playbook, 1.0, &outcomes);
        let tiers: Vec<(Channel, Option<Maturity>)> =
            deliveries.iter().map(|d| (d.channel, d.maturity)).collect();
        assert_eq!(
            tiers,
            vec![
                (Channel::Search, Some(Maturity::Proven)),
                (Channel::Sms, Some(Maturity::Experimental)),
                (Channel::Push, Some(Maturity::Experimental)),
                (Channel::Display, Some(Maturity::Emerging)),
            ]
        );
        assert!((deliveries[0].ratio - 2.0).abs() < 1e-12);
        assert!((deliveries[1].ratio - 0.02 / (0.03 / 0.33)).abs() < 1e-12);
        assert_eq!((deliveries[1].spend, deliveries[1].conversions), (200.0, 4));
        assert!(
            playbook.prior(Channel::Sms).unwrap().cvr < before_sms.cvr,
            "the prior learned"
        );
    }

    #[test]
    fn money_is_learned_in_the_playbooks_currency_and_bad_outcomes_are_not_reported() {
        let mut in_dollars = StrategyPlaybook::embedded().unwrap();
        let mut in_won = in_dollars.clone();
        let dollars = BTreeMap::from([(Channel::Sms, outcome(5_000, 300, 12, 100.0))]);
        let won = BTreeMap::from([(Channel::Sms, outcome(5_000, 300, 12, 138_000.0))]);
        let a = learn_outcomes(&mut in_dollars, 1.0, &dollars);
        let b = learn_outcomes(&mut in_won, 1380.0, &won);
        assert!((a[0].ratio - b[0].ratio).abs() < 1e-9);
        assert_eq!(in_dollars.prior(Channel::Sms), in_won.prior(Channel::Sms));
        // More conversions than clicks cannot be learned: not reported, yet the tier has moved.
        let mut playbook = StrategyPlaybook::embedded().unwrap();
        let bad = BTreeMap::from([(Channel::Sms, outcome(100, 5, 50, 100.0))]);
        assert!(learn_outcomes(&mut playbook, 1.0, &bad).is_empty());
        assert_eq!(
            playbook.prior(Channel::Sms).unwrap().maturity,
            Maturity::Proven
        );
    }

    #[test]
    fn observations_add_up_per_channel_and_negative_counts_add_nothing() {
        let mut total = ChannelOutcome::default();
        total.add_observed(1000, 40, 3, 25.5);
        total.add_observed(-5, 10, -1, 4.5);
        assert_eq!(total, outcome(1000, 50, 3, 30.0));
    }

    #[test]
    fn a_re_plan_starts_now_and_plans_what_is_left() {
        let goal = test_goal(&["sms"]);
        let now = "2026-12-10T00:00:00Z".parse().unwrap();
        let first = plan_goal(&goal, 0, now, None, None);
        assert_eq!(first, goal);
        let again = plan_goal(&goal, 2, now, Some(0), Some(-30.0));
        assert_eq!(again.start, Some(now));
        assert_eq!(again.target, 1, "at least one conversion");
        assert_eq!(again.budget.total, 0.0);
        assert_eq!(
            plan_goal(&goal, 1, now, Some(320), Some(4000.0)).target,
            320
        );
    }
}
