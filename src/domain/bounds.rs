//! The bounds on what one observation from outside may report, the campaign days an observation
//! may belong to, and the arithmetic that adds observations into a campaign's totals.
//!
//! An observation comes from an ad platform's export or a webhook, so anything can be in it. One
//! item with `spend: 1e308` or a count of 2^63 − 1 used to turn a campaign's spend to infinity
//! and its conversions past any target for ever. Validation refuses an item beyond these bounds,
//! and the totals are added with saturating arithmetic besides, so that even a knowledge base full
//! of maximal items (or written before the bounds existed) yields finite figures. Nothing here
//! reads the clock: the time is an argument.

use chrono::{DateTime, Duration, Utc};

/// The largest impressions, clicks or conversions one observation may report. One variant on one
/// channel over one day; a billion impressions is far past any real day's delivery.
pub const MAX_COUNT: i64 = 1_000_000_000;

/// The largest `spend` or `revenue` one observation may report, in the campaign's currency (a
/// trillion units: above any day's buy in any currency, KRW and JPY included).
pub const MAX_MONEY: f64 = 1e12;

/// Where a campaign's money totals stop growing. A million maximal items fit below it, and every
/// figure derived from a total (CPA, ROAS, the budget left, a forecast) stays finite.
pub const MAX_TOTAL_MONEY: f64 = 1e18;
const _: () = assert!(
    MAX_MONEY * 1e6 <= MAX_TOTAL_MONEY,
    "a million maximal items must fit"
);

/// How long after its deadline a campaign still takes observations: the results of its last day
/// arrive after that day ends. Past it (or once the goal is achieved) the campaign is finished.
pub const LATE_RESULTS: Duration = Duration::days(1);

/// `total` plus one observation's count, never past `u64::MAX`. A negative count (which validation
/// refuses) adds nothing.
pub fn add_count(total: u64, count: i64) -> u64 {
    total.saturating_add(u64::try_from(count).unwrap_or(0))
}

/// `total` plus one observation's money, never past [`MAX_TOTAL_MONEY`]. A negative or non-finite
/// amount (which validation refuses) adds nothing, and a total that is not finite counts as 0, so
/// the result is always finite and non-negative.
pub fn add_money(total: f64, amount: f64) -> f64 {
    let total = if total.is_finite() {
        total.max(0.0)
    } else {
        0.0
    };
    let amount = if amount.is_finite() {
        amount.max(0.0)
    } else {
        0.0
    };
    (total + amount).min(MAX_TOTAL_MONEY)
}

/// A campaign's money total, counted exactly in millionths of its currency. Adding integers is
/// exact, so a total does not depend on the order its observations are added in: a rebuild after a
/// restart adds them in the knowledge base's order, the live path as they arrive, and both must
/// show the same figure. It never passes [`MAX_TOTAL_MONEY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(u128);

/// Millionths in a currency unit: finer than any currency's smallest coin.
const MICROS: f64 = 1e6;

impl Money {
    /// One observation's amount, to the nearest millionth; a negative or non-finite amount
    /// (which validation refuses) counts as nothing.
    pub fn of(amount: f64) -> Money {
        if !amount.is_finite() || amount <= 0.0 {
            return Money(0);
        }
        // In range for u128: at most 1e18 × 1e6.
        Money((amount.min(MAX_TOTAL_MONEY) * MICROS).round() as u128)
    }

    /// This total plus one observation's amount, never past [`MAX_TOTAL_MONEY`].
    pub fn plus(self, amount: f64) -> Money {
        Money(
            self.0
                .saturating_add(Money::of(amount).0)
                .min(Money::of(MAX_TOTAL_MONEY).0),
        )
    }

    /// The total in currency units.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / MICROS
    }
}

/// The span of campaign day `day` (0 is the first): `[start + day days, start + day + 1 days)`.
/// `None` when it is beyond the calendar (a day number no campaign reaches).
pub fn day_span(start: DateTime<Utc>, day: u32) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let from = start.checked_add_signed(Duration::days(i64::from(day)))?;
    let to = from.checked_add_signed(Duration::days(1))?;
    Some((from, to))
}

