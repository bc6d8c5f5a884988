//! People in the loop, through the real binary and its API: under `manual` nothing is bought and
//! no budget moves without a person's approval; requests survive kill -9; a request is answered
//! once (409 after, one winner of two at once); read-only and other tenants' tokens cannot answer;
//! an amended approval takes effect as amended; an unanswered request expires to its default;
//! autonomy is earned by a run of unchanged approvals and widened only by a person's yes; a
//! sensitive creative is not sent until a person approves it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Process, campaignd, kr_goal_toml, open_kb, shipped_deployment, us_goal_toml, wait_for, write,
};

pub(crate) const OPERATOR: &str = "operator-secret-0000000001";
pub(crate) const GLOBEX: &str = "globex-approver-secret-0001";
const GLOBEX_READER: &str = "globex-reader-secret-00001";
const ACME: &str = "acme-approver-secret-000001";

/// A deployment with one globex campaign whose file starts with `head` (its autonomy), the
/// simulator, tokens of each role, and `approvals` appended as the `[approvals]` tables.
pub(crate) fn deployment(base: &Path, head: &str, approvals: &str) {
    shipped_deployment(
        base,
        10,
        &format!(
            "[[api.tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n\n\
             [[api.tokens]]\nname = \"globex-marketer\"\ntoken = \"{GLOBEX}\"\ntenant = \"globex\"\n\n\
             [[api.tokens]]\nname = \"globex-viewer\"\ntoken = \"{GLOBEX_READER}\"\ntenant = \"globex\"\nrole = \"read-only\"\n\n\
             [[api.tokens]]\nname = \"acme\"\ntoken = \"{ACME}\"\ntenant = \"acme\"\n\n\
             {approvals}\n"
        ),
    );
    write(
        base,
        "config/campaigns/globex_fall.toml",
        &format!("{head}\n{}", us_goal_toml("globex_fall", 100_000, 40)),
    );
}

/// The binary on the deployment in `base`, with an accelerated clock (a campaign day every 0.2
/// s); its API address.
pub(crate) fn start(base: &Path) -> (Process, SocketAddr) {
    start_at(base, 432_000)
}

/// [`start`] with the clock `factor` times faster than real time.
pub(crate) fn start_at(base: &Path, factor: u32) -> (Process, SocketAddr) {
    let mut command = campaignd();
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(base.join("config/campaignd.toml"))
        .env("CAMPAIGND__CLOCK__MODE", "accelerated")
        .env("CAMPAIGND__CLOCK__FACTOR", factor.to_string())
        .current_dir(base);
    let daemon = Process::spawn(&mut command, None);
    let listening = daemon.wait_for_lines("`API listening`", 1, Duration::from_secs(30), |l| {
        l.contains("API listening")
    });
    let line: Value = serde_json::from_str(&listening[0]).expect("a JSON log line");
    let addr = line["fields"]["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"));
    (daemon, addr)
}

pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// `method path` with `token` and a JSON `body`: the status and the JSON answer.
pub(crate) fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("http://{addr}{path}");
    let auth = format!("Bearer {token}");
    let agent = client();
    let response = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        ("PUT", Some(body)) => agent
            .put(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.to_string()),
        (_, body) => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(Value::Null).to_string()),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The requests of `state` the token sees.
pub(crate) fn approvals(addr: SocketAddr, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = call(addr, "GET", &format!("/v1/approvals?{query}"), token, None);
    assert_eq!(status, 200, "{body}");
    body["approvals"].as_array().cloned().unwrap_or_default()
}

/// Waits for a pending request of `kind` other than those in `seen`.
pub(crate) fn next_pending(addr: SocketAddr, kind: &str, seen: &[String]) -> Value {
    wait_for(
        &format!("a pending {kind} request"),
        Duration::from_secs(60),
        || {
            approvals(addr, OPERATOR, &format!("state=pending&kind={kind}"))
                .into_iter()
                .find(|a| !seen.contains(&a["id"].as_str().unwrap_or_default().to_owned()))
        },
    )
}

