//! The probability that each variant is the best, computed instead of sampled.
//!
//! With Beta posteriors of densities f_j and distribution functions F_j, the chance that arm i has
//! the highest rate is P(i best) = ∫ f_i(x) · Π_{j≠i} F_j(x) dx. This file evaluates that integral
//! by composite Gauss-Legendre quadrature, deterministically and without a generator:
//!
//! - each posterior's mass lies where its log-density is within [`TAIL`] of its peak; the Beta
//!   posteriors of a uniform prior are log-concave, so that interval is found by Newton's method
//!   from outside and the mass beyond it is below 1e-15;
//! - an arm whose upper end lies below another arm's lower end cannot be best (its chance is below
//!   1e-15) and gets exactly 0;
//! - the integral runs from the highest lower end to the highest upper end, in panels of
//!   [`ORDER`] nodes no wider than [`PANEL_WIDTH`] standard deviations of the narrowest posterior
//!   still holding mass there, so flat (a few trials) and concentrated (millions of trials)
//!   posteriors are both resolved, and halved where the product of the F_j grows too steeply
//!   (the best of many near-identical arms is far narrower than any one of them);
//! - each F_j is the integral of f_j on the same panels (the Gauss-Legendre integration matrix gives
//!   it at every node); the product of the F_j is taken once per node, with its exponent kept
//!   apart so that hundreds of small factors never underflow, and each share's integrand is that
//!   product divided by its own F_i; where the product is below 1e-13 nothing is integrated;
//! - identical arms are computed once and so get exactly equal shares; arms are taken in one
//!   canonical order, so permuting them permutes the shares bit for bit.
//!
//! Against panels four times finer, and against the closed form for two arms, no share moves by
//! 1e-8 (the tests hold it to that). The log-density is taken relative to its peak with the
//! logarithms of each node shared by every arm; its rounding error is about
//! (successes + failures) · 1e-16, about 1e-7 at 10⁹ trials.

use std::f64::consts::PI;
use std::sync::LazyLock;

use statrs::function::beta::checked_ln_beta;

use super::thompson::ArmStats;

/// How far (in natural log units) below its peak an arm's density may fall before the arm is taken
/// to have no mass there: e^-36 ≈ 2e-16.
const TAIL: f64 = 36.0;
/// Gauss-Legendre nodes per panel.
const ORDER: usize = 8;
/// Widest panel, in standard deviations of the narrowest posterior with mass in it.
const PANEL_WIDTH: f64 = 3.0;
/// A bound on the panels of one split, whatever the input (past it, the rest is one panel). Each
/// posterior spans about 2·√(2·TAIL) ≈ 17 of its standard deviations (up to TAIL for the most
/// skewed), so a dozen panels per variant is the most real counts need.
const MAX_PANELS: usize = 4096;
/// The most the log of the product of the F_j may grow across one panel (the panel is halved
/// otherwise): Gauss-Legendre's error on e^(6t) over a panel is below 1e-9 of its integral.
const STEEPEST: f64 = 6.0;
/// Below e^-30 ≈ 1e-13 the product, and every share's integrand with it, is negligible, however
/// steep.
const LN_NEGLIGIBLE: f64 = -30.0;
/// The smallest factor a product of distribution functions takes (see [`Product`]).
const FLOOR: f64 = 1e-150;
/// Newton steps when looking for the end of a posterior's mass.
const NEWTON_STEPS: usize = 12;

/// The integral came out zero or not finite. Only counts far beyond 10⁹ trials per variant, where
/// the doubles no longer resolve a posterior, can do that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unresolved;

/// P(arm i is best) for every arm, in the order given, summing to 1. Counts are taken as checked
/// (successes ≤ trials). Empty input gives an empty answer.
pub(crate) fn probability_best(arms: &[ArmStats]) -> Result<Vec<f64>, Unresolved> {
    probability_best_with(arms, PANEL_WIDTH).map(|(shares, _)| shares)
}

/// The same on panels at most `panel_width` standard deviations wide (the tests refine it to
/// measure the error of the default), with the integrated total before the shares were
/// normalised: its distance from 1 is the quadrature's own error.
fn probability_best_with(
    arms: &[ArmStats],
    panel_width: f64,
) -> Result<(Vec<f64>, f64), Unresolved> {
    if arms.len() <= 1 {
        return Ok((vec![1.0; arms.len()], 1.0));
    }
    let (groups, group_of) = group(arms, panel_width);
    let (shares, total) = group_shares(&groups, panel_width)?;
    let shares = group_of
        .iter()
        .map(|&g| shares.get(g).copied().unwrap_or(0.0))
        .collect();
    Ok((shares, total))
}

/// Arms with the same counts, computed once.
struct Group {
    posterior: Posterior,
    copies: f64,
}

