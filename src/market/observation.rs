//! One observation: what one variant of one campaign did on one channel (and segment) over one
//! time window — impressions, clicks, conversions, spend, revenue.
//!
//! Counts are signed on purpose: data from outside may be wrong, and a negative count must reach
//! validation and come back as "impressions is negative (-5)" rather than as a parse error.
//! Validation reports every problem at once, so a sender can fix a batch in one go: the bounds of
//! [`crate::domain::bounds`], the funnel (conversions ≤ clicks ≤ impressions), the variant with
//! its channel and segment, and the window against its campaign and day. Nothing here stores or
//! aggregates observations.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::bounds::{MAX_COUNT, MAX_MONEY, WindowFit, window_fit};
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
    #[error("`{field}` ({value}) is above its maximum of {max} for one observation")]
    AboveMaximum {
        field: String,
        value: String,
        max: String,
    },
    #[error("`channel` `{channel}` is not the channel of variant `{variant}` ({expected})")]
    ChannelMismatch {
        variant: String,
        channel: Channel,
        expected: String,
    },
    #[error("`segment` `{segment}` is not the segment of variant `{variant}` ({expected})")]
    SegmentMismatch {
        variant: String,
        segment: String,
        expected: String,
    },
    #[error(
        "the window {start} – {end} is outside the campaign, which runs from {campaign_start} to {deadline}"
    )]
    WindowOutsideCampaign {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        campaign_start: DateTime<Utc>,
        deadline: DateTime<Utc>,
    },
    #[error(
        "the window {start} – {end} is not inside day {day} of the campaign ({day_start} – {day_end}); send it with the day it belongs to"
    )]
    WindowNotInDay {
        day: u32,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        day_start: DateTime<Utc>,
        day_end: DateTime<Utc>,
    },
    #[error("campaign `{campaign}` is finished ({why}); nothing more is recorded for it")]
    CampaignFinished { campaign: String, why: String },
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
            ObservationProblem::AboveMaximum { .. } => "above_maximum",
            ObservationProblem::ChannelMismatch { .. } => "channel_mismatch",
            ObservationProblem::SegmentMismatch { .. } => "segment_mismatch",
            ObservationProblem::WindowOutsideCampaign { .. } => "window_outside_campaign",
            ObservationProblem::WindowNotInDay { .. } => "window_not_in_day",
            ObservationProblem::CampaignFinished { .. } => "campaign_finished",
        }
    }
}

/// Where a variant runs: the channel and the audience segment it was written for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Placement {
    pub channel: Channel,
    pub segment: String,
}

/// Which campaigns and variants exist, as far as the receiver knows.
pub trait KnownIds {
    fn has_campaign(&self, campaign: &CampaignId) -> bool;
    fn has_variant(&self, campaign: &CampaignId, variant: &str) -> bool;
    /// Where a known variant runs; empty when the receiver does not know (then the channel and
    /// segment of an observation of it are not checked).
    fn placements(&self, _campaign: &CampaignId, _variant: &str) -> Vec<Placement> {
        Vec::new()
    }
}

/// A simple in-memory [`KnownIds`]: campaign → its variant ids, each with where it runs when that
/// is known (a variant id names one placement; every attempt's is kept). One map with a short
/// list per variant, because a thousand campaigns hold a couple of hundred variants each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdCatalog {
    pub campaigns: BTreeMap<CampaignId, BTreeMap<String, Vec<Placement>>>,
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
            .entry(variant.into())
            .or_default();
    }

    /// Knows `variant` and where it runs.
    pub fn add_placed(&mut self, campaign: CampaignId, variant: &str, placement: Placement) {
        let variants = self.campaigns.entry(campaign).or_default();
        let placed = match variants.get_mut(variant) {
            Some(placed) => placed,
            None => variants.entry(variant.to_owned()).or_default(),
        };
        if let Err(at) = placed.binary_search(&placement) {
            placed.insert(at, placement);
        }
    }
}

impl KnownIds for IdCatalog {
    fn has_campaign(&self, campaign: &CampaignId) -> bool {
        self.campaigns.contains_key(campaign)
    }

    fn has_variant(&self, campaign: &CampaignId, variant: &str) -> bool {
        self.campaigns
            .get(campaign)
            .is_some_and(|v| v.contains_key(variant))
    }

