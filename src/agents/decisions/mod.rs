//! One Rust type per kind of decision the built-in agents record, and the observation outcome.
//!
//! A decision record in the knowledge base is generic (`kind`, `inputs`, `choice` as JSON) so that
//! any agent can write one and any reader can show one. What the built-in agents write and read
//! back is typed here: each kind is a marker type with its [`DecisionKind::KIND`] string and the
//! shapes of its inputs and choice. Agents record through these types
//! ([`Draft::new`](super::ledger::Draft::new)) and read them back only through
//! [`projection`](super::projection), the one module that decodes records. The field names are the
//! stored format: renaming one breaks knowledge bases already written, so a field is only ever
//! added (with a default). Fields no reader needs default when absent, so a record that carries
//! only what a reader looks at still reads, as it did before records were typed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::brand::Tone;
use crate::domain::campaign::{Budget, CampaignGoal, Channel, Phase};
use crate::domain::compliance::recipients::{SendLine, SendList};
use crate::domain::compliance::{ConsentRecord, Fix, Jurisdiction, Message, MessageChannel};
use crate::domain::content::{Bred, CellReport, CreativeCell};
use crate::domain::optimization::{
    Arm, ArmStats, BudgetPacing, ChannelEvidence, Forecast, Progress, ResponseCurve, SampleRatio,
    SpendBounds, SplitMethod,
};
use crate::domain::strategy::{Delivery, FunnelKpis, RankedTactic};
use crate::kb::{DecisionId, OutcomeId};
use crate::market::Observation;

mod approval;

pub use approval::{
    ApprovalAnswerChoice, ApprovalAnswerInputs, ApprovalAppliedInputs, ApprovalRequestChoice,
    ApprovalRequestInputs, AutonomyChoice, HeldCreative, Proposal,
};

/// A kind of decision: its stored `kind` string and the shapes of its inputs and choice.
pub trait DecisionKind {
    const KIND: &'static str;
    type Inputs: Serialize;
    type Choice: Serialize;
}

/// Something done once per kind the built-in agents write (see [`every_kind`]).
pub trait KindVisitor {
    fn visit<K>(&mut self)
    where
        K: DecisionKind,
        K::Inputs: DeserializeOwned,
        K::Choice: DeserializeOwned;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $kind:literal, $inputs:ty, $choice:ty;)*) => {
        $(
            $(#[$doc])*
            pub enum $name {}

            impl DecisionKind for $name {
                const KIND: &'static str = $kind;
                type Inputs = $inputs;
                type Choice = $choice;
            }
        )*

        /// Calls `visitor` with every kind below, so that a list of kinds is never written twice.
        pub fn every_kind(visitor: &mut impl KindVisitor) {
            $(visitor.visit::<$name>();)*
        }

        /// Every kind's name, in the order below.
        pub fn kind_names() -> Vec<&'static str> {
            vec![$(<$name as DecisionKind>::KIND),*]
        }
    };
}

