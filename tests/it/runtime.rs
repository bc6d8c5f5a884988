//! The runtime with real actors: restart with restored state, isolation, timeouts, admission
//! control, the command rule, unknown agents, chain propagation and graceful shutdown.
//!
//! Every test is bounded in time; none sleeps longer than it must.

use std::sync::Arc;
use std::time::{Duration, Instant};

use campaignd::protocol::{CorrelationId, Envelope, MessageId, Origin, Payload};
use campaignd::runtime::{
    AGENT_ISOLATED_TOPIC, Agent, AgentError, AgentIsolated, AgentSpec, AgentState, Context,
    DeliveryError, HandleCommand, HandleEvent, HandleRequest, Registry, Request, Routes, Runtime,
    Services, StartContext, SupervisionPolicy, Unavailable,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::support::{bounded, wait_for_async, wait_until};

macro_rules! payload {
    ($name:ident, $action:literal) => {
        impl Payload for $name {
            const ACTION: &'static str = $action;
        }
    };
}

/// Every test's overall bound: a hang fails instead of blocking the suite.
const BOUND: Duration = Duration::from_secs(20);

fn fast_policy(max_restarts: u32) -> SupervisionPolicy {
    SupervisionPolicy {
        max_restarts,
        within: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
    }
}

// ---------------------------------------------------------------------------------------------
// A counter whose value lives in a sled tree the test provides as a service.

struct Store(sled::Tree);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Add(u64);
payload!(Add, "add");
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Get;
payload!(Get, "get");
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Crash;
payload!(Crash, "crash");
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Count(u64);
payload!(Count, "count");

impl Request for Add {
    type Response = Count;
}
impl Request for Get {
    type Response = Count;
}
impl Request for Crash {
    type Response = Count;
}

struct Counter {
    store: Arc<Store>,
    count: u64,
}

impl Agent for Counter {
    const NAME: &'static str = "counter";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let store = ctx.services.require::<Store>()?;
        let count = match store.0.get("count")? {
            Some(bytes) => u64::from_be_bytes(bytes.as_ref().try_into().map_err(AgentError::from)?),
            None => 0,
        };
        Ok(Counter { store, count })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Add>().request::<Get>().request::<Crash>();
    }
}

impl HandleRequest<Add> for Counter {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<Add>,
    ) -> Result<Count, AgentError> {
        self.count += request.payload.0;
        self.store.0.insert("count", &self.count.to_be_bytes())?;
        self.store.0.flush()?;
        Ok(Count(self.count))
    }
}

impl HandleRequest<Get> for Counter {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        _request: Envelope<Get>,
    ) -> Result<Count, AgentError> {
        Ok(Count(self.count))
    }
}

impl HandleRequest<Crash> for Counter {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        _request: Envelope<Crash>,
    ) -> Result<Count, AgentError> {
        // Working state is lost with the panic; only what reached the store survives.
        self.count = 999_999;
        panic!("counter crashed on purpose");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_agent_is_restarted_and_rebuilds_its_state() {
    bounded(BOUND, async {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("counter").unwrap();
        let runtime = Runtime::builder(Registry::new().with::<Counter>("counter"))
            .agent(AgentSpec::new("counter").with_supervision(fast_policy(3)))
            .services(Services::new().with(Store(tree)))
            .start()
            .await
            .unwrap();
        let op = runtime.operator("test");

        assert_eq!(op.request("counter", Add(5)).await.unwrap(), Count(5));
        assert_eq!(op.request("counter", Add(2)).await.unwrap(), Count(7));

        let err = op.request("counter", Crash).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Failed { ref reason, .. } if reason.contains("counter crashed on purpose")), "{err}");

        wait_until(
            "`counter` to run again after one restart",
            Duration::from_secs(5),
            || {
                let status = runtime.agent_status("counter").unwrap();
                status.state == AgentState::Running && status.restarts == 1
            },
        )
        .await;
        let status = runtime.agent_status("counter").unwrap();
        assert!(status.last_error.as_deref().unwrap_or("").contains("counter crashed on purpose"), "{status:?}");

        // The new incarnation read the durable count, not the corrupted in-memory one.
        assert_eq!(op.request("counter", Get).await.unwrap(), Count(7));
        assert_eq!(op.request("counter", Add(1)).await.unwrap(), Count(8));
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// An agent that always fails, and a watcher subscribed to agent_isolated.

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Boom;
payload!(Boom, "boom");
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Never;
payload!(Never, "never");
impl Request for Boom {
    type Response = Never;
}

struct Flaky;

impl Agent for Flaky {
    const NAME: &'static str = "flaky";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Flaky)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Boom>();
    }
}

impl HandleRequest<Boom> for Flaky {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        _request: Envelope<Boom>,
    ) -> Result<Never, AgentError> {
        Err(AgentError::msg("flaky always fails"))
    }
}

