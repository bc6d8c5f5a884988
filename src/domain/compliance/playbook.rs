//! The compliance playbook: every rule's switches, word lists, windows and jurisdictions, read from
//! the `[playbook]` table of `agents/compliance.toml` so that operators can change them without
//! recompiling. The file in the repository is embedded as the default.
//!
//! Parsing refuses unknown keys (a misspelt key is an error, not a silently ignored rule) and
//! validates what the types cannot say, naming the key that is wrong. It must never fall back to
//! a default for a key the operator wrote badly.

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::message::{Jurisdiction, MessageChannel};
use super::verdict::Severity;

/// The agent definition file in the repository, compiled in as the default playbook.
pub const EMBEDDED_AGENT_FILE: &str = include_str!("../../../agents/compliance.toml");

/// Why a playbook could not be used. The TOML error is part of the message rather than a source,
/// so that a cause chain does not print it twice.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("the agent file is not valid TOML: {0}")]
    Syntax(toml::de::Error),
    #[error("the agent file has no [playbook] table; add one (see agents/compliance.toml)")]
    Missing,
    #[error("in [playbook]: {0}")]
    Parse(toml::de::Error),
    #[error("the playbook table could not be read back as TOML: {0}")]
    Encode(toml::ser::Error),
    #[error("playbook key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> PlaybookError {
    PlaybookError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole playbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompliancePlaybook {
    pub risk: RiskWeights,
    pub rules: Rules,
}

/// How findings add up to a risk score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskWeights {
    pub high: u8,
    pub medium: u8,
    pub low: u8,
    /// The most a message without a blocking finding can score; below 100, which means blocked.
    pub cap: u8,
    /// A message with no blocking finding is approved when its risk is at most this.
    pub approve_max: u8,
}

/// One table per rule, keyed by the rule's id. Every rule must be present; switch one off with
/// `enabled = false` rather than deleting it, so that a missing table is always a mistake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(rename = "KR-AD-LABEL")]
    pub ad_label: AdLabelRule,
    #[serde(rename = "KR-SENDER")]
    pub sender: SenderRule,
    #[serde(rename = "KR-OPTOUT")]
    pub opt_out: OptOutRule,
    #[serde(rename = "KR-NIGHT")]
    pub night: NightRule,
    #[serde(rename = "KR-OPTIN")]
    pub opt_in: OptInRule,
    #[serde(rename = "KR-RECONFIRM")]
    pub reconfirm: ReconfirmRule,
    #[serde(rename = "KR-SUPERLATIVE")]
    pub superlative: SuperlativeRule,
    #[serde(rename = "CLAIM-SUBSTANTIATION")]
    pub substantiation: SubstantiationRule,
    #[serde(rename = "HEALTH-CLAIM")]
    pub health_claim: HealthClaimRule,
    #[serde(rename = "ENDORSEMENT")]
    pub endorsement: EndorsementRule,
    #[serde(rename = "US-CANSPAM")]
    pub can_spam: CanSpamRule,
    #[serde(rename = "US-TCPA-QUIET")]
    pub tcpa_quiet: TcpaQuietRule,
    #[serde(rename = "EU-GDPR-CONSENT")]
    pub gdpr_consent: GdprConsentRule,
}

/// Where a rule applies, the same four keys in every rule table.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub enabled: bool,
    pub jurisdictions: &'a [Jurisdiction],
    pub channels: &'a [MessageChannel],
    pub severity: Severity,
}

impl Scope<'_> {
    /// Whether the rule applies to a message on `channel` reviewed for `jurisdictions`.
    pub fn applies(&self, channel: MessageChannel, jurisdictions: &[Jurisdiction]) -> bool {
        self.enabled
            && self.channels.contains(&channel)
            && self.jurisdictions.iter().any(|j| jurisdictions.contains(j))
    }
}

macro_rules! scoped {
    ($($rule:ty),* $(,)?) => {$(
        impl $rule {
            pub fn scope(&self) -> Scope<'_> {
                Scope {
                    enabled: self.enabled,
                    jurisdictions: &self.jurisdictions,
                    channels: &self.channels,
                    severity: self.severity,
                }
            }
        }
    )*};
}

scoped!(
    AdLabelRule,
    SenderRule,
    OptOutRule,
    NightRule,
    OptInRule,
    ReconfirmRule,
    SuperlativeRule,
    SubstantiationRule,
    HealthClaimRule,
    EndorsementRule,
    CanSpamRule,
    TcpaQuietRule,
    GdprConsentRule,
);

fn yes() -> bool {
    true
}

