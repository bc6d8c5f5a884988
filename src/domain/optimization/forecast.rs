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

/// Convenience for daily series: cumulative counts for days 1, 2, 3, ….
pub fn forecast_daily(cumulative: &[f64], goal: f64) -> Result<Forecast, ForecastError> {
    let points: Vec<(f64, f64)> = cumulative
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64, v))
        .collect();
    forecast_goal(&points, goal)
}

#[cfg(test)]
mod tests {
    use super::*;

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
