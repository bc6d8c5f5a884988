//! `POST /v1/observations`: one day's performance data of one campaign, from an ad platform's
//! export or a webhook, through the same ingestion path as the built-in simulator
//! ([`crate::campaign::ingest`]).
//!
//! The batch is `{"campaign": "...", "day": N, "observations": [...]}`; each item has the
//! [`Observation`] form (its `campaign` may be left out: it is the batch's). Items are checked one
//! by one: the answer says, per index, recorded, duplicate or rejected with every problem, and one
//! bad item never stops the others. Each item must keep the bounds of [`crate::domain::bounds`],
//! name a variant of the campaign on its channel and segment, and cover a window inside the
//! campaign and inside its `day`; a campaign that is finished takes nothing. An `Idempotency-Key`
//! makes a retried batch count once (see [`super::idempotency`]). A tenant token ingests only for
//! its own campaigns. This module parses and reports; validation and recording belong to the
//! market layer and ingestion.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::campaigns::{running_goal, visible_campaign};
use super::codes::{INVALID_ITEM, item_problem_code_schema};
use super::error::{ApiError, ErrorBody, ErrorCode, RawBody, parse_batch, parse_item};
use super::idempotency;
use crate::campaign::ingest::{Batch, IngestError, ItemResult, ingest_at};
use crate::market::Observation;
use crate::protocol::Origin;

/// One day's observations of one campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationBatch {
    /// The campaign id.
    pub campaign: String,
    /// Days since the campaign's start (0 is the first). With channel and variant it identifies
    /// an observation: the same campaign, day, channel and variant is recorded once.
    pub day: u32,
    /// Each: `channel`, `variant`, `window_start`, `window_end` (RFC 3339), `impressions`,
    /// `clicks`, `conversions`, `spend`, and optionally `segment`, `revenue`, `campaign`.
    #[schema(value_type = Vec<Object>)]
    pub observations: Vec<serde_json::Value>,
}

/// What happened to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Recorded,
    /// Already recorded (same campaign, day, channel and variant); the first recording stands.
    Duplicate,
    Rejected,
}

/// One thing wrong with an item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemProblem {
    /// `invalid_item` (not an observation: a missing, mistyped or unknown field), or a
    /// validation problem; the schema lists every code.
    #[schema(schema_with = item_problem_code_schema)]
    pub code: &'static str,
    /// What was wrong, naming the field and value.
    pub message: String,
}

/// One item's fate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    /// Position in `observations`, from 0.
    pub index: usize,
    pub status: ItemStatus,
    /// The outcome recording it (for `recorded` and `duplicate`).
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ItemProblem>,
}

/// What ingestion did with the batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    pub campaign: String,
    pub day: u32,
    pub recorded: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Agents told about the new observations (the optimizer learns from them).
    pub delivered: usize,
    pub items: Vec<ItemView>,
}

/// Ingests one day's observations of one campaign.
#[utoipa::path(
    post,
    path = "/v1/observations",
    tag = "campaigns",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 200 visible ASCII characters; a retry with the same key and body replays the first answer")
    ),
    request_body(content = ObservationBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Every item recorded, duplicate or rejected (see `items`); a replay has `Idempotency-Replayed: true`", body = IngestAnswer),
        (status = 400, description = "Malformed JSON, a batch field missing or mistyped, no observations, or a bad Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "A read-only token", body = ErrorBody),
        (status = 404, description = "No such campaign for this token", body = ErrorBody),
        (status = 413, description = "The body is over api.body_limit_bytes", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used before with a different body", body = ErrorBody),
        (status = 503, description = "Recorded, but the optimizer could not be told; retry the same batch", body = ErrorBody)
    )
)]
pub async fn ingest_observations(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    if !caller.may_write() {
        return Err(ApiError::read_only("POST /v1/observations"));
    }
    let key = idempotency::key_of(&headers)?;
    let batch: ObservationBatch = parse_batch(
        &body,
        "{\"campaign\": \"...\", \"day\": 0, \"observations\": [...]}",
    )?;
    if batch.observations.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "field `observations` is empty: send at least one observation",
        ));
    }
    let configured = visible_campaign(&state, &caller, &batch.campaign)?;
    let task = (state.clone(), caller.clone());
    let run = async move { run(&task.0, &task.1, configured, batch).await };
    idempotency::answer_once(state, caller, key, body, "observation batch", run).await
}

