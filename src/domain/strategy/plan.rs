//! A campaign's plan: from its goal and the playbook's channel priors to KPIs, a verdict on
//! feasibility with what would fix it, budget per channel and per day, ranked tactics and the
//! 70-20-10 split.
//!
//! How the budget is divided: the daily budget (total / days, capped by the daily cap) is split
//! across maturity tiers (70-20-10, renormalised over the tiers the campaign uses), and within each
//! tier by equal marginal return on the channels' response curves. The funnel KPIs use the blended
//! rates of that mix; the capacity check uses the response curves, which carry diminishing returns.
//!
//! Pure: `now` is an argument (it stands in for a missing start). Bad goals are refused with the
//! field named; a goal that is valid but cannot be met is not an error — it is a plan that says
//! it is infeasible, why, and what would make it feasible.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::funnel::{FunnelKpis, FunnelRates, UnitEconomics, funnel};
use super::playbook::{ChannelPrior, StrategyPlaybook};
use super::tactics::{Maturity, RankedTactic, TierSplit, rank_tactics};
use crate::domain::campaign::{CampaignGoal, Channel, Objective};
use crate::domain::optimization::allocation::{AllocationError, ChannelBudget, allocate};
use crate::protocol::CampaignId;

/// Longest campaign a plan is made for; longer deadlines are almost certainly a typo.
pub const MAX_DAYS: u32 = 3650;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub campaign: CampaignId,
    pub objective: Objective,
    pub currency: String,
    pub start: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub days: u32,
    pub budget: f64,
    /// What is planned per day: total / days, or the daily cap when that is lower.
    pub daily_budget: f64,
    /// Budget the daily cap leaves unspent by the deadline.
    pub unspent: f64,
    /// The funnel for the target at the blended rates of the channel mix.
    pub kpis: FunnelKpis,
    pub blended_rates: FunnelRates,
    /// ROAS, break-even ROAS and max CPA, when the goal gives order value and margin.
    pub economics: Option<UnitEconomics>,
    /// Conversions the response curves predict by the deadline at the planned daily spend.
    pub predicted_conversions: f64,
    pub feasibility: Feasibility,
    /// The 70-20-10 split as applied to this campaign's tiers.
    pub tier_split: TierSplit,
    pub channels: Vec<ChannelPlan>,
    pub schedule: Vec<DayPlan>,
    pub tactics: Vec<RankedTactic>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feasibility {
    pub feasible: bool,
    pub problems: Vec<Infeasibility>,
}

/// One reason the goal cannot be met as set, and what would fix it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Infeasibility {
    /// `budget`, `cpa` or `deadline`.
    pub kind: String,
    pub reason: String,
    pub fixes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelPlan {
    pub channel: Channel,
    pub maturity: Maturity,
    pub daily_spend: f64,
    pub total_spend: f64,
    pub share: f64,
    /// From the response curve, by the deadline.
    pub predicted_conversions: f64,
    pub clicks: f64,
    pub impressions: f64,
    /// Conversions the next unit of money would buy on this channel, per day.
    pub marginal_return: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayPlan {
    pub day: u32,
    pub date: NaiveDate,
    pub spend: BTreeMap<Channel, f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("campaign `{campaign}`: `{field}` {reason} (got {value})")]
    Invalid {
        campaign: String,
        field: &'static str,
        reason: String,
        value: String,
    },
    #[error(
        "campaign `{campaign}`: channel `{channel}` has no prior in the strategy playbook; add [playbook.channels.{channel}] or drop the channel"
    )]
    MissingPrior { campaign: String, channel: Channel },
    #[error(
        "campaign `{campaign}`: the strategy playbook's priors are in {playbook} and have no exchange rate for {currency}; add `{currency} = <{currency} per {playbook}>` under [playbook.exchange_rates]"
    )]
    NoExchangeRate {
        campaign: String,
        currency: String,
        playbook: String,
    },
    #[error("campaign `{campaign}`: the {tier:?} tier cannot be funded: {source}")]
    Allocation {
        campaign: String,
        tier: Maturity,
        #[source]
        source: AllocationError,
    },
}

/// The channels of a campaign with their priors, in the goal's order.
struct Mix {
    channels: Vec<(Channel, ChannelPrior)>,
    split: TierSplit,
}

