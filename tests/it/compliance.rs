//! The compliance rules engine against every example in docs/compliance.md, its playbook parsing, its
//! mechanical fixes (including a property test over generated texts), `campaignd review` run as a
//! real binary, and the compliance agent on a real runtime: a campaign region without a rule set
//! blocks (and `campaignd check` refuses it), the tenant's claims registry reaches the review.

use campaignd::domain::compliance::{
    Claim, ClaimPeriod, CompliancePlaybook, ConsentRecord, Field, Fix, Jurisdiction, Message,
    MessageChannel, PlaybookError, ReviewRequest, Sender, Severity, Verdict, apply_fixes, review,
};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use crate::support;

fn playbook() -> CompliancePlaybook {
    CompliancePlaybook::embedded().expect("the embedded playbook parses")
}

fn at(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).expect("a valid RFC 3339 time")
}

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// Noon in Seoul on 2026-11-23.
const NOON_SEOUL: &str = "2026-11-23T12:00:00+09:00";

fn abc_sender() -> Sender {
    Sender {
        business_name: Some("ABC마트".to_owned()),
        contact: None,
        opt_out_number: Some("080-123-4567".to_owned()),
        postal_address: None,
    }
}

fn kr_sms(text: &str) -> Message {
    let mut message = Message::advert(MessageChannel::Sms, text);
    message.sender = abc_sender();
    message
}

fn sms_consent() -> ConsentRecord {
    let mut consent = ConsentRecord::new("customer-1", MessageChannel::Sms, "marketing");
    consent.granted_at = Some(utc(2026, 1, 10));
    consent.source = Some("web_form".to_owned());
    consent.text_hash = Some("sha256:1f2e".to_owned());
    consent
}

/// What the spring-sale campaign's brief substantiates: the sale and its discount, so the
/// examples below test their own rule, not CLAIM-SUBSTANTIATION (tested on its own).
fn brief_claims() -> Vec<Claim> {
    [
        "봄세일",
        "최대30% 할인",
        "최대 30% 할인",
        "spring sale",
        "30% off",
    ]
    .map(claim)
    .to_vec()
}

fn kr_request(message: Message, send_at: &str) -> ReviewRequest {
    let mut request = ReviewRequest::new(message, at(send_at), vec![Jurisdiction::Kr]);
    request.consent = Some(sms_consent());
    request.claims = brief_claims();
    request
}

