//! People in the loop over HTTP: `GET /v1/approvals` (the requests waiting for a person, or
//! answered, filtered), `GET /v1/approvals/{id}` (one, with its proposal, evidence and answer),
//! `POST /v1/approvals/{id}/approve` and `/reject` (a reason each; an approval may amend the
//! proposal within its bounds), and `PUT /v1/campaigns/{id}/autonomy`.
//!
//! A token sees and answers only its tenant's requests (another tenant's answer exactly as a
//! missing one); a read-only token cannot answer. Every answer goes to the orchestrator, which
//! records it (who, when on the wall clock, why) or says who answered first (409).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::campaigns::{running_goal, visible_campaign};
use super::decisions::{DEFAULT_LIMIT, DecisionView};
use super::error::{ApiError, ErrorBody, ErrorCode, JsonBody};
use crate::agents::approvals::{ApprovalBook, Listed};
use crate::agents::ledger;
use crate::agents::messages::{AnswerApproval, AnswerReply, SetAutonomy};
use crate::agents::orchestrator::Orchestrator;
use crate::domain::approval::{ApprovalKind, Autonomy, Verdict};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{DecisionId, Scope};
use crate::protocol::Origin;
use crate::runtime::{Agent, Client};

/// One request as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    /// The request's decision id: what `approve` and `reject` take.
    pub id: String,
    pub campaign: String,
    pub tenant: String,
    /// `buys`, `budget_move`, `replan`, `autonomy` or `creatives`.
    pub kind: String,
    /// The agent whose decision waits.
    pub agent: String,
    /// The campaign day it was raised on (0 is the first).
    pub day: u32,
    /// What is proposed and why it waits.
    pub summary: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub state: String,
    /// Wall-clock times.
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
    /// What applies if nobody answers in time: `reject` or `hold` (pause the campaign).
    pub on_expiry: String,
    /// Who answered (a token's name, or `expiry`), when, why and whether the approval amended
    /// the proposal; absent while pending.
    pub answer: Option<AnswerView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerView {
    pub decision: String,
    pub by: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    pub why: String,
    pub amended: bool,
}

