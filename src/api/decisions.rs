//! `GET /v1/campaigns/{id}/decisions`: a campaign's decisions in time order, paged, filtered by
//! agent, kind and time; `GET /v1/decisions/{id}`: one decision with the outcomes recorded against
//! it and the decisions its inputs cite. Also the JSON views of decisions and outcomes that the
//! trace route shares.
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
use super::error::{ApiError, ErrorBody, ErrorCode};
use crate::kb::{Decision, DecisionId, Outcome, Scope};

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
    kind: Option<String>,
    /// `order=desc`: the latest decision first.
    newest_first: bool,
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
            "kind" => filter.kind = Some(value.clone()),
            "order" => {
                filter.newest_first = match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(ApiError::bad_parameter(format!(
                            "`order` = `{value}` must be `asc` (oldest first, the default) or `desc`"
                        )));
                    }
                }
            }
            "from" => filter.from = Some(time("from", value)?),
            "to" => filter.to = Some(time("to", value)?),
            other => {
                return Err(ApiError::bad_parameter(format!(
                    "unknown query parameter `{other}`; expected limit, cursor, agent, kind, order, from or to"
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
        ("kind" = Option<String>, Query, description = "Only decisions of this kind (`plan`, `allocation`, …)"),
        ("order" = Option<String>, Query, description = "`asc` (oldest first, the default) or `desc`"),
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
    let mut matching: Vec<Decision> = found
        .records
        .into_iter()
        .filter(|d| caller.admits(&d.tenant))
        .filter(|d| {
            filter
                .agent
                .as_deref()
                .is_none_or(|a| d.agent.as_str() == a)
        })
        .filter(|d| filter.kind.as_deref().is_none_or(|k| d.kind == k))
        .filter(|d| filter.from.is_none_or(|from| d.decided_at >= from))
        .filter(|d| filter.to.is_none_or(|to| d.decided_at < to))
        .collect();
    if filter.newest_first {
        matching.reverse();
    }
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

/// How many cited decisions [`get_decision`] reads at most (an allocation cites a handful of
/// outcomes; a record citing thousands is shown with its first ones).
const MAX_CITED: usize = 100;

/// Outcomes a decision's detail holds at most, the latest: an experiment's outcomes grow by one
/// per channel and day for as long as it runs.
const MAX_OUTCOMES: usize = 100;

/// One decision and its links: what was observed because of it, and what it built on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionDetail {
    pub decision: DecisionView,
    /// The latest outcomes recorded against it (at most 100), in time order: the feedback loop.
    pub outcomes: Vec<OutcomeView>,
    /// How many outcomes are recorded against it in all.
    pub outcomes_total: usize,
    /// The decisions its inputs name (a plan, an experiment, a request), in time order; at most
    /// 100.
    pub cited: Vec<DecisionView>,
}

/// One decision with the outcomes recorded against it and the decisions its inputs cite.
#[utoipa::path(
    get,
    path = "/v1/decisions/{id}",
    tag = "decisions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The decision's id (a UUID)")),
    responses(
        (status = 200, description = "The decision and its links", body = DecisionDetail),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such decision for this token", body = ErrorBody)
    )
)]
pub async fn get_decision(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DecisionDetail>, ApiError> {
    let unknown = || {
        ApiError::new(
            ErrorCode::UnknownDecision,
            format!("no decision `{id}` is visible to this token"),
        )
    };
    let wanted =
        DecisionId(Uuid::parse_str(&id).map_err(|_| {
            ApiError::bad_parameter(format!("`{id}` is not a decision id (a UUID)"))
        })?);
    let scopes = caller.scopes(&state.settings());
    let kb = state.kb().clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut found = None;
        for scope in scopes {
            if let Some(decision) = kb.decision(&scope, wanted)? {
                found = Some((scope, decision));
                break;
            }
        }
        let Some((scope, decision)) = found else {
            return Ok(None);
        };
        let outcomes = kb.outcomes_of(&scope, wanted)?.records;
        let mut cited = Vec::new();
        for id in uuids_in(&decision.inputs).into_iter().take(MAX_CITED) {
            if id != wanted.0
                && let Some(d) = kb.decision(&scope, DecisionId(id))?
            {
                cited.push(d);
            }
        }
        Ok::<_, crate::kb::KbError>(Some((decision, outcomes, cited)))
    })
    .await
    .map_err(|e| ApiError::internal("the decision query stopped", e))?
    .map_err(|e| ApiError::internal("the knowledge base could not be read", e))?;
    let (decision, outcomes, mut cited) = found
        .filter(|(d, _, _)| caller.admits(&d.tenant))
        .ok_or_else(unknown)?;
    cited.retain(|d| caller.admits(&d.tenant));
    cited.sort_by_key(|d| (d.decided_at, d.id.0));
    let mut outcomes: Vec<OutcomeView> = outcomes
        .into_iter()
        .filter(|o| caller.admits(&o.tenant))
        .map(OutcomeView::from)
        .collect();
    let outcomes_total = outcomes.len();
    outcomes.drain(..outcomes_total.saturating_sub(MAX_OUTCOMES));
    Ok(Json(DecisionDetail {
        decision: decision.into(),
        outcomes,
        outcomes_total,
        cited: cited.into_iter().map(DecisionView::from).collect(),
    }))
}

/// Every distinct UUID among the strings of `value`, in the order met: the ids a record cites.
/// An `outcomes` field names outcomes, not decisions, and is passed over: a budget move citing
/// hundreds of them would otherwise use up the lookups before the plan it built on.
fn uuids_in(value: &serde_json::Value) -> Vec<Uuid> {
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::String(s) => {
                if let Ok(id) = Uuid::parse_str(s)
                    && seen.insert(id)
                {
                    found.push(id);
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter().rev()),
            serde_json::Value::Object(fields) => {
                let values: Vec<_> = fields
                    .iter()
                    .filter(|(name, _)| name.as_str() != "outcomes")
                    .map(|(_, value)| value)
                    .collect();
                stack.extend(values.into_iter().rev());
            }
            _ => {}
        }
    }
    found
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
    fn the_ids_a_record_cites_are_found_wherever_they_stand() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let outcome = Uuid::now_v7();
        let inputs = serde_json::json!({
            "plan": a.to_string(),
            "outcomes": [outcome.to_string(), a.to_string()],
            "step": "split/day/3/sms",
            "nested": { "deep": [{ "id": b.to_string() }, { "again": a.to_string() }] },
        });
        assert_eq!(
            uuids_in(&inputs),
            vec![b, a],
            "each once, outcomes passed over"
        );
    }

    #[test]
    fn parameters_are_checked_by_name() {
        assert_eq!(filter(params(&[])).unwrap().limit, DEFAULT_LIMIT);
        let f = filter(params(&[("limit", "5"), ("agent", "strategy")])).unwrap();
        assert_eq!((f.limit, f.agent.as_deref()), (5, Some("strategy")));
        let f = filter(params(&[("kind", "plan"), ("order", "desc")])).unwrap();
        assert_eq!((f.kind.as_deref(), f.newest_first), (Some("plan"), true));
        for (pairs, needle) in [
            (&[("limit", "0")][..], "`limit`"),
            (&[("limit", "many")][..], "`limit`"),
            (&[("from", "yesterday")][..], "`from`"),
            (&[("cursor", "x")][..], "`cursor`"),
            (&[("order", "sideways")][..], "`order`"),
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
