//! Charts drawn on the server as inline SVG: a line chart (series, a shaded band, a reference
//! line, markers) and stacked share bars. Drawn here rather than by a JavaScript library because
//! the figures are few (a campaign has tens of days) and a picture that arrives with the page
//! needs no script, no asset and no CDN, and reads the same under a strict CSP.
//!
//! Every data point is an element with its series, coordinates and value in `data-` attributes
//! and a `<title>`, so a person hovering and a test reading the page see the same numbers.
//! Colours come from the stylesheet by class (`s0`, `s1`, …), never from inline styles.

use maud::{Markup, html};

use super::page::group;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Whether each point is drawn as a dot (a data point) or the line only (a fitted line).
    pub dots: bool,
}

/// A shaded interval, named: (x, low, high) in x order.
pub type Band = (String, Vec<(f64, f64, f64)>);

/// A line chart.
pub struct LineChart {
    /// The chart's id in the page, and the name tests find it by.
    pub id: String,
    pub x_label: String,
    pub series: Vec<Series>,
    /// A shaded interval and its name.
    pub band: Option<Band>,
    /// A horizontal reference line (a target, a budget) and its label.
    pub reference: Option<(f64, String)>,
    /// Vertical markers: x and what happened.
    pub markers: Vec<(f64, String)>,
}

/// The linear map of one axis from data to pixels.
#[derive(Clone, Copy)]
struct Axis {
    low: f64,
    high: f64,
    from: f64,
    to: f64,
}

impl Axis {
    fn at(self, value: f64) -> f64 {
        let span = self.high - self.low;
        if span <= 0.0 {
            return self.from;
        }
        self.from + (value - self.low) / span * (self.to - self.from)
    }
}

/// About `count` round tick values from `low` to `high` (steps of 1, 2 or 5 times a power of ten).
fn ticks(low: f64, high: f64, count: usize) -> Vec<f64> {
    let span = high - low;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return vec![low];
    }
    let raw = span / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let mut value = (low / step).ceil() * step;
    let mut out = Vec::new();
    while value <= high + step * 1e-9 && out.len() <= count * 2 {
        out.push(value);
        value += step;
    }
    out
}

impl LineChart {
    pub fn render(&self) -> Markup {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(self.band.iter().flat_map(|(_, b)| b.iter().map(|p| p.0)))
            .chain(self.markers.iter().map(|m| m.0));
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.band.iter().flat_map(|(_, b)| b.iter().map(|p| p.2)))
            .chain(self.reference.iter().map(|r| r.0));
        let (x_low, x_high) = bounds(xs);
        let (_, y_high) = bounds(ys);
        let x = Axis {
            low: x_low,
            high: x_high.max(x_low + 1.0),
            from: LEFT,
            to: WIDTH - RIGHT,
        };
        let y = Axis {
            low: 0.0,
            high: (y_high * 1.08).max(1.0),
            from: HEIGHT - BOTTOM,
            to: TOP,
        };
        let band_path = self
            .band
            .as_ref()
            .filter(|(_, b)| !b.is_empty())
            .map(|(_, b)| {
                let upper = b
                    .iter()
                    .map(|p| format!("{:.1},{:.1}", x.at(p.0), y.at(p.2)));
                let lower = b
                    .iter()
                    .rev()
                    .map(|p| format!("{:.1},{:.1}", x.at(p.0), y.at(p.1.max(0.0))));
                format!("M{}Z", upper.chain(lower).collect::<Vec<_>>().join("L"))
            });
        html! {
            figure.chart id=(self.id) {
                svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-labelledby=(format!("{}-legend", self.id)) {
                    @for tick in ticks(y.low, y.high, 5) {
                        line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y.at(tick)) y2=(y.at(tick)) {}
                        text.tick x=(LEFT - 6.0) y=(y.at(tick) + 4.0) text-anchor="end" { (group(tick, 0)) }
                    }
                    @for tick in ticks(x.low, x.high, 8) {
                        text.tick x=(x.at(tick)) y=(HEIGHT - BOTTOM + 16.0) text-anchor="middle" { (group(tick, 0)) }
                    }
                    text.axis x=(WIDTH - RIGHT) y=(HEIGHT - 2.0) text-anchor="end" { (self.x_label) }
                    @if let (Some(path), Some((name, _))) = (&band_path, &self.band) {
                        path.band d=(path) { title { (name) } }
                    }
                    @if let Some((value, label)) = &self.reference {
                        line.reference x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y.at(*value)) y2=(y.at(*value)) {}
                        text.reference x=(WIDTH - RIGHT) y=(y.at(*value) - 4.0) text-anchor="end" { (label) }
                    }
                    @for (at, what) in &self.markers {
                        line.marker x1=(x.at(*at)) x2=(x.at(*at)) y1=(TOP) y2=(HEIGHT - BOTTOM) data-x=(at) {
                            title { "day " (at + 1.0) ": " (what) }
                        }
                    }
                    @for (index, series) in self.series.iter().enumerate() {
                        @let class = format!("line s{index}");
                        path class=(class) d=(line_path(&series.points, x, y)) {}
                        @if series.dots {
                            @for (px, py) in &series.points {
                                circle class=(format!("point s{index}")) cx=(format!("{:.1}", x.at(*px))) cy=(format!("{:.1}", y.at(*py))) r="3"
                                    data-series=(series.name) data-x=(px) data-y=(py) {
                                    title { (series.name) ", day " (px) ": " (group(*py, 2)) }
                                }
                            }
                        }
                    }
                }
                figcaption id=(format!("{}-legend", self.id)) {
                    ul.legend {
                        @for (index, series) in self.series.iter().enumerate() {
                            li class=(format!("s{index}")) { (series.name) }
                        }
                        @if let Some((name, _)) = &self.band { li.band { (name) } }
                        @if !self.markers.is_empty() { li.marker { "changes of course" } }
                    }
                }
            }
        }
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .unwrap_or((0.0, 1.0))
}

