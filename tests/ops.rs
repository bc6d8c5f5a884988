//! Operating the real binary: `campaignd run --log-format json` writes only well-formed JSON lines
//! (no key twice, the correlation id on every line logged while an agent handles a message), its
//! `/metrics` shows the runtime's figures, and `campaignd status`, `campaignd campaigns` and
//! `campaignd trace ID` talk to it, failing clearly on a bad token or an unreachable daemon.
//!
//! One daemon serves every check, since starting one takes seconds; each wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use campaignd::settings::{EnvOverrides, Settings};
use serde_json::Value;

const OPERATOR_TOKEN: &str = "ops-test-token-0123456789abcdef";

/// A deployment in `base`: one operator token, a free port, and the embedded agents, campaigns and
/// accelerated clock (their folders are absent), data under `base/data`.
fn deployment(base: &Path) {
    std::fs::create_dir_all(base.join("config")).expect("config folder");
    std::fs::write(
        base.join("config/campaignd.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\ntokens = [{{ name = \"ops\", token = \"{OPERATOR_TOKEN}\" }}]\n"
        ),
    )
    .expect("write config");
}

/// What the daemon's stderr reader saw so far.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
}

struct Daemon {
    child: Child,
    seen: Arc<Mutex<Seen>>,
    addr: String,
    days: Receiver<()>,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_campaignd"));
        command
            .args(["run", "--log-format", "json"])
            .current_dir(base)
            .env("RUST_LOG", "campaignd=debug,info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CAMPAIGND") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().expect("start campaignd");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (day_tx, days) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().expect("stdout");
        for (stream, watch) in [
            (Box::new(stderr) as Box<dyn std::io::Read + Send>, true),
            (Box::new(stdout), false),
        ] {
            let seen = Arc::clone(&seen);
            let addr_tx = addr_tx.clone();
            let day_tx = day_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if watch {
                        if line.contains("API listening")
                            && let Ok(parsed) = serde_json::from_str::<Value>(&line)
                            && let Some(addr) = parsed["fields"]["addr"].as_str()
                        {
                            let _ = addr_tx.send(addr.to_owned());
                        }
                        if line.contains("\"campaign day\"") {
                            let _ = day_tx.send(());
                        }
                    }
                    if let Ok(mut seen) = seen.lock() {
                        seen.lines.push(line);
                    }
                }
            });
        }
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("campaignd did not log `API listening` within 60 s");
            }
        };
        Daemon {
            child,
            seen,
            addr,
            days,
        }
    }

    /// Waits for `count` campaign days to be logged (at most a minute in all).
    fn wait_days(&mut self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for _ in 0..count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.days.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    panic!("fewer than {count} campaign days within 60 s");
                }
            }
        }
    }

    /// SIGTERM, then a bounded wait for exit 0; every line it wrote.
    fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("campaignd did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "{exit:?}");
        // The readers finish once the pipes close; give them a moment to push the last lines.
        std::thread::sleep(Duration::from_millis(200));
        self.seen
            .lock()
            .map(|s| s.lines.clone())
            .unwrap_or_default()
    }
}

/// Runs a client command in `base` against `addr`, with `token` as `CAMPAIGND_TOKEN` if given.
fn client(base: &Path, addr: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_campaignd"));
    command.args(args).current_dir(base);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CAMPAIGND") {
            command.env_remove(name);
        }
    }
    command.env("CAMPAIGND__API__LISTEN", addr);
    if let Some(token) = token {
        command.env("CAMPAIGND_TOKEN", token);
    }
    command.output().expect("run the client")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A GET with the operator token, for what no client command prints (decisions, metrics).
