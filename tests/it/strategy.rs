//! Strategy maths against the worked examples of docs/strategy.md, feasibility verdicts with their fixes,
//! learning from outcomes, and `campaignd plan` driven as a real binary.

use campaignd::domain::campaign::{CampaignGoal, Channel};
use campaignd::domain::strategy::{
    ChannelOutcome, FunnelRates, Maturity, StrategyPlaybook, TierSplit, UnitEconomics, funnel,
    ice_score, plan, rank_tactics,
};
use chrono::{DateTime, Utc};

use crate::support::{self, close};

fn now() -> DateTime<Utc> {
    "2026-09-01T00:00:00Z".parse().unwrap()
}

/// A campaign goal in the file format operators write.
fn goal_toml(target: u64, budget: f64, deadline: &str, channels: &str, economics: &str) -> String {
    format!(
        r#"id = "test_campaign"
tenant = "acme"
objective = "signups"
target = {target}
start = "2026-09-01T00:00:00Z"
deadline = "{deadline}"
channels = {channels}
regions = ["US"]
[budget]
total = {budget:.1}
currency = "USD"
[[segments]]
id = "students"
{economics}
"#
    )
}

fn goal(target: u64, budget: f64, deadline: &str, channels: &str, economics: &str) -> CampaignGoal {
    toml::from_str(&goal_toml(target, budget, deadline, channels, economics)).unwrap()
}

fn playbook() -> StrategyPlaybook {
    StrategyPlaybook::embedded().unwrap()
}

#[test]
fn funnel_and_unit_economics() {
    let kpis = funnel(
        100,
        FunnelRates {
            ctr: 0.02,
            cvr: 0.05,
            cpc: 1.0,
        },
    )
    .unwrap();
    assert_eq!((kpis.clicks, kpis.impressions), (2000, 100_000));
    close(kpis.spend, 2000.0, 1e-9);
    close(kpis.cpa, 20.0, 1e-9);
    // ⌈⌉ rounds up: 7 conversions at 3 % need 234 clicks, not 233.33.
    assert_eq!(
        funnel(
            7,
            FunnelRates {
                ctr: 0.5,
                cvr: 0.03,
                cpc: 1.0
            }
        )
        .unwrap()
        .clicks,
        234
    );
    let e = UnitEconomics::new(80.0, 0.25, 100, 2000.0).unwrap();
    close(e.break_even_roas, 4.0, 1e-12);
    close(e.max_cpa, 20.0, 1e-12);
    close(e.roas, 4.0, 1e-12);
    assert!(
        funnel(
            1,
            FunnelRates {
                ctr: 0.0,
                cvr: 0.05,
                cpc: 1.0
            }
        )
        .is_none()
    );
}

#[test]
fn ice_scores_and_ranking() {
    assert_eq!(ice_score(5, 8, 9), 360);
    let ranked = rank_tactics(&playbook().tactics, &[Channel::Search, Channel::Email]);
    assert!(ranked.windows(2).all(|w| w[0].ice >= w[1].ice));
    assert!(ranked.iter().all(|t| {
        t.channel
            .is_none_or(|c| c == Channel::Search || c == Channel::Email)
    }));
    assert_eq!(ranked[0].rank, 1);
}

/// The shipped strategy playbook with social's response curve replaced by `response`.
fn with_social_response(response: &str) -> String {
    let shipped = campaignd::domain::strategy::DEFAULT_STRATEGY_TOML;
    let social = "response = { a = 7.0, b = 250.0 }";
    assert_eq!(
        shipped.matches(social).count(),
        1,
        "social's curve is in the file once"
    );
    shipped.replace(social, response)
}

