//! `campaignd approvals`, `campaignd approve ID` and `campaignd reject ID`: the queue of decisions
//! waiting for a person on a running daemon, and answering one, through its HTTP API (the token
//! and address as for `campaignd status`; answering needs a token with role approver or
//! operator).
//!
//! Exit codes: 0 success; 1 the request was answered already (the first answer stands, and is
//! named); 2 the daemon cannot be reached, the token is refused, or the input is wrong.

use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::Value;

use super::client::{Daemon, display, emit, encode, failed, table};

#[derive(clap::Args, Debug)]
pub struct ApprovalsArgs {
    /// pending (the default), answered, approved, rejected, expired or all.
    #[arg(long, default_value = "pending")]
    pub state: String,
    /// Only this campaign's requests.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only this kind: buys, budget_move, replan, autonomy or creatives.
    #[arg(long)]
    pub kind: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct AnswerArgs {
    /// The request's id, as `campaignd approvals` lists it.
    pub id: String,
    /// Why; recorded with the answer and the token's name.
    #[arg(long)]
    pub reason: String,
    /// An approval's change within the proposal's bounds, as JSON: '{"spend": 120000}' for a
    /// day's buys, '{"daily": {"search": 50000, "sms": 30000}}' for a budget move.
    #[arg(long)]
    pub amend: Option<String>,
    /// Print the API's JSON answer instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

const COLUMNS: [(&str, &str); 7] = [
    ("ID", "id"),
    ("CAMPAIGN", "campaign"),
    ("KIND", "kind"),
    ("STATE", "state"),
    ("DAY", "day"),
    ("EXPIRES", "expires_at"),
    ("WHAT AND WHY", "summary"),
];

/// `campaignd approvals`: one row per request.
pub fn list(config: Option<&std::path::Path>, args: ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let mut query = vec![format!("state={}", encode(&args.state))];
    if let Some(campaign) = &args.campaign {
        query.push(format!("campaign={}", encode(campaign)));
    }
    if let Some(kind) = &args.kind {
        query.push(format!("kind={}", encode(kind)));
    }
    let daemon = Daemon::from_config(config)?;
    let list = match daemon.all_pages("/v1/approvals", &query, "approvals") {
        Ok(list) => list,
        Err(err) => return failed(err),
    };
    if args.json {
        let all = serde_json::json!({ "approvals": list });
        emit(&(serde_json::to_string_pretty(&all)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        emit(&format!(
            "no {} approval requests visible to this token\n",
            args.state
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|request| {
            COLUMNS
                .iter()
                .map(|(_, key)| match (key, request.get(*key)) {
                    // Campaign days are counted from 1 for people.
                    (&"day", Some(Value::Number(n))) => n
                        .as_u64()
                        .map_or_else(|| n.to_string(), |d| (d + 1).to_string()),
                    (_, Some(value)) => display(value),
                    (_, None) => "-".to_owned(),
                })
                .collect()
        })
        .collect();
    let headers: Vec<&str> = COLUMNS.iter().map(|(h, _)| *h).collect();
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// `campaignd approve ID` (`approve` true) or `campaignd reject ID`.
pub fn answer(
    config: Option<&std::path::Path>,
    args: AnswerArgs,
    approve: bool,
) -> anyhow::Result<ExitCode> {
    if uuid::Uuid::parse_str(&args.id).is_err() {
        return Err(anyhow!(
            "`{}` is not a request id (a UUID, as `campaignd approvals` lists them)",
            args.id
        ));
    }
    if args.reason.trim().is_empty() {
        return Err(anyhow!("--reason is empty: say why, it is recorded"));
    }
    let mut body = serde_json::json!({ "reason": args.reason });
    if let Some(amend) = &args.amend {
        if !approve {
            return Err(anyhow!("--amend goes with approve, not reject"));
        }
        let parsed: Value = serde_json::from_str(amend)
            .map_err(|e| anyhow!("--amend is not JSON ({e}): give e.g. '{{\"spend\": 120000}}'"))?;
        body["amend"] = parsed;
    }
    let daemon = Daemon::from_config(config)?;
    let verb = if approve { "approve" } else { "reject" };
    let path = format!("/v1/approvals/{}/{verb}", args.id);
    let answer = match daemon.call("POST", &path, Some(&body), &[200]) {
        Ok((_, value)) => value,
        Err(err) => return failed(err),
    };
    if args.json {
        emit(&(serde_json::to_string_pretty(&answer)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let field = |key: &str| answer.get(key).map_or_else(|| "-".to_owned(), display);
    emit(&format!(
        "{} {}; recorded as decision {}; a day held for it runs again now, anything else takes effect at the campaign's next day\n",
        field("state"),
        field("approval"),
        field("decision")
    ))?;
    Ok(ExitCode::SUCCESS)
}
