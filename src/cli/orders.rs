//! `campaignd orders list CAMPAIGN`, `campaignd orders retry KEY` and `campaignd orders cancel
//! KEY`: a campaign's orders and their delivery on a running daemon, and an operator's retry or
//! cancel of one that could not be delivered, through its HTTP API (the token and address as for
//! `campaignd status`; retry and cancel need an operator's token).
//!
//! Exit codes: 0 success; 1 the order was delivered or cancelled already; 2 the daemon cannot be
//! reached, the token is refused, or the input is wrong.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::Value;

use super::client::{Daemon, display, emit, encode, failed, table};

#[derive(clap::Subcommand, Debug)]
pub enum OrdersCommand {
    /// Every order of a campaign with its connector and state, in day order.
    List(ListArgs),
    /// Deliver a dead-lettered (or pending) order again now; the campaign's held day runs again.
    Retry(ChangeArgs),
    /// Give a dead-lettered (or pending) order up: it is never delivered; the hold lifts.
    Cancel(ChangeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    pub campaign: String,
    /// pending, delivered, dead_lettered or cancelled.
    #[arg(long)]
    pub state: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ChangeArgs {
    /// The order's key, as `campaignd orders list` shows it.
    pub key: String,
    /// Why; logged with the token's name and kept with the order.
    #[arg(long)]
    pub reason: String,
}

pub fn execute(config: Option<&Path>, command: OrdersCommand) -> anyhow::Result<ExitCode> {
    match command {
        OrdersCommand::List(args) => list(config, args),
        OrdersCommand::Retry(args) => change(config, args, "retry"),
        OrdersCommand::Cancel(args) => change(config, args, "cancel"),
    }
}

fn list(config: Option<&Path>, args: ListArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::from_config(config)?;
    let query: Vec<String> = args
        .state
        .iter()
        .map(|state| format!("state={}", encode(state)))
        .collect();
    let path = format!("/v1/campaigns/{}/orders", encode(&args.campaign));
    let orders = match daemon.all_pages(&path, &query, "orders") {
        Ok(orders) => orders,
        Err(err) => return failed(err),
    };
    if args.json {
        emit(&(serde_json::to_string_pretty(&serde_json::json!({ "orders": orders }))? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if orders.is_empty() {
        emit(&format!(
            "no orders of {} visible to this token\n",
            args.campaign
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let cell = |order: &Value, pointer: &str| {
        order
            .pointer(pointer)
            .map_or_else(|| "-".to_owned(), display)
    };
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            vec![
                cell(o, "/order/key"),
                // Campaign days are counted from 1 for people.
                o.pointer("/order/day")
                    .and_then(Value::as_u64)
                    .map_or_else(|| "-".to_owned(), |d| (d + 1).to_string()),
                cell(o, "/order/channel"),
                cell(o, "/order/body/kind"),
                cell(o, "/connector"),
                cell(o, "/state"),
                cell(o, "/failures"),
                cell(o, "/last_error"),
            ]
        })
        .collect();
    let headers = [
        "KEY",
        "DAY",
        "CHANNEL",
        "KIND",
        "CONNECTOR",
        "STATE",
        "FAILURES",
        "LAST ERROR",
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}

fn change(config: Option<&Path>, args: ChangeArgs, verb: &str) -> anyhow::Result<ExitCode> {
    if args.reason.trim().is_empty() {
        return Err(anyhow!(
            "--reason is empty: say why, it is kept with the order"
        ));
    }
    let daemon = Daemon::from_config(config)?;
    let path = format!("/v1/orders/{}/{verb}", encode(&args.key));
    let body = serde_json::json!({ "reason": args.reason });
    let answer = match daemon.call("POST", &path, Some(&body), &[200]) {
        Ok((_, value)) => value,
        Err(err) => return failed(err),
    };
    let state = answer.get("state").map_or_else(|| "-".to_owned(), display);
    emit(&format!(
        "order {} is {state}; a campaign day it held runs again now\n",
        args.key
    ))?;
    Ok(ExitCode::SUCCESS)
}