#[test]
fn a_hill_curve_with_adstock_plans_like_any_other_and_a_broken_one_is_named() {
    // Social and display in one tier, social on an S-curve with carry-over.
    let text = with_social_response(
        "response = { family = \"hill\", beta = 12.0, ec = 200.0, s = 1.8, adstock = 0.3 }",
    );
    let playbook = StrategyPlaybook::from_toml_str(&text).expect("a hill curve loads");
    let p = plan(
        &goal(
            100,
            30_000.0,
            "2026-10-01T00:00:00Z",
            r#"["search", "social", "display"]"#,
            "",
        ),
        &playbook,
        now(),
    )
    .unwrap();
    let social = p
        .channels
        .iter()
        .find(|c| c.channel == Channel::Social)
        .unwrap();
    let display = p
        .channels
        .iter()
        .find(|c| c.channel == Channel::Display)
        .unwrap();
    // Emerging and experimental tiers keep 20 and 10 %; social's curve is its own.
    close(social.daily_spend, 200.0, 1e-6);
    close(display.daily_spend, 100.0, 1e-6);
    let curve =
        campaignd::domain::optimization::ResponseCurve::hill(12.0, 200.0, 1.8).with_adstock(0.3);
    close(
        social.predicted_conversions,
        curve.value(200.0) * 30.0,
        0.005,
    );

    let broken =
        with_social_response("response = { family = \"hill\", beta = 12.0, ec = 0.0, s = 1.8 }");
    let err = StrategyPlaybook::from_toml_str(&broken)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("playbook.channels.social.response.ec"),
        "{err}"
    );
    let missing = with_social_response("response = { family = \"hill\", beta = 12.0, ec = 200.0 }");
    let err = StrategyPlaybook::from_toml_str(&missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`beta`, `ec` and `s`"), "{err}");
}

#[test]
fn seventy_twenty_ten_over_the_tiers_present() {
    let split = TierSplit::default();
    let all = split.over(&[Maturity::Proven, Maturity::Emerging, Maturity::Experimental]);
    close(all.proven, 0.7, 1e-12);
    close(all.emerging, 0.2, 1e-12);
    close(all.experimental, 0.1, 1e-12);
    let two = split.over(&[Maturity::Proven, Maturity::Emerging]);
    close(two.proven, 0.7 / 0.9, 1e-12);
    close(two.experimental, 0.0, 0.0);

    // search (proven), social (emerging), display (experimental): daily spend splits 70-20-10.
    let p = plan(
        &goal(
            100,
            30_000.0,
            "2026-10-01T00:00:00Z",
            r#"["search", "social", "display"]"#,
            "",
        ),
        &playbook(),
        now(),
    )
    .unwrap();
    assert_eq!(p.days, 30);
    close(p.daily_budget, 1000.0, 1e-9);
    let spend = |c: Channel| {
        p.channels
            .iter()
            .find(|x| x.channel == c)
            .unwrap()
            .daily_spend
    };
    close(spend(Channel::Search), 700.0, 1e-6);
    close(spend(Channel::Social), 200.0, 1e-6);
    close(spend(Channel::Display), 100.0, 1e-6);
    assert_eq!(p.schedule.len(), 30);
    close(p.schedule[0].spend.values().sum::<f64>(), 1000.0, 1e-6);
}

#[test]
fn a_feasible_plan_has_no_problems() {
    let p = plan(
        &goal(
            100,
            20_000.0,
            "2026-11-30T00:00:00Z",
            r#"["search", "email"]"#,
            "[economics]\naverage_order_value = 120.0\nmargin = 0.5",
        ),
        &playbook(),
        now(),
    )
    .unwrap();
    assert!(p.feasibility.feasible, "{:#?}", p.feasibility);
    assert!(p.predicted_conversions >= 100.0);
    assert!(p.kpis.spend <= 20_000.0);
    // Within the proven tier the split follows equal marginal return.
    close(
        p.channels[0].marginal_return,
        p.channels[1].marginal_return,
        1e-9,
    );
}

