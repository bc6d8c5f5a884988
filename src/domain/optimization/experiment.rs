//! A campaign's experiment: the approved variants (arms) under test, and what has been learned
//! about each of them.
//!
//! An arm is a variant as the optimizer knows it: its channel, its segment and the creative levels
//! it is made of (so the genetic search can recombine them). The experiment folds observations into
//! per-arm counts, re-opens exploration after drift and reports the campaign's progress. Live
//! updates and the rebuild after a restart go through the same methods here, so both reach the same
//! state. Which observations were already folded is the caller's to track (it knows their ids).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::allocation::SpendBounds;
use super::drift::reopen_exploration;
use super::forecast::{Forecast, forecast_daily};
use super::response::ResponseCurve;
use super::thompson::ArmStats;
use crate::domain::bounds::{Money, add_count};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::channel::Format;
use crate::domain::content::{CreativeCell, LevelChoice, Variant};

/// One approved variant as the experiment knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    pub variant: String,
    pub channel: Channel,
    pub segment: String,
    pub levels: Vec<LevelChoice>,
    /// The format and language it was written in: with the segment, its content cell, the
    /// space the genetic search breeds it in. Absent in experiments recorded before cells were
    /// kept; such an arm is tested but never bred from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Arm {
    pub fn of(variant: &Variant) -> Self {
        Arm {
            variant: variant.id.clone(),
            channel: variant.channel,
            segment: variant.segment.clone(),
            levels: variant.levels.clone(),
            format: Some(variant.format),
            language: Some(variant.language.clone()),
        }
    }

    /// The content cell it was written in, when its experiment recorded one.
    pub fn cell(&self) -> Option<CreativeCell> {
        Some(CreativeCell {
            channel: self.channel,
            segment: self.segment.clone(),
            language: self.language.clone()?,
            format: *self.format?.written_with().first()?,
        })
    }
}

/// One variant's evidence. `arm` is `None` for a variant observed but never started (it is counted
/// in the campaign's totals and never bought).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmState {
    pub arm: Option<Arm>,
    /// What the posterior is built from (shrunk when exploration re-opens).
    pub stats: ArmStats,
    /// Raw per-day counts from [`Experiment::daily_from`] on, for drift windows.
    pub daily: BTreeMap<u32, ArmStats>,
    /// The counts of every day before [`Experiment::daily_from`], summed: a drift window reads
    /// the days before it only as one baseline.
    pub earlier: ArmStats,
    /// The day it was retired to make room for a new generation: it keeps its evidence (the
    /// genetic search still learns from it) and is never bought again.
    pub retired: Option<u32>,
}

impl ArmState {
    /// Whether it is a started, not retired, arm on `channel`.
    pub fn live_on(&self, channel: Channel) -> bool {
        self.retired.is_none() && self.arm.as_ref().is_some_and(|a| a.channel == channel)
    }
}

/// What one observation brings to the experiment. Counts are signed as the market reports them; a
/// negative count or amount (which validation refuses upstream) is folded as 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed<'a> {
    pub variant: &'a str,
    pub channel: Channel,
    pub conversions: i64,
    pub impressions: i64,
    pub spend: f64,
}

/// What the plan says of each channel: its daily spend, response curve and bounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelPlans {
    pub daily: BTreeMap<Channel, f64>,
    pub curves: BTreeMap<Channel, ResponseCurve>,
    pub bounds: BTreeMap<Channel, SpendBounds>,
}

/// How far a campaign is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub started: bool,
    pub conversions: u64,
    pub spend: f64,
    /// Days with observations.
    pub days: u32,
    pub forecast: Option<Forecast>,
}

/// A campaign's experiment.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub goal: CampaignGoal,
    pub arms: BTreeMap<String, ArmState>,
    /// Spend per channel and day: the plan's, then each budget move's.
    pub daily: BTreeMap<Channel, f64>,
    /// The plan's spend per channel and day, as the latest experiment decision had it.
    pub planned: BTreeMap<Channel, f64>,
    pub curves: BTreeMap<Channel, ResponseCurve>,
    /// The plan's bounds on each channel's daily spend (none: 0 and no cap).
    pub bounds: BTreeMap<Channel, SpendBounds>,
    /// The latest traffic share of every variant split so far.
    pub shares: BTreeMap<String, f64>,
    pub conversions_by_day: BTreeMap<u32, u64>,
    /// Exact, so that the order observations are folded in never changes it.
    pub spend: Money,
    /// Per channel: (spend, conversions).
    pub spend_by_channel: BTreeMap<Channel, (Money, u64)>,
    /// Days whose batch was learned from (their decisions are made once).
    pub seen_days: BTreeSet<u32>,
    /// Exploration is forced up to this day after drift.
    pub explore_until: Option<u32>,
    /// The first day arms keep counts of one by one (see [`Experiment::keep_days_from`]).
    pub daily_from: u32,
    /// Each channel's declared winner (see [`super::winner`]); cleared when exploration re-opens.
    pub winners: BTreeMap<Channel, String>,
    /// The level texts the arms share: a couple of hundred variants recombine a few dozen.
    texts: HashSet<Arc<str>>,
}

