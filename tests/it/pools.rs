//! Agents run as pools of workers: each campaign's messages stay in order on one worker while
//! other campaigns run on others; supervision, isolation, revive and the mailbox bound apply to the
//! agent as a whole; an agent sharded by tenant refuses a message without one.
//!
//! Every test is bounded in time and asserts on what happened, never on how long it took.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use campaignd::protocol::{Envelope, Origin, Payload};
use campaignd::runtime::{
    Agent, AgentError, AgentSpec, AgentState, Context, DeliveryError, HandleEvent, HandleRequest,
    Registry, Request, Routes, Runtime, Services, ShardBy, StartContext, SupervisionPolicy,
    Unavailable,
};
use serde::{Deserialize, Serialize};

use crate::support::{bounded, wait_until};

const BOUND: Duration = Duration::from_secs(30);

/// What the agents saw, shared with the test as a service: per campaign, the sequence numbers in
/// the order they were handled and the workers that handled them.
#[derive(Default)]
struct Seen(Mutex<BTreeMap<String, Handled>>);

/// One campaign's steps in the order they were handled, and the workers that handled them.
type Handled = (Vec<u64>, BTreeSet<usize>);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Step(u64);
impl Payload for Step {
    const ACTION: &'static str = "step";
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ask {
    crash: bool,
    hold_ms: u64,
}
impl Payload for Ask {
    const ACTION: &'static str = "ask";
}
impl Request for Ask {
    type Response = Answer;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Answer {
    worker: usize,
}
impl Payload for Answer {
    const ACTION: &'static str = "answer";
}

struct Tally {
    worker: usize,
    seen: Arc<Seen>,
    /// Per campaign, the last step this worker handled: a step out of order is a failure.
    last: BTreeMap<String, u64>,
}

impl Agent for Tally {
    const NAME: &'static str = "tally";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Tally {
            worker: ctx.worker,
            seen: ctx.services.require::<Seen>()?,
            last: BTreeMap::new(),
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.event::<Step>().request::<Ask>();
    }
}

impl HandleEvent<Step> for Tally {
    async fn handle_event(
        &mut self,
        ctx: &Context,
        event: Envelope<Step>,
    ) -> Result<(), AgentError> {
        let campaign = ctx.campaign().map(|c| c.to_string()).unwrap_or_default();
        let step = event.payload.0;
        if self.last.get(&campaign).is_some_and(|&last| step <= last) {
            return Err(AgentError::msg(format!(
                "{campaign}: step {step} out of order"
            )));
        }
        self.last.insert(campaign.clone(), step);
        // Yield, so other campaigns' steps interleave with this one's on the runtime's threads.
        tokio::task::yield_now().await;
        let mut seen = self
            .seen
            .0
            .lock()
            .map_err(|_| AgentError::msg("poisoned"))?;
        let entry = seen.entry(campaign).or_default();
        entry.0.push(step);
        entry.1.insert(self.worker);
        Ok(())
    }
}

impl HandleRequest<Ask> for Tally {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<Ask>,
    ) -> Result<Answer, AgentError> {
        if request.payload.crash {
            panic!("tally crashed on purpose");
        }
        tokio::time::sleep(Duration::from_millis(request.payload.hold_ms)).await;
        Ok(Answer {
            worker: self.worker,
        })
    }
}

/// The same agent, sharded by tenant.
struct TenantTally(Tally);

impl Agent for TenantTally {
    const NAME: &'static str = "tenant_tally";
    const SHARD_BY: ShardBy = ShardBy::Tenant;

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Tally::start(ctx).await.map(TenantTally)
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Ask>();
    }
}

impl HandleRequest<Ask> for TenantTally {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<Ask>,
    ) -> Result<Answer, AgentError> {
        self.0.handle_request(ctx, request).await
    }
}

async fn pool(workers: usize, mailbox: usize, max_restarts: u32) -> (Runtime, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let mut services = Services::new();
    services.insert(Arc::clone(&seen));
    let registry = Registry::new()
        .with::<Tally>("tally")
        .with::<TenantTally>("tenant_tally");
    let policy = SupervisionPolicy {
        max_restarts,
        within: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
    };
    let runtime = Runtime::builder(registry)
        .agent(
            AgentSpec::new("tally")
                .with_workers(workers)
                .with_mailbox(mailbox)
                .with_subscription("steps")
                .with_supervision(policy),
        )
        .agent(AgentSpec::new("tenant_tally").with_workers(workers))
        .services(services)
        .start()
        .await
        .unwrap();
    (runtime, seen)
}

fn campaign(n: usize) -> String {
    format!("campaign_{n}")
}

