//! How a channel's daily conversions respond to its daily spend: the curve families marketing-mix
//! models use, each optionally with geometric adstock.
//!
//! - `log`: a·ln(1 + x/b). a scales what the channel can return, b is the spend at which returns
//!   start to flatten. Concave everywhere.
//! - `hill`: β·xˢ/(ecˢ + xˢ). β is the most the channel can return a day, ec the spend that returns
//!   half of it, s the shape: s ≤ 1 is concave, s > 1 is an S-curve whose first money returns little.
//!
//! Adstock carries a share θ of yesterday's effective spend into today (A_t = x_t + θ·A_{t−1}).
//! The allocator decides a daily budget kept up from day to day, so a curve with adstock answers
//! for the steady state, where the effective spend of a daily x is x/(1 − θ).
//!
//! In files and records a curve is a table: `{ a, b }` (the family `log` is the default, so curves
//! written before there were families read as they were), `{ family = "hill", beta, ec, s }`, and
//! `adstock = θ` on either. Deserializing checks only that a family has its fields;
//! [`ResponseCurve::check`] checks the numbers and names the one that is wrong.

use serde::{Deserialize, Serialize};

/// A curve family and its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// a·ln(1 + x/b).
    Log { a: f64, b: f64 },
    /// β·xˢ/(ecˢ + xˢ).
    Hill { beta: f64, ec: f64, s: f64 },
}

/// Expected daily conversions of a daily spend kept up: a [`Shape`] of the effective spend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CurveFields", into = "CurveFields")]
pub struct ResponseCurve {
    pub shape: Shape,
    /// The share of yesterday's effective spend carried into today, 0 ≤ θ < 1 (0: none).
    pub adstock: f64,
}

/// A parameter of a curve that is out of range, by the name it has in files.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("response `{field}` {reason}, got {value}")]
pub struct CurveError {
    pub field: &'static str,
    pub reason: &'static str,
    pub value: f64,
}

impl ResponseCurve {
    pub fn log(a: f64, b: f64) -> Self {
        ResponseCurve {
            shape: Shape::Log { a, b },
            adstock: 0.0,
        }
    }

    pub fn hill(beta: f64, ec: f64, s: f64) -> Self {
        ResponseCurve {
            shape: Shape::Hill { beta, ec, s },
            adstock: 0.0,
        }
    }

    pub fn with_adstock(self, adstock: f64) -> Self {
        ResponseCurve { adstock, ..self }
    }

    /// Every parameter in range: scales finite and at least 0, half-saturation spends and the
    /// Hill shape finite and above 0, adstock in [0, 1).
    pub fn check(&self) -> Result<(), CurveError> {
        let err = |field, reason, value| {
            Err(CurveError {
                field,
                reason,
                value,
            })
        };
        let (scale, spend, shape) = match self.shape {
            Shape::Log { a, b } => (("a", a), ("b", b), None),
            Shape::Hill { beta, ec, s } => (("beta", beta), ("ec", ec), Some(s)),
        };
        if !(scale.1.is_finite() && scale.1 >= 0.0) {
            return err(scale.0, "must be a finite number of at least 0", scale.1);
        }
        if !(spend.1.is_finite() && spend.1 > 0.0) {
            return err(spend.0, "must be a finite number above 0", spend.1);
        }
        if let Some(s) = shape
            && !(s.is_finite() && s > 0.0 && s <= 10.0)
        {
            return err("s", "must be above 0 and at most 10", s);
        }
        if !(self.adstock.is_finite() && (0.0..1.0).contains(&self.adstock)) {
            return err("adstock", "must be at least 0 and below 1", self.adstock);
        }
        Ok(())
    }

    /// Daily conversions of daily spend `spend` in the steady state.
    pub fn value(&self, spend: f64) -> f64 {
        self.shape.value(self.effective(spend))
    }

    /// The return of the next unit of daily money at `spend`.
    pub fn marginal(&self, spend: f64) -> f64 {
        self.shape.marginal(self.effective(spend)) / self.carry()
    }

    /// The largest marginal return over all spends: at 0 for concave curves, at the inflection
    /// of an S-curve.
    pub fn peak_marginal(&self) -> f64 {
        self.shape.peak_marginal() / self.carry()
    }