/// Whether campaign day `day` begins at or after the deadline: nothing the campaign bought can
/// have happened on it. The campaign's last day is the last one that begins before the deadline
/// (see [`crate::domain::phase::is_last_day`]): a day that begins exactly at it is not bought.
pub fn day_after_deadline(start: DateTime<Utc>, deadline: DateTime<Utc>, day: u32) -> bool {
    day_span(start, day).is_none_or(|(from, _)| from >= deadline)
}

/// Where an observed window `[from, to]` stands against its campaign and its day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowFit {
    /// Inside the day it is reported for.
    InDay,
    /// It starts before the campaign's start, or after its deadline.
    OutsideCampaign,
    /// Inside the campaign, but not inside the day it is reported for.
    OtherDay {
        day_start: DateTime<Utc>,
        day_end: DateTime<Utc>,
    },
}

/// Checks a window against a campaign (`start`, `deadline`) and the day it is reported for. A
/// window may be shorter than its day (an hourly export), never outside it. The last day (see
/// [`day_after_deadline`]) may end after the deadline.
pub fn window_fit(
    start: DateTime<Utc>,
    deadline: DateTime<Utc>,
    day: u32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> WindowFit {
    if from < start || from > deadline {
        return WindowFit::OutsideCampaign;
    }
    match day_span(start, day) {
        Some((day_start, day_end)) if from >= day_start && to <= day_end => WindowFit::InDay,
        Some((day_start, day_end)) => WindowFit::OtherDay { day_start, day_end },
        None => WindowFit::OutsideCampaign,
    }
}

/// Whether a campaign whose deadline is `deadline` is past taking observations at `now` (its
/// campaign time): more than [`LATE_RESULTS`] after the deadline.
pub fn past_late_results(deadline: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    deadline
        .checked_add_signed(LATE_RESULTS)
        .is_none_or(|closes| now > closes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn counts_saturate_and_ignore_negatives() {
        assert_eq!(add_count(5, 3), 8);
        assert_eq!(add_count(5, -3), 5);
        assert_eq!(add_count(u64::MAX - 1, i64::MAX), u64::MAX);
        assert_eq!(add_count(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn an_exact_money_total_does_not_depend_on_the_order_of_its_amounts() {
        let amounts = [0.1, 149.99999999999997, 0.2, 1e-7, 3.3, 12.5, 1e12];
        let forward = amounts.iter().fold(Money::default(), |t, a| t.plus(*a));
        let backward = amounts
            .iter()
            .rev()
            .fold(Money::default(), |t, a| t.plus(*a));
        assert_eq!(forward, backward);
        // Floating-point addition of the same amounts does depend on it.
        let float = |items: &mut dyn Iterator<Item = &f64>| items.fold(0.0, |t, a| t + a);
        assert_ne!(
            float(&mut [0.1, 0.2, 0.3].iter()),
            float(&mut [0.3, 0.2, 0.1].iter())
        );
        assert_eq!(Money::default().plus(0.1).plus(0.2).as_f64(), 0.3);
        assert_eq!(Money::default().plus(-5.0).plus(f64::NAN), Money::default());
        assert_eq!(
            Money::default().plus(1e308).plus(1e308).as_f64(),
            MAX_TOTAL_MONEY
        );
    }

    #[test]
    fn money_stays_finite_and_non_negative() {
        assert_eq!(add_money(10.0, 2.5), 12.5);
        assert_eq!(add_money(10.0, -2.5), 10.0);
        assert_eq!(add_money(10.0, f64::NAN), 10.0);
        assert_eq!(add_money(10.0, f64::INFINITY), 10.0);
        assert_eq!(add_money(f64::INFINITY, 1.0), 1.0);
        assert_eq!(add_money(1e308, 1e308), MAX_TOTAL_MONEY);
        assert_eq!(add_money(MAX_TOTAL_MONEY, MAX_MONEY), MAX_TOTAL_MONEY);
    }

    #[test]
    fn days_are_whole_days_from_the_start() {
        let start = at("2026-10-01T00:00:00Z");
        assert_eq!(
            day_span(start, 3),
            Some((at("2026-10-04T00:00:00Z"), at("2026-10-05T00:00:00Z")))
        );
        // Past the calendar (year 262 143): no such day.
        assert_eq!(day_span(start, u32::MAX), None);
        assert_eq!(day_span(DateTime::<Utc>::MAX_UTC, 1), None);
    }

    #[test]
    fn the_last_day_is_the_last_to_begin_before_the_deadline() {
        let start = at("2026-10-01T00:00:00Z");
        // A deadline at midnight closes day 9; day 10 begins at it.
        let deadline = at("2026-10-11T00:00:00Z");
        assert!(!day_after_deadline(start, deadline, 9));
        assert!(day_after_deadline(start, deadline, 10));
        // A deadline at noon: its day (10) is still a campaign day, the one after is not.
        let noon = at("2026-10-11T12:00:00Z");
        assert!(!day_after_deadline(start, noon, 10));
        assert!(day_after_deadline(start, noon, 11));
        assert!(day_after_deadline(DateTime::<Utc>::MAX_UTC, noon, 1));
    }

    #[test]
    fn a_window_belongs_inside_its_campaign_and_its_day() {
        let start = at("2026-10-01T00:00:00Z");
        let deadline = at("2026-10-11T12:00:00Z");
        let fit = |day, from: &str, to: &str| window_fit(start, deadline, day, at(from), at(to));
        assert_eq!(
            fit(3, "2026-10-04T00:00:00Z", "2026-10-05T00:00:00Z"),
            WindowFit::InDay
        );
        assert_eq!(
            fit(3, "2026-10-04T06:00:00Z", "2026-10-04T07:00:00Z"),
            WindowFit::InDay,
            "an hourly export"
        );
        assert_eq!(
            fit(10, "2026-10-11T00:00:00Z", "2026-10-12T00:00:00Z"),
            WindowFit::InDay,
            "the last day may end after a noon deadline"
        );
        assert_eq!(
            fit(0, "2026-09-30T00:00:00Z", "2026-10-01T00:00:00Z"),
            WindowFit::OutsideCampaign
        );
        assert_eq!(
            fit(11, "2026-10-12T00:00:00Z", "2026-10-13T00:00:00Z"),
            WindowFit::OutsideCampaign
        );
        assert_eq!(
            fit(3, "2026-10-11T12:00:01Z", "2026-10-11T13:00:00Z"),
            WindowFit::OutsideCampaign,
            "after the deadline, whatever the day says"
        );
        assert_eq!(
            fit(3, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"),
            WindowFit::OtherDay {
                day_start: at("2026-10-04T00:00:00Z"),
                day_end: at("2026-10-05T00:00:00Z"),
            }
        );
        assert!(matches!(
            fit(3, "2026-10-04T00:00:00Z", "2026-10-09T00:00:00Z"),
            WindowFit::OtherDay { .. }
        ));
    }

    #[test]
    fn late_results_are_taken_for_a_day_after_the_deadline() {
        let deadline = at("2026-10-11T00:00:00Z");
        assert!(!past_late_results(deadline, at("2026-10-11T00:00:00Z")));
        assert!(!past_late_results(deadline, at("2026-10-12T00:00:00Z")));
        assert!(past_late_results(deadline, at("2026-10-12T00:00:01Z")));
        assert!(past_late_results(
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::MAX_UTC
        ));
    }

    proptest! {
        #[test]
        fn totals_of_any_items_stay_finite(
            items in proptest::collection::vec(
                (any::<i64>(), prop_oneof![any::<f64>(), Just(f64::MAX), Just(1e308), Just(f64::INFINITY), Just(f64::NAN)]),
                0..200,
            )
        ) {
            let (mut count, mut money) = (0u64, 0.0f64);
            for (n, amount) in items {
                let before = count;
                count = add_count(count, n);
                prop_assert!(count >= before);
                money = add_money(money, amount);
                prop_assert!(money.is_finite() && (0.0..=MAX_TOTAL_MONEY).contains(&money));
            }
        }

        #[test]
        fn maximal_items_add_up_exactly_while_they_fit(items in 0u32..10_000) {
            let mut money = 0.0;
            let mut count = 0u64;
            for _ in 0..items {
                money = add_money(money, MAX_MONEY);
                count = add_count(count, MAX_COUNT);
            }
            prop_assert_eq!(count, u64::from(items) * MAX_COUNT as u64);
            prop_assert!((money - f64::from(items) * MAX_MONEY).abs() <= 1e-3 * MAX_MONEY);
        }
    }
}
