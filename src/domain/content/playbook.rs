//! The content agent's playbook: the `[playbook]` table of `agents/content.toml` — channel limits,
//! generation settings, and per language the templates the template generator fills and the calls
//! to action of a brief that gives none. Everything copy states comes from the campaign's brief
//! ([`crate::domain::brief`]), never from here.
//!
//! Loading is strict: unknown keys are refused, and every template is checked against the fields its
//! formats need and the placeholders its language defines, so a typo is an error at load naming the
//! key, not an empty campaign later. This module reads no files itself; the binary embeds the shipped
//! file ([`EMBEDDED_AGENT_FILE`]) and settings pass whatever an operator wrote.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::brand::Formality;
use crate::domain::brief::{Brief, BriefCopy};
use crate::domain::campaign::{CampaignGoal, Objective};
use crate::domain::channel::{ChannelLimits, Field, Format};

/// `agents/content.toml` as shipped: the default definition and playbook.
pub const EMBEDDED_AGENT_FILE: &str = include_str!("../../../agents/content.toml");

/// Placeholders with one value per campaign: the brand voice's and the brief's product name and
/// landing URL.
pub const BUILTIN_PLACEHOLDERS: [&str; 6] =
    ["brand", "opt_out", "contact", "address", "product", "url"];

/// The creative dimensions, each a design axis whose levels come from the brief: its key
/// messages, its claims and its calls to action (or the playbook's for the objective).
pub const DIMENSIONS: [&str; 3] = ["message", "offer", "cta"];

/// The dimension name under which the choice of template is recorded.
pub const TEMPLATE_DIMENSION: &str = "template";

/// A playbook problem, naming the key under `[playbook]`.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("content playbook: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("content playbook: the agent file has no [playbook] table")]
    Missing,
    #[error("content playbook: `playbook.{key}` {reason}")]
    Invalid { key: String, reason: String },
    /// A template field that does not parse.
    #[error("content playbook: `playbook.{key}` {reason}")]
    Template { key: String, reason: TemplateError },
}

/// Why a template field does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`[[` inside an optional part: optional parts do not nest")]
    NestedOptional,
    #[error("`]]` without an opening `[[`")]
    UnopenedOptional,
    #[error("`[[` without a closing `]]`")]
    UnclosedOptional,
    #[error("`{{` without a closing `}}`")]
    UnclosedSlot,
    #[error("`}}` without an opening `{{`")]
    UnopenedSlot,
    #[error("`{{{0}}}` is not a placeholder name (letters, digits, `_`)")]
    BadSlotName(String),
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> PlaybookError {
    PlaybookError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// `[playbook]` of `agents/content.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentPlaybook {
    pub limits: ChannelLimits,
    pub generation: GenerationSettings,
    /// Language code (`ko`, `en`) → its templates and calls to action.
    pub languages: BTreeMap<String, Language>,
}

/// `[playbook.generation]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSettings {
    /// At most this many variants per segment × format × language. When the full factorial of the
    /// dimensions is larger, the first round uses an L18 orthogonal array (or a seeded sample when the
    /// dimensions do not fit L18).
    pub max_variants_per_cell: usize,
}

/// `[playbook.languages.<code>]`: how copy in one language is put together. What it says comes
/// from each campaign's brief; the playbook holds no offer and no message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// The calls to action of a brief that gives none, per objective.
    pub calls_to_action: CallsToAction,
    pub templates: Vec<Template>,
}

/// `[playbook.languages.<code>.calls_to_action]`: one list per objective, since "Get the app"
/// asks for an install and "Request a demo" for a lead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsToAction {
    pub signups: Vec<String>,
    pub purchases: Vec<String>,
    pub leads: Vec<String>,
    pub installs: Vec<String>,
}

impl CallsToAction {
    pub fn for_objective(&self, objective: Objective) -> &[String] {
        match objective {
            Objective::Signups => &self.signups,
            Objective::Purchases => &self.purchases,
            Objective::Leads => &self.leads,
            Objective::Installs => &self.installs,
        }
    }
}

/// One template: fields with `{placeholders}` and `[[optional parts]]` that are dropped, last first,
/// when the variant would otherwise exceed its limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub formats: Vec<Format>,
    pub text: String,
    #[serde(default)]
    pub headline: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Formalities this template suits; empty means all.
    #[serde(default)]
    pub formality: Vec<Formality>,
}

impl Template {
    pub fn field(&self, field: Field) -> Option<&str> {
        match field {
            Field::Text => Some(&self.text),
            Field::Headline => self.headline.as_deref(),
            Field::Subject => self.subject.as_deref(),
            Field::Path => self.path.as_deref(),
            Field::Payload => None,
        }
    }

