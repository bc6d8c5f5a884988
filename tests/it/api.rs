//! The HTTP ops API against the real server: a daemon started from a deployment in a temporary
//! folder, listening on 127.0.0.1 port 0, driven with plain HTTP/1.1 over a TCP stream.
//!
//! Covers every endpoint's happy path, every error an operator or a client can cause (and that the
//! server keeps answering afterwards), tenant isolation for campaigns, observations, decisions and
//! traces, commands reaching the real orchestrator, a retried observation batch counted once,
//! reload with a valid and an invalid change, readiness turning 503 when an agent is isolated,
//! per-campaign metrics in the Prometheus text format, and the OpenAPI document listing every
//! route. Every test is bounded in time.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use campaignd::agents::Registry;
use campaignd::agents::ledger;
use campaignd::agents::messages::Phase;
use campaignd::agents::messages::{BudgetMix, ChannelMix, Tick, TickReport};
use campaignd::agents::orchestrator::Orchestrator;
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::Buy;
use campaignd::domain::campaign::{CampaignGoal, Channel};
use campaignd::kb::{Decision, DecisionId, Outcome, OutcomeId, SCHEMA_VERSION};
use campaignd::protocol::{CorrelationId, Envelope, Origin, Payload};
use campaignd::runtime::{
    Agent, AgentError, AgentState, Context, HandleRequest, Request, Routes, StartContext,
};
use campaignd::settings::EnvOverrides;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Process, board_of, bounded, campaignd, copy_shipped_agent, load_settings, run,
    shipped_deployment, wait_for_async, wait_until, write,
};

pub(crate) const OPERATOR: &str = "operator-token-0123456789";
const ACME: &str = "acme-token-0123456789abc";
const ACME_RETAIL: &str = "acme-retail-token-0123456789";
const GLOBEX: &str = "globex-token-0123456789ab";
const BODY_LIMIT: usize = 2048;
/// Short, so the body-timeout test waits little; every other test sends its body at once.
const BODY_TIMEOUT_SECS: u64 = 2;

// ---------------------------------------------------------------------------------------------
// Two agents: one that answers, one that always fails (so supervision isolates it).

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ping;
impl Payload for Ping {
    const ACTION: &'static str = "ping";
}
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pong;
impl Payload for Pong {
    const ACTION: &'static str = "pong";
}
impl Request for Ping {
    type Response = Pong;
}

struct Steady;

impl Agent for Steady {
    const NAME: &'static str = "steady";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Steady)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Ping>();
    }
}

impl HandleRequest<Ping> for Steady {
    async fn handle_request(&mut self, _: &Context, _: Envelope<Ping>) -> Result<Pong, AgentError> {
        Ok(Pong)
    }
}

struct Flaky;

impl Agent for Flaky {
    const NAME: &'static str = "flaky";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Flaky)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Ping>();
    }
}

impl HandleRequest<Ping> for Flaky {
    async fn handle_request(&mut self, _: &Context, _: Envelope<Ping>) -> Result<Pong, AgentError> {
        Err(AgentError::msg("flaky always fails"))
    }
}

// ---------------------------------------------------------------------------------------------
// A deployment in a temporary folder.

fn campaign(id: &str, tenant: &str) -> String {
    format!(
        r#"id = "{id}"
tenant = "{tenant}"
objective = "purchases"
target = 100
start = "2026-10-01T00:00:00Z"
deadline = "2026-12-31T00:00:00Z"
channels = ["email"]
regions = ["US"]
[budget]
total = 1000.0
currency = "USD"
[[segments]]
id = "everyone"
{}"#,
        crate::support::US_BRIEF
    )
}

/// Writes the deployment: every path absolute, so a reload (which reads relative to the current
/// folder) finds the same files. Returns the config path.
fn deployment(base: &Path, with: With) -> std::path::PathBuf {
    let abs = |p: &str| base.join(p).display().to_string();
    write(
        base,
        "tokens.toml",
        &format!(
            "[[tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n\n\
             [[tokens]]\nname = \"acme-dashboard\"\ntoken = \"{ACME}\"\ntenant = \"acme\"\n\n\
             [[tokens]]\nname = \"acme-retail\"\ntoken = \"{ACME_RETAIL}\"\ntenant = \"acme/kr_retail\"\n\n\
             [[tokens]]\nname = \"globex\"\ntoken = \"{GLOBEX}\"\ntenant = \"globex\"\n"
        ),
    );
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nagents_dir = {:?}\ncampaigns_dir = {:?}\nshutdown_timeout_secs = 5\n\n\
             [runtime]\ncommand_senders = []\n\n\
             [market]\nsource = \"api\"\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\nbody_limit_bytes = {BODY_LIMIT}\nbody_timeout_secs = {BODY_TIMEOUT_SECS}\ntokens_file = {:?}\n",
            abs("data"),
            abs("agents"),
            abs("campaigns"),
            abs("tokens.toml"),
        ),
    );
    write(base, "agents/steady.toml", "[agent]\nmailbox = 64\n");
    if with.orchestrator {
        copy_shipped_agent(base, "orchestrator");
    }
    if with.flaky {
        write(
            base,
            "agents/flaky.toml",
            "[agent]\nmailbox = 64\n[agent.supervision]\nmax_restarts = 1\nwithin_secs = 60\nbackoff_initial_ms = 10\nbackoff_max_ms = 20\n",
        );
    }
    write(
        base,
        "campaigns/acme_spring.toml",
        &campaign("acme_spring", "acme"),
    );
    write(
        base,
        "campaigns/globex_autumn.toml",
        &campaign("globex_autumn", "globex"),
    );
    for i in 0..with.bulk {
        let id = format!("bulk_{i:04}");
        write(
            base,
            &format!("campaigns/{id}.toml"),
            &campaign(&id, "acme"),
        );
    }
    base.join("config/campaignd.toml")
}

pub(crate) struct Running {
    _dir: tempfile::TempDir,
    base: std::path::PathBuf,
    pub(crate) daemon: Daemon,
    pub(crate) addr: SocketAddr,
}

/// Which optional agents the deployment runs besides `steady`.
#[derive(Clone, Copy, Default)]
pub(crate) struct With {
    pub(crate) flaky: bool,
    /// The real orchestrator (alone: no strategy, so it never finishes setting a campaign up).
    pub(crate) orchestrator: bool,
    /// This many more campaigns of acme (`bulk_0000`, …), beside the usual two.
    pub(crate) bulk: usize,
}

pub(crate) async fn start(with_flaky: bool) -> Running {
    start_with(With {
        flaky: with_flaky,
        ..With::default()
    })
    .await
}

pub(crate) async fn start_with(with: With) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().to_path_buf();
    let config = deployment(&base, with);
    let settings = load_settings(&base, Some(&config), EnvOverrides::new());
    let mut registry = Registry::new().agent::<Steady>();
    if with.flaky {
        registry = registry.agent::<Flaky>();
    }
    if with.orchestrator {
        registry = registry.agent::<Orchestrator>();
    }
    let daemon = Daemon::start(settings, Some(config), registry)
        .await
        .expect("daemon starts");
    let addr = daemon.api_addr();
    assert!(addr.ip().is_loopback());
    Running {
        _dir: dir,
        base,
        daemon,
        addr,
    }
}

/// Sends `flaky` requests until supervision has isolated it.
pub(crate) async fn isolate_flaky(run: &Running) {
    let op = &run.daemon.runtime().operator("test");
    let runtime = run.daemon.runtime();
    wait_for_async(
        "`flaky` to be isolated",
        Duration::from_secs(20),
        || async move {
            let state = runtime
                .agent_status("flaky")
                .expect("flaky is configured")
                .state;
            if state == AgentState::Isolated {
                return Some(());
            }
            let _ = op.request("flaky", Ping).await;
            None
        },
    )
    .await;
}

