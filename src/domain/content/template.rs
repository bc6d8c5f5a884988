//! The default generator: variants from the playbook's templates and vocabularies, one design of
//! level combinations per segment × format × language, written in the brand's voice.
//!
//! For each candidate: fill the template, apply preferred terms in one pass, drop emoji when the tone
//! forbids them (or the format cannot encode them), add the required disclaimers, then check banned
//! words and the format's hard limits. A candidate that fails is shortened by leaving out its
//! `[[optional]]` parts, last first; if it still fails it is dropped with the reason. It must never
//! emit a variant over its limit or containing a banned word.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::brand::{BrandVoice, Position, apply_preferred_terms, find_banned};
use crate::domain::brief::BriefCopy;
use crate::domain::campaign::{Channel, Objective};
use crate::domain::channel::{ChannelLimits, Creative, Field, Fit, Format, is_emoji};
use crate::domain::content::orthogonal::{self, DesignKind};
use crate::domain::content::playbook::{
    ContentPlaybook, DIMENSIONS, Language, Piece, TEMPLATE_DIMENSION, Template, TemplateError,
    parse_template,
};
use crate::domain::content::{
    Bred, CellReport, GenerateError, Generation, GenerationRequest, Generator, LevelChoice, Variant,
};

/// Why a template or a candidate was dropped, as the cell report records it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum Dropped {
    #[error("template {template} {field}: {reason}")]
    Unparsable {
        template: usize,
        field: &'static str,
        reason: TemplateError,
    },
    #[error("template {template} needs {{{name}}}: set {guideline_key} in the brand guideline")]
    MissingBuiltin {
        template: usize,
        name: &'static str,
        guideline_key: &'static str,
    },
    #[error("template {template}: {field} contains the banned word {word:?}")]
    BannedWord {
        template: usize,
        field: &'static str,
        word: String,
    },
    #[error("template {template}: {limit}")]
    OverLimit { template: usize, limit: String },
    /// Not reached: a usable template always has a format to try.
    #[error("template {template}: no format to fit")]
    NoFormat { template: usize },
}

/// The segment name used when a campaign declares none.
pub const ALL_SEGMENT: &str = "all";

/// Writes variants from templates and vocabularies.
#[derive(Clone, Debug)]
pub struct TemplateGenerator {
    playbook: ContentPlaybook,
}

impl TemplateGenerator {
    pub fn new(playbook: ContentPlaybook) -> Self {
        TemplateGenerator { playbook }
    }

    pub fn playbook(&self) -> &ContentPlaybook {
        &self.playbook
    }
}

impl Generator for TemplateGenerator {
    fn name(&self) -> &str {
        "template"
    }

    fn generate(&self, request: &GenerationRequest<'_>) -> Result<Generation, GenerateError> {
        let goal = request.goal;
        if goal.channels.is_empty() {
            return Err(GenerateError::Request {
                campaign: goal.id.to_string(),
                reason: "the campaign lists no channels".into(),
            });
        }
        let segments: Vec<&str> = if goal.segments.is_empty() {
            vec![ALL_SEGMENT]
        } else {
            goal.segments.iter().map(|s| s.id.as_str()).collect()
        };
        let refuse = |reason: String| GenerateError::Request {
            campaign: goal.id.to_string(),
            reason,
        };
        let brief = goal.brief.as_ref().ok_or_else(|| {
            refuse("the campaign has no [brief]; content writes only from a brief".into())
        })?;
        if goal.regions.is_empty() {
            return Err(refuse("the campaign lists no regions".into()));
        }
        if let Some(problem) = self.playbook.unwritable(goal).into_iter().next() {
            return Err(refuse(problem));
        }
        let regions: Vec<&str> = goal.regions.iter().map(String::as_str).collect();

        let mut generation = Generation::default();
        let mut done = BTreeSet::new();
        for &segment in &segments {
            for &channel in &goal.channels {
                for &region in &regions {
                    let Some((code, language, copy)) = self.playbook.written_in(brief, region)
                    else {
                        continue;
                    };
                    for formats in format_groups(channel, region) {
                        if !done.insert((segment, channel, code, formats.clone())) {
                            continue;
                        }
                        let cell = Cell {
                            segment,
                            channel,
                            formats,
                            code,
                            language,
                            copy,
                            objective: goal.objective,
                            url: &brief.landing_url,
                        };
                        let seed = request.seed ^ cell.hash();
                        let (variants, report) = self.fill(&cell, request.voice, seed);
                        generation.variants.extend(variants);
                        generation.cells.push(report);
                    }
                }
            }
        }
        Ok(generation)
    }

