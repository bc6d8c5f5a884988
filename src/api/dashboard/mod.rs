//! The web dashboard, served at `/` on the API's listener: campaigns, one campaign's charts,
//! decisions and their traces, the approval queue, orders and connectors, and the agents.
//!
//! It is a view over the API and holds no logic of its own: every page calls the same handler
//! functions the `/v1` routes run, with the signed-in token as the caller, so a tenant sees here
//! exactly what its token sees there and an answer given here is the API's answer. Pages are
//! rendered on the server with maud (checked at compile time, escaped by default); charts are SVG
//! drawn on the server (`charts`); the stylesheet and the one small script are compiled into the
//! binary, so the dashboard needs no CDN and works offline. The script keeps pages live by asking
//! for the same page every few seconds with `If-None-Match`: an unchanged page costs a 304.
//!
//! # Layout
//!
//! - `session`: sign-in sessions, their cookie and CSRF tokens. `sign_in`: the sign-in and
//!   sign-out routes.
//! - `page`: the frame every page shares, the response headers (CSP, ETag) and the notices.
//! - `charts`: SVG line and bar charts.
//! - one file per page: `campaigns`, `campaign`, `decisions`, `approvals`, `orders`, `agents`.

mod agents;
mod approvals;
mod campaign;
mod campaigns;
pub mod charts;
mod decisions;
mod orders;
mod page;
pub mod session;
mod sign_in;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::ApiState;
use super::approvals::{ApprovalView, list_approvals};
use super::auth::Caller;
use super::error::ApiError;
pub use page::Page;
use session::{Notice, Session};

/// Pages of pending requests read at most for the counts (a thousand each).
const PENDING_PAGES: usize = 20;

/// The header the live script sends with its refreshes (see [`session::Sessions::resume`]).
const LIVE_HEADER: &str = "x-campaignd-live";

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/live.js");
const ICON: &str = include_str!("assets/icon.svg");

/// The dashboard's routes, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(campaigns::page))
        .route("/login", get(sign_in::form).post(sign_in::submit))
        .route("/logout", post(sign_in::sign_out))
        .route("/campaigns/{id}", get(campaign::page))
        .route("/decisions", get(decisions::timeline))
        .route("/decisions/{id}", get(decisions::trace))
        .route("/approvals", get(approvals::queue))
        .route("/approvals/{id}/answer", post(approvals::answer))
        .route("/orders", get(orders::page))
        .route("/orders/{key}/{change}", post(orders::change))
        .route("/agents", get(agents::page))
        .route("/agents/{name}/revive", post(agents::revive))
        .route("/assets/style.css", get(style))
        .route("/assets/live.js", get(script))
        .route("/assets/icon.svg", get(icon))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The query a `/v1` list handler is called with: the `fixed` pairs, then each of `passed` that
/// the page's own query holds with a value.
fn api_query(
    fixed: &[(&str, &str)],
    params: &BTreeMap<String, String>,
    passed: &[&str],
) -> BTreeMap<String, String> {
    let mut query: BTreeMap<String, String> = fixed
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for name in passed {
        if let Some(value) = params.get(*name).filter(|v| !v.is_empty()) {
            query.insert((*name).to_owned(), value.clone());
        }
    }
    query
}

/// Every pending approval request the viewer sees (of `campaign` only, when given), following
/// the API's pages.
async fn list_all_pending(
    state: &ApiState,
    viewer: &Viewer,
    campaign: Option<&str>,
) -> Result<Vec<ApprovalView>, ApiError> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..PENDING_PAGES {
        let mut query = BTreeMap::from([
            ("state".to_owned(), "pending".to_owned()),
            ("limit".to_owned(), "1000".to_owned()),
        ]);
        if let Some(campaign) = campaign {
            query.insert("campaign".to_owned(), campaign.to_owned());
        }
        if let Some(cursor) = cursor.take() {
            query.insert("cursor".to_owned(), cursor);
        }
        let page = list_approvals(
            State(state.clone()),
            viewer.caller.clone(),
            Ok(Query(query)),
        )
        .await?
        .0;
        all.extend(page.approvals);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(all)
}

/// A signed-in browser: its caller, resolved again from the settings on every request.
pub struct Viewer {
    pub caller: Caller,
    pub session_id: String,
    pub session: Session,
}

impl Viewer {
    /// Whether `sent` is this session's CSRF token (every form sends it as `csrf`).
    fn csrf_ok(&self, sent: &str) -> bool {
        session::same(&self.session.csrf, sent)
    }

    /// Leaves `text` for the next page this browser opens.
    fn notify(&self, state: &ApiState, ok: bool, text: impl Into<String>) {
        state.sessions().notify(
            &self.session_id,
            Notice {
                ok,
                text: text.into(),
            },
        );
    }

    /// What a form post answers when its CSRF token is not this session's: nothing is done.
    fn refuse_forgery(&self) -> Response {
        (
            StatusCode::FORBIDDEN,
            "the form's CSRF token is not this session's: nothing was done. Reload the page and try again.",
        )
            .into_response()
    }
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let settings = state.settings();
        let polled = parts.headers.contains_key(LIVE_HEADER);
        let resumed = session::cookie(&parts.headers, session::COOKIE).and_then(|id| {
            state
                .sessions()
                .resume(
                    &settings.config.api.tokens,
                    id,
                    std::time::Instant::now(),
                    polled,
                )
                .map(|(session, caller)| (id.to_owned(), session, caller))
        });
        match resumed {
            Some((session_id, session, caller)) => Ok(Viewer {
                caller,
                session_id,
                session,
            }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}
