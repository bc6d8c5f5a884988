//! Channel limits with the examples of docs/content.md, brand guideline inheritance, and the template generator's
//! guarantees: every variant fits its format, carries no banned word, speaks in the brand's voice and
//! is reproducible from its seed.

use std::collections::BTreeMap;

use campaignd::domain::brand::{
    BrandError, BrandVoice, Disclaimer, Formality, Guideline, Position, QuietWindow, TenantFile,
    apply_preferred_terms,
};
use campaignd::domain::brief::{Brief, BriefClaim, ClaimKind, review_claims};
use campaignd::domain::campaign::{Budget, CampaignGoal, Channel, Objective, Segment};
use campaignd::domain::channel::{
    ChannelLimits, Creative, Field, Format, SmsEncoding, cp949_len, sms_count, x_weighted_len,
};
use campaignd::domain::compliance::claims::substantiating;
use campaignd::domain::compliance::substantiation::claims_in;
use campaignd::domain::content::{
    Bred, ContentPlaybook, CreativeCell, DesignKind, GenerationRequest, Generator, LevelChoice,
    PlaybookError, TemplateGenerator,
};
use campaignd::protocol::{CampaignId, TenantId};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn text(s: &str) -> Creative {
    Creative {
        text: s.to_owned(),
        ..Creative::default()
    }
}

// ----- channel limits ------------------------------------------------------------------------------

#[test]
fn domain_examples_are_counted_exactly() {
    let limits = ChannelLimits::default();
    let sms = "(광고)ABC마트 봄세일 최대30% 할인! 무료거부 0801234567";
    assert_eq!(cp949_len(sms), Ok(54));
    assert!(limits.check(Format::KrSms, &text(sms)).fits());

    let lms = "가".repeat(46);
    assert_eq!(cp949_len(&lms), Ok(92));
    assert!(!limits.check(Format::KrSms, &text(&lms)).fits());
    assert!(limits.check(Format::KrLms, &text(&lms)).fits());

    let count = sms_count("Hi 😀", &limits.sms);
    assert_eq!(
        (count.encoding, count.units, count.parts),
        (SmsEncoding::Ucs2, 5, 1)
    );

    let post = "가".repeat(140);
    assert_eq!(x_weighted_len(&post, 23), 280);
    assert!(limits.check(Format::X, &text(&post)).fits());
    assert!(!limits.check(Format::X, &text(&"가".repeat(141))).fits());
}

#[test]
fn an_emoji_in_a_korean_sms_is_rejected_not_miscounted() {
    let fit = ChannelLimits::default().check(Format::KrSms, &text("(광고)봄세일 😀"));
    assert!(!fit.fits());
    assert!(
        fit.violations[0].message.contains("U+1F600"),
        "{}",
        fit.violations[0].message
    );
    assert!(fit.violations[0].message.contains("CP949"));
}

#[test]
fn gsm_sms_over_one_part_is_refused_by_default() {
    let limits = ChannelLimits::default();
    assert!(limits.check(Format::Sms, &text(&"a".repeat(160))).fits());
    assert!(!limits.check(Format::Sms, &text(&"a".repeat(161))).fits());
    // `€` costs two units: 79 of them plus two letters is exactly 160.
    assert!(
        limits
            .check(Format::Sms, &text(&format!("ab{}", "€".repeat(79))))
            .fits()
    );
    assert!(
        !limits.check(Format::Sms, &text(&"é😀".repeat(24))).fits(),
        "72 UCS-2 units > 70"
    );
}

// ----- playbook ------------------------------------------------------------------------------------

#[test]
fn the_shipped_playbook_loads_with_the_domain_limits() {
    let playbook = ContentPlaybook::embedded().expect("agents/content.toml [playbook] is valid");
    assert_eq!(playbook.limits, ChannelLimits::default());
    assert!(playbook.languages.contains_key("ko") && playbook.languages.contains_key("en"));
}

#[test]
fn playbook_errors_name_the_key() {
    let shipped = campaignd::domain::content::EMBEDDED_AGENT_FILE;
    let error_of = |text: &str| {
        ContentPlaybook::from_toml_str(text)
            .unwrap_err()
            .to_string()
    };
    let typo = shipped.replace("max_bytes = 90", "max_byte = 90");
    let err = error_of(&typo);
    assert!(err.contains("max_byte"), "{err}");

    let zero = shipped.replace("weighted = 280", "weighted = 0");
    let err = error_of(&zero);
    assert!(err.contains("playbook.limits.x.weighted"), "{err}");

    let unknown = shipped.replace(
        "text = \"{product}: {message}. {cta}.\"",
        "text = \"{product}: {message}. {call}.\"",
    );
    let err = error_of(&unknown);
    assert!(
        err.contains("playbook.languages.en.templates[5]") && err.contains("{call}"),
        "{err}"
    );

    let missing = shipped.replace("subject = \"{brand} {product}: {offer}\"\n", "");
    let err = error_of(&missing);
    assert!(
        err.contains("playbook.languages.en.templates[9].subject"),
        "{err}"
    );

    // Offers and messages come from the brief: the old vocabulary is refused by name.
    let vocabulary = shipped.replace(
        "[playbook.languages.en.calls_to_action]",
        "[playbook.languages.en.vocabulary]\noffer = [\"30% Off\"]\n\n[playbook.languages.en.calls_to_action]",
    );
    let err = error_of(&vocabulary);
    assert!(err.contains("vocabulary"), "{err}");
    let no_cta = shipped.replace(
        "leads = [\"Request a demo\", \"Talk to our team\"]",
        "leads = []",
    );
    let err = error_of(&no_cta);
    assert!(
        err.contains("playbook.languages.en.calls_to_action.leads"),
        "{err}"
    );

    assert!(matches!(
        ContentPlaybook::from_toml_str("[agent]\n"),
        Err(PlaybookError::Missing)
    ));
}

