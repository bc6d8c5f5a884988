//! `GET /v1/campaigns`, `GET /v1/campaigns/{id}` and `POST /v1/campaigns/{id}/commands`: the
//! campaigns of the settings in force that the caller may see, each with its goal and the latest
//! state the campaign loop reported to the [`CampaignBoard`] (phase, progress, spend, ETA, today's
//! allocation); and the operator's pause, resume and re-plan orders to the orchestrator.
//!
//! A campaign of another tenant answers exactly like one that does not exist. The figures come
//! from the board, never from asking an agent, so a busy or restarting agent cannot slow a read.
//! Nothing here decides anything: a command is handed to the orchestrator, which decides and
//! records why.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode, JsonBody};
use crate::agents::messages::{BudgetMix, Pause, Replan, Resume};
use crate::agents::orchestrator::Orchestrator;
use crate::campaign::CampaignStatus;
use crate::domain::campaign::CampaignGoal;
use crate::domain::money::{round_money, round_to};
use crate::kb::{Record, Scope};
use crate::protocol::{Address, CorrelationId, Kind, Origin, Payload};
use crate::runtime::{Agent, DeliveryError};

/// What the campaign is asked to reach.
#[derive(Debug, Serialize, ToSchema)]
pub struct GoalView {
    pub description: String,
    /// `signups`, `purchases`, `leads` or `installs`.
    pub objective: String,
    pub target: u64,
    /// When spending may start (fixed at the first tick when the config leaves it out).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub deadline: DateTime<Utc>,
    pub budget: f64,
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
    pub channels: Vec<String>,
    pub regions: Vec<String>,
    pub segments: Vec<String>,
}

impl From<&CampaignGoal> for GoalView {
    fn from(goal: &CampaignGoal) -> Self {
        GoalView {
            description: goal.description.clone(),
            objective: snake(&goal.objective),
            target: goal.target,
            start: goal.start,
            deadline: goal.deadline,
            budget: goal.budget.total,
            currency: goal.budget.currency.clone(),
            channels: goal.channels.iter().map(ToString::to_string).collect(),
            regions: goal.regions.clone(),
            segments: goal.segments.iter().map(|s| s.id.clone()).collect(),
        }
    }
}

/// One channel's share of today's buys.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationView {
    pub channel: String,
    /// Planned spend today, in the campaign's currency.
    pub spend: f64,
    /// Share of today's planned spend, 0 to 1.
    pub share: f64,
    /// Variants bought on this channel today.
    pub variants: usize,
}

/// Each channel's daily budget against the plan's, and why they differ.
#[derive(Debug, Serialize, ToSchema)]
pub struct MixView {
    pub channels: Vec<ChannelMixView>,
    /// Why the budget is not the plan's: the reason of the latest budget decision since the plan
    /// (absent while the budget is the plan's).
    pub why: Option<String>,
    /// That decision, for `GET /v1/decisions/{id}` and its trace.
    pub decision: Option<String>,
}

/// One channel's daily budget, planned and today's, in the campaign's currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelMixView {
    pub channel: String,
    pub planned_daily: f64,
    pub daily: f64,
    /// Shares of the day's total budget, 0 to 1, to four places.
    pub planned_share: f64,
    pub share: f64,
}

impl MixView {
    fn of(mix: BudgetMix, currency: &str) -> Self {
        // Shares to four places: a hundredth of a percent is as fine as anyone reads a mix.
        let share = |x: f64, total: f64| {
            if total > 0.0 {
                round_to(x / total, 4)
            } else {
                0.0
            }
        };
        let planned: f64 = mix.channels.iter().map(|c| c.planned).sum();
        let daily: f64 = mix.channels.iter().map(|c| c.daily).sum();
        MixView {
            channels: mix
                .channels
                .iter()
                .map(|c| ChannelMixView {
                    channel: c.channel.to_string(),
                    planned_daily: round_money(c.planned, currency),
                    daily: round_money(c.daily, currency),
                    planned_share: share(c.planned, planned),
                    share: share(c.daily, daily),
                })
                .collect(),
            why: mix.why,
            decision: mix.decision.map(|d| d.to_string()),
        }
    }
}