#[test]
fn cpa_above_the_maximum_is_infeasible_with_fixes() {
    let p = plan(
        &goal(
            100,
            50_000.0,
            "2026-12-31T00:00:00Z",
            r#"["search"]"#,
            "[economics]\naverage_order_value = 40.0\nmargin = 0.25",
        ),
        &playbook(),
        now(),
    )
    .unwrap();
    assert!(!p.feasibility.feasible);
    let cpa = p
        .feasibility
        .problems
        .iter()
        .find(|x| x.kind == "cpa")
        .expect("a cpa problem");
    // search: CPC 1.5, CVR 5 % → CPA 30 > max CPA 40 × 0.25 = 10.
    close(p.kpis.cpa, 30.0, 1e-9);
    close(p.economics.unwrap().max_cpa, 10.0, 1e-12);
    assert!(
        cpa.reason.contains("exceeds the maximum 10.00 USD"),
        "{}",
        cpa.reason
    );
    assert!(
        cpa.fixes
            .iter()
            .any(|f| f == "raise the CVR to 15.00 % (the channel mix gives 5.00 %)"),
        "{:?}",
        cpa.fixes
    );
    assert!(
        cpa.fixes
            .iter()
            .any(|f| f == "raise the average order value to 120.00 USD at a margin of 25 %"),
        "{:?}",
        cpa.fixes
    );
}

/// The amount of a "raise the budget to 1,234.56 USD" fix.
fn amount_in(fix: &str) -> f64 {
    fix.split_whitespace()
        .find_map(|word| word.replace(',', "").parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no amount in {fix:?}"))
}

/// The one fix starting with `start`.
fn the_fix<'a>(fixes: &'a [String], start: &str) -> &'a str {
    let found: Vec<&String> = fixes.iter().filter(|f| f.starts_with(start)).collect();
    assert_eq!(found.len(), 1, "one {start:?} in {fixes:?}");
    found[0]
}