#[test]
fn playbook_reads_from_a_table() {
    let file: toml::Table =
        toml::from_str(campaignd::domain::content::EMBEDDED_AGENT_FILE).unwrap();
    let table = file["playbook"].as_table().unwrap();
    assert_eq!(
        ContentPlaybook::from_table(table).unwrap(),
        ContentPlaybook::embedded().unwrap()
    );
    let mut broken = table.clone();
    broken.insert("colour".into(), toml::Value::from("blue"));
    let err = ContentPlaybook::from_table(&broken)
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour"), "{err}");
}

// ----- brand guidelines ----------------------------------------------------------------------------

fn guideline(toml_text: &str) -> Guideline {
    Guideline::from_toml_str("test", toml_text).unwrap()
}

#[test]
fn a_child_overrides_scalars_unless_a_parent_locked_them() {
    let org = guideline(
        r#"
        brand_name = "ACME"
        locked = ["tone.emoji"]
        [tone]
        formality = "formal"
        emoji = false
        "#,
    );
    let client = guideline(
        r#"
        brand_name = "ABC마트"
        [tone]
        formality = "casual"
        emoji = true
        "#,
    );
    let voice = BrandVoice::resolve(&[("org", &org), ("client", &client)]).unwrap();
    assert_eq!(voice.brand_name.as_deref(), Some("ABC마트"));
    assert_eq!(voice.tone.formality, Formality::Casual);
    assert!(!voice.tone.emoji, "the organization locked emoji off");
    assert_eq!(voice.refused_overrides.len(), 1);
    assert_eq!(voice.refused_overrides[0].key, "tone.emoji");
    assert_eq!(voice.refused_overrides[0].layer, "client");

    // A lock holds for every level below, not only the next one.
    let campaign = guideline("[tone]\nemoji = true\n");
    let voice = BrandVoice::resolve(&[("org", &org), ("client", &client), ("campaign", &campaign)])
        .unwrap();
    assert!(!voice.tone.emoji);
}

#[test]
fn banned_words_and_disclaimers_accumulate() {
    let org = guideline(
        r#"
        banned_words = ["최고", "guaranteed"]
        [[disclaimers]]
        text = "(광고)"
        channels = ["sms", "push"]
        position = "start"
        "#,
    );
    let client = guideline(
        r#"
        banned_words = ["GUARANTEED", "free money"]
        [[disclaimers]]
        text = "Terms apply."
        "#,
    );
    let voice = BrandVoice::resolve(&[("org", &org), ("client", &client)]).unwrap();
    assert_eq!(voice.banned_words, vec!["최고", "guaranteed", "free money"]);
    assert_eq!(voice.disclaimers.len(), 2);
    assert_eq!(voice.disclaimers_for(Channel::Sms).count(), 2);
    assert_eq!(voice.disclaimers_for(Channel::Email).count(), 1);
    assert_eq!(voice.find_banned("It is Guaranteed!"), Some("guaranteed"));
    assert_eq!(voice.find_banned("업계 최고의 혜택"), Some("최고"));
    assert_eq!(voice.find_banned("a fine offer"), None);
}

#[test]
fn preferred_terms_override_per_key_and_apply_in_one_pass() {
    let org = guideline("[preferred_terms]\na = \"b\"\nsale = \"Sale\"\n");
    let client = guideline("[preferred_terms]\nb = \"c\"\nsale = \"SALE\"\n");
    let voice = BrandVoice::resolve(&[("org", &org), ("client", &client)]).unwrap();
    assert_eq!(
        voice.preferred_terms.get("sale").map(String::as_str),
        Some("SALE")
    );
    assert_eq!(voice.apply_preferred_terms("a"), "b", "no cascade a→b→c");
    assert_eq!(voice.apply_preferred_terms("b a sale"), "c b SALE");

    // The longest match wins where terms overlap.
    let mut terms = BTreeMap::new();
    terms.insert("e-mail".to_owned(), "email".to_owned());
    terms.insert("e".to_owned(), "E".to_owned());
    assert_eq!(apply_preferred_terms("e-mail me", &terms), "email mE");
}

