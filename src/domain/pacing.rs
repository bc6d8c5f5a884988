//! Pacing a campaign toward its goal: how far it is, when it is done, when it must be re-planned,
//! what a re-plan has left to work with, and the cap that keeps a day's buys within the budget.
//!
//! A campaign is re-planned when the forecast misses the deadline after at least three days of
//! observations (fewer are too noisy to judge), at most once a week so a plan gets time to show
//! its effect, or whenever an operator asks.

use super::buy::Buy;
use super::campaign::CampaignGoal;
use super::optimization::Forecast;

/// Days of observations before a missed forecast can trigger a re-plan.
pub const REPLAN_MIN_DAYS: u32 = 3;
/// Days after a re-plan before the forecast may trigger the next one.
pub const REPLAN_COOL_DOWN_DAYS: u32 = 7;

/// The share of the target reached (a target of 0 counts as 1).
pub fn goal_fraction(conversions: u64, target: u64) -> f64 {
    conversions as f64 / target.max(1) as f64
}

/// Whether the target is reached.
pub fn achieved(conversions: u64, target: u64) -> bool {
    conversions >= target
}

/// A day's buys cut down to what is left of the budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetCut {
    /// What the day's buys added up to.
    pub planned: f64,
    /// What is left of the total: what they add up to now.
    pub allowed: f64,
}

/// Keeps a day's `buys` within the budget: when `spent` plus their total would pass `total`, each
/// is scaled by the same factor so that they add up to what is left (none are left when nothing
/// is), and the cut is returned. Whatever the pace, re-plan or approval upstream, the sum of every
/// day's buys cannot pass the budget. A non-finite figure cuts everything: money that cannot be
/// counted is not spent.
pub fn within_budget(buys: &mut Vec<Buy>, spent: f64, total: f64) -> Option<BudgetCut> {
    let planned: f64 = buys.iter().map(|b| b.spend.max(0.0)).sum();
    let left = if spent.is_finite() && total.is_finite() {
        (total - spent.max(0.0)).max(0.0)
    } else {
        0.0
    };
    // Half a cent of rounding in the shares of a day is not an overspend worth a decision.
    if planned.is_finite() && planned <= left + 0.005 {
        return None;
    }
    let scale = if planned.is_finite() && planned > 0.0 {
        left / planned
    } else {
        0.0
    };
    for buy in buys.iter_mut() {
        buy.spend = buy.spend.max(0.0) * scale;
    }
    buys.retain(|b| b.spend > 0.0);
    Some(BudgetCut {
        planned,
        allowed: buys.iter().map(|b| b.spend).sum(),
    })
}

/// Why a re-plan is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplanCause {
    /// An operator asked (this wins over a late forecast, and ignores the cool-down).
    Asked,
    /// The forecast misses the deadline.
    Late,
}

/// What the re-plan rule looks at on one day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplanInput {
    /// Today's day index.
    pub day: u32,
    /// Days with observations.
    pub days_observed: u32,
    pub forecast: Option<Forecast>,
    /// See [`crate::domain::phase::deadline_day`].
    pub deadline_day: f64,
    pub last_replan_day: Option<u32>,
    /// An operator's re-plan order is pending.
    pub asked: bool,
}

/// Whether to re-plan today, and why; `None` when not.
pub fn replan_due(input: &ReplanInput) -> Option<ReplanCause> {
    let late = input.days_observed >= REPLAN_MIN_DAYS
        && input
            .forecast
            .is_some_and(|f| !f.on_track(input.deadline_day));
    // `day >= last + 7`, written so that it cannot overflow.
    let cooled = input
        .last_replan_day
        .is_none_or(|d| input.day.saturating_sub(d) >= REPLAN_COOL_DOWN_DAYS);
    if input.asked {
        Some(ReplanCause::Asked)
    } else if late && cooled {
        Some(ReplanCause::Late)
    } else {
        None
    }
}

