//! Broken configuration, end to end: the real `campaignd` binary, started in a temporary folder,
//! must refuse every kind of mistake (syntax, wrong type, unknown key, missing file, invalid value)
//! in the main config, an agent definition and a campaign file, naming the file and the key, from
//! both `campaignd check` and `campaignd run`. Environment overrides are checked the same way.

use std::path::Path;

use tempfile::TempDir;

use crate::support::{self, Outcome};

const CONFIG: &str = r#"
[daemon]
data_dir = "data"
shutdown_timeout_secs = 5
agents_dir = "agents"
campaigns_dir = "config/campaigns"

[log]
format = "pretty"
filter = "warn"
"#;

const AGENT: &str = r#"
[agent]
enabled = true
mailbox = 64
subscribe = ["goal_progress"]
request_timeout_ms = 2000

[agent.supervision]
max_restarts = 3
within_secs = 60
backoff_initial_ms = 100
backoff_max_ms = 5000
"#;

const CAMPAIGN: &str = r#"
id = "kr_students_signups"
tenant = "acme/kr_retail"
objective = "signups"
target = 500
start = "2026-09-01T09:00:00+09:00"
deadline = "2026-12-31T23:59:59+09:00"
channels = ["sms", "search"]
regions = ["KR"]

[budget]
total = 10000.0
currency = "USD"

[[segments]]
id = "university_students"
"#;

/// A deployment folder: `config/campaignd.toml`, two agents (the orchestrator, and a `writer` that
/// no campaignd implements, so it is disabled), one campaign.
struct Deployment {
    dir: TempDir,
}

impl Deployment {
    fn new() -> Self {
        let deployment = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        deployment.write("config/campaignd.toml", CONFIG);
        deployment.write("agents/orchestrator.toml", AGENT);
        deployment.write(
            "agents/writer.toml",
            &AGENT.replace("enabled = true", "enabled = false"),
        );
        deployment.write("config/campaigns/kr_students_signups.toml", CAMPAIGN);
        deployment
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        support::write(self.dir.path(), relative, text);
    }

    /// Replaces `from` with `to` in a file, failing if `from` is not there (so a test cannot
    /// silently stop breaking what it means to break).
    fn edit(&self, relative: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(relative)).expect("read");
        assert!(text.contains(from), "{relative} has no `{from}`");
        self.write(relative, &text.replacen(from, to, 1));
    }

    fn campaignd(&self, subcommand: &str, env: &[(&str, &str)]) -> Outcome {
        self.campaignd_with(subcommand, &self.path("config/campaignd.toml"), env)
    }

    /// A broken config must stop `run` before anything starts: a run that does not end on its own
    /// fails the test.
    fn campaignd_with(&self, subcommand: &str, config: &Path, env: &[(&str, &str)]) -> Outcome {
        let mut command = support::campaignd();
        command
            .arg("--config")
            .arg(config)
            .arg(subcommand)
            .current_dir(self.dir.path())
            .envs(env.iter().copied());
        support::run(&mut command, None)
    }
}

/// `check` exits 1 and `run` exits non-zero, both printing a line that contains every needle.
fn assert_refused(deployment: &Deployment, env: &[(&str, &str)], needles: &[&str]) {
    let check = deployment.campaignd("check", env);
    assert_eq!(
        check.code,
        Some(1),
        "check should fail; stderr:\n{}",
        check.stderr
    );
    assert_line_has(&check.stderr, needles, "check");
    assert!(
        !check.stdout.contains("ok:"),
        "check printed ok:\n{}",
        check.stdout
    );

    let run = deployment.campaignd("run", env);
    assert!(
        run.code.is_some_and(|c| c != 0),
        "run should fail; stderr:\n{}",
        run.stderr
    );
    assert_line_has(&run.stderr, needles, "run");
}

fn assert_line_has(stderr: &str, needles: &[&str], what: &str) {
    assert!(
        stderr
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n))),
        "{what}: no line of stderr contains all of {needles:?}; stderr:\n{stderr}"
    );
}

#[test]
fn a_valid_deployment_checks_clean() {
    let deployment = Deployment::new();
    let check = deployment.campaignd("check", &[]);
    assert_eq!(check.code, Some(0), "stderr:\n{}", check.stderr);
    assert_eq!(check.stdout.trim(), "ok: 2 agents, 1 campaigns");
}

