//! `GET /v1/campaigns/{id}/decisions`: a campaign's decisions in time order, paged, filtered by
//! agent and time. Also the JSON views of decisions and outcomes that the trace route shares.
//!
//! The campaign must be configured and belong to the caller's tenant; the knowledge-base query is
//! then scoped to that tenant, so even a record filed under the wrong campaign id cannot leak.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::kb::{Decision, Outcome, Scope};

/// The page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;

/// A page size from the query: a whole number from 1 to [`MAX_LIMIT`].
pub fn limit(value: &str) -> Result<usize, ApiError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::bad_parameter(format!(
                "`limit` = `{value}` must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })
}

/// One option an agent weighed.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlternativeView {
    #[schema(value_type = Object)]
    pub option: serde_json::Value,
    pub score: f64,
    pub note: Option<String>,
}

/// A decision with everything that went into it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    #[schema(value_type = String)]
    pub id: Uuid,
    pub agent: String,
    pub tenant: String,
    pub campaign: Option<String>,
    #[schema(value_type = String)]
    pub correlation_id: Uuid,
    #[schema(value_type = Option<String>)]
    pub causation_id: Option<Uuid>,
    pub kind: String,
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    pub alternatives: Vec<AlternativeView>,
    #[schema(value_type = Object)]
    pub choice: serde_json::Value,
    pub reason: String,
    pub confidence: f64,
    /// In the campaign's time (the daemon's clock, which `[clock]` may run faster than the world).
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: DateTime<Utc>,
    /// The wall-clock time the decision was recorded; `null` for a decision written by
    /// campaignd 0.1.0, which did not keep it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl From<Decision> for DecisionView {
    fn from(d: Decision) -> Self {
        Self {
            id: d.id.0,
            agent: d.agent.0,
            tenant: d.tenant.0,
            campaign: d.campaign.map(|c| c.0),
            correlation_id: d.correlation_id.0,
            causation_id: d.causation_id.map(|m| m.0),
            kind: d.kind,
            inputs: d.inputs,
            alternatives: d
                .alternatives
                .into_iter()
                .map(|a| AlternativeView {
                    option: a.option,
                    score: a.score,
                    note: a.note,
                })
                .collect(),
            choice: d.choice,
            reason: d.reason,
            confidence: d.confidence,
            decided_at: d.decided_at,
            recorded_at: d.recorded_at,
        }
    }
}

/// Observed performance, linked to the decisions it is evidence for.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    #[schema(value_type = String)]
    pub id: Uuid,
    pub tenant: String,
    pub campaign: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub decisions: Vec<Uuid>,
    #[schema(value_type = Option<String>)]
    pub correlation_id: Option<Uuid>,
    pub kind: String,
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    /// In the campaign's time: the end of the observed window.
    #[schema(value_type = String, format = DateTime)]
    pub observed_at: DateTime<Utc>,
    /// The wall-clock time the outcome was recorded; `null` for an outcome written by
    /// campaignd 0.1.0.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl From<Outcome> for OutcomeView {
    fn from(o: Outcome) -> Self {
        Self {
            id: o.id.0,
            tenant: o.tenant.0,
            campaign: o.campaign.map(|c| c.0),
            decisions: o.decisions.into_iter().map(|d| d.0).collect(),
            correlation_id: o.correlation_id.map(|c| c.0),
            kind: o.kind,
            metrics: o.metrics,
            observed_at: o.observed_at,
            recorded_at: o.recorded_at,
        }
    }
}

/// One page of a campaign's decisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionPage {
    pub campaign: String,
    pub decisions: Vec<DecisionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Stored records that could not be read and were left out (the daemon log names them).
    pub skipped: usize,
}

/// The query parameters, checked one by one so an error names the parameter.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    limit: usize,
    cursor: Option<Uuid>,
    agent: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

fn filter(params: BTreeMap<String, String>) -> Result<Filter, ApiError> {
    let mut filter = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    let time = |name: &str, value: &str| {
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                ApiError::bad_parameter(format!(
                    "`{name}` = `{value}` is not an RFC 3339 time like 2026-11-25T09:00:00Z: {e}"
                ))
            })
    };
    for (name, value) in &params {
        match name.as_str() {
            "limit" => filter.limit = limit(value)?,
            "cursor" => {
                filter.cursor = Some(Uuid::parse_str(value).map_err(|_| {
                    ApiError::bad_parameter(format!(
                        "`cursor` = `{value}` is not a cursor this API returned"
                    ))
                })?);
            }
            "agent" => filter.agent = Some(value.clone()),
            "from" => filter.from = Some(time("from", value)?),
            "to" => filter.to = Some(time("to", value)?),
            other => {
                return Err(ApiError::bad_parameter(format!(
                    "unknown query parameter `{other}`; expected limit, cursor, agent, from or to"
                )));
            }
        }
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(ApiError::bad_parameter(format!(
            "`from` ({from}) must be before `to` ({to})"
        )));
    }
    Ok(filter)
}

