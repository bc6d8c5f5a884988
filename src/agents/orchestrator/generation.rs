//! A bred generation reaching the market: content writes the combinations the optimizer's
//! genetic step bred, compliance reviews them (content revising what it can), and only the
//! approved variants join the experiment, at the tick after the generation was bred.
//!
//! A peer that does not answer leaves the generation waiting for the next tick; the day's buys go
//! on with the variants already approved. Every step has its own step id (`creatives/gen/7`,
//! `review/gen/7/0/…`, `genetic/day/7/join`), so a tick cut short is not decided twice.

use super::Orchestrator;
use crate::agents::content::{Content, WriteBred};
use crate::agents::messages::Arm;
use crate::agents::optimization::{JoinArms, Optimization};
use crate::agents::projection::Generation;
use crate::domain::campaign::CampaignGoal;
use crate::domain::send_time::day_start;
use crate::runtime::{Agent, Context};

impl Orchestrator {
    /// Writes, reviews and joins `generation` on `day`; why not, when it could not finish (it is
    /// tried again at the next tick).
    pub(super) async fn join_generation(
        &self,
        ctx: &Context,
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
                self.review_loop(ctx, goal, written.variants, &written.sender, &batch, from)
                    .await?
            }
        };
        let joined = ctx
            .request(
                Optimization::NAME,
                JoinArms {
                    goal: goal.clone(),
                    day,
                    generation,
                    creatives: written.decision,
                    arms: approved.iter().map(Arm::of).collect(),
                },
            )
            .await
            .map_err(|e| format!("optimization did not answer: {e}"))?;
        tracing::info!(campaign = %goal.id, day, joined = joined.joined, retired = joined.retired, "bred generation joined the experiment");
        Ok(())
    }
}
