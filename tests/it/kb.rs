//! The knowledge base against a real sled directory: group commit under concurrent writers, the
//! queries and their tenancy, schema and corruption handling, and the kill test that drives the
//! real binary and SIGKILLs it mid-write.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use campaignd::kb::{
    Alternative, Decision, DecisionId, Durability, KbError, KbOptions, KnowledgeBase, Outcome,
    OutcomeId, Record, SCHEMA_VERSION, Scope, decode_record,
};
use campaignd::protocol::{AgentName, CampaignId, CorrelationId, MessageId, TenantId};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use crate::support::{self, open_kb, reopen_kb, try_open_kb};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 0).unwrap()
}

fn decision(
    tenant: &str,
    campaign: &str,
    agent: &str,
    correlation: CorrelationId,
    at: DateTime<Utc>,
) -> Decision {
    Decision {
        id: DecisionId::new(),
        schema_version: SCHEMA_VERSION,
        agent: AgentName::new(agent),
        tenant: TenantId::new(tenant),
        campaign: Some(CampaignId::new(campaign)),
        correlation_id: correlation,
        causation_id: Some(MessageId::new()),
        kind: "traffic_split".into(),
        inputs: serde_json::json!({ "observations": 1200 }),
        alternatives: vec![
            Alternative {
                option: serde_json::json!("variant-a"),
                score: 0.61,
                note: None,
            },
            Alternative {
                option: serde_json::json!("variant-b"),
                score: 0.39,
                note: Some("fewer clicks".into()),
            },
        ],
        choice: serde_json::json!({ "variant-a": 0.61, "variant-b": 0.39 }),
        reason: "probability of being best".into(),
        confidence: 0.8,
        decided_at: at,
        recorded_at: None,
    }
}

fn outcome(of: &Decision, at: DateTime<Utc>) -> Outcome {
    Outcome {
        id: OutcomeId::new(),
        schema_version: SCHEMA_VERSION,
        tenant: of.tenant.clone(),
        campaign: of.campaign.clone(),
        decisions: vec![of.id],
        correlation_id: Some(of.correlation_id),
        kind: "observation".into(),
        metrics: serde_json::json!({ "impressions": 1000, "clicks": 31 }),
        observed_at: at,
        recorded_at: None,
    }
}

/// `dir` through sled itself, with the same bounded wait for the lock as [`open_kb`]: sled's
/// background I/O can hold the lock file for a moment after the last handle is gone.
fn raw_sled(dir: &Path) -> sled::Db {
    let what = format!("sled to open {}", dir.display());
    support::wait_for(&what, Duration::from_secs(10), || sled::open(dir).ok())
}

fn open_with(options: &KbOptions) -> KnowledgeBase {
    try_open_kb(options)
        .unwrap_or_else(|err| panic!("cannot open {}: {err}", options.path.display()))
}

/// Records one decision in a knowledge base at `dir` and closes it cleanly; returns the decision.
async fn one_decision_closed(dir: &Path) -> Decision {
    let kb = open_kb(dir);
    let d = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
    kb.record_decision(&d).await.unwrap();
    d
}