/// Parses the items, ingests the valid ones and returns the JSON answer.
async fn run(
    state: &ApiState,
    caller: &Caller,
    configured: crate::domain::campaign::CampaignGoal,
    batch: ObservationBatch,
) -> Result<String, ApiError> {
    let goal = running_goal(state, configured);
    let ObservationBatch {
        campaign,
        day,
        observations,
    } = batch;
    let mut items: Vec<Option<ItemView>> = Vec::with_capacity(observations.len());
    // Positions in the batch of the items handed to ingestion, in order.
    let mut positions = Vec::new();
    let mut parsed = Vec::new();
    for (index, mut value) in observations.into_iter().enumerate() {
        if let serde_json::Value::Object(fields) = &mut value {
            fields
                .entry("campaign")
                .or_insert_with(|| serde_json::Value::String(campaign.clone()));
        }
        match parse_item::<Observation>(value) {
            Ok(observation) => {
                items.push(None);
                positions.push(index);
                parsed.push(observation);
            }
            Err(message) => items.push(Some(ItemView {
                index,
                status: ItemStatus::Rejected,
                outcome: None,
                problems: vec![ItemProblem {
                    code: INVALID_ITEM,
                    message,
                }],
            })),
        }
    }
    let mut report = crate::campaign::ingest::IngestReport::default();
    if !parsed.is_empty() {
        let client = state.runtime().client(Origin::Runtime);
        tracing::info!(
            token_name = caller.name(),
            campaign = %goal.id,
            day,
            items = items.len(),
            "observations received through the API"
        );
        // The campaign's clock, not the wall clock: a campaign's deadline is in its own time.
        let received_at = state.runtime().clock().now();
        report = ingest_at(
            state.kb(),
            &client,
            None,
            Batch {
                goal,
                day,
                observations: parsed,
            },
            Some(received_at),
        )
        .await
        .map_err(|err| match err {
            IngestError::Publish { .. } => ApiError::new(
                ErrorCode::NotAnnounced,
                format!(
                    "{err}; send the same batch again to announce it (nothing is recorded twice)"
                ),
            ),
            IngestError::Kb { .. } | IngestError::Interrupted { .. } => {
                ApiError::internal("the observations could not be recorded", err)
            }
        })?;
    }
    for (position, result) in positions.into_iter().zip(report.items) {
        let view = match result {
            ItemResult::Recorded(id) => ItemView {
                index: position,
                status: ItemStatus::Recorded,
                outcome: Some(id.to_string()),
                problems: Vec::new(),
            },
            ItemResult::Duplicate(id) => ItemView {
                index: position,
                status: ItemStatus::Duplicate,
                outcome: Some(id.to_string()),
                problems: Vec::new(),
            },
            ItemResult::Rejected(problems) => ItemView {
                index: position,
                status: ItemStatus::Rejected,
                outcome: None,
                problems: problems
                    .iter()
                    .map(|p| ItemProblem {
                        code: p.code(),
                        message: p.to_string(),
                    })
                    .collect(),
            },
        };
        if let Some(slot) = items.get_mut(position) {
            *slot = Some(view);
        }
    }
    let items: Vec<ItemView> = items.into_iter().flatten().collect();
    let count = |status| items.iter().filter(|i| i.status == status).count();
    let answer = IngestAnswer {
        campaign,
        day,
        recorded: count(ItemStatus::Recorded),
        duplicates: count(ItemStatus::Duplicate),
        rejected: count(ItemStatus::Rejected),
        delivered: report.delivered,
        items,
    };
    serde_json::to_string(&answer).map_err(|e| ApiError::internal("the answer does not encode", e))
}
