//! Durable decision recording through the group-commit writer (`durability = process`: every
//! acknowledgement waits for the flush that holds the record, whose index entries are already in
//! the in-memory tail) with 1, 64 and 256 concurrent writers, against the baseline measured in the
//! same run on the same encoded records: `raw_unflushed_records`, each encoded record inserted into
//! one sled tree by one thread, never flushed, with no index at all.
//!
//! Each writer is one chain of work, as in campaignd: its own correlation id, one of 4 campaigns,
//! one of 8 agents (`group_commit_process`). `group_commit_fresh_correlation/256` is the worst case
//! for the correlation index: a new correlation id on every decision.
//!
//! Criterion reports the rates; the acknowledgement latency percentiles, which criterion cannot
//! compute from `iter_custom`, are printed at the end and written to
//! `target/criterion/kb-ack-latency.txt`. On a shared machine the load drifts between criterion's
//! benchmarks, so the 256-writer ratios are also measured in interleaved rounds (raw, chain of work,
//! fresh correlation, raw, …; 40 000 records each) with the CPU each took per record, and the median
//! of each ratio is reported there.
//!
//! Run: `cargo bench --bench kb -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use campaignd::kb::{Decision, DecisionId, KbOptions, KnowledgeBase, SCHEMA_VERSION};
use campaignd::protocol::{AgentName, CampaignId, CorrelationId, TenantId, encode};
use criterion::{BenchmarkId, Criterion, Throughput};

const WRITERS: [usize; 3] = [1, 64, 256];

/// Acknowledgement latencies per benchmark, collected across criterion's samples.
type Latencies = Arc<Mutex<BTreeMap<String, Vec<Duration>>>>;

fn decision(writer: usize, correlation: CorrelationId) -> Decision {
    Decision {
        id: DecisionId::new(),
        schema_version: SCHEMA_VERSION,
        agent: AgentName::new(format!("agent-{}", writer % 8)),
        tenant: TenantId::new("acme"),
        campaign: Some(CampaignId::new(format!("spring-{}", writer % 4))),
        correlation_id: correlation,
        causation_id: None,
        kind: "traffic_split".into(),
        inputs: serde_json::json!({ "observations": 1200, "window": "7d" }),
        alternatives: Vec::new(),
        choice: serde_json::json!({ "variant-a": 0.61, "variant-b": 0.39 }),
        reason: "probability of being best under the joint posterior; 4000 draws".into(),
        confidence: 0.8,
        decided_at: chrono::Utc::now(),
        recorded_at: Some(chrono::Utc::now()),
    }
}

/// Writes `total` decisions from `writers` concurrent tasks, each task one chain of work (one
/// correlation id) unless `fresh_correlation`; returns the time spent writing.
fn group_commit(
    runtime: &tokio::runtime::Runtime,
    writers: usize,
    fresh_correlation: bool,
    total: u64,
    latencies: &mut Vec<Duration>,
) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = KnowledgeBase::open(&KbOptions::at(dir.path())).expect("open kb");
    let per_writer = total.div_ceil(writers as u64);
    let started = Instant::now();
    let acks = runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|writer| {
                let kb = kb.clone();
                let count = per_writer.min(total.saturating_sub(per_writer * writer as u64));
                tokio::spawn(async move {
                    let mut acks = Vec::with_capacity(count as usize);
                    let chain = CorrelationId::new();
                    for _ in 0..count {
                        let correlation = if fresh_correlation {
                            CorrelationId::new()
                        } else {
                            chain
                        };
                        let d = decision(writer, correlation);
                        let sent = Instant::now();
                        kb.record_decision(&d).await.expect("record");
                        acks.push(sent.elapsed());
                    }
                    acks
                })
            })
            .collect();
        let mut acks = Vec::new();
        for task in tasks {
            acks.extend(task.await.expect("writer task"));
        }
        acks
    });
    let elapsed = started.elapsed();
    latencies.extend(acks);
    drop(kb);
    elapsed
}