    fn write_bred(
        &self,
        request: &GenerationRequest<'_>,
        bred: &[Bred],
    ) -> Result<Generation, GenerateError> {
        let goal = request.goal;
        let brief = goal.brief.as_ref().ok_or_else(|| GenerateError::Request {
            campaign: goal.id.to_string(),
            reason: "the campaign has no [brief]; content writes only from a brief".into(),
        })?;
        let mut generation = Generation::default();
        for cell_bred in bred {
            let at = &cell_bred.cell;
            let mut report = CellReport {
                segment: at.segment.clone(),
                channel: at.channel,
                formats: at.format.written_with().to_vec(),
                language: at.language.clone(),
                design: DesignKind::Bred,
                candidates: cell_bred.combinations.len(),
                emitted: 0,
                dropped: Vec::new(),
            };
            let written = self
                .playbook
                .languages
                .get_key_value(&at.language)
                .zip(brief.copy.get(&at.language));
            let Some(((code, language), copy)) = written else {
                report.dropped.push(format!(
                    "language {} is no longer in both the content playbook and the brief",
                    at.language
                ));
                generation.cells.push(report);
                continue;
            };
            let cell = Cell {
                segment: &at.segment,
                channel: at.channel,
                formats: report.formats.clone(),
                code,
                language,
                copy,
                objective: goal.objective,
                url: &brief.landing_url,
            };
            let mut ids = BTreeSet::new();
            for combination in &cell_bred.combinations {
                match self.bred_variant(&cell, combination, request.voice) {
                    Ok(variant) => {
                        if ids.insert(variant.id.clone()) {
                            generation.variants.push(variant);
                            report.emitted += 1;
                        }
                    }
                    Err(reason) => note(reason, &mut report.dropped),
                }
            }
            generation.cells.push(report);
        }
        Ok(generation)
    }
}

impl TemplateGenerator {
    /// One bred combination as a variant of `cell`: its template and levels found again by their
    /// wording (a reload may have moved them), checked as every variant is.
    fn bred_variant(
        &self,
        cell: &Cell<'_>,
        combination: &[LevelChoice],
        voice: &BrandVoice,
    ) -> Result<Variant, String> {
        let wording = |dimension: &str| {
            combination
                .iter()
                .find(|l| &*l.dimension == dimension)
                .map(|l| &*l.value)
        };
        let text = wording(TEMPLATE_DIMENSION).unwrap_or_default();
        let (index, template, formats) = cell
            .language
            .templates
            .iter()
            .enumerate()
            .filter(|(_, t)| t.text == text)
            .find_map(|(index, t)| Some((index, t, serves(t, cell, voice)?)))
            .ok_or_else(|| {
                format!("template {text:?} is no longer in the content playbook for this cell")
            })?;
        let builtins = builtins(voice, cell);
        let usable = prepare(index, template, formats, &builtins).map_err(|e| e.to_string())?;
        let vocabulary = vocabulary_for(cell);
        let mut chosen = Vec::new();
        for slot in &usable.slots {
            let value = wording(slot).ok_or_else(|| {
                format!("template {index} needs {{{slot}}}, which the combination does not give")
            })?;
            let index = vocabulary
                .get(slot.as_str())
                .and_then(|levels| levels.iter().position(|l| *l == value))
                .ok_or_else(|| format!("{slot} {value:?} is no longer in the brief"))?;
            if let Some(word) = banned_in(value, voice) {
                return Err(format!(
                    "{slot} {value:?} contains the banned word {word:?}"
                ));
            }
            chosen.push((slot.as_str(), index, value));
        }
        self.variant(cell, &usable, &builtins, &chosen, voice)
            .map_err(|e| e.to_string())
    }
}