/// A campaign: its goal and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub tenant: String,
    pub goal: GoalView,
    /// `waiting` (not ticked yet), `running`, `held` (see `held`), `achieved` or `ended`.
    pub state: String,
    /// Why nothing is bought today, when `state` is `held`.
    pub held: Option<String>,
    /// The last day ticked (days since the start; 0 is the first).
    pub day: Option<u32>,
    /// `explore`, `optimize` or `stabilize`; absent before the first figures.
    pub phase: Option<String>,
    pub conversions: u64,
    /// Conversions as a fraction of the target.
    pub progress: f64,
    /// Spend to date, in the goal's currency.
    pub spend: f64,
    /// The forecast day the target is reached (days since the start), when the forecast reaches it.
    pub eta_day: Option<f64>,
    /// `eta_day` as a time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub eta: Option<DateTime<Utc>>,
    /// Today's buys by channel (empty while held or waiting).
    pub allocation: Vec<AllocationView>,
    /// Each channel's daily budget against the plan's, and why they differ (the last known while
    /// held; empty while waiting).
    pub mix: MixView,
    /// Why the last day could not complete, if it did not.
    pub last_error: Option<String>,
    /// When the campaign loop last reported on this campaign.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl CampaignView {
    /// The configured goal joined with what the board knows (a campaign the board has not heard
    /// of, e.g. one added by a reload, is waiting). The board's goal wins: it has the fixed start.
    fn of(configured: &CampaignGoal, status: CampaignStatus) -> Self {
        CampaignView {
            id: configured.id.to_string(),
            tenant: configured.tenant.to_string(),
            goal: GoalView::from(&status.goal),
            state: status.state.as_str().to_owned(),
            held: status.held,
            day: status.day,
            phase: status.phase.map(|p| p.as_str().to_owned()),
            conversions: status.conversions,
            progress: status.progress,
            spend: status.spend,
            eta_day: status.eta_day,
            eta: status.eta,
            allocation: status
                .allocation
                .into_iter()
                .map(|a| AllocationView {
                    channel: a.channel.to_string(),
                    spend: a.spend,
                    share: a.share,
                    variants: a.variants,
                })
                .collect(),
            mix: MixView::of(status.mix, &status.goal.budget.currency),
            last_error: status.last_error,
            updated_at: status.updated_at,
        }
    }
}

/// The campaigns this token may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignView>,
}

/// A value's serde name (`Objective::Signups` → `signups`).
fn snake(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// What the campaign board knows of a configured campaign (waiting when it knows nothing, or when
/// its entry belongs to another tenant).
pub(crate) fn status_of(state: &ApiState, configured: &CampaignGoal) -> CampaignStatus {
    state.board().status_of(configured)
}

/// The configured campaign `id`, if this caller may see it; otherwise the same 404 as for an
/// unknown campaign.
pub(crate) fn visible_campaign(
    state: &ApiState,
    caller: &Caller,
    id: &str,
) -> Result<CampaignGoal, ApiError> {
    state
        .settings()
        .campaigns
        .iter()
        .find(|c| c.id.as_str() == id)
        .filter(|c| caller.admits(&c.tenant))
        .cloned()
        .ok_or_else(|| ApiError::unknown_campaign(id))
}

/// The goal as the campaign loop runs it (with its start fixed) when the board has it, else the
/// configured one.
pub(crate) fn running_goal(state: &ApiState, configured: CampaignGoal) -> CampaignGoal {
    status_of(state, &configured).goal
}

/// Every campaign this token may see, ordered by id.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "campaigns",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The campaigns of the settings in force this token may see", body = CampaignList),
        (status = 401, description = "Missing or unknown token", body = ErrorBody)
    )
)]
pub async fn list_campaigns(State(state): State<ApiState>, caller: Caller) -> Json<CampaignList> {
    let settings = state.settings();
    let mut campaigns: Vec<CampaignView> = caller
        .visible(&settings.campaigns)
        .map(|c| CampaignView::of(c, status_of(&state, c)))
        .collect();
    campaigns.sort_by(|a, b| a.id.cmp(&b.id));
    Json(CampaignList { campaigns })
}

/// One campaign: its goal, phase, progress, spend, ETA and today's allocation.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign id, as in config/campaigns/<id>.toml")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such campaign for this token", body = ErrorBody)
    )
)]
pub async fn get_campaign(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let configured = visible_campaign(&state, &caller, &id)?;
    let status = status_of(&state, &configured);
    Ok(Json(CampaignView::of(&configured, status)))
}

/// The order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Stop buying from the next tick on.
    Pause,
    /// Buy again (refused while compliance is isolated: revive it first).
    Resume,
    /// Ask strategy for a new plan at the next tick.
    Replan,
}

impl CommandKind {
    fn as_str(self) -> &'static str {
        match self {
            CommandKind::Pause => "pause",
            CommandKind::Resume => "resume",
            CommandKind::Replan => "replan",
        }
    }
}

/// `{"command": "pause" | "resume" | "replan", "reason": "..."}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    pub command: CommandKind,
    /// Why; recorded in the orchestrator's decision. Optional.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A command the orchestrator carried out.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAccepted {
    pub campaign: String,
    pub command: CommandKind,
    /// The command's chain of work: `GET /v1/traces/{correlation_id}` shows the orchestrator's
    /// decision about it.
    pub correlation_id: String,
    /// The decision the orchestrator recorded for it.
    pub decision: String,
}