/// KR-AD-LABEL: an advertising text (an email's subject) begins with exactly the label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdLabelRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// The exact label, `(광고)`.
    pub label: String,
    /// The letters of the label, used to recognise a wrong label to replace.
    pub lookalike_core: String,
    /// Characters a wrong label may be dressed in (brackets, dots).
    pub lookalike_noise: String,
}

/// KR-SENDER: the sender's business name follows the label, and its contact unless it is the
/// callback number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Characters allowed between the label and the name (`(광고)[ABC마트]`).
    pub name_brackets: String,
}

/// KR-OPTOUT: a free opt-out method at the end of the message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Phrases that announce a free opt-out (`무료거부`, `무료수신거부`).
    pub free_markers: Vec<String>,
    /// Phrases that announce an opt-out without saying it is free (`수신거부`).
    pub other_markers: Vec<String>,
    /// Number prefixes that are free to call (`080`).
    pub free_number_prefixes: Vec<String>,
    /// The opt-out must begin within this many characters of the end.
    pub end_window_chars: usize,
    /// The line a fix appends; `{number}` is the sender's opt-out number.
    pub fix_line: String,
    /// What separates the appended line from the text.
    pub fix_separator: String,
}

/// KR-NIGHT: advertising between `quiet_start` and `quiet_end` Korea time needs night consent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    pub timezone: TimeZone,
    pub quiet_start: ClockTime,
    pub quiet_end: ClockTime,
    /// Whether email is exempt. The law's reading is uncertain; the default is not exempt.
    pub email_exempt: bool,
}

/// KR-OPTIN: prior opt-in consent, or an existing transaction within the exception window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptInRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Consent purposes that cover advertising.
    pub purposes: Vec<String>,
    /// Consent sources that are not consent at all (an OS push permission, a pre-ticked box).
    pub invalid_sources: Vec<String>,
    /// How long an existing transaction stands in for consent.
    pub existing_transaction_months: u32,
    /// Channels one consent covers together (consent to texts covers SMS, LMS and MMS).
    pub channel_groups: Vec<Vec<MessageChannel>>,
}

/// KR-RECONFIRM: consent is re-confirmed at least every `interval_months`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconfirmRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    pub interval_months: u32,
}

/// KR-SUPERLATIVE: superlatives need a claims-registry entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperlativeRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    pub words: Vec<String>,
    /// Longer words that contain a superlative but are not one (`가장자리`, an edge).
    pub exceptions: Vec<String>,
    /// Words that state a cap when a number follows (`최대 30%` is "up to 30 %", not a claim).
    pub quantity_words: Vec<String>,
}

/// CLAIM-SUBSTANTIATION: a price, discount, "free", superlative or figure the brief or the claims
/// registry does not substantiate (see `substantiation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubstantiationRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Words that offer something at no charge (`무료`, `free`).
    pub free: Vec<String>,
    /// Words that state a reduction (`할인`, `1+1`, `sale`).
    pub discount: Vec<String>,
    /// Best, first, only, number one.
    pub superlative: Vec<String>,
    /// Signs before a number that make it a price (`$`, `₩`).
    pub price_prefixes: Vec<String>,
    /// Words after a number that make it a price (`원`, `USD`).
    pub price_units: Vec<String>,
    /// Words after a number that make it a countable fact (`명`, `x`, `customers`).
    pub count_units: Vec<String>,
    /// Longer wordings that contain a claim word but state none (`무료거부`, the free opt-out).
    pub exceptions: Vec<String>,
}

/// HEALTH-CLAIM: disease claims without evidence; blocking for the listed product categories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthClaimRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    pub words: Vec<String>,
    /// Product categories for which any such claim blocks, evidence or not.
    pub block_categories: Vec<String>,
}

/// ENDORSEMENT: a paid endorsement discloses itself at the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndorsementRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Disclosures that count (`#ad`, `#광고`, `유료광고`).
    pub clear: Vec<String>,
    /// Tags that do not clearly disclose (`#sp`, `#spon`, `#partner`).
    pub unclear: Vec<String>,
    pub unclear_severity: Severity,
    /// What may come before the disclosure and still be "the start" (the `(광고)` label).
    pub allowed_before: Vec<String>,
    /// The disclosure a fix puts at the start when there is none to move.
    pub default_disclosure: String,
}

/// US-CANSPAM: a commercial email's postal address, advertisement notice, opt-out and subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanSpamRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Words that identify the email as an advertisement, in its subject or body.
    pub ad_markers: Vec<String>,
    /// Words that offer an opt-out in the body.
    pub opt_out_markers: Vec<String>,
    /// Subject openings that pretend to be a conversation (`RE:`, `FW:`).
    pub deceptive_subject_prefixes: Vec<String>,
    /// Business days within which an opt-out must be honoured.
    pub opt_out_business_days: u32,
}

