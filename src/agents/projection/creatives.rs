//! The creatives a campaign may run, as the outbox sends them: each variant's message as
//! compliance last approved it, with the headline content wrote for it.

use std::collections::BTreeMap;

use super::{choice, decode};
use crate::agents::decisions as kinds;
use crate::domain::order::Creative;
use crate::kb::Decision;

/// Variant → its approved creative, from a campaign's decisions in the order they were recorded:
/// a later review of the same variant (a revision's) decides, and a variant whose last review
/// blocked it is not there.
pub fn approved_creatives<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> BTreeMap<String, Creative> {
    let mut headlines: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut approved: BTreeMap<String, Creative> = BTreeMap::new();
    for decision in decisions {
        if let Some(summaries) = choice::<kinds::Creatives>(decision) {
            for summary in summaries {
                headlines.insert(summary.id, summary.headline);
            }
        } else if let Some((inputs, verdict)) = decode::<kinds::Review>(decision) {
            if verdict.approved {
                approved.insert(
                    inputs.variant.clone(),
                    Creative {
                        variant: inputs.variant,
                        headline: None,
                        path: None,
                        message: inputs.message,
                    },
                );
            } else {
                approved.remove(&inputs.variant);
            }
        }
    }
    for (variant, creative) in &mut approved {
        creative.headline = headlines.get(variant).cloned().flatten();
    }
    approved
}
