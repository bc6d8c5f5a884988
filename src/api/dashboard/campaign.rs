//! One campaign, `/campaigns/{id}`: where it stands, then charts of cumulative conversions
//! against the target and the forecast with its 90 % band, spend against the budget's even pace,
//! the channel mix planned and actual per day, the variants' leaderboard with 90 % posterior
//! intervals, and the days it changed course (drift, re-plans, operators' commands), each linked
//! to its decision.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::charts::{LineChart, Series, ShareBars, interval};
use super::page::{self, Page, money, percent};
use super::{Viewer, list_all_pending};
use crate::agents::optimization::Optimization;
use crate::agents::projection::CampaignHistory;
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::campaigns::{CampaignView, get_campaign, running_goal, visible_campaign};
use crate::api::error::ApiError;
use crate::domain::campaign::{CampaignGoal, Channel, deadline_day};
use crate::domain::optimization::{credible_interval, daily_points, prediction_band};
use crate::kb::Scope;
use crate::runtime::Agent;

/// The z of a two-sided 90 % interval.
const Z90: f64 = 1.645;
/// Variants the leaderboard shows at most (the best observed first).
const LEADERBOARD: usize = 100;

pub async fn page(
    State(state): State<ApiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match load(&state, &viewer.caller, id).await {
        Ok((view, goal, history)) => {
            let pending = match list_all_pending(&state, &viewer, Some(&view.id)).await {
                Ok(pending) => pending.len(),
                Err(err) => return page::error(&viewer, &headers, err),
            };
            Page {
                title: view.id.clone(),
                section: "/",
                body: body(&view, &goal, &history, pending),
            }
            .render(&viewer, &headers)
        }
        Err(err) => page::error(&viewer, &headers, err),
    }
}

async fn load(
    state: &ApiState,
    caller: &Caller,
    id: String,
) -> Result<(CampaignView, CampaignGoal, CampaignHistory), ApiError> {
    let view = get_campaign(State(state.clone()), caller.clone(), Path(id.clone()))
        .await?
        .0;
    let goal = running_goal(state, visible_campaign(state, caller, &id)?);
    let scope = match caller {
        Caller::Operator { .. } => Scope::AllTenants,
        Caller::Tenant { .. } => Scope::Tenant(goal.tenant.clone()),
    };
    let kb = state.kb().clone();
    let read = goal.clone();
    let history = tokio::task::spawn_blocking(move || {
        kb.by_campaign(&scope, &read.id)
            .map(|found| CampaignHistory::of(&read, &found.records, Optimization::NAME))
    })
    .await
    .map_err(|e| ApiError::internal("the campaign's history query stopped", e))?
    .map_err(|e| ApiError::internal("the knowledge base could not be read", e))?;
    Ok((view, goal, history))
}

