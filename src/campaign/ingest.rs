//! The one ingestion path for performance data, whatever its source (the built-in simulator or
//! the HTTP API's `POST /v1/observations`): validate each observation, record the valid ones of
//! each channel as one outcome linked to the decisions that produced them (the experiment, the
//! channel's latest traffic split and the latest budget allocation; the review that approved
//! each variant is named in its metrics), and publish one `observations_recorded` event so the
//! optimizer learns from the batch. One outcome per channel and batch, not per line, because a
//! day of a hundred variants would otherwise be a hundred records, and the knowledge base's write
//! rate would bound how many campaigns run.
//!
//! Ingestion is idempotent per campaign × day × channel × variant: a batch replayed after a
//! restart records nothing twice (the first recording stands and is announced again). A later
//! batch of the same day with other observations is recorded and counted by the optimizer for the
//! days after it. Nothing is accepted for a day after the deadline, nor for a finished campaign
//! (its goal achieved, or, for a batch from outside, its deadline passed more than
//! [`LATE_RESULTS`] ago): the optimizer would make decisions for a campaign that is over. It never
//! decides anything; an invalid observation is reported with every problem and never recorded.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::known::KnownDecisions;
use crate::agents::decisions::{OBSERVATIONS_OUTCOME, ObservationReport};
use crate::agents::ledger;
use crate::agents::messages::{OBSERVATIONS_RECORDED, ObservationsRecorded, deadline_day};
use crate::agents::projection::{self, Links};
use crate::domain::bounds::{LATE_RESULTS, day_after_deadline, past_late_results};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::kb::{KbError, KnowledgeBase, Outcome, OutcomeId, SCHEMA_VERSION, Scope};
use crate::market::{CampaignSpan, KnownIds, Observation, ObservationProblem};
use crate::protocol::CorrelationId;
use crate::runtime::{Client, DeliveryError};

/// One day's observations of one campaign.
#[derive(Clone, Debug)]
pub struct Batch {
    pub goal: CampaignGoal,
    /// Days since the campaign's start (day 0 is the first).
    pub day: u32,
    pub observations: Vec<Observation>,
}

/// What ingestion did with a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    /// Outcomes recorded now.
    pub recorded: Vec<OutcomeId>,
    /// Observations already recorded earlier (a replay), skipped.
    pub duplicates: usize,
    /// Invalid observations by position in the batch, with every problem found.
    pub rejected: Vec<(usize, Vec<ObservationProblem>)>,
    /// How many agents received the `observations_recorded` event (0 when nothing new).
    pub delivered: usize,
    /// What happened to each observation, in the batch's order (one entry per observation).
    pub items: Vec<ItemResult>,
}

/// What ingestion did with one observation of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemResult {
    /// Recorded now as this outcome.
    Recorded(OutcomeId),
    /// Already recorded as this outcome (the same campaign, day, channel and variant); skipped.
    Duplicate(OutcomeId),
    /// Invalid; never recorded.
    Rejected(Vec<ObservationProblem>),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot record observations of campaign `{campaign}`: {source}")]
    Kb { campaign: String, source: KbError },
    #[error("reading the decisions of campaign `{campaign}` stopped before it finished: {reason}")]
    Interrupted { campaign: String, reason: String },
    #[error(
        "observations of campaign `{campaign}` were recorded but the optimizer was not told: {source}"
    )]
    Publish {
        campaign: String,
        source: DeliveryError,
    },
}

/// Validates, records and announces one batch (see [`ingest_at`]; the time it arrives is not
/// checked).
pub async fn ingest(
    kb: &KnowledgeBase,
    client: &Client,
    known: Option<&(dyn KnownIds + Sync)>,
    batch: Batch,
) -> Result<IngestReport, IngestError> {
    ingest_at(kb, client, known, batch, None).await
}

/// Validates, records and announces one batch of a campaign whose decisions `kept` holds from its
/// earlier batches: only the decisions recorded since are read (see [`KnownDecisions`]). The
/// campaign loop's path; its days are its own, so the time a batch arrives is not checked.
pub async fn ingest_kept(
    kb: &KnowledgeBase,
    client: &Client,
    kept: &mut KnownDecisions,
    batch: Batch,
) -> Result<IngestReport, IngestError> {
    *kept = refreshed(kb, &batch.goal, std::mem::take(kept)).await?;
    let day = batch.day;
    let report = record(kb, client, None, kept, batch, None).await?;
    kept.looped_from.get_or_insert(day);
    Ok(report)
}

