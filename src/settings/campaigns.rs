//! Campaign goals: `config/campaigns/<id>.toml`, parsed into [`CampaignGoal`] and checked for the
//! mistakes types cannot catch (a zero target, a deadline before the start, a region that is not a
//! country code, …), reporting every one with its key.
//!
//! This module only reads and validates; it must never plan or start a campaign.

use std::collections::HashSet;
use std::path::Path;

use super::problem::{self, Problem, Problems};
use super::{SourceFile, is_snake_case};
use crate::domain::campaign::{CampaignGoal, Channel};

/// The shipped example campaigns (generated from `config/campaigns/` at build time), used when
/// the default campaigns folder does not exist.
pub const EMBEDDED_CAMPAIGNS: &[(&str, &str)] = super::embedded::CAMPAIGNS;

/// Reads and validates one campaign file on its own (for commands given a file, such as `plan`).
/// The file stem must equal the campaign id, as in the campaigns folder.
pub fn load_file(path: &Path) -> Result<CampaignGoal, Problems> {
    let source = SourceFile::read(path).map_err(|p| Problems(vec![p]))?;
    parse(&source).map_err(Problems)
}

/// Parses and validates one campaign file.
pub(super) fn parse(source: &SourceFile) -> Result<CampaignGoal, Vec<Problem>> {
    let file = source.label.as_str();
    let text = source.text.as_str();
    let syntax = problem::syntax_problems(file, text);
    if !syntax.is_empty() {
        return Err(syntax);
    }
    let goal: CampaignGoal =
        toml::from_str(text).map_err(|e| vec![problem::deserialize_problem(file, text, &e)])?;
    let problems = validate(&goal, source);
    if problems.is_empty() {
        Ok(goal)
    } else {
        Err(problems)
    }
}

/// Checks a set of loaded campaigns together: ids are unique.
pub(super) fn validate_together(campaigns: &[(String, CampaignGoal)]) -> Vec<Problem> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut problems = Vec::new();
    for (file, goal) in campaigns {
        if !seen.insert(goal.id.as_str()) {
            problems.push(Problem::new(
                file.as_str(),
                "id",
                format!("campaign id `{}` is used by another campaign file", goal.id),
            ));
        }
    }
    problems
}

