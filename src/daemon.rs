//! The daemon: opens the knowledge base, starts the supervised agents named in config, serves the
//! HTTP ops API, and stays up until SIGTERM or SIGINT; SIGHUP (or `POST /v1/reload`) reloads the
//! configuration.
//!
//! Shutdown order matters for the no-data-lost guarantee: the API stops taking requests, the
//! campaign loop stops starting new days, the runtime stops taking work and drains what it admitted
//! (handlers may still record decisions), and last the knowledge base commits and flushes everything
//! queued. Each step is bounded by `daemon.shutdown_timeout_secs`, so a stuck handler cannot keep
//! the process from exiting. This module wires layers together; it must never hold business logic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::agents::Registry;
use crate::api::{AgentReload, ApiServer, ApiStartError, ApiState, ReloadReport};
use crate::campaign::notifications::RunningNotifier;
use crate::campaign::outbox::delivery::RunningDelivery;
use crate::campaign::{CampaignBoard, CampaignLoop, CampaignState, LoopOptions, RunningLoop, Wake};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{KbError, KbOptions, KnowledgeBase};
use crate::runtime::{Clock, Runtime, StartError};
use crate::settings::{ClockMode, LiveSettings, MarketSource, Problems, Settings};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the knowledge base: {0}")]
    Kb(#[from] KbError),
    #[error("a start-up task failed: {0}")]
    Task(String),
    #[error("invalid clock settings: {0}")]
    Clock(String),
    #[error("cannot start the agents: {0}")]
    Start(#[from] StartError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Settings(#[from] Problems),
    #[error("the HTTP API cannot start: {0}")]
    Api(#[from] ApiStartError),
    #[error(
        "the knowledge base did not finish flushing within daemon.shutdown_timeout_secs ({0} s); the last acknowledged writes may be only in the operating system's cache"
    )]
    FlushTimeout(u64),
    #[error(
        "the campaign loop stopped with a panic ({0}); no campaign day can run, so campaignd shut down"
    )]
    LoopPanicked(String),
}

/// A running daemon: the agents' runtime, the knowledge base they write to, and the API.
pub struct Daemon {
    runtime: Runtime,
    kb: KnowledgeBase,
    /// The settings in force; a successful reload swaps them, and the API reads them per request.
    settings: LiveSettings,
    /// What SIGHUP and `POST /v1/reload` run.
    reloader: Reloader,
    api: ApiServer,
    /// The campaign loop (on the built-in simulator, or logging buys when `[market] source =
    /// "api"`); `None` only when the strategy playbook cannot be read.
    driver: Option<RunningLoop>,
    /// Sends approval requests, escalations and expiries to the `[webhook]`.
    notifier: RunningNotifier,
    /// Delivers the outbox's orders to their connectors.
    delivery: RunningDelivery,
}

/// Everything a reload needs: where the settings come from, what checks them, and what follows
/// them (the runtime's agent definitions, the settings in force, the campaign board).
#[derive(Clone)]
struct Reloader {
    runtime: Runtime,
    /// To tell a running campaign (one the orchestrator planned) from one not started yet.
    kb: KnowledgeBase,
    /// The `--config` path, so a reload reads the same file.
    config_path: Option<PathBuf>,
    settings: LiveSettings,
    board: CampaignBoard,
    registry: Registry,
}

/// How a shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownSummary {
    /// Whether every admitted message finished before the deadline.
    pub drained: bool,
    /// Messages still in flight when the deadline passed.
    pub abandoned: usize,
}