#[test]
fn budget_and_deadline_shortfalls_get_one_set_of_fixes_each_of_which_works() {
    // 1000 sign-ups by search alone at CPA 30 cost 30 000; the budget is 10 000, and 30 days of
    // 333 a day deliver fewer than 1000 on search's curve besides.
    let g = goal(1000, 10_000.0, "2026-10-01T00:00:00Z", r#"["search"]"#, "");
    let p = plan(&g, &playbook(), now()).unwrap();
    let kinds: Vec<&str> = p
        .feasibility
        .problems
        .iter()
        .map(|x| x.kind.as_str())
        .collect();
    assert_eq!(kinds, ["budget", "deadline"], "{:#?}", p.feasibility);
    let fixes = &p.feasibility.fixes;
    let raise = the_fix(fixes, "raise the budget to ");
    assert!(raise.ends_with(" USD"), "{raise}");
    let lower = the_fix(fixes, "lower the target to ");
    assert!(
        !fixes.iter().any(|f| f.starts_with("extend the deadline")),
        "more time does not pay for the clicks: {fixes:?}"
    );
    // Each fix alone makes the plan feasible.
    let mut richer = g.clone();
    richer.budget.total = amount_in(raise);
    assert!(amount_in(raise) >= 30_000.0, "{raise}");
    let p = plan(&richer, &playbook(), now()).unwrap();
    assert!(p.feasibility.feasible, "{raise}: {:#?}", p.feasibility);
    let mut smaller = g.clone();
    smaller.target = amount_in(lower) as u64;
    assert!(smaller.target <= 333, "{lower}");
    let p = plan(&smaller, &playbook(), now()).unwrap();
    assert!(p.feasibility.feasible, "{lower}: {:#?}", p.feasibility);

    // Enough money, too little time: 50 000 over 10 days floods the channel's response curve.
    let g = goal(1000, 50_000.0, "2026-09-11T00:00:00Z", r#"["search"]"#, "");
    let p = plan(&g, &playbook(), now()).unwrap();
    let kinds: Vec<&str> = p
        .feasibility
        .problems
        .iter()
        .map(|x| x.kind.as_str())
        .collect();
    assert_eq!(kinds, ["deadline"]);
    let fixes = &p.feasibility.fixes;
    the_fix(fixes, "lower the target to ");
    let extend = the_fix(fixes, "extend the deadline");
    // The suggested deadline really is enough.
    let days: u32 = extend
        .split('(')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let date = format!(
        "{}T00:00:00Z",
        (now() + chrono::Duration::days(i64::from(days))).date_naive()
    );
    let longer = plan(
        &goal(1000, 50_000.0, &date, r#"["search"]"#, ""),
        &playbook(),
        now(),
    )
    .unwrap();
    assert!(
        longer.predicted_conversions >= 1000.0,
        "{}",
        longer.predicted_conversions
    );
}

#[test]
fn a_target_no_sane_budget_reaches_gets_no_absurd_budget_and_no_exponent() {
    // A million sign-ups in 30 days: the curves flatten long before any budget gets there.
    let g = goal(
        1_000_000,
        10_000.0,
        "2026-10-01T00:00:00Z",
        r#"["search", "email"]"#,
        "",
    );
    let p = plan(&g, &playbook(), now()).unwrap();
    let fixes = &p.feasibility.fixes;
    assert!(
        !fixes.iter().any(|f| f.starts_with("raise the budget")),
        "{fixes:?}"
    );
    let deadline = p
        .feasibility
        .problems
        .iter()
        .find(|x| x.kind == "deadline")
        .unwrap();
    assert!(
        deadline.reason.contains("not even 100 times the budget"),
        "{}",
        deadline.reason
    );
    let reachable = amount_in(the_fix(fixes, "lower the target to "));
    assert!(reachable >= 1.0 && reachable < p.predicted_conversions + 1.0);
    // No figure of the plan is written with an exponent, nor a residue of a sum.
    let text = serde_json::to_string(&p).unwrap();
    assert!(
        !text.contains("e-") && !text.contains("e+") && !text.contains("E"),
        "{text}"
    );
    assert_eq!(p.unspent, 0.0);
}

#[test]
fn an_under_delivering_channel_gets_a_lower_prior_and_less_budget() {
    let g = goal(
        100,
        20_000.0,
        "2026-11-30T00:00:00Z",
        r#"["search", "email"]"#,
        "",
    );
    let mut playbook = playbook();
    let before = plan(&g, &playbook, now()).unwrap();
    let prior = *playbook.prior(Channel::Email).unwrap();
    // Email delivered a third of its expected conversion rate.
    playbook
        .learn(
            Channel::Email,
            ChannelOutcome {
                impressions: 200_000,
                clicks: 5000,
                conversions: 58,
                spend: 1000.0,
            },
        )
        .unwrap();
    let after_prior = *playbook.prior(Channel::Email).unwrap();
    assert!(
        after_prior.cvr < prior.cvr,
        "{} vs {}",
        after_prior.cvr,
        prior.cvr
    );
    assert!(after_prior.cvr > 58.0 / 5000.0, "the prior still weighs in");
    assert!(after_prior.response.value(100.0) < prior.response.value(100.0));
    let after = plan(&g, &playbook, now()).unwrap();
    let email = |p: &campaignd::domain::strategy::Plan| {
        p.channels
            .iter()
            .find(|c| c.channel == Channel::Email)
            .unwrap()
            .daily_spend
    };
    assert!(
        email(&after) < email(&before),
        "{} vs {}",
        email(&after),
        email(&before)
    );

    // A channel that over-delivers gains.
    let mut playbook2 = StrategyPlaybook::embedded().unwrap();
    playbook2
        .learn(
            Channel::Email,
            ChannelOutcome {
                impressions: 200_000,
                clicks: 5000,
                conversions: 400,
                spend: 1000.0,
            },
        )
        .unwrap();
    assert!(email(&plan(&g, &playbook2, now()).unwrap()) > email(&before));

    // Impossible outcomes are refused.
    assert!(
        playbook
            .learn(
                Channel::Email,
                ChannelOutcome {
                    impressions: 10,
                    clicks: 20,
                    conversions: 0,
                    spend: 1.0
                }
            )
            .is_err()
    );
}

#[test]
fn invalid_goals_name_the_field() {
    let err = plan(
        &goal(0, 1000.0, "2026-10-01T00:00:00Z", r#"["search"]"#, ""),
        &playbook(),
        now(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`target`"), "{err}");
    let err = plan(
        &goal(10, 1000.0, "2026-08-01T00:00:00Z", r#"["search"]"#, ""),
        &playbook(),
        now(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`deadline`"), "{err}");
    let mut g = goal(10, 1000.0, "2026-10-01T00:00:00Z", r#"["search"]"#, "");
    g.budget.currency = "XYZ".into();
    let err = plan(&g, &playbook(), now()).unwrap_err().to_string();
    assert!(
        err.contains("exchange_rates") && err.contains("XYZ"),
        "{err}"
    );
}

#[test]
fn priors_convert_to_the_campaign_currency() {
    let usd = plan(
        &goal(
            100,
            20_000.0,
            "2026-11-30T00:00:00Z",
            r#"["search", "email"]"#,
            "",
        ),
        &playbook(),
        now(),
    )
    .unwrap();
    let mut g = goal(
        100,
        20_000.0 * 1380.0,
        "2026-11-30T00:00:00Z",
        r#"["search", "email"]"#,
        "",
    );
    g.budget.currency = "KRW".into();
    let krw = plan(&g, &playbook(), now()).unwrap();
    // Each rounded to its currency's unit: cents of a dollar are 13.8 won.
    close(krw.predicted_conversions, usd.predicted_conversions, 0.01);
    close(krw.kpis.cpa, usd.kpis.cpa * 1380.0, 0.005 * 1380.0 + 0.5);
}

// ---- the real binary ----

fn campaignd(args: &[&str]) -> (i32, String, String) {
    let out = support::run(support::campaignd().args(args), None);
    (out.code.unwrap_or(-1), out.stdout, out.stderr)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    support::write(dir.path(), name, text).display().to_string()
}

#[test]
fn plan_prints_json_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "spring.toml",
        &goal_toml(
            100,
            30_000.0,
            "2026-10-01T00:00:00Z",
            r#"["search", "social", "display"]"#,
            "",
        ),
    );
    let (code, stdout, stderr) = campaignd(&["plan", &file]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["campaign"], "test_campaign");
    assert!(json["kpis"]["clicks"].as_u64().unwrap() > 0);
    assert!(json["feasibility"]["feasible"].is_boolean());
    assert_eq!(json["channels"].as_array().unwrap().len(), 3);
    assert_eq!(json["schedule"].as_array().unwrap().len(), 30);
    assert!(!json["tactics"].as_array().unwrap().is_empty());
    close(json["tier_split"]["proven"].as_f64().unwrap(), 0.7, 1e-12);
}

#[test]
fn plan_on_bad_input_exits_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml").display().to_string();
    let (code, _, stderr) = campaignd(&["plan", &missing]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nope.toml"), "{stderr}");

    let bad_toml = write(&dir, "bad.toml", "id = \"x\"\ntarget = [");
    let (code, _, stderr) = campaignd(&["plan", &bad_toml]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.toml"), "{stderr}");

    let unknown = write(
        &dir,
        "unknown.toml",
        &goal_toml(100, 1000.0, "2026-10-01T00:00:00Z", r#"["search"]"#, "")
            .replace("target = 100", "target = 100\ntargett = 5"),
    );
    let (code, _, stderr) = campaignd(&["plan", &unknown]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown.toml") && stderr.contains("targett"),
        "{stderr}"
    );

    let invalid = write(
        &dir,
        "invalid.toml",
        &goal_toml(100, -5.0, "2026-10-01T00:00:00Z", r#"["search"]"#, ""),
    );
    let (code, _, stderr) = campaignd(&["plan", &invalid]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid.toml") && stderr.contains("budget.total"),
        "{stderr}"
    );

    let good = write(
        &dir,
        "good.toml",
        &goal_toml(100, 1000.0, "2026-10-01T00:00:00Z", r#"["search"]"#, ""),
    );
    let playbook = write(
        &dir,
        "strategy.toml",
        &campaignd::domain::strategy::DEFAULT_STRATEGY_TOML.replacen("cvr = 0.05", "cvr = 5", 1),
    );
    let (code, _, stderr) = campaignd(&["plan", &good, "--playbook", &playbook]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("strategy.toml") && stderr.contains("playbook.channels.search.cvr"),
        "{stderr}"
    );
}