fn ids(records: &[Record]) -> Vec<uuid::Uuid> {
    records.iter().map(Record::id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_all_acknowledged_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open_kb(dir.path());
    let mut tasks = Vec::new();
    for writer in 0..64 {
        let kb = kb.clone();
        tasks.push(tokio::spawn(async move {
            let correlation = CorrelationId::new();
            let mut acknowledged = Vec::new();
            for n in 0..80 {
                let d = decision(
                    "acme",
                    "spring",
                    &format!("agent-{writer}"),
                    correlation,
                    t0() + TimeDelta::seconds(n),
                );
                acknowledged.push(kb.record_decision(&d).await.unwrap());
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.push(task.await.unwrap());
    }
    // 5120 records: some pointers are in posting lists already, the rest still in the in-memory
    // tail (or both, if a fold is running).
    check_every_writer(&kb, &acknowledged);
    drop(kb);
    // A clean close folds the tail; the reopened database answers the same.
    check_every_writer(&open_kb(dir.path()), &acknowledged);
}

fn check_every_writer(kb: &KnowledgeBase, acknowledged: &[Vec<DecisionId>]) {
    let scope = Scope::tenant("acme");
    let all = kb
        .decisions_by_campaign(&scope, &CampaignId::new("spring"))
        .unwrap();
    assert_eq!(all.records.len(), 64 * 80);
    assert!(all.skipped.is_empty());
    assert!(
        all.records
            .windows(2)
            .all(|w| w[0].decided_at <= w[1].decided_at)
    );
    for (writer, ids) in acknowledged.iter().enumerate() {
        let mine = kb
            .by_agent(&scope, &AgentName::new(format!("agent-{writer}")))
            .unwrap();
        // Time order, which here is the order each writer wrote in.
        assert_eq!(&mine.records.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
        let Some(first) = ids.first() else { continue };
        let chain = kb.decision(&scope, *first).unwrap().unwrap().correlation_id;
        let trace = kb.trace(&scope, chain).unwrap();
        assert_eq!(
            &trace
                .records
                .iter()
                .map(|r| DecisionId(r.id()))
                .collect::<Vec<_>>(),
            ids
        );
    }
    // Every writer wrote its n-th decision at t0 + n s: a 10-second window holds 10 of each.
    let window = kb
        .by_time(
            &scope,
            t0() + TimeDelta::seconds(5),
            t0() + TimeDelta::seconds(15),
        )
        .unwrap();
    assert_eq!(window.records.len(), 64 * 10);
    assert!(
        kb.by_time(&Scope::tenant("globex"), t0(), t0() + TimeDelta::days(1))
            .unwrap()
            .records
            .is_empty()
    );
}

#[tokio::test]
async fn queries_return_the_right_records_in_order_and_tenants_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open_kb(dir.path());
    let chain = CorrelationId::new();
    // Written out of time order, to show that queries sort by decided/observed time.
    let plan = decision(
        "acme",
        "spring",
        "strategy",
        chain,
        t0() + TimeDelta::minutes(2),
    );
    let split = decision(
        "acme",
        "spring",
        "optimization",
        chain,
        t0() + TimeDelta::minutes(1),
    );
    let other_campaign = decision(
        "acme",
        "autumn",
        "optimization",
        CorrelationId::new(),
        t0() + TimeDelta::minutes(3),
    );
    // Another tenant with the same campaign id, agent names and even the same correlation id.
    let foreign = decision(
        "globex",
        "spring",
        "optimization",
        chain,
        t0() + TimeDelta::minutes(1),
    );
    for d in [&plan, &split, &other_campaign, &foreign] {
        kb.record_decision(d).await.unwrap();
    }
    let seen = outcome(&split, t0() + TimeDelta::minutes(5));
    kb.record_outcome(&seen).await.unwrap();

    let acme = Scope::tenant("acme");
    let globex = Scope::tenant("globex");
    let spring = CampaignId::new("spring");

    let by_campaign = kb.by_campaign(&acme, &spring).unwrap();
    assert_eq!(
        ids(&by_campaign.records),
        vec![split.id.0, plan.id.0, seen.id.0]
    );
    let decisions = kb.decisions_by_campaign(&globex, &spring).unwrap();
    assert_eq!(decisions.records, vec![foreign.clone()]);
    let everyone = kb.by_campaign(&Scope::AllTenants, &spring).unwrap();
    assert_eq!(everyone.records.len(), 4);
    assert!(everyone.records.windows(2).all(|w| w[0].at() <= w[1].at()));

    let optimization = kb.by_agent(&acme, &AgentName::new("optimization")).unwrap();
    assert_eq!(
        optimization
            .records
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        vec![split.id, other_campaign.id]
    );

    let window = kb
        .by_time(
            &acme,
            t0() + TimeDelta::minutes(1),
            t0() + TimeDelta::minutes(3),
        )
        .unwrap();
    assert_eq!(
        ids(&window.records),
        vec![split.id.0, plan.id.0],
        "[from, to): the record at `to` is out"
    );
    let window = kb
        .by_time(&Scope::AllTenants, t0(), t0() + TimeDelta::minutes(2))
        .unwrap();
    assert_eq!(window.records.len(), 2);
    assert!(
        window
            .records
            .iter()
            .any(|r| r.tenant().as_str() == "globex")
    );
    assert!(
        kb.by_time(&Scope::tenant("nobody"), t0(), t0() + TimeDelta::days(1))
            .unwrap()
            .records
            .is_empty()
    );

    let trace = kb.trace(&acme, chain).unwrap();
    assert_eq!(ids(&trace.records), vec![split.id.0, plan.id.0, seen.id.0]);
    assert_eq!(
        trace.records[2].as_outcome().unwrap().decisions,
        vec![split.id]
    );
    assert_eq!(
        ids(&kb.trace(&globex, chain).unwrap().records),
        vec![foreign.id.0]
    );
    assert_eq!(
        kb.trace(&Scope::AllTenants, chain).unwrap().records.len(),
        4
    );

    assert_eq!(
        kb.outcomes_of(&acme, split.id).unwrap().records,
        vec![seen.clone()]
    );
    assert!(
        kb.outcomes_of(&globex, split.id)
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(kb.decision(&acme, plan.id).unwrap(), Some(plan.clone()));
    assert_eq!(
        kb.decision(&globex, plan.id).unwrap(),
        None,
        "another tenant's decision is invisible"
    );
    assert_eq!(kb.outcome(&acme, seen.id).unwrap(), Some(seen.clone()));

    let mut exported = Vec::new();
    let summary = kb.export_jsonl(&globex, &mut exported).unwrap();
    assert_eq!(summary.records, 1);
    let line: serde_json::Value = serde_json::from_slice(exported.trim_ascii_end()).unwrap();
    assert_eq!(line["record"], "decision");
    assert_eq!(line["tenant"], "globex");
    let mut exported = Vec::new();
    assert_eq!(
        kb.export_jsonl(&Scope::AllTenants, &mut exported)
            .unwrap()
            .records,
        5
    );
    let back: Vec<Record> = exported
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(back.contains(&Record::Outcome(seen)));
}

#[tokio::test]
async fn bad_writes_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&KbOptions {
        max_record_bytes: 2000,
        ..KbOptions::at(dir.path())
    })
    .unwrap();
    let d = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
    kb.record_decision(&d).await.unwrap();
    assert!(
        matches!(kb.record_decision(&d).await, Err(KbError::Duplicate { .. })),
        "append-only"
    );

    let mut foreign = outcome(&d, t0());
    foreign.tenant = TenantId::new("globex");
    let err = kb.record_outcome(&foreign).await.unwrap_err();
    assert!(matches!(err, KbError::UnknownDecision { .. }), "{err}");
    assert!(err.to_string().contains(&d.id.to_string()), "{err}");

    let mut big = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
    big.reason = "x".repeat(5000);
    let err = kb.record_decision(&big).await.unwrap_err();
    assert!(
        matches!(err, KbError::TooLarge { limit: 2000, .. }),
        "{err}"
    );

    let mut unsure = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
    unsure.confidence = 1.5;
    assert!(
        kb.record_decision(&unsure)
            .await
            .unwrap_err()
            .to_string()
            .contains("confidence")
    );
    let mut nameless = decision("", "spring", "strategy", CorrelationId::new(), t0());
    nameless.tenant = TenantId::new("");
    assert!(
        kb.record_decision(&nameless)
            .await
            .unwrap_err()
            .to_string()
            .contains("tenant is empty")
    );

    kb.shutdown().await.unwrap();
    let late = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
    assert!(matches!(
        kb.record_decision(&late).await,
        Err(KbError::Closed)
    ));
    assert_eq!(
        kb.decision(&Scope::tenant("acme"), d.id).unwrap(),
        Some(d),
        "reads work after shutdown"
    );
}

#[tokio::test]
async fn every_durability_mode_keeps_what_it_acknowledged_across_a_reopen() {
    for durability in [Durability::None, Durability::Process, Durability::Power] {
        let dir = tempfile::tempdir().unwrap();
        let kb = open_with(&KbOptions {
            durability,
            ..KbOptions::at(dir.path())
        });
        let d = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
        kb.record_decision(&d).await.unwrap();
        // A large record goes to a sled blob file, which power mode must fsync too.
        let mut large = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
        large.inputs = serde_json::json!({ "text": "y".repeat(300_000) });
        kb.record_decision(&large).await.unwrap();
        drop(kb);
        let kb = open_kb(dir.path());
        assert_eq!(
            kb.decision(&Scope::tenant("acme"), d.id).unwrap(),
            Some(d),
            "{durability}"
        );
        assert_eq!(
            kb.decision(&Scope::tenant("acme"), large.id).unwrap(),
            Some(large),
            "{durability}"
        );
    }
}

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_kb(dir.path()));
    {
        let db = raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = try_open_kb(&KbOptions::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, KbError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION)
    );
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&format!("version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
}

#[tokio::test]
async fn a_corrupt_record_is_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open_kb(dir.path());
    let chain = CorrelationId::new();
    let good = decision("acme", "spring", "strategy", chain, t0());
    let bad = decision(
        "acme",
        "spring",
        "strategy",
        chain,
        t0() + TimeDelta::seconds(1),
    );
    kb.record_decision(&good).await.unwrap();
    kb.record_decision(&bad).await.unwrap();
    drop(kb);
    {
        let db = raw_sled(dir.path());
        let records = db.open_tree("records").unwrap();
        let key = records
            .iter()
            .keys()
            .map(Result::unwrap)
            .find(|k| k[1..] == bad.id.0.as_bytes()[..])
            .unwrap();
        records.insert(key, &[0xc1, 0xff, 0x00, 0x93][..]).unwrap();
        db.flush().unwrap();
    }
    let kb = open_kb(dir.path());
    let found = kb
        .by_campaign(&Scope::tenant("acme"), &CampaignId::new("spring"))
        .unwrap();
    assert_eq!(ids(&found.records), vec![good.id.0]);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].key, format!("decision/{}", bad.id));
    assert!(
        kb.trace(&Scope::tenant("acme"), chain)
            .unwrap()
            .skipped
            .len()
            == 1
    );
    assert!(matches!(
        kb.decision(&Scope::tenant("acme"), bad.id),
        Err(KbError::Corrupt { .. })
    ));
    let summary = kb
        .export_jsonl(&Scope::AllTenants, std::io::sink())
        .unwrap();
    assert_eq!((summary.records, summary.skipped.len()), (1, 1));
}