#[test]
fn quiet_hours_take_the_union() {
    let org = guideline(
        "[[quiet_hours]]\nstart = \"21:00\"\nend = \"08:00\"\ntimezone = \"Asia/Seoul\"\n",
    );
    let campaign = guideline(
        "[[quiet_hours]]\nstart = \"20:00\"\nend = \"22:00\"\ntimezone = \"Asia/Seoul\"\n",
    );
    let voice = BrandVoice::resolve(&[("org", &org), ("campaign", &campaign)]).unwrap();
    assert_eq!(
        voice.quiet_hours.spans["Asia/Seoul"],
        vec![(0, 480), (1200, 1440)]
    );
    // 11:30 UTC is 20:30 in Seoul: quiet only because the campaign added it.
    assert!(
        voice
            .quiet_hours
            .is_quiet(Utc.with_ymd_and_hms(2026, 3, 2, 11, 30, 0).unwrap())
    );
    // 13:30 UTC is 22:30 in Seoul; 02:00 UTC is 11:00.
    assert!(
        voice
            .quiet_hours
            .is_quiet(Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 0).unwrap())
    );
    assert!(
        !voice
            .quiet_hours
            .is_quiet(Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap())
    );

    // A child cannot make the window shorter.
    let shorter = guideline(
        "[[quiet_hours]]\nstart = \"23:00\"\nend = \"06:00\"\ntimezone = \"Asia/Seoul\"\n",
    );
    let voice = BrandVoice::resolve(&[("org", &org), ("campaign", &shorter)]).unwrap();
    assert_eq!(
        voice.quiet_hours.spans["Asia/Seoul"],
        vec![(0, 480), (1260, 1440)]
    );
}

#[test]
fn bad_guidelines_are_refused_with_the_key() {
    let err = Guideline::from_toml_str("org", "locked = [\"tone.colour\"]").unwrap_err();
    assert!(
        matches!(&err, BrandError::Invalid { key, .. } if key.contains("tone.colour")),
        "{err}"
    );
    let err = Guideline::from_toml_str("org", "banned_words = [\"ok\", \" \"]").unwrap_err();
    assert!(err.to_string().contains("banned_words[1]"), "{err}");
    let bad_tz = "[[quiet_hours]]\nstart = \"21:00\"\nend = \"08:00\"\ntimezone = \"Mars/Base\"\n";
    let err = Guideline::from_toml_str("org", bad_tz).unwrap_err();
    assert!(
        err.to_string().contains("quiet_hours[0]") && err.to_string().contains("Mars/Base"),
        "{err}"
    );
    let err = Guideline::from_toml_str("org", "tone = { mood = \"happy\" }").unwrap_err();
    assert!(err.to_string().contains("mood"), "{err}");
}

#[test]
fn tenant_files_resolve_per_client_and_never_cross_tenants() {
    let file = TenantFile::from_toml_str(
        "acme",
        r#"
        [guideline]
        banned_words = ["cheap"]
        [guideline.legal_entity]
        name = "ACME Corp"
        opt_out_number = "0801234567"

        [clients.abc_mart.guideline]
        brand_name = "ABC마트"

        [clients.abc_mart.campaigns.spring.tone]
        formality = "casual"
        "#,
    )
    .unwrap();
    let voice = file
        .voice_for(
            &TenantId::from("acme/abc_mart"),
            &CampaignId::from("spring"),
        )
        .unwrap();
    assert_eq!(voice.display_name(), Some("ABC마트"));
    assert_eq!(voice.tone.formality, Formality::Casual);
    assert_eq!(
        voice.legal_entity.opt_out_number.as_deref(),
        Some("0801234567")
    );
    assert_eq!(voice.banned_words, vec!["cheap"]);

    let org_only = file
        .voice_for(&TenantId::from("acme"), &CampaignId::from("spring"))
        .unwrap();
    assert_eq!(
        org_only.display_name(),
        Some("ACME Corp"),
        "the client's campaign is not the organization's"
    );

    assert!(matches!(
        file.voice_for(
            &TenantId::from("globex/abc_mart"),
            &CampaignId::from("spring")
        ),
        Err(BrandError::ForeignTenant { .. })
    ));
    assert!(matches!(
        file.voice_for(&TenantId::from("acme/other"), &CampaignId::from("spring")),
        Err(BrandError::UnknownClient { .. })
    ));
}

// ----- generation ----------------------------------------------------------------------------------

fn goal(channels: Vec<Channel>, regions: &[&str], segments: &[&str]) -> CampaignGoal {
    CampaignGoal {
        id: CampaignId::from("spring"),
        tenant: TenantId::from("acme/abc_mart"),
        description: String::new(),
        objective: Objective::Signups,
        target: 500,
        deadline: Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap(),
        start: None,
        budget: Budget {
            total: 10_000.0,
            currency: "USD".into(),
            daily_cap: None,
        },
        channels,
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        segments: segments
            .iter()
            .map(|id| Segment {
                id: (*id).to_owned(),
                description: String::new(),
                share: None,
            })
            .collect(),
        product_category: "general".into(),
        economics: None,
        brief: Some(brief(regions)),
        autonomy: Default::default(),
        connectors: Default::default(),
        send_prices: Default::default(),
    }
}

