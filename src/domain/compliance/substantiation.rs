//! CLAIM-SUBSTANTIATION: an advertisement may state a price, a discount, something free, a
//! superlative or another measurable fact only when it can prove it (Korea's Fair Labeling and
//! Advertising Act, art. 3; the FTC's advertising substantiation doctrine). A claim is proven when
//! a claim of the campaign's brief or a complete entry of the tenant's claims registry covers its
//! wording; anything else blocks.
//!
//! What counts as a claim is data: the rule's word lists per kind, and figures — a number after a
//! currency sign or before `%`, a currency or a count unit. Phone numbers and web addresses are
//! not claims. [`claims_in`] finds them, so `check` can test a brief's own messages with the same
//! eyes as the review.

use super::claims::{self, Claim};
use super::message::Message;
use super::playbook::SubstantiationRule;
use super::rules::{CLAIM_SUBSTANTIATION, claim_fields, finding};
use super::text;
use super::verdict::Finding;
use crate::domain::brief::ClaimKind;

/// One claim found in a text: its kind and byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: ClaimKind,
    pub span: (usize, usize),
}

/// Every claim in `value`, in order, none inside another or inside an exception.
pub fn claims_in(value: &str, rule: &SubstantiationRule) -> Vec<Found> {
    let exempt: Vec<(usize, usize)> = rule
        .exceptions
        .iter()
        .flat_map(|x| text::occurrences(value, x))
        .chain(
            text::phone_numbers(value)
                .into_iter()
                .map(|p| (p.start, p.end)),
        )
        .chain(web_addresses(value))
        .collect();
    let mut found: Vec<Found> = Vec::new();
    let words = [
        (ClaimKind::Free, &rule.free),
        (ClaimKind::Discount, &rule.discount),
        (ClaimKind::Superlative, &rule.superlative),
    ];
    let spans = words
        .into_iter()
        .flat_map(|(kind, list)| {
            list.iter().flat_map(move |w| {
                text::find_words(value, w)
                    .into_iter()
                    .map(move |s| (kind, s))
            })
        })
        .chain(figures(value, rule));
    for (kind, span) in spans {
        let inside = |o: &(usize, usize)| o.0 <= span.0 && span.1 <= o.1;
        if exempt.iter().any(inside) || found.iter().any(|f| inside(&f.span)) {
            continue;
        }
        found.retain(|f| !(span.0 <= f.span.0 && f.span.1 <= span.1));
        found.push(Found { kind, span });
    }
    found.sort_by_key(|f| f.span);
    found
}

/// The rule's findings in a message's text and subject: one per claim nothing substantiates.
pub fn check(message: &Message, claims: &[Claim], rule: &SubstantiationRule) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (field, value) in claim_fields(message) {
        for found in claims_in(value, rule) {
            if claims::substantiating(claims, value, found.span).is_some() {
                continue;
            }
            let wording = value.get(found.span.0..found.span.1).unwrap_or_default();
            findings.push(finding(
                CLAIM_SUBSTANTIATION,
                rule.severity,
                field,
                Some(found.span),
                format!(
                    "`{wording}` states {} that neither the campaign's brief nor the claims registry substantiates; add it to the brief's claims with its evidence, or remove it",
                    describe(found.kind)
                ),
                None,
            ));
        }
    }
    findings
}

/// The kind as a finding names it.
pub fn describe(kind: ClaimKind) -> &'static str {
    match kind {
        ClaimKind::Price => "a price",
        ClaimKind::Discount => "a discount",
        ClaimKind::Free => "that something is free",
        ClaimKind::Superlative => "a superlative",
        ClaimKind::Other => "a factual claim",
    }
}

/// Numbers that state a figure: after a currency sign (a price), before `%` (a discount), before
/// a currency (a price) or before a count unit (a fact).
fn figures(value: &str, rule: &SubstantiationRule) -> Vec<(ClaimKind, (usize, usize))> {
    let mut found = Vec::new();
    // A figure and its unit or prefix stand on one line: `0` ending one line and `x` starting
    // the next are two lines, not a claim of "0x".
    let blank: &[char] = &[' ', '\t', '\u{a0}'];
    for (start, end) in numbers(value) {
        let before = value
            .get(..start)
            .unwrap_or_default()
            .trim_end_matches(blank);
        let after_raw = value.get(end..).unwrap_or_default();
        let after = after_raw.trim_start_matches(blank);
        let gap = after_raw.len() - after.len();
        let prefix = rule
            .price_prefixes
            .iter()
            .find(|p| before.ends_with(p.as_str()));
        if let Some(prefix) = prefix {
            found.push((ClaimKind::Price, (before.len() - prefix.len(), end)));
            continue;
        }
        let unit = |list: &[String]| {
            list.iter()
                .filter(|u| starts_with_word(after, u))
                .map(String::len)
                .max()
        };
        let kind_and_len = if after.starts_with('%') {
            Some((ClaimKind::Discount, 1))
        } else if let Some(len) = unit(&rule.price_units) {
            Some((ClaimKind::Price, len))
        } else {
            unit(&rule.count_units).map(|len| (ClaimKind::Other, len))
        };
        if let Some((kind, len)) = kind_and_len {
            found.push((kind, (start, end + gap + len)));
        }
    }
    found
}

