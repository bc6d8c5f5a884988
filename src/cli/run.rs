//! `campaignd run`: load and validate settings, install logging, run the daemon until signalled.
//!
//! Exit codes: 0 after a clean shutdown, 2 for a configuration or start-up error, 70 when anything
//! in the process panicked while it ran (even where a supervisor or the task system caught it),
//! so that neither an operator nor a service manager mistakes a run that broke for a clean one.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use campaignd::daemon::Daemon;
use campaignd::logging::{self, LogFormat};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Log format; overrides `log.format` from config.
    #[arg(long, value_parser = clap::value_parser!(LogFormat))]
    pub log_format: Option<LogFormat>,
}

/// Panics seen since the daemon started.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The exit code of a run in which something panicked (`EX_SOFTWARE`).
const PANICKED: u8 = 70;

/// Counts every panic and logs it as an error, then lets the default hook print it as well: a
/// panic caught by a tokio task or an agent's supervisor would otherwise be lost in a log line.
fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "panic: {info}");
        default(info);
    }));
}

pub fn execute(config: Option<&Path>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let registry = campaignd::agents::registry();
    let settings = match registry.load(config) {
        Ok(settings) => settings,
        Err(problems) => {
            // Logging is not installed yet (its format comes from these very settings): print plainly.
            for problem in &problems.0 {
                eprintln!("{problem}");
            }
            eprintln!(
                "campaignd run: {} problem(s) in the configuration; nothing was started",
                problems.0.len()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let format = args.log_format.unwrap_or(settings.config.log.format);
    logging::init(format, &settings.config.log.filter)?;
    count_panics();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("campaignd")
        .build()
        .context("cannot start the async runtime")?;
    let config_path = config.map(Path::to_path_buf);
    runtime.block_on(async move {
        let daemon = Daemon::start(settings, config_path, registry).await?;
        let summary = daemon.run_until_signalled().await?;
        if !summary.drained {
            tracing::warn!(
                abandoned = summary.abandoned,
                "some in-flight messages were abandoned at shutdown"
            );
        }
        anyhow::Ok(())
    })?;
    let panics = PANICS.load(Ordering::SeqCst);
    if panics > 0 {
        tracing::error!(
            panics,
            "campaignd stopped, but something panicked while it ran (see the log); exiting {PANICKED}"
        );
        return Ok(ExitCode::from(PANICKED));
    }
    Ok(ExitCode::SUCCESS)
}
