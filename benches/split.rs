//! The traffic split: the live quadrature (`traffic_split`) against the Monte-Carlo split it
//! replaced (`monte_carlo_split`, 10 000 joint draws, as the live path drew), in the same run, for
//! 6, 36 and 216 variants with flat posteriors (50–500 trials each) and concentrated ones
//! (10⁴–10⁶ trials), conversion rates 1–8 %.
//!
//! Before timing, it prints for each set the largest difference between the two splits' shares
//! (the Monte-Carlo split's own noise, about √(p(1 − p)/10 000) per share, dominates it).
//!
//! `cargo bench --bench split -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use campaignd::domain::optimization::thompson::{
    ArmStats, monte_carlo_split, realistic_arms, traffic_split,
};
use criterion::{Criterion, criterion_group};

/// The draws behind one live split before the quadrature (the shipped `split_draws`).
const DRAWS: usize = 10_000;
const SEED: u64 = 7;

fn sets() -> Vec<(String, Vec<ArmStats>)> {
    let mut sets = Vec::new();
    for count in [6, 36, 216] {
        for (kind, concentrated) in [("flat", false), ("concentrated", true)] {
            sets.push((
                format!("{count}_{kind}"),
                realistic_arms(count, concentrated),
            ));
        }
    }
    sets
}

fn print_agreement() {
    eprintln!("largest |quadrature - monte carlo ({DRAWS} draws)| per share:");
    for (name, arms) in sets() {
        let (Ok(exact), Ok(drawn)) = (traffic_split(&arms), monte_carlo_split(&arms, DRAWS, SEED))
        else {
            eprintln!("  {name:<16} no split");
            continue;
        };
        let gap = exact
            .shares
            .iter()
            .zip(&drawn.shares)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let zero = exact.shares.iter().filter(|&&s| s == 0.0).count();
        eprintln!(
            "  {name:<16} {gap:.4} ({zero} of {} variants pruned to 0)",
            arms.len()
        );
    }
}

fn split(c: &mut Criterion) {
    for (name, arms) in sets() {
        let mut group = c.benchmark_group(format!("split_{name}"));
        if arms.len() > 36 {
            // One Monte-Carlo split takes about a tenth of a second here.
            group.sample_size(10);
        }
        group.bench_function("quadrature", |b| b.iter(|| traffic_split(black_box(&arms))));
        group.bench_function("monte_carlo_10000", |b| {
            b.iter(|| monte_carlo_split(black_box(&arms), DRAWS, SEED))
        });
        group.finish();
    }
}

criterion_group!(benches, split);

fn main() {
    if !std::env::args().any(|a| a == "--list") {
        print_agreement();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
