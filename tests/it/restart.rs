//! A restart changes nothing. A daemon stopped and started again on the same data folder shows
//! every figure it showed before (on the board, so in `/v1/campaigns` and `/metrics`), carries out
//! the re-plan an operator ordered before the stop, and keeps a withdrawal of consent above a stale
//! grant recorded after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use campaignd::agents::compliance::{ReviewItem, ReviewVariants};
use campaignd::agents::messages::{Pause, RecordConsent, Replan};
use campaignd::agents::{self, ledger};
use campaignd::campaign::{CampaignState, CampaignStatus};
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::domain::compliance::{
    ConsentRecord, Message, MessageChannel, Sender, Verdict, segment_subject,
};
use campaignd::protocol::Origin;
use campaignd::settings::EnvOverrides;

use crate::support::{
    bounded, example_campaigns_turn, kr_goal, kr_goal_toml, load_settings, reopen_kb,
    shipped_deployment, sim_start, us_goal, us_goal_toml, wait_for_async, wait_until, write,
};

/// How long one campaign day may take on a slow machine with every agent at work.
const DAY_LIMIT: Duration = Duration::from_secs(60);

/// [`shipped_deployment`] with the simulator and the given campaign files. Returns the config
/// path.
fn deployment(base: &Path, campaigns: &[(&str, String)]) -> PathBuf {
    let config = shipped_deployment(base, 10, "");
    for (id, text) in campaigns {
        write(base, &format!("config/campaigns/{id}.toml"), text);
    }
    config
}

async fn start(base: &Path, config: &Path) -> Daemon {
    let settings = load_settings(base, Some(config), EnvOverrides::new());
    Daemon::start(settings, Some(config.to_path_buf()), agents::registry())
        .await
        .expect("the daemon starts")
}

/// Stops `daemon` cleanly and waits until its knowledge base is let go.
async fn stop(daemon: Daemon, base: &Path) {
    daemon.shutdown().await.expect("clean shutdown");
    drop(reopen_kb(&base.join("data/kb")).await);
}

/// Moves the manual clock one day on and waits until every campaign of `ids` has been ticked
/// again (or has stopped being ticked: achieved or ended).
async fn next_day(daemon: &Daemon, ids: &[&CampaignGoal]) {
    let before: Vec<_> = ids.iter().map(|g| status(daemon, g).updated_at).collect();
    daemon
        .runtime()
        .clock()
        .advance(Duration::from_secs(86_400))
        .expect("a manual clock");
    wait_until("every campaign to be ticked again", DAY_LIMIT, || {
        ids.iter().zip(&before).all(|(goal, ticked)| {
            let now = status(daemon, goal);
            now.updated_at > *ticked
                || matches!(now.state, CampaignState::Achieved | CampaignState::Ended)
        })
    })
    .await;
}

fn status(daemon: &Daemon, goal: &CampaignGoal) -> CampaignStatus {
    daemon.board().get(&goal.id).expect("a configured campaign")
}

/// What the board shows of a campaign, without the time the board last heard of it.
fn figures(daemon: &Daemon, goal: &CampaignGoal) -> CampaignStatus {
    CampaignStatus {
        updated_at: None,
        ..status(daemon, goal)
    }
}

/// `/metrics` as text.
async fn metrics_text(daemon: &Daemon) -> String {
    let addr = daemon.api_addr();
    tokio::task::spawn_blocking(move || {
        ureq::get(format!("http://{addr}/metrics"))
            .call()
            .expect("GET /metrics")
            .body_mut()
            .read_to_string()
            .expect("a text body")
    })
    .await
    .expect("the request thread")
}

