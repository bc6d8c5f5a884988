//! `POST /v1/reload`: the same reload as SIGHUP. Re-reads the config, agent definitions and
//! campaigns; a configuration with any problem is rejected as a whole (422, every problem with
//! its file and key) and the running one stays. `{"dry_run": true}` only checks. Operator only.
//!
//! The reload itself belongs to the daemon; this route only calls it and reports.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode, JsonBody, ProblemView};

/// The optional request body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    /// Only check the configuration on disk; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReloadReport {
    /// False for a dry run.
    pub applied: bool,
    /// Campaigns in the new configuration.
    pub campaigns: usize,
    pub agents: Vec<AgentReload>,
}

/// What happened to one agent's definition.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentReload {
    pub agent: String,
    /// Whether the new definition is in force.
    pub applied: bool,
    /// Why not, when it is not (for example: a new agent needs a restart).
    pub note: Option<String>,
}

/// Reloads the configuration, as SIGHUP does. Operator token only.
#[utoipa::path(
    post,
    path = "/v1/reload",
    tag = "operations",
    security(("bearer" = [])),
    request_body(content = Option<ReloadRequest>, description = "Optional; an empty body reloads", content_type = "application/json"),
    responses(
        (status = 200, description = "Reloaded (or checked, for a dry run)", body = ReloadReport),
        (status = 400, description = "The body is not valid JSON or names an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A tenant token", body = ErrorBody),
        (status = 413, description = "The body is over api.body_limit_bytes", body = ErrorBody),
        (status = 422, description = "The configuration is invalid; nothing changed", body = ErrorBody)
    )
)]
pub async fn reload(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(request): JsonBody<ReloadRequest>,
) -> Result<Json<ReloadReport>, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::operator_only("POST /v1/reload"));
    }
    tracing::info!(
        token_name = caller.name(),
        dry_run = request.dry_run,
        "reload requested through the API"
    );
    let reload = state.inner.reload.clone();
    let result = tokio::task::spawn_blocking(move || reload(request.dry_run))
        .await
        .map_err(|e| ApiError::internal("the reload stopped", e))?;
    match result {
        Ok(report) => Ok(Json(report)),
        Err(problems) => {
            let mut error = ApiError::new(
                ErrorCode::InvalidConfig,
                format!(
                    "the new configuration was rejected; the running one stays. {}",
                    problems
                ),
            );
            error.problems = problems.iter().map(ProblemView::from).collect();
            Err(error)
        }
    }
}
