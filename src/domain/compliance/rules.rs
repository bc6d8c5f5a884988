//! The rule engine: which rules apply to a message (by jurisdiction, channel and whether it is an
//! advertisement or an endorsement), and the text rules themselves (label, sender, opt-out,
//! superlatives, health claims, endorsement disclosure, CAN-SPAM; claim substantiation is in
//! [`super::substantiation`]).
//!
//! Everything a rule matches comes from the playbook; the code holds only how to look. A rule
//! that cannot check something it needs (no sender name, no time zone) reports it rather than
//! passing it: compliance fails closed.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc, Weekday};

use super::claims::{self, Claim};
use super::consent::{self, ConsentRecord};
use super::fix::{self, Fix};
use super::message::{Jurisdiction, Message, MessageChannel, ReviewRequest};
use super::playbook::{
    AdLabelRule, CanSpamRule, CompliancePlaybook, EndorsementRule, HealthClaimRule, OptOutRule,
    SenderRule, SuperlativeRule,
};
use super::schedule;
use super::text::{self, LabelPrefix};
use super::verdict::{Field, Finding, Severity, Verdict};

pub const KR_AD_LABEL: &str = "KR-AD-LABEL";
pub const KR_SENDER: &str = "KR-SENDER";
pub const KR_OPTOUT: &str = "KR-OPTOUT";
pub const KR_NIGHT: &str = "KR-NIGHT";
pub const KR_OPTIN: &str = "KR-OPTIN";
pub const KR_RECONFIRM: &str = "KR-RECONFIRM";
pub const KR_SUPERLATIVE: &str = "KR-SUPERLATIVE";
pub const HEALTH_CLAIM: &str = "HEALTH-CLAIM";
pub const ENDORSEMENT: &str = "ENDORSEMENT";
pub const US_CANSPAM: &str = "US-CANSPAM";
pub const US_TCPA_QUIET: &str = "US-TCPA-QUIET";
pub const GDPR_CONSENT: &str = "EU-GDPR-CONSENT";
pub const CLAIM_SUBSTANTIATION: &str = "CLAIM-SUBSTANTIATION";

/// Every rule id the engine knows, in the order it runs them.
pub const RULE_IDS: [&str; 13] = [
    KR_AD_LABEL,
    KR_SENDER,
    KR_OPTOUT,
    KR_NIGHT,
    KR_OPTIN,
    KR_RECONFIRM,
    KR_SUPERLATIVE,
    CLAIM_SUBSTANTIATION,
    HEALTH_CLAIM,
    ENDORSEMENT,
    US_CANSPAM,
    US_TCPA_QUIET,
    GDPR_CONSENT,
];

/// The id of the finding that blocks a message no rule set covers. Not a playbook rule: it cannot
/// be switched off, because with no rules nothing was checked.
pub const NO_RULESET: &str = "NO-RULESET";

/// Reviews one message against the playbook. A request with no jurisdiction is blocked
/// ([`NO_RULESET`]): with no rule set applied, nothing was checked.
pub fn review(playbook: &CompliancePlaybook, request: &ReviewRequest) -> Verdict {
    let mut findings = rule_findings(playbook, request);
    if request.jurisdictions.is_empty() {
        findings.push(finding(
            NO_RULESET,
            Severity::Block,
            Field::Recipient,
            None,
            "no jurisdiction with a rule set applies (campaignd has rules for KR, US and the EU); nothing could be checked, so nothing is approved".to_owned(),
            None,
        ));
    }
    Verdict::from_findings(findings, &playbook.risk)
}

