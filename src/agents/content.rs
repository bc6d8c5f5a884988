//! The content agent: writes creative variants per segment × channel in the brand's voice, inside
//! each channel's limits, and revises the variants compliance blocked with the fixes compliance
//! suggested, dropping what cannot be fixed or no longer fits its format.
//!
//! A campaign's brand voice comes only from its own tenant's guideline file (organization → client →
//! campaign); it must never read another tenant's guideline, and it never approves its own work:
//! every variant goes to compliance.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::decisions::{
    self as kinds, BlockedSummary, CreativeSummary, CreativesInputs, RevisionChoice, RevisionInputs,
};
use super::ledger::{self, Draft};
use super::playbook::LivePlaybook;
use crate::domain::brand::{BrandVoice, TenantFile};
use crate::domain::campaign::CampaignGoal;
use crate::domain::compliance::{Finding, Sender};
use crate::domain::content::{
    BlockedVariant, Bred, ContentPlaybook, GenerationRequest, Generator, Revision,
    TemplateGenerator, Variant, revise,
};
use crate::domain::optimization::decision_seed;
use crate::kb::{DecisionId, KnowledgeBase};
use crate::protocol::{CampaignId, Envelope, Payload, TenantId};
use crate::runtime::{Agent, AgentError, Context, HandleRequest, Request, Routes, StartContext};
use crate::settings::deployment;

/// Write the first generation of variants for a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteCreatives {
    pub goal: CampaignGoal,
}

impl Payload for WriteCreatives {
    const ACTION: &'static str = "write_creatives";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for WriteCreatives {
    type Response = Creatives;
}

/// Write the combinations a genetic step bred, in their cells.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteBred {
    pub goal: CampaignGoal,
    /// The day it was bred on (part of the decision's step id) and the genetic step's decision.
    pub day: u32,
    pub bred_by: DecisionId,
    pub bred: Vec<Bred>,
}

impl Payload for WriteBred {
    const ACTION: &'static str = "write_bred";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for WriteBred {
    type Response = Creatives;
}

/// Variants ready for review, with the sender identity compliance checks them against.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Creatives {
    pub variants: Vec<Variant>,
    pub sender: Sender,
    pub decision: Option<DecisionId>,
    /// Why nothing could be written, when nothing was.
    pub error: Option<String>,
}

impl Payload for Creatives {
    const ACTION: &'static str = "creatives";
}

/// A variant compliance blocked, with its findings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Blocked {
    pub variant: Variant,
    /// When it was to be sent.
    pub send_at: DateTime<FixedOffset>,
    pub findings: Vec<Finding>,
    pub fixable: bool,
}

/// Revise blocked variants with compliance's fixes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviseVariants {
    pub goal: CampaignGoal,
    pub blocked: Vec<Blocked>,
    /// Which revision round of which batch (as in
    /// [`ReviewVariants`](super::compliance::ReviewVariants)), part of the decision's step id.
    pub round: u32,
    #[serde(default)]
    pub batch: String,
}

impl Payload for ReviseVariants {
    const ACTION: &'static str = "revise_variants";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for ReviseVariants {
    type Response = Revised;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Revised {
    pub variants: Vec<Variant>,
    /// New send times compliance asked for (a night send moved to the morning), by variant id.
    #[serde(default)]
    pub reschedule: BTreeMap<String, DateTime<FixedOffset>>,
    /// (variant id, why it was dropped).
    pub dropped: Vec<(String, String)>,
}

impl Payload for Revised {
    const ACTION: &'static str = "revised";
}

pub struct Content {
    kb: Arc<KnowledgeBase>,
    generator: TemplateGenerator,
    /// Templates, levels and format limits in force; a reload changes them for the next creatives.
    playbook: LivePlaybook<ContentPlaybook>,
    tenants_dir: PathBuf,
}

impl Agent for Content {
    const NAME: &'static str = "content";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        let kb = ctx.services.require::<KnowledgeBase>()?;
        let playbook = LivePlaybook::<ContentPlaybook>::load(&ctx.services, Self::NAME)?;
        let tenants_dir = tenants_dir(&ctx.services);
        Ok(Content {
            kb,
            generator: TemplateGenerator::new(playbook.get().clone()),
            playbook,
            tenants_dir,
        })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes
            .request::<WriteCreatives>()
            .request::<WriteBred>()
            .request::<ReviseVariants>();
    }
}

/// Why a campaign's brand voice could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("{file}: {source}")]
    Invalid {
        /// The tenant file, as the operator would type it (or `<embedded …>`).
        file: String,
        source: Box<crate::domain::brand::BrandError>,
    },
    #[error("cannot read {file}: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },
}

