//! A knowledge base written by campaignd 0.1.0 before decision records were typed
//! (`tests/fixtures/kb-written-by-0.1.0.tar.gz`: the embedded defaults run for about 20 campaign
//! days on the release binary, with an operator's pause, resume and re-plan) opens with today's
//! code, every record of a kind the built-in agents write decodes into its type, the rebuilt state
//! agrees with the figures that version recorded, and the real binary resumes its campaigns.

use std::path::Path;
use std::time::Duration;

use campaignd::agents::decisions::{self as kinds};
use campaignd::agents::optimization::Optimization;
use campaignd::agents::orchestrator::Orchestrator;
use campaignd::agents::projection::{self, CampaignView, ExperimentState};
use campaignd::campaign::resume::{last_recorded_day, planned_start};
use campaignd::kb::{KbOptions, KnowledgeBase, Scope};
use campaignd::runtime::Agent;
use campaignd::settings::{EnvOverrides, Settings};

use crate::support;

const FIXTURE: &str = "tests/fixtures/kb-written-by-0.1.0.tar.gz";

/// The fixture unpacked into a fresh folder: `<dir>/data/kb`.
fn unpack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar runs");
    assert!(
        status.success(),
        "tar could not unpack {}",
        archive.display()
    );
    dir
}

fn embedded_goals() -> Vec<campaignd::domain::campaign::CampaignGoal> {
    let empty = tempfile::tempdir().expect("tempdir");
    Settings::load_from(empty.path(), None, EnvOverrides::new())
        .expect("the embedded defaults load")
        .campaigns
}

#[test]
fn every_record_decodes_and_the_rebuilt_state_matches_what_was_recorded() {
    let dir = unpack();
    let kb = KnowledgeBase::open(&KbOptions::at(dir.path().join("data/kb"))).expect("opens");
    let mut kinds_seen = std::collections::BTreeSet::new();
    let mut resumed = 0;
    for goal in embedded_goals() {
        let scope = Scope::Tenant(goal.tenant.clone());
        let found = kb.by_campaign(&scope, &goal.id).expect("readable");
        let decisions: Vec<_> = found
            .records
            .iter()
            .filter_map(|r| r.as_decision())
            .cloned()
            .collect();
        for decision in &decisions {
            let decodes = projection::decodes_as_its_kind(decision);
            assert_ne!(
                decodes,
                Some(false),
                "a {} decision of {} does not decode: {}",
                decision.kind,
                goal.id,
                serde_json::to_string(decision).unwrap_or_default()
            );
            kinds_seen.insert(decision.kind.clone());
        }
        if decisions.is_empty() {
            continue; // a campaign whose start the run did not reach
        }
        resumed += 1;
        let view = CampaignView::rebuild(
            decisions
                .iter()
                .filter(|d| d.agent.as_str() == Orchestrator::NAME),
        );
        assert!(view.set_up, "{} was set up", goal.id);
        assert!(view.goal.is_some(), "{} has its planned goal", goal.id);
        assert_eq!(
            planned_start(&kb, &goal),
            view.goal.as_ref().and_then(|g| g.start)
        );
        let state = ExperimentState::rebuild(&goal, &found.records, Optimization::NAME)
            .expect("an experiment");
        // The conversions the optimizer counted, as it recorded them in its last forecast.
        let last_day = last_recorded_day(&kb, &goal).expect("a learned day");
        let recorded = decisions
            .iter()
            .filter_map(projection::decode::<kinds::ForecastMade>)
            .find(|(inputs, _)| inputs.day == last_day)
            .and_then(|(inputs, _)| inputs.cumulative.last().copied())
            .expect("the last day's forecast");
        assert_eq!(
            state.experiment.progress().conversions as f64,
            recorded,
            "{}: the rebuilt experiment counts what 0.1.0 counted",
            goal.id
        );
        assert!(state.experiment.seen_days.contains(&last_day));
    }
    assert!(resumed >= 2, "campaigns with decisions: {resumed}");
    for kind in [
        "sub_goals",
        "setup",
        "plan",
        "creatives",
        "review",
        "consent",
        "experiment",
        "traffic_split",
        "forecast",
        "phase",
        "pause",
        "resume",
        "replan_ordered",
        "replan",
    ] {
        assert!(
            kinds_seen.contains(kind),
            "the fixture holds a {kind} decision"
        );
    }
    let view_with_order = {
        let goal = embedded_goals()
            .into_iter()
            .find(|g| g.id.as_str() == "kr_students_signups")
            .expect("configured");
        let found = kb
            .decisions_by_campaign(&Scope::Tenant(goal.tenant.clone()), &goal.id)
            .expect("readable");
        CampaignView::rebuild(
            found
                .records
                .iter()
                .filter(|d| d.agent.as_str() == Orchestrator::NAME),
        )
    };
    assert!(!view_with_order.paused, "paused, then resumed");
    assert_eq!(view_with_order.commands, 2);
    assert_eq!(view_with_order.replan_requested, None);
    drop(kb);
}

#[test]
fn the_binary_resumes_the_campaigns_of_an_older_knowledge_base() {
    let _turn = support::example_campaigns_turn_blocking();
    let dir = unpack();
    let mut daemon = support::Process::spawn(
        support::campaignd()
            .arg("run")
            .env("CAMPAIGND__API__LISTEN", "127.0.0.1:0")
            .current_dir(dir.path()),
        None,
    );
    // Both campaigns the old run reached pick up after their last learned day.
    let resumed = daemon.wait_for_lines(
        "two campaigns resuming from the knowledge base",
        2,
        Duration::from_secs(60),
        |line| line.contains("resuming from the knowledge base"),
    );
    assert!(
        resumed.iter().any(|l| l.contains("kr_students_signups"))
            && resumed.iter().any(|l| l.contains("acme_spring_push")),
        "{resumed:?}"
    );
    // The signal handlers exist once it says it is ready; a SIGTERM before that would kill it.
    daemon.wait_for_lines(
        "the `campaignd ready` line",
        1,
        Duration::from_secs(60),
        |line| line.contains("campaignd ready"),
    );
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "campaignd exited {status:?}: {:?}",
        daemon.all_lines()
    );
    assert!(
        !daemon
            .all_lines()
            .iter()
            .any(|l| l.contains("panicked") || l.contains(" ERROR ")),
        "{:?}",
        daemon.all_lines()
    );
}