/// Reviews a message sent to an audience in `regions`: [`review`] for the jurisdictions of the
/// request, blocked as well when any of the regions has no rule set, since its recipients would
/// get a message no rule of theirs checked.
pub fn review_in_regions(
    playbook: &CompliancePlaybook,
    request: &ReviewRequest,
    regions: &[String],
) -> Verdict {
    let verdict = review(playbook, request);
    let uncovered = super::region::without_rule_set(regions);
    if uncovered.is_empty() {
        return verdict;
    }
    // One NO-RULESET finding, the one that names the regions.
    let mut findings: Vec<Finding> = verdict
        .findings
        .into_iter()
        .filter(|f| f.rule_id != NO_RULESET)
        .collect();
    findings.push(finding(
        NO_RULESET,
        Severity::Block,
        Field::Recipient,
        None,
        format!(
            "region{} {} ha{} no compliance rule set (campaignd has rules for KR, US, the EU and its member states); a message to {} is checked by no rule, so nothing is approved",
            if uncovered.len() == 1 { "" } else { "s" },
            uncovered.join(", "),
            if uncovered.len() == 1 { "s" } else { "ve" },
            if uncovered.len() == 1 { "it" } else { "them" },
        ),
        None,
    ));
    Verdict::from_findings(findings, &playbook.risk)
}

/// What the playbook's rules find in one message.
fn rule_findings(playbook: &CompliancePlaybook, request: &ReviewRequest) -> Vec<Finding> {
    let message = &request.message;
    let rules = &playbook.rules;
    let applies =
        |scope: super::playbook::Scope<'_>| scope.applies(message.channel, &request.jurisdictions);
    let mut findings = Vec::new();

    if message.commercial {
        if applies(rules.ad_label.scope()) {
            findings.extend(check_ad_label(message, &rules.ad_label));
        }
        if applies(rules.sender.scope()) {
            findings.extend(check_sender(message, &rules.sender, &rules.ad_label));
        }
        if applies(rules.opt_out.scope()) {
            findings.extend(check_opt_out(message, &rules.opt_out));
        }
        if applies(rules.superlative.scope()) {
            findings.extend(check_superlatives(
                message,
                &request.claims,
                &rules.superlative,
            ));
        }
        if applies(rules.substantiation.scope()) {
            findings.extend(super::substantiation::check(
                message,
                &request.claims,
                &rules.substantiation,
            ));
        }
        if applies(rules.health_claim.scope()) {
            findings.extend(check_health_claims(
                message,
                &request.claims,
                &rules.health_claim,
            ));
        }
        if applies(rules.can_spam.scope()) {
            findings.extend(check_can_spam(message, &rules.can_spam));
        }
        if applies(rules.tcpa_quiet.scope()) {
            findings.extend(schedule::check_tcpa(
                request.send_at,
                request.recipient_tz,
                &rules.tcpa_quiet,
            ));
        }
        // Checked here for an audience's consent, or per recipient when the send list is drawn.
        if !request.per_recipient {
            findings.extend(recipient_findings(
                playbook,
                message.channel,
                request.send_at,
                request.consent.as_ref(),
                &request.jurisdictions,
            ));
        }
    }
    // A paid endorsement must disclose itself whether or not the poster calls it an advertisement.
    if message.endorsement && applies(rules.endorsement.scope()) {
        findings.extend(check_endorsement(
            message,
            &rules.endorsement,
            &rules.sender,
        ));
    }
    findings
}

pub(super) fn finding(
    rule_id: &str,
    severity: Severity,
    field: Field,
    span: Option<(usize, usize)>,
    message: String,
    fix: Option<Fix>,
) -> Finding {
    Finding {
        rule_id: rule_id.to_owned(),
        severity,
        field,
        span,
        message,
        fix,
    }
}

/// The text slice `[s, e)`, or empty when the span does not fit (it always does for spans made here).
fn slice(text: &str, (s, e): (usize, usize)) -> &str {
    text.get(s..e).unwrap_or_default()
}

