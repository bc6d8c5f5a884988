//! `GET /metrics`: the Prometheus text exposition, and the recorder behind it.
//!
//! The recorder is process-wide (the `metrics` macros anywhere in campaignd report to it) and is
//! installed once, on first use. Agent, campaign and knowledge-base figures are read from their
//! public snapshots at scrape time (the runtime's status, the [`CampaignBoard`](crate::campaign::CampaignBoard), the database's
//! size), so a scrape always shows the current state; HTTP request counts and latencies are
//! recorded as requests happen. Nothing here may block on an agent: a scrape reads snapshots only.
//! Campaign ids come from the configuration, so they are bounded and safe as label values.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use super::ApiState;
use crate::agents::approvals::ApprovalBook;
use crate::campaign::{CampaignState, CampaignStatus};
use crate::domain::approval::ApprovalKind;
use crate::domain::campaign::Phase;
use crate::kb::metrics as kb_metrics;
use crate::runtime::AgentState;
use crate::runtime::metrics as runtime_metrics;

/// Request latency buckets, in seconds: a histogram rather than a summary, so it aggregates
/// across instances.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Every gauge is set at each scrape from the current snapshots, so one that a scrape did not set
/// belongs to a campaign or agent that is gone (a reload removed it): it leaves the output once it
/// has not been set for this long, instead of showing its last value until a restart.
const GAUGE_IDLE: Duration = Duration::from_secs(5);

/// Records per knowledge-base group commit.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0];

const REQUESTS: &str = "campaignd_http_requests_total";
const REQUEST_SECONDS: &str = "campaignd_http_request_duration_seconds";

const STATES: [AgentState; 4] = [
    AgentState::Running,
    AgentState::Restarting,
    AgentState::Isolated,
    AgentState::Stopped,
];

const PHASES: [Phase; 3] = [Phase::Explore, Phase::Optimize, Phase::Stabilize];

const CAMPAIGN_STATES: [CampaignState; 5] = [
    CampaignState::Waiting,
    CampaignState::Running,
    CampaignState::Held,
    CampaignState::Achieved,
    CampaignState::Ended,
];

const CAMPAIGN_PROGRESS: &str = "campaignd_campaign_progress_ratio";
const CAMPAIGN_CONVERSIONS: &str = "campaignd_campaign_conversions";
const CAMPAIGN_TARGET: &str = "campaignd_campaign_target";
const CAMPAIGN_SPEND: &str = "campaignd_campaign_spend";
const CAMPAIGN_BUDGET: &str = "campaignd_campaign_budget";
const CAMPAIGN_ETA: &str = "campaignd_campaign_eta_days";
const CAMPAIGN_PHASE: &str = "campaignd_campaign_phase";
const CAMPAIGN_STATE: &str = "campaignd_campaign_state";
const APPROVALS_PENDING: &str = "campaignd_approvals_pending";
const APPROVALS_OLDEST: &str = "campaignd_approvals_oldest_pending_age_seconds";
const ORDERS: &str = "campaignd_orders";

/// The process-wide Prometheus handle.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// Campaigns whose ETA gauge has been set: when their forecast stops reaching the target the
    /// gauge turns NaN instead of showing a stale date (a gauge cannot be withdrawn).
    eta_shown: Arc<Mutex<BTreeSet<String>>>,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static DESCRIBED: Once = Once::new();

