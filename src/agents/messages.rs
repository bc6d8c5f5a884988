//! The vocabulary the built-in agents and the campaign layer share: the daily tick and its report,
//! the topics with their event types, operator commands, consent records, recorded observations.
//!
//! A message that only one agent answers (a plan request, a review request) belongs to that agent's
//! module; what several parties speak lives here, so no agent has to import another agent's file to
//! talk to a third. This module holds data only: it never decides anything.

use serde::{Deserialize, Serialize};

use crate::domain::approval::{Autonomy, Verdict};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::compliance::{ConsentRecord, MessageChannel};
use crate::kb::{DecisionId, OutcomeId};
use crate::market::Observation;
use crate::protocol::{CampaignId, Payload, TenantId};
use crate::runtime::{EventTopic, Request};

pub use crate::domain::campaign::{Buy, Phase, deadline_day, is_last_day};
pub use crate::domain::optimization::Arm;
pub use crate::runtime::{AGENT_ISOLATED, AgentIsolated};

/// Each recorded batch of observations (published by ingestion, learned from by optimization).
pub const OBSERVATIONS_RECORDED: EventTopic<ObservationsRecorded> =
    EventTopic::new("observations_recorded");
/// Each tick's progress (published by the orchestrator).
pub const GOAL_PROGRESS: EventTopic<GoalProgress> = EventTopic::new("goal_progress");
/// Once, when a campaign reaches its target (published by the orchestrator).
pub const GOAL_ACHIEVED: EventTopic<GoalAchieved> = EventTopic::new("goal_achieved");

/// One clock tick (one campaign day) of one campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tick {
    pub goal: CampaignGoal,
    /// Days since the campaign started (0 is the first day).
    pub day: u32,
}

impl Payload for Tick {
    const ACTION: &'static str = "tick";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for Tick {
    type Response = TickReport;
}

/// What a tick decided: progress, phase, and the buys to place today (none when held).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TickReport {
    /// The goal with its start fixed (the moment it was first planned when it had none).
    pub goal: CampaignGoal,
    pub phase: Phase,
    pub conversions: u64,
    pub progress: f64,
    /// Spend to date, in the campaign's currency (0 when held: not computed).
    pub spend: f64,
    pub eta_day: Option<f64>,
    pub buys: Vec<Buy>,
    pub achieved: bool,
    /// Why nothing is bought today, if so; the day is run again at the next tick.
    pub held: Option<String>,
    /// Why the day passes without buys, when it does so on purpose (a person rejected them).
    #[serde(default)]
    pub skipped: Option<String>,
    /// Each channel's daily budget against the plan's, and why they differ (empty when held).
    #[serde(default)]
    pub mix: BudgetMix,
}

/// Each channel's daily budget against the plan's, and why they differ.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetMix {
    pub channels: Vec<ChannelMix>,
    /// The reason of the latest budget decision since the plan (a move or a hand-off); `None`
    /// while the budget is still the plan's.
    pub why: Option<String>,
    pub decision: Option<DecisionId>,
}

/// One channel's daily budget: the plan's and today's, in the campaign's currency.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelMix {
    pub channel: Channel,
    pub planned: f64,
    pub daily: f64,
}

impl Payload for TickReport {
    const ACTION: &'static str = "tick_report";
}

/// Published once when a campaign reaches its target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoalAchieved {
    pub campaign: CampaignId,
    pub conversions: u64,
    pub target: u64,
    pub day: u32,
    pub decision: DecisionId,
}

impl Payload for GoalAchieved {
    const ACTION: &'static str = "goal_achieved";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.campaign)
    }
}

/// Published on every tick.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoalProgress {
    pub campaign: CampaignId,
    pub day: u32,
    pub phase: Phase,
    pub conversions: u64,
    pub target: u64,
    pub eta_day: Option<f64>,
    pub spend: f64,
}

impl Payload for GoalProgress {
    const ACTION: &'static str = "goal_progress";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.campaign)
    }
}

/// Operator command: stop buying for a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pause {
    pub campaign: CampaignId,
    pub why: String,
}

impl Payload for Pause {
    const ACTION: &'static str = "pause_campaign";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.campaign)
    }
}

/// Operator command: buy again. Refused while compliance is isolated: reviving it comes first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Resume {
    pub campaign: CampaignId,
    /// Why, in the operator's words (recorded in the resume decision).
    #[serde(default)]
    pub why: String,
}

impl Payload for Resume {
    const ACTION: &'static str = "resume_campaign";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.campaign)
    }
}

/// Why a paused campaign's day is held: the orchestrator's answer, and the board's after a restart.
pub const PAUSED: &str = "paused by a command (see its pause decision)";

/// The tenant operator-wide decisions (an agent revived) are recorded under: no tenant token
/// reads them, operators do (`campaignd trace`, `kb decisions`). Reserved: no tenant may be named so.
pub const OPERATIONS_TENANT: &str = "_operations";

/// Operator command to the orchestrator: record that an operator revived an isolated agent (the
/// runtime has just restarted it), with who and why. Refused from anyone but an operator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRevived {
    pub agent: String,
    /// Why, in the operator's words.
    pub why: String,
    /// The failure it had been isolated for.
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub restarts: u32,
}

impl Payload for AgentRevived {
    const ACTION: &'static str = "agent_revived";
}

/// Operator command: ask strategy for a new plan at the next tick.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Replan {
    pub campaign: CampaignId,
    pub why: String,
}

impl Payload for Replan {
    const ACTION: &'static str = "replan_campaign";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.campaign)
    }
}