/// The distinct arms in canonical order (by successes, then failures), and each arm's group.
fn group(arms: &[ArmStats], panel_width: f64) -> (Vec<Group>, Vec<usize>) {
    let mut keyed: Vec<((u64, u64), usize)> = arms
        .iter()
        .enumerate()
        .map(|(index, arm)| ((arm.successes, arm.failures()), index))
        .collect();
    keyed.sort_unstable();
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of = vec![0; arms.len()];
    let mut last = None;
    for (key, index) in keyed {
        if last != Some(key) {
            groups.push(Group {
                posterior: Posterior::new(key.0, key.1, panel_width),
                copies: 0.0,
            });
            last = Some(key);
        }
        if let Some(g) = groups.last_mut() {
            g.copies += 1.0;
        }
        if let Some(slot) = group_of.get_mut(index) {
            *slot = groups.len() - 1;
        }
    }
    (groups, group_of)
}

/// Share of one copy of each group (the copies' shares sum to 1), and the integrated total.
fn group_shares(groups: &[Group], panel_width: f64) -> Result<(Vec<f64>, f64), Unresolved> {
    let mut shares = vec![0.0; groups.len()];
    // Below the highest lower end some arm has no mass yet, so nothing can be best there.
    let start = groups
        .iter()
        .map(|g| g.posterior.lo)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut alive: Vec<usize> = (0..groups.len())
        .filter(|&g| groups.get(g).is_some_and(|g| g.posterior.hi > start))
        .collect();
    alive.sort_by(|&x, &y| {
        let end = |g: usize| groups.get(g).map_or(0.0, |g| g.posterior.hi);
        end(x).total_cmp(&end(y)).then(x.cmp(&y))
    });
    let members: Vec<(&Posterior, f64)> = alive
        .iter()
        .filter_map(|&g| groups.get(g))
        .map(|g| (&g.posterior, g.copies))
        .collect();
    if let ([only], [(_, copies)]) = (&alive[..], &members[..]) {
        if let Some(s) = shares.get_mut(*only) {
            *s = copies.recip();
        }
        return Ok((shares, 1.0));
    }
    let (raw, total) = integrate(&members, start, panel_width);
    let sum: f64 = raw.iter().zip(&members).map(|(r, (_, c))| r * c).sum();
    if !(sum.is_finite() && sum > 0.0) {
        return Err(Unresolved);
    }
    for (&g, r) in alive.iter().zip(&raw) {
        if let Some(s) = shares.get_mut(g) {
            *s = r / sum;
        }
    }
    Ok((shares, total))
}

/// The posterior Beta(1 + successes, 1 + failures), as the quadrature needs it.
#[derive(Clone, Copy, Debug)]
struct Posterior {
    /// The exponents of x and 1 - x in the density (a - 1 and b - 1).
    successes: f64,
    failures: f64,
    /// −(s·ln m + f·ln(1 − m)) at the mode m: the log-density is taken relative to its peak, and
    /// the normalising constant is left to the quadrature.
    offset: f64,
    mode: f64,
    sd: f64,
    /// The widest panel for this posterior's own mass.
    panel: f64,
    /// Where the density falls to e^-TAIL of its peak.
    lo: f64,
    hi: f64,
}

impl Posterior {
    fn new(successes: u64, failures: u64, panel_width: f64) -> Self {
        let (s, f) = (successes as f64, failures as f64);
        let n = s + f;
        let mode = if n > 0.0 { s / n } else { 0.5 };
        // A zero exponent contributes nothing (and must not meet ln 0).
        let term = |count: f64, at: f64| if count > 0.0 { count * at.ln() } else { 0.0 };
        let offset = -(term(s, mode) + term(f, if n > 0.0 { f / n } else { 0.5 }));
        let (a, b) = (s + 1.0, f + 1.0);
        let t = a + b;
        let sd = ((a / t) * (b / t) / (t + 1.0)).sqrt();
        let mut posterior = Self {
            successes: s,
            failures: f,
            offset,
            mode,
            sd,
            panel: panel_width * sd,
            lo: 0.0,
            hi: 1.0,
        };
        posterior.lo = posterior.lower_end();
        posterior.hi = posterior.upper_end();
        posterior
    }

    /// Log-density relative to the peak, from ln x and ln(1 - x). At most 0 (rounding aside, which
    /// is cut off so that absurd counts cannot overflow).
    fn log_density(&self, ln_x: f64, ln_1mx: f64) -> f64 {
        (self.successes * ln_x + self.failures * ln_1mx + self.offset).min(0.0)
    }

    fn log_density_at(&self, x: f64) -> f64 {
        let s = if self.successes > 0.0 {
            self.successes * x.ln()
        } else {
            0.0
        };
        let f = if self.failures > 0.0 {
            self.failures * (-x).ln_1p()
        } else {
            0.0
        };
        (s + f + self.offset).min(0.0)
    }

