//! Ingestion's records on a real runtime and a real sled knowledge base: one outcome per channel
//! and day of a batch, later batches of the same day recording only what is new, a replay
//! recording nothing, the records of campaignd 0.1 (one outcome per observation) still counted as
//! recorded, concurrent batches of one channel and day recording each variant once, and a batch
//! too large for one outcome recorded in parts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use campaignd::agents::decisions::{OBSERVATION_OUTCOME, ObservationMetrics};
use campaignd::agents::ledger;
use campaignd::agents::optimization::{GetProgress, PlanBuys, StartExperiment};
use campaignd::agents::projection;
use campaignd::agents::{self};
use campaignd::campaign::ingest::{Batch, IngestReport, ItemResult, ingest, ingest_kept};
use campaignd::campaign::known::KnownDecisions;
use campaignd::campaign::{CampaignLoop, LoopOptions};
use campaignd::domain::campaign::{CampaignGoal, Channel, Phase};
use campaignd::domain::optimization::Arm;
use campaignd::kb::{DecisionId, KnowledgeBase, Outcome, OutcomeId, SCHEMA_VERSION};
use campaignd::market::KnownIds;
use campaignd::market::{IdCatalog, Observation, Placement};
use campaignd::protocol::Origin;
use campaignd::runtime::{Client, Clock, Runtime, Services};

use crate::support::{agent_specs, kr_goal, scratch_kb, sim_start};

const DAY: Duration = Duration::from_secs(86_400);
/// The day the tests report on: the loop has run days 0 and 1.
const REPORTED: u32 = 2;

struct Running {
    runtime: Runtime,
    kb: KnowledgeBase,
    goal: CampaignGoal,
    /// The experiment's SMS arms.
    sms: Vec<Arm>,
    _dir: tempfile::TempDir,
}

/// One Korean campaign through two days of the loop on the shipped agents: planned, its creatives
/// approved, its experiment started and two days learned from.
async fn running(id: &str) -> Running {
    let (dir, kb) = scratch_kb();
    let clock = Clock::manual(sim_start());
    let runtime = start_agents(&kb, &clock).await;
    let goal = kr_goal(id, 100_000, 60);
    let options = LoopOptions::new(
        42,
        campaignd::domain::strategy::StrategyPlaybook::embedded().expect("the playbook"),
    );
    let mut campaign_loop =
        CampaignLoop::new(runtime.clone(), kb.clone(), vec![goal.clone()], options);
    for _ in 0..REPORTED {
        for report in campaign_loop.step().await {
            assert!(report.error.is_none(), "{report:?}");
        }
        clock.advance(DAY).expect("the manual clock advances");
    }
    // Queued behind the last day's learning: once it answers, every decision of those days is in.
    runtime
        .client(Origin::Runtime)
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone())
        .request("optimization", GetProgress { goal: goal.clone() })
        .await
        .expect("the optimizer answers");
    let decisions = kb
        .decisions_by_campaign(&ledger::scope(&goal), &goal.id)
        .expect("the campaign's decisions")
        .records;
    let sms: Vec<Arm> = projection::experiment_arms(&decisions)
        .into_iter()
        .filter(|arm| arm.channel == Channel::Sms)
        .collect();
    assert!(sms.len() >= 3, "the experiment has SMS arms: {sms:?}");
    Running {
        runtime,
        kb,
        goal,
        sms,
        _dir: dir,
    }
}

/// The shipped agents on `kb`, with nothing in their memory.
async fn start_agents(kb: &KnowledgeBase, clock: &Clock) -> Runtime {
    Runtime::builder(agents::registry().runtime().clone())
        .agents(agent_specs())
        .services(Services::new().with(kb.clone()))
        .clock(clock.clone())
        .start()
        .await
        .expect("the runtime starts")
}

impl Running {
    /// The campaign's decisions as recorded so far.
    fn decisions(&self) -> Vec<campaignd::kb::Decision> {
        self.kb
            .decisions_by_campaign(&ledger::scope(&self.goal), &self.goal.id)
            .expect("the campaign's decisions")
            .records
    }

    /// Whether a budget allocation has been recorded for the campaign.
    fn allocated(&self) -> bool {
        self.decisions().iter().any(|d| d.kind == "allocation")
    }

    fn client(&self) -> Client {
        self.runtime
            .client(Origin::Runtime)
            .with_tenant(self.goal.tenant.clone())
            .with_campaign(self.goal.id.clone())
    }

    async fn ingest(&self, observations: Vec<Observation>) -> IngestReport {
        ingest(&self.kb, &self.client(), None, self.batch(observations))
            .await
            .expect("the batch is ingested")
    }

