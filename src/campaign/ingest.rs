//! The one ingestion path for performance data, whatever its source (the built-in simulator or
//! the HTTP API's `POST /v1/observations`): validate each observation, record the valid ones as
//! outcomes linked to the decisions that produced them (the variant's approval, the experiment,
//! the latest traffic split of its channel and the latest budget allocation), and publish one
//! `observations_recorded` event so the optimizer learns from the batch.
//!
//! Ingestion is idempotent per campaign × day × channel × variant: a batch replayed after a
//! restart records nothing twice (the first recording stands and is announced again). A later
//! batch of the same day with other observations is recorded and counted by the optimizer for the
//! days after it. Nothing is accepted for a day after the deadline, nor for a finished campaign
//! (its goal achieved, or, for a batch from outside, its deadline passed more than
//! [`LATE_RESULTS`] ago): the optimizer would make decisions for a campaign that is over. It never
//! decides anything; an invalid observation is reported with every problem and never recorded.

use chrono::{DateTime, Utc};

use crate::agents::decisions::{OBSERVATION_OUTCOME, ObservationMetrics};
use crate::agents::ledger;
use crate::agents::messages::{OBSERVATIONS_RECORDED, ObservationsRecorded, deadline_day};
use crate::agents::orchestrator::Orchestrator;
use crate::agents::projection::{self, catalog_of, links};
use crate::domain::bounds::{LATE_RESULTS, day_after_deadline, past_late_results};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{Decision, KbError, KnowledgeBase, Outcome, OutcomeId, SCHEMA_VERSION};
use crate::market::{CampaignSpan, KnownIds, Observation, ObservationProblem};
use crate::runtime::{Agent, Client, DeliveryError};

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

/// Validates, records and announces one batch of the campaign loop (see [`ingest_at`]; the loop's
/// days are its own, so the time it arrives is not checked).
pub async fn ingest(
    kb: &KnowledgeBase,
    client: &Client,
    known: Option<&(dyn KnownIds + Sync)>,
    batch: Batch,
) -> Result<IngestReport, IngestError> {
    ingest_at(kb, client, known, batch, None).await
}

/// Validates, records and announces one batch. `client` publishes the event; it is narrowed to the
/// campaign's tenant, campaign and correlation id here, so the outcomes join the campaign's trace.
/// `known` names the variants an observation may report; `None` takes them from the campaign's
/// experiment decisions (see [`catalog_of`]), read once with the decisions the outcomes link to.
/// `received_at` is the campaign clock's time when a batch from outside arrived: past the
/// deadline by more than [`LATE_RESULTS`], the campaign is finished for it.
pub async fn ingest_at(
    kb: &KnowledgeBase,
    client: &Client,
    known: Option<&(dyn KnownIds + Sync)>,
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
    let decisions = {
        let (kb, scope, campaign) = (kb.clone(), scope.clone(), goal.id.clone());
        // Reading a campaign's decisions decodes every one of them: off the async threads.
        tokio::task::spawn_blocking(move || kb.decisions_by_campaign(&scope, &campaign))
            .await
            .map_err(|e| IngestError::Interrupted {
                campaign: goal.id.to_string(),
                reason: e.to_string(),
            })?
            .map_err(kb_error)?
            .records
    };
    let from_decisions;
    let known = match known {
        Some(known) => known,
        None => {
            from_decisions = catalog_of(&goal, &decisions);
            &from_decisions
        }
    };
    let correlation = ledger::campaign_correlation(&goal);
    let refused = batch_problem(&goal, day, &decisions, received_at).map(|p| vec![p]);
    let span = goal.start.map(|start| CampaignSpan {
        start,
        deadline: goal.deadline,
    });
    let mut report = IngestReport::default();
    let mut fresh = Vec::new();
    let mut announced = Vec::new();
    for (index, observation) in observations.into_iter().enumerate() {
        if let Some(problems) = &refused {
            report.items.push(ItemResult::Rejected(problems.clone()));
            report.rejected.push((index, problems.clone()));
            continue;
        }
        if observation.campaign != goal.id {
            let problems = vec![ObservationProblem::UnknownCampaign {
                campaign: observation.campaign.to_string(),
            }];
            report.items.push(ItemResult::Rejected(problems.clone()));
            report.rejected.push((index, problems));
            continue;
        }
        let valid = match &span {
            Some(span) => observation.validate_in(known, span, day),
            // Not planned yet, so no start: no experiment either, and every variant is unknown.
            None => observation.validate(known),
        };
        if let Err(problems) = valid {
            report.items.push(ItemResult::Rejected(problems.clone()));
            report.rejected.push((index, problems));
            continue;
        }
        let id = ledger::outcome_id(
            &goal,
            &format!(
                "observation/day/{day}/{}/{}",
                observation.channel, observation.variant
            ),
        );
        if let Some(stored) = kb.outcome(&scope, id).map_err(kb_error)? {
            // A replayed day: the first recording stands, and it is announced again so an agent
            // that stopped before learning from it gets it now (learning is idempotent per day).
            report.duplicates += 1;
            report.items.push(ItemResult::Duplicate(id));
            if let Some(first) = projection::observation(&stored) {
                announced.push(id);
                fresh.push(first.observation);
            }
            continue;
        }
        let outcome = Outcome {
            id,
            schema_version: SCHEMA_VERSION,
            tenant: goal.tenant.clone(),
            campaign: Some(goal.id.clone()),
            decisions: links(&decisions, &observation),
            correlation_id: Some(correlation),
            kind: OBSERVATION_OUTCOME.to_owned(),
            metrics: ledger::json(ObservationMetrics {
                day,
                observation: observation.clone(),
            }),
            observed_at: observation.window_end,
            recorded_at: Some(ledger::recorded_now()),
        };
        kb.record_outcome(&outcome).await.map_err(kb_error)?;
        report.recorded.push(id);
        report.items.push(ItemResult::Recorded(id));
        announced.push(id);
        fresh.push(observation);
    }
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

/// Why no item of the batch can be recorded, if so: the campaign is finished (its goal achieved,
/// or a batch from outside arrived past the deadline's [`LATE_RESULTS`]), or the day begins after
/// the deadline (nothing bought can have happened on it, and an absurd day would make the
/// optimizer's per-day series absurd).
fn batch_problem(
    goal: &CampaignGoal,
    day: u32,
    decisions: &[Decision],
    received_at: Option<DateTime<Utc>>,
) -> Option<ObservationProblem> {
    let finished = |why: String| ObservationProblem::CampaignFinished {
        campaign: goal.id.to_string(),
        why,
    };
    if let Some((decision, achieved_on)) = projection::goal_achieved(decisions, Orchestrator::NAME)
    {
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
        last: deadline_day(goal).floor().clamp(0.0, f64::from(u32::MAX)) as u32,
    })
}
