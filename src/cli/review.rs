//! `campaignd review`: reviews one message for compliance and prints the verdict as JSON.
//!
//! A thin layer over `domain::compliance` and `domain::channel`: it turns flags into a review
//! request, loads the playbooks (the embedded ones unless `--playbook` or `--content-playbook`
//! names a file) and maps the verdict to an exit code: 0 approved, 1 not approved, 2 bad input
//! (clap's own errors exit 2 too). It checks the format limits as content does: the format comes
//! from the channel and the region (the first jurisdiction's unless `--region` is given), or from
//! `--format`, and a message that fits none of them is blocked (`FORMAT-LIMIT`). A message is
//! commercial unless `--non-commercial` says otherwise. It never reads the clock: the send time is
//! a required flag, so a review can be replayed exactly.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use campaignd::domain::brief::review_claims;
use campaignd::domain::campaign::Channel;
use campaignd::domain::channel::{self, ChannelLimits, Creative, Format, FormatFit};
use campaignd::domain::compliance::{
    Claim, CompliancePlaybook, ConsentRecord, Field, Finding, Jurisdiction, Message,
    MessageChannel, ReviewRequest, Sender, Severity, Verdict, apply_fixes,
};
use campaignd::domain::content::ContentPlaybook;
use campaignd::settings::campaigns::load_file;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  campaignd review --jurisdiction KR --channel sms \\\n    \
    --at 2026-11-23T22:30:00+09:00 --sender ABC마트 --opt-out-number 080-123-4567 \\\n    \
    --consent-granted 2026-01-10 --consent-source web_form --text '[광고]ABC마트 봄세일'"
)]
pub struct ReviewArgs {
    /// The message text; read from stdin when absent.
    #[arg(long)]
    text: Option<String>,
    /// The email subject.
    #[arg(long)]
    subject: Option<String>,
    /// sms, lms, mms, push, messenger, email, social, search, display or call.
    #[arg(long)]
    channel: MessageChannel,
    /// A jurisdiction whose rules apply: KR, US or EU (repeat for several).
    #[arg(long = "jurisdiction", required = true)]
    jurisdictions: Vec<Jurisdiction>,
    /// When the message would be sent, RFC 3339 with its offset (2026-11-23T22:30:00+09:00).
    #[arg(long, value_parser = parse_rfc3339)]
    at: DateTime<FixedOffset>,
    /// The recipient's IANA time zone (America/New_York), for local-time rules.
    #[arg(long, value_parser = parse_tz)]
    recipient_tz: Option<Tz>,
    /// The message is not an advertisement (a transactional notice, say): the advertising rules
    /// do not apply to it. Every message is reviewed as commercial without it.
    #[arg(long)]
    non_commercial: bool,
    /// Accepted for scripts written when commercial was opt-in; every message is commercial
    /// unless `--non-commercial` is given.
    #[arg(long, hide = true, conflicts_with = "non_commercial")]
    commercial: bool,
    #[command(flatten)]
    shape: Box<FormatArgs>,
    /// The message is a paid endorsement.
    #[arg(long)]
    endorsement: bool,
    /// The product category (general, health_food, …).
    #[arg(long)]
    category: Option<String>,
    #[command(flatten)]
    sender: Box<SenderArgs>,
    #[command(flatten)]
    consent: Box<ConsentArgs>,
    /// A JSON file with the brand's claims registry: a list of
    /// {claim, evidence_id, source, period: "YYYY-MM-DD..YYYY-MM-DD"}.
    #[arg(long)]
    claims: Option<PathBuf>,
    /// A campaign file whose [brief] claims substantiate the message, as they do for the
    /// campaign's own copy (a brief claim citing the registry needs --claims to hold it).
    #[arg(long)]
    brief: Option<PathBuf>,
    /// An agent file with a [playbook] table; the embedded agents/compliance.toml when absent.
    #[arg(long)]
    playbook: Option<PathBuf>,
    /// Also apply the mechanical fixes, review the result and print both; the exit code is then
    /// the fixed message's.
    #[arg(long)]
    fix: bool,
}

/// The format whose limits the message is checked against, and its other fields. Boxed in
/// [`ReviewArgs`] so the command enum stays small.
#[derive(clap::Args, Debug)]
struct FormatArgs {
    /// The format to check the limits of: kr_sms, kr_lms, sms, google_rsa, display, meta, x, email
    /// or push. Without it, the channel's formats in the region, in order (a Korean SMS over 90
    /// bytes goes as an LMS).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The region (ISO 3166, KR) whose formats apply; the first --jurisdiction's when absent.
    #[arg(long)]
    region: Option<String>,
    /// The headline (search, display, social and push formats).
    #[arg(long)]
    headline: Option<String>,
    /// The display path of a search ad.
    #[arg(long)]
    path: Option<String>,
    /// An agent file whose [playbook] holds the format limits; the embedded agents/content.toml
    /// when absent.
    #[arg(long)]
    content_playbook: Option<PathBuf>,
}