/// A campaign's decisions in time order, `limit` at a time.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/decisions",
    tag = "decisions",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The campaign id, as in config/campaigns/<id>.toml"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("agent" = Option<String>, Query, description = "Only this agent's decisions"),
        ("from" = Option<String>, Query, description = "Decided at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, description = "Decided before this RFC 3339 time")
    ),
    responses(
        (status = 200, description = "One page of decisions", body = DecisionPage),
        (status = 400, description = "A query parameter is invalid (it is named)", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such campaign for this token", body = ErrorBody)
    )
)]
pub async fn list_decisions(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<DecisionPage>, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_parameter(format!("the query string: {}", e.body_text())))?;
    let filter = filter(params)?;
    let settings = state.settings();
    let campaign = settings
        .campaigns
        .iter()
        .find(|c| c.id.as_str() == id)
        // Another tenant's campaign answers exactly like a missing one: its existence is not
        // this caller's business.
        .filter(|c| caller.admits(&c.tenant))
        .ok_or_else(|| ApiError::unknown_campaign(&id))?;
    let scope = match &caller {
        Caller::Operator { .. } => Scope::AllTenants,
        Caller::Tenant { .. } => Scope::Tenant(campaign.tenant.clone()),
    };
    let campaign_id = campaign.id.clone();
    let kb = state.kb().clone();
    let found = tokio::task::spawn_blocking(move || kb.decisions_by_campaign(&scope, &campaign_id))
        .await
        .map_err(|e| ApiError::internal("the decisions query stopped", e))?
        .map_err(|e| ApiError::internal("the knowledge base could not be read", e))?;
    let skipped = found.skipped.len();
    let matching: Vec<Decision> = found
        .records
        .into_iter()
        .filter(|d| caller.admits(&d.tenant))
        .filter(|d| {
            filter
                .agent
                .as_deref()
                .is_none_or(|a| d.agent.as_str() == a)
        })
        .filter(|d| filter.from.is_none_or(|from| d.decided_at >= from))
        .filter(|d| filter.to.is_none_or(|to| d.decided_at < to))
        .collect();
    let start = match filter.cursor {
        None => 0,
        Some(after) => matching
            .iter()
            .position(|d| d.id.0 == after)
            .map(|at| at + 1)
            .ok_or_else(|| {
                ApiError::bad_parameter(format!(
                    "`cursor` = `{after}` is not a decision of this listing (was the filter changed?)"
                ))
            })?,
    };
    let page: Vec<Decision> = matching.into_iter().skip(start).collect();
    let more = page.len() > filter.limit;
    let page: Vec<DecisionView> = page
        .into_iter()
        .take(filter.limit)
        .map(DecisionView::from)
        .collect();
    let next_cursor = if more {
        page.last().map(|d| d.id.to_string())
    } else {
        None
    };
    Ok(Json(DecisionPage {
        campaign: id,
        decisions: page,
        next_cursor,
        skipped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_checked_by_name() {
        assert_eq!(filter(params(&[])).unwrap().limit, DEFAULT_LIMIT);
        let f = filter(params(&[("limit", "5"), ("agent", "strategy")])).unwrap();
        assert_eq!((f.limit, f.agent.as_deref()), (5, Some("strategy")));
        for (pairs, needle) in [
            (&[("limit", "0")][..], "`limit`"),
            (&[("limit", "many")][..], "`limit`"),
            (&[("from", "yesterday")][..], "`from`"),
            (&[("cursor", "x")][..], "`cursor`"),
            (&[("colour", "red")][..], "`colour`"),
            (
                &[
                    ("from", "2026-01-02T00:00:00Z"),
                    ("to", "2026-01-01T00:00:00Z"),
                ][..],
                "`from`",
            ),
        ] {
            let err = filter(params(pairs)).unwrap_err();
            assert_eq!(err.code, crate::api::error::ErrorCode::InvalidParameter);
            assert!(err.message.contains(needle), "{}", err.message);
        }
    }
}
