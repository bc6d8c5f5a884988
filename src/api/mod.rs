//! The HTTP ops API: health and readiness probes, Prometheus metrics, agent status, campaigns and
//! their commands, observation ingestion, a campaign's decisions, causal traces, reload, and the
//! OpenAPI document that describes all of them.
//!
//! Every route is registered through [`utoipa_axum`], so the OpenAPI document is generated from
//! the same declarations the router serves and cannot drift from it. `/healthz`, `/readyz` and
//! `/metrics` need no token; everything under `/v1` needs a bearer token (see [`auth`]). Errors
//! are JSON with a stable code (see [`error`]), and no request, however malformed, stops the
//! server. This module serves and translates; it must never hold business logic or write decisions
//! itself (observations go through the market layer's ingestion path; the only thing it stores is
//! its own idempotency keys).
//!
//! # Layout
//!
//! - `auth`: tokens, tenants, constant-time comparison. `error`: the error body and JSON bodies.
//!   `codes`: every error and item-problem code, and `docs/error-codes.md` rendered from them.
//! - `health`: `/healthz`, `/readyz`. `metrics`: `/metrics` and the Prometheus recorder.
//! - `agents`, `campaigns` (list, detail, commands), `approvals` (the queue, answers, autonomy),
//!   `observations`, `consents` (consent in, a subject's records, erasure), `decisions`, `traces`, `reload`: the `/v1` routes. `idempotency`: the `Idempotency-Key` store.
//!   `openapi`: `/v1/openapi.json`. `server`: the connection loop and its bounds (timeouts, the
//!   connection limit, shutdown).
//!
//! Adding a route: write the handler with `#[utoipa::path]` in its own file, add it to
//! [`router`] with `routes!`, and list its schemas' owner in `openapi::ApiDoc` if it has any.

pub mod agents;
pub mod approvals;
pub mod auth;
pub mod campaigns;
pub mod codes;
pub mod consents;
pub mod dashboard;
pub mod decisions;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod observations;
pub mod openapi;
pub mod orders;
pub mod reload;
pub mod server;
pub mod traces;

use crate::campaign::{CampaignBoard, Wake};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::kb::KnowledgeBase;
use crate::runtime::Runtime;
use crate::settings::{LiveSettings, Problems, Settings};
use error::{ApiError, ErrorCode};
pub use reload::{AgentReload, ReloadReport};

/// Re-reads the configuration; `true` asks for a check only (nothing applied).
pub type ReloadFn = Arc<dyn Fn(bool) -> Result<ReloadReport, Problems> + Send + Sync>;

const IDEMPOTENCY_LOCKS: usize = 64;

/// What the handlers share: cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    kb: KnowledgeBase,
    settings: LiveSettings,
    /// The latest report of every campaign, filled by the campaign loop.
    board: CampaignBoard,
    /// Runs a campaign's held day again once a person has answered it.
    wake: Wake,
    reload: ReloadFn,
    body_limit: usize,
    /// How long a request may take to send its body (a change needs a restart).
    body_timeout: Duration,
    openapi: OnceLock<String>,
    metrics: metrics::Metrics,
    /// One is held while a request with an `Idempotency-Key` looks its key up, runs and stores
    /// it; the key picks which, so different keys (and tenants) rarely wait for each other.
    idempotency: [tokio::sync::Mutex<()>; IDEMPOTENCY_LOCKS],
    /// When expired idempotency keys were last swept out (`None`: not since the start).
    idempotency_swept: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// The dashboard's signed-in browsers.
    sessions: dashboard::session::Sessions,
}