#[tokio::test]
async fn unreadable_index_entries_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = one_decision_closed(dir.path()).await;
    {
        // A campaign posting list whose bytes are garbage, and a garbage entry under the prefix
        // earlier builds used for manifests, which is never read.
        let db = raw_sled(dir.path());
        let index = db.open_tree("index").unwrap();
        index
            .insert([0u8, 0, 0, 0, 0, 0, 0, 0, 1], &[9u8, 1, 2][..])
            .unwrap();
        let mut posting = vec![1u8, 1, 0, 6];
        posting.extend_from_slice(b"spring");
        posting.extend_from_slice(&[0, 4]);
        posting.extend_from_slice(b"acme");
        posting.extend_from_slice(&[0xff; 8]);
        index.insert(posting, &[1u8; 30][..]).unwrap();
        db.flush().unwrap();
    }
    let kb = open_kb(dir.path());
    let found = kb
        .decisions_by_campaign(&Scope::tenant("acme"), &CampaignId::new("spring"))
        .unwrap();
    assert_eq!(found.records, vec![d]);
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert!(found.skipped.iter().all(|s| s.key.starts_with("index/")));
}

#[test]
fn a_database_from_an_older_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &1u32.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = try_open_kb(&KbOptions::at(dir.path())).unwrap_err();
    assert!(
        matches!(err, KbError::UnsupportedSchema { found: 1, supported, .. } if supported == SCHEMA_VERSION),
        "{err}"
    );
}