impl Mix {
    /// Daily spend per channel for a daily budget.
    fn allocate(&self, daily: f64) -> Result<Vec<f64>, (Maturity, AllocationError)> {
        let mut spend = vec![0.0; self.channels.len()];
        for tier in Maturity::ALL {
            let members: Vec<usize> = (0..self.channels.len())
                .filter(|&i| {
                    self.channels
                        .get(i)
                        .is_some_and(|(_, p)| p.maturity == tier)
                })
                .collect();
            if members.is_empty() {
                continue;
            }
            let budgets: Vec<ChannelBudget> = members
                .iter()
                .filter_map(|&i| self.channels.get(i))
                .map(|(_, p)| ChannelBudget {
                    curve: p.response,
                    min: p.min_daily,
                    max: p.max_daily,
                })
                .collect();
            let amounts =
                allocate(&budgets, daily * self.split.share(tier)).map_err(|e| (tier, e))?;
            for (&i, amount) in members.iter().zip(amounts) {
                if let Some(slot) = spend.get_mut(i) {
                    *slot = amount;
                }
            }
        }
        Ok(spend)
    }

    /// Conversions per day the response curves predict for a daily budget; `None` when the
    /// channels' minimums cannot be funded from it.
    fn capacity(&self, daily: f64) -> Option<f64> {
        let spend = self.allocate(daily).ok()?;
        Some(
            self.channels
                .iter()
                .zip(&spend)
                .map(|((_, p), &x)| p.response.value(x))
                .sum(),
        )
    }
}

fn invalid(
    goal: &CampaignGoal,
    field: &'static str,
    reason: impl Into<String>,
    value: impl ToString,
) -> PlanError {
    PlanError::Invalid {
        campaign: goal.id.to_string(),
        field,
        reason: reason.into(),
        value: value.to_string(),
    }
}

fn validate(goal: &CampaignGoal, start: DateTime<Utc>) -> Result<u32, PlanError> {
    if goal.target == 0 {
        return Err(invalid(goal, "target", "must be at least 1", goal.target));
    }
    if !(goal.budget.total.is_finite() && goal.budget.total > 0.0) {
        return Err(invalid(
            goal,
            "budget.total",
            "must be a number above 0",
            goal.budget.total,
        ));
    }
    if let Some(cap) = goal.budget.daily_cap
        && !(cap.is_finite() && cap > 0.0)
    {
        return Err(invalid(
            goal,
            "budget.daily_cap",
            "must be a number above 0",
            cap,
        ));
    }
    if goal.channels.is_empty() {
        return Err(invalid(
            goal,
            "channels",
            "must name at least one channel",
            "[]",
        ));
    }
    for (i, channel) in goal.channels.iter().enumerate() {
        if goal.channels.iter().take(i).any(|c| c == channel) {
            return Err(invalid(
                goal,
                "channels",
                format!("lists `{channel}` more than once"),
                format!("{:?}", goal.channels),
            ));
        }
    }
    if let Some(e) = &goal.economics {
        if !(e.average_order_value.is_finite() && e.average_order_value > 0.0) {
            return Err(invalid(
                goal,
                "economics.average_order_value",
                "must be a number above 0",
                e.average_order_value,
            ));
        }
        if !(e.margin > 0.0 && e.margin <= 1.0) {
            return Err(invalid(
                goal,
                "economics.margin",
                "must be above 0 and at most 1",
                e.margin,
            ));
        }
    }
    let seconds = (goal.deadline - start).num_seconds();
    if seconds <= 0 {
        return Err(invalid(
            goal,
            "deadline",
            format!("must be after the start ({start})"),
            goal.deadline,
        ));
    }
    let days = (seconds as f64 / 86_400.0).ceil();
    if days > f64::from(MAX_DAYS) {
        return Err(invalid(
            goal,
            "deadline",
            format!("is more than {MAX_DAYS} days after the start ({start})"),
            goal.deadline,
        ));
    }
    Ok(days as u32)
}