    /// Every placeholder any field uses.
    pub fn placeholders(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for field in [Field::Text, Field::Headline, Field::Subject, Field::Path] {
            if let Some(Ok(pieces)) = self.field(field).map(parse_template) {
                collect_slots(&pieces, &mut names);
            }
        }
        names
    }
}

fn collect_slots(pieces: &[Piece], names: &mut BTreeSet<String>) {
    for piece in pieces {
        match piece {
            Piece::Slot(name) => {
                names.insert(name.clone());
            }
            Piece::Optional(inner) => collect_slots(inner, names),
            Piece::Literal(_) => {}
        }
    }
}

/// A parsed template field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Slot(String),
    /// `[[ … ]]`: may be left out to shorten. Holds no further optional parts.
    Optional(Vec<Piece>),
}

/// Splits a template field into literals, `{slots}` and `[[optional]]` groups.
pub fn parse_template(source: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut top: Vec<Piece> = Vec::new();
    let mut group: Option<Vec<Piece>> = None;
    let mut literal = String::new();
    let mut rest = source;
    let flush = |literal: &mut String, into: &mut Vec<Piece>| {
        if !literal.is_empty() {
            into.push(Piece::Literal(std::mem::take(literal)));
        }
    };
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("[[") {
            if group.is_some() {
                return Err(TemplateError::NestedOptional);
            }
            flush(&mut literal, &mut top);
            group = Some(Vec::new());
            rest = &rest[2..];
        } else if rest.starts_with("]]") {
            let Some(mut inner) = group.take() else {
                return Err(TemplateError::UnopenedOptional);
            };
            flush(&mut literal, &mut inner);
            top.push(Piece::Optional(inner));
            rest = &rest[2..];
        } else if c == '{' {
            let end = rest.find('}').ok_or(TemplateError::UnclosedSlot)?;
            let name = &rest[1..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(TemplateError::BadSlotName(name.to_owned()));
            }
            flush(&mut literal, group.as_mut().unwrap_or(&mut top));
            group
                .as_mut()
                .unwrap_or(&mut top)
                .push(Piece::Slot(name.to_owned()));
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err(TemplateError::UnopenedSlot);
        } else {
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if group.is_some() {
        return Err(TemplateError::UnclosedOptional);
    }
    flush(&mut literal, &mut top);
    Ok(top)
}

impl ContentPlaybook {
    /// Reads the `[playbook]` table of a whole agent definition file (other tables are the settings
    /// layer's and are ignored here).
    pub fn from_toml_str(agent_file: &str) -> Result<ContentPlaybook, PlaybookError> {
        #[derive(Deserialize)]
        struct AgentFile {
            playbook: Option<ContentPlaybook>,
        }
        let file: AgentFile = toml::from_str(agent_file)?;
        let playbook = file.playbook.ok_or(PlaybookError::Missing)?;
        playbook.validate()?;
        Ok(playbook)
    }

    /// Reads the `[playbook]` table itself, as settings hand it over.
    pub fn from_table(playbook: &toml::Table) -> Result<ContentPlaybook, PlaybookError> {
        let playbook: ContentPlaybook = toml::Value::Table(playbook.clone()).try_into()?;
        playbook.validate()?;
        Ok(playbook)
    }

    /// The playbook shipped in the binary.
    pub fn embedded() -> Result<ContentPlaybook, PlaybookError> {
        ContentPlaybook::from_toml_str(EMBEDDED_AGENT_FILE)
    }

    /// The language, its templates and the brief's copy that `region` is written in.
    pub fn written_in<'a>(
        &'a self,
        brief: &'a Brief,
        region: &str,
    ) -> Option<(&'a str, &'a Language, &'a BriefCopy)> {
        let code = brief.language_for(region)?;
        let (code, language) = self.languages.get_key_value(code)?;
        Some((code.as_str(), language, brief.copy.get(code)?))
    }

    /// Why a campaign's copy could not be written, one line per region: no brief, no language
    /// for the region in it, or a language this playbook has no templates for. Never silently
    /// another language: an audience is not written to in a language it may not read.
    pub fn unwritable(&self, goal: &CampaignGoal) -> Vec<String> {
        let Some(brief) = &goal.brief else {
            return vec![format!("campaign `{}` has no [brief]", goal.id)];
        };
        let defined: Vec<&str> = self.languages.keys().map(String::as_str).collect();
        goal.regions
            .iter()
            .filter(|region| self.written_in(brief, region).is_none())
            .map(|region| match brief.language_for(region) {
                None => format!("brief.languages names no language for region `{region}`"),
                Some(code) => format!(
                    "region `{region}` is written in `{code}`, which the content playbook has no templates for (it has {}); add [playbook.languages.{code}] to agents/content.toml or choose one of those",
                    defined.join(", ")
                ),
            })
            .collect()
    }

    /// Everything serde cannot check, with the key that is wrong.
    pub fn validate(&self) -> Result<(), PlaybookError> {
        if let Some((key, reason)) = self.limits.problems().into_iter().next() {
            return Err(invalid(format!("limits.{key}"), reason));
        }
        if self.generation.max_variants_per_cell == 0 {
            return Err(invalid(
                "generation.max_variants_per_cell",
                "must be at least 1",
            ));
        }
        for (code, language) in &self.languages {
            language.validate(&format!("languages.{code}"))?;
        }
        Ok(())
    }
}

