//! Orders out, through the real binary to real receivers on 127.0.0.1: a receiver that fails a
//! random 30 % of requests and answers some too slowly gets every order of a run with a kill -9
//! in the middle at least once, applies each key once, and no order is lost; every delivery is
//! signed and a tampered body fails the check; an order that cannot be delivered is dead-lettered,
//! holds its campaign and shows on /readyz until an operator retries it from the CLI; the files
//! connector writes send lists, and a Google Ads Editor CSV that reads back under its column rules.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use campaignd::campaign::connectors::{Connector, FilesConnector, signature};
use campaignd::domain::campaign::Channel;
use campaignd::domain::compliance::{Message, MessageChannel};
use campaignd::domain::order::{Creative, Order, OrderBody, order_key};
use campaignd::domain::platform::EDITOR_COLUMNS;
use serde_json::Value;

use crate::approvals::{OPERATOR, call, deployment, metrics, start};
use crate::support::{campaignd, run, wait_for};

const SECRET: &str = "order-signing-secret-000001";

/// What a receiver saw.
#[derive(Default)]
struct Seen {
    /// Key → deliveries received with a valid signature (applied the first time only).
    received: BTreeMap<String, u32>,
    /// Keys applied, in the order they were.
    applied: Vec<String>,
    failed: u32,
    slow: u32,
    bad_signatures: u32,
    /// A valid delivery as sent: its timestamp, signature and body.
    sample: Option<(i64, String, Vec<u8>)>,
}

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 30 % refused (503), 10 % applied but answered after the client's timeout.
    Flaky,
    /// Every request refused until [`Receiver::heal`].
    Down,
}

struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    healthy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("an address");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let healthy = Arc::new(AtomicBool::new(mode == Mode::Flaky));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, h, st) = (Arc::clone(&seen), Arc::clone(&healthy), Arc::clone(&stop));
        let counter = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (s, h, counter) =
                            (Arc::clone(&s), Arc::clone(&h), Arc::clone(&counter));
                        std::thread::spawn(move || serve(stream, mode, &s, &h, &counter));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            addr,
            seen,
            healthy,
            stop,
        }
    }

    fn heal(&self) {
        self.healthy.store(true, Ordering::Relaxed);
    }

    fn connector(&self) -> String {
        format!(
            "[outbox]\nmax_attempts = {}\nbackoff_initial_ms = 50\nbackoff_max_ms = 400\n\n\
             [connectors.hook]\nkind = \"webhook\"\nurl = \"http://{}/orders\"\nsecret = \"{SECRET}\"\ntimeout_secs = 1\n",
            if self.healthy.load(Ordering::Relaxed) {
                100
            } else {
                2
            },
            self.addr
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A fixed pseudo-random sequence (xorshift), so a run's fates do not depend on a seed source.
fn fate(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x % 100
}

fn serve(
    stream: TcpStream,
    mode: Mode,
    seen: &Mutex<Seen>,
    healthy: &AtomicBool,
    counter: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    // A connection closed before a whole request (a client killed or timed out mid-way) is no
    // delivery.
    let mut line = String::new();
    if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let answer = |status: &str| {
        let mut stream = &stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let timestamp: i64 = headers
        .get("x-campaignd-timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let signed = headers
        .get("x-campaignd-signature")
        .cloned()
        .unwrap_or_default();
    if !verified(timestamp, &signed, &body) {
        seen.lock().expect("seen").bad_signatures += 1;
        return answer("401 Unauthorized");
    }
    let key = headers.get("idempotency-key").cloned().unwrap_or_default();
    let n = counter.fetch_add(1, Ordering::Relaxed);
    // The first request is refused and the second answered too late, whatever the sequence says.
    let roll = match n {
        0 => 0,
        1 => 35,
        n => fate(n),
    };
    if !healthy.load(Ordering::Relaxed) || (mode == Mode::Flaky && roll < 30) {
        seen.lock().expect("seen").failed += 1;
        return answer("503 Service Unavailable");
    }
    {
        let mut seen = seen.lock().expect("seen");
        let count = seen.received.entry(key.clone()).or_default();
        *count += 1;
        if *count == 1 {
            seen.applied.push(key);
        }
        seen.sample.get_or_insert((timestamp, signed, body));
    }
    if mode == Mode::Flaky && roll < 40 {
        // Applied, but answered after the client gave up: it sends the order again.
        seen.lock().expect("seen").slow += 1;
        std::thread::sleep(Duration::from_millis(1_500));
    }
    answer("200 OK");
}

/// The check a receiver makes: the HMAC over `<timestamp>.<body>` with the shared secret.
fn verified(timestamp: i64, signed: &str, body: &[u8]) -> bool {
    signature(SECRET.as_bytes(), timestamp, body).is_ok_and(|expected| expected == signed)
}

/// Every order of the knowledge base's outbox, read after the daemon stopped.
fn outbox_entries(base: &Path) -> Vec<Value> {
    let db = sled::open(base.join("data/kb")).expect("the knowledge base opens");
    let tree = db.open_tree("aux/outbox").expect("the outbox");
    tree.scan_prefix(b"o\0")
        .map(|entry| {
            let (_, value) = entry.expect("an entry");
            serde_json::from_slice(&value).expect("an outbox entry")
        })
        .collect()
}

fn orders(addr: SocketAddr, query: &str) -> Vec<Value> {
    let (status, body) = call(
        addr,
        "GET",
        &format!("/v1/campaigns/globex_fall/orders?limit=1000{query}"),
        OPERATOR,
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["orders"].as_array().cloned().unwrap_or_default()
}

const HEAD: &str =
    "autonomy = \"autonomous\"\nconnectors = { email = \"hook\", social = \"hook\" }";

#[test]
fn every_order_arrives_at_a_flaky_receiver_once_across_a_kill() {
    let receiver = Receiver::start(Mode::Flaky);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, HEAD, &receiver.connector());
    let (mut daemon, _) = start(base);
    wait_for("a few orders applied", Duration::from_secs(60), || {
        (receiver.seen.lock().expect("seen").applied.len() >= 4).then_some(())
    });
    daemon.kill();

    let (mut daemon, addr) = start(base);
    wait_for(
        "the campaign over and its orders delivered",
        Duration::from_secs(180),
        || {
            let (_, campaign) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
            let over = matches!(campaign["state"].as_str(), Some("ended" | "achieved"));
            let open = orders(addr, "")
                .iter()
                .filter(|o| o["state"] != "delivered")
                .count();
            (over && open == 0).then_some(())
        },
    );
    let text = metrics(addr);
    assert!(
        text.contains("campaignd_orders_delivered_total{connector=\"hook\""),
        "{text}"
    );
    assert!(
        text.contains("campaignd_order_delivery_failures_total{connector=\"hook\""),
        "{text}"
    );
    daemon.terminate(Duration::from_secs(30));

    let entries: Vec<Value> = outbox_entries(base)
        .into_iter()
        .filter(|e| e["connector"] == "hook")
        .collect();
    let keys: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| e["order"]["key"].as_str().map(str::to_owned))
        .collect();
    assert!(
        keys.len() >= 8,
        "a campaign's days make orders: {}",
        keys.len()
    );
    assert!(
        entries.iter().all(|e| e["state"] == "delivered"),
        "every order delivered"
    );
    let kinds: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["order"]["body"]["kind"].as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["budget", "buys", "creatives"]));
    let seen = receiver.seen.lock().expect("seen");
    let applied: BTreeSet<String> = seen.applied.iter().cloned().collect();
    assert_eq!(applied.len(), seen.applied.len(), "each key applied once");
    assert_eq!(
        applied, keys,
        "every order arrived, and nothing that is not an order"
    );
    assert!(
        seen.failed > 0 && seen.slow > 0,
        "the receiver failed and was slow"
    );
    assert!(
        seen.received.values().any(|n| *n > 1),
        "a slow answer made a repeat, which was not applied again"
    );
    assert_eq!(seen.bad_signatures, 0);

    // A body changed on the way fails the signature.
    let (timestamp, signed, body) = seen.sample.clone().expect("a delivery");
    assert!(verified(timestamp, &signed, &body));
    let mut tampered = body.clone();
    let at = tampered
        .iter()
        .position(|b| b.is_ascii_digit())
        .expect("a digit in the body");
    tampered[at] = if tampered[at] == b'9' {
        b'8'
    } else {
        tampered[at] + 1
    };
    assert!(!verified(timestamp, &signed, &tampered));
    assert!(
        !verified(timestamp + 1, &signed, &body),
        "nor does another timestamp"
    );
}

#[test]
fn an_undeliverable_order_holds_its_campaign_until_an_operator_retries_it() {
    let receiver = Receiver::start(Mode::Down);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base, HEAD, &receiver.connector());
    let (mut daemon, addr) = start(base);
    let dead = wait_for("a dead-lettered order", Duration::from_secs(60), || {
        let dead = orders(addr, "&state=dead_lettered");
        (!dead.is_empty()).then_some(dead)
    });
    let key = dead[0]["order"]["key"].as_str().expect("a key").to_owned();
    assert_eq!(dead[0]["failures"], 2);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{}",
        dead[0]
    );

    // Held: the day does not move, the campaign says why, readiness names the connector.
    let campaign = wait_for("the campaign held", Duration::from_secs(30), || {
        let (_, campaign) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
        (campaign["state"] == "held")
            .then_some(())
            .and(campaign["held"].as_str())
            .is_some_and(|h| h.contains("could not be delivered to `hook`"))
            .then_some(campaign)
    });
    std::thread::sleep(Duration::from_millis(1_000));
    let (_, later) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
    assert_eq!(later["day"], campaign["day"], "no day passes while held");
    let (status, ready) = call(addr, "GET", "/readyz", OPERATOR, None);
    assert_eq!(status, 503);
    assert!(
        ready["reasons"]
            .to_string()
            .contains("connector `hook` is failing"),
        "{ready}"
    );

    // The operator retries from the CLI once the receiver is back; the campaign goes on.
    receiver.heal();
    let cli = |args: &[&str]| {
        run(
            campaignd()
                .args(args)
                .arg("--config")
                .arg(base.join("config/campaignd.toml"))
                .env("CAMPAIGND_TOKEN", OPERATOR)
                .env("CAMPAIGND__API__LISTEN", addr.to_string()),
            None,
        )
    };
    for order in orders(addr, "&state=dead_lettered") {
        let key = order["order"]["key"].as_str().expect("a key");
        let retried = cli(&["orders", "retry", key, "--reason", "the receiver is back"]);
        assert_eq!(
            retried.code,
            Some(0),
            "{}{}",
            retried.stdout,
            retried.stderr
        );
    }
    wait_for("the campaign going on", Duration::from_secs(60), || {
        let (_, now) = call(addr, "GET", "/v1/campaigns/globex_fall", OPERATOR, None);
        (now["day"].as_u64() > campaign["day"].as_u64()).then_some(())
    });
    let first = wait_for(
        "the retried order delivered",
        Duration::from_secs(30),
        || {
            orders(addr, "&state=delivered")
                .into_iter()
                .find(|o| o["order"]["key"] == key.as_str())
        },
    );
    assert!(
        first["operator_note"]
            .as_str()
            .is_some_and(|n| n.contains("retried by ops")),
        "{first}"
    );
    let listed = cli(&["orders", "list", "globex_fall"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed.stdout.contains(&key) && listed.stdout.contains("delivered"),
        "{}",
        listed.stdout
    );
    let again = cli(&["orders", "cancel", &key, "--reason", "too late"]);
    assert_eq!(
        again.code,
        Some(1),
        "a delivered order is not cancelled: {}",
        again.stderr
    );
    let (status, _) = call(
        addr,
        "POST",
        "/v1/orders/ord_0/retry",
        OPERATOR,
        Some(serde_json::json!({ "reason": "x" })),
    );
    assert_eq!(status, 404);
    daemon.terminate(Duration::from_secs(30));
}