/// `check` reports an enabled agent without an implementation and a subscription nothing
/// publishes on; `run` only warns of them (nothing running is harmed), so that a deployment
/// written for an earlier campaignd still starts.
#[test]
fn check_reports_an_agent_without_an_implementation_and_a_subscription_without_a_publisher() {
    let d = Deployment::new();
    d.edit("agents/writer.toml", "enabled = false", "enabled = true");
    d.edit(
        "agents/orchestrator.toml",
        "subscribe = [\"goal_progress\"]",
        "subscribe = [\"goal_progress\", \"spend_recorded\"]",
    );
    let check = d.campaignd("check", &[]);
    assert_eq!(check.code, Some(1), "stderr:\n{}", check.stderr);
    assert_line_has(
        &check.stderr,
        &[
            "agents/writer.toml",
            "no agent named `writer` is built into this campaignd",
        ],
        "check",
    );
    assert_line_has(
        &check.stderr,
        &[
            "agents/orchestrator.toml: agent.subscribe[1]",
            "nothing publishes on topic `spend_recorded`",
        ],
        "check",
    );
}

// The main config.

#[test]
fn config_syntax_error() {
    let d = Deployment::new();
    d.edit("config/campaignd.toml", "[log]", "[log");
    assert_refused(
        &d,
        &[],
        &["config/campaignd.toml", "syntax error at line 8"],
    );
}

#[test]
fn config_wrong_type() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "shutdown_timeout_secs = 5",
        "shutdown_timeout_secs = \"soon\"",
    );
    assert_refused(
        &d,
        &[],
        &[
            "config/campaignd.toml: daemon.shutdown_timeout_secs: expected a whole number",
            "\"soon\"",
        ],
    );
}

#[test]
fn config_unknown_key() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "format = \"pretty\"",
        "formatt = \"pretty\"",
    );
    assert_refused(
        &d,
        &[],
        &["config/campaignd.toml: log.formatt: unknown key"],
    );
}

#[test]
fn config_missing_file() {
    let d = Deployment::new();
    let missing = d.path("config/nowhere.toml");
    for subcommand in ["check", "run"] {
        let outcome = d.campaignd_with(subcommand, &missing, &[]);
        assert!(
            outcome.code.is_some_and(|c| c != 0),
            "{subcommand} should fail"
        );
        assert_line_has(
            &outcome.stderr,
            &["config/nowhere.toml", "file not found"],
            subcommand,
        );
    }
}

#[test]
fn config_invalid_value() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "filter = \"warn\"",
        "filter = \"warn\"\n\n[kb]\ndurability = \"sometimes\"",
    );
    assert_refused(
        &d,
        &[],
        &["config/campaignd.toml: kb.durability: unknown value `sometimes`"],
    );

    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "shutdown_timeout_secs = 5",
        "shutdown_timeout_secs = 0",
    );
    assert_refused(
        &d,
        &[],
        &["config/campaignd.toml: daemon.shutdown_timeout_secs: must be at least 1"],
    );
}

// An agent definition.

#[test]
fn agent_syntax_error() {
    let d = Deployment::new();
    d.edit("agents/writer.toml", "mailbox = 64", "mailbox = 64 64");
    assert_refused(&d, &[], &["agents/writer.toml", "syntax error at line 4"]);
}

#[test]
fn agent_wrong_type() {
    let d = Deployment::new();
    d.edit("agents/writer.toml", "mailbox = 64", "mailbox = \"big\"");
    assert_refused(
        &d,
        &[],
        &[
            "agents/writer.toml: agent.mailbox: expected a whole number",
            "\"big\"",
        ],
    );
}

#[test]
fn agent_unknown_key() {
    let d = Deployment::new();
    d.edit("agents/writer.toml", "max_restarts = 3", "max_restart = 3");
    assert_refused(
        &d,
        &[],
        &["agents/writer.toml: agent.supervision.max_restart: unknown key"],
    );
}

#[test]
fn agent_folder_missing() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "agents_dir = \"agents\"",
        "agents_dir = \"team\"",
    );
    assert_refused(&d, &[], &["team: folder not found"]);
}

#[test]
fn agent_invalid_value() {
    let d = Deployment::new();
    d.edit(
        "agents/writer.toml",
        "backoff_max_ms = 5000",
        "backoff_max_ms = 10",
    );
    assert_refused(
        &d,
        &[],
        &["agents/writer.toml: agent.supervision.backoff_max_ms: is 10 ms"],
    );

    let d = Deployment::new();
    d.write("agents/Content-Writer.toml", AGENT);
    assert_refused(
        &d,
        &[],
        &["agents/Content-Writer.toml: `Content-Writer` is not a valid agent name"],
    );
}

