//! Failing closed, proven with injected faults: the real agents on a real runtime and a real sled
//! knowledge base, with test-only stand-ins that wrap the real compliance, orchestrator and
//! optimization agents and fail, crash or stall on a switch. The stand-ins live in this test
//! crate only, so no release build can reach them.
//!
//! - Compliance fails until it is isolated; then the orchestrator is restarted, the isolation
//!   event is dropped, `resume` is sent: nothing is approved and nothing is bought in any case.
//! - A peer that does not answer in time holds the day instead of restarting the orchestrator.
//! - Through the real HTTP API: a `resume` while compliance is isolated answers 409 with the
//!   reason, and `POST /v1/agents/{name}/revive` (and `campaignd revive`) restarts the agent under
//!   supervision and records who and why.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use campaignd::agents::compliance::{Compliance, ReviewVariants};
use campaignd::agents::ledger;
use campaignd::agents::messages::{
    AgentIsolated, AgentRevived, GoalProgress, ObservationsRecorded, Pause, RecordConsent,
    Reexplore, Replan, Resume, Tick,
};
use campaignd::agents::optimization::{GetProgress, Optimization, PlanBuys, StartExperiment};
use campaignd::agents::orchestrator::Orchestrator;
use campaignd::agents::{self, Registry};
use campaignd::campaign::{CampaignLoop, DayReport, LoopOptions};
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::kb::{KnowledgeBase, Record};
use campaignd::protocol::{Envelope, Payload};
use campaignd::runtime::{
    Agent, AgentError, AgentSpec, AgentState, Clock, Context, DeliveryError, HandleCommand,
    HandleEvent, HandleRequest, Request, Routes, Runtime, Services, StartContext,
    SupervisionPolicy,
};
use campaignd::settings::EnvOverrides;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    agent_specs, bounded, campaignd, copy_shipped_agent, kr_goal, load_settings, run, scratch_kb,
    sim_start, wait_until, write,
};

const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(10);

/// A fault switch shared between a test and its stand-in agents (through the runtime's services).
#[derive(Default)]
struct Faults {
    /// Compliance fails every review.
    compliance: AtomicBool,
    /// Optimization answers progress only after its callers have timed out.
    slow_optimization: AtomicBool,
}

fn faults_of(ctx: &StartContext) -> Result<Arc<Faults>, AgentError> {
    ctx.services.require::<Faults>()
}

/// Implements `HandleRequest` / `HandleEvent` / `HandleCommand` for a stand-in by handing the
/// message to the real agent it wraps (`self.inner`).
macro_rules! delegate {
    ($outer:ty => $inner:ty; requests $($request:ty),*; events $($event:ty),*; commands $($command:ty),*) => {
        $(impl HandleRequest<$request> for $outer {
            async fn handle_request(
                &mut self,
                ctx: &Context,
                request: Envelope<$request>,
            ) -> Result<<$request as Request>::Response, AgentError> {
                <$inner as HandleRequest<$request>>::handle_request(&mut self.inner, ctx, request).await
            }
        })*
        $(impl HandleEvent<$event> for $outer {
            async fn handle_event(&mut self, ctx: &Context, event: Envelope<$event>) -> Result<(), AgentError> {
                <$inner as HandleEvent<$event>>::handle_event(&mut self.inner, ctx, event).await
            }
        })*
        $(impl HandleCommand<$command> for $outer {
            async fn handle_command(&mut self, ctx: &Context, command: Envelope<$command>) -> Result<(), AgentError> {
                <$inner as HandleCommand<$command>>::handle_command(&mut self.inner, ctx, command).await
            }
        })*
    };
}

/// The real compliance agent, failing every review while `Faults::compliance` is on.
struct FaultyCompliance {
    inner: Compliance,
    faults: Arc<Faults>,
}