impl Experiment {
    pub fn new(goal: CampaignGoal) -> Self {
        Experiment {
            goal,
            arms: BTreeMap::new(),
            daily: BTreeMap::new(),
            planned: BTreeMap::new(),
            curves: BTreeMap::new(),
            bounds: BTreeMap::new(),
            shares: BTreeMap::new(),
            conversions_by_day: BTreeMap::new(),
            spend: Money::default(),
            spend_by_channel: BTreeMap::new(),
            seen_days: BTreeSet::new(),
            explore_until: None,
            daily_from: 0,
            winners: BTreeMap::new(),
            texts: HashSet::new(),
        }
    }

    /// Adds (or refreshes) arms; evidence already gathered for them is kept.
    pub fn set_arms(&mut self, arms: &[Arm]) {
        for arm in arms {
            let mut arm = arm.clone();
            for level in &mut arm.levels {
                level.dimension = share(&mut self.texts, &level.dimension);
                level.value = share(&mut self.texts, &level.value);
            }
            let state = self.arms.entry(arm.variant.clone()).or_default();
            state.arm = Some(arm);
        }
    }

    /// An experiment decision (start or re-budget): its arms join, its budget, curves and bounds
    /// replace the old ones.
    pub fn start(&mut self, arms: &[Arm], budget: ChannelPlans) {
        self.set_arms(arms);
        self.planned = budget.daily.clone();
        self.daily = budget.daily;
        self.curves = budget.curves;
        self.bounds = budget.bounds;
    }

    /// A traffic-split decision: its shares replace those of the same variants.
    pub fn merge_shares(&mut self, shares: BTreeMap<String, f64>) {
        self.shares.extend(shares);
    }

    /// A drift decision: exploration re-opens, keeping `keep` of the evidence, and is forced up to
    /// `explore_until`.
    pub fn drifted(&mut self, explore_until: Option<u32>, keep: f64) {
        self.explore_until = explore_until;
        self.reopen(keep);
    }

    /// Folds one observation into the counts (conversions per impression is the arm's rate).
    /// Every sum saturates (see [`crate::domain::bounds`]): no input makes a total overflow or turn non-finite.
    pub fn fold(&mut self, day: u32, obs: &Observed<'_>) {
        let (conversions, impressions) = (obs.conversions, obs.impressions);
        let state = match self.arms.get_mut(obs.variant) {
            Some(state) => state,
            None => self.arms.entry(obs.variant.to_owned()).or_default(),
        };
        let daily = if day < self.daily_from {
            &mut state.earlier
        } else {
            state.daily.entry(day).or_default()
        };
        for stats in [&mut state.stats, daily] {
            stats.successes = add_count(stats.successes, conversions);
            stats.trials = add_count(stats.trials, impressions);
        }
        let on_day = self.conversions_by_day.entry(day).or_default();
        *on_day = add_count(*on_day, conversions);
        self.spend = self.spend.plus(obs.spend);
        let by_channel = self.spend_by_channel.entry(obs.channel).or_default();
        by_channel.0 = by_channel.0.plus(obs.spend);
        by_channel.1 = add_count(by_channel.1, conversions);
    }

    /// Sums every arm's counts of the days before `day` into its `earlier` counts, so an
    /// experiment keeps a window's worth of days per arm however long it runs. Drift windows that
    /// start at `day` or later read the same sums as before; the optimizer calls this with the
    /// first day the next day's window holds.
    pub fn keep_days_from(&mut self, day: u32) {
        if day <= self.daily_from {
            return;
        }
        self.daily_from = day;
        for state in self.arms.values_mut() {
            while let Some(entry) = state.daily.first_entry() {
                if *entry.key() >= day {
                    break;
                }
                let stats = entry.remove();
                state.earlier.successes = state.earlier.successes.saturating_add(stats.successes);
                state.earlier.trials = state.earlier.trials.saturating_add(stats.trials);
            }
        }
    }

