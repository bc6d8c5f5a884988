//! `campaignd status`, `campaignd campaigns`, `campaignd trace ID` and `campaignd revive NAME`: ask
//! a running daemon through its HTTP API and print the answer as a table, JSON or JSON Lines.
//!
//! The address is `api.listen` from the same configuration the daemon loads (`--config`,
//! `CAMPAIGND__API__LISTEN`, …). The bearer token is `CAMPAIGND_TOKEN` when set, otherwise the first
//! operator token of `api.tokens` (inline or from `api.tokens_file`), otherwise the first token
//! there. A token is never taken from the command line, where other users could read it in the
//! process list, and never printed.
//!
//! Exit codes: 0 success; 1 a negative answer (not ready, no such trace, an agent that is not
//! isolated); 2 the daemon cannot be reached, the token is refused, or the answer makes no sense.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use campaignd::domain::money::{amount_text, money_text};
use campaignd::settings::Settings;
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

/// The environment variable holding the client's bearer token.
pub const TOKEN_VARIABLE: &str = "CAMPAIGND_TOKEN";

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print readiness and agents as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct CampaignsArgs {
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The correlation id of the chain of work (a UUID, as in logs and decisions).
    pub id: String,
    /// Print the API's JSON answer as one object instead of one record per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReviveArgs {
    /// The isolated agent to restart, as `campaignd status` names it (`compliance`).
    pub name: String,
    /// Why the agent may be trusted again; recorded in the revive decision with the token's name.
    #[arg(long)]
    pub reason: String,
    /// Print the API's JSON answer instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Why a call to the daemon did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    #[error(
        "cannot reach campaignd at {addr} ({reason}); is the daemon running, and does api.listen \
         (or CAMPAIGND__API__LISTEN) name the address it listens on?"
    )]
    Unreachable { addr: String, reason: String },
    #[error("campaignd at {addr} answered {status} to {method} {path}: {message}")]
    Refused {
        addr: String,
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
    #[error(
        "campaignd at {addr} answered {method} {path} with something that is not JSON: {reason}"
    )]
    NotJson {
        addr: String,
        method: &'static str,
        path: String,
        reason: String,
    },
}

