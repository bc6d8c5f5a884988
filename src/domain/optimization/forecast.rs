//! When will the goal be met: a least-squares line through cumulative conversions by day,
//! cumulative ≈ a + b·day, and ETA = (goal − a) / b.
//!
//! A straight line is deliberately simple: it is what the orchestrator compares with the deadline
//! to decide whether to re-plan, and an operator can check it by hand. It never extrapolates a
//! flat or falling line into a date.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// a: the fitted cumulative count at day 0.
    pub intercept: f64,
    /// b: conversions per day.
    pub slope: f64,
    /// The day the fitted line reaches the goal; `None` when the line does not rise.
    pub eta_day: Option<f64>,
    /// The last observed cumulative count already reaches the goal.
    pub met: bool,
}

impl Forecast {
    /// The fitted cumulative count at the end of campaign day `day` (0 is the first), on the
    /// scale [`forecast_daily`] fits (day `d` at x = d + 1).
    pub fn at_day(&self, day: f64) -> f64 {
        self.intercept + self.slope * (day + 1.0)
    }

    /// Whether the goal is met, or forecast to be met, by `deadline_day`.
    pub fn on_track(&self, deadline_day: f64) -> bool {
        self.met || self.eta_day.is_some_and(|eta| eta <= deadline_day)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("a forecast needs at least 2 days of data, got {0}")]
    TooFewPoints(usize),
    #[error("point {index}: day and cumulative count must be finite numbers, got ({day}, {value})")]
    NotFinite { index: usize, day: f64, value: f64 },
    #[error("every point is on the same day; no rate can be fitted")]
    SameDay,
}

/// Fit cumulative counts `(day, cumulative)` and forecast the day `goal` is reached.
pub fn forecast_goal(points: &[(f64, f64)], goal: f64) -> Result<Forecast, ForecastError> {
    if points.len() < 2 {
        return Err(ForecastError::TooFewPoints(points.len()));
    }
    for (index, &(day, value)) in points.iter().enumerate() {
        if !day.is_finite() || !value.is_finite() {
            return Err(ForecastError::NotFinite { index, day, value });
        }
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx <= 0.0 {
        return Err(ForecastError::SameDay);
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let eta_day = (slope > 0.0).then(|| (goal - intercept) / slope);
    let met = points.last().is_some_and(|p| p.1 >= goal);
    Ok(Forecast {
        intercept,
        slope,
        eta_day,
        met,
    })
}

/// The `z`-sigma prediction band of the cumulative count on `day` around the line fitted
/// through `points` (for example `z` = 1.645 for 90 %): the residuals' spread, widened the
/// further `day` lies from the days observed. `None` with fewer than three points (two points
/// fit exactly and say nothing of the spread) or on a bad input, as [`forecast_goal`] refuses.
pub fn prediction_band(points: &[(f64, f64)], day: f64, z: f64) -> Option<(f64, f64)> {
    let line = forecast_goal(points, f64::INFINITY).ok()?;
    if points.len() < 3 || !day.is_finite() || !z.is_finite() {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let residuals: f64 = points
        .iter()
        .map(|p| (p.1 - (line.intercept + line.slope * p.0)).powi(2))
        .sum();
    let spread = (residuals / (n - 2.0)).sqrt();
    let error = spread * (1.0 + 1.0 / n + (day - mean_x).powi(2) / sxx).sqrt();
    let fitted = line.intercept + line.slope * day;
    Some((fitted - z * error, fitted + z * error))
}

/// The points a daily series is fitted on: cumulative counts for days 1, 2, 3, ….
pub fn daily_points(cumulative: &[f64]) -> Vec<(f64, f64)> {
    cumulative
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64, v))
        .collect()
}

/// Convenience for daily series: cumulative counts for days 1, 2, 3, ….
pub fn forecast_daily(cumulative: &[f64], goal: f64) -> Result<Forecast, ForecastError> {
    forecast_goal(&daily_points(cumulative), goal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_the_line_when_the_points_are_on_it_and_widens_ahead() {
        let on_line: Vec<(f64, f64)> = (1..=5).map(|d| (d as f64, 10.0 * d as f64)).collect();
        let (low, high) = prediction_band(&on_line, 10.0, 1.645).unwrap();
        assert!((low - 100.0).abs() < 1e-9 && (high - 100.0).abs() < 1e-9);
        let noisy = [
            (1.0, 9.0),
            (2.0, 21.0),
            (3.0, 29.0),
            (4.0, 42.0),
            (5.0, 49.0),
        ];
        let near = prediction_band(&noisy, 3.0, 1.645).unwrap();
        let far = prediction_band(&noisy, 20.0, 1.645).unwrap();
        assert!(near.0 < 30.0 && 30.0 < near.1, "{near:?}");
        assert!(far.1 - far.0 > near.1 - near.0, "{near:?} {far:?}");
        assert_eq!(prediction_band(&noisy[..2], 3.0, 1.645), None);
    }

    #[test]
    fn flat_line_has_no_eta() {
        let f = forecast_daily(&[5.0, 5.0, 5.0], 10.0).unwrap();
        assert_eq!(f.eta_day, None);
        assert!(!f.on_track(100.0));
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            forecast_daily(&[1.0], 10.0),
            Err(ForecastError::TooFewPoints(1))
        );
        assert_eq!(
            forecast_goal(&[(1.0, 1.0), (1.0, 2.0)], 10.0),
            Err(ForecastError::SameDay)
        );
        assert!(matches!(
            forecast_daily(&[1.0, f64::NAN], 10.0),
            Err(ForecastError::NotFinite { index: 1, .. })
        ));
    }
}
