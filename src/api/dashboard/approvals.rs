//! The approval queue, `/approvals`: the requests waiting for a person (or answered ones, with
//! `state`), each with what is proposed, why it waits, when it expires and what happens then, and
//! a form to approve, reject or approve with an amendment. An answer goes through the API's own
//! handler, so its checks (role, tenant, bounds of an amendment, a second answer) are the API's.

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
use crate::api::approvals::{AnswerRequest, approve, list_approvals, reject};
use crate::api::error::{ApiError, JsonBody};

const STATES: [&str; 6] = [
    "pending", "answered", "approved", "rejected", "expired", "all",
];

pub async fn queue(
    State(state): State<ApiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let wanted = params
        .get("state")
        .map_or("pending", String::as_str)
        .to_owned();
    let campaign = params.get("campaign").filter(|c| !c.is_empty()).cloned();
    let query = api_query(
        &[("state", wanted.as_str()), ("limit", "100")],
        &params,
        &["campaign", "cursor"],
    );
    let listed = match list_approvals(State(state), viewer.caller.clone(), Ok(Query(query))).await {
        Ok(listed) => listed.0,
        Err(err) => return page::error(&viewer, &headers, err),
    };
    let may_answer = viewer.caller.may_write();
    let tab = |state: &str| {
        link(
            "/approvals",
            [("campaign", campaign.as_deref()), ("state", Some(state))],
        )
    };
    let body = html! {
        nav.tabs {
            @for s in STATES {
                a href=(tab(s)) .current[s == wanted] { (s) }
            }
        }
        @if let Some(c) = &campaign {
            p { "Requests of " a href=(format!("/campaigns/{c}")) { (c) } ". " a href="/approvals" { "Every campaign" } }
        }
        @if listed.approvals.is_empty() {
            p.empty { "No " (wanted) " request." }
        }
        @for a in &listed.approvals {
            article.approval id=(format!("approval-{}", a.id)) data-state=(a.state) data-kind=(a.kind) {
                h2 { (a.kind) " · " a href=(format!("/campaigns/{}", a.campaign)) { (a.campaign) } " · day " (a.day.saturating_add(1)) }
                p.summary { (a.summary) }
                p.meta {
                    "raised by " (a.agent) " at " (a.requested_at.format("%Y-%m-%d %H:%M UTC"))
                    " · expires " (a.expires_at.format("%Y-%m-%d %H:%M UTC")) ", then " (a.on_expiry)
                    " · " a href=(format!("/decisions/{}", a.id)) { "the request's record" }
                }
                @if let Some(answer) = &a.answer {
                    p.answer { strong { (a.state) } " by " (answer.by) " at " (answer.at.format("%Y-%m-%d %H:%M UTC")) ": " (answer.why)
                        @if answer.amended { " (amended)" } }
                } @else if may_answer {
                    form.answer method="post" action=(format!("/approvals/{}/answer", a.id)) {
                        input type="hidden" name="csrf" value=(viewer.session.csrf);
                        input type="hidden" name="back" value=(tab(&wanted));
                        label { "Reason " input name="reason" required placeholder="why, in a sentence the record keeps"; }
                        details {
                            summary { "Amend (optional)" }
                            label { "Amendment, as JSON " textarea name="amend" rows="2" placeholder=r#"{"spend": 120000} or {"daily": {"search": 50000}}"# {} }
                        }
                        button type="submit" name="verdict" value="approve" { "Approve" }
                        button.secondary type="submit" name="verdict" value="reject" { "Reject" }
                    }
                }
            }
        }
        @if let Some(cursor) = &listed.next_cursor {
            nav.pager { a rel="next" href=(link("/approvals", [("campaign", campaign.as_deref()), ("state", Some(wanted.as_str())), ("cursor", Some(cursor.as_str()))])) { "more →" } }
        }
    };
    Page {
        title: "Approvals".into(),
        section: "/approvals",
        body,
    }
    .render(&viewer, &headers)
}

#[derive(Deserialize)]
pub struct Answer {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    amend: String,
    /// The page the form was on, to return to.
    #[serde(default)]
    back: String,
}

/// Answers a request through the API's handler and returns to the queue with what happened.
pub async fn answer(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<Answer>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.refuse_forgery();
    }
    let back = page::back_to(&form.back, "/approvals").to_owned();
    match answered(&state, &viewer, id, form).await {
        Ok(text) => viewer.notify(&state, true, text),
        Err(err) => viewer.notify(&state, false, err.message),
    }
    Redirect::to(&back).into_response()
}

async fn answered(
    state: &ApiState,
    viewer: &Viewer,
    id: String,
    form: Answer,
) -> Result<String, ApiError> {
    let amend = match form.amend.trim() {
        "" => None,
        text => Some(serde_json::from_str(text).map_err(|e| {
            ApiError::bad_parameter(format!(
                "the amendment is not JSON ({e}); nothing was answered"
            ))
        })?),
    };
    let request = Some(AnswerRequest {
        reason: form.reason,
        amend,
    });
    let (state, caller, path) = (State(state.clone()), viewer.caller.clone(), Path(id));
    let recorded = match form.verdict.as_str() {
        "approve" => approve(state, caller, path, JsonBody(request)).await?,
        "reject" => reject(state, caller, path, JsonBody(request)).await?,
        other => {
            return Err(ApiError::bad_parameter(format!(
                "`verdict` = `{other}` must be approve or reject; nothing was answered"
            )));
        }
    };
    Ok(format!(
        "Request {} is {}; decision {} records the answer.",
        recorded.0.approval, recorded.0.state, recorded.0.decision
    ))
}