/// US-TCPA-QUIET: telemarketing texts and calls only in the recipient's daytime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpaQuietRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    /// Allowed from this time (inclusive) …
    pub allowed_start: ClockTime,
    /// … until this time (exclusive), recipient local time.
    pub allowed_end: ClockTime,
}

/// EU-GDPR-CONSENT: specific, recorded, freely given consent that has not been withdrawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GdprConsentRule {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub jurisdictions: Vec<Jurisdiction>,
    pub channels: Vec<MessageChannel>,
    pub severity: Severity,
    pub purposes: Vec<String>,
    /// Sources that are not consent (`pre_ticked`, `silence`, `os_push_permission`).
    pub invalid_sources: Vec<String>,
}

/// A time of day written `HH:MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime(pub NaiveTime);

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.format("%H:%M").to_string())
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M")
            .map(ClockTime)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a time of day as HH:MM")))
    }
}

/// An IANA time zone written by name (`Asia/Seoul`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(pub Tz);

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Tz>()
            .map(TimeZone)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an IANA time zone name")))
    }
}

/// Only the table this module reads; the `[agent]` part belongs to the settings layer.
#[derive(Deserialize)]
struct AgentFile {
    playbook: CompliancePlaybook,
}

impl CompliancePlaybook {
    /// Reads the `[playbook]` table of a whole agent definition file (the `[agent]` table and any
    /// other table are left to their owners).
    pub fn from_toml_str(agent_file: &str) -> Result<Self, PlaybookError> {
        let table: toml::Table = toml::from_str(agent_file).map_err(PlaybookError::Syntax)?;
        if !table.contains_key("playbook") {
            return Err(PlaybookError::Missing);
        }
        // Parsed again from the text so that errors point at the line in the operator's file.
        let file: AgentFile = toml::from_str(agent_file).map_err(PlaybookError::Parse)?;
        file.playbook.validate()?;
        Ok(file.playbook)
    }

    /// Reads an already parsed `[playbook]` table (the value under the `playbook` key).
    pub fn from_table(playbook: &toml::Table) -> Result<Self, PlaybookError> {
        // A round trip through text gives the error messages a line to quote.
        let text = toml::to_string(playbook).map_err(PlaybookError::Encode)?;
        let parsed: CompliancePlaybook = toml::from_str(&text).map_err(PlaybookError::Parse)?;
        parsed.validate()?;
        Ok(parsed)
    }

    /// The playbook compiled in from `agents/compliance.toml`.
    pub fn embedded() -> Result<Self, PlaybookError> {
        Self::from_toml_str(EMBEDDED_AGENT_FILE)
    }

