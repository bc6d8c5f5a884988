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
        deployment.write(
            "config/campaigns/kr_students_signups.toml",
            &format!("{CAMPAIGN}{}", crate::support::KR_BRIEF),
        );
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
        &[
            "config/campaignd.toml: daemon.shutdown_timeout_secs: is 0; it must be between 1 and 3600",
        ],
    );
}

#[test]
fn approvals_and_webhook_values_are_checked() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "filter = \"warn\"",
        "filter = \"warn\"\n\n[approvals]\nbudget_move_share = 1.5\n\n[webhook]\nurl = \"ftp://example\"\nsecret = \"short\"",
    );
    for needle in [
        "config/campaignd.toml: approvals.budget_move_share:",
        "config/campaignd.toml: webhook.url: `ftp://example` is not an http:// or https:// URL",
        "config/campaignd.toml: webhook.secret: is too short",
    ] {
        assert_refused(&d, &[], &[needle]);
    }
    // The secret from the environment, as the docs advise, is checked the same.
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "filter = \"warn\"",
        "filter = \"warn\"\n\n[webhook]\nurl = \"https://hooks.example.com/campaignd\"",
    );
    assert_refused(
        &d,
        &[("CAMPAIGND__WEBHOOK__SECRET", "tiny")],
        &["CAMPAIGND__WEBHOOK__SECRET (webhook.secret): is too short"],
    );
    let check = d.campaignd(
        "check",
        &[("CAMPAIGND__WEBHOOK__SECRET", "a-long-enough-signing-secret")],
    );
    assert_eq!(check.code, Some(0), "stderr:\n{}", check.stderr);
}

#[test]
fn outbox_and_connector_values_are_checked() {
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "filter = \"warn\"",
        "filter = \"warn\"\n\n[outbox]\nmax_attempts = 0\n\n\
         [connectors.hook]\nkind = \"webhook\"\nurl = \"ftp://example\"\nsecret = \"short\"\n\n\
         [connectors.log]\nkind = \"files\"\ndir = \"out\"",
    );
    for needle in [
        "config/campaignd.toml: outbox.max_attempts: is 0",
        "config/campaignd.toml: connectors.hook.url: `ftp://example` is not an http:// or https:// URL",
        "config/campaignd.toml: connectors.hook.secret: is too short",
        "config/campaignd.toml: connectors.log: `log` is a built-in connector's name",
    ] {
        assert_refused(&d, &[], &[needle]);
    }
    // A campaign naming a connector nobody defined, or a channel it does not run on.
    let d = Deployment::new();
    d.edit(
        CAMPAIGN_FILE,
        "regions = [\"KR\"]",
        "regions = [\"KR\"]\nconnectors = { sms = \"gateway\", email = \"log\" }",
    );
    for needle in [
        "kr_students_signups.toml: connectors.sms: no connector `gateway`",
        "kr_students_signups.toml: connectors.email: the campaign does not run on email",
    ] {
        assert_refused(&d, &[], &[needle]);
    }
    // A connector of a kind campaignd does not have is named too.
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "filter = \"warn\"",
        "filter = \"warn\"\n\n[connectors.ftp]\nkind = \"ftp\"",
    );
    assert_refused(&d, &[], &["connectors", "ftp"]);
    // A good one, its secret from the environment as the docs advise.
    let d = Deployment::new();
    d.edit(
        "config/campaignd.toml",
        "filter = \"warn\"",
        "filter = \"warn\"\n\n[connectors.sms_gateway]\nkind = \"webhook\"\nurl = \"https://gateway.example.com/campaignd\"\nsecret = \"short\"",
    );
    d.edit(
        CAMPAIGN_FILE,
        "regions = [\"KR\"]",
        "regions = [\"KR\"]\nconnectors = { sms = \"sms_gateway\", search = \"log\" }",
    );
    let check = d.campaignd(
        "check",
        &[(
            "CAMPAIGND__CONNECTORS__SMS_GATEWAY__SECRET",
            "a-long-enough-signing-secret",
        )],
    );
    assert_eq!(check.code, Some(0), "stderr:\n{}", check.stderr);
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
        &[
            "environment: CAMPAIGND__KB__BATCH_MAX (kb.batch_max): is 0; it must be between 1 and 65536",
        ],
    );
}