struct Isolations(mpsc::UnboundedSender<Envelope<AgentIsolated>>);

struct Watcher {
    out: Arc<Isolations>,
}

impl Agent for Watcher {
    const NAME: &'static str = "watcher";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Watcher {
            out: ctx.services.require::<Isolations>()?,
        })
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.event::<AgentIsolated>();
    }
}

impl HandleEvent<AgentIsolated> for Watcher {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<AgentIsolated>,
    ) -> Result<(), AgentError> {
        self.out
            .0
            .send(event)
            .map_err(|_| AgentError::msg("test stopped listening"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_keeps_failing_is_isolated() {
    bounded(BOUND, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runtime = Runtime::builder(
            Registry::new()
                .with::<Flaky>("flaky")
                .with::<Watcher>("watcher"),
        )
        .agent(AgentSpec::new("flaky").with_supervision(fast_policy(2)))
        .agent(AgentSpec::new("watcher").with_subscription(AGENT_ISOLATED_TOPIC))
        .services(Services::new().with(Isolations(tx)))
        .start()
        .await
        .unwrap();
        let op = runtime.operator("test");

        // Three failures: two restarts, then isolation. Between failures the agent may still be
        // restarting, which answers Unavailable at once; keep asking until it is isolated.
        let mut failures = 0;
        while runtime.agent_status("flaky").unwrap().state != AgentState::Isolated {
            match op.request("flaky", Boom).await {
                Err(DeliveryError::Failed {
                    agent,
                    action,
                    reason,
                }) => {
                    assert_eq!((agent.as_str(), action.as_str()), ("flaky", "boom"));
                    assert!(reason.contains("flaky always fails"), "{reason}");
                    failures += 1;
                }
                Err(DeliveryError::Unavailable {
                    reason: Unavailable::Restarting,
                    ..
                }) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(DeliveryError::Unavailable {
                    reason: Unavailable::Isolated,
                    ..
                }) => break,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!(failures, 3);

        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.from, Origin::Runtime);
        assert_eq!(event.payload.agent.as_str(), "flaky");
        assert_eq!(event.payload.restarts, 2);
        assert!(
            event.payload.last_error.contains("flaky always fails"),
            "{:?}",
            event.payload
        );

        let status = runtime.agent_status("flaky").unwrap();
        assert_eq!(status.state, AgentState::Isolated);
        assert_eq!(status.restarts, 2);
        assert!(status.last_error.unwrap().contains("flaky always fails"));

        let started = Instant::now();
        let err = op.request("flaky", Boom).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                err,
                DeliveryError::Unavailable {
                    reason: Unavailable::Isolated,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("flaky"), "{err}");

        // The watcher is unaffected, and an operator can bring the agent back.
        assert_eq!(
            runtime.agent_status("watcher").unwrap().state,
            AgentState::Running
        );
        runtime.revive("flaky").await.unwrap();
        assert_eq!(
            runtime.agent_status("flaky").unwrap().state,
            AgentState::Running
        );
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A slow agent, an obedient worker, a rogue that tries to give orders, and an orchestrator.

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sleep(u64);
payload!(Sleep, "sleep");
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slept;
payload!(Slept, "slept");
impl Request for Sleep {
    type Response = Slept;
}

struct Slow;

impl Agent for Slow {
    const NAME: &'static str = "slow";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Slow)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Sleep>();
    }
}

impl HandleRequest<Sleep> for Slow {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<Sleep>,
    ) -> Result<Slept, AgentError> {
        // Taking this long is what the tests of timeouts, full mailboxes and draining rely on.
        tokio::time::sleep(Duration::from_millis(request.payload.0)).await;
        Ok(Slept)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pause;
payload!(Pause, "pause");

struct Worker {
    paused: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Paused;
payload!(Paused, "paused");
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PauseCount(u32);
payload!(PauseCount, "pause_count");
impl Request for Paused {
    type Response = PauseCount;
}

impl Agent for Worker {
    const NAME: &'static str = "worker";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Worker { paused: 0 })
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.command::<Pause>().request::<Paused>();
    }
}

impl HandleCommand<Pause> for Worker {
    async fn handle_command(
        &mut self,
        _ctx: &Context,
        _command: Envelope<Pause>,
    ) -> Result<(), AgentError> {
        self.paused += 1;
        Ok(())
    }
}

impl HandleRequest<Paused> for Worker {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        _request: Envelope<Paused>,
    ) -> Result<PauseCount, AgentError> {
        Ok(PauseCount(self.paused))
    }
}

/// Asks an agent to order the worker to pause; answers with what the runtime said.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderPause;
payload!(OrderPause, "order_pause");
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderOutcome {
    rejected: bool,
    message: String,
}
payload!(OrderOutcome, "order_outcome");
impl Request for OrderPause {
    type Response = OrderOutcome;
}

struct Relay;

impl Agent for Relay {
    const NAME: &'static str = "relay";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Relay)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<OrderPause>();
    }
}

impl HandleRequest<OrderPause> for Relay {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        _request: Envelope<OrderPause>,
    ) -> Result<OrderOutcome, AgentError> {
        Ok(match ctx.command("worker", Pause).await {
            Ok(()) => OrderOutcome {
                rejected: false,
                message: String::new(),
            },
            Err(err) => OrderOutcome {
                rejected: matches!(err, DeliveryError::Rejected { .. }),
                message: err.to_string(),
            },
        })
    }
}

async fn delivery_runtime() -> Runtime {
    let registry = Registry::new()
        .with::<Slow>("slow")
        .with::<Worker>("worker")
        .with::<Relay>("rogue")
        .with::<Relay>("orchestrator");
    Runtime::builder(registry)
        .agent(
            AgentSpec::new("slow")
                .with_request_timeout(Duration::from_millis(100))
                .with_mailbox(2),
        )
        .agent(AgentSpec::new("worker"))
        .agent(AgentSpec::new("rogue"))
        .agent(AgentSpec::new("orchestrator"))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_agent_times_out() {
    bounded(BOUND, async {
        let runtime = delivery_runtime().await;
        let started = Instant::now();
        let err = runtime
            .operator("test")
            .request("slow", Sleep(400))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, DeliveryError::Timeout { ref agent, .. } if agent.as_str() == "slow"),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(1_000),
            "took {took:?}"
        );
        assert!(
            err.to_string()
                .contains("request_timeout_ms in agents/slow.toml"),
            "{err}"
        );
        // A fast request still works after the timeout (once the slow one is done).
        wait_until(
            "`slow` to finish the requests it has",
            Duration::from_secs(5),
            || runtime.agent_status("slow").unwrap().in_flight == 0,
        )
        .await;
        assert_eq!(
            runtime
                .operator("test")
                .request("slow", Sleep(1))
                .await
                .unwrap(),
            Slept
        );
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_answers_overloaded() {
    bounded(BOUND, async {
        let runtime = delivery_runtime().await;
        let op = runtime.operator("test");
        // Two long requests fill the mailbox of 2 (the first is being handled, the second queued).
        for _ in 0..2 {
            let op = op.clone();
            tokio::spawn(async move { op.request("slow", Sleep(300)).await });
        }
        wait_until(
            "two requests in `slow`'s mailbox",
            Duration::from_secs(2),
            || runtime.agent_status("slow").unwrap().in_flight == 2,
        )
        .await;
        let started = Instant::now();
        let err = op.request("slow", Sleep(1)).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, DeliveryError::Overloaded { mailbox: 2, .. }),
            "{err}"
        );
        runtime.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_orchestrator_and_operators_may_command() {
    bounded(BOUND, async {
        let runtime = delivery_runtime().await;
        let op = runtime.operator("test");

        let rogue = op.request("rogue", OrderPause).await.unwrap();
        assert!(rogue.rejected, "{rogue:?}");
        assert!(
            rogue.message.contains("agent:rogue may not send commands"),
            "{}",
            rogue.message
        );

        let orchestrator = op.request("orchestrator", OrderPause).await.unwrap();
        assert_eq!(
            orchestrator,
            OrderOutcome {
                rejected: false,
                message: String::new()
            }
        );

        op.command("worker", Pause).await.unwrap();
        let err = runtime
            .client(Origin::Runtime)
            .command("worker", Pause)
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Rejected { .. }), "{err}");

        // Only the two accepted orders reached the worker.
        assert_eq!(op.request("worker", Paused).await.unwrap(), PauseCount(2));
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_agents_and_unhandled_actions_fail_at_once() {
    bounded(BOUND, async {
        let runtime = delivery_runtime().await;
        let op = runtime.operator("test");
        let started = Instant::now();
        let err = op.request("nobody", Sleep(1)).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Unavailable { reason: Unavailable::Unknown, ref agent, .. } if agent.as_str() == "nobody"), "{err}");
        let err = op.request("worker", Sleep(1)).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Rejected { .. }), "{err}");
        assert!(err.to_string().contains("does not handle request sleep"), "{err}");
        assert!(started.elapsed() < Duration::from_millis(50), "took {:?}", started.elapsed());
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_an_unregistered_agent() {
    bounded(BOUND, async {
        let err = Runtime::builder(Registry::new().with::<Slow>("slow"))
            .agent(AgentSpec::new("strategy"))
            .start()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("agents/strategy.toml"), "{err}");
        assert!(err.to_string().contains("slow"), "{err}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Chains: a front agent asks a back agent and publishes an event while handling a request.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    id: MessageId,
    correlation_id: CorrelationId,
    causation_id: Option<MessageId>,
    tenant: Option<String>,
    campaign: Option<String>,
}
payload!(Seen, "seen");

fn seen<P>(envelope: &Envelope<P>) -> Seen {
    Seen {
        id: envelope.id,
        correlation_id: envelope.correlation_id,
        causation_id: envelope.causation_id,
        tenant: envelope.tenant.as_ref().map(|t| t.0.clone()),
        campaign: envelope.campaign.as_ref().map(|c| c.0.clone()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ask;
payload!(Ask, "ask");
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Inner;
payload!(Inner, "inner");
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noted;
payload!(Noted, "noted");
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trace {
    front: Seen,
    back: Seen,
}
payload!(Trace, "trace");
impl Request for Ask {
    type Response = Trace;
}
impl Request for Inner {
    type Response = Seen;
}

struct Front;

impl Agent for Front {
    const NAME: &'static str = "front";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Front)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Ask>();
    }
}

impl HandleRequest<Ask> for Front {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<Ask>,
    ) -> Result<Trace, AgentError> {
        let back = ctx.request("back", Inner).await?;
        ctx.publish("noted", Noted)?;
        Ok(Trace {
            front: seen(&request),
            back,
        })
    }
}

struct NotedEvents(mpsc::UnboundedSender<Seen>);

struct Back {
    out: Arc<NotedEvents>,
}

impl Agent for Back {
    const NAME: &'static str = "back";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Back {
            out: ctx.services.require::<NotedEvents>()?,
        })
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Inner>().event::<Noted>();
    }
}

impl HandleRequest<Inner> for Back {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<Inner>,
    ) -> Result<Seen, AgentError> {
        Ok(seen(&request))
    }
}

impl HandleEvent<Noted> for Back {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        event: Envelope<Noted>,
    ) -> Result<(), AgentError> {
        self.out
            .0
            .send(seen(&event))
            .map_err(|_| AgentError::msg("test stopped listening"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_carry_the_chain_on() {
    bounded(BOUND, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runtime = Runtime::builder(Registry::new().with::<Front>("front").with::<Back>("back"))
            .agent(AgentSpec::new("front"))
            .agent(AgentSpec::new("back").with_subscription("noted"))
            .services(Services::new().with(NotedEvents(tx)))
            .start()
            .await
            .unwrap();
        let chain = CorrelationId::new();
        let op = runtime
            .operator("test")
            .with_correlation(chain)
            .with_tenant("acme")
            .with_campaign("spring");

        let trace = op.request("front", Ask).await.unwrap();
        assert_eq!(trace.front.correlation_id, chain);
        assert_eq!(trace.front.causation_id, None);
        assert_eq!(trace.back.correlation_id, chain);
        assert_eq!(trace.back.causation_id, Some(trace.front.id));
        assert_eq!(trace.back.tenant.as_deref(), Some("acme"));
        assert_eq!(trace.back.campaign.as_deref(), Some("spring"));

        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.correlation_id, chain);
        assert_eq!(event.causation_id, Some(trace.front.id));
        assert_eq!(event.campaign.as_deref(), Some("spring"));
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_work_and_refuses_new_work() {
    bounded(BOUND, async {
        let runtime = delivery_runtime().await;
        let op = runtime.operator("test");
        let in_flight = tokio::spawn({
            let op = op.clone();
            async move { op.request("slow", Sleep(80)).await }
        });
        wait_until(
            "the request in `slow`'s mailbox",
            Duration::from_secs(2),
            || runtime.agent_status("slow").unwrap().in_flight == 1,
        )
        .await;

        let shutdown = tokio::spawn({
            let runtime = runtime.clone();
            async move { runtime.shutdown(Duration::from_secs(2)).await }
        });
        wait_until(
            "`slow` to have at most one request left",
            Duration::from_secs(2),
            || matches!(runtime.agent_status("slow").unwrap().in_flight, 0 | 1),
        )
        .await;
        // The spawned shutdown stops the intake once it runs; a request before that is answered.
        let op = &op;
        let err = wait_for_async(
            "the runtime to stop taking new work",
            Duration::from_secs(2),
            || async move { op.request("worker", Paused).await.err() },
        )
        .await;
        assert!(matches!(err, DeliveryError::ShuttingDown { .. }), "{err}");

        assert_eq!(in_flight.await.unwrap().unwrap(), Slept);
        let report = shutdown.await.unwrap();
        assert!(report.drained, "{report:?}");
        assert!(
            runtime
                .status()
                .iter()
                .all(|s| s.state == AgentState::Stopped),
            "{:?}",
            runtime.status()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_definition_applies_without_a_restart() {
    bounded(BOUND, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runtime = Runtime::builder(Registry::new().with::<Back>("back"))
            .agent(AgentSpec::new("back"))
            .services(Services::new().with(NotedEvents(tx)))
            .start()
            .await
            .unwrap();
        let op = runtime.operator("test");
        assert_eq!(op.publish("noted", Noted).unwrap(), 0);

        runtime
            .update_spec(
                AgentSpec::new("back")
                    .with_subscription("noted")
                    .with_mailbox(8),
            )
            .unwrap();
        assert_eq!(op.publish("noted", Noted).unwrap(), 1);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .is_some()
        );
        let status = runtime.agent_status("back").unwrap();
        assert_eq!(
            (status.mailbox, status.restarts, status.state),
            (8, 0, AgentState::Running)
        );

        let err = runtime
            .update_spec(AgentSpec::new("back").with_mailbox(0))
            .unwrap_err();
        assert!(
            err.to_string().contains("mailbox = 0 in agents/back.toml"),
            "{err}"
        );
        assert!(runtime.update_spec(AgentSpec::new("nobody")).is_err());
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Metrics: what the runtime records, read back from a Prometheus recorder local to the test.

/// The value of the sample `name{labels…}` in a Prometheus text rendering.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let all_present = labels.iter().all(|(k, v)| {
            label_text
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        let same_count = label_text.split(',').filter(|p| !p.is_empty()).count() == labels.len();
        (all_present && same_count).then(|| value.trim().parse().ok())?
    })
}

#[test]
fn requests_timeouts_overloads_and_refused_commands_show_up_in_the_metrics() {
    use campaignd::runtime::metrics::{
        REQUEST_DURATION_BUCKETS, REQUEST_DURATION_SECONDS, describe_metrics,
    };
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(REQUEST_DURATION_SECONDS.to_owned()),
            &REQUEST_DURATION_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    // A thread-local recorder sees only this thread, so every actor runs on it.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        tokio.block_on(bounded(BOUND, async {
            describe_metrics();
            let runtime = delivery_runtime().await;
            let op = runtime.operator("test");

            assert_eq!(op.request("worker", Paused).await.unwrap(), PauseCount(0));
            op.command("worker", Pause).await.unwrap();
            let refused = runtime
                .client(Origin::Runtime)
                .command("worker", Pause)
                .await
                .unwrap_err();
            assert!(
                matches!(refused, DeliveryError::Rejected { .. }),
                "{refused}"
            );

            let timeout = op.request("slow", Sleep(400)).await.unwrap_err();
            assert!(
                matches!(timeout, DeliveryError::Timeout { .. }),
                "{timeout}"
            );
            wait_until(
                "`slow` to finish the requests it has",
                Duration::from_secs(5),
                || runtime.agent_status("slow").unwrap().in_flight == 0,
            )
            .await;
            for _ in 0..2 {
                let op = op.clone();
                tokio::spawn(async move { op.request("slow", Sleep(200)).await });
            }
            wait_until(
                "two requests in `slow`'s mailbox",
                Duration::from_secs(2),
                || runtime.agent_status("slow").unwrap().in_flight == 2,
            )
            .await;
            let overloaded = op.request("slow", Sleep(1)).await.unwrap_err();
            assert!(
                matches!(overloaded, DeliveryError::Overloaded { .. }),
                "{overloaded}"
            );
            let unknown = op.request("nobody", Sleep(1)).await.unwrap_err();
            assert!(
                matches!(unknown, DeliveryError::Unavailable { .. }),
                "{unknown}"
            );
            runtime.shutdown(Duration::from_secs(2)).await;
        }));
    });

    let text = handle.render();
    let get = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or(-1.0);
    let messages = "campaignd_messages_total";
    assert_eq!(
        get(messages, &[("agent", "worker"), ("kind", "request")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        get(messages, &[("agent", "worker"), ("kind", "response")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        get(messages, &[("agent", "worker"), ("kind", "command")]),
        1.0,
        "{text}"
    );
    // The timed-out request and the two that filled the mailbox were all handled.
    assert_eq!(
        get(messages, &[("agent", "slow"), ("kind", "request")]),
        3.0,
        "{text}"
    );
    let errors = "campaignd_request_errors_total";
    // The 400 ms request and both 200 ms ones outlast the 100 ms timeout.
    assert_eq!(
        get(errors, &[("agent", "slow"), ("error", "timeout")]),
        3.0,
        "{text}"
    );
    assert_eq!(
        get(errors, &[("agent", "slow"), ("error", "overloaded")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        get(errors, &[("agent", "(unknown)"), ("error", "unavailable")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        get(errors, &[("agent", "worker"), ("error", "timeout")]),
        0.0,
        "{text}"
    );
    assert_eq!(
        get("campaignd_commands_rejected_total", &[("agent", "worker")]),
        1.0,
        "{text}"
    );
    // Every request to `slow` was timed: the timeout, the two sleeps and the overloaded one.
    let durations = "campaignd_request_duration_seconds_count";
    assert_eq!(get(durations, &[("agent", "slow")]), 4.0, "{text}");
    assert_eq!(get(durations, &[("agent", "worker")]), 1.0, "{text}");
    let timed_out = get(
        "campaignd_request_duration_seconds_bucket",
        &[("agent", "slow"), ("le", "0.05")],
    );
    assert_eq!(
        timed_out, 1.0,
        "only the overloaded request ended within 50 ms: {text}"
    );
    assert!(text.contains("# HELP campaignd_messages_total"), "{text}");
    // Labels never carry ids or actions.
    assert!(!text.contains("sleep\""), "{text}");
}

// ---------------------------------------------------------------------------------------------
// A command handler that declines an order, and a handler reading another agent's live status.

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Open(bool);
payload!(Open, "open");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StatusOf(String);
payload!(StatusOf, "status_of");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeenState(Option<AgentState>);
payload!(SeenState, "seen_state");

impl Request for StatusOf {
    type Response = SeenState;
}

/// Refuses `Open(false)` with a reason, carries out `Open(true)`, and answers another agent's
/// state as the supervisor sees it.
struct Gate {
    opened: u32,
}

impl Agent for Gate {
    const NAME: &'static str = "gate";

    async fn start(_: StartContext) -> Result<Self, AgentError> {
        Ok(Gate { opened: 0 })
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.command::<Open>().request::<StatusOf>();
    }
}

impl HandleCommand<Open> for Gate {
    async fn handle_command(
        &mut self,
        _: &Context,
        order: Envelope<Open>,
    ) -> Result<(), AgentError> {
        if !order.payload.0 {
            return Err(AgentError::refuse(
                "the gate stays shut until the key is turned",
            ));
        }
        self.opened += 1;
        Ok(())
    }
}

impl HandleRequest<StatusOf> for Gate {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<StatusOf>,
    ) -> Result<SeenState, AgentError> {
        Ok(SeenState(
            ctx.agent_status(&request.payload.0).map(|s| s.state),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_answers_the_reason_without_restarting_the_agent() {
    bounded(BOUND, async {
        let runtime = Runtime::builder(
            Registry::new().with::<Gate>("gate").with::<Flaky>("flaky"),
        )
        .agent(AgentSpec::new("gate").with_supervision(fast_policy(0)))
        .agent(AgentSpec::new("flaky").with_supervision(fast_policy(0)))
        .start()
        .await
        .unwrap();
        let op = runtime.operator("test");
        for _ in 0..3 {
            let err = op.command("gate", Open(false)).await.unwrap_err();
            assert!(
                matches!(err, DeliveryError::Refused { ref reason, .. } if reason.contains("stays shut")),
                "{err}"
            );
            assert!(err.to_string().contains("agent `gate` refused open"), "{err}");
        }
        // Refusals are answers: with no restart allowed the agent would be isolated by a failure.
        let status = runtime.agent_status("gate").unwrap();
        assert_eq!((status.state, status.restarts), (AgentState::Running, 0), "{status:?}");
        op.command("gate", Open(true)).await.unwrap();

        // The live status, read inside a handler, follows the supervisor at once.
        let seen = |name: &str| {
            let op = op.clone();
            let name = name.to_owned();
            async move { op.request("gate", StatusOf(name)).await.unwrap().0 }
        };
        assert_eq!(seen("flaky").await, Some(AgentState::Running));
        assert_eq!(seen("nobody").await, None);
        let _ = op.request("flaky", Boom).await;
        wait_until("`flaky` isolated", Duration::from_secs(5), || {
            runtime.agent_status("flaky").unwrap().state == AgentState::Isolated
        })
        .await;
        assert_eq!(seen("flaky").await, Some(AgentState::Isolated));
        runtime.revive("flaky").await.unwrap();
        assert_eq!(seen("flaky").await, Some(AgentState::Running));
        runtime.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}