impl Agent for FaultyCompliance {
    const NAME: &'static str = Compliance::NAME;

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let faults = faults_of(&ctx)?;
        Ok(FaultyCompliance {
            inner: Compliance::start(ctx).await?,
            faults,
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<ReviewVariants>()
            .request::<RecordConsent>();
    }
}

impl HandleRequest<ReviewVariants> for FaultyCompliance {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<ReviewVariants>,
    ) -> Result<<ReviewVariants as Request>::Response, AgentError> {
        if self.faults.compliance.load(Ordering::SeqCst) {
            return Err(AgentError::msg(
                "injected fault: the rule engine is unavailable",
            ));
        }
        self.inner.handle_request(ctx, request).await
    }
}

delegate!(FaultyCompliance => Compliance; requests RecordConsent; events; commands);

/// An order only the test gives: the orchestrator fails handling it, so supervision restarts it
/// (a new incarnation, built by `Orchestrator::start`, with nothing in memory).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Crash;

impl Payload for Crash {
    const ACTION: &'static str = "test_crash";
}

/// The real orchestrator, plus the `Crash` order.
struct CrashableOrchestrator {
    inner: Orchestrator,
}

impl Agent for CrashableOrchestrator {
    const NAME: &'static str = Orchestrator::NAME;

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(CrashableOrchestrator {
            inner: Orchestrator::start(ctx).await?,
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<Tick>()
            .event::<AgentIsolated>()
            .event::<GoalProgress>()
            .event::<ObservationsRecorded>()
            .command::<Pause>()
            .command::<Resume>()
            .command::<Replan>()
            .command::<AgentRevived>()
            .command::<Crash>();
    }
}

impl HandleCommand<Crash> for CrashableOrchestrator {
    async fn handle_command(&mut self, _: &Context, _: Envelope<Crash>) -> Result<(), AgentError> {
        Err(AgentError::msg("injected fault: the orchestrator crashes"))
    }
}

delegate!(CrashableOrchestrator => Orchestrator;
    requests Tick;
    events AgentIsolated, GoalProgress, ObservationsRecorded;
    commands Pause, Resume, Replan, AgentRevived);

/// The real optimization agent, answering progress too late while `Faults::slow_optimization`
/// is on.
struct SlowOptimization {
    inner: Optimization,
    faults: Arc<Faults>,
    timeout: Duration,
}

impl Agent for SlowOptimization {
    const NAME: &'static str = Optimization::NAME;

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let faults = faults_of(&ctx)?;
        let timeout = ctx.spec.request_timeout;
        Ok(SlowOptimization {
            inner: Optimization::start(ctx).await?,
            faults,
            timeout,
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<StartExperiment>()
            .request::<PlanBuys>()
            .request::<GetProgress>()
            .event::<ObservationsRecorded>()
            .command::<Reexplore>();
    }
}

impl HandleRequest<GetProgress> for SlowOptimization {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<GetProgress>,
    ) -> Result<<GetProgress as Request>::Response, AgentError> {
        if self.faults.slow_optimization.load(Ordering::SeqCst) {
            tokio::time::sleep(self.timeout * 2).await;
        }
        self.inner.handle_request(ctx, request).await
    }
}

delegate!(SlowOptimization => Optimization;
    requests StartExperiment, PlanBuys;
    events ObservationsRecorded;
    commands Reexplore);

struct Harness {
    runtime: Runtime,
    kb: KnowledgeBase,
    clock: Clock,
    faults: Arc<Faults>,
    _dir: tempfile::TempDir,
}

/// The five shipped agents, with compliance, the orchestrator and optimization wrapped in their
/// stand-ins; compliance is isolated at its first failure.
async fn harness(edit: impl Fn(&mut AgentSpec)) -> Harness {
    let mut registry = agents::registry().runtime().clone();
    registry.register::<FaultyCompliance>(Compliance::NAME);
    registry.register::<CrashableOrchestrator>(Orchestrator::NAME);
    registry.register::<SlowOptimization>(Optimization::NAME);
    let mut specs = agent_specs();
    for spec in &mut specs {
        if spec.name.as_str() == Compliance::NAME {
            spec.supervision = SupervisionPolicy {
                max_restarts: 0,
                ..spec.supervision
            };
        }
        edit(spec);
    }
    let (dir, kb) = scratch_kb();
    let faults = Arc::new(Faults::default());
    let clock = Clock::manual(sim_start());
    let mut services = Services::new().with(kb.clone());
    services.insert(Arc::clone(&faults));
    let runtime = Runtime::builder(registry)
        .agents(specs)
        .services(services)
        .clock(clock.clone())
        .start()
        .await
        .expect("the runtime starts");
    Harness {
        runtime,
        kb,
        clock,
        faults,
        _dir: dir,
    }
}

fn options() -> LoopOptions {
    LoopOptions::new(
        42,
        campaignd::domain::strategy::StrategyPlaybook::embedded().expect("embedded playbook"),
    )
}

/// One day of `campaign_loop`; every campaign answers a tick (the orchestrator never fails).
async fn day(h: &Harness, campaign_loop: &mut CampaignLoop) -> Vec<DayReport> {
    let reports = campaign_loop.step().await;
    for report in &reports {
        assert!(report.error.is_none(), "{report:?}");
        assert!(report.tick.is_some(), "{report:?}");
    }
    h.clock.advance(DAY).expect("the manual clock advances");
    // Let the optimizer fold the day's batch before the next tick asks for progress.
    tokio::task::yield_now().await;
    reports
}

/// Asserts a day bought nothing and says why.
fn held(reports: &[DayReport], why: &str, case: &str) {
    for report in reports {
        let tick = report.tick.as_ref().expect("a tick");
        assert!(tick.buys.is_empty(), "{case}: bought {tick:?}");
        assert!(
            tick.held.as_deref().is_some_and(|h| h.contains(why)),
            "{case}: {tick:?}"
        );
    }
}

fn decisions(h: &Harness, goal: &CampaignGoal) -> Vec<campaignd::kb::Decision> {
    h.kb.decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .expect("the knowledge base reads")
        .records
}

fn outcomes(h: &Harness, goal: &CampaignGoal) -> usize {
    h.kb.by_campaign(&ledger::scope(goal), &goal.id)
        .expect("the knowledge base reads")
        .records
        .iter()
        .filter(|r| matches!(r, Record::Outcome(_)))
        .count()
}

fn approved_reviews(h: &Harness, goal: &CampaignGoal) -> usize {
    decisions(h, goal)
        .iter()
        .filter(|d| d.kind == "review" && d.choice["approved"] == json!(true))
        .count()
}

async fn compliance_isolated(h: &Harness) {
    wait_until("compliance isolated", WAIT, || {
        h.runtime
            .agent_status(Compliance::NAME)
            .is_some_and(|s| s.state == AgentState::Isolated)
    })
    .await;
}

async fn resume_refused(h: &Harness, goal: &CampaignGoal, case: &str) {
    let answer = h
        .runtime
        .operator("ops")
        .command(
            Orchestrator::NAME,
            Resume {
                campaign: goal.id.clone(),
                why: "looks fine to me".to_owned(),
            },
        )
        .await;
    match answer {
        Err(DeliveryError::Refused { reason, .. }) => {
            assert!(
                reason.contains("compliance is isolated"),
                "{case}: {reason}"
            );
            assert!(reason.contains("revive"), "{case}: {reason}");
        }
        other => panic!("{case}: a resume while compliance is isolated must be refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_failing_until_isolated_approves_and_buys_nothing_through_restart_lost_event_and_resume()
 {
    bounded(Duration::from_secs(60), async {
        let h = harness(|_| {}).await;
        // `running` is set up and buying before the fault; `fresh` starts once compliance fails.
        let running = kr_goal("safety_running", 100_000, 30);
        let fresh = kr_goal("safety_fresh", 100_000, 30);
        let mut running_loop = CampaignLoop::new(
            h.runtime.clone(),
            h.kb.clone(),
            vec![running.clone()],
            options(),
        );
        let mut fresh_loop = CampaignLoop::new(
            h.runtime.clone(),
            h.kb.clone(),
            vec![fresh.clone()],
            options(),
        );
        let first = day(&h, &mut running_loop).await;
        assert!(
            !first[0].tick.as_ref().expect("a tick").buys.is_empty(),
            "before the fault the campaign buys: {first:?}"
        );
        let observed = outcomes(&h, &running);
        assert!(observed > 0);

        // Compliance fails until isolated: the fresh campaign's first review isolates it.
        h.faults.compliance.store(true, Ordering::SeqCst);
        held(
            &day(&h, &mut fresh_loop).await,
            "compliance",
            "the failing review",
        );
        compliance_isolated(&h).await;
        for _ in 0..2 {
            held(
                &day(&h, &mut running_loop).await,
                "compliance is isolated",
                "isolated",
            );
            held(
                &day(&h, &mut fresh_loop).await,
                "compliance is isolated",
                "isolated",
            );
        }

        // The orchestrator restarts: a new incarnation, nothing in memory.
        let restarts = h
            .runtime
            .agent_status(Orchestrator::NAME)
            .expect("configured")
            .restarts;
        let crashed = h
            .runtime
            .operator("ops")
            .command(Orchestrator::NAME, Crash)
            .await;
        assert!(
            matches!(crashed, Err(DeliveryError::Failed { .. })),
            "{crashed:?}"
        );
        wait_until("the orchestrator restarted", WAIT, || {
            h.runtime
                .agent_status(Orchestrator::NAME)
                .is_some_and(|s| s.state == AgentState::Running && s.restarts == restarts + 1)
        })
        .await;
        held(
            &day(&h, &mut running_loop).await,
            "compliance is isolated",
            "after a restart",
        );
        held(
            &day(&h, &mut fresh_loop).await,
            "compliance is isolated",
            "after a restart",
        );

        // An operator resumes while compliance is still isolated: refused, still held.
        resume_refused(&h, &running, "resume").await;
        held(
            &day(&h, &mut running_loop).await,
            "compliance is isolated",
            "after a resume",
        );

        // The isolation event is dropped: the orchestrator no longer subscribes to it, and
        // compliance (revived with the fault still on) is isolated again at its next review.
        let mut orchestrator = agent_specs()
            .into_iter()
            .find(|s| s.name.as_str() == Orchestrator::NAME)
            .expect("the orchestrator's spec");
        orchestrator
            .subscribe
            .retain(|t| t.as_str() != "agent_isolated");
        h.runtime
            .update_spec(orchestrator)
            .expect("the spec applies");
        h.runtime.revive(Compliance::NAME).await.expect("revived");
        held(
            &day(&h, &mut fresh_loop).await,
            "compliance",
            "the second failing review",
        );
        compliance_isolated(&h).await;
        held(
            &day(&h, &mut running_loop).await,
            "compliance is isolated",
            "event dropped",
        );
        held(
            &day(&h, &mut fresh_loop).await,
            "compliance is isolated",
            "event dropped",
        );
        resume_refused(&h, &running, "resume with the event dropped").await;
        held(
            &day(&h, &mut running_loop).await,
            "compliance is isolated",
            "event dropped",
        );

        // Nothing was approved for the fresh campaign and nothing more was bought for either.
        assert_eq!(approved_reviews(&h, &fresh), 0);
        assert!(decisions(&h, &fresh).iter().all(|d| d.kind != "setup"));
        assert_eq!(outcomes(&h, &fresh), 0, "nothing sent, nothing observed");
        assert_eq!(
            outcomes(&h, &running),
            observed,
            "nothing bought after the fault"
        );
        // A held day is not consumed: the same day is retried, and its hold recorded once.
        let holds: Vec<_> = decisions(&h, &running)
            .into_iter()
            .filter(|d| d.kind == "hold")
            .collect();
        assert_eq!(holds.len(), 1, "{holds:?}");
        assert!(
            holds[0].reason.contains("compliance is isolated")
                && holds[0].reason.contains("revive"),
            "{}",
            holds[0].reason
        );

        // The proof can fail: with the fault cleared and compliance revived, a resume is
        // accepted and the campaign buys again.
        h.faults.compliance.store(false, Ordering::SeqCst);
        h.runtime.revive(Compliance::NAME).await.expect("revived");
        h.runtime
            .operator("ops")
            .command(
                Orchestrator::NAME,
                Resume {
                    campaign: running.id.clone(),
                    why: "rule engine fixed".to_owned(),
                },
            )
            .await
            .expect("a resume once compliance runs is accepted");
        let back = day(&h, &mut running_loop).await;
        assert!(
            !back[0].tick.as_ref().expect("a tick").buys.is_empty(),
            "{back:?}"
        );
        // The resume carries the wall-clock time the operator gave it, not the campaign's
        // simulated day.
        let resumed = decisions(&h, &running)
            .into_iter()
            .find(|d| d.kind == "resume")
            .expect("the accepted resume is recorded");
        let at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(resumed.inputs["at"].clone()).expect("an audit time");
        let off = (chrono::Utc::now() - at).num_seconds().abs();
        assert!(off < 300, "recorded at {at}, {off} s from the wall clock");
        h.runtime.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_times_out_holds_the_day_and_never_restarts_the_orchestrator() {
    bounded(Duration::from_secs(60), async {
        let h = harness(|spec| {
            if spec.name.as_str() == Optimization::NAME {
                spec.request_timeout = Duration::from_millis(200);
            }
        })
        .await;
        let goal = kr_goal("safety_slow_peer", 100_000, 30);
        let mut campaign_loop = CampaignLoop::new(
            h.runtime.clone(),
            h.kb.clone(),
            vec![goal.clone()],
            options(),
        );
        let first = day(&h, &mut campaign_loop).await;
        assert!(!first[0].tick.as_ref().expect("a tick").buys.is_empty());

        // More slow days than the orchestrator's restart intensity allows failures (3 in 60 s).
        h.faults.slow_optimization.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            held(
                &day(&h, &mut campaign_loop).await,
                "agent `optimization` did not answer get_progress",
                "a slow peer",
            );
        }
        let orchestrator = h
            .runtime
            .agent_status(Orchestrator::NAME)
            .expect("configured");
        assert_eq!(orchestrator.state, AgentState::Running, "{orchestrator:?}");
        assert_eq!(orchestrator.restarts, 0, "{orchestrator:?}");
        let holds: Vec<_> = decisions(&h, &goal)
            .into_iter()
            .filter(|d| d.kind == "hold")
            .collect();
        assert!(!holds.is_empty());
        assert!(
            holds
                .iter()
                .all(|d| d.reason.contains("optimization") && d.reason.contains("200 ms")),
            "{:?}",
            holds.iter().map(|d| &d.reason).collect::<Vec<_>>()
        );

        h.faults.slow_optimization.store(false, Ordering::SeqCst);
        wait_until("optimization done with the late answers", WAIT, || {
            h.runtime
                .agent_status(Optimization::NAME)
                .is_some_and(|s| s.in_flight == 0)
        })
        .await;
        let back = day(&h, &mut campaign_loop).await;
        assert!(
            !back[0].tick.as_ref().expect("a tick").buys.is_empty(),
            "{back:?}"
        );
        h.runtime.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Through the real HTTP API and the real binary's client command.

const OPERATOR: &str = "safety-operator-token-0123";
const TENANT: &str = "safety-acme-token-01234567";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Probe;
impl Payload for Probe {
    const ACTION: &'static str = "probe";
}
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Probed;
impl Payload for Probed {
    const ACTION: &'static str = "probed";
}
impl Request for Probe {
    type Response = Probed;
}

/// Stands in for compliance in the daemon and fails every probe, so a test isolates it at will.
struct BrittleCompliance;

impl Agent for BrittleCompliance {
    const NAME: &'static str = Compliance::NAME;

    async fn start(_: StartContext) -> Result<Self, AgentError> {
        Ok(BrittleCompliance)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Probe>();
    }
}

impl HandleRequest<Probe> for BrittleCompliance {
    async fn handle_request(
        &mut self,
        _: &Context,
        _: Envelope<Probe>,
    ) -> Result<Probed, AgentError> {
        Err(AgentError::msg(
            "injected fault: the rule engine is unavailable",
        ))
    }
}

/// A deployment with the real orchestrator and the brittle compliance (one restart allowed, then
/// isolated), market data through the API, one campaign of tenant `acme`.
fn deployment(base: &Path) -> std::path::PathBuf {
    let abs = |p: &str| base.join(p).display().to_string();
    write(
        base,
        "tokens.toml",
        &format!(
            "[[tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n\n[[tokens]]\nname = \"acme\"\ntoken = \"{TENANT}\"\ntenant = \"acme\"\n"
        ),
    );
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nagents_dir = {:?}\ncampaigns_dir = {:?}\nshutdown_timeout_secs = 5\n\n\
             [market]\nsource = \"api\"\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\ntokens_file = {:?}\n",
            abs("data"),
            abs("agents"),
            abs("campaigns"),
            abs("tokens.toml"),
        ),
    );
    copy_shipped_agent(base, "orchestrator");
    write(
        base,
        "agents/compliance.toml",
        "[agent]\nmailbox = 64\n[agent.supervision]\nmax_restarts = 1\nwithin_secs = 60\nbackoff_initial_ms = 10\nbackoff_max_ms = 20\n",
    );
    write(
        base,
        "campaigns/acme_safety.toml",
        &format!(
            "id = \"acme_safety\"\ntenant = \"acme\"\nobjective = \"purchases\"\ntarget = 100\nstart = \"2026-10-01T00:00:00Z\"\ndeadline = \"2026-12-31T00:00:00Z\"\nchannels = [\"email\"]\nregions = [\"US\"]\n[budget]\ntotal = 1000.0\ncurrency = \"USD\"\n[[segments]]\nid = \"everyone\"\n{}",
            crate::support::US_BRIEF
        ),
    );
    base.join("config/campaignd.toml")
}

/// One HTTP/1.1 request on its own connection; the status and the JSON body.
async fn http(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        // One chunk is enough for these small answers: size line, data, then the last chunk.
        body.split_once("\r\n")
            .map_or("", |(_, rest)| rest)
            .rsplit_once("\r\n0\r\n")
            .map_or(body, |(data, _)| data)
            .to_owned()
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn isolate(daemon: &Daemon) {
    let runtime = daemon.runtime();
    let op = runtime.operator("test");
    for _ in 0..200 {
        if runtime
            .agent_status(Compliance::NAME)
            .is_some_and(|s| s.state == AgentState::Isolated)
        {
            return;
        }
        let _ = op.request(Compliance::NAME, Probe).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("compliance was not isolated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_while_compliance_is_isolated_is_409_and_a_revive_restarts_it_and_is_recorded() {
    bounded(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = deployment(dir.path());
        let settings = load_settings(dir.path(), Some(&config), EnvOverrides::new());
        let registry = Registry::new()
            .agent::<Orchestrator>()
            .agent::<BrittleCompliance>();
        let daemon = Daemon::start(settings, Some(config.clone()), registry)
            .await
            .expect("the daemon starts");
        let addr = daemon.api_addr();
        isolate(&daemon).await;

        let resume = r#"{"command": "resume", "reason": "looks fine"}"#;
        let (status, body) = http(
            addr,
            "POST",
            "/v1/campaigns/acme_safety/commands",
            OPERATOR,
            resume,
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "command_refused", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("compliance is isolated"), "{message}");
        assert!(
            message.contains("injected fault"),
            "the reason names the failure: {message}"
        );

        // Who may revive, and what.
        let reason = r#"{"reason": "rule engine fixed"}"#;
        let (status, body) =
            http(addr, "POST", "/v1/agents/compliance/revive", TENANT, reason).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (403, json!("operator_only"))
        );
        let (status, body) =
            http(addr, "POST", "/v1/agents/compliance/revive", OPERATOR, "{}").await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (400, json!("invalid_body"))
        );
        let (status, body) = http(addr, "POST", "/v1/agents/nobody/revive", OPERATOR, reason).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (404, json!("unknown_agent"))
        );
        let (status, body) = http(
            addr,
            "POST",
            "/v1/agents/orchestrator/revive",
            OPERATOR,
            reason,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (409, json!("revive_refused"))
        );
        assert_eq!(
            daemon
                .runtime()
                .agent_status(Compliance::NAME)
                .map(|s| s.state),
            Some(AgentState::Isolated),
            "a refused revive changes nothing"
        );

        let (status, revived) = http(
            addr,
            "POST",
            "/v1/agents/compliance/revive",
            OPERATOR,
            reason,
        )
        .await;
        assert_eq!(status, 200, "{revived}");
        assert_eq!(revived["agent"], "compliance");
        assert_eq!(revived["state"], "running");
        // Under supervision again: the next failure is restarted (one restart allowed), the one
        // after isolates it.
        let restarts = daemon
            .runtime()
            .agent_status(Compliance::NAME)
            .expect("configured")
            .restarts;
        let _ = daemon
            .runtime()
            .operator("test")
            .request(Compliance::NAME, Probe)
            .await;
        wait_until("compliance restarted by its supervisor", WAIT, || {
            daemon
                .runtime()
                .agent_status(Compliance::NAME)
                .is_some_and(|s| s.state == AgentState::Running && s.restarts == restarts + 1)
        })
        .await;

        // The revive is a decision with who and why, in the chain the answer names; operators
        // read it, a tenant does not.
        let correlation = revived["correlation_id"]
            .as_str()
            .expect("a correlation id");
        let (status, trace) = http(
            addr,
            "GET",
            &format!("/v1/traces/{correlation}"),
            OPERATOR,
            "",
        )
        .await;
        assert_eq!(status, 200, "{trace}");
        let text = trace.to_string();
        assert!(text.contains("\"kind\":\"revive\""), "{text}");
        assert!(
            text.contains(revived["decision"].as_str().unwrap_or("-")),
            "{text}"
        );
        assert!(text.contains("api/ops"), "who: {text}");
        assert!(text.contains("rule engine fixed"), "why: {text}");
        assert!(
            text.contains("injected fault"),
            "what it was isolated for: {text}"
        );
        let (status, _) = http(
            addr,
            "GET",
            &format!("/v1/traces/{correlation}"),
            TENANT,
            "",
        )
        .await;
        assert_eq!(status, 404);

        // The client command: isolate it again, revive it from the command line.
        isolate(&daemon).await;
        let base = dir.path().to_path_buf();
        let config_path = config.display().to_string();
        let client = move |reason: &str| {
            let mut command = campaignd();
            command
                .current_dir(&base)
                .env("CAMPAIGND__API__LISTEN", addr.to_string())
                .env("CAMPAIGND_TOKEN", OPERATOR)
                .args(["--config", &config_path])
                .args(["revive", "compliance", "--reason", reason]);
            command
        };
        let out = tokio::task::spawn_blocking(move || {
            let revived = run(&mut client("second fix"), None);
            let again = run(&mut client("once more"), None);
            (revived, again)
        })
        .await
        .expect("the client ran");
        let (revived, again) = out;
        assert_eq!(
            revived.code,
            Some(0),
            "{} {}",
            revived.stdout,
            revived.stderr
        );
        assert!(
            revived.stdout.contains("revived `compliance`"),
            "{}",
            revived.stdout
        );
        assert_eq!(
            again.code,
            Some(1),
            "not isolated is a negative answer: {}",
            again.stderr
        );
        assert!(again.stderr.contains("not isolated"), "{}", again.stderr);
        daemon.shutdown().await.expect("shutdown");
    })
    .await;
}
