//! What the integration tests share: the real binary started with a clean environment and killed
//! when its guard drops, bounded waits on a condition, deployment folders, scratch knowledge bases,
//! the shipped agents' specs and the goal fixtures.
//!
//! Every wait here polls its condition with a short interval and gives up at a deadline, naming
//! what it waited for, so a slow machine fails with a reason instead of a hang or a flake.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use campaignd::campaign::CampaignBoard;
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::CampaignGoal;
use campaignd::kb::{Durability, KbError, KbOptions, KnowledgeBase};
use campaignd::runtime::AgentSpec;
use campaignd::settings::{EnvOverrides, Settings, shipped_agent_specs};
use chrono::{DateTime, Utc};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Bounded waits.

/// How often a wait looks at its condition again.
const POLL: Duration = Duration::from_millis(10);

/// Polls `probe` until it yields a value or `within` has passed (probing once more at the
/// deadline); `None` if it never did.
fn poll<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `probe` until it yields a value; fails naming `what` once `within` has passed.
pub fn wait_for<T>(what: &str, within: Duration, probe: impl FnMut() -> Option<T>) -> T {
    poll(within, probe).unwrap_or_else(|| panic!("timed out after {within:?} waiting for {what}"))
}

/// [`wait_for`] on a tokio runtime: the pause between probes lets other tasks run.
pub async fn wait_for_async<T, F>(what: &str, within: Duration, mut probe: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits on a runtime until `condition` holds; fails naming `what` once `within` has passed.
pub async fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    wait_for_async(what, within, || {
        std::future::ready(condition().then_some(()))
    })
    .await;
}

/// Runs a test body with an overall bound, so a hang fails instead of blocking the suite.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("test took longer than {limit:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Taking turns.

/// Held by the tests that run the example campaigns with the whole agent team, in this process or
/// in a daemon they start. Two of them at once on a small machine starve each other's agents past
/// their request timeouts and the tests' time bounds; every other test still runs beside them.
static EXAMPLE_CAMPAIGNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn at the example campaigns (see [`EXAMPLE_CAMPAIGNS`]).
pub async fn example_campaigns_turn() -> tokio::sync::MutexGuard<'static, ()> {
    EXAMPLE_CAMPAIGNS.lock().await
}

/// [`example_campaigns_turn`] for a test that is not async.
pub fn example_campaigns_turn_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    EXAMPLE_CAMPAIGNS.blocking_lock()
}

// ---------------------------------------------------------------------------------------------
// The real binary.

/// How long a command that should finish on its own (`check`, `review`, `plan`, a client command)
/// may take.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// The real `campaignd` binary, without the `CAMPAIGND*` variables and `RUST_LOG` of the
/// environment the tests run in: a developer's shell must not change what a test sees. A test
/// that wants one sets it on the returned command.
pub fn campaignd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_campaignd"));
    command.env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CAMPAIGND") {
            command.env_remove(name);
        }
    }
    command
}

/// What a finished command printed, and its exit code (`None` when a signal ended it).
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end, feeding it `input` on stdin (or nothing); a run that does not end
/// within [`COMMAND_LIMIT`] is killed and fails the test.
pub fn run(command: &mut Command, input: Option<&str>) -> Outcome {
    let mut process = Process::spawn(command, input);
    let status = process.wait_exit(COMMAND_LIMIT);
    process.finish();
    Outcome {
        code: status.code(),
        stdout: process.stdout.text(),
        stderr: process.stderr.text(),
    }
}

/// One output stream of a [`Process`], read to its end by a thread of its own so the child never
/// blocks on a full pipe.
#[derive(Clone, Default)]
struct Stream(Arc<Mutex<Captured>>);

#[derive(Default)]
struct Captured {
    raw: Vec<u8>,
    /// Every line that ended with a newline, without it.
    lines: Vec<String>,
    /// The stream has ended (the child exited or closed it).
    ended: bool,
}

impl Stream {
    fn read_from(&self, pipe: impl Read + Send + 'static) {
        let stream = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut captured = stream.lock();
                        captured.raw.extend_from_slice(&line);
                        // A line cut off by the end of the stream was never completely written.
                        if let Some(text) = line.strip_suffix(b"\n") {
                            let text = text.strip_suffix(b"\r").unwrap_or(text);
                            captured
                                .lines
                                .push(String::from_utf8_lossy(text).into_owned());
                        }
                    }
                }
            }
            stream.lock().ended = true;
        });
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().raw).into_owned()
    }

    fn ended(&self) -> bool {
        self.lock().ended
    }
}

