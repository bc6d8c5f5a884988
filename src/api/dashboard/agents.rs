//! The agents, `/agents`: each agent's state, restarts, last failure, load and workers, and for
//! an isolated agent a revive form. Operators only, as `GET /v1/agents` is: a tenant's token is
//! told so.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::page::{self, Page};
use crate::api::ApiState;
use crate::api::agents::{ReviveRequest, list_agents, revive_agent};
use crate::api::error::JsonBody;

pub async fn page(State(state): State<ApiState>, viewer: Viewer, headers: HeaderMap) -> Response {
    let listed = match list_agents(State(state), viewer.caller.clone()).await {
        Ok(listed) => listed.0,
        Err(err) => return page::error(&viewer, &headers, err),
    };
    let body = html! {
        div.scroll {
            table.agents {
                thead { tr { th { "Agent" } th { "State" } th { "Restarts" } th { "In flight / mailbox" } th { "Workers" } th { "Last failure" } th {} } }
                tbody {
                    @for a in &listed.agents {
                        tr data-agent=(a.name) data-state=(a.state) {
                            td { (a.name) }
                            td { span class=(format!("state {}", a.state)) { (a.state) } }
                            td { (a.restarts) }
                            td { (a.in_flight) " / " (a.mailbox) }
                            td { (a.workers) }
                            td { (a.last_error.as_deref().unwrap_or("—")) }
                            td {
                                @if a.state == "isolated" {
                                    form.inline method="post" action=(format!("/agents/{}/revive", a.name)) {
                                        input type="hidden" name="csrf" value=(viewer.session.csrf);
                                        input name="reason" required placeholder="why it may be trusted again";
                                        button type="submit" { "Revive" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { "An isolated agent stays stopped until revived; a campaign it held stays held until an operator resumes it." }
    };
    Page {
        title: "Agents".into(),
        section: "/agents",
        body,
    }
    .render(&viewer, &headers)
}

#[derive(Deserialize)]
pub struct Revive {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Revives an isolated agent through the API's handler.
pub async fn revive(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<Revive>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.refuse_forgery();
    }
    let request = JsonBody(Some(ReviveRequest {
        reason: form.reason,
    }));
    match revive_agent(
        State(state.clone()),
        viewer.caller.clone(),
        Path(name),
        request,
    )
    .await
    {
        Ok(revived) => viewer.notify(
            &state,
            true,
            format!(
                "{} is {}; decision {} records who revived it and why.",
                revived.0.agent, revived.0.state, revived.0.decision
            ),
        ),
        Err(err) => viewer.notify(&state, false, err.message),
    }
    Redirect::to("/agents").into_response()
}
