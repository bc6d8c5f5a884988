//! `GET /metrics`: the Prometheus text exposition, and the recorder behind it.
//!
//! The recorder is process-wide (the `metrics` macros anywhere in campaignd report to it) and is
//! installed once, on first use. Agent and knowledge-base figures are read from their public
//! snapshots at scrape time, so a scrape always shows the current state; HTTP request counts and
//! latencies are recorded as requests happen. Nothing here may block on an agent: a scrape reads
//! snapshots only.

use std::sync::{Once, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::ApiState;
use crate::runtime::AgentState;

/// Request latency buckets, in seconds: a histogram rather than a summary, so it aggregates
/// across instances.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const REQUESTS: &str = "campaignd_http_requests_total";
const REQUEST_SECONDS: &str = "campaignd_http_request_duration_seconds";

const STATES: [AgentState; 4] = [
    AgentState::Running,
    AgentState::Restarting,
    AgentState::Isolated,
    AgentState::Stopped,
];

/// The process-wide Prometheus handle.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static DESCRIBED: Once = Once::new();

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request, by route template"
    );
    describe_gauge!("campaignd_agents", "Agents in each state");
    describe_gauge!(
        "campaignd_agents_isolated",
        "Agents isolated after exceeding their restart intensity"
    );
    describe_gauge!(
        "campaignd_agent_state",
        "1 for the state each agent is in, 0 for the others"
    );
    describe_counter!(
        "campaignd_agent_restarts_total",
        "Restarts of each agent since the daemon started"
    );
    describe_gauge!(
        "campaignd_agent_mailbox_depth",
        "Messages admitted to each agent and not yet handled"
    );
    describe_gauge!(
        "campaignd_agent_mailbox_capacity",
        "Each agent's admission bound"
    );
    describe_gauge!(
        "campaignd_campaigns_configured",
        "Campaigns in the settings in force"
    );
    describe_gauge!(
        "campaignd_kb_size_bytes",
        Unit::Bytes,
        "The knowledge base's size on disk"
    );
    describe_counter!(
        "campaignd_config_reloads_total",
        "Configuration reloads (SIGHUP or POST /v1/reload), applied or rejected"
    );
}

impl Metrics {
    /// The recorder, installed as the global one on first call. If another recorder is already
    /// installed (an embedding program's), this one still renders what the API itself records.
    pub fn get() -> Self {
        let handle = HANDLE.get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.to_owned()), &LATENCY_BUCKETS)
            };
            match builder().map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => handle,
                Ok(Err(err)) => {
                    tracing::warn!(%err, "another metrics recorder is installed; /metrics shows only the API's own figures");
                    PrometheusBuilder::new().build_recorder().handle()
                }
                Err(err) => {
                    tracing::warn!(%err, "latency buckets rejected; request latency renders as a summary");
                    PrometheusBuilder::new()
                        .install_recorder()
                        .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
                }
            }
        });
        DESCRIBED.call_once(describe);
        Self {
            handle: handle.clone(),
        }
    }

    /// Drains histogram buffers now and then, as the exporter expects of its owner.
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        })
    }

    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: StatusCode, elapsed: Duration) {
        metrics::counter!(
            REQUESTS,
            "method" => method.to_owned(),
            "route" => route.to_owned(),
            "status" => status.as_u16().to_string()
        )
        .increment(1);
        metrics::histogram!(REQUEST_SECONDS, "route" => route.to_owned())
            .record(elapsed.as_secs_f64());
    }

    /// Brings the snapshot figures up to date and renders everything.
    fn render(&self, state: &ApiState) -> String {
        let status = state.runtime().status();
        for wanted in STATES {
            let count = status.iter().filter(|s| s.state == wanted).count();
            metrics::gauge!("campaignd_agents", "state" => wanted.to_string()).set(count as f64);
        }
        let isolated = status
            .iter()
            .filter(|s| s.state == AgentState::Isolated)
            .count();
        metrics::gauge!("campaignd_agents_isolated").set(isolated as f64);
        for agent in &status {
            let name = agent.name.as_str().to_owned();
            for wanted in STATES {
                metrics::gauge!(
                    "campaignd_agent_state",
                    "agent" => name.clone(),
                    "state" => wanted.to_string()
                )
                .set(if agent.state == wanted { 1.0 } else { 0.0 });
            }
            metrics::counter!("campaignd_agent_restarts_total", "agent" => name.clone())
                .absolute(u64::from(agent.restarts));
            metrics::gauge!("campaignd_agent_mailbox_depth", "agent" => name.clone())
                .set(agent.in_flight as f64);
            metrics::gauge!("campaignd_agent_mailbox_capacity", "agent" => name)
                .set(agent.mailbox as f64);
        }
        let settings = state.settings();
        metrics::gauge!("campaignd_campaigns_configured").set(settings.campaigns.len() as f64);
        match state.kb().size_on_disk() {
            Ok(bytes) => metrics::gauge!("campaignd_kb_size_bytes").set(bytes as f64),
            Err(err) => tracing::warn!(%err, "cannot read the knowledge base's size for /metrics"),
        }
        // Publishes metric descriptions registered since the last upkeep, so the first scrape
        // already has its `# HELP` lines.
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Prometheus metrics in the text exposition format (version 0.0.4). No token needed.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)
    )
)]
pub async fn render(State(state): State<ApiState>) -> Response {
    let metrics = state.inner.metrics.clone();
    let body = tokio::task::spawn_blocking(move || metrics.render(&state)).await;
    match body {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => {
            super::error::ApiError::internal("rendering metrics failed", err).into_response()
        }
    }
}