/// The write counters move when a write is acknowledged or refused, and every group commit records
/// its size and flush time.
#[test]
fn writes_are_counted_in_the_metrics() {
    support::in_own_process("kb::writes_are_counted_in_the_metrics", || {
        use metrics_exporter_prometheus::PrometheusBuilder;
        let dir = tempfile::tempdir().unwrap();
        let kb = open_kb(dir.path());
        // The writer thread's histograms go to the process-wide recorder; the counters, recorded on the
        // caller's thread, go to a recorder of this thread alone, so other tests cannot disturb them.
        // In a process of its own, this test's global recorder is the only one, and the daemons the
        // other tests start in theirs keep the API's.
        let global = PrometheusBuilder::new().build_recorder();
        let global_handle = global.handle();
        let global_installed = metrics::set_global_recorder(global).is_ok();
        let local = PrometheusBuilder::new().build_recorder();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let d = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
        let o = outcome(&d, t0() + TimeDelta::minutes(1));
        metrics::with_local_recorder(&local, || {
            runtime.block_on(async {
                kb.record_decision(&d).await.unwrap();
                kb.record_decision(&decision(
                    "acme",
                    "spring",
                    "content",
                    CorrelationId::new(),
                    t0(),
                ))
                .await
                .unwrap();
                kb.record_outcome(&o).await.unwrap();
                assert!(kb.record_decision(&d).await.is_err());
            })
        });
        let text = local.handle().render();
        assert!(
            text.contains("campaignd_kb_decisions_written_total 2"),
            "{text}"
        );
        assert!(
            text.contains("campaignd_kb_outcomes_written_total 1"),
            "{text}"
        );
        assert!(
            text.contains("campaignd_kb_write_errors_total{reason=\"duplicate\"} 1"),
            "{text}"
        );
        if global_installed {
            let text = global_handle.render();
            for histogram in [
                "campaignd_kb_flush_seconds_count",
                "campaignd_kb_batch_records_count",
            ] {
                let count: u64 = text
                    .lines()
                    .find_map(|line| line.strip_prefix(histogram))
                    .and_then(|rest| rest.trim().parse().ok())
                    .unwrap_or(0);
                assert!(count >= 4, "{histogram}: {text}");
            }
        }
        campaignd::kb::describe_metrics();
    });
}