    /// Shrinks every arm's posterior evidence to `keep` of it (see [`reopen_exploration`]); the
    /// per-day counts the drift windows read are left whole.
    pub fn reopen(&mut self, keep: f64) {
        self.winners.clear();
        let ids: Vec<String> = self.arms.keys().cloned().collect();
        let mut stats: Vec<ArmStats> = ids
            .iter()
            .filter_map(|id| self.arms.get(id).map(|s| s.stats))
            .collect();
        reopen_exploration(&mut stats, keep);
        for (id, s) in ids.iter().zip(stats) {
            if let Some(state) = self.arms.get_mut(id) {
                state.stats = s;
            }
        }
    }

    /// Cumulative conversions for every day from 0 to the last day with observations (a day
    /// without any repeats the day before).
    pub fn cumulative(&self) -> Vec<f64> {
        let Some(&last) = self.conversions_by_day.keys().next_back() else {
            return Vec::new();
        };
        let mut total = 0u64;
        (0..=last)
            .map(|d| {
                total = total.saturating_add(self.conversions_by_day.get(&d).copied().unwrap_or(0));
                total as f64
            })
            .collect()
    }

    /// Conversions counted so far (what [`Experiment::progress`] reports, without its forecast).
    pub fn conversions(&self) -> u64 {
        self.conversions_by_day
            .values()
            .fold(0u64, |total, c| total.saturating_add(*c))
    }

    pub fn progress(&self) -> Progress {
        let cumulative = self.cumulative();
        let conversions = cumulative.last().copied().unwrap_or(0.0) as u64;
        Progress {
            started: true,
            conversions,
            spend: self.spend.as_f64(),
            days: u32::try_from(cumulative.len()).unwrap_or(u32::MAX),
            forecast: forecast_daily(&cumulative, self.goal.target as f64).ok(),
        }
    }

    /// The live arms on `channel` with their evidence, in variant id order.
    pub fn arms_of(&self, channel: Channel) -> Vec<(String, ArmStats)> {
        self.arms
            .iter()
            .filter(|(_, s)| s.live_on(channel))
            .map(|(id, s)| (id.clone(), s.stats))
            .collect()
    }

    /// Retires the arms named on `day`; an unknown or already retired one is left as it is.
    pub fn retire<'a>(&mut self, variants: impl IntoIterator<Item = &'a str>, day: u32) {
        for id in variants {
            if let Some(state) = self.arms.get_mut(id) {
                state.retired.get_or_insert(day);
            }
        }
    }

    /// Whether exploration is forced on `day` (after drift).
    pub fn exploring(&self, day: u32) -> bool {
        self.explore_until.is_some_and(|until| day <= until)
    }
}

