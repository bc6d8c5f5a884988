//! The daemon as an operator runs it: started from settings on a real data directory, stopped with
//! SIGTERM or SIGINT. In-flight work drains, every decision it acknowledged is on disk after the
//! knowledge base reopens, and the process exits 0 within its bound.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use campaignd::agents::Registry;
use campaignd::agents::compliance::{ReviewItem, ReviewVariants};
use campaignd::agents::{self, ledger};
use campaignd::campaign::CampaignState;
use campaignd::campaign::saved_simulated_time;
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::kb::{Decision, DecisionId, KnowledgeBase, SCHEMA_VERSION, Scope};
use campaignd::protocol::{Envelope, Origin, Payload};
use campaignd::runtime::{
    Agent, AgentError, Context, HandleRequest, Request, Routes, StartContext,
};
use campaignd::settings::EnvOverrides;
use serde::{Deserialize, Serialize};

use crate::support::{
    Process, board_of, campaignd, example_campaigns_turn_blocking, load_settings, reopen_kb,
    shipped_deployment, us_goal, us_goal_toml, wait_until, write,
};

/// Records one decision per request, slowly, so that a shutdown finds requests in flight.
struct Recorder {
    kb: Arc<KnowledgeBase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Note {
    n: usize,
}

impl Payload for Note {
    const ACTION: &'static str = "note";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noted {
    decision: DecisionId,
}

impl Payload for Noted {
    const ACTION: &'static str = "noted";
}

impl Request for Note {
    type Response = Noted;
}

impl Agent for Recorder {
    const NAME: &'static str = "recorder";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        Ok(Recorder {
            kb: ctx.services.require::<KnowledgeBase>()?,
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Note>();
    }
}

impl HandleRequest<Note> for Recorder {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<Note>,
    ) -> Result<Noted, AgentError> {
        // Slow on purpose: the shutdown under test must find requests queued behind this one.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let decision = Decision {
            id: DecisionId::new(),
            schema_version: SCHEMA_VERSION,
            agent: ctx.agent().clone(),
            tenant: "acme".into(),
            campaign: Some("spring".into()),
            correlation_id: ctx.correlation_id(),
            causation_id: Some(ctx.message_id()),
            kind: "note".into(),
            inputs: serde_json::json!({ "n": request.payload.n }),
            alternatives: Vec::new(),
            choice: serde_json::json!("noted"),
            reason: "the test asked".into(),
            confidence: 1.0,
            decided_at: ctx.now(),
            recorded_at: None,
        };
        let id = self
            .kb
            .record_decision(&decision)
            .await
            .map_err(AgentError::msg)?;
        Ok(Noted { decision: id })
    }
}