impl ApiState {
    pub fn new(
        runtime: Runtime,
        kb: KnowledgeBase,
        settings: LiveSettings,
        board: CampaignBoard,
        wake: Wake,
        reload: ReloadFn,
    ) -> Self {
        let body_limit = settings.current().config.api.body_limit_bytes;
        let body_timeout = Duration::from_secs(settings.current().config.api.body_timeout_secs);
        Self {
            inner: Arc::new(Inner {
                runtime,
                kb,
                settings,
                board,
                wake,
                reload,
                body_limit,
                body_timeout,
                openapi: OnceLock::new(),
                metrics: metrics::Metrics::get(),
                idempotency: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
                idempotency_swept: std::sync::Mutex::new(None),
                sessions: Default::default(),
            }),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The campaign board the loop reports to.
    pub fn board(&self) -> &CampaignBoard {
        &self.inner.board
    }

    /// Names the campaigns whose held day the loop runs again at once.
    pub fn wake(&self) -> &Wake {
        &self.inner.wake
    }

    pub fn kb(&self) -> &KnowledgeBase {
        &self.inner.kb
    }

    /// The settings in force right now.
    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings.current()
    }

    /// The dashboard's sign-in sessions.
    pub fn sessions(&self) -> &dashboard::session::Sessions {
        &self.inner.sessions
    }

    /// The body limit the server was started with (a change needs a restart).
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// The body timeout the server was started with (a change needs a restart).
    pub fn body_timeout(&self) -> Duration {
        self.inner.body_timeout
    }

    /// Whether the expired idempotency keys are due to be swept out at `now` (at the first stored
    /// key after a start, then hourly); if so, `now` counts as the sweep.
    fn idempotency_sweep_due(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let mut swept = self
            .inner
            .idempotency_swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = swept.is_none_or(|at| now - at >= idempotency::SWEEP_EVERY);
        if due {
            *swept = Some(now);
        }
        due
    }
}

/// Every route, declared once: the router serves them and the OpenAPI document lists them.
fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(agents::list_agents))
        .routes(routes!(agents::revive_agent))
        .routes(routes!(campaigns::list_campaigns))
        .routes(routes!(campaigns::get_campaign))
        .routes(routes!(campaigns::command))
        .routes(routes!(approvals::list_approvals))
        .routes(routes!(approvals::get_approval))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(approvals::set_autonomy))
        .routes(routes!(observations::ingest_observations))
        .routes(routes!(consents::record_consents))
        .routes(routes!(consents::subject_consents, consents::erase_subject))
        .routes(routes!(orders::list_orders))
        .routes(routes!(orders::retry_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(decisions::list_decisions))
        .routes(routes!(decisions::get_decision))
        .routes(routes!(traces::trace))
        .routes(routes!(reload::reload))
        .routes(routes!(openapi::document))
}

/// The router with every route, and the OpenAPI document generated from the same declarations.
pub fn router(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let body_limit = state.body_limit();
    let (router, api) = routes().split_for_parts();
    let document = serde_json::to_string(&api).unwrap_or_else(|err| {
        tracing::error!(%err, "the OpenAPI document does not serialize");
        String::from("{}")
    });
    let _ = state.inner.openapi.set(document);
    let query = Arc::new(QueryParameters::of(&api));
    let router = router
        .merge(dashboard::routes())
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(query, screen))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    (router, api)
}

/// The query parameters each route declares in the OpenAPI document, by method and path
/// template: the one list a request's parameters are checked against, so every route refuses an
/// unknown parameter alike and the document cannot promise one the server refuses.
struct QueryParameters(BTreeMap<(String, String), BTreeSet<String>>);

impl QueryParameters {
    fn of(api: &utoipa::openapi::OpenApi) -> Self {
        use utoipa::openapi::path::ParameterIn;
        let mut declared = BTreeMap::new();
        for (path, item) in &api.paths.paths {
            let operations = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let names = operation
                    .parameters
                    .iter()
                    .chain(&item.parameters)
                    .flatten()
                    .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
                    .map(|p| p.name.clone())
                    .collect();
                declared.insert((method.to_owned(), path.clone()), names);
            }
        }
        Self(declared)
    }

    /// The parameters `method` on `route` takes (HEAD is GET's).
    fn allowed(&self, method: &axum::http::Method, route: &str) -> Option<&BTreeSet<String>> {
        let method = if method == axum::http::Method::HEAD {
            "GET"
        } else {
            method.as_str()
        };
        self.0.get(&(method.to_owned(), route.to_owned()))
    }
}