    fn batch(&self, observations: Vec<Observation>) -> Batch {
        Batch {
            goal: self.goal.clone(),
            day: REPORTED,
            observations,
        }
    }

    /// What the optimizer has counted so far (asked after whatever it was sent before).
    async fn conversions(&self) -> u64 {
        self.client()
            .request(
                "optimization",
                GetProgress {
                    goal: self.goal.clone(),
                },
            )
            .await
            .expect("the optimizer answers")
            .progress
            .conversions
    }

    fn outcome(&self, id: OutcomeId) -> Outcome {
        self.kb
            .outcome(&ledger::scope(&self.goal), id)
            .expect("the outcome reads")
            .expect("the outcome is recorded")
    }

    /// The variants each observation outcome of the campaign holds, by outcome.
    fn recorded_variants(&self) -> BTreeMap<OutcomeId, Vec<String>> {
        let records = self
            .kb
            .by_campaign(&ledger::scope(&self.goal), &self.goal.id)
            .expect("the campaign's records")
            .records;
        let mut by_outcome: BTreeMap<OutcomeId, Vec<String>> = BTreeMap::new();
        for (id, metrics) in projection::observations(&records) {
            if metrics.day == REPORTED {
                by_outcome
                    .entry(id)
                    .or_default()
                    .push(metrics.observation.variant);
            }
        }
        by_outcome
    }
}

fn observation(goal: &CampaignGoal, arm: &Arm, conversions: i64) -> Observation {
    let start = sim_start() + chrono::Duration::days(i64::from(REPORTED));
    Observation {
        campaign: goal.id.clone(),
        channel: arm.channel,
        segment: Some(arm.segment.clone()),
        variant: arm.variant.clone(),
        window_start: start,
        window_end: start + chrono::Duration::days(1),
        impressions: 1_000,
        clicks: 100,
        conversions,
        spend: 10.0,
        revenue: 0.0,
    }
}

