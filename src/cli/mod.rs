//! The command line: one subcommand per file, each a thin layer over the library.
//!
//! Exit codes: 0 success, 1 a negative answer (a rejected review, a failed check), 2 bad input or an
//! error. Errors are printed with their whole cause chain so an operator sees what to fix.

mod approvals;
mod check;
mod client;
mod import;
mod kb;
mod orders;
mod plan;
mod review;
mod run;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "campaignd",
    version,
    about = "Runs marketing campaigns with a team of supervised agents"
)]
pub struct Cli {
    /// The deployment config file; `config/campaignd.toml` in the current folder when it exists,
    /// otherwise the embedded defaults.
    #[arg(long, global = true, env = "CAMPAIGND_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the daemon and keep it running until SIGTERM or SIGINT.
    Run(run::RunArgs),
    /// Validate config, agent definitions and campaigns; print every problem with file and key.
    Check(check::CheckArgs),
    /// Work with the knowledge base directly.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// Review one message for compliance and print the verdict as JSON (exit 0 approved, 1 not).
    Review(review::ReviewArgs),
    /// Print the strategy plan for a campaign file as JSON, without running anything.
    Plan(plan::PlanArgs),
    /// Run one campaign start to deadline through the real agents on a simulated market, in
    /// seconds, and print its results beside an oracle's and a static plan's as JSON.
    Simulate(simulate::SimulateArgs),
    /// Ask the running daemon whether it is ready and how each agent is (exit 1 if not ready).
    /// Token: CAMPAIGND_TOKEN, else the first operator token in api.tokens.
    Status(client::StatusArgs),
    /// List the running daemon's campaigns: phase, progress, spend, ETA.
    Campaigns(client::CampaignsArgs),
    /// Print every decision and outcome of one chain of work as JSON Lines, in time order.
    Trace(client::TraceArgs),
    /// Restart an isolated agent on the running daemon, recorded with the token's name and
    /// --reason (exit 1 if it is not isolated). Campaigns it held stay held until resumed.
    Revive(client::ReviveArgs),
    /// List the decisions waiting for a person (or answered), with what each proposes and why.
    Approvals(approvals::ApprovalsArgs),
    /// Approve an approval request, recorded with the token's name and --reason; --amend
    /// changes it within the proposal's bounds (exit 1 if it was answered already).
    Approve(approvals::AnswerArgs),
    /// Reject an approval request, recorded with the token's name and --reason (exit 1 if it
    /// was answered already).
    Reject(approvals::AnswerArgs),
    /// Send consent events to the running daemon (exit 1 if a row was rejected).
    #[command(subcommand)]
    Consents(import::ConsentsCommand),
    /// Send observations to the running daemon (exit 1 if a row was rejected).
    #[command(subcommand)]
    Observations(import::ObservationsCommand),
    /// A campaign's orders and their delivery; retry or cancel one that could not be delivered.
    #[command(subcommand)]
    Orders(orders::OrdersCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::execute(cli.config.as_deref(), args),
        Command::Check(args) => check::execute(cli.config.as_deref(), args),
        Command::Kb(command) => kb::execute(cli.config.as_deref(), command),
        Command::Review(args) => review::execute(args),
        Command::Plan(args) => plan::execute(args),
        Command::Simulate(args) => simulate::execute(cli.config.as_deref(), args),
        Command::Status(args) => client::status(cli.config.as_deref(), args),
        Command::Campaigns(args) => client::campaigns(cli.config.as_deref(), args),
        Command::Trace(args) => client::trace(cli.config.as_deref(), args),
        Command::Revive(args) => client::revive(cli.config.as_deref(), args),
        Command::Approvals(args) => approvals::list(cli.config.as_deref(), args),
        Command::Approve(args) => approvals::answer(cli.config.as_deref(), args, true),
        Command::Reject(args) => approvals::answer(cli.config.as_deref(), args, false),
        Command::Consents(command) => import::consents(cli.config.as_deref(), command),
        Command::Observations(command) => import::observations(cli.config.as_deref(), command),
        Command::Orders(command) => orders::execute(cli.config.as_deref(), command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