    fn placements(&self, campaign: &CampaignId, variant: &str) -> Vec<Placement> {
        self.campaigns
            .get(campaign)
            .and_then(|variants| variants.get(variant))
            .cloned()
            .unwrap_or_default()
    }
}

/// The campaign an observation is checked against: when it started and its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CampaignSpan {
    pub start: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
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
            } else if value > MAX_COUNT {
                problems.push(ObservationProblem::AboveMaximum {
                    field: field.into(),
                    value: value.to_string(),
                    max: MAX_COUNT.to_string(),
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
            } else if value > MAX_MONEY {
                problems.push(ObservationProblem::AboveMaximum {
                    field: field.into(),
                    value: value.to_string(),
                    max: format!("{MAX_MONEY:e}"),
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
        } else {
            self.check_placement(
                &known.placements(&self.campaign, &self.variant),
                &mut problems,
            );
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

    /// [`Observation::validate`], and the window against the campaign and the `day` it is reported
    /// for (see [`window_fit`]).
    pub fn validate_in(
        &self,
        known: &dyn KnownIds,
        campaign: &CampaignSpan,
        day: u32,
    ) -> Result<(), Vec<ObservationProblem>> {
        let mut problems = self.validate(known).err().unwrap_or_default();
        let (start, end) = (self.window_start, self.window_end);
        if start <= end {
            match window_fit(campaign.start, campaign.deadline, day, start, end) {
                WindowFit::InDay => {}
                WindowFit::OutsideCampaign => {
                    problems.push(ObservationProblem::WindowOutsideCampaign {
                        start,
                        end,
                        campaign_start: campaign.start,
                        deadline: campaign.deadline,
                    })
                }
                WindowFit::OtherDay { day_start, day_end } => {
                    problems.push(ObservationProblem::WindowNotInDay {
                        day,
                        start,
                        end,
                        day_start,
                        day_end,
                    })
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The channel and segment against where the variant runs (nothing to check when that is not
    /// known; an observation without a segment does not say one).
    fn check_placement(&self, placements: &[Placement], problems: &mut Vec<ObservationProblem>) {
        if placements.is_empty() {
            return;
        }
        let on_channel: Vec<&Placement> = placements
            .iter()
            .filter(|p| p.channel == self.channel)
            .collect();
        if on_channel.is_empty() {
            problems.push(ObservationProblem::ChannelMismatch {
                variant: self.variant.clone(),
                channel: self.channel,
                expected: list(placements.iter().map(|p| p.channel.to_string())),
            });
            return;
        }
        if let Some(segment) = &self.segment
            && !on_channel.iter().any(|p| &p.segment == segment)
        {
            problems.push(ObservationProblem::SegmentMismatch {
                variant: self.variant.clone(),
                segment: segment.clone(),
                expected: list(on_channel.iter().map(|p| p.segment.clone())),
            });
        }
    }
}

/// `a`, or `a or b`, for a message.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: BTreeSet<String> = items.collect();
    items.into_iter().collect::<Vec<_>>().join(" or ")
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
            ObservationProblem::AboveMaximum {
                field: "spend".into(),
                value: "1e308".into(),
                max: "1e12".into(),
            },
            ObservationProblem::ChannelMismatch {
                variant: "v".into(),
                channel: Channel::Push,
                expected: "sms".into(),
            },
            ObservationProblem::SegmentMismatch {
                variant: "v".into(),
                segment: "s".into(),
                expected: "t".into(),
            },
            ObservationProblem::WindowOutsideCampaign {
                start: Utc::now(),
                end: Utc::now(),
                campaign_start: Utc::now(),
                deadline: Utc::now(),
            },
            ObservationProblem::WindowNotInDay {
                day: 1,
                start: Utc::now(),
                end: Utc::now(),
                day_start: Utc::now(),
                day_end: Utc::now(),
            },
            ObservationProblem::CampaignFinished {
                campaign: "c".into(),
                why: "its goal was achieved".into(),
            },
        ];
        for problem in problems {
            let tagged = serde_json::to_value(&problem).expect("serializes");
            assert_eq!(tagged["problem"], problem.code(), "{tagged}");
        }
    }

    fn observed(json: serde_json::Value) -> Observation {
        let mut base = serde_json::json!({
            "campaign": "c", "channel": "sms", "segment": "students", "variant": "v",
            "window_start": "2026-10-04T00:00:00Z", "window_end": "2026-10-05T00:00:00Z",
            "impressions": 1000, "clicks": 50, "conversions": 5, "spend": 20.0
        });
        if let (Some(base), Some(changes)) = (base.as_object_mut(), json.as_object()) {
            base.extend(changes.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    fn catalog() -> IdCatalog {
        let mut catalog = IdCatalog::default();
        let placement = Placement {
            channel: Channel::Sms,
            segment: "students".into(),
        };
        catalog.add_placed("c".into(), "v", placement);
        catalog
    }

    fn span() -> CampaignSpan {
        CampaignSpan {
            start: "2026-10-01T00:00:00Z".parse().unwrap(),
            deadline: "2026-10-31T00:00:00Z".parse().unwrap(),
        }
    }

    fn codes(observation: &Observation, day: u32) -> Vec<&'static str> {
        match observation.validate_in(&catalog(), &span(), day) {
            Ok(()) => Vec::new(),
            Err(problems) => problems.iter().map(ObservationProblem::code).collect(),
        }
    }

    #[test]
    fn a_well_formed_observation_of_its_day_passes() {
        assert_eq!(
            codes(&observed(serde_json::json!({})), 3),
            Vec::<&str>::new()
        );
        let no_segment = observed(serde_json::json!({ "segment": null }));
        assert_eq!(codes(&no_segment, 3), Vec::<&str>::new());
    }

    #[test]
    fn values_beyond_the_bounds_are_refused_with_their_maximum() {
        let huge = observed(serde_json::json!({
            "impressions": i64::MAX, "clicks": i64::MAX, "conversions": i64::MAX, "spend": 1e308,
            "revenue": 1e13
        }));
        assert_eq!(codes(&huge, 3), ["above_maximum"; 5]);
        let problems = huge.validate(&catalog()).unwrap_err();
        let message = problems[0].to_string();
        assert!(
            message.contains("impressions") && message.contains("1000000000"),
            "{message}"
        );
        assert!(problems[3].to_string().contains("1e12"), "{}", problems[3]);
        let at_the_bound = observed(serde_json::json!({
            "impressions": MAX_COUNT, "clicks": MAX_COUNT, "conversions": MAX_COUNT,
            "spend": MAX_MONEY, "revenue": MAX_MONEY
        }));
        assert_eq!(codes(&at_the_bound, 3), Vec::<&str>::new());
    }

    #[test]
    fn the_channel_and_segment_must_be_the_variants() {
        let push = observed(serde_json::json!({ "channel": "push" }));
        assert_eq!(codes(&push, 3), ["channel_mismatch"]);
        assert!(
            push.validate(&catalog()).unwrap_err()[0]
                .to_string()
                .contains("sms")
        );
        let other = observed(serde_json::json!({ "segment": "retirees" }));
        assert_eq!(codes(&other, 3), ["segment_mismatch"]);
        // A catalog that does not know placements (the simulator's) checks neither.
        let mut bare = IdCatalog::default();
        bare.add("c".into(), "v");
        assert_eq!(push.validate(&bare), Ok(()));
    }

    #[test]
    fn the_window_must_be_inside_the_campaign_and_its_day() {
        let ok = observed(serde_json::json!({}));
        assert_eq!(codes(&ok, 2), ["window_not_in_day"]);
        let before = observed(serde_json::json!({
            "window_start": "2026-09-30T00:00:00Z", "window_end": "2026-10-01T00:00:00Z"
        }));
        assert_eq!(codes(&before, 0), ["window_outside_campaign"]);
        let after = observed(serde_json::json!({
            "window_start": "2027-01-04T00:00:00Z", "window_end": "2027-01-05T00:00:00Z"
        }));
        assert_eq!(codes(&after, 3), ["window_outside_campaign"]);
        // A backwards window is reported once, as backwards.
        let backwards = observed(serde_json::json!({
            "window_start": "2026-10-05T00:00:00Z", "window_end": "2026-10-04T00:00:00Z"
        }));
        assert_eq!(codes(&backwards, 3), ["window_ends_before_start"]);
    }

    #[test]
    fn a_campaign_without_variants_is_known() {
        let mut catalog = IdCatalog::default();
        catalog.add_campaign("c".into());
        assert!(catalog.has_campaign(&"c".into()));
        assert!(!catalog.has_variant(&"c".into(), "v"));
    }
}
