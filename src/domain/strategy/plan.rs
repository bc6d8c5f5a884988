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
use crate::domain::money::{ceil_money, money_text, round_money, round_to};
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
    /// What would make the budget and deadline problems go away: each fix alone solves both.
    /// (A cost-per-conversion problem is a question of margins, not of money or time, and lists
    /// its own.) Absent from plans recorded before the fixes were joined.
    #[serde(default)]
    pub fixes: Vec<String>,
}

/// One reason the goal cannot be met as set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Infeasibility {
    /// `budget`, `cpa` or `deadline`.
    pub kind: String,
    pub reason: String,
    /// The `cpa` problem's fixes; the others' are [`Feasibility::fixes`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// What the next conversion would cost on this channel (1 / `marginal_return`), in the
    /// campaign's money: the same figure as people read it. Absent when nothing more converts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marginal_cpa: Option<f64>,
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
            marginal_cpa: Some(1.0 / prior.response.marginal(x))
                .filter(|cost| cost.is_finite() && *cost > 0.0),
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

    let currency = goal.budget.currency.as_str();
    let mut problems = Vec::new();
    let short_of_money = kpis.spend > budget;
    let short_of_delivery = predicted_conversions < goal.target as f64;
    if short_of_money {
        problems.push(Infeasibility {
            kind: "budget".into(),
            reason: format!(
                "{} conversions need {} clicks costing {} at the playbook's rates, above the budget of {}",
                goal.target,
                kpis.clicks,
                money_text(kpis.spend, currency),
                money_text(budget, currency)
            ),
            fixes: Vec::new(),
        });
    }
    if let Some(e) = &economics {
        check_cpa(&kpis, blended_rates, e, currency, &mut problems);
    }
    let shortfall = Shortfall {
        goal,
        mix: &mix,
        rates: blended_rates,
        kpis: &kpis,
        start,
        days,
        predicted: predicted_conversions,
        short_of_money,
        short_of_delivery,
    };
    if short_of_delivery {
        problems.push(shortfall.delivery_problem());
    }
    let fixes = if short_of_money || short_of_delivery {
        shortfall.fixes()
    } else {
        Vec::new()
    };

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
            fixes,
        },
        tier_split: mix.split,
        channels: channel_plans,
        schedule,
        tactics: rank_tactics(&playbook.tactics, &goal.channels),
    }
    .readable())
}

impl Plan {
    /// The figures as people read them: money in the currency's minor unit (no 7e-12 left over
    /// from a sum), predicted counts to two places, shares to four, rates to four significant
    /// digits. The maths above ran at full precision; this is what is recorded and printed.
    fn readable(mut self) -> Self {
        let currency = self.currency.clone();
        let money = |x: &mut f64| *x = round_money(*x, &currency);
        let places = |x: &mut f64, n: i32| *x = round_to(*x, n);
        let significant = |x: &mut f64| {
            if x.is_finite() && *x != 0.0 {
                *x = round_to(*x, 3 - x.abs().log10().floor() as i32);
            }
        };
        for x in [
            &mut self.daily_budget,
            &mut self.unspent,
            &mut self.kpis.spend,
            &mut self.kpis.cpa,
            &mut self.blended_rates.cpc,
        ] {
            money(x);
        }
        significant(&mut self.blended_rates.ctr);
        significant(&mut self.blended_rates.cvr);
        places(&mut self.predicted_conversions, 2);
        if let Some(e) = self.economics.as_mut() {
            money(&mut e.max_cpa);
            money(&mut e.revenue);
            places(&mut e.roas, 2);
            places(&mut e.break_even_roas, 2);
        }
        for x in [
            &mut self.tier_split.proven,
            &mut self.tier_split.emerging,
            &mut self.tier_split.experimental,
        ] {
            places(x, 4);
        }
        for c in &mut self.channels {
            money(&mut c.daily_spend);
            money(&mut c.total_spend);
            places(&mut c.share, 4);
            places(&mut c.predicted_conversions, 2);
            places(&mut c.clicks, 2);
            places(&mut c.impressions, 2);
            significant(&mut c.marginal_return);
            if let Some(cost) = c.marginal_cpa.as_mut() {
                money(cost);
            }
        }
        for day in &mut self.schedule {
            day.spend.values_mut().for_each(money);
        }
        self
    }
}

fn check_cpa(
    kpis: &FunnelKpis,
    rates: FunnelRates,
    e: &UnitEconomics,
    currency: &str,
    problems: &mut Vec<Infeasibility>,
) {
    if kpis.cpa <= e.max_cpa {
        return;
    }
    let money = |amount: f64| money_text(amount, currency);
    let mut fixes = Vec::new();
    let needed_cvr = rates.cpc / e.max_cpa;
    if needed_cvr <= 1.0 {
        fixes.push(format!(
            "raise the CVR to {:.2} % (the channel mix gives {:.2} %)",
            needed_cvr * 100.0,
            rates.cvr * 100.0
        ));
    }
    fixes.push(format!(
        "lower the CPC to {} (the channel mix gives {})",
        money(e.max_cpa * rates.cvr),
        money(rates.cpc)
    ));
    fixes.push(format!(
        "raise the average order value to {} at a margin of {:.0} %",
        money(kpis.cpa / e.margin),
        e.margin * 100.0
    ));
    problems.push(Infeasibility {
        kind: "cpa".into(),
        reason: format!(
            "CPA {} exceeds the maximum {} (order value {} × margin {:.2}); every conversion would lose money (ROAS {:.2} < break-even {:.2})",
            money(kpis.cpa),
            money(e.max_cpa),
            money(e.average_order_value),
            e.margin,
            e.roas,
            e.break_even_roas
        ),
        fixes,
    });
}