/// The formats of `cell` that `template` is written for, if any, and if it suits the voice's
/// formality.
fn serves(template: &Template, cell: &Cell<'_>, voice: &BrandVoice) -> Option<Vec<Format>> {
    let formality = &voice.tone.formality;
    if !template.formality.is_empty() && !template.formality.contains(formality) {
        return None;
    }
    let formats: Vec<Format> = cell
        .formats
        .iter()
        .copied()
        .filter(|f| template.formats.contains(f))
        .collect();
    (!formats.is_empty()).then_some(formats)
}

/// The banned word a level would put in the copy, once the voice's preferred terms are applied.
fn banned_in<'v>(level: &str, voice: &'v BrandVoice) -> Option<&'v str> {
    voice.find_banned(&apply_preferred_terms(level, &voice.preferred_terms))
}

/// The format cells of `channel` in `region`, each written as one (see [`Format::written_with`]).
fn format_groups(channel: Channel, region: &str) -> Vec<Vec<Format>> {
    let mut groups: Vec<Vec<Format>> = Vec::new();
    for format in Format::for_channel(channel, region) {
        let group = format.written_with().to_vec();
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
}

struct Cell<'a> {
    segment: &'a str,
    channel: Channel,
    formats: Vec<Format>,
    code: &'a str,
    language: &'a Language,
    copy: &'a BriefCopy,
    objective: Objective,
    url: &'a str,
}

impl Cell<'_> {
    /// A stable per-cell seed offset (FNV-1a), so cells do not share one design.
    fn hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let formats: Vec<&str> = self.formats.iter().map(|f| f.as_str()).collect();
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            self.segment,
            self.channel,
            self.code,
            formats.join(",")
        );
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }
}

/// A template that may be used in a cell, parsed.
struct Usable<'a> {
    index: usize,
    template: &'a Template,
    formats: Vec<Format>,
    fields: Vec<(Field, Vec<Piece>)>,
    slots: BTreeSet<String>,
}

/// One dimension of a cell's design: its name and the levels left after banned-word filtering, each
/// with its index in the playbook.
struct Dimension<'a> {
    name: String,
    levels: Vec<(usize, &'a str)>,
}