    /// ln ∫ e^(log-density), from the Beta function. The F_j are normalised by it while the panels
    /// are integrated; its error cancels from the shares (see [`integrate`]).
    fn ln_mass_estimate(&self) -> f64 {
        checked_ln_beta(self.successes + 1.0, self.failures + 1.0).unwrap_or(0.0) + self.offset
    }

    fn slope_at(&self, x: f64) -> f64 {
        self.successes / x - self.failures / (1.0 - x)
    }

    /// The point above the mode where the log-density falls to −TAIL.
    fn upper_end(&self) -> f64 {
        if self.failures == 0.0 {
            return 1.0;
        }
        self.end(1.0, TAIL).unwrap_or(1.0)
    }

    /// The point below the mode where the log-density falls to −TAIL.
    fn lower_end(&self) -> f64 {
        if self.successes == 0.0 {
            return 0.0;
        }
        self.end(-1.0, TAIL).unwrap_or(0.0)
    }

    /// The point on the `side` (+1 above, −1 below) of the mode where the log-density falls to
    /// −`tail`. The log-density is concave, so Newton's method started outside that point stays
    /// outside it and closes in: the point returned has at most e^-tail of the peak density.
    fn end(&self, side: f64, tail: f64) -> Option<f64> {
        let (mut x, mut at) = self.outside(side, tail)?;
        for _ in 0..NEWTON_STEPS {
            let next = x - (at + tail) / self.slope_at(x);
            let inward = side * (x - next);
            if !(inward > 0.0 && side * (next - self.mode) > 0.0) {
                break;
            }
            let at_next = self.log_density_at(next);
            if at_next > -tail {
                break;
            }
            (x, at) = (next, at_next);
            if inward < 0.01 * self.sd {
                break;
            }
        }
        Some(x)
    }

    /// A point on the `side` of the mode where the log-density is below −`tail`, and the
    /// log-density there: stepping out by doubling from √(2·tail) standard deviations, and once a
    /// step would leave (0, 1), halving the distance left to the edge, where the log-density goes
    /// to −∞. `None` only when the doubles run out first.
    fn outside(&self, side: f64, tail: f64) -> Option<(f64, f64)> {
        let edge = if side > 0.0 { 1.0 } else { 0.0 };
        let mut step = self.sd * (2.0 * tail).sqrt();
        let mut last = self.mode;
        // Doubling reaches the edge within about 70 steps and halving exhausts the doubles within
        // about 1100 more, so this bound is never what stops the search on real counts.
        for _ in 0..1200 {
            let mut x = self.mode + side * step;
            if !(x > 0.0 && x < 1.0) {
                x = 0.5 * (last + edge);
                if !(x > 0.0 && x < 1.0) || x == last {
                    return None;
                }
            }
            let at = self.log_density_at(x);
            if at <= -tail {
                return Some((x, at));
            }
            last = x;
            step *= 2.0;
        }
        None
    }

    /// ∫ e^(log-density) from the lower end to `to`, on panels of this posterior's own width.
    fn mass_below(&self, to: f64) -> f64 {
        let rule = &*RULE;
        let span = to - self.lo;
        if span <= 0.0 {
            return 0.0;
        }
        let count = panel_count(span, self.panel);
        let width = span / count as f64;
        let mut mass = 0.0;
        for p in 0..count {
            let start = self.lo + p as f64 * width;
            for (t, w) in rule.nodes.iter().zip(&rule.weights) {
                let x = start + 0.5 * width * (1.0 + t);
                mass += 0.5 * width * w * self.log_density_at(x).exp();
            }
        }
        mass
    }
}

fn panel_count(span: f64, widest: f64) -> usize {
    let count = (span / widest).ceil();
    if count.is_finite() && count >= 1.0 {
        (count as usize).min(MAX_PANELS)
    } else if count.is_finite() {
        1
    } else {
        MAX_PANELS
    }
}

/// Gauss-Legendre nodes and weights on [−1, 1], and the integration matrix:
/// `partial[i][m]` = ∫ from −1 to node i of the Lagrange polynomial of node m, so that
/// Σ_m partial[i][m]·f(node m) integrates f from the panel's start to node i.
struct Rule {
    nodes: [f64; ORDER],
    weights: [f64; ORDER],
    partial: [[f64; ORDER]; ORDER],
}

static RULE: LazyLock<Rule> = LazyLock::new(Rule::new);

