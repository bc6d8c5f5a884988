//! Where a campaign is on its way to the goal, and how many days it has to get there.
//!
//! The phase decides how boldly traffic follows the posterior (explore below 30 % of the goal,
//! optimize to 70 %, stabilize above); the deadline day is what every forecast is compared with.
//! Both are shared by the orchestrator, the optimizer, ingestion and the board, so they live here
//! rather than in any one agent.

use serde::{Deserialize, Serialize};

use super::campaign::CampaignGoal;

/// Where the campaign is, for the orchestrator's phases and the decision to buy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Explore,
    Optimize,
    Stabilize,
}

impl Phase {
    /// < 30 % of the goal: explore; 30–70 %: optimize; > 70 %: stabilize.
    pub fn of_progress(progress: f64) -> Phase {
        if progress < 0.3 {
            Phase::Explore
        } else if progress <= 0.7 {
            Phase::Optimize
        } else {
            Phase::Stabilize
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Explore => "explore",
            Phase::Optimize => "optimize",
            Phase::Stabilize => "stabilize",
        }
    }
}

/// Whether campaign day `day` (0 is the first) is the campaign's last: it ends at or after the
/// deadline, so the next one would begin at or after it. A deadline at midnight closes the day
/// before it: the budget's daily pace counts the days up to the deadline, and one more day would
/// spend a day's budget beyond the total. Without a start there is no last day.
pub fn is_last_day(goal: &CampaignGoal, day: u32) -> bool {
    goal.start
        .is_some_and(|s| s + chrono::Duration::days(i64::from(day) + 1) >= goal.deadline)
}

/// The deadline as a day index from the campaign's start (day 0); the forecast's days count from 1.
/// Without a start the deadline is never reached (infinity).
pub fn deadline_day(goal: &CampaignGoal) -> f64 {
    match goal.start {
        Some(start) => (goal.deadline - start).num_seconds() as f64 / 86_400.0,
        None => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::domain::campaign::test_goal;

    #[test]
    fn the_last_day_is_the_one_whose_end_passes_the_deadline() {
        let mut goal = test_goal(&["email"]);
        goal.start = Some("2026-10-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        goal.deadline = "2026-10-03T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(!is_last_day(&goal, 0));
        assert!(!is_last_day(&goal, 1));
        assert!(is_last_day(&goal, 2));
        assert!(is_last_day(&goal, 9));
        // A deadline at midnight: the day that ends at it is the last.
        goal.deadline = "2026-10-03T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(!is_last_day(&goal, 0));
        assert!(is_last_day(&goal, 1));
        goal.start = None;
        assert!(!is_last_day(&goal, 1_000));
    }

    #[test]
    fn the_phase_follows_the_share_of_the_goal_reached() {
        assert_eq!(Phase::of_progress(0.0), Phase::Explore);
        assert_eq!(Phase::of_progress(0.299), Phase::Explore);
        assert_eq!(Phase::of_progress(0.3), Phase::Optimize);
        assert_eq!(Phase::of_progress(0.7), Phase::Optimize);
        assert_eq!(Phase::of_progress(0.701), Phase::Stabilize);
        assert_eq!(Phase::of_progress(1.5), Phase::Stabilize);
        // NaN compares false everywhere and lands in the last branch, as it always has.
        assert_eq!(Phase::of_progress(f64::NAN), Phase::Stabilize);
    }

    #[test]
    fn the_phase_is_written_in_snake_case() {
        for phase in [Phase::Explore, Phase::Optimize, Phase::Stabilize] {
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{}\"", phase.as_str()));
            assert_eq!(serde_json::from_str::<Phase>(&json).unwrap(), phase);
        }
        assert!(serde_json::from_str::<Phase>("\"Explore\"").is_err());
    }

    #[test]
    fn the_deadline_day_counts_days_from_the_start() {
        let mut goal = test_goal(&["sms"]);
        assert_eq!(deadline_day(&goal), f64::INFINITY, "no start, no deadline");
        let start: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        goal.start = Some(start);
        // 2026-12-31T23:59:59Z is 30 days, 23 h 59 min 59 s after the start.
        let expected = 31.0 - 1.0 / 86_400.0;
        assert!((deadline_day(&goal) - expected).abs() < 1e-9);
        goal.start = Some("2027-01-01T12:00:00Z".parse().unwrap());
        assert!((deadline_day(&goal) - (-(12.0 * 3600.0 + 1.0) / 86_400.0)).abs() < 1e-9);
    }
}