/// How many campaign days there are: day 0 up to the last one, which ends at or after the deadline.
fn length_in_days(goal: &CampaignGoal) -> u32 {
    let days = deadline_day(goal).ceil();
    if days.is_finite() && days >= 1.0 {
        days.min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

fn body(
    view: &CampaignView,
    goal: &CampaignGoal,
    history: &CampaignHistory,
    pending: usize,
) -> Markup {
    let currency = &view.goal.currency;
    html! {
        dl.facts {
            div { dt { "State" } dd { span class=(format!("state {}", view.state)) { (view.state) } @if let Some(why) = &view.held { " — " (why) } } }
            div { dt { "Phase" } dd { (view.phase.as_deref().unwrap_or("—")) } }
            div { dt { "Day" } dd { (view.day.map_or("—".into(), |d| d.saturating_add(1).to_string())) " of " (length_in_days(goal)) } }
            div { dt { "Progress" } dd { (view.conversions) " / " (view.goal.target) " " (view.goal.objective) " (" (percent(view.progress)) ")" } }
            div { dt { "Spend" } dd { (money(view.spend, currency)) " of " (money(view.goal.budget, currency)) } }
            div { dt { "ETA" } dd { (view.eta.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "—".into())) ", deadline " (view.goal.deadline.format("%Y-%m-%d")) } }
            div { dt { "Waiting" } dd { a href=(format!("/approvals?campaign={}", view.id)) { (pending) " approvals pending" } } }
        }
        p.links {
            a href=(format!("/decisions?campaign={}", view.id)) { "Decisions" } " · "
            a href=(format!("/orders?campaign={}", view.id)) { "Orders" }
        }
        @if let Some(why) = &view.mix.why {
            p.why { "Budget: " (why) }
        }
        section {
            h2 { "Conversions against the target" }
            (conversions(view, goal, history).render())
        }
        section {
            h2 { "Spend against the budget's pace" }
            (spend(view, goal, history).render())
        }
        section {
            h2 { "Channel mix per day" }
            (mix(history).render())
        }
        section {
            h2 { "Variants" }
            (leaderboard(history))
        }
        section {
            h2 { "Changes of course" }
            @if history.markers.is_empty() {
                p { "None yet: no drift, re-plan or operator's command." }
            } @else {
                ol.markers {
                    @for marker in &history.markers {
                        li data-kind=(marker.kind) {
                            span.day { "day " (marker.day.map_or("—".into(), |d| d.saturating_add(1).to_string())) }
                            " " strong { (marker.kind) } " — "
                            a href=(format!("/decisions/{}", marker.decision)) { (marker.reason) }
                        }
                    }
                }
            }
        }
    }
}

fn markers(history: &CampaignHistory) -> Vec<(f64, String)> {
    history
        .markers
        .iter()
        .filter_map(|m| Some((f64::from(m.day?), m.kind.to_owned())))
        .collect()
}

fn conversions(view: &CampaignView, goal: &CampaignGoal, history: &CampaignHistory) -> LineChart {
    let observed: Vec<(f64, f64)> = history
        .cumulative
        .iter()
        .enumerate()
        .map(|(day, total)| (day as f64, *total))
        .collect();
    let last = observed.last().map_or(0.0, |p| p.0);
    let end = f64::from(length_in_days(goal)).max(last);
    let mut series = vec![Series {
        name: "conversions".into(),
        points: observed,
        dots: true,
    }];
    let mut band = None;
    if let Some(forecast) = &history.forecast {
        let days = [0.0, end];
        series.push(Series {
            name: "forecast".into(),
            points: days
                .iter()
                .map(|d| (*d, forecast.at_day(*d).max(0.0)))
                .collect(),
            dots: false,
        });
        let points = daily_points(&history.cumulative);
        let ahead: Vec<(f64, f64, f64)> = (0..=8)
            .map(|i| last + (end - last) * f64::from(i) / 8.0)
            .filter_map(|d| prediction_band(&points, d + 1.0, Z90).map(|(lo, hi)| (d, lo, hi)))
            .collect();
        if !ahead.is_empty() {
            band = Some(("forecast, 90 % band".into(), ahead));
        }
    }
    LineChart {
        id: "conversions".into(),
        x_label: "days since the start".into(),
        series,
        band,
        reference: Some((
            view.goal.target as f64,
            format!("target {}", view.goal.target),
        )),
        markers: markers(history),
    }
}

fn spend(view: &CampaignView, goal: &CampaignGoal, history: &CampaignHistory) -> LineChart {
    let mut total = 0.0;
    let actual: Vec<(f64, f64)> = history
        .spend
        .iter()
        .map(|(day, channels)| {
            total += channels.values().sum::<f64>();
            (f64::from(*day), total)
        })
        .collect();
    let days = f64::from(length_in_days(goal));
    let budget = view.goal.budget;
    LineChart {
        id: "spend".into(),
        x_label: "days since the start".into(),
        series: vec![
            Series {
                name: "spend".into(),
                points: actual,
                dots: true,
            },
            Series {
                name: "even pace".into(),
                // A point per day's end, as the spend is: day 0 holds one day's share, the last
                // day (days − 1) the whole budget.
                points: vec![(0.0, budget / days), ((days - 1.0).max(0.0), budget)],
                dots: false,
            },
        ],
        band: None,
        reference: Some((
            budget,
            format!("budget {}", money(budget, &view.goal.currency)),
        )),
        markers: markers(history),
    }
}

fn mix(history: &CampaignHistory) -> ShareBars {
    let channels: BTreeSet<Channel> = history
        .spend
        .values()
        .chain(history.budgets.values())
        .flat_map(|day| day.keys().copied())
        .collect();
    let amounts = |day: Option<&BTreeMap<Channel, f64>>| -> Vec<f64> {
        channels
            .iter()
            .map(|c| day.and_then(|d| d.get(c)).copied().unwrap_or(0.0))
            .collect()
    };
    let days = history
        .spend
        .iter()
        .map(|(day, spent)| {
            (
                *day,
                amounts(history.budgets_on(*day)),
                amounts(Some(spent)),
            )
        })
        .collect();
    ShareBars {
        id: "mix".into(),
        channels: channels.iter().map(ToString::to_string).collect(),
        days,
    }
}

fn leaderboard(history: &CampaignHistory) -> Markup {
    let shown: Vec<_> = history
        .standings
        .iter()
        .take(LEADERBOARD)
        .map(|s| {
            let (low, high) = credible_interval(s.stats, 0.9).unwrap_or((0.0, 0.0));
            (s, low, high)
        })
        .collect();
    let scale = shown.iter().map(|(_, _, high)| *high).fold(0.0, f64::max);
    html! {
        @if shown.is_empty() {
            p { "No variant has started yet." }
        } @else {
            @if history.standings.len() > LEADERBOARD {
                p { "The best " (LEADERBOARD) " of " (history.standings.len()) " variants by observed rate." }
            }
            div.scroll {
                table.leaderboard {
                    thead { tr {
                        th { "Variant" } th { "Channel" } th { "Segment" } th { "Conversions / trials" }
                        th { "Rate, 90 % interval" } th { "Traffic share" }
                    } }
                    tbody {
                        @for (s, low, high) in &shown {
                            tr.retired[s.retired] data-variant=(s.variant) {
                                td { code { (s.variant) } @if s.retired { " (retired)" } }
                                td { (s.channel) }
                                td { (s.segment) }
                                td { (s.stats.successes) " / " (s.stats.trials) }
                                td { (interval(s.stats.rate(), *low, *high, scale)) }
                                td { (s.share.map_or("—".into(), percent)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