/// Validates, records and announces one batch. `client` publishes the event; it is narrowed to the
/// campaign's tenant, campaign and correlation id here, so the outcomes join the campaign's trace.
/// `known` names the variants an observation may report; `None` takes them from the campaign's
/// experiment decisions, read once with the decisions the outcomes link to.
/// `received_at` is the campaign clock's time when a batch from outside arrived: past the
/// deadline by more than [`LATE_RESULTS`], the campaign is finished for it.
pub async fn ingest_at(
    kb: &KnowledgeBase,
    client: &Client,
    known: Option<&(dyn KnownIds + Sync)>,
    batch: Batch,
    received_at: Option<DateTime<Utc>>,
) -> Result<IngestReport, IngestError> {
    let kept = refreshed(kb, &batch.goal, KnownDecisions::default()).await?;
    record(kb, client, known, &kept, batch, received_at).await
}

/// `kept` with the campaign's decisions recorded since it was last refreshed. The first read of
/// a campaign decodes every decision: off the async threads.
async fn refreshed(
    kb: &KnowledgeBase,
    goal: &CampaignGoal,
    mut kept: KnownDecisions,
) -> Result<KnownDecisions, IngestError> {
    let (kb, read_goal) = (kb.clone(), goal.clone());
    tokio::task::spawn_blocking(move || kept.refresh(&kb, &read_goal).map(|()| kept))
        .await
        .map_err(|e| IngestError::Interrupted {
            campaign: goal.id.to_string(),
            reason: e.to_string(),
        })?
        .map_err(|source| IngestError::Kb {
            campaign: goal.id.to_string(),
            source,
        })
}

async fn record(
    kb: &KnowledgeBase,
    client: &Client,
    known: Option<&(dyn KnownIds + Sync)>,
    kept: &KnownDecisions,
    batch: Batch,
    received_at: Option<DateTime<Utc>>,
) -> Result<IngestReport, IngestError> {
    let Batch {
        goal,
        day,
        observations,
    } = batch;
    let kb_error = |source| IngestError::Kb {
        campaign: goal.id.to_string(),
        source,
    };
    let scope = ledger::scope(&goal);
    let known = known.unwrap_or(&kept.catalog);
    let correlation = ledger::campaign_correlation(&goal);
    let refused = batch_problem(&goal, day, kept, received_at).map(|p| vec![p]);
    let span = goal.start.map(|start| CampaignSpan {
        start,
        deadline: goal.deadline,
    });
    let mut report = IngestReport::default();
    let mut items: Vec<Option<ItemResult>> = vec![None; observations.len()];
    let mut by_channel: BTreeMap<Channel, Vec<(usize, Observation)>> = BTreeMap::new();
    for (index, observation) in observations.into_iter().enumerate() {
        let checked = match (&refused, &span) {
            (Some(problems), _) => Err(problems.clone()),
            _ if observation.campaign != goal.id => {
                Err(vec![ObservationProblem::UnknownCampaign {
                    campaign: observation.campaign.to_string(),
                }])
            }
            (None, Some(span)) => observation.validate_in(known, span, day),
            // Not planned yet, so no start: no experiment either, and every variant is unknown.
            (None, None) => observation.validate(known),
        };
        match checked {
            Ok(()) => by_channel
                .entry(observation.channel)
                .or_default()
                .push((index, observation)),
            Err(problems) => {
                report.rejected.push((index, problems.clone()));
                items[index] = Some(ItemResult::Rejected(problems));
            }
        }
    }
    let recorder = Recorder {
        kb,
        scope: &scope,
        goal: &goal,
        day,
        links: &kept.links,
        correlation,
    };
    // A day after the first one this loop recorded was never campaignd 0.1's: 0.1 stopped before
    // this process started, and the loop's days only move forward.
    let legacy = kept.looped_from.is_none_or(|first| day <= first)
        && recorder.legacy_batch(&by_channel).map_err(kb_error)?;
    let mut announced = Vec::new();
    for (channel, lines) in by_channel {
        recorder
            .channel(
                channel,
                lines,
                legacy,
                &mut items,
                &mut report,
                &mut announced,
            )
            .await
            .map_err(kb_error)?;
    }
    report.items = items.into_iter().flatten().collect();
    let (announced, fresh): (Vec<OutcomeId>, Vec<Observation>) = announced.into_iter().unzip();
    if !fresh.is_empty() {
        let client = client
            .clone()
            .with_tenant(goal.tenant.clone())
            .with_campaign(goal.id.clone())
            .with_correlation(correlation);
        let campaign = goal.id.to_string();
        report.delivered = client
            .publish(
                OBSERVATIONS_RECORDED,
                ObservationsRecorded {
                    goal,
                    day,
                    observations: fresh,
                    outcomes: announced,
                },
            )
            .map_err(|source| IngestError::Publish { campaign, source })?;
    }
    Ok(report)
}

