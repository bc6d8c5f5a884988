//! How many campaigns the five agents carry, on a real runtime and a real sled knowledge base
//! (durability `none`, in a temporary folder), each figure against its baseline in the same run:
//!
//! - `full_cycles_1000`: 1 000 new campaigns at once, each one full cycle: plan (strategy) →
//!   creatives (content) → review (compliance) → experiment start and one experiment step (a
//!   batch of observations through the ingestion path, learned from by optimization). On 2 tokio
//!   worker threads, against 1 thread.
//! - `campaign_days_1000`: steady-state campaign days of 1 000 running campaigns shaped like the
//!   three shipped examples (2–3 channels, 2 segments, about 100 variants each), through the
//!   campaign loop: tick → buys → simulated observations → ingestion → learning → traffic split
//!   → allocation → forecast. On 2 threads, against 1 thread.
//!
//! Every agent runs `WORKERS` workers (default 2, the shipped default on this 2-core machine:
//! one per core). Each iteration is one batch of 1 000 (criterion's flat sampling, ten samples),
//! so a figure is seconds per 1 000; the throughput line reads as campaigns per second. The
//! process's resident memory (VmRSS) with the 1 000 running campaigns is printed after the
//! steady-state group on 2 threads, the first group of the process.
//!
//! `cargo bench --bench cycles -- --warm-up-time 1 --measurement-time 5`; with
//! `CAMPAIGN_DAYS_TRACE=N` the steady-state group instead times `N` days one by one (see
//! [`trace_days`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use campaignd::agents::compliance::{Compliance, ReviewItem, ReviewVariants};
use campaignd::agents::content::{Content, WriteCreatives};
use campaignd::agents::messages::Arm;
use campaignd::agents::optimization::{GetProgress, Optimization, StartExperiment};
use campaignd::agents::strategy::{PlanCampaign, Strategy};
use campaignd::campaign::ingest::{Batch, ingest};
use campaignd::campaign::{CampaignLoop, LoopOptions};
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::content::message_of;
use campaignd::domain::strategy::StrategyPlaybook;
use campaignd::kb::{Durability, KbOptions, KnowledgeBase};
use campaignd::market::{IdCatalog, Observation};
use campaignd::protocol::Origin;
use campaignd::runtime::{Agent, Clock, Runtime, Services};
use campaignd::settings::campaigns::EMBEDDED_CAMPAIGNS;
use campaignd::settings::shipped_agent_specs;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

/// The daemon's allocator (see `src/main.rs`), so the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        [brief]
        product = "Globex autumn bundle"
        landing_url = "https://shop.globex.example/autumn-bundle"
        languages = {{ US = "en" }}
        [brief.copy.en]
        product = "Autumn Bundle"
        messages = ["Three cold-weather favorites in one box", "Layer up before the first frost"]
        claims = [{{ kind = "free", text = "Free shipping", evidence = "Shipping policy 2026" }}]
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
                batch: String::new(),
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
                bounds: plan.bounds,
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

/// Campaigns per batch.
const CAMPAIGNS: u64 = 1000;
const DAY: Duration = Duration::from_secs(86_400);