fn line_path(points: &[(f64, f64)], x: Axis, y: Axis) -> String {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let verb = if i == 0 { 'M' } else { 'L' };
            format!("{verb}{:.1},{:.1}", x.at(p.0), y.at(p.1))
        })
        .collect()
}

/// Per day, two stacked bars of shares by channel: the planned budgets' and the actual spend's.
pub struct ShareBars {
    pub id: String,
    /// The channels in stacking order (their index picks the colour).
    pub channels: Vec<String>,
    /// Per day: planned and actual amounts per channel, in `channels` order.
    pub days: Vec<(u32, Vec<f64>, Vec<f64>)>,
}

impl ShareBars {
    pub fn render(&self) -> Markup {
        let count = self.days.len().max(1) as f64;
        let slot = (WIDTH - LEFT - RIGHT) / count;
        let bar = (slot * 0.4).clamp(1.0, 14.0);
        let y = Axis {
            low: 0.0,
            high: 1.0,
            from: HEIGHT - BOTTOM,
            to: TOP,
        };
        let every = (self.days.len() / 8).max(1);
        let mut pieces = Vec::new();
        for (i, (day, planned, actual)) in self.days.iter().enumerate() {
            let left = LEFT + slot * i as f64 + (slot - 2.0 * bar) / 2.0;
            for (which, amounts, x) in [("planned", planned, left), ("actual", actual, left + bar)]
            {
                let total: f64 = amounts.iter().filter(|a| **a > 0.0).sum();
                let mut below = 0.0;
                for (channel, amount) in amounts.iter().enumerate() {
                    if total <= 0.0 || *amount <= 0.0 {
                        continue;
                    }
                    let top = below + amount / total;
                    pieces.push(Piece {
                        day: *day,
                        which,
                        channel,
                        x,
                        below,
                        top,
                    });
                    below = top;
                }
            }
        }
        html! {
            figure.chart id=(self.id) {
                svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-labelledby=(format!("{}-legend", self.id)) {
                    @for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
                        line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y.at(tick)) y2=(y.at(tick)) {}
                        text.tick x=(LEFT - 6.0) y=(y.at(tick) + 4.0) text-anchor="end" { (format!("{:.0} %", tick * 100.0)) }
                    }
                    @for piece in &pieces {
                        @let channel = self.channels.get(piece.channel).map_or("", String::as_str);
                        rect class=(format!("{} s{}", piece.which, piece.channel)) x=(format!("{:.1}", piece.x)) width=(format!("{bar:.1}"))
                            y=(format!("{:.1}", y.at(piece.top))) height=(format!("{:.1}", y.at(piece.below) - y.at(piece.top)))
                            data-day=(piece.day) data-kind=(piece.which) data-channel=(channel) data-share=(format!("{:.4}", piece.top - piece.below)) {
                            title { "day " (piece.day.saturating_add(1)) ", " (piece.which) ", " (channel) ": " (format!("{:.1} %", (piece.top - piece.below) * 100.0)) }
                        }
                    }
                    @for (i, (day, _, _)) in self.days.iter().enumerate() {
                        @if i % every == 0 {
                            text.tick x=(format!("{:.1}", LEFT + slot * (i as f64 + 0.5))) y=(HEIGHT - BOTTOM + 16.0) text-anchor="middle" { (day) }
                        }
                    }
                    text.axis x=(WIDTH - RIGHT) y=(HEIGHT - 2.0) text-anchor="end" { "day (left bar planned, right bar actual)" }
                }
                figcaption id=(format!("{}-legend", self.id)) {
                    ul.legend {
                        @for (c, channel) in self.channels.iter().enumerate() {
                            li class=(format!("s{c}")) { (channel) }
                        }
                    }
                }
            }
        }
    }
}