/// The `# HELP` lines, the API's own and those of the runtime and the knowledge base.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    runtime_metrics::describe_metrics();
    kb_metrics::describe_metrics();
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
        crate::agents::resident::AGENT_CAMPAIGNS,
        "Campaigns whose working state each agent worker holds in memory"
    );
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
    describe_gauge!(
        CAMPAIGN_PROGRESS,
        "Each campaign's conversions as a fraction of its target"
    );
    describe_gauge!(CAMPAIGN_CONVERSIONS, "Each campaign's conversions to date");
    describe_gauge!(CAMPAIGN_TARGET, "Each campaign's target conversions");
    describe_gauge!(
        CAMPAIGN_SPEND,
        "Each campaign's spend to date, in its currency (the currency label)"
    );
    describe_gauge!(
        CAMPAIGN_BUDGET,
        "Each campaign's total budget, in its currency (the currency label)"
    );
    describe_gauge!(
        CAMPAIGN_ETA,
        "The forecast day each campaign reaches its target, in days since its start; absent \
         until forecast, NaN when the forecast stops reaching the target"
    );
    describe_gauge!(
        CAMPAIGN_PHASE,
        "1 for the phase each campaign is in (explore, optimize, stabilize), 0 for the others"
    );
    describe_counter!(
        crate::campaign::notifications::DELIVERIES,
        "Approval notifications sent to the webhook, by event and result: delivered, failed (an attempt, retried) or given_up"
    );
    describe_gauge!(
        APPROVALS_PENDING,
        "Approval requests waiting for a person, by campaign and kind"
    );
    describe_gauge!(
        APPROVALS_OLDEST,
        Unit::Seconds,
        "How long the oldest pending approval request of each campaign has waited (wall clock; 0 when none waits)"
    );
    describe_gauge!(
        ORDERS,
        "Orders in the outbox by connector and state: pending (waiting for a delivery) or dead_lettered (given up until an operator retries or cancels it)"
    );
    use crate::campaign::outbox::delivery;
    describe_counter!(
        delivery::DELIVERED,
        "Orders delivered, by connector and kind (creatives, budget, buys)"
    );
    describe_counter!(
        delivery::FAILED,
        "Failed order delivery attempts (each retried until dead-lettered), by connector and kind"
    );
    describe_counter!(
        delivery::DEAD_LETTERED,
        "Orders dead-lettered after [outbox] max_attempts failures, by connector"
    );
    describe_histogram!(
        delivery::LATENCY,
        Unit::Seconds,
        "From an order's writing to its delivery (wall clock), by connector"
    );
    describe_gauge!(
        CAMPAIGN_STATE,
        "1 for the state each campaign is in (waiting, running, held, achieved, ended), 0 for the others"
    );
}