/// The observations an outcome recorded, without their day (the caller knows it).
fn lines_of(outcome: &Outcome) -> Vec<Observation> {
    projection::observed(outcome)
        .into_iter()
        .map(|m| m.observation)
        .collect()
}

/// At most this many observations in one outcome. A channel's day of the examples' shape is about
/// a hundred lines of about 300 bytes; a larger batch is recorded as several parts.
const OBSERVATIONS_PER_OUTCOME: usize = 256;

/// How many parts another batch of the same campaign, day and channel may record between this
/// batch's look and its write before the batch gives up.
const PART_RETRIES: usize = 8;

/// Records one batch's valid observations: per channel, the variants not recorded yet for the day
/// as the channel's next part `observations/day/{day}/{channel}/{part}` (one outcome for up to
/// [`OBSERVATIONS_PER_OUTCOME`] observations, citing the decisions they are evidence for).
struct Recorder<'a> {
    kb: &'a KnowledgeBase,
    scope: &'a Scope,
    goal: &'a CampaignGoal,
    day: u32,
    links: &'a Links,
    correlation: CorrelationId,
}

/// Observations announced to the optimizer, each with the outcome that recorded it.
type Announced = Vec<(OutcomeId, Observation)>;

impl Recorder<'_> {
    fn part_id(&self, channel: Channel, part: usize) -> OutcomeId {
        ledger::outcome_id(
            self.goal,
            &format!("observations/day/{}/{channel}/{part}", self.day),
        )
    }

    /// The outcome id campaignd 0.1 gave one observation, when each was recorded alone.
    fn legacy_id(&self, observation: &Observation) -> OutcomeId {
        ledger::outcome_id(
            self.goal,
            &format!(
                "observation/day/{}/{}/{}",
                self.day, observation.channel, observation.variant
            ),
        )
    }

    /// Whether this batch was recorded, whole or in part, by campaignd 0.1 (one outcome per
    /// observation), so that its replay after an upgrade records nothing twice. 0.1 recorded a
    /// batch in order, so the batch's first valid observation was recorded if any was.
    fn legacy_batch(
        &self,
        by_channel: &BTreeMap<Channel, Vec<(usize, Observation)>>,
    ) -> Result<bool, KbError> {
        let first = by_channel
            .values()
            .filter_map(|lines| lines.first())
            .min_by_key(|(index, _)| *index);
        match first {
            Some((_, observation)) => Ok(self
                .kb
                .outcome(self.scope, self.legacy_id(observation))?
                .is_some()),
            None => Ok(false),
        }
    }

    /// The parts of this day and channel recorded so far, in order, with their observations.
    fn stored_parts(
        &self,
        channel: Channel,
    ) -> Result<Vec<(OutcomeId, Vec<Observation>)>, KbError> {
        let mut parts = Vec::new();
        loop {
            let id = self.part_id(channel, parts.len());
            let Some(stored) = self.kb.outcome(self.scope, id)? else {
                return Ok(parts);
            };
            parts.push((id, lines_of(&stored)));
        }
    }

    /// Records the variants of one channel's `lines` not recorded yet for the day; the others are
    /// duplicates, and every stored part they touch is announced again, whole, so that an agent
    /// that stopped before learning from it gets it now (learning folds an outcome once).
    async fn channel(
        &self,
        channel: Channel,
        lines: Vec<(usize, Observation)>,
        legacy: bool,
        items: &mut [Option<ItemResult>],
        report: &mut IngestReport,
        announced: &mut Announced,
    ) -> Result<(), KbError> {
        // The parts recorded by other batches, announced again when this batch touches them.
        let mut parts = self.stored_parts(channel)?;
        let mut next_part = parts.len();
        let mut stored: HashMap<String, OutcomeId> = HashMap::new();
        let mut touched = HashSet::new();
        for (id, observations) in &parts {
            for observation in observations {
                stored.entry(observation.variant.clone()).or_insert(*id);
            }
        }
        let mut pending: VecDeque<(usize, Observation)> = VecDeque::new();
        let mut queued: HashSet<String> = HashSet::new();
        let mut repeats = Vec::new();
        for (index, observation) in lines {
            if let Some(&id) = stored.get(&observation.variant) {
                report.duplicates += 1;
                items[index] = Some(ItemResult::Duplicate(id));
                touched.insert(id);
            } else if legacy
                && let Some(first) = self.kb.outcome(self.scope, self.legacy_id(&observation))?
            {
                report.duplicates += 1;
                items[index] = Some(ItemResult::Duplicate(first.id));
                stored.insert(observation.variant, first.id);
                for metrics in projection::observed(&first) {
                    announced.push((first.id, metrics.observation));
                }
            } else if !queued.insert(observation.variant.clone()) {
                // Twice in one batch: the first stands, and the second is not announced.
                repeats.push((index, observation.variant));
            } else {
                pending.push_back((index, observation));
            }
        }
        let mut retries = 0;
        while !pending.is_empty() {
            let take = pending.len().min(OBSERVATIONS_PER_OUTCOME);
            let chunk: Vec<(usize, Observation)> = pending.drain(..take).collect();
            let id = self.part_id(channel, next_part);
            next_part += 1;
            let outcome = self.outcome(id, channel, &chunk);
            match self.kb.record_outcome(&outcome).await {
                Ok(_) => {
                    report.recorded.push(id);
                    for (index, observation) in chunk {
                        items[index] = Some(ItemResult::Recorded(id));
                        stored.insert(observation.variant.clone(), id);
                        announced.push((id, observation));
                    }
                }
                // Another batch of the same day and channel recorded this part first: what it
                // holds is a duplicate, the rest goes into the next part.
                Err(KbError::Duplicate { .. }) if retries < PART_RETRIES => {
                    retries += 1;
                    let theirs = self
                        .kb
                        .outcome(self.scope, id)?
                        .map(|o| lines_of(&o))
                        .unwrap_or_default();
                    for line in chunk.into_iter().rev() {
                        if theirs.iter().any(|t| t.variant == line.1.variant) {
                            report.duplicates += 1;
                            items[line.0] = Some(ItemResult::Duplicate(id));
                            stored.insert(line.1.variant, id);
                            touched.insert(id);
                        } else {
                            pending.push_front(line);
                        }
                    }
                    parts.push((id, theirs));
                }
                Err(err) => return Err(err),
            }
        }
        // Every variant queued is now recorded, by this batch or another: a repeat names where.
        for (index, variant) in repeats {
            report.duplicates += 1;
            items[index] = stored.get(&variant).map(|&id| ItemResult::Duplicate(id));
        }
        for (id, observations) in parts {
            if touched.contains(&id) {
                announced.extend(observations.into_iter().map(|o| (id, o)));
            }
        }
        Ok(())
    }

    fn outcome(&self, id: OutcomeId, channel: Channel, chunk: &[(usize, Observation)]) -> Outcome {
        let observations: Vec<Observation> = chunk.iter().map(|(_, o)| o.clone()).collect();
        Outcome {
            id,
            schema_version: SCHEMA_VERSION,
            tenant: self.goal.tenant.clone(),
            campaign: Some(self.goal.id.clone()),
            decisions: self.links.of_channel(channel),
            correlation_id: Some(self.correlation),
            kind: OBSERVATIONS_OUTCOME.to_owned(),
            observed_at: observations
                .iter()
                .map(|o| o.window_end)
                .max()
                .unwrap_or_else(ledger::recorded_now),
            recorded_at: Some(ledger::recorded_now()),
            metrics: ledger::json(ObservationReport {
                day: self.day,
                channel,
                approvals: self.links.approvals(&observations),
                observations,
            }),
        }
    }
}