/// KR-AD-LABEL: the text (an email's subject) begins with exactly the label.
pub fn check_ad_label(message: &Message, rule: &AdLabelRule) -> Option<Finding> {
    let (field, value) = if message.channel == MessageChannel::Email {
        (
            Field::Subject,
            message.subject.as_deref().unwrap_or_default(),
        )
    } else {
        (Field::Text, message.text.as_str())
    };
    let label = &rule.label;
    let where_ = if field == Field::Subject {
        "subject"
    } else {
        "text"
    };
    match text::label_prefix(value, label, &rule.lookalike_core, &rule.lookalike_noise) {
        LabelPrefix::Exact(_) => None,
        LabelPrefix::LookAlike(end) => {
            let wrong = slice(value, (0, end)).to_owned();
            Some(finding(
                KR_AD_LABEL,
                rule.severity,
                field,
                Some((0, end)),
                format!(
                    "the {where_} begins with `{wrong}`, which is not the advertising label; it \
                     must begin with exactly `{label}`"
                ),
                Some(Fix::PrependLabel {
                    field,
                    label: label.clone(),
                    replace: Some(wrong),
                }),
            ))
        }
        LabelPrefix::Missing => {
            let elsewhere = text::occurrences(value, label).first().copied();
            let detail = if elsewhere.is_some() {
                " (it appears later, which does not count)"
            } else {
                ""
            };
            Some(finding(
                KR_AD_LABEL,
                rule.severity,
                field,
                elsewhere,
                format!("an advertising {where_} must begin with exactly `{label}`{detail}"),
                Some(Fix::PrependLabel {
                    field,
                    label: label.clone(),
                    replace: None,
                }),
            ))
        }
    }
}

/// KR-SENDER: the business name follows the label; the contact appears unless it is the callback
/// number. For an email the label is in the subject, so the body only has to name them.
pub fn check_sender(
    message: &Message,
    rule: &SenderRule,
    label_rule: &AdLabelRule,
) -> Option<Finding> {
    let Some(name) = message
        .sender
        .business_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        return Some(finding(
            KR_SENDER,
            rule.severity,
            Field::Sender,
            None,
            "the sender's business name is not given, so the message cannot be checked for it; \
             give the name that must follow the label"
                .to_owned(),
            None,
        ));
    };
    let body = message.text.as_str();
    let is_email = message.channel == MessageChannel::Email;
    let name_ok = if is_email {
        text::contains_ci(body, name)
    } else {
        let prefix = text::label_prefix(
            body,
            &label_rule.label,
            &label_rule.lookalike_core,
            &label_rule.lookalike_noise,
        );
        let rest = body.get(prefix.end()..).unwrap_or_default();
        let rest =
            rest.trim_start_matches(|c: char| c.is_whitespace() || rule.name_brackets.contains(c));
        text::starts_with_ci(rest, name)
    };
    let callback = message.callback_number.as_deref().map(text::digits);
    let contact = message
        .sender
        .contact
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter(|c| {
            callback.as_deref() != Some(text::digits(c).as_str()) || text::digits(c).is_empty()
        });
    let missing_contact = contact.filter(|c| !fix::contains_contact(body, c));
    if name_ok && missing_contact.is_none() {
        return None;
    }
    let mut problems = Vec::new();
    if !name_ok {
        problems.push(if is_email {
            format!("the body does not name the sender `{name}`")
        } else {
            format!("the sender's name `{name}` does not follow the label")
        });
    }
    if let Some(c) = missing_contact {
        problems.push(format!(
            "the sender's contact `{c}` is missing (it differs from the callback number)"
        ));
    }
    let after = if is_email {
        String::new()
    } else {
        label_rule.label.clone()
    };
    Some(finding(
        KR_SENDER,
        rule.severity,
        Field::Text,
        None,
        problems.join("; "),
        Some(Fix::InsertSender {
            after,
            name: name.to_owned(),
            contact: missing_contact.map(str::to_owned),
            brackets: rule.name_brackets.clone(),
        }),
    ))
}

/// The last occurrence of any of `markers` in `text`.
fn last_marker(text: &str, markers: &[String]) -> Option<(usize, usize)> {
    markers
        .iter()
        .flat_map(|m| text::occurrences(text, m))
        .max_by_key(|&(s, e)| (s, std::cmp::Reverse(e)))
}

/// The phone number right after `end` (past spaces and a colon), if one is there.
fn number_after(text: &str, end: usize) -> Option<text::PhoneNumber> {
    let rest = text.get(end..)?;
    let skipped = rest.len()
        - rest
            .trim_start_matches(|c: char| c.is_whitespace() || c == ':')
            .len();
    text::phone_numbers(rest)
        .into_iter()
        .find(|p| p.start == skipped)
        .map(|p| text::PhoneNumber {
            start: end + p.start,
            end: end + p.end,
            digits: p.digits,
        })
}