/// A brief in Korean for KR and in English elsewhere (German for DE, French for FR, which the
/// shipped playbook does not write), with three messages, calls to action and claims each.
fn brief(regions: &[&str]) -> Brief {
    let language = |region: &str| match region {
        "KR" => "ko",
        "DE" => "de",
        "FR" => "fr",
        _ => "en",
    };
    let languages: Vec<String> = regions
        .iter()
        .map(|r| format!("{r} = \"{}\"", language(r)))
        .collect();
    let text = format!(
        r#"
        product = "Spring collection"
        landing_url = "https://example.com/spring"
        languages = {{ {} }}
        [copy.ko]
        product = "봄 컬렉션"
        messages = ["봄맞이 새 컬렉션", "주말에 만나는 봄", "가볍게 떠나는 봄"]
        calls_to_action = ["지금 확인하세요", "앱에서 만나요", "매장에서 만나요 👋"]
        claims = [
            {{ kind = "discount", text = "전 상품 30% 할인", evidence = "price list" }},
            {{ kind = "discount", text = "1+1 혜택", evidence = "price list" }},
            {{ kind = "free", text = "무료배송", evidence = "shipping policy" }},
        ]
        [copy.ko.segments.university_students]
        messages = ["새 학기 준비 끝", "캠퍼스 필수템", "학생증으로 가입"]
        [copy.en]
        product = "Spring Collection"
        messages = ["Spring is here", "Season finale", "Made for the weekend"]
        calls_to_action = ["Shop now", "See the collection", "Get the app 👋"]
        claims = [
            {{ kind = "discount", text = "30% Off Everything", evidence = "price list" }},
            {{ kind = "discount", text = "Buy One Get One", evidence = "price list" }},
            {{ kind = "free", text = "Free Shipping", evidence = "shipping policy" }},
        ]
        "#,
        languages.join(", ")
    );
    toml::from_str(&text).unwrap()
}

fn abc_mart() -> BrandVoice {
    let g = guideline(
        r#"
        brand_name = "ABC마트"
        [legal_entity]
        name = "ABC Mart Korea"
        opt_out_number = "0801234567"
        "#,
    );
    BrandVoice::resolve(&[("org", &g)]).unwrap()
}

fn generator() -> TemplateGenerator {
    TemplateGenerator::new(ContentPlaybook::embedded().unwrap())
}

#[test]
fn a_region_without_a_language_gets_no_copy_never_the_default_languages() {
    // German and French audiences: the shipped playbook writes Korean and English only.
    let european = goal(vec![Channel::Email], &["US", "DE", "FR"], &["everyone"]);
    let err = generator()
        .generate(&GenerationRequest {
            goal: &european,
            voice: &abc_mart(),
            seed: 7,
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "region `DE` is written in `de`, which the content playbook has no templates for"
        ),
        "{err}"
    );
    assert!(err.contains("[playbook.languages.de]"), "{err}");
    // Without a brief, or without regions, nothing is written at all.
    let mut briefless = goal(vec![Channel::Email], &["US"], &["everyone"]);
    briefless.brief = None;
    let regionless = goal(vec![Channel::Email], &[], &["everyone"]);
    for (goal, reason) in [(briefless, "no [brief]"), (regionless, "lists no regions")] {
        let err = generator()
            .generate(&GenerationRequest {
                goal: &goal,
                voice: &abc_mart(),
                seed: 7,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains(reason), "{err}");
    }
}

#[test]
fn korean_sms_variants_fit_carry_the_label_and_use_l18() {
    let goal = goal(
        vec![Channel::Sms],
        &["KR"],
        &["university_students", "parents"],
    );
    let voice = abc_mart();
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 7,
        })
        .unwrap();
    assert_eq!(out.cells.len(), 2);
    for cell in &out.cells {
        // 2 templates × 3 messages × 3 offers × 3 calls to action = 54 > 18.
        assert_eq!(cell.design, DesignKind::L18, "{cell:?}");
        assert!(cell.emitted >= 12, "{cell:?}");
    }
    let limits = ChannelLimits::default();
    for v in &out.variants {
        assert!(matches!(v.format, Format::KrSms | Format::KrLms));
        assert!(limits.check(v.format, &v.creative).fits(), "{v:?}");
        assert!(
            v.creative.text.starts_with("(광고)ABC마트"),
            "{}",
            v.creative.text
        );
        assert!(
            v.creative.text.ends_with("무료거부 0801234567"),
            "{}",
            v.creative.text
        );
        assert!(
            !v.creative.text.contains('👋'),
            "CP949 cannot carry emoji: {}",
            v.creative.text
        );
        let dims: Vec<&str> = v.levels.iter().map(|l| &*l.dimension).collect();
        // The first template states no claim, so it has no offer.
        assert!(
            dims == ["template", "cta", "message", "offer"]
                || dims == ["template", "cta", "message"],
            "{dims:?}"
        );
        assert!(v.id.starts_with(&format!("{}/{}/ko/", v.segment, v.format)));
        let measure = &v.measures[0];
        assert_eq!(measure.value, cp949_len(&v.creative.text).unwrap());
    }
    // The brief's segment messages: students hear about the new term.
    assert!(
        out.variants
            .iter()
            .any(|v| v.segment == "university_students" && v.creative.text.contains("새 학기"))
    );
    assert!(
        !out.variants
            .iter()
            .any(|v| v.segment == "parents" && v.creative.text.contains("새 학기"))
    );
    let ids: std::collections::BTreeSet<_> = out.variants.iter().map(|v| &v.id).collect();
    assert_eq!(ids.len(), out.variants.len(), "ids are unique");
}

