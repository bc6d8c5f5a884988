//! The one ingestion path for performance data, whatever its source (the built-in simulator or
//! the HTTP API's `POST /v1/observations`): validate each observation, record the valid ones as
//! outcomes linked to the decisions that produced them (the variant's approval, the experiment,
//! the latest traffic split of its channel and the latest budget allocation), and publish one
//! `observations_recorded` event so the optimizer learns from the batch.
//!
//! Ingestion is idempotent per campaign × day × channel × variant: a batch replayed after a
//! restart records nothing twice (the first recording stands and is announced again). A later
//! batch of the same day with other observations is recorded and counted by the optimizer for the
//! days after it. Nothing after the campaign's deadline day is accepted. It never decides
//! anything; an invalid observation is reported with every problem and never recorded.

use crate::agents::decisions::{OBSERVATION_OUTCOME, ObservationMetrics};
use crate::agents::ledger;
use crate::agents::messages::{OBSERVATIONS_RECORDED, ObservationsRecorded, deadline_day};
use crate::agents::projection::{self, catalog_of, links};
use crate::domain::campaign::CampaignGoal;
use crate::kb::{KbError, KnowledgeBase, Outcome, OutcomeId, SCHEMA_VERSION};
use crate::market::{KnownIds, Observation, ObservationProblem};
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

/// Validates, records and announces one batch. `client` publishes the event; it is narrowed to the
/// campaign's tenant, campaign and correlation id here, so the outcomes join the campaign's trace.
/// `known` names the variants an observation may report; `None` takes them from the campaign's
/// experiment decisions (see [`catalog_of`]), read once with the decisions the outcomes link to.
pub async fn ingest(
    kb: &KnowledgeBase,
    client: &Client,
    known: Option<&(dyn KnownIds + Sync)>,
    batch: Batch,
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
    // Days count from the start; nothing after the deadline can be the result of a buy (and an
    // absurd day would make the optimizer's per-day series absurd).
    let last_day = deadline_day(&goal).ceil();
    let after_deadline = (f64::from(day) > last_day).then(|| {
        vec![ObservationProblem::DayAfterDeadline {
            day,
            last: last_day as u32,
        }]
    });
    let mut report = IngestReport::default();
    let mut fresh = Vec::new();
    let mut announced = Vec::new();
    for (index, observation) in observations.into_iter().enumerate() {
        if let Some(problems) = &after_deadline {
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
        if let Err(problems) = observation.validate(known) {
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
