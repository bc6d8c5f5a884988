//! The open after an unclean stop, against real sled directories: a writer process SIGKILLed in the
//! middle of writing decisions and outcomes, then reopened. The repair from the recent-keys list
//! must give exactly the index entries a full rebuild gives, lose no acknowledged record, and read
//! only the records the list names; a damaged list, or a database last opened by a build that kept
//! none, falls back to the full rebuild.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaignd::kb::{
    Decision, DecisionId, Durability, FullRebuildReason, KbOptions, KnowledgeBase, Outcome,
    OutcomeId, Recovery, SCHEMA_VERSION, Scope,
};
use campaignd::protocol::{AgentName, CampaignId, CorrelationId, TenantId};

use crate::support::{self, try_open_kb};

/// Set in the child process: the directory it writes to until it is killed.
const WRITER_ENV: &str = "IT_KB_RECOVERY_WRITER";
/// This test's path in the crate, which the child runs.
const TEST_NAME: &str = "kb_recovery::a_killed_writer_is_repaired_from_its_recent_keys";
/// Records written and closed cleanly before the writer that is killed starts: the database is
/// then much larger than the list a repair reads.
const CLOSED_RECORDS: usize = 40_000;
/// Acknowledged records the killed writer must have printed: past the 4 096 that make a fold, so
/// the list has been trimmed at least once.
const KILLED_AFTER: usize = 9_000;
/// `FOLD_AFTER_RECORDS` in `kb::tail`: the list holds the keys filed since the last fold began,
/// so about two folds' worth at most, plus what queued meanwhile.
const FOLD_AFTER_RECORDS: usize = 4_096;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

fn decision(n: usize, correlation: CorrelationId) -> Decision {
    Decision {
        id: DecisionId::new(),
        schema_version: SCHEMA_VERSION,
        agent: AgentName::new(format!("agent-{}", n % 5)),
        tenant: TenantId::new(TENANTS[n % TENANTS.len()]),
        campaign: (!n.is_multiple_of(7)).then(|| CampaignId::new(format!("spring-{}", n % 4))),
        correlation_id: correlation,
        causation_id: None,
        kind: "traffic_split".into(),
        inputs: serde_json::json!({ "n": n }),
        alternatives: Vec::new(),
        choice: serde_json::json!({ "variant-a": 0.6 }),
        reason: "recovery test".into(),
        confidence: 0.5,
        decided_at: chrono::Utc::now(),
        recorded_at: Some(chrono::Utc::now()),
    }
}

fn outcome(of: &[&Decision]) -> Outcome {
    Outcome {
        id: OutcomeId::new(),
        schema_version: SCHEMA_VERSION,
        tenant: of[0].tenant.clone(),
        campaign: of[0].campaign.clone(),
        decisions: of.iter().map(|d| d.id).collect(),
        correlation_id: Some(of[0].correlation_id),
        kind: "observation".into(),
        metrics: serde_json::json!({ "clicks": 3 }),
        observed_at: chrono::Utc::now(),
        recorded_at: Some(chrono::Utc::now()),
    }
}

