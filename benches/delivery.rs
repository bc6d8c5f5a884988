//! Delivery cost: the runtime against raw ractor, in the same run.
//!
//! - `request_response`: one request and its answer through the runtime (admission, routing,
//!   typed envelope, timeout) against a raw ractor `call_t!` round trip.
//! - `publish_3_subscribers`: one event delivered to three subscribers against three raw casts.
//!
//! Callers run in a spawned task, never on `block_on`'s thread, which would inflate latencies.
//! Before the criterion groups, per-call latency percentiles (p50/p99) are printed for the
//! request/response pair, since criterion reports means.
//!
//! `cargo bench --bench delivery -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use campaignd::protocol::{Envelope, Payload};
use campaignd::runtime::{
    Agent, AgentError, AgentSpec, Client, Context, HandleEvent, HandleRequest, Registry, Request,
    Routes, Runtime, Services, StartContext,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call_t};
use serde::{Deserialize, Serialize};

/// The daemon's allocator (see `src/main.rs`), for the runtime and its raw baseline alike.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// --- the runtime side ---------------------------------------------------------------------------

#[derive(Clone, Serialize, Deserialize)]
struct Ping(u64);
impl Payload for Ping {
    const ACTION: &'static str = "ping";
}
#[derive(Clone, Serialize, Deserialize)]
struct Pong(u64);
impl Payload for Pong {
    const ACTION: &'static str = "pong";
}
impl Request for Ping {
    type Response = Pong;
}
#[derive(Clone, Serialize, Deserialize)]
struct Tick;
impl Payload for Tick {
    const ACTION: &'static str = "tick";
}

/// Counts every delivered event across all subscribers.
struct Delivered(AtomicU64);

struct Echo {
    delivered: Arc<Delivered>,
}

impl Agent for Echo {
    const NAME: &'static str = "echo";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Echo {
            delivered: ctx.services.require::<Delivered>()?,
        })
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Ping>().event::<Tick>();
    }
}

impl HandleRequest<Ping> for Echo {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        request: Envelope<Ping>,
    ) -> Result<Pong, AgentError> {
        Ok(Pong(request.payload.0))
    }
}

