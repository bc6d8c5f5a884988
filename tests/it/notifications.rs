//! Approval notifications through the real binary to a real HTTP receiver on 127.0.0.1: every
//! delivery is signed (HMAC-SHA256 over the timestamp and the body), a failed one is retried with
//! the same delivery id and counted in the metrics, and new requests, escalations and expiries
//! are each told.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::approvals::{deployment, metrics, start};
use crate::support::wait_for;

const SECRET: &str = "webhook-signing-secret-0001";

/// One POST the receiver got: its headers (lowercase names) and its body.
#[derive(Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether it was answered 204 (else 503).
    delivered: bool,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let delivery = self.header("x-campaignd-delivery");
        write!(f, "{delivery} (delivered: {}) {body}", self.delivered)
    }
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on 127.0.0.1 that answers 503 to its first `failing` requests and 204 to
/// the rest; it stops when dropped.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(failing: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("an address");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let served = AtomicUsize::new(0);
        let thread = {
            let (got, stop) = (Arc::clone(&got), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let fail = served.fetch_add(1, Ordering::Relaxed) < failing;
                            if let Some(received) = serve(stream, fail) {
                                got.lock().expect("the list").push(received);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Receiver {
            addr,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/campaignd", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("the list").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request and answers it (503 when `fail`, else 204), closing the connection.
fn serve(stream: TcpStream, fail: bool) -> Option<Received> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let status = if fail {
        "503 Service Unavailable"
    } else {
        "204 No Content"
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    Some(Received {
        headers,
        body,
        delivered: !fail,
    })
}

/// The `[webhook]` table for `receiver`, with fast retries.
fn webhook(receiver: &Receiver, escalate_after: f64) -> String {
    format!(
        "[webhook]\nurl = \"{}\"\nsecret = \"{SECRET}\"\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\nescalate_after = {escalate_after}\n",
        receiver.url()
    )
}

/// Checks a delivery's signature and timestamp as a receiver would.
fn assert_signed(received: &Received) {
    let timestamp: i64 = received
        .header("x-campaignd-timestamp")
        .parse()
        .expect("a unix timestamp");
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 300,
        "{received:?}"
    );
    let expected =
        campaignd::campaign::notifications::signature(SECRET.as_bytes(), timestamp, &received.body)
            .expect("a signature");
    assert_eq!(received.header("x-campaignd-signature"), expected);
    let body = received.json();
    assert_eq!(
        body["delivery"].as_str(),
        Some(received.header("x-campaignd-delivery"))
    );
    assert_eq!(
        body["event"].as_str(),
        Some(received.header("x-campaignd-event"))
    );
}

#[test]
fn requests_and_expiries_are_sent_signed_and_a_failed_delivery_is_retried() {
    let receiver = Receiver::start(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(
        base,
        "autonomy = \"manual\"",
        &format!(
            "[approvals.buys]\nafter_minutes = 0\non_expiry = \"reject\"\n\n{}",
            webhook(&receiver, 1.0)
        ),
    );
    let (mut daemon, addr) = start(base);
    // Two refused attempts, then deliveries: wait until both refused ones were delivered on a
    // retry and some request's expiry was delivered after the request itself.
    let delivered = |got: &[Received], delivery: &str| {
        got.iter()
            .any(|r| r.delivered && r.header("x-campaignd-delivery") == delivery)
    };
    let (id, got) = wait_for(
        "a request and its expiry told, and the refused deliveries retried",
        Duration::from_secs(60),
        || {
            let got = receiver.received();
            let retried = got.len() > 2
                && got[..2]
                    .iter()
                    .all(|r| delivered(&got, r.header("x-campaignd-delivery")));
            let told = |event: &str| -> Vec<String> {
                got.iter()
                    .filter(|r| r.delivered)
                    .map(Received::json)
                    .filter(|b| b["event"] == event)
                    .filter_map(|b| b["approval"]["id"].as_str().map(str::to_owned))
                    .collect()
            };
            let requested = told("approval.requested");
            let expired = told("approval.expired")
                .into_iter()
                .find(|id| requested.contains(id))?;
            retried.then_some((expired, got))
        },
    );
    assert!(!got[0].delivered && !got[1].delivered, "{got:?}");
    for received in &got {
        assert_signed(received);
    }
    let body = got
        .iter()
        .filter(|r| r.delivered)
        .map(Received::json)
        .find(|b| b["event"] == "approval.expired" && b["approval"]["id"] == id.as_str())
        .expect("the expiry");
    assert_eq!(body["state"], "expired", "{body}");
    assert_eq!(body["approval"]["answer"]["by"], "expiry", "{body}");
    assert_eq!(body["approval"]["kind"], "buys", "{body}");
    let scraped = metrics(addr);
    assert!(
        scraped
            .lines()
            .any(|l| l.starts_with("campaignd_webhook_deliveries_total")
                && l.contains("result=\"failed\"")),
        "{scraped}"
    );
    assert!(
        scraped
            .lines()
            .any(|l| l.starts_with("campaignd_webhook_deliveries_total")
                && l.contains("result=\"delivered\"")),
        "{scraped}"
    );
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn a_request_unanswered_past_its_share_of_time_is_escalated() {
    let receiver = Receiver::start(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    // Every budget move waits a minute for a person; after 1 % of it, it is escalated.
    deployment(
        base,
        "autonomy = \"supervised\"",
        &format!(
            "[approvals]\nbudget_move_share = 0.0\nahead_of_pace = 10.0\n\n[approvals.budget_move]\nafter_minutes = 1\non_expiry = \"reject\"\n\n{}",
            webhook(&receiver, 0.01)
        ),
    );
    let (mut daemon, _addr) = start(base);
    let escalated = wait_for("an escalation", Duration::from_secs(60), || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.header("x-campaignd-event") == "approval.escalated")
    });
    assert_signed(&escalated);
    let body = escalated.json();
    assert_eq!(body["state"], "pending", "{body}");
    assert_eq!(body["approval"]["kind"], "budget_move", "{body}");
    let told_first = receiver.received().iter().any(|r| {
        r.header("x-campaignd-event") == "approval.requested"
            && r.json()["approval"]["id"] == body["approval"]["id"]
    });
    assert!(told_first, "the request itself was not told");
    daemon.terminate(Duration::from_secs(20));
}
