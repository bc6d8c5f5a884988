//! The brand's claims registry: statements such as `판매량 1위` that the brand can substantiate,
//! each with the evidence behind it. A superlative or a health claim in a message is acceptable
//! only when a complete registry entry covers it.
//!
//! Pure lookups; the registry itself is kept with the brand guidelines and passed in.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::text;

/// One substantiated claim. Its shape matches the brand guidelines' claims registry, so the same
/// entries can be passed straight through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The wording the evidence supports, as it appears in messages (`판매량 1위`).
    pub claim: String,
    /// The id of the evidence document (a survey, a test report).
    pub evidence_id: String,
    /// Who produced the evidence.
    pub source: String,
    /// The days the evidence covers, written `YYYY-MM-DD..YYYY-MM-DD`.
    pub period: ClaimPeriod,
}

impl Claim {
    /// A claim substantiates nothing unless its evidence is named and sourced.
    pub fn is_complete(&self) -> bool {
        !self.claim.trim().is_empty()
            && !self.evidence_id.trim().is_empty()
            && !self.source.trim().is_empty()
    }
}

/// The days a claim's evidence covers, both included; it never ends before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClaimPeriod {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl TryFrom<String> for ClaimPeriod {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bad = || format!("period `{value}` must be written YYYY-MM-DD..YYYY-MM-DD");
        let (from, until) = value.split_once("..").ok_or_else(bad)?;
        let from: NaiveDate = from.trim().parse().map_err(|_| bad())?;
        let until: NaiveDate = until.trim().parse().map_err(|_| bad())?;
        if until < from {
            return Err(format!("period `{value}` ends before it starts"));
        }
        Ok(ClaimPeriod { from, until })
    }
}

impl From<ClaimPeriod> for String {
    fn from(period: ClaimPeriod) -> String {
        format!("{}..{}", period.from, period.until)
    }
}

/// The complete claim whose wording, where it occurs in `text`, covers the byte range
/// `[start, end)`, if any.
pub fn substantiating<'a>(
    claims: &'a [Claim],
    text: &str,
    (start, end): (usize, usize),
) -> Option<&'a Claim> {
    claims.iter().filter(|c| c.is_complete()).find(|c| {
        text::occurrences(text, c.claim.trim())
            .into_iter()
            .any(|(s, e)| s <= start && end <= e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(wording: &str) -> Claim {
        Claim {
            claim: wording.to_owned(),
            evidence_id: "EV-1".to_owned(),
            source: "Survey Co.".to_owned(),
            period: ClaimPeriod::try_from("2025-01-01..2025-12-31".to_owned())
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[test]
    fn periods_read_and_write_as_from_dot_dot_until() {
        let period = ClaimPeriod::try_from("2025-01-01..2025-12-31".to_owned());
        assert_eq!(
            period.clone().map(String::from),
            Ok("2025-01-01..2025-12-31".to_owned())
        );
        assert!(ClaimPeriod::try_from("2025-12-31..2025-01-01".to_owned()).is_err());
        assert!(ClaimPeriod::try_from("2025".to_owned()).is_err());
    }

    #[test]
    fn a_claim_covers_the_word_inside_its_wording() {
        let text = "ABC 판매량 1위 운동화";
        let word = (
            text.find("1위").unwrap_or(0),
            text.find("1위").unwrap_or(0) + "1위".len(),
        );
        assert!(substantiating(&[claim("판매량 1위")], text, word).is_some());
        assert!(substantiating(&[claim("만족도 1위")], text, word).is_none());
    }

    #[test]
    fn an_incomplete_claim_covers_nothing() {
        let mut c = claim("1위");
        c.evidence_id.clear();
        let text = "1위";
        assert!(substantiating(&[c], text, (0, text.len())).is_none());
    }
}