impl TemplateGenerator {
    fn fill(&self, cell: &Cell<'_>, voice: &BrandVoice, seed: u64) -> (Vec<Variant>, CellReport) {
        let mut dropped: Vec<String> = Vec::new();
        let vocabulary = vocabulary_for(cell);
        let builtins = builtins(voice, cell);

        // Templates for this cell's formats and the brand's formality whose built-in values exist.
        let mut usable: Vec<Usable<'_>> = Vec::new();
        for (index, template) in cell.language.templates.iter().enumerate() {
            let Some(formats) = serves(template, cell, voice) else {
                continue;
            };
            match prepare(index, template, formats, &builtins) {
                Ok(u) => usable.push(u),
                Err(reason) => note(reason.to_string(), &mut dropped),
            }
        }

        // Levels that would put a banned word in the copy are removed before the design is drawn,
        // so the design is spent on usable combinations.
        let mut dimensions: BTreeMap<String, Dimension<'_>> = BTreeMap::new();
        for name in usable.iter().flat_map(|u| u.slots.iter()) {
            if dimensions.contains_key(name) {
                continue;
            }
            let Some(levels) = vocabulary.get(name.as_str()) else {
                continue;
            };
            let mut kept = Vec::new();
            for (i, &level) in levels.iter().enumerate() {
                match banned_in(level, voice) {
                    Some(word) => note(
                        format!("{name} level {i} contains the banned word {word:?}"),
                        &mut dropped,
                    ),
                    None => kept.push((i, level)),
                }
            }
            dimensions.insert(
                name.clone(),
                Dimension {
                    name: name.clone(),
                    levels: kept,
                },
            );
        }
        let empty: BTreeSet<&str> = dimensions
            .values()
            .filter(|d| d.levels.is_empty())
            .map(|d| d.name.as_str())
            .collect();
        usable.retain(|u| {
            let blocked = u.slots.iter().find(|s| empty.contains(s.as_str()));
            if let Some(dimension) = blocked {
                let why = if vocabulary
                    .get(dimension.as_str())
                    .is_some_and(Vec::is_empty)
                {
                    "the brief gives none"
                } else {
                    "every one is banned"
                };
                note(
                    format!(
                        "template {} dropped: it needs {{{dimension}}} and {why}",
                        u.index
                    ),
                    &mut dropped,
                );
            }
            blocked.is_none()
        });
        let used: BTreeSet<&str> = usable
            .iter()
            .flat_map(|u| u.slots.iter().map(String::as_str))
            .filter(|s| dimensions.contains_key(*s))
            .collect();
        let dimensions: Vec<&Dimension<'_>> = dimensions
            .values()
            .filter(|d| used.contains(d.name.as_str()))
            .collect();

        let mut report = CellReport {
            segment: cell.segment.to_owned(),
            channel: cell.channel,
            formats: cell.formats.clone(),
            language: cell.code.to_owned(),
            design: DesignKind::FullFactorial,
            candidates: 0,
            emitted: 0,
            dropped: Vec::new(),
        };
        if usable.is_empty() {
            note(
                format!(
                    "no usable {} template in language {}",
                    join_formats(&cell.formats),
                    cell.code
                ),
                &mut dropped,
            );
            report.dropped = dropped;
            return (Vec::new(), report);
        }

        // Design axes: the template choice first (when there is one), then the vocabulary dimensions.
        let mut counts = vec![usable.len()];
        counts.extend(dimensions.iter().map(|d| d.levels.len()));
        let design = orthogonal::design(
            &counts,
            self.playbook.generation.max_variants_per_cell,
            seed,
        );
        report.design = design.kind;
        report.candidates = design.runs.len();

        let mut variants: Vec<Variant> = Vec::new();
        let mut ids = BTreeSet::new();
        for run in &design.runs {
            let Some(usable) = run.first().and_then(|&t| usable.get(t)) else {
                continue;
            };
            // Only the dimensions this template uses are part of the variant's identity.
            let chosen: Vec<(&str, usize, &str)> = dimensions
                .iter()
                .zip(run.iter().skip(1))
                .filter(|(dimension, _)| usable.slots.contains(&dimension.name))
                .filter_map(|(dimension, &choice)| {
                    let &(index, value) = dimension.levels.get(choice)?;
                    Some((dimension.name.as_str(), index, value))
                })
                .collect();
            match self.variant(cell, usable, &builtins, &chosen, voice) {
                Ok(variant) => {
                    if ids.insert(variant.id.clone()) {
                        variants.push(variant);
                    }
                }
                Err(reason) => note(reason.to_string(), &mut dropped),
            }
        }
        report.emitted = variants.len();
        report.dropped = dropped;
        (variants, report)
    }

    /// The variant of one template and one level per dimension it fills, (dimension, index,
    /// wording) each.
    fn variant(
        &self,
        cell: &Cell<'_>,
        usable: &Usable<'_>,
        builtins: &BTreeMap<&'static str, &str>,
        chosen: &[(&str, usize, &str)],
        voice: &BrandVoice,
    ) -> Result<Variant, Dropped> {
        let mut values: BTreeMap<&str, &str> = builtins.clone();
        let mut levels = vec![LevelChoice {
            dimension: TEMPLATE_DIMENSION.into(),
            index: usable.index,
            value: usable.template.text.as_str().into(),
        }];
        for &(dimension, index, value) in chosen {
            values.insert(dimension, value);
            levels.push(LevelChoice {
                dimension: dimension.into(),
                index,
                value: value.into(),
            });
        }
        let (format, creative, fit, filled) = self.realize(cell, usable, &values, voice)?;
        // A level whose optional part was left out to fit is not in the copy: it is no level of
        // this variant (and the same copy gets the same id).
        levels.retain(|l| &*l.dimension == TEMPLATE_DIMENSION || filled.contains(&*l.dimension));
        Ok(Variant {
            id: variant_id(cell, format, &levels),
            channel: cell.channel,
            format,
            segment: cell.segment.to_owned(),
            language: cell.code.to_owned(),
            levels,
            creative,
            measures: fit.measures,
            warnings: fit.warnings,
        })
    }