impl CallError {
    fn exit_code(&self) -> ExitCode {
        match self {
            // No such trace is an answer, not a failure; a 404 elsewhere means a daemon without
            // the route, which is.
            CallError::Refused {
                status: 404, path, ..
            } if path.starts_with("/v1/traces/") => ExitCode::from(1),
            // A revive of an agent that is not isolated is an answer too.
            CallError::Refused {
                status: 409, path, ..
            } if path.ends_with("/revive") => ExitCode::from(1),
            // So is a request answered already (by someone else, or by its expiry).
            CallError::Refused {
                status: 409, path, ..
            } if path.starts_with("/v1/approvals/") => ExitCode::from(1),
            // And an order delivered or cancelled already.
            CallError::Refused {
                status: 409, path, ..
            } if path.starts_with("/v1/orders/") => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

/// Where the daemon is and how to authenticate to it.
pub(super) struct Daemon {
    /// `host:port` as connected to.
    addr: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Daemon {
    pub(super) fn from_config(config: Option<&Path>) -> anyhow::Result<Self> {
        let settings = Settings::load(config).map_err(|problems| {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow!(
                "the configuration has {} problem(s), so the daemon's address is unknown:\n{}",
                listed.len(),
                listed.join("\n")
            )
        })?;
        let api = &settings.config.api;
        let explicit = std::env::var(TOKEN_VARIABLE)
            .ok()
            .filter(|t| !t.trim().is_empty());
        let configured = api
            .tokens
            .iter()
            .find(|t| t.tenant.is_none())
            .or_else(|| api.tokens.first())
            .map(|t| t.token.clone());
        let agent = ureq::Agent::config_builder()
            // The client reads status codes itself: a 404 or 503 is an answer to print.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Daemon {
            addr: connect_address(&api.listen),
            token: explicit.or(configured),
            agent,
        })
    }

    /// GETs `path` and parses the JSON answer; a status outside `accept` is an error carrying the
    /// API's own message.
    pub(super) fn get(&self, path: &str, accept: &[u16]) -> Result<(u16, Value), CallError> {
        self.call("GET", path, None, accept)
    }

    /// Sends `method path` (with a JSON `body` for a POST) and parses the JSON answer, as
    /// [`Daemon::get`] does.
    pub(super) fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        accept: &[u16],
    ) -> Result<(u16, Value), CallError> {
        self.call_keyed(method, path, body, None, accept)
    }

    /// Every page of a paged list: `GET path?query&limit=1000&cursor=…` until no `next_cursor`,
    /// the items of each page's `field` in order.
    pub(super) fn all_pages(
        &self,
        path: &str,
        query: &[String],
        field: &str,
    ) -> Result<Vec<Value>, CallError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page_query = query.to_vec();
            page_query.push("limit=1000".to_owned());
            if let Some(cursor) = &cursor {
                page_query.push(format!("cursor={}", encode(cursor)));
            }
            let full = format!("{path}?{}", page_query.join("&"));
            let (_, answer) = self.get(&full, &[200])?;
            let Some(page) = answer.get(field).and_then(Value::as_array) else {
                return Err(CallError::NotJson {
                    addr: self.addr.clone(),
                    method: "GET",
                    path: full,
                    reason: format!("it has no `{field}` list"),
                });
            };
            items.extend(page.iter().cloned());
            cursor = answer
                .get("next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                return Ok(items);
            }
        }
    }

    /// [`Daemon::call`] with an `Idempotency-Key`, so that a retried POST counts once.
    pub(super) fn call_keyed(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
        accept: &[u16],
    ) -> Result<(u16, Value), CallError> {
        let url = format!("http://{}{path}", self.addr);
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let sent = match body {
            Some(body) => {
                let mut request = self.agent.post(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                if let Some(key) = key {
                    request = request.header("Idempotency-Key", key);
                }
                request
                    .header("Content-Type", "application/json")
                    .send(body.to_string())
            }
            None => {
                let mut request = self.agent.get(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("Authorization", bearer);
                }
                request.call()
            }
        };
        let mut response = sent.map_err(|e| CallError::Unreachable {
            addr: self.addr.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| CallError::Unreachable {
                addr: self.addr.clone(),
                reason: format!("the answer could not be read: {e}"),
            })?;
        let parsed: Result<Value, _> = serde_json::from_str(&text);
        if !accept.contains(&status) {
            let message = parsed
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| text.trim().chars().take(300).collect());
            let hint = match (status, &self.token) {
                (401, None) => format!(
                    " (no token: set {TOKEN_VARIABLE} or add an operator token to api.tokens)"
                ),
                (401, Some(_)) => format!(
                    " (check {TOKEN_VARIABLE} or api.tokens against the daemon's configuration)"
                ),
                (403, _) if path.starts_with("/v1/approvals") => {
                    " (answering needs a token with role approver or operator)".to_owned()
                }
                (403, _) => " (this needs an operator token, one without a tenant)".to_owned(),
                _ => String::new(),
            };
            return Err(CallError::Refused {
                addr: self.addr.clone(),
                method,
                path: path.to_owned(),
                status,
                message: message + &hint,
            });
        }
        parsed
            .map(|value| (status, value))
            .map_err(|e| CallError::NotJson {
                addr: self.addr.clone(),
                method,
                path: path.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// Percent-encodes a path segment or query value (anything but unreserved characters).
pub(super) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The address to connect to for a listen address: a wildcard listen (`0.0.0.0`, `[::]`) is
/// reached on loopback.
fn connect_address(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(loopback, addr.port()).to_string()
        }
        _ => listen.to_owned(),
    }
}

/// Prints a call error and gives its exit code.
pub(super) fn failed(error: CallError) -> anyhow::Result<ExitCode> {
    eprintln!("error: {error}");
    Ok(error.exit_code())
}

/// `campaignd status`: readiness, then each agent's state, restarts and last error.
pub fn status(config: Option<&Path>, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::from_config(config)?;
    let readiness = match daemon.get("/readyz", &[200, 503]) {
        Ok((_, value)) => value,
        Err(err) => return failed(err),
    };
    let ready = readiness
        .get("ready")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let reasons: Vec<String> = readiness
        .get("reasons")
        .and_then(Value::as_array)
        .map(|r| r.iter().map(display).collect())
        .unwrap_or_default();
    let agents = daemon.get("/v1/agents", &[200]).map(|(_, v)| v);
    let code = if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if args.json {
        let agents = match agents {
            Ok(value) => value.get("agents").cloned().unwrap_or(Value::Null),
            Err(err) => return failed(err),
        };
        let out = serde_json::json!({ "ready": ready, "reasons": reasons, "agents": agents });
        emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
        return Ok(code);
    }
    let mut out = format!(
        "campaignd at {}: {}\n",
        daemon.addr,
        if ready { "ready" } else { "NOT READY" }
    );
    for reason in &reasons {
        let _ = writeln!(out, "  - {reason}");
    }
    let agents = match agents {
        Ok(value) => value,
        Err(err) => {
            emit(&out)?;
            return failed(err);
        }
    };
    let rows: Vec<Vec<String>> = agents
        .get("agents")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|agent| {
                    let field = |key: &str| agent.get(key).map_or_else(|| "-".to_owned(), display);
                    vec![
                        field("name"),
                        field("state"),
                        field("restarts"),
                        format!("{}/{}", field("in_flight"), field("mailbox")),
                        field("last_error"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    out.push('\n');
    out.push_str(&table(
        &["AGENT", "STATE", "RESTARTS", "MAILBOX", "LAST ERROR"],
        &rows,
    ));
    emit(&out)?;
    Ok(code)
}

/// `campaignd revive NAME --reason WHY`: restarts an isolated agent and records who and why.
pub fn revive(config: Option<&Path>, args: ReviveArgs) -> anyhow::Result<ExitCode> {
    let plain = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !plain {
        return Err(anyhow!(
            "`{}` is not an agent name (letters, digits, `_` and `-`, as `campaignd status` lists them)",
            args.name
        ));
    }
    if args.reason.trim().is_empty() {
        return Err(anyhow!(
            "--reason is empty: say why the agent may be trusted again"
        ));
    }
    let daemon = Daemon::from_config(config)?;
    let path = format!("/v1/agents/{}/revive", args.name);
    let body = serde_json::json!({ "reason": args.reason });
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
        "revived `{}` ({} now); recorded as decision {}; `campaignd trace {}` shows it. Campaigns it held stay held until resumed.\n",
        field("agent"),
        field("state"),
        field("decision"),
        field("correlation_id")
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The columns of `campaignd campaigns`: header, and where the value is (top level first, then
/// under `goal`, so the table works with flat and nested answers alike).
const CAMPAIGN_COLUMNS: [(&str, &str); 12] = [
    ("ID", "id"),
    ("TENANT", "tenant"),
    ("STATE", "state"),
    ("PHASE", "phase"),
    ("DAY", "day"),
    ("PROGRESS", "progress"),
    ("CONVERSIONS", "conversions"),
    ("TARGET", "target"),
    ("SPEND", "spend"),
    ("BUDGET", "budget"),
    ("ETA DAY", "eta_day"),
    ("DEADLINE", "deadline"),
];

/// `campaignd campaigns`: every campaign the token may see, one row each.
pub fn campaigns(config: Option<&Path>, args: CampaignsArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::from_config(config)?;
    let answer = match daemon.get("/v1/campaigns", &[200]) {
        Ok((_, value)) => value,
        Err(err) => return failed(err),
    };
    if args.json {
        emit(&(serde_json::to_string_pretty(&answer)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(list) = answer.get("campaigns").and_then(Value::as_array) else {
        return failed(CallError::NotJson {
            addr: daemon.addr,
            method: "GET",
            path: "/v1/campaigns".to_owned(),
            reason: "it has no `campaigns` list".to_owned(),
        });
    };
    let lookup = |campaign: &Value, key: &str| -> Option<Value> {
        campaign
            .get(key)
            .or_else(|| campaign.get("goal").and_then(|g| g.get(key)))
            .filter(|v| !v.is_null())
            .cloned()
    };
    // Only the columns some campaign has: an older or newer daemon may answer with fewer fields.
    let columns: Vec<(&str, &str)> = CAMPAIGN_COLUMNS
        .iter()
        .copied()
        .filter(|(_, key)| *key == "id" || list.iter().any(|c| lookup(c, key).is_some()))
        .collect();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|campaign| {
            columns
                .iter()
                .map(|(_, key)| match lookup(campaign, key) {
                    Some(Value::Number(n)) if matches!(*key, "spend" | "budget") => {
                        money_cell(&n, lookup(campaign, "currency").as_ref())
                    }
                    Some(Value::Number(n)) if *key == "progress" => n
                        .as_f64()
                        .map_or_else(|| n.to_string(), |p| format!("{:.1}%", p * 100.0)),
                    Some(Value::Number(n)) => n.as_f64().map_or_else(
                        || n.to_string(),
                        |x| {
                            if x.fract() == 0.0 {
                                format!("{x:.0}")
                            } else {
                                format!("{x:.2}")
                            }
                        },
                    ),
                    Some(value) => display(&value),
                    None => "-".to_owned(),
                })
                .collect()
        })
        .collect();
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    if rows.is_empty() {
        emit("no campaigns visible to this token\n")?;
    } else {
        emit(&table(&headers, &rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `campaignd trace ID`: every decision and outcome of one chain of work, in time order, one JSON
/// object per line.
pub fn trace(config: Option<&Path>, args: TraceArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::from_config(config)?;
    // The id goes into the path: anything but a UUID's characters is refused here rather than
    // sent as some other route.
    if args.id.is_empty() || !args.id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        eprintln!(
            "error: `{}` is not a correlation id (a UUID like 0193a8c2-5f1e-7b3a-9c4d-2e6f8a1b3c5d)",
            args.id
        );
        return Ok(ExitCode::from(2));
    }
    let path = format!("/v1/traces/{}", args.id);
    let answer = match daemon.get(&path, &[200]) {
        Ok((_, value)) => value,
        Err(err) => return failed(err),
    };
    if args.json {
        emit(&(serde_json::to_string_pretty(&answer)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut records: Vec<(String, Value)> = Vec::new();
    for (list, kind, at) in [
        ("decisions", "decision", "decided_at"),
        ("outcomes", "outcome", "observed_at"),
    ] {
        for record in answer
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let when = record
                .get(at)
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| {
                    t.to_utc()
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                })
                .unwrap_or_default();
            let mut record = record.clone();
            if let Value::Object(map) = &mut record {
                map.entry("record")
                    .or_insert_with(|| Value::String(kind.to_owned()));
            }
            records.push((when, record));
        }
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (_, record) in &records {
        out.push_str(&serde_json::to_string(record).context("encoding a trace record")?);
        out.push('\n');
    }
    emit(&out)?;
    if let Some(skipped) = answer
        .get("skipped")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
    {
        eprintln!("warning: {skipped} stored record(s) of this trace could not be read");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout. A closed pipe (`campaignd trace ID | head`) is the reader's choice, not an
/// error.
pub(super) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// A JSON value as a table cell: strings without quotes, null as `-`, the rest as compact JSON.
pub(super) fn display(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An amount as people read it: in its currency's minor unit with thousands grouped
/// ("5,009,454 KRW", "1,234.50 USD").
fn money_cell(amount: &serde_json::Number, currency: Option<&Value>) -> String {
    match (amount.as_f64(), currency) {
        (Some(x), Some(Value::String(currency))) => money_text(x, currency),
        (Some(x), _) => amount_text(x, 2),
        (None, _) => amount.to_string(),
    }
}

/// Left-aligned columns padded to their widest cell by display width (campaign names may be
/// Korean); the last column is not padded.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.push_str(&" ".repeat(width.saturating_sub(cell.width())));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        assert_eq!(connect_address("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(connect_address("[::]:9000"), "[::1]:9000");
        assert_eq!(connect_address("10.0.0.5:80"), "10.0.0.5:80");
        assert_eq!(connect_address("localhost:80"), "localhost:80");
    }

    #[test]
    fn money_reads_in_its_currency() {
        let number = |x: f64| serde_json::Number::from_f64(x).unwrap_or_else(|| 0.into());
        let krw = Value::String("KRW".into());
        assert_eq!(
            money_cell(&number(5_009_454.0), Some(&krw)),
            "5,009,454 KRW"
        );
        let usd = Value::String("USD".into());
        assert_eq!(money_cell(&number(1234.5), Some(&usd)), "1,234.50 USD");
        assert_eq!(money_cell(&number(7.0), None), "7.00");
    }

    #[test]
    fn table_columns_align_by_display_width() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["가나".to_owned(), "x".to_owned()],
                vec!["abcde".to_owned(), "y".to_owned()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["ID     NAME", "가나   x", "abcde  y"]);
    }
}