/// Orders the orchestrator to pause, resume or re-plan a campaign. Operator token only: a command
/// changes what is bought and spent, which is the operator's call, not a tenant's.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/commands",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign id")),
    request_body(content = CommandRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Carried out and recorded; it takes effect at the next tick", body = CommandAccepted),
        (status = 400, description = "Malformed body, or `command` is not pause, resume or replan", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A tenant token", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "The campaign is over (achieved or past its deadline: `campaign_finished`), the orchestrator has not set it up yet and ignored the command (`command_ignored`), or it refused the command with the reason (`command_refused`: a resume while compliance is isolated)", body = ErrorBody),
        (status = 413, description = "The body is over api.body_limit_bytes", body = ErrorBody),
        (status = 503, description = "The orchestrator is unavailable, isolated, overloaded or did not answer", body = ErrorBody)
    )
)]
pub async fn command(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<Option<CommandRequest>>,
) -> Result<(StatusCode, Json<CommandAccepted>), ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::operator_only(
            "POST /v1/campaigns/{id}/commands (pause, resume, replan)",
        ));
    }
    let goal = visible_campaign(&state, &caller, &id)?;
    let Some(request) = request else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "field `command` is missing: send {\"command\": \"pause\" | \"resume\" | \"replan\", \"reason\": \"...\"}",
        ));
    };
    if let Some(over) = finished(&status_of(&state, &goal), state.runtime().clock().now()) {
        return Err(ApiError::new(
            ErrorCode::CampaignFinished,
            format!(
                "campaign `{id}` {over}; `{}` would change nothing. GET /v1/campaigns/{id} shows its figures",
                request.command.as_str()
            ),
        ));
    }
    let why = request
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "no reason given".to_owned());
    tracing::info!(
        token_name = caller.name(),
        campaign = %goal.id,
        command = request.command.as_str(),
        %why,
        "command sent through the API"
    );
    let client = state
        .runtime()
        .client(Origin::Operator(format!("api/{}", caller.name())))
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone());
    let campaign = goal.id.clone();
    let correlation = match request.command {
        CommandKind::Pause => send(&state, &client, Pause { campaign, why }).await?,
        CommandKind::Resume => send(&state, &client, Resume { campaign, why }).await?,
        CommandKind::Replan => send(&state, &client, Replan { campaign, why }).await?,
    };
    // The orchestrator records a decision for every command it acts on, durably before it
    // answers; no decision means it ignored the command (it has not set the campaign up yet).
    let kb = state.kb().clone();
    let scope = Scope::Tenant(goal.tenant.clone());
    let found = tokio::task::spawn_blocking(move || kb.trace(&scope, correlation))
        .await
        .map_err(|e| ApiError::internal("the command's trace query stopped", e))?
        .map_err(|e| ApiError::internal("the knowledge base could not be read", e))?;
    let decision = found.records.into_iter().find_map(|r| match r {
        Record::Decision(d) if d.campaign.as_ref() == Some(&goal.id) => Some(d.id),
        _ => None,
    });
    let Some(decision) = decision else {
        return Err(ApiError::new(
            ErrorCode::CommandIgnored,
            format!(
                "the orchestrator has not set campaign `{id}` up yet and ignored `{}`; GET /v1/campaigns/{id} shows its state (it is set up at its first tick)",
                request.command.as_str()
            ),
        ));
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandAccepted {
            campaign: id,
            command: request.command,
            correlation_id: correlation.to_string(),
            decision: decision.to_string(),
        }),
    ))
}

/// Why a campaign takes no more commands, if it is over: its target reached, or its deadline
/// passed (on the campaign's clock, the one its deadline is written in) whether or not the loop has
/// reported it yet.
fn finished(status: &CampaignStatus, now: DateTime<Utc>) -> Option<String> {
    use crate::campaign::CampaignState;
    match status.state {
        CampaignState::Achieved => Some("reached its target".to_owned()),
        CampaignState::Ended => Some(format!(
            "ended at its deadline {}",
            status.goal.deadline.to_rfc3339()
        )),
        _ if now >= status.goal.deadline => Some(format!(
            "is past its deadline {}",
            status.goal.deadline.to_rfc3339()
        )),
        _ => None,
    }
}

/// Sends one command to the orchestrator as a new chain of work and returns the chain's id.
async fn send<C: Payload>(
    state: &ApiState,
    client: &crate::runtime::Client,
    payload: C,
) -> Result<CorrelationId, ApiError> {
    let envelope = client.envelope(
        Kind::Command,
        Address::Agent(Orchestrator::NAME.into()),
        payload,
    );
    let correlation = envelope.correlation_id;
    state
        .runtime()
        .command(envelope)
        .await
        .map_err(delivery_error)?;
    Ok(correlation)
}

fn delivery_error(err: DeliveryError) -> ApiError {
    match err {
        // The orchestrator's own answer (a resume while compliance is isolated), said as it is.
        DeliveryError::Refused { reason, .. } => ApiError::new(ErrorCode::CommandRefused, reason),
        DeliveryError::Rejected { .. } => {
            ApiError::internal("the orchestrator refused the command", err)
        }
        other => ApiError::new(
            ErrorCode::OrchestratorUnavailable,
            format!("the command was not carried out: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::parse_json;

    #[test]
    fn an_unknown_command_names_the_field_and_the_allowed_values() {
        let err = parse_json::<CommandRequest>(br#"{"command": "stop"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidBody);
        for needle in ["`command`", "stop", "pause", "resume", "replan"] {
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
        let ok = parse_json::<CommandRequest>(br#"{"command": "replan", "reason": "r"}"#)
            .expect("valid");
        assert_eq!(ok.command, CommandKind::Replan);
    }
}