/// Plan `goal` with `playbook`'s priors. `now` is the start when the goal has none.
pub fn plan(
    goal: &CampaignGoal,
    playbook: &StrategyPlaybook,
    now: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    let start = goal.start.unwrap_or(now);
    let days = validate(goal, start)?;
    let campaign = goal.id.to_string();

    let rate = playbook
        .exchange_rate(&goal.budget.currency)
        .ok_or_else(|| PlanError::NoExchangeRate {
            campaign: campaign.clone(),
            currency: goal.budget.currency.clone(),
            playbook: playbook.currency.clone(),
        })?;
    let mut channels = Vec::with_capacity(goal.channels.len());
    for &channel in &goal.channels {
        let prior = playbook
            .prior(channel)
            .ok_or_else(|| PlanError::MissingPrior {
                campaign: campaign.clone(),
                channel,
            })?;
        channels.push((channel, prior.in_currency(rate)));
    }
    let tiers: Vec<Maturity> = channels.iter().map(|(_, p)| p.maturity).collect();
    let mix = Mix {
        channels,
        split: playbook.tiers.over(&tiers),
    };

    let budget = goal.budget.total;
    let even = budget / f64::from(days);
    let daily_budget = goal.budget.daily_cap.map_or(even, |cap| cap.min(even));
    let spend = mix
        .allocate(daily_budget)
        .map_err(|(tier, source)| PlanError::Allocation {
            campaign: campaign.clone(),
            tier,
            source,
        })?;
    let daily_total: f64 = spend.iter().sum();
    let total_days = f64::from(days);

    let mut channel_plans = Vec::with_capacity(mix.channels.len());
    let (mut clicks, mut linear_conversions, mut impressions) = (0.0, 0.0, 0.0);
    for ((channel, prior), &x) in mix.channels.iter().zip(&spend) {
        let daily_clicks = x / prior.cpc;
        clicks += daily_clicks;
        linear_conversions += daily_clicks * prior.cvr;
        impressions += daily_clicks / prior.ctr;
        channel_plans.push(ChannelPlan {
            channel: *channel,
            maturity: prior.maturity,
            daily_spend: x,
            total_spend: x * total_days,
            share: if daily_total > 0.0 {
                x / daily_total
            } else {
                0.0
            },
            predicted_conversions: prior.response.value(x) * total_days,
            clicks: daily_clicks * total_days,
            impressions: daily_clicks / prior.ctr * total_days,
            marginal_return: prior.response.marginal(x),
        });
    }
    if clicks <= 0.0 {
        return Err(invalid(
            goal,
            "channels",
            "receive no budget under the playbook's tier split; give their tiers a share",
            format!("{:?}", goal.channels),
        ));
    }
    let blended_rates = FunnelRates {
        ctr: clicks / impressions,
        cvr: linear_conversions / clicks,
        cpc: daily_total / clicks,
    };
    let kpis = funnel(goal.target, blended_rates).ok_or_else(|| {
        invalid(
            goal,
            "target",
            "is too large to plan a funnel for",
            goal.target,
        )
    })?;
    let economics = goal
        .economics
        .as_ref()
        .and_then(|e| UnitEconomics::new(e.average_order_value, e.margin, goal.target, kpis.spend));
    let predicted_conversions = mix.capacity(daily_budget).unwrap_or(0.0) * total_days;

    let mut problems = Vec::new();
    check_budget(goal, &kpis, blended_rates, &mut problems);
    if let Some(e) = &economics {
        check_cpa(&kpis, blended_rates, e, &mut problems);
    }
    check_capacity(
        goal,
        &mix,
        start,
        days,
        predicted_conversions,
        &mut problems,
    );

    let schedule = (0..days)
        .map(|day| DayPlan {
            day: day + 1,
            date: (start + Duration::days(i64::from(day))).date_naive(),
            spend: mix
                .channels
                .iter()
                .zip(&spend)
                .map(|((c, _), &x)| (*c, x))
                .collect(),
        })
        .collect();

    Ok(Plan {
        campaign: goal.id.clone(),
        objective: goal.objective,
        currency: goal.budget.currency.clone(),
        start,
        deadline: goal.deadline,
        days,
        budget,
        daily_budget,
        unspent: (budget - daily_total * total_days).max(0.0),
        kpis,
        blended_rates,
        economics,
        predicted_conversions,
        feasibility: Feasibility {
            feasible: problems.is_empty(),
            problems,
        },
        tier_split: mix.split,
        channels: channel_plans,
        schedule,
        tactics: rank_tactics(&playbook.tactics, &goal.channels),
    })
}