/// Inserts the same kind of records, encoded the same way, straight into sled without flushing.
fn raw(total: u64) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path()).expect("open sled");
    let records = db.open_tree("records").expect("tree");
    let chain = CorrelationId::new();
    let started = Instant::now();
    for n in 0..total {
        let d = decision(n as usize, chain);
        let value = encode("decision", &d).expect("encode");
        let mut key = vec![b'd'];
        key.extend_from_slice(d.id.0.as_bytes());
        records.insert(&key, value).expect("insert");
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn benches(c: &mut Criterion, latencies: &Latencies) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("kb_record_decision");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_unflushed_records", |b| b.iter_custom(raw));
    let cases = WRITERS
        .map(|writers| ("group_commit_process", writers, false))
        .into_iter()
        .chain([("group_commit_fresh_correlation", 256, true)]);
    for (label, writers, fresh) in cases {
        let name = format!("{label}/{writers}");
        group.bench_with_input(BenchmarkId::new(label, writers), &writers, |b, &writers| {
            b.iter_custom(|iters| {
                let mut acks = Vec::new();
                let elapsed = group_commit(&runtime, writers, fresh, iters, &mut acks);
                if let Ok(mut all) = latencies.lock() {
                    all.entry(name.clone()).or_default().extend(acks);
                }
                elapsed
            })
        });
    }
    group.finish();
}

/// Rates in records per second from interleaved rounds, and the text that reports their ratios.
/// CPU seconds this process has used (user and system, all threads), from `/proc/self/stat`; zero
/// where that file cannot be read.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime
    // are the 12th and 13th, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
    ticks(11)
        .zip(ticks(12))
        .map_or(0.0, |(user, system)| (user + system) / 100.0)
}

fn interleaved(runtime: &tokio::runtime::Runtime) -> String {
    const ROUNDS: usize = 5;
    const RECORDS: u64 = 40_000;
    let rate = |elapsed: Duration| RECORDS as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    let (mut chain, mut fresh) = (Vec::new(), Vec::new());
    let mut text = String::from(
        "interleaved rounds at 256 writers (records/s; CPU µs per record: raw / chain / fresh):\n",
    );
    for round in 0..ROUNDS {
        // CPU per record shows what moves a ratio: the baseline's own cost swings between rounds.
        let mut cpu = Vec::new();
        let mut measured = |run: &mut dyn FnMut() -> Duration| {
            let before = cpu_seconds();
            let elapsed = run();
            cpu.push((cpu_seconds() - before) * 1e6 / RECORDS as f64);
            rate(elapsed)
        };
        let mut ignored = Vec::new();
        let raw = measured(&mut || raw(RECORDS));
        let one_chain = measured(&mut || group_commit(runtime, 256, false, RECORDS, &mut ignored));
        let fresh_ids = measured(&mut || group_commit(runtime, 256, true, RECORDS, &mut ignored));
        text.push_str(&format!(
            "round {round}: raw {raw:.0}, chain of work {one_chain:.0} ({:.2}x), fresh correlation {fresh_ids:.0} ({:.2}x); CPU {:.1} / {:.1} / {:.1}\n",
            one_chain / raw,
            fresh_ids / raw,
            cpu[0],
            cpu[1],
            cpu[2],
        ));
        chain.push(one_chain / raw);
        fresh.push(fresh_ids / raw);
    }
    let median = |ratios: &mut Vec<f64>| {
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied().unwrap_or_default()
    };
    text.push_str(&format!(
        "median ratio to raw unflushed record inserts: chain of work {:.2}x, fresh correlation {:.2}x\n",
        median(&mut chain),
        median(&mut fresh)
    ));
    text
}

fn report(latencies: &Latencies, interleaved: &str) {
    let Ok(mut all) = latencies.lock() else {
        return;
    };
    let mut text = String::from("acknowledgement latency (durability = process), all samples:\n");
    for (name, acks) in all.iter_mut() {
        acks.sort_unstable();
        text.push_str(&format!(
            "{name}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms\n",
            acks.len(),
            percentile(acks, 0.50).as_secs_f64() * 1e3,
            percentile(acks, 0.99).as_secs_f64() * 1e3,
            acks.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        ));
    }
    text.push_str(interleaved);
    eprint!("\n{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("kb-ack-latency.txt"), text);
    }
}

fn main() {
    let latencies: Latencies = Arc::default();
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion, &latencies);
    criterion.final_summary();
    // `cargo bench` passes `--bench`; a test run of this target (`cargo test --benches`) does not
    // need the extra rounds.
    if std::env::args().any(|arg| arg == "--bench") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let rounds = interleaved(&runtime);
        report(&latencies, &rounds);
    }
}
