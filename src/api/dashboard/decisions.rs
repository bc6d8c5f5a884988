//! Decisions: `/decisions`, a campaign's timeline with each decision's reason, latest first,
//! filtered by agent and kind and paged as the API pages; `/decisions/{id}`, one decision's trace:
//! its inputs, the alternatives weighed and its choice, the decisions it built on, and the
//! outcomes recorded against it with the other decisions each is evidence for.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::page::{self, Page, link, percent};
use super::{Viewer, api_query};
use crate::agents::decisions::kind_names;
use crate::api::ApiState;
use crate::api::decisions::{DecisionView, OutcomeView, get_decision, list_decisions};

/// Decisions per page of the timeline.
const PER_PAGE: &str = "50";

/// Every kind the built-in agents record, for the filter, by name.
fn kinds() -> Vec<&'static str> {
    let mut names = kind_names();
    names.sort_unstable();
    names
}

pub async fn timeline(
    State(state): State<ApiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let settings = state.settings();
    let campaigns: Vec<String> = viewer
        .caller
        .visible(&settings.campaigns)
        .map(|c| c.id.to_string())
        .collect();
    let agents: Vec<String> = settings.agents.iter().map(|a| a.name.to_string()).collect();
    let chosen = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let Some(campaign) = chosen("campaign").or_else(|| campaigns.first().cloned()) else {
        return Page {
            title: "Decisions".into(),
            section: "/decisions",
            body: html! { p { "This token sees no campaign." } },
        }
        .render(&viewer, &headers);
    };
    let (agent, kind) = (chosen("agent"), chosen("kind"));
    let query = api_query(
        &[("limit", PER_PAGE), ("order", "desc")],
        &params,
        &["agent", "kind", "cursor"],
    );
    let listed = list_decisions(
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
    let next = listed.next_cursor.map(|cursor| {
        link(
            "/decisions",
            [
                ("campaign", Some(campaign.as_str())),
                ("agent", agent.as_deref()),
                ("kind", kind.as_deref()),
                ("cursor", Some(cursor.as_str())),
            ],
        )
    });
    let body = html! {
        form.filters method="get" action="/decisions" {
            label { "Campaign " select name="campaign" {
                @for c in &campaigns { option value=(c) selected[*c == campaign] { (c) } }
            } }
            label { "Agent " select name="agent" {
                option value="" { "any" }
                @for a in &agents { option value=(a) selected[agent.as_deref() == Some(a.as_str())] { (a) } }
            } }
            label { "Kind " select name="kind" {
                option value="" { "any" }
                @for k in kinds() { option value=(k) selected[kind.as_deref() == Some(k)] { (k) } }
            } }
            button type="submit" { "Show" }
        }
        @if listed.skipped > 0 {
            p.notice.bad { (listed.skipped) " stored records could not be read and are left out (the daemon log names them)." }
        }
        @if listed.decisions.is_empty() {
            p { "No decision matches." }
        }
        ol.timeline {
            @for d in &listed.decisions {
                li data-kind=(d.kind) data-agent=(d.agent) { (entry(d)) }
            }
        }
        @if let Some(next) = next {
            nav.pager { a rel="next" href=(next) { "older →" } }
        }
    };
    Page {
        title: format!("Decisions of {campaign}"),
        section: "/decisions",
        body,
    }
    .render(&viewer, &headers)
}

/// One decision as a line of a timeline.
fn entry(d: &DecisionView) -> Markup {
    html! {
        time datetime=(d.decided_at.to_rfc3339()) { (d.decided_at.format("%Y-%m-%d %H:%M")) }
        " " span.agent { (d.agent) } " " strong.kind { (d.kind) }
        " " span.confidence { "confidence " (percent(d.confidence)) }
        p.reason { a href=(format!("/decisions/{}", d.id)) { (d.reason) } }
    }
}

pub async fn trace(
    State(state): State<ApiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let detail = match get_decision(State(state), viewer.caller.clone(), Path(id)).await {
        Ok(detail) => detail.0,
        Err(err) => return page::error(&viewer, &headers, err),
    };
    let d = &detail.decision;
    let body = html! {
        p.lead { (d.reason) }
        dl.facts {
            div { dt { "Agent" } dd { (d.agent) } }
            div { dt { "Campaign" } dd { @match &d.campaign {
                Some(c) => a href=(format!("/campaigns/{c}")) { (c) },
                None => "—",
            } } }
            div { dt { "Decided" } dd { (d.decided_at.to_rfc3339()) " (campaign time)" } }
            div { dt { "Confidence" } dd { (percent(d.confidence)) } }
            div { dt { "Chain of work" } dd { code { (d.correlation_id) } } }
        }
        section {
            h2 { "Choice" }
            pre.json { (pretty(&d.choice)) }
            @if !d.alternatives.is_empty() {
                h2 { "Alternatives weighed" }
                ol.alternatives {
                    @for a in &d.alternatives {
                        li { "score " (format!("{:.4}", a.score)) @if let Some(note) = &a.note { " — " (note) }
                            pre.json { (pretty(&a.option)) } }
                    }
                }
            }
            details {
                summary { "Inputs" }
                pre.json { (pretty(&d.inputs)) }
            }
        }
        section {
            h2 { "Built on" }
            @if detail.cited.is_empty() { p { "No earlier decision is named in its inputs." } }
            ol.timeline.cited {
                @for c in &detail.cited { li data-kind=(c.kind) { (entry(c)) } }
            }
        }
        section {
            h2 { "Outcomes recorded against it" }
            @if detail.outcomes.is_empty() { p { "None yet." } }
            @if detail.outcomes_total > detail.outcomes.len() {
                p { "The latest " (detail.outcomes.len()) " of " (detail.outcomes_total) ", oldest first." }
            }
            ol.outcomes {
                @for o in &detail.outcomes { li { (outcome(o, d)) } }
            }
        }
    };
    Page {
        title: format!("{} by {}", d.kind, d.agent),
        section: "/decisions",
        body,
    }
    .render(&viewer, &headers)
}

fn outcome(o: &OutcomeView, of: &DecisionView) -> Markup {
    html! {
        time datetime=(o.observed_at.to_rfc3339()) { (o.observed_at.format("%Y-%m-%d %H:%M")) }
        " " strong { (o.kind) }
        @let others: Vec<_> = o.decisions.iter().filter(|id| **id != of.id).collect();
        @if !others.is_empty() {
            " — also evidence for "
            @for (i, id) in others.iter().enumerate() {
                @if i > 0 { ", " }
                a href=(format!("/decisions/{id}")) { code { (id.to_string().get(..8).unwrap_or_default()) } }
            }
        }
        details { summary { "Metrics" } pre.json { (pretty(&o.metrics)) } }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
