//! `campaignd simulate` through the real binary: a what-if run of a shipped campaign on the
//! documented example market, replayed from its seed, and bad market files named.

use serde_json::Value;

use crate::support;

const CAMPAIGN: &str = "config/campaigns/kr_students_signups.toml";
const MARKET: &str = "docs/examples/market.toml";

fn simulate(args: &[&str]) -> (i32, String, String) {
    let out = support::run(support::campaignd().arg("simulate").args(args), None);
    (out.code.unwrap_or(-1), out.stdout, out.stderr)
}

#[test]
fn a_what_if_run_reports_against_the_oracle_and_replays_from_its_seed() {
    let args = [CAMPAIGN, "--market", MARKET, "--seed", "7"];
    let (code, first, stderr) = simulate(&args);
    assert_eq!(code, 0, "{stderr}");
    let run: Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(run["campaign"], "kr_students_signups");
    assert_eq!(run["seed"], 7);
    let conversions = run["conversions"].as_u64().unwrap();
    let spend = run["spend"].as_f64().unwrap();
    assert!(conversions > 0 && spend > 0.0, "{run}");
    assert!((run["cpa"].as_f64().unwrap() - spend / conversions as f64).abs() < 0.01);
    // What the buys were worth on the true rates is near what the draws delivered.
    let expected = run["expected_conversions"].as_f64().unwrap();
    assert!(
        (expected - conversions as f64).abs() < 0.2 * expected,
        "{expected} vs {conversions}"
    );
    let ratio = run["expected_cpa"].as_f64().unwrap() / run["oracle"]["cpa"].as_f64().unwrap();
    assert!(
        (ratio - run["cpa_vs_oracle"].as_f64().unwrap()).abs() < 0.01,
        "{run}"
    );
    // Either the day the target was reached, or none by the deadline, with what was bought each day.
    assert!(run["reached_on_day"].is_u64() || run["reached_on_day"].is_null());
    let days = run["allocation"].as_array().unwrap();
    assert!(!days.is_empty());
    assert!(days[0]["spend"]["sms"].is_f64() && days[0]["spend"]["search"].is_f64());
    // No budget move passed the 20 % cap.
    assert!(run["largest_move"].as_f64().unwrap() <= 0.2 + 1e-9);
    // The oracle knows the market: search converts at ten times SMS, so it buys only search, and
    // its best creatives are those with the `cta` level the market favours.
    let oracle = &run["oracle"];
    assert_eq!(oracle["daily"]["sms"], 0.0, "{oracle}");
    assert!(oracle["cpa"].as_f64().unwrap() < run["static_plan"]["cpa"].as_f64().unwrap());
    let best = oracle["best_creatives"].as_array().unwrap();
    assert_eq!(best.len(), 4, "two channels × two segments: {oracle}");
    let ratio = run["cpa_vs_oracle"].as_f64().unwrap();
    // Luck can beat the oracle's expected values a little, never by much.
    assert!(ratio > 0.9, "{ratio}");
    // The same seed gives the same JSON.
    let (code, second, _) = simulate(&args);
    assert_eq!(code, 0);
    assert_eq!(first, second);
}

#[test]
fn several_runs_are_summed_up() {
    let (code, out, stderr) = simulate(&[CAMPAIGN, "--market", MARKET, "--runs", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let runs: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(runs["summary"]["runs"], 2);
    assert_eq!(runs["runs"][0]["seed"], 1);
    assert_eq!(runs["runs"][1]["seed"], 2);
    assert!(runs["summary"]["median_cpa_vs_oracle"].is_f64());
    assert!(runs["summary"]["better_than_static"].is_f64());
}

#[test]
fn a_bad_market_file_is_named_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(MARKET).unwrap();
    let cases = [
        (
            "no_search.toml",
            example.replace("channel = \"search\"", "channel = \"email\""),
            "the market has no channel `search`",
        ),
        (
            "typo.toml",
            example.replace("saturation_spend = 100.0", "saturation = 100.0"),
            "unknown field `saturation`",
        ),
        (
            "negative.toml",
            example.replace("cvr = 0.01", "cvr = -0.01"),
            "channels[0].cvr",
        ),
    ];
    for (name, text, expected) in cases {
        let path = support::write(dir.path(), name, &text);
        let (code, out, stderr) = simulate(&[CAMPAIGN, "--market", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}{stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(out.is_empty(), "{name}: {out}");
    }
    let (code, _, stderr) = simulate(&[CAMPAIGN, "--runs", "0"]);
    assert_eq!(code, 2, "{stderr}");
}