    /// Renders one candidate, shortening it by leaving out optional parts until it fits one of the
    /// template's formats, with the slots it filled; the reason for the last failure when nothing
    /// fits.
    fn realize<'u>(
        &self,
        cell: &Cell<'_>,
        usable: &'u Usable<'_>,
        values: &BTreeMap<&str, &str>,
        voice: &BrandVoice,
    ) -> Result<(Format, Creative, Fit, BTreeSet<&'u str>), Dropped> {
        let optional_total: usize = usable
            .fields
            .iter()
            .map(|(_, pieces)| count_optional(pieces))
            .sum();
        let mut last_failure = Dropped::NoFormat {
            template: usable.index,
        };
        for keep in (0..=optional_total).rev() {
            let mut filled = BTreeSet::new();
            let creative = self.compose(cell, usable, values, voice, keep, &mut filled);
            if let Some((field, word)) = creative
                .fields()
                .find_map(|(f, t)| find_banned(t, &voice.banned_words).map(|w| (f, w)))
            {
                last_failure = Dropped::BannedWord {
                    template: usable.index,
                    field: field.as_str(),
                    word: word.to_owned(),
                };
                continue;
            }
            for &format in &usable.formats {
                let fit = self.playbook.limits.check(format, &creative);
                if fit.fits() {
                    return Ok((format, creative, fit, filled));
                }
                if let Some(violation) = fit.violations.first() {
                    last_failure = Dropped::OverLimit {
                        template: usable.index,
                        limit: violation.message.clone(),
                    };
                }
            }
        }
        Err(last_failure)
    }

    /// Fills the template keeping the first `keep` optional parts, then applies the brand's voice.
    fn compose<'u>(
        &self,
        cell: &Cell<'_>,
        usable: &'u Usable<'_>,
        values: &BTreeMap<&str, &str>,
        voice: &BrandVoice,
        keep: usize,
        filled: &mut BTreeSet<&'u str>,
    ) -> Creative {
        let strip_emoji = !voice.tone.emoji || cell.formats.iter().any(|f| f.is_cp949());
        let mut creative = Creative::default();
        let mut budget = keep;
        for (field, pieces) in &usable.fields {
            let raw = render(pieces, values, &mut budget, filled);
            let mut text = apply_preferred_terms(&raw, &voice.preferred_terms);
            if strip_emoji {
                text.retain(|c| !is_emoji(c));
            }
            let text = tidy(&text);
            match field {
                Field::Text => creative.text = text,
                Field::Headline => creative.headline = Some(text),
                Field::Subject => creative.subject = Some(text),
                Field::Path => creative.path = Some(text),
                Field::Payload => {}
            }
        }
        add_disclaimers(&mut creative, cell, usable, voice);
        creative
    }

    pub fn limits(&self) -> &ChannelLimits {
        &self.playbook.limits
    }
}

/// Records a reason once.
fn note(reason: String, dropped: &mut Vec<String>) {
    if !dropped.contains(&reason) {
        dropped.push(reason);
    }
}

/// Each dimension's levels in a cell: the segment's messages (or the language's) and the
/// claims from the brief; its calls to action, or the playbook's for the objective.
fn vocabulary_for<'a>(cell: &Cell<'a>) -> BTreeMap<&'static str, Vec<&'a str>> {
    let texts = |list: &'a [String]| list.iter().map(String::as_str).collect::<Vec<_>>();
    let ctas = if cell.copy.calls_to_action.is_empty() {
        cell.language.calls_to_action.for_objective(cell.objective)
    } else {
        &cell.copy.calls_to_action
    };
    let [message, offer, cta] = DIMENSIONS;
    BTreeMap::from([
        (message, texts(cell.copy.messages_for(cell.segment))),
        (
            offer,
            cell.copy.claims.iter().map(|c| c.text.as_str()).collect(),
        ),
        (cta, texts(ctas)),
    ])
}