/// The campaigns `agent`'s workers hold in memory, summed over its workers.
async fn campaigns_held(daemon: &Daemon, agent: &str) -> f64 {
    let label = format!("campaignd_agent_campaigns{{agent=\"{agent}\",");
    metrics_text(daemon)
        .await
        .lines()
        .filter(|l| l.starts_with(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The campaign gauges `/metrics` serves for `goal`, line by line.
async fn metric_lines(daemon: &Daemon, goal: &CampaignGoal) -> Vec<String> {
    let text = metrics_text(daemon).await;
    let label = format!("campaign=\"{}\"", goal.id);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("campaignd_campaign") && l.contains(&label))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn achieved_and_paused_campaigns_show_the_same_figures_after_a_restart() {
    let _turn = example_campaigns_turn().await;
    bounded(Duration::from_secs(600), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let done = us_goal("us_done", 20, 60);
        let paused = kr_goal("kr_paused", 100_000, 60);
        let config = deployment(
            base,
            &[
                ("us_done", us_goal_toml("us_done", 20, 60)),
                ("kr_paused", kr_goal_toml("kr_paused", 100_000, 60)),
            ],
        );
        let daemon = start(base, &config).await;
        next_day(&daemon, &[&done, &paused]).await;
        next_day(&daemon, &[&done, &paused]).await;
        daemon
            .runtime()
            .operator("ops")
            .command(
                "orchestrator",
                Pause {
                    campaign: paused.id.clone(),
                    why: "budget review".to_owned(),
                },
            )
            .await
            .expect("the orchestrator takes the command");
        // At least one day after the pause, so the paused campaign's held tick is on the board
        // however early the other one reached its goal.
        for _ in 0..40 {
            next_day(&daemon, &[&done, &paused]).await;
            if status(&daemon, &done).state == CampaignState::Achieved {
                break;
            }
        }
        // The achieved campaign's working state has left the agents' memory; the paused one's
        // stays.
        for agent in ["orchestrator", "optimization"] {
            let daemon = &daemon;
            wait_for_async(
                &format!("{agent} to hold only the paused campaign"),
                Duration::from_secs(10),
                || async move { (campaigns_held(daemon, agent).await == 1.0).then_some(()) },
            )
            .await;
        }
        let (done_before, paused_before) = (figures(&daemon, &done), figures(&daemon, &paused));
        assert_eq!(
            done_before.state,
            CampaignState::Achieved,
            "{done_before:?}"
        );
        assert_eq!(
            paused_before.state,
            CampaignState::Held,
            "{paused_before:?}"
        );
        for before in [&done_before, &paused_before] {
            assert!(before.conversions > 0 && before.spend > 0.0, "{before:?}");
            assert!(before.phase.is_some(), "{before:?}");
        }
        let metrics_before = (
            metric_lines(&daemon, &done).await,
            metric_lines(&daemon, &paused).await,
        );
        assert!(
            !metrics_before.0.is_empty(),
            "no campaign gauges on /metrics"
        );
        stop(daemon, base).await;

        let daemon = start(base, &config).await;
        assert_eq!(figures(&daemon, &done), done_before);
        assert_eq!(figures(&daemon, &paused), paused_before);
        let metrics_after = (
            metric_lines(&daemon, &done).await,
            metric_lines(&daemon, &paused).await,
        );
        assert_eq!(metrics_after, metrics_before);
        // A day later nothing has moved: the achieved campaign buys nothing, the paused one waits.
        next_day(&daemon, &[&done, &paused]).await;
        assert_eq!(figures(&daemon, &done).conversions, done_before.conversions);
        assert_eq!(figures(&daemon, &paused).spend, paused_before.spend);
        assert_eq!(figures(&daemon, &paused).state, CampaignState::Held);
        stop(daemon, base).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replan_ordered_before_a_restart_is_carried_out_after_it() {
    let _turn = example_campaigns_turn().await;
    bounded(Duration::from_secs(300), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let goal = kr_goal("kr_replan", 100_000, 60);
        let config = deployment(
            base,
            &[("kr_replan", kr_goal_toml("kr_replan", 100_000, 60))],
        );
        let daemon = start(base, &config).await;
        next_day(&daemon, &[&goal]).await;
        next_day(&daemon, &[&goal]).await;
        daemon
            .runtime()
            .operator("ops")
            .command(
                "orchestrator",
                Replan {
                    campaign: goal.id.clone(),
                    why: "the spring budget moved".to_owned(),
                },
            )
            .await
            .expect("the orchestrator takes the command");
        // Stopped before the next day carries the order out.
        stop(daemon, base).await;

        let daemon = start(base, &config).await;
        next_day(&daemon, &[&goal]).await;
        let replans: Vec<String> = daemon
            .kb()
            .by_campaign(&ledger::scope(&goal), &goal.id)
            .expect("a query")
            .records
            .iter()
            .filter_map(|r| r.as_decision())
            .filter(|d| d.kind == "replan")
            .map(|d| d.reason.clone())
            .collect();
        assert!(
            replans
                .iter()
                .any(|r| r.contains("the spring budget moved")),
            "the ordered re-plan was not carried out after the restart: {replans:?}"
        );
        stop(daemon, base).await;
    })
    .await;
}

/// A consent record for the university students' SMS: granted a month before the campaign,
/// withdrawn `withdrawn_days_before` it (if given).
fn consent(
    goal: &CampaignGoal,
    granted_days_before: i64,
    withdrawn_days_before: Option<i64>,
) -> ConsentRecord {
    let mut record = ConsentRecord::new(
        segment_subject(goal, "university_students"),
        MessageChannel::Sms,
        "marketing",
    );
    record.granted_at = Some(sim_start() - chrono::Duration::days(granted_days_before));
    record.source = Some("signup_form".to_owned());
    record.text_hash = Some("abc".to_owned());
    record.withdrawn_at = withdrawn_days_before.map(|d| sim_start() - chrono::Duration::days(d));
    record
}

/// What compliance says of a legal daytime SMS to the university students.
async fn verdict(daemon: &Daemon, goal: &CampaignGoal) -> Verdict {
    let mut message = Message::advert(
        MessageChannel::Sms,
        "(광고)ABC마트 02-1234-5678 학생 멤버십 전 구매 10% 할인! 무료거부 0801234567".to_owned(),
    );
    message.sender = Sender {
        business_name: Some("ABC마트".to_owned()),
        contact: Some("02-1234-5678".to_owned()),
        opt_out_number: Some("0801234567".to_owned()),
        postal_address: None,
    };
    message.product_category = Some("general".to_owned());
    let reviews = daemon
        .runtime()
        .client(Origin::Runtime)
        .request(
            "compliance",
            ReviewVariants {
                goal: goal.clone(),
                items: vec![ReviewItem {
                    variant: "university_students/kr_sms/ko/0.0.0".to_owned(),
                    segment: "university_students".to_owned(),
                    message,
                    send_at: "2026-09-02T10:00:00+09:00".parse().expect("a time"),
                }],
                round: 0,
                batch: String::new(),
            },
        )
        .await
        .expect("compliance answers");
    reviews.verdicts[0].verdict.clone()
}

async fn record_consent(daemon: &Daemon, goal: &CampaignGoal, record: ConsentRecord) {
    daemon
        .runtime()
        .client(Origin::Runtime)
        .request(
            "compliance",
            RecordConsent {
                tenant: goal.tenant.clone(),
                records: vec![record],
            },
        )
        .await
        .expect("compliance records the consent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_beats_a_stale_grant_recorded_after_it_before_and_after_a_restart() {
    bounded(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let goal = kr_goal("kr_consent", 100_000, 60);
        let config = deployment(base, &[]);
        let daemon = start(base, &config).await;
        record_consent(&daemon, &goal, consent(&goal, 30, None)).await;
        let granted = verdict(&daemon, &goal).await;
        assert!(granted.approved, "a granted consent approves: {granted:?}");
        // Withdrawn a day before the campaign, then the month-old grant replayed (a stale copy from
        // a sign-up form's retry queue): the withdrawal is newer and stands.
        record_consent(&daemon, &goal, consent(&goal, 30, Some(1))).await;
        record_consent(&daemon, &goal, consent(&goal, 30, None)).await;
        let live = verdict(&daemon, &goal).await;
        assert!(
            !live.approved && live.has_finding("KR-OPTIN"),
            "the withdrawal stands live: {live:?}"
        );
        stop(daemon, base).await;

        let daemon = start(base, &config).await;
        let rebuilt = verdict(&daemon, &goal).await;
        assert!(
            !rebuilt.approved && rebuilt.has_finding("KR-OPTIN"),
            "after a restart the stale grant beat the withdrawal: {rebuilt:?}"
        );
        stop(daemon, base).await;
    })
    .await;
}
