//! The simulated clock's persistence: where it stood at the last step of the campaign loop, so a
//! restarted daemon on a simulated clock continues from there.

use chrono::{DateTime, Utc};

use crate::kb::{KbError, KnowledgeBase};

/// Where the simulated clock stood at the last campaign-loop step, so a restarted daemon on a
/// simulated clock continues from there instead of from `[clock] start` (which would hold every
/// campaign whose start date lies between the two until the clock caught up again).
pub fn saved_simulated_time(kb: &KnowledgeBase) -> Option<DateTime<Utc>> {
    let tree = kb.auxiliary_tree(CLOCK_TREE).ok()?;
    let bytes = tree.get(SIMULATED_NOW).ok()??;
    let millis = i64::from_be_bytes(bytes.as_ref().try_into().ok()?);
    chrono::DateTime::from_timestamp_millis(millis)
}

/// Notes the simulated time (not flushed: losing the last steps' mark only means resuming a
/// little earlier, and the campaign days themselves are decided by the knowledge base's records).
pub(super) fn save_simulated_time(kb: &KnowledgeBase, now: DateTime<Utc>) {
    let saved = kb.auxiliary_tree(CLOCK_TREE).and_then(|tree| {
        tree.insert(SIMULATED_NOW, &now.timestamp_millis().to_be_bytes()[..])
            .map_err(|e| KbError::Storage {
                path: kb.path().to_path_buf(),
                reason: e.to_string(),
            })
    });
    if let Err(err) = saved {
        tracing::warn!(%err, "cannot note the simulated time; a restart resumes from an earlier one");
    }
}

const CLOCK_TREE: &str = "clock";
const SIMULATED_NOW: &str = "simulated_now";