impl HandleEvent<Tick> for Echo {
    async fn handle_event(
        &mut self,
        _ctx: &Context,
        _event: Envelope<Tick>,
    ) -> Result<(), AgentError> {
        self.delivered.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

// --- the raw ractor side -----------------------------------------------------------------------

enum RawMsg {
    Ping(u64, RpcReplyPort<u64>),
    Tick,
}

struct RawEcho {
    delivered: Arc<Delivered>,
}

impl Actor for RawEcho {
    type Msg = RawMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<RawMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<RawMsg>,
        msg: RawMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RawMsg::Ping(n, reply) => {
                let _ = reply.send(n);
            }
            RawMsg::Tick => {
                self.delivered.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

// --- setup ---------------------------------------------------------------------------------------

struct Setup {
    runtime: Runtime,
    client: Client,
    raw: Vec<ActorRef<RawMsg>>,
    delivered: Arc<Delivered>,
}

async fn setup() -> Setup {
    let delivered = Arc::new(Delivered(AtomicU64::new(0)));
    let mut services = Services::new();
    services.insert(Arc::clone(&delivered));
    let names = ["echo_a", "echo_b", "echo_c"];
    let mut registry = Registry::new();
    for name in names {
        registry.register::<Echo>(name);
    }
    // A mailbox far above what a measurement batch admits, so the event comparison measures
    // delivery, not refusals.
    let runtime = Runtime::builder(registry)
        .agents(names.map(|n| {
            AgentSpec::new(n)
                .with_mailbox(1 << 24)
                .with_subscription("ticks")
        }))
        .services(services)
        .start()
        .await
        .expect("runtime starts");
    let client = runtime.operator("bench");
    let mut raw = Vec::new();
    for _ in 0..3 {
        let (actor, _) = Actor::spawn(
            None,
            RawEcho {
                delivered: Arc::clone(&delivered),
            },
            (),
        )
        .await
        .expect("raw actor starts");
        raw.push(actor);
    }
    Setup {
        runtime,
        client,
        raw,
        delivered,
    }
}

async fn wait_for(delivered: &Delivered, target: u64) {
    while delivered.0.load(Ordering::Relaxed) < target {
        tokio::task::yield_now().await;
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    (at(0.50), at(0.99))
}

/// Per-call latency of both round trips, measured in a spawned task; printed once.
fn print_latency_percentiles(tokio: &tokio::runtime::Runtime, setup: &Setup) {
    const CALLS: usize = 100_000;
    let client = setup.client.clone();
    let raw = setup.raw[0].clone();
    let (runtime_lat, raw_lat) = tokio.block_on(async move {
        tokio::spawn(async move {
            let mut runtime_lat = Vec::with_capacity(CALLS);
            let mut raw_lat = Vec::with_capacity(CALLS);
            for i in 0..CALLS as u64 {
                let t = Instant::now();
                black_box(call_t!(raw, RawMsg::Ping, 1000, i).expect("raw answer"));
                raw_lat.push(t.elapsed());
                let t = Instant::now();
                black_box(
                    client
                        .request("echo_a", Ping(i))
                        .await
                        .expect("runtime answer"),
                );
                runtime_lat.push(t.elapsed());
            }
            (runtime_lat, raw_lat)
        })
        .await
        .expect("latency task")
    });
    let (rp50, rp99) = percentiles(runtime_lat);
    let (wp50, wp99) = percentiles(raw_lat);
    println!(
        "request/response latency over {CALLS} calls: runtime p50 {rp50:?} p99 {rp99:?}; raw call_t! p50 {wp50:?} p99 {wp99:?}; p50 ratio {:.2}",
        rp50.as_secs_f64() / wp50.as_secs_f64().max(f64::MIN_POSITIVE)
    );
}

fn delivery(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let setup = tokio.block_on(setup());
    print_latency_percentiles(&tokio, &setup);

    let mut group = c.benchmark_group("request_response");
    group.bench_function("runtime_request", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let client = setup.client.clone();
            async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(
                            client
                                .request("echo_a", Ping(i))
                                .await
                                .expect("runtime answer"),
                        );
                    }
                    start.elapsed()
                })
                .await
                .expect("bench task")
            }
        })
    });
    group.bench_function("raw_ractor_call_t", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let raw = setup.raw[0].clone();
            async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(call_t!(raw, RawMsg::Ping, 1000, i).expect("raw answer"));
                    }
                    start.elapsed()
                })
                .await
                .expect("bench task")
            }
        })
    });
    group.finish();

    // One element is one delivered message: an event reaching one subscriber.
    let mut group = c.benchmark_group("publish_3_subscribers");
    group.throughput(Throughput::Elements(3));
    group.bench_function("runtime_publish", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let client = setup.client.clone();
            let delivered = Arc::clone(&setup.delivered);
            async move {
                tokio::spawn(async move {
                    let base = delivered.0.load(Ordering::Relaxed);
                    let start = Instant::now();
                    let mut sent = 0u64;
                    for _ in 0..iters {
                        sent += client.publish("ticks", Tick).expect("published") as u64;
                    }
                    wait_for(&delivered, base + sent).await;
                    start.elapsed()
                })
                .await
                .expect("bench task")
            }
        })
    });
    group.bench_function("raw_ractor_cast_x3", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let raw = setup.raw.clone();
            let delivered = Arc::clone(&setup.delivered);
            async move {
                tokio::spawn(async move {
                    let base = delivered.0.load(Ordering::Relaxed);
                    let start = Instant::now();
                    for _ in 0..iters {
                        for actor in &raw {
                            actor.cast(RawMsg::Tick).expect("cast");
                        }
                    }
                    wait_for(&delivered, base + 3 * iters).await;
                    start.elapsed()
                })
                .await
                .expect("bench task")
            }
        })
    });
    group.finish();

    tokio.block_on(async {
        setup.runtime.shutdown(Duration::from_secs(5)).await;
        for actor in &setup.raw {
            actor.stop(None);
        }
    });
}

criterion_group!(benches, delivery);
criterion_main!(benches);