/// Parses the fields the template's formats use and checks the brand provides its built-ins.
fn prepare<'a>(
    index: usize,
    template: &'a Template,
    formats: Vec<Format>,
    available: &BTreeMap<&str, &str>,
) -> Result<Usable<'a>, Dropped> {
    let wanted: BTreeSet<Field> = formats
        .iter()
        .flat_map(|f| f.used_fields().iter().copied())
        .collect();
    let mut fields = Vec::new();
    for field in wanted {
        if let Some(source) = template.field(field) {
            let pieces = parse_template(source).map_err(|reason| Dropped::Unparsable {
                template: index,
                field: field.as_str(),
                reason,
            })?;
            fields.push((field, pieces));
        }
    }
    let mut slots = BTreeSet::new();
    for (_, pieces) in &fields {
        collect(pieces, &mut slots);
    }
    for (name, guideline_key) in [
        ("brand", "brand_name"),
        ("opt_out", "legal_entity.opt_out_number"),
        ("contact", "legal_entity.contact"),
        ("address", "legal_entity.address"),
    ] {
        if slots.contains(name) && !available.contains_key(name) {
            return Err(Dropped::MissingBuiltin {
                template: index,
                name,
                guideline_key,
            });
        }
    }
    slots.retain(|s| !available.contains_key(s.as_str()));
    Ok(Usable {
        index,
        template,
        formats,
        fields,
        slots,
    })
}

fn collect(pieces: &[Piece], slots: &mut BTreeSet<String>) {
    for piece in pieces {
        match piece {
            Piece::Slot(name) => {
                slots.insert(name.clone());
            }
            Piece::Optional(inner) => collect(inner, slots),
            Piece::Literal(_) => {}
        }
    }
}

/// The values with one per campaign: the brand voice's, and the brief's product and landing URL.
fn builtins<'a>(voice: &'a BrandVoice, cell: &Cell<'a>) -> BTreeMap<&'static str, &'a str> {
    let entity = &voice.legal_entity;
    [
        ("brand", voice.display_name()),
        ("opt_out", entity.opt_out_number.as_deref()),
        ("contact", entity.contact.as_deref()),
        ("address", entity.address.as_deref()),
        ("product", Some(cell.copy.product.as_str())),
        ("url", Some(cell.url)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

fn count_optional(pieces: &[Piece]) -> usize {
    pieces
        .iter()
        .filter(|p| matches!(p, Piece::Optional(_)))
        .count()
}

/// Fills slots; an optional part is kept while `budget` lasts (so the last ones go first). The
/// slots written go into `filled`.
fn render<'p>(
    pieces: &'p [Piece],
    values: &BTreeMap<&str, &str>,
    budget: &mut usize,
    filled: &mut BTreeSet<&'p str>,
) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Slot(name) => {
                filled.insert(name);
                out.push_str(values.get(name.as_str()).copied().unwrap_or_default())
            }
            Piece::Optional(inner) => {
                if *budget > 0 {
                    *budget -= 1;
                    let mut none = 0;
                    out.push_str(&render(inner, values, &mut none, filled));
                }
            }
        }
    }
    out
}