#[test]
fn bred_combinations_are_written_in_their_cell_with_only_the_levels_valid_for_it() {
    let goal = goal(vec![Channel::Sms], &["KR"], &["parents"]);
    let voice = abc_mart();
    let g = generator();
    let request = GenerationRequest {
        goal: &goal,
        voice: &voice,
        seed: 7,
    };
    let first = g.generate(&request).unwrap();
    let parent = first
        .variants
        .iter()
        .find(|v| v.levels.iter().any(|l| &*l.dimension == "offer"))
        .expect("a variant with an offer");
    // The parent's combination with one level's wording replaced.
    let with = |dimension: &str, value: &str| -> Vec<LevelChoice> {
        let mut levels = parent.levels.clone();
        let level = levels
            .iter_mut()
            .find(|l| &*l.dimension == dimension)
            .unwrap();
        level.value = value.into();
        levels
    };
    let bred = Bred {
        cell: CreativeCell {
            channel: Channel::Sms,
            segment: "parents".into(),
            language: "ko".into(),
            format: parent.format,
        },
        combinations: vec![
            parent.levels.clone(),
            // In the brief with an emoji, which a CP949 SMS cannot carry: written without it.
            with("cta", "매장에서 만나요 👋"),
            // The English copy's message: not this cell's language.
            with("message", "Spring is here"),
            // A template the playbook no longer has.
            with("template", "{message} {cta}"),
        ],
    };
    let out = g.write_bred(&request, &[bred]).unwrap();
    // The parent's own combination is written again as the same variant, in its cell.
    assert_eq!(out.variants.len(), 2, "{:?}", out.cells);
    assert_eq!(out.variants[0].id, parent.id);
    assert_eq!(out.variants[0].creative, parent.creative);
    let child = &out.variants[1];
    assert!(child.creative.text.contains("매장에서 만나요"), "{child:?}");
    assert!(!child.creative.text.contains('👋'), "{child:?}");
    assert!(matches!(child.format, Format::KrSms | Format::KrLms));
    assert!(
        ChannelLimits::default()
            .check(child.format, &child.creative)
            .fits()
    );
    let report = &out.cells[0];
    assert_eq!(report.design, DesignKind::Bred);
    assert_eq!((report.candidates, report.emitted), (4, 2));
    assert_eq!(report.formats, vec![Format::KrSms, Format::KrLms]);
    let dropped = report.dropped.join("\n");
    for reason in [
        "\"Spring is here\" is no longer in the brief",
        "template \"{message} {cta}\" is no longer in the content playbook",
    ] {
        assert!(dropped.contains(reason), "{reason} not in {dropped}");
    }
    assert_eq!(report.dropped.len(), 2, "{dropped}");
}

#[test]
fn generation_is_deterministic_for_a_seed() {
    let goal = goal(
        vec![Channel::Sms, Channel::Social, Channel::Search],
        &["KR", "US"],
        &["students"],
    );
    let voice = abc_mart();
    let g = generator();
    let a = g
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 11,
        })
        .unwrap();
    let b = g
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 11,
        })
        .unwrap();
    assert_eq!(a, b);
    let c = g
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 12,
        })
        .unwrap();
    let ids = |g: &campaignd::domain::content::Generation| {
        g.variants.iter().map(|v| v.id.clone()).collect::<Vec<_>>()
    };
    assert_ne!(ids(&a), ids(&c), "another seed draws another design");
    // Formats: KR SMS/LMS, GSM SMS, Meta and X, Google RSA in both languages.
    let formats: std::collections::BTreeSet<Format> = a.variants.iter().map(|v| v.format).collect();
    for f in [Format::Sms, Format::Meta, Format::X, Format::GoogleRsa] {
        assert!(formats.contains(&f), "{f} missing from {formats:?}");
    }
    assert!(formats.contains(&Format::KrSms) || formats.contains(&Format::KrLms));
}

#[test]
fn banned_words_are_never_emitted_whatever_their_case() {
    let g = guideline(
        r#"
        brand_name = "ABC마트"
        banned_words = ["무료배송", "shop NOW", "1+1"]
        [legal_entity]
        opt_out_number = "0801234567"
        "#,
    );
    let voice = BrandVoice::resolve(&[("org", &g)]).unwrap();
    let goal = goal(Channel::ALL.to_vec(), &["KR", "US"], &["students"]);
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 1,
        })
        .unwrap();
    assert!(!out.variants.is_empty());
    for v in &out.variants {
        for (_, t) in v.creative.fields() {
            let lower = t.to_lowercase();
            assert!(
                !lower.contains("무료배송")
                    && !lower.contains("shop now")
                    && !lower.contains("1+1"),
                "{t}"
            );
        }
    }
    // The remaining levels are still used.
    assert!(
        out.variants
            .iter()
            .any(|v| v.creative.text.contains("30% 할인"))
    );
    assert!(
        out.cells
            .iter()
            .any(|c| c.dropped.iter().any(|r| r.contains("banned word")))
    );
}

