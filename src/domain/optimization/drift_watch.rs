//! What drift is watched on: per channel, its leading variant (the one with the largest traffic
//! share) and every variant on the channel together (a market shift shows there first, with far
//! more evidence than any one variant has), each as the last window of days against the days
//! before it. The first window that drifts re-opens exploration; there is at most one per day.
//!
//! Two detectors judge a window. The 20 % rule ([`DriftRule`]) compares the window's rate with the
//! baseline's. A one-sided CUSUM ([`Cusum`], the playbook's `k` and `h`) runs over the leading
//! variant's days, each standardised against its baseline rate: it catches a drop smaller than
//! 20 % that lasts, which the rule lets through. Both need the rule's minimum sample in the window,
//! and the CUSUM as many trials in the baseline. The whole channel's daily rate moves with the
//! traffic split between its variants, so only the rule judges it: a CUSUM on it raised alarms
//! where nothing but the split had changed.

use super::drift::{Cusum, DriftCheck, DriftRule};
use super::experiment::Experiment;
use super::playbook::CusumSettings;
use super::thompson::ArmStats;
use crate::domain::campaign::Channel;

/// One window pair the drift rule is asked about.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftWindow {
    /// `leading variant <id>` or `every variant on <channel>`, as the decision names it.
    pub watched: String,
    /// The days before the window.
    pub baseline: ArmStats,
    /// The last `window` days up to and including the day.
    pub recent: ArmStats,
    /// The same days one by one, in day order (days without counts left out); empty for the
    /// whole channel, whose daily rate moves with the traffic split between its variants and so is
    /// no steady series for a CUSUM.
    pub recent_days: Vec<ArmStats>,
}

/// A window that drifted, and until when exploration is forced.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub channel: Channel,
    pub window: DriftWindow,
    pub check: DriftCheck,
    /// `day + window`: exploration is forced up to and including this day.
    pub explore_until: u32,
}

/// The first day of the window that ends on `day` and spans `window_days` (at least 1).
pub fn window_start(day: u32, window_days: u32) -> u32 {
    day.saturating_sub(window_days.max(1) - 1)
}

/// The windows of `channel` on `day` for a window of `window_days` (at least 1): its leading
/// variant's (when it has one), then the whole channel's.
pub fn drift_windows(
    exp: &Experiment,
    channel: Channel,
    day: u32,
    window_days: u32,
) -> Vec<DriftWindow> {
    let window = window_days.max(1);
    // Ties go to the last variant in id order, as `max_by` keeps the last maximum.
    let leader = exp
        .arms_of(channel)
        .into_iter()
        .max_by(|a, b| {
            let sa = exp.shares.get(&a.0).copied().unwrap_or(0.0);
            let sb = exp.shares.get(&b.0).copied().unwrap_or(0.0);
            sa.total_cmp(&sb)
        })
        .map(|(id, _)| id);
    let from = window_start(day, window);
    let mut candidates = Vec::new();
    let (mut all_base, mut all_recent) = (ArmStats::default(), ArmStats::default());
    for (id, state) in &exp.arms {
        if state.arm.as_ref().is_none_or(|a| a.channel != channel) {
            continue;
        }
        // Days summed into `earlier` are before any window asked about since (see
        // `Experiment::keep_days_from`).
        let (mut baseline, mut recent) = (state.earlier, ArmStats::default());
        let mut recent_days = Vec::new();
        for (&d, s) in &state.daily {
            let target = if d >= from {
                recent_days.push(*s);
                &mut recent
            } else {
                &mut baseline
            };
            target.successes += s.successes;
            target.trials += s.trials;
        }
        all_base.successes += baseline.successes;
        all_base.trials += baseline.trials;
        all_recent.successes += recent.successes;
        all_recent.trials += recent.trials;
        if leader.as_deref() == Some(id.as_str()) {
            candidates.push(DriftWindow {
                watched: format!("leading variant {id}"),
                baseline,
                recent,
                recent_days,
            });
        }
    }
    candidates.push(DriftWindow {
        watched: format!("every variant on {channel}"),
        baseline: all_base,
        recent: all_recent,
        recent_days: Vec::new(),
    });
    candidates
}