/// An order to re-open exploration (from the orchestrator or an operator).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reexplore {
    pub campaign: CampaignId,
    pub why: String,
}

impl Payload for Reexplore {
    const ACTION: &'static str = "reexplore";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.campaign)
    }
}

/// A recorded batch of observations (published by ingestion on [`OBSERVATIONS_RECORDED`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservationsRecorded {
    pub goal: CampaignGoal,
    pub day: u32,
    pub observations: Vec<Observation>,
    /// The outcome each observation was recorded as, in the same order.
    pub outcomes: Vec<OutcomeId>,
}

impl Payload for ObservationsRecorded {
    const ACTION: &'static str = "observations_recorded";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

/// Record consent grants, re-confirmations or withdrawals in the tenant's ledger (answered by
/// compliance). A person's subject is its pseudonym ([`crate::agents::subjects`]), never the
/// phone number or address.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordConsent {
    pub tenant: TenantId,
    pub records: Vec<ConsentRecord>,
}

impl Payload for RecordConsent {
    const ACTION: &'static str = "record_consent";

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.tenant)
    }
}

impl Request for RecordConsent {
    type Response = ConsentRecorded;
}

/// Each record's consent decision, in the order sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsentRecorded {
    pub decisions: Vec<RecordedConsent>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct RecordedConsent {
    /// The consent decision; for [`ConsentFate::Erased`], the erasure's.
    pub decision: DecisionId,
    pub fate: ConsentFate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentFate {
    Recorded,
    /// The same event was recorded before, and that record stands.
    Duplicate,
    /// Its subject was erased (the event raced the erasure); nothing is recorded.
    Erased,
}

impl Payload for ConsentRecorded {
    const ACTION: &'static str = "consent_recorded";
}

/// The records in force of one subject, one per channel (answered by compliance).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsentsOf {
    pub tenant: TenantId,
    pub subject: String,
}

impl Payload for ConsentsOf {
    const ACTION: &'static str = "consents_of";

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.tenant)
    }
}

impl Request for ConsentsOf {
    type Response = Consents;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Consents {
    pub records: Vec<ConsentRecord>,
}

impl Payload for Consents {
    const ACTION: &'static str = "consents";
}

/// A subject's erasure (GDPR article 17): every consent of the pseudonym stops, recorded as an
/// `erasure` decision, before the pseudonym's link to the person is deleted (answered by
/// compliance).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EraseSubject {
    pub tenant: TenantId,
    pub subject: String,
    /// Who asked (the token's name).
    pub by: String,
}

impl Payload for EraseSubject {
    const ACTION: &'static str = "erase_subject";

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.tenant)
    }
}

impl Request for EraseSubject {
    type Response = SubjectErased;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubjectErased {
    pub decision: DecisionId,
    /// The channels whose consent stopped.
    pub channels: Vec<MessageChannel>,
}

impl Payload for SubjectErased {
    const ACTION: &'static str = "subject_erased";
}

/// A person's answer to an approval request, sent by the API to the orchestrator (which records
/// every answer, so two at once meet in one place).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnswerApproval {
    pub goal: CampaignGoal,
    pub request: DecisionId,
    /// `approved` or `rejected`.
    pub verdict: Verdict,
    /// The token's name.
    pub by: String,
    pub why: String,
    /// An approval's change within the proposal's bounds: `{"spend": …}` for a day's buys,
    /// `{"daily": {"search": …}}` for a budget move.
    #[serde(default)]
    pub amend: Option<serde_json::Value>,
}

impl Payload for AnswerApproval {
    const ACTION: &'static str = "answer_approval";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }
}

impl Request for AnswerApproval {
    type Response = AnswerReply;
}

/// What became of an answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AnswerReply {
    /// Recorded: it takes effect at the campaign's next tick.
    Recorded { answer: DecisionId },
    /// The request was answered before (by a person or by its expiry); the first answer stands.
    AlreadyAnswered {
        answer: DecisionId,
        verdict: Verdict,
        by: String,
    },
    /// No request of this campaign has this id.
    Unknown,
    /// The answer cannot be taken as sent (an amendment out of bounds), and why.
    Invalid { why: String },
}

impl Payload for AnswerReply {
    const ACTION: &'static str = "approval_answered";
}

/// A person sets a campaign's autonomy (recorded by the orchestrator; the proposing agents read
/// it at their next decision).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetAutonomy {
    pub goal: CampaignGoal,
    pub autonomy: Autonomy,
    pub by: String,
    pub why: String,
}

impl Payload for SetAutonomy {
    const ACTION: &'static str = "set_autonomy";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }
}

impl Request for SetAutonomy {
    type Response = AutonomySet;
}

/// A campaign left the configuration: its pending approval requests can take effect no more,
/// so the orchestrator answers them (sent by the campaign loop).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WithdrawApprovals {
    pub goal: CampaignGoal,
    pub why: String,
}

impl Payload for WithdrawApprovals {
    const ACTION: &'static str = "withdraw_approvals";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }
}

impl Request for WithdrawApprovals {
    type Response = Withdrawn;
}

/// How many requests were withdrawn.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Withdrawn {
    pub requests: usize,
}

impl Payload for Withdrawn {
    const ACTION: &'static str = "approvals_withdrawn";
}

/// The recorded autonomy decision.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AutonomySet {
    pub decision: DecisionId,
}

impl Payload for AutonomySet {
    const ACTION: &'static str = "autonomy_set";
}