impl Daemon {
    /// Opens the knowledge base under `daemon.data_dir` and starts every enabled agent that
    /// `registry` has an implementation for (`settings` come checked by [`Registry::load`]).
    pub async fn start(
        settings: Settings,
        config_path: Option<PathBuf>,
        registry: Registry,
    ) -> Result<Self, DaemonError> {
        let config = &settings.config;
        let data_dir = config.daemon.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| DaemonError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let options = kb_options(&settings, &data_dir);
        let durability = options.durability;
        let kb = tokio::task::spawn_blocking(move || KnowledgeBase::open(&options))
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))??;

        let clock = clock(&settings, &kb)?;
        // The runtime resolves its metric handles when it starts, so the recorder behind
        // `/metrics` must be in place before the agents are.
        crate::api::metrics::Metrics::get();
        let settings = Arc::new(settings);
        let specs = registry.specs(&settings);
        let board = CampaignBoard::new();
        board.sync(&settings.campaigns);
        // Agents read the live handle at each use (a reload changes their playbooks); the
        // snapshot stays for whatever is fixed at start.
        let shared = LiveSettings::new(Arc::clone(&settings));
        let services = crate::runtime::Services::new()
            .with(kb.clone())
            .with(Arc::clone(&settings))
            .with(shared.clone());
        let runtime = Runtime::builder(registry.runtime().clone())
            .agents(specs)
            .services(services)
            .clock(clock)
            .command_senders(
                settings
                    .config
                    .runtime
                    .command_senders
                    .iter()
                    .map(String::as_str),
            )
            .start()
            .await;
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(err) => {
                // Nothing was acknowledged yet, but close cleanly so the next start is quick.
                let _ = kb.shutdown().await;
                return Err(err.into());
            }
        };
        // Without its API the daemon would be invisible to probes and operators, so a port that
        // cannot be bound stops the start (cleanly: nothing was acknowledged yet).
        let reloader = Reloader {
            runtime: runtime.clone(),
            kb: kb.clone(),
            config_path,
            settings: shared.clone(),
            board: board.clone(),
            registry,
        };
        // The API and the notifier name the campaigns whose held day to run again at once.
        let wake = Wake::new();
        let api = match start_api(&kb, &reloader, &wake).await {
            Ok(api) => api,
            Err(err) => {
                let bound = Duration::from_secs(settings.config.daemon.shutdown_timeout_secs);
                runtime.shutdown(bound).await;
                let _ = kb.shutdown().await;
                return Err(err.into());
            }
        };
        let driver = start_loop(&runtime, &kb, &shared, board, &wake);
        let started =
            crate::campaign::notifications::spawn(&kb, shared.clone(), wake).and_then(|notifier| {
                crate::campaign::outbox::delivery::spawn(&kb, shared.clone())
                    .map(|delivery| (notifier, delivery))
            });
        let (notifier, delivery) = match started {
            Ok(started) => started,
            Err(err) => {
                let bound = Duration::from_secs(settings.config.daemon.shutdown_timeout_secs);
                api.shutdown(bound).await;
                if let Some(driver) = driver {
                    driver.stop().await;
                }
                runtime.shutdown(bound).await;
                let _ = kb.shutdown().await;
                return Err(err.into());
            }
        };
        tracing::info!(
            data_dir = %data_dir.display(),
            %durability,
            clock = runtime.clock().mode(),
            agents = runtime.status().len(),
            campaigns = settings.campaigns.len(),
            "campaignd started"
        );
        Ok(Self {
            runtime,
            kb,
            settings: shared,
            reloader,
            api,
            driver,
            notifier,
            delivery,
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn kb(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// The settings in force (the latest successfully reloaded ones).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.current()
    }

    /// Where the API listens (the bound port when `api.listen` asks for port 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr()
    }

    /// Serves until SIGTERM or SIGINT, reloading on SIGHUP, then shuts down.
    pub async fn run_until_signalled(mut self) -> Result<ShutdownSummary, DaemonError> {
        let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
        let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
        // Only now: before these handlers exist, a SIGHUP would kill the process.
        tracing::info!("campaignd ready");
        // Watched beside the signals: a daemon whose campaign loop died would serve its API and
        // run no campaign day, so it shuts down and exits non-zero instead.
        let mut driver = self.driver.take();
        let mut panicked = None;
        loop {
            tokio::select! {
                _ = terminate.recv() => { tracing::info!("SIGTERM received, shutting down"); break; }
                _ = interrupt.recv() => { tracing::info!("SIGINT received, shutting down"); break; }
                ended = loop_ended(&mut driver) => {
                    driver = None;
                    match ended {
                        Ok(()) => tracing::info!("the campaign loop has nothing left to run"),
                        Err(why) => {
                            tracing::error!(%why, "the campaign loop panicked; shutting down");
                            panicked = Some(why);
                            break;
                        }
                    }
                }
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP received, reloading");
                    if let Err(problems) = self.reload() {
                        for problem in &problems.0 {
                            tracing::error!(%problem, "reload rejected; the running configuration stays");
                        }
                    }
                }
            }
        }
        self.driver = driver;
        let summary = self.shutdown().await?;
        match panicked {
            Some(why) => Err(DaemonError::LoopPanicked(why)),
            None => Ok(summary),
        }
    }

    /// Re-reads config, agent definitions and campaigns. A configuration with any problem is
    /// rejected as a whole; a valid one becomes the settings in force: the API's tokens, the
    /// agents' playbooks at their next use (compliance's rule sets at the next review), the
    /// campaign loop's list at its next step (a new campaign starts, a removed one stops being
    /// ticked), and the running agents' mailbox bounds, timeouts and supervision. Starting or
    /// stopping agents, a new `api.listen`, `[market]`, `[clock]` and `[kb]` need a restart.
    pub fn reload(&self) -> Result<ReloadReport, Problems> {
        self.reloader.reload(false)
    }

    /// The campaign board the loop reports to and the API reads.
    pub fn board(&self) -> &CampaignBoard {
        &self.reloader.board
    }

    /// Drains the runtime, then commits and flushes the knowledge base, within the configured bound.
    pub async fn shutdown(self) -> Result<ShutdownSummary, DaemonError> {
        let bound = Duration::from_secs(self.settings().config.daemon.shutdown_timeout_secs);
        // The API first: a request answered after the runtime stopped would only say "unavailable".
        self.api.shutdown(bound).await;
        // The campaign loop next, so no new day starts while the runtime drains.
        if let Some(driver) = self.driver {
            driver.stop().await;
        }
        self.notifier.stop().await;
        self.delivery.stop().await;
        let report = self.runtime.shutdown(bound).await;
        match tokio::time::timeout(bound.max(Duration::from_secs(1)), self.kb.shutdown()).await {
            Ok(result) => result?,
            Err(_) => return Err(DaemonError::FlushTimeout(bound.as_secs())),
        }
        tracing::info!(
            drained = report.drained,
            abandoned = report.abandoned,
            "campaignd stopped"
        );
        Ok(ShutdownSummary {
            drained: report.drained,
            abandoned: report.abandoned,
        })
    }
}