kinds! {
    // The orchestrator's.
    /// The goal split into the funnel and a budget per channel and day; anchors the goal's start.
    SubGoals = "sub_goals", SubGoalsInputs, SubGoalsChoice;
    /// The approved variants enter the experiment: the campaign is set up.
    Setup = "setup", SetupInputs, SetupChoice;
    /// A day on which nothing is approved or bought, and why.
    Hold = "hold", DayInputs, String;
    /// A re-plan at a missed forecast or an operator's order.
    Replan = "replan", ReplanInputs, ReplanChoice;
    /// The campaign moved to another phase.
    PhaseChange = "phase", PhaseInputs, PhaseChoice;
    /// An operator paused the campaign.
    Pause = "pause", OperatorInputs, String;
    /// An operator resumed the campaign.
    Resume = "resume", OperatorInputs, String;
    /// An operator ordered a re-plan (carried out at the next tick).
    ReplanOrdered = "replan_ordered", OperatorInputs, String;
    /// The target is reached; buying stops.
    GoalAchieved = "goal_achieved", GoalAchievedInputs, GoalAchievedChoice;
    /// A day's buys cut to what is left of the budget.
    BudgetCap = "budget_cap", BudgetCapInputs, BudgetCapChoice;
    /// An operator revived an isolated agent (recorded for operators, not for a campaign).
    Revive = "revive", ReviveInputs, String;

    // Strategy's.
    /// A plan (`None` choice when no plan was possible).
    Plan = "plan", PlanInputs, Option<PlanChoice>;

    // Content's.
    /// A generation of creatives: the first one, or one the genetic step bred.
    Creatives = "creatives", CreativesInputs, Vec<CreativeSummary>;
    /// Fixes applied to blocked variants.
    Revision = "revision", RevisionInputs, RevisionChoice;

    // Compliance's.
    /// The review of one variant.
    Review = "review", ReviewInputs, ReviewChoice;
    /// A consent grant, re-confirmation or withdrawal.
    Consent = "consent", ConsentRecord, ConsentRecord;
    /// A subject erased: every consent of its pseudonym stops.
    Erasure = "erasure", ErasureInputs, ErasureChoice;
    /// A day's send list of a messaging channel and segment, each member checked against their
    /// own consent.
    DrawnSendList = "send_list", SendListInputs, SendListChoice;

    // Optimization's.
    /// The experiment started or re-budgeted.
    Experiment = "experiment", ExperimentInputs, ExperimentChoice;
    /// Budget moved between channels.
    Allocation = "allocation", AllocationInputs, AllocationChoice;
    /// The day's split of one channel's traffic between its variants.
    TrafficSplit = "traffic_split", TrafficSplitInputs, TrafficSplitChoice;
    /// Drift found: exploration re-opens.
    Drift = "drift", DriftInputs, DriftChoice;
    /// A channel's leader beats the runner-up significantly: stabilize may concentrate on it.
    WinnerDeclared = "winner", WinnerInputs, WinnerChoice;
    /// A channel × segment's day delivered a split unlike the one planned: an alarm.
    SampleRatioMismatch = "sample_ratio_mismatch", SampleRatioInputs, String;
    /// The next generation of creative combinations, bred per content cell.
    GeneticStep = "genetic_step", GeneticInputs, GeneticChoice;
    /// A bred generation's approved variants join the experiment; arms retire to keep each
    /// cell's bound of live arms.
    ArmsJoined = "arms_joined", JoinInputs, JoinChoice;
    /// The forecast of the day: the last step of a day's learning.
    ForecastMade = "forecast", ForecastInputs, ForecastChoice;
    /// Exploration re-opened on an order (after a re-plan, or an operator's).
    Reexplored = "reexplore", ReexploreInputs, String;

    // People in the loop: a request is recorded by the agent whose decision waits, its answer
    // (or expiry) and autonomy changes by the orchestrator.
    /// A decision that waits for a person: what is proposed, why it waits, until when.
    ApprovalRequested = "approval_request", ApprovalRequestInputs, ApprovalRequestChoice;
    /// A person's answer to a request, or its expiry.
    ApprovalAnswered = "approval_answer", ApprovalAnswerInputs, ApprovalAnswerChoice;
    /// What the proposing agent did once the request was answered.
    ApprovalApplied = "approval_applied", ApprovalAppliedInputs, String;
    /// The campaign's autonomy changed: a person's order, or an approved earned-autonomy request.
    AutonomySet = "autonomy", OperatorInputs, AutonomyChoice;
}

/// The outcome kind of one channel's observations of one day, recorded together (see
/// [`ObservationReport`]).
pub const OBSERVATIONS_OUTCOME: &str = "observations";

