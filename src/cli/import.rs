//! `campaignd consents import FILE.csv` and `campaignd observations import FILE.csv`: a CSV export
//! (a CRM's consent list, an ad platform's daily report) posted to the running daemon's API in
//! batches, the token and address as for `campaignd status`.
//!
//! The header row names the columns, which are the API item's fields; an empty cell is a field
//! left out. Every batch carries an `Idempotency-Key` derived from the file's bytes and the batch's
//! place in the file, so an import run twice (after a failure half-way, say) records nothing twice.
//! Rejected rows are printed with their line numbers and the API's problems. Exit codes: 0 every
//! row recorded or a duplicate; 1 some row rejected; 2 the file cannot be read or a batch is
//! refused (the batches before it stand; run the same import again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Map, Value};

use super::client::{Daemon, emit, failed};
use campaignd::api::idempotency::sha256_hex;

/// The most rows one batch carries (the API's limit for both routes).
const BATCH_ROWS: usize = 1000;

#[derive(clap::Subcommand, Debug)]
pub enum ConsentsCommand {
    /// Post a CSV of consent events (grants, re-confirmations, withdrawals) to POST
    /// /v1/consents. Columns: subject, channel, purpose, jurisdiction, granted_at, source,
    /// and optionally text_hash, night_consent, withdrawn_at, last_reconfirmed_at,
    /// existing_transaction_at.
    Import(ConsentImportArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum ObservationsCommand {
    /// Post a CSV of observations (an ad platform's daily export, its columns mapped to
    /// campaignd's) to POST /v1/observations, one batch per campaign and day. Columns:
    /// campaign, day, channel, variant, window_start, window_end, impressions, clicks,
    /// conversions, spend, and optionally segment and revenue.
    Import(ObservationImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConsentImportArgs {
    pub file: PathBuf,
    /// The tenant whose ledger records them (the token's own by default; an operator's token must
    /// name it).
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ObservationImportArgs {
    pub file: PathBuf,
}

const CONSENT_COLUMNS: [&str; 12] = [
    "subject",
    "channel",
    "purpose",
    "jurisdiction",
    "granted_at",
    "source",
    "text_hash",
    "night_consent",
    "withdrawn_at",
    "last_reconfirmed_at",
    "existing_transaction_at",
    "segments",
];

const OBSERVATION_COLUMNS: [&str; 12] = [
    "campaign",
    "day",
    "channel",
    "variant",
    "segment",
    "window_start",
    "window_end",
    "impressions",
    "clicks",
    "conversions",
    "spend",
    "revenue",
];

/// One data row: its line in the file and its fields.
#[derive(Debug)]
struct Row {
    line: u64,
    fields: Map<String, Value>,
}

/// Reads the file's rows, each cell typed by `cell`; a column not in `known` is refused.
fn read_rows(
    path: &Path,
    known: &[&str],
    cell: fn(&str, &str) -> Value,
) -> anyhow::Result<(Vec<u8>, Vec<Row>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .with_context(|| format!("{}: the header row cannot be read", path.display()))?
        .clone();
    if let Some(unknown) = headers.iter().find(|h| !known.contains(h)) {
        bail!(
            "{}: unknown column `{unknown}`; the columns are {}",
            path.display(),
            known.join(", ")
        );
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            anyhow::anyhow!(
                "{} line {line}: the row cannot be read: {e}",
                path.display()
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let fields = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.to_owned(), cell(name, value)))
            .collect();
        rows.push(Row { line, fields });
    }
    if rows.is_empty() {
        bail!("{}: no rows under the header", path.display());
    }
    Ok((bytes, rows))
}

fn consent_cell(column: &str, value: &str) -> Value {
    match (column, value.to_ascii_lowercase().as_str()) {
        ("night_consent", "true" | "yes" | "1") => Value::Bool(true),
        ("night_consent", "false" | "no" | "0") => Value::Bool(false),
        // One cell, several segments: `students;alumni`.
        ("segments", _) => Value::Array(
            value
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(value.to_owned()),
    }
}

fn observation_cell(column: &str, value: &str) -> Value {
    let numeric = matches!(
        column,
        "day" | "impressions" | "clicks" | "conversions" | "spend" | "revenue"
    );
    if numeric && let Ok(number) = serde_json::from_str::<serde_json::Number>(value) {
        return Value::Number(number);
    }
    // Left as text, a bad number is refused by the API, naming the row's field.
    Value::String(value.to_owned())
}

/// What the import has seen so far, for the exit code.
#[derive(Default)]
struct Tally {
    recorded: u64,
    duplicates: u64,
    rejected: u64,
}

/// Posts one batch and prints its line and its rejected rows.
fn post(
    daemon: &Daemon,
    path: &str,
    body: &Value,
    key: &str,
    label: &str,
    lines: &[u64],
    tally: &mut Tally,
) -> Result<(), super::client::CallError> {
    let (_, answer) = daemon.call_keyed("POST", path, Some(body), Some(key), &[200])?;
    let count = |field: &str| answer.get(field).and_then(Value::as_u64).unwrap_or(0);
    let (recorded, duplicates, rejected) =
        (count("recorded"), count("duplicates"), count("rejected"));
    tally.recorded += recorded;
    tally.duplicates += duplicates;
    tally.rejected += rejected;
    let mut out =
        format!("{label}: {recorded} recorded, {duplicates} duplicates, {rejected} rejected\n");
    let items = answer.get("items").and_then(Value::as_array);
    for item in items.into_iter().flatten() {
        if item.get("status").and_then(Value::as_str) != Some("rejected") {
            continue;
        }
        let index = item.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let line = lines.get(index).copied().unwrap_or(0);
        let problems = item.get("problems").and_then(Value::as_array);
        for problem in problems.into_iter().flatten() {
            let message = problem.get("message").and_then(Value::as_str).unwrap_or("");
            out.push_str(&format!("  line {line}: {message}\n"));
        }
    }
    let _ = emit(&out);
    Ok(())
}

fn finish(tally: &Tally) -> anyhow::Result<ExitCode> {
    emit(&format!(
        "done: {} recorded, {} duplicates, {} rejected\n",
        tally.recorded, tally.duplicates, tally.rejected
    ))?;
    Ok(if tally.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The batch's key: the file's content and the batch's place in it.
fn batch_key(route: &str, bytes: &[u8], batch: usize) -> String {
    let kind = route.rsplit('/').next().unwrap_or(route);
    format!("import-{kind}-{}-{batch}", &sha256_hex(bytes)[..32])
}

/// One batch to post: its body, how its line reads, and the file lines of its items.
struct Batch {
    body: Value,
    label: String,
    lines: Vec<u64>,
}

fn items(chunk: &[Row]) -> Value {
    Value::Array(
        chunk
            .iter()
            .map(|r| Value::Object(r.fields.clone()))
            .collect(),
    )
}

/// Posts every batch to `path` in order, each keyed by the file's content and its place, and
/// answers the exit code; a refused batch stops the import (those before it stand).
fn send_all(
    config: Option<&Path>,
    path: &str,
    bytes: &[u8],
    batches: Vec<Batch>,
) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::from_config(config)?;
    let mut tally = Tally::default();
    for (n, batch) in batches.into_iter().enumerate() {
        let key = batch_key(path, bytes, n);
        if let Err(err) = post(
            &daemon,
            path,
            &batch.body,
            &key,
            &batch.label,
            &batch.lines,
            &mut tally,
        ) {
            return failed(err);
        }
    }
    finish(&tally)
}

pub fn consents(config: Option<&Path>, command: ConsentsCommand) -> anyhow::Result<ExitCode> {
    let ConsentsCommand::Import(args) = command;
    let (bytes, rows) = read_rows(&args.file, &CONSENT_COLUMNS, consent_cell)?;
    let batches = rows
        .chunks(BATCH_ROWS)
        .enumerate()
        .map(|(n, chunk)| {
            let mut body = serde_json::json!({ "consents": items(chunk) });
            if let Some(tenant) = &args.tenant {
                body["tenant"] = Value::String(tenant.clone());
            }
            let lines: Vec<u64> = chunk.iter().map(|r| r.line).collect();
            let label = format!(
                "batch {} (lines {}–{})",
                n + 1,
                lines.first().unwrap_or(&0),
                lines.last().unwrap_or(&0)
            );
            Batch { body, label, lines }
        })
        .collect();
    send_all(config, "/v1/consents", &bytes, batches)
}

pub fn observations(
    config: Option<&Path>,
    command: ObservationsCommand,
) -> anyhow::Result<ExitCode> {
    let ObservationsCommand::Import(args) = command;
    let (bytes, rows) = read_rows(&args.file, &OBSERVATION_COLUMNS, observation_cell)?;
    // One batch per campaign and day, in the order they first appear.
    let mut groups: BTreeMap<(usize, String, u64), Vec<Row>> = BTreeMap::new();
    let mut first_seen: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for mut row in rows {
        let campaign = match row.fields.get("campaign").and_then(Value::as_str) {
            Some(c) => c.to_owned(),
            None => bail!("line {}: the `campaign` cell is empty", row.line),
        };
        let day = match row.fields.remove("day").as_ref().and_then(Value::as_u64) {
            Some(d) => d,
            None => bail!(
                "line {}: the `day` cell must be a whole number of days since the campaign's start (0 is the first)",
                row.line
            ),
        };
        let order = first_seen.len();
        let order = *first_seen.entry((campaign.clone(), day)).or_insert(order);
        groups.entry((order, campaign, day)).or_default().push(row);
    }
    let mut batches = Vec::new();
    for ((_, campaign, day), rows) in groups {
        for chunk in rows.chunks(BATCH_ROWS) {
            batches.push(Batch {
                body: serde_json::json!({
                    "campaign": campaign, "day": day, "observations": items(chunk)
                }),
                label: format!("{campaign} day {day} ({} rows)", chunk.len()),
                lines: chunk.iter().map(|r| r.line).collect(),
            });
        }
    }
    send_all(config, "/v1/observations", &bytes, batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn cells_are_typed_by_column_and_empty_ones_left_out() {
        let csv = file(
            "subject,channel,purpose,jurisdiction,granted_at,source,night_consent,withdrawn_at,segments\n\
             010-1234-5678,sms,marketing,KR,2026-02-01T09:00:00Z,web_form,yes,,students; alumni;\n",
        );
        let (_, rows) = read_rows(csv.path(), &CONSENT_COLUMNS, consent_cell).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].fields["night_consent"], Value::Bool(true));
        assert_eq!(
            rows[0].fields["segments"],
            serde_json::json!(["students", "alumni"])
        );
        assert!(!rows[0].fields.contains_key("withdrawn_at"));
        let csv = file("campaign,day,clicks,spend\nx,3,12,4.5\nx,3,abc,1\n");
        let (_, rows) = read_rows(csv.path(), &OBSERVATION_COLUMNS, observation_cell).unwrap();
        assert_eq!(rows[0].fields["clicks"], serde_json::json!(12));
        assert_eq!(rows[0].fields["spend"], serde_json::json!(4.5));
        assert_eq!(rows[1].fields["clicks"], serde_json::json!("abc"));
    }

    #[test]
    fn an_unknown_column_or_a_ragged_row_is_named() {
        let csv = file("subject,phone\na,b\n");
        let err = read_rows(csv.path(), &CONSENT_COLUMNS, consent_cell).unwrap_err();
        assert!(err.to_string().contains("unknown column `phone`"), "{err}");
        let csv = file("subject,channel\na,sms\nb\n");
        let err = read_rows(csv.path(), &CONSENT_COLUMNS, consent_cell).unwrap_err();
        assert!(format!("{err:#}").contains("line 3"), "{err:#}");
    }

    #[test]
    fn the_batch_key_follows_the_content_and_the_place() {
        assert_eq!(batch_key("c", b"x", 0), batch_key("c", b"x", 0));
        assert_ne!(batch_key("c", b"x", 0), batch_key("c", b"x", 1));
        assert_ne!(batch_key("c", b"x", 0), batch_key("c", b"y", 0));
    }
}