async fn ask(runtime: &Runtime, campaign: &str, crash: bool) -> Result<Answer, DeliveryError> {
    runtime
        .client(Origin::Runtime)
        .with_campaign(campaign)
        .request("tally", Ask { crash, hold_ms: 0 })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_campaign_keeps_its_order_while_campaigns_spread_over_workers() {
    bounded(BOUND, async {
        let (runtime, seen) = pool(4, 100_000, 3).await;
        const CAMPAIGNS: usize = 64;
        const STEPS: u64 = 200;
        // Four publishers at once, each interleaving its campaigns step by step.
        let mut publishers = Vec::new();
        for part in 0..4 {
            let runtime = runtime.clone();
            publishers.push(tokio::spawn(async move {
                for step in 1..=STEPS {
                    for n in (part..CAMPAIGNS).step_by(4) {
                        let client = runtime.client(Origin::Runtime).with_campaign(campaign(n));
                        client.publish("steps", Step(step)).unwrap();
                    }
                    if step % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        for publisher in publishers {
            publisher.await.unwrap();
        }
        wait_until("every step handled", Duration::from_secs(20), || {
            runtime.agent_status("tally").unwrap().in_flight == 0
        })
        .await;
        let status = runtime.agent_status("tally").unwrap();
        assert_eq!(
            (status.state, status.restarts, status.workers),
            (AgentState::Running, 0, 4)
        );
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(seen.len(), CAMPAIGNS);
        let expected: Vec<u64> = (1..=STEPS).collect();
        let mut workers_used: BTreeSet<usize> = BTreeSet::new();
        for (name, (steps, workers)) in seen.iter() {
            assert_eq!(steps, &expected, "{name} was handled out of order");
            assert_eq!(
                workers.len(),
                1,
                "{name} moved between workers: {workers:?}"
            );
            workers_used.extend(workers);
        }
        assert_eq!(
            workers_used.len(),
            4,
            "campaigns used workers {workers_used:?}"
        );
        runtime.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_worker_restarts_alone_and_the_agent_is_isolated_as_a_whole() {
    bounded(BOUND, async {
        let (runtime, _) = pool(3, 1024, 2).await;
        // One campaign per worker.
        let mut by_worker: BTreeMap<usize, String> = BTreeMap::new();
        for n in 0..100 {
            let answer = ask(&runtime, &campaign(n), false).await.unwrap();
            by_worker
                .entry(answer.worker)
                .or_insert_with(|| campaign(n));
        }
        assert_eq!(by_worker.len(), 3, "{by_worker:?}");
        let (crashing, others): (Vec<_>, Vec<_>) = by_worker
            .values()
            .partition(|c| by_worker.get(&0) == Some(*c));
        let crashing = crashing[0].clone();

        // A crash restarts that worker; a campaign on another worker is answered meanwhile.
        assert!(matches!(
            ask(&runtime, &crashing, true).await,
            Err(DeliveryError::Failed { .. })
        ));
        for other in &others {
            assert!(ask(&runtime, other, false).await.is_ok());
        }
        wait_until("the crashed worker back", Duration::from_secs(5), || {
            runtime.agent_status("tally").unwrap().state == AgentState::Running
        })
        .await;
        assert_eq!(ask(&runtime, &crashing, false).await.unwrap().worker, 0);
        assert_eq!(runtime.agent_status("tally").unwrap().restarts, 1);

        // Failures on different workers count against the agent's one window: the third within
        // it isolates every worker.
        assert!(ask(&runtime, others[0], true).await.is_err());
        wait_until("the second restart", Duration::from_secs(5), || {
            runtime.agent_status("tally").unwrap().state == AgentState::Running
        })
        .await;
        assert!(ask(&runtime, &crashing, true).await.is_err());
        wait_until("isolation", Duration::from_secs(5), || {
            runtime.agent_status("tally").unwrap().state == AgentState::Isolated
        })
        .await;
        for name in by_worker.values() {
            let err = ask(&runtime, name, false).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    DeliveryError::Unavailable {
                        reason: Unavailable::Isolated,
                        ..
                    }
                ),
                "{name}: {err}"
            );
        }

        // A revive brings every worker back, each campaign on its old worker.
        runtime.revive("tally").await.unwrap();
        for (worker, name) in &by_worker {
            assert_eq!(ask(&runtime, name, false).await.unwrap().worker, *worker);
        }
        runtime.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_bound_counts_every_worker() {
    bounded(BOUND, async {
        let (runtime, _) = pool(4, 3, 3).await;
        // Three held requests for three different campaigns fill the agent's mailbox of 3,
        // whichever workers they landed on.
        let mut held = Vec::new();
        for n in 0..3 {
            let client = runtime.client(Origin::Runtime).with_campaign(campaign(n));
            held.push(tokio::spawn(async move {
                client
                    .request(
                        "tally",
                        Ask {
                            crash: false,
                            hold_ms: 400,
                        },
                    )
                    .await
            }));
        }
        wait_until("three requests admitted", Duration::from_secs(2), || {
            runtime.agent_status("tally").unwrap().in_flight == 3
        })
        .await;
        for n in 3..20 {
            let err = ask(&runtime, &campaign(n), false).await.unwrap_err();
            assert!(
                matches!(err, DeliveryError::Overloaded { mailbox: 3, .. }),
                "{err}"
            );
        }
        for request in held {
            assert!(request.await.unwrap().is_ok());
        }
        assert!(ask(&runtime, &campaign(3), false).await.is_ok());
        runtime.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sharded_by_tenant_keeps_a_tenant_on_one_worker() {
    bounded(BOUND, async {
        let (runtime, _) = pool(4, 1024, 3).await;
        let ask_tenant = |tenant: Option<&str>, n: usize| {
            let mut client = runtime.client(Origin::Runtime).with_campaign(campaign(n));
            if let Some(tenant) = tenant {
                client = client.with_tenant(tenant);
            }
            async move {
                client
                    .request(
                        "tenant_tally",
                        Ask {
                            crash: false,
                            hold_ms: 0,
                        },
                    )
                    .await
            }
        };
        let first = ask_tenant(Some("acme"), 0).await.unwrap().worker;
        for n in 1..40 {
            assert_eq!(ask_tenant(Some("acme"), n).await.unwrap().worker, first);
        }
        let err = ask_tenant(None, 0).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Rejected { .. }) && err.to_string().contains("tenant"),
            "{err}"
        );
        runtime.shutdown(Duration::from_secs(2)).await;
    })
    .await;
}