/// The metrics of an observations outcome: what one batch reported for one channel and day, one
/// line per variant (and segment), each variant once. A later batch of the same day records the
/// variants it adds as another outcome of the same channel and day.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservationReport {
    pub day: u32,
    pub channel: Channel,
    pub observations: Vec<Observation>,
    /// The reviews that approved the observed variants, each once, in line order. They are named
    /// here and not among the outcome's `decisions`, each of which the knowledge base files in
    /// its reverse index: a hundred approvals cited again by every channel's outcome of every day
    /// cost about a quarter of a day's work. Absent from outcomes recorded before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<DecisionId>,
}

/// The outcome kind of one observation recorded alone, as campaignd 0.1 did; still read.
pub const OBSERVATION_OUTCOME: &str = "observation";

/// One observation of a day: the metrics of an `observation` outcome, and each line of an
/// `observations` outcome as the readers see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservationMetrics {
    pub day: u32,
    pub observation: Observation,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubGoalsInputs {
    pub plan: DecisionId,
    pub target: u64,
    pub budget: Budget,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubGoalsChoice {
    /// The goal with its start fixed.
    pub goal: CampaignGoal,
    #[serde(default)]
    pub funnel: Funnel,
    #[serde(default)]
    pub daily_budget: BTreeMap<Channel, f64>,
    #[serde(default)]
    pub days: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Funnel {
    pub conversions: u64,
    pub clicks: u64,
    pub impressions: u64,
    pub cpa: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupInputs {
    pub plan: DecisionId,
    pub creatives: Option<DecisionId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupChoice {
    pub approved: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DayInputs {
    pub day: u32,
    /// The agents found isolated, when that is why.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub isolated: BTreeSet<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BudgetCapInputs {
    pub day: u32,
    /// The spend observed so far, and the budget's total.
    pub spent: f64,
    pub total: f64,
    /// What the day's buys added up to before the cut.
    pub planned: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BudgetCapChoice {
    /// What the day's buys add up to after it.
    pub allowed: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplanInputs {
    pub day: u32,
    #[serde(default)]
    pub progress: Progress,
    /// The plan decision the re-plan asked for.
    #[serde(default)]
    pub plan: Option<DecisionId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplanChoice {
    pub daily_budget: Option<BTreeMap<Channel, f64>>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseInputs {
    pub day: u32,
    pub conversions: u64,
    pub target: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseChoice {
    pub phase: Phase,
    #[serde(default)]
    pub from: Option<Phase>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OperatorInputs {
    /// Who gave the command.
    pub from: String,
    pub at: DateTime<Utc>,
    /// Why, in the operator's words (kept so an ordered re-plan survives a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviveInputs {
    /// The agent revived.
    pub agent: String,
    /// Who revived it (the operator's token name).
    pub from: String,
    /// When, on the wall clock.
    pub at: DateTime<Utc>,
    /// Why, in the operator's words.
    pub why: String,
    /// The failure it had been isolated for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub restarts: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoalAchievedInputs {
    pub day: u32,
    pub conversions: u64,
    pub spend: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoalAchievedChoice {
    pub stop_buying: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanInputs {
    pub goal: CampaignGoal,
    pub attempt: u32,
    pub why: String,
    pub remaining_target: Option<u64>,
    pub remaining_budget: Option<f64>,
    /// What each channel delivered so far (empty for the first plan).
    pub observed: Vec<Delivery>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanChoice {
    pub channels: Vec<PlannedChannel>,
    pub daily_budget: f64,
    pub kpis: FunnelKpis,
    pub predicted_conversions: f64,
    pub feasible: bool,
    pub tactics: Vec<RankedTactic>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedChannel {
    pub channel: Channel,
    pub share: f64,
    pub daily_spend: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreativesInputs {
    pub generator: String,
    pub seed: u64,
    pub brand: Option<String>,
    pub tone: Tone,
    pub cells: Vec<CellReport>,
    /// The genetic step whose combinations these are (none for the first generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bred_by: Option<DecisionId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreativeSummary {
    pub id: String,
    pub text: String,
    pub subject: Option<String>,
    pub headline: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevisionInputs {
    pub blocked: Vec<BlockedSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockedSummary {
    pub variant: String,
    /// The rules that blocked it.
    pub rules: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevisionChoice {
    pub revised: Vec<String>,
    pub reschedule: BTreeMap<String, DateTime<FixedOffset>>,
    /// Variants dropped, with why.
    pub dropped: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewInputs {
    pub variant: String,
    pub message: Message,
    pub send_at: DateTime<FixedOffset>,
    pub jurisdictions: Vec<Jurisdiction>,
    pub consent: Option<ConsentRecord>,
}

/// Whose consents an erasure stopped, and at whose request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErasureInputs {
    /// The pseudonym; after the erasure nothing maps a person to it.
    pub subject: String,
    pub requested_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErasureChoice {
    /// The channels whose consent stopped.
    pub channels: Vec<MessageChannel>,
}

/// What a send list was drawn for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendListInputs {
    pub day: u32,
    pub channel: Channel,
    pub segment: String,
    /// The day's buys of the channel and segment.
    pub lines: Vec<SendLine>,
    pub send_at: DateTime<FixedOffset>,
    /// The price of one message, when the campaign file gives one.
    #[serde(default)]
    pub price: Option<f64>,
}

/// What a send list came to: counts only, never who.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendListChoice {
    /// Variant → members listed for it.
    pub listed: BTreeMap<String, usize>,
    /// Eligible members the spend does not reach at the price.
    #[serde(default)]
    pub over_budget: usize,
    /// Rule id (or `withdrawn`) → members it left out.
    #[serde(default)]
    pub excluded: BTreeMap<String, usize>,
}

impl SendListChoice {
    pub fn of(list: &SendList) -> Self {
        let mut listed = BTreeMap::new();
        for recipient in &list.recipients {
            *listed.entry(recipient.variant.clone()).or_default() += 1;
        }
        SendListChoice {
            listed,
            over_budget: list.over_budget,
            excluded: list.excluded.clone(),
        }
    }

    pub fn reason(
        &self,
        segment: &str,
        channel: Channel,
        price: Option<f64>,
        currency: &str,
    ) -> String {
        let total: usize = self.listed.values().sum();
        let mut reason = format!(
            "{total} members of {segment} get the day's {channel} message, each checked against their own consent at the send time"
        );
        if !self.excluded.is_empty() {
            let why: Vec<String> = self
                .excluded
                .iter()
                .map(|(rule, n)| format!("{n} by {rule}"))
                .collect();
            reason.push_str(&format!("; left out: {}", why.join(", ")));
        }
        match price {
            Some(price) if self.over_budget > 0 => reason.push_str(&format!(
                "; {} more are eligible but the day's spend buys no more messages at {price} {currency}",
                self.over_budget
            )),
            Some(_) => {}
            None => reason.push_str("; no send price is set, so every eligible member is listed"),
        }
        if total == 0 {
            reason.push_str("; nothing is sent");
        }
        reason
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewChoice {
    pub approved: bool,
    #[serde(default)]
    pub risk: u8,
    #[serde(default)]
    pub fixable: bool,
    #[serde(default)]
    pub fixes: Vec<Fix>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExperimentInputs {
    pub plan: DecisionId,
    pub attempt: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExperimentChoice {
    #[serde(default)]
    pub arms: Vec<Arm>,
    #[serde(default)]
    pub daily: BTreeMap<Channel, f64>,
    #[serde(default)]
    pub curves: BTreeMap<Channel, ResponseCurve>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bounds: BTreeMap<Channel, SpendBounds>,
}

/// Either a hand-off of unfunded channels (`attempt`, `unfunded`) or a day's move (`day`,
/// `outcomes`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AllocationInputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
    pub before: BTreeMap<Channel, f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfunded: Vec<Channel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<OutcomeId>,
    /// A day's move: each funded channel's evidence, the posterior of its return and the draw
    /// the move was allocated with (absent from moves recorded before there were posteriors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub posterior: Vec<ChannelEvidence>,
    /// A day's move: where the draws would put the money, before pacing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<Channel, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<BudgetPacing>,
    /// The seed of the day's draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllocationChoice {
    pub daily: BTreeMap<Channel, f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WinnerInputs {
    pub day: u32,
    pub channel: Channel,
    pub runner_up: String,
    pub leader: ArmStats,
    pub second: ArmStats,
    pub p_value: f64,
    pub alpha: f64,
    pub power: f64,
    /// Trials each arm needs to tell their rates apart at `alpha` with `power`.
    pub needed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WinnerChoice {
    pub channel: Channel,
    pub variant: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrafficSplitInputs {
    pub day: u32,
    pub channel: Channel,
    #[serde(default)]
    pub outcomes: Vec<OutcomeId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrafficSplitChoice {
    pub shares: BTreeMap<String, f64>,
    /// Monte-Carlo when absent: every split recorded before the quadrature was drawn.
    #[serde(default)]
    pub method: SplitMethod,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub draws: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriftInputs {
    /// What was watched: a channel's leading variant, or every variant on it.
    pub watched: String,
    pub channel: Channel,
    pub baseline: ArmStats,
    pub recent: ArmStats,
    pub window_days: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriftChoice {
    #[serde(default)]
    pub reexplore: bool,
    #[serde(default)]
    pub watched: String,
    pub explore_until: Option<u32>,
    /// The share of the evidence kept when exploration re-opened.
    #[serde(default = "default_keep")]
    pub keep: f64,
}

fn default_keep() -> f64 {
    0.1
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleRatioInputs {
    pub day: u32,
    pub channel: Channel,
    pub segment: String,
    /// Each variant's planned spend share, delivered and expected clicks, and the χ² test.
    pub test: SampleRatio,
    /// The p-value below which it is an alarm.
    pub alpha: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GeneticInputs {
    pub day: u32,
    /// Each cell bred from, with its seed and evidence.
    #[serde(default)]
    pub cells: Vec<GeneticCell>,
    /// Recorded before generations were bred per cell: the one seed and pooled space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub space: BTreeMap<String, Vec<String>>,
}

/// One cell's breeding: its seed, its space (dimension → levels) and what its arms had shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GeneticCell {
    pub cell: CreativeCell,
    pub seed: u64,
    pub space: BTreeMap<String, Vec<String>>,
    pub arms: usize,
    pub conversions: u64,
    pub trials: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GeneticChoice {
    /// Per cell, the combinations no arm is yet, for content to write.
    #[serde(default)]
    pub bred: Vec<Bred>,
    /// Recorded before generations were bred per cell (nothing wrote them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_generation: Vec<Vec<(String, String)>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinInputs {
    /// The campaign day it joined on.
    pub day: u32,
    /// The genetic step it comes from, and content's decision writing it; no generation for
    /// creatives a person approved (`approval`, the request).
    pub generation: Option<DecisionId>,
    #[serde(default)]
    pub approval: Option<DecisionId>,
    pub creatives: Option<DecisionId>,
    /// Live arms a cell keeps at most.
    pub max_live: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JoinChoice {
    /// The approved variants that joined.
    pub joined: Vec<Arm>,
    /// The arms retired to make room, with the evidence they had.
    pub retired: Vec<RetiredArm>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RetiredArm {
    pub variant: String,
    pub conversions: u64,
    pub trials: u64,
    /// Its latest traffic share (the probability of being best), if it was ever split.
    pub share: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForecastInputs {
    pub day: u32,
    #[serde(default)]
    pub cumulative: Vec<f64>,
    #[serde(default)]
    pub target: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForecastChoice {
    pub forecast: Option<Forecast>,
    /// Recorded as `null` for a campaign without a start (its deadline day is infinite).
    pub deadline_day: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReexploreInputs {
    /// Why, as the order gave it.
    pub why: String,
    /// The share of the evidence kept.
    pub keep: f64,
}