impl From<Listed> for ApprovalView {
    fn from(l: Listed) -> Self {
        let state = l.state().to_owned();
        ApprovalView {
            id: l.id.to_string(),
            campaign: l.campaign.to_string(),
            tenant: l.tenant.to_string(),
            kind: l.kind.as_str().to_owned(),
            agent: l.agent,
            day: l.day,
            summary: l.summary,
            state,
            requested_at: l.requested_at,
            expires_at: l.expires_at,
            on_expiry: match l.on_expiry {
                crate::domain::approval::OnExpiry::Reject => "reject",
                crate::domain::approval::OnExpiry::Hold => "hold",
            }
            .to_owned(),
            answer: l.answer.map(|a| AnswerView {
                decision: a.id.to_string(),
                by: a.by,
                at: a.at,
                why: a.why,
                amended: a.amended,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<ApprovalView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One request with its record: the request decision (proposal, alternatives, evidence, what
/// happens meanwhile and if nobody answers) and its answer's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalDetail {
    #[serde(flatten)]
    pub listed: ApprovalView,
    pub request: DecisionView,
    pub answer_decision: Option<DecisionView>,
}

fn book(state: &ApiState) -> Result<ApprovalBook, ApiError> {
    ApprovalBook::open(state.kb())
        .map_err(|e| ApiError::internal("the approval book could not be opened", e))
}

/// What `state` admits.
fn state_matches(filter: &str, listed: &Listed) -> bool {
    let state = listed.answer.as_ref().map(|a| a.verdict.as_str());
    match filter {
        "all" => true,
        "pending" => state.is_none(),
        "answered" => state.is_some(),
        other => state == Some(other),
    }
}

const STATES: [&str; 6] = [
    "pending", "answered", "approved", "rejected", "expired", "all",
];

/// The approval requests this token may see, oldest first.
#[utoipa::path(
    get,
    path = "/v1/approvals",
    tag = "approvals",
    security(("bearer" = [])),
    params(
        ("state" = Option<String>, Query, description = "pending (default), answered, approved, rejected, expired or all"),
        ("campaign" = Option<String>, Query, description = "Only this campaign's"),
        ("kind" = Option<String>, Query, description = "Only this kind: buys, budget_move, replan, autonomy or creatives"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "The requests", body = ApprovalList),
        (status = 400, description = "A query parameter is invalid (it is named)", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody)
    )
)]
pub async fn list_approvals(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ApprovalList>, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_parameter(format!("the query string: {}", e.body_text())))?;
    let wanted_state = params.get("state").map_or("pending", String::as_str);
    if !STATES.contains(&wanted_state) {
        return Err(ApiError::bad_parameter(format!(
            "`state` = `{wanted_state}` must be one of {}",
            STATES.join(", ")
        )));
    }
    let kind = match params.get("kind") {
        Some(k) => Some(ApprovalKind::parse(k).ok_or_else(|| {
            let kinds: Vec<&str> = ApprovalKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::bad_parameter(format!(
                "`kind` = `{k}` must be one of {}",
                kinds.join(", ")
            ))
        })?),
        None => None,
    };
    let campaign = params.get("campaign");
    let limit = match params.get("limit") {
        Some(value) => super::decisions::limit(value)?,
        None => DEFAULT_LIMIT,
    };
    let book = book(&state)?;
    // A page starts after its cursor's request, in (requested_at, id) order, whatever became
    // of that request since.
    let after = match params.get("cursor") {
        Some(value) => {
            let not_ours = || {
                ApiError::bad_parameter(format!(
                    "`cursor` = `{value}` is not a cursor this API returned"
                ))
            };
            let id = DecisionId(value.parse::<uuid::Uuid>().map_err(|_| not_ours())?);
            // Another tenant's request is no cursor of this token's either.
            let cursor = book
                .get(id)
                .map_err(|e| ApiError::internal("the approval book could not be read", e))?
                .filter(|l| caller.admits(&l.tenant))
                .ok_or_else(not_ours)?;
            Some((cursor.requested_at, cursor.id))
        }
        None => None,
    };
    // The pending ones have an index of their own: the default answers without the history.
    let pending_only = wanted_state == "pending";
    let listed = tokio::task::spawn_blocking(move || {
        if pending_only {
            book.pending()
        } else {
            book.all()
        }
    })
    .await
    .map_err(|e| ApiError::internal("the approvals query stopped", e))?
    .map_err(|e| ApiError::internal("the approval book could not be read", e))?;
    let mut page: Vec<Listed> = listed
        .into_iter()
        .filter(|l| caller.admits(&l.tenant))
        .filter(|l| campaign.is_none_or(|c| l.campaign.as_str() == c))
        .filter(|l| kind.is_none_or(|k| l.kind == k))
        .filter(|l| state_matches(wanted_state, l))
        .filter(|l| after.is_none_or(|a| (l.requested_at, l.id) > a))
        .collect();
    page.sort_by_key(|l| (l.requested_at, l.id));
    let next_cursor = (page.len() > limit).then(|| page[limit - 1].id.to_string());
    page.truncate(limit);
    Ok(Json(ApprovalList {
        approvals: page.into_iter().map(ApprovalView::from).collect(),
        next_cursor,
    }))
}

/// The request `id` if this caller may see it.
fn visible_request(state: &ApiState, caller: &Caller, id: &str) -> Result<Listed, ApiError> {
    let unknown = || {
        ApiError::new(
            ErrorCode::UnknownApproval,
            format!(
                "no approval request `{id}` is visible to this token; GET /v1/approvals lists them"
            ),
        )
    };
    let id: DecisionId = id
        .parse::<uuid::Uuid>()
        .map(DecisionId)
        .map_err(|_| unknown())?;
    book(state)?
        .get(id)
        .map_err(|e| ApiError::internal("the approval book could not be read", e))?
        .filter(|l| caller.admits(&l.tenant))
        .ok_or_else(unknown)
}

/// One approval request with its proposal, evidence and answer.
#[utoipa::path(
    get,
    path = "/v1/approvals/{id}",
    tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = ApprovalDetail),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such request for this token", body = ErrorBody)
    )
)]
pub async fn get_approval(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApprovalDetail>, ApiError> {
    let listed = visible_request(&state, &caller, &id)?;
    let scope = Scope::Tenant(listed.tenant.clone());
    let read = |id: DecisionId| {
        state
            .kb()
            .decision(&scope, id)
            .map_err(|e| ApiError::internal("the knowledge base could not be read", e))
    };
    let request = read(listed.id)?.ok_or_else(|| {
        ApiError::internal(
            "an approval request is listed without its decision",
            listed.id,
        )
    })?;
    let answer_decision = match &listed.answer {
        Some(a) => read(a.id)?.map(DecisionView::from),
        None => None,
    };
    Ok(Json(ApprovalDetail {
        listed: listed.into(),
        request: request.into(),
        answer_decision,
    }))
}

/// `{"reason": "...", "amend": {...}}`: why (required), and for an approval an optional change
/// within the proposal's bounds: `{"spend": 120000}` cuts a day's buys to that total, `{"daily":
/// {"search": 50000, "sms": 30000}}` sets a budget move's daily budgets, each between what the
/// channel had and what was proposed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub reason: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub amend: Option<serde_json::Value>,
}

