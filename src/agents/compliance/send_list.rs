//! A day's send list of one messaging channel and audience segment: the segment's members each
//! checked against their own consent at the day's send time, split between the day's variants
//! ([`draw_send_list`]). Recorded as a `send_list` decision (how many got each variant, how many
//! were left out and by which rule; never who), so the trail says why a member got nothing.

use serde::{Deserialize, Serialize};

use super::Compliance;
use crate::agents::decisions::{self as kinds, SendListChoice, SendListInputs};
use crate::agents::ledger::{self, Keyed};
use crate::domain::campaign::{CampaignGoal, Channel};
use crate::domain::compliance::recipients::{Audience, SendLine, SendList, draw_send_list};
use crate::domain::compliance::{MessageChannel, jurisdictions, segment_subject};
use crate::domain::send_time::{day_start, send_time};
use crate::kb::DecisionId;
use crate::protocol::{CampaignId, Envelope, Payload, TenantId};
use crate::runtime::{AgentError, Context, HandleRequest, Request};

/// Draw the send list of `goal`'s `day` on `channel` for `segment`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrawSendList {
    pub goal: CampaignGoal,
    pub day: u32,
    pub channel: Channel,
    pub segment: String,
    /// The day's buys of that channel and segment.
    pub lines: Vec<SendLine>,
    /// What orders the members (the buys order's key), so a repeated draw is the same list.
    pub seed: String,
}

impl Payload for DrawSendList {
    const ACTION: &'static str = "draw_send_list";

    fn campaign(&self) -> Option<&CampaignId> {
        Some(&self.goal.id)
    }

    fn tenant(&self) -> Option<&TenantId> {
        Some(&self.goal.tenant)
    }
}

impl Request for DrawSendList {
    type Response = SendListDrawn;
}

/// The list, or `None` when the audience has a consent record of its own (the built-in market's
/// simulated sign-up), which the review already checked: no member is listed then.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendListDrawn {
    pub list: Option<SendList>,
}

impl Payload for SendListDrawn {
    const ACTION: &'static str = "send_list_drawn";
}

fn send_list_id(goal: &CampaignGoal, day: u32, channel: Channel, segment: &str) -> DecisionId {
    DecisionId(ledger::stable_uuid(&[
        "send_list",
        goal.tenant.as_str(),
        goal.id.as_str(),
        &day.to_string(),
        channel.as_str(),
        segment,
    ]))
}

impl HandleRequest<DrawSendList> for Compliance {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<DrawSendList>,
    ) -> Result<SendListDrawn, AgentError> {
        let DrawSendList {
            goal,
            day,
            channel,
            segment,
            lines,
            seed,
        } = &request.payload;
        let message_channel = MessageChannel::from(*channel);
        let audience_subject = segment_subject(goal, segment);
        if self
            .consent(&goal.tenant, &audience_subject, message_channel)?
            .is_some()
        {
            return Ok(SendListDrawn { list: None });
        }
        self.playbook.refresh(ctx.services());
        let start = day_start(goal, *day).ok_or_else(|| {
            AgentError::msg("a send list was asked for a campaign that has not started")
        })?;
        let send_at = send_time(&goal.regions, start);
        let jurisdictions = jurisdictions(&goal.regions);
        let price = goal.send_prices.get(channel).copied();
        let audience = Audience {
            segment,
            channel: message_channel,
            send_at,
            jurisdictions: &jurisdictions,
            price,
            seed,
        };
        self.tenant_ledger(&goal.tenant)?;
        let ledger = self
            .ledger
            .get(&goal.tenant)
            .ok_or_else(|| AgentError::msg("consent ledger missing right after loading"))?;
        let list = draw_send_list(ledger, self.playbook.get(), &audience, lines);
        let choice = SendListChoice::of(&list);
        let reason = choice.reason(segment, *channel, price, &goal.budget.currency);
        let filed = Keyed {
            id: send_list_id(goal, *day, *channel, segment),
            tenant: goal.tenant.clone(),
            campaign: Some(goal.id.clone()),
        };
        let inputs = SendListInputs {
            day: *day,
            channel: *channel,
            segment: segment.clone(),
            lines: lines.clone(),
            send_at,
            price,
        };
        ledger::record_keyed::<kinds::DrawnSendList, _>(
            &self.kb,
            ctx,
            &request,
            filed,
            (inputs, choice),
            reason,
        )
        .await?;
        Ok(SendListDrawn { list: Some(list) })
    }
}
