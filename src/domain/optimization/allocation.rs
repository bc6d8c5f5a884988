//! Budget across channels with response curves: spend goes where the marginal return is highest
//! until the budget is gone, which ends with equal marginal return across every channel that is not
//! held at its minimum or maximum.
//!
//! The curves are [`ResponseCurve`]s of any family. An S-shaped Hill curve returns little for its
//! first money, so a channel on one is funded past its inflection or not above its minimum; the
//! money a jump across the inflection cannot use goes to the channels with the highest marginal
//! return left. This file only divides money; it never decides which channels take part (strategy
//! does) and never panics on bad numbers (it names them).

use serde::{Deserialize, Serialize};

use super::response::{CurveError, ResponseCurve};

/// One channel's curve and the bounds on its daily spend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelBudget {
    pub curve: ResponseCurve,
    pub min: f64,
    /// `None`: no cap.
    pub max: Option<f64>,
}

impl ChannelBudget {
    pub fn new(curve: ResponseCurve) -> Self {
        Self {
            curve,
            min: 0.0,
            max: None,
        }
    }

    fn clamp(&self, x: f64) -> f64 {
        let x = x.max(self.min);
        match self.max {
            Some(max) => x.min(max),
            None => x,
        }
    }

    fn spend_at(&self, lambda: f64) -> f64 {
        self.clamp(self.curve.spend_at_marginal(lambda))
    }
}

/// A channel's bounds on its daily spend, from the plan's channel priors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendBounds {
    #[serde(default)]
    pub min: f64,
    /// `None`: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocationError {
    #[error("budget must be a finite number of at least 0, got {0}")]
    BadBudget(f64),
    #[error("channel {index}: {error}")]
    BadCurve { index: usize, error: CurveError },
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
        channel
            .curve
            .check()
            .map_err(|error| AllocationError::BadCurve { index, error })?;
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

/// Spend per channel (in the order given) that maximises the summed response with Σ xᵢ = budget
/// and minᵢ ≤ xᵢ ≤ maxᵢ. When every channel is capped below the budget, each gets its cap and the
/// rest stays unspent (the sum is then below the budget).
///
/// The optimum has each xᵢ at the spend where its marginal return is one λ (clamped to its bounds);
/// the total falls as λ rises, so λ is found by bisection in log space.
pub fn allocate(channels: &[ChannelBudget], budget: f64) -> Result<Vec<f64>, AllocationError> {
    validate(channels, budget)?;
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let caps: Option<f64> = channels.iter().map(|c| c.max).sum();
    if let Some(caps) = caps
        && caps <= budget
    {
        return Ok(channels.iter().map(|c| c.max.unwrap_or(c.min)).collect());
    }
    // Above the highest marginal return anywhere, nobody is worth more than their minimum.
    let hi = channels
        .iter()
        .map(|c| c.curve.peak_marginal().min(f64::MAX))
        .fold(0.0, f64::max);
    if hi <= 0.0 {
        return Ok(channels.iter().map(|c| c.min).collect());
    }
    // Far enough past every curve's bend that every channel wants more than the budget and all
    // finite caps together.
    let headroom = budget
        + channels.iter().filter_map(|c| c.max).sum::<f64>()
        + channels
            .iter()
            .map(|c| c.curve.half_saturation())
            .sum::<f64>()
        + 1.0;
    let lo = channels
        .iter()
        .filter(|c| c.curve.peak_marginal() > 0.0)
        .map(|c| c.curve.marginal(headroom))
        .fold(f64::INFINITY, f64::min)
        .clamp(f64::MIN_POSITIVE, hi);
    let total = |lambda: f64| channels.iter().map(|c| c.spend_at(lambda)).sum::<f64>();
    let (mut ln_lo, mut ln_hi) = (lo.ln(), hi.ln());
    for _ in 0..100 {
        let mid = 0.5 * (ln_lo + ln_hi);
        if total(mid.exp()) > budget {
            ln_lo = mid;
        } else {
            ln_hi = mid;
        }
    }
    let mut spend: Vec<f64> = channels.iter().map(|c| c.spend_at(ln_hi.exp())).collect();
    fill(channels, &mut spend, budget);
    Ok(spend)
}

