//! The content agent's playbook: the `[playbook]` table of `agents/content.toml` — channel limits,
//! generation settings, and per language the vocabularies (creative dimensions and their levels) and
//! templates the template generator writes from.
//!
//! Loading is strict: unknown keys are refused, and every template is checked against the fields its
//! formats need and the placeholders its language defines, so a typo is an error at load naming the
//! key, not an empty campaign later. This module reads no files itself; the binary embeds the shipped
//! file ([`EMBEDDED_AGENT_FILE`]) and settings pass whatever an operator wrote.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::brand::Formality;
use crate::domain::channel::{ChannelLimits, Field, Format};

/// `agents/content.toml` as shipped: the default definition and playbook.
pub const EMBEDDED_AGENT_FILE: &str = include_str!("../../../agents/content.toml");

/// Placeholders filled from the brand voice rather than a vocabulary.
pub const BUILTIN_PLACEHOLDERS: [&str; 4] = ["brand", "opt_out", "contact", "address"];

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
    /// Language code (`ko`, `en`) → its vocabulary and templates.
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
    /// The language of a campaign without regions (its international formats). A region no
    /// language lists has none: its copy is not written, and `check` says so.
    pub default_language: String,
}

/// `[playbook.languages.<code>]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// ISO 3166 codes this language is written for.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Dimension → its levels, e.g. `offer = ["최대 30% 할인", "1+1"]`.
    pub vocabulary: BTreeMap<String, Vec<String>>,
    /// Segment id → dimension → levels that replace the language-wide ones for that segment.
    #[serde(default)]
    pub segments: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub templates: Vec<Template>,
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

    /// The language for a region: the one listing it; for no region (`""`), the default.
    /// `None` for a region no language lists: writing it in the default language would send
    /// English to an audience that reads German.
    pub fn language_for(&self, region: &str) -> Option<(&str, &Language)> {
        let found = if region.is_empty() {
            self.languages
                .get_key_value(&self.generation.default_language)
        } else {
            self.languages
                .iter()
                .find(|(_, lang)| lang.regions.iter().any(|r| r.eq_ignore_ascii_case(region)))
        };
        found.map(|(code, lang)| (code.as_str(), lang))
    }

    /// The regions of `regions` no language lists.
    pub fn regions_without_language<'a>(&self, regions: &'a [String]) -> Vec<&'a str> {
        regions
            .iter()
            .map(String::as_str)
            .filter(|r| self.language_for(r).is_none())
            .collect()
    }

    /// The regions some language lists, for messages.
    pub fn written_regions(&self) -> Vec<&str> {
        self.languages
            .values()
            .flat_map(|l| l.regions.iter().map(String::as_str))
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
        if !self
            .languages
            .contains_key(&self.generation.default_language)
        {
            return Err(invalid(
                "generation.default_language",
                format!(
                    "{:?} is not one of the languages defined under [playbook.languages]",
                    self.generation.default_language
                ),
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
        for (dimension, levels) in &self.vocabulary {
            check_dimension(&format!("{key}.vocabulary.{dimension}"), dimension, levels)?;
        }
        for (segment, overrides) in &self.segments {
            for (dimension, levels) in overrides {
                let at = format!("{key}.segments.{segment}.{dimension}");
                if !self.vocabulary.contains_key(dimension) {
                    return Err(invalid(
                        at,
                        "overrides a dimension the language's vocabulary does not define",
                    ));
                }
                check_dimension(&at, dimension, levels)?;
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
                    && !self.vocabulary.contains_key(&name)
                {
                    return Err(invalid(
                        at.clone(),
                        format!(
                            "uses {{{name}}}, which is neither in {key}.vocabulary nor one of {}",
                            BUILTIN_PLACEHOLDERS.map(|b| format!("{{{b}}}")).join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_dimension(key: &str, dimension: &str, levels: &[String]) -> Result<(), PlaybookError> {
    if dimension == TEMPLATE_DIMENSION || BUILTIN_PLACEHOLDERS.contains(&dimension) {
        return Err(invalid(
            key,
            format!("`{dimension}` is reserved; name the dimension otherwise"),
        ));
    }
    if levels.is_empty() {
        return Err(invalid(key, "has no levels"));
    }
    Ok(())
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