/// Starts the campaign loop: one campaign day per simulated day of the clock, resuming after the
/// last day in the knowledge base, following reloads of the campaign list. With `[market] source
/// = "simulator"` the buys are placed on the built-in simulator; with `"api"` they are logged as
/// the day's instructions and observations come only through the API. It runs even with no
/// campaign, so that a reload can add one.
fn start_loop(
    runtime: &Runtime,
    kb: &KnowledgeBase,
    settings: &LiveSettings,
    board: CampaignBoard,
    wake: &Wake,
) -> Option<RunningLoop> {
    let current = settings.current();
    let Some(priors) = crate::campaign::priors_from(&current) else {
        tracing::error!(
            "the strategy playbook cannot be read; the campaign loop is not running (fix agents/strategy.toml and restart)"
        );
        return None;
    };
    let mut options = LoopOptions::new(current.config.market.seed, priors);
    let source = current.config.market.source;
    if source == MarketSource::Api {
        options = options.without_simulator();
    }
    let campaign_loop = CampaignLoop::new(
        runtime.clone(),
        kb.clone(),
        current.campaigns.clone(),
        options,
    )
    .with_board(board)
    .with_settings(settings.clone())
    .with_wake(wake.clone());
    tracing::info!(
        campaigns = current.campaigns.len(),
        source = match source {
            MarketSource::Simulator => "simulator",
            MarketSource::Api => "api",
        },
        "campaign loop started"
    );
    Some(crate::campaign::spawn(campaign_loop))
}