// A campaign file.

const CAMPAIGN_FILE: &str = "config/campaigns/kr_students_signups.toml";

#[test]
fn campaign_syntax_error() {
    let d = Deployment::new();
    d.edit(CAMPAIGN_FILE, "target = 500", "target = 500 sign-ups");
    assert_refused(&d, &[], &[CAMPAIGN_FILE, "syntax error at line 5"]);
}

#[test]
fn campaign_wrong_type() {
    let d = Deployment::new();
    d.edit(CAMPAIGN_FILE, "total = 10000.0", "total = \"ten\"");
    assert_refused(
        &d,
        &[],
        &[&format!(
            "{CAMPAIGN_FILE}: budget.total: expected a number, found a string \"ten\""
        )],
    );
}

#[test]
fn campaign_unknown_key() {
    let d = Deployment::new();
    d.edit(
        CAMPAIGN_FILE,
        "currency = \"USD\"",
        "currency = \"USD\"\ndaily_limit = 100.0",
    );
    assert_refused(
        &d,
        &[],
        &[&format!("{CAMPAIGN_FILE}: budget.daily_limit: unknown key")],
    );
}

#[test]
fn campaign_missing_key_and_missing_folder() {
    let d = Deployment::new();
    d.edit(
        CAMPAIGN_FILE,
        "deadline = \"2026-12-31T23:59:59+09:00\"\n",
        "",
    );
    assert_refused(
        &d,
        &[],
        &[&format!(
            "{CAMPAIGN_FILE}: deadline: required key `deadline` is missing"
        )],
    );

    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "campaigns_dir = \"config/campaigns\"",
        "campaigns_dir = \"goals\"",
    );
    assert_refused(&d, &[], &["goals: folder not found"]);
}

#[test]
fn campaign_invalid_values() {
    let d = Deployment::new();
    d.edit(CAMPAIGN_FILE, "regions = [\"KR\"]", "regions = [\"Korea\"]");
    d.edit(CAMPAIGN_FILE, "target = 500", "target = 0");
    let check = d.campaignd("check", &[]);
    assert_line_has(
        &check.stderr,
        &[CAMPAIGN_FILE, "regions[0]", "`Korea`"],
        "check",
    );
    assert_refused(
        &d,
        &[],
        &[&format!("{CAMPAIGN_FILE}: target: must be at least 1")],
    );

    let d = Deployment::new();
    d.edit(
        CAMPAIGN_FILE,
        "id = \"kr_students_signups\"",
        "id = \"kr_students\"",
    );
    assert_refused(
        &d,
        &[],
        &[CAMPAIGN_FILE, "id: is `kr_students` but the file is named"],
    );
}

// Across files and from the environment.

#[test]
fn every_problem_is_reported_at_once() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "format = \"pretty\"",
        "format = \"xml\"",
    );
    d.edit("agents/writer.toml", "mailbox = 64", "mailbox = -1");
    d.edit(
        CAMPAIGN_FILE,
        "currency = \"USD\"",
        "currency = \"dollars\"",
    );
    let check = d.campaignd("check", &[]);
    assert_eq!(check.code, Some(1));
    assert_line_has(
        &check.stderr,
        &["config/campaignd.toml: log.format"],
        "check",
    );
    assert_line_has(
        &check.stderr,
        &["agents/writer.toml: agent.mailbox"],
        "check",
    );
    assert_line_has(&check.stderr, &[CAMPAIGN_FILE, "budget.currency"], "check");
    assert_line_has(&check.stderr, &["3 problems found"], "check");
}

#[test]
fn an_environment_override_takes_effect() {
    let d = Deployment::new();
    d.write("crew/orchestrator.toml", AGENT);
    let check = d.campaignd("check", &[("CAMPAIGND__DAEMON__AGENTS_DIR", "crew")]);
    assert_eq!(check.code, Some(0), "stderr:\n{}", check.stderr);
    assert_eq!(check.stdout.trim(), "ok: 1 agents, 1 campaigns");
}

#[test]
fn an_invalid_environment_override_names_the_variable() {
    let d = Deployment::new();
    assert_refused(
        &d,
        &[("CAMPAIGND__LOG__FORMAT", "xml")],
        &["environment: CAMPAIGND__LOG__FORMAT (log.format): unknown value `xml`"],
    );
    assert_refused(
        &d,
        &[("CAMPAIGND__KB__BATCH_MAX", "0")],
        &["environment: CAMPAIGND__KB__BATCH_MAX (kb.batch_max): must be at least 1"],
    );
}
