//! Decisions worth a budget: campaignd's cost per conversion against an oracle that knows the
//! market and against a static plan that never learns, over markets whose truth differs from the
//! plan's priors (docs/optimization.md, "What-if runs").
//!
//! For each shipped example campaign and each seed, the market is the priors with each channel's
//! CVR and saturation spend multiplied by factors drawn log-uniformly within 0.3×–3× (CTR within
//! 0.8×–1.25×), and the campaign runs start to deadline through the real agents
//! (`campaign::simulate`). The quality figures — the median CPA over the oracle's, the share of runs
//! beating the static plan, the largest day's move — are computed once and printed first. Criterion
//! then times one what-if run.
//!
//! `cargo bench --bench budget -- --warm-up-time 1 --measurement-time 5`
//! (`BUDGET_SEEDS=N` sets the seeds per campaign; 100 by default.)

use campaignd::agents::Registry;
use campaignd::campaign::{WhatIf, simulate};
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::strategy::StrategyPlaybook;
use campaignd::market::{ChannelMarket, MarketFile};
use campaignd::settings::Settings;
use criterion::{Criterion, criterion_group};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const CAMPAIGNS: [&str; 3] = [
    "config/campaigns/kr_students_signups.toml",
    "config/campaigns/us_email_social.toml",
    "config/campaigns/acme_spring_push.toml",
];

/// A shipped campaign; one without a start starts 60 days before its deadline, so every run of
/// it is the same campaign.
fn goal(path: &str) -> CampaignGoal {
    let text = std::fs::read_to_string(path).expect("a shipped campaign file");
    let mut goal: CampaignGoal = toml::from_str(&text).expect("a valid campaign file");
    goal.start
        .get_or_insert(goal.deadline - chrono::Duration::days(60));
    goal
}

/// A factor drawn log-uniformly within [lo, hi].
fn factor(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

/// The priors of `goal`'s channels, perturbed as the module says, for `seed`.
fn perturbed(goal: &CampaignGoal, priors: &StrategyPlaybook, seed: u64) -> MarketFile {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_b0d9);
    let rate = priors.exchange_rate(&goal.budget.currency).unwrap_or(1.0);
    let channels = goal
        .channels
        .iter()
        .filter_map(|&channel| {
            let prior = priors.prior(channel)?.in_currency(rate);
            Some(ChannelMarket {
                channel,
                ctr: (prior.ctr * factor(&mut rng, 0.8, 1.25)).min(1.0),
                cvr: (prior.cvr * factor(&mut rng, 0.3, 3.0)).min(1.0),
                cpc: prior.cpc,
                saturation_spend: prior.response.half_saturation() * factor(&mut rng, 0.3, 3.0),
                order_value: 0.0,
            })
        })
        .collect();
    MarketFile {
        channels,
        ..MarketFile::default()
    }
}

struct Setup {
    settings: Settings,
    registry: Registry,
    priors: StrategyPlaybook,
    runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn new() -> Self {
        let registry = campaignd::agents::registry();
        let settings = registry.load(None).expect("the shipped settings");
        Setup {
            priors: StrategyPlaybook::embedded().expect("the embedded strategy playbook"),
            settings,
            registry,
            runtime: tokio::runtime::Runtime::new().expect("a runtime"),
        }
    }

    fn run(&self, goal: &CampaignGoal, seed: u64) -> WhatIf {
        let market = perturbed(goal, &self.priors, seed);
        self.runtime
            .block_on(simulate(
                &self.settings,
                &self.registry,
                goal,
                Some(&market),
                seed,
            ))
            .expect("a what-if run")
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn print_quality(setup: &Setup) {
    let seeds: u64 = std::env::var("BUDGET_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let started = std::time::Instant::now();
    let mut all_ratios = Vec::new();
    let (mut better, mut runs, mut largest) = (0usize, 0usize, 0.0f64);
    eprintln!("CPA against the oracle and a static plan, {seeds} perturbed markets per campaign:");
    for path in CAMPAIGNS {
        let goal = goal(path);
        let mut ratios = Vec::new();
        let mut beat = 0usize;
        for seed in 0..seeds {
            let run = setup.run(&goal, seed);
            if let Some(r) = run.cpa_vs_oracle {
                ratios.push(r);
            }
            beat += usize::from(run.cpa_vs_static.is_some_and(|s| s < 1.0));
            largest = largest.max(run.largest_move);
            runs += 1;
        }
        better += beat;
        all_ratios.extend(ratios.iter().copied());
        eprintln!(
            "  {:<22} median CPA {:.3} x the oracle's, beats the static plan in {:.0} % of runs",
            goal.id.as_str(),
            median(&mut ratios),
            100.0 * beat as f64 / seeds.max(1) as f64
        );
    }
    let share = better as f64 / runs.max(1) as f64;
    let overall = median(&mut all_ratios);
    eprintln!(
        "  all {runs} runs: median {overall:.3} x the oracle's (bar <= 1.3), beats the static plan in {:.0} % (bar >= 80 %), largest day's move {:.1} % of its budget (cap 20 %), {:.1} s",
        100.0 * share,
        100.0 * largest,
        started.elapsed().as_secs_f64()
    );
}

fn time_one_run(c: &mut Criterion, setup: &Setup) {
    let goal = goal(CAMPAIGNS[0]);
    c.bench_function("what_if_kr_students_signups", |b| {
        b.iter(|| setup.run(&goal, 3))
    });
}

criterion_group!(benches, time_all);

fn time_all(c: &mut Criterion) {
    time_one_run(c, &Setup::new());
}

fn main() {
    // `--list` (cargo test/bench discovery) should not pay for 300 runs.
    if !std::env::args().any(|a| a == "--list") {
        print_quality(&Setup::new());
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