/// Collapses runs of spaces (left by an empty slot or a removed emoji) and trims each line's ends.
fn tidy(text: &str) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            line.split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// Adds each required disclaimer the creative does not already carry. A disclaimer goes into the
/// field it names when the format uses that field, otherwise into the text. At the start it is joined
/// without a space when it ends in a bracket (`(광고)ABC마트`), as the Korean label is written.
fn add_disclaimers(
    creative: &mut Creative,
    cell: &Cell<'_>,
    usable: &Usable<'_>,
    voice: &BrandVoice,
) {
    for disclaimer in voice.disclaimers_for(cell.channel) {
        let has_field = usable
            .formats
            .iter()
            .any(|f| f.used_fields().contains(&disclaimer.field))
            && creative.get(disclaimer.field).is_some();
        let field = if has_field {
            disclaimer.field
        } else {
            Field::Text
        };
        let Some(target) = creative.get_mut(field) else {
            continue;
        };
        if target.contains(disclaimer.text.as_str()) {
            continue;
        }
        let text = disclaimer.text.trim();
        *target = match disclaimer.position {
            Position::Start if text.ends_with([')', ']']) => format!("{text}{target}"),
            Position::Start => format!("{text} {target}"),
            Position::End if target.is_empty() => text.to_owned(),
            Position::End => format!("{target} {text}"),
        };
    }
}

fn join_formats(formats: &[Format]) -> String {
    formats
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

fn variant_id(cell: &Cell<'_>, format: Format, levels: &[LevelChoice]) -> String {
    let choices: Vec<String> = levels
        .iter()
        .map(|l| format!("{}={}", l.dimension, l.index))
        .collect();
    format!(
        "{}/{}/{}/{}",
        cell.segment,
        format,
        cell.code,
        choices.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_collapses_spaces_but_keeps_lines() {
        assert_eq!(tidy("  a   b \n  c  "), "a b\nc");
    }

    #[test]
    fn optional_parts_go_last_first() {
        let pieces = parse_template("a[[ b]][[ c]] d").unwrap();
        let values = BTreeMap::new();
        let render_keep =
            |keep: usize| render(&pieces, &values, &mut keep.clone(), &mut BTreeSet::new());
        assert_eq!(render_keep(2), "a b c d");
        assert_eq!(render_keep(1), "a b d");
        assert_eq!(render_keep(0), "a d");
    }

    #[test]
    fn drop_reasons_read_as_they_are_recorded() {
        let unparsable = Dropped::Unparsable {
            template: 2,
            field: Field::Headline.as_str(),
            reason: TemplateError::UnclosedSlot,
        };
        assert_eq!(
            unparsable.to_string(),
            "template 2 headline: `{` without a closing `}`"
        );
        let builtin = Dropped::MissingBuiltin {
            template: 0,
            name: "opt_out",
            guideline_key: "legal_entity.opt_out_number",
        };
        assert_eq!(
            builtin.to_string(),
            "template 0 needs {opt_out}: set legal_entity.opt_out_number in the brand guideline"
        );
        let banned = Dropped::BannedWord {
            template: 1,
            field: "text",
            word: "최고".to_owned(),
        };
        assert_eq!(
            banned.to_string(),
            "template 1: text contains the banned word \"최고\""
        );
        let limit = Dropped::OverLimit {
            template: 3,
            limit: "kr_sms text is 95 bytes (CP949), over 90".to_owned(),
        };
        assert_eq!(
            limit.to_string(),
            "template 3: kr_sms text is 95 bytes (CP949), over 90"
        );
    }

    #[test]
    fn a_template_without_the_brands_built_in_is_dropped_with_the_key_to_set() {
        let template = |text: &str| Template {
            formats: vec![Format::KrSms],
            text: text.to_owned(),
            headline: None,
            subject: None,
            path: None,
            formality: Vec::new(),
        };
        let available = BTreeMap::from([("brand", "Acme")]);
        let needs = template("{brand} {offer} {opt_out}");
        let Err(err) = prepare(4, &needs, vec![Format::KrSms], &available) else {
            panic!("the voice has no opt-out number");
        };
        assert_eq!(
            err,
            Dropped::MissingBuiltin {
                template: 4,
                name: "opt_out",
                guideline_key: "legal_entity.opt_out_number",
            }
        );
        let broken = template("{brand");
        let Err(err) = prepare(5, &broken, vec![Format::KrSms], &available) else {
            panic!("the template does not parse");
        };
        assert_eq!(
            err.to_string(),
            "template 5 text: `{` without a closing `}`"
        );
    }
}