#[test]
fn the_voice_shapes_the_copy() {
    let g = guideline(
        r#"
        brand_name = "Acme"
        [tone]
        emoji = false
        formality = "formal"
        [preferred_terms]
        "Free Shipping" = "Free Delivery"
        "Delivery" = "Shipping"
        [[disclaimers]]
        text = "Ad:"
        channels = ["email"]
        field = "subject"
        position = "start"
        [[disclaimers]]
        text = "Terms apply."
        channels = ["social"]
        "#,
    );
    let voice = BrandVoice::resolve(&[("org", &g)]).unwrap();
    let goal = goal(vec![Channel::Email, Channel::Social], &["US"], &[]);
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 5,
        })
        .unwrap();
    assert!(!out.variants.is_empty());
    for v in &out.variants {
        assert_eq!(v.segment, "all");
        for (_, t) in v.creative.fields() {
            assert!(!t.contains('👋'), "emoji not allowed: {t}");
            assert!(!t.contains("Free Shipping"), "{t}");
        }
        match v.format {
            Format::Email => {
                let subject = v.creative.subject.as_deref().unwrap();
                assert!(subject.starts_with("Ad: Acme "), "{subject}");
            }
            _ => assert!(
                v.creative.text.ends_with("Terms apply."),
                "{}",
                v.creative.text
            ),
        }
    }
    assert!(
        out.variants
            .iter()
            .any(|v| v.creative.text.contains("Free Delivery")),
        "one pass, no cascade"
    );

    // With emoji allowed, the social copy may carry one.
    let allowed = BrandVoice::resolve(&[("org", &guideline("brand_name = \"Acme\""))]).unwrap();
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &allowed,
            seed: 5,
        })
        .unwrap();
    assert!(
        out.variants
            .iter()
            .any(|v| v.format == Format::X && v.creative.text.contains('👋'))
    );
}

#[test]
fn a_missing_opt_out_number_is_reported_not_invented() {
    let voice = BrandVoice::resolve(&[("org", &guideline("brand_name = \"ABC마트\""))]).unwrap();
    let goal = goal(vec![Channel::Sms], &["KR"], &[]);
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 1,
        })
        .unwrap();
    assert!(out.variants.is_empty());
    assert!(
        out.cells[0]
            .dropped
            .iter()
            .any(|r| r.contains("legal_entity.opt_out_number")),
        "{:?}",
        out.cells
    );
}

#[test]
fn optional_parts_are_dropped_to_fit_and_the_rest_is_dropped() {
    let mut playbook = ContentPlaybook::embedded().unwrap();
    // Only SMS, and so tight that the call to action must go.
    playbook.limits.kr_sms.max_bytes = 66;
    playbook.limits.kr_lms.max_bytes = 66;
    let goal = goal(vec![Channel::Sms], &["KR"], &[]);
    let voice = abc_mart();
    let out = TemplateGenerator::new(playbook)
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 3,
        })
        .unwrap();
    assert!(!out.variants.is_empty());
    for v in &out.variants {
        let bytes = cp949_len(&v.creative.text).unwrap();
        assert!(bytes <= 66, "{bytes}: {}", v.creative.text);
        assert_eq!(v.format, Format::KrSms);
    }
    assert!(
        out.variants
            .iter()
            .all(|v| !v.creative.text.contains("지금 확인하세요"))
    );
    // A call to action left out is no level of the variant: the optimizer credits only what the
    // copy says, and copies alike are one variant.
    for v in &out.variants {
        assert!(v.levels.iter().all(|l| &*l.dimension != "cta"), "{v:?}");
    }
    let texts: std::collections::BTreeSet<_> =
        out.variants.iter().map(|v| &v.creative.text).collect();
    assert_eq!(texts.len(), out.variants.len(), "a copy written twice");
    assert!(
        out.cells[0]
            .dropped
            .iter()
            .any(|r| r.contains("over the limit")),
        "{:?}",
        out.cells[0].dropped
    );
}

#[test]
fn disclaimer_on_a_field_the_format_lacks_goes_into_the_text() {
    let voice = BrandVoice {
        disclaimers: vec![Disclaimer {
            text: "(광고)".into(),
            channels: vec![Channel::Sms],
            position: Position::Start,
            field: Field::Subject,
        }],
        ..abc_mart()
    };
    let goal = goal(vec![Channel::Sms], &["KR"], &[]);
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 2,
        })
        .unwrap();
    // The template already starts with the label: it is not doubled.
    assert!(
        out.variants
            .iter()
            .all(|v| v.creative.text.starts_with("(광고)ABC") && v.creative.subject.is_none())
    );
}

#[test]
fn quiet_window_type_round_trips() {
    let window = QuietWindow {
        start: "21:00".into(),
        end: "08:00".into(),
        timezone: "Asia/Seoul".into(),
    };
    let g = Guideline {
        quiet_hours: vec![window],
        ..Guideline::default()
    };
    assert!(g.validate("org").is_ok());
}