impl Rule {
    fn new() -> Self {
        let mut nodes = [0.0; ORDER];
        let mut weights = [0.0; ORDER];
        let n = ORDER as f64;
        for (i, (node, weight)) in nodes.iter_mut().zip(weights.iter_mut()).enumerate() {
            // The i-th root counted from −1, refined by Newton's method from the classic guess.
            let mut x = -(PI * (i as f64 + 0.75) / (n + 0.5)).cos();
            for _ in 0..100 {
                let (p, dp) = legendre(ORDER, x);
                let dx = p / dp;
                x -= dx;
                if dx.abs() < 1e-16 {
                    break;
                }
            }
            let (_, dp) = legendre(ORDER, x);
            *node = x;
            *weight = 2.0 / ((1.0 - x * x) * dp * dp);
        }
        let lagrange = |m: usize, t: f64| {
            nodes
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != m)
                .fold(1.0, |acc, (_, &xk)| {
                    acc * (t - xk) / (nodes.get(m).copied().unwrap_or(0.0) - xk)
                })
        };
        let mut partial = [[0.0; ORDER]; ORDER];
        for (row, &upto) in partial.iter_mut().zip(&nodes) {
            // The n-point rule is exact for the degree n − 1 Lagrange polynomials on [−1, upto].
            let half = 0.5 * (upto + 1.0);
            for (m, cell) in row.iter_mut().enumerate() {
                *cell = nodes
                    .iter()
                    .zip(&weights)
                    .map(|(u, w)| half * w * lagrange(m, -1.0 + half * (u + 1.0)))
                    .sum();
            }
        }
        Self {
            nodes,
            weights,
            partial,
        }
    }
}

/// P_n(x) and its derivative, by the three-term recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    for k in 2..=n {
        let k = k as f64;
        let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    let n = n as f64;
    (p1, n * (x * p1 - p0) / (x * x - 1.0))
}

/// A product of factors of about 1 and less, kept as `value` · FLOOR^`scale` so that hundreds of
/// small factors never underflow, at the cost of a multiplication each (no logarithm).
#[derive(Clone, Copy)]
struct Product {
    value: f64,
    scale: i32,
}

impl Product {
    const ONE: Self = Self {
        value: 1.0,
        scale: 0,
    };

    /// Multiplies in `factor` (see [`factor`]), `copies` times.
    fn times(&mut self, factor: f64, copies: f64) {
        let factor = self::factor(factor);
        let mut left = copies;
        while left >= 1.0 {
            self.value *= factor;
            if self.value < FLOOR {
                self.value /= FLOOR;
                self.scale += 1;
            }
            left -= 1.0;
        }
    }

    /// The product; 0 once it is below about 1e-300.
    fn get(self) -> f64 {
        self.value * FLOOR.powi(self.scale)
    }

    fn ln(self) -> f64 {
        self.value.ln() + f64::from(self.scale) * FLOOR.ln()
    }
}

/// A distribution function as a factor of the product: at least FLOOR (where one is that small,
/// the product, and every share's integrand but that factor's own, which divides it out again, is
/// negligible anyway), and at most 2 (a normalisation estimate off by that much would take absurd
/// counts; it keeps the product finite).
fn factor(value: f64) -> f64 {
    if value >= FLOOR {
        value.min(2.0)
    } else {
        FLOOR
    }
}

/// One panel: its start and width, and the first member (in order of upper end) that still has
/// mass in it; every later member has mass there too.
struct Panel {
    start: f64,
    width: f64,
    first: usize,
}

/// One panel's values, per member from the panel's `first` on: the density at the ORDER nodes and
/// the mass in the panel, then, where the panel counts, the unnormalised distribution function at
/// the nodes.
#[derive(Default)]
struct Draft {
    density: Vec<f64>,
    masses: Vec<f64>,
    cdf: Vec<f64>,
}

impl Draft {
    fn fill(&mut self, panel: &Panel, members: &[(&Posterior, f64)]) {
        let rule = &*RULE;
        self.density.clear();
        self.masses.clear();
        let half = 0.5 * panel.width;
        let mut ln_x = [0.0; ORDER];
        let mut ln_1mx = [0.0; ORDER];
        for ((t, lx), l1x) in rule.nodes.iter().zip(&mut ln_x).zip(&mut ln_1mx) {
            let x = panel.start + half * (1.0 + t);
            *lx = x.ln();
            *l1x = (-x).ln_1p();
        }
        for (posterior, _) in members.iter().skip(panel.first) {
            let mut f = [0.0; ORDER];
            for ((v, lx), l1x) in f.iter_mut().zip(&ln_x).zip(&ln_1mx) {
                *v = posterior.log_density(*lx, *l1x).exp();
            }
            let within: f64 = rule.weights.iter().zip(&f).map(|(w, v)| w * v).sum();
            self.masses.push(half * within);
            self.density.extend_from_slice(&f);
        }
    }

    /// The distribution functions at the nodes, from each member's mass before the panel.
    fn distribution(&mut self, panel: &Panel, cum: &[f64]) {
        let rule = &*RULE;
        let half = 0.5 * panel.width;
        self.cdf.clear();
        for (f, cum) in self
            .density
            .chunks_exact(ORDER)
            .zip(cum.iter().skip(panel.first))
        {
            for row in &rule.partial {
                let within: f64 = row.iter().zip(f).map(|(s, v)| s * v).sum();
                self.cdf.push(cum + half * within);
            }
        }
    }
}

