//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its work: the knowledge base
//! answers reads and completes writes, and every agent the configuration enables is running). Neither needs a token, so
//! neither may reveal tenant data: readiness reasons name agents and states only.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiState;
use crate::kb::{DecisionId, Scope};
use crate::runtime::AgentState;

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// The readiness answer, with every reason it is not ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Empty when ready; otherwise one sentence per problem.
    pub reasons: Vec<String>,
}

/// Liveness: 200 while the process serves HTTP. No token needed.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// How long `/readyz` waits for its probe write. A healthy flush takes milliseconds; a probe still
/// on its way after this goes on in the background, and readiness fails once it (or any write)
/// has waited [`STALLED_AFTER`](crate::kb::STALLED_AFTER).
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// Readiness: 200 only when the knowledge base answers reads and completes writes and every
/// enabled agent is running, otherwise 503 with the reasons. No token needed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `reasons` says why", body = Readiness)
    )
)]
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let writes = state.kb().write_readiness(PROBE_WAIT).await;
    let mut reasons = tokio::task::spawn_blocking(move || reasons(&state))
        .await
        .unwrap_or_else(|err| vec![format!("the readiness check itself failed: {err}")]);
    if let Err(reason) = writes {
        reasons.insert(0, reason);
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready: reasons.is_empty(),
            reasons,
        }),
    )
}

fn reasons(state: &ApiState) -> Vec<String> {
    let mut reasons = Vec::new();
    // A point read of an id that never exists: cheap, and it goes through sled like every query.
    if let Err(err) = state
        .kb()
        .decision(&Scope::AllTenants, DecisionId(Uuid::nil()))
    {
        reasons.push(format!("the knowledge base does not answer reads: {err}"));
    }
    let settings = state.settings();
    for definition in settings.enabled_agents() {
        match state.runtime().agent_status(definition.name.as_str()) {
            None => reasons.push(format!(
                "agent `{}` is enabled in {} but not running (no such agent is built into this binary, or it was added since start; a restart starts it)",
                definition.name, definition.file
            )),
            Some(status) if status.state != AgentState::Running => {
                let mut reason = format!("agent `{}` is {}", status.name, status.state);
                if let Some(error) = &status.last_error {
                    reason.push_str(&format!(" (last error: {error})"));
                }
                reasons.push(reason);
            }
            Some(_) => {}
        }
    }
    reasons.extend(failing_connectors(state));
    reasons
}

/// A connector is failing when it has a dead-lettered order, or a pending one that failed
/// [`FAILING_AFTER`] times in a row; one reason per connector, with its worst order.
fn failing_connectors(state: &ApiState) -> Vec<String> {
    let outbox = match crate::campaign::outbox::Outbox::open(state.kb()) {
        Ok(outbox) => outbox,
        Err(err) => return vec![format!("the outbox cannot be opened: {err}")],
    };
    let (pending, dead) = match (outbox.pending(), outbox.all_dead_letters()) {
        (Ok(p), Ok(d)) => (p, d),
        (Err(err), _) | (_, Err(err)) => return vec![format!("the outbox cannot be read: {err}")],
    };
    let mut worst: std::collections::BTreeMap<&str, &crate::campaign::outbox::Entry> =
        std::collections::BTreeMap::new();
    for entry in dead
        .iter()
        .chain(pending.iter().filter(|e| e.failures >= FAILING_AFTER))
    {
        worst.entry(entry.connector.as_str()).or_insert(entry);
    }
    worst
        .into_iter()
        .map(|(connector, entry)| {
            format!(
                "connector `{connector}` is failing: order {} of campaign {} is {} after {} failed attempts ({})",
                entry.order.key,
                entry.order.campaign,
                entry.state.as_str(),
                entry.failures,
                entry.last_error.as_deref().unwrap_or("no reason recorded")
            )
        })
        .collect()
}

/// Failed attempts in a row after which a pending order's connector counts as failing.
pub const FAILING_AFTER: u32 = 3;
