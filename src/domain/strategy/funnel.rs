//! The funnel backwards from a goal: conversions → clicks → impressions → spend, and the unit
//! economics a plan is judged by (CPA, ROAS, break-even ROAS, maximum CPA).
//!
//! clicks = ⌈conversions / CVR⌉, impressions = ⌈clicks / CTR⌉, spend = clicks × CPC,
//! CPA = spend / conversions, ROAS = revenue / spend, break-even ROAS = 1 / margin,
//! max CPA = order value × margin. Callers validate rates first; these functions never panic and
//! answer non-finite figures as `None`.

use serde::{Deserialize, Serialize};

/// Click-through rate, conversion rate (per click) and cost per click.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelRates {
    pub ctr: f64,
    pub cvr: f64,
    pub cpc: f64,
}

/// What reaching a number of conversions takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelKpis {
    pub conversions: u64,
    pub clicks: u64,
    pub impressions: u64,
    pub spend: f64,
    /// Cost per acquisition: spend / conversions.
    pub cpa: f64,
}

/// The funnel for `conversions` at `rates`; `None` when a rate is not a positive finite number
/// (or CTR/CVR exceed 1).
pub fn funnel(conversions: u64, rates: FunnelRates) -> Option<FunnelKpis> {
    let FunnelRates { ctr, cvr, cpc } = rates;
    let rate_ok = |r: f64| r > 0.0 && r <= 1.0;
    if !(rate_ok(ctr) && rate_ok(cvr) && cpc.is_finite() && cpc >= 0.0) {
        return None;
    }
    let clicks = (conversions as f64 / cvr).ceil();
    let impressions = (clicks / ctr).ceil();
    let spend = clicks * cpc;
    let cpa = if conversions == 0 {
        0.0
    } else {
        spend / conversions as f64
    };
    if !impressions.is_finite() || impressions > u64::MAX as f64 {
        return None;
    }
    Some(FunnelKpis {
        conversions,
        clicks: clicks as u64,
        impressions: impressions as u64,
        spend,
        cpa,
    })
}

/// Order value and margin, and the thresholds they imply.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitEconomics {
    pub average_order_value: f64,
    pub margin: f64,
    /// 1 / margin: below this ROAS every sale loses money.
    pub break_even_roas: f64,
    /// order value × margin: the most one conversion may cost.
    pub max_cpa: f64,
    /// Revenue of the planned conversions / planned spend.
    pub roas: f64,
    pub revenue: f64,
}

impl UnitEconomics {
    /// `None` unless order value > 0 and 0 < margin ≤ 1.
    pub fn new(
        average_order_value: f64,
        margin: f64,
        conversions: u64,
        spend: f64,
    ) -> Option<Self> {
        if !(average_order_value.is_finite()
            && average_order_value > 0.0
            && margin > 0.0
            && margin <= 1.0)
        {
            return None;
        }
        let revenue = conversions as f64 * average_order_value;
        let roas = if spend > 0.0 {
            revenue / spend
        } else {
            f64::INFINITY
        };
        Some(Self {
            average_order_value,
            margin,
            break_even_roas: 1.0 / margin,
            max_cpa: average_order_value * margin,
            roas,
            revenue,
        })
    }
}