/// The first of `campaign`'s decisions by `agent` that `wanted` picks, if one is recorded yet.
fn decision(
    addr: SocketAddr,
    campaign: &str,
    agent: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let path = format!("/v1/campaigns/{campaign}/decisions?agent={agent}&limit=1000");
    let (_, page) = call(addr, "GET", &path, OPERATOR, None);
    page["decisions"]
        .as_array()?
        .iter()
        .find(|d| wanted(d))
        .cloned()
}

/// `/metrics` as text.
pub(crate) fn metrics(addr: SocketAddr) -> String {
    client()
        .get(&format!("http://{addr}/metrics"))
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .expect("/metrics")
}

fn spend(addr: SocketAddr) -> f64 {
    let (status, body) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
    assert_eq!(status, 200, "{body}");
    body["spend"].as_f64().unwrap_or(0.0)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub(crate) fn id_of(request: &Value) -> String {
    request["id"].as_str().expect("an id").to_owned()
}

#[test]
fn under_manual_nothing_is_bought_or_moved_without_an_approval_and_each_request_is_answered_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, "autonomy = \"manual\"", "");
    let (mut daemon, addr) = start(base);

    // Day 1's buys wait; nothing is spent meanwhile, however many ticks pass.
    let first = next_pending(addr, "buys", &[]);
    let first_id = id_of(&first);
    assert_eq!(first["state"], "pending");
    assert!(
        first["summary"].as_str().unwrap().contains("manual"),
        "{first}"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(spend(addr), 0.0);
    assert_eq!(
        approvals(addr, OPERATOR, "state=pending&kind=buys").len(),
        1,
        "the held day asks once"
    );

    // Who may see and answer it.
    assert!(approvals(addr, ACME, "state=all").is_empty());
    let approve = format!("/v1/approvals/{first_id}/approve");
    let reason = json!({"reason": "looks right"});
    let (status, body) = call(addr, "POST", &approve, ACME, Some(reason.clone()));
    assert_eq!((status, code(&body)), (404, "unknown_approval"), "{body}");
    let (status, body) = call(addr, "POST", &approve, GLOBEX_READER, Some(reason.clone()));
    assert_eq!((status, code(&body)), (403, "read_only_token"), "{body}");
    assert_eq!(approvals(addr, GLOBEX_READER, "state=pending").len(), 1);
    let (status, body) = call(addr, "POST", &approve, GLOBEX, Some(json!({})));
    assert_eq!((status, code(&body)), (400, "invalid_body"), "{body}");

    // An amendment above the proposal is refused; the detail shows the proposal.
    let (status, detail) = call(
        addr,
        "GET",
        &format!("/v1/approvals/{first_id}"),
        GLOBEX,
        None,
    );
    assert_eq!(status, 200, "{detail}");
    let buys = detail["request"]["choice"]["proposal"]["buys"]
        .as_array()
        .unwrap();
    let proposed: f64 = buys.iter().map(|b| b["spend"].as_f64().unwrap()).sum();
    assert!(proposed > 0.0, "{detail}");
    let (status, body) = call(
        addr,
        "POST",
        &approve,
        GLOBEX,
        Some(json!({"reason": "more", "amend": {"spend": proposed * 2.0}})),
    );
    assert_eq!((status, code(&body)), (422, "invalid_amendment"), "{body}");

    // Two people at once: one answer is recorded, the other is told who was first.
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let both: Vec<_> = [GLOBEX, OPERATOR]
            .into_iter()
            .map(|token| {
                let (approve, reason) = (&approve, &reason);
                s.spawn(move || call(addr, "POST", approve, token, Some(reason.clone())))
            })
            .collect();
        both.into_iter()
            .map(|t| t.join().expect("a thread"))
            .collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{answers:?}");
    let (status, body) = call(
        addr,
        "POST",
        &format!("/v1/approvals/{first_id}/reject"),
        GLOBEX,
        Some(reason.clone()),
    );
    assert_eq!((status, code(&body)), (409, "approval_answered"), "{body}");

    // Approved, day 1 is bought; day 2 asks again.
    wait_for("day 1 bought", Duration::from_secs(30), || {
        (spend(addr) > 0.0).then_some(())
    });
    let second = next_pending(addr, "buys", std::slice::from_ref(&first_id));
    let second_id = id_of(&second);

    // A kill -9 with it pending: after the restart it is still there, and can be rejected.
    daemon.kill();
    let (mut daemon, addr) = start(base);
    let listed = wait_for(
        "the request after the restart",
        Duration::from_secs(30),
        || {
            approvals(addr, OPERATOR, "state=pending&kind=buys")
                .into_iter()
                .find(|a| id_of(a) == second_id)
        },
    );
    assert_eq!(listed["state"], "pending");
    let (status, body) = call(
        addr,
        "POST",
        &format!("/v1/approvals/{second_id}/reject"),
        GLOBEX,
        Some(json!({"reason": "not on a holiday"})),
    );
    assert_eq!(status, 200, "{body}");
    let third = next_pending(addr, "buys", &[first_id.clone(), second_id.clone()]);
    assert!(third["day"].as_u64() > second["day"].as_u64(), "{third}");
    daemon.terminate(Duration::from_secs(20));
    drop(daemon);

    // The record: observations only for days whose buys a person approved, and every budget
    // move an approved one.
    let kb = open_kb(&base.join("data/kb"));
    let records = kb
        .by_campaign(&campaignd::kb::Scope::AllTenants, &"globex_fall".into())
        .expect("the campaign's records")
        .records;
    let decisions: Vec<_> = records.iter().filter_map(|r| r.as_decision()).collect();
    let approved_requests: Vec<String> = decisions
        .iter()
        .filter(|d| d.kind == "approval_answer" && d.choice["verdict"] == "approved")
        .map(|d| d.inputs["request"].as_str().unwrap().to_owned())
        .collect();
    let approved_days: Vec<u64> = decisions
        .iter()
        .filter(|d| d.kind == "approval_request" && approved_requests.contains(&d.id.to_string()))
        .filter(|d| d.choice["proposal"]["kind"] == "buys")
        .map(|d| d.inputs["day"].as_u64().unwrap())
        .collect();
    assert_eq!(approved_days, [first["day"].as_u64().unwrap()]);
    let observed: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            campaignd::kb::Record::Outcome(o) if o.kind == "observations" => {
                o.metrics["day"].as_u64()
            }
            _ => None,
        })
        .collect();
    assert!(!observed.is_empty());
    assert!(
        observed.iter().all(|d| approved_days.contains(d)),
        "{observed:?} vs {approved_days:?}"
    );
    for d in decisions.iter().filter(|d| d.kind == "allocation") {
        let step = d.inputs["step"].as_str().unwrap_or_default();
        assert!(
            step.starts_with("allocation/approved/"),
            "a budget move without approval: {step}"
        );
    }
    let rejected = decisions
        .iter()
        .find(|d| d.kind == "approval_applied" && d.inputs["request"] == second_id.as_str())
        .expect("what the orchestrator did with the rejection");
    assert!(
        rejected.choice.as_str().unwrap().contains("nothing bought"),
        "{:?}",
        rejected.choice
    );
}

