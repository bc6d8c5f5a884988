//! The creative brief: the `[brief]` table of a campaign file, everything a campaign's copy may
//! say. Content writes only from it and the brand's voice (the content playbook holds templates
//! and calls to action, no offers), and compliance blocks a factual claim that neither a claim of
//! the brief nor the tenant's claims registry substantiates.
//!
//! A brief names what is on sale, where every ad leads, the language of each region, and per
//! language the product's name in copy, the key messages (per segment if need be), optional calls
//! to action and the claims, each with its evidence. Pure data and checks; the claims registry is
//! passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::brand::apply_preferred_terms;
use crate::domain::campaign::CampaignGoal;
use crate::domain::compliance::claims::{Claim, ClaimPeriod, substantiating};
use crate::domain::compliance::playbook::SubstantiationRule;
use crate::domain::compliance::substantiation::{claims_in, describe};

/// `[brief]` of a campaign file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brief {
    /// What is on sale, in a line the people reading decisions understand.
    pub product: String,
    /// Where every ad and message leads (`https://…`).
    pub landing_url: String,
    /// Region (ISO 3166) → the language code its copy is written in (`KR = "ko"`).
    pub languages: BTreeMap<String, String>,
    /// Language code → what copy in that language may say.
    pub copy: BTreeMap<String, BriefCopy>,
}

/// `[brief.copy.<language>]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BriefCopy {
    /// The product's name as copy writes it (`{product}`).
    pub product: String,
    /// Key messages (`{message}`): one per variant, recombined by the optimizer.
    pub messages: Vec<String>,
    /// Calls to action (`{cta}`); when empty, the content playbook's for the objective.
    #[serde(default)]
    pub calls_to_action: Vec<String>,
    /// What the copy may claim (`{offer}`).
    #[serde(default)]
    pub claims: Vec<BriefClaim>,
    /// Segment id → messages that replace the language-wide ones for that segment.
    #[serde(default)]
    pub segments: BTreeMap<String, SegmentCopy>,
}

/// `[brief.copy.<language>.segments.<segment>]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCopy {
    pub messages: Vec<String>,
}

/// What sort of factual statement a claim is; the law asks evidence of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// A price (`$129 for all three`).
    Price,
    /// A reduction (`10% off`, `1+1`).
    Discount,
    /// Something at no charge (`free shipping`, `가입비 무료`).
    Free,
    /// Best, first, only, number one: needs an entry in the claims registry.
    Superlative,
    /// Any other fact (`2x faster`, `10,000 students joined`).
    Other,
}

/// `[[brief.copy.<language>.claims]]`: one statement the copy may make, exactly as copy writes it,
/// and what substantiates it: a document the advertiser holds (`evidence`) or an entry of the
/// tenant's claims registry (`registry`, that entry's wording).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BriefClaim {
    pub kind: ClaimKind,
    pub text: String,
    #[serde(default)]
    pub evidence: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
}

impl Brief {
    /// The language `region`'s copy is written in.
    pub fn language_for(&self, region: &str) -> Option<&str> {
        self.languages.get(region).map(String::as_str)
    }

    /// Every problem of the brief of a campaign in `regions` with `segments`, as (key under
    /// `brief`, what is wrong).
    pub fn problems(&self, regions: &[String], segments: &[&str]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: String, message: String| {
            if !ok {
                problems.push((key, message));
            }
        };
        check(
            !self.product.trim().is_empty(),
            "product".into(),
            "must say what is on sale".into(),
        );
        check(
            is_web_url(&self.landing_url),
            "landing_url".into(),
            format!(
                "`{}` is not a web address such as https://example.com/spring",
                self.landing_url
            ),
        );
        for region in regions {
            check(
                self.languages.contains_key(region),
                "languages".into(),
                format!(
                    "names no language for region `{region}`; add `{region} = \"<code>\"` so its audience is written to in a language it reads"
                ),
            );
        }
        for (region, code) in &self.languages {
            check(
                regions.contains(region),
                format!("languages.{region}"),
                format!("`{region}` is not one of the campaign's regions"),
            );
            check(
                self.copy.contains_key(code),
                format!("languages.{region}"),
                format!("is `{code}`, but there is no [brief.copy.{code}] to write it from"),
            );
        }
        for (code, copy) in &self.copy {
            let at = format!("copy.{code}");
            check(
                self.languages.values().any(|c| c == code),
                at.clone(),
                format!(
                    "no region is written in `{code}`; remove it or name it in brief.languages"
                ),
            );
            copy.problems(&at, segments, &mut check);
        }
        problems
    }