#[tokio::test]
async fn indexes_are_rebuilt_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = one_decision_closed(dir.path()).await;
    {
        // As if the process died after the record's batch reached disk but before the index tail
        // was folded.
        let db = raw_sled(dir.path());
        db.open_tree("index").unwrap().clear().unwrap();
        db.open_tree("meta")
            .unwrap()
            .remove("clean_shutdown")
            .unwrap();
        db.flush().unwrap();
    }
    let kb = open_kb(dir.path());
    let found = kb
        .by_agent(&Scope::tenant("acme"), &AgentName::new("strategy"))
        .unwrap();
    assert_eq!(found.records, vec![d.clone()]);
    // Rebuilding again replaces the index rather than adding a second copy of it.
    assert_eq!(kb.rebuild_indexes().unwrap(), 1);
    assert_eq!(kb.rebuild_indexes().unwrap(), 1);
    let trace = kb.trace(&Scope::tenant("acme"), d.correlation_id).unwrap();
    assert_eq!(ids(&trace.records), vec![d.id.0]);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(tag in prop::sample::select(vec![b'd', b'o', b'x']), id in any::<[u8; 16]>(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut key = vec![tag];
        key.extend_from_slice(&id);
        prop_assert!(decode_record(&key, &bytes).is_err() || tag != b'x');
        let _ = decode_record(&bytes, &bytes);
    }

    #[test]
    fn mutated_records_never_panic_the_decoder(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let d = decision("acme", "spring", "strategy", CorrelationId::new(), t0());
        let mut bytes = campaignd::protocol::encode("decision", &d).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let cut = cut.index(bytes.len() + 1);
        let mut key = vec![b'd'];
        key.extend_from_slice(d.id.0.as_bytes());
        let _ = decode_record(&key, &bytes[..cut]);
    }
}

