//! What the optimizer decides from a recorded batch of observations, once per campaign day:
//! whether the day delivered the split it was planned with, the traffic split of each channel,
//! drift, a budget move between channels, every few days the next generation of creative
//! combinations, and the forecast, which is the day's last step (after a crash, a day without it
//! is learned from again). The sample-ratio check and the genetic step have a file each
//! (`sample_ratio`, `breeding`).
//!
//! Each step loads the experiment, calls the domain's rule, records the decision and takes it
//! into the experiment through the projection's merge.

mod breeding;
mod sample_ratio;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Optimization, record_into};
use crate::agents::approvals::{ApprovalBook, Ask, asked, policy, propose};
use crate::agents::decisions::{
    self as kinds, AllocationChoice, AllocationInputs, DriftChoice, DriftInputs, ForecastChoice,
    ForecastInputs, Proposal, TrafficSplitChoice, TrafficSplitInputs, WinnerChoice, WinnerInputs,
};
use crate::agents::ledger::Draft;
use crate::agents::messages::{ObservationsRecorded, deadline_day, is_last_day};
use crate::agents::projection::ExperimentState;
use crate::domain::approval::{ApprovalKind, budget_move_waits};
use crate::domain::campaign::{Buy, CampaignGoal, Channel};
use crate::domain::money::money_text;
use crate::domain::optimization::rebalance::INTERVAL;
use crate::domain::optimization::{
    ArmStats, OptimizationPlaybook, budget_seed, first_drift, genetic_due, rebalance,
    traffic_split, window_start, winner,
};
use crate::domain::pacing::achieved;
use crate::kb::KnowledgeBase;
use crate::protocol::{CampaignId, Envelope};
use crate::runtime::{AgentError, Context, HandleEvent};

/// One batch's learning: the knowledge base to record in, the message being handled, and the
/// campaign's experiment taken out of the agent while the day is decided.
struct Day<'a> {
    kb: &'a KnowledgeBase,
    book: &'a ApprovalBook,
    ctx: &'a Context,
    event: &'a Envelope<ObservationsRecorded>,
    goal: &'a CampaignGoal,
    day: u32,
    state: Option<ExperimentState>,
}

impl Day<'_> {
    async fn record(&mut self, draft: Draft) -> Result<(), AgentError> {
        record_into(
            self.kb,
            self.ctx,
            self.event,
            self.goal,
            draft,
            &mut self.state,
        )
        .await?;
        Ok(())
    }

    fn experiment(&self) -> Option<&crate::domain::optimization::Experiment> {
        self.state.as_ref().map(|s| &s.experiment)
    }
}

impl HandleEvent<ObservationsRecorded> for Optimization {
    async fn handle_event(
        &mut self,
        ctx: &Context,
        event: Envelope<ObservationsRecorded>,
    ) -> Result<(), AgentError> {
        self.playbook.refresh(ctx.services());
        let playbook = self.playbook.get().clone();
        let ObservationsRecorded {
            goal,
            day,
            observations,
            outcomes,
        } = &event.payload;
        let day = *day;
        let Some(state) = self.experiment(goal)? else {
            return Ok(());
        };
        // Fold what is new: a rebuilt experiment already holds a batch recorded before a restart.
        let new = state.fold(day, outcomes.iter().copied().zip(observations));
        // A day's decisions are made once, on its first batch; a later batch of the same day (a
        // second export, a late correction) is counted above and shapes the next day's decisions.
        if !state.experiment.seen_days.insert(day) {
            if new > 0 {
                tracing::info!(campaign = %goal.id, day, observations = new, "late observations counted; the day's decisions stand");
            }
            if ctx.now() > goal.deadline {
                self.experiments.remove(&goal.id);
            }
            return Ok(());
        }
        let kb = Arc::clone(&self.kb);
        let book = self.book.clone();
        let planned = self.take_planned(&goal.id, day);
        let mut learning = Day {
            kb: &kb,
            book: &book,
            ctx,
            event: &event,
            goal,
            day,
            state: self.experiments.remove(&goal.id),
        };
        let decided = learning.decide(&playbook, &planned).await;
        // After the last day's learning nothing will ask again: the experiment leaves memory.
        if let Some(state) = learning.state
            && !is_last_day(goal, day)
        {
            self.experiments.insert(goal.id.clone(), state);
        }
        decided
    }
}