// ----- properties ----------------------------------------------------------------------------------

fn word() -> impl Strategy<Value = String> {
    // Mixed scripts, spaces, emoji and GSM extension characters; sometimes long.
    proptest::string::string_regex("[a-zA-Z가-힣0-9 !%€\\[\\]😀👋ÄéΩ]{1,40}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn variants_never_exceed_their_limit_nor_carry_a_banned_word(
        headlines in prop::collection::vec(word(), 1..4),
        offers in prop::collection::vec(word(), 1..4),
        ctas in prop::collection::vec(word(), 1..4),
        banned in prop::collection::vec("[a-zA-Z가-힣]{1,3}", 0..4),
        sms_bytes in 20usize..120,
        x_weight in 10usize..300,
        seed in any::<u64>(),
    ) {
        let mut playbook = ContentPlaybook::embedded().unwrap();
        playbook.limits.kr_sms.max_bytes = sms_bytes;
        playbook.limits.kr_lms.max_bytes = sms_bytes * 2;
        playbook.limits.x.weighted = x_weight;
        playbook.limits.google_rsa.headline = sms_bytes / 3;
        let mut voice = abc_mart();
        voice.banned_words = banned.clone();
        let mut goal = goal(Channel::ALL.to_vec(), &["KR", "US"], &["a"]);
        if let Some(brief) = goal.brief.as_mut() {
            for copy in brief.copy.values_mut() {
                copy.messages = headlines.clone();
                copy.calls_to_action = ctas.clone();
                copy.claims = offers
                    .iter()
                    .map(|o| BriefClaim {
                        kind: ClaimKind::Other,
                        text: o.clone(),
                        evidence: Some("proof".into()),
                        registry: None,
                    })
                    .collect();
                copy.segments.clear();
            }
        }
        let limits = playbook.limits.clone();
        let out = TemplateGenerator::new(playbook)
            .generate(&GenerationRequest { goal: &goal, voice: &voice, seed })
            .unwrap();
        // Not vacuous: without banned words, a two-level X post (at most 40 + 40 weight-2
        // characters plus punctuation) always fits once the optional call to action is left out.
        if banned.is_empty() && x_weight >= 170 {
            prop_assert!(out.variants.iter().any(|v| v.format == Format::X), "{:?}", out.cells);
        }
        for v in &out.variants {
            let fit = limits.check(v.format, &v.creative);
            prop_assert!(fit.fits(), "{:?} breaks {:?}", v.creative, fit.violations);
            for (_, t) in v.creative.fields() {
                for b in &banned {
                    prop_assert!(!t.to_lowercase().contains(&b.to_lowercase()), "{t:?} contains {b:?}");
                }
            }
        }
    }
}

/// Copy a brief may ask for without stating a claim: Hangul and Latin letters, no digit.
fn plain_line() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z가-힣 ]{1,24}").unwrap()
}

