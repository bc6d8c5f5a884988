//! Budget across channels with concave response curves: spend goes where the marginal return is
//! highest until the budget is gone, which ends with equal marginal return across every channel
//! that is not held at its minimum or maximum.
//!
//! The response of a channel to spend x is a·ln(1 + x/b): a scales how much the channel can return,
//! b is the spend at which returns start to flatten. This file only divides money; it never decides
//! which channels take part (strategy does) and never panics on bad numbers (it names them).

use serde::{Deserialize, Serialize};

/// Expected return (conversions) of spend x: a·ln(1 + x/b).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseCurve {
    pub a: f64,
    pub b: f64,
}

impl ResponseCurve {
    pub fn value(&self, spend: f64) -> f64 {
        self.a * (spend.max(0.0) / self.b).ln_1p()
    }

    /// d/dx a·ln(1 + x/b) = a / (b + x).
    pub fn marginal(&self, spend: f64) -> f64 {
        self.a / (self.b + spend.max(0.0))
    }

    /// The spend at which the marginal return equals `lambda`, before min/max clamping.
    fn spend_at_marginal(&self, lambda: f64) -> f64 {
        self.a / lambda - self.b
    }
}

/// One channel's curve and the bounds on its spend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelBudget {
    pub curve: ResponseCurve,
    pub min: f64,
    /// `None`: no cap.
    pub max: Option<f64>,
}

impl ChannelBudget {
    pub fn new(a: f64, b: f64) -> Self {
        Self {
            curve: ResponseCurve { a, b },
            min: 0.0,
            max: None,
        }
    }

    fn spend_at(&self, lambda: f64) -> f64 {
        let x = self.curve.spend_at_marginal(lambda).max(self.min);
        match self.max {
            Some(max) => x.min(max),
            None => x,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocationError {
    #[error("budget must be a finite number of at least 0, got {0}")]
    BadBudget(f64),
    #[error("channel {index}: response a must be finite and at least 0, got {value}")]
    BadA { index: usize, value: f64 },
    #[error("channel {index}: response b must be finite and above 0, got {value}")]
    BadB { index: usize, value: f64 },
    #[error("channel {index}: min spend must be finite and at least 0, got {value}")]
    BadMin { index: usize, value: f64 },
    #[error("channel {index}: max spend {max} is below its min {min}")]
    MaxBelowMin { index: usize, min: f64, max: f64 },
    #[error(
        "the channels' minimum spends add up to {minimum}, more than the budget {budget}; raise the budget to at least {minimum} or lower the minimums"
    )]
    MinimumsExceedBudget { minimum: f64, budget: f64 },
}

fn validate(channels: &[ChannelBudget], budget: f64) -> Result<(), AllocationError> {
    if !(budget.is_finite() && budget >= 0.0) {
        return Err(AllocationError::BadBudget(budget));
    }
    for (index, channel) in channels.iter().enumerate() {
        let ResponseCurve { a, b } = channel.curve;
        if !(a.is_finite() && a >= 0.0) {
            return Err(AllocationError::BadA { index, value: a });
        }
        if !(b.is_finite() && b > 0.0) {
            return Err(AllocationError::BadB { index, value: b });
        }
        if !(channel.min.is_finite() && channel.min >= 0.0) {
            return Err(AllocationError::BadMin {
                index,
                value: channel.min,
            });
        }
        if let Some(max) = channel.max
            && (max.is_nan() || max < channel.min)
        {
            return Err(AllocationError::MaxBelowMin {
                index,
                min: channel.min,
                max,
            });
        }
    }
    let minimum: f64 = channels.iter().map(|c| c.min).sum();
    if minimum > budget * (1.0 + 1e-12) {
        return Err(AllocationError::MinimumsExceedBudget { minimum, budget });
    }
    Ok(())
}

/// Spend per channel (in the order given) that maximises Σ aᵢ·ln(1 + xᵢ/bᵢ) with Σ xᵢ = budget and
/// minᵢ ≤ xᵢ ≤ maxᵢ. When every channel is capped below the budget, each gets its cap and the rest
/// stays unspent (the sum is then below the budget).
///
/// The optimum has xᵢ = clamp(aᵢ/λ − bᵢ, minᵢ, maxᵢ) for one marginal return λ; the total is
/// monotone in λ, so λ is found by bisection (in log space, to full precision).
pub fn allocate(channels: &[ChannelBudget], budget: f64) -> Result<Vec<f64>, AllocationError> {
    validate(channels, budget)?;
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let total = |lambda: f64| channels.iter().map(|c| c.spend_at(lambda)).sum::<f64>();
    let caps: Option<f64> = channels.iter().map(|c| c.max).sum();
    if let Some(caps) = caps
        && caps <= budget
    {
        return Ok(channels.iter().map(|c| c.max.unwrap_or(c.min)).collect());
    }
    // Above the highest initial marginal return a/b, nobody is worth more than their minimum.
    let hi = channels
        .iter()
        .map(|c| c.curve.a / c.curve.b)
        .fold(0.0, f64::max);
    if hi <= 0.0 {
        return Ok(channels.iter().map(|c| c.min).collect());
    }
    // Low enough that every channel wants more than the budget and all finite caps together.
    let headroom = budget
        + channels.iter().filter_map(|c| c.max).sum::<f64>()
        + channels.iter().map(|c| c.curve.b).sum::<f64>()
        + 1.0;
    let lo = channels
        .iter()
        .filter(|c| c.curve.a > 0.0)
        .map(|c| c.curve.a / headroom)
        .fold(f64::INFINITY, f64::min);
    let (mut ln_lo, mut ln_hi) = (lo.ln(), hi.ln());
    for _ in 0..200 {
        let mid = 0.5 * (ln_lo + ln_hi);
        if total(mid.exp()) > budget {
            ln_lo = mid;
        } else {
            ln_hi = mid;
        }
    }
    Ok(channels.iter().map(|c| c.spend_at(ln_hi.exp())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_honoured() {
        let mut channels = [
            ChannelBudget::new(300.0, 10.0),
            ChannelBudget::new(200.0, 20.0),
            ChannelBudget::new(100.0, 5.0),
        ];
        channels[0].max = Some(40.0);
        channels[2].min = 30.0;
        let x = allocate(&channels, 100.0).unwrap();
        assert!((x[0] - 40.0).abs() < 1e-6, "{x:?}");
        assert!((x[2] - 30.0).abs() < 1e-6, "{x:?}");
        assert!((x.iter().sum::<f64>() - 100.0).abs() < 1e-6);
    }

    #[test]
    fn all_capped_leaves_rest_unspent() {
        let mut channels = [ChannelBudget::new(300.0, 10.0)];
        channels[0].max = Some(10.0);
        assert_eq!(allocate(&channels, 100.0).unwrap(), vec![10.0]);
    }

    #[test]
    fn errors_are_named() {
        let mut channels = [
            ChannelBudget::new(300.0, 10.0),
            ChannelBudget::new(1.0, 0.0),
        ];
        assert_eq!(
            allocate(&channels, 10.0),
            Err(AllocationError::BadB {
                index: 1,
                value: 0.0
            })
        );
        channels[1].curve.b = 1.0;
        channels[0].min = 20.0;
        assert!(matches!(
            allocate(&channels, 10.0),
            Err(AllocationError::MinimumsExceedBudget { .. })
        ));
        assert!(matches!(
            allocate(&channels, f64::NAN),
            Err(AllocationError::BadBudget(_))
        ));
    }
}