    /// Checks what the types cannot: weights that keep 100 for blocking, non-empty word lists,
    /// windows that are windows.
    pub fn validate(&self) -> Result<(), PlaybookError> {
        let risk = &self.risk;
        if risk.cap >= 100 {
            return Err(invalid(
                "playbook.risk.cap",
                "must be below 100; 100 means blocked",
            ));
        }
        if risk.approve_max > risk.cap {
            return Err(invalid(
                "playbook.risk.approve_max",
                format!("must not exceed cap ({})", risk.cap),
            ));
        }
        let r = &self.rules;
        let scopes = [
            ("KR-AD-LABEL", r.ad_label.scope()),
            ("KR-SENDER", r.sender.scope()),
            ("KR-OPTOUT", r.opt_out.scope()),
            ("KR-NIGHT", r.night.scope()),
            ("KR-OPTIN", r.opt_in.scope()),
            ("KR-RECONFIRM", r.reconfirm.scope()),
            ("KR-SUPERLATIVE", r.superlative.scope()),
            ("CLAIM-SUBSTANTIATION", r.substantiation.scope()),
            ("HEALTH-CLAIM", r.health_claim.scope()),
            ("ENDORSEMENT", r.endorsement.scope()),
            ("US-CANSPAM", r.can_spam.scope()),
            ("US-TCPA-QUIET", r.tcpa_quiet.scope()),
            ("EU-GDPR-CONSENT", r.gdpr_consent.scope()),
        ];
        for (id, scope) in scopes {
            if scope.enabled && scope.jurisdictions.is_empty() {
                return Err(invalid(
                    format!("playbook.rules.{id}.jurisdictions"),
                    "an enabled rule needs at least one jurisdiction (or set enabled = false)",
                ));
            }
            if scope.enabled && scope.channels.is_empty() {
                return Err(invalid(
                    format!("playbook.rules.{id}.channels"),
                    "an enabled rule needs at least one channel (or set enabled = false)",
                ));
            }
        }
        non_empty("playbook.rules.KR-AD-LABEL.label", &r.ad_label.label)?;
        non_empty(
            "playbook.rules.KR-AD-LABEL.lookalike_core",
            &r.ad_label.lookalike_core,
        )?;
        words(
            "playbook.rules.KR-OPTOUT.free_markers",
            &r.opt_out.free_markers,
            true,
        )?;
        words(
            "playbook.rules.KR-OPTOUT.other_markers",
            &r.opt_out.other_markers,
            false,
        )?;
        words(
            "playbook.rules.KR-OPTOUT.free_number_prefixes",
            &r.opt_out.free_number_prefixes,
            true,
        )?;
        if !r.opt_out.fix_line.contains("{number}") {
            return Err(invalid(
                "playbook.rules.KR-OPTOUT.fix_line",
                "must contain {number}, where the opt-out number goes",
            ));
        }
        if r.opt_out.end_window_chars == 0 {
            return Err(invalid(
                "playbook.rules.KR-OPTOUT.end_window_chars",
                "must be at least 1",
            ));
        }
        if r.night.quiet_start == r.night.quiet_end {
            return Err(invalid(
                "playbook.rules.KR-NIGHT.quiet_end",
                "equals quiet_start; the quiet window would be empty",
            ));
        }
        words("playbook.rules.KR-OPTIN.purposes", &r.opt_in.purposes, true)?;
        words(
            "playbook.rules.KR-OPTIN.invalid_sources",
            &r.opt_in.invalid_sources,
            false,
        )?;
        if r.opt_in.existing_transaction_months == 0 {
            return Err(invalid(
                "playbook.rules.KR-OPTIN.existing_transaction_months",
                "must be at least 1",
            ));
        }
        if r.reconfirm.interval_months == 0 {
            return Err(invalid(
                "playbook.rules.KR-RECONFIRM.interval_months",
                "must be at least 1",
            ));
        }
        words(
            "playbook.rules.KR-SUPERLATIVE.words",
            &r.superlative.words,
            true,
        )?;
        words(
            "playbook.rules.KR-SUPERLATIVE.exceptions",
            &r.superlative.exceptions,
            false,
        )?;
        words(
            "playbook.rules.KR-SUPERLATIVE.quantity_words",
            &r.superlative.quantity_words,
            false,
        )?;
        let sub = &r.substantiation;
        for (key, list, required) in [
            ("free", &sub.free, true),
            ("discount", &sub.discount, true),
            ("superlative", &sub.superlative, true),
            ("price_prefixes", &sub.price_prefixes, true),
            ("price_units", &sub.price_units, true),
            ("count_units", &sub.count_units, false),
            ("exceptions", &sub.exceptions, false),
        ] {
            words(
                &format!("playbook.rules.CLAIM-SUBSTANTIATION.{key}"),
                list,
                required,
            )?;
        }
        words(
            "playbook.rules.HEALTH-CLAIM.words",
            &r.health_claim.words,
            true,
        )?;
        words(
            "playbook.rules.ENDORSEMENT.clear",
            &r.endorsement.clear,
            true,
        )?;
        words(
            "playbook.rules.ENDORSEMENT.unclear",
            &r.endorsement.unclear,
            false,
        )?;
        non_empty(
            "playbook.rules.ENDORSEMENT.default_disclosure",
            &r.endorsement.default_disclosure,
        )?;
        if r.endorsement.unclear_severity == Severity::Block {
            return Err(invalid(
                "playbook.rules.ENDORSEMENT.unclear_severity",
                "an unclear tag next to a clear disclosure is a warning; use low, medium or high",
            ));
        }
        words(
            "playbook.rules.US-CANSPAM.ad_markers",
            &r.can_spam.ad_markers,
            true,
        )?;
        words(
            "playbook.rules.US-CANSPAM.opt_out_markers",
            &r.can_spam.opt_out_markers,
            true,
        )?;
        if r.tcpa_quiet.allowed_start >= r.tcpa_quiet.allowed_end {
            return Err(invalid(
                "playbook.rules.US-TCPA-QUIET.allowed_end",
                "must be later than allowed_start",
            ));
        }
        words(
            "playbook.rules.EU-GDPR-CONSENT.purposes",
            &r.gdpr_consent.purposes,
            true,
        )?;
        Ok(())
    }
}

fn non_empty(key: &str, value: &str) -> Result<(), PlaybookError> {
    if value.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(())
}

fn words(key: &str, list: &[String], required: bool) -> Result<(), PlaybookError> {
    if required && list.is_empty() {
        return Err(invalid(key, "needs at least one entry"));
    }
    if let Some(i) = list.iter().position(|w| w.trim().is_empty()) {
        return Err(invalid(
            format!("{key}[{i}]"),
            "is empty; an empty word matches everything",
        ));
    }
    Ok(())
}
