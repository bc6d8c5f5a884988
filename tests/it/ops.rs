//! Operating the real binary: `campaignd run --log-format json` writes only well-formed JSON lines
//! (no key twice, the correlation id on every line logged while an agent handles a message), its
//! `/metrics` shows the runtime's figures, and `campaignd status`, `campaignd campaigns` and
//! `campaignd trace ID` talk to it, failing clearly on a bad token or an unreachable daemon.
//!
//! One daemon serves every check, since starting one takes seconds; each wait is bounded.

use std::path::Path;
use std::time::Duration;

use campaignd::settings::EnvOverrides;
use serde_json::Value;

use crate::support::{
    self, Outcome, Process, campaignd, example_campaigns_turn_blocking, load_settings,
};

const OPERATOR_TOKEN: &str = "ops-test-token-0123456789abcdef";

/// A deployment in `base`: one operator token, a free port, and the embedded agents, campaigns and
/// accelerated clock (their folders are absent), data under `base/data`.
fn deployment(base: &Path) {
    support::write(
        base,
        "config/campaignd.toml",
        &format!(
            "[api]\nlisten = \"127.0.0.1:0\"\ntokens = [{{ name = \"ops\", token = \"{OPERATOR_TOKEN}\" }}]\n"
        ),
    );
}

/// The real binary running the deployment, and the address its API listens on.
struct Daemon {
    process: Process,
    addr: String,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let process = Process::spawn(
            campaignd()
                .args(["run", "--log-format", "json"])
                .current_dir(base)
                .env("RUST_LOG", "campaignd=debug,info"),
            None,
        );
        let listening = process.wait_for_lines(
            "`API listening` with the address",
            1,
            Duration::from_secs(60),
            |line| api_addr(line).is_some(),
        );
        let addr = api_addr(&listening[0]).expect("the line just matched");
        Daemon { process, addr }
    }

    /// Waits for `count` campaign days to be logged (at most a minute in all).
    fn wait_days(&self, count: usize) {
        self.process.wait_for_lines(
            &format!("{count} campaign days"),
            count,
            Duration::from_secs(60),
            |line| line.contains("\"campaign day\""),
        );
    }

    /// SIGTERM, then a bounded wait for exit 0; every line it wrote.
    fn stop(mut self) -> Vec<String> {
        let exit = self.process.terminate(Duration::from_secs(30));
        assert!(exit.success(), "{exit:?}");
        self.process.finish();
        self.process.all_lines()
    }
}

/// The address in an `API listening` log line.
fn api_addr(line: &str) -> Option<String> {
    if !line.contains("API listening") {
        return None;
    }
    let parsed = serde_json::from_str::<Value>(line).ok()?;
    parsed["fields"]["addr"].as_str().map(str::to_owned)
}

/// Runs a client command in `base` against `addr`, with `token` as `CAMPAIGND_TOKEN` if given.
fn client(base: &Path, addr: &str, token: Option<&str>, args: &[&str]) -> Outcome {
    let mut command = campaignd();
    command
        .args(args)
        .current_dir(base)
        .env("CAMPAIGND__API__LISTEN", addr);
    if let Some(token) = token {
        command.env("CAMPAIGND_TOKEN", token);
    }
    support::run(&mut command, None)
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
    // The daemon runs the embedded example campaigns.
    let _turn = example_campaigns_turn_blocking();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    deployment(base);
    let settings = load_settings(base, None, EnvOverrides::new());
    let campaign_ids: Vec<String> = settings
        .campaigns
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert!(!campaign_ids.is_empty(), "the embedded campaigns load");

    let daemon = Daemon::start(base);
    daemon.wait_days(3);
    let addr = daemon.addr.clone();

    // status: ready, every agent running.
    let status = client(base, &addr, None, &["status"]);
    let out = status.stdout.clone();
    assert_eq!(status.code, Some(0), "{out}{}", status.stderr);
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
    let parsed: Value = serde_json::from_str(&json.stdout).expect("status --json is JSON");
    assert_eq!(parsed["ready"], true, "{parsed}");
    assert!(
        parsed["agents"]
            .as_array()
            .is_some_and(|a| a.len() == settings.enabled_agents().count()),
        "{parsed}"
    );

    // campaigns: one row per configured campaign.
    let campaigns = client(base, &addr, None, &["campaigns"]);
    let out = campaigns.stdout.clone();
    assert_eq!(campaigns.code, Some(0), "{out}{}", campaigns.stderr);
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
    let out = trace.stdout.clone();
    assert_eq!(trace.code, Some(0), "{out}{}", trace.stderr);
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
    assert_eq!(unknown.code, Some(1), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("404") && unknown.stderr.contains("no decision"),
        "{}",
        unknown.stderr
    );

    // A bad token: the API's message, exit 2, and the secret is not echoed.
    let wrong = "wrong-token-0123456789abcdef";
    let refused = client(base, &addr, Some(wrong), &["campaigns"]);
    let err = refused.stderr.clone();
    assert_eq!(refused.code, Some(2), "{err}");
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
    let err = gone.stderr.clone();
    assert_eq!(gone.code, Some(2), "{err}");
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