impl Metrics {
    /// The recorder, installed as the global one on first call. If another recorder is already
    /// installed (an embedding program's), this one still renders what the API itself records.
    pub fn get() -> Self {
        let handle = HANDLE.get_or_init(|| {
            let builder = || {
                let full = |name: &str| Matcher::Full(name.to_owned());
                PrometheusBuilder::new()
                    .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
                    .set_buckets_for_metric(full(REQUEST_SECONDS), &LATENCY_BUCKETS)?
                    .set_buckets_for_metric(
                        full(runtime_metrics::REQUEST_DURATION_SECONDS),
                        &runtime_metrics::REQUEST_DURATION_BUCKETS,
                    )?
                    .set_buckets_for_metric(full(kb_metrics::FLUSH_SECONDS), &LATENCY_BUCKETS)?
                    .set_buckets_for_metric(full(kb_metrics::BATCH_RECORDS), &BATCH_BUCKETS)
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
            eta_shown: Arc::new(Mutex::new(BTreeSet::new())),
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
        for goal in &settings.campaigns {
            self.campaign(&super::campaigns::status_of(state, goal));
        }
        self.approvals(state, &settings);
        self.orders(state, &settings);
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

impl Metrics {
    /// Orders waiting (pending) or given up (dead-lettered), by connector: every connector a
    /// campaign or the config names has both gauges, 0 included.
    fn orders(&self, state: &ApiState, settings: &crate::settings::Settings) {
        let outbox = match crate::campaign::outbox::Outbox::open(state.kb()) {
            Ok(outbox) => outbox,
            Err(err) => {
                tracing::warn!(%err, "cannot open the outbox for /metrics");
                return;
            }
        };
        let (pending, dead) = match (outbox.pending(), outbox.all_dead_letters()) {
            (Ok(p), Ok(d)) => (p, d),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(%err, "cannot read the outbox for /metrics");
                return;
            }
        };
        let mut names: std::collections::BTreeSet<String> =
            settings.config.connectors.keys().cloned().collect();
        names.extend(crate::settings::connectors::BUILT_IN.map(str::to_owned));
        names.extend(pending.iter().chain(&dead).map(|e| e.connector.clone()));
        for name in names {
            for (state, entries) in [("pending", &pending), ("dead_lettered", &dead)] {
                let count = entries.iter().filter(|e| e.connector == name).count();
                metrics::gauge!(ORDERS, "connector" => name.clone(), "state" => state)
                    .set(count as f64);
            }
        }
    }

    /// Pending approval requests by campaign and kind, and the age of each campaign's oldest.
    fn approvals(&self, state: &ApiState, settings: &crate::settings::Settings) {
        let waiting = match ApprovalBook::open(state.kb()).and_then(|book| book.pending()) {
            Ok(listed) => listed,
            Err(err) => {
                tracing::warn!(%err, "cannot read the approval book for /metrics");
                return;
            }
        };
        let now = crate::runtime::Clock::wall_now();
        for goal in &settings.campaigns {
            let pending: Vec<_> = waiting
                .iter()
                .filter(|l| l.campaign == goal.id && l.tenant == goal.tenant)
                .collect();
            let campaign = goal.id.to_string();
            for kind in ApprovalKind::ALL {
                let count = pending.iter().filter(|l| l.kind == kind).count();
                metrics::gauge!(APPROVALS_PENDING, "campaign" => campaign.clone(), "kind" => kind.as_str())
                    .set(count as f64);
            }
            let oldest = pending
                .iter()
                .map(|l| (now - l.requested_at).num_milliseconds().max(0) as f64 / 1000.0)
                .fold(0.0, f64::max);
            metrics::gauge!(APPROVALS_OLDEST, "campaign" => campaign).set(oldest);
        }
    }

    /// Sets one campaign's gauges from its board status.
    fn campaign(&self, status: &CampaignStatus) {
        let campaign = status.goal.id.to_string();
        let tenant = status.goal.tenant.to_string();
        let currency = status.goal.budget.currency.clone();
        let labels = [("campaign", campaign.clone()), ("tenant", tenant.clone())];
        metrics::gauge!(CAMPAIGN_PROGRESS, &labels).set(status.progress);
        metrics::gauge!(CAMPAIGN_CONVERSIONS, &labels).set(status.conversions as f64);
        metrics::gauge!(CAMPAIGN_TARGET, &labels).set(status.goal.target as f64);
        let money = [
            ("campaign", campaign.clone()),
            ("tenant", tenant),
            ("currency", currency),
        ];
        metrics::gauge!(CAMPAIGN_SPEND, &money).set(status.spend);
        metrics::gauge!(CAMPAIGN_BUDGET, &money).set(status.goal.budget.total);
        let mut shown = self
            .eta_shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match status.eta_day.filter(|d| d.is_finite()) {
            Some(day) => {
                metrics::gauge!(CAMPAIGN_ETA, &labels).set(day);
                shown.insert(campaign.clone());
            }
            None if shown.contains(&campaign) => {
                metrics::gauge!(CAMPAIGN_ETA, &labels).set(f64::NAN);
            }
            None => {}
        }
        drop(shown);
        for phase in PHASES {
            metrics::gauge!(CAMPAIGN_PHASE, "campaign" => campaign.clone(), "phase" => phase.as_str())
                .set(if status.phase == Some(phase) { 1.0 } else { 0.0 });
        }
        for state in CAMPAIGN_STATES {
            metrics::gauge!(CAMPAIGN_STATE, "campaign" => campaign.clone(), "state" => state.as_str())
                .set(if status.state == state { 1.0 } else { 0.0 });
        }
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