    /// The brief's claims with their evidence, in the registry's shape, so compliance matches
    /// them as it matches registered claims. A claim that cites the registry counts only when a
    /// complete registry entry has that wording (otherwise it substantiates nothing).
    pub fn substantiated(
        &self,
        registry: &[Claim],
        campaign: &str,
        (from, until): (DateTime<Utc>, DateTime<Utc>),
    ) -> Vec<Claim> {
        let period = ClaimPeriod {
            from: from.date_naive(),
            until: until.date_naive().max(from.date_naive()),
        };
        self.copy
            .values()
            .flat_map(|copy| &copy.claims)
            .filter_map(|claim| {
                let evidence = match (&claim.evidence, &claim.registry) {
                    (Some(evidence), _) if !evidence.trim().is_empty() => evidence.clone(),
                    (_, Some(wording)) => registry
                        .iter()
                        .find(|r| r.is_complete() && r.claim.trim() == wording.trim())?
                        .evidence_id
                        .clone(),
                    _ => return None,
                };
                Some(Claim {
                    claim: claim.text.clone(),
                    evidence_id: evidence,
                    source: format!("the brief of campaign {campaign}"),
                    period,
                })
            })
            .collect()
    }
}

/// Each line the brief asks copy to say — messages and calls to action — that states a claim
/// `claims` does not substantiate, as (key under `brief`, what is wrong). Such a line would block
/// every variant that uses it, so `check` names it before anything is written.
pub fn unproven_lines(
    brief: &Brief,
    claims: &[Claim],
    rule: &SubstantiationRule,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (code, copy) in &brief.copy {
        for (key, lines) in copy.lines(&format!("copy.{code}")) {
            for (i, line) in lines.iter().enumerate() {
                for found in claims_in(line, rule) {
                    if substantiating(claims, line, found.span).is_none() {
                        let wording = line.get(found.span.0..found.span.1).unwrap_or_default();
                        problems.push((
                            format!("{key}[{i}]"),
                            format!(
                                "`{wording}` states {} that no claim of the brief substantiates, so compliance would block every variant with it; add it to [[brief.copy.{code}.claims]] with its evidence, or reword",
                                describe(found.kind)
                            ),
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The claims a review of `goal`'s copy may rely on: the tenant's `registry`, and the brief's
/// claims both as written and as content writes them (with the brand's preferred terms, so
/// `무료 배송` for a brief's `무료배송` when the brand prefers it, and with single blanks).
pub fn review_claims(
    goal: &CampaignGoal,
    registry: Vec<Claim>,
    preferred_terms: &BTreeMap<String, String>,
) -> Vec<Claim> {
    let Some(brief) = &goal.brief else {
        return registry;
    };
    let window = (goal.start.unwrap_or(goal.deadline), goal.deadline);
    let own = brief.substantiated(&registry, goal.id.as_str(), window);
    // Content also collapses runs of blanks, as it does for all copy.
    let voiced: Vec<Claim> = own
        .iter()
        .filter_map(|claim| {
            let text = apply_preferred_terms(&claim.claim, preferred_terms);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (text != claim.claim).then(|| Claim {
                claim: text,
                ..claim.clone()
            })
        })
        .collect();
    registry.into_iter().chain(own).chain(voiced).collect()
}

impl BriefCopy {
    /// The messages written for `segment`: its own when the brief gives some, else the
    /// language's.
    pub fn messages_for(&self, segment: &str) -> &[String] {
        self.segments
            .get(segment)
            .map_or(&self.messages, |s| &s.messages)
    }

    /// Every list of lines the copy is written from, keyed as the file spells it under `at`:
    /// the messages, the calls to action and each segment's messages.
    fn lines(&self, at: &str) -> Vec<(String, &[String])> {
        let mut lists = vec![
            (format!("{at}.messages"), self.messages.as_slice()),
            (
                format!("{at}.calls_to_action"),
                self.calls_to_action.as_slice(),
            ),
        ];
        for (segment, copy) in &self.segments {
            lists.push((format!("{at}.segments.{segment}.messages"), &copy.messages));
        }
        lists
    }

    fn problems(&self, at: &str, segments: &[&str], check: &mut impl FnMut(bool, String, String)) {
        check(
            !self.product.trim().is_empty(),
            format!("{at}.product"),
            "must name the product as copy writes it".into(),
        );
        for (key, list) in self.lines(at) {
            // Calls to action are optional: the playbook's stand in.
            if !(list.is_empty() && key.ends_with(".calls_to_action")) {
                lines(&key, list, check);
            }
        }
        for segment in self.segments.keys() {
            check(
                segments.contains(&segment.as_str()),
                format!("{at}.segments.{segment}"),
                format!("`{segment}` is not one of the campaign's segments"),
            );
        }
        for (i, claim) in self.claims.iter().enumerate() {
            let key = format!("{at}.claims[{i}]");
            check(
                !claim.text.trim().is_empty(),
                format!("{key}.text"),
                "must hold the claim as copy writes it".into(),
            );
            check(
                !self.claims[..i].iter().any(|c| c.text == claim.text),
                format!("{key}.text"),
                format!("`{}` is claimed twice", claim.text),
            );
            let evidence = claim
                .evidence
                .as_deref()
                .is_some_and(|e| !e.trim().is_empty());
            let registry = claim
                .registry
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty());
            if claim.kind == ClaimKind::Superlative {
                check(
                    registry,
                    format!("{key}.registry"),
                    "a superlative needs an entry of the tenant's claims registry (evidence id, source, period); name its wording here".into(),
                );
            } else {
                check(
                    evidence || registry,
                    key.clone(),
                    "needs `evidence` (the document that proves it) or `registry` (the wording of a claims-registry entry); an unsubstantiated claim is blocked".into(),
                );
            }
        }
    }
}

/// Non-empty, distinct lines.
fn lines(key: &str, list: &[String], check: &mut impl FnMut(bool, String, String)) {
    check(
        !list.is_empty(),
        key.to_owned(),
        "needs at least one".into(),
    );
    for (i, line) in list.iter().enumerate() {
        check(
            !line.trim().is_empty(),
            format!("{key}[{i}]"),
            "is empty".into(),
        );
        check(
            !list[..i].contains(line),
            format!("{key}[{i}]"),
            format!("`{line}` is listed twice"),
        );
    }
}

/// `http://` or `https://`, a host, and no whitespace.
fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && host.contains('.') && !url.chars().any(char::is_whitespace)
    })
}

/// A brief for unit tests: Korean copy for `KR` with one evidenced discount.
#[cfg(test)]
pub(crate) const TEST_BRIEF: &str = r#"
[brief]
product = "Student membership"
landing_url = "https://example.kr/student"
languages = { KR = "ko" }
[brief.copy.ko]
product = "학생 멤버십"
messages = ["학생증 하나로 가입 끝", "새 학기를 가볍게"]
[[brief.copy.ko.claims]]
kind = "discount"
text = "10% 할인"
evidence = "Membership terms §3"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(extra: &str) -> Brief {
        #[derive(Deserialize)]
        struct File {
            brief: Brief,
        }
        let file: File =
            toml::from_str(&format!("{TEST_BRIEF}{extra}")).unwrap_or_else(|e| panic!("{e}"));
        file.brief
    }

    fn keys(brief: &Brief, regions: &[&str]) -> Vec<String> {
        let regions: Vec<String> = regions.iter().map(|r| (*r).to_owned()).collect();
        brief
            .problems(&regions, &["students"])
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    #[test]
    fn a_complete_brief_has_no_problem() {
        assert!(keys(&brief(""), &["KR"]).is_empty());
    }

    #[test]
    fn every_region_needs_a_language_with_copy() {
        assert_eq!(keys(&brief(""), &["KR", "DE"]), vec!["languages"]);
        let mut b = brief("");
        b.languages.insert("KR".into(), "en".into());
        assert_eq!(keys(&b, &["KR"]), vec!["languages.KR", "copy.ko"]);
    }

    #[test]
    fn a_claim_needs_evidence_and_a_superlative_the_registry() {
        let b = brief(
            "[[brief.copy.ko.claims]]\nkind = \"free\"\ntext = \"무료\"\n\
             [[brief.copy.ko.claims]]\nkind = \"superlative\"\ntext = \"1위\"\nevidence = \"us\"\n",
        );
        assert_eq!(
            keys(&b, &["KR"]),
            vec!["copy.ko.claims[1]", "copy.ko.claims[2].registry"]
        );
    }

    #[test]
    fn unknown_segments_and_bad_urls_are_named() {
        let mut b = brief("[brief.copy.ko.segments.teachers]\nmessages = [\"x\"]\n");
        b.landing_url = "example.kr".into();
        assert_eq!(
            keys(&b, &["KR"]),
            vec!["landing_url", "copy.ko.segments.teachers"]
        );
        assert!(is_web_url("https://shop.example.com/a?b=c"));
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https://exa mple.com"));
    }

    #[test]
    fn registry_citations_count_only_when_the_registry_has_them() {
        let b = brief(
            "[[brief.copy.ko.claims]]\nkind = \"superlative\"\ntext = \"판매량 1위\"\nregistry = \"판매량 1위\"\n",
        );
        let window = (
            "2026-03-01T00:00:00Z".parse().unwrap_or_default(),
            "2026-04-01T00:00:00Z".parse().unwrap_or_default(),
        );
        let registered = Claim {
            claim: "판매량 1위".into(),
            evidence_id: "EV-7".into(),
            source: "Survey Co.".into(),
            period: window_period(),
        };
        let texts =
            |claims: Vec<Claim>| -> Vec<String> { claims.into_iter().map(|c| c.claim).collect() };
        assert_eq!(texts(b.substantiated(&[], "c", window)), vec!["10% 할인"]);
        assert_eq!(
            texts(b.substantiated(&[registered], "c", window)),
            vec!["10% 할인", "판매량 1위"]
        );
    }

    #[test]
    fn a_message_stating_a_claim_the_brief_lacks_is_named() {
        let mut b = brief("");
        if let Some(copy) = b.copy.get_mut("ko") {
            copy.messages.push("전 상품 30% 할인 중".into());
        }
        let rule = crate::domain::compliance::CompliancePlaybook::embedded()
            .unwrap_or_else(|e| panic!("{e}"))
            .rules
            .substantiation;
        let window = (
            "2026-03-01T00:00:00Z".parse().unwrap_or_default(),
            "2026-04-01T00:00:00Z".parse().unwrap_or_default(),
        );
        let claims = b.substantiated(&[], "c", window);
        let keys: Vec<String> = unproven_lines(&b, &claims, &rule)
            .into_iter()
            .map(|(key, message)| format!("{key}: {message}"))
            .collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys[0].starts_with("copy.ko.messages[2]: `30%` states a discount"),
            "{keys:?}"
        );
    }

    fn window_period() -> ClaimPeriod {
        ClaimPeriod::try_from("2026-01-01..2026-12-31".to_owned()).unwrap_or_else(|e| panic!("{e}"))
    }
}