/// KR-OPTOUT: a free opt-out at the end of the text.
pub fn check_opt_out(message: &Message, rule: &OptOutRule) -> Option<Finding> {
    let body = message.text.trim_end();
    let is_free = |digits: &str| {
        rule.free_number_prefixes
            .iter()
            .any(|p| digits.starts_with(p.as_str()))
    };
    let chars = body.chars().count();
    let window_start = body
        .char_indices()
        .nth(chars.saturating_sub(rule.end_window_chars))
        .map_or(0, |(i, _)| i);

    let opt_out_number = message.sender.opt_out_number.as_deref().map(str::trim);
    let fix_for = |remove: Option<String>| {
        opt_out_number
            .filter(|n| is_free(&text::digits(n)))
            .map(|n| Fix::AppendOptOut {
                line: rule.fix_line.replace("{number}", n),
                separator: rule.fix_separator.clone(),
                remove,
            })
    };
    let no_fix_reason = match opt_out_number {
        None => "; give the sender's free opt-out number to fix it".to_owned(),
        Some(n) if !is_free(&text::digits(n)) => {
            format!("; the sender's opt-out number `{n}` is not free, so no fix can be offered")
        }
        Some(_) => String::new(),
    };
    let report = |span: Option<(usize, usize)>, what: String, remove: Option<String>| {
        let fix = fix_for(remove);
        let hint = if fix.is_none() {
            no_fix_reason.as_str()
        } else {
            ""
        };
        Some(finding(
            KR_OPTOUT,
            rule.severity,
            Field::Text,
            span,
            format!("{what}{hint}"),
            fix,
        ))
    };
    let example = rule.fix_line.replace(
        "{number}",
        &format!(
            "{}-…",
            rule.free_number_prefixes.first().map_or("", String::as_str)
        ),
    );
    // The opt-out as written: the marker and the number right after it.
    let segment = |(s, e): (usize, usize)| {
        let end = number_after(body, e).map_or(e, |p| p.end);
        ((s, end), slice(body, (s, end)).to_owned())
    };

    if let Some(marker) = last_marker(body, &rule.free_markers) {
        let (span, written) = segment(marker);
        if let Some(number) = number_after(body, marker.1).filter(|p| !is_free(&p.digits)) {
            return report(
                Some(span),
                format!(
                    "the opt-out number `{}` is not free to call (free numbers start with {})",
                    slice(body, (number.start, number.end)),
                    rule.free_number_prefixes.join(", ")
                ),
                Some(written),
            );
        }
        if marker.0 < window_start {
            return report(
                Some(span),
                format!("the opt-out `{written}` must be at the end of the message"),
                Some(written),
            );
        }
        return None;
    }
    if let Some(marker) = last_marker(body, &rule.other_markers) {
        let (span, written) = segment(marker);
        return report(
            Some(span),
            format!("the opt-out `{written}` does not say it is free; write `{example}`"),
            Some(written),
        );
    }
    report(
        None,
        format!("an advertising message must end with a free opt-out (`{example}`)"),
        None,
    )
}

/// The fields a claim may hide in: the text, and an email's subject.
pub(super) fn claim_fields(message: &Message) -> Vec<(Field, &str)> {
    let mut fields = vec![(Field::Text, message.text.as_str())];
    if let Some(subject) = message.subject.as_deref() {
        fields.push((Field::Subject, subject));
    }
    fields
}