/// The copy of `text` the experiment already holds, else `text` itself, kept from now on.
fn share(texts: &mut HashSet<Arc<str>>, text: &Arc<str>) -> Arc<str> {
    match texts.get(text) {
        Some(kept) => Arc::clone(kept),
        None => {
            texts.insert(Arc::clone(text));
            Arc::clone(text)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::bounds;
    use crate::domain::campaign::test_goal;
    use crate::domain::channel::Creative;

    pub(crate) fn arm(channel: Channel, variant: &str) -> Arm {
        Arm {
            variant: variant.to_owned(),
            channel,
            segment: "students".to_owned(),
            levels: Vec::new(),
            format: None,
            language: None,
        }
    }

    pub(crate) fn seen<'a>(
        variant: &'a str,
        channel: Channel,
        conv: i64,
        imp: i64,
    ) -> Observed<'a> {
        Observed {
            variant,
            channel,
            conversions: conv,
            impressions: imp,
            spend: 100.0,
        }
    }

    #[test]
    fn an_arm_takes_the_variants_identity_channel_segment_and_levels() {
        let levels = vec![LevelChoice {
            dimension: "offer".into(),
            index: 1,
            value: "free shipping".into(),
        }];
        let variant = Variant {
            id: "students/kr_sms/ko/0.1".to_owned(),
            channel: Channel::Sms,
            format: Format::KrSms,
            segment: "students".to_owned(),
            language: "ko".to_owned(),
            levels: levels.clone(),
            creative: Creative::default(),
            measures: Vec::new(),
            warnings: Vec::new(),
        };
        let expected = Arm {
            levels,
            format: Some(Format::KrSms),
            language: Some("ko".to_owned()),
            ..arm(Channel::Sms, "students/kr_sms/ko/0.1")
        };
        assert_eq!(Arm::of(&variant), expected);
        let cell = expected.cell().unwrap();
        assert_eq!(cell.to_string(), "students/kr_sms/ko");
        // An LMS is written in the SMS cell; an arm recorded without its cell has none.
        let lms = Arm {
            format: Some(Format::KrLms),
            ..expected
        };
        assert_eq!(lms.cell(), Some(cell));
        assert_eq!(arm(Channel::Sms, "old").cell(), None);
    }

    #[test]
    fn arms_share_one_copy_of_each_level_text() {
        // As decoded from a decision: each arm with its own copy of the same texts.
        let with_offer = |variant| Arm {
            levels: vec![LevelChoice {
                dimension: "offer".into(),
                index: 1,
                value: "free shipping".into(),
            }],
            ..arm(Channel::Sms, variant)
        };
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[with_offer("a"), with_offer("b")]);
        let level = |id: &str| exp.arms[id].arm.as_ref().map(|a| a.levels[0].clone());
        let (a, b) = (level("a").unwrap(), level("b").unwrap());
        assert!(Arc::ptr_eq(&a.value, &b.value) && Arc::ptr_eq(&a.dimension, &b.dimension));
        assert_eq!(Some(a), with_offer("a").levels.first().cloned());
    }

    #[test]
    fn an_arm_reads_the_json_recorded_in_experiment_decisions() {
        let json = r#"{"variant":"v1","channel":"push","segment":"lapsed","levels":[{"dimension":"cta","index":0,"value":"Go"}]}"#;
        let arm: Arm = serde_json::from_str(json).unwrap();
        assert_eq!(arm.channel, Channel::Push);
        assert_eq!(&*arm.levels[0].value, "Go");
        assert_eq!(serde_json::to_string(&arm).unwrap(), json);
    }

    #[test]
    fn folding_counts_each_arm_day_and_channel() {
        let mut exp = Experiment::new(test_goal(&["sms", "push"]));
        exp.set_arms(&[arm(Channel::Sms, "a"), arm(Channel::Push, "b")]);
        exp.fold(0, &seen("a", Channel::Sms, 3, 100));
        exp.fold(1, &seen("a", Channel::Sms, 2, 50));
        exp.fold(1, &seen("b", Channel::Push, 4, 80));
        // A negative count from a bad source folds as nothing, its spend still counts.
        exp.fold(1, &seen("b", Channel::Push, -7, -1));
        let a = &exp.arms["a"];
        assert_eq!(a.stats, ArmStats::new(5, 150));
        assert_eq!(a.daily[&1], ArmStats::new(2, 50));
        assert_eq!(exp.arms["b"].stats, ArmStats::new(4, 80));
        assert_eq!(exp.conversions_by_day, BTreeMap::from([(0, 3), (1, 6)]));
        assert_eq!(exp.spend.as_f64(), 400.0);
        assert_eq!(exp.spend_by_channel[&Channel::Push], (Money::of(200.0), 4));
        assert_eq!(
            exp.arms_of(Channel::Sms),
            vec![("a".to_owned(), ArmStats::new(5, 150))]
        );
    }

    #[test]
    fn maximal_items_leave_every_total_finite() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[arm(Channel::Sms, "a")]);
        for day in 0..50 {
            for _ in 0..20 {
                exp.fold(
                    day,
                    &Observed {
                        variant: "a",
                        channel: Channel::Sms,
                        conversions: i64::MAX,
                        impressions: i64::MAX,
                        spend: 1e308,
                    },
                );
            }
        }
        exp.fold(
            50,
            &Observed {
                spend: f64::NAN,
                ..seen("a", Channel::Sms, 1, 1)
            },
        );
        let progress = exp.progress();
        assert_eq!(progress.conversions, u64::MAX);
        assert!(progress.spend.is_finite() && progress.spend <= bounds::MAX_TOTAL_MONEY);
        assert_eq!(exp.arms["a"].stats, ArmStats::new(u64::MAX, u64::MAX));
        assert!(exp.cumulative().iter().all(|c| c.is_finite()));
        let (spent, converted) = exp.spend_by_channel[&Channel::Sms];
        assert!(spent.as_f64().is_finite());
        assert_eq!(converted, u64::MAX);
        if let Some(forecast) = progress.forecast {
            assert!(forecast.slope.is_finite() && forecast.intercept.is_finite());
        }
    }

    #[test]
    fn an_unknown_variant_is_counted_but_never_an_arm() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.fold(0, &seen("ghost", Channel::Sms, 1, 10));
        assert!(exp.arms_of(Channel::Sms).is_empty());
        assert_eq!(exp.progress().conversions, 1);
        // Starting it later keeps what was observed.
        exp.set_arms(&[arm(Channel::Sms, "ghost")]);
        assert_eq!(exp.arms_of(Channel::Sms)[0].1, ArmStats::new(1, 10));
    }

    #[test]
    fn reopening_shrinks_the_posterior_but_not_the_daily_counts() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[arm(Channel::Sms, "a")]);
        exp.fold(2, &seen("a", Channel::Sms, 40, 1000));
        exp.drifted(Some(9), 0.1);
        assert_eq!(exp.arms["a"].stats, ArmStats::new(4, 100));
        assert_eq!(exp.arms["a"].daily[&2], ArmStats::new(40, 1000));
        assert!(exp.exploring(9) && !exp.exploring(10));
    }

    #[test]
    fn days_before_the_kept_ones_are_summed_and_later_folds_of_them_join_the_sum() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[arm(Channel::Sms, "a")]);
        for day in 0..5 {
            exp.fold(day, &seen("a", Channel::Sms, 10, 100));
        }
        exp.keep_days_from(3);
        let a = &exp.arms["a"];
        assert_eq!(a.earlier, ArmStats::new(30, 300));
        assert_eq!(a.daily.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(
            a.stats,
            ArmStats::new(50, 500),
            "the posterior is untouched"
        );
        // A late observation of a summed day joins the sum; keeping from an earlier day is a no-op.
        exp.fold(1, &seen("a", Channel::Sms, 1, 10));
        exp.keep_days_from(2);
        assert_eq!(exp.arms["a"].earlier, ArmStats::new(31, 310));
        assert_eq!(exp.daily_from, 3);
        assert_eq!(exp.conversions_by_day[&1], 11);
    }

    #[test]
    fn cumulative_fills_quiet_days_and_progress_forecasts_from_it() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        assert!(exp.cumulative().is_empty());
        assert_eq!(exp.progress().days, 0);
        assert_eq!(exp.progress().forecast, None, "no days, no forecast");
        exp.fold(0, &seen("a", Channel::Sms, 10, 100));
        exp.fold(2, &seen("a", Channel::Sms, 20, 100));
        exp.fold(3, &seen("a", Channel::Sms, 10, 100));
        assert_eq!(exp.cumulative(), vec![10.0, 10.0, 30.0, 40.0]);
        let progress = exp.progress();
        assert!(progress.started);
        assert_eq!((progress.conversions, progress.days), (40, 4));
        assert_eq!(exp.conversions(), progress.conversions);
        assert_eq!(progress.spend, 300.0);
        // Least squares through (1,10), (2,10), (3,30), (4,40): slope 11, intercept -5, and the
        // target of 500 is reached on day 505 / 11.
        let forecast = progress.forecast.unwrap();
        assert!((forecast.slope - 11.0).abs() < 1e-9);
        assert!((forecast.intercept + 5.0).abs() < 1e-9);
        assert!((forecast.eta_day.unwrap() - 505.0 / 11.0).abs() < 1e-9);
    }

    #[test]
    fn decisions_merge_the_same_way_live_and_rebuilt() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.start(
            &[arm(Channel::Sms, "a")],
            ChannelPlans {
                daily: BTreeMap::from([(Channel::Sms, 50.0)]),
                curves: BTreeMap::from([(Channel::Sms, ResponseCurve::log(2.0, 10.0))]),
                bounds: BTreeMap::from([(
                    Channel::Sms,
                    SpendBounds {
                        min: 5.0,
                        max: None,
                    },
                )]),
            },
        );
        assert_eq!(exp.bounds[&Channel::Sms].min, 5.0);
        exp.merge_shares(BTreeMap::from([
            ("a".to_owned(), 0.7),
            ("b".to_owned(), 0.3),
        ]));
        exp.merge_shares(BTreeMap::from([("a".to_owned(), 0.4)]));
        // A re-budget brings no arms and keeps the ones it has.
        exp.daily.insert(Channel::Sms, 60.0);
        exp.start(
            &[],
            ChannelPlans {
                daily: BTreeMap::from([(Channel::Sms, 80.0)]),
                ..ChannelPlans::default()
            },
        );
        assert_eq!(exp.shares["a"], 0.4);
        assert_eq!(exp.shares["b"], 0.3);
        assert_eq!(exp.daily[&Channel::Sms], 80.0);
        assert_eq!(exp.planned[&Channel::Sms], 80.0);
        assert!(exp.curves.is_empty() && exp.bounds.is_empty());
        assert_eq!(exp.arms_of(Channel::Sms).len(), 1);
    }
}