/// Where the money or the channels' delivery fall short of the target, and what would close it.
struct Shortfall<'a> {
    goal: &'a CampaignGoal,
    mix: &'a Mix,
    rates: FunnelRates,
    kpis: &'a FunnelKpis,
    start: DateTime<Utc>,
    days: u32,
    /// Conversions the response curves deliver by the deadline.
    predicted: f64,
    /// The funnel at the blended rates costs more than the budget.
    short_of_money: bool,
    /// The response curves deliver less than the target by the deadline.
    short_of_delivery: bool,
}

/// The largest budget a fix may propose, as a multiple of the campaign's: past it the channels'
/// returns have flattened so far that more money is not a fix anyone would take.
const MAX_BUDGET_FACTOR: f64 = 100.0;

impl Shortfall<'_> {
    fn currency(&self) -> &str {
        &self.goal.budget.currency
    }

    /// Conversions the curves deliver over `n` days from `total`, with the daily cap if any.
    fn delivered(&self, n: u32, total: f64, capped: bool) -> f64 {
        let even = total / f64::from(n);
        let daily = match self.goal.budget.daily_cap {
            Some(cap) if capped => cap.min(even),
            _ => even,
        };
        self.mix.capacity(daily).map_or(0.0, |c| c * f64::from(n))
    }

    fn delivery_problem(&self) -> Infeasibility {
        let budget = self.goal.budget.total;
        let daily = self
            .goal
            .budget
            .daily_cap
            .map_or(budget / f64::from(self.days), |c| {
                c.min(budget / f64::from(self.days))
            });
        let mut reason = format!(
            "at {} a day for {} days the channels' diminishing returns deliver {:.0} of the {} conversions by the deadline",
            money_text(daily, self.currency()),
            self.days,
            self.predicted.floor(),
            self.goal.target
        );
        if self.budget_needed_by_curves().is_none() {
            reason.push_str(&format!(
                "; not even {:.0} times the budget would deliver them in that time",
                MAX_BUDGET_FACTOR
            ));
        }
        Infeasibility {
            kind: "deadline".into(),
            reason,
            fixes: Vec::new(),
        }
    }

    /// The budget (cap lifted) whose daily spend over the same days delivers the target, up to
    /// [`MAX_BUDGET_FACTOR`] times the budget; found by bisection (delivery grows with money).
    fn budget_needed_by_curves(&self) -> Option<f64> {
        let target = self.goal.target as f64;
        let budget = self.goal.budget.total;
        let mut hi = budget * MAX_BUDGET_FACTOR;
        if self.delivered(self.days, hi, false) < target {
            return None;
        }
        let mut lo = budget;
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if self.delivered(self.days, mid, false) >= target {
                hi = mid
            } else {
                lo = mid
            }
        }
        Some(hi)
    }

    /// One set of fixes for the budget and delivery problems together: each of them alone makes
    /// both go away.
    fn fixes(&self) -> Vec<String> {
        let target = self.goal.target as f64;
        let budget = self.goal.budget.total;
        let mut fixes = Vec::new();
        // More money: enough for the funnel and for the curves.
        let by_curves = if self.short_of_delivery {
            self.budget_needed_by_curves()
        } else {
            Some(0.0)
        };
        if let Some(by_curves) = by_curves {
            let needed = by_curves.max(if self.short_of_money {
                self.kpis.spend
            } else {
                0.0
            });
            // Rounded up (with a hair to spare for the curves' bisection), so the proposed
            // amount is enough and not a cent short of it.
            let needed = ceil_money(needed * (1.0 + 1e-6), self.currency());
            let needed_daily = ceil_money(needed / f64::from(self.days), self.currency());
            match self.goal.budget.daily_cap {
                Some(cap) if cap < needed_daily => fixes.push(format!(
                    "raise the budget to {} and the daily cap to {}",
                    money_text(needed, self.currency()),
                    money_text(needed_daily, self.currency())
                )),
                _ => fixes.push(format!(
                    "raise the budget to {}",
                    money_text(needed, self.currency())
                )),
            }
        }
        // A smaller target: what both the money and the curves reach.
        let affordable = if self.short_of_money {
            budget / self.kpis.cpa
        } else {
            f64::INFINITY
        };
        let reachable = affordable.min(self.predicted).floor();
        if reachable >= 1.0 {
            fixes.push(format!("lower the target to {reachable:.0}"));
        }
        // More time: only the curves' shortfall depends on it.
        if !self.short_of_money && self.delivered(MAX_DAYS, budget, true) >= target {
            let (mut lo, mut hi) = (self.days, MAX_DAYS);
            while lo + 1 < hi {
                let mid = lo + (hi - lo) / 2;
                if self.delivered(mid, budget, true) >= target {
                    hi = mid
                } else {
                    lo = mid
                }
            }
            let date = (self.start + Duration::days(i64::from(hi))).date_naive();
            fixes.push(format!("extend the deadline to {date} ({hi} days)"));
        }
        // A better conversion rate: the funnel's cost and the curves' heights both scale with it.
        let mut factor: f64 = 1.0;
        if self.short_of_money {
            factor = factor.max(self.kpis.spend / budget);
        }
        if self.short_of_delivery && self.predicted > 0.0 {
            factor = factor.max(target / self.predicted);
        }
        let needed_cvr = self.rates.cvr * factor;
        let percent = |rate: f64| (rate * 1e4).ceil() / 1e2;
        if percent(needed_cvr) > percent(self.rates.cvr) && needed_cvr <= 1.0 {
            fixes.push(format!(
                "raise the CVR to {:.2} % (the channel mix gives {:.2} %)",
                percent(needed_cvr),
                self.rates.cvr * 100.0
            ));
        }
        fixes
    }
}