/// `unit` begins `text`, and when it ends in an ASCII letter no letter follows (`x` is a unit in
/// `2x faster`, not in `2 xylophones`).
fn starts_with_word(text: &str, unit: &str) -> bool {
    text::starts_with_ci(text, unit)
        && !(unit
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && text
                .get(unit.len()..)
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| c.is_ascii_alphabetic()))
}

/// Runs of digits, with `,` or `.` between digits (`10,000`, `4.5`).
fn numbers(value: &str) -> Vec<(usize, usize)> {
    let bytes = value.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A digit inside a word (`B2B`, `mp3`) is not a figure.
        let in_word = i > 0 && bytes[i - 1].is_ascii_alphabetic();
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_digit()
                || (matches!(bytes[i], b',' | b'.')
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
        {
            i += 1;
        }
        if !in_word {
            runs.push((start, i));
        }
    }
    runs
}

/// `http://…` and `https://…` up to the next whitespace.
fn web_addresses(value: &str) -> Vec<(usize, usize)> {
    ["http://", "https://"]
        .iter()
        .flat_map(|scheme| text::occurrences(value, scheme))
        .map(|(start, _)| {
            let rest = value.get(start..).unwrap_or_default();
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (start, start + len)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compliance::CompliancePlaybook;
    use crate::domain::compliance::claims::ClaimPeriod;
    use crate::domain::compliance::message::MessageChannel;

    fn rule() -> SubstantiationRule {
        CompliancePlaybook::embedded()
            .unwrap_or_else(|e| panic!("{e}"))
            .rules
            .substantiation
    }

    fn found(value: &str) -> Vec<(ClaimKind, &str)> {
        claims_in(value, &rule())
            .into_iter()
            .map(|f| (f.kind, &value[f.span.0..f.span.1]))
            .collect()
    }

    fn evidenced(wording: &str) -> Claim {
        Claim {
            claim: wording.to_owned(),
            evidence_id: "Price list 2026".to_owned(),
            source: "the brief".to_owned(),
            period: ClaimPeriod::try_from("2026-01-01..2026-12-31".to_owned())
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[test]
    fn korean_claims_are_found_by_kind() {
        use ClaimKind::*;
        assert_eq!(
            found("(광고)ABC마트 전 상품 30% 할인! 1+1 혜택, 무료배송. 무료거부 0801234567"),
            vec![
                (Discount, "30%"),
                (Discount, "할인"),
                (Discount, "1+1"),
                (Free, "무료")
            ]
        );
        assert_eq!(
            found("판매량 1위, 5만 원부터, 가입자 10,000명"),
            vec![(Superlative, "1위"), (Price, "5만 원"), (Other, "10,000명")]
        );
        assert!(found("학생증 하나로 가입 끝. 지금 가입하세요").is_empty());
    }

    #[test]
    fn english_claims_are_found_by_kind() {
        use ClaimKind::*;
        assert_eq!(
            found("The best bundle: $129, 2x warmer, free shipping. Call 1-800-555-0199"),
            vec![
                (Superlative, "best"),
                (Price, "$129"),
                (Other, "2x"),
                (Free, "free")
            ]
        );
        assert!(found("Reply STOP to opt out. https://shop.example/2026?x=50%").is_empty());
        assert!(found("Layer up for the first frost. Order yours").is_empty());
        // A figure ending one line and a unit starting the next are not one claim.
        assert!(found("Room for 2\nx-large coats").is_empty());
        assert!(found("Ends at $\n5 stores").is_empty());
        assert_eq!(found("Save $ 40 today"), vec![(Price, "$ 40")]);
    }

    #[test]
    fn a_claim_in_the_brief_or_registry_substantiates_its_wording_only() {
        let message = |text: &str| Message::advert(MessageChannel::Sms, text);
        let claims = [
            evidenced("전 구매 10% 할인"),
            evidenced("$129 for all three"),
        ];
        assert!(
            check(
                &message("(광고)학생 멤버십 전 구매 10% 할인"),
                &claims,
                &rule()
            )
            .is_empty()
        );
        assert!(check(&message("The bundle: $129 for all three"), &claims, &rule()).is_empty());
        let blocked = check(
            &message("(광고)학생 멤버십 전 구매 20% 할인"),
            &claims,
            &rule(),
        );
        assert_eq!(blocked.len(), 2, "{blocked:?}");
        assert!(
            blocked[0].message.contains("`20%` states a discount"),
            "{}",
            blocked[0].message
        );
        let blocked = check(&message("The bundle: $99 for all three"), &claims, &rule());
        assert_eq!(blocked.len(), 1, "{blocked:?}");
        assert!(blocked[0].message.contains("`$99` states a price"));
    }
}