/// Waits until the campaign loop, if there is one, ends by itself (see [`RunningLoop::ended`]).
async fn loop_ended(driver: &mut Option<RunningLoop>) -> Result<(), String> {
    match driver {
        Some(driver) => driver.ended().await,
        None => std::future::pending().await,
    }
}

/// Starts the API on `api.listen`.
async fn start_api(
    kb: &KnowledgeBase,
    reloader: &Reloader,
    wake: &Wake,
) -> Result<ApiServer, ApiStartError> {
    let reload = reloader.clone();
    let state = ApiState::new(
        reloader.runtime.clone(),
        kb.clone(),
        reloader.settings.clone(),
        reloader.board.clone(),
        wake.clone(),
        Arc::new(move |dry_run| reload.reload(dry_run)),
    );
    ApiServer::start(state).await
}

impl Reloader {
    /// The one reload behind SIGHUP and `POST /v1/reload`; `dry_run` only checks.
    fn reload(&self, dry_run: bool) -> Result<ReloadReport, Problems> {
        let Reloader {
            runtime,
            kb,
            config_path,
            settings,
            board,
            registry,
        } = self;
        reload(
            runtime,
            kb,
            config_path.as_deref(),
            settings,
            board,
            registry,
            dry_run,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn reload(
    runtime: &Runtime,
    kb: &KnowledgeBase,
    config_path: Option<&Path>,
    settings: &LiveSettings,
    board: &CampaignBoard,
    registry: &Registry,
    dry_run: bool,
) -> Result<ReloadReport, Problems> {
    let current = settings.current();
    let loaded = match crate::settings::reload::missing_config(&current) {
        Some(gone) => Err(Problems(vec![gone])),
        None => registry.load(config_path),
    };
    let loaded = loaded.and_then(|fresh| {
        let mut refused = crate::settings::reload::problems(&current, &fresh);
        refused.extend(changed_running_goals(kb, board, &current, &fresh));
        if refused.is_empty() {
            Ok(fresh)
        } else {
            Err(Problems(refused))
        }
    });
    let fresh = match loaded {
        Ok(fresh) => fresh,
        Err(problems) => {
            if !dry_run {
                metrics::counter!("campaignd_config_reloads_total", "result" => "rejected")
                    .increment(1);
            }
            return Err(problems);
        }
    };
    let mut agents = Vec::new();
    for definition in fresh.enabled_agents() {
        let agent = definition.name.to_string();
        if dry_run {
            agents.push(AgentReload {
                agent,
                applied: false,
                note: Some("dry run: nothing applied".to_owned()),
            });
            continue;
        }
        let running_workers = runtime
            .agent_status(definition.name.as_str())
            .map(|s| s.workers);
        match runtime.update_spec(definition.spec()) {
            Ok(()) => {
                tracing::info!(agent = %definition.name, "agent definition reloaded");
                // A worker holds its campaigns' state; their number changes only at a start.
                let note = running_workers
                    .filter(|&running| running != definition.workers)
                    .map(|running| {
                        format!(
                            "workers = {} takes effect at the next start; {running} run now",
                            definition.workers
                        )
                    });
                agents.push(AgentReload {
                    agent,
                    applied: true,
                    note,
                });
            }
            Err(err) => {
                tracing::warn!(agent = %definition.name, %err, "agent definition not applied; a restart applies it");
                agents.push(AgentReload {
                    agent,
                    applied: false,
                    note: Some(err.to_string()),
                });
            }
        }
    }
    let report = ReloadReport {
        applied: !dry_run,
        campaigns: fresh.campaigns.len(),
        agents,
    };
    if !dry_run {
        if current.config.api.listen != fresh.config.api.listen {
            tracing::warn!(listen = %fresh.config.api.listen, "api.listen changed; a restart applies it");
        }
        // Read once at start: the market's source and seed, the clock, the knowledge base.
        for (section, changed) in [
            ("[market]", current.config.market != fresh.config.market),
            ("[clock]", current.config.clock != fresh.config.clock),
            ("[kb]", current.config.kb != fresh.config.kb),
        ] {
            if changed {
                tracing::warn!(section, "changed; a restart applies it");
            }
        }
        // Listed (or taken off) at once; the campaign loop follows at its next step.
        board.sync(&fresh.campaigns);
        settings.replace(Arc::new(fresh));
        metrics::counter!("campaignd_config_reloads_total", "result" => "applied").increment(1);
        tracing::info!(campaigns = report.campaigns, "configuration reloaded");
    }
    Ok(report)
}

/// A reload may not change the goal of a running campaign: the orchestrator anchors the goal it
/// planned with (its sub-goals decision), so a changed file would only look applied. A campaign
/// not planned yet takes the new goal; a finished one is not bought for any more.
fn changed_running_goals(
    kb: &KnowledgeBase,
    board: &CampaignBoard,
    current: &Settings,
    fresh: &Settings,
) -> Vec<crate::settings::Problem> {
    let mut problems = Vec::new();
    for goal in &fresh.campaigns {
        let Some(running) = current.campaigns.iter().find(|c| c.id == goal.id) else {
            continue;
        };
        if running == goal {
            continue;
        }
        let finished = board
            .get(&goal.id)
            .is_some_and(|s| matches!(s.state, CampaignState::Achieved | CampaignState::Ended));
        let Some(planned) = crate::campaign::resume::planned_start(kb, running) else {
            continue;
        };
        if finished {
            continue;
        }
        let file = fresh
            .config
            .daemon
            .campaigns_dir
            .join(format!("{}.toml", goal.id));
        problems.push(crate::settings::Problem::new(
            file.display().to_string(),
            changed_keys(running, goal).join(", "),
            format!(
                "campaign `{}` is running (planned from {planned}) and keeps the goal it was planned with, so this change would not take effect; restore the file, or give the changed goal a new id to start it as a new campaign",
                goal.id
            ),
        ));
    }
    problems
}

/// The top-level keys in which two goals differ, as their file writes them.
fn changed_keys(before: &CampaignGoal, after: &CampaignGoal) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let keys: std::collections::BTreeSet<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    keys.into_iter().cloned().collect()
}

fn kb_options(settings: &Settings, data_dir: &Path) -> KbOptions {
    KbOptions {
        path: data_dir.join("kb"),
        ..settings.config.kb.clone()
    }
}

/// The clock `[clock]` asks for. A simulated clock continues from where the previous run's campaign
/// loop left it, if that is later than the configured start.
fn clock(settings: &Settings, kb: &KnowledgeBase) -> Result<Clock, DaemonError> {
    let clock = &settings.config.clock;
    let configured = clock.start.unwrap_or_else(chrono::Utc::now);
    let start = match crate::campaign::saved_simulated_time(kb) {
        Some(saved) if clock.mode != ClockMode::Real && saved > configured => {
            tracing::info!(simulated_now = %saved, "the simulated clock continues from the previous run");
            saved
        }
        _ => configured,
    };
    match clock.mode {
        ClockMode::Real => Ok(Clock::real()),
        ClockMode::Manual => Ok(Clock::manual(start)),
        ClockMode::Accelerated => {
            Clock::accelerated(start, clock.factor).map_err(|e| DaemonError::Clock(e.to_string()))
        }
    }
}
