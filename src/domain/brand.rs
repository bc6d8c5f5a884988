//! Tenants and brand guidelines: what each level (organization → client → campaign) says about tone,
//! banned words, disclaimers, preferred terms, claims, the legal entity and quiet hours, and how the
//! levels merge into the one [`BrandVoice`] content is written in.
//!
//! Merge rules (docs/content.md, "Tenants and brand guidelines"): a child overrides a scalar unless a parent locked it; banned words and
//! disclaimers accumulate and a child cannot remove them; preferred terms override per key; quiet hours
//! take the union (the stricter). Resolution reads one organization's file only: nothing here may mix
//! one tenant's guidelines into another's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::campaign::Channel;
use crate::domain::channel::Field;
// One claims registry shape for guidelines and compliance, so entries pass straight through.
pub use crate::domain::compliance::{Claim, ClaimPeriod};
use crate::protocol::{CampaignId, TenantId};

/// A guideline problem, naming the level, the key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrandError {
    #[error("{layer}: `{key}` {reason}")]
    Invalid {
        layer: String,
        key: String,
        reason: String,
    },
    /// A quiet-hours window that cannot be read.
    #[error("{layer}: `{key}` {reason}")]
    QuietHours {
        layer: String,
        key: String,
        reason: WindowError,
    },
    #[error("tenant file for organization `{organization}`: {source}")]
    Parse {
        organization: String,
        #[source]
        source: toml::de::Error,
    },
    #[error(
        "tenant `{tenant}` does not belong to organization `{organization}`; guidelines never cross tenants"
    )]
    ForeignTenant {
        tenant: String,
        organization: String,
    },
    #[error(
        "organization `{organization}` has no client `{client}` (tenant files list clients under [clients.<name>])"
    )]
    UnknownClient {
        organization: String,
        client: String,
    },
}

/// A time of day that is not `HH:MM` (00:00 to 23:59, and 24:00 where an end is allowed it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a time of day `HH:MM`")]
pub struct ClockError {
    pub value: String,
}

/// Why a quiet-hours window cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("timezone {0:?} is not an IANA time zone name")]
    UnknownTimeZone(String),
    #[error("start: {0}")]
    Start(ClockError),
    #[error("end: {0}")]
    End(ClockError),
    #[error("start equals end: an empty window (write 00:00–24:00 for all day)")]
    Empty,
}

fn window_error(layer: &str, key: String, reason: WindowError) -> BrandError {
    BrandError::QuietHours {
        layer: layer.to_owned(),
        key,
        reason,
    }
}

fn invalid(layer: &str, key: impl Into<String>, reason: impl Into<String>) -> BrandError {
    BrandError::Invalid {
        layer: layer.to_owned(),
        key: key.into(),
        reason: reason.into(),
    }
}

/// How formal the copy is; templates may be restricted to some formalities.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Formality {
    Formal,
    #[default]
    Neutral,
    Casual,
}

/// Tone as one level writes it; unset fields inherit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToneSettings {
    #[serde(default)]
    pub formality: Option<Formality>,
    /// Who speaks ("a friendly neighbourhood shop"); a language-model generator writes as this persona.
    #[serde(default)]
    pub persona: Option<String>,
    /// Whether emoji may appear.
    #[serde(default)]
    pub emoji: Option<bool>,
}

/// Where a disclaimer goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Start,
    #[default]
    End,
}

/// A text that must appear on every variant for the listed channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclaimer {
    pub text: String,
    /// Channels it applies to; empty means every channel.
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub position: Position,
    /// The field it is attached to: `text` (default), `subject` or `headline`. A variant whose
    /// format lacks that field carries it in its text.
    #[serde(default = "default_disclaimer_field")]
    pub field: Field,
}

fn default_disclaimer_field() -> Field {
    Field::Text
}

impl Disclaimer {
    pub fn applies_to(&self, channel: Channel) -> bool {
        self.channels.is_empty() || self.channels.contains(&channel)
    }
}

/// The advertiser as the law needs it named; unset fields inherit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalEntity {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    /// A free opt-out number (`080…` in Korea).
    #[serde(default)]
    pub opt_out_number: Option<String>,
}

/// A daily span when nothing may be sent, in a time zone: `start = "21:00"`, `end = "08:00"`
/// wraps midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietWindow {
    pub start: String,
    pub end: String,
    /// IANA name, e.g. `Asia/Seoul`.
    pub timezone: String,
}