/// The folder of the tenants' files ([`deployment::tenants_dir`]) of the settings the
/// runtime was started with, `config/tenants` without settings. Compliance reads the claims
/// registry from the same files.
pub fn tenants_dir(services: &crate::runtime::Services) -> PathBuf {
    services
        .get::<Arc<crate::settings::Settings>>()
        .map_or_else(
            || PathBuf::from("config/tenants"),
            |s| deployment::tenants_dir(&s.config),
        )
}

/// The brand voice of `goal`, read from its own organization's file only
/// (`tenants_dir/<organization>.toml`, or the shipped file when the folder does not exist). A
/// tenant without a file writes with the neutral defaults.
pub fn voice_for(
    tenants_dir: &std::path::Path,
    goal: &CampaignGoal,
) -> Result<BrandVoice, VoiceError> {
    let organization = goal
        .tenant
        .as_str()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let path = tenants_dir.join(format!("{organization}.toml"));
    let voice_in = |file: String, text: &str| {
        TenantFile::from_toml_str(&organization, text)
            .and_then(|tenant| tenant.voice_for(&goal.tenant, &goal.id))
            .map_err(|source| VoiceError::Invalid {
                file,
                source: Box::new(source),
            })
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => voice_in(path.display().to_string(), &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let embedded = deployment::EMBEDDED_TENANTS
                .iter()
                .find(|(name, _)| *name == organization && !tenants_dir.exists());
            match embedded {
                Some((_, text)) => voice_in(format!("<embedded {}>", path.display()), text),
                None => Ok(BrandVoice::default()),
            }
        }
        Err(source) => Err(VoiceError::Unreadable {
            file: path.display().to_string(),
            source,
        }),
    }
}

/// Who a message of `voice`'s brand says it is from.
pub fn sender_of(voice: &BrandVoice) -> Sender {
    Sender {
        business_name: voice
            .legal_entity
            .name
            .clone()
            .or_else(|| voice.brand_name.clone()),
        contact: voice.legal_entity.contact.clone(),
        opt_out_number: voice.legal_entity.opt_out_number.clone(),
        postal_address: voice.legal_entity.address.clone(),
    }
}

impl Content {
    /// Takes in a reloaded playbook; the generator works from the same one.
    fn refresh_playbook(&mut self, ctx: &Context) {
        if self.playbook.refresh(ctx.services()) {
            self.generator = TemplateGenerator::new(self.playbook.get().clone());
        }
    }
}

impl HandleRequest<WriteCreatives> for Content {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<WriteCreatives>,
    ) -> Result<Creatives, AgentError> {
        let goal = request.payload.goal.clone();
        self.write(ctx, &request, &goal, None).await
    }
}

impl HandleRequest<WriteBred> for Content {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<WriteBred>,
    ) -> Result<Creatives, AgentError> {
        let WriteBred {
            goal,
            day,
            bred_by,
            bred,
        } = request.payload.clone();
        self.write(ctx, &request, &goal, Some((day, bred_by, &bred)))
            .await
    }
}