/// Why no item of the batch can be recorded, if so: the campaign is finished (its goal achieved,
/// or a batch from outside arrived past the deadline's [`LATE_RESULTS`]), or the day begins at or
/// after the deadline (nothing bought can have happened on it, and an absurd day would make the
/// optimizer's per-day series absurd).
fn batch_problem(
    goal: &CampaignGoal,
    day: u32,
    kept: &KnownDecisions,
    received_at: Option<DateTime<Utc>>,
) -> Option<ObservationProblem> {
    let finished = |why: String| ObservationProblem::CampaignFinished {
        campaign: goal.id.to_string(),
        why,
    };
    if let Some((decision, achieved_on)) = kept.achieved {
        let on = achieved_on
            .map(|d| format!(" on day {d}"))
            .unwrap_or_default();
        return Some(finished(format!(
            "its goal was achieved{on}, decision {decision}"
        )));
    }
    if let Some(now) = received_at.filter(|now| past_late_results(goal.deadline, *now)) {
        return Some(finished(format!(
            "its deadline {} passed more than {} hours before this batch arrived ({now} on the campaign's clock)",
            goal.deadline,
            LATE_RESULTS.num_hours()
        )));
    }
    let after = match goal.start {
        Some(start) => day_after_deadline(start, goal.deadline, day),
        None => false,
    };
    after.then(|| ObservationProblem::DayAfterDeadline {
        day,
        // The last day is the last to begin before the deadline.
        last: (deadline_day(goal).ceil() - 1.0).clamp(0.0, f64::from(u32::MAX)) as u32,
    })
}
