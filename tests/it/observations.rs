//! Observations through the real HTTP API of a daemon running the five shipped agents on a manual
//! clock, with `[market] source = "api"`: values beyond the documented bounds, a channel or segment
//! that is not the variant's, a window outside the campaign or its day, and batches for a campaign
//! that reached its goal or whose deadline passed are each refused per item with their code and
//! never recorded, and the campaign's figures stay finite. The decisions the API lists carry the
//! wall-clock time they were recorded.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use campaignd::agents;
use campaignd::agents::ledger;
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::settings::EnvOverrides;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{bounded, copy_shipped, load_settings, us_goal_toml, wait_for_async, write};

const OPERATOR: &str = "observations-operator-token-0123";
const DAY: Duration = Duration::from_secs(86_400);

/// A long campaign the bounds are tried on, one whose target of 1 is reached on its first day,
/// and one of two days whose deadline the clock then passes.
const CAMPAIGNS: [(&str, u64, i64); 3] = [
    ("globex_bounds", 100_000, 30),
    ("globex_reached", 1, 30),
    ("globex_short", 100_000, 2),
];

fn deployment(base: &Path) -> std::path::PathBuf {
    let abs = |p: &str| base.join(p).display().to_string();
    copy_shipped(base, "agents");
    copy_shipped(base, "config/tenants");
    for (id, target, days) in CAMPAIGNS {
        write(
            base,
            &format!("config/campaigns/{id}.toml"),
            &us_goal_toml(id, target, days),
        );
    }
    let tokens = write(
        base,
        "tokens.toml",
        &format!("[[tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n"),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600))
            .expect("chmod tokens");
    }
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nagents_dir = {:?}\ncampaigns_dir = {:?}\nshutdown_timeout_secs = 10\n\n\
             [clock]\nmode = \"manual\"\nstart = 2026-09-01T00:00:00Z\n\n\
             [market]\nsource = \"api\"\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\ntokens_file = {:?}\n",
            abs("data"),
            abs("agents"),
            abs("config/campaigns"),
            tokens.display().to_string(),
        ),
    );
    base.join("config/campaignd.toml")
}

/// One request on its own connection; the status and the JSON body.
async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(b).expect("json"));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {OPERATOR}\r\n"
    );
    match &body {
        Some(body) => head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )),
        None if method == "POST" => head.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send");
    if let Some(body) = &body {
        stream.write_all(body).await.expect("send body");
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let mut rest = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        rest = dechunk(&rest);
    }
    let json = serde_json::from_slice(&rest).unwrap_or(Value::Null);
    (status, json)
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
    body
}

