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
//! `kb_reopen_after_kill` times the open of a knowledge base whose writer was SIGKILLed: the repair
//! from the recent-keys list (`recent_keys`) against the full rebuild from every record
//! (`full_rebuild`, what every open after an unclean stop did before the list) in the same run, on
//! the same killed directory. The directory holds `KB_REOPEN_DECISIONS` decisions (default
//! 1 000 000; fewer for a quick run), written once per run and closed cleanly, then a child process
//! (this binary again) writes more from 64 writers with `durability = process` and is SIGKILLed
//! once 6 000 are acknowledged, so sled's own recovery after a kill is part of what is timed. Each
//! sample opens a fresh copy of that directory; only the open is timed. `clean_open`, the open of
//! a copy repaired and closed cleanly beforehand, is the floor: sled's own open of the same data.
//! The records each repair read are printed at the end and written to
//! `target/criterion/kb-reopen.txt`.
//!
//! After the reopen case the same knowledge base, closed cleanly, is read through twice (an export
//! to nowhere: every record, constant memory) in a fresh child process per `[kb]
//! cache_capacity_bytes` in `KB_CACHE_MIB` (default `16,64,256,1024`; sled's own default is 1 GiB):
//! the process's resident memory (VmRSS, and its peak VmHWM) after the reads and the time of the
//! second read, which the cache would speed up, go to the same file.
//!
//! Run: `cargo bench --bench kb -- --warm-up-time 1 --measurement-time 3`
//! (only the reopen case: add `kb_reopen_after_kill`)

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use campaignd::kb::{
    Decision, DecisionId, Durability, KbOptions, KnowledgeBase, Recovery, SCHEMA_VERSION,
};
use campaignd::protocol::{AgentName, CampaignId, CorrelationId, TenantId, encode};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

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