/// The answer, recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerRecorded {
    pub approval: String,
    /// `approved` or `rejected`.
    pub state: String,
    /// The answer's decision. A day held for it runs again at once; anything else takes effect
    /// at the campaign's next day.
    pub decision: String,
}

async fn answer(
    state: ApiState,
    caller: Caller,
    id: String,
    body: Option<AnswerRequest>,
    verdict: Verdict,
) -> Result<Json<AnswerRecorded>, ApiError> {
    let route = format!("POST /v1/approvals/{{id}}/{}", verdict_word(verdict));
    if !caller.may_write() {
        return Err(ApiError::read_only(&route));
    }
    let Some(body) = body else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "field `reason` is missing: send {\"reason\": \"why\"}",
        ));
    };
    if body.reason.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "field `reason` is empty: say why, it is recorded with the answer",
        ));
    }
    let listed = visible_request(&state, &caller, &id)?;
    let goal = running_goal(
        &state,
        visible_campaign(&state, &caller, listed.campaign.as_str())?,
    );
    let campaign = goal.id.clone();
    let reply = client_for(&state, &caller, &goal)
        .request(
            Orchestrator::NAME,
            AnswerApproval {
                goal,
                request: listed.id,
                verdict,
                by: caller.name().to_owned(),
                why: body.reason,
                amend: body.amend,
            },
        )
        .await
        .map_err(|err| {
            // A timed-out answer may still be recorded: a held day then runs as soon as it is.
            state.wake().campaign(&campaign);
            ApiError::new(
                ErrorCode::OrchestratorUnavailable,
                format!(
                    "the orchestrator did not confirm the answer ({err}); it may still be recorded: GET /v1/approvals/{id} shows whether it was, and a second answer gets 409 if so"
                ),
            )
        })?;
    match reply {
        AnswerReply::Recorded { answer } => {
            tracing::info!(token_name = caller.name(), approval = %listed.id, verdict = verdict.as_str(), "approval request answered through the API");
            // A day held for this answer runs again now, not at the next campaign day.
            state.wake().campaign(&listed.campaign);
            Ok(Json(AnswerRecorded {
                approval: listed.id.to_string(),
                state: verdict.as_str().to_owned(),
                decision: answer.to_string(),
            }))
        }
        AnswerReply::AlreadyAnswered {
            answer,
            verdict,
            by,
        } => Err(ApiError::new(
            ErrorCode::ApprovalAnswered,
            format!(
                "approval request {id} was {} already by {by} (decision {answer}); the first answer stands",
                verdict.as_str()
            ),
        )),
        AnswerReply::Unknown => Err(ApiError::new(
            ErrorCode::UnknownApproval,
            format!("no approval request `{id}` is visible to this token"),
        )),
        AnswerReply::Invalid { why } => Err(ApiError::new(ErrorCode::InvalidAmendment, why)),
    }
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approved => "approve",
        _ => "reject",
    }
}

