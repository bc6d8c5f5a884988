//! `GET /v1/agents`: each agent's state, restarts, last error and mailbox depth, and
//! `POST /v1/agents/{name}/revive`: an operator brings an isolated agent back. Operator only: an
//! agent's last error may quote any tenant's data, and a revive lifts a fail-closed hold.
//!
//! A revive is the runtime's (it restarts the agent under supervision with a fresh restart
//! window); who asked and why is the orchestrator's to record, as a `revive` decision in the
//! chain the answer names. This module only checks the caller and translates.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode, JsonBody};
use crate::agents::messages::{AgentRevived, OPERATIONS_TENANT};
use crate::agents::orchestrator::Orchestrator;
use crate::kb::{Record, Scope};
use crate::protocol::{Address, Kind, Origin, TenantId};
use crate::runtime::{Agent, AgentState, ControlError, ReviveError};

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
    /// The admission bound, over all workers.
    pub mailbox: usize,
    /// How many workers run the agent side by side (each campaign always on the same one).
    pub workers: usize,
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
            workers: s.workers,
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
                workers: definition.workers,
            });
        }
    }
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(AgentList { agents }))
}

/// `{"reason": "..."}`: why the agent may be trusted again (recorded in the revive decision).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviveRequest {
    pub reason: String,
}

/// An agent revived and the decision that records it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revived {
    pub agent: String,
    /// Its state right after the revive (`running`).
    pub state: String,
    /// The revive's chain of work: `GET /v1/traces/{correlation_id}` shows its decision.
    pub correlation_id: String,
    /// The `revive` decision the orchestrator recorded, with who and why.
    pub decision: String,
}

/// Restarts an isolated agent under supervision with a fresh restart window, and records who
/// revived it and why. Operator token only. A campaign held by it stays held until an operator
/// resumes it.
#[utoipa::path(
    post,
    path = "/v1/agents/{name}/revive",
    tag = "agents",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The agent, as `GET /v1/agents` names it")),
    request_body(content = ReviveRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Revived (running again) and recorded", body = Revived),
        (status = 400, description = "Malformed body, or no `reason`", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A tenant token", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "The agent is not isolated, or the orchestrator, which records the revive, is not running", body = ErrorBody),
        (status = 413, description = "The body is over api.body_limit_bytes", body = ErrorBody),
        (status = 503, description = "The agent could not be started again, or its revive could not be recorded", body = ErrorBody)
    )
)]
pub async fn revive_agent(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<Option<ReviveRequest>>,
) -> Result<Json<Revived>, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::operator_only("POST /v1/agents/{name}/revive"));
    }
    let Some(why) = request
        .map(|r| r.reason.trim().to_owned())
        .filter(|r| !r.is_empty())
    else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "field `reason` is missing or empty: send {\"reason\": \"why the agent may be trusted again\"}",
        ));
    };
    let runtime = state.runtime();
    let Some(before) = runtime.agent_status(&name) else {
        return Err(unknown_agent(&name));
    };
    if before.state != AgentState::Isolated {
        return Err(ApiError::new(
            ErrorCode::ReviveRefused,
            format!(
                "agent `{name}` is {}, not isolated; only an isolated agent is revived",
                before.state
            ),
        ));
    }
    // The orchestrator records every revive, so it must be there to record this one.
    if name != Orchestrator::NAME
        && let Some(orchestrator) = runtime.agent_status(Orchestrator::NAME)
        && orchestrator.state != AgentState::Running
    {
        return Err(ApiError::new(
            ErrorCode::ReviveRefused,
            format!(
                "the orchestrator, which records every revive, is {}; revive it first (POST /v1/agents/{}/revive)",
                orchestrator.state,
                Orchestrator::NAME
            ),
        ));
    }
    runtime.revive(&name).await.map_err(|err| match err {
        ControlError::Revive {
            reason: ReviveError::Unknown(_),
            ..
        } => unknown_agent(&name),
        ControlError::Revive {
            reason: ReviveError::NotIsolated { state, .. },
            ..
        } => ApiError::new(
            ErrorCode::ReviveRefused,
            format!("agent `{name}` is {state}, not isolated; only an isolated agent is revived"),
        ),
        other => ApiError::new(ErrorCode::ReviveFailed, other.to_string()),
    })?;
    tracing::info!(token_name = caller.name(), agent = %name, %why, "agent revived through the API");
    let envelope = runtime
        .client(Origin::Operator(format!("api/{}", caller.name())))
        .envelope(
            Kind::Command,
            Address::Agent(Orchestrator::NAME.into()),
            AgentRevived {
                agent: name.clone(),
                why,
                last_error: before.last_error,
                restarts: before.restarts,
            },
        );
    let correlation = envelope.correlation_id;
    runtime.command(envelope).await.map_err(|err| {
        ApiError::new(
            ErrorCode::ReviveFailed,
            format!("agent `{name}` was revived, but the orchestrator could not record it: {err}"),
        )
    })?;
    let kb = state.kb().clone();
    let scope = Scope::Tenant(TenantId::new(OPERATIONS_TENANT));
    let found = tokio::task::spawn_blocking(move || kb.trace(&scope, correlation))
        .await
        .map_err(|e| ApiError::internal("the revive's trace query stopped", e))?
        .map_err(|e| ApiError::internal("the knowledge base could not be read", e))?;
    let decision = found
        .records
        .into_iter()
        .find_map(|r| match r {
            Record::Decision(d) => Some(d.id),
            Record::Outcome(_) => None,
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ReviveFailed,
                format!("agent `{name}` was revived, but no revive decision was recorded"),
            )
        })?;
    let after = runtime
        .agent_status(&name)
        .map_or_else(|| "unknown".to_owned(), |s| s.state.to_string());
    Ok(Json(Revived {
        agent: name,
        state: after,
        correlation_id: correlation.to_string(),
        decision: decision.to_string(),
    }))
}

fn unknown_agent(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownAgent,
        format!("no agent `{name}` is configured; GET /v1/agents lists them"),
    )
}