fn benches(c: &mut Criterion, latencies: &Latencies, recorded: &AtomicBool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("kb_record_decision");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_unflushed_records", |b| {
        recorded.store(true, Ordering::Relaxed);
        b.iter_custom(raw)
    });
    let cases = WRITERS
        .map(|writers| ("group_commit_process", writers, false))
        .into_iter()
        .chain([("group_commit_fresh_correlation", 256, true)]);
    for (label, writers, fresh) in cases {
        let name = format!("{label}/{writers}");
        group.bench_with_input(BenchmarkId::new(label, writers), &writers, |b, &writers| {
            recorded.store(true, Ordering::Relaxed);
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

/// Set in the child that reads a knowledge base with a given cache: `<cache bytes>:<directory>`.
const CACHE_CHILD_ENV: &str = "KB_BENCH_CACHE_CHILD";
/// The cache sizes measured, in MiB.
const CACHE_MIB_ENV: &str = "KB_CACHE_MIB";

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`); `None` where it cannot be read.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The cache child: opens `dir` with `cache` bytes of sled cache, reads every record twice and
/// prints `VmRSS VmHWM second-read-seconds`.
fn read_with_cache(spec: &str) {
    let Some((cache, dir)) = spec.split_once(':') else {
        panic!("{CACHE_CHILD_ENV} is `<bytes>:<dir>`, not {spec}");
    };
    let options = KbOptions {
        cache_capacity_bytes: cache.parse().expect("cache bytes"),
        ..KbOptions::at(dir)
    };
    let kb = KnowledgeBase::open(&options).expect("open kb");
    let scope = campaignd::kb::Scope::AllTenants;
    kb.export_jsonl(&scope, std::io::sink())
        .expect("first read");
    let started = Instant::now();
    let read = kb
        .export_jsonl(&scope, std::io::sink())
        .expect("second read");
    let second = started.elapsed();
    println!(
        "{} {} {:.3} {}",
        status_kib("VmRSS").unwrap_or_default(),
        status_kib("VmHWM").unwrap_or_default(),
        second.as_secs_f64(),
        read.records
    );
}

/// Resident memory and read time per cache size, each in a fresh process, on a cleanly closed copy
/// of the reopened knowledge base.
fn cache_memory(killed: &Killed) -> String {
    let sizes: Vec<u64> = std::env::var(CACHE_MIB_ENV)
        .unwrap_or_else(|_| "16,64,256,1024".into())
        .split(',')
        .filter_map(|mib| mib.trim().parse().ok())
        .collect();
    let copy = &killed.clean;
    let mut text = String::from(
        "memory after reading every record twice, per [kb] cache_capacity_bytes (fresh process each):\n",
    );
    for mib in sizes {
        let output = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env(
                CACHE_CHILD_ENV,
                format!("{}:{}", mib * 1024 * 1024, copy.display()),
            )
            .output()
            .expect("run the cache child");
        let line = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let kib = |n: usize| {
            fields
                .get(n)
                .and_then(|f| f.parse::<f64>().ok())
                .map_or("?".to_owned(), |k| format!("{:.0} MiB", k / 1024.0))
        };
        text.push_str(&format!(
            "cache {mib} MiB: VmRSS {}, peak VmHWM {}, second read of {} records {} s\n",
            kib(0),
            kib(1),
            fields.get(3).unwrap_or(&"?"),
            fields.get(2).unwrap_or(&"?"),
        ));
    }
    text
}

/// Set in the child that writes to a knowledge base until it is killed: its directory.
const KILLED_WRITER_ENV: &str = "KB_BENCH_KILLED_WRITER";
/// Decisions in the reopened knowledge base.
const REOPEN_DECISIONS_ENV: &str = "KB_REOPEN_DECISIONS";
/// Decisions the killed child must have had acknowledged: past one fold (4 096 records), so its
/// list has been trimmed once, as in a long run.
const KILLED_AFTER: u64 = 6_000;

/// Writes decisions from `writers` tasks (each one chain of work, as in `group_commit`) until
/// `total` are acknowledged (`None`: forever), calling `acked` with the running count.
fn write_decisions(
    runtime: &tokio::runtime::Runtime,
    kb: &KnowledgeBase,
    writers: usize,
    total: Option<u64>,
    acked: impl Fn(u64) + Send + Sync + 'static,
) {
    let (next, done, acked) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(acked),
    );
    runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|writer| {
                let (kb, next, done, acked) = (
                    kb.clone(),
                    Arc::clone(&next),
                    Arc::clone(&done),
                    Arc::clone(&acked),
                );
                tokio::spawn(async move {
                    let chain = CorrelationId::new();
                    while total.is_none_or(|total| next.fetch_add(1, Ordering::Relaxed) < total) {
                        kb.record_decision(&decision(writer, chain))
                            .await
                            .expect("record");
                        acked(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer task");
        }
    });
}

/// The child: writes to `dir` with `durability = process` and prints the acknowledged count every
/// thousand, until the parent kills it.
fn write_until_killed(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let options = KbOptions {
        durability: Durability::Process,
        ..KbOptions::at(dir)
    };
    let kb = KnowledgeBase::open(&options).expect("open kb");
    write_decisions(&runtime, &kb, 64, None, |done| {
        if done.is_multiple_of(1_000) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{done}");
            let _ = out.flush();
        }
    });
}

/// A knowledge base of `decisions` decisions, closed cleanly, then written to by a child process
/// SIGKILLed mid-write. Built once per run.
struct Killed {
    dir: tempfile::TempDir,
    path: PathBuf,
    /// A copy of `path` repaired and closed cleanly.
    clean: PathBuf,
    decisions: u64,
    bytes: u64,
}

/// A static is never dropped: `main` removes its directory at the end.
static KILLED: OnceLock<Killed> = OnceLock::new();

fn killed_knowledge_base() -> &'static Killed {
    KILLED.get_or_init(|| {
        // A test run of this target (`cargo test --benches`, no `--bench`) only checks it works.
        let default = if std::env::args().any(|arg| arg == "--bench") {
            1_000_000
        } else {
            20_000
        };
        let decisions = std::env::var(REOPEN_DECISIONS_ENV)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kb");
        let started = Instant::now();
        {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let options = KbOptions {
                durability: Durability::None,
                ..KbOptions::at(&path)
            };
            let kb = KnowledgeBase::open(&options).expect("open kb");
            write_decisions(&runtime, &kb, 256, Some(decisions), |_| {});
            runtime.block_on(kb.shutdown()).expect("close cleanly");
        }
        let built = started.elapsed();
        let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env(KILLED_WRITER_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the writer to kill");
        let stdout = child.stdout.take().expect("child stdout");
        let acked = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.trim().parse::<u64>().ok())
            .find(|&done| done >= KILLED_AFTER);
        // SIGKILL: no destructor, no clean close, sled's buffers as the kill left them.
        child.kill().expect("kill the writer");
        let _ = child.wait();
        assert!(acked.is_some(), "the killed writer stopped before {KILLED_AFTER} acknowledgements");
        let bytes = dir_bytes(&path);
        eprintln!(
            "kb_reopen_after_kill: {decisions} decisions written in {:.1} s, then a writer killed after {} more; {:.0} MiB on disk",
            built.as_secs_f64(),
            acked.unwrap_or_default(),
            bytes as f64 / (1024.0 * 1024.0)
        );
        let clean = dir.path().join("clean");
        copy_dir(&path, &clean);
        drop(KnowledgeBase::open(&KbOptions::at(&clean)).expect("repair and close the copy"));
        Killed {
            dir,
            path,
            clean,
            decisions,
            bytes,
        }
    })
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the killed directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// What each reopen case's repairs reported, across criterion's samples.
type Repairs = Arc<Mutex<BTreeMap<&'static str, Vec<(Duration, Recovery)>>>>;

/// `KnowledgeBase::open` or `open_rebuilding`.
type Open = fn(&KbOptions) -> Result<KnowledgeBase, campaignd::kb::KbError>;

fn reopen_benches(c: &mut Criterion, repairs: &Repairs) {
    let mut group = c.benchmark_group("kb_reopen_after_kill");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    // The clean open is the floor: sled's own open of the same directory, nothing to repair.
    let cases: [(&'static str, bool, Open); 3] = [
        ("clean_open", true, KnowledgeBase::open),
        ("recent_keys", false, KnowledgeBase::open),
        ("full_rebuild", false, KnowledgeBase::open_rebuilding),
    ];
    for (label, clean, open) in cases {
        group.bench_function(label, |b| {
            let killed = killed_knowledge_base();
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let scratch = tempfile::tempdir().expect("tempdir");
                    let copy = scratch.path().join("kb");
                    copy_dir(if clean { &killed.clean } else { &killed.path }, &copy);
                    let started = Instant::now();
                    let kb = open(&KbOptions::at(&copy)).expect("reopen");
                    let elapsed = started.elapsed();
                    timed += elapsed;
                    if let Ok(mut all) = repairs.lock() {
                        all.entry(label)
                            .or_default()
                            .push((elapsed, kb.recovery().clone()));
                    }
                    drop(kb);
                }
                timed
            })
        });
    }
    group.finish();
}

fn reopen_report(repairs: &Repairs) {
    let Ok(all) = repairs.lock() else {
        return;
    };
    if all.is_empty() {
        // Filtered out: nothing was built.
        return;
    }
    let killed = killed_knowledge_base();
    let mut text = format!(
        "reopen after a kill, {} decisions ({:.0} MiB):\n",
        killed.decisions,
        killed.bytes as f64 / (1024.0 * 1024.0)
    );
    for (label, runs) in all.iter() {
        let mut times: Vec<Duration> = runs.iter().map(|(t, _)| *t).collect();
        times.sort_unstable();
        text.push_str(&format!(
            "{label}: n={} median {:.3} s, min {:.3} s, max {:.3} s; {:?}\n",
            times.len(),
            percentile(&times, 0.5).as_secs_f64(),
            times.first().copied().unwrap_or_default().as_secs_f64(),
            times.last().copied().unwrap_or_default().as_secs_f64(),
            runs.first().map(|(_, recovery)| recovery),
        ));
    }
    if std::env::args().any(|arg| arg == "--bench") {
        text.push_str(&cache_memory(killed));
    }
    eprint!("\n{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("kb-reopen.txt"), text);
    }
}

fn main() {
    if let Some(dir) = std::env::var_os(KILLED_WRITER_ENV) {
        write_until_killed(Path::new(&dir));
        return;
    }
    if let Ok(spec) = std::env::var(CACHE_CHILD_ENV) {
        read_with_cache(&spec);
        return;
    }
    let latencies: Latencies = Arc::default();
    let repairs: Repairs = Arc::default();
    let recorded = AtomicBool::new(false);
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion, &latencies, &recorded);
    reopen_benches(&mut criterion, &repairs);
    criterion.final_summary();
    reopen_report(&repairs);
    // `cargo bench` passes `--bench`; a test run of this target (`cargo test --benches`) does not
    // need the extra rounds, nor does a run filtered to the reopen case.
    if std::env::args().any(|arg| arg == "--bench") && recorded.load(Ordering::Relaxed) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let rounds = interleaved(&runtime);
        report(&latencies, &rounds);
    }
    if let Some(killed) = KILLED.get() {
        let _ = std::fs::remove_dir_all(killed.dir.path());
    }
}