/// Who sends the message. Boxed in [`ReviewArgs`] so the command enum stays small.
#[derive(clap::Args, Debug)]
struct SenderArgs {
    /// The sender's business name.
    #[arg(long)]
    sender: Option<String>,
    /// The sender's contact (a phone number or address).
    #[arg(long)]
    sender_contact: Option<String>,
    /// The number the message is sent from.
    #[arg(long)]
    callback: Option<String>,
    /// The sender's free opt-out number (080-…), used by the opt-out fix.
    #[arg(long)]
    opt_out_number: Option<String>,
    /// The sender's postal address (United States commercial email).
    #[arg(long)]
    postal_address: Option<String>,
}

/// The consent on record for the recipient; none when no consent flag is given.
#[derive(clap::Args, Debug)]
struct ConsentArgs {
    /// When consent was granted (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_date)]
    consent_granted: Option<DateTime<Utc>>,
    /// The recipient gave separate consent to advertising at night.
    #[arg(long)]
    night_consent: bool,
    /// When consent was withdrawn (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_date)]
    consent_withdrawn: Option<DateTime<Utc>>,
    /// How consent was given (web_form, paper, os_push_permission, pre_ticked, …).
    #[arg(long)]
    consent_source: Option<String>,
    /// When consent was last re-confirmed (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_date)]
    consent_reconfirmed: Option<DateTime<Utc>>,
    /// What consent was given for.
    #[arg(long, default_value = "marketing")]
    consent_purpose: String,
    /// The channel consent was given for; the message's channel when absent.
    #[arg(long)]
    consent_channel: Option<MessageChannel>,
    /// A hash of the consent text shown.
    #[arg(long)]
    consent_text_hash: Option<String>,
    /// The last transaction for the same kind of goods (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_date)]
    existing_transaction: Option<DateTime<Utc>>,
}

fn parse_rfc3339(value: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(value.trim()).map_err(|e| {
        format!("{e}; expected RFC 3339 with an offset, like 2026-11-23T22:30:00+09:00")
    })
}

fn parse_format(value: &str) -> Result<Format, String> {
    Format::parse(value.trim()).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!("not a format; one of {}", names.join(", "))
    })
}

fn parse_tz(value: &str) -> Result<Tz, String> {
    value
        .trim()
        .parse::<Tz>()
        .map_err(|_| "not an IANA time zone name, like Asia/Seoul or America/New_York".to_owned())
}

fn parse_date(value: &str) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| "expected a date (2026-01-10) or an RFC 3339 time".to_owned())
}

fn load_playbook(path: Option<&PathBuf>) -> anyhow::Result<CompliancePlaybook> {
    match path {
        None => CompliancePlaybook::embedded().context("the embedded compliance playbook"),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--playbook: cannot read {}", path.display()))?;
            CompliancePlaybook::from_toml_str(&text)
                .with_context(|| format!("--playbook: {}", path.display()))
        }
    }
}

fn load_limits(path: Option<&PathBuf>) -> anyhow::Result<ChannelLimits> {
    let playbook = match path {
        None => ContentPlaybook::embedded().context("the embedded content playbook")?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--content-playbook: cannot read {}", path.display()))?;
            ContentPlaybook::from_toml_str(&text)
                .with_context(|| format!("--content-playbook: {}", path.display()))?
        }
    };
    Ok(playbook.limits)
}

/// The formats a message on `channel` in `region` is checked against, in the order content tries
/// them. An LMS or MMS is a Korean LMS; a messenger message or a call has no format limit here.
fn formats_of(channel: MessageChannel, region: &str) -> Vec<Format> {
    let campaign_channel = match channel {
        MessageChannel::Lms | MessageChannel::Mms => return vec![Format::KrLms],
        MessageChannel::Messenger | MessageChannel::Call => return Vec::new(),
        MessageChannel::Sms => Channel::Sms,
        MessageChannel::Push => Channel::Push,
        MessageChannel::Email => Channel::Email,
        MessageChannel::Social => Channel::Social,
        MessageChannel::Search => Channel::Search,
        MessageChannel::Display => Channel::Display,
    };
    Format::for_channel(campaign_channel, region).to_vec()
}

/// The region whose formats apply when `--region` is not given: the first jurisdiction's.
fn region_of(jurisdiction: Option<&Jurisdiction>) -> &'static str {
    match jurisdiction {
        Some(Jurisdiction::Kr) => "KR",
        Some(Jurisdiction::Us) => "US",
        Some(Jurisdiction::Eu) | None => "EU",
    }
}

/// Where the message fits, and the verdict with a blocking `FORMAT-LIMIT` finding for each limit
/// it breaks when it fits none of its formats.
fn with_format(mut verdict: Verdict, placed: &FormatFit, playbook: &CompliancePlaybook) -> Verdict {
    if placed.fits() || placed.checked.is_empty() {
        return verdict;
    }
    let mut findings = std::mem::take(&mut verdict.findings);
    for check in &placed.checked {
        for violation in &check.fit.violations {
            findings.push(Finding {
                rule_id: "FORMAT-LIMIT".to_owned(),
                severity: Severity::Block,
                field: if violation.field == channel::Field::Subject {
                    Field::Subject
                } else {
                    Field::Text
                },
                span: None,
                message: format!("{}: it cannot be sent in that format", violation.message),
                fix: None,
            });
        }
    }
    Verdict::from_findings(findings, &playbook.risk)
}

