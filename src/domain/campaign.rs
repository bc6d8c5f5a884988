//! A campaign's goal as an operator declares it in `config/campaigns/<id>.toml`: what to achieve,
//! for whom, by when, with how much money, on which channels and in which regions.
//!
//! Plain data, read by the orchestrator, the strategy agent and (its `[brief]`) content and
//! compliance. Unknown keys are refused so that a
//! misspelt key is an error rather than a silently ignored goal.

use std::collections::BTreeMap;

use super::approval::Autonomy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::protocol::{CampaignId, TenantId};

pub use super::brief::Brief;
pub use super::buy::Buy;
pub use super::phase::{Phase, deadline_day, is_last_day};

/// One campaign goal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignGoal {
    pub id: CampaignId,
    /// `organization` or `organization/client`.
    pub tenant: TenantId,
    /// A line a marketer would write: "500 sign-ups from students in Korea".
    #[serde(default)]
    pub description: String,
    pub objective: Objective,
    /// How many of the objective's unit (conversions, sign-ups, …) to reach.
    pub target: u64,
    #[serde(deserialize_with = "datetime::required")]
    pub deadline: DateTime<Utc>,
    /// When the campaign may start spending; defaults to when it is loaded.
    #[serde(default, deserialize_with = "datetime::optional")]
    pub start: Option<DateTime<Utc>>,
    pub budget: Budget,
    pub channels: Vec<Channel>,
    /// ISO 3166 country codes (`KR`, `US`, `DE`); they decide which compliance rules apply.
    pub regions: Vec<String>,
    pub segments: Vec<Segment>,
    /// Product category, for the rules that depend on it (`health_food`, `general`, …).
    #[serde(default = "default_category")]
    pub product_category: String,
    /// Average order value and margin, for the break-even figures; optional.
    #[serde(default)]
    pub economics: Option<Economics>,
    /// What the copy may say; content writes nothing without it (`[brief]`, see [`Brief`]).
    #[serde(default)]
    pub brief: Option<Brief>,
    /// How much the campaign does without a person; `supervised` when absent.
    #[serde(default)]
    pub autonomy: Autonomy,
    /// Channel → the connector its orders go to (a `[connectors.<name>]` of the deployment, or
    /// the built-in `simulator` or `log`); a channel not named goes to the market source's.
    #[serde(default)]
    pub connectors: BTreeMap<Channel, String>,
    /// Channel → what one message costs there, in the budget's currency (SMS, email, push): a
    /// day's send list holds what each variant's spend buys at that price. A messaging channel
    /// without one sends to every eligible member of the segment.
    #[serde(default)]
    pub send_prices: BTreeMap<Channel, f64>,
}

fn default_category() -> String {
    "general".to_owned()
}

/// What the campaign counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Signups,
    Purchases,
    Leads,
    Installs,
}

impl Objective {
    pub const ALL: [Objective; 4] = [
        Objective::Signups,
        Objective::Purchases,
        Objective::Leads,
        Objective::Installs,
    ];

    /// The plural noun a reason counts in ("120 of 400 signups"), as files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Signups => "signups",
            Objective::Purchases => "purchases",
            Objective::Leads => "leads",
            Objective::Installs => "installs",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub total: f64,
    /// ISO 4217 (`USD`, `KRW`).
    pub currency: String,
    /// An optional cap on spend per day.
    #[serde(default)]
    pub daily_cap: Option<f64>,
}

/// A channel campaignd can buy or send on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Search,
    Social,
    Sms,
    Email,
    Push,
    Display,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Search,
        Channel::Social,
        Channel::Sms,
        Channel::Email,
        Channel::Push,
        Channel::Display,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Search => "search",
            Channel::Social => "social",
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::Display => "display",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An audience the campaign addresses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Share of the audience, 0.0 – 1.0; defaults to an even split.
    #[serde(default)]
    pub share: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Economics {
    pub average_order_value: f64,
    /// Gross margin, 0.0 – 1.0.
    pub margin: f64,
}

/// Dates in config files: a TOML datetime (`deadline = 2026-12-31T23:59:59Z`) or a string holding
/// one, since environment overrides only ever give strings. Either way it needs an offset, so a
/// deadline never depends on the machine's time zone.
pub mod datetime {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Toml(toml::value::Datetime),
    }

    pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Toml(datetime) => datetime.to_string(),
        };
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a date and time with an offset, such as 2026-09-01T00:00:00Z ({e})"
            ))
        })
    }

    pub fn optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(deserialize_with = "required")] DateTime<Utc>);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(t)| t))
    }
}

/// A small Korean sign-up goal on `channels`, for unit tests across the crate.
#[cfg(test)]
pub(crate) fn test_goal(channels: &[&str]) -> CampaignGoal {
    let channels: Vec<String> = channels.iter().map(|c| format!("{c:?}")).collect();
    let text = format!(
        r#"
        id = "kr_students"
        tenant = "acme"
        objective = "signups"
        target = 500
        deadline = 2026-12-31T23:59:59Z
        budget = {{ total = 10000.0, currency = "USD" }}
        channels = [{}]
        regions = ["KR"]
        segments = [{{ id = "students" }}]
        {}
        "#,
        channels.join(", "),
        super::brief::TEST_BRIEF
    );
    toml::from_str(&text).expect("a valid test goal")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOAL: &str = r#"
        id = "spring"
        tenant = "acme"
        objective = "signups"
        target = 500
        budget = { total = 10000.0, currency = "USD" }
        channels = ["sms", "search"]
        regions = ["KR"]
        segments = [{ id = "students" }]
    "#;

    #[test]
    fn dates_may_be_toml_datetimes_or_strings() {
        let bare: CampaignGoal = toml::from_str(&format!(
            "deadline = 2026-12-31T23:59:59Z\nstart = 2026-12-01T00:00:00+09:00\n{GOAL}"
        ))
        .unwrap();
        let quoted: CampaignGoal = toml::from_str(&format!(
            "deadline = \"2026-12-31T23:59:59Z\"\nstart = \"2026-12-01T00:00:00+09:00\"\n{GOAL}"
        ))
        .unwrap();
        assert_eq!(bare, quoted);
        assert_eq!(
            bare.start.map(|t| t.to_rfc3339()),
            Some("2026-11-30T15:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn a_date_without_offset_is_refused_with_the_reason() {
        let err =
            toml::from_str::<CampaignGoal>(&format!("deadline = 2026-12-31T23:59:59\n{GOAL}"))
                .unwrap_err();
        assert!(
            err.to_string()
                .contains("not a date and time with an offset"),
            "{err}"
        );
    }
}
