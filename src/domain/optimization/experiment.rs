//! A campaign's experiment: the approved variants (arms) under test, and what has been learned
//! about each of them.
//!
//! An arm is a variant as the optimizer knows it: its channel, its segment and the creative levels
//! it is made of (so the genetic search can recombine them). The experiment folds observations into
//! per-arm counts, re-opens exploration after drift and reports the campaign's progress; it is the
//! same whether built live, batch by batch, or rebuilt from the knowledge base after a restart.

use serde::{Deserialize, Serialize};

use crate::domain::campaign::Channel;
use crate::domain::content::{LevelChoice, Variant};

/// One approved variant as the experiment knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    pub variant: String,
    pub channel: Channel,
    pub segment: String,
    pub levels: Vec<LevelChoice>,
}

impl Arm {
    pub fn of(variant: &Variant) -> Self {
        Arm {
            variant: variant.id.clone(),
            channel: variant.channel,
            segment: variant.segment.clone(),
            levels: variant.levels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::{Creative, Format};

    #[test]
    fn an_arm_takes_the_variants_identity_channel_segment_and_levels() {
        let levels = vec![LevelChoice {
            dimension: "offer".to_owned(),
            index: 1,
            value: "free shipping".to_owned(),
        }];
        let variant = Variant {
            id: "students/kr_sms/ko/0.1".to_owned(),
            channel: Channel::Sms,
            format: Format::KrSms,
            segment: "students".to_owned(),
            language: "ko".to_owned(),
            levels: levels.clone(),
            creative: Creative::default(),
            measures: Vec::new(),
            warnings: Vec::new(),
        };
        assert_eq!(
            Arm::of(&variant),
            Arm {
                variant: "students/kr_sms/ko/0.1".to_owned(),
                channel: Channel::Sms,
                segment: "students".to_owned(),
                levels,
            }
        );
    }

    #[test]
    fn an_arm_reads_the_json_recorded_in_experiment_decisions() {
        let json = r#"{"variant":"v1","channel":"push","segment":"lapsed","levels":[{"dimension":"cta","index":0,"value":"Go"}]}"#;
        let arm: Arm = serde_json::from_str(json).unwrap();
        assert_eq!(arm.channel, Channel::Push);
        assert_eq!(arm.levels[0].value, "Go");
        assert_eq!(serde_json::to_string(&arm).unwrap(), json);
    }
}