fn workers() -> usize {
    std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn tokio_threads(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

/// The five agents on a fresh knowledge base in a temporary folder.
struct Fixture {
    runtime: Runtime,
    kb: KnowledgeBase,
    clock: Clock,
    _dir: tempfile::TempDir,
}

fn start(rt: &tokio::runtime::Runtime) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options).unwrap_or_else(|e| panic!("kb: {e}"));
    // The shipped definitions, with room for a whole batch in flight at once.
    let specs = shipped_agent_specs()
        .unwrap_or_else(|e| panic!("shipped agents: {e}"))
        .into_iter()
        .map(|spec| {
            spec.with_workers(workers())
                .with_mailbox(8192)
                .with_request_timeout(Duration::from_secs(300))
        })
        .collect::<Vec<_>>();
    let clock = Clock::manual(
        "2026-10-01T05:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let runtime = rt
        .block_on(
            Runtime::builder(campaignd::agents::registry().runtime().clone())
                .agents(specs)
                .services(Services::new().with(kb.clone()))
                .clock(clock.clone())
                .start(),
        )
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    Fixture {
        runtime,
        kb,
        clock,
        _dir: dir,
    }
}

fn stop(rt: &tokio::runtime::Runtime, fixture: Fixture) {
    rt.block_on(async {
        fixture.runtime.shutdown(Duration::from_secs(60)).await;
        let _ = fixture.kb.shutdown().await;
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

/// What the allocator has handed out and not had back (jemalloc's `stats.allocated`): the live
/// heap, against which VmRSS shows what the allocator keeps.
fn allocated() -> String {
    use tikv_jemalloc_ctl::{epoch, stats};
    match epoch::advance().and_then(|_| stats::allocated::read()) {
        Ok(bytes) => mib(Some(bytes as u64 / 1024)),
        Err(e) => format!("unknown ({e})"),
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".to_owned(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

/// 1 000 campaigns shaped like the shipped examples, with targets they cannot reach within the
/// benchmark, so every measured day is a full market day.
fn example_goals() -> Vec<CampaignGoal> {
    let shapes: Vec<CampaignGoal> = EMBEDDED_CAMPAIGNS
        .iter()
        .map(|(name, text)| {
            toml::from_str(text).unwrap_or_else(|e| panic!("embedded campaign {name}: {e}"))
        })
        .collect();
    (0..CAMPAIGNS as usize)
        .map(|n| {
            let mut goal = shapes[n % shapes.len()].clone();
            goal.id = format!("{}_{n}", goal.id).into();
            goal.target = 10_000_000;
            goal
        })
        .collect()
}

/// A campaign loop over 1 000 running campaigns, past their set-up day and one market day.
fn running_loop(rt: &tokio::runtime::Runtime, fixture: &Fixture) -> CampaignLoop {
    let options = LoopOptions::new(
        42,
        StrategyPlaybook::embedded().unwrap_or_else(|e| panic!("playbook: {e}")),
    );
    let mut campaign_loop = CampaignLoop::new(
        fixture.runtime.clone(),
        fixture.kb.clone(),
        example_goals(),
        options,
    );
    for _ in 0..2 {
        rt.block_on(day(&mut campaign_loop));
        fixture
            .clock
            .advance(DAY)
            .unwrap_or_else(|e| panic!("clock: {e}"));
    }
    campaign_loop
}

/// One day of every campaign; fails the benchmark if a day did not complete or bought nothing.
async fn day(campaign_loop: &mut CampaignLoop) -> Duration {
    let started = Instant::now();
    let reports = campaign_loop.step().await;
    let took = started.elapsed();
    assert_eq!(
        reports.len(),
        CAMPAIGNS as usize,
        "every campaign has a day"
    );
    for report in &reports {
        assert!(
            report.error.is_none(),
            "{}: {:?}",
            report.campaign,
            report.error
        );
        let tick = report
            .tick
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no tick", report.campaign));
        assert!(
            !tick.buys.is_empty() || report.day == 0,
            "{} day {}: nothing bought ({:?})",
            report.campaign,
            report.day,
            tick.held
        );
    }
    took
}

/// `CAMPAIGN_DAYS_TRACE=N`: instead of sampling, sets up the running campaigns and times `N`
/// days one by one on 2 threads, printing each day's seconds, the process's VmRSS and its live
/// heap (jemalloc's `stats.allocated`): how the cost of a day moves with the days, and a process
/// to profile.
fn trace_days(days: u32) {
    let rt = tokio_threads(2);
    let started = Instant::now();
    let fixture = start(&rt);
    let mut campaign_loop = running_loop(&rt, &fixture);
    println!(
        "set-up and two days of {CAMPAIGNS} campaigns: {:.1} s, VmRSS {}, allocated {}",
        started.elapsed().as_secs_f64(),
        mib(rss_kib()),
        allocated()
    );
    for n in 0..days {
        let took = rt.block_on(day(&mut campaign_loop));
        fixture
            .clock
            .advance(DAY)
            .unwrap_or_else(|e| panic!("clock: {e}"));
        println!(
            "day {n}: {:.2} s ({:.0} campaign days/s), VmRSS {}, allocated {}",
            took.as_secs_f64(),
            CAMPAIGNS as f64 / took.as_secs_f64(),
            mib(rss_kib()),
            allocated()
        );
    }
    drop(campaign_loop);
    stop(&rt, fixture);
}

fn campaign_days(c: &mut Criterion) {
    if let Some(days) = std::env::var("CAMPAIGN_DAYS_TRACE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        trace_days(days);
        return;
    }
    let mut group = c.benchmark_group("campaign_days_1000");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CAMPAIGNS));
    for threads in [2, 1] {
        let rt = tokio_threads(threads);
        // Built at the first iteration, so a group the filter skips costs nothing.
        let mut running: Option<(Fixture, CampaignLoop)> = None;
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iterations| {
                let (fixture, campaign_loop) = running.get_or_insert_with(|| {
                    let fixture = start(&rt);
                    let campaign_loop = running_loop(&rt, &fixture);
                    (fixture, campaign_loop)
                });
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    total += rt.block_on(day(campaign_loop));
                    fixture
                        .clock
                        .advance(DAY)
                        .unwrap_or_else(|e| panic!("clock: {e}"));
                }
                total
            });
        });
        if let Some((fixture, campaign_loop)) = running {
            if threads == 2 {
                println!(
                    "VmRSS with {CAMPAIGNS} running campaigns (2 threads, {} workers per agent): {}",
                    workers(),
                    mib(rss_kib())
                );
            }
            drop(campaign_loop);
            stop(&rt, fixture);
        }
    }
    group.finish();
}

fn full_cycles(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_cycles_1000");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CAMPAIGNS));
    for threads in [2, 1] {
        let rt = tokio_threads(threads);
        let mut running: Option<Fixture> = None;
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iterations| {
                let fixture = running.get_or_insert_with(|| start(&rt));
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        total += batch(&fixture.runtime, &fixture.kb, CAMPAIGNS).await;
                    }
                    total
                })
            });
        });
        if let Some(fixture) = running {
            stop(&rt, fixture);
        }
    }
    group.finish();
}

criterion_group!(benches, campaign_days, full_cycles);
criterion_main!(benches);