fn recorded(report: &IngestReport) -> Vec<OutcomeId> {
    report
        .items
        .iter()
        .filter_map(|item| match item {
            ItemResult::Recorded(id) => Some(*id),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channels_day_is_one_outcome_and_later_batches_record_only_what_is_new() {
    let run = running("one_outcome_per_channel").await;
    let (goal, arms) = (&run.goal, &run.sms);
    let before = run.conversions().await;
    // Whether a budget move was made before this batch (the batch's own learning may add one).
    let moved_before = run.allocated();

    let first = run
        .ingest(vec![
            observation(goal, &arms[0], 3),
            observation(goal, &arms[1], 4),
        ])
        .await;
    let ids = recorded(&first);
    assert_eq!(ids.len(), 2, "{first:?}");
    assert_eq!(ids[0], ids[1], "one outcome for the channel's day");
    assert_eq!(first.recorded, vec![ids[0]]);
    let outcome = run.outcome(ids[0]);
    assert_eq!(outcome.kind, "observations");
    let lines = projection::observed(&outcome);
    assert_eq!(
        lines
            .iter()
            .map(|m| m.observation.variant.as_str())
            .collect::<Vec<_>>(),
        [arms[0].variant.as_str(), arms[1].variant.as_str()]
    );
    // It cites the decisions the observations are evidence for: the experiment, the channel's
    // split and the allocation; its metrics name the review that approved each variant, once.
    let decisions = run.decisions();
    let kind_of = |id| {
        decisions
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.kind.clone())
            .expect("a cited decision is the campaign's")
    };
    let cited: Vec<String> = outcome.decisions.iter().map(|&id| kind_of(id)).collect();
    // An allocation is cited once a budget move (or a hand-off) was made; two days may not move.
    let mut expected = vec!["experiment", "traffic_split"];
    if moved_before {
        expected.push("allocation");
    }
    assert_eq!(cited, expected, "{cited:?}");
    let approvals: Vec<DecisionId> =
        serde_json::from_value(outcome.metrics["approvals"].clone()).expect("approval ids");
    let approved: Vec<String> = approvals
        .iter()
        .map(|&id| {
            let review = decisions
                .iter()
                .find(|d| d.id == id)
                .expect("an approval is the campaign's");
            assert_eq!(review.kind, "review");
            review.inputs["variant"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(approved, [arms[0].variant.clone(), arms[1].variant.clone()]);
    assert_eq!(run.conversions().await, before + 7);

    // A second batch of the same day: the variant already recorded is a duplicate, the new one
    // is the channel's next part.
    let second = run
        .ingest(vec![
            observation(goal, &arms[1], 4),
            observation(goal, &arms[2], 5),
        ])
        .await;
    assert_eq!(second.items[0], ItemResult::Duplicate(ids[0]));
    let ItemResult::Recorded(part) = second.items[1] else {
        panic!("the new variant is recorded: {second:?}");
    };
    assert_ne!(part, ids[0]);
    assert_eq!(second.duplicates, 1);
    assert_eq!(
        run.conversions().await,
        before + 12,
        "only the new line counts"
    );

    // The first batch again: nothing recorded, nothing counted twice.
    let replay = run
        .ingest(vec![
            observation(goal, &arms[0], 3),
            observation(goal, &arms[1], 4),
        ])
        .await;
    assert!(replay.recorded.is_empty(), "{replay:?}");
    assert_eq!(replay.duplicates, 2);
    assert!(
        replay.delivered > 0,
        "the first recording is announced again"
    );
    assert_eq!(run.conversions().await, before + 12);

    // A variant twice in one batch is recorded once.
    let twice = run
        .ingest(vec![
            observation(goal, &arms[3 % arms.len()], 1),
            observation(goal, &arms[3 % arms.len()], 1),
        ])
        .await;
    let variants = run.recorded_variants();
    let all: Vec<&String> = variants.values().flatten().collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "each variant once: {variants:?} {twice:?}"
    );
    run.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_recorded_one_outcome_each_by_campaignd_0_1_are_duplicates() {
    let run = running("recorded_by_0_1").await;
    let (goal, arms) = (&run.goal, &run.sms);
    let lines = vec![
        observation(goal, &arms[0], 3),
        observation(goal, &arms[1], 4),
    ];
    // As 0.1 recorded a batch: one `observation` outcome per line, under its own id.
    let mut legacy = Vec::new();
    for line in &lines {
        let id = ledger::outcome_id(
            goal,
            &format!(
                "observation/day/{REPORTED}/{}/{}",
                line.channel, line.variant
            ),
        );
        let outcome = Outcome {
            id,
            schema_version: SCHEMA_VERSION,
            tenant: goal.tenant.clone(),
            campaign: Some(goal.id.clone()),
            decisions: Vec::new(),
            correlation_id: Some(ledger::campaign_correlation(goal)),
            kind: OBSERVATION_OUTCOME.to_owned(),
            metrics: ledger::json(ObservationMetrics {
                day: REPORTED,
                observation: line.clone(),
            }),
            observed_at: line.window_end,
            recorded_at: Some(ledger::recorded_now()),
        };
        run.kb.record_outcome(&outcome).await.expect("recorded");
        legacy.push(id);
    }
    let duplicates: Vec<ItemResult> = legacy.iter().map(|&id| ItemResult::Duplicate(id)).collect();
    // The loop's first batch after an upgrade is checked as a batch from outside is.
    let mut kept = KnownDecisions::default();
    let looped = ingest_kept(&run.kb, &run.client(), &mut kept, run.batch(lines.clone()))
        .await
        .expect("the loop's batch");
    assert_eq!(looped.items, duplicates);
    assert_eq!(kept.looped_from, Some(REPORTED));
    let replay = run.ingest(lines).await;
    assert_eq!(replay.items, duplicates);
    assert!(replay.recorded.is_empty());
    // Announced again, each line counted once however often it comes.
    let counted = run.conversions().await;
    run.ingest(vec![observation(goal, &arms[0], 3)]).await;
    assert_eq!(run.conversions().await, counted);
    run.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_of_one_channel_and_day_record_each_variant_once() {
    let run = running("concurrent_batches").await;
    let (goal, arms) = (&run.goal, &run.sms);
    let before = run.conversions().await;
    // Four batches at once, each overlapping the next: they race for the same parts. Each names
    // its first variant twice, so a repeat may point at a part another batch took.
    let batches: Vec<Vec<Observation>> = (0..4)
        .map(|n| {
            (n..n + 3)
                .chain([n])
                .map(|i| observation(goal, &arms[i % arms.len()], 1))
                .collect()
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for observations in batches {
        let (kb, client, batch) = (run.kb.clone(), run.client(), run.batch(observations));
        tasks.spawn(async move { ingest(&kb, &client, None, batch).await });
    }
    let mut recorded_items = 0;
    while let Some(done) = tasks.join_next().await {
        let report = done.expect("no panic").expect("ingested");
        assert!(report.rejected.is_empty(), "{report:?}");
        assert_eq!(
            report.items.len(),
            4,
            "one result per observation: {report:?}"
        );
        assert!(
            matches!(report.items[3], ItemResult::Duplicate(_)),
            "the repeat is a duplicate: {report:?}"
        );
        recorded_items += recorded(&report).len();
    }
    let variants = run.recorded_variants();
    let all: Vec<&String> = variants.values().flatten().collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    let expected: BTreeSet<&String> = (0..6).map(|i| &arms[i % arms.len()].variant).collect();
    assert_eq!(unique, expected, "every variant recorded");
    assert_eq!(all.len(), unique.len(), "each once: {variants:?}");
    assert_eq!(recorded_items, unique.len());
    assert_eq!(
        run.conversions().await,
        before + unique.len() as u64,
        "each counted once"
    );
    run.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_too_large_for_one_outcome_is_recorded_in_parts() {
    let (_dir, kb) = scratch_kb();
    let runtime = Runtime::builder(agents::registry().runtime().clone())
        .services(Services::new().with(kb.clone()))
        .clock(Clock::manual(sim_start()))
        .start()
        .await
        .expect("a runtime without agents");
    let goal = kr_goal("large_batch", 100_000, 60);
    let mut known = IdCatalog::default();
    let arms: Vec<Arm> = (0..300)
        .map(|n| Arm {
            variant: format!("sms_{n:03}"),
            channel: Channel::Sms,
            segment: "university_students".into(),
            levels: Vec::new(),
            format: None,
            language: None,
        })
        .collect();
    for arm in &arms {
        let placement = Placement {
            channel: arm.channel,
            segment: arm.segment.clone(),
        };
        known.add_placed(goal.id.clone(), &arm.variant, placement);
    }
    let batch = Batch {
        goal: goal.clone(),
        day: REPORTED,
        observations: arms.iter().map(|arm| observation(&goal, arm, 1)).collect(),
    };
    let client = runtime.client(Origin::Runtime);
    let report = ingest(&kb, &client, Some(&known), batch.clone())
        .await
        .expect("ingested");
    assert_eq!(report.recorded.len(), 2, "256 and 44 lines");
    let ids = recorded(&report);
    assert_eq!(ids.len(), 300);
    assert!(ids[..256].iter().all(|&id| id == report.recorded[0]));
    assert!(ids[256..].iter().all(|&id| id == report.recorded[1]));
    let again = ingest(&kb, &client, Some(&known), batch)
        .await
        .expect("ingested");
    assert!(again.recorded.is_empty());
    assert_eq!(again.duplicates, 300);
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_decisions_take_in_only_what_was_recorded_since_and_link_the_latest() {
    let run = running("kept_decisions").await;
    let (goal, arms) = (&run.goal, &run.sms);
    let mut kept = KnownDecisions::default();
    kept.refresh(&run.kb, goal).expect("the first read");
    for arm in arms {
        assert!(
            kept.catalog.has_variant(&goal.id, &arm.variant),
            "{} is in the catalog",
            arm.variant
        );
    }
    let cited = kept.links.of_channel(Channel::Sms);
    let moved = run.allocated();
    assert_eq!(
        cited.len(),
        2 + usize::from(moved),
        "experiment, split and any allocation: {cited:?}"
    );
    // A newer split of the channel, recorded after the first read, is the one linked next.
    let newer = run
        .decisions()
        .into_iter()
        .rfind(|d| d.kind == "traffic_split" && d.inputs["channel"] == "sms")
        .map(|mut split| {
            split.id = campaignd::kb::DecisionId::new();
            split.decided_at += chrono::Duration::minutes(1);
            split
        })
        .expect("the campaign has an SMS split");
    run.kb.record_decision(&newer).await.expect("recorded");
    kept.refresh(&run.kb, goal).expect("the second read");
    assert_eq!(kept.links.of_channel(Channel::Sms)[1], newer.id);
    assert!(kept.achieved.is_none());
    run.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_optimizer_joins_a_replans_experiment_to_the_recorded_one() {
    let mut run = running("replan_after_restart").await;
    let before = run.conversions().await;
    assert!(before > 0, "two days bought something");
    run.runtime.shutdown(Duration::from_secs(5)).await;
    // A fresh optimizer knows nothing of the campaign until it reads the knowledge base.
    run.runtime = start_agents(&run.kb, &Clock::manual(sim_start())).await;
    let started = run
        .client()
        .request(
            "optimization",
            StartExperiment {
                goal: run.goal.clone(),
                attempt: 1,
                arms: run.sms[..1].to_vec(),
                daily: BTreeMap::from([(Channel::Sms, 10.0)]),
                curves: BTreeMap::new(),
                bounds: BTreeMap::new(),
                plan: DecisionId::new(),
            },
        )
        .await
        .expect("the re-plan's experiment starts");
    assert_eq!(started.decision, ledger::step_id(&run.goal, "experiment/1"));
    assert_eq!(
        run.conversions().await,
        before,
        "the re-plan's experiment joined the recorded one, with what it had learned"
    );
    run.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_significant_lead_on_enough_trials_is_declared_the_channels_winner_once() {
    let run = running("declared_winner").await;
    let (goal, arms) = (&run.goal, &run.sms);
    // One variant at 5 % and every other at 4 %, on 20 000 impressions each: 6 745 trials each
    // tell the two apart at α = 0.05 with 80 % power.
    let observations: Vec<Observation> = arms
        .iter()
        .enumerate()
        .map(|(i, arm)| Observation {
            impressions: 20_000,
            clicks: 2_000,
            ..observation(goal, arm, if i == 0 { 1_000 } else { 800 })
        })
        .collect();
    run.ingest(observations).await;
    // Queued behind the batch's learning.
    run.conversions().await;
    let decisions = run.decisions();
    let winners: Vec<_> = decisions.iter().filter(|d| d.kind == "winner").collect();
    assert_eq!(winners.len(), 1, "one declaration for sms");
    let won = winners[0];
    assert_eq!(won.choice["channel"], "sms");
    assert_eq!(won.choice["variant"], arms[0].variant.as_str());
    // The fixture's two days add a little to each count, so the rates are near 5 % and 4 %.
    let rate =
        |s: &serde_json::Value| s["successes"].as_f64().unwrap() / s["trials"].as_f64().unwrap();
    let needed = campaignd::domain::optimization::sample_size_per_arm(
        rate(&won.inputs["second"]),
        rate(&won.inputs["leader"]),
        0.05,
        0.8,
    )
    .unwrap();
    assert_eq!(won.inputs["needed"], needed);
    assert!((6_000..8_000).contains(&needed), "{needed}");
    assert!(won.inputs["p_value"].as_f64().unwrap() < 0.05);
    assert!(
        won.reason.contains(" wins on sms: it converts at ")
            && won
                .reason
                .contains(&format!("80 % power needs {needed} each")),
        "{}",
        won.reason
    );
    run.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_delivered_otherwise_than_planned_records_a_sample_ratio_alarm() {
    let run = running("sample_ratio").await;
    let (goal, arms) = (&run.goal, &run.sms);
    // The simulator delivers the split it is given: its two days raised no alarm.
    let alarms = |run: &Running| {
        run.decisions()
            .into_iter()
            .filter(|d| d.kind == "sample_ratio_mismatch")
            .collect::<Vec<_>>()
    };
    assert!(alarms(&run).is_empty(), "{:?}", alarms(&run));
    let buys = run
        .client()
        .request(
            "optimization",
            PlanBuys {
                goal: goal.clone(),
                day: REPORTED,
                phase: Phase::Explore,
            },
        )
        .await
        .expect("the day's buys")
        .buys;
    assert!(buys.iter().filter(|b| b.channel == Channel::Sms).count() >= 3);
    // The platform served the first variant only: every other one reports no click.
    let observations: Vec<Observation> = arms
        .iter()
        .enumerate()
        .map(|(i, arm)| Observation {
            impressions: 10_000,
            clicks: if i == 0 { 3_000 } else { 0 },
            ..observation(goal, arm, 0)
        })
        .collect();
    run.ingest(observations).await;
    run.conversions().await;
    let alarms = alarms(&run);
    assert_eq!(alarms.len(), 1, "one alarm, for sms: {alarms:?}");
    let alarm = &alarms[0];
    assert_eq!(alarm.agent.as_str(), "optimization");
    assert_eq!(alarm.inputs["channel"], "sms");
    assert_eq!(alarm.inputs["day"], REPORTED);
    assert!(alarm.inputs["test"]["p_value"].as_f64().unwrap() < 0.001);
    assert_eq!(alarm.inputs["test"]["clicks"], 3_000);
    assert!(
        alarm
            .reason
            .contains("delivered a split unlike the one planned")
            && alarm.reason.contains(&format!(
                "{} got 100.0 % of the 3000 clicks",
                arms[0].variant
            )),
        "{}",
        alarm.reason
    );
    // The day is still learned from: the alarm is for a person to look into.
    assert!(
        run.decisions()
            .iter()
            .any(|d| d.kind == "forecast" && d.inputs["day"] == REPORTED)
    );
    run.runtime.shutdown(Duration::from_secs(5)).await;
}