/// One channel's part of one bar.
struct Piece {
    day: u32,
    which: &'static str,
    channel: usize,
    x: f64,
    below: f64,
    top: f64,
}

/// A rate and its interval on a 0..`high` scale, as a small inline SVG (a leaderboard's cell).
pub fn interval(mean: f64, low: f64, high: f64, scale: f64) -> Markup {
    let at = |v: f64| {
        if scale > 0.0 {
            (v / scale).clamp(0.0, 1.0) * 160.0
        } else {
            0.0
        }
    };
    html! {
        svg.interval viewBox="0 0 160 14" role="img" data-mean=(format!("{mean:.6}")) data-low=(format!("{low:.6}")) data-high=(format!("{high:.6}")) {
            line.range x1=(format!("{:.1}", at(low))) x2=(format!("{:.1}", at(high))) y1="7" y2="7" {}
            circle.mean cx=(format!("{:.1}", at(mean))) cy="7" r="3" {}
            title { (format!("{:.3} % (90 %: {:.3}–{:.3} %)", mean * 100.0, low * 100.0, high * 100.0)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(
            ticks(0.0, 7.0, 8),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        assert_eq!(ticks(3.0, 3.0, 5), vec![3.0]);
        assert_eq!(ticks(0.0, f64::NAN, 5), vec![0.0]);
    }

    #[test]
    fn every_point_is_in_the_svg_with_its_value() {
        let chart = LineChart {
            id: "c".into(),
            x_label: "day".into(),
            series: vec![Series {
                name: "conversions".into(),
                points: vec![(0.0, 5.0), (1.0, 12.0), (2.0, 20.0)],
                dots: true,
            }],
            band: Some(("forecast, 90 %".into(), vec![(2.0, 15.0, 25.0)])),
            reference: Some((100.0, "target 100".into())),
            markers: vec![(1.0, "drift".into())],
        }
        .render()
        .into_string();
        assert_eq!(chart.matches("<circle").count(), 3);
        assert!(chart.contains(r#"data-y="12""#), "{chart}");
        // Positions count days from 0 (since the start); what a person reads counts from 1.
        assert!(chart.contains("target 100") && chart.contains("day 2: drift"));
        assert!(!chart.contains("NaN"));
    }

    #[test]
    fn bars_stack_to_the_whole_and_an_empty_chart_still_draws() {
        let bars = ShareBars {
            id: "mix".into(),
            channels: vec!["search".into(), "sms".into()],
            days: vec![(0, vec![30.0, 70.0], vec![50.0, 50.0])],
        }
        .render()
        .into_string();
        assert_eq!(bars.matches("<rect").count(), 4);
        assert!(bars.contains(r#"data-share="0.7000""#));
        let empty = LineChart {
            id: "e".into(),
            x_label: "day".into(),
            series: vec![],
            band: None,
            reference: None,
            markers: vec![],
        }
        .render()
        .into_string();
        assert!(empty.contains("<svg") && !empty.contains("NaN"));
    }
}
