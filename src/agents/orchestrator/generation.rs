//! A bred generation reaching the market: content writes the combinations the optimizer's
//! genetic step bred, compliance reviews them (content revising what it can), and only the
//! approved variants join the experiment, at the tick after the generation was bred (the risky
//! ones once a person approves them, see `creatives`).
//!
//! A peer that does not answer leaves the generation waiting for the next tick; the day's buys go
//! on with the variants already approved. Every step has its own step id (`creatives/gen/7`,
//! `review/gen/7/0/…`, `genetic/day/7/join`), so a tick cut short is not decided twice.

use super::Orchestrator;
use crate::agents::content::{Content, WriteBred};
use crate::agents::optimization::{ArmsSource, JoinArms, Optimization};
use crate::agents::projection::Generation;
use crate::domain::campaign::CampaignGoal;
use crate::domain::send_time::day_start;
use crate::protocol::Envelope;
use crate::runtime::{Agent, Context};

impl Orchestrator {
    /// Writes, reviews and joins `generation` on `day`; why not, when it could not finish (it is
    /// tried again at the next tick).
    pub(super) async fn join_generation<P>(
        &mut self,
        ctx: &Context,
        envelope: &Envelope<P>,
        goal: &CampaignGoal,
        day: u32,
        generation: Generation,
    ) -> Result<(), String> {
        let written = ctx
            .request(
                Content::NAME,
                WriteBred {
                    goal: goal.clone(),
                    day: generation.day,
                    bred_by: generation.decision,
                    bred: generation.bred.clone(),
                },
            )
            .await
            .map_err(|e| format!("content did not answer: {e}"))?;
        // Content that can write nothing (an unreadable guideline, a brief gone) closes the
        // generation with no variant: the next one is bred a window later.
        let approved = match &written.error {
            Some(error) => {
                tracing::warn!(campaign = %goal.id, day, %error, "content wrote none of the bred generation");
                Vec::new()
            }
            None => {
                let from = day_start(goal, day).unwrap_or_else(|| ctx.now());
                let batch = format!("gen/{}", generation.day);
                let reviewed = self
                    .review_loop(ctx, goal, written.variants, &written.sender, &batch, from)
                    .await?;
                self.hold_risky(ctx, envelope, goal, day, &batch, reviewed)
                    .await
                    .map_err(|e| e.to_string())?
                    .now
            }
        };
        let joined = ctx
            .request(
                Optimization::NAME,
                JoinArms {
                    goal: goal.clone(),
                    day,
                    source: ArmsSource::Bred(generation),
                    creatives: written.decision,
                    arms: approved,
                },
            )
            .await
            .map_err(|e| format!("optimization did not answer: {e}"))?;
        tracing::info!(campaign = %goal.id, day, joined = joined.joined, retired = joined.retired, "bred generation joined the experiment");
        Ok(())
    }
}
