//! Full campaign cycles per second through the five agents on a real runtime and a real sled
//! knowledge base (durability `none`, in a temporary folder): plan (strategy) → creatives (content)
//! → review (compliance) → experiment start and one experiment step (a batch of observations
//! through the ingestion path, learned from by optimization), for 100 and 1 000 campaigns in
//! flight at once. After the 1 000-campaign runs it prints the process's resident memory (VmRSS),
//! which holds the runtime, the agents' state for every campaign and sled's cache.
//!
//! `cargo bench --bench cycles -- --warm-up-time 1 --measurement-time 5`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use campaignd::agents::compliance::{ReviewItem, ReviewVariants};
use campaignd::agents::content::{WriteCreatives, message_of};
use campaignd::agents::optimization::{Arm, GetProgress, StartExperiment};
use campaignd::agents::strategy::PlanCampaign;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::kb::{Durability, KbOptions, KnowledgeBase};
use campaignd::market::ingest::{Batch, ingest};
use campaignd::market::{IdCatalog, Observation};
use campaignd::protocol::Origin;
use campaignd::runtime::{AgentSpec, Clock, Runtime, Services};
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
            "strategy",
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
        .request("content", WriteCreatives { goal: goal.clone() })
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
            "compliance",
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
            "optimization",
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
        &catalog,
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
        .request("optimization", GetProgress { goal })
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

fn cycles(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options).unwrap_or_else(|e| panic!("kb: {e}"));
    let specs = [
        "orchestrator",
        "strategy",
        "content",
        "compliance",
        "optimization",
    ]
    .into_iter()
    .map(|name| {
        let spec = AgentSpec::new(name)
            .with_mailbox(8192)
            .with_request_timeout(Duration::from_secs(120));
        if name == "optimization" {
            spec.with_subscription("observations_recorded")
        } else {
            spec
        }
    })
    .collect::<Vec<_>>();
    let runtime = rt
        .block_on(
            Runtime::builder(campaignd::agents::registry())
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

    let mut group = c.benchmark_group("full_cycles");
    group.sample_size(10);
    for campaigns in [100u64, 1000] {
        group.throughput(Throughput::Elements(campaigns));
        group.bench_with_input(
            BenchmarkId::from_parameter(campaigns),
            &campaigns,
            |b, &campaigns| {
                b.iter_custom(|iterations| {
                    rt.block_on(async {
                        let started = Instant::now();
                        for _ in 0..iterations {
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
                        }
                        started.elapsed()
                    })
                });
            },
        );
        if let Some(rss) = rss_kib() {
            println!(
                "resident memory after the {campaigns}-campaign runs ({} campaigns cycled in total): {:.1} MiB",
                NEXT.load(Ordering::Relaxed),
                rss as f64 / 1024.0
            );
        }
    }
    group.finish();
    rt.block_on(async {
        runtime.shutdown(Duration::from_secs(30)).await;
        let _ = kb.shutdown().await;
    });
}

criterion_group!(benches, cycles);
criterion_main!(benches);
