//! A campaign's orders and what became of each (`GET /v1/campaigns/{id}/orders`), and an
//! operator's retry or cancel of one that could not be delivered (`POST /v1/orders/{key}/retry`,
//! `/cancel`), which lifts the hold it put on its campaign: the campaign's held day runs again at
//! once. The outbox lives in the campaign layer; this module reads it and passes the operator's
//! word on, logged with the token's name.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::campaigns::visible_campaign;
use super::error::{ApiError, ErrorBody, ErrorCode, JsonBody};
use crate::campaign::outbox::{ChangeError, Entry, OrderState, Outbox};

const DEFAULT_LIMIT: usize = 100;

/// One page of a campaign's orders, in day order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    /// Each: `order` (key, step, channel, day, currency, body), `connector`, `state`
    /// (`pending`, `delivered`, `dead_lettered`, `cancelled`), `failures`, `last_error`,
    /// `written_at`, `next_attempt_at`, `delivered_at`, `operator_note`.
    #[schema(value_type = Vec<Object>)]
    pub orders: Vec<Entry>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// `{"reason": "..."}`: why the order is retried or cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderChange {
    pub reason: String,
}

fn outbox(state: &ApiState) -> Result<Outbox, ApiError> {
    Outbox::open(state.kb()).map_err(|e| ApiError::internal("the outbox cannot be opened", e))
}

/// The campaign's orders.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The campaign id"),
        ("state" = Option<String>, Query, description = "Only this state: pending, delivered, dead_lettered or cancelled"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "The orders", body = OrderList),
        (status = 400, description = "A query parameter is invalid (it is named)", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such campaign for this token", body = ErrorBody)
    )
)]
pub async fn list_orders(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<OrderList>, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_parameter(format!("the query string: {}", e.body_text())))?;
    let goal = visible_campaign(&state, &caller, &id)?;
    let wanted = match params.get("state") {
        Some(s) => Some(OrderState::parse(s).ok_or_else(|| {
            let states: Vec<&str> = OrderState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_parameter(format!(
                "`state` = `{s}` must be one of {}",
                states.join(", ")
            ))
        })?),
        None => None,
    };
    let limit = match params.get("limit") {
        Some(value) => super::decisions::limit(value)?,
        None => DEFAULT_LIMIT,
    };
    let outbox = outbox(&state)?;
    let read = |e| ApiError::internal("the outbox cannot be read", e);
    let mut after = match params.get("cursor") {
        Some(key) => Some(
            outbox
                .get(key)
                .map_err(read)?
                .filter(|e| e.order.campaign == goal.id && e.order.tenant == goal.tenant)
                .ok_or_else(|| {
                    ApiError::bad_parameter(format!(
                        "`cursor` = `{key}` is not a cursor this API returned for campaign `{id}`"
                    ))
                })?,
        ),
        None => None,
    };
    // Filtered by state while paging, so a page is full unless the orders run out.
    let mut page = Vec::new();
    loop {
        let chunk = outbox
            .of_campaign(&goal.tenant, &goal.id, after.as_ref(), limit + 1)
            .map_err(read)?;
        let exhausted = chunk.len() <= limit;
        after = chunk.last().cloned();
        page.extend(
            chunk
                .into_iter()
                .filter(|e| wanted.is_none_or(|w| e.state == w)),
        );
        if page.len() > limit || exhausted {
            break;
        }
    }
    let next_cursor = (page.len() > limit).then(|| page[limit - 1].order.key.clone());
    page.truncate(limit);
    Ok(Json(OrderList {
        orders: page,
        next_cursor,
    }))
}

fn reason_of(request: Option<OrderChange>, what: &str) -> Result<String, ApiError> {
    request
        .map(|r| r.reason.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("field `reason` is missing or empty: send {{\"reason\": \"why the order is {what}\"}}"),
            )
        })
}

fn change_error(err: ChangeError) -> ApiError {
    match err {
        ChangeError::Unknown(key) => {
            ApiError::new(ErrorCode::UnknownOrder, format!("no order `{key}`"))
        }
        refused @ ChangeError::Refused { .. } => {
            ApiError::new(ErrorCode::OrderSettled, refused.to_string())
        }
        ChangeError::Kb(e) => ApiError::internal("the outbox cannot be changed", e),
    }
}

/// Delivers a pending or dead-lettered order again now, its attempts counted from zero.
#[utoipa::path(
    post,
    path = "/v1/orders/{key}/retry",
    tag = "orders",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The order's key, as the orders list names it")),
    request_body(content = OrderChange, content_type = "application/json"),
    responses(
        (status = 200, description = "Pending again; the held campaign day runs again at once", body = Object),
        (status = 400, description = "Malformed body, or no `reason`", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Not an operator's token", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order was delivered or cancelled already", body = ErrorBody)
    )
)]
pub async fn retry_order(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    JsonBody(request): JsonBody<Option<OrderChange>>,
) -> Result<Json<Entry>, ApiError> {
    change(&state, &caller, &key, request, Change::Retry).await
}

/// Gives a pending or dead-lettered order up: it is never delivered.
#[utoipa::path(
    post,
    path = "/v1/orders/{key}/cancel",
    tag = "orders",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The order's key, as the orders list names it")),
    request_body(content = OrderChange, content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled; the held campaign day runs again at once", body = Object),
        (status = 400, description = "Malformed body, or no `reason`", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Not an operator's token", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order was delivered or cancelled already", body = ErrorBody)
    )
)]
pub async fn cancel_order(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    JsonBody(request): JsonBody<Option<OrderChange>>,
) -> Result<Json<Entry>, ApiError> {
    change(&state, &caller, &key, request, Change::Cancel).await
}

#[derive(Clone, Copy, PartialEq)]
enum Change {
    Retry,
    Cancel,
}

/// An operator's retry or cancel, logged with the token's name; the order's campaign runs its
/// held day again at once.
async fn change(
    state: &ApiState,
    caller: &Caller,
    key: &str,
    request: Option<OrderChange>,
    change: Change,
) -> Result<Json<Entry>, ApiError> {
    let (verb, done) = match change {
        Change::Retry => ("retry", "retried"),
        Change::Cancel => ("cancel", "cancelled"),
    };
    if !caller.is_operator() {
        return Err(ApiError::operator_only(&format!(
            "POST /v1/orders/{{key}}/{verb}"
        )));
    }
    let why = reason_of(request, done)?;
    let note = format!("{done} by {}: {why}", caller.name());
    let outbox = outbox(state)?;
    let entry = match change {
        Change::Retry => {
            outbox
                .retry(key, note, crate::runtime::Clock::wall_now())
                .await
        }
        Change::Cancel => outbox.cancel(key, note).await,
    }
    .map_err(change_error)?;
    tracing::info!(token_name = caller.name(), order = %key, campaign = %entry.order.campaign, %why, "order {done} through the API");
    state.wake().campaign(&entry.order.campaign);
    Ok(Json(entry))
}