/// Refuses, before any handler runs, a header that must come at most once sent twice (which of
/// two tokens or keys counts would be a guess) and a query parameter the route does not declare.
async fn screen(
    State(query): State<Arc<QueryParameters>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    for name in [header::AUTHORIZATION.as_str(), idempotency::HEADER] {
        if request.headers().get_all(name).iter().nth(1).is_some() {
            return Err(ApiError::new(
                ErrorCode::RepeatedHeader,
                format!("the {name} header is sent more than once; send it once"),
            ));
        }
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str());
    if let Some(allowed) = route.and_then(|route| query.allowed(request.method(), route)) {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map_err(|e| ApiError::bad_parameter(format!("the query string: {}", e.body_text())))?;
        if let Some((unknown, _)) = pairs.0.iter().find(|(name, _)| !allowed.contains(name)) {
            let expected = if allowed.is_empty() {
                "this route takes none".to_owned()
            } else {
                let names: Vec<&str> = allowed.iter().map(String::as_str).collect();
                format!("expected {}", names.join(", "))
            };
            return Err(ApiError::bad_parameter(format!(
                "unknown query parameter `{unknown}` on {} {}; {expected}",
                request.method(),
                route.unwrap_or_default()
            )));
        }
    }
    Ok(next.run(request).await)
}

async fn no_such_route(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchRoute,
        format!(
            "no route {} {}; GET /v1/openapi.json lists them",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; GET /v1/openapi.json lists the methods",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Counts and times every request by route template (never by raw path, which would let a client
/// create unbounded label values), and logs it without headers (they may hold a token).
async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    state
        .inner
        .metrics
        .request(method.as_str(), &route, response.status(), elapsed);
    tracing::debug!(%method, %route, status = response.status().as_u16(), elapsed_ms = elapsed.as_millis() as u64, "api request");
    response
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    #[error("api.listen `{listen}` is not an address like 127.0.0.1:8080")]
    Address { listen: String },
    #[error("cannot listen on {listen} (api.listen): {source}")]
    Bind {
        listen: String,
        source: std::io::Error,
    },
}

/// A running API server.
pub struct ApiServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl ApiServer {
    /// Binds `api.listen` from the current settings and serves until [`ApiServer::shutdown`].
    pub async fn start(state: ApiState) -> Result<Self, ApiStartError> {
        let api = state.settings().config.api.clone();
        let listen = api.listen.clone();
        let addr: SocketAddr = listen.parse().map_err(|_| ApiStartError::Address {
            listen: listen.clone(),
        })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ApiStartError::Bind { listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ApiStartError::Bind {
                listen: addr.to_string(),
                source,
            })?;
        let nofile = server::open_file_limit();
        let limits = server::Limits {
            connections: server::connection_cap(api.max_connections, nofile),
            header_timeout: Duration::from_secs(api.header_timeout_secs),
            idle_timeout: Duration::from_secs(api.idle_timeout_secs),
        };
        if limits.connections < api.max_connections {
            tracing::warn!(
                configured = api.max_connections,
                serving = limits.connections,
                open_file_limit = nofile,
                "api.max_connections is lowered to stay below the open-file limit (raise it with LimitNOFILE= or ulimit -n)"
            );
        }
        let upkeep = state.inner.metrics.spawn_upkeep();
        let (router, _) = router(state);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, limits, stopped));
        tracing::info!(%addr, max_connections = limits.connections, "API listening");
        Ok(Self {
            addr,
            stop,
            task,
            upkeep,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, closes those with no request in progress and lets requests
    /// in progress finish, for at most `bound`.
    pub async fn shutdown(mut self, bound: Duration) {
        let _ = self.stop.send(true);
        self.upkeep.abort();
        if tokio::time::timeout(bound, &mut self.task).await.is_err() {
            tracing::warn!("API requests still open at the shutdown bound were cut off");
            self.task.abort();
        }
        tracing::info!(addr = %self.addr, "API stopped");
    }
}

#[cfg(test)]
mod route_list_tests {
    use std::collections::BTreeSet;

    /// `docs/http-api.md` lists exactly the routes of the OpenAPI document, each as
    /// ``| `METHOD /path` |``.
    #[test]
    fn the_documented_route_list_is_the_openapi_documents() {
        let (_, api) = super::routes().split_for_parts();
        let served: BTreeSet<String> = api
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ];
                methods
                    .into_iter()
                    .filter(|(_, has)| *has)
                    .map(move |(method, _)| format!("{method} {path}"))
            })
            .collect();
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/http-api.md"))
            .expect("docs/http-api.md");
        let documented: BTreeSet<String> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .filter(|route| {
                ["GET ", "POST ", "PUT ", "DELETE ", "PATCH "]
                    .iter()
                    .any(|m| route.starts_with(m))
            })
            .map(str::to_owned)
            .collect();
        assert!(served.len() >= 12, "{served:?}");
        assert_eq!(
            documented, served,
            "docs/http-api.md's route table and the OpenAPI document differ"
        );
    }
}