fn rules_of(verdict: &Verdict) -> Vec<&str> {
    verdict
        .findings
        .iter()
        .map(|f| f.rule_id.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The playbook

#[test]
fn the_embedded_playbook_parses_and_reads_the_same_from_its_table() {
    let from_file = playbook();
    let document: toml::Table =
        toml::from_str(campaignd::domain::compliance::EMBEDDED_AGENT_FILE).expect("valid TOML");
    let table = document
        .get("playbook")
        .and_then(toml::Value::as_table)
        .expect("a [playbook] table");
    let from_table = CompliancePlaybook::from_table(table).expect("the table parses");
    assert_eq!(from_file, from_table);
    assert_eq!(from_file.rules.opt_in.existing_transaction_months, 6);
    assert_eq!(from_file.rules.reconfirm.interval_months, 24);
    assert!(!from_file.rules.night.email_exempt);
}

fn with_playbook_edit(from: &str, to: &str) -> Result<CompliancePlaybook, PlaybookError> {
    let text = campaignd::domain::compliance::EMBEDDED_AGENT_FILE;
    assert!(text.contains(from), "the playbook contains `{from}`");
    CompliancePlaybook::from_toml_str(&text.replacen(from, to, 1))
}

#[test]
fn a_misspelt_key_is_refused_with_its_name() {
    let err = with_playbook_edit("email_exempt = false", "email_exmept = false")
        .expect_err("an unknown key is refused")
        .to_string();
    assert!(err.contains("email_exmept"), "{err}");
}

#[test]
fn a_bad_value_is_refused_naming_the_key() {
    let err = with_playbook_edit("quiet_start = \"21:00\"", "quiet_start = \"25:00\"")
        .expect_err("25:00 is no time")
        .to_string();
    assert!(
        err.contains("25:00") && err.contains("quiet_start"),
        "{err}"
    );

    let err = with_playbook_edit("cap = 99", "cap = 100")
        .expect_err("a cap of 100 would read as blocked")
        .to_string();
    assert!(err.contains("playbook.risk.cap"), "{err}");

    let err = with_playbook_edit(
        "free_number_prefixes = [\"080\"]",
        "free_number_prefixes = [\"\"]",
    )
    .expect_err("an empty prefix makes every number free")
    .to_string();
    assert!(
        err.contains("playbook.rules.KR-OPTOUT.free_number_prefixes[0]"),
        "{err}"
    );
}

#[test]
fn a_missing_rule_or_playbook_is_an_error() {
    let err =
        CompliancePlaybook::from_toml_str("[agent]\nenabled = true\n").expect_err("no playbook");
    assert!(matches!(err, PlaybookError::Missing), "{err}");
    let err = with_playbook_edit(
        "[playbook.rules.KR-RECONFIRM]",
        "[playbook.rules.KR-RECONFIRMED]",
    )
    .expect_err("a rule table is missing and an unknown one is there")
    .to_string();
    assert!(err.contains("KR-RECONFIRMED"), "{err}");
}

#[test]
fn the_playbook_changes_behaviour_without_recompiling() {
    let exempt = with_playbook_edit("email_exempt = false", "email_exempt = true").expect("valid");
    let mut email = Message::advert(
        MessageChannel::Email,
        "ABC마트 봄세일 무료거부 080-123-4567",
    );
    email.subject = Some("(광고) 봄세일".to_owned());
    email.sender = abc_sender();
    let mut request = kr_request(email, "2026-11-23T13:30:00Z");
    if let Some(c) = request.consent.as_mut() {
        c.channel = MessageChannel::Email;
    }
    assert!(review(&playbook(), &request).has_finding("KR-NIGHT"));
    assert!(!review(&exempt, &request).has_finding("KR-NIGHT"));

    let off = with_playbook_edit(
        "[playbook.rules.KR-SUPERLATIVE]\n",
        "[playbook.rules.KR-SUPERLATIVE]\nenabled = false\n",
    )
    .expect("valid");
    let request = kr_request(
        kr_sms("(광고)ABC마트 최고의 봄세일 무료거부 0801234567"),
        NOON_SEOUL,
    );
    assert!(review(&playbook(), &request).has_finding("KR-SUPERLATIVE"));
    assert!(!review(&off, &request).has_finding("KR-SUPERLATIVE"));
}

// ---------------------------------------------------------------------------------------------
// Korea: label, sender, opt-out

#[test]
fn the_domain_example_sms_is_approved() {
    let request = kr_request(
        kr_sms("(광고)ABC마트 봄세일 최대30% 할인! 무료거부 0801234567"),
        NOON_SEOUL,
    );
    let verdict = review(&playbook(), &request);
    assert!(verdict.approved, "{verdict:#?}");
    assert_eq!(verdict.risk, 0);
    assert!(verdict.findings.is_empty());
}

#[test]
fn a_wrong_label_fails_and_the_exact_label_passes() {
    for wrong in [
        "[광고]ABC마트 봄세일",
        "(광 고)ABC마트 봄세일",
        "(광.고)ABC마트 봄세일",
        "ABC마트 봄세일",
    ] {
        let verdict = review(&playbook(), &kr_request(kr_sms(wrong), NOON_SEOUL));
        let label = verdict.findings_of("KR-AD-LABEL").next();
        assert!(
            label.is_some_and(|f| f.severity == Severity::Block),
            "{wrong}: {verdict:#?}"
        );
        assert!(!verdict.approved);
        assert_eq!(verdict.risk, 100);
    }
    let good = review(
        &playbook(),
        &kr_request(kr_sms("(광고)ABC마트 봄세일"), NOON_SEOUL),
    );
    assert!(!good.has_finding("KR-AD-LABEL"), "{good:#?}");
}

#[test]
fn the_label_finding_spans_the_wrong_label_and_the_fix_replaces_it() {
    let message = kr_sms("[광고]ABC마트 봄세일 무료거부 0801234567");
    let verdict = review(&playbook(), &kr_request(message.clone(), NOON_SEOUL));
    let finding = verdict
        .findings_of("KR-AD-LABEL")
        .next()
        .expect("a label finding");
    assert_eq!(finding.span, Some((0, "[광고]".len())));
    let fixed = apply_fixes(&message, &verdict.findings);
    assert_eq!(
        fixed.message.text,
        "(광고)ABC마트 봄세일 무료거부 0801234567"
    );
}

#[test]
fn an_advertising_email_carries_the_label_in_its_subject() {
    let mut email = Message::advert(
        MessageChannel::Email,
        "ABC마트 봄세일 무료거부 080-123-4567",
    );
    email.sender = abc_sender();
    email.subject = Some("[광고] 봄세일".to_owned());
    let mut request = kr_request(email, NOON_SEOUL);
    if let Some(c) = request.consent.as_mut() {
        c.channel = MessageChannel::Email;
    }
    let verdict = review(&playbook(), &request);
    let finding = verdict
        .findings_of("KR-AD-LABEL")
        .next()
        .expect("a label finding");
    assert_eq!(finding.field, Field::Subject);
    let fixed = apply_fixes(&request.message, &verdict.findings);
    assert_eq!(fixed.message.subject.as_deref(), Some("(광고) 봄세일"));
    request.message = fixed.message;
    assert!(review(&playbook(), &request).approved);
}

#[test]
fn the_sender_follows_the_label_with_its_contact_unless_it_is_the_callback() {
    let pb = playbook();
    let missing = review(
        &pb,
        &kr_request(kr_sms("(광고)봄세일 무료거부 0801234567"), NOON_SEOUL),
    );
    assert!(missing.has_finding("KR-SENDER"));

    let bracketed = review(
        &pb,
        &kr_request(
            kr_sms("(광고)[ABC마트] 봄세일 무료거부 0801234567"),
            NOON_SEOUL,
        ),
    );
    assert!(!bracketed.has_finding("KR-SENDER"), "{bracketed:#?}");

    let mut message = kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567");
    message.sender.contact = Some("02-555-1234".to_owned());
    let no_contact = review(&pb, &kr_request(message.clone(), NOON_SEOUL));
    assert!(no_contact.has_finding("KR-SENDER"));
    message.callback_number = Some("0255512 34".to_owned());
    let callback = review(&pb, &kr_request(message, NOON_SEOUL));
    assert!(!callback.has_finding("KR-SENDER"), "{callback:#?}");

    let mut unknown = kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567");
    unknown.sender.business_name = None;
    let verdict = review(&pb, &kr_request(unknown, NOON_SEOUL));
    let finding = verdict
        .findings_of("KR-SENDER")
        .next()
        .expect("fails closed");
    assert!(finding.fix.is_none() && finding.is_blocking());
}

#[test]
fn the_opt_out_is_free_and_at_the_end() {
    let pb = playbook();
    let check =
        |text: &str| review(&pb, &kr_request(kr_sms(text), NOON_SEOUL)).has_finding("KR-OPTOUT");
    assert!(!check("(광고)ABC마트 봄세일 무료거부 080-123-4567"));
    assert!(!check("(광고)ABC마트 봄세일 무료수신거부"));
    assert!(
        check("(광고)ABC마트 봄세일 무료거부 02-123-4567"),
        "a paid number fails"
    );
    assert!(
        check("(광고)ABC마트 봄세일 수신거부 080-123-4567"),
        "not said to be free"
    );
    assert!(check("(광고)ABC마트 봄세일"), "missing");
    assert!(
        check(
            "(광고)ABC마트 무료거부 0801234567 봄세일 최대30% 할인! 오늘 하루만, 전 품목 특가로 모십니다"
        ),
        "not at the end"
    );
}

#[test]
fn a_paid_opt_out_is_replaced_by_the_free_one() {
    let message = kr_sms("(광고)ABC마트 봄세일 수신거부 02-123-4567");
    let verdict = review(&playbook(), &kr_request(message.clone(), NOON_SEOUL));
    let fixed = apply_fixes(&message, &verdict.findings);
    assert_eq!(
        fixed.message.text,
        "(광고)ABC마트 봄세일 무료거부 080-123-4567"
    );
}

// ---------------------------------------------------------------------------------------------
// Korea: night, opt-in, re-confirmation

#[test]
fn a_send_at_2230_seoul_needs_night_consent() {
    let message = kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567");
    // 2026-11-23T13:30Z is 22:30 in Seoul.
    let request = kr_request(message, "2026-11-23T13:30:00Z");
    let verdict = review(&playbook(), &request);
    let night = verdict
        .findings_of("KR-NIGHT")
        .next()
        .expect("a night finding");
    assert!(night.message.contains("22:30"), "{}", night.message);
    assert_eq!(
        night.fix,
        Some(Fix::Reschedule {
            to: at("2026-11-23T23:00:00Z")
        })
    );
    assert!(!verdict.approved);

    let fixed = apply_fixes(&request.message, &verdict.findings);
    assert_eq!(fixed.send_at, Some(at("2026-11-23T23:00:00+00:00")));
    let mut later = request.clone();
    later.send_at = fixed.send_at.expect("rescheduled");
    assert!(review(&playbook(), &later).approved);

    let mut consented = request;
    if let Some(c) = consented.consent.as_mut() {
        c.night_consent = true;
    }
    assert!(review(&playbook(), &consented).approved);
}

#[test]
fn the_night_window_edges() {
    let message = kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567");
    let night =
        |t: &str| review(&playbook(), &kr_request(message.clone(), t)).has_finding("KR-NIGHT");
    assert!(night("2026-11-23T21:00:00+09:00"));
    assert!(night("2026-11-24T07:59:59+09:00"));
    assert!(!night("2026-11-24T08:00:00+09:00"));
    assert!(!night("2026-11-23T20:59:59+09:00"));
}

#[test]
fn a_review_per_recipient_leaves_consent_to_the_send_list_but_checks_the_message() {
    let pb = playbook();
    let message = kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567");
    let mut request = kr_request(message, "2026-11-23T22:00:00+09:00");
    request.consent = None;
    let audience = review(&pb, &request);
    assert!(
        audience.has_finding("KR-OPTIN") && audience.has_finding("KR-NIGHT"),
        "{audience:#?}"
    );
    request.per_recipient = true;
    let verdict = review(&pb, &request);
    assert!(verdict.approved, "{verdict:#?}");
    for rule in ["KR-OPTIN", "KR-NIGHT", "KR-RECONFIRM"] {
        assert!(!verdict.has_finding(rule), "{rule}");
    }
    request.message = kr_sms("ABC마트 봄세일 무료거부 0801234567");
    assert!(
        review(&pb, &request).has_finding("KR-AD-LABEL"),
        "the message's own rules still run"
    );
}

#[test]
fn opt_in_consent_is_required_and_a_withdrawal_always_wins() {
    let pb = playbook();
    let message = kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567");
    let mut request = kr_request(message, NOON_SEOUL);
    assert!(review(&pb, &request).approved);

    request.consent = None;
    assert!(review(&pb, &request).has_finding("KR-OPTIN"));

    let mut withdrawn = sms_consent();
    withdrawn.withdrawn_at = Some(utc(2026, 11, 1));
    withdrawn.existing_transaction_at = Some(utc(2026, 10, 1));
    request.consent = Some(withdrawn);
    let verdict = review(&pb, &request);
    assert!(
        verdict.has_finding("KR-OPTIN") && !verdict.approved,
        "{verdict:#?}"
    );

    // A withdrawal after the send time does not reach back.
    let mut later = sms_consent();
    later.withdrawn_at = Some(utc(2026, 12, 1));
    request.consent = Some(later);
    assert!(review(&pb, &request).approved);
}

#[test]
fn os_push_permission_is_not_advertising_consent() {
    let mut push = Message::advert(MessageChannel::Push, "(광고)ABC마트 봄세일 무료수신거부");
    push.sender = abc_sender();
    let mut request = ReviewRequest::new(push, at(NOON_SEOUL), vec![Jurisdiction::Kr]);
    request.claims = brief_claims();
    let mut consent = ConsentRecord::new("device-9", MessageChannel::Push, "marketing");
    consent.granted_at = Some(utc(2026, 3, 1));
    consent.source = Some("os_push_permission".to_owned());
    request.consent = Some(consent.clone());
    let verdict = review(&playbook(), &request);
    let finding = verdict.findings_of("KR-OPTIN").next().expect("not consent");
    assert!(finding.message.contains("os_push_permission"));

    consent.source = Some("in_app_opt_in".to_owned());
    request.consent = Some(consent);
    assert!(review(&playbook(), &request).approved);
}

#[test]
fn an_existing_transaction_within_six_months_stands_in_for_consent() {
    let pb = playbook();
    let mut request = kr_request(
        kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567"),
        NOON_SEOUL,
    );
    let mut record = ConsentRecord::new("customer-2", MessageChannel::Sms, "marketing");
    record.existing_transaction_at = Some(utc(2026, 6, 1));
    request.consent = Some(record.clone());
    assert!(review(&pb, &request).approved);

    record.existing_transaction_at = Some(utc(2026, 5, 22));
    request.consent = Some(record);
    let verdict = review(&pb, &request);
    let finding = verdict.findings_of("KR-OPTIN").next().expect("too old");
    assert!(finding.message.contains("6 months"), "{}", finding.message);
}

#[test]
fn consent_on_another_channel_does_not_count_but_texts_share_one() {
    let pb = playbook();
    let mut request = kr_request(
        kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567"),
        NOON_SEOUL,
    );
    request.message.channel = MessageChannel::Lms;
    assert!(review(&pb, &request).approved);
    if let Some(c) = request.consent.as_mut() {
        c.channel = MessageChannel::Email;
    }
    assert!(review(&pb, &request).has_finding("KR-OPTIN"));
}

#[test]
fn consent_older_than_two_years_blocks_unless_reconfirmed() {
    let pb = playbook();
    let mut request = kr_request(
        kr_sms("(광고)ABC마트 봄세일 무료거부 0801234567"),
        NOON_SEOUL,
    );
    let mut old = sms_consent();
    old.granted_at = Some(utc(2024, 11, 22));
    request.consent = Some(old.clone());
    let verdict = review(&pb, &request);
    assert!(
        verdict.has_finding("KR-RECONFIRM") && !verdict.approved,
        "{verdict:#?}"
    );

    old.last_reconfirmed_at = Some(utc(2025, 6, 1));
    request.consent = Some(old.clone());
    assert!(review(&pb, &request).approved);

    old.last_reconfirmed_at = None;
    old.granted_at = Some(utc(2024, 11, 24));
    request.consent = Some(old);
    assert!(!review(&pb, &request).has_finding("KR-RECONFIRM"));
}

// ---------------------------------------------------------------------------------------------
// Claims and endorsements

fn claim(wording: &str) -> Claim {
    Claim {
        claim: wording.to_owned(),
        evidence_id: "EV-2025-14".to_owned(),
        source: "Korea Consumer Survey".to_owned(),
        period: ClaimPeriod {
            from: NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
            until: NaiveDate::from_ymd_opt(2025, 12, 31).expect("date"),
        },
    }
}

#[test]
fn superlatives_need_a_claims_registry_entry() {
    let pb = playbook();
    let mut request = kr_request(
        kr_sms("(광고)ABC마트 판매량 1위 운동화 무료거부 0801234567"),
        NOON_SEOUL,
    );
    let verdict = review(&pb, &request);
    let finding = verdict
        .findings_of("KR-SUPERLATIVE")
        .next()
        .expect("a superlative");
    assert_eq!(finding.severity, Severity::High);
    let text = &request.message.text;
    let start = text.find("1위").expect("in the text");
    assert_eq!(finding.span, Some((start, start + "1위".len())));
    // Unsubstantiated, it is a claim nothing proves as well: that blocks.
    let unproven = verdict
        .findings_of("CLAIM-SUBSTANTIATION")
        .next()
        .expect("an unsubstantiated claim");
    assert_eq!(unproven.span, finding.span);
    assert!(!verdict.approved && verdict.risk == 100, "{verdict:#?}");

    request.claims = vec![claim("판매량 1위")];
    let verdict = review(&pb, &request);
    assert!(
        verdict.approved && verdict.findings.is_empty(),
        "{verdict:#?}"
    );

    let mut incomplete = claim("판매량 1위");
    incomplete.source.clear();
    request.claims = vec![incomplete];
    assert!(review(&pb, &request).has_finding("KR-SUPERLATIVE"));

    for word in ["최고", "최초", "유일", "No.1", "가장"] {
        let text = format!("(광고)ABC마트 {word} 운동화 무료거부 0801234567");
        let verdict = review(&pb, &kr_request(kr_sms(&text), NOON_SEOUL));
        assert!(verdict.has_finding("KR-SUPERLATIVE"), "{word}");
    }
    let cap = review(
        &pb,
        &kr_request(
            kr_sms("(광고)ABC마트 최대 30% 할인 무료거부 0801234567"),
            NOON_SEOUL,
        ),
    );
    assert!(
        !cap.has_finding("KR-SUPERLATIVE"),
        "`최대 30%` states a cap"
    );
}

#[test]
fn health_claims_are_high_and_block_for_health_food() {
    let pb = playbook();
    let mut request = kr_request(
        kr_sms("(광고)ABC마트 홍삼 면역력 감기 예방 무료거부 0801234567"),
        NOON_SEOUL,
    );
    let verdict = review(&pb, &request);
    let finding = verdict
        .findings_of("HEALTH-CLAIM")
        .next()
        .expect("a health claim");
    assert_eq!(finding.severity, Severity::High);

    request.message.product_category = Some("health_food".to_owned());
    let verdict = review(&pb, &request);
    assert!(verdict.findings_of("HEALTH-CLAIM").all(|f| f.is_blocking()));
    assert!(!verdict.approved && verdict.risk == 100);

    let mut us = Message::advert(
        MessageChannel::Social,
        "Guaranteed to cure your cold, risk-free",
    );
    us.product_category = Some("general".to_owned());
    let verdict = review(
        &pb,
        &ReviewRequest::new(us, at(NOON_SEOUL), vec![Jurisdiction::Us]),
    );
    assert_eq!(
        verdict.findings_of("HEALTH-CLAIM").count(),
        3,
        "{verdict:#?}"
    );
    assert!(
        !verdict.approved,
        "three high findings exceed the approval limit"
    );
    assert_eq!(verdict.risk, 90);
}

fn post(text: &str) -> Message {
    let mut message = Message::advert(MessageChannel::Social, text);
    message.commercial = false;
    message.endorsement = true;
    message
}

fn review_post(text: &str) -> Verdict {
    review(
        &playbook(),
        &ReviewRequest::new(post(text), at(NOON_SEOUL), vec![Jurisdiction::Us]),
    )
}

#[test]
fn an_endorsement_discloses_at_the_start() {
    let buried = review_post("Love it #tbt #ootd #ad");
    assert!(!buried.approved);
    let finding = buried.findings_of("ENDORSEMENT").next().expect("buried");
    assert_eq!(finding.span, Some((19, 22)));

    assert!(review_post("#ad Love it #tbt #ootd").approved);
    assert!(review_post("#광고 너무 좋아요").approved);
    assert!(review_post("유료광고 포함 너무 좋아요").approved);

    let fixed = apply_fixes(&post("Love it #tbt #ootd #ad"), &buried.findings);
    assert_eq!(fixed.message.text, "#ad Love it #tbt #ootd");
}

#[test]
fn unclear_tags_do_not_disclose() {
    for tag in ["#sp", "#spon", "#partner"] {
        let verdict = review_post(&format!("{tag} Love it"));
        assert!(!verdict.approved, "{tag} alone is no disclosure");
        let fixed = apply_fixes(&post(&format!("{tag} Love it")), &verdict.findings);
        let again = review_post(&fixed.message.text);
        assert!(again.approved, "{}: {again:#?}", fixed.message.text);
        assert_eq!(again.risk, 15, "the unclear tag still warns");
    }
    assert!(
        review_post("#adventure time").has_finding("ENDORSEMENT"),
        "#adventure is not #ad"
    );
}

// ---------------------------------------------------------------------------------------------
// United States and European Union

fn us_email(text: &str, subject: &str) -> ReviewRequest {
    let mut email = Message::advert(MessageChannel::Email, text);
    email.subject = Some(subject.to_owned());
    email.sender = Sender {
        business_name: Some("ABC Mart".to_owned()),
        contact: None,
        opt_out_number: None,
        postal_address: Some("1 Main St, Springfield, IL 62701".to_owned()),
    };
    let mut request = ReviewRequest::new(email, at("2026-11-23T15:00:00Z"), vec![Jurisdiction::Us]);
    request.claims = brief_claims();
    request
}

#[test]
fn can_spam_requires_address_identification_opt_out_and_an_honest_subject() {
    let pb = playbook();
    let good = us_email(
        "Advertisement. Spring sale at ABC Mart.\nABC Mart, 1 Main St,\n Springfield, IL 62701\nUnsubscribe: https://abc.example/u",
        "Spring sale: 30% off",
    );
    let verdict = review(&pb, &good);
    assert!(verdict.approved, "{verdict:#?}");

    let bad = us_email("Spring sale at ABC Mart.", "RE: your order");
    let verdict = review(&pb, &bad);
    assert_eq!(verdict.findings_of("US-CANSPAM").count(), 4, "{verdict:#?}");
    let subject = verdict
        .findings_of("US-CANSPAM")
        .find(|f| f.field == Field::Subject)
        .expect("a deceptive subject");
    assert_eq!(subject.span, Some((0, 3)));

    // Opt-out on Friday 2026-11-06: honoured by Friday 2026-11-20, ten business days later.
    let mut opted_out = good.clone();
    let mut record = ConsentRecord::new("c-3", MessageChannel::Email, "marketing");
    record.withdrawn_at = Some(utc(2026, 11, 6));
    opted_out.consent = Some(record);
    opted_out.send_at = at("2026-11-20T15:00:00Z");
    assert!(!review(&pb, &opted_out).has_finding("US-CANSPAM"));
    opted_out.send_at = at("2026-11-23T15:00:00Z");
    assert!(review(&pb, &opted_out).has_finding("US-CANSPAM"));
}

#[test]
fn tcpa_quiet_hours_are_in_the_recipients_local_time() {
    let pb = playbook();
    let sms = Message::advert(
        MessageChannel::Sms,
        "ABC Mart: spring sale. Reply STOP to opt out",
    );
    // 02:30Z on 2026-11-24 is 21:30 on the 23rd in New York.
    let mut request = ReviewRequest::new(sms, at("2026-11-24T02:30:00Z"), vec![Jurisdiction::Us]);
    request.claims = brief_claims();
    let unknown = review(&pb, &request);
    let finding = unknown
        .findings_of("US-TCPA-QUIET")
        .next()
        .expect("no time zone");
    assert_eq!(finding.field, Field::Recipient);

    request.recipient_tz = Some(chrono_tz::America::New_York);
    let verdict = review(&pb, &request);
    let finding = verdict
        .findings_of("US-TCPA-QUIET")
        .next()
        .expect("21:30 is too late");
    assert!(finding.message.contains("21:30"));
    assert_eq!(
        finding.fix,
        Some(Fix::Reschedule {
            to: at("2026-11-24T13:00:00Z")
        })
    );

    request.recipient_tz = Some(chrono_tz::America::Los_Angeles);
    assert!(review(&pb, &request).approved, "18:30 in Los Angeles");
}

#[test]
fn gdpr_consent_is_specific_recorded_and_not_pre_ticked() {
    let pb = playbook();
    let mut email = Message::advert(MessageChannel::Email, "Spring sale");
    email.subject = Some("Spring sale".to_owned());
    let mut request = ReviewRequest::new(email, at(NOON_SEOUL), vec![Jurisdiction::Eu]);
    request.claims = brief_claims();
    assert!(review(&pb, &request).has_finding("EU-GDPR-CONSENT"));

    let mut consent = sms_consent();
    consent.channel = MessageChannel::Email;
    request.consent = Some(consent.clone());
    assert!(review(&pb, &request).approved);

    consent.source = Some("pre_ticked".to_owned());
    consent.text_hash = None;
    request.consent = Some(consent.clone());
    let verdict = review(&pb, &request);
    assert_eq!(
        verdict.findings_of("EU-GDPR-CONSENT").count(),
        2,
        "{verdict:#?}"
    );

    consent.source = Some("web_form".to_owned());
    consent.text_hash = Some("sha256:1f2e".to_owned());
    consent.withdrawn_at = Some(utc(2026, 2, 1));
    request.consent = Some(consent);
    assert!(
        !review(&pb, &request).approved,
        "an objection stops direct marketing"
    );
}

#[test]
fn rules_stay_inside_their_jurisdictions_and_skip_non_commercial_messages() {
    let pb = playbook();
    let text = "Your order has shipped";
    let mut notice = Message::advert(MessageChannel::Sms, text);
    notice.commercial = false;
    let request = ReviewRequest::new(
        notice,
        at("2026-11-23T13:30:00Z"),
        vec![Jurisdiction::Kr, Jurisdiction::Us, Jurisdiction::Eu],
    );
    assert!(review(&pb, &request).findings.is_empty());

    let us_only = ReviewRequest::new(kr_sms("봄세일"), at(NOON_SEOUL), vec![Jurisdiction::Us]);
    let verdict = review(&pb, &us_only);
    assert!(
        rules_of(&verdict).iter().all(|r| !r.starts_with("KR-")),
        "{verdict:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Fixes

#[test]
fn a_blocked_sms_passes_once_its_fixes_are_applied() {
    let pb = playbook();
    let request = kr_request(
        kr_sms("[광고] 봄세일 최대30% 할인!"),
        "2026-11-23T13:30:00Z",
    );
    let verdict = review(&pb, &request);
    assert!(!verdict.approved && verdict.fixable, "{verdict:#?}");
    for rule in ["KR-AD-LABEL", "KR-SENDER", "KR-OPTOUT", "KR-NIGHT"] {
        assert!(verdict.has_finding(rule), "{rule}");
    }
    let fixed = apply_fixes(&request.message, &verdict.findings);
    assert_eq!(
        fixed.message.text,
        "(광고) ABC마트 봄세일 최대30% 할인! 무료거부 080-123-4567"
    );
    let mut again = request.clone();
    again.message = fixed.message;
    again.send_at = fixed.send_at.expect("rescheduled");
    let verdict = review(&pb, &again);
    assert!(verdict.approved, "{verdict:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the text and hour, a Korean advertising SMS whose blocking findings all have
    /// fixes has no blocking finding once they are applied, and applying them again changes nothing.
    #[test]
    fn fixes_clear_every_fixable_block(
        text in "[가-힣a-zA-Z0-9 !%#.,()\\[\\]]{0,60}",
        lead in prop::sample::select(vec!["", "[광고]", "(광 고) ", "(광.고)", "광고 ", " (광고)", "(광고)"]),
        hour in 0u32..24,
        minute in 0u32..60,
    ) {
        let pb = playbook();
        let send_at = format!("2026-11-23T{hour:02}:{minute:02}:00+09:00");
        let request = kr_request(kr_sms(&format!("{lead}{text}")), &send_at);
        let verdict = review(&pb, &request);
        prop_assume!(verdict.fixable);
        let fixed = apply_fixes(&request.message, &verdict.findings);
        let mut again = request.clone();
        again.message = fixed.message.clone();
        if let Some(later) = fixed.send_at {
            again.send_at = later;
        }
        let after = review(&pb, &again);
        prop_assert!(
            !after.findings.iter().any(|f| f.is_blocking()),
            "{:?} -> {:?}: {:#?}", request.message.text, again.message.text, after.findings
        );
        let twice = apply_fixes(&again.message, &verdict.findings);
        prop_assert_eq!(twice.message.text, again.message.text);
    }

    /// No input makes the engine panic, and the risk is 100 exactly when something blocks.
    #[test]
    fn any_text_gets_a_consistent_verdict(
        text in "\\PC{0,80}",
        subject in proptest::option::of("\\PC{0,30}"),
        channel in prop::sample::select(MessageChannel::ALL.to_vec()),
        endorsement in any::<bool>(),
    ) {
        let mut message = kr_sms(&text);
        message.channel = channel;
        message.subject = subject;
        message.endorsement = endorsement;
        let request = ReviewRequest {
            jurisdictions: vec![Jurisdiction::Kr, Jurisdiction::Us, Jurisdiction::Eu],
            ..kr_request(message, NOON_SEOUL)
        };
        let verdict = review(&playbook(), &request);
        let blocked = verdict.findings.iter().any(|f| f.is_blocking());
        prop_assert_eq!(verdict.risk == 100, blocked);
        prop_assert!(!(verdict.approved && blocked));
        for f in &verdict.findings {
            if let Some((s, e)) = f.span {
                let field = if f.field == Field::Subject {
                    request.message.subject.as_deref().unwrap_or_default()
                } else {
                    request.message.text.as_str()
                };
                prop_assert!(field.get(s..e).is_some(), "{:?} is not a span of {:?}", f.span, field);
            }
        }
        let _ = apply_fixes(&request.message, &verdict.findings);
    }
}

// ---------------------------------------------------------------------------------------------
// `campaignd review`, the real binary

/// `campaignd review ARGS`, with `stdin` (or nothing) on its standard input.
fn campaignd(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let out = support::run(
        support::campaignd().arg("review").args(args),
        Some(stdin.unwrap_or_default()),
    );
    (out.code.unwrap_or(-1), out.stdout, out.stderr)
}

const APPROVED_ARGS: &[&str] = &[
    "--jurisdiction",
    "KR",
    "--channel",
    "sms",
    "--at",
    "2026-11-23T12:00:00+09:00",
    "--sender",
    "ABC마트",
    "--opt-out-number",
    "080-123-4567",
    "--consent-granted",
    "2026-01-10",
    "--consent-source",
    "web_form",
];

/// The shipped student campaign, whose brief claims `전 구매 10% 할인` and `가입비 무료`.
const STUDENT_BRIEF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/campaigns/kr_students_signups.toml"
);

#[test]
fn review_approves_with_exit_0_and_prints_the_verdict() {
    let mut args = APPROVED_ARGS.to_vec();
    args.extend([
        "--text",
        "(광고)ABC마트 학생 멤버십 전 구매 10% 할인! 무료거부 0801234567",
        "--brief",
        STUDENT_BRIEF,
    ]);
    let (code, stdout, stderr) = campaignd(&args, None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(verdict["approved"], true);
    assert_eq!(verdict["risk"], 0);
}

#[test]
fn review_blocks_a_claim_the_brief_does_not_make() {
    let mut args = APPROVED_ARGS.to_vec();
    args.extend([
        "--text",
        "(광고)ABC마트 학생 멤버십 전 구매 20% 할인! 무료거부 0801234567",
        "--brief",
        STUDENT_BRIEF,
    ]);
    let (code, stdout, stderr) = campaignd(&args, None);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let findings = verdict["findings"].as_array().expect("findings");
    let messages: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule_id"] == "CLAIM-SUBSTANTIATION")
        .filter_map(|f| f["message"].as_str())
        .collect();
    assert_eq!(messages.len(), 2, "`20%` and `할인`: {messages:?}");
    assert!(
        messages[0].starts_with("`20%` states a discount"),
        "{messages:?}"
    );
    // Without the brief, nothing substantiates even the brief's own discount.
    let mut args = APPROVED_ARGS.to_vec();
    args.extend([
        "--text",
        "(광고)ABC마트 학생 멤버십 전 구매 10% 할인! 무료거부 0801234567",
    ]);
    let (code, stdout, _) = campaignd(&args, None);
    assert_eq!(code, 1, "{stdout}");
    // A brief that is not a valid campaign file is bad input.
    args.extend(["--brief", "Cargo.toml"]);
    let (code, _, stderr) = campaignd(&args, None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--brief"), "{stderr}");
}

#[test]
fn review_checks_the_formats_limits_as_content_does() {
    // 108 CP949 bytes: too long for an SMS, so it goes as an LMS, and says so.
    let text = format!(
        "(광고)ABC마트 새 학기 멤버십 안내!{} 무료거부 0801234567",
        " 주말까지".repeat(6)
    );
    let mut args = APPROVED_ARGS.to_vec();
    args.extend(["--text", &text]);
    let (code, stdout, stderr) = campaignd(&args, None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(verdict["format"]["sent_as"], "kr_lms");
    let note = verdict["format"]["note"].as_str().expect("a note");
    assert!(
        note.starts_with("kr_sms text is 108 bytes")
            && note.ends_with("over the limit of 90: sent as kr_lms"),
        "{note}"
    );
    // Asked as an SMS and nothing else, it is blocked.
    args.extend(["--format", "kr_sms"]);
    let (code, stdout, _) = campaignd(&args, None);
    assert_eq!(code, 1, "{stdout}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(verdict["approved"], false);
    assert_eq!(verdict["findings"][0]["rule_id"], "FORMAT-LIMIT");

    // A 282-weighted X post, reviewed as a post on X.
    let post = format!("Spring wear at Acme: {} #ad", "x".repeat(257));
    let (code, stdout, stderr) = campaignd(
        &[
            "--jurisdiction",
            "US",
            "--channel",
            "social",
            "--format",
            "x",
            "--at",
            "2026-11-23T12:00:00-05:00",
            "--sender",
            "Acme",
            "--text",
            &post,
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let finding = &verdict["findings"][0];
    assert_eq!(finding["rule_id"], "FORMAT-LIMIT");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .starts_with("x text is 282 weighted characters, over the limit of 280"),
        "{finding}"
    );
    assert_eq!(verdict["format"]["checked"][0]["measures"][0]["value"], 282);
    let (code, _, stderr) = campaignd(
        &[
            "--jurisdiction",
            "US",
            "--channel",
            "social",
            "--format",
            "tv",
            "--at",
            "2026-11-23T12:00:00-05:00",
            "--text",
            "hi",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("not a format; one of kr_sms, kr_lms"),
        "{stderr}"
    );
}

#[test]
fn review_treats_a_message_as_commercial_unless_told_otherwise() {
    // No advertising label: an advert is blocked for it, a notice is not.
    let mut args = APPROVED_ARGS.to_vec();
    args.extend(["--text", "ABC마트 주문하신 상품이 발송되었습니다"]);
    let (code, stdout, _) = campaignd(&args, None);
    assert_eq!(code, 1, "{stdout}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let rules: Vec<&str> = verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(rules.contains(&"KR-AD-LABEL"), "{rules:?}");
    args.push("--non-commercial");
    let (code, stdout, stderr) = campaignd(&args, None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The old flag still parses, and cannot be combined with its opposite.
    args.push("--commercial");
    let (code, _, stderr) = campaignd(&args, None);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn review_reads_the_claims_registry_from_a_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("claims.json");
    std::fs::write(
        &path,
        r#"[{"claim": "판매량 1위", "evidence_id": "EV-7", "source": "Survey Co.", "period": "2025-01-01..2025-12-31"}]"#,
    )
    .expect("written");
    let claims = path.to_str().expect("a UTF-8 path");
    let mut args = APPROVED_ARGS.to_vec();
    args.extend([
        "--text",
        "(광고)ABC마트 판매량 1위 운동화 무료거부 0801234567",
    ]);
    let (_, without, _) = campaignd(&args, None);
    let without: serde_json::Value = serde_json::from_str(&without).expect("JSON");
    assert_eq!(
        without["risk"], 100,
        "an unsubstantiated superlative blocks"
    );
    args.extend(["--claims", claims]);
    let (code, with, stderr) = campaignd(&args, None);
    assert_eq!(code, 0, "{with}{stderr}");
    let with: serde_json::Value = serde_json::from_str(&with).expect("JSON");
    assert_eq!(with["risk"], 0);

    std::fs::write(
        &path,
        r#"[{"claim": "1위", "evidence_id": "EV-7", "source": "S", "period": "2025"}]"#,
    )
    .expect("written");
    let (code, _, stderr) = campaignd(&args, None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--claims") && stderr.contains("period"),
        "{stderr}"
    );
}

#[test]
fn review_blocks_with_exit_1_reading_the_text_from_stdin() {
    let mut args = APPROVED_ARGS.to_vec();
    args.retain(|a| !a.starts_with("2026-11-23T12"));
    args.retain(|a| *a != "--at");
    args.extend(["--at", "2026-11-23T13:30:00Z"]);
    let (code, stdout, stderr) = campaignd(&args, Some("[광고]ABC마트 봄세일\n"));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(verdict["approved"], false);
    assert_eq!(verdict["risk"], 100);
    let rules: Vec<&str> = verdict["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(
        rules.contains(&"KR-AD-LABEL") && rules.contains(&"KR-NIGHT"),
        "{rules:?}"
    );
}

#[test]
fn review_refuses_bad_input_with_exit_2_and_the_reason() {
    let mut args = APPROVED_ARGS.to_vec();
    args.retain(|a| !a.starts_with("2026-11-23T12"));
    args.retain(|a| *a != "--at");
    args.extend(["--at", "2026-11-23 25:00", "--text", "hi"]);
    let (code, _, stderr) = campaignd(&args, None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--at") && stderr.contains("2026-11-23 25:00"),
        "{stderr}"
    );

    let mut args = APPROVED_ARGS.to_vec();
    args.extend(["--text", "hi", "--recipient-tz", "Mars/Olympus"]);
    let (code, _, stderr) = campaignd(&args, None);
    assert_eq!(code, 2);
    assert!(stderr.contains("--recipient-tz"), "{stderr}");

    let mut args = APPROVED_ARGS.to_vec();
    args.extend(["--text", "hi", "--playbook", "/nonexistent/compliance.toml"]);
    let (code, _, stderr) = campaignd(&args, None);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/compliance.toml"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The compliance agent on a real runtime: the campaign's regions and its tenant's claims registry

mod agent {
    use std::sync::Arc;
    use std::time::Duration;

    use campaignd::agents::compliance::{Compliance, ReviewItem, ReviewVariants, Reviews};
    use campaignd::domain::campaign::CampaignGoal;
    use campaignd::domain::compliance::{Message, MessageChannel, Sender};
    use campaignd::protocol::Origin;
    use campaignd::runtime::{Agent, Runtime, Services};
    use campaignd::settings::EnvOverrides;

    use crate::support::{self, agent_specs, kr_goal, load_settings, scratch_kb, write};

    /// The real compliance agent with `tenants/acme.toml` (the shipped file plus a registered
    /// `판매량 1위` claim) and the shipped `globex.toml` beside the campaigns folder.
    async fn compliance(
        dir: &std::path::Path,
    ) -> (Runtime, campaignd::kb::KnowledgeBase, tempfile::TempDir) {
        let shipped = |name: &str| {
            std::fs::read_to_string(support::manifest_dir().join("config/tenants").join(name))
                .expect("a shipped tenant file")
        };
        let acme = shipped("acme.toml")
            + "\n[[guideline.claims]]\nclaim = \"판매량 1위\"\nevidence_id = \"SURVEY-2026-03\"\nsource = \"Korea Consumer Survey\"\nperiod = \"2026-01-01..2026-12-31\"\n";
        write(dir, "config/tenants/acme.toml", &acme);
        write(dir, "config/tenants/globex.toml", &shipped("globex.toml"));
        let config = write(
            dir,
            "config/campaignd.toml",
            "[daemon]\ncampaigns_dir = \"config/campaigns\"\n",
        );
        std::fs::create_dir_all(dir.join("config/campaigns")).expect("campaigns folder");
        let mut settings = load_settings(dir, Some(&config), EnvOverrides::new());
        // Resolved against the test's folder, as the daemon resolves it against its own.
        settings.config.daemon.campaigns_dir = dir.join("config/campaigns");
        let (kb_dir, kb) = scratch_kb();
        let services = Services::new().with(kb.clone()).with(Arc::new(settings));
        let runtime = Runtime::builder(campaignd::agents::registry().runtime().clone())
            .agents(
                agent_specs()
                    .into_iter()
                    .filter(|s| s.name.as_str() == Compliance::NAME),
            )
            .services(services)
            .start()
            .await
            .expect("compliance starts");
        (runtime, kb, kb_dir)
    }

    fn sms(text: &str) -> Message {
        let mut message = Message::advert(MessageChannel::Sms, text);
        message.sender = Sender {
            business_name: Some("ABC마트".to_owned()),
            contact: None,
            opt_out_number: Some("0801234567".to_owned()),
            postal_address: None,
        };
        message
    }

    async fn review(runtime: &Runtime, goal: &CampaignGoal, text: &str) -> Reviews {
        review_message(runtime, goal, sms(text)).await
    }

    async fn review_message(runtime: &Runtime, goal: &CampaignGoal, message: Message) -> Reviews {
        let send_at =
            chrono::DateTime::parse_from_rfc3339("2026-09-01T12:00:00+09:00").expect("a time");
        runtime
            .client(Origin::Runtime)
            .with_tenant(goal.tenant.clone())
            .with_campaign(goal.id.clone())
            .request(
                Compliance::NAME,
                ReviewVariants {
                    goal: goal.clone(),
                    items: vec![ReviewItem {
                        variant: "v1".to_owned(),
                        segment: "university_students".to_owned(),
                        message,
                        send_at,
                    }],
                    round: 0,
                    batch: String::new(),
                },
            )
            .await
            .expect("compliance answers")
    }

    const SUPERLATIVE: &str = "(광고)ABC마트 판매량 1위 운동화 무료거부 0801234567";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tenants_claims_registry_substantiates_its_own_campaigns_superlatives_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (runtime, _kb, _kb_dir) = compliance(dir.path()).await;
        let acme = kr_goal("claims_acme", 100, 30);
        let verdict = &review(&runtime, &acme, SUPERLATIVE).await.verdicts[0].verdict;
        assert!(
            !verdict.has_finding("KR-SUPERLATIVE"),
            "acme registered `판매량 1위`: {verdict:?}"
        );
        // The same words for another tenant, whose file registers no such claim.
        let mut globex = kr_goal("claims_globex", 100, 30);
        globex.tenant = "globex".into();
        let verdict = &review(&runtime, &globex, SUPERLATIVE).await.verdicts[0].verdict;
        assert!(verdict.has_finding("KR-SUPERLATIVE"), "{verdict:?}");
        runtime.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_campaign_region_without_a_rule_set_blocks_every_variant_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (runtime, kb, _kb_dir) = compliance(dir.path()).await;
        // A social post needs no consent record, so only the regions decide.
        let plain = || Message::advert(MessageChannel::Social, "봄 신상 운동화, 전 구매 10% 할인");
        let korea = kr_goal("regions_kr", 100, 30);
        let control = review_message(&runtime, &korea, plain()).await;
        assert!(control.verdicts[0].verdict.approved, "{control:?}");
        for (id, regions) in [("regions_xx", vec!["XX"]), ("regions_jp", vec!["KR", "JP"])] {
            let mut goal = kr_goal(id, 100, 30);
            goal.regions = regions.iter().map(|r| (*r).to_owned()).collect();
            let reviews = review_message(&runtime, &goal, plain()).await;
            let verdict = &reviews.verdicts[0];
            assert!(!verdict.verdict.approved, "{id}: {verdict:?}");
            assert!(!verdict.verdict.fixable, "{id}: no fix makes up for it");
            assert!(
                verdict.verdict.has_finding("NO-RULESET"),
                "{id}: {verdict:?}"
            );
            let decision = kb
                .decision(&campaignd::agents::ledger::scope(&goal), verdict.decision)
                .expect("reads")
                .expect("the review is recorded");
            assert!(
                decision.reason.contains("NO-RULESET"),
                "{}",
                decision.reason
            );
            let region = regions.last().copied().unwrap_or_default();
            assert!(
                decision.reason.contains(region),
                "the reason names {region}: {}",
                decision.reason
            );
        }
        runtime.shutdown(Duration::from_secs(5)).await;
    }

    /// `campaignd check` on a deployment in `dir` whose one campaign is `id` with `text`.
    fn check_one_campaign(dir: &std::path::Path, id: &str, text: &str) -> support::Outcome {
        write(dir, &format!("config/campaigns/{id}.toml"), text);
        write(
            dir,
            "config/campaignd.toml",
            "[daemon]\ncampaigns_dir = \"config/campaigns\"\n",
        );
        support::run(support::campaignd().current_dir(dir).arg("check"), None)
    }

    #[test]
    fn check_refuses_a_brief_message_that_states_an_unsubstantiated_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let goal = crate::support::kr_goal_toml("loud_brief", 100, 30)
            .replace("\"새 학기 쇼핑을 가볍게\"", "\"새 학기 전 상품 반값\"");
        let out = check_one_campaign(dir.path(), "loud_brief", &goal);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains("loud_brief.toml: brief.copy.ko.messages[1]: `반값` states a discount that no claim of the brief substantiates"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn check_refuses_a_campaign_region_without_a_rule_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let goal = crate::support::kr_goal_toml("tokyo_push", 100, 30)
            .replace("regions = [\"KR\"]", "regions = [\"KR\", \"JP\"]")
            .replace("{ KR = \"ko\" }", "{ KR = \"ko\", JP = \"ko\" }");
        let out = check_one_campaign(dir.path(), "tokyo_push", &goal);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains("tokyo_push.toml: regions[1]")
                && out.stderr.contains("`JP` has no compliance rule set"),
            "{}",
            out.stderr
        );
    }
}