/// A running child process with its stdout and stderr captured. Dropping it kills the child if it
/// is still running, so a failing test never leaves a daemon behind.
pub struct Process {
    child: Child,
    stdout: Stream,
    stderr: Stream,
    exited: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` with stdout and stderr captured and `input`, if any, on stdin.
    pub fn spawn(command: &mut Command, input: Option<&str>) -> Process {
        command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        // Owned by the guard from here on, so that a failure below still kills the child.
        let mut process = Process {
            child,
            stdout: Stream::default(),
            stderr: Stream::default(),
            exited: None,
        };
        if let Some(pipe) = process.child.stdout.take() {
            process.stdout.read_from(pipe);
        }
        if let Some(pipe) = process.child.stderr.take() {
            process.stderr.read_from(pipe);
        }
        if let (Some(mut pipe), Some(input)) = (process.child.stdin.take(), input) {
            pipe.write_all(input.as_bytes())
                .expect("write the child's stdin");
            // Dropping the pipe closes it: the child reads to its end.
        }
        process
    }

    /// Waits until `count` lines of stderr (where campaignd logs) satisfy `matches`, and returns
    /// them; fails naming `what` if they do not appear within `within` or stderr ends first.
    pub fn wait_for_lines(
        &self,
        what: &str,
        count: usize,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut checked = 0;
        let mut found = Vec::new();
        let mut ended = false;
        let seen = poll(within, || {
            let captured = self.stderr.lock();
            for line in &captured.lines[checked..] {
                if matches(line) {
                    found.push(line.clone());
                }
            }
            checked = captured.lines.len();
            ended = captured.ended;
            (found.len() >= count || ended).then_some(())
        });
        if seen.is_some() && found.len() >= count {
            found.truncate(count);
            return found;
        }
        let why = if ended {
            "campaignd closed its stderr first".to_owned()
        } else {
            format!("timed out after {within:?}")
        };
        panic!(
            "{why} waiting for {what}; the end of its stderr:\n{}",
            self.tail()
        );
    }

    /// The last lines campaignd wrote to stderr, for a failure message.
    fn tail(&self) -> String {
        let captured = self.stderr.lock();
        let from = captured.lines.len().saturating_sub(20);
        captured.lines[from..].join("\n")
    }

    /// How many complete lines the child has written to stdout so far.
    pub fn stdout_line_count(&self) -> usize {
        self.stdout.lock().lines.len()
    }

    /// Every complete line the child wrote to stdout (one cut off by its end is left out).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().lines.clone()
    }

    /// Everything the child wrote to stdout and stderr, line by line (a last line without a
    /// newline included).
    pub fn all_lines(&self) -> Vec<String> {
        let mut text = self.stdout.text();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.stderr.text());
        text.lines().map(str::to_owned).collect()
    }

    /// Whether the child has not exited yet.
    pub fn is_running(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("ask whether the child exited");
        }
        self.exited.is_none()
    }

    /// Sends signal `name` (`TERM`, `INT`, `HUP`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the child to exit; kills it and fails the test if it has not within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let exited = poll(within, || (!self.is_running()).then_some(()));
        match (exited, self.exited) {
            (Some(()), Some(status)) => status,
            _ => {
                self.kill();
                panic!(
                    "process {} did not exit within {within:?}; the end of its stderr:\n{}",
                    self.child.id(),
                    self.tail()
                );
            }
        }
    }

    /// SIGTERM, then [`Process::wait_exit`].
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(within)
    }

    /// SIGKILL, without warning, and reaps the child.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// Waits (bounded) for the readers to reach the end of both streams once the child has
    /// exited, so that everything it wrote is captured.
    pub fn finish(&self) {
        wait_for(
            "the child's stdout and stderr to close",
            COMMAND_LIMIT,
            || (self.stdout.ended() && self.stderr.ended()).then_some(()),
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `body` in a process of its own: the test binary runs itself again with only the test
/// `name` (its path in this crate, `kb::…`). For a test that installs process-wide state the other
/// tests of this crate must not see, such as a global metrics recorder.
pub fn in_own_process(name: &str, body: impl FnOnce()) {
    const ONLY: &str = "IT_OWN_PROCESS";
    if std::env::var(ONLY).is_ok_and(|only| only == name) {
        body();
        return;
    }
    let binary = std::env::current_exe().expect("the test binary's path");
    let outcome = run(
        Command::new(binary)
            .args([name, "--exact", "--test-threads=1"])
            .env(ONLY, name),
        None,
    );
    assert_eq!(
        outcome.code,
        Some(0),
        "{name} failed in its own process:\n{}{}",
        outcome.stdout,
        outcome.stderr
    );
    assert!(
        outcome.stdout.contains("test result: ok. 1 passed"),
        "{name} did not run in its own process (is the name right?):\n{}",
        outcome.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Folders and files.

/// The source tree, where the shipped `agents/` and `config/` are.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to `base/relative`, creating the folders on the way; returns the path. The file
/// is readable by its owner only, as a deployment's files of secrets must be (campaignd refuses a
/// tokens file others can read).
pub fn write(base: &Path, relative: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = base.join(relative);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create folder");
    std::fs::write(&path, text).expect("write file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    path
}

/// Copies the shipped `folder` (`agents`, `config/tenants`) of the source tree into `base`.
pub fn copy_shipped(base: &Path, folder: &str) {
    std::fs::create_dir_all(base.join(folder)).expect("folder");
    for entry in std::fs::read_dir(manifest_dir().join(folder)).expect("shipped folder") {
        let path = entry.expect("entry").path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, base.join(folder).join(name)).expect("copy");
        }
    }
}

/// A deployment in `base` with the shipped agents and tenants, an empty campaigns folder, a
/// manual clock at [`sim_start`] and the API on a free port of 127.0.0.1; every path absolute, so
/// a reload finds the same files. `extra` is appended to the config file after the `listen` line
/// of `[api]`: more `[api]` keys first, then tables of their own. Returns the config path.
pub fn shipped_deployment(base: &Path, shutdown_timeout_secs: u64, extra: &str) -> PathBuf {
    let abs = |p: &str| base.join(p).display().to_string();
    copy_shipped(base, "agents");
    copy_shipped(base, "config/tenants");
    std::fs::create_dir_all(base.join("config/campaigns")).expect("campaigns folder");
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nagents_dir = {:?}\ncampaigns_dir = {:?}\nshutdown_timeout_secs = {shutdown_timeout_secs}\n\n\
             [clock]\nmode = \"manual\"\nstart = 2026-09-01T00:00:00Z\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
            abs("data"),
            abs("agents"),
            abs("config/campaigns"),
        ),
    )
}

/// Copies the shipped definition of one agent, `agents/<name>.toml`, into `base/agents`.
pub fn copy_shipped_agent(base: &Path, name: &str) {
    let relative = format!("agents/{name}.toml");
    let text = std::fs::read_to_string(manifest_dir().join(&relative)).expect("a shipped agent");
    write(base, &relative, &text);
}

// ---------------------------------------------------------------------------------------------
// Settings, the shipped agents, and a daemon's parts.

/// The settings of the deployment in `base`, failing the test with every problem if invalid.
pub fn load_settings(base: &Path, config: Option<&Path>, env: EnvOverrides) -> Settings {
    Settings::load_from(base, config, env).unwrap_or_else(|p| panic!("valid settings: {p}"))
}

/// The settings a fresh machine runs with: the embedded config, agents and example campaigns.
pub fn embedded_settings() -> Settings {
    let empty = tempfile::tempdir().expect("tempdir");
    load_settings(empty.path(), None, EnvOverrides::new())
}

/// The runtime specs of the shipped agents, read from the source tree's `agents/*.toml` (with its
/// `config/campaignd.toml` defaults) the way the daemon builds them: the production mailboxes,
/// subscriptions, timeouts and supervision. Tests that need another value change the returned
/// spec, so that every test runs the production topics.
pub fn agent_specs() -> Vec<AgentSpec> {
    shipped_agent_specs().expect("the shipped agent definitions load")
}

/// The campaign board of a running daemon.
pub fn board_of(daemon: &Daemon) -> CampaignBoard {
    daemon.board().clone()
}

// ---------------------------------------------------------------------------------------------
// Knowledge bases.

/// How long a just-closed knowledge base may keep its directory locked: sled's background I/O and
/// the actors that still hold handles let go asynchronously after a shutdown.
const KB_LOCK_WAIT: Duration = Duration::from_secs(10);

/// A knowledge base in a temporary folder, without flushing (for tests that never reopen it).
/// Keep the folder as long as the knowledge base.
pub fn scratch_kb() -> (TempDir, KnowledgeBase) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = KbOptions::at(dir.path().join("kb"));
    options.durability = Durability::None;
    let kb = KnowledgeBase::open(&options).expect("open a scratch knowledge base");
    (dir, kb)
}

/// `None` while another handle holds the directory's lock, else what opening gave.
fn open_unless_locked(options: &KbOptions) -> Option<Result<KnowledgeBase, KbError>> {
    match KnowledgeBase::open(options) {
        Err(KbError::Open { reason, .. }) if reason.contains("lock") => None,
        opened => Some(opened),
    }
}

/// `KnowledgeBase::open`, waiting (bounded) for a just-dropped handle's directory lock.
pub fn try_open_kb(options: &KbOptions) -> Result<KnowledgeBase, KbError> {
    let what = format!("the lock on {} to be released", options.path.display());
    wait_for(&what, KB_LOCK_WAIT, || open_unless_locked(options))
}

/// Opens the knowledge base at `path` (see [`try_open_kb`]), failing the test if it cannot.
pub fn open_kb(path: &Path) -> KnowledgeBase {
    try_open_kb(&KbOptions::at(path))
        .unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()))
}

/// [`open_kb`] on a tokio runtime, for a knowledge base a daemon of the test has just closed.
pub async fn reopen_kb(path: &Path) -> KnowledgeBase {
    let options = KbOptions::at(path);
    let what = format!(
        "the knowledge base at {} to be unlocked after shutdown",
        path.display()
    );
    wait_for_async(&what, KB_LOCK_WAIT, || {
        std::future::ready(open_unless_locked(&options))
    })
    .await
    .unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Goals.

/// The first day of the simulated campaigns.
pub fn sim_start() -> DateTime<Utc> {
    "2026-09-01T00:00:00Z".parse().expect("a time")
}

/// A brief for a campaign in KR: Korean copy claiming `전 구매 10% 할인`. Append it to a campaign
/// file (it is a table, so after the top-level keys).
pub const KR_BRIEF: &str = r#"
[brief]
product = "ABC-Mart student membership"
landing_url = "https://abcmart.example.kr/student"
languages = { KR = "ko" }
[brief.copy.ko]
product = "학생 멤버십"
messages = ["학생증 하나로 가입 끝", "새 학기 쇼핑을 가볍게"]
claims = [{ kind = "discount", text = "전 구매 10% 할인", evidence = "Membership terms 2026" }]
"#;

/// A brief for a campaign in the US: English copy claiming `$129 for all three` and
/// `Free shipping`.
pub const US_BRIEF: &str = r#"
[brief]
product = "Globex autumn bundle"
landing_url = "https://shop.globex.example/autumn-bundle"
languages = { US = "en" }
[brief.copy.en]
product = "Autumn Bundle"
messages = ["Three cold-weather favorites in one box", "Layer up before the first frost"]
claims = [
    { kind = "price", text = "$129 for all three", evidence = "Price list 2026" },
    { kind = "free", text = "Free shipping", evidence = "Shipping policy 2026" },
]
"#;

/// A Korean sign-up campaign of acme's retail client (SMS and search, university students) from
/// [`sim_start`] to `days` later, as a campaign file; its brief claims `전 구매 10% 할인`.
pub fn kr_goal_toml(id: &str, target: u64, days: i64) -> String {
    goal_toml(
        id,
        target,
        days,
        &format!(
            r#"tenant = "acme/kr_retail"
        objective = "signups"
        channels = ["sms", "search"]
        regions = ["KR"]
        segments = [{{ id = "university_students" }}]
        {KR_BRIEF}"#
        ),
    )
}

/// A US purchase campaign of globex (email and social, past buyers) from [`sim_start`] to `days`
/// later, as a campaign file; its brief claims `$129 for all three` and `Free shipping`.
pub fn us_goal_toml(id: &str, target: u64, days: i64) -> String {
    goal_toml(
        id,
        target,
        days,
        &format!(
            r#"tenant = "globex"
        objective = "purchases"
        channels = ["email", "social"]
        regions = ["US"]
        segments = [{{ id = "past_buyers" }}]
        {US_BRIEF}"#
        ),
    )
}

fn goal_toml(id: &str, target: u64, days: i64, audience: &str) -> String {
    let deadline = sim_start() + chrono::Duration::days(days);
    format!(
        r#"
        id = "{id}"
        target = {target}
        start = "{}"
        deadline = "{}"
        budget = {{ total = 9000.0, currency = "USD" }}
        {audience}
        "#,
        sim_start().to_rfc3339(),
        deadline.to_rfc3339()
    )
}

/// [`kr_goal_toml`], parsed.
pub fn kr_goal(id: &str, target: u64, days: i64) -> CampaignGoal {
    toml::from_str(&kr_goal_toml(id, target, days)).expect("a valid goal")
}

/// [`us_goal_toml`], parsed.
pub fn us_goal(id: &str, target: u64, days: i64) -> CampaignGoal {
    toml::from_str(&us_goal_toml(id, target, days)).expect("a valid goal")
}

// ---------------------------------------------------------------------------------------------
// Numbers.

/// Asserts `actual` is within `tolerance` of `expected`.
pub fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected} ± {tolerance}, got {actual}"
    );
}
