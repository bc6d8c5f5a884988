//! `campaignd kb …`: the knowledge base from the command line — a durability benchmark in the
//! spirit of PostgreSQL's `pg_test_fsync`, the JSON Lines export (with `--salvage`, of whatever a
//! damaged directory still holds), the import of an export into a fresh directory, and two
//! queries.
//!
//! These commands act as an operator: they read across all tenants unless `--tenant` narrows them.
//! They open the sled directory themselves, so they cannot run while a daemon holds it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use campaignd::kb::{
    Decision, DecisionId, Durability, ImportedTenants, KbError, KbOptions, KnowledgeBase,
    QueryResult, Record, SCHEMA_VERSION, Scope, salvage_jsonl,
};
use campaignd::protocol::{AgentName, CampaignId, CorrelationId, TenantId};
use campaignd::settings::Settings;
use serde::Serialize;

/// The encoded size of a synthetic decision with empty padding; `--record-bytes` below it gives
/// this size.
const UNPADDED_RECORD_BYTES: usize = 307;

#[derive(clap::Subcommand, Debug)]
pub enum KbCommand {
    /// Write synthetic decisions through the real group-commit writer and report throughput and
    /// acknowledgement latency; with --print-ids, print each acknowledged decision id.
    Bench(BenchArgs),
    /// Print every record as JSON Lines.
    Export {
        #[command(flatten)]
        dir: DataDir,
        /// Only this tenant's records.
        #[arg(long)]
        tenant: Option<String>,
        /// Go past pages sled cannot read (a damaged directory) and report the key ranges skipped.
        #[arg(long)]
        salvage: bool,
    },
    /// Load an export (JSON Lines, from a file or stdin) into a fresh, empty directory.
    Import {
        #[command(flatten)]
        dir: DataDir,
        /// The export to read; stdin when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Print a campaign's decisions as JSON Lines, in time order.
    Decisions {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        campaign: String,
        /// Only this tenant's decisions (all tenants otherwise).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print the causal trace of one correlation id (decisions and outcomes) as JSON Lines.
    Trace {
        #[command(flatten)]
        dir: DataDir,
        correlation_id: CorrelationId,
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct DataDir {
    /// The knowledge-base directory (default: `<daemon.data_dir>/kb` from the config).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    dir: DataDir,
    /// When a write is acknowledged: none, process or power.
    #[arg(long, default_value = "process")]
    durability: Durability,
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Decisions to write in total.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Encoded size of each decision (at least 307 bytes).
    #[arg(long, default_value_t = 320)]
    record_bytes: usize,
    /// Print each acknowledged decision id on its own line (flushed), and the summary on stderr.
    #[arg(long)]
    print_ids: bool,
}

pub fn execute(config: Option<&Path>, command: KbCommand) -> anyhow::Result<ExitCode> {
    let configured = config;
    match command {
        KbCommand::Bench(args) => bench(&data_dir(args.dir.data_dir.clone(), configured)?, args),
        KbCommand::Export {
            dir,
            tenant,
            salvage: true,
        } => salvage(&data_dir(dir.data_dir, configured)?, &scope(tenant)),
        KbCommand::Import { dir, file } => import(&data_dir(dir.data_dir, configured)?, file),
        KbCommand::Export { dir, tenant, .. } => {
            let path = data_dir(dir.data_dir, configured)?;
            let kb = open_existing(&path)?;
            let summary = match kb.export_jsonl(&scope(tenant), std::io::stdout().lock()) {
                Ok(summary) => summary,
                // A page sled cannot read stops the plain export; salvage goes past it.
                Err(err @ KbError::Storage { .. }) => anyhow::bail!(
                    "{err}; the export stopped there. `campaignd kb export --salvage --data-dir {}` goes past what cannot be read (docs/operations.md)",
                    path.display()
                ),
                Err(err) => return Err(err.into()),
            };
            eprintln!(
                "exported {} records, skipped {} unreadable",
                summary.records,
                summary.skipped.len()
            );
            report_skipped(&summary.skipped)
        }
        KbCommand::Decisions {
            dir,
            campaign,
            tenant,
        } => {
            let kb = open_existing(&data_dir(dir.data_dir, configured)?)?;
            print_lines(kb.decisions_by_campaign(&scope(tenant), &CampaignId::new(campaign))?)
        }
        KbCommand::Trace {
            dir,
            correlation_id,
            tenant,
        } => {
            let kb = open_existing(&data_dir(dir.data_dir, configured)?)?;
            print_lines(kb.trace(&scope(tenant), correlation_id)?)
        }
    }
}

/// `--data-dir` wins; otherwise `<daemon.data_dir>/kb` from the same config `run` would use.
fn data_dir(flag: Option<PathBuf>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    match Settings::load(config) {
        Ok(settings) => Ok(settings.config.daemon.kb_path()),
        Err(problems) => {
            for problem in &problems.0 {
                eprintln!("{problem}");
            }
            anyhow::bail!(
                "cannot tell where the knowledge base is: {} problem(s) in the configuration; fix them or pass --data-dir",
                problems.0.len()
            )
        }
    }
}

/// Opens a database that must already exist: a query on a mistyped path must not leave an empty one.
fn open_existing(path: &Path) -> anyhow::Result<KnowledgeBase> {
    if !path.exists() {
        anyhow::bail!(
            "there is no knowledge base at {} (check daemon.data_dir or --data-dir)",
            path.display()
        );
    }
    open(path, Durability::Process)
}

fn open(path: &Path, durability: Durability) -> anyhow::Result<KnowledgeBase> {
    let options = KbOptions {
        durability,
        ..KbOptions::at(path)
    };
    KnowledgeBase::open(&options)
        .with_context(|| format!("opening the knowledge base at {}", path.display()))
}

fn scope(tenant: Option<String>) -> Scope {
    tenant.map_or(Scope::AllTenants, |t| Scope::Tenant(TenantId::new(t)))
}

fn print_lines<T: Serialize>(result: QueryResult<T>) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for record in &result.records {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    report_skipped(&result.skipped)
}

/// Unreadable records are reported on stderr and make the exit code 1: the output is incomplete.
fn report_skipped(skipped: &[campaignd::kb::CorruptRecord]) -> anyhow::Result<ExitCode> {
    for corrupt in skipped {
        eprintln!(
            "skipped unreadable record {}: {}",
            corrupt.key, corrupt.reason
        );
    }
    Ok(if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `kb export --salvage`: every readable record on stdout, what could not be read on stderr, exit
/// code 1 when anything was skipped.
fn salvage(path: &Path, scope: &Scope) -> anyhow::Result<ExitCode> {
    if !path.exists() {
        anyhow::bail!("there is no knowledge base at {}", path.display());
    }
    let summary = match salvage_jsonl(path, scope, std::io::stdout().lock()) {
        Ok(summary) => summary,
        Err(KbError::Damaged { path, reason }) => anyhow::bail!(
            "sled cannot open the knowledge base at {} at all ({reason}), so nothing can be salvaged from it; restore the latest backup of the directory",
            path.display()
        ),
        Err(err) => return Err(err.into()),
    };
    for range in &summary.unreadable {
        eprintln!(
            "could not read the records from {} to {}: {}",
            range.from,
            range.to.as_deref().unwrap_or("the end"),
            range.reason
        );
    }
    eprintln!(
        "salvaged {} records ({} of them through the index), skipped {} unreadable key range(s)",
        summary.records,
        summary.recovered_through_index,
        summary.unreadable.len()
    );
    let code = report_skipped(&summary.skipped)?;
    Ok(if summary.unreadable.is_empty() {
        code
    } else {
        ExitCode::from(1)
    })
}

/// How many records an import keeps on their way to the writer at once: enough to fill its group
/// commits, few enough to bound memory.
const IMPORT_IN_FLIGHT: usize = 512;

/// `kb import`: loads an export into an empty directory. Decisions are committed before the
/// outcomes that follow them, because an outcome is checked against the decisions it cites.
fn import(path: &Path, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if path.is_file() {
        anyhow::bail!("{} is a file, not a directory", path.display());
    }
    if let Ok(mut entries) = std::fs::read_dir(path)
        && entries.next().is_some()
    {
        anyhow::bail!(
            "{} is not empty: import only into a fresh directory (move the damaged one aside first)",
            path.display()
        );
    }
    let input: Box<dyn std::io::BufRead> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p == Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let kb = open(path, Durability::Process)?;
    let result = runtime.block_on(import_lines(&kb, input));
    runtime.block_on(kb.shutdown())?;
    let totals = result?;
    eprintln!(
        "imported {} decisions and {} outcomes into {}",
        totals.decisions,
        totals.outcomes,
        path.display()
    );
    if totals.dangling > 0 {
        eprintln!(
            "{} outcomes cite decisions the export does not hold (lost before it was made); they are imported with those links",
            totals.dangling
        );
    }
    for failure in &totals.failures {
        eprintln!("not imported: {failure}");
    }
    Ok(if totals.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Default)]
struct ImportTotals {
    decisions: usize,
    outcomes: usize,
    dangling: usize,
    failures: Vec<String>,
}

async fn import_lines(
    kb: &KnowledgeBase,
    input: Box<dyn std::io::BufRead>,
) -> anyhow::Result<ImportTotals> {
    let mut totals = ImportTotals::default();
    let mut in_flight: tokio::task::JoinSet<(bool, Result<bool, KbError>)> =
        tokio::task::JoinSet::new();
    let mut last_was_decision = true;
    let known = Arc::new(ImportedTenants::default());
    for (number, line) in std::io::BufRead::lines(input).enumerate() {
        let line = line.with_context(|| format!("reading line {}", number + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).with_context(|| {
            format!(
                "line {} is not a record of a campaignd export; the directory holds the lines before it (empty it before trying again)",
                number + 1
            )
        })?;
        let is_decision = matches!(record, Record::Decision(_));
        // An outcome after decisions waits until they are all acknowledged.
        if (is_decision != last_was_decision || in_flight.len() >= IMPORT_IN_FLIGHT)
            && !in_flight.is_empty()
        {
            let limit = if is_decision != last_was_decision {
                0
            } else {
                IMPORT_IN_FLIGHT - 1
            };
            while in_flight.len() > limit {
                collect(in_flight.join_next().await, &mut totals)?;
            }
        }
        last_was_decision = is_decision;
        let (kb, known) = (kb.clone(), Arc::clone(&known));
        in_flight.spawn(async move { (is_decision, kb.import(&record, &known).await) });
    }
    while let Some(done) = in_flight.join_next().await {
        collect(Some(done), &mut totals)?;
    }
    Ok(totals)
}

type Imported = Result<(bool, Result<bool, KbError>), tokio::task::JoinError>;

fn collect(done: Option<Imported>, totals: &mut ImportTotals) -> anyhow::Result<()> {
    let Some(done) = done else { return Ok(()) };
    match done.context("an import task stopped")? {
        (true, Ok(_)) => totals.decisions += 1,
        (false, Ok(dangling)) => {
            totals.outcomes += 1;
            totals.dangling += usize::from(dangling);
        }
        (_, Err(err @ (KbError::Storage { .. } | KbError::Closed))) => return Err(err.into()),
        (_, Err(err)) => totals.failures.push(err.to_string()),
    }
    Ok(())
}

fn bench(path: &Path, args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.writers > 0, "--writers must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let kb = open(path, args.durability)?;
    let args = Arc::new(args);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let latencies = runtime.block_on(async {
        let mut tasks = Vec::with_capacity(args.writers);
        for writer in 0..args.writers {
            let (kb, args, next) = (kb.clone(), Arc::clone(&args), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                write_decisions(&kb, &args, &next, writer).await
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.context("a bench writer stopped")??);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = started.elapsed();
    runtime.block_on(kb.shutdown())?;
    let summary = summarize(&args, latencies, elapsed);
    if args.print_ids {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn write_decisions(
    kb: &KnowledgeBase,
    args: &BenchArgs,
    next: &AtomicU64,
    writer: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let padding = "x".repeat(args.record_bytes.saturating_sub(UNPADDED_RECORD_BYTES));
    let correlation = CorrelationId::new();
    while next.fetch_add(1, Ordering::Relaxed) < args.count {
        let decision = synthetic_decision(writer, correlation, &padding);
        let started = Instant::now();
        let id = kb.record_decision(&decision).await?;
        latencies.push(started.elapsed());
        if args.print_ids {
            print_id(id)?;
        } else if latencies.len() % 10_000 == 0 && writer == 0 {
            eprint!(
                "\r{} acknowledged",
                next.load(Ordering::Relaxed).min(args.count)
            );
        }
    }
    Ok(latencies)
}

fn print_id(id: DecisionId) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{id}")?;
    out.flush()?;
    Ok(())
}

fn synthetic_decision(writer: usize, correlation: CorrelationId, padding: &str) -> Decision {
    Decision {
        id: DecisionId::new(),
        schema_version: SCHEMA_VERSION,
        agent: AgentName::new(format!("bench-{}", writer % 8)),
        tenant: TenantId::new("bench"),
        campaign: Some(CampaignId::new("bench")),
        correlation_id: correlation,
        causation_id: None,
        kind: "bench".into(),
        inputs: serde_json::json!({ "padding": padding }),
        alternatives: Vec::new(),
        choice: serde_json::json!({ "variant": "a" }),
        reason: "synthetic decision written by campaignd kb bench".into(),
        confidence: 0.5,
        decided_at: chrono::Utc::now(),
        recorded_at: Some(chrono::Utc::now()),
    }
}

fn summarize(args: &BenchArgs, mut latencies: Vec<Duration>, elapsed: Duration) -> String {
    latencies.sort_unstable();
    let n = latencies.len();
    let at = |q: f64| {
        latencies
            .get(((n as f64 * q) as usize).min(n.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let rate = n as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    format!(
        "durability={} writers={} records={} record_bytes={} elapsed={:.2}s throughput={:.0}/s ack p50={:.3}ms p99={:.3}ms max={:.3}ms",
        args.durability,
        args.writers,
        n,
        args.record_bytes.max(UNPADDED_RECORD_BYTES),
        elapsed.as_secs_f64(),
        rate,
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )
}