#[test]
fn an_unanswered_request_expires_to_its_default_and_an_answer_after_it_gets_409() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(
        base,
        "autonomy = \"manual\"",
        "[approvals.buys]\nafter_minutes = 0\non_expiry = \"hold\"\n",
    );
    let (mut daemon, addr) = start(base);
    let expired = wait_for("an expired request", Duration::from_secs(60), || {
        approvals(addr, OPERATOR, "state=expired")
            .into_iter()
            .next()
    });
    assert_eq!(expired["answer"]["by"], "expiry", "{expired}");
    let (status, body) = call(
        addr,
        "POST",
        &format!("/v1/approvals/{}/approve", id_of(&expired)),
        GLOBEX,
        Some(json!({"reason": "late"})),
    );
    assert_eq!((status, code(&body)), (409, "approval_answered"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expiry"),
        "{body}"
    );
    // Its default holds the campaign: paused (a recorded decision saying why), nothing bought.
    let pause = wait_for("the campaign paused", Duration::from_secs(30), || {
        decision(addr, "globex_fall", "orchestrator", |d| {
            d["kind"] == "pause"
        })
    });
    assert!(
        pause["reason"]
            .as_str()
            .unwrap()
            .contains("was not answered"),
        "{pause}"
    );
    wait_for("the campaign held", Duration::from_secs(30), || {
        let (_, c) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
        (c["state"] == "held").then_some(())
    });
    assert_eq!(spend(addr), 0.0);
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn an_amended_budget_move_takes_effect_as_amended_and_autonomy_is_set_by_a_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    // Every move waits (share 0); the buys never run ahead of a pace ten times the budget's.
    deployment(
        base,
        "autonomy = \"supervised\"",
        "[approvals]\nbudget_move_share = 0.0\nahead_of_pace = 10.0\n",
    );
    let (mut daemon, addr) = start(base);
    let request = next_pending(addr, "budget_move", &[]);
    let id = id_of(&request);
    assert_eq!(request["agent"], "optimization");
    let metrics = metrics(addr);
    assert!(
        metrics.contains(
            "campaignd_approvals_pending{campaign=\"globex_fall\",kind=\"budget_move\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("campaignd_approvals_oldest_pending_age_seconds{campaign=\"globex_fall\"}"),
        "{metrics}"
    );
    let (_, detail) = call(addr, "GET", &format!("/v1/approvals/{id}"), GLOBEX, None);
    let proposal = &detail["request"]["choice"]["proposal"];
    let halfway: serde_json::Map<String, Value> = proposal["daily"]
        .as_object()
        .expect("daily budgets")
        .iter()
        .map(|(channel, wanted)| {
            let had = proposal["before"][channel].as_f64().unwrap_or(0.0);
            (
                channel.clone(),
                json!((had + wanted.as_f64().unwrap()) / 2.0),
            )
        })
        .collect();
    let (status, body) = call(
        addr,
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        GLOBEX,
        Some(json!({"reason": "halfway for now", "amend": {"daily": halfway}})),
    );
    assert_eq!(status, 200, "{body}");
    let applied = wait_for("the amended move in force", Duration::from_secs(30), || {
        decision(addr, "globex_fall", "optimization", |d| {
            d["kind"] == "allocation"
                && d["inputs"]["step"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("allocation/approved/"))
        })
    });
    for (channel, value) in &halfway {
        let got = applied["choice"]["daily"][channel].as_f64().unwrap();
        assert!(
            (got - value.as_f64().unwrap()).abs() < 1e-6,
            "{channel}: {applied}"
        );
    }
    assert!(
        applied["reason"].as_str().unwrap().contains("as amended"),
        "{applied}"
    );

    // Autonomy is set by a person with a reason, and a read-only token cannot.
    let path = "/v1/campaigns/globex_fall/autonomy";
    let body = json!({"autonomy": "autonomous", "reason": "the moves have been right"});
    let (status, answer) = call(addr, "PUT", path, GLOBEX_READER, Some(body.clone()));
    assert_eq!(
        (status, code(&answer)),
        (403, "read_only_token"),
        "{answer}"
    );
    let (status, answer) = call(addr, "PUT", path, GLOBEX, Some(body));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["autonomy"], "autonomous");
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn autonomy_is_earned_only_with_a_persons_yes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    // Two unchanged approvals in a row earn an offer to stop asking.
    deployment(
        base,
        "autonomy = \"manual\"",
        "[approvals]\nearned_window = 2\nearned_bar = 1.0\n",
    );
    let (mut daemon, addr) = start(base);
    let yes = json!({"reason": "right again"});
    let mut seen = Vec::new();
    for _ in 0..2 {
        let buys = next_pending(addr, "buys", &seen);
        seen.push(id_of(&buys));
        let path = format!("/v1/approvals/{}/approve", id_of(&buys));
        let (status, body) = call(addr, "POST", &path, GLOBEX, Some(yes.clone()));
        assert_eq!(status, 200, "{body}");
    }
    let offer = next_pending(addr, "autonomy", &[]);
    let summary = offer["summary"].as_str().unwrap();
    assert!(
        summary.contains("stop asking") && summary.contains("buys") && summary.contains("100 %"),
        "{offer}"
    );
    let (_, detail) = call(
        addr,
        "GET",
        &format!("/v1/approvals/{}", id_of(&offer)),
        GLOBEX,
        None,
    );
    assert_eq!(
        detail["request"]["inputs"]["evidence"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{detail}"
    );
    // Until a person says yes, buys still wait.
    let third = next_pending(addr, "buys", &seen);
    seen.push(id_of(&third));
    let path = format!("/v1/approvals/{}/approve", id_of(&offer));
    let (status, body) = call(
        addr,
        "POST",
        &path,
        GLOBEX,
        Some(json!({"reason": "buys have earned it"})),
    );
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/approvals/{}/approve", id_of(&third));
    let (status, body) = call(addr, "POST", &path, GLOBEX, Some(yes.clone()));
    assert_eq!(status, 200, "{body}");

    // Once applied, days are bought without asking.
    wait_for("the offer applied", Duration::from_secs(30), || {
        decision(addr, "globex_fall", "orchestrator", |d| {
            d["kind"] == "approval_applied" && d["inputs"]["request"] == offer["id"]
        })
    });
    let day = |addr| {
        call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None).1["day"]
            .as_u64()
            .unwrap_or(0)
    };
    let asked = approvals(addr, OPERATOR, "state=all&kind=buys").len();
    let from = day(addr);
    let spent = spend(addr);
    wait_for("three days bought unasked", Duration::from_secs(30), || {
        (day(addr) >= from + 3).then_some(())
    });
    assert!(spend(addr) > spent);
    assert_eq!(
        approvals(addr, OPERATOR, "state=all&kind=buys").len(),
        asked
    );
    assert_eq!(
        approvals(addr, OPERATOR, "state=pending&kind=autonomy").len(),
        0
    );

    // The list pages, oldest first, each page after its cursor.
    let all: Vec<String> = approvals(addr, OPERATOR, "state=all")
        .iter()
        .map(id_of)
        .collect();
    let mut paged = Vec::new();
    let mut query = "state=all&limit=2".to_owned();
    loop {
        let (status, page) = call(
            addr,
            "GET",
            &format!("/v1/approvals?{query}"),
            OPERATOR,
            None,
        );
        assert_eq!(status, 200, "{page}");
        paged.extend(page["approvals"].as_array().unwrap().iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("state=all&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert!(all.len() > 2);
    assert_eq!(paged, all);
    for bad in ["limit=0", "limit=1001", "cursor=nonsense"] {
        let (status, body) = call(addr, "GET", &format!("/v1/approvals?{bad}"), OPERATOR, None);
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_parameter"),
            "{bad}: {body}"
        );
    }
    // Another tenant's request is no cursor of this tenant's token.
    let (status, _) = call(
        addr,
        "GET",
        &format!("/v1/approvals?cursor={}", all[0]),
        ACME,
        None,
    );
    assert_eq!(status, 400);
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn a_sensitive_creative_is_not_sent_until_a_person_approves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    // Every creative of a `general` product waits; nothing else does.
    deployment(
        base,
        "",
        "[approvals]\nsensitive_categories = [\"general\"]\nbudget_move_share = 1.0\nahead_of_pace = 10.0\n",
    );
    // A campaign whose cells have more combinations than content writes at first, so that the
    // optimizer breeds new ones (on days 7 and 14: the target is out of reach).
    std::fs::remove_file(base.join("config/campaigns/globex_fall.toml")).expect("removed");
    let toml = kr_goal_toml("kr_bred", 100_000, 60).replace(
        r#"messages = ["학생증 하나로 가입 끝", "새 학기 쇼핑을 가볍게"]"#,
        r#"messages = ["학생증 하나로 가입 끝", "새 학기 쇼핑을 가볍게", "매장과 온라인 모두 적용", "가입비 없는 학생 혜택", "친구와 함께 받는 혜택"]
calls_to_action = ["지금 가입하세요", "가입하고 시작하기", "혜택 확인하기", "오늘 가입하기"]"#,
    );
    write(base, "config/campaigns/kr_bred.toml", &toml);
    let (mut daemon, addr) = start(base);
    let spend = || {
        let (status, body) = call(addr, "GET", "/v1/campaigns/kr_bred", OPERATOR, None);
        assert_eq!(status, 200, "{body}");
        body["spend"].as_f64().unwrap_or(0.0)
    };
    let detail = |request: &Value| {
        call(
            addr,
            "GET",
            &format!("/v1/approvals/{}", id_of(request)),
            OPERATOR,
            None,
        )
        .1
    };
    let first = next_pending(addr, "creatives", &[]);
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .contains("`general` is sensitive"),
        "{first}"
    );
    let held = detail(&first)["request"]["choice"]["proposal"]["held"]
        .as_array()
        .cloned()
        .expect("the held creatives");
    assert!(held.len() > 4, "{held:?}");
    assert!(held.iter().all(|h| {
        h["creative"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    }));
    // Nothing is sent while every creative waits.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(spend(), 0.0);

    // All but two of them, amended in: only those reach the market.
    let chosen: Vec<String> = held[2..]
        .iter()
        .map(|h| h["arm"]["variant"].as_str().unwrap().to_owned())
        .collect();
    let path = format!("/v1/approvals/{}/approve", id_of(&first));
    let (status, body) = call(
        addr,
        "POST",
        &path,
        OPERATOR,
        Some(json!({"reason": "not those two", "amend": {"variants": ["not-a-variant"]}})),
    );
    assert_eq!((status, code(&body)), (422, "invalid_amendment"), "{body}");
    let (status, body) = call(
        addr,
        "POST",
        &path,
        OPERATOR,
        Some(json!({"reason": "not those two", "amend": {"variants": chosen}})),
    );
    assert_eq!(status, 200, "{body}");
    wait_for("the first buys", Duration::from_secs(30), || {
        (spend() > 0.0).then_some(())
    });

    // A bred generation waits too; approved, it joins the running experiment.
    let bred = next_pending(addr, "creatives", &[id_of(&first)]);
    let proposal = detail(&bred)["request"]["choice"]["proposal"].clone();
    assert!(
        proposal["batch"]
            .as_str()
            .is_some_and(|b| b.starts_with("gen/")),
        "{proposal}"
    );
    let mut approved = chosen.clone();
    approved.extend(
        proposal["held"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["arm"]["variant"].as_str().map(str::to_owned)),
    );
    let (status, body) = call(
        addr,
        "POST",
        &format!("/v1/approvals/{}/approve", id_of(&bred)),
        OPERATOR,
        Some(json!({"reason": "fine for this season"})),
    );
    assert_eq!(status, 200, "{body}");
    let joined = wait_for("the bred creatives joined", Duration::from_secs(30), || {
        decision(addr, "kr_bred", "optimization", |d| {
            d["kind"] == "arms_joined" && d["inputs"]["approval"] == bred["id"]
        })
    });
    assert!(
        joined["choice"]["joined"]
            .as_array()
            .is_some_and(|j| !j.is_empty()),
        "{joined}"
    );
    // A few more days on the approved variants only.
    let days = spend();
    wait_for("more days bought", Duration::from_secs(30), || {
        (spend() > days).then_some(())
    });
    daemon.terminate(Duration::from_secs(20));
    drop(daemon);

    // Every variant observed in the market is one a person approved; the two left out never were.
    let kb = open_kb(&base.join("data/kb"));
    let records = kb
        .by_campaign(&campaignd::kb::Scope::AllTenants, &"kr_bred".into())
        .expect("the campaign's records")
        .records;
    let mut observed = std::collections::BTreeSet::new();
    for record in &records {
        if let campaignd::kb::Record::Outcome(o) = record
            && o.kind == "observations"
        {
            for obs in o.metrics["observations"].as_array().into_iter().flatten() {
                observed.insert(obs["variant"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert!(!observed.is_empty());
    assert!(
        observed.iter().all(|v| approved.contains(v)),
        "{observed:?} vs {approved:?}"
    );
    for left_out in &held[..2] {
        assert!(!observed.contains(left_out["arm"]["variant"].as_str().unwrap()));
    }
}

#[test]
fn an_answer_or_an_expiry_runs_the_held_day_at_once_not_at_the_next_campaign_day() {
    // A campaign day every two minutes: what happens within seconds is the answer's doing.
    let slow = 720;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, "autonomy = \"manual\"", "");
    let (mut daemon, addr) = start_at(base, slow);
    let first = next_pending(addr, "buys", &[]);
    let path = format!("/v1/approvals/{}/approve", id_of(&first));
    let (status, body) = call(addr, "POST", &path, GLOBEX, Some(json!({"reason": "go"})));
    assert_eq!(status, 200, "{body}");
    let bought = wait_for("the approved buys bought", Duration::from_secs(20), || {
        decision(addr, "globex_fall", "orchestrator", |d| {
            d["kind"] == "approval_applied" && d["inputs"]["request"] == first["id"]
        })
    });
    assert!(
        bought["choice"]
            .as_str()
            .unwrap()
            .contains("placements bought"),
        "{bought}"
    );
    daemon.terminate(Duration::from_secs(20));
    drop(daemon);

    // An expiry: its default applies as soon as the request is past its time.
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(
        base,
        "autonomy = \"manual\"",
        "[approvals.buys]\nafter_minutes = 0\non_expiry = \"reject\"\n",
    );
    let (mut daemon, addr) = start_at(base, slow);
    let expired = wait_for("an expired request", Duration::from_secs(20), || {
        approvals(addr, OPERATOR, "state=expired")
            .into_iter()
            .next()
    });
    wait_for(
        "the day passed without buys",
        Duration::from_secs(20),
        || {
            decision(addr, "globex_fall", "orchestrator", |d| {
                d["kind"] == "approval_applied" && d["inputs"]["request"] == expired["id"]
            })
        },
    );
    assert_eq!(spend(addr), 0.0);
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn the_files_autonomy_is_in_force_after_a_restart_and_requests_of_a_finished_campaign_are_withdrawn()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    // Every budget move waits; the campaign lasts six days.
    deployment(
        base,
        "autonomy = \"autonomous\"",
        "[approvals]\nbudget_move_share = 0.0\nahead_of_pace = 10.0\n",
    );
    let file = "config/campaigns/globex_fall.toml";
    write(
        base,
        file,
        &format!(
            "autonomy = \"autonomous\"\n{}",
            us_goal_toml("globex_fall", 100_000, 6)
        ),
    );
    let (mut daemon, addr) = start_at(base, 3_600);
    wait_for("a first day bought", Duration::from_secs(30), || {
        decision(addr, "globex_fall", "optimization", |d| {
            d["kind"] == "forecast"
        })
    });
    assert!(
        approvals(addr, OPERATOR, "state=all").is_empty(),
        "autonomous asks nothing"
    );
    daemon.terminate(Duration::from_secs(20));
    drop(daemon);

    // The file now says manual: the planned campaign decides under it from its next day.
    write(
        base,
        file,
        &format!(
            "autonomy = \"manual\"\n{}",
            us_goal_toml("globex_fall", 100_000, 6)
        ),
    );
    let (mut daemon, addr) = start(base);
    let asked = next_pending(addr, "buys", &[]);
    // Approved, the days run on to the deadline; what still waits then is withdrawn.
    let mut seen = Vec::new();
    let mut next = Some(asked);
    while let Some(request) = next {
        seen.push(id_of(&request));
        let path = format!("/v1/approvals/{}/approve", id_of(&request));
        let (status, body) = call(addr, "POST", &path, GLOBEX, Some(json!({"reason": "go"})));
        assert!(status == 200 || status == 409, "{body}");
        next = wait_for(
            "the next request or the end",
            Duration::from_secs(30),
            || {
                let pending = approvals(addr, OPERATOR, "state=pending&kind=buys");
                if let Some(p) = pending.into_iter().find(|a| !seen.contains(&id_of(a))) {
                    return Some(Some(p));
                }
                let (_, c) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
                (c["state"] == "ended").then_some(None)
            },
        );
    }
    assert!(approvals(addr, OPERATOR, "state=pending").is_empty());
    let withdrawn = approvals(addr, OPERATOR, "state=expired");
    assert!(
        !withdrawn.is_empty(),
        "a budget move still waited at the end"
    );
    assert!(
        withdrawn.iter().all(|w| w["answer"]["by"] == "campaignd"
            && w["answer"]["why"]
                .as_str()
                .is_some_and(|y| y.starts_with("withdrawn"))),
        "{withdrawn:?}"
    );
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn the_command_line_lists_approves_and_is_told_of_a_second_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, "autonomy = \"manual\"", "");
    let (mut daemon, addr) = start(base);
    let request = next_pending(addr, "buys", &[]);
    let id = id_of(&request);
    let cli = |args: &[&str]| {
        let mut command = campaignd();
        command
            .args(args)
            .current_dir(base)
            .env("CAMPAIGND__API__LISTEN", addr.to_string())
            .env("CAMPAIGND_TOKEN", GLOBEX);
        crate::support::run(&mut command, None)
    };
    let table = cli(&["approvals", "--kind", "buys"]);
    assert_eq!(table.code, Some(0), "{}", table.stderr);
    assert!(table.stdout.contains(&id), "{}", table.stdout);
    let json = cli(&["approvals", "--state", "all", "--json"]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let listed: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert!(
        listed["approvals"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["id"] == id.as_str())),
        "{listed}"
    );
    let approved = cli(&["approve", &id, "--reason", "looks right"]);
    assert_eq!(approved.code, Some(0), "{}", approved.stderr);
    assert!(approved.stdout.contains("approved"), "{}", approved.stdout);
    let again = cli(&["reject", &id, "--reason", "changed my mind"]);
    assert_eq!(again.code, Some(1), "{}", again.stdout);
    assert!(
        again.stderr.contains("approval_answered") || again.stderr.contains("answered"),
        "{}",
        again.stderr
    );
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn a_campaign_removed_by_a_reload_has_its_pending_requests_withdrawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, "autonomy = \"manual\"", "");
    let (mut daemon, addr) = start(base);
    let request = next_pending(addr, "buys", &[]);
    std::fs::remove_file(base.join("config/campaigns/globex_fall.toml")).expect("removed");
    let (status, body) = call(addr, "POST", "/v1/reload", OPERATOR, Some(json!({})));
    assert_eq!(status, 200, "{body}");
    let withdrawn = wait_for("the request withdrawn", Duration::from_secs(30), || {
        approvals(addr, OPERATOR, "state=expired")
            .into_iter()
            .find(|a| a["id"] == request["id"])
    });
    assert_eq!(withdrawn["answer"]["by"], "campaignd", "{withdrawn}");
    assert!(
        withdrawn["answer"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("removed from the configuration")),
        "{withdrawn}"
    );
    assert!(approvals(addr, OPERATOR, "state=pending").is_empty());
    daemon.terminate(Duration::from_secs(20));
}
