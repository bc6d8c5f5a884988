//! `GET /v1/traces/{correlation_id}`: every decision and outcome of one chain of work.
//!
//! A tenant's trace is read through one knowledge-base scope per tenant the caller may see, never
//! through the all-tenants scope, so another tenant's records are not even loaded.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::decisions::{DecisionView, OutcomeView};
use super::error::{ApiError, ErrorBody, ErrorCode};
use crate::kb::Record;
use crate::protocol::CorrelationId;

/// A causal trace: decisions and outcomes, each in time order. A decision's `causation_id` and
/// an outcome's `decisions` are the links between them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trace {
    pub correlation_id: String,
    pub decisions: Vec<DecisionView>,
    pub outcomes: Vec<OutcomeView>,
    /// Stored records that could not be read and were left out.
    pub skipped: usize,
}

/// The decisions and outcomes that carry a correlation id.
#[utoipa::path(
    get,
    path = "/v1/traces/{correlation_id}",
    tag = "decisions",
    security(("bearer" = [])),
    params(("correlation_id" = String, Path, description = "The chain of work's id (a UUID)")),
    responses(
        (status = 200, description = "The trace", body = Trace),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "Nothing with this id is visible to this token", body = ErrorBody)
    )
)]
pub async fn trace(
    State(state): State<ApiState>,
    caller: Caller,
    Path(correlation_id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    let id: CorrelationId = correlation_id.parse().map_err(|_| {
        ApiError::bad_parameter(format!(
            "`{correlation_id}` is not a correlation id (a UUID like 0193a8c2-5f1e-7b3a-9c4d-2e6f8a1b3c5d)"
        ))
    })?;
    let scopes = caller.scopes(&state.settings());
    let kb = state.kb().clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut records = Vec::new();
        let mut skipped = 0;
        for scope in &scopes {
            let result = kb.trace(scope, id)?;
            records.extend(result.records);
            skipped += result.skipped.len();
        }
        Ok::<_, crate::kb::KbError>((records, skipped))
    })
    .await
    .map_err(|e| ApiError::internal("the trace query stopped", e))?
    .map_err(|e| ApiError::internal("the knowledge base could not be read", e))?;
    let (mut records, skipped) = found;
    records.retain(|r| caller.admits(r.tenant()));
    records.sort_by_key(|r| (r.at(), r.id()));
    records.dedup_by_key(|r| r.id());
    if records.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UnknownTrace,
            format!("no decision or outcome with correlation id {id} is visible to this token"),
        ));
    }
    let mut trace = Trace {
        correlation_id: id.to_string(),
        decisions: Vec::new(),
        outcomes: Vec::new(),
        skipped,
    };
    for record in records {
        match record {
            Record::Decision(d) => trace.decisions.push(d.into()),
            Record::Outcome(o) => trace.outcomes.push(o.into()),
        }
    }
    Ok(Json(trace))
}
