//! `campaignd run`: load and validate settings, install logging, run the daemon until signalled.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use campaignd::daemon::Daemon;
use campaignd::logging::{self, LogFormat};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Log format; overrides `log.format` from config.
    #[arg(long, value_parser = clap::value_parser!(LogFormat))]
    pub log_format: Option<LogFormat>,
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
    Ok(ExitCode::SUCCESS)
}
