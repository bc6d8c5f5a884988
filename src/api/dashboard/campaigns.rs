//! The campaigns page, `/`: every campaign the token sees, 50 to a page, with its state, phase,
//! progress to the target, spend against the budget, ETA and pending approvals.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use super::page::{self, Page, money, page_number, percent};
use super::{Viewer, list_all_pending};
use crate::api::ApiState;
use crate::api::campaigns::{CampaignView, list_campaigns};

/// Campaigns per page: a thousand campaigns are twenty pages, each well under 1 MB.
pub const PER_PAGE: usize = 50;

pub async fn page(
    State(state): State<ApiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let number = match page_number(params.get("page")) {
        Ok(n) => n,
        Err(err) => return page::error(&viewer, &headers, err),
    };
    let campaigns = list_campaigns(State(state.clone()), viewer.caller.clone())
        .await
        .0
        .campaigns;
    let pending = match list_all_pending(&state, &viewer, None).await {
        Ok(pending) => pending,
        Err(err) => return page::error(&viewer, &headers, err),
    };
    let mut waiting: HashMap<&str, usize> = HashMap::new();
    for request in &pending {
        *waiting.entry(request.campaign.as_str()).or_default() += 1;
    }
    let pages = campaigns.len().div_ceil(PER_PAGE).max(1);
    let shown: Vec<&CampaignView> = campaigns
        .iter()
        .skip(number.saturating_sub(1).saturating_mul(PER_PAGE))
        .take(PER_PAGE)
        .collect();
    let body = html! {
        p.summary { (campaigns.len()) " campaigns · " (pending.len()) " approvals pending" }
        div.scroll {
            table.campaigns {
                thead { tr {
                    th { "Campaign" } th { "State" } th { "Phase" } th { "Progress" }
                    th { "Spend" } th { "ETA" } th { "Waiting" }
                } }
                tbody {
                    @for c in &shown {
                        tr data-campaign=(c.id) {
                            td {
                                a href=(format!("/campaigns/{}", c.id)) { (c.id) }
                                br; small { (c.tenant) @if !c.goal.description.is_empty() { " · " (c.goal.description) } }
                            }
                            td { span class=(format!("state {}", c.state)) { (c.state) }
                                @if let Some(why) = &c.held { br; small { (why) } } }
                            td { (c.phase.as_deref().unwrap_or("—")) }
                            td {
                                meter min="0" max="1" value=(c.progress.min(1.0)) {}
                                br; small { (c.conversions) " / " (c.goal.target) " " (c.goal.objective) " (" (percent(c.progress)) ")" }
                            }
                            td {
                                meter min="0" max=(c.goal.budget.max(f64::MIN_POSITIVE)) value=(c.spend.min(c.goal.budget)) {}
                                br; small { (money(c.spend, &c.goal.currency)) " of " (money(c.goal.budget, &c.goal.currency)) }
                            }
                            td { (c.eta.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "—".into()))
                                br; small { "deadline " (c.goal.deadline.format("%Y-%m-%d")) } }
                            td {
                                @match waiting.get(c.id.as_str()) {
                                    Some(n) => a href=(format!("/approvals?campaign={}", c.id)) { (n) " pending" },
                                    None => "—",
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager("/?", number, pages))
    };
    Page {
        title: "Campaigns".into(),
        section: "/",
        body,
    }
    .render(&viewer, &headers)
}

/// Links to the previous and next page of `pages`; `base` ends in `?` or `&`.
pub fn pager(base: &str, number: usize, pages: usize) -> maud::Markup {
    html! {
        @if pages > 1 {
            nav.pager {
                @if number > 1 { a rel="prev" href=(format!("{base}page={}", number - 1)) { "← previous" } }
                span { "page " (number) " of " (pages) }
                @if number < pages { a rel="next" href=(format!("{base}page={}", number + 1)) { "next →" } }
            }
        }
    }
}