fn load_claims(path: Option<&PathBuf>) -> anyhow::Result<Vec<Claim>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--claims: cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "--claims: {} is not a JSON list of {{claim, evidence_id, source, period: \"YYYY-MM-DD..YYYY-MM-DD\"}}",
            path.display()
        )
    })
}

fn read_text(text: Option<String>) -> anyhow::Result<String> {
    if let Some(text) = text {
        return Ok(text);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("no --text given and stdin could not be read as UTF-8")?;
    // A shell pipeline ends the text with a newline that is not part of the message.
    let trimmed = input.strip_suffix('\n').unwrap_or(&input);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

fn consent(args: &ConsentArgs, channel: MessageChannel) -> Option<ConsentRecord> {
    let any = args.consent_granted.is_some()
        || args.consent_withdrawn.is_some()
        || args.consent_reconfirmed.is_some()
        || args.consent_source.is_some()
        || args.consent_text_hash.is_some()
        || args.existing_transaction.is_some()
        || args.night_consent;
    any.then(|| ConsentRecord {
        subject: "cli".to_owned(),
        channel: args.consent_channel.unwrap_or(channel),
        purpose: args.consent_purpose.clone(),
        granted_at: args.consent_granted,
        source: args.consent_source.clone(),
        text_hash: args.consent_text_hash.clone(),
        night_consent: args.night_consent,
        withdrawn_at: args.consent_withdrawn,
        last_reconfirmed_at: args.consent_reconfirmed,
        jurisdiction: None,
        existing_transaction_at: args.existing_transaction,
        segments: Vec::new(),
    })
}

pub fn execute(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let playbook = load_playbook(args.playbook.as_ref())?;
    let shape = *args.shape;
    let limits = load_limits(shape.content_playbook.as_ref())?;
    let formats = match shape.format {
        Some(format) => vec![format],
        None => formats_of(
            args.channel,
            shape
                .region
                .as_deref()
                .unwrap_or_else(|| region_of(args.jurisdictions.first())),
        ),
    };
    let mut claims = load_claims(args.claims.as_ref())?;
    if let Some(path) = &args.brief {
        let goal = load_file(path).map_err(|problems| {
            anyhow::anyhow!(
                "--brief: {} is not a valid campaign file:\n{problems}",
                path.display()
            )
        })?;
        claims = review_claims(&goal, claims, &Default::default());
    }
    let consent = consent(&args.consent, args.channel);
    let sender = *args.sender;
    let text = read_text(args.text)?;
    let request = ReviewRequest {
        message: Message {
            channel: args.channel,
            text,
            subject: args.subject,
            commercial: !args.non_commercial,
            endorsement: args.endorsement,
            product_category: args.category,
            sender: Sender {
                business_name: sender.sender,
                contact: sender.sender_contact,
                opt_out_number: sender.opt_out_number,
                postal_address: sender.postal_address,
            },
            callback_number: sender.callback,
        },
        send_at: args.at,
        recipient_tz: args.recipient_tz,
        consent,
        per_recipient: false,
        claims,
        jurisdictions: args.jurisdictions,
    };
    let review = |request: &ReviewRequest| {
        let creative = Creative {
            text: request.message.text.clone(),
            headline: shape.headline.clone(),
            subject: request.message.subject.clone(),
            path: shape.path.clone(),
        };
        let format = limits.first_fit(&formats, &creative);
        Reviewed {
            verdict: with_format(playbook.review(request), &format, &playbook),
            format,
        }
    };
    let reviewed = review(&request);
    if !args.fix {
        print_json(&reviewed)?;
        return Ok(exit_code(reviewed.verdict.approved));
    }
    let fixed = apply_fixes(&request.message, &reviewed.verdict.findings);
    let mut again = request.clone();
    again.message = fixed.message.clone();
    if let Some(later) = fixed.send_at {
        again.send_at = later;
    }
    let after = review(&again);
    let approved = after.verdict.approved;
    let output = FixOutput {
        verdict: reviewed,
        fixed: FixedOutput {
            text: fixed.message.text,
            subject: fixed.message.subject,
            send_at: again.send_at,
            verdict: after,
        },
    };
    print_json(&output)?;
    Ok(exit_code(approved))
}

/// Prints `value` as pretty JSON. A reader that went away (`| head`) is not an error worth a
/// message; any other write failure is.
fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the verdict to stdout"),
    }
}

fn exit_code(approved: bool) -> ExitCode {
    if approved {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A verdict and where the message fits: the verdict's fields, and `format`.
#[derive(Serialize)]
struct Reviewed {
    #[serde(flatten)]
    verdict: Verdict,
    format: FormatFit,
}

/// What `--fix` prints: the verdict on the message as given, and on the message once fixed.
#[derive(Serialize)]
struct FixOutput {
    verdict: Reviewed,
    fixed: FixedOutput,
}

#[derive(Serialize)]
struct FixedOutput {
    text: String,
    subject: Option<String>,
    send_at: DateTime<FixedOffset>,
    verdict: Reviewed,
}