fn check_budget(
    goal: &CampaignGoal,
    kpis: &FunnelKpis,
    rates: FunnelRates,
    problems: &mut Vec<Infeasibility>,
) {
    let budget = goal.budget.total;
    if kpis.spend <= budget {
        return;
    }
    let mut fixes = vec![format!("raise budget to {:.2}", kpis.spend)];
    let affordable = (budget / kpis.cpa).floor();
    fixes.push(format!("lower target to {affordable:.0}"));
    let needed_cvr = goal.target as f64 * rates.cpc / budget;
    if needed_cvr <= 1.0 {
        fixes.push(format!(
            "CVR would need to be {:.2} % (the channel mix gives {:.2} %)",
            needed_cvr * 100.0,
            rates.cvr * 100.0
        ));
    }
    problems.push(Infeasibility {
        kind: "budget".into(),
        reason: format!("{} conversions need {} clicks costing {:.2} at the playbook's rates, above the budget of {budget:.2}", goal.target, kpis.clicks, kpis.spend),
        fixes,
    });
}

fn check_cpa(
    kpis: &FunnelKpis,
    rates: FunnelRates,
    e: &UnitEconomics,
    problems: &mut Vec<Infeasibility>,
) {
    if kpis.cpa <= e.max_cpa {
        return;
    }
    let mut fixes = Vec::new();
    let needed_cvr = rates.cpc / e.max_cpa;
    if needed_cvr <= 1.0 {
        fixes.push(format!(
            "CVR would need to be {:.2} % (the channel mix gives {:.2} %)",
            needed_cvr * 100.0,
            rates.cvr * 100.0
        ));
    }
    fixes.push(format!(
        "CPC would need to fall to {:.2} (the channel mix gives {:.2})",
        e.max_cpa * rates.cvr,
        rates.cpc
    ));
    fixes.push(format!(
        "average order value would need to be {:.2} at a margin of {:.0} %",
        kpis.cpa / e.margin,
        e.margin * 100.0
    ));
    problems.push(Infeasibility {
        kind: "cpa".into(),
        reason: format!(
            "CPA {:.2} exceeds the maximum {:.2} (order value {:.2} × margin {:.2}); every conversion would lose money (ROAS {:.2} < break-even {:.2})",
            kpis.cpa, e.max_cpa, e.average_order_value, e.margin, e.roas, e.break_even_roas
        ),
        fixes,
    });
}

fn check_capacity(
    goal: &CampaignGoal,
    mix: &Mix,
    start: DateTime<Utc>,
    days: u32,
    predicted: f64,
    problems: &mut Vec<Infeasibility>,
) {
    let target = goal.target as f64;
    if predicted >= target {
        return;
    }
    let budget = goal.budget.total;
    let cap = goal.budget.daily_cap;
    let delivered = |n: u32, total: f64| {
        let even = total / f64::from(n);
        let daily = cap.map_or(even, |c| c.min(even));
        mix.capacity(daily).map_or(0.0, |c| c * f64::from(n))
    };
    let mut fixes = Vec::new();
    // Spreading the same money over more days buys more (returns diminish with daily spend), and
    // n·f(B/n) only grows with n, so the first long-enough deadline can be found by bisection.
    if delivered(MAX_DAYS, budget) >= target {
        let (mut lo, mut hi) = (days, MAX_DAYS);
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if delivered(mid, budget) >= target {
                hi = mid
            } else {
                lo = mid
            }
        }
        let date = (start + Duration::days(i64::from(hi))).date_naive();
        fixes.push(format!("extend the deadline to {date} ({hi} days)"));
    }
    // More money per day, with the cap lifted to match.
    let mut hi = budget;
    let uncapped = |total: f64| {
        mix.capacity(total / f64::from(days))
            .map_or(0.0, |c| c * f64::from(days))
    };
    for _ in 0..60 {
        if uncapped(hi) >= target {
            break;
        }
        hi *= 2.0;
    }
    if uncapped(hi) >= target {
        let mut lo = budget;
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if uncapped(mid) >= target {
                hi = mid
            } else {
                lo = mid
            }
        }
        let needed_daily = hi / f64::from(days);
        match cap {
            Some(c) if c < needed_daily => fixes.push(format!(
                "raise budget to {hi:.2} and the daily cap to {needed_daily:.2}"
            )),
            _ => fixes.push(format!("raise budget to {hi:.2}")),
        }
    }
    fixes.push(format!("lower target to {:.0}", predicted.floor()));
    let daily = cap.map_or(budget / f64::from(days), |c| {
        c.min(budget / f64::from(days))
    });
    problems.push(Infeasibility {
        kind: "deadline".into(),
        reason: format!(
            "at {daily:.2} a day for {days} days the channels' diminishing returns deliver about {predicted:.0} of the {} conversions by the deadline",
            goal.target
        ),
        fixes,
    });
}
