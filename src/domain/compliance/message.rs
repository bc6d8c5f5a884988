//! What compliance reviews: one message (channel, text, subject, sender), the moment it would be
//! sent, the recipient's time zone, the consent on record, the brand's claims registry and the
//! jurisdictions that apply.
//!
//! Plain data that travels between agents, so it must stay serializable and must never read a
//! clock: the send time is always given.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::claims::Claim;
use super::consent::ConsentRecord;
use crate::domain::campaign::Channel;

/// The channel a message is delivered on, finer than a campaign's [`Channel`] because the law
/// treats a text message, a push and an email differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageChannel {
    Sms,
    Lms,
    Mms,
    Push,
    Messenger,
    Email,
    Social,
    Search,
    Display,
    Call,
}

impl MessageChannel {
    pub const ALL: [MessageChannel; 10] = [
        MessageChannel::Sms,
        MessageChannel::Lms,
        MessageChannel::Mms,
        MessageChannel::Push,
        MessageChannel::Messenger,
        MessageChannel::Email,
        MessageChannel::Social,
        MessageChannel::Search,
        MessageChannel::Display,
        MessageChannel::Call,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageChannel::Sms => "sms",
            MessageChannel::Lms => "lms",
            MessageChannel::Mms => "mms",
            MessageChannel::Push => "push",
            MessageChannel::Messenger => "messenger",
            MessageChannel::Email => "email",
            MessageChannel::Social => "social",
            MessageChannel::Search => "search",
            MessageChannel::Display => "display",
            MessageChannel::Call => "call",
        }
    }
}

impl fmt::Display for MessageChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that is not one of [`MessageChannel::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown channel `{0}`; expected one of sms, lms, mms, push, messenger, email, social, search, display, call"
)]
pub struct UnknownChannel(pub String);

impl FromStr for MessageChannel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageChannel::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

impl From<Channel> for MessageChannel {
    /// A campaign's SMS channel is reviewed as SMS; whether it becomes an LMS is the channel
    /// module's business and does not change any rule here.
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Search => MessageChannel::Search,
            Channel::Social => MessageChannel::Social,
            Channel::Sms => MessageChannel::Sms,
            Channel::Email => MessageChannel::Email,
            Channel::Push => MessageChannel::Push,
            Channel::Display => MessageChannel::Display,
        }
    }
}

/// A body of law whose rules a review applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Jurisdiction {
    #[serde(rename = "KR")]
    Kr,
    #[serde(rename = "US")]
    Us,
    #[serde(rename = "EU")]
    Eu,
}

impl Jurisdiction {
    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Kr => "KR",
            Jurisdiction::Us => "US",
            Jurisdiction::Eu => "EU",
        }
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown jurisdiction `{0}`; expected KR, US or EU")]
pub struct UnknownJurisdiction(pub String);

impl FromStr for Jurisdiction {
    type Err = UnknownJurisdiction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "KR" => Ok(Jurisdiction::Kr),
            "US" => Ok(Jurisdiction::Us),
            "EU" => Ok(Jurisdiction::Eu),
            _ => Err(UnknownJurisdiction(s.to_owned())),
        }
    }
}

/// Who sends the message, as the law wants it named in the message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// The business name shown after the `(광고)` label.
    #[serde(default)]
    pub business_name: Option<String>,
    /// A contact number or address; it must appear unless it equals the callback number.
    #[serde(default)]
    pub contact: Option<String>,
    /// The free number (`080-…`) recipients call to opt out; used to write the opt-out line.
    #[serde(default)]
    pub opt_out_number: Option<String>,
    /// The postal address a commercial email must carry in the United States.
    #[serde(default)]
    pub postal_address: Option<String>,
}

/// One message as it would go out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub channel: MessageChannel,
    pub text: String,
    /// The subject line; only emails have one.
    #[serde(default)]
    pub subject: Option<String>,
    /// An advertisement (as opposed to a transactional notice such as a receipt).
    #[serde(default)]
    pub commercial: bool,
    /// A paid endorsement (an influencer's post, a sponsored review).
    #[serde(default)]
    pub endorsement: bool,
    /// The product category, such as `general` or `health_food`.
    #[serde(default)]
    pub product_category: Option<String>,
    #[serde(default)]
    pub sender: Sender,
    /// The number the message is sent from (the caller id of an SMS).
    #[serde(default)]
    pub callback_number: Option<String>,
}

impl Message {
    /// A commercial message on `channel` with `text` and nothing else known.
    pub fn advert(channel: MessageChannel, text: impl Into<String>) -> Self {
        Message {
            channel,
            text: text.into(),
            subject: None,
            commercial: true,
            endorsement: false,
            product_category: None,
            sender: Sender::default(),
            callback_number: None,
        }
    }
}

/// Everything one review looks at. The send time carries its offset so that findings and
/// rescheduled times are shown in the operator's own offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub message: Message,
    pub send_at: DateTime<FixedOffset>,
    /// The recipient's IANA time zone (`America/New_York`); needed for local-time rules.
    #[serde(default, with = "tz_name")]
    pub recipient_tz: Option<Tz>,
    #[serde(default)]
    pub consent: Option<ConsentRecord>,
    /// The audience has no consent of its own: each recipient's is checked when a send list is
    /// drawn ([`super::recipients`]), so the review leaves the rules that read consent out.
    #[serde(default)]
    pub per_recipient: bool,
    /// The brand's substantiated claims.
    #[serde(default)]
    pub claims: Vec<Claim>,
    pub jurisdictions: Vec<Jurisdiction>,
}

impl ReviewRequest {
    /// A request with no consent, no claims and no recipient time zone.
    pub fn new(
        message: Message,
        send_at: DateTime<FixedOffset>,
        jurisdictions: Vec<Jurisdiction>,
    ) -> Self {
        ReviewRequest {
            message,
            send_at,
            recipient_tz: None,
            consent: None,
            per_recipient: false,
            claims: Vec::new(),
            jurisdictions,
        }
    }
}

/// `Option<Tz>` as its IANA name, because chrono-tz is built here without its serde feature.
mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match tz {
            Some(tz) => s.serialize_some(tz.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        let name: Option<String> = Option::deserialize(d)?;
        name.map(|n| {
            n.parse::<Tz>()
                .map_err(|_| serde::de::Error::custom(format!("unknown time zone `{n}`")))
        })
        .transpose()
    }
}
