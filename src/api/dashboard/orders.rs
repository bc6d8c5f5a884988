//! Orders and connectors, `/orders`: which connector each of a campaign's channels sends to,
//! whether an order that could not be delivered holds the campaign, and the campaign's orders with their delivery state, paged as the API pages; operators retry or cancel an order
//! from here through the API's own handlers.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::page::{self, Page, link};
use super::{Viewer, api_query};
use crate::api::ApiState;
use crate::api::error::{ApiError, JsonBody};
use crate::api::orders::{OrderChange, cancel_order, list_orders, retry_order};
use crate::campaign::orders::held_by;
use crate::campaign::outbox::OrderState;

pub async fn page(
    State(state): State<ApiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let settings = state.settings();
    let visible: Vec<_> = viewer.caller.visible(&settings.campaigns).collect();
    let wanted = params.get("campaign").filter(|c| !c.is_empty());
    let Some(goal) = wanted
        .map(|w| visible.iter().find(|c| c.id.as_str() == w.as_str()))
        .unwrap_or_else(|| visible.first())
    else {
        let err = match wanted {
            Some(w) => ApiError::unknown_campaign(w),
            None => ApiError::unknown_campaign("(none: this token sees no campaign)"),
        };
        return page::error(&viewer, &headers, err);
    };
    let campaign = goal.id.to_string();
    let query = api_query(&[("limit", "100")], &params, &["state", "cursor"]);
    let listed = list_orders(
        State(state.clone()),
        viewer.caller.clone(),
        Path(campaign.clone()),
        Ok(Query(query)),
    )
    .await;
    let listed = match listed {
        Ok(listed) => listed.0,
        Err(err) => return page::error(&viewer, &headers, err),
    };
    // This campaign's own hold only: the daemon-wide readiness names other tenants' orders.
    let kb = state.kb().clone();
    let held_goal = (*goal).clone();
    let held = tokio::task::spawn_blocking(move || held_by(&kb, &held_goal))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()));
    let operator = viewer.caller.is_operator();
    let body = html! {
        form.filters method="get" action="/orders" {
            label { "Campaign " select name="campaign" {
                @for c in &visible { option value=(c.id) selected[c.id == goal.id] { (c.id) } }
            } }
            label { "State " select name="state" {
                option value="" { "any" }
                @for s in OrderState::ALL {
                    option value=(s.as_str()) selected[params.get("state").map(String::as_str) == Some(s.as_str())] { (s.as_str()) }
                }
            } }
            button type="submit" { "Show" }
        }
        section {
            h2 { "Connectors" }
            ul.connectors {
                @for channel in &goal.channels {
                    li { (channel) " → " strong { (goal.connectors.get(channel).map_or("the market source's", String::as_str)) } }
                }
            }
            @match &held {
                Ok(None) => p.ready { "Delivering: no order of this campaign is dead-lettered." },
                Ok(Some(why)) => p.notice.bad { "Held: " (why) },
                Err(err) => p.notice.bad { "The outbox cannot be read: " (err) },
            }
        }
        section {
            h2 { "Orders" }
            @if listed.orders.is_empty() { p { "No order yet." } }
            div.scroll {
                table.orders {
                    thead { tr { th { "Day" } th { "Step" } th { "Connector" } th { "State" } th { "Failures" } th { "Last error" } th {} } }
                    tbody {
                        @for e in &listed.orders {
                            tr data-state=(e.state.as_str()) {
                                td { (e.order.day) }
                                td { code { (e.order.step) } }
                                td { (e.connector) }
                                td { span class=(format!("state {}", e.state.as_str())) { (e.state.as_str()) } }
                                td { (e.failures) }
                                td { (e.last_error.as_deref().unwrap_or("—")) @if let Some(note) = &e.operator_note { br; small { (note) } } }
                                td {
                                    @if operator && matches!(e.state, OrderState::DeadLettered | OrderState::Pending) {
                                        form.inline method="post" action=(format!("/orders/{}/retry", e.order.key)) {
                                            input type="hidden" name="csrf" value=(viewer.session.csrf);
                                            input type="hidden" name="back" value=(link("/orders", [("campaign", Some(campaign.as_str())), ("state", params.get("state").map(String::as_str))]));
                                            input name="reason" required placeholder="why";
                                            button type="submit" { "Retry" }
                                            button.secondary type="submit" formaction=(format!("/orders/{}/cancel", e.order.key)) { "Cancel" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = &listed.next_cursor {
                nav.pager { a rel="next" href=(link("/orders", [("campaign", Some(campaign.as_str())), ("state", params.get("state").map(String::as_str)), ("cursor", Some(cursor.as_str()))])) { "more →" } }
            }
        }
    };
    Page {
        title: format!("Orders of {campaign}"),
        section: "/orders",
        body,
    }
    .render(&viewer, &headers)
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    /// The page the form was on, to return to.
    #[serde(default)]
    back: String,
}

/// Retries or cancels an order through the API's handler, then shows the page the form was on.
pub async fn change(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path((key, change)): Path<(String, String)>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.refuse_forgery();
    }
    let request = JsonBody(Some(OrderChange {
        reason: form.reason,
    }));
    let (api, caller, path) = (State(state.clone()), viewer.caller.clone(), Path(key));
    let done = match change.as_str() {
        "retry" => retry_order(api, caller, path, request).await,
        "cancel" => cancel_order(api, caller, path, request).await,
        other => Err(ApiError::bad_parameter(format!(
            "`{other}` is not a change of an order: retry or cancel"
        ))),
    };
    match done {
        Ok(entry) => viewer.notify(
            &state,
            true,
            format!("Order {} is {}.", entry.0.order.key, entry.0.state.as_str()),
        ),
        Err(err) => viewer.notify(&state, false, err.message),
    }
    Redirect::to(page::back_to(&form.back, "/orders")).into_response()
}