/// Gives what the bisection left unspent to the channels with the highest marginal return at their
/// spend, up to their caps: the money an S-curve's jump across its inflection could not take, and
/// the last fraction of a cent bisection leaves, so the same budget always spends all of itself.
fn fill(channels: &[ChannelBudget], spend: &mut [f64], budget: f64) {
    let mut left = budget - spend.iter().sum::<f64>();
    if left <= 0.0 {
        return;
    }
    let mut order: Vec<usize> = (0..channels.len()).collect();
    order.sort_by(|&i, &j| {
        let (mi, mj) = (
            channels[i].curve.marginal(spend[i]),
            channels[j].curve.marginal(spend[j]),
        );
        mj.total_cmp(&mi).then(i.cmp(&j))
    });
    for i in order {
        let room = channels[i].max.map_or(f64::INFINITY, |max| max - spend[i]);
        let give = left.min(room).max(0.0);
        spend[i] += give;
        left -= give;
        if left <= 0.0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_honoured() {
        let mut channels = [
            ChannelBudget::new(ResponseCurve::log(300.0, 10.0)),
            ChannelBudget::new(ResponseCurve::log(200.0, 20.0)),
            ChannelBudget::new(ResponseCurve::log(100.0, 5.0)),
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
        let mut channels = [ChannelBudget::new(ResponseCurve::log(300.0, 10.0))];
        channels[0].max = Some(10.0);
        assert_eq!(allocate(&channels, 100.0).unwrap(), vec![10.0]);
    }

    #[test]
    fn errors_are_named() {
        let mut channels = [
            ChannelBudget::new(ResponseCurve::log(300.0, 10.0)),
            ChannelBudget::new(ResponseCurve::log(1.0, 0.0)),
        ];
        assert_eq!(
            allocate(&channels, 10.0),
            Err(AllocationError::BadCurve {
                index: 1,
                error: CurveError {
                    field: "b",
                    reason: "must be a finite number above 0",
                    value: 0.0
                }
            })
        );
        channels[1].curve = ResponseCurve::log(1.0, 1.0);
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

    /// Summed response of a split.
    fn response(channels: &[ChannelBudget], spend: &[f64]) -> f64 {
        channels
            .iter()
            .zip(spend)
            .map(|(c, x)| c.curve.value(*x))
            .sum()
    }

    #[test]
    fn any_family_ends_at_equal_marginal_return() {
        let channels = [
            ChannelBudget::new(ResponseCurve::log(10.0, 100.0)),
            ChannelBudget::new(ResponseCurve::hill(30.0, 150.0, 1.0)),
            ChannelBudget::new(ResponseCurve::hill(20.0, 80.0, 0.7).with_adstock(0.4)),
        ];
        let x = allocate(&channels, 300.0).unwrap();
        assert!((x.iter().sum::<f64>() - 300.0).abs() < 1e-6, "{x:?}");
        let marginal: Vec<f64> = channels
            .iter()
            .zip(&x)
            .map(|(c, x)| c.curve.marginal(*x))
            .collect();
        for m in &marginal {
            assert!((m - marginal[0]).abs() < 1e-6 * marginal[0], "{marginal:?}");
        }
        // No small move between two channels does better.
        let best = response(&channels, &x);
        for (from, to) in [(0, 1), (1, 2), (2, 0), (1, 0)] {
            let mut moved = x.clone();
            moved[from] -= 1.0;
            moved[to] += 1.0;
            assert!(response(&channels, &moved) <= best + 1e-9);
        }
    }

    #[test]
    fn an_s_curve_is_funded_past_its_inflection_or_not_at_all() {
        // Hill s = 3: nothing at first, a lot after ec. With a small budget the log channel takes
        // it all; with a large one the S-curve is worth crossing.
        let channels = [
            ChannelBudget::new(ResponseCurve::log(5.0, 50.0)),
            ChannelBudget::new(ResponseCurve::hill(100.0, 400.0, 3.0)),
        ];
        let small = allocate(&channels, 50.0).unwrap();
        assert!(
            (small[0] - 50.0).abs() < 1e-6 && small[1] < 1e-6,
            "{small:?}"
        );
        let large = allocate(&channels, 2_000.0).unwrap();
        assert!(large[1] > 400.0, "{large:?}");
        assert!((large.iter().sum::<f64>() - 2_000.0).abs() < 1e-6);
        assert!(response(&channels, &large) > channels[0].curve.value(2_000.0));
    }
}