/// Writes `count` records (or, with `None`, until the process is killed) from 16 tasks: decisions
/// of three tenants, four campaigns and five agents, each task one chain of work that changes
/// every 50 records; every third decision an outcome citing it and the one before (same tenant);
/// every hundredth a decision written again, which is refused as a duplicate. `acked` is called
/// with each acknowledged id.
async fn write(
    kb: &KnowledgeBase,
    count: Option<usize>,
    acked: impl Fn(&str) + Send + Sync + 'static,
) {
    let acked = Arc::new(acked);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (kb, acked, next) = (kb.clone(), Arc::clone(&acked), Arc::clone(&next));
            tokio::spawn(async move {
                let mut correlation = CorrelationId::new();
                let mut previous: Option<Decision> = None;
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if count.is_some_and(|count| n >= count) {
                        return;
                    }
                    if n % 50 == 0 {
                        correlation = CorrelationId::new();
                    }
                    let d = decision(n, correlation);
                    kb.record_decision(&d).await.expect("record a decision");
                    acked(&format!("d {}", d.id));
                    if n % 100 == 0 {
                        assert!(kb.record_decision(&d).await.is_err(), "a duplicate");
                    }
                    if n % 3 == 0 {
                        let cited: Vec<&Decision> = previous
                            .iter()
                            .filter(|p| p.tenant == d.tenant)
                            .chain([&d])
                            .collect();
                        let o = outcome(&cited);
                        kb.record_outcome(&o).await.expect("record an outcome");
                        acked(&format!("o {}", o.id));
                    }
                    previous = Some(d);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The child: writes to `dir` with `durability = process`, printing each acknowledged id on its
/// own line, until it is killed.
fn write_until_killed(dir: &Path) {
    let options = KbOptions {
        durability: Durability::Process,
        ..KbOptions::at(dir)
    };
    let kb = KnowledgeBase::open(&options).expect("the child opens the knowledge base");
    runtime().block_on(write(&kb, None, |line| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `dir` through sled itself, waiting (bounded) for a just-closed handle's lock.
fn raw_sled(dir: &Path) -> sled::Db {
    let what = format!("sled to open {}", dir.display());
    support::wait_for(&what, Duration::from_secs(10), || sled::open(dir).ok())
}

/// Every index entry of a closed knowledge base as `(index | index key, pointer)`: the posting
/// lists' keys without their sequence number, each pointer on its own. How the pointers are split
/// into posting lists differs between a fold, a repair and a rebuild; this is what queries read.
fn index_entries(dir: &Path) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    let db = raw_sled(dir);
    let index = db.open_tree("index").unwrap();
    let mut entries = BTreeSet::new();
    for entry in index.iter() {
        let (key, value) = entry.unwrap();
        assert!(key.len() > 10, "a posting key of {} bytes", key.len());
        assert_eq!(
            value.len() % 25,
            0,
            "a posting list of {} bytes",
            value.len()
        );
        let index_key = key[..key.len() - 8].to_vec();
        for pointer in value.chunks(25) {
            entries.insert((index_key.clone(), pointer.to_vec()));
        }
    }
    entries
}

fn open_waiting(dir: &Path, rebuilding: bool) -> KnowledgeBase {
    let options = KbOptions::at(dir);
    if rebuilding {
        return support::wait_for("the directory's lock", Duration::from_secs(10), || {
            KnowledgeBase::open_rebuilding(&options).ok()
        });
    }
    try_open_kb(&options).unwrap_or_else(|err| panic!("cannot open {}: {err}", dir.display()))
}

/// Overwrites `clean_shutdown` as the builds before the recent-keys list left it while open.
fn as_if_last_opened_by_an_older_build(dir: &Path) {
    let db = raw_sled(dir);
    db.open_tree("meta")
        .unwrap()
        .insert("clean_shutdown", &[0u8][..])
        .unwrap();
    db.flush().unwrap();
}

/// Adds a recent-keys entry that is not a whole number of record keys.
fn damage_the_list(dir: &Path) {
    let db = raw_sled(dir);
    db.open_tree("recent")
        .unwrap()
        .insert(u64::MAX.to_be_bytes(), &[1u8; 5][..])
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn a_killed_writer_is_repaired_from_its_recent_keys() {
    if let Ok(dir) = std::env::var(WRITER_ENV) {
        write_until_killed(Path::new(&dir));
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let killed = scratch.path().join("killed");
    {
        let options = KbOptions {
            durability: Durability::None,
            ..KbOptions::at(&killed)
        };
        let kb = KnowledgeBase::open(&options).unwrap();
        let runtime = runtime();
        runtime.block_on(write(&kb, Some(CLOSED_RECORDS), |_| {}));
        runtime.block_on(kb.shutdown()).unwrap();
    }

    let binary = std::env::current_exe().expect("the test binary's path");
    let mut child = support::Process::spawn(
        Command::new(binary)
            .args([TEST_NAME, "--exact", "--test-threads=1", "--nocapture"])
            .env(WRITER_ENV, &killed),
        None,
    );
    let acked = |child: &support::Process| {
        child
            .stdout_lines()
            .iter()
            .filter(|line| line.starts_with("d ") || line.starts_with("o "))
            .count()
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) && acked(&child) < KILLED_AFTER {
        assert!(
            child.is_running(),
            "the writer exited: {:?}",
            child.all_lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill();
    child.finish();
    let printed: Vec<String> = child
        .stdout_lines()
        .into_iter()
        .filter(|line| line.starts_with("d ") || line.starts_with("o "))
        .collect();
    assert!(
        printed.len() >= KILLED_AFTER,
        "only {} records were acknowledged before the kill",
        printed.len()
    );

    // The same killed directory three more times: rebuilt in full (the reference), with a damaged
    // list, and as a build before the list would have left it.
    let copies = ["reference", "damaged", "unlisted"].map(|name| scratch.path().join(name));
    for copy in &copies {
        copy_dir(&killed, copy);
    }
    let [reference, damaged, unlisted] = &copies;
    damage_the_list(damaged);
    as_if_last_opened_by_an_older_build(unlisted);

    let kb = open_waiting(&killed, false);
    let (listed, read) = match kb.recovery() {
        Recovery::RecentKeys { listed, read } => (*listed, *read),
        other => panic!("repaired without the list: {other:?}"),
    };
    let scope = Scope::AllTenants;
    let mut missing = Vec::new();
    for line in &printed {
        let found = match line.split_once(' ') {
            Some(("d", id)) => kb
                .decision(&scope, DecisionId(id.parse().unwrap()))
                .unwrap()
                .is_some(),
            Some(("o", id)) => kb
                .outcome(&scope, OutcomeId(id.parse().unwrap()))
                .unwrap()
                .is_some(),
            _ => unreachable!("filtered above"),
        };
        if !found {
            missing.push(line.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    drop(kb);

    let kb = open_waiting(reference, true);
    let total = match kb.recovery() {
        Recovery::FullRebuild {
            read,
            reason: FullRebuildReason::Asked,
        } => *read,
        other => panic!("the reference was not rebuilt in full: {other:?}"),
    };
    drop(kb);
    eprintln!(
        "repair from the list: {listed} keys listed, {read} records read; full rebuild: {total} records read"
    );
    assert!(total >= CLOSED_RECORDS + printed.len(), "{total} records");
    // Bounded by the list, not by the database: about two folds' worth, of 50 000 and more.
    assert!(read <= listed, "read {read} of {listed} listed");
    assert!(
        listed <= 3 * FOLD_AFTER_RECORDS,
        "{listed} keys listed, {total} records"
    );

    for (dir, expected) in [
        (damaged, "the recent-keys list cannot be read"),
        (
            unlisted,
            "last opened by a build that keeps no recent-keys list",
        ),
    ] {
        let kb = open_waiting(dir, false);
        match kb.recovery() {
            Recovery::FullRebuild { read, reason } => {
                assert_eq!(*read, total);
                assert!(reason.to_string().contains(expected), "{reason}");
            }
            other => panic!("{}: no full rebuild: {other:?}", dir.display()),
        }
    }

    let rebuilt = index_entries(reference);
    assert!(
        rebuilt.len() >= 3 * total,
        "{} index entries",
        rebuilt.len()
    );
    let repaired = index_entries(&killed);
    let only_rebuilt: Vec<_> = rebuilt.difference(&repaired).take(3).collect();
    let only_repaired: Vec<_> = repaired.difference(&rebuilt).take(3).collect();
    assert!(
        only_rebuilt.is_empty() && only_repaired.is_empty(),
        "the repair differs from a full rebuild: missing {only_rebuilt:?}, extra {only_repaired:?}"
    );
    assert_eq!(index_entries(damaged), rebuilt);
    assert_eq!(index_entries(unlisted), rebuilt);
}

/// Opening a cleanly closed database repairs nothing, and the clean close leaves the list empty.
#[test]
fn a_clean_close_leaves_nothing_to_repair() {
    let dir = tempfile::tempdir().unwrap();
    let options = KbOptions {
        durability: Durability::None,
        ..KbOptions::at(dir.path())
    };
    {
        let kb = KnowledgeBase::open(&options).unwrap();
        assert_eq!(kb.recovery(), &Recovery::Clean, "a new database");
        let runtime = runtime();
        runtime.block_on(write(&kb, Some(500), |_| {}));
        runtime.block_on(kb.shutdown()).unwrap();
    }
    let kb = open_waiting(dir.path(), false);
    assert_eq!(kb.recovery(), &Recovery::Clean);
    let found = kb
        .by_agent(&Scope::AllTenants, &AgentName::new("agent-0"))
        .unwrap();
    assert!(!found.records.is_empty());
    drop(kb);
    // The list a clean close leaves is empty: a stop right after it has nothing to re-read.
    let db = raw_sled(dir.path());
    assert!(db.open_tree("recent").unwrap().is_empty());
}