/// KR-SUPERLATIVE: every superlative needs a claims-registry entry covering it.
pub fn check_superlatives(
    message: &Message,
    claims: &[Claim],
    rule: &SuperlativeRule,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (field, value) in claim_fields(message) {
        let exceptions: Vec<(usize, usize)> = rule
            .exceptions
            .iter()
            .flat_map(|x| text::occurrences(value, x))
            .collect();
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for word in &rule.words {
            for span in text::find_words(value, word) {
                let inside = |outer: &(usize, usize)| outer.0 <= span.0 && span.1 <= outer.1;
                if exceptions.iter().any(inside) || seen.iter().any(inside) {
                    continue;
                }
                let states_a_cap = rule.quantity_words.iter().any(|q| q == word)
                    && value
                        .get(span.1..)
                        .and_then(|rest| rest.trim_start().chars().next())
                        .is_some_and(|c| c.is_ascii_digit());
                if states_a_cap || claims::substantiating(claims, value, span).is_some() {
                    continue;
                }
                seen.push(span);
                findings.push(finding(
                    KR_SUPERLATIVE,
                    rule.severity,
                    field,
                    Some(span),
                    format!(
                        "`{}` is a superlative; add a claims-registry entry (evidence id, source, \
                         period) whose wording covers it, or remove it",
                        slice(value, span)
                    ),
                    None,
                ));
            }
        }
    }
    findings
}

/// HEALTH-CLAIM: disease claims need evidence; for the listed categories they block regardless.
pub fn check_health_claims(
    message: &Message,
    claims: &[Claim],
    rule: &HealthClaimRule,
) -> Vec<Finding> {
    let category = message.product_category.as_deref().map(str::trim);
    let blocked_category = category.filter(|c| {
        rule.block_categories
            .iter()
            .any(|b| b.eq_ignore_ascii_case(c))
    });
    let mut findings = Vec::new();
    for (field, value) in claim_fields(message) {
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for word in &rule.words {
            for span in text::find_words(value, word) {
                if seen.iter().any(|o| o.0 <= span.0 && span.1 <= o.1) {
                    continue;
                }
                let claim = slice(value, span);
                let (severity, message) = match blocked_category {
                    Some(c) => (
                        Severity::Block,
                        format!(
                            "`{claim}` claims to cure, treat or prevent a disease, which a `{c}` \
                             product may not claim at all; remove it"
                        ),
                    ),
                    None if claims::substantiating(claims, value, span).is_some() => continue,
                    None => (
                        rule.severity,
                        format!(
                            "`{claim}` is a disease or efficacy claim without evidence; add a \
                             claims-registry entry covering it, or remove it"
                        ),
                    ),
                };
                seen.push(span);
                findings.push(finding(
                    HEALTH_CLAIM,
                    severity,
                    field,
                    Some(span),
                    message,
                    None,
                ));
            }
        }
    }
    findings
}

/// ENDORSEMENT: a clear disclosure at the start; unclear tags are warned about.
pub fn check_endorsement(
    message: &Message,
    rule: &EndorsementRule,
    sender_rule: &SenderRule,
) -> Vec<Finding> {
    let body = message.text.as_str();
    // The label and the brand's own name may come first and the disclosure still be "at the start".
    let mut skip = rule.allowed_before.clone();
    if let Some(name) = message.sender.business_name.as_deref().map(str::trim)
        && !name.is_empty()
    {
        skip.push(name.to_owned());
    }
    let skip_chars = sender_rule.name_brackets.clone();
    let start = fix::disclosure_start(body, &skip, &skip_chars);
    let clear: Vec<(usize, usize)> = rule
        .clear
        .iter()
        .flat_map(|tag| text::find_words(body, tag))
        .collect();
    let unclear: Vec<(usize, usize)> = rule
        .unclear
        .iter()
        .flat_map(|tag| text::find_words(body, tag))
        .collect();
    let mut findings = Vec::new();
    if !clear.iter().any(|&(s, _)| s == start) {
        let first_buried = clear.iter().min_by_key(|&&(s, _)| s).copied();
        let (span, message, tag) = match first_buried {
            Some(span) => (
                Some(span),
                format!(
                    "the disclosure `{}` is buried; a paid endorsement discloses at the start",
                    slice(body, span)
                ),
                slice(body, span).to_owned(),
            ),
            None => {
                let unclear_note = if unclear.is_empty() {
                    String::new()
                } else {
                    let tags: Vec<&str> = unclear.iter().map(|&s| slice(body, s)).collect();
                    format!(" ({} does not count)", tags.join(", "))
                };
                (
                    None,
                    format!(
                        "a paid endorsement must disclose itself at the start with one of {}{unclear_note}",
                        rule.clear.join(", ")
                    ),
                    rule.default_disclosure.clone(),
                )
            }
        };
        findings.push(finding(
            ENDORSEMENT,
            rule.severity,
            Field::Text,
            span,
            message,
            Some(Fix::MoveDisclosure {
                tag,
                skip,
                skip_chars,
            }),
        ));
    }
    for span in unclear {
        findings.push(finding(
            ENDORSEMENT,
            rule.unclear_severity,
            Field::Text,
            Some(span),
            format!(
                "`{}` does not clearly say the post is paid; use {}",
                slice(body, span),
                rule.default_disclosure
            ),
            None,
        ));
    }
    findings
}

