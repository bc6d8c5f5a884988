//! The clock: the one place campaignd reads the time and waits for it to pass.
//!
//! Every time read in the system goes through a [`Clock`], so that a campaign can run on real time,
//! on accelerated time (a month of simulated market in minutes) or on a manual clock that a test
//! advances step by step. The clock must never depend on settings, the knowledge base or the
//! domain: whoever builds the daemon maps the configured mode onto one of the constructors here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// The factors an accelerated clock accepts, inclusive: from a thousandth of real time to ten
/// million times faster (a simulated year in about three seconds). Faster clocks reach the end of
/// representable time within days of running.
pub const FACTOR_RANGE: (f64, f64) = (0.001, 10_000_000.0);

/// The latest time a clock reads: a simulated clock that runs on past it stays there. Far enough
/// to never matter, early enough that every date after it a caller computes (a day later, a
/// deadline) still fits in a `DateTime` and in RFC 3339.
pub const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => DateTime::<Utc>::MAX_UTC,
};

/// Why a clock could not be built or changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    #[error("clock factor must be a number between 0.001 and 10000000, got {0}")]
    InvalidFactor(f64),
    #[error("only a manual clock can be advanced or set; this clock is {0}")]
    NotManual(&'static str),
}

/// A source of the current time and of waits measured in that time.
///
/// Cloning is cheap (an `Arc`), and every clone shares the same time: advancing one manual clock
/// advances all its clones and wakes their sleepers.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

enum Inner {
    Real,
    Accelerated {
        start: DateTime<Utc>,
        origin: Instant,
        factor: f64,
    },
    // A watch channel both holds the current time and wakes every sleeper when it moves.
    Manual {
        now: watch::Sender<DateTime<Utc>>,
    },
}

impl Clock {
    /// The wall clock, whatever clock the campaigns run on: people answer in real time, so what
    /// waits for them (an approval request's expiry) is measured on it.
    pub fn wall_now() -> DateTime<Utc> {
        Utc::now()
    }

    /// Wall-clock time.
    pub fn real() -> Self {
        Self {
            inner: Arc::new(Inner::Real),
        }
    }

    /// Time that stands still at `start` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        let (now, _) = watch::channel(start);
        Self {
            inner: Arc::new(Inner::Manual { now }),
        }
    }

    /// Simulated time that starts at `start` now and runs `factor` times faster than real time.
    pub fn accelerated(start: DateTime<Utc>, factor: f64) -> Result<Self, ClockError> {
        if !(FACTOR_RANGE.0..=FACTOR_RANGE.1).contains(&factor) {
            return Err(ClockError::InvalidFactor(factor));
        }
        Ok(Self {
            inner: Arc::new(Inner::Accelerated {
                start,
                origin: Instant::now(),
                factor,
            }),
        })
    }

    /// The mode's name, for logs and health output: `real`, `accelerated` or `manual`.
    pub fn mode(&self) -> &'static str {
        match &*self.inner {
            Inner::Real => "real",
            Inner::Accelerated { .. } => "accelerated",
            Inner::Manual { .. } => "manual",
        }
    }

    /// The current time on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Inner::Real => Utc::now(),
            Inner::Accelerated {
                start,
                origin,
                factor,
            } => {
                let simulated = origin.elapsed().as_secs_f64() * factor;
                // Past the year 9999 the time saturates.
                Duration::try_from_secs_f64(simulated)
                    .ok()
                    .and_then(|d| TimeDelta::from_std(d).ok())
                    .and_then(|d| start.checked_add_signed(d))
                    .map_or(LATEST, |t| t.min(LATEST))
            }
            Inner::Manual { now } => *now.borrow(),
        }
    }

    /// Moves a manual clock forward by `d` and wakes the sleepers whose deadline has passed.
    pub fn advance(&self, d: Duration) -> Result<(), ClockError> {
        let Inner::Manual { now } = &*self.inner else {
            return Err(ClockError::NotManual(self.mode()));
        };
        now.send_modify(|t| *t = add(*t, d).map_or(LATEST, |t| t.min(LATEST)));
        Ok(())
    }

    /// Sets a manual clock to `t` (which may be earlier than now) and wakes due sleepers.
    pub fn set(&self, t: DateTime<Utc>) -> Result<(), ClockError> {
        let Inner::Manual { now } = &*self.inner else {
            return Err(ClockError::NotManual(self.mode()));
        };
        now.send_replace(t.min(LATEST));
        Ok(())
    }

    /// Waits until `d` of this clock's time has passed.
    pub async fn sleep(&self, d: Duration) {
        match &*self.inner {
            Inner::Real => tokio::time::sleep(d).await,
            Inner::Accelerated { factor, .. } => tokio::time::sleep(scale(d, *factor)).await,
            Inner::Manual { now } => {
                // Read the time into a local first: the channel's read guard must not live across
                // an await, or the future stops being `Send`.
                let current = *now.borrow();
                match add(current, d) {
                    Some(deadline) => wait_manual(now, deadline).await,
                    None => std::future::pending().await,
                }
            }
        }
    }

    /// Waits until this clock reads `deadline` or later; returns at once if it already does.
    pub async fn sleep_until(&self, deadline: DateTime<Utc>) {
        match &*self.inner {
            Inner::Real => {
                // A deadline in the past gives a negative delta, which `to_std` refuses: no wait.
                if let Ok(d) = (deadline - self.now()).to_std() {
                    tokio::time::sleep(d).await;
                }
            }
            Inner::Accelerated { factor, .. } => {
                if let Ok(d) = (deadline - self.now()).to_std() {
                    tokio::time::sleep(scale(d, *factor)).await;
                }
            }
            Inner::Manual { now } => wait_manual(now, deadline).await,
        }
    }
}