impl Language {
    fn validate(&self, key: &str) -> Result<(), PlaybookError> {
        for objective in Objective::ALL {
            let key = format!("{key}.calls_to_action.{}", objective.as_str());
            let levels = self.calls_to_action.for_objective(objective);
            if levels.is_empty() || levels.iter().any(|l| l.trim().is_empty()) {
                return Err(invalid(
                    key,
                    "needs at least one call to action, none empty",
                ));
            }
        }
        if self.templates.is_empty() {
            return Err(invalid(
                format!("{key}.templates"),
                "is empty: a language needs at least one template",
            ));
        }
        for (i, template) in self.templates.iter().enumerate() {
            let at = format!("{key}.templates[{i}]");
            if template.formats.is_empty() {
                return Err(invalid(format!("{at}.formats"), "is empty"));
            }
            for format in &template.formats {
                for &field in format.required_fields() {
                    if template.field(field).is_none_or(|t| t.trim().is_empty()) {
                        return Err(invalid(
                            format!("{at}.{}", field.as_str()),
                            format!("is required by format {format}"),
                        ));
                    }
                }
            }
            for field in [Field::Text, Field::Headline, Field::Subject, Field::Path] {
                if let Some(source) = template.field(field) {
                    parse_template(source).map_err(|reason| PlaybookError::Template {
                        key: format!("{at}.{}", field.as_str()),
                        reason,
                    })?;
                }
            }
            for name in template.placeholders() {
                if !BUILTIN_PLACEHOLDERS.contains(&name.as_str())
                    && !DIMENSIONS.contains(&name.as_str())
                {
                    return Err(invalid(
                        at.clone(),
                        format!(
                            "uses {{{name}}}, which is not one of {}",
                            BUILTIN_PLACEHOLDERS
                                .iter()
                                .chain(&DIMENSIONS)
                                .map(|b| format!("{{{b}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slots_literals_and_optional_parts() {
        let pieces = parse_template("(광고){brand} {offer}[[ {cta}]]!").unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Literal("(광고)".into()),
                Piece::Slot("brand".into()),
                Piece::Literal(" ".into()),
                Piece::Slot("offer".into()),
                Piece::Optional(vec![Piece::Literal(" ".into()), Piece::Slot("cta".into())]),
                Piece::Literal("!".into()),
            ]
        );
        // A single bracket is an ordinary character (`[광고]` must stay writable).
        assert_eq!(
            parse_template("[x]").unwrap(),
            vec![Piece::Literal("[x]".into())]
        );
    }

    #[test]
    fn refuses_malformed_templates() {
        assert!(parse_template("{offer").is_err());
        assert!(parse_template("offer}").is_err());
        assert!(parse_template("[[a [[b]] ]]").is_err());
        assert!(parse_template("[[a").is_err());
        assert!(parse_template("a]]").is_err());
        assert!(parse_template("{of fer}").is_err());
        let text = |source: &str| parse_template(source).unwrap_err().to_string();
        assert_eq!(
            text("[[a [[b]] ]]"),
            "`[[` inside an optional part: optional parts do not nest"
        );
        assert_eq!(text("a]]"), "`]]` without an opening `[[`");
        assert_eq!(text("[[a"), "`[[` without a closing `]]`");
        assert_eq!(text("{offer"), "`{` without a closing `}`");
        assert_eq!(text("offer}"), "`}` without an opening `{`");
        assert_eq!(
            text("{of fer}"),
            "`{of fer}` is not a placeholder name (letters, digits, `_`)"
        );
    }
}