impl Content {
    /// Writes the first generation of `goal`, or the one bred on a day by a genetic step,
    /// records what was written and why, and answers with it.
    async fn write<P>(
        &mut self,
        ctx: &Context,
        request: &Envelope<P>,
        goal: &CampaignGoal,
        bred: Option<(u32, DecisionId, &[Bred])>,
    ) -> Result<Creatives, AgentError> {
        self.refresh_playbook(ctx);
        let refused = |sender: Sender, error: String| Creatives {
            variants: Vec::new(),
            sender,
            decision: None,
            error: Some(error),
        };
        let voice = match voice_for(&self.tenants_dir, goal) {
            Ok(voice) => voice,
            Err(error) => return Ok(refused(Sender::default(), error.to_string())),
        };
        let sender = sender_of(&voice);
        let seed = decision_seed(goal.id.as_str(), 0);
        let generation_request = GenerationRequest {
            goal,
            voice: &voice,
            seed,
        };
        let (step, generation) = match bred {
            None => (
                "creatives/0".to_owned(),
                self.generator.generate(&generation_request),
            ),
            Some((day, _, bred)) => (
                format!("creatives/gen/{day}"),
                self.generator.write_bred(&generation_request, bred),
            ),
        };
        let generation = match generation {
            Ok(generation) => generation,
            Err(error) => return Ok(refused(sender, error.to_string())),
        };
        let mut draft = Draft::new::<kinds::Creatives>(
            step,
            CreativesInputs {
                generator: self.generator.name().to_owned(),
                seed,
                brand: voice.display_name().map(str::to_owned),
                tone: voice.tone.clone(),
                cells: generation.cells.clone(),
                bred_by: bred.map(|(_, by, _)| by),
            },
            generation
                .variants
                .iter()
                .map(|v| CreativeSummary {
                    id: v.id.clone(),
                    text: v.creative.text.clone(),
                    subject: v.creative.subject.clone(),
                    headline: v.creative.headline.clone(),
                })
                .collect(),
        )
        .confidence(0.6);
        let mut per_cell: BTreeMap<String, usize> = BTreeMap::new();
        for variant in &generation.variants {
            *per_cell
                .entry(format!("{}/{}", variant.segment, variant.channel))
                .or_default() += 1;
            draft = draft.alternative(&variant.id, 1.0, None);
        }
        let dropped: usize = generation
            .cells
            .iter()
            .map(|c| c.candidates.saturating_sub(c.emitted))
            .sum();
        let what = if bred.is_some() {
            "bred combinations written as"
        } else {
            "first generation:"
        };
        draft = draft.reason(format!(
            "{what} {} variants in {} cells ({}) in the voice of {}; {dropped} candidates dropped for limits, banned words, missing disclaimers or levels no longer in the brief",
            generation.variants.len(),
            per_cell.len(),
            per_cell
                .iter()
                .map(|(cell, n)| format!("{cell}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            voice.display_name().unwrap_or("the default voice"),
        ));
        let decision = ledger::record(&self.kb, ctx, request, goal, draft).await?;
        Ok(Creatives {
            variants: generation.variants,
            sender,
            decision: Some(decision.id),
            error: None,
        })
    }
}

impl HandleRequest<ReviseVariants> for Content {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<ReviseVariants>,
    ) -> Result<Revised, AgentError> {
        let ReviseVariants {
            goal,
            blocked,
            round,
            batch,
        } = &request.payload;
        let round = ledger::round_step(batch, *round);
        self.refresh_playbook(ctx);
        let sender = voice_for(&self.tenants_dir, goal)
            .map(|v| sender_of(&v))
            .unwrap_or_default();
        let mut variants = Vec::new();
        let mut reschedule = BTreeMap::new();
        let mut dropped = Vec::new();
        let mut alternatives = Vec::new();
        for item in blocked {
            let blocked_variant = BlockedVariant {
                variant: &item.variant,
                send_at: item.send_at,
                findings: &item.findings,
                fixable: item.fixable,
            };
            let limits = &self.playbook.get().limits;
            match revise(&blocked_variant, &sender, &goal.product_category, limits) {
                Ok(Revision { variant, send_at }) => {
                    alternatives.push((
                        variant.id.clone(),
                        1.0,
                        match send_at {
                            Some(at) => {
                                format!("revised: {} (send at {at})", variant.creative.text)
                            }
                            None => format!("revised: {}", variant.creative.text),
                        },
                    ));
                    if let Some(at) = send_at {
                        reschedule.insert(variant.id.clone(), at);
                    }
                    variants.push(variant);
                }
                Err(why) => {
                    let why = why.to_string();
                    alternatives.push((item.variant.id.clone(), 0.0, format!("dropped: {why}")));
                    dropped.push((item.variant.id.clone(), why));
                }
            }
        }
        let mut draft = Draft::new::<kinds::Revision>(
            format!("revision/{round}"),
            RevisionInputs {
                blocked: blocked
                    .iter()
                    .map(|b| BlockedSummary {
                        variant: b.variant.id.clone(),
                        rules: b.findings.iter().map(|f| f.rule_id.clone()).collect(),
                    })
                    .collect(),
            },
            RevisionChoice {
                revised: variants.iter().map(|v| v.id.clone()).collect(),
                reschedule: reschedule.clone(),
                dropped: dropped.clone(),
            },
        );
        for (variant, score, note) in alternatives {
            draft = draft.alternative(variant, score, Some(note));
        }
        let draft = draft
            .reason(format!(
                "applied compliance's fixes to {} blocked variants: {} revised, {} dropped because no mechanical fix exists or the fixed text no longer fits its format",
                blocked.len(),
                variants.len(),
                dropped.len()
            ))
            .confidence(0.8);
        ledger::record(&self.kb, ctx, &request, goal, draft).await?;
        Ok(Revised {
            variants,
            reschedule,
            dropped,
        })
    }
}