/// The first drift on `day` over `channels` (in their order, each channel's windows in
/// [`drift_windows`] order), or `None` while exploration is already forced. A window without a
/// baseline, or that the rule cannot judge, is skipped.
pub fn first_drift(
    exp: &Experiment,
    channels: &[Channel],
    day: u32,
    window_days: u32,
    rule: &DriftRule,
    cusum: &CusumSettings,
) -> Option<Drift> {
    let window = window_days.max(1);
    if exp.exploring(day) {
        return None;
    }
    for &channel in channels {
        for candidate in drift_windows(exp, channel, day, window) {
            if candidate.baseline.trials == 0 {
                continue;
            }
            let Ok(mut check) = rule.check(candidate.baseline, candidate.recent) else {
                continue;
            };
            if !check.drifted
                && check.enough_sample
                && candidate.baseline.trials >= rule.min_sample
                && let Some(statistic) = cusum_statistic(&candidate, cusum)
                && statistic > cusum.h
            {
                check.drifted = true;
                check.reason = format!(
                    "daily rate stayed below the baseline's {:.3} % for long enough that its CUSUM reached {statistic:.1} standard deviations, past the threshold of {:.1} ({:.3} % over the window, {:.1} % lower)",
                    check.baseline_rate * 100.0,
                    cusum.h,
                    check.recent_rate * 100.0,
                    check.drop * 100.0
                );
            }
            if check.drifted {
                return Some(Drift {
                    channel,
                    window: candidate,
                    check,
                    explore_until: day.saturating_add(window),
                });
            }
        }
    }
    None
}

