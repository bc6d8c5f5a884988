//! Full campaign cycles per second through the five agents on a real runtime and a real sled
//! knowledge base (durability `none`, in a temporary folder): plan (strategy) → creatives (content)
//! → review (compliance) → experiment start and one experiment step (a batch of observations
//! through the ingestion path, learned from by optimization), for 100 and 1 000 campaigns in
//! flight at once.
//!
//! The 1 000-campaign figure takes over a minute per run, too long for criterion's sampling, so it
//! is measured first, outside criterion, in a fresh process: `CYCLES_1000_RUNS` runs (default 3),
//! each on a fresh runtime and knowledge base, one batch of 1 000 campaigns each, and the process's
//! resident memory (VmRSS) read before the first run and right after its 1 000th campaign — the
//! runtime, every agent's state for 1 000 campaigns and sled's cache. The same is printed for one
//! 100-campaign batch, then criterion samples the 100-campaign group. `CYCLES_1000_RUNS=0` skips
//! the 1 000 runs.
//!
//! `cargo bench --bench cycles -- --warm-up-time 1 --measurement-time 5`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use campaignd::agents::compliance::{Compliance, ReviewItem, ReviewVariants};
use campaignd::agents::content::{Content, WriteCreatives};
use campaignd::agents::messages::Arm;
use campaignd::agents::optimization::{GetProgress, Optimization, StartExperiment};
use campaignd::agents::strategy::{PlanCampaign, Strategy};
use campaignd::campaign::ingest::{Batch, ingest};
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::content::message_of;
use campaignd::kb::{Durability, KbOptions, KnowledgeBase};
use campaignd::market::{IdCatalog, Observation};
use campaignd::protocol::Origin;
use campaignd::runtime::{Agent, Clock, Runtime, Services};
use campaignd::settings::shipped_agent_specs;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn goal(n: u64) -> CampaignGoal {
    // A US email + social campaign: compliance reviews it without needing a consent ledger.
    toml::from_str(&format!(
        r#"
        id = "bench_{n}"
        tenant = "globex"
        objective = "purchases"
        target = 900
        start = 2026-10-01T05:00:00Z
        deadline = 2026-11-30T05:00:00Z
        channels = ["email", "social"]
        regions = ["US"]
        budget = {{ total = 25000.0, currency = "USD" }}
        segments = [{{ id = "past_buyers" }}]
        "#
    ))
    .unwrap_or_else(|e| panic!("bench goal: {e}"))
}

/// One full cycle of one new campaign.
async fn cycle(runtime: &Runtime, kb: &KnowledgeBase) {
    let goal = goal(NEXT.fetch_add(1, Ordering::Relaxed));
    let client = runtime
        .client(Origin::Runtime)
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone());
    let plan = client
        .request(
            Strategy::NAME,
            PlanCampaign {
                goal: goal.clone(),
                attempt: 0,
                remaining_target: None,
                remaining_budget: None,
                why: "bench".into(),
                as_of: None,
            },
        )
        .await
        .expect("plan");
    let creatives = client
        .request(Content::NAME, WriteCreatives { goal: goal.clone() })
        .await
        .expect("creatives");
    let send_at = goal.start.unwrap_or(goal.deadline).fixed_offset();
    let items = creatives
        .variants
        .iter()
        .map(|v| ReviewItem {
            variant: v.id.clone(),
            segment: v.segment.clone(),
            message: message_of(v, &creatives.sender, &goal.product_category),
            send_at,
        })
        .collect();
    let reviews = client
        .request(
            Compliance::NAME,
            ReviewVariants {
                goal: goal.clone(),
                items,
                round: 0,
            },
        )
        .await
        .expect("review");
    let approved: Vec<Arm> = creatives
        .variants
        .iter()
        .filter(|v| {
            reviews
                .verdicts
                .iter()
                .any(|r| r.variant == v.id && r.verdict.approved)
        })
        .map(Arm::of)
        .collect();
    let daily: BTreeMap<_, _> = plan
        .plan
        .as_ref()
        .map(|p| {
            p.channels
                .iter()
                .map(|c| (c.channel, c.daily_spend))
                .collect()
        })
        .unwrap_or_default();
    client
        .request(
            Optimization::NAME,
            StartExperiment {
                goal: goal.clone(),
                attempt: 0,
                arms: approved.clone(),
                daily,
                curves: plan.curves,
                plan: plan.decision,
            },
        )
        .await
        .expect("experiment");
    let start = goal.start.unwrap_or(goal.deadline);
    let mut catalog = IdCatalog::default();
    let observations = approved
        .iter()
        .map(|arm| {
            catalog.add(goal.id.clone(), arm.variant.clone());
            Observation {
                campaign: goal.id.clone(),
                channel: arm.channel,
                segment: Some(arm.segment.clone()),
                variant: arm.variant.clone(),
                window_start: start,
                window_end: start + chrono::Duration::days(1),
                impressions: 1000,
                clicks: 30,
                conversions: 2,
                spend: 12.0,
                revenue: 0.0,
            }
        })
        .collect();
    ingest(
        kb,
        &client,
        Some(&catalog),
        Batch {
            goal: goal.clone(),
            day: 0,
            observations,
        },
    )
    .await
    .expect("ingest");
    // Queued behind the batch in the optimizer's mailbox: answers once the step is done.
    client
        .request(Optimization::NAME, GetProgress { goal })
        .await
        .expect("progress");
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A fresh runtime with the five agents on a fresh knowledge base in a temporary folder.
fn start(rt: &tokio::runtime::Runtime) -> (Runtime, KnowledgeBase, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options).unwrap_or_else(|e| panic!("kb: {e}"));
    // The shipped definitions, with room for a whole batch in flight at once.
    let specs = shipped_agent_specs()
        .unwrap_or_else(|e| panic!("shipped agents: {e}"))
        .into_iter()
        .map(|spec| {
            spec.with_mailbox(8192)
                .with_request_timeout(Duration::from_secs(300))
        })
        .collect::<Vec<_>>();
    let runtime = rt
        .block_on(
            Runtime::builder(campaignd::agents::registry().runtime().clone())
                .agents(specs)
                .services(Services::new().with(kb.clone()))
                .clock(Clock::manual(
                    "2026-10-01T05:00:00Z"
                        .parse()
                        .unwrap_or_else(|e| panic!("{e}")),
                ))
                .start(),
        )
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    (runtime, kb, dir)
}