/// The day `days` business days (Monday to Friday) after `from`.
pub fn add_business_days(from: NaiveDate, days: u32) -> Option<NaiveDate> {
    let mut date = from;
    let mut left = days;
    while left > 0 {
        date = date.succ_opt()?;
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    Some(date)
}

/// The rules a commercial message's recipient's consent decides (KR-NIGHT, KR-OPTIN,
/// KR-RECONFIRM, US-CANSPAM's opt-out deadline, EU-GDPR-CONSENT), for one recipient (or an
/// audience) whose record is `consent`. The rest of [`review`] reads only the message.
pub fn recipient_findings(
    playbook: &CompliancePlaybook,
    channel: MessageChannel,
    send_at: DateTime<FixedOffset>,
    consent: Option<&ConsentRecord>,
    jurisdictions: &[Jurisdiction],
) -> Vec<Finding> {
    let rules = &playbook.rules;
    let applies = |scope: super::playbook::Scope<'_>| scope.applies(channel, jurisdictions);
    let mut findings = Vec::new();
    if applies(rules.night.scope()) {
        findings.extend(schedule::check_night(
            channel,
            send_at,
            consent,
            &rules.night,
        ));
    }
    let opt_in = applies(rules.opt_in.scope()).then_some(&rules.opt_in);
    let reconfirm = applies(rules.reconfirm.scope()).then_some(&rules.reconfirm);
    if opt_in.is_some() || reconfirm.is_some() {
        findings.extend(consent::check_korea(
            consent, channel, send_at, opt_in, reconfirm,
        ));
    }
    if applies(rules.can_spam.scope()) {
        findings.extend(check_can_spam_opt_out(send_at, consent, &rules.can_spam));
    }
    if applies(rules.gdpr_consent.scope()) {
        findings.extend(consent::check_gdpr(
            consent,
            channel,
            send_at,
            &rules.gdpr_consent,
        ));
    }
    findings
}

/// US-CANSPAM: one finding per requirement a commercial email misses.
pub fn check_can_spam(message: &Message, rule: &CanSpamRule) -> Vec<Finding> {
    let body = message.text.as_str();
    let subject = message
        .subject
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    let mut findings = Vec::new();
    let mut report = |field: Field, span: Option<(usize, usize)>, what: String| {
        findings.push(finding(US_CANSPAM, rule.severity, field, span, what, None));
    };
    let marked = rule
        .ad_markers
        .iter()
        .any(|m| !text::find_words(body, m).is_empty() || !text::find_words(subject, m).is_empty());
    if !marked {
        report(
            Field::Text,
            None,
            format!(
                "the email does not identify itself as an advertisement (for example: {})",
                rule.ad_markers.join(", ")
            ),
        );
    }
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    match message
        .sender
        .postal_address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        None => report(
            Field::Sender,
            None,
            "the sender's postal address is not given; a commercial email must carry a valid one"
                .to_owned(),
        ),
        Some(address) if !text::contains_ci(&squash(body), &squash(address)) => report(
            Field::Text,
            None,
            format!("the body does not carry the sender's postal address `{address}`"),
        ),
        Some(_) => {}
    }
    if !rule
        .opt_out_markers
        .iter()
        .any(|m| text::contains_ci(body, m))
    {
        report(
            Field::Text,
            None,
            format!(
                "the body offers no way to opt out (for example: {})",
                rule.opt_out_markers.join(", ")
            ),
        );
    }
    if subject.is_empty() {
        report(
            Field::Subject,
            None,
            "a commercial email needs a subject".to_owned(),
        );
    } else if let Some(prefix) = rule
        .deceptive_subject_prefixes
        .iter()
        .find(|p| text::starts_with_ci(subject, p))
    {
        let start = message
            .subject
            .as_deref()
            .map_or(0, |s| s.len() - s.trim_start().len());
        report(
            Field::Subject,
            Some((start, start + prefix.len())),
            format!("the subject begins with `{prefix}`, pretending to continue a conversation"),
        );
    }
    findings
}