/// A client to the orchestrator for `caller`, on `goal`'s campaign and in its trace.
fn client_for(state: &ApiState, caller: &Caller, goal: &CampaignGoal) -> Client {
    state
        .runtime()
        .client(Origin::Operator(format!("api/{}", caller.name())))
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone())
        .with_correlation(ledger::campaign_correlation(goal))
}

/// Approves a request, optionally amending it within the proposal's bounds.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/approve",
    tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = AnswerRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded; a day held for it runs again at once, anything else takes effect at the campaign's next day", body = AnswerRecorded),
        (status = 400, description = "Malformed body, or no reason", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such request for this token", body = ErrorBody),
        (status = 409, description = "Answered already (by a person, or by its expiry)", body = ErrorBody),
        (status = 422, description = "The amendment is outside the proposal's bounds", body = ErrorBody),
        (status = 503, description = "The orchestrator did not confirm the answer in time; it may still be recorded", body = ErrorBody)
    )
)]
pub async fn approve(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Option<AnswerRequest>>,
) -> Result<Json<AnswerRecorded>, ApiError> {
    answer(state, caller, id, body, Verdict::Approved).await
}

/// Rejects a request; the proposing agent records what it does instead.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/reject",
    tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = AnswerRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded; a day held for it runs again at once, anything else takes effect at the campaign's next day", body = AnswerRecorded),
        (status = 400, description = "Malformed body, or no reason", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such request for this token", body = ErrorBody),
        (status = 409, description = "Answered already (by a person, or by its expiry)", body = ErrorBody),
        (status = 422, description = "A rejection carries no amendment", body = ErrorBody),
        (status = 503, description = "The orchestrator did not confirm the answer in time; it may still be recorded", body = ErrorBody)
    )
)]
pub async fn reject(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Option<AnswerRequest>>,
) -> Result<Json<AnswerRecorded>, ApiError> {
    answer(state, caller, id, body, Verdict::Rejected).await
}

/// `{"autonomy": "manual" | "supervised" | "autonomous", "reason": "..."}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutonomyRequest {
    #[schema(value_type = String)]
    pub autonomy: Autonomy,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutonomyChanged {
    pub campaign: String,
    pub autonomy: String,
    pub decision: String,
}

/// Sets a campaign's autonomy (over its file's), recorded with who and why; the agents decide
/// under it from their next decision.
#[utoipa::path(
    put,
    path = "/v1/campaigns/{id}/autonomy",
    tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign id")),
    request_body(content = AutonomyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = AutonomyChanged),
        (status = 400, description = "Malformed body, an unknown autonomy, or no reason", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such campaign for this token", body = ErrorBody),
        (status = 503, description = "The orchestrator is unavailable; send it again", body = ErrorBody)
    )
)]
pub async fn set_autonomy(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Option<AutonomyRequest>>,
) -> Result<Json<AutonomyChanged>, ApiError> {
    if !caller.may_write() {
        return Err(ApiError::read_only("PUT /v1/campaigns/{id}/autonomy"));
    }
    let goal = running_goal(&state, visible_campaign(&state, &caller, &id)?);
    let Some(body) = body.filter(|b| !b.reason.trim().is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "send {\"autonomy\": \"manual\" | \"supervised\" | \"autonomous\", \"reason\": \"why\"} with a reason",
        ));
    };
    let set = client_for(&state, &caller, &goal)
        .request(
            Orchestrator::NAME,
            SetAutonomy {
                goal,
                autonomy: body.autonomy,
                by: caller.name().to_owned(),
                why: body.reason,
            },
        )
        .await
        .map_err(|err| {
            ApiError::new(
                ErrorCode::OrchestratorUnavailable,
                format!("the orchestrator did not confirm the change ({err}); GET /v1/campaigns/{id}/decisions?agent=orchestrator shows whether it was recorded"),
            )
        })?;
    tracing::info!(token_name = caller.name(), campaign = %id, autonomy = body.autonomy.as_str(), "campaign autonomy set through the API");
    Ok(Json(AutonomyChanged {
        campaign: id,
        autonomy: body.autonomy.as_str().to_owned(),
        decision: set.decision.to_string(),
    }))
}