fn search_order(body: OrderBody) -> Order {
    let (tenant, campaign) = ("acme/kr_retail".into(), "kr_students".into());
    Order {
        key: order_key(&tenant, &campaign, "creatives/day/0/search/students"),
        tenant,
        campaign,
        step: "creatives/day/0/search/students".to_owned(),
        channel: Channel::Search,
        day: 0,
        currency: "KRW".to_owned(),
        body,
        created_at: "2026-09-01T00:00:00Z".parse().expect("a time"),
    }
}

#[tokio::test]
async fn the_ads_editor_csv_reads_back_under_its_column_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = FilesConnector {
        dir: dir.path().to_path_buf(),
    };
    let creative = |headline: &str, text: &str| Creative {
        variant: headline.to_owned(),
        headline: Some(headline.to_owned()),
        path: Some("event".to_owned()),
        message: Message::advert(MessageChannel::Search, text),
    };
    let ad = search_order(OrderBody::Creatives {
        segment: "students".to_owned(),
        landing_url: Some("https://abc-mart.example/spring".to_owned()),
        creatives: vec![
            creative(
                "ABC마트 봄 세일",
                "(광고) ABC마트: 새 학기 준비. 지금 확인하세요",
            ),
            creative(
                "새 학기 준비",
                "(광고) ABC마트: 전 구매 10% 할인. 가입하세요",
            ),
            creative(
                "학생 전용 혜택",
                "(광고) ABC마트: 새 학기 준비. 지금 확인하세요",
            ),
        ],
    });
    files.deliver(&ad).await.expect("written");
    let budget = search_order(OrderBody::Budget { daily: 45_000.0 });
    files.deliver(&budget).await.expect("written");

    let folder = dir.path().join("acme_kr_retail/kr_students/2026-09-01");
    let mut rows = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .expect("the dated folder")
        .map(|e| e.expect("a file").path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    for path in &names {
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("csv"));
        let mut reader = csv::Reader::from_path(path).expect("a CSV");
        let headers: Vec<String> = reader
            .headers()
            .expect("headers")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            headers, EDITOR_COLUMNS,
            "English headers, in Ads Editor's names"
        );
        for record in reader.records() {
            let record = record.expect("a row");
            rows.push(
                headers
                    .iter()
                    .cloned()
                    .zip(record.iter().map(str::to_owned))
                    .collect::<BTreeMap<String, String>>(),
            );
        }
    }
    let ad_row = rows
        .iter()
        .find(|r| r["Ad type"] == "Responsive search ad")
        .expect("the ad");
    let headlines: Vec<&String> = (1..=15)
        .map(|i| &ad_row[&format!("Headline {i}")])
        .filter(|h| !h.is_empty())
        .collect();
    let descriptions: Vec<&String> = (1..=4)
        .map(|i| &ad_row[&format!("Description {i}")])
        .filter(|d| !d.is_empty())
        .collect();
    assert!((3..=15).contains(&headlines.len()), "{headlines:?}");
    assert!((2..=4).contains(&descriptions.len()), "{descriptions:?}");
    for h in &headlines {
        assert!(
            unicode_width::UnicodeWidthStr::width(h.as_str()) <= 30,
            "{h}"
        );
    }
    for d in &descriptions {
        assert!(
            unicode_width::UnicodeWidthStr::width(d.as_str()) <= 90,
            "{d}"
        );
    }
    assert_eq!(ad_row["Ad group"], "students");
    assert!(ad_row["Final URL"].starts_with("https://"));
    assert!(ad_row["Labels"].contains(&ad.key));
    let budget_row = rows
        .iter()
        .find(|r| r["Budget type"] == "Daily")
        .expect("the budget");
    assert_eq!(
        budget_row["Budget"], "45000",
        "KRW in whole units, not micros"
    );

    // Delivered again, the same file is rewritten, not a second one.
    files.deliver(&budget).await.expect("written again");
    assert_eq!(std::fs::read_dir(&folder).expect("folder").count(), 2);

    // What the platform would refuse is never written.
    let micros = search_order(OrderBody::Budget {
        daily: 45_000_000_000.0,
    });
    let refused = files.deliver(&micros).await.expect_err("refused");
    assert!(refused.contains("micros"), "{refused}");
    let thin = search_order(OrderBody::Creatives {
        segment: "students".to_owned(),
        landing_url: None,
        creatives: vec![creative("봄 세일", "(광고) ABC마트")],
    });
    let refused = files.deliver(&thin).await.expect_err("refused");
    assert!(
        refused.contains("3 to 15") && refused.contains("final URL"),
        "{refused}"
    );
    assert_eq!(std::fs::read_dir(&folder).expect("folder").count(), 2);
}