/// US-CANSPAM's opt-out deadline: an email to a recipient who opted out more than
/// `opt_out_business_days` business days before the send.
pub fn check_can_spam_opt_out(
    send_at: DateTime<FixedOffset>,
    consent: Option<&ConsentRecord>,
    rule: &CanSpamRule,
) -> Option<Finding> {
    let withdrawn = consent.and_then(|c| c.withdrawn_at)?;
    let deadline = add_business_days(withdrawn.date_naive(), rule.opt_out_business_days);
    let send_day = send_at.with_timezone(&Utc).date_naive();
    if deadline.is_some_and(|d| send_day <= d) {
        return None;
    }
    Some(finding(
        US_CANSPAM,
        rule.severity,
        Field::Consent,
        None,
        format!(
            "the recipient opted out at {withdrawn}; an opt-out must be honoured within {} \
             business days{}",
            rule.opt_out_business_days,
            deadline.map_or(String::new(), |d| format!(" (by {d})"))
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compliance::Jurisdiction;

    #[test]
    fn business_days_skip_weekends() {
        // 2026-11-20 is a Friday.
        let friday = NaiveDate::from_ymd_opt(2026, 11, 20);
        let due = friday.and_then(|f| add_business_days(f, 10));
        assert_eq!(due, NaiveDate::from_ymd_opt(2026, 12, 4));
    }

    fn social_post() -> ReviewRequest {
        // A social post: no KR, US or EU rule looks at it, so only NO-RULESET can block it.
        let send_at = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00+09:00")
            .unwrap_or_else(|e| panic!("{e}"));
        ReviewRequest::new(
            Message::advert(MessageChannel::Social, "Spring styles are here"),
            send_at,
            vec![Jurisdiction::Us],
        )
    }

    fn playbook() -> CompliancePlaybook {
        CompliancePlaybook::embedded().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_message_with_no_jurisdiction_is_blocked_with_the_reason() {
        let mut request = social_post();
        assert!(review(&playbook(), &request).approved);
        request.jurisdictions.clear();
        let verdict = review(&playbook(), &request);
        assert!(!verdict.approved, "{verdict:?}");
        assert_eq!(verdict.risk, 100);
        assert!(!verdict.fixable, "no fix makes up for a missing rule set");
        let found: Vec<&Finding> = verdict.findings_of(NO_RULESET).collect();
        assert_eq!(found.len(), 1, "{verdict:?}");
        assert!(found[0].message.contains("no jurisdiction"), "{found:?}");
    }

    #[test]
    fn any_region_without_a_rule_set_blocks_a_campaigns_message() {
        let request = social_post();
        let regions = |list: &[&str]| list.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        assert!(review_in_regions(&playbook(), &request, &regions(&["US", "DE"])).approved);
        let verdict = review_in_regions(&playbook(), &request, &regions(&["US", "JP"]));
        assert!(!verdict.approved, "{verdict:?}");
        let found: Vec<&Finding> = verdict.findings_of(NO_RULESET).collect();
        assert_eq!(found.len(), 1, "{verdict:?}");
        assert!(found[0].message.contains("region JP has"), "{found:?}");
        let mut none = request;
        none.jurisdictions.clear();
        let verdict = review_in_regions(&playbook(), &none, &regions(&["XX"]));
        let found: Vec<&Finding> = verdict.findings_of(NO_RULESET).collect();
        assert_eq!(found.len(), 1, "{verdict:?}");
        assert!(found[0].message.contains("region XX has"), "{found:?}");
    }
}