/// Every test's overall bound: a hang fails instead of blocking the suite.
const BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one request per connection.

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of an error body, after checking its shape.
    fn error_code(&self) -> String {
        let body = self.json();
        let error = &body["error"];
        let message = error["message"]
            .as_str()
            .expect("error.message is a string");
        assert!(!message.is_empty(), "empty message: {body}");
        error["code"]
            .as_str()
            .expect("error.code is a string")
            .to_owned()
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Response {
    request_with(addr, method, path, token, &[], body).await
}

async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    } else if method == "POST" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send head");
    if let Some(body) = body {
        // The server may answer 413 and close before reading everything; that is fine.
        let _ = stream.write_all(body).await;
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&rest[..end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .expect("hex chunk size");
        if size == 0 {
            return body;
        }
        let start = end + 2;
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

/// `GET /metrics`, one scrape at a time in this test binary. The metrics recorder is process-wide,
/// so every daemon started here sets the same unlabelled gauges (`campaignd_agents_isolated`, ...)
/// at scrape time; two scrapes interleaving would show one daemon's figures in the other's answer.
async fn scrape(addr: SocketAddr) -> Response {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    get(addr, "/metrics", None).await
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    request(addr, "GET", path, token, None).await
}

// ---------------------------------------------------------------------------------------------
// Seeded records.

struct Seeded {
    acme_chain: CorrelationId,
    globex_chain: CorrelationId,
    /// acme_spring's decisions visible to acme, in time order.
    acme_decisions: Vec<DecisionId>,
    t0: DateTime<Utc>,
}

fn decision(
    agent: &str,
    tenant: &str,
    campaign: &str,
    chain: CorrelationId,
    at: DateTime<Utc>,
) -> Decision {
    Decision {
        id: DecisionId::new(),
        schema_version: SCHEMA_VERSION,
        agent: agent.into(),
        tenant: tenant.into(),
        campaign: Some(campaign.into()),
        correlation_id: chain,
        causation_id: None,
        kind: "plan".into(),
        inputs: json!({ "budget": 1000 }),
        alternatives: Vec::new(),
        choice: json!({ "channel": "email" }),
        reason: "the test decided".into(),
        confidence: 0.5,
        decided_at: at,
        recorded_at: None,
    }
}

async fn seed(daemon: &Daemon) -> Seeded {
    let kb = daemon.kb();
    let t0: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().expect("time");
    let acme_chain = CorrelationId::new();
    let globex_chain = CorrelationId::new();
    let mut acme_decisions = Vec::new();
    for i in 0..5 {
        let agent = if i % 2 == 0 { "strategy" } else { "content" };
        let d = decision(
            agent,
            "acme",
            "acme_spring",
            acme_chain,
            t0 + TimeDelta::hours(i),
        );
        acme_decisions.push(kb.record_decision(&d).await.expect("record"));
    }
    let outcome = Outcome {
        id: OutcomeId::new(),
        schema_version: SCHEMA_VERSION,
        tenant: "acme".into(),
        campaign: Some("acme_spring".into()),
        decisions: vec![acme_decisions[0]],
        correlation_id: Some(acme_chain),
        kind: "observation".into(),
        metrics: json!({ "clicks": 12 }),
        observed_at: t0 + TimeDelta::hours(6),
        recorded_at: None,
    };
    kb.record_outcome(&outcome).await.expect("record outcome");
    for i in 0..2 {
        let d = decision(
            "strategy",
            "globex",
            "globex_autumn",
            globex_chain,
            t0 + TimeDelta::hours(i),
        );
        kb.record_decision(&d).await.expect("record");
    }
    // A record of another tenant filed under acme's campaign id: only the knowledge base's tenant
    // scope keeps it from acme's token.
    let stray = decision(
        "strategy",
        "globex",
        "acme_spring",
        CorrelationId::new(),
        t0 + TimeDelta::hours(2),
    );
    kb.record_decision(&stray).await.expect("record");
    Seeded {
        acme_chain,
        globex_chain,
        acme_decisions,
        t0,
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["decisions"]
        .as_array()
        .expect("decisions array")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_agent_status_answer() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;

        let health = get(addr, "/healthz", None).await;
        assert_eq!(health.status, 200);
        assert_eq!(health.json()["status"], "ok");

        let ready = get(addr, "/readyz", None).await;
        assert_eq!(ready.status, 200, "{}", ready.text());
        assert_eq!(ready.json(), json!({ "ready": true, "reasons": [] }));

        let agents = get(addr, "/v1/agents", Some(OPERATOR)).await;
        assert_eq!(agents.status, 200, "{}", agents.text());
        let agents = agents.json();
        assert_eq!(agents["agents"][0]["name"], "steady");
        assert_eq!(agents["agents"][0]["state"], "running");
        assert_eq!(agents["agents"][0]["restarts"], 0);
        assert_eq!(agents["agents"][0]["mailbox"], 64);

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_paged_filtered_and_scoped_to_the_tenant() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        let seeded = seed(&run.daemon).await;
        let all: Vec<String> = seeded
            .acme_decisions
            .iter()
            .map(ToString::to_string)
            .collect();

        // The tenant pages through its own five decisions, two at a time.
        let mut seen = Vec::new();
        let mut path = "/v1/campaigns/acme_spring/decisions?limit=2".to_owned();
        for expected in [2, 2, 1] {
            let page = get(addr, &path, Some(ACME)).await;
            assert_eq!(page.status, 200, "{}", page.text());
            let page = page.json();
            assert_eq!(ids(&page).len(), expected, "{page}");
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!("/v1/campaigns/acme_spring/decisions?limit=2&cursor={cursor}")
                }
                None => assert_eq!(expected, 1),
            }
        }
        assert_eq!(
            seen, all,
            "acme sees its decisions in time order, not globex's"
        );

        // The operator also sees the stray globex record filed under this campaign id.
        let page = get(addr, "/v1/campaigns/acme_spring/decisions", Some(OPERATOR)).await;
        assert_eq!(ids(&page.json()).len(), 6);

        // Filters: agent, and a [from, to) window.
        let page = get(
            addr,
            "/v1/campaigns/acme_spring/decisions?agent=content",
            Some(ACME),
        )
        .await
        .json();
        assert_eq!(ids(&page), [all[1].clone(), all[3].clone()]);
        let from =
            (seeded.t0 + TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let to =
            (seeded.t0 + TimeDelta::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let page = get(
            addr,
            &format!("/v1/campaigns/acme_spring/decisions?from={from}&to={to}"),
            Some(ACME),
        )
        .await
        .json();
        assert_eq!(ids(&page), [all[1].clone(), all[2].clone()]);
        let decision = &page["decisions"][0];
        assert_eq!(decision["agent"], "content");
        assert_eq!(decision["tenant"], "acme");
        assert_eq!(decision["choice"], json!({ "channel": "email" }));

        // Another tenant's campaign, and a client token on its organization's campaign, are
        // answered as if the campaign did not exist.
        for (token, campaign) in [
            (ACME, "globex_autumn"),
            (GLOBEX, "acme_spring"),
            (ACME_RETAIL, "acme_spring"),
        ] {
            let r = get(
                addr,
                &format!("/v1/campaigns/{campaign}/decisions"),
                Some(token),
            )
            .await;
            assert_eq!(r.status, 404, "{token} on {campaign}: {}", r.text());
            assert_eq!(r.error_code(), "unknown_campaign");
        }
        let globex = get(addr, "/v1/campaigns/globex_autumn/decisions", Some(GLOBEX)).await;
        assert_eq!(ids(&globex.json()).len(), 2);

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_decisions_are_scoped_to_the_tenant() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        let seeded = seed(&run.daemon).await;

        let trace = get(
            addr,
            &format!("/v1/traces/{}", seeded.acme_chain),
            Some(ACME),
        )
        .await;
        assert_eq!(trace.status, 200, "{}", trace.text());
        let trace = trace.json();
        assert_eq!(trace["decisions"].as_array().map(Vec::len), Some(5));
        assert_eq!(trace["outcomes"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            trace["outcomes"][0]["decisions"][0],
            seeded.acme_decisions[0].to_string()
        );

        let operator = get(
            addr,
            &format!("/v1/traces/{}", seeded.globex_chain),
            Some(OPERATOR),
        )
        .await;
        assert_eq!(operator.status, 200);
        assert_eq!(
            operator.json()["decisions"].as_array().map(Vec::len),
            Some(2)
        );

        for (token, chain) in [
            (ACME, seeded.globex_chain),
            (GLOBEX, seeded.acme_chain),
            (ACME_RETAIL, seeded.acme_chain),
        ] {
            let r = get(addr, &format!("/v1/traces/{chain}"), Some(token)).await;
            assert_eq!(r.status, 404, "{}", r.text());
            assert_eq!(r.error_code(), "unknown_trace");
        }
        let r = get(addr, "/v1/traces/not-a-uuid", Some(OPERATOR)).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid_parameter")
        );

        // One decision, with the outcomes recorded against it, for its own tenant only.
        let first = seeded.acme_decisions[0];
        let detail = get(addr, &format!("/v1/decisions/{first}"), Some(ACME)).await;
        assert_eq!(detail.status, 200, "{}", detail.text());
        let detail = detail.json();
        assert_eq!(detail["decision"]["id"], first.to_string());
        assert_eq!(detail["outcomes"].as_array().map(Vec::len), Some(1));
        for token in [GLOBEX, ACME_RETAIL] {
            let r = get(addr, &format!("/v1/decisions/{first}"), Some(token)).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (404, "unknown_decision"),
                "{}",
                r.text()
            );
        }
        let r = get(addr, "/v1/decisions/not-a-uuid", Some(ACME)).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid_parameter")
        );

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_error_has_a_code_and_the_server_keeps_serving() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        let cases: Vec<(Response, u16, &str, &str)> = vec![
            (
                get(addr, "/v1/agents", None).await,
                401,
                "missing_token",
                "Authorization",
            ),
            (
                get(addr, "/v1/agents", Some("not-a-configured-token-at-all")).await,
                401,
                "invalid_token",
                "token",
            ),
            (
                get(addr, "/v1/agents", Some(ACME)).await,
                403,
                "operator_only",
                "operator",
            ),
            (
                request(addr, "POST", "/v1/reload", Some(GLOBEX), None).await,
                403,
                "operator_only",
                "operator",
            ),
            (
                get(
                    addr,
                    "/v1/campaigns/no_such_campaign/decisions",
                    Some(OPERATOR),
                )
                .await,
                404,
                "unknown_campaign",
                "no_such_campaign",
            ),
            (
                get(
                    addr,
                    "/v1/campaigns/acme_spring/decisions?limit=0",
                    Some(OPERATOR),
                )
                .await,
                400,
                "invalid_parameter",
                "limit",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/reload",
                    Some(OPERATOR),
                    Some(br#"{"dry_run": tru"#),
                )
                .await,
                400,
                "malformed_json",
                "dry_run",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/reload",
                    Some(OPERATOR),
                    Some(br#"{"dry_run": "yes"}"#),
                )
                .await,
                400,
                "invalid_body",
                "dry_run",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/reload",
                    Some(OPERATOR),
                    Some(br#"{"dryrun": true}"#),
                )
                .await,
                400,
                "invalid_body",
                "dryrun",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/reload",
                    Some(OPERATOR),
                    Some(format!("{{\"pad\": \"{}\"}}", "x".repeat(BODY_LIMIT)).as_bytes()),
                )
                .await,
                413,
                "body_too_large",
                "2048",
            ),
            (
                get(addr, "/v1/campaigns", None).await,
                401,
                "missing_token",
                "Authorization",
            ),
            (
                get(addr, "/v1/campaigns/no_such_campaign", Some(OPERATOR)).await,
                404,
                "unknown_campaign",
                "no_such_campaign",
            ),
            (
                get(addr, "/v1/campaigns/globex_autumn", Some(ACME)).await,
                404,
                "unknown_campaign",
                "globex_autumn",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(ACME),
                    Some(br#"{"campaign": "acme_spring", "day": tru}"#),
                )
                .await,
                400,
                "malformed_json",
                "day",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(ACME),
                    Some(br#"{"campaign": "acme_spring", "observations": [{}]}"#),
                )
                .await,
                400,
                "invalid_body",
                "day",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(ACME),
                    Some(br#"{"campaign": "acme_spring", "day": 0, "observations": []}"#),
                )
                .await,
                400,
                "invalid_body",
                "observations",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(OPERATOR),
                    Some(br#"{"campaign": "no_such_campaign", "day": 0, "observations": [{}]}"#),
                )
                .await,
                404,
                "unknown_campaign",
                "no_such_campaign",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(GLOBEX),
                    Some(br#"{"campaign": "acme_spring", "day": 0, "observations": [{}]}"#),
                )
                .await,
                404,
                "unknown_campaign",
                "acme_spring",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(ACME),
                    Some(
                        format!(
                            "{{\"campaign\": \"acme_spring\", \"day\": 0, \"observations\": [\"{}\"]}}",
                            "x".repeat(BODY_LIMIT)
                        )
                        .as_bytes(),
                    ),
                )
                .await,
                413,
                "body_too_large",
                "2048",
            ),
            (
                request_with(
                    addr,
                    "POST",
                    "/v1/observations",
                    Some(ACME),
                    &[("Idempotency-Key", &"k".repeat(201))],
                    Some(br#"{"campaign": "acme_spring", "day": 0, "observations": [{}]}"#),
                )
                .await,
                400,
                "invalid_idempotency_key",
                "200",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/campaigns/acme_spring/commands",
                    Some(OPERATOR),
                    Some(br#"{"command": "stop"}"#),
                )
                .await,
                400,
                "invalid_body",
                "`command`: unknown variant `stop`, expected one of `pause`, `resume`, `replan`",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/campaigns/acme_spring/commands",
                    Some(ACME),
                    Some(br#"{"command": "pause"}"#),
                )
                .await,
                403,
                "operator_only",
                "operator",
            ),
            (
                request(
                    addr,
                    "POST",
                    "/v1/campaigns/no_such_campaign/commands",
                    Some(OPERATOR),
                    Some(br#"{"command": "pause"}"#),
                )
                .await,
                404,
                "unknown_campaign",
                "no_such_campaign",
            ),
            (
                // This deployment runs no orchestrator.
                request(
                    addr,
                    "POST",
                    "/v1/campaigns/acme_spring/commands",
                    Some(OPERATOR),
                    Some(br#"{"command": "pause", "reason": "test"}"#),
                )
                .await,
                503,
                "orchestrator_unavailable",
                "orchestrator",
            ),
            (
                get(addr, "/v1/nothing_here", Some(OPERATOR)).await,
                404,
                "no_such_route",
                "/v1/nothing_here",
            ),
            (
                request(addr, "DELETE", "/v1/agents", Some(OPERATOR), None).await,
                405,
                "method_not_allowed",
                "DELETE",
            ),
        ];
        for (response, status, code, needle) in cases {
            assert_eq!(response.status, status, "{}", response.text());
            assert_eq!(response.error_code(), code, "{}", response.text());
            let message = response.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(message.contains(needle), "`{needle}` not in {message}");
            assert!(!response.text().contains(OPERATOR), "a token was echoed");
            if status == 401 {
                assert_eq!(response.header("www-authenticate"), Some("Bearer"));
            }
        }
        // A scheme other than Bearer is refused, not guessed at.
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "GET /v1/agents HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Basic {OPERATOR}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let basic = parse_response(&raw);
        assert_eq!((basic.status, basic.error_code().as_str()), (401, "invalid_token"));
        // Still serving.
        assert_eq!(get(addr, "/healthz", None).await.status, 200);
        assert_eq!(get(addr, "/v1/agents", Some(OPERATOR)).await.status, 200);
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_valid_change_and_rejects_an_invalid_one_whole() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        let new_campaign = "/v1/campaigns/acme_summer/decisions";
        assert_eq!(get(addr, new_campaign, Some(ACME)).await.status, 404);

        // Valid: a new campaign. A dry run checks without applying.
        write(
            &run.base,
            "campaigns/acme_summer.toml",
            &campaign("acme_summer", "acme"),
        );
        let dry = request(
            addr,
            "POST",
            "/v1/reload",
            Some(OPERATOR),
            Some(br#"{"dry_run": true}"#),
        )
        .await;
        assert_eq!(dry.status, 200, "{}", dry.text());
        assert_eq!(dry.json()["applied"], false);
        assert_eq!(get(addr, new_campaign, Some(ACME)).await.status, 404);

        let reloaded = request(addr, "POST", "/v1/reload", Some(OPERATOR), None).await;
        assert_eq!(reloaded.status, 200, "{}", reloaded.text());
        let report = reloaded.json();
        assert_eq!(report["applied"], true);
        assert_eq!(report["campaigns"], 3);
        assert_eq!(report["agents"][0]["agent"], "steady");
        assert_eq!(report["agents"][0]["applied"], true);
        let page = get(addr, new_campaign, Some(ACME)).await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert_eq!(run.daemon.settings().campaigns.len(), 3);

        // Tokens rotate on reload: a token added to the tokens file works, a removed one stops.
        const ROTATED: &str = "rotated-operator-token-0123456789";
        let tokens = std::fs::read_to_string(run.base.join("tokens.toml")).expect("tokens");
        let rotated = tokens.replace(OPERATOR, ROTATED);
        write(&run.base, "tokens.toml", &rotated);
        assert_eq!(get(addr, "/v1/agents", Some(ROTATED)).await.status, 401);
        let reloaded = request(addr, "POST", "/v1/reload", Some(OPERATOR), None).await;
        assert_eq!(reloaded.status, 200, "{}", reloaded.text());
        assert_eq!(get(addr, "/v1/agents", Some(ROTATED)).await.status, 200);
        assert_eq!(get(addr, "/v1/agents", Some(OPERATOR)).await.status, 401);
        write(&run.base, "tokens.toml", &tokens);
        let reloaded = request(addr, "POST", "/v1/reload", Some(ROTATED), None).await;
        assert_eq!(reloaded.status, 200, "{}", reloaded.text());

        // Invalid: a broken campaign next to another new, valid one. Neither is applied.
        write(
            &run.base,
            "campaigns/acme_autumn.toml",
            &campaign("acme_autumn", "acme"),
        );
        write(
            &run.base,
            "campaigns/broken.toml",
            "id = \"broken\"\ntarget = \"lots\"\n",
        );
        let rejected = request(addr, "POST", "/v1/reload", Some(OPERATOR), None).await;
        assert_eq!(rejected.status, 422, "{}", rejected.text());
        assert_eq!(rejected.error_code(), "invalid_config");
        let problems = rejected.json()["error"]["problems"].clone();
        assert!(
            problems
                .as_array()
                .expect("problems")
                .iter()
                .any(|p| p["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("broken.toml"))),
            "{problems}"
        );
        assert_eq!(
            get(addr, "/v1/campaigns/acme_autumn/decisions", Some(ACME))
                .await
                .status,
            404
        );
        assert_eq!(get(addr, new_campaign, Some(ACME)).await.status, 200);
        assert_eq!(run.daemon.settings().campaigns.len(), 3);

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_agent_makes_the_daemon_unready_and_shows_in_metrics() {
    bounded(BOUND, async {
        let run = start(true).await;
        let addr = run.addr;
        assert_eq!(get(addr, "/readyz", None).await.status, 200);

        isolate_flaky(&run).await;

        let ready = get(addr, "/readyz", None).await;
        assert_eq!(ready.status, 503, "{}", ready.text());
        let ready = ready.json();
        assert_eq!(ready["ready"], false);
        let reasons = ready["reasons"].to_string();
        assert!(reasons.contains("`flaky` is isolated"), "{reasons}");
        assert!(reasons.contains("flaky always fails"), "{reasons}");
        assert!(!reasons.contains("steady"), "{reasons}");

        let agents = get(addr, "/v1/agents", Some(OPERATOR)).await.json();
        let flaky = &agents["agents"][0];
        assert_eq!(
            (flaky["name"].as_str(), flaky["state"].as_str()),
            (Some("flaky"), Some("isolated"))
        );
        assert_eq!(flaky["restarts"], 1);

        let metrics = scrape(addr).await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain")),
            "{:?}",
            metrics.headers
        );
        let samples = parse_prometheus(&metrics.text());
        assert!(
            metrics.text().contains("# HELP campaignd_agents_isolated "),
            "{}",
            metrics.text()
        );
        let value = |name: &str, labels: &[(&str, &str)]| metric(&samples, name, labels);
        assert_eq!(
            value(
                "campaignd_agent_state",
                &[("agent", "flaky"), ("state", "isolated")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                "campaignd_agent_state",
                &[("agent", "steady"), ("state", "running")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value("campaignd_agent_restarts_total", &[("agent", "flaky")]),
            Some(1.0)
        );
        assert!(value("campaignd_agents_isolated", &[]).is_some_and(|v| v >= 1.0));
        assert!(value("campaignd_agents", &[("state", "running")]).is_some());
        assert!(value("campaignd_kb_size_bytes", &[]).is_some_and(|v| v > 0.0));
        assert!(
            value(
                "campaignd_http_requests_total",
                &[("route", "/readyz"), ("status", "503")]
            )
            .is_some_and(|v| v >= 1.0)
        );
        assert!(
            value(
                "campaignd_http_request_duration_seconds_bucket",
                &[("route", "/readyz"), ("le", "+Inf")]
            )
            .is_some_and(|v| v >= 1.0)
        );

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses the Prometheus text exposition format strictly enough to catch a malformed line:
/// comments are `# HELP` / `# TYPE`, samples are `name{label="value",…} number`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let is_name = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default();
            assert!(
                matches!(keyword, "HELP" | "TYPE") && is_name(name),
                "bad comment line: {line}"
            );
            if keyword == "TYPE" {
                let kind = parts.next().unwrap_or_default();
                assert!(
                    matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ),
                    "bad type: {line}"
                );
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label: {line}"));
                        assert!(is_name(k), "bad label name: {line}");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(is_name(name), "bad metric name: {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    assert!(!samples.is_empty(), "no samples in:\n{text}");
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        let seeded = seed(&run.daemon).await;
        let doc = get(addr, "/v1/openapi.json", Some(OPERATOR)).await;
        assert_eq!(doc.status, 200, "{}", doc.text());
        let doc = doc.json();
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{}",
            doc["openapi"]
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

        let mut listed = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                listed.insert((method.to_uppercase(), path.clone()));
            }
        }
        let expected: BTreeSet<(String, String)> = [
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("GET", "/v1/agents"),
            ("POST", "/v1/agents/{name}/revive"),
            ("GET", "/v1/campaigns"),
            ("GET", "/v1/campaigns/{id}"),
            ("POST", "/v1/campaigns/{id}/commands"),
            ("PUT", "/v1/campaigns/{id}/autonomy"),
            ("GET", "/v1/approvals"),
            ("GET", "/v1/approvals/{id}"),
            ("POST", "/v1/approvals/{id}/approve"),
            ("POST", "/v1/approvals/{id}/reject"),
            ("POST", "/v1/observations"),
            ("POST", "/v1/consents"),
            ("GET", "/v1/consents/{subject}"),
            ("DELETE", "/v1/consents/{subject}"),
            ("GET", "/v1/campaigns/{id}/orders"),
            ("POST", "/v1/orders/{key}/retry"),
            ("POST", "/v1/orders/{key}/cancel"),
            ("GET", "/v1/campaigns/{id}/decisions"),
            ("GET", "/v1/decisions/{id}"),
            ("GET", "/v1/traces/{correlation_id}"),
            ("POST", "/v1/reload"),
            ("GET", "/v1/openapi.json"),
        ]
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
        assert_eq!(listed, expected);

        // Every listed route is served (not the fallback): each GET answers 200; the POSTs that
        // need a body answer their own 400 for an empty one, naming the missing field.
        for (method, path) in &listed {
            let concrete = path
                .replace("{id}", "acme_spring")
                .replace("{correlation_id}", &seeded.acme_chain.to_string());
            let r = request(addr, method, &concrete, Some(OPERATOR), None).await;
            let needs_body = matches!(
                path.as_str(),
                "/v1/observations"
                    | "/v1/consents"
                    | "/v1/orders/{key}/retry"
                    | "/v1/orders/{key}/cancel"
                    | "/v1/campaigns/{id}/commands"
                    | "/v1/agents/{name}/revive"
                    | "/v1/approvals/{id}/approve"
                    | "/v1/approvals/{id}/reject"
                    | "/v1/campaigns/{id}/autonomy"
            );
            if path == "/v1/decisions/{id}" {
                // A campaign's id is not a decision's.
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (400, "invalid_parameter"),
                    "{}",
                    r.text()
                );
            } else if path == "/v1/approvals/{id}" {
                // No request has a campaign's id.
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (404, "unknown_approval"),
                    "{}",
                    r.text()
                );
            } else if path == "/v1/consents/{subject}" {
                // An operator's token names the tenant.
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (404, "unknown_tenant"),
                    "{method} {concrete}: {}",
                    r.text()
                );
            } else if needs_body {
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (400, "invalid_body"),
                    "{method} {concrete}: {}",
                    r.text()
                );
            } else {
                assert!(
                    r.status == 200 || (path == "/readyz" && r.status == 503),
                    "{method} {concrete}: {} {}",
                    r.status,
                    r.text()
                );
            }
        }
        let r = get(addr, "/v1/campaign", Some(OPERATOR)).await;
        assert_eq!((r.status, r.error_code().as_str()), (404, "no_such_route"));
        for schema in [
            "CampaignView",
            "CommandRequest",
            "ObservationBatch",
            "IngestAnswer",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "schema {schema} missing"
            );
        }

        // Every route under /v1 declares the bearer scheme; the probes do not.
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for operation in item.as_object().expect("item").values() {
                let secured = operation["security"].is_array();
                assert_eq!(secured, path.starts_with("/v1/"), "{path}");
            }
        }
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Campaigns, observations and commands.

/// The configured goal of `id`.
fn goal_of(run: &Running, id: &str) -> CampaignGoal {
    run.daemon
        .settings()
        .campaigns
        .iter()
        .find(|c| c.id.as_str() == id)
        .cloned()
        .expect("a configured campaign")
}

fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_show_the_board_to_their_own_tenant_and_in_metrics() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;

        // Before any tick: configured, waiting, no figures.
        let all = get(addr, "/v1/campaigns", Some(OPERATOR)).await;
        assert_eq!(all.status, 200, "{}", all.text());
        let all = all.json();
        let listed: Vec<&str> = all["campaigns"]
            .as_array()
            .expect("campaigns")
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(listed, ["acme_spring", "globex_autumn"]);
        assert_eq!(all["campaigns"][0]["state"], "waiting");
        assert_eq!(all["campaigns"][0]["phase"], Value::Null);
        assert_eq!(all["campaigns"][0]["goal"]["target"], 100);
        assert_eq!(all["campaigns"][0]["goal"]["currency"], "USD");
        assert_eq!(all["campaigns"][0]["goal"]["channels"], json!(["email"]));

        // Each tenant sees its own campaigns only; a client token sees none of its organization's.
        for (token, expected) in [
            (ACME, vec!["acme_spring"]),
            (GLOBEX, vec!["globex_autumn"]),
            (ACME_RETAIL, vec![]),
        ] {
            let r = get(addr, "/v1/campaigns", Some(token)).await.json();
            let ids: Vec<&str> = r["campaigns"]
                .as_array()
                .expect("campaigns")
                .iter()
                .filter_map(|c| c["id"].as_str())
                .collect();
            assert_eq!(ids, expected, "{token}");
        }

        // A campaign added by a reload is listed at once. (The metrics recorder is shared by every
        // test in this binary, so the figures below go to a campaign only this test has.)
        write(
            &run.base,
            "campaigns/acme_metrics.toml",
            &campaign("acme_metrics", "acme"),
        );
        let reloaded = request(addr, "POST", "/v1/reload", Some(OPERATOR), None).await;
        assert_eq!(reloaded.status, 200, "{}", reloaded.text());
        let r = get(addr, "/v1/campaigns/acme_metrics", Some(ACME)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["state"], "waiting");

        // The campaign loop reports a day: the API and the metrics show it.
        let goal = goal_of(&run, "acme_metrics");
        let report = TickReport {
            goal: goal.clone(),
            phase: Phase::Optimize,
            conversions: 40,
            progress: 0.4,
            spend: 300.0,
            eta_day: Some(20.0),
            buys: vec![Buy {
                channel: Channel::Email,
                segment: "everyone".into(),
                variant: "v1".into(),
                spend: 50.0,
            }],
            achieved: false,
            held: None,
            skipped: None,
            mix: BudgetMix {
                channels: vec![
                    ChannelMix {
                        channel: Channel::Email,
                        planned: 40.000000001,
                        daily: 50.0,
                    },
                    ChannelMix {
                        channel: Channel::Sms,
                        planned: 60.0,
                        daily: 50.0,
                    },
                ],
                why: Some("moved 10.00 USD of 100.00 USD a day".into()),
                decision: None,
            },
        };
        board_of(&run.daemon).record_tick(7, &report, false, Utc::now());
        let one = get(addr, "/v1/campaigns/acme_metrics", Some(ACME)).await;
        assert_eq!(one.status, 200, "{}", one.text());
        let one = one.json();
        assert_eq!(one["id"], "acme_metrics");
        assert_eq!(one["tenant"], "acme");
        assert_eq!(one["state"], "running");
        assert_eq!(one["phase"], "optimize");
        assert_eq!(one["day"], 7);
        assert_eq!(one["conversions"], 40);
        assert_eq!(one["progress"], 0.4);
        assert_eq!(one["spend"], 300.0);
        assert_eq!(one["eta_day"], 20.0);
        assert_eq!(one["eta"], "2026-10-21T00:00:00Z");
        assert_eq!(
            one["allocation"],
            json!([{ "channel": "email", "spend": 50.0, "share": 1.0, "variants": 1 }])
        );
        // How the real mix differs from the plan's, in cents, and why.
        assert_eq!(
            one["mix"],
            json!({
                "channels": [
                    { "channel": "email", "planned_daily": 40.0, "daily": 50.0, "planned_share": 0.4, "share": 0.5 },
                    { "channel": "sms", "planned_daily": 60.0, "daily": 50.0, "planned_share": 0.6, "share": 0.5 },
                ],
                "why": "moved 10.00 USD of 100.00 USD a day",
                "decision": null,
            })
        );
        assert!(one["updated_at"].is_string());
        for token in [GLOBEX, ACME_RETAIL] {
            let r = get(addr, "/v1/campaigns/acme_metrics", Some(token)).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (404, "unknown_campaign")
            );
        }

        let text = scrape(addr).await.text();
        let samples = parse_prometheus(&text);
        let acme = [("campaign", "acme_metrics"), ("tenant", "acme")];
        assert_eq!(
            metric(&samples, "campaignd_campaign_progress_ratio", &acme),
            Some(0.4)
        );
        assert_eq!(
            metric(&samples, "campaignd_campaign_conversions", &acme),
            Some(40.0)
        );
        assert_eq!(
            metric(&samples, "campaignd_campaign_eta_days", &acme),
            Some(20.0)
        );
        assert_eq!(
            metric(
                &samples,
                "campaignd_campaign_spend",
                &[("campaign", "acme_metrics"), ("currency", "USD")]
            ),
            Some(300.0)
        );
        for (phase, value) in [("explore", 0.0), ("optimize", 1.0), ("stabilize", 0.0)] {
            assert_eq!(
                metric(
                    &samples,
                    "campaignd_campaign_phase",
                    &[("campaign", "acme_metrics"), ("phase", phase)]
                ),
                Some(value),
                "{phase}"
            );
        }
        assert_eq!(
            metric(
                &samples,
                "campaignd_campaign_state",
                &[("campaign", "acme_metrics"), ("state", "running")]
            ),
            Some(1.0)
        );
        assert_eq!(
            metric(
                &samples,
                "campaignd_campaign_state",
                &[("campaign", "globex_autumn"), ("state", "waiting")]
            ),
            Some(1.0)
        );
        assert_eq!(
            metric(
                &samples,
                "campaignd_campaign_eta_days",
                &[("campaign", "globex_autumn")]
            ),
            None,
            "no ETA is shown before there is a forecast"
        );
        assert!(
            text.contains("# HELP campaignd_campaign_progress_ratio "),
            "{text}"
        );

        // A forecast that stops reaching the target turns the ETA gauge NaN, not a stale day; a
        // paused day shows as held and keeps the last figures.
        let paused = TickReport {
            eta_day: None,
            buys: Vec::new(),
            held: Some("paused by a command".into()),
            ..report
        };
        board_of(&run.daemon).record_tick(8, &paused, false, Utc::now());
        let samples = parse_prometheus(&scrape(addr).await.text());
        assert!(metric(&samples, "campaignd_campaign_eta_days", &acme).is_some_and(f64::is_nan));
        assert_eq!(
            metric(
                &samples,
                "campaignd_campaign_state",
                &[("campaign", "acme_metrics"), ("state", "held")]
            ),
            Some(1.0)
        );
        let one = get(addr, "/v1/campaigns/acme_metrics", Some(OPERATOR))
            .await
            .json();
        assert_eq!(
            (&one["state"], &one["held"], &one["conversions"]),
            (&json!("held"), &json!("paused by a command"), &json!(40))
        );
        assert_eq!(one["allocation"], json!([]));

        // A campaign removed by a reload leaves /metrics too, once its gauges have gone unset for
        // the exporter's idle time (5 s), rather than showing its last figures until a restart.
        std::fs::remove_file(run.base.join("campaigns/acme_metrics.toml")).expect("remove");
        let reloaded = request(addr, "POST", "/v1/reload", Some(OPERATOR), None).await;
        assert_eq!(reloaded.status, 200, "{}", reloaded.text());
        // The gauges were last set by the scrape before the reload: 5.5 s from now they are gone.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(5500);
        let text = loop {
            let text = scrape(addr).await.text();
            if !text.contains("acme_metrics") || tokio::time::Instant::now() >= deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(
            !text.contains("acme_metrics"),
            "acme_metrics still in /metrics 5.5 s after a reload removed it:\n{text}"
        );
        let samples = parse_prometheus(&text);
        assert_eq!(
            metric(
                &samples,
                "campaignd_campaign_state",
                &[("campaign", "globex_autumn"), ("state", "waiting")]
            ),
            Some(1.0),
            "the campaigns still configured stay"
        );

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

/// One observation of `acme_spring` as an ad platform's export would send it.
fn observation(variant: &str, impressions: i64, clicks: i64, conversions: i64) -> Value {
    json!({
        "channel": "email",
        "variant": variant,
        // Day 3 of a campaign that starts on 2026-10-01: the day the tests report it for.
        "window_start": "2026-10-04T00:00:00Z",
        "window_end": "2026-10-05T00:00:00Z",
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "spend": 12.5
    })
}

/// The outcomes recorded on `acme_spring`'s campaign chain, as the operator's trace shows them.
async fn recorded_outcomes(run: &Running) -> usize {
    let chain = ledger::campaign_correlation(&goal_of(run, "acme_spring"));
    let trace = get(run.addr, &format!("/v1/traces/{chain}"), Some(OPERATOR)).await;
    if trace.status == 404 {
        return 0;
    }
    assert_eq!(trace.status, 200, "{}", trace.text());
    trace.json()["outcomes"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_are_checked_item_by_item_and_a_retried_batch_counts_once() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        // The experiment decides the campaign's variants: only these are known.
        let mut experiment = decision(
            "optimization",
            "acme",
            "acme_spring",
            CorrelationId::new(),
            Utc::now(),
        );
        experiment.kind = "experiment".into();
        experiment.choice = json!({ "arms": [
            { "variant": "v1", "channel": "email", "segment": "everyone", "levels": [] },
            { "variant": "v2", "channel": "email", "segment": "everyone", "levels": [] }
        ]});
        run.daemon
            .kb()
            .record_decision(&experiment)
            .await
            .expect("record");

        let batch = json!({
            "campaign": "acme_spring",
            "day": 3,
            "observations": [
                observation("v1", 1000, 40, 4),
                observation("v2", 800, 30, 2),
                observation("v1", 10, 20, -1),
                observation("v9", 10, 1, 0),
                { "channel": "email", "variant": "v2", "clicks": "many" },
                observation("v1", 1000, 40, 4)
            ]
        });
        let body = serde_json::to_vec(&batch).expect("json");
        let key = [("Idempotency-Key", "export-2026-10-04-001")];
        let first = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&body),
        )
        .await;
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(first.header("idempotency-replayed"), None);
        let answer = first.json();
        assert_eq!(
            (
                &answer["recorded"],
                &answer["duplicates"],
                &answer["rejected"]
            ),
            (&json!(2), &json!(1), &json!(3)),
            "{answer}"
        );
        let items = answer["items"].as_array().expect("items");
        let statuses: Vec<&str> = items.iter().filter_map(|i| i["status"].as_str()).collect();
        assert_eq!(
            statuses,
            [
                "recorded",
                "recorded",
                "rejected",
                "rejected",
                "rejected",
                "duplicate"
            ]
        );
        let indexes: Vec<u64> = items.iter().filter_map(|i| i["index"].as_u64()).collect();
        assert_eq!(indexes, [0, 1, 2, 3, 4, 5]);
        let codes = |i: usize| -> Vec<String> {
            items[i]["problems"]
                .as_array()
                .expect("problems")
                .iter()
                .filter_map(|p| p["code"].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(codes(2), ["negative", "clicks_above_impressions"]);
        assert_eq!(codes(3), ["unknown_variant"]);
        assert_eq!(codes(4), ["invalid_item"]);
        let unreadable = items[4]["problems"][0]["message"]
            .as_str()
            .expect("message");
        assert!(unreadable.contains("clicks"), "{unreadable}");
        assert!(
            items[3]["problems"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("v9")),
            "{}",
            items[3]
        );
        assert_eq!(items[5]["outcome"], items[0]["outcome"]);
        // One channel of one day: both recorded observations are lines of one outcome.
        assert_eq!(items[1]["outcome"], items[0]["outcome"]);
        assert_eq!(recorded_outcomes(&run).await, 1);

        // The knowledge base's own figures reach /metrics, described and with buckets.
        let text = scrape(addr).await.text();
        let samples = parse_prometheus(&text);
        assert!(
            metric(&samples, "campaignd_kb_outcomes_written_total", &[]).is_some_and(|v| v >= 1.0),
            "{text}"
        );
        assert!(
            text.contains("# HELP campaignd_kb_outcomes_written_total "),
            "{text}"
        );
        assert!(
            metric(
                &samples,
                "campaignd_kb_flush_seconds_bucket",
                &[("le", "+Inf")]
            )
            .is_some(),
            "{text}"
        );

        // The same key and body again: the first answer, replayed, and nothing ingested.
        let retry = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&body),
        )
        .await;
        assert_eq!(retry.status, 200, "{}", retry.text());
        assert_eq!(retry.header("idempotency-replayed"), Some("true"));
        assert_eq!(retry.body, first.body);
        assert_eq!(recorded_outcomes(&run).await, 1);

        // The same key with another body is a client bug, not a retry.
        let mut changed = batch.clone();
        changed["day"] = json!(4);
        let changed = serde_json::to_vec(&changed).expect("json");
        let reused = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&changed),
        )
        .await;
        assert_eq!(reused.status, 422, "{}", reused.text());
        assert_eq!(reused.error_code(), "idempotency_key_reused");
        assert!(
            reused.text().contains("export-2026-10-04-001"),
            "{}",
            reused.text()
        );

        // Another tenant's key space is its own; and without a key ingestion's own idempotency
        // still counts the batch once.
        let again = request(
            addr,
            "POST",
            "/v1/observations",
            Some(OPERATOR),
            Some(&body),
        )
        .await;
        assert_eq!(again.status, 200, "{}", again.text());
        assert_eq!(again.json()["recorded"], 0);
        assert_eq!(again.json()["duplicates"], 3);
        assert_eq!(recorded_outcomes(&run).await, 1);

        // A day after the deadline (2026-10-01 → 2026-12-31 is 91 days) cannot be a buy's result.
        let mut late = batch.clone();
        late["day"] = json!(4_000_000_000u32);
        let late = serde_json::to_vec(&late).expect("json");
        let late = request(
            addr,
            "POST",
            "/v1/observations",
            Some(OPERATOR),
            Some(&late),
        )
        .await;
        assert_eq!(late.status, 200, "{}", late.text());
        let answer = late.json();
        assert_eq!(
            (&answer["recorded"], &answer["rejected"]),
            (&json!(0), &json!(6)),
            "{answer}"
        );
        assert_eq!(
            answer["items"][0]["problems"][0]["code"], "day_after_deadline",
            "{answer}"
        );
        assert_eq!(recorded_outcomes(&run).await, 1);

        // A client token of the organization may not ingest for the organization's campaign.
        let retail = request(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME_RETAIL),
            Some(&body),
        )
        .await;
        assert_eq!(
            (retail.status, retail.error_code().as_str()),
            (404, "unknown_campaign")
        );

        // The key survives a restart of the daemon on the same data folder.
        let Running {
            _dir, base, daemon, ..
        } = run;
        daemon.shutdown().await.expect("shutdown");
        let config = base.join("config/campaignd.toml");
        let settings = load_settings(&base, Some(&config), EnvOverrides::new());
        let daemon = Daemon::start(settings, Some(config), Registry::new().agent::<Steady>())
            .await
            .expect("daemon restarts");
        let addr = daemon.api_addr();
        let after = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&body),
        )
        .await;
        assert_eq!(after.status, 200, "{}", after.text());
        assert_eq!(after.header("idempotency-replayed"), Some("true"));
        assert_eq!(after.body, first.body);
        daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_the_orchestrator_and_are_recorded_in_the_tenants_trace() {
    bounded(BOUND, async {
        let run = start_with(With {
            orchestrator: true,
            ..With::default()
        })
        .await;
        let addr = run.addr;
        // The orchestrator knows acme_spring once it has split its goal (its `sub_goals`
        // decision) and has been ticked; globex_autumn it has never seen.
        let goal = goal_of(&run, "acme_spring");
        let mut sub_goals = decision(
            "orchestrator",
            "acme",
            "acme_spring",
            CorrelationId::new(),
            Utc::now(),
        );
        sub_goals.kind = "sub_goals".into();
        sub_goals.choice = json!({ "goal": goal });
        run.daemon
            .kb()
            .record_decision(&sub_goals)
            .await
            .expect("record");
        let tick = run
            .daemon
            .runtime()
            .client(Origin::Runtime)
            .request("orchestrator", Tick { goal, day: 0 })
            .await
            .expect("the orchestrator answers a tick");
        assert!(tick.held.is_some(), "without strategy it cannot buy");

        let mut chains = Vec::new();
        for (command, kind) in [
            ("pause", "pause"),
            ("resume", "resume"),
            ("replan", "replan_ordered"),
        ] {
            let body = format!(r#"{{"command": "{command}", "reason": "budget review"}}"#);
            let r = request(
                addr,
                "POST",
                "/v1/campaigns/acme_spring/commands",
                Some(OPERATOR),
                Some(body.as_bytes()),
            )
            .await;
            assert_eq!(r.status, 202, "{command}: {}", r.text());
            let accepted = r.json();
            assert_eq!(accepted["command"], command);
            let chain = accepted["correlation_id"].as_str().expect("id").to_owned();
            // The orchestrator's decision about it is in the campaign tenant's trace.
            let trace = get(addr, &format!("/v1/traces/{chain}"), Some(ACME)).await;
            assert_eq!(trace.status, 200, "{}", trace.text());
            let trace = trace.json();
            let decision = &trace["decisions"][0];
            assert_eq!(decision["agent"], "orchestrator");
            assert_eq!(decision["kind"], kind);
            assert_eq!(decision["id"], accepted["decision"]);
            assert!(
                decision["inputs"]["from"]
                    .as_str()
                    .is_some_and(|f| f.contains("ops")),
                "the token's name is the command's origin: {decision}"
            );
            chains.push(chain);
        }
        assert!(
            get(addr, &format!("/v1/traces/{}", chains[0]), Some(OPERATOR))
                .await
                .json()["decisions"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("budget review"))
        );
        // Another tenant cannot read the command's trace.
        let r = get(addr, &format!("/v1/traces/{}", chains[0]), Some(GLOBEX)).await;
        assert_eq!((r.status, r.error_code().as_str()), (404, "unknown_trace"));

        // A campaign the orchestrator has not set up: the command is not silently lost.
        let r = request(
            addr,
            "POST",
            "/v1/campaigns/globex_autumn/commands",
            Some(OPERATOR),
            Some(br#"{"command": "pause"}"#),
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (409, "command_ignored"),
            "{}",
            r.text()
        );
        // Tenants may not command, not even their own campaign.
        let r = request(
            addr,
            "POST",
            "/v1/campaigns/acme_spring/commands",
            Some(ACME),
            Some(br#"{"command": "pause"}"#),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "operator_only"));
        assert_eq!(get(addr, "/healthz", None).await.status, 200);

        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The HTTP layer: every error JSON, one rule for headers and query parameters, commands on a
// finished campaign.

/// Sends `raw` as it is on a new connection and reads the answer to its end.
async fn raw_request(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it has read everything; that is fine.
    let _ = stream.write_all(raw).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    parse_response(&answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_the_http_layer_answer_the_json_error_body() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        let many_headers: String = (0..120).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
        let huge_header = format!("X-Big: {}\r\n", "b".repeat(512 * 1024));
        // Over the head's limit but under hyper's read buffer: refused only by the limit.
        let large_header = format!("X-Big: {}\r\n", "b".repeat(300 * 1024));
        let long_path = format!("/v1/campaigns/{}", "a".repeat(70 * 1024));
        let cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
            ("a malformed request line".into(), b"NOT AN HTTP REQUEST\r\n\r\n".to_vec(), 400, "malformed_request"),
            (
                "a malformed header".into(),
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_vec(),
                400,
                "malformed_request",
            ),
            (
                "a path of 70 KiB".into(),
                format!("GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
                414,
                "uri_too_long",
            ),
            (
                "120 headers".into(),
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
                431,
                "headers_too_large",
            ),
            (
                "a header of 300 KiB".into(),
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{large_header}\r\n").into_bytes(),
                431,
                "headers_too_large",
            ),
            (
                "a header of 512 KiB".into(),
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{huge_header}\r\n").into_bytes(),
                431,
                "headers_too_large",
            ),
            (
                "a body that stops half-way".into(),
                format!(
                    "POST /v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"dry_run\""
                )
                .into_bytes(),
                408,
                "body_timeout",
            ),
            (
                "an unknown route".into(),
                b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                404,
                "no_such_route",
            ),
            (
                "a method the route does not have".into(),
                b"DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
                405,
                "method_not_allowed",
            ),
        ];
        for (what, raw, status, code) in cases {
            let r = raw_request(addr, &raw).await;
            assert_eq!(r.status, status, "{what}: {}", r.text());
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "{what}"
            );
            assert_eq!(r.error_code(), code, "{what}");
        }
        assert_eq!(get(addr, "/healthz", None).await.status, 200);
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_headers_and_unknown_query_parameters_are_refused_on_every_route() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        // The same token twice, or two different ones: which counts would be a guess.
        for second in [OPERATOR, ACME] {
            let r = request_with(
                addr,
                "GET",
                "/v1/campaigns",
                Some(OPERATOR),
                &[("Authorization", &format!("Bearer {second}"))],
                None,
            )
            .await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (400, "repeated_header")
            );
            assert!(r.text().contains("authorization"), "{}", r.text());
        }
        let batch = br#"{"campaign": "acme_spring", "day": 0, "observations": []}"#;
        let r = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &[("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-2")],
            Some(batch),
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "repeated_header")
        );

        // Every route, public or not, with or without parameters of its own, refuses one it
        // does not declare; a declared one still works.
        for (path, token) in [
            ("/healthz?verbose=1", None),
            ("/readyz?x=", None),
            ("/metrics?format=json", None),
            ("/v1/agents?all=true", Some(OPERATOR)),
            ("/v1/campaigns?tenant=globex", Some(ACME)),
            ("/v1/campaigns/acme_spring?fields=goal", Some(ACME)),
            (
                "/v1/campaigns/acme_spring/decisions?limit=5&colour=red",
                Some(ACME),
            ),
            ("/v1/openapi.json?pretty", Some(ACME)),
        ] {
            let r = get(addr, path, token).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (400, "invalid_parameter"),
                "{path}: {}",
                r.text()
            );
            let name = path
                .split('?')
                .nth(1)
                .and_then(|q| q.split('&').find(|p| !p.starts_with("limit=")))
                .and_then(|p| p.split('=').next())
                .expect("a parameter");
            assert!(
                r.text().contains(&format!("`{name}`")),
                "{path}: {}",
                r.text()
            );
        }
        let r = request(addr, "POST", "/v1/reload?force=1", Some(OPERATOR), None).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid_parameter")
        );
        let r = get(
            addr,
            "/v1/campaigns/acme_spring/decisions?limit=5",
            Some(ACME),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(get(addr, "/healthz", None).await.status, 200);
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_read_in_any_case_with_blanks_around_the_token() {
    bounded(BOUND, async {
        let run = start(false).await;
        let addr = run.addr;
        for value in [
            format!("Bearer {OPERATOR}"),
            format!("bearer {OPERATOR}"),
            format!("BEARER {OPERATOR}"),
            format!("Bearer \t {OPERATOR}  "),
            format!("bearer\t{OPERATOR}\t"),
        ] {
            let r = request_with(
                addr,
                "GET",
                "/v1/agents",
                None,
                &[("Authorization", &value)],
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{value:?}: {}", r.text());
        }
        for value in [
            format!("Bearer {OPERATOR} extra"),
            format!("Bearer{OPERATOR}"),
            format!("Basic {OPERATOR}"),
            "Bearer".to_owned(),
        ] {
            let r = request_with(
                addr,
                "GET",
                "/v1/agents",
                None,
                &[("Authorization", &value)],
                None,
            )
            .await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (401, "invalid_token"),
                "{value:?}"
            );
        }
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_a_finished_campaign_answer_409() {
    bounded(BOUND, async {
        let run = start_with(With {
            orchestrator: true,
            ..With::default()
        })
        .await;
        let addr = run.addr;
        let report = |goal: CampaignGoal, achieved: bool| TickReport {
            goal,
            phase: Phase::Stabilize,
            conversions: if achieved { 100 } else { 10 },
            progress: if achieved { 1.0 } else { 0.1 },
            spend: 100.0,
            eta_day: None,
            buys: Vec::new(),
            achieved,
            held: None,
            skipped: None,
            mix: Default::default(),
        };
        let board = board_of(&run.daemon);
        // Achieved; ended at its deadline; and still reported running though its deadline has
        // passed on the campaign's clock.
        board.record_tick(
            9,
            &report(goal_of(&run, "acme_spring"), true),
            false,
            Utc::now(),
        );
        board.record_tick(
            9,
            &report(goal_of(&run, "globex_autumn"), false),
            true,
            Utc::now(),
        );
        for (id, needle) in [
            ("acme_spring", "reached its target"),
            ("globex_autumn", "ended at its deadline"),
        ] {
            for command in ["pause", "resume", "replan"] {
                let body = format!(r#"{{"command": "{command}"}}"#);
                let r = request(
                    addr,
                    "POST",
                    &format!("/v1/campaigns/{id}/commands"),
                    Some(OPERATOR),
                    Some(body.as_bytes()),
                )
                .await;
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (409, "campaign_finished"),
                    "{id} {command}: {}",
                    r.text()
                );
                assert!(r.text().contains(needle), "{}", r.text());
            }
        }
        let mut past = goal_of(&run, "globex_autumn");
        past.deadline = run.daemon.runtime().clock().now() - TimeDelta::days(1);
        board.record_tick(10, &report(past, false), false, Utc::now());
        let r = request(
            addr,
            "POST",
            "/v1/campaigns/globex_autumn/commands",
            Some(OPERATOR),
            Some(br#"{"command": "resume"}"#),
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (409, "campaign_finished"),
            "{}",
            r.text()
        );
        assert!(r.text().contains("past its deadline"), "{}", r.text());
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The real binary against many slow or idle connections.

/// Starts the real binary on a deployment in `base` (the shipped agents, no campaign, a manual
/// clock) with `api` appended to its `[api]` section, through `prlimit` when `nofile` is given,
/// and returns it with the address its API listens on.
fn start_binary(base: &Path, api: &str, nofile: Option<u32>) -> (Process, SocketAddr) {
    shipped_deployment(
        base,
        60,
        &format!(
            "{api}\n[[api.tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n\n[market]\nsource = \"api\"\n"
        ),
    );
    let binary = env!("CARGO_BIN_EXE_campaignd");
    let mut command = match nofile {
        // prlimit sets the limit and then becomes campaignd (same process, same signals).
        Some(limit) => {
            let mut command = std::process::Command::new("prlimit");
            command
                .arg(format!("--nofile={limit}:{limit}"))
                .arg("--")
                .arg(binary);
            command.env_remove("RUST_LOG");
            command
        }
        None => campaignd(),
    };
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(base.join("config/campaignd.toml"))
        .current_dir(base);
    let daemon = Process::spawn(&mut command, None);
    let listening = daemon.wait_for_lines(
        "the `API listening` line",
        1,
        Duration::from_secs(30),
        |line| line.contains("API listening"),
    );
    let line: Value = serde_json::from_str(&listening[0]).expect("JSON log line");
    let addr = line["fields"]["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"));
    daemon.wait_for_lines(
        "the `campaignd ready` line",
        1,
        Duration::from_secs(30),
        |line| line.contains("campaignd ready"),
    );
    (daemon, addr)
}

/// One request on a new blocking connection, bounded: `None` if no complete answer came within
/// `within` (the server never accepted the connection, or never answered).
fn blocking_request(addr: SocketAddr, raw: &str, within: Duration) -> Option<Response> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, within).ok()?;
    stream.set_read_timeout(Some(within)).ok()?;
    stream.set_write_timeout(Some(within)).ok()?;
    stream.write_all(raw.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    answer
        .windows(4)
        .any(|w| w == b"\r\n\r\n")
        .then(|| parse_response(&answer))
}

/// Holds `idle` connections open that send nothing, then `half_sent` that send half their
/// request's headers and never finish them.
fn hold_connections(addr: SocketAddr, idle: usize, half_sent: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..idle + half_sent)
        .map(|i| {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            if i >= idle {
                stream
                    .write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .expect("send half a head");
            }
            stream
        })
        .collect()
}

#[test]
fn a_flood_of_idle_and_half_sent_connections_under_a_low_file_limit_does_not_lock_out_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A header timeout as long as allowed: what keeps the API open must be the connection limit.
    let (mut daemon, addr) = start_binary(dir.path(), "header_timeout_secs = 300", Some(128));
    let _held = hold_connections(addr, 100, 100);
    let within = Duration::from_secs(10);
    let ready = blocking_request(
        addr,
        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        within,
    )
    .expect("/readyz answers while 200 connections are held under a 128-file limit");
    assert_eq!(ready.status, 200, "{}", ready.text());
    // The daemon still has descriptors for its files: a dry-run reload reads the whole config.
    let body = r#"{"dry_run": true}"#;
    let reload = blocking_request(
        addr,
        &format!(
            "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        within,
    )
    .expect("a reload is answered under the flood");
    assert_eq!(reload.status, 200, "{}", reload.text());
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_with_fifty_half_sent_requests_exits_well_within_the_shutdown_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    // shutdown_timeout_secs is 60 and the header timeout 300: an exit within 15 s can only come
    // from closing the half-sent requests at once.
    let (mut daemon, addr) = start_binary(dir.path(), "header_timeout_secs = 300", None);
    let _held = hold_connections(addr, 0, 50);
    // Answered after every held connection was accepted (the listener accepts in order).
    let health = blocking_request(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .expect("/healthz answers");
    assert_eq!(health.status, 200);
    let status = daemon.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_lasts_a_week_of_wall_clock_time_not_of_the_campaign_clock() {
    bounded(BOUND, async {
        // The deployment's clock runs 172 800 times faster than the wall clock: a campaign week
        // passes in about 3.5 real seconds.
        let run = start(false).await;
        let addr = run.addr;
        let batch = |day: u32| {
            serde_json::to_vec(&json!({
                "campaign": "acme_spring",
                "day": day,
                "observations": [{ "channel": "email", "variant": "v1", "clicks": "many" }]
            }))
            .expect("json")
        };
        let key = [("Idempotency-Key", "wall-clock-week")];
        let first = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&batch(0)),
        )
        .await;
        assert_eq!(first.status, 200, "{}", first.text());
        let clock = run.daemon.runtime().clock().clone();
        let stored = clock.now();
        wait_until(
            "eight days to pass on the campaign clock",
            Duration::from_secs(20),
            || clock.now() - stored > TimeDelta::days(8),
        )
        .await;
        let other = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&batch(1)),
        )
        .await;
        assert_eq!(
            (other.status, other.error_code().as_str()),
            (422, "idempotency_key_reused"),
            "{}",
            other.text()
        );
        let again = request_with(
            addr,
            "POST",
            "/v1/observations",
            Some(ACME),
            &key,
            Some(&batch(0)),
        )
        .await;
        assert_eq!(again.status, 200, "{}", again.text());
        assert_eq!(again.header("idempotency-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        run.daemon.shutdown().await.expect("shutdown");
    })
    .await;
}

#[test]
fn the_connection_bounds_outside_their_ranges_are_refused_with_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "campaignd.toml",
        "[api]\nheader_timeout_secs = 0\nbody_timeout_secs = 3601\nidle_timeout_secs = 18446744073709551615\nmax_connections = 0\n",
    );
    let outcome = run(
        campaignd()
            .arg("check")
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path()),
        None,
    );
    assert_ne!(outcome.code, Some(0), "{}", outcome.stderr);
    let said = format!("{}{}", outcome.stdout, outcome.stderr);
    for (key, range) in [
        ("api.header_timeout_secs", "between 1 and 300"),
        ("api.body_timeout_secs", "between 1 and 3600"),
        ("api.idle_timeout_secs", "between 1 and 3600"),
        ("api.max_connections", "between 1 and 65536"),
    ] {
        assert!(
            said.lines().any(|l| l.contains(key) && l.contains(range)),
            "{key}: {said}"
        );
    }
}