/// One level's guideline, as written in a tenant file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guideline {
    /// The name copy uses for the brand; defaults to the legal entity's name.
    #[serde(default)]
    pub brand_name: Option<String>,
    #[serde(default)]
    pub tone: ToneSettings,
    /// Never emitted in any field, matched case-insensitively anywhere in the text.
    #[serde(default)]
    pub banned_words: Vec<String>,
    #[serde(default)]
    pub disclaimers: Vec<Disclaimer>,
    /// `from = "to"`: every `from` in generated copy is written as `to`, in one pass.
    #[serde(default)]
    pub preferred_terms: BTreeMap<String, String>,
    #[serde(default)]
    pub claims: Vec<Claim>,
    #[serde(default)]
    pub legal_entity: LegalEntity,
    #[serde(default)]
    pub quiet_hours: Vec<QuietWindow>,
    /// Keys children may not override: `brand_name`, `tone.formality`, `tone.persona`, `tone.emoji`,
    /// `legal_entity.<field>`, `preferred_terms.<from>`, `claims.<claim>`.
    #[serde(default)]
    pub locked: Vec<String>,
}

const LOCKABLE_SCALARS: [&str; 8] = [
    "brand_name",
    "tone.formality",
    "tone.persona",
    "tone.emoji",
    "legal_entity.name",
    "legal_entity.address",
    "legal_entity.contact",
    "legal_entity.opt_out_number",
];

impl Guideline {
    pub fn from_toml_str(layer: &str, text: &str) -> Result<Guideline, BrandError> {
        let guideline: Guideline = toml::from_str(text).map_err(|source| BrandError::Parse {
            organization: layer.to_owned(),
            source,
        })?;
        guideline.validate(layer)?;
        Ok(guideline)
    }