fn get(addr: &str, path: &str) -> String {
    let mut response = ureq::get(&format!("http://{addr}{path}"))
        .header("Authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The keys of a JSON object, in order and with duplicates, at every depth (serde_json's own
/// `Value` would silently keep one of two equal keys).
fn duplicate_keys(line: &str) -> Result<Vec<String>, serde_json::Error> {
    struct Check(Vec<String>);
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Check {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for &mut Check {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if keys.contains(&key) {
                    self.0.push(key.clone());
                }
                keys.push(key);
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let mut check = Check(Vec::new());
    let mut de = serde_json::Deserializer::from_str(line);
    serde::de::DeserializeSeed::deserialize(&mut check, &mut de)?;
    de.end()?;
    Ok(check.0)
}

#[test]
fn the_duplicate_key_check_can_fail() {
    assert_eq!(
        duplicate_keys(r#"{"a":1,"b":{"c":1,"c":2},"a":3}"#).unwrap(),
        ["c", "a"]
    );
    assert!(
        duplicate_keys(r#"{"a":[{"x":1},{"x":2}]}"#)
            .unwrap()
            .is_empty()
    );
    assert!(duplicate_keys("{\"a\":").is_err());
}

#[test]
fn json_logs_metrics_and_the_client_commands_against_a_running_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base);
    let settings = Settings::load_from(base, None, EnvOverrides::new()).expect("valid deployment");
    let campaign_ids: Vec<String> = settings
        .campaigns
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert!(!campaign_ids.is_empty(), "the embedded campaigns load");

    let mut daemon = Daemon::start(base);
    daemon.wait_days(3);
    let addr = daemon.addr.clone();

    // status: ready, every agent running.
    let status = client(base, &addr, None, &["status"]);
    let out = text(&status.stdout);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{out}{}",
        text(&status.stderr)
    );
    assert!(
        out.contains(&format!("campaignd at {addr}: ready")),
        "{out}"
    );
    for agent in settings.enabled_agents() {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("{} ", agent.name)))
            .unwrap_or_else(|| panic!("no row for {} in\n{out}", agent.name));
        assert!(row.contains("running"), "{row}");
    }
    let json = client(base, &addr, None, &["status", "--json"]);
    let parsed: Value = serde_json::from_slice(&json.stdout).expect("status --json is JSON");
    assert_eq!(parsed["ready"], true, "{parsed}");
    assert!(
        parsed["agents"]
            .as_array()
            .is_some_and(|a| a.len() == settings.enabled_agents().count()),
        "{parsed}"
    );

    // campaigns: one row per configured campaign.
    let campaigns = client(base, &addr, None, &["campaigns"]);
    let out = text(&campaigns.stdout);
    assert_eq!(
        campaigns.status.code(),
        Some(0),
        "{out}{}",
        text(&campaigns.stderr)
    );
    assert!(out.starts_with("ID"), "{out}");
    for id in &campaign_ids {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} missing from\n{out}"
        );
    }

    // trace: every record of a decision's chain, one JSON object per line.
    let first = &campaign_ids[0];
    let page: Value =
        serde_json::from_str(&get(&addr, &format!("/v1/campaigns/{first}/decisions")))
            .expect("decisions are JSON");
    let correlation_id = page["decisions"][0]["correlation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no decision yet for {first}: {page}"))
        .to_owned();
    let trace = client(base, &addr, None, &["trace", &correlation_id]);
    let out = text(&trace.stdout);
    assert_eq!(trace.status.code(), Some(0), "{out}{}", text(&trace.stderr));
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!records.is_empty(), "{out}");
    for record in &records {
        assert_eq!(
            record["correlation_id"],
            correlation_id.as_str(),
            "{record}"
        );
        assert!(
            record["record"] == "decision" || record["record"] == "outcome",
            "{record}"
        );
    }
    let unknown = client(
        base,
        &addr,
        None,
        &["trace", "0193a8c2-5f1e-7b3a-9c4d-2e6f8a1b3c5d"],
    );
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown.stderr));
    assert!(
        text(&unknown.stderr).contains("404") && text(&unknown.stderr).contains("no decision"),
        "{}",
        text(&unknown.stderr)
    );

    // A bad token: the API's message, exit 2, and the secret is not echoed.
    let wrong = "wrong-token-0123456789abcdef";
    let refused = client(base, &addr, Some(wrong), &["campaigns"]);
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains(wrong), "{err}");

    // The runtime's own figures reach /metrics (the recorder is installed before the agents).
    let metrics = get(&addr, "/metrics");
    let handled = metrics
        .lines()
        .filter(|l| {
            l.starts_with("campaignd_messages_total{") && l.contains("agent=\"orchestrator\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(handled > 0.0, "{metrics}");
    assert!(
        metrics.contains("campaignd_request_duration_seconds"),
        "{metrics}"
    );

    let lines = daemon.stop();

    // Nothing listens any more: a clear message naming the address and the key.
    let gone = client(base, &addr, None, &["status"]);
    let err = text(&gone.stderr);
    assert_eq!(gone.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot reach campaignd at {addr}")) && err.contains("api.listen"),
        "{err}"
    );

    // Every line is one JSON object without a repeated key; inside a handling span, every line
    // carries the chain's correlation id.
    assert!(lines.len() > 10, "{lines:?}");
    let mut inside = 0;
    for line in &lines {
        let repeated = duplicate_keys(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(repeated.is_empty(), "{repeated:?} repeated in {line}");
        let parsed: Value = serde_json::from_str(line).unwrap_or_default();
        assert!(parsed.is_object(), "{line}");
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(parsed.get(key).is_some(), "no {key} in {line}");
        }
        let handling = parsed["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s == "handle"));
        if handling {
            inside += 1;
            let id = parsed["correlation_id"].as_str().unwrap_or_default();
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{line}");
            assert!(parsed["agent"].is_string(), "{line}");
        }
    }
    assert!(inside > 0, "no line was logged inside an agent's handling");
}