/// The one-sided CUSUM of `window`'s days against its baseline rate; `None` when the baseline
/// rate cannot be a CUSUM's target (no conversions, or every trial one).
fn cusum_statistic(window: &DriftWindow, settings: &CusumSettings) -> Option<f64> {
    let mut cusum = Cusum::new(window.baseline.rate(), settings.k, settings.h).ok()?;
    for day in &window.recent_days {
        cusum.update(*day);
    }
    Some(cusum.statistic)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const CUSUM: CusumSettings = CusumSettings { k: 0.5, h: 5.0 };
    use crate::domain::campaign::test_goal;
    use crate::domain::optimization::experiment::Observed;
    use crate::domain::optimization::experiment::tests::arm;

    fn fold(exp: &mut Experiment, day: u32, variant: &str, channel: Channel, conv: i64, imp: i64) {
        exp.fold(
            day,
            &Observed {
                variant,
                channel,
                conversions: conv,
                impressions: imp,
                spend: 1.0,
            },
        );
    }

    /// Two SMS variants, `a` leading; 5 % conversions for days 0–6, then `a` falls to 2 %.
    fn experiment() -> Experiment {
        let mut exp = Experiment::new(test_goal(&["sms", "push"]));
        exp.set_arms(&[
            arm(Channel::Sms, "a"),
            arm(Channel::Sms, "b"),
            arm(Channel::Push, "p"),
        ]);
        exp.shares = BTreeMap::from([("a".to_owned(), 0.7), ("b".to_owned(), 0.3)]);
        for day in 0..14 {
            let a = if day < 7 { 50 } else { 20 };
            fold(&mut exp, day, "a", Channel::Sms, a, 1000);
            fold(&mut exp, day, "b", Channel::Sms, 50, 1000);
        }
        exp
    }

    #[test]
    fn the_leader_and_then_the_whole_channel_are_watched_over_the_last_window() {
        let exp = experiment();
        let windows = drift_windows(&exp, Channel::Sms, 13, 7);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].watched, "leading variant a");
        assert_eq!(windows[0].baseline, ArmStats::new(350, 7000), "days 0–6");
        assert_eq!(windows[0].recent, ArmStats::new(140, 7000), "days 7–13");
        assert_eq!(windows[1].watched, "every variant on sms");
        assert_eq!(windows[1].baseline, ArmStats::new(700, 14_000));
        assert_eq!(windows[1].recent, ArmStats::new(490, 14_000));
        // Push has an arm but nothing observed and no share: its only arm leads with empty windows.
        let push = drift_windows(&exp, Channel::Push, 13, 7);
        assert_eq!(push[0].watched, "leading variant p");
        assert_eq!(push[1].baseline, ArmStats::default());
        // A channel without arms is still watched as a whole.
        assert_eq!(drift_windows(&exp, Channel::Email, 13, 7).len(), 1);
    }

    #[test]
    fn summing_the_days_before_a_window_changes_no_window_from_it_on() {
        let mut kept = experiment();
        kept.keep_days_from(7);
        for day in [13, 14] {
            assert_eq!(
                drift_windows(&kept, Channel::Sms, day, 7),
                drift_windows(&experiment(), Channel::Sms, day, 7)
            );
        }
    }

    #[test]
    fn a_zero_window_counts_as_one_day() {
        let exp = experiment();
        let windows = drift_windows(&exp, Channel::Sms, 13, 0);
        assert_eq!(windows[0].recent, ArmStats::new(20, 1000));
        assert_eq!(windows[0].baseline, ArmStats::new(470, 13_000));
    }

    #[test]
    fn the_leaders_drop_is_found_first_and_forces_exploration_for_a_window() {
        let exp = experiment();
        let drift = first_drift(
            &exp,
            &[Channel::Push, Channel::Sms],
            13,
            7,
            &DriftRule::default(),
            &CUSUM,
        )
        .expect("a fell from 5 % to 2 %");
        assert_eq!(drift.channel, Channel::Sms);
        assert_eq!(drift.window.watched, "leading variant a");
        assert!((drift.check.drop - 0.6).abs() < 1e-9);
        assert_eq!(drift.explore_until, 20);
    }

    #[test]
    fn no_drift_is_looked_for_while_exploration_is_forced_or_without_a_drop() {
        let mut exp = experiment();
        exp.explore_until = Some(13);
        assert_eq!(
            first_drift(&exp, &[Channel::Sms], 13, 7, &DriftRule::default(), &CUSUM),
            None
        );
        exp.explore_until = Some(12);
        assert!(first_drift(&exp, &[Channel::Sms], 13, 7, &DriftRule::default(), &CUSUM).is_some());
        // On day 6 every day is in the recent window: no baseline, nothing to compare.
        assert_eq!(
            first_drift(&exp, &[Channel::Sms], 6, 7, &DriftRule::default(), &CUSUM),
            None
        );
        // b is steady: when b leads and the channel's 30 % drop stays under the rule's bar,
        // nothing drifts: the CUSUM watches the leader only, and the leader held.
        let mut steady = experiment();
        steady.shares = BTreeMap::from([("a".to_owned(), 0.1), ("b".to_owned(), 0.9)]);
        let rule = DriftRule {
            max_drop: 0.35,
            ..DriftRule::default()
        };
        assert_eq!(
            first_drift(&steady, &[Channel::Sms], 13, 7, &rule, &CUSUM),
            None
        );
    }

    #[test]
    fn a_lasting_drop_too_small_for_the_rule_is_caught_by_the_cusum() {
        // 5 % for a week, then 4.4 % (12 % lower, under the rule's 20 %) on 10 000 trials a day:
        // each day adds (0.05 − 0.044) / 0.00218 − 0.5 ≈ 2.25 standard deviations.
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[arm(Channel::Sms, "a")]);
        exp.shares = BTreeMap::from([("a".to_owned(), 1.0)]);
        for day in 0..14 {
            let conversions = if day < 7 { 500 } else { 440 };
            fold(&mut exp, day, "a", Channel::Sms, conversions, 10_000);
        }
        let drift = first_drift(&exp, &[Channel::Sms], 13, 7, &DriftRule::default(), &CUSUM)
            .expect("seven days 12 % lower");
        assert!((drift.check.drop - 0.12).abs() < 1e-9);
        assert!(
            drift.check.reason.contains("CUSUM reached"),
            "{}",
            drift.check.reason
        );
        // A higher threshold waits longer; and two such days are not enough (about 4.5 < 5).
        let mut early = Experiment::new(test_goal(&["sms"]));
        early.set_arms(&[arm(Channel::Sms, "a")]);
        early.shares = exp.shares.clone();
        for day in 0..9 {
            let conversions = if day < 7 { 500 } else { 440 };
            fold(&mut early, day, "a", Channel::Sms, conversions, 10_000);
        }
        let rule = DriftRule {
            min_sample: 100,
            ..DriftRule::default()
        };
        // Day 8's window (days 2–8) holds five days at 5 % and two lower ones against days 0–1.
        assert_eq!(
            first_drift(&early, &[Channel::Sms], 8, 7, &rule, &CUSUM),
            None
        );
        let patient = CusumSettings { k: 0.5, h: 100.0 };
        assert_eq!(
            first_drift(
                &exp,
                &[Channel::Sms],
                13,
                7,
                &DriftRule::default(),
                &patient
            ),
            None
        );
    }
}