    /// Checks what serde cannot: empty words, unknown lock keys, malformed quiet hours.
    pub fn validate(&self, layer: &str) -> Result<(), BrandError> {
        for (i, word) in self.banned_words.iter().enumerate() {
            if word.trim().is_empty() {
                return Err(invalid(layer, format!("banned_words[{i}]"), "is empty"));
            }
        }
        for (i, disclaimer) in self.disclaimers.iter().enumerate() {
            if disclaimer.text.trim().is_empty() {
                return Err(invalid(layer, format!("disclaimers[{i}].text"), "is empty"));
            }
            if matches!(disclaimer.field, Field::Path | Field::Payload) {
                return Err(invalid(
                    layer,
                    format!("disclaimers[{i}].field"),
                    "must be `text`, `subject` or `headline`",
                ));
            }
        }
        for (i, claim) in self.claims.iter().enumerate() {
            if !claim.is_complete() {
                return Err(invalid(
                    layer,
                    format!("claims[{i}]"),
                    "needs a claim, an evidence_id and a source",
                ));
            }
        }
        for from in self.preferred_terms.keys() {
            if from.is_empty() {
                return Err(invalid(
                    layer,
                    "preferred_terms",
                    "has an empty term to replace",
                ));
            }
        }
        for (i, window) in self.quiet_hours.iter().enumerate() {
            parse_window(window)
                .map_err(|reason| window_error(layer, format!("quiet_hours[{i}]"), reason))?;
        }
        for key in &self.locked {
            let known = LOCKABLE_SCALARS.contains(&key.as_str())
                || key
                    .strip_prefix("preferred_terms.")
                    .is_some_and(|k| !k.is_empty())
                || key.strip_prefix("claims.").is_some_and(|k| !k.is_empty());
            if !known {
                return Err(invalid(
                    layer,
                    format!("locked: {key:?}"),
                    format!(
                        "is not a lockable key; use one of {}, preferred_terms.<from>, claims.<claim>",
                        LOCKABLE_SCALARS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Minutes after midnight, or an explanation.
fn parse_clock(value: &str, allow_24: bool) -> Result<u16, ClockError> {
    let bad = || ClockError {
        value: value.to_owned(),
    };
    let (h, m) = value.trim().split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A window as (time zone, half-open minute spans within one day).
fn parse_window(window: &QuietWindow) -> Result<(Tz, Vec<(u16, u16)>), WindowError> {
    let tz: Tz = window
        .timezone
        .parse()
        .map_err(|_| WindowError::UnknownTimeZone(window.timezone.clone()))?;
    let start = parse_clock(&window.start, false).map_err(WindowError::Start)?;
    let end = parse_clock(&window.end, true).map_err(WindowError::End)?;
    match start.cmp(&end) {
        std::cmp::Ordering::Less => Ok((tz, vec![(start, end)])),
        std::cmp::Ordering::Greater => Ok((tz, vec![(start, 1440), (0, end)])),
        std::cmp::Ordering::Equal => Err(WindowError::Empty),
    }
}

/// The union of every level's quiet windows, kept per time zone as merged minute spans.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Time zone name → sorted, non-overlapping, non-touching `[start, end)` minutes after midnight.
    pub spans: BTreeMap<String, Vec<(u16, u16)>>,
}

impl QuietHours {
    fn add(&mut self, tz: Tz, spans: &[(u16, u16)]) {
        let entry = self.spans.entry(tz.name().to_owned()).or_default();
        entry.extend_from_slice(spans);
        entry.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(entry.len());
        for &(start, end) in entry.iter() {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        *entry = merged;
    }

    /// Whether `at` falls in any quiet window.
    pub fn is_quiet(&self, at: DateTime<Utc>) -> bool {
        self.spans.iter().any(|(tz, spans)| {
            let Ok(tz) = tz.parse::<Tz>() else {
                return false;
            };
            let local = at.with_timezone(&tz);
            let minute = (local.hour() * 60 + local.minute()) as u16;
            spans
                .iter()
                .any(|&(start, end)| start <= minute && minute < end)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The merged tone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tone {
    pub formality: Formality,
    pub persona: Option<String>,
    pub emoji: bool,
}

impl Default for Tone {
    fn default() -> Self {
        Tone {
            formality: Formality::Neutral,
            persona: None,
            emoji: true,
        }
    }
}

/// A child's value that a parent's lock kept out, reported so the operator can see it was ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedOverride {
    pub layer: String,
    pub key: String,
}

/// The guideline content is written with: every level merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandVoice {
    pub brand_name: Option<String>,
    pub tone: Tone,
    /// Accumulated over all levels, first spelling kept, duplicates (ignoring case) dropped.
    pub banned_words: Vec<String>,
    /// Accumulated over all levels, in order, exact duplicates dropped.
    pub disclaimers: Vec<Disclaimer>,
    pub preferred_terms: BTreeMap<String, String>,
    /// Keyed by the claim's wording.
    pub claims: BTreeMap<String, Claim>,
    pub legal_entity: LegalEntity,
    pub quiet_hours: QuietHours,
    pub locked: BTreeSet<String>,
    pub refused_overrides: Vec<RefusedOverride>,
}

impl BrandVoice {
    /// Merges levels from the top (organization) down; each pair is (level name for messages,
    /// guideline). Every level is validated first.
    pub fn resolve(layers: &[(&str, &Guideline)]) -> Result<BrandVoice, BrandError> {
        let mut voice = BrandVoice::default();
        for &(layer, guideline) in layers {
            guideline.validate(layer)?;
            voice.apply(layer, guideline)?;
        }
        Ok(voice)
    }

    fn apply(&mut self, layer: &str, g: &Guideline) -> Result<(), BrandError> {
        // Scalars: `set` refuses the value when an upper level locked the key.
        fn set<T: Clone>(
            locked: &BTreeSet<String>,
            refused: &mut Vec<RefusedOverride>,
            layer: &str,
            key: &str,
            slot: &mut T,
            value: Option<T>,
        ) {
            if let Some(value) = value {
                if locked.contains(key) {
                    refused.push(RefusedOverride {
                        layer: layer.to_owned(),
                        key: key.to_owned(),
                    });
                } else {
                    *slot = value;
                }
            }
        }
        let (locked, refused) = (&self.locked, &mut self.refused_overrides);
        set(
            locked,
            refused,
            layer,
            "brand_name",
            &mut self.brand_name,
            g.brand_name.clone().map(Some),
        );
        set(
            locked,
            refused,
            layer,
            "tone.formality",
            &mut self.tone.formality,
            g.tone.formality,
        );
        set(
            locked,
            refused,
            layer,
            "tone.persona",
            &mut self.tone.persona,
            g.tone.persona.clone().map(Some),
        );
        set(
            locked,
            refused,
            layer,
            "tone.emoji",
            &mut self.tone.emoji,
            g.tone.emoji,
        );
        let entity = &mut self.legal_entity;
        let given = &g.legal_entity;
        set(
            locked,
            refused,
            layer,
            "legal_entity.name",
            &mut entity.name,
            given.name.clone().map(Some),
        );
        set(
            locked,
            refused,
            layer,
            "legal_entity.address",
            &mut entity.address,
            given.address.clone().map(Some),
        );
        set(
            locked,
            refused,
            layer,
            "legal_entity.contact",
            &mut entity.contact,
            given.contact.clone().map(Some),
        );
        set(
            locked,
            refused,
            layer,
            "legal_entity.opt_out_number",
            &mut entity.opt_out_number,
            given.opt_out_number.clone().map(Some),
        );

        for (from, to) in &g.preferred_terms {
            let key = format!("preferred_terms.{from}");
            if locked.contains(&key) {
                refused.push(RefusedOverride {
                    layer: layer.to_owned(),
                    key,
                });
            } else {
                self.preferred_terms.insert(from.clone(), to.clone());
            }
        }
        for claim in &g.claims {
            let key = format!("claims.{}", claim.claim);
            if locked.contains(&key) {
                refused.push(RefusedOverride {
                    layer: layer.to_owned(),
                    key,
                });
            } else {
                self.claims.insert(claim.claim.clone(), claim.clone());
            }
        }

        // Lists only grow: a child cannot remove what a parent requires.
        for word in &g.banned_words {
            let word = word.trim();
            if !self
                .banned_words
                .iter()
                .any(|w| w.to_lowercase() == word.to_lowercase())
            {
                self.banned_words.push(word.to_owned());
            }
        }
        for disclaimer in &g.disclaimers {
            if !self.disclaimers.contains(disclaimer) {
                self.disclaimers.push(disclaimer.clone());
            }
        }
        for (i, window) in g.quiet_hours.iter().enumerate() {
            let (tz, spans) = parse_window(window)
                .map_err(|r| window_error(layer, format!("quiet_hours[{i}]"), r))?;
            self.quiet_hours.add(tz, &spans);
        }
        // Locks apply to the levels below this one, not to this level's own values.
        self.locked.extend(g.locked.iter().cloned());
        Ok(())
    }

    /// The name copy uses for the brand: `brand_name`, else the legal entity's name.
    pub fn display_name(&self) -> Option<&str> {
        self.brand_name
            .as_deref()
            .or(self.legal_entity.name.as_deref())
    }

    /// The first banned word `text` contains, ignoring case, if any.
    pub fn find_banned(&self, text: &str) -> Option<&str> {
        find_banned(text, &self.banned_words)
    }

    /// Rewrites every preferred term in one left-to-right pass; see [`apply_preferred_terms`].
    pub fn apply_preferred_terms(&self, text: &str) -> String {
        apply_preferred_terms(text, &self.preferred_terms)
    }

    /// The claims registry as compliance takes it.
    pub fn claim_registry(&self) -> Vec<Claim> {
        self.claims.values().cloned().collect()
    }

    /// The disclaimers a variant on `channel` must carry.
    pub fn disclaimers_for(&self, channel: Channel) -> impl Iterator<Item = &Disclaimer> {
        self.disclaimers
            .iter()
            .filter(move |d| d.applies_to(channel))
    }
}

/// The first of `words` found in `text`, ignoring case, anywhere (also inside longer words: Korean
/// attaches particles, so word boundaries would let banned words through). Empty words are ignored.
pub fn find_banned<'w>(text: &str, words: &'w [String]) -> Option<&'w str> {
    let lower = text.to_lowercase();
    words
        .iter()
        .map(|w| w.trim())
        .find(|w| !w.is_empty() && lower.contains(&w.to_lowercase()))
}

/// Replaces preferred terms in one pass: at each position the longest matching `from` is written as
/// its `to` and scanning resumes after it, so a replacement is never replaced again (a→b, b→c turns
/// "a" into "b"). Matching is exact (case-sensitive).
pub fn apply_preferred_terms(text: &str, terms: &BTreeMap<String, String>) -> String {
    if terms.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(character) = rest.chars().next() {
        let longest = terms
            .iter()
            .filter(|(from, _)| !from.is_empty() && rest.starts_with(from.as_str()))
            .max_by_key(|(from, _)| from.len());
        match longest {
            Some((from, to)) => {
                out.push_str(to);
                rest = &rest[from.len()..];
            }
            None => {
                out.push(character);
                rest = &rest[character.len_utf8()..];
            }
        }
    }
    out
}

/// One client's entry in an organization's tenant file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    #[serde(default)]
    pub guideline: Guideline,
    /// Campaign id → that campaign's guideline.
    #[serde(default)]
    pub campaigns: BTreeMap<String, Guideline>,
}

/// `config/tenants/<organization>.toml`: the organization's guideline, its clients' and its
/// campaigns'.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// Taken from the file name, not the file.
    #[serde(skip)]
    pub organization: String,
    #[serde(default)]
    pub guideline: Guideline,
    #[serde(default)]
    pub clients: BTreeMap<String, ClientEntry>,
    /// Campaigns the organization runs for itself (tenant `organization`, no client).
    #[serde(default)]
    pub campaigns: BTreeMap<String, Guideline>,
}

impl TenantFile {
    /// Parses and validates every guideline in the file.
    pub fn from_toml_str(organization: &str, text: &str) -> Result<TenantFile, BrandError> {
        let mut file: TenantFile = toml::from_str(text).map_err(|source| BrandError::Parse {
            organization: organization.to_owned(),
            source,
        })?;
        file.organization = organization.to_owned();
        file.guideline.validate(&format!("tenant {organization}"))?;
        for (id, guideline) in &file.campaigns {
            guideline.validate(&format!("tenant {organization}, campaigns.{id}"))?;
        }
        for (client, entry) in &file.clients {
            entry
                .guideline
                .validate(&format!("tenant {organization}, clients.{client}"))?;
            for (id, guideline) in &entry.campaigns {
                guideline.validate(&format!(
                    "tenant {organization}, clients.{client}.campaigns.{id}"
                ))?;
            }
        }
        Ok(file)
    }

    /// The merged voice for a campaign of `tenant` (`organization` or `organization/client`).
    /// A campaign without its own guideline uses its client's (or organization's).
    pub fn voice_for(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<BrandVoice, BrandError> {
        let (organization, client) = match tenant.as_str().split_once('/') {
            Some((organization, client)) => (organization, Some(client)),
            None => (tenant.as_str(), None),
        };
        if organization != self.organization {
            return Err(BrandError::ForeignTenant {
                tenant: tenant.to_string(),
                organization: self.organization.clone(),
            });
        }
        let org_layer = format!("tenant {organization}");
        let mut layers: Vec<(String, &Guideline)> = vec![(org_layer, &self.guideline)];
        let campaigns = match client {
            Some(client) => {
                let entry = self
                    .clients
                    .get(client)
                    .ok_or_else(|| BrandError::UnknownClient {
                        organization: organization.to_owned(),
                        client: client.to_owned(),
                    })?;
                layers.push((
                    format!("tenant {organization}, clients.{client}"),
                    &entry.guideline,
                ));
                &entry.campaigns
            }
            None => &self.campaigns,
        };
        if let Some(guideline) = campaigns.get(campaign.as_str()) {
            layers.push((format!("campaign {campaign}"), guideline));
        }
        let borrowed: Vec<(&str, &Guideline)> =
            layers.iter().map(|(name, g)| (name.as_str(), *g)).collect();
        BrandVoice::resolve(&borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_are_checked() {
        assert_eq!(parse_clock("21:30", false), Ok(1290));
        assert_eq!(parse_clock("24:00", true), Ok(1440));
        assert!(parse_clock("24:00", false).is_err());
        assert!(parse_clock("7pm", false).is_err());
        assert!(parse_clock("10:60", false).is_err());
        assert_eq!(
            parse_clock("7pm", false).unwrap_err().to_string(),
            "\"7pm\" is not a time of day `HH:MM`"
        );
    }

    #[test]
    fn window_errors_keep_their_text() {
        let window = |start: &str, end: &str, timezone: &str| QuietWindow {
            start: start.to_owned(),
            end: end.to_owned(),
            timezone: timezone.to_owned(),
        };
        let err = |w: QuietWindow| parse_window(&w).unwrap_err().to_string();
        assert_eq!(
            err(window("21:00", "08:00", "Mars/Base")),
            "timezone \"Mars/Base\" is not an IANA time zone name"
        );
        assert_eq!(
            err(window("9pm", "08:00", "Asia/Seoul")),
            "start: \"9pm\" is not a time of day `HH:MM`"
        );
        assert_eq!(
            err(window("21:00", "24:30", "Asia/Seoul")),
            "end: \"24:30\" is not a time of day `HH:MM`"
        );
        assert_eq!(
            err(window("08:00", "08:00", "Asia/Seoul")),
            "start equals end: an empty window (write 00:00–24:00 for all day)"
        );
        let overnight = parse_window(&window("21:00", "08:00", "Asia/Seoul")).unwrap();
        assert_eq!(overnight.1, vec![(1260, 1440), (0, 480)]);
    }

    #[test]
    fn overlapping_spans_merge() {
        let mut quiet = QuietHours::default();
        quiet.add(chrono_tz::Asia::Seoul, &[(1260, 1440), (0, 480)]);
        quiet.add(chrono_tz::Asia::Seoul, &[(1200, 1300), (420, 540)]);
        assert_eq!(quiet.spans["Asia/Seoul"], vec![(0, 540), (1200, 1440)]);
    }
}