/// Waits on a manual clock's channel until its time reaches `deadline`.
async fn wait_manual(now: &watch::Sender<DateTime<Utc>>, deadline: DateTime<Utc>) {
    let mut rx = now.subscribe();
    loop {
        let current = *rx.borrow_and_update();
        if current >= deadline {
            return;
        }
        // The sender lives as long as the clock we borrowed it from, so `changed` cannot fail
        // while we wait; if it ever did, time could no longer move and the wait never ends.
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Real => f.write_str("Clock::Real"),
            Inner::Accelerated { start, factor, .. } => {
                write!(
                    f,
                    "Clock::Accelerated {{ start: {start}, factor: {factor} }}"
                )
            }
            Inner::Manual { now } => write!(f, "Clock::Manual {{ now: {} }}", *now.borrow()),
        }
    }
}

fn add(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
}

/// Real time to wait for `d` of simulated time; saturates instead of overflowing.
fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() / factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-11-23T13:30:00Z".parse().unwrap()
    }

    #[test]
    fn real_clock_reads_wall_time() {
        let before = Utc::now();
        let now = Clock::real().now();
        assert!(now >= before && now <= Utc::now());
    }

    #[tokio::test]
    async fn real_sleep_waits_real_time() {
        let started = Instant::now();
        Clock::real().sleep(Duration::from_millis(30)).await;
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn accelerated_clock_runs_factor_times_faster() {
        let clock = Clock::accelerated(t0(), 3600.0).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let simulated = clock.now() - t0();
        // 100 ms of real time at 3600x is 6 minutes; allow for a slow scheduler.
        assert!(simulated >= TimeDelta::minutes(6), "{simulated}");
        assert!(simulated < TimeDelta::minutes(60), "{simulated}");
    }

    #[tokio::test]
    async fn accelerated_sleep_waits_scaled_real_time() {
        let clock = Clock::accelerated(t0(), 1000.0).unwrap();
        let started = Instant::now();
        clock.sleep(Duration::from_secs(60)).await;
        let real = started.elapsed();
        assert!(real >= Duration::from_millis(60), "{real:?}");
        assert!(real < Duration::from_secs(5), "{real:?}");
        assert!(clock.now() - t0() >= TimeDelta::seconds(60));
    }

    #[test]
    fn accelerated_refuses_bad_factors() {
        for factor in [0.0, -2.0, f64::NAN, f64::INFINITY, 1e300, 0.0001] {
            assert!(matches!(
                Clock::accelerated(t0(), factor),
                Err(ClockError::InvalidFactor(_))
            ));
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Clock::manual(t0());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), t0());
        clock.advance(Duration::from_secs(90)).unwrap();
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(90));
        let clone = clock.clone();
        clone.set(t0()).unwrap();
        assert_eq!(clock.now(), t0());
    }

    #[test]
    fn only_manual_clocks_can_be_moved() {
        assert_eq!(
            Clock::real().advance(Duration::from_secs(1)),
            Err(ClockError::NotManual("real"))
        );
        let fast = Clock::accelerated(t0(), 2.0).unwrap();
        assert_eq!(fast.set(t0()), Err(ClockError::NotManual("accelerated")));
    }

    #[tokio::test]
    async fn manual_sleep_wakes_only_past_the_deadline() {
        let clock = Clock::manual(t0());
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(59)).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "woke before the deadline");
        clock.advance(Duration::from_secs(1)).unwrap();
        tokio::time::timeout(Duration::from_secs(2), sleeper)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn manual_sleep_until_past_returns_at_once() {
        let clock = Clock::manual(t0());
        tokio::time::timeout(
            Duration::from_millis(100),
            clock.sleep_until(t0() - TimeDelta::hours(1)),
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_millis(100), clock.sleep(Duration::ZERO))
            .await
            .unwrap();
    }

    #[test]
    fn huge_advances_saturate_instead_of_panicking() {
        let clock = Clock::manual(t0());
        clock.advance(Duration::MAX).unwrap();
        assert_eq!(clock.now(), LATEST);
        assert_eq!(LATEST.to_rfc3339(), "9999-12-31T23:59:59+00:00");
        // A day after the latest time still fits: a loop adding days to `now` cannot overflow.
        assert!(
            LATEST
                .checked_add_signed(TimeDelta::days(365_000))
                .is_some()
        );
        assert_eq!(scale(Duration::MAX, 1e-300), Duration::MAX);
    }

    #[test]
    fn the_fastest_accelerated_clock_stops_at_the_latest_time() {
        let start = LATEST - TimeDelta::seconds(1);
        let clock = Clock::accelerated(start, FACTOR_RANGE.1).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), LATEST);
    }

    #[test]
    fn clock_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Clock>();
    }
}