// What `run` used to fail on (or run wrongly with) while `check` said ok.

/// One mutation of the valid deployment and what `check` and `run` must say about it.
struct Mutation {
    what: &'static str,
    apply: fn(&Deployment),
    /// Every needle appears on one line of `check`'s stderr (and `run`'s, unless `run` is given).
    check: &'static [&'static str],
    /// What `run`'s stderr says instead, when it fails later than the settings (opening the data
    /// directory).
    run: Option<&'static [&'static str]>,
}

fn with_strategy(d: &Deployment) {
    support::copy_shipped_agent(d.dir.path(), "strategy");
}

const MUTATIONS: &[Mutation] = &[
    Mutation {
        what: "an unknown tenant",
        apply: |d| {
            d.edit(
                CAMPAIGN_FILE,
                "tenant = \"acme/kr_retail\"",
                "tenant = \"initech\"",
            )
        },
        check: &[CAMPAIGN_FILE, "tenant", "`initech`", "no tenant file"],
        run: None,
    },
    Mutation {
        what: "an unknown client",
        apply: |d| d.edit(CAMPAIGN_FILE, "acme/kr_retail", "acme/kr_wholesale"),
        check: &[CAMPAIGN_FILE, "tenant", "has no client `kr_wholesale`"],
        run: None,
    },
    Mutation {
        what: "a missing tenant file",
        apply: |d| {
            support::copy_shipped(d.dir.path(), "config/tenants");
            std::fs::remove_file(d.path("config/tenants/acme.toml")).expect("remove");
        },
        check: &[
            CAMPAIGN_FILE,
            "tenant",
            "config/tenants/acme.toml",
            "has no tenant file",
        ],
        run: None,
    },
    Mutation {
        what: "a broken tenant file",
        apply: |d| d.write("config/tenants/acme.toml", "[guideline\n"),
        check: &[CAMPAIGN_FILE, "config/tenants/acme.toml", "unclosed table"],
        run: None,
    },
    Mutation {
        what: "an unknown key in a tenant file",
        apply: |d| {
            support::copy_shipped(d.dir.path(), "config/tenants");
            d.edit(
                "config/tenants/acme.toml",
                "[guideline]\n",
                "[guideline]\ncolour = \"red\"\n",
            );
        },
        check: &[CAMPAIGN_FILE, "config/tenants/acme.toml", "colour"],
        run: None,
    },
    Mutation {
        what: "a currency without an exchange rate",
        apply: |d| {
            with_strategy(d);
            d.edit(CAMPAIGN_FILE, "currency = \"USD\"", "currency = \"CHF\"");
        },
        check: &[
            CAMPAIGN_FILE,
            "budget.currency",
            "`CHF` has no exchange rate",
        ],
        run: None,
    },
    Mutation {
        what: "a deadline already past",
        apply: |d| {
            d.edit(
                CAMPAIGN_FILE,
                "start = \"2026-09-01T09:00:00+09:00\"",
                "start = \"2026-07-01T09:00:00+09:00\"",
            );
            d.edit(
                CAMPAIGN_FILE,
                "deadline = \"2026-12-31T23:59:59+09:00\"",
                "deadline = \"2026-08-01T00:00:00+09:00\"",
            );
        },
        check: &[
            CAMPAIGN_FILE,
            "deadline",
            "has already passed (clock.start is 2026-09-01",
        ],
        run: None,
    },
    Mutation {
        what: "a real clock with a factor",
        apply: |d| {
            d.write(
                "config/campaignd.toml",
                &format!("{CONFIG}\n[clock]\nmode = \"real\"\nfactor = 172800.0\n"),
            )
        },
        check: &[
            "config/campaignd.toml: clock.factor",
            "only an accelerated clock uses it",
        ],
        run: None,
    },
    Mutation {
        what: "a clock factor that overflows the clock",
        apply: |d| {
            d.write(
                "config/campaignd.toml",
                &format!("{CONFIG}\n[clock]\nfactor = 1e300\n"),
            )
        },
        check: &[
            "config/campaignd.toml: clock.factor",
            "must be between 0.001 and 10000000",
        ],
        run: None,
    },
    Mutation {
        what: "a shutdown timeout that overflows a timer",
        apply: |d| {
            d.edit(
                "config/campaignd.toml",
                "shutdown_timeout_secs = 5",
                "shutdown_timeout_secs = 9223372036854775807",
            )
        },
        check: &[
            "config/campaignd.toml: daemon.shutdown_timeout_secs",
            "must be between 1 and 3600",
        ],
        run: None,
    },
    Mutation {
        what: "an empty page cache",
        apply: |d| {
            d.write(
                "config/campaignd.toml",
                &format!("{CONFIG}\n[kb]\ncache_capacity_bytes = 0\n"),
            )
        },
        check: &[
            "config/campaignd.toml: kb.cache_capacity_bytes",
            "must be between 1048576 and",
        ],
        run: None,
    },
    Mutation {
        what: "a mailbox past any channel's bound",
        apply: |d| {
            d.edit(
                "agents/orchestrator.toml",
                "mailbox = 64",
                "mailbox = 9223372036854775807",
            )
        },
        check: &[
            "agents/orchestrator.toml: agent.mailbox",
            "must be between 1 and 1048576",
        ],
        run: None,
    },
    Mutation {
        what: "a token of a tenant that does not exist",
        apply: |d| {
            d.write(
            "config/campaignd.toml",
            &format!("{CONFIG}\n[[api.tokens]]\nname = \"initech\"\ntoken = \"initech-secret-0123456789\"\ntenant = \"initech\"\n"),
        )
        },
        check: &[
            "config/campaignd.toml: api.tokens[0] `initech`.tenant",
            "a token's tenant must exist",
        ],
        run: None,
    },
    Mutation {
        what: "a tokens file others can read",
        apply: |d| {
            use std::os::unix::fs::PermissionsExt as _;
            d.write(
                "tokens.toml",
                "[[tokens]]\nname = \"ops\"\ntoken = \"ops-secret-0123456789\"\n",
            );
            std::fs::set_permissions(
                d.path("tokens.toml"),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod");
            d.write(
                "config/campaignd.toml",
                &format!("{CONFIG}\n[api]\ntokens_file = \"tokens.toml\"\n"),
            );
        },
        check: &["tokens.toml", "has mode 0644", "chmod 600 tokens.toml"],
        run: None,
    },
    Mutation {
        what: "a data directory that is a file",
        apply: |d| d.write("data", "not a folder"),
        check: &[
            "config/campaignd.toml: daemon.data_dir",
            "data is not a folder",
        ],
        run: Some(&["cannot create the data directory data"]),
    },
    Mutation {
        what: "a data directory campaignd cannot write in",
        apply: |d| {
            d.edit(
                "config/campaignd.toml",
                "data_dir = \"data\"",
                "data_dir = \"/proc/campaignd-data\"",
            )
        },
        check: &[
            "config/campaignd.toml: daemon.data_dir",
            "campaignd cannot write in /proc",
        ],
        run: Some(&["cannot create the data directory /proc/campaignd-data"]),
    },
];

/// Every mutation is refused by `check` (exit 1) and by `run` (non-zero, before it serves),
/// each naming the file and key to fix.
#[test]
fn check_refuses_what_run_would_fail_on() {
    let mut failures = Vec::new();
    for mutation in MUTATIONS {
        let d = Deployment::new();
        (mutation.apply)(&d);
        let check = d.campaignd("check", &[]);
        let found = |stderr: &str, needles: &[&str]| {
            stderr
                .lines()
                .any(|line| needles.iter().all(|n| line.contains(n)))
        };
        if check.code != Some(1) || !found(&check.stderr, mutation.check) {
            failures.push(format!(
                "{}: check exited {:?} without a line of {:?}:\n{}",
                mutation.what, check.code, mutation.check, check.stderr
            ));
            continue;
        }
        let run = d.campaignd("run", &[]);
        let needles = mutation.run.unwrap_or(mutation.check);
        if run.code.is_none_or(|c| c == 0) || !found(&run.stderr, needles) {
            failures.push(format!(
                "{}: run exited {:?} without a line of {needles:?}:\n{}",
                mutation.what, run.code, run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
