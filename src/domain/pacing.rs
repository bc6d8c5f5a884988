//! Pacing a campaign toward its goal: how far it is, when it is done, when it must be re-planned
//! and what a re-plan has left to work with.
//!
//! A campaign is re-planned when the forecast misses the deadline after at least three days of
//! observations (fewer are too noisy to judge), at most once a week so a plan gets time to show
//! its effect, or whenever an operator asks.

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
    use crate::domain::campaign::test_goal;

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
