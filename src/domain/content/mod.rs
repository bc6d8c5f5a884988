//! Creative variants and the generators that write them. The [`Generator`] trait is the seam: the
//! template generator ([`TemplateGenerator`]) is the default, and a language-model backend can be added
//! behind the same trait without touching its callers.
//!
//! Every generator must hand back only variants that fit their format's hard limits, contain no banned
//! word and carry the brand's disclaimers; a candidate that cannot be made so is dropped and the reason
//! reported, never emitted. Generators are pure: no I/O, no clock, the same request and seed give the
//! same variants.
//!
//! [`revise`] applies compliance's fixes to a blocked variant and checks it against its limits again.

pub mod orthogonal;
pub mod playbook;
pub mod revise;
pub mod template;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::brand::BrandVoice;
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::channel::{Creative, Format, LimitFinding, Measure};

pub use orthogonal::{Design, DesignKind, L18};
pub use playbook::{ContentPlaybook, EMBEDDED_AGENT_FILE, PlaybookError, TemplateError};
pub use revise::{BlockedVariant, Revision, RevisionError, message_of, revise};
pub use template::TemplateGenerator;

/// What to write for: the campaign (its segments, channels and regions), the merged brand voice and
/// the seed that makes the design reproducible.
#[derive(Clone, Copy, Debug)]
pub struct GenerationRequest<'a> {
    pub goal: &'a CampaignGoal,
    pub voice: &'a BrandVoice,
    pub seed: u64,
}

/// One level chosen for one creative dimension. Its texts are shared (`Arc<str>`): an
/// experiment keeps each dimension's name and level wording once for all the variants that use
/// it (see `Experiment::set_arms`), not once per variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelChoice {
    /// `headline`, `offer`, `cta`, … or `template`.
    pub dimension: Arc<str>,
    /// Index in the dimension's level list as the playbook declares it (stable across banned-word
    /// filtering), so the optimizer can recombine variants dimension by dimension.
    pub index: usize,
    /// The level's wording as written in the playbook (for `template`, the template's text).
    pub value: Arc<str>,
}

/// A content cell: the segment × format × language variants are written for together, named by
/// the first format written with it (Korean LMS is written in the SMS cell, see
/// [`Format::written_with`]). Variants of one cell share templates and levels, so the genetic
/// search recombines only them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CreativeCell {
    pub channel: Channel,
    pub segment: String,
    pub language: String,
    pub format: Format,
}

impl std::fmt::Display for CreativeCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.segment, self.format, self.language)
    }
}

/// Combinations of levels the genetic search bred for one cell, to be written as variants: each
/// the template first, then one level per dimension the template fills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bred {
    pub cell: CreativeCell,
    pub combinations: Vec<Vec<LevelChoice>>,
}

/// One creative variant, ready for review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// `segment/format/language/i.j.k` (level indices in dimension order): stable for the same
    /// choices, unique within a generation.
    pub id: String,
    pub channel: Channel,
    pub format: Format,
    pub segment: String,
    /// The playbook language code it is written in.
    pub language: String,
    pub levels: Vec<LevelChoice>,
    pub creative: Creative,
    /// The measured size of every limited field.
    pub measures: Vec<Measure>,
    /// Recommended limits it misses (Meta, email subject, iOS banner); hard limits are never missed.
    pub warnings: Vec<LimitFinding>,
}

/// What happened in one segment × channel × language cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellReport {
    pub segment: String,
    pub channel: Channel,
    pub formats: Vec<Format>,
    pub language: String,
    pub design: DesignKind,
    /// Combinations tried.
    pub candidates: usize,
    pub emitted: usize,
    /// Why candidates (or whole templates) were dropped, each reason once.
    pub dropped: Vec<String>,
}

/// A generator's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub variants: Vec<Variant>,
    pub cells: Vec<CellReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The request cannot be served as asked (no channels, no regions, …).
    #[error("cannot generate content for campaign `{campaign}`: {reason}")]
    Request { campaign: String, reason: String },
    /// A backend (for example a language model) failed.
    #[error("content generator `{generator}` failed: {reason}")]
    Backend { generator: String, reason: String },
}

/// Writes creative variants. Implementations must keep the guarantees in this module's doc.
pub trait Generator: Send + Sync {
    /// A short name for logs and decision records (`template`, …).
    fn name(&self) -> &str;

    fn generate(&self, request: &GenerationRequest<'_>) -> Result<Generation, GenerateError>;

    /// Writes the combinations the genetic search bred, each in its cell, under the same
    /// guarantees; a combination that cannot be written (its template or a level is gone since,
    /// it no longer fits) is dropped with the reason in its cell's report.
    fn write_bred(
        &self,
        request: &GenerationRequest<'_>,
        bred: &[Bred],
    ) -> Result<Generation, GenerateError>;
}