async fn decisions(addr: SocketAddr, campaign: &str) -> Vec<Value> {
    let (status, page) = call(
        addr,
        "GET",
        &format!("/v1/campaigns/{campaign}/decisions?limit=1000"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["decisions"].as_array().cloned().unwrap_or_default()
}

/// The first arm of the campaign's experiment, once the agents have set it up.
async fn first_arm(addr: SocketAddr, campaign: &str) -> Value {
    wait_for_async(
        &format!("the experiment of {campaign}"),
        Duration::from_secs(120),
        || async move {
            decisions(addr, campaign)
                .await
                .iter()
                .find(|d| d["kind"] == "experiment")
                .and_then(|d| d["choice"]["arms"].get(0).cloned())
        },
    )
    .await
}

/// A valid observation of `arm` on `day` of a campaign starting on 2026-09-01.
fn observation(arm: &Value, day: i64) -> Value {
    let start: DateTime<Utc> = "2026-09-01T00:00:00Z".parse().expect("time");
    let from = start + chrono::Duration::days(day);
    json!({
        "channel": arm["channel"], "segment": arm["segment"], "variant": arm["variant"],
        "window_start": from, "window_end": from + chrono::Duration::days(1),
        "impressions": 1000, "clicks": 60, "conversions": 5, "spend": 12.5
    })
}

fn with(mut item: Value, changes: Value) -> Value {
    if let (Some(item), Some(changes)) = (item.as_object_mut(), changes.as_object()) {
        item.extend(changes.clone());
    }
    item
}

async fn post(addr: SocketAddr, campaign: &str, day: u32, items: Vec<Value>) -> Value {
    let batch = json!({ "campaign": campaign, "day": day, "observations": items });
    let (status, answer) = call(addr, "POST", "/v1/observations", Some(&batch)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn codes(answer: &Value, index: usize) -> Vec<String> {
    answer["items"][index]["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .filter_map(|p| p["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn goal(id: &str) -> CampaignGoal {
    let (_, target, days) = CAMPAIGNS
        .into_iter()
        .find(|(c, ..)| *c == id)
        .expect("a campaign");
    toml::from_str(&us_goal_toml(id, target, days)).expect("a goal")
}

/// The observation outcomes the knowledge base holds for a campaign.
fn outcomes(daemon: &Daemon, id: &str) -> usize {
    let goal = goal(id);
    daemon
        .kb()
        .by_campaign(&ledger::scope(&goal), &goal.id)
        .expect("query")
        .records
        .iter()
        .filter(|r| r.as_outcome().is_some())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_observations_are_refused_per_item_and_the_figures_stay_finite() {
    bounded(Duration::from_secs(300), async {
        let wall_before = Utc::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = deployment(dir.path());
        let settings = load_settings(dir.path(), Some(&config), EnvOverrides::new());
        let daemon = Daemon::start(settings, Some(config), agents::registry())
            .await
            .expect("daemon starts");
        let addr = daemon.api_addr();
        let arm = first_arm(addr, "globex_bounds").await;
        let reached_arm = first_arm(addr, "globex_reached").await;
        let short_arm = first_arm(addr, "globex_short").await;

        // Every decision carries the wall-clock time it was recorded, beside the campaign's time
        // (the manual clock, months before the wall clock).
        let listed = decisions(addr, "globex_bounds").await;
        assert!(!listed.is_empty());
        let wall_after = Utc::now();
        for decision in &listed {
            let recorded: DateTime<Utc> = decision["recorded_at"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no recorded_at: {decision}"));
            assert!(
                wall_before <= recorded && recorded <= wall_after,
                "{recorded} is not the wall clock: {decision}"
            );
            let decided: DateTime<Utc> = decision["decided_at"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("decided_at");
            assert!(decided < wall_before, "{decision}");
        }

        // One good item, and one of each kind of bad one.
        let good = observation(&arm, 0);
        let other_channel = if arm["channel"] == "email" {
            "social"
        } else {
            "email"
        };
        let items = vec![
            good.clone(),
            with(good.clone(), json!({ "spend": 1e308 })),
            with(
                good.clone(),
                json!({ "impressions": i64::MAX, "clicks": i64::MAX, "conversions": i64::MAX }),
            ),
            with(good.clone(), json!({ "channel": other_channel })),
            with(good.clone(), json!({ "segment": "retirees" })),
            with(
                good.clone(),
                json!({ "window_start": "2026-08-20T00:00:00Z", "window_end": "2026-08-21T00:00:00Z" }),
            ),
            with(
                good.clone(),
                json!({ "window_start": "2026-09-03T00:00:00Z", "window_end": "2026-09-04T00:00:00Z" }),
            ),
        ];
        let answer = post(addr, "globex_bounds", 0, items).await;
        assert_eq!(
            (&answer["recorded"], &answer["rejected"]),
            (&json!(1), &json!(6)),
            "{answer}"
        );
        assert_eq!(answer["items"][0]["status"], "recorded", "{answer}");
        assert_eq!(codes(&answer, 1), ["above_maximum"]);
        assert_eq!(codes(&answer, 2), ["above_maximum"; 3]);
        assert_eq!(codes(&answer, 3), ["channel_mismatch"]);
        assert_eq!(codes(&answer, 4), ["segment_mismatch"]);
        assert_eq!(codes(&answer, 5), ["window_outside_campaign"]);
        assert_eq!(codes(&answer, 6), ["window_not_in_day"]);
        let message = answer["items"][1]["problems"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("spend") && message.contains("1e12"), "{message}");
        assert_eq!(outcomes(&daemon, "globex_bounds"), 1, "only the good item");

        // A target of 1 is reached with day 0's five conversions, at the next day's tick.
        let reached = post(addr, "globex_reached", 0, vec![observation(&reached_arm, 0)]).await;
        assert_eq!(reached["recorded"], 1, "{reached}");
        // A day the loop could not complete (a timeout on a loaded machine) runs again at the
        // next step of the clock, so the clock moves on until the goal is recorded.
        let clock = daemon.runtime().clock().clone();
        wait_for_async(
            "globex_reached to record its goal",
            Duration::from_secs(120),
            || {
                clock.advance(DAY).expect("manual clock");
                async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    decisions(addr, "globex_reached")
                        .await
                        .iter()
                        .any(|d| d["kind"] == "goal_achieved")
                        .then_some(())
                }
            },
        )
        .await;
        let split_days = |decisions: &[Value]| {
            decisions
                .iter()
                .filter(|d| d["kind"] == "traffic_split" || d["kind"] == "forecast")
                .count()
        };
        let before = split_days(&decisions(addr, "globex_reached").await);
        let after_goal = post(addr, "globex_reached", 1, vec![observation(&reached_arm, 1)]).await;
        assert_eq!(
            (&after_goal["recorded"], &after_goal["rejected"], &after_goal["delivered"]),
            (&json!(0), &json!(1), &json!(0)),
            "{after_goal}"
        );
        assert_eq!(codes(&after_goal, 0), ["campaign_finished"]);
        assert_eq!(outcomes(&daemon, "globex_reached"), 1);
        assert_eq!(
            split_days(&decisions(addr, "globex_reached").await),
            before,
            "nobody was told, so nothing was decided"
        );

        // The clock passes the short campaign's deadline (09-03) by more than a day.
        daemon
            .runtime()
            .clock()
            .advance(3 * DAY)
            .expect("manual clock");
        let late = post(addr, "globex_short", 1, vec![observation(&short_arm, 1)]).await;
        assert_eq!(
            (&late["recorded"], &late["rejected"], &late["delivered"]),
            (&json!(0), &json!(1), &json!(0)),
            "{late}"
        );
        assert_eq!(codes(&late, 0), ["campaign_finished"]);
        assert_eq!(outcomes(&daemon, "globex_short"), 0);

        // The figures count the good item only, and every one is a finite number.
        let campaign = wait_for_async(
            "globex_bounds to report its first day's figures",
            Duration::from_secs(120),
            || async move {
                let (status, campaigns) = call(addr, "GET", "/v1/campaigns", None).await;
                assert_eq!(status, 200, "{campaigns}");
                campaigns["campaigns"]
                    .as_array()
                    .and_then(|all| all.iter().find(|c| c["id"] == "globex_bounds").cloned())
                    .filter(|c| c["conversions"].as_u64().is_some_and(|n| n > 0))
            },
        )
        .await;
        assert_eq!(campaign["conversions"], 5, "{campaign}");
        for field in ["spend", "progress"] {
            let value = campaign[field].as_f64();
            assert!(
                value.is_some_and(f64::is_finite),
                "{field} is not a finite number: {campaign}"
            );
        }
        assert_eq!(campaign["spend"], 12.5, "{campaign}");
        daemon.shutdown().await.expect("shutdown");
    })
    .await;
}