fn validate(goal: &CampaignGoal, source: &SourceFile) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, key: String, message: String| {
        if !ok {
            problems.push(Problem::new(source.label.as_str(), key, message));
        }
    };
    let id = goal.id.as_str();
    check(
        is_snake_case(id),
        "id".into(),
        format!(
            "`{id}` is not a valid campaign id: lowercase letters, digits and `_`, starting with a letter"
        ),
    );
    check(
        id == source.stem,
        "id".into(),
        format!(
            "is `{id}` but the file is named `{}.toml`; name the file after the id",
            source.stem
        ),
    );
    let tenant = goal.tenant.as_str();
    let parts: Vec<&str> = tenant.split('/').collect();
    check(
        (1..=2).contains(&parts.len()) && parts.iter().all(|p| is_snake_case(p)),
        "tenant".into(),
        format!(
            "`{tenant}` is not `organization` or `organization/client` (lowercase letters, digits and `_`)"
        ),
    );
    check(
        goal.target > 0,
        "target".into(),
        "must be at least 1".into(),
    );

    let budget = &goal.budget;
    check(
        budget.total.is_finite() && budget.total > 0.0,
        "budget.total".into(),
        format!("is {}; it must be greater than 0", budget.total),
    );
    check(
        is_upper_code(&budget.currency, 3),
        "budget.currency".into(),
        format!(
            "`{}` is not an ISO 4217 currency code such as USD or KRW",
            budget.currency
        ),
    );
    if let Some(cap) = budget.daily_cap {
        check(
            cap.is_finite() && cap > 0.0 && cap <= budget.total,
            "budget.daily_cap".into(),
            format!(
                "is {cap}; it must be greater than 0 and at most budget.total ({})",
                budget.total
            ),
        );
    }
    for (channel, price) in &goal.send_prices {
        check(
            matches!(channel, Channel::Sms | Channel::Email | Channel::Push),
            format!("send_prices.{channel}"),
            format!(
                "{channel} is not sent message by message; only sms, email and push have a send price"
            ),
        );
        check(
            price.is_finite() && *price > 0.0 && *price <= budget.total,
            format!("send_prices.{channel}"),
            format!(
                "is {price}; it must be greater than 0 and at most budget.total ({})",
                budget.total
            ),
        );
    }
    if let Some(start) = goal.start {
        check(
            goal.deadline > start,
            "deadline".into(),
            format!("{} is not after start ({start})", goal.deadline),
        );
    }

    check(
        !goal.channels.is_empty(),
        "channels".into(),
        "name at least one channel".into(),
    );
    for (index, channel) in goal.channels.iter().enumerate() {
        check(
            !goal.channels[..index].contains(channel),
            format!("channels[{index}]"),
            format!("`{channel}` is listed twice"),
        );
    }

    check(
        !goal.regions.is_empty(),
        "regions".into(),
        "name at least one region (an ISO 3166 code such as KR)".into(),
    );
    for (index, region) in goal.regions.iter().enumerate() {
        check(
            is_upper_code(region, 2),
            format!("regions[{index}]"),
            format!("`{region}` is not a two-letter uppercase country code such as KR or US"),
        );
        check(
            !goal.regions[..index].contains(region),
            format!("regions[{index}]"),
            format!("`{region}` is listed twice"),
        );
    }

    check(
        !goal.segments.is_empty(),
        "segments".into(),
        "name at least one audience segment".into(),
    );
    let mut share_sum = 0.0;
    let mut all_shared = true;
    for (index, segment) in goal.segments.iter().enumerate() {
        check(
            !segment.id.trim().is_empty(),
            format!("segments[{index}].id"),
            "must not be empty".into(),
        );
        check(
            !goal.segments[..index].iter().any(|s| s.id == segment.id),
            format!("segments[{index}].id"),
            format!("`{}` is used by another segment", segment.id),
        );
        match segment.share {
            Some(share) => {
                check(
                    (0.0..=1.0).contains(&share),
                    format!("segments[{index}].share"),
                    format!("is {share}; a share is between 0.0 and 1.0"),
                );
                share_sum += share;
            }
            None => all_shared = false,
        }
    }
    // Segments without a share split what the others leave, so only a total over 1 is wrong,
    // unless every segment has a share, in which case they must add up to the whole audience.
    const TOLERANCE: f64 = 1e-6;
    if all_shared && !goal.segments.is_empty() {
        check(
            (share_sum - 1.0).abs() <= TOLERANCE,
            "segments".into(),
            format!("the shares add up to {share_sum}; they must add up to 1.0"),
        );
    } else {
        check(
            share_sum <= 1.0 + TOLERANCE,
            "segments".into(),
            format!("the shares add up to {share_sum}, more than 1.0"),
        );
    }

    check(
        is_snake_case(&goal.product_category),
        "product_category".into(),
        format!(
            "`{}` is not a category name such as general or health_food",
            goal.product_category
        ),
    );
    if let Some(economics) = &goal.economics {
        check(
            economics.average_order_value.is_finite() && economics.average_order_value > 0.0,
            "economics.average_order_value".into(),
            format!(
                "is {}; it must be greater than 0",
                economics.average_order_value
            ),
        );
        check(
            economics.margin > 0.0 && economics.margin <= 1.0,
            "economics.margin".into(),
            format!(
                "is {}; a margin is greater than 0 and at most 1.0",
                economics.margin
            ),
        );
    }
    match &goal.brief {
        None => check(
            false,
            "brief".into(),
            "is missing: content writes only from a campaign's [brief] (what is on sale, the landing URL, the language of each region, key messages and the claims the copy may make); see config/campaigns/kr_students_signups.toml".into(),
        ),
        Some(brief) => {
            let segments: Vec<&str> = goal.segments.iter().map(|s| s.id.as_str()).collect();
            for (key, message) in brief.problems(&goal.regions, &segments) {
                check(false, format!("brief.{key}"), message);
            }
        }
    }
    problems
}