impl Optimization {
    /// The buys planned for `campaign`'s `day`, taken out of memory. A later day's plan (this
    /// batch came late) stays for that day's batch.
    fn take_planned(&mut self, campaign: &CampaignId, day: u32) -> Vec<Buy> {
        if self
            .planned
            .get(campaign)
            .is_some_and(|(planned, _)| *planned > day)
        {
            return Vec::new();
        }
        self.planned
            .remove(campaign)
            .filter(|(planned, _)| *planned == day)
            .map(|(_, buys)| buys)
            .unwrap_or_default()
    }
}

impl Day<'_> {
    async fn decide(
        &mut self,
        playbook: &OptimizationPlaybook,
        planned: &[Buy],
    ) -> Result<(), AgentError> {
        self.sample_ratios(planned).await?;
        let channels: Vec<Channel> = self
            .experiment()
            .map(|e| e.daily.keys().copied().collect())
            .unwrap_or_default();
        for channel in &channels {
            self.split(*channel).await?;
        }
        self.drift(&channels, playbook).await?;
        for channel in &channels {
            self.declare_winner(*channel, playbook).await?;
        }
        // From here on the drift windows asked about start at the next day's window or later.
        let next_window = window_start(self.day.saturating_add(1), playbook.drift_window_days);
        if let Some(state) = self.state.as_mut() {
            state.experiment.keep_days_from(next_window);
        }
        // Buying stops once the goal is met, so there is no budget left to move.
        let met = self
            .experiment()
            .is_some_and(|e| achieved(e.conversions(), self.goal.target));
        if !met {
            self.allocation(playbook).await?;
        }
        // Nor anything to buy a new generation with.
        if !met && genetic_due(self.day, playbook.drift_window_days) {
            self.genetic(playbook).await?;
        }
        self.forecast().await
    }

    /// Step 1, the channel's traffic split by Thompson sampling over its variants: each variant's
    /// probability of being best, computed from the counts alone.
    async fn split(&mut self, channel: Channel) -> Result<(), AgentError> {
        let Some(exp) = self.experiment() else {
            return Ok(());
        };
        let arms = exp.arms_of(channel);
        if arms.is_empty() {
            return Ok(());
        }
        let stats: Vec<ArmStats> = arms.iter().map(|(_, s)| *s).collect();
        let Ok(split) = traffic_split(&stats) else {
            return Ok(());
        };
        let shares: BTreeMap<String, f64> = arms
            .iter()
            .zip(&split.shares)
            .map(|((id, _), share)| (id.clone(), *share))
            .collect();
        let leader = arms
            .iter()
            .zip(&split.shares)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|((id, _), share)| (id.clone(), *share));
        let mut draft = Draft::new::<kinds::TrafficSplit>(
            format!("split/day/{}/{channel}", self.day),
            TrafficSplitInputs {
                day: self.day,
                channel,
                outcomes: self.event.payload.outcomes.clone(),
            },
            TrafficSplitChoice {
                shares,
                method: split.method,
                seed: split.seed,
                draws: split.draws,
            },
        );
        for ((id, s), share) in arms.iter().zip(&split.shares) {
            draft = draft.alternative(
                id,
                *share,
                Some(format!(
                    "{} conversions in {} impressions, posterior mean {:.4} %",
                    s.successes,
                    s.trials,
                    s.posterior_mean() * 100.0
                )),
            );
        }
        let draft = draft
            .reason(match &leader {
                Some((id, share)) => format!(
                    "Thompson sampling over {} variants on {channel} (probability of being best, integrated from the posteriors): {id} is best with probability {:.0} % and gets that share",
                    arms.len(), share * 100.0
                ),
                None => "no variants".to_owned(),
            })
            .confidence(leader.map_or(0.0, |l| l.1));
        self.record(draft).await
    }

    /// Step 2, drift: each channel's leading variant, and the channel as a whole (a market shift shows
    /// there first, with far more evidence than any one variant has), the last window against the
    /// days before it.
    async fn drift(
        &mut self,
        channels: &[Channel],
        playbook: &OptimizationPlaybook,
    ) -> Result<(), AgentError> {
        let window = playbook.drift_window_days.max(1);
        let Some(drift) = self.experiment().and_then(|exp| {
            first_drift(
                exp,
                channels,
                self.day,
                window,
                &playbook.drift,
                &playbook.cusum,
            )
        }) else {
            return Ok(());
        };
        let channel = drift.channel;
        let what = &drift.window.watched;
        let check = &drift.check;
        let until = drift.explore_until;
        let draft = Draft::new::<kinds::Drift>(
            format!("drift/day/{}/{channel}", self.day),
            DriftInputs {
                watched: what.clone(),
                channel,
                baseline: drift.window.baseline,
                recent: drift.window.recent,
                window_days: window,
            },
            DriftChoice {
                reexplore: true,
                watched: what.clone(),
                explore_until: Some(until),
                keep: playbook.explore_keep,
            },
        )
        .alternative("reexplore", 1.0 - check.p_value, Some(check.reason.clone()))
        .alternative("keep exploiting", check.p_value, None)
        .reason(format!(
            "drift on {channel}, watching {what}: the {}; exploration re-opened until day {until}, keeping {:.0} % of the evidence",
            check.reason,
            playbook.explore_keep * 100.0
        ))
        .confidence(1.0 - check.p_value);
        self.record(draft).await
    }

    /// Step 2b, a channel's winner, once its leader beats the runner-up significantly on the
    /// sample `power` needs (see [`winner`]). Declared once per channel until exploration re-opens.
    async fn declare_winner(
        &mut self,
        channel: Channel,
        playbook: &OptimizationPlaybook,
    ) -> Result<(), AgentError> {
        let Some(won) = self
            .experiment()
            .filter(|exp| !exp.winners.contains_key(&channel))
            .and_then(|exp| winner(exp, channel, playbook.alpha, playbook.power))
        else {
            return Ok(());
        };
        let rate = |s: &ArmStats| s.rate() * 100.0;
        let draft = Draft::new::<kinds::WinnerDeclared>(
            format!("winner/day/{}/{channel}", self.day),
            WinnerInputs {
                day: self.day,
                channel,
                runner_up: won.runner_up.clone(),
                leader: won.leader,
                second: won.second,
                p_value: won.p_value,
                alpha: playbook.alpha,
                power: playbook.power,
                needed: won.needed,
            },
            WinnerChoice {
                channel,
                variant: won.variant.clone(),
            },
        )
        .alternative(won.variant.as_str(), 1.0 - won.p_value, None)
        .alternative(won.runner_up.as_str(), won.p_value, None)
        .reason(format!(
            "{} wins on {channel}: it converts at {:.3} % against {}'s {:.3} % (p = {:.4} < {}), on {} and {} trials where {:.0} % power needs {} each; the stabilize phase may now concentrate {channel}'s traffic on it",
            won.variant,
            rate(&won.leader),
            won.runner_up,
            rate(&won.second),
            won.p_value,
            playbook.alpha,
            won.leader.trials,
            won.second.trials,
            playbook.power * 100.0,
            won.needed
        ))
        .confidence(1.0 - won.p_value);
        self.record(draft).await
    }

    /// Step 3, budget between channels: each channel's return against its plan learned as a
    /// posterior, one draw of each allocated for equal marginal return, and the move paced (see
    /// [`rebalance`]). Only channels with variants to buy take part: money moved to a channel
    /// without any would never be spent.
    async fn allocation(&mut self, playbook: &OptimizationPlaybook) -> Result<(), AgentError> {
        let pacing = playbook.budget;
        let seed = budget_seed(self.goal.id.as_str(), self.day);
        let Some((before, moving)) = self
            .experiment()
            .and_then(|exp| rebalance(exp, &pacing, seed).map(|r| (exp.daily.clone(), r)))
        else {
            return Ok(());
        };
        // One question at a time: while a move waits for a person, the budgets stay as they are.
        if self
            .state
            .as_ref()
            .is_some_and(|s| s.waiting_budget.is_some())
        {
            return Ok(());
        }
        let currency = self.goal.budget.currency.as_str();
        let money = |amount: f64| money_text(amount, currency);
        let inputs = AllocationInputs {
            day: Some(self.day),
            before: before.clone(),
            outcomes: self.event.payload.outcomes.clone(),
            posterior: moving.evidence.clone(),
            target: moving.target.clone(),
            pacing: Some(pacing),
            seed: Some(seed),
            ..AllocationInputs::default()
        };
        let mut draft = Draft::new::<kinds::Allocation>(
            format!("allocation/day/{}", self.day),
            inputs.clone(),
            AllocationChoice {
                daily: moving.daily.clone(),
            },
        );
        for e in &moving.evidence {
            let had = before.get(&e.channel).copied().unwrap_or(0.0);
            let after = moving.daily.get(&e.channel).copied().unwrap_or(0.0);
            let floor = if e.thin {
                format!(
                    "; kept at {} a day or more until the plan predicts {:.0} conversions for its spend",
                    money(e.budget.min),
                    pacing.min_evidence
                )
            } else {
                String::new()
            };
            draft = draft.alternative(
                e.channel,
                e.budget.curve.marginal(after),
                Some(format!(
                    "{} conversions where the plan predicted {:.1}: {:.2} times the plan's return ({:.0} % interval {:.2}–{:.2}), drawn {:.2}; {} → {} a day{floor}",
                    e.conversions,
                    e.predicted,
                    e.mean,
                    INTERVAL * 100.0,
                    e.low,
                    e.high,
                    e.draw,
                    money(had),
                    money(after),
                )),
            );
        }
        let changes = budget_changes(&before, &moving.daily, currency);
        let pace = if moving.capped {
            format!(
                "; the draws pointed further (to {}), and at most {:.0} % of the day's budget moves in a day",
                moving
                    .target
                    .iter()
                    .map(|(c, t)| format!("{c} {}", money(*t)))
                    .collect::<Vec<_>>()
                    .join(", "),
                pacing.max_move * 100.0
            )
        } else {
            String::new()
        };
        let draft = draft
            .reason(format!(
                "moved {} of {} a day toward the channels whose returns, drawn from what they delivered against the plan, are highest at the margin: {changes}{pace}",
                money(moving.moved),
                money(moving.total),
            ))
            .confidence(0.6);
        let waits = asked(self.book, self.goal, ApprovalKind::BudgetMove)?.and_then(|autonomy| {
            budget_move_waits(autonomy, &before, &moving.daily, &policy(self.ctx))
        });
        let Some(risk) = waits else {
            return self.record(draft).await;
        };
        let ask = Ask {
            day: self.day,
            step_key: format!("day/{}", self.day),
            what: draft.reason.replacen("moved", "move", 1),
            proposal: Proposal::BudgetMove {
                before,
                daily: moving.daily,
                allocation: Box::new(inputs),
            },
            risk,
            meanwhile: "the budgets in force stay, and no other move is proposed".to_owned(),
            evidence: Vec::new(),
        };
        let asked = propose(
            self.kb,
            self.book,
            self.ctx,
            self.event,
            self.goal,
            &policy(self.ctx),
            ask,
        )
        .await?;
        ExperimentState::apply(&mut self.state, self.goal, &asked);
        Ok(())
    }

    /// Step 5, the forecast. Recorded for every batch, even without a trend yet: it is the last step of
    /// a day, so after a crash a day without it is processed again.
    async fn forecast(&mut self) -> Result<(), AgentError> {
        let Some(exp) = self.experiment() else {
            return Ok(());
        };
        let goal = self.goal;
        let progress = exp.progress();
        let deadline_day = deadline_day(goal);
        let on_track = progress.forecast.is_some_and(|f| f.on_track(deadline_day));
        let draft = Draft::new::<kinds::ForecastMade>(
            format!("forecast/day/{}", self.day),
            ForecastInputs {
                day: self.day,
                cumulative: exp.cumulative(),
                target: goal.target,
            },
            ForecastChoice {
                forecast: progress.forecast,
                deadline_day: Some(deadline_day),
            },
        )
        .alternative("on track", if on_track { 1.0 } else { 0.0 }, None)
        .reason(match progress.forecast.and_then(|f| f.eta_day.map(|eta| (f, eta))) {
            Some((forecast, eta)) => format!(
                "{} of {} after {} days; at {:.1} a day the goal is met on day {:.1} (deadline day {:.1})",
                progress.conversions, goal.target, progress.days, forecast.slope, eta + 1.0, deadline_day
            ),
            None => format!(
                "{} of {} after {} days and no upward trend to forecast from yet",
                progress.conversions, goal.target, progress.days
            ),
        })
        .confidence(0.5);
        self.record(draft).await
    }
}

/// Each channel's daily budget from `before` to `after`: `search 60.00 USD → 80.00 USD, …`.
pub(super) fn budget_changes(
    before: &BTreeMap<Channel, f64>,
    after: &BTreeMap<Channel, f64>,
    currency: &str,
) -> String {
    after
        .iter()
        .map(|(c, to)| {
            let had = before.get(c).copied().unwrap_or(0.0);
            format!(
                "{c} {} → {}",
                money_text(had, currency),
                money_text(*to, currency)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