    /// The spend past any inflection whose marginal return is `lambda`; 0 when no spend returns
    /// that much.
    pub fn spend_at_marginal(&self, lambda: f64) -> f64 {
        self.shape.effective_at_marginal(lambda * self.carry()) * self.carry()
    }

    /// The same curve returning `factor` times as much at every spend.
    pub fn scaled(&self, factor: f64) -> Self {
        let shape = match self.shape {
            Shape::Log { a, b } => Shape::Log { a: a * factor, b },
            Shape::Hill { beta, ec, s } => Shape::Hill {
                beta: beta * factor,
                ec,
                s,
            },
        };
        ResponseCurve { shape, ..*self }
    }

    /// The same curve with its money in another currency (`rate` units per unit of this one).
    pub fn in_currency(&self, rate: f64) -> Self {
        let shape = match self.shape {
            Shape::Log { a, b } => Shape::Log { a, b: b * rate },
            Shape::Hill { beta, ec, s } => Shape::Hill {
                beta,
                ec: ec * rate,
                s,
            },
        };
        ResponseCurve { shape, ..*self }
    }

    /// The daily spend at which returns flatten: b, or the Hill curve's ec, in daily money.
    pub fn half_saturation(&self) -> f64 {
        let effective = match self.shape {
            Shape::Log { b, .. } => b,
            Shape::Hill { ec, .. } => ec,
        };
        effective * self.carry()
    }

    /// 1 − θ: the effective spend of a daily x kept up is x / (1 − θ).
    fn carry(&self) -> f64 {
        1.0 - self.adstock
    }

    fn effective(&self, spend: f64) -> f64 {
        spend.max(0.0) / self.carry()
    }
}

impl Shape {
    fn value(&self, x: f64) -> f64 {
        match *self {
            Shape::Log { a, b } => a * (x / b).ln_1p(),
            Shape::Hill { beta, ec, s } => {
                // β / (1 + (ec/x)ˢ) is the same value without overflowing xˢ.
                if x <= 0.0 {
                    0.0
                } else {
                    beta / (1.0 + (ec / x).powf(s))
                }
            }
        }
    }

    fn marginal(&self, x: f64) -> f64 {
        match *self {
            Shape::Log { a, b } => a / (b + x),
            Shape::Hill { beta, ec, s } => {
                if x <= 0.0 {
                    return if s < 1.0 {
                        f64::MAX
                    } else if s == 1.0 {
                        beta / ec
                    } else {
                        0.0
                    };
                }
                // β·s·ecˢ·xˢ⁻¹/(ecˢ + xˢ)², written with r = (ec/x)ˢ so that it cannot overflow.
                let r = (ec / x).powf(s);
                beta * s * r / (x * (1.0 + r) * (1.0 + r))
            }
        }
    }

    /// Where the marginal return is highest: 0, or an S-curve's inflection.
    fn peak(&self) -> f64 {
        match *self {
            Shape::Hill { ec, s, .. } if s > 1.0 => ec * ((s - 1.0) / (s + 1.0)).powf(1.0 / s),
            _ => 0.0,
        }
    }

    fn peak_marginal(&self) -> f64 {
        self.marginal(self.peak())
    }

    /// The effective spend past the peak whose marginal return is `lambda`, 0 when even the peak
    /// returns less. The marginal return falls monotonically past the peak, so bisection finds it.
    fn effective_at_marginal(&self, lambda: f64) -> f64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0.0;
        }
        match *self {
            Shape::Log { a, b } => (a / lambda - b).max(0.0),
            Shape::Hill { ec, .. } => {
                let peak = self.peak();
                if self.marginal(peak) <= lambda {
                    return 0.0;
                }
                let mut lo = peak.max(ec * 1e-12);
                let mut hi = ec.max(lo) * 2.0;
                // At most ~1 000 doublings before f64 runs out; the marginal is far below any
                // positive lambda well before that.
                for _ in 0..1100 {
                    if self.marginal(hi) < lambda || !hi.is_finite() {
                        break;
                    }
                    lo = hi;
                    hi *= 2.0;
                }
                for _ in 0..80 {
                    let mid = 0.5 * (lo + hi);
                    if self.marginal(mid) > lambda {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                if hi.is_finite() { hi } else { lo }
            }
        }
    }
}