/// A deployment in `base` with one agent, `recorder`, and its data under `base/data`.
fn deployment(base: &Path) {
    let data = base.join("data");
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nshutdown_timeout_secs = 10\n\n[runtime]\ncommand_senders = []\n\n[api]\nlisten = \"127.0.0.1:0\"\n",
            data.display().to_string()
        ),
    );
    write(
        base,
        "agents/recorder.toml",
        "[agent]\nmailbox = 4096\nrequest_timeout_ms = 10000\n",
    );
    std::fs::create_dir_all(base.join("config/campaigns")).expect("campaigns folder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_and_keeps_every_acknowledged_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    deployment(dir.path());
    let settings = load_settings(dir.path(), None, EnvOverrides::new());
    let registry = Registry::new().agent::<Recorder>();
    let daemon = Daemon::start(settings, None, registry)
        .await
        .expect("daemon starts");

    let client = daemon
        .runtime()
        .operator("test")
        .with_tenant("acme")
        .with_campaign("spring");
    let answered = Arc::new(AtomicUsize::new(0));
    let mut requests = Vec::new();
    for n in 0..200 {
        let client = client.clone();
        let answered = Arc::clone(&answered);
        requests.push(tokio::spawn(async move {
            let result = client.request("recorder", Note { n }).await;
            if result.is_ok() {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            result
        }));
    }
    // Once every request is admitted, stop while most are still queued behind the slow handler.
    // (Answered first: a request leaves the mailbox before its answer arrives, so it is never
    // counted twice.)
    wait_until("all 200 requests admitted", Duration::from_secs(10), || {
        let answered = answered.load(Ordering::SeqCst);
        let queued = daemon
            .runtime()
            .agent_status("recorder")
            .map_or(0, |s| s.in_flight);
        answered + queued >= 200
    })
    .await;
    let summary = daemon.shutdown().await.expect("clean shutdown");
    assert!(summary.drained, "{summary:?}");

    let mut acknowledged = Vec::new();
    for request in requests {
        match request.await.expect("task") {
            Ok(noted) => acknowledged.push(noted.decision),
            Err(err) => panic!("an admitted request was not answered: {err}"),
        }
    }
    assert_eq!(answered.load(Ordering::SeqCst), 200);
    // The client holds the runtime's shared services, the knowledge base among them.
    drop(client);

    let kb = reopen_kb(&dir.path().join("data/kb")).await;
    for id in acknowledged {
        assert!(
            kb.decision(&Scope::tenant("acme"), id)
                .expect("read")
                .is_some(),
            "decision {id} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_api_port_stops_the_start_with_an_error_naming_api_listen() {
    let dir = tempfile::tempdir().expect("tempdir");
    deployment(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("bound address");
    let mut env = EnvOverrides::new();
    env.insert("CAMPAIGND__API__LISTEN".into(), addr.to_string());
    let settings = load_settings(dir.path(), None, env);
    let registry = Registry::new().agent::<Recorder>();
    let err = match Daemon::start(settings, None, registry).await {
        Ok(_) => panic!("the daemon started on a taken port"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("api.listen") && err.contains(&addr.to_string()),
        "{err}"
    );
    // The start closed the knowledge base cleanly: the directory opens again.
    drop(reopen_kb(&dir.path().join("data/kb")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_clock_continues_after_a_restart_instead_of_starting_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    deployment(dir.path());
    let env = || {
        let mut env = EnvOverrides::new();
        env.insert("CAMPAIGND__CLOCK__MODE".into(), "accelerated".into());
        env.insert("CAMPAIGND__CLOCK__FACTOR".into(), "864000".into());
        env.insert(
            "CAMPAIGND__CLOCK__START".into(),
            "2026-09-01T00:00:00Z".into(),
        );
        env
    };
    let start = |env| {
        let settings = load_settings(dir.path(), None, env);
        Daemon::start(settings, None, Registry::new().agent::<Recorder>())
    };
    let configured: chrono::DateTime<chrono::Utc> = "2026-09-01T00:00:00Z".parse().expect("a date");
    let daemon = start(env()).await.expect("daemon starts");
    // Ten simulated days a second: let the campaign loop step (and note the time) a few times.
    wait_until(
        "the clock five days on and the campaign loop to note a time four days on",
        Duration::from_secs(30),
        || {
            let noted = saved_simulated_time(daemon.kb());
            daemon.runtime().clock().now() - configured > chrono::Duration::days(5)
                && noted.is_some_and(|noted| noted - configured > chrono::Duration::days(4))
        },
    )
    .await;
    let reached = daemon.runtime().clock().now();
    assert!(
        reached - configured > chrono::Duration::days(5),
        "{reached}"
    );
    daemon.shutdown().await.expect("clean shutdown");
    drop(reopen_kb(&dir.path().join("data/kb")).await);

    let daemon = start(env()).await.expect("daemon restarts");
    let resumed = daemon.runtime().clock().now();
    assert!(
        resumed - configured > chrono::Duration::days(4),
        "the clock started over at {resumed}, the previous run had reached {reached}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

/// Starts the real binary in `base` on the embedded defaults and waits (bounded) for its "ready"
/// line.
fn start_binary(base: &Path) -> Process {
    let daemon = Process::spawn(
        campaignd()
            .args(["run", "--log-format", "json"])
            .current_dir(base)
            // The embedded defaults listen on 127.0.0.1:8080; a test must not depend on that port.
            .env("CAMPAIGND__API__LISTEN", "127.0.0.1:0"),
        None,
    );
    let ready = daemon.wait_for_lines(
        "the `campaignd ready` line",
        1,
        Duration::from_secs(30),
        |line| line.contains("campaignd ready"),
    );
    let parsed: serde_json::Value = serde_json::from_str(&ready[0]).expect("JSON log line");
    assert_eq!(parsed["fields"]["message"], "campaignd ready");
    daemon
}

#[test]
fn the_binary_exits_zero_on_sigterm_and_sigint_and_reloads_on_sighup() {
    // The embedded defaults run the example campaigns: a day in progress delays the exit.
    let _turn = example_campaigns_turn_blocking();
    for name in ["TERM", "INT"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut daemon = start_binary(dir.path());
        daemon.signal("HUP");
        daemon.wait_for_lines(
            "the reload SIGHUP asks for",
            1,
            Duration::from_secs(30),
            |line| line.contains("configuration reloaded") || line.contains("reload rejected"),
        );
        assert!(daemon.is_running(), "SIGHUP must not stop the daemon");
        daemon.signal(name);
        let status = daemon.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "SIG{name}: {status:?}");
        assert!(
            dir.path().join("data/kb").is_dir(),
            "the embedded defaults keep data under ./data"
        );
    }
}

/// The campaign the reload adds: globex, email and social in the US, from 2026-09-01 to 10-31.
fn us_campaign() -> (CampaignGoal, String) {
    let (id, target, days) = ("globex_reload", 300, 60);
    (us_goal(id, target, days), us_goal_toml(id, target, days))
}

/// A paid endorsement whose disclosure is buried among hashtags: ENDORSEMENT blocks it.
async fn endorsement_findings(daemon: &Daemon, variant: &str) -> Vec<String> {
    let (goal, _) = us_campaign();
    let message = serde_json::from_value(serde_json::json!({
        "channel": "social",
        "text": "Love it #tbt #ootd #ad",
        "endorsement": true,
    }))
    .expect("message");
    let reviews = daemon
        .runtime()
        .client(Origin::Runtime)
        .request(
            "compliance",
            ReviewVariants {
                goal,
                items: vec![ReviewItem {
                    variant: variant.to_owned(),
                    segment: "past_buyers".to_owned(),
                    message,
                    send_at: "2026-09-01T10:00:00-05:00".parse().expect("time"),
                }],
                round: 0,
                batch: String::new(),
            },
        )
        .await
        .expect("compliance answers");
    reviews
        .verdicts
        .iter()
        .flat_map(|v| v.verdict.findings.iter().map(|f| f.rule_id.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_an_added_campaign_and_the_next_review_uses_the_changed_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let config = shipped_deployment(base, 10, "\n[market]\nsource = \"api\"\n");
    let settings = load_settings(base, Some(&config), EnvOverrides::new());
    let daemon = Daemon::start(settings, Some(config), agents::registry())
        .await
        .expect("daemon starts");

    let before = endorsement_findings(&daemon, "before").await;
    assert!(before.iter().any(|r| r == "ENDORSEMENT"), "{before:?}");

    // An invalid change is rejected as a whole: the valid campaign next to it is not taken either.
    let (goal, text) = us_campaign();
    write(base, "config/campaigns/globex_reload.toml", &text);
    write(
        base,
        "config/campaigns/broken.toml",
        "id = \"broken\"\ntarget = \"many\"\n",
    );
    assert!(
        daemon.reload().is_err(),
        "a broken campaign file is rejected"
    );
    assert!(daemon.settings().campaigns.is_empty());
    std::fs::remove_file(base.join("config/campaigns/broken.toml")).expect("remove");

    // Switch ENDORSEMENT off and add the campaign; both apply without a restart.
    let compliance = std::fs::read_to_string(base.join("agents/compliance.toml")).expect("read");
    let disabled = compliance.replace(
        "[playbook.rules.ENDORSEMENT]\n",
        "[playbook.rules.ENDORSEMENT]\nenabled = false\n",
    );
    assert_ne!(compliance, disabled);
    write(base, "agents/compliance.toml", &disabled);
    let report = daemon
        .reload()
        .unwrap_or_else(|p| panic!("valid reload: {p}"));
    assert_eq!(report.campaigns, 1);

    let after = endorsement_findings(&daemon, "after").await;
    assert!(!after.iter().any(|r| r == "ENDORSEMENT"), "{after:?}");

    // The next campaign day ticks the added campaign: planned, written, reviewed, bought. With
    // `source = "api"` nothing is simulated: no observation is recorded.
    daemon
        .runtime()
        .clock()
        .advance(Duration::from_secs(86_400))
        .expect("manual clock");
    let board = board_of(&daemon);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = board
            .get(&goal.id)
            .expect("a reload lists the added campaign at once");
        if status.state == CampaignState::Running {
            assert!(!status.allocation.is_empty(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the added campaign was not ticked: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = daemon
        .kb()
        .by_campaign(&ledger::scope(&goal), &goal.id)
        .expect("query");
    let kinds: Vec<String> = found
        .records
        .iter()
        .filter_map(|r| r.as_decision())
        .map(|d| format!("{}:{}", d.agent, d.kind))
        .collect();
    for kind in ["orchestrator:sub_goals", "optimization:experiment"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
    }
    assert!(
        found.records.iter().all(|r| r.as_outcome().is_none()),
        "nothing is observed without the simulator"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A reload changes nothing a running campaign was planned with: changing its goal is refused
/// with the reason (the orchestrator keeps the planned goal, so the change would only look
/// applied), and the settings in force keep the old goal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_a_running_campaigns_goal_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let config = shipped_deployment(base, 10, "\n[market]\nsource = \"api\"\n");
    let (goal, text) = us_campaign();
    let file = format!("config/campaigns/{}.toml", goal.id);
    write(base, &file, &text);
    let settings = load_settings(base, Some(&config), EnvOverrides::new());
    let daemon = Daemon::start(settings, Some(config), agents::registry())
        .await
        .expect("daemon starts");
    daemon
        .runtime()
        .clock()
        .advance(Duration::from_secs(86_400))
        .expect("manual clock");
    let board = board_of(&daemon);
    wait_until("the campaign to run", Duration::from_secs(120), || {
        board
            .get(&goal.id)
            .is_some_and(|s| s.state == CampaignState::Running)
    })
    .await;

    let changed = text.replace(&format!("target = {}", goal.target), "target = 450");
    assert_ne!(changed, text);
    write(base, &file, &changed);
    let problems = daemon
        .reload()
        .expect_err("a changed running goal is refused");
    let shown = problems.to_string();
    assert!(
        shown.contains(&file) && shown.contains("target") && shown.contains("is running"),
        "{shown}"
    );
    assert_eq!(daemon.settings().campaigns[0].target, goal.target);
    daemon.shutdown().await.expect("shutdown");
}

/// A deployment on files for the real binary: the config at the default path, one campaign, a
/// tokens file; relative paths, so the daemon runs from `base`.
fn files_deployment(base: &Path) {
    let (_, text) = us_campaign();
    write(base, "config/campaigns/globex_reload.toml", &text);
    write(
        base,
        "tokens.toml",
        "[[tokens]]\nname = \"ops\"\ntoken = \"ops-reload-token-0123456789\"\n",
    );
    write(
        base,
        "config/campaignd.toml",
        "[daemon]\nshutdown_timeout_secs = 10\n\n[clock]\nmode = \"manual\"\nstart = 2026-09-01T00:00:00Z\n\n\
         [market]\nsource = \"api\"\n\n[api]\nlisten = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\n",
    );
}

/// The campaigns the daemon at `addr` lists to the operator token.
fn campaigns_listed(addr: &str) -> String {
    let mut response = ureq::get(&format!("http://{addr}/v1/campaigns"))
        .header("Authorization", "Bearer ops-reload-token-0123456789")
        .call()
        .unwrap_or_else(|e| panic!("GET /v1/campaigns: {e}"));
    response.body_mut().read_to_string().expect("body")
}

/// With the config file, the campaigns folder or a safe tokens file gone, SIGHUP rejects the
/// reload with the reason and the running settings stay (the token still works, the campaign is
/// still listed) instead of the embedded defaults taking their place.
#[test]
fn a_reload_without_its_files_is_rejected_and_the_running_settings_stay() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    files_deployment(base);
    let mut daemon = Process::spawn(
        campaignd()
            .args(["run", "--log-format", "json"])
            .current_dir(base),
        None,
    );
    let listening = daemon.wait_for_lines(
        "`API listening` with the address",
        1,
        Duration::from_secs(60),
        |line| line.contains("API listening"),
    );
    let parsed: serde_json::Value = serde_json::from_str(&listening[0]).expect("JSON log line");
    let addr = parsed["fields"]["addr"].as_str().expect("addr").to_owned();
    // A SIGHUP before the handlers exist would end the process, as for any program.
    daemon.wait_for_lines(
        "the `campaignd ready` line",
        1,
        Duration::from_secs(60),
        |line| line.contains("campaignd ready"),
    );
    assert!(campaigns_listed(&addr).contains("globex_reload"));

    let rejected = |daemon: &Process, needles: &[&str]| {
        daemon.wait_for_lines(
            &format!("a rejected reload naming {needles:?}"),
            1,
            Duration::from_secs(30),
            |line| line.contains("reload rejected") && needles.iter().all(|n| line.contains(n)),
        );
    };
    let config = base.join("config/campaignd.toml");
    std::fs::rename(&config, base.join("campaignd.toml.off")).expect("move the config away");
    daemon.signal("HUP");
    rejected(&daemon, &["config/campaignd.toml", "is gone"]);
    assert!(
        campaigns_listed(&addr).contains("globex_reload"),
        "the token still works"
    );
    std::fs::rename(base.join("campaignd.toml.off"), &config).expect("restore");

    let campaigns = base.join("config/campaigns");
    std::fs::rename(&campaigns, base.join("campaigns.off")).expect("move the campaigns away");
    daemon.signal("HUP");
    rejected(&daemon, &["config/campaigns", "is gone"]);
    assert!(
        campaigns_listed(&addr).contains("globex_reload"),
        "the campaign stays"
    );
    std::fs::rename(base.join("campaigns.off"), &campaigns).expect("restore");

    let tokens = base.join("tokens.toml");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    daemon.signal("HUP");
    rejected(&daemon, &["tokens.toml", "mode 0640", "chmod 600"]);
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    daemon.signal("HUP");
    daemon.wait_for_lines(
        "the reload with every file back",
        1,
        Duration::from_secs(30),
        |line| line.contains("configuration reloaded"),
    );
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

/// A tokens file others can read stops the start, naming the mode to set.
#[test]
fn a_tokens_file_others_can_read_stops_the_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    files_deployment(base);
    std::fs::set_permissions(
        base.join("tokens.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let outcome = crate::support::run(campaignd().arg("run").current_dir(base), None);
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.contains("tokens.toml") && l.contains("chmod 600 tokens.toml")),
        "{}",
        outcome.stderr
    );
}