/// The kill test: acknowledged means durable. Runs the real binary, SIGKILLs it while 16 writers
/// are busy, and checks that every id it printed (printed only after acknowledgement) is stored.
#[test]
fn no_acknowledged_decision_is_lost_when_the_process_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut bench = support::Process::spawn(
        support::campaignd()
            .args([
                "kb",
                "bench",
                "--print-ids",
                "--durability",
                "process",
                "--count",
                "100000000",
                "--writers",
                "16",
                "--data-dir",
            ])
            .arg(dir.path()),
        None,
    );
    // Kill once the writers have been busy for a second and a few hundred ids are out; the
    // deadline bounds a slow start. The second of load is what the test is about, so this waits
    // for it rather than for a condition alone.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30)
        && (started.elapsed() < Duration::from_secs(1) || bench.stdout_line_count() < 300)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    bench.kill();
    bench.finish();
    // Only whole lines: a line cut off by the kill was never completely printed.
    let printed: Vec<String> = bench
        .stdout_lines()
        .iter()
        .map(|line| line.trim().to_owned())
        .collect();
    assert!(
        printed.len() >= 100,
        "only {} ids were acknowledged before the kill",
        printed.len()
    );

    let kb = open_kb(dir.path());
    let scope = Scope::tenant("bench");
    let mut missing = Vec::new();
    let mut unique = HashSet::new();
    for line in &printed {
        let id = DecisionId(line.parse().unwrap());
        assert!(unique.insert(id), "{id} acknowledged twice");
        if kb.decision(&scope, id).unwrap().is_none() {
            missing.push(id);
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged decisions lost, e.g. {:?}",
        missing.len(),
        printed.len(),
        missing.first()
    );
    // The indexes were repaired at open: the campaign index holds at least every acknowledged decision.
    let indexed = kb
        .decisions_by_campaign(&scope, &CampaignId::new("bench"))
        .unwrap();
    assert!(indexed.records.len() >= printed.len());
    assert!(indexed.skipped.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Damaged directories, salvage, import, and readiness while writes fail.

/// A knowledge base written by campaignd 0.1.0 (3 122 records, four blob files), unpacked into a
/// fresh folder: `<dir>/data/kb`.
fn unpack_written_kb() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = support::manifest_dir().join("tests/fixtures/kb-written-by-0.1.0.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar runs");
    assert!(
        status.success(),
        "tar could not unpack {}",
        fixture.display()
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}

fn kb_command(args: &[&str], dir: &Path) -> support::Outcome {
    let mut command = support::campaignd();
    command.arg("kb").args(args).arg("--data-dir").arg(dir);
    support::run(&mut command, None)
}

/// The records of a JSON Lines export, by id.
fn export_lines(stdout: &str) -> std::collections::BTreeMap<uuid::Uuid, String> {
    let mut lines = std::collections::BTreeMap::new();
    for line in stdout.lines() {
        let record: Record = serde_json::from_str(line).unwrap();
        assert!(
            lines.insert(record.id(), line.to_owned()).is_none(),
            "{} twice",
            record.id()
        );
    }
    lines
}

#[test]
fn a_damaged_data_directory_is_refused_with_a_clear_error_and_no_panic() {
    let fixture = unpack_written_kb();
    let raw = fixture.path().join("data/kb");
    // A directory opened once by this build (sled then writes its page-table snapshot), as a
    // deployment's directory is.
    let opened = fixture.path().join("opened");
    copy_dir(&raw, &opened);
    let first = kb_command(&["export"], &opened);
    assert!(first.code == Some(0), "{}", first.stderr);

    type Damage = fn(&Path);
    fn half(file: &Path) {
        let len = std::fs::metadata(file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    }
    fn overwrite(file: &Path, at: usize, bytes: &[u8]) {
        let mut data = std::fs::read(file).unwrap();
        data[at..at + bytes.len()].copy_from_slice(bytes);
        std::fs::write(file, data).unwrap();
    }
    let cases: Vec<(&str, &Path, Damage)> = vec![
        // Each of these three panicked inside sled::open before.
        ("log emptied", &opened, |d| {
            std::fs::write(d.join("db"), b"").unwrap()
        }),
        ("log cut in half", &opened, |d| half(&d.join("db"))),
        ("blob the page table needs removed", &raw, |d| {
            std::fs::remove_file(d.join("blobs/15676379")).unwrap()
        }),
        // These were refused with the hint about another process.
        ("conf byte flipped", &opened, |d| {
            overwrite(&d.join("conf"), 4, &[0xAA])
        }),
        ("log header overwritten", &opened, |d| {
            overwrite(&d.join("db"), 20, &[0xff; 16])
        }),
    ];
    for (n, (what, base, damage)) in cases.into_iter().enumerate() {
        let dir = fixture.path().join(format!("case-{n}"));
        copy_dir(base, &dir);
        damage(&dir);
        let run = kb_command(&["export"], &dir);
        assert!(run.code != Some(0), "{what}: {}", run.stderr);
        assert_eq!(run.code, Some(2), "{what}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
        assert!(
            !run.stderr.contains("another campaignd"),
            "{what}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!(
                "the knowledge base at {} is damaged",
                dir.display()
            )) && run.stderr.contains("--salvage"),
            "{what}: {}",
            run.stderr
        );
    }

    // Only a directory another process holds gets that hint.
    let held = open_kb(&opened);
    let locked = kb_command(&["export"], &opened);
    assert_eq!(locked.code, Some(2), "{}", locked.stderr);
    assert!(
        locked.stderr.contains("is another campaignd using it?"),
        "{}",
        locked.stderr
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salvage_exports_every_readable_record_and_its_import_reads_back() {
    let fixture = unpack_written_kb();
    let raw = fixture.path().join("data/kb");
    let whole = tokio::task::block_in_place(|| kb_command(&["export"], &raw));
    assert!(whole.code == Some(0), "{}", whole.stderr);
    let whole = export_lines(&whole.stdout);
    assert_eq!(whole.len(), 3122);

    let damaged = fixture.path().join("damaged");
    copy_dir(&raw, &damaged);
    std::fs::remove_file(damaged.join("blobs/11623554")).unwrap();
    // Without --salvage the export stops at the lost page.
    let plain = tokio::task::block_in_place(|| kb_command(&["export"], &damaged));
    assert!(plain.code != Some(0));
    let stopped = plain.stdout.lines().count();
    assert!(stopped < 1000, "{stopped}");

    let salvage = tokio::task::block_in_place(|| kb_command(&["export", "--salvage"], &damaged));
    // Incomplete output: exit code 1, and what was skipped on stderr.
    assert_eq!(salvage.code, Some(1), "{}", salvage.stderr);
    assert!(!salvage.stderr.contains("panicked"), "{}", salvage.stderr);
    assert!(
        salvage
            .stderr
            .contains("could not read the records from decision/")
            && salvage.stderr.contains("skipped 1 unreadable key range"),
        "{}",
        salvage.stderr
    );
    let salvaged = export_lines(&salvage.stdout);
    assert!(salvaged.len() > stopped && salvaged.len() < whole.len());
    for (id, line) in &salvaged {
        assert_eq!(whole.get(id), Some(line), "{id} changed");
    }
    // Every record left out is one sled cannot read; every one it can read was exported.
    let kb = reopen_kb(&damaged).await;
    let mut lost = 0;
    for (id, line) in &whole {
        let record: Record = serde_json::from_str(line).unwrap();
        let readable = match record {
            Record::Decision(d) => kb.decision(&Scope::AllTenants, d.id).is_ok(),
            Record::Outcome(o) => kb.outcome(&Scope::AllTenants, o.id).is_ok(),
        };
        assert_eq!(readable, salvaged.contains_key(id), "{id}");
        lost += usize::from(!readable);
    }
    assert_eq!(lost, whole.len() - salvaged.len());
    drop(kb);

    // The salvage loads into a fresh directory, which then exports exactly it.
    let export = fixture.path().join("salvage.jsonl");
    std::fs::write(&export, &salvage.stdout).unwrap();
    let fresh = fixture.path().join("fresh");
    let import =
        tokio::task::block_in_place(|| kb_command(&["import", export.to_str().unwrap()], &fresh));
    assert!(import.code == Some(0), "{}", import.stderr);
    let again = tokio::task::block_in_place(|| kb_command(&["export"], &fresh));
    assert!(again.code == Some(0), "{}", again.stderr);
    let again = export_lines(&again.stdout);
    assert_eq!(again.len(), salvaged.len());
    for (id, line) in &salvaged {
        assert!(again.get(id) == Some(line), "{id} differs after the import");
    }
}

#[test]
fn an_export_imports_into_a_fresh_directory_only() {
    let fixture = unpack_written_kb();
    let raw = fixture.path().join("data/kb");
    let original = kb_command(&["export"], &raw);
    assert!(original.code == Some(0), "{}", original.stderr);
    let file = fixture.path().join("export.jsonl");
    std::fs::write(&file, &original.stdout).unwrap();

    let fresh = fixture.path().join("fresh");
    let import = kb_command(&["import", file.to_str().unwrap()], &fresh);
    assert!(import.code == Some(0), "{}", import.stderr);
    assert!(
        import
            .stderr
            .contains("imported 638 decisions and 2484 outcomes"),
        "{}",
        import.stderr
    );
    // The same records, byte for byte, and the queries answer the same.
    let exported = kb_command(&["export"], &fresh);
    assert!(
        exported.stdout == original.stdout,
        "the export differs after the import"
    );
    let first: Record = serde_json::from_str(original.stdout.lines().next().unwrap()).unwrap();
    let campaign = match &first {
        Record::Decision(d) => d.campaign.clone().unwrap(),
        Record::Outcome(o) => o.campaign.clone().unwrap(),
    };
    let query = ["decisions", "--campaign", campaign.as_str()];
    let before = kb_command(&query, &raw);
    let after = kb_command(&query, &fresh);
    assert!(before.code == Some(0) && !before.stdout.is_empty());
    assert!(
        after.stdout == before.stdout,
        "kb decisions differs after the import"
    );

    // A directory that holds anything is refused, and left as it was.
    let twice = kb_command(&["import", file.to_str().unwrap()], &fresh);
    assert!(twice.code != Some(0));
    assert!(twice.stderr.contains("is not empty"), "{}", twice.stderr);
    assert!(kb_command(&["export"], &fresh).stdout == original.stdout);
}

/// `GET path` on `addr`, answered as (status, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_writes_fail_or_stall_and_returns_when_they_succeed() {
    use std::sync::Arc;

    use campaignd::api::{ApiServer, ApiState};
    use campaignd::campaign::CampaignBoard;
    use campaignd::kb::{STALLED_AFTER, WriteFaults};
    use campaignd::settings::{LiveSettings, Problems};

    let dir = tempfile::tempdir().unwrap();
    let faults = WriteFaults::new();
    let kb = KnowledgeBase::open_with_faults(&KbOptions::at(dir.path().join("kb")), faults.clone())
        .unwrap();
    let mut settings = support::embedded_settings();
    // No agents: readiness is about the knowledge base alone here.
    settings.agents.clear();
    settings.config.api.listen = "127.0.0.1:0".into();
    let runtime = campaignd::runtime::Runtime::builder(campaignd::runtime::Registry::new())
        .start()
        .await
        .unwrap();
    let state = ApiState::new(
        runtime.clone(),
        kb.clone(),
        LiveSettings::new(Arc::new(settings)),
        CampaignBoard::new(),
        campaignd::campaign::Wake::new(),
        Arc::new(|_| Err(Problems(Vec::new()))),
    );
    let server = ApiServer::start(state).await.unwrap();
    let addr = server.local_addr();
    let ready = || async {
        let (status, body) = http_get(addr, "/readyz").await;
        (status, body["reasons"].to_string())
    };
    let within = STALLED_AFTER * 6;
    assert_eq!(ready().await, (200, "[]".to_owned()));

    // A full disk: the writes fail, and readiness says so.
    faults.fail(std::io::ErrorKind::StorageFull);
    let refused = kb
        .record_decision(&decision(
            "acme",
            "spring",
            "strategy",
            CorrelationId::new(),
            t0(),
        ))
        .await;
    assert!(
        matches!(refused, Err(KbError::Storage { .. })),
        "{refused:?}"
    );
    let (status, reasons) = ready().await;
    assert_eq!(status, 503, "{reasons}");
    assert!(
        reasons.contains("the last knowledge-base write failed"),
        "{reasons}"
    );
    assert!(reasons.contains("injected"), "{reasons}");

    // Space again: the next probe succeeds.
    faults.heal();
    support::wait_for_async("readiness after the disk heals", within, || async {
        (ready().await.0 == 200).then_some(())
    })
    .await;

    // A disk that stops completing: accepted, never acknowledged; past the bound, not ready.
    faults.stall();
    let stalled = tokio::spawn({
        let kb = kb.clone();
        async move {
            kb.record_decision(&decision(
                "acme",
                "spring",
                "strategy",
                CorrelationId::new(),
                t0(),
            ))
            .await
        }
    });
    let reasons = support::wait_for_async("readiness to see the stall", within, || async {
        let (status, reasons) = ready().await;
        (status == 503).then_some(reasons)
    })
    .await;
    assert!(reasons.contains("still not acknowledged"), "{reasons}");
    assert!(!stalled.is_finished());

    faults.heal();
    let id = stalled
        .await
        .unwrap()
        .expect("the stalled write completes once healed");
    support::wait_for_async("readiness after the stall", within, || async {
        (ready().await.0 == 200).then_some(())
    })
    .await;
    assert!(kb.decision(&Scope::tenant("acme"), id).unwrap().is_some());

    server.shutdown(std::time::Duration::from_secs(5)).await;
    runtime.shutdown(std::time::Duration::from_secs(5)).await;
    kb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaigns_unseen_decisions_and_its_outcomes_are_read_alone() {
    let dir = tempfile::tempdir().unwrap();
    let kb = open_kb(dir.path());
    let chain = CorrelationId::new();
    let first = decision("acme", "spring", "optimization", chain, t0());
    let second = decision(
        "acme",
        "spring",
        "optimization",
        chain,
        t0() + TimeDelta::minutes(1),
    );
    let other_campaign = decision("acme", "autumn", "optimization", chain, t0());
    let other_tenant = decision("globex", "spring", "optimization", chain, t0());
    for d in [&first, &second, &other_campaign, &other_tenant] {
        kb.record_decision(d).await.unwrap();
    }
    let observed = outcome(&first, t0() + TimeDelta::minutes(2));
    kb.record_outcome(&observed).await.unwrap();
    let acme = Scope::Tenant(TenantId::new("acme"));
    let spring = CampaignId::new("spring");

    let all = kb
        .decisions_by_campaign_unseen(&acme, &spring, &|_| false)
        .unwrap();
    let all: Vec<DecisionId> = all.records.iter().map(|d| d.id).collect();
    assert_eq!(all, [first.id, second.id], "in time order, this tenant's");
    let seen: HashSet<DecisionId> = [first.id].into();
    let unseen = kb
        .decisions_by_campaign_unseen(&acme, &spring, &|id| seen.contains(&id))
        .unwrap();
    assert_eq!(
        unseen.records.iter().map(|d| d.id).collect::<Vec<_>>(),
        [second.id]
    );
    let everyone = kb
        .decisions_by_campaign_unseen(&Scope::AllTenants, &spring, &|id| seen.contains(&id))
        .unwrap();
    assert_eq!(
        everyone.records.len(),
        2,
        "the operator's scope sees both tenants"
    );

    let outcomes = kb.outcomes_by_campaign(&acme, &spring).unwrap().records;
    assert_eq!(
        outcomes.iter().map(|o| o.id).collect::<Vec<_>>(),
        [observed.id]
    );
    let globex = Scope::Tenant(TenantId::new("globex"));
    assert!(
        kb.outcomes_by_campaign(&globex, &spring)
            .unwrap()
            .records
            .is_empty()
    );
}
