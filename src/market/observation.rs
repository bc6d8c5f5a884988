//! One observation: what one variant of one campaign did on one channel (and segment) over one
//! time window — impressions, clicks, conversions, spend, revenue.
//!
//! Counts are signed on purpose: data from outside may be wrong, and a negative count must reach
//! validation and come back as "impressions is negative (-5)" rather than as a parse error.
//! Validation reports every problem at once, so a sender can fix a batch in one go. Nothing here
//! stores or aggregates observations.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::campaign::CampaignId;
use crate::domain::campaign::Channel;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub campaign: CampaignId,
    pub channel: Channel,
    /// The audience segment, when the source reports one.
    #[serde(default)]
    pub segment: Option<String>,
    pub variant: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: i64,
    pub spend: f64,
    #[serde(default)]
    pub revenue: f64,
}

/// One thing wrong with an observation.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ObservationProblem {
    #[error("`{field}` is negative ({value})")]
    Negative { field: String, value: String },
    #[error("`{field}` is not a finite number ({value})")]
    NotFinite { field: String, value: String },
    #[error("`clicks` ({clicks}) exceed `impressions` ({impressions})")]
    ClicksAboveImpressions { clicks: i64, impressions: i64 },
    #[error("`conversions` ({conversions}) exceed `clicks` ({clicks})")]
    ConversionsAboveClicks { conversions: i64, clicks: i64 },
    #[error("`campaign` `{campaign}` is not a known campaign")]
    UnknownCampaign { campaign: String },
    #[error("`variant` `{variant}` is not a variant of campaign `{campaign}`")]
    UnknownVariant { campaign: String, variant: String },
    #[error("`window_end` ({end}) is before `window_start` ({start})")]
    WindowEndsBeforeStart {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("`day` {day} is after the campaign's last day ({last}, its deadline)")]
    DayAfterDeadline { day: u32, last: u32 },
}

impl ObservationProblem {
    /// The problem's stable snake_case name, as its serialized `problem` tag spells it.
    pub fn code(&self) -> &'static str {
        match self {
            ObservationProblem::Negative { .. } => "negative",
            ObservationProblem::NotFinite { .. } => "not_finite",
            ObservationProblem::ClicksAboveImpressions { .. } => "clicks_above_impressions",
            ObservationProblem::ConversionsAboveClicks { .. } => "conversions_above_clicks",
            ObservationProblem::UnknownCampaign { .. } => "unknown_campaign",
            ObservationProblem::UnknownVariant { .. } => "unknown_variant",
            ObservationProblem::WindowEndsBeforeStart { .. } => "window_ends_before_start",
            ObservationProblem::DayAfterDeadline { .. } => "day_after_deadline",
        }
    }
}

/// Which campaigns and variants exist, as far as the receiver knows.
pub trait KnownIds {
    fn has_campaign(&self, campaign: &CampaignId) -> bool;
    fn has_variant(&self, campaign: &CampaignId, variant: &str) -> bool;
}

/// A simple in-memory [`KnownIds`]: campaign → its variant ids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdCatalog {
    pub campaigns: BTreeMap<CampaignId, BTreeSet<String>>,
}

impl IdCatalog {
    /// Knows `campaign` even before it has variants, so an observation of it is reported as an
    /// unknown variant rather than an unknown campaign.
    pub fn add_campaign(&mut self, campaign: CampaignId) {
        self.campaigns.entry(campaign).or_default();
    }

    pub fn add(&mut self, campaign: CampaignId, variant: impl Into<String>) {
        self.campaigns
            .entry(campaign)
            .or_default()
            .insert(variant.into());
    }
}

impl KnownIds for IdCatalog {
    fn has_campaign(&self, campaign: &CampaignId) -> bool {
        self.campaigns.contains_key(campaign)
    }

    fn has_variant(&self, campaign: &CampaignId, variant: &str) -> bool {
        self.campaigns
            .get(campaign)
            .is_some_and(|v| v.contains(variant))
    }
}

impl Observation {
    /// Every problem with this observation, or `Ok` when there is none.
    pub fn validate(&self, known: &dyn KnownIds) -> Result<(), Vec<ObservationProblem>> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("impressions", self.impressions),
            ("clicks", self.clicks),
            ("conversions", self.conversions),
        ] {
            if value < 0 {
                problems.push(ObservationProblem::Negative {
                    field: field.into(),
                    value: value.to_string(),
                });
            }
        }
        for (field, value) in [("spend", self.spend), ("revenue", self.revenue)] {
            if !value.is_finite() {
                problems.push(ObservationProblem::NotFinite {
                    field: field.into(),
                    value: value.to_string(),
                });
            } else if value < 0.0 {
                problems.push(ObservationProblem::Negative {
                    field: field.into(),
                    value: value.to_string(),
                });
            }
        }
        if self.clicks > self.impressions {
            problems.push(ObservationProblem::ClicksAboveImpressions {
                clicks: self.clicks,
                impressions: self.impressions,
            });
        }
        if self.conversions > self.clicks {
            problems.push(ObservationProblem::ConversionsAboveClicks {
                conversions: self.conversions,
                clicks: self.clicks,
            });
        }
        if !known.has_campaign(&self.campaign) {
            problems.push(ObservationProblem::UnknownCampaign {
                campaign: self.campaign.to_string(),
            });
        } else if !known.has_variant(&self.campaign, &self.variant) {
            problems.push(ObservationProblem::UnknownVariant {
                campaign: self.campaign.to_string(),
                variant: self.variant.clone(),
            });
        }
        if self.window_end < self.window_start {
            problems.push(ObservationProblem::WindowEndsBeforeStart {
                start: self.window_start,
                end: self.window_end,
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_code_is_its_serialized_tag() {
        let problems = [
            ObservationProblem::Negative {
                field: "clicks".into(),
                value: "-1".into(),
            },
            ObservationProblem::NotFinite {
                field: "spend".into(),
                value: "NaN".into(),
            },
            ObservationProblem::ClicksAboveImpressions {
                clicks: 2,
                impressions: 1,
            },
            ObservationProblem::ConversionsAboveClicks {
                conversions: 2,
                clicks: 1,
            },
            ObservationProblem::UnknownCampaign {
                campaign: "x".into(),
            },
            ObservationProblem::UnknownVariant {
                campaign: "x".into(),
                variant: "v".into(),
            },
            ObservationProblem::WindowEndsBeforeStart {
                start: Utc::now(),
                end: Utc::now(),
            },
            ObservationProblem::DayAfterDeadline { day: 9, last: 3 },
        ];
        for problem in problems {
            let tagged = serde_json::to_value(&problem).expect("serializes");
            assert_eq!(tagged["problem"], problem.code(), "{tagged}");
        }
    }

    #[test]
    fn a_campaign_without_variants_is_known() {
        let mut catalog = IdCatalog::default();
        catalog.add_campaign("c".into());
        assert!(catalog.has_campaign(&"c".into()));
        assert!(!catalog.has_variant(&"c".into(), "v"));
    }
}