/// ∫ f_i · Π_{j≠i} F_j for one copy of each member, and the total over all copies (1 up to the
/// quadrature's error).
///
/// `members` are sorted by upper end; the panels run from `start` to the last upper end. Every
/// member has mass from `start` on, so the members with mass in a panel are those whose upper end
/// lies beyond its start: a suffix. A panel is at most `panel_width` standard deviations of the
/// narrowest of them wide (members whose mass ends inside it are carried to its end, where their
/// density is below e^-TAIL of its peak), and it is halved while the product of the F_j grows by
/// more than e^STEEPEST across it where that product is not negligible: many near-identical arms
/// make the best of them far narrower than any one posterior.
///
/// One pass, so nothing is stored: each F_j is normalised by an estimate of its mass (from the
/// Beta function), which leaves it off by a constant factor r_j. Every integrand is then off by the
/// same factor Π r_j^copies, which the shares' normalisation removes exactly; the total is
/// corrected at the end with the masses the pass integrated itself.
fn integrate(members: &[(&Posterior, f64)], start: f64, panel_width: f64) -> (Vec<f64>, f64) {
    let rule = &*RULE;
    let mut cum: Vec<f64> = members.iter().map(|(p, _)| p.mass_below(start)).collect();
    let inverse: Vec<f64> = members
        .iter()
        .map(|(p, _)| (-p.ln_mass_estimate()).exp())
        .map(|inverse| if inverse.is_finite() { inverse } else { 0.0 })
        .collect();
    let ln_product = |cum: &[f64], masses: &[f64], first: usize| -> f64 {
        let mut product = Product::ONE;
        for (((_, copies), (cum, inverse)), mass) in members
            .iter()
            .zip(cum.iter().zip(&inverse))
            .skip(first)
            .zip(masses.iter().chain(std::iter::repeat(&0.0)))
        {
            product.times((cum + mass) * inverse, *copies);
        }
        product.ln()
    };
    // The narrowest posterior among each suffix sets the panel width there.
    let mut narrowest = vec![f64::INFINITY; members.len()];
    let mut running = f64::INFINITY;
    for (slot, (p, _)) in narrowest.iter_mut().zip(members).rev() {
        running = running.min(p.sd);
        *slot = running;
    }
    let mut raw = vec![0.0; members.len()];
    let mut draft = Draft::default();
    let mut values = Vec::with_capacity(members.len());
    let mut ln_before = ln_product(&cum, &[], 0);
    let stop = members.last().map_or(start, |(p, _)| p.hi);
    let mut left = start;
    let mut first = 0;
    let mut width = f64::INFINITY;
    let mut made = 0;
    let mut gone = Product::ONE;
    while left < stop {
        // A member whose mass ended before this panel has F = 1 from here on: it drops out, its
        // F (1 off by its normalisation's factor) kept in the product as a constant.
        while let Some((p, copies)) = members.get(first)
            && p.hi <= left
        {
            let (cum, inverse) = (cum.get(first), inverse.get(first));
            gone.times(cum.zip(inverse).map_or(1.0, |(c, i)| c * i), *copies);
            first += 1;
        }
        let widest = panel_width * narrowest.get(first).copied().unwrap_or(f64::INFINITY);
        width = width.min(widest);
        let rest = stop - left;
        let mut w = if rest <= width {
            rest
        } else if rest < 2.0 * width {
            0.5 * rest
        } else {
            width
        };
        let worn_out = made >= MAX_PANELS;
        if worn_out || left + w <= left {
            w = rest;
        }
        let panel = Panel {
            start: left,
            width: w,
            first,
        };
        draft.fill(&panel, members);
        let ln_after = ln_product(&cum, &draft.masses, first);
        if ln_after > LN_NEGLIGIBLE
            && ln_after - ln_before > STEEPEST
            && w > widest / 1024.0
            && !worn_out
        {
            width = 0.5 * w;
            continue;
        }
        // Where even the product at the panel's end is negligible, so is every share's part of
        // the panel (each is at most that product): only the masses are carried on.
        if ln_after > LN_NEGLIGIBLE {
            draft.distribution(&panel, &cum);
            let half = 0.5 * w;
            let inverse = inverse.get(first..).unwrap_or_default();
            let copies = members.get(first..).unwrap_or_default();
            let raw = raw.get_mut(first..).unwrap_or_default();
            for (t, weight) in rule.weights.iter().enumerate() {
                values.clear();
                let mut product = Product::ONE;
                for ((column, inverse), (_, copies)) in
                    draft.cdf.chunks_exact(ORDER).zip(inverse).zip(copies)
                {
                    let value = factor(column.get(t).copied().unwrap_or(1.0) * inverse);
                    product.times(value, *copies);
                    values.push(value);
                }
                let product = product.get() * gone.get();
                if product == 0.0 {
                    continue;
                }
                for (((f, inverse), value), r) in draft
                    .density
                    .chunks_exact(ORDER)
                    .zip(inverse)
                    .zip(&values)
                    .zip(raw.iter_mut())
                {
                    // Π_{j≠i} F_j = product / F_i.
                    *r += half * weight * f.get(t).copied().unwrap_or(0.0) * inverse * product
                        / value;
                }
            }
        }
        for (cum, mass) in cum.iter_mut().skip(first).zip(&draft.masses) {
            *cum += mass;
        }
        // The next panel as wide as keeps the product's growth within STEEPEST, judged by this
        // one, and at most twice as wide.
        let growth = ln_after - ln_before;
        width = if ln_after > LN_NEGLIGIBLE && growth > 0.0 {
            w * (0.8 * STEEPEST / growth).clamp(0.5, 2.0)
        } else {
            2.0 * w
        };
        ln_before = ln_after;
        made += 1;
        left = if w < rest { left + w } else { stop };
    }
    let ln_off: f64 = members
        .iter()
        .zip(cum.iter().zip(&inverse))
        .map(|((_, copies), (cum, inverse))| copies * (cum * inverse).ln())
        .sum();
    let total: f64 = raw.iter().zip(members).map(|(r, (_, c))| r * c).sum();
    (raw, total / ln_off.exp())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand_distr::Distribution;
    use statrs::function::beta::beta_reg;

    use super::*;
    use crate::domain::optimization::stats::prob_b_beats_a;
    use crate::domain::optimization::thompson::posteriors;

    /// The largest difference allowed between a share and its Monte-Carlo estimate.
    const TOLERANCE: f64 = 0.005;

    use crate::domain::optimization::thompson::realistic_arms as realistic;

    /// Six variants within a tenth of a point of 4 %, 20 000 trials each: no clear leader.
    fn near_tie() -> Vec<ArmStats> {
        [800, 812, 795, 806, 790, 809]
            .into_iter()
            .map(|s| ArmStats::new(s, 20_000))
            .collect()
    }

    fn max_gap(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// A test generator: SplitMix64. Unoptimised it is about six times faster than ChaCha8, and
    /// no draw count a test can afford tells the two apart.
    struct SplitMix(u64);

    impl rand::TryRng for SplitMix {
        type Error = std::convert::Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok((self.try_next_u64()? >> 32) as u32)
        }

        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            Ok(z ^ (z >> 31))
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(8) {
                let bytes = self.try_next_u64()?.to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            Ok(())
        }
    }

    /// Shares by joint posterior draws, with the Beta samplers `monte_carlo_split` uses, and
    /// enough draws that TOLERANCE is 4 standard deviations (√(p(1 − p)/draws)) of the noisiest
    /// share. Two economies keep debug builds quick without changing what is estimated: the test
    /// generator above, and a draw stops once its best rate exceeds every remaining arm's
    /// ceiling (where its density is e^-16 of the peak), the arms being drawn in order of ceiling.
    /// An arm beats its ceiling with probability below 1e-7, so even 216 skipped arms move no
    /// share by more than 3e-5.
    fn monte_carlo(arms: &[ArmStats], expected: &[f64]) -> (Vec<f64>, usize, f64) {
        let noisiest = expected.iter().map(|p| p * (1.0 - p)).fold(0.0, f64::max);
        let draws = ((16.0 * noisiest / (TOLERANCE * TOLERANCE)).ceil() as usize).max(20_000);
        let samplers = posteriors(arms).unwrap();
        let mut order: Vec<(usize, f64)> = arms
            .iter()
            .enumerate()
            .map(|(i, arm)| {
                let p = Posterior::new(arm.successes, arm.failures(), PANEL_WIDTH);
                let ceiling = if p.failures == 0.0 {
                    1.0
                } else {
                    p.end(1.0, 16.0).unwrap_or(1.0)
                };
                (i, ceiling)
            })
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut rng = SplitMix(arms.len() as u64);
        let mut wins = vec![0u64; arms.len()];
        for _ in 0..draws {
            let mut best: Option<(usize, f64)> = None;
            for &(i, ceiling) in &order {
                if best.is_some_and(|(_, top)| top > ceiling) {
                    break;
                }
                let x = samplers[i].sample(&mut rng);
                if best.is_none_or(|(_, top)| x > top) {
                    best = Some((i, x));
                }
            }
            wins[best.unwrap().0] += 1;
        }
        let shares: Vec<f64> = wins.iter().map(|&w| w as f64 / draws as f64).collect();
        // The draws were sized from the quadrature's shares; check the estimate's own noise too.
        let noise = shares
            .iter()
            .map(|p| (p * (1.0 - p) / draws as f64).sqrt())
            .fold(0.0, f64::max);
        assert!(noise <= TOLERANCE / 3.5, "{draws} draws, noise {noise}");
        (shares, draws, noise)
    }

    fn agrees_with_monte_carlo(name: &str, arms: &[ArmStats]) {
        let exact = probability_best(arms).unwrap();
        let (drawn, draws, noise) = monte_carlo(arms, &exact);
        let gap = max_gap(&exact, &drawn);
        // Shown with --nocapture; docs/optimization.md quotes these.
        eprintln!("{name}: largest difference {gap:.5} over {draws} draws (noise {noise:.5})");
        assert!(gap <= TOLERANCE, "{name}: {gap}");
    }

    #[test]
    fn agrees_with_monte_carlo_at_6_variants() {
        agrees_with_monte_carlo("6 flat", &realistic(6, false));
        agrees_with_monte_carlo("6 concentrated", &realistic(6, true));
        agrees_with_monte_carlo("near tie", &near_tie());
    }

    #[test]
    fn agrees_with_monte_carlo_at_36_variants() {
        agrees_with_monte_carlo("36 flat", &realistic(36, false));
        agrees_with_monte_carlo("36 concentrated", &realistic(36, true));
    }

    #[test]
    fn agrees_with_monte_carlo_at_216_flat_variants() {
        agrees_with_monte_carlo("216 flat", &realistic(216, false));
    }

    #[test]
    fn agrees_with_monte_carlo_at_216_concentrated_variants() {
        agrees_with_monte_carlo("216 concentrated", &realistic(216, true));
    }

    #[test]
    fn refining_the_panels_moves_no_share() {
        let mut sets: Vec<Vec<ArmStats>> = [6, 36, 216]
            .into_iter()
            .flat_map(|n| [realistic(n, false), realistic(n, true)])
            .collect();
        sets.push(near_tie());
        // 216 nearly identical variants: the best of them is far narrower than any one posterior.
        sets.push(
            (0..216)
                .map(|i| ArmStats::new(4_000 + i % 7, 100_000))
                .collect(),
        );
        // Flat and concentrated side by side.
        sets.push(vec![
            ArmStats::new(3, 50),
            ArmStats::new(40_000, 1_000_000),
            ArmStats::new(9, 200),
            ArmStats::new(400, 10_000),
        ]);
        for arms in &sets {
            let (shares, total) = probability_best_with(arms, PANEL_WIDTH).unwrap();
            let (finer, _) = probability_best_with(arms, PANEL_WIDTH / 4.0).unwrap();
            let gap = max_gap(&shares, &finer);
            assert!(gap < 1e-8, "{} arms: {gap}", arms.len());
            assert!((total - 1.0).abs() < 1e-9, "{} arms: {total}", arms.len());
        }
    }

    #[test]
    fn two_arms_match_the_closed_form() {
        for (a, b) in [
            ((3, 60), (5, 70)),
            ((0, 50), (2, 50)),
            ((0, 0), (1, 3)),
            ((10, 10), (0, 10)),
            ((400, 10_000), (430, 10_000)),
            ((40, 1_000), (4_100, 100_000)),
            ((20, 1_000), (60, 1_000)),
        ] {
            let (a, b) = (ArmStats::new(a.0, a.1), ArmStats::new(b.0, b.1));
            let shares = probability_best(&[a, b]).unwrap();
            let exact = prob_b_beats_a(a, b).unwrap();
            assert!(
                (shares[1] - exact).abs() < 1e-8,
                "{a:?} {b:?}: {shares:?} vs {exact}"
            );
        }
    }

    #[test]
    fn a_posterior_has_no_mass_beyond_its_ends() {
        for (s, f) in [
            (0, 0),
            (0, 50),
            (3, 47),
            (50, 0),
            (400, 9_600),
            (10_000, 990_000),
            (0, 1_000_000),
        ] {
            let p = Posterior::new(s, f, PANEL_WIDTH);
            let (a, b) = (s as f64 + 1.0, f as f64 + 1.0);
            let below = if p.lo > 0.0 {
                beta_reg(a, b, p.lo)
            } else {
                0.0
            };
            let above = if p.hi < 1.0 {
                beta_reg(b, a, 1.0 - p.hi)
            } else {
                0.0
            };
            assert!(below < 1e-14 && above < 1e-14, "{s}/{f}: {below} {above}");
            // And the ends are not needlessly far out: they hold the mass within a few e^-TAIL.
            assert!(p.hi - p.lo < 2.0 * (2.0 * TAIL).sqrt() * p.sd * 1.5 || s == 0 || f == 0);
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(probability_best(&[]).unwrap(), Vec::<f64>::new());
        assert_eq!(probability_best(&[ArmStats::new(3, 9)]).unwrap(), vec![1.0]);
        // Identical arms get exactly equal shares, alone or among others.
        assert_eq!(
            probability_best(&[ArmStats::new(30, 1_000); 5]).unwrap(),
            vec![0.2; 5]
        );
        assert_eq!(
            probability_best(&[ArmStats::default(); 4]).unwrap(),
            vec![0.25; 4]
        );
        let mixed = [
            ArmStats::new(30, 1_000),
            ArmStats::new(35, 1_000),
            ArmStats::new(30, 1_000),
            ArmStats::new(2, 40),
            ArmStats::new(30, 1_000),
        ];
        let shares = probability_best(&mixed).unwrap();
        assert!(
            shares[0] == shares[2] && shares[2] == shares[4],
            "{shares:?}"
        );
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // A clearly dominated arm is pruned to exactly 0.
        let shares =
            probability_best(&[ArmStats::new(100, 10_000), ArmStats::new(500, 10_000)]).unwrap();
        assert_eq!(shares, vec![0.0, 1.0]);
    }

    #[test]
    fn a_billion_trials_stay_precise() {
        // 1 % against 1.0001 % over 10⁹ trials each: P(B best) = Φ(Δ / √(2·p(1 − p)/n)) to
        // well within 1e-4 (both posteriors are normal to the eye at these counts).
        let n = 1_000_000_000u64;
        let shares =
            probability_best(&[ArmStats::new(10_000_000, n), ArmStats::new(10_001_000, n)])
                .unwrap();
        let z = 1e-6 / (2.0 * 0.01 * 0.99 / n as f64).sqrt();
        let normal = statrs::distribution::Normal::standard();
        let expected = statrs::distribution::ContinuousCDF::cdf(&normal, z);
        assert!(
            (shares[1] - expected).abs() < 1e-4,
            "{shares:?} vs {expected}"
        );
        // Extremes of every kind side by side, at 10⁹ and at the limit of u64.
        for arms in [
            vec![
                ArmStats::new(0, n),
                ArmStats::new(n, n),
                ArmStats::new(n / 2, n),
                ArmStats::new(1, n),
                ArmStats::new(0, 0),
            ],
            vec![
                ArmStats::new(0, n),
                ArmStats::new(1, n),
                ArmStats::new(0, 1),
            ],
            vec![
                ArmStats::new(u64::MAX / 3, u64::MAX),
                ArmStats::new(u64::MAX / 3 + 1, u64::MAX),
                ArmStats::new(u64::MAX, u64::MAX),
                ArmStats::new(1, u64::MAX),
            ],
        ] {
            if let Ok(shares) = probability_best(&arms) {
                assert!(shares.iter().all(|s| (0.0..=1.0).contains(s)), "{shares:?}");
                assert!(
                    (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                    "{shares:?}"
                );
            }
        }
        let shares = probability_best(&[ArmStats::new(0, n), ArmStats::new(n, n)]).unwrap();
        assert_eq!(shares, vec![0.0, 1.0]);
    }

    /// Anything from no trials to 10⁹, at rates mostly below 20 %.
    fn arm() -> impl Strategy<Value = ArmStats> {
        (0.0f64..9.0, 0.0f64..1.0, any::<bool>()).prop_map(|(decades, rate, low)| {
            let trials = 10f64.powf(decades).floor() - 1.0;
            let rate = if low { rate * 0.2 } else { rate };
            ArmStats::new((rate * trials).round() as u64, trials as u64)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn shares_are_probabilities_that_follow_their_arms(
            arms in prop::collection::vec(arm(), 1..12),
            turn in 0usize..12,
        ) {
            let shares = probability_best(&arms).unwrap();
            prop_assert!(shares.iter().all(|s| (0.0..=1.0).contains(s)), "{:?}", shares);
            prop_assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{:?}", shares);

            let mut moved = arms.clone();
            moved.reverse();
            moved.rotate_left(turn % arms.len());
            let mut expected = shares.clone();
            expected.reverse();
            expected.rotate_left(turn % arms.len());
            prop_assert_eq!(probability_best(&moved).unwrap(), expected);
        }

        #[test]
        fn a_dominated_arm_gets_nothing_and_changes_nothing(
            arms in prop::collection::vec(arm(), 0..8),
        ) {
            let mut with_leader = arms.clone();
            with_leader.push(ArmStats::new(300, 1_000));
            let mut with_loser = with_leader.clone();
            with_loser.push(ArmStats::new(10, 10_000));
            let before = probability_best(&with_leader).unwrap();
            let after = probability_best(&with_loser).unwrap();
            prop_assert!(after.last().is_some_and(|&s| s < 1e-12), "{:?}", after);
            prop_assert!(max_gap(&before, &after) < 1e-12, "{:?} {:?}", before, after);
        }
    }
}
