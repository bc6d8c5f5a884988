//! `GET /v1/agents`: each agent's state, restarts, last error and mailbox depth. Operator only:
//! an agent's last error may quote any tenant's data.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};

/// One agent as an operator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub name: String,
    /// `running`, `restarting`, `isolated`, `stopped`, or `not_started` for an enabled agent this
    /// binary has no implementation of.
    pub state: String,
    /// Restarts since the daemon started.
    pub restarts: u32,
    /// The last failure (panic message or returned error), if any.
    pub last_error: Option<String>,
    /// Messages admitted and not yet handled.
    pub in_flight: usize,
    /// The admission bound.
    pub mailbox: usize,
}

/// The agents, sorted by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// Every configured agent's status. Operator token only.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every running or enabled agent", body = AgentList),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A tenant token", body = ErrorBody)
    )
)]
pub async fn list_agents(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<AgentList>, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::operator_only("GET /v1/agents"));
    }
    let mut agents: Vec<AgentView> = state
        .runtime()
        .status()
        .into_iter()
        .map(|s| AgentView {
            name: s.name.to_string(),
            state: s.state.to_string(),
            restarts: s.restarts,
            last_error: s.last_error,
            in_flight: s.in_flight,
            mailbox: s.mailbox,
        })
        .collect();
    for definition in state.settings().enabled_agents() {
        if !agents.iter().any(|a| a.name == definition.name.as_str()) {
            agents.push(AgentView {
                name: definition.name.to_string(),
                state: "not_started".to_owned(),
                restarts: 0,
                last_error: Some(format!(
                    "enabled in {} but no agent of this name is built into this binary or it was added since start",
                    definition.file
                )),
                in_flight: 0,
                mailbox: definition.mailbox,
            });
        }
    }
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(AgentList { agents }))
}