fn is_upper_code(code: &str, len: usize) -> bool {
    code.len() == len && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// The embedded examples as source files, labelled so problems say where they came from.
pub(super) fn embedded(dir: &Path) -> Vec<SourceFile> {
    EMBEDDED_CAMPAIGNS
        .iter()
        .map(|(id, text)| SourceFile {
            label: format!("<embedded {}>", dir.join(format!("{id}.toml")).display()),
            stem: (*id).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "spring"
tenant = "acme/kr_retail"
objective = "signups"
target = 500
start = "2026-09-01T00:00:00+09:00"
deadline = "2026-12-31T23:59:59+09:00"
channels = ["sms", "search"]
regions = ["KR"]
[budget]
total = 10000.0
currency = "USD"
[[segments]]
id = "students"
[brief]
product = "Student membership"
landing_url = "https://example.kr/student"
languages = { KR = "ko" }
[brief.copy.ko]
product = "학생 멤버십"
messages = ["학생증 하나로 가입 끝"]
"#;

    fn source(stem: &str, text: &str) -> SourceFile {
        SourceFile {
            label: format!("config/campaigns/{stem}.toml"),
            stem: stem.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn the_examples_load() {
        for source in embedded(Path::new("config/campaigns")) {
            let goal = parse(&source).unwrap_or_else(|p| panic!("{p:?}"));
            assert_eq!(goal.id.as_str(), source.stem);
        }
    }

    #[test]
    fn a_good_goal_loads() {
        let goal = parse(&source("spring", GOOD)).unwrap();
        assert_eq!(goal.target, 500);
        assert_eq!(
            goal.deadline,
            "2026-12-31T14:59:59Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        );
    }

    #[test]
    fn a_send_price_is_for_a_messaging_channel_and_a_sane_amount() {
        let priced = |prices: &str| {
            let text = GOOD.replace(
                "regions = [\"KR\"]",
                &format!("regions = [\"KR\"]\nsend_prices = {{ {prices} }}"),
            );
            parse(&source("spring", &text))
        };
        let goal = priced("sms = 0.02").unwrap();
        assert_eq!(goal.send_prices.get(&Channel::Sms), Some(&0.02));
        let problems = priced("search = 1.0, sms = 0.0, email = 20000.0").unwrap_err();
        let messages: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect();
        assert_eq!(problems.len(), 3, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("send_prices.search: search is not sent"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("send_prices.sms: is 0"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("send_prices.email: is 20000"))
        );
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_key() {
        let text = GOOD
            .replace("target = 500", "target = 0")
            .replace("total = 10000.0", "total = -5.0")
            .replace("currency = \"USD\"", "currency = \"usd\"\ndaily_cap = 0.0")
            .replace("2026-12-31T23:59:59+09:00", "2026-08-01T00:00:00+09:00")
            .replace("[\"sms\", \"search\"]", "[\"sms\", \"sms\"]")
            .replace("[\"KR\"]", "[\"kr\", \"Korea\"]")
            .replace("tenant = \"acme/kr_retail\"", "tenant = \"acme/kr/retail\"");
        let problems = parse(&source("other", &text)).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "id",
                "tenant",
                "target",
                "budget.total",
                "budget.currency",
                "budget.daily_cap",
                "deadline",
                "channels[1]",
                "regions[0]",
                "regions[1]",
                // The brief names KR, which is no longer a region, and neither new region.
                "brief.languages",
                "brief.languages",
                "brief.languages.KR"
            ]
        );
        assert!(
            problems
                .iter()
                .all(|p| p.file == "config/campaigns/other.toml")
        );
    }

    #[test]
    fn segments_are_checked() {
        let text = GOOD.replace(
            "[[segments]]\nid = \"students\"\n",
            "[[segments]]\nid = \"a\"\nshare = 0.7\n[[segments]]\nid = \"a\"\nshare = 0.7\n",
        );
        let problems = parse(&source("spring", &text)).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["segments[1].id", "segments"]);
        let none = GOOD
            .replace("[[segments]]\nid = \"students\"\n", "")
            .replace("regions = [\"KR\"]", "regions = [\"KR\"]\nsegments = []");
        assert_eq!(
            parse(&source("spring", &none)).unwrap_err()[0].key,
            "segments"
        );
    }

    #[test]
    fn a_campaign_without_a_brief_or_with_a_broken_one_is_refused_with_the_key() {
        let (head, _) = GOOD.split_once("[brief]").unwrap();
        let problems = parse(&source("spring", head)).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "brief");
        assert!(problems[0].message.contains("content writes only from"));
        let broken = GOOD
            .replace("https://example.kr/student", "example.kr")
            .replace("messages = [\"학생증 하나로 가입 끝\"]", "messages = []")
            + "[[brief.copy.ko.claims]]\nkind = \"price\"\ntext = \"9,900원\"\n";
        let keys: Vec<String> = parse(&source("spring", &broken))
            .unwrap_err()
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "brief.landing_url",
                "brief.copy.ko.messages",
                "brief.copy.ko.claims[0]"
            ]
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let text = GOOD.replace("total = 10000.0", "total = \"ten\"");
        let problems = parse(&source("spring", &text)).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "config/campaigns/spring.toml: budget.total: expected a number, found a string \"ten\" (line 11, column 9)"
        );
        let text = GOOD.replace(
            "channels = [\"sms\", \"search\"]",
            "channels = [\"sms\", \"fax\"]",
        );
        assert_eq!(
            parse(&source("spring", &text)).unwrap_err()[0].key,
            "channels[1]"
        );
    }

    #[test]
    fn duplicate_ids_across_files_are_reported() {
        let goal = parse(&source("spring", GOOD)).unwrap();
        let problems =
            validate_together(&[("a.toml".into(), goal.clone()), ("b.toml".into(), goal)]);
        assert_eq!(
            problems,
            [Problem::new(
                "b.toml",
                "id",
                "campaign id `spring` is used by another campaign file"
            )]
        );
    }
}
