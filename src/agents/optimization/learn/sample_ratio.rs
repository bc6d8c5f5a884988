//! A day's first step: whether each channel × segment got the split its buys planned (see
//! [`day_ratios`]). A mismatch is recorded as an alarm for a person to look into; the day is
//! still learned from.

use super::Day;
use crate::agents::decisions::{self as kinds, SampleRatioInputs};
use crate::agents::ledger::Draft;
use crate::domain::campaign::Buy;
use crate::domain::optimization::{CellRatio, SRM_ALPHA, day_ratios};
use crate::runtime::AgentError;

impl Day<'_> {
    pub(super) async fn sample_ratios(&mut self, planned: &[Buy]) -> Result<(), AgentError> {
        let delivered = self.event.payload.observations.iter().map(|o| {
            let clicks = u64::try_from(o.clicks).unwrap_or(0);
            (o.channel, o.variant.as_str(), clicks)
        });
        for ratio in day_ratios(planned, delivered) {
            if !ratio.test.mismatch() {
                continue;
            }
            let CellRatio {
                channel,
                segment,
                test,
            } = ratio;
            let reason = test.alarm_reason(channel, &segment, self.day);
            tracing::warn!(campaign = %self.goal.id, day = self.day, %channel, %segment, p = test.p_value, "sample-ratio mismatch");
            let confidence = 1.0 - test.p_value;
            let draft = Draft::new::<kinds::SampleRatioMismatch>(
                format!("srm/day/{}/{channel}/{segment}", self.day),
                SampleRatioInputs {
                    day: self.day,
                    channel,
                    segment,
                    test,
                    alpha: SRM_ALPHA,
                },
                "alarm".to_owned(),
            )
            .reason(reason)
            .confidence(confidence);
            self.record(draft).await?;
        }
        Ok(())
    }
}
