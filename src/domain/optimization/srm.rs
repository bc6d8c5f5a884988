//! Sample-ratio mismatch: whether the split a market delivered is the one the optimizer planned.
//!
//! A day's buys give each variant of a channel × segment a share of its spend. Within one channel
//! and segment a click costs the same whatever the creative (the creative moves the click-through
//! and conversion rates, not the price of a click), so the clicks each variant got should follow
//! the planned spend shares. Pearson's χ² of the delivered clicks against those shares, on
//! K − 1 degrees of freedom, is far in its tail when they do not: a platform that spent otherwise
//! than ordered, a variant that was never served, a report that lost rows. Such a day's results
//! are not the experiment's: every conversion rate learned from it may be biased.
//!
//! Variants expected to get fewer than [`MIN_EXPECTED`] clicks are pooled into one cell (χ² is
//! not a fair approximation below that); with fewer than two cells there is nothing to test.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::domain::buy::Buy;
use crate::domain::campaign::Channel;

/// The significance below which a mismatch is an alarm: rare enough that a sound market raises
/// one in a thousand channel-days.
pub const SRM_ALPHA: f64 = 0.001;

/// The least expected clicks a variant is tested on alone.
pub const MIN_EXPECTED: f64 = 5.0;

/// One variant's planned and delivered part of a channel × segment's day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitCell {
    pub variant: String,
    /// Its share of the planned spend.
    pub planned: f64,
    /// The clicks delivered.
    pub clicks: u64,
    /// The clicks the planned share expects of the delivered total.
    pub expected: f64,
}

/// The test of one channel × segment's day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleRatio {
    pub cells: Vec<SplitCell>,
    pub clicks: u64,
    pub chi2: f64,
    pub degrees_of_freedom: usize,
    pub p_value: f64,
}

impl SampleRatio {
    /// Whether the delivered split is too unlike the planned one to be chance.
    pub fn mismatch(&self) -> bool {
        self.p_value < SRM_ALPHA
    }

    /// The variant whose delivered share is furthest from its planned one.
    pub fn worst(&self) -> Option<&SplitCell> {
        let gap = |c: &SplitCell| (c.clicks as f64 - c.expected).abs();
        self.cells.iter().max_by(|a, b| gap(a).total_cmp(&gap(b)))
    }

    /// The alarm's reason for `channel` to `segment` on `day`, naming the variant furthest from
    /// its plan.
    pub fn alarm_reason(&self, channel: Channel, segment: &str, day: u32) -> String {
        let worst = self.worst().map_or(String::new(), |c| {
            format!(
                "; {} got {:.1} % of the {} clicks against {:.1} % planned",
                c.variant,
                100.0 * c.clicks as f64 / self.clicks.max(1) as f64,
                self.clicks,
                100.0 * c.planned
            )
        });
        let p = if self.p_value < 1e-12 {
            "p < 1e-12".to_owned()
        } else {
            format!("p = {:.1e}", self.p_value)
        };
        let df = self.degrees_of_freedom;
        format!(
            "{channel} to {segment} on day {day} delivered a split unlike the one planned: χ² = {:.1} on {df} degree{} of freedom, {p}, below {SRM_ALPHA}{worst}. The day's results may be biased; check what the platform delivered",
            self.chi2,
            if df == 1 { "" } else { "s" }
        )
    }
}