/// The stored and configured form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Family {
    #[default]
    Log,
    Hill,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CurveFields {
    #[serde(default, skip_serializing_if = "is_log")]
    family: Family,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    beta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<f64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    adstock: f64,
}

fn is_log(family: &Family) -> bool {
    *family == Family::Log
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

impl TryFrom<CurveFields> for ResponseCurve {
    type Error = String;

    fn try_from(f: CurveFields) -> Result<Self, String> {
        let shape = match (f.family, f.a, f.b, f.beta, f.ec, f.s) {
            (Family::Log, Some(a), Some(b), None, None, None) => Shape::Log { a, b },
            (Family::Hill, None, None, Some(beta), Some(ec), Some(s)) => {
                Shape::Hill { beta, ec, s }
            }
            (Family::Log, ..) => {
                return Err("a `log` response curve has exactly `a` and `b` (add `family = \"hill\"` for beta, ec and s)".into());
            }
            (Family::Hill, ..) => {
                return Err("a `hill` response curve has exactly `beta`, `ec` and `s`".into());
            }
        };
        Ok(ResponseCurve {
            shape,
            adstock: f.adstock,
        })
    }
}

impl From<ResponseCurve> for CurveFields {
    fn from(curve: ResponseCurve) -> Self {
        let mut fields = CurveFields {
            family: Family::Log,
            a: None,
            b: None,
            beta: None,
            ec: None,
            s: None,
            adstock: curve.adstock,
        };
        match curve.shape {
            Shape::Log { a, b } => (fields.a, fields.b) = (Some(a), Some(b)),
            Shape::Hill { beta, ec, s } => {
                fields.family = Family::Hill;
                (fields.beta, fields.ec, fields.s) = (Some(beta), Some(ec), Some(s));
            }
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_marginal(curve: &ResponseCurve, x: f64) -> f64 {
        let h = 1e-5 * x.max(1.0);
        (curve.value(x + h) - curve.value(x - h)) / (2.0 * h)
    }

    #[test]
    fn log_is_a_ln_1_plus_x_over_b() {
        let curve = ResponseCurve::log(10.0, 100.0);
        assert!((curve.value(100.0) - 10.0 * 2f64.ln()).abs() < 1e-12);
        assert!((curve.marginal(100.0) - 0.05).abs() < 1e-12);
        assert!((curve.spend_at_marginal(0.05) - 100.0).abs() < 1e-9);
        assert_eq!(curve.spend_at_marginal(1.0), 0.0, "a/b = 0.1 < 1");
    }

    #[test]
    fn hill_returns_half_at_ec_and_saturates_at_beta() {
        let curve = ResponseCurve::hill(50.0, 200.0, 2.0);
        assert!((curve.value(200.0) - 25.0).abs() < 1e-12);
        assert!(curve.value(1e9) < 50.0 && curve.value(1e9) > 49.99);
        assert_eq!(curve.value(0.0), 0.0);
        for x in [10.0, 100.0, 200.0, 700.0, 5_000.0] {
            let (exact, numeric) = (curve.marginal(x), numeric_marginal(&curve, x));
            assert!(
                (exact - numeric).abs() < 1e-6 * exact.max(1e-9),
                "{x}: {exact} vs {numeric}"
            );
        }
    }

    #[test]
    fn an_s_curve_peaks_at_its_inflection_and_inverts_past_it() {
        let curve = ResponseCurve::hill(50.0, 200.0, 3.0);
        let peak = 200.0 * (2.0f64 / 4.0).powf(1.0 / 3.0);
        assert!((curve.peak_marginal() - curve.marginal(peak)).abs() < 1e-12);
        assert!(curve.marginal(peak * 0.9) < curve.peak_marginal());
        assert!(curve.marginal(peak * 1.1) < curve.peak_marginal());
        assert_eq!(curve.marginal(0.0), 0.0, "the first money returns nothing");
        for lambda in [0.9 * curve.peak_marginal(), 0.01, 1e-6] {
            let x = curve.spend_at_marginal(lambda);
            assert!(x > peak, "{lambda}: {x}");
            assert!(
                (curve.marginal(x) - lambda).abs() < 1e-9 * lambda.max(1e-12),
                "{lambda}"
            );
        }
        assert_eq!(curve.spend_at_marginal(2.0 * curve.peak_marginal()), 0.0);
    }

    #[test]
    fn a_concave_hill_inverts_from_zero() {
        for s in [0.5, 1.0] {
            let curve = ResponseCurve::hill(50.0, 200.0, s);
            for lambda in [0.1, 0.01, 1e-4] {
                let x = curve.spend_at_marginal(lambda);
                assert!(
                    (curve.marginal(x) - lambda).abs() < 1e-9 * lambda,
                    "s {s}, {lambda}: {x}"
                );
            }
        }
    }

    #[test]
    fn adstock_answers_for_the_steady_state() {
        // With θ = 0.5 a daily 100 kept up is an effective 200.
        let plain = ResponseCurve::log(10.0, 100.0);
        let carried = plain.with_adstock(0.5);
        assert!((carried.value(100.0) - plain.value(200.0)).abs() < 1e-12);
        assert!((carried.marginal(100.0) - 2.0 * plain.marginal(200.0)).abs() < 1e-12);
        assert!((carried.marginal(100.0) - numeric_marginal(&carried, 100.0)).abs() < 1e-6);
        let x = carried.spend_at_marginal(0.04);
        assert!((carried.marginal(x) - 0.04).abs() < 1e-12);
        assert!((carried.half_saturation() - 50.0).abs() < 1e-12);
    }

    #[test]
    fn scaling_and_currency_move_the_right_parameter() {
        let hill = ResponseCurve::hill(50.0, 200.0, 2.0).with_adstock(0.3);
        assert!((hill.scaled(2.0).value(300.0) - 2.0 * hill.value(300.0)).abs() < 1e-9);
        let won = hill.in_currency(1000.0);
        assert!((won.value(300_000.0) - hill.value(300.0)).abs() < 1e-9);
        let log = ResponseCurve::log(10.0, 100.0);
        assert_eq!(log.in_currency(2.0), ResponseCurve::log(10.0, 200.0));
        assert_eq!(log.scaled(3.0), ResponseCurve::log(30.0, 100.0));
    }

    #[test]
    fn the_stored_form_keeps_old_curves_and_names_what_is_missing() {
        let old: ResponseCurve = serde_json::from_str(r#"{"a":10.0,"b":300.0}"#).unwrap();
        assert_eq!(old, ResponseCurve::log(10.0, 300.0));
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"a":10.0,"b":300.0}"#,
            "a log curve is written as it always was"
        );
        let hill = ResponseCurve::hill(50.0, 200.0, 2.0).with_adstock(0.4);
        let text = serde_json::to_string(&hill).unwrap();
        assert_eq!(
            text,
            r#"{"family":"hill","beta":50.0,"ec":200.0,"s":2.0,"adstock":0.4}"#
        );
        assert_eq!(serde_json::from_str::<ResponseCurve>(&text).unwrap(), hill);
        let bytes = rmp_serde::to_vec_named(&hill).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<ResponseCurve>(&bytes).unwrap(),
            hill
        );
        let err = serde_json::from_str::<ResponseCurve>(r#"{"family":"hill","beta":1.0,"ec":2.0}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("beta`, `ec` and `s"), "{err}");
        let err = serde_json::from_str::<ResponseCurve>(r#"{"a":1.0,"c":2.0}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `c`"), "{err}");
    }

    #[test]
    fn checks_name_the_parameter() {
        let bad = [
            (ResponseCurve::log(f64::NAN, 1.0), "a"),
            (ResponseCurve::log(1.0, 0.0), "b"),
            (ResponseCurve::hill(-1.0, 1.0, 1.0), "beta"),
            (ResponseCurve::hill(1.0, f64::INFINITY, 1.0), "ec"),
            (ResponseCurve::hill(1.0, 1.0, 0.0), "s"),
            (ResponseCurve::log(1.0, 1.0).with_adstock(1.0), "adstock"),
        ];
        for (curve, field) in bad {
            assert_eq!(curve.check().map_err(|e| e.field), Err(field), "{curve:?}");
        }
        assert_eq!(
            ResponseCurve::hill(1.0, 1.0, 3.0).with_adstock(0.5).check(),
            Ok(())
        );
    }
}