fn stop(rt: &tokio::runtime::Runtime, runtime: Runtime, kb: KnowledgeBase) {
    rt.block_on(async {
        runtime.shutdown(Duration::from_secs(60)).await;
        let _ = kb.shutdown().await;
    });
}

/// `campaigns` new campaigns cycled at once; the time until the last one finished.
async fn batch(runtime: &Runtime, kb: &KnowledgeBase, campaigns: u64) -> Duration {
    let started = Instant::now();
    // Spawned tasks, not block_on's own thread, drive the requests.
    let tasks: Vec<_> = (0..campaigns)
        .map(|_| {
            let runtime = runtime.clone();
            let kb = kb.clone();
            tokio::spawn(async move { cycle(&runtime, &kb).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("cycle: {e}"));
    }
    started.elapsed()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".to_owned(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

/// One batch of `campaigns` per run, each run on a fresh runtime; prints cycles per second per
/// run and the resident memory before and after the first run.
fn fixed_runs(rt: &tokio::runtime::Runtime, campaigns: u64, runs: u32) {
    let mut rates = Vec::new();
    for run in 0..runs {
        let before = rss_kib();
        let (runtime, kb, _dir) = start(rt);
        let took = rt.block_on(batch(&runtime, &kb, campaigns));
        let after = rss_kib();
        let rate = campaigns as f64 / took.as_secs_f64();
        rates.push(rate);
        println!(
            "full_cycles/{campaigns} run {}: {campaigns} cycles in {:.1} s = {rate:.1} cycles/s; VmRSS {} before the runtime started, {} with {campaigns} campaigns cycled",
            run + 1,
            took.as_secs_f64(),
            mib(before),
            mib(after),
        );
        stop(rt, runtime, kb);
    }
    if let (Some(min), Some(max)) = (
        rates.iter().copied().reduce(f64::min),
        rates.iter().copied().reduce(f64::max),
    ) {
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        println!(
            "full_cycles/{campaigns}: {mean:.1} cycles/s mean of {} runs ({min:.1}–{max:.1})",
            rates.len()
        );
    }
}

/// First in the process, so the memory figures start from a clean heap.
fn thousand_campaigns(_c: &mut Criterion) {
    let runs: u32 = std::env::var("CYCLES_1000_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    if runs == 0 {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    fixed_runs(&rt, 1000, runs);
    // The same measure for 100, to compare with the 1 000 runs like for like.
    fixed_runs(&rt, 100, runs);
}

fn hundred_campaigns(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let (runtime, kb, _dir) = start(&rt);
    let mut group = c.benchmark_group("full_cycles");
    group.sample_size(10);
    let campaigns = 100u64;
    group.throughput(Throughput::Elements(campaigns));
    group.bench_with_input(
        BenchmarkId::from_parameter(campaigns),
        &campaigns,
        |b, &campaigns| {
            b.iter_custom(|iterations| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        total += batch(&runtime, &kb, campaigns).await;
                    }
                    total
                })
            });
        },
    );
    group.finish();
    println!(
        "VmRSS after the 100-campaign group ({} campaigns cycled in this process): {}",
        NEXT.load(Ordering::Relaxed),
        mib(rss_kib())
    );
    stop(&rt, runtime, kb);
}

criterion_group!(benches, thousand_campaigns, hundred_campaigns);
criterion_main!(benches);