/// Tests `delivered` clicks (variant → clicks; a planned variant missing got none) against the
/// `planned` spend (variant → spend). `None` when there is nothing to test: no planned spend, no
/// click delivered, or fewer than two cells once the small ones are pooled.
pub fn sample_ratio(
    planned: &BTreeMap<String, f64>,
    delivered: &BTreeMap<String, u64>,
) -> Option<SampleRatio> {
    let spend: f64 = planned
        .values()
        .filter(|s| s.is_finite() && **s > 0.0)
        .sum();
    let clicks = planned
        .keys()
        .map(|v| delivered.get(v).copied().unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    if !spend.is_finite() || spend <= 0.0 || clicks == 0 {
        return None;
    }
    let cells: Vec<SplitCell> = planned
        .iter()
        .map(|(variant, &s)| {
            let share = if s.is_finite() && s > 0.0 {
                s / spend
            } else {
                0.0
            };
            SplitCell {
                variant: variant.clone(),
                planned: share,
                clicks: delivered.get(variant).copied().unwrap_or(0),
                expected: share * clicks as f64,
            }
        })
        .collect();
    // (observed, expected) per tested cell, the small ones pooled.
    let mut tested: Vec<(f64, f64)> = Vec::new();
    let mut pooled = (0.0, 0.0);
    for cell in &cells {
        if cell.expected >= MIN_EXPECTED {
            tested.push((cell.clicks as f64, cell.expected));
        } else {
            pooled.0 += cell.clicks as f64;
            pooled.1 += cell.expected;
        }
    }
    // A pool expected to be empty (variants planned no spend) tests that they got none.
    if pooled.1 > 0.0 || pooled.0 > 0.0 {
        tested.push(pooled);
    }
    if tested.len() < 2 {
        return None;
    }
    let chi2: f64 = tested
        .iter()
        .map(|&(o, e)| {
            if e > 0.0 {
                (o - e).powi(2) / e
            } else {
                f64::INFINITY
            }
        })
        .sum();
    let degrees_of_freedom = tested.len() - 1;
    let p_value = if chi2.is_finite() {
        ChiSquared::new(degrees_of_freedom as f64).map_or(1.0, |d| d.sf(chi2))
    } else {
        0.0
    };
    Some(SampleRatio {
        cells,
        clicks,
        chi2,
        degrees_of_freedom,
        p_value,
    })
}

/// The test of one channel × segment of a day's buys.
#[derive(Clone, Debug, PartialEq)]
pub struct CellRatio {
    pub channel: Channel,
    pub segment: String,
    pub test: SampleRatio,
}

/// Tests each channel × segment of a day's `buys` against the clicks `delivered` (channel,
/// variant, clicks; a variant's rows add up). A channel the batch has no row of is not reported
/// yet, not mismatched: it is left out.
pub fn day_ratios<'a>(
    buys: &[Buy],
    delivered: impl IntoIterator<Item = (Channel, &'a str, u64)>,
) -> Vec<CellRatio> {
    let mut clicks: BTreeMap<(Channel, &str), u64> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (channel, variant, count) in delivered {
        reported.insert(channel);
        let total = clicks.entry((channel, variant)).or_default();
        *total = total.saturating_add(count);
    }
    let mut planned: BTreeMap<(Channel, &str), BTreeMap<String, f64>> = BTreeMap::new();
    for buy in buys.iter().filter(|b| reported.contains(&b.channel)) {
        *planned
            .entry((buy.channel, &buy.segment))
            .or_default()
            .entry(buy.variant.clone())
            .or_default() += buy.spend;
    }
    planned
        .into_iter()
        .filter_map(|((channel, segment), spend)| {
            let got: BTreeMap<String, u64> = spend
                .keys()
                .filter_map(|v| Some((v.clone(), *clicks.get(&(channel, v.as_str()))?)))
                .collect();
            Some(CellRatio {
                channel,
                segment: segment.to_owned(),
                test: sample_ratio(&spend, &got)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(spends: &[(&str, f64)]) -> BTreeMap<String, f64> {
        spends.iter().map(|(v, s)| ((*v).to_owned(), *s)).collect()
    }

    fn clicks(counts: &[(&str, u64)]) -> BTreeMap<String, u64> {
        counts.iter().map(|(v, c)| ((*v).to_owned(), *c)).collect()
    }

    #[test]
    fn the_p_value_is_the_chi_squared_tail() {
        // 60 against 40 expected 50/50: χ² = 4 on 1 degree of freedom, p = 0.0455.
        let test = sample_ratio(
            &planned(&[("a", 10.0), ("b", 10.0)]),
            &clicks(&[("a", 60), ("b", 40)]),
        )
        .unwrap();
        assert!((test.chi2 - 4.0).abs() < 1e-12);
        assert_eq!(test.degrees_of_freedom, 1);
        assert!((test.p_value - 0.0455).abs() < 1e-4, "{}", test.p_value);
        assert!(!test.mismatch());
        // 10 000 clicks split 55/45 where 50/50 was planned: χ² = 108.16, far past the 10.83 at
        // which p = 0.001 on 1 degree of freedom.
        let test = sample_ratio(
            &planned(&[("a", 1.0), ("b", 1.0)]),
            &clicks(&[("a", 5_520), ("b", 4_480)]),
        )
        .unwrap();
        assert!((test.chi2 - 108.16).abs() < 1e-9);
        assert!(test.mismatch());
    }

    #[test]
    fn the_planned_shares_are_the_spend_not_an_even_split() {
        // 80/20 planned, 80/20 delivered: no mismatch; 50/50 delivered is one.
        let plan = planned(&[("a", 80.0), ("b", 20.0)]);
        let test = sample_ratio(&plan, &clicks(&[("a", 800), ("b", 200)])).unwrap();
        assert_eq!(test.chi2, 0.0);
        assert_eq!(test.p_value, 1.0);
        let test = sample_ratio(&plan, &clicks(&[("a", 500), ("b", 500)])).unwrap();
        assert!(test.mismatch(), "{test:?}");
        assert!((test.cells[0].expected - 800.0).abs() < 1e-9);
    }

    #[test]
    fn a_planned_variant_never_served_is_a_mismatch() {
        let plan = planned(&[("a", 10.0), ("b", 10.0), ("c", 10.0)]);
        let test = sample_ratio(&plan, &clicks(&[("a", 150), ("b", 150)])).unwrap();
        assert_eq!(test.cells[2].clicks, 0);
        assert!(test.mismatch(), "{test:?}");
        assert_eq!(test.worst().unwrap().variant, "c");
        assert_eq!(
            test.alarm_reason(Channel::Sms, "students", 3),
            "sms to students on day 3 delivered a split unlike the one planned: χ² = 150.0 on 2 \
             degrees of freedom, p < 1e-12, below 0.001; c got 0.0 % of the 300 clicks against \
             33.3 % planned. The day's results may be biased; check what the platform delivered"
        );
        // Clicks of a variant nobody planned are not this test's (another cell's, or an error
        // ingestion reports).
        let test = sample_ratio(
            &planned(&[("a", 10.0), ("b", 10.0)]),
            &clicks(&[("a", 100), ("b", 100), ("z", 1_000)]),
        )
        .unwrap();
        assert_eq!(test.clicks, 200);
        assert!(!test.mismatch());
    }

    #[test]
    fn small_cells_are_pooled_and_too_little_is_not_tested() {
        // 100 variants at 1 % each on 200 clicks: every one expects 2, so they are one pool and
        // there is nothing to compare it with.
        let plan: BTreeMap<String, f64> = (0..100).map(|i| (format!("v{i}"), 1.0)).collect();
        let even: BTreeMap<String, u64> = (0..100).map(|i| (format!("v{i}"), 2)).collect();
        assert_eq!(sample_ratio(&plan, &even), None);
        // Two big cells and the small rest pooled: three cells, two degrees of freedom.
        let mut plan = planned(&[("a", 40.0), ("b", 40.0)]);
        let mut got = clicks(&[("a", 400), ("b", 400)]);
        for i in 0..20 {
            plan.insert(format!("s{i}"), 0.1);
            got.insert(format!("s{i}"), 0);
        }
        got.insert("s0".to_owned(), 20);
        let test = sample_ratio(&plan, &got).unwrap();
        assert_eq!(test.degrees_of_freedom, 2);
        assert!(!test.mismatch(), "{test:?}");
        // Nothing planned or nothing delivered: no test, and no panic on absurd spends.
        assert_eq!(sample_ratio(&BTreeMap::new(), &got), None);
        assert_eq!(
            sample_ratio(&planned(&[("a", 1.0)]), &BTreeMap::new()),
            None
        );
        let absurd = planned(&[("a", f64::NAN), ("b", f64::INFINITY), ("c", -1.0)]);
        assert_eq!(sample_ratio(&absurd, &got), None);
    }

    #[test]
    fn a_days_buys_are_tested_per_channel_and_segment_reported() {
        let buy = |channel, segment: &str, variant: &str, spend| Buy {
            channel,
            segment: segment.to_owned(),
            variant: variant.to_owned(),
            spend,
        };
        let buys = [
            buy(Channel::Sms, "students", "a", 50.0),
            buy(Channel::Sms, "students", "b", 50.0),
            buy(Channel::Sms, "parents", "c", 30.0),
            buy(Channel::Sms, "parents", "d", 10.0),
            buy(Channel::Search, "students", "s", 40.0),
            buy(Channel::Search, "students", "t", 40.0),
        ];
        // Students' SMS as planned (two rows of a), parents' SMS all on c, search not reported.
        let delivered = [
            (Channel::Sms, "a", 100),
            (Channel::Sms, "a", 100),
            (Channel::Sms, "b", 200),
            (Channel::Sms, "c", 400),
        ];
        let ratios = day_ratios(&buys, delivered);
        let cells: Vec<(Channel, &str, bool)> = ratios
            .iter()
            .map(|r| (r.channel, r.segment.as_str(), r.test.mismatch()))
            .collect();
        assert_eq!(
            cells,
            vec![
                (Channel::Sms, "parents", true),
                (Channel::Sms, "students", false)
            ]
        );
        assert_eq!(ratios[1].test.cells[0].clicks, 200);
    }
}