fn claim_of(kind: ClaimKind) -> impl Strategy<Value = BriefClaim> {
    proptest::string::string_regex("[a-zA-Z가-힣0-9 $€]{1,20}")
        .unwrap()
        .prop_map(move |text| BriefClaim {
            kind,
            text,
            evidence: Some("proof".into()),
            registry: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Content adds no claim of its own: with a brief that claims no discount, no variant states
    /// one, and every claim any variant states is the brief's, so compliance's
    /// CLAIM-SUBSTANTIATION never fires on generated copy.
    #[test]
    fn a_brief_without_a_discount_never_yields_a_variant_with_one(
        messages in prop::collection::vec(plain_line(), 1..4),
        ctas in prop::collection::vec(plain_line(), 0..3),
        claims in prop::collection::vec(
            prop_oneof![
                claim_of(ClaimKind::Price),
                claim_of(ClaimKind::Free),
                claim_of(ClaimKind::Other)
            ],
            0..3,
        ),
        seed in any::<u64>(),
    ) {
        let compliance = campaignd::domain::compliance::CompliancePlaybook::embedded().unwrap();
        let rule = &compliance.rules.substantiation;
        let states_a_discount = |text: &str| {
            claims_in(text, rule).iter().any(|f| f.kind == ClaimKind::Discount)
        };
        // The brief's own lines are the marketer's: keep those that state no discount.
        prop_assume!(!messages.iter().chain(&ctas).any(|l| states_a_discount(l)));
        prop_assume!(!claims.iter().any(|c| states_a_discount(&c.text)));
        let mut goal = goal(Channel::ALL.to_vec(), &["KR", "US"], &["a"]);
        if let Some(brief) = goal.brief.as_mut() {
            for copy in brief.copy.values_mut() {
                copy.messages = messages.clone();
                copy.calls_to_action = ctas.clone();
                copy.claims = claims.clone();
                copy.segments.clear();
            }
        }
        let voice = abc_mart();
        let substantiated = review_claims(&goal, Vec::new(), &voice.preferred_terms);
        let out = generator()
            .generate(&GenerationRequest { goal: &goal, voice: &voice, seed })
            .unwrap();
        prop_assert!(!out.variants.is_empty());
        for v in &out.variants {
            for (_, text) in v.creative.fields() {
                prop_assert!(!states_a_discount(text), "{text:?}");
                for found in claims_in(text, rule) {
                    prop_assert!(
                        substantiating(&substantiated, text, found.span).is_some(),
                        "{text:?} states {:?} the brief does not", &text[found.span.0..found.span.1]
                    );
                }
            }
        }
    }
}

#[test]
fn the_shipped_tenants_and_campaigns_generate_in_voice() {
    let acme =
        TenantFile::from_toml_str("acme", include_str!("../../config/tenants/acme.toml")).unwrap();
    let globex =
        TenantFile::from_toml_str("globex", include_str!("../../config/tenants/globex.toml"))
            .unwrap();
    let campaigns = [
        (
            &acme,
            include_str!("../../config/campaigns/kr_students_signups.toml"),
        ),
        (
            &acme,
            include_str!("../../config/campaigns/acme_spring_push.toml"),
        ),
        (
            &globex,
            include_str!("../../config/campaigns/us_email_social.toml"),
        ),
    ];
    let limits = ChannelLimits::default();
    for (file, campaign) in campaigns {
        let goal: CampaignGoal = toml::from_str(campaign).unwrap();
        let voice = file.voice_for(&goal.tenant, &goal.id).unwrap();
        let out = generator()
            .generate(&GenerationRequest {
                goal: &goal,
                voice: &voice,
                seed: 1,
            })
            .unwrap();
        assert!(!out.variants.is_empty(), "{}: {:?}", goal.id, out.cells);
        for v in &out.variants {
            assert!(limits.check(v.format, &v.creative).fits(), "{v:?}");
            for (_, t) in v.creative.fields() {
                assert_eq!(voice.find_banned(t), None, "{t}");
            }
        }
        if goal.id.as_str() == "kr_students_signups" {
            assert_eq!(voice.display_name(), Some("ABC마트"));
            for v in out.variants.iter().filter(|v| v.channel == Channel::Sms) {
                assert!(
                    v.creative.text.starts_with("(광고)ABC마트 "),
                    "{}",
                    v.creative.text
                );
                assert!(!v.creative.text.contains("1+1"), "the campaign bans it");
                assert!(
                    !v.creative.text.contains("무료배송"),
                    "preferred: 무료 배송"
                );
                assert!(!v.creative.text.contains('👋'));
            }
        }
    }
}

#[test]
fn claims_override_per_claim_unless_locked() {
    let org = guideline(
        r#"
        locked = ["claims.판매량 1위"]
        [[claims]]
        claim = "판매량 1위"
        evidence_id = "SURVEY-1"
        source = "Korea Research"
        period = "2025-01-01..2025-12-31"
        [[claims]]
        claim = "30% 할인"
        evidence_id = "PRICE-1"
        source = "price list"
        period = "2025-03-01..2025-05-31"
        "#,
    );
    let client = guideline(
        r#"
        [[claims]]
        claim = "판매량 1위"
        evidence_id = "SURVEY-2"
        source = "self-reported"
        period = "2026-01-01..2026-12-31"
        [[claims]]
        claim = "30% 할인"
        evidence_id = "PRICE-2"
        source = "price list"
        period = "2026-03-01..2026-05-31"
        "#,
    );
    let voice = BrandVoice::resolve(&[("org", &org), ("client", &client)]).unwrap();
    assert_eq!(
        voice.claims["판매량 1위"].evidence_id, "SURVEY-1",
        "locked by the organization"
    );
    assert_eq!(voice.claims["30% 할인"].evidence_id, "PRICE-2");
    assert_eq!(voice.claim_registry().len(), 2);
    assert_eq!(voice.refused_overrides[0].key, "claims.판매량 1위");

    let incomplete = "[[claims]]\nclaim = \"No.1\"\nevidence_id = \"\"\nsource = \"x\"\nperiod = \"2025-01-01..2025-01-02\"\n";
    let err = Guideline::from_toml_str("org", incomplete).unwrap_err();
    assert!(err.to_string().contains("claims[0]"), "{err}");
    let reversed = "[[claims]]\nclaim = \"No.1\"\nevidence_id = \"E\"\nsource = \"x\"\nperiod = \"2025-02-01..2025-01-01\"\n";
    let err = Guideline::from_toml_str("org", reversed).unwrap_err();
    assert!(err.to_string().contains("ends before it starts"), "{err}");
}

#[test]
fn templates_follow_the_formality_of_the_voice() {
    let goal = goal(vec![Channel::Sms], &["KR"], &[]);
    let mut voice = abc_mart();
    voice.tone.formality = Formality::Formal;
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 4,
        })
        .unwrap();
    assert!(!out.variants.is_empty());
    // The second Korean SMS template is written for neutral and casual voices only.
    assert!(
        out.variants.iter().all(|v| v.levels[0].index == 0),
        "{:?}",
        out.variants[0].levels
    );
    voice.tone.formality = Formality::Casual;
    let out = generator()
        .generate(&GenerationRequest {
            goal: &goal,
            voice: &voice,
            seed: 4,
        })
        .unwrap();
    assert!(out.variants.iter().any(|v| v.levels[0].index == 1));
}