/// What a re-plan has left: the conversions still to reach and the money still to spend (never
/// below 0).
pub fn remaining(goal: &CampaignGoal, conversions: u64, spend: f64) -> (u64, f64) {
    (
        goal.target.saturating_sub(conversions),
        (goal.budget.total - spend).max(0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{Channel, test_goal};

    fn buys(spends: &[f64]) -> Vec<Buy> {
        spends
            .iter()
            .enumerate()
            .map(|(i, &spend)| Buy {
                channel: Channel::Email,
                segment: "everyone".into(),
                variant: format!("v{i}"),
                spend,
            })
            .collect()
    }

    #[test]
    fn a_days_buys_are_cut_to_what_is_left_of_the_budget() {
        let mut fit = buys(&[60.0, 40.0]);
        assert_eq!(within_budget(&mut fit, 800.0, 1000.0), None);
        assert_eq!(fit, buys(&[60.0, 40.0]));
        // The last day's shares may add up to a hair above what is left.
        let mut last = buys(&[60.000_000_1, 40.0]);
        assert_eq!(within_budget(&mut last, 900.0, 1000.0), None);

        // 50 left of 1 000: each buy keeps its share of the day.
        let mut cut = buys(&[60.0, 40.0]);
        let done = within_budget(&mut cut, 950.0, 1000.0).expect("a cut");
        assert_eq!(done.planned, 100.0);
        assert!((done.allowed - 50.0).abs() < 1e-9, "{done:?}");
        assert!((cut[0].spend - 30.0).abs() < 1e-9 && (cut[1].spend - 20.0).abs() < 1e-9);

        // Nothing left (or more than all spent already): nothing is bought.
        for spent in [1000.0, 1200.0] {
            let mut none = buys(&[60.0, 40.0]);
            let done = within_budget(&mut none, spent, 1000.0).expect("a cut");
            assert_eq!((done.allowed, none.len()), (0.0, 0));
        }
        // Figures that cannot be counted buy nothing.
        for (spent, total, spend) in [
            (f64::NAN, 1000.0, 10.0),
            (0.0, f64::INFINITY, 10.0),
            (0.0, 1000.0, f64::INFINITY),
        ] {
            let mut odd = buys(&[spend]);
            assert!(within_budget(&mut odd, spent, total).is_some());
            assert!(odd.is_empty());
        }
    }

    fn forecast(eta_day: Option<f64>) -> Option<Forecast> {
        Some(Forecast {
            intercept: 0.0,
            slope: 10.0,
            eta_day,
            met: false,
        })
    }

    /// Day 10, 4 days observed, the goal forecast for day 40 against a deadline on day 30.
    fn late() -> ReplanInput {
        ReplanInput {
            day: 10,
            days_observed: 4,
            forecast: forecast(Some(40.0)),
            deadline_day: 30.0,
            last_replan_day: None,
            asked: false,
        }
    }

    #[test]
    fn a_forecast_past_the_deadline_is_a_re_plan_after_three_days() {
        assert_eq!(replan_due(&late()), Some(ReplanCause::Late));
        let early = ReplanInput {
            days_observed: 2,
            ..late()
        };
        assert_eq!(replan_due(&early), None, "two days are too few");
        let no_trend = ReplanInput {
            forecast: forecast(None),
            ..late()
        };
        assert_eq!(
            replan_due(&no_trend),
            Some(ReplanCause::Late),
            "never is late"
        );
        let on_time = ReplanInput {
            forecast: forecast(Some(30.0)),
            ..late()
        };
        assert_eq!(replan_due(&on_time), None);
        let met = ReplanInput {
            forecast: Some(Forecast {
                met: true,
                ..forecast(Some(40.0)).unwrap()
            }),
            ..late()
        };
        assert_eq!(replan_due(&met), None);
        assert_eq!(
            replan_due(&ReplanInput {
                forecast: None,
                ..late()
            }),
            None
        );
    }

    #[test]
    fn a_re_plan_cools_down_for_a_week_unless_an_operator_asks() {
        let recent = ReplanInput {
            last_replan_day: Some(4),
            ..late()
        };
        assert_eq!(replan_due(&recent), None, "day 10 is 6 days after day 4");
        let week = ReplanInput {
            last_replan_day: Some(3),
            ..late()
        };
        assert_eq!(replan_due(&week), Some(ReplanCause::Late));
        let asked = ReplanInput {
            asked: true,
            ..recent
        };
        assert_eq!(replan_due(&asked), Some(ReplanCause::Asked));
        let asked_on_track = ReplanInput {
            asked: true,
            days_observed: 0,
            forecast: None,
            ..late()
        };
        assert_eq!(replan_due(&asked_on_track), Some(ReplanCause::Asked));
        let overflow = ReplanInput {
            last_replan_day: Some(u32::MAX),
            day: u32::MAX,
            ..late()
        };
        assert_eq!(
            replan_due(&overflow),
            None,
            "no overflow at the end of time"
        );
    }

    #[test]
    fn progress_and_what_is_left() {
        assert_eq!(goal_fraction(150, 500), 0.3);
        assert_eq!(goal_fraction(3, 0), 3.0, "a zero target counts as one");
        assert!(achieved(500, 500) && !achieved(499, 500));
        let goal = test_goal(&["sms"]);
        assert_eq!(remaining(&goal, 120, 2500.0), (380, 7500.0));
        assert_eq!(remaining(&goal, 900, 12_000.0), (0, 0.0));
    }
}
