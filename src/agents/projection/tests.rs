//! The projection's readers on records shaped as the agents write them.

use super::*;

/// The catalog of `decisions` alone.
fn catalog_of(goal: &CampaignGoal, decisions: &[Decision]) -> IdCatalog {
    let mut catalog = IdCatalog::default();
    add_to_catalog(&mut catalog, goal, decisions);
    catalog
}
use crate::domain::campaign::Phase;
use crate::kb::SCHEMA_VERSION;
use crate::market::KnownIds;
use crate::protocol::CorrelationId;

fn goal() -> CampaignGoal {
    crate::domain::campaign::test_goal(&["sms"])
}

fn decision(kind: &str, choice: serde_json::Value) -> Decision {
    decision_with(kind, serde_json::json!({}), choice)
}

fn decision_with(kind: &str, inputs: serde_json::Value, choice: serde_json::Value) -> Decision {
    Decision {
        id: DecisionId::new(),
        schema_version: SCHEMA_VERSION,
        agent: "optimization".into(),
        tenant: "acme".into(),
        campaign: Some("kr_students".into()),
        correlation_id: CorrelationId::new(),
        causation_id: None,
        kind: kind.into(),
        inputs,
        alternatives: Vec::new(),
        choice,
        reason: "test".into(),
        confidence: 1.0,
        decided_at: chrono::Utc::now(),
        recorded_at: None,
    }
}

fn arm(variant: &str) -> serde_json::Value {
    serde_json::json!({ "variant": variant, "channel": "sms", "segment": "students", "levels": [] })
}

#[test]
fn the_catalog_holds_every_experiments_arms_and_nothing_else() {
    let goal = goal();
    let decisions = [
        decision(
            "experiment",
            serde_json::json!({ "arms": [arm("a"), arm("b")] }),
        ),
        decision("experiment", serde_json::json!({ "arms": [arm("c")] })),
        decision("plan", serde_json::json!({ "arms": [arm("not_an_arm")] })),
        decision("experiment", serde_json::json!({ "arms": "unreadable" })),
    ];
    let catalog = catalog_of(&goal, &decisions);
    for variant in ["a", "b", "c"] {
        assert!(catalog.has_variant(&goal.id, variant), "{variant}");
    }
    assert!(!catalog.has_variant(&goal.id, "not_an_arm"));
    let empty = catalog_of(&goal, &[]);
    assert!(empty.has_campaign(&goal.id));
    assert!(!empty.has_variant(&goal.id, "a"));
}

#[test]
fn the_catalog_knows_where_each_variant_runs() {
    let goal = goal();
    let push =
        serde_json::json!({ "variant": "p", "channel": "push", "segment": "lapsed", "levels": [] });
    let decisions = [decision(
        "experiment",
        serde_json::json!({ "arms": [arm("a"), push] }),
    )];
    let catalog = catalog_of(&goal, &decisions);
    let placed = |variant| catalog.placements(&goal.id, variant);
    assert_eq!(
        placed("a"),
        [Placement {
            channel: Channel::Sms,
            segment: "students".into()
        }]
    );
    assert_eq!(placed("p")[0].channel, Channel::Push);
    assert!(placed("unknown").is_empty());
}

#[test]
fn the_goal_is_achieved_only_by_the_orchestrators_decision() {
    let mut achieved = decision_with(
        "goal_achieved",
        serde_json::json!({ "day": 12, "conversions": 100, "spend": 900.0 }),
        serde_json::json!({ "stop_buying": true }),
    );
    // A custom agent's decision of the same kind does not finish the campaign.
    assert_eq!(
        goal_achieved(std::slice::from_ref(&achieved), "orchestrator"),
        None
    );
    achieved.agent = "orchestrator".into();
    let id = achieved.id;
    let decisions = [
        decision("experiment", serde_json::json!({ "arms": [] })),
        achieved,
    ];
    assert_eq!(
        goal_achieved(&decisions, "orchestrator"),
        Some((id, Some(12)))
    );
    assert_eq!(goal_achieved(&decisions[..1], "orchestrator"), None);
}

#[test]
fn the_orchestrators_view_is_the_same_rebuilt_or_applied_one_by_one() {
    let goal = goal();
    let decisions = vec![
        decision(
            "sub_goals",
            serde_json::json!({ "goal": goal, "funnel": { "conversions": 100, "clicks": 1000, "impressions": 50000, "cpa": 9.5 }, "daily_budget": {}, "days": 30 }),
        ),
        decision("setup", serde_json::json!({ "approved": ["a"] })),
        decision_with(
            "phase",
            serde_json::json!({ "day": 4, "conversions": 40, "target": 100 }),
            serde_json::json!({ "phase": "optimize", "from": "explore" }),
        ),
        decision_with(
            "pause",
            serde_json::json!({ "from": "operator", "at": "2026-09-03T00:00:00Z" }),
            serde_json::json!("pause"),
        ),
        decision_with(
            "replan_ordered",
            serde_json::json!({ "from": "operator", "at": "2026-09-03T00:00:00Z", "why": "new brief" }),
            serde_json::json!("replan_ordered"),
        ),
        decision("unknown_kind", serde_json::json!({})),
    ];
    let rebuilt = CampaignView::rebuild(&decisions);
    let mut live = CampaignView::default();
    for d in &decisions {
        live.apply(d);
    }
    for view in [&rebuilt, &live] {
        assert_eq!(view.goal.as_ref().map(|g| &g.id), Some(&goal.id));
        assert!(view.set_up);
        assert_eq!(view.phase, Some(Phase::Optimize));
        assert!(view.paused);
        assert_eq!(view.commands, 2);
        assert_eq!(view.replan_requested.as_deref(), Some("new brief"));
    }
    let mut view = rebuilt;
    view.apply(&decision_with(
        "replan",
        serde_json::json!({ "day": 9, "progress": { "started": true, "conversions": 40, "spend": 10.0, "days": 9, "forecast": null }, "plan": DecisionId::new() }),
        serde_json::json!({ "daily_budget": null, "error": null }),
    ));
    assert_eq!(view.attempt, 1);
    assert_eq!(view.last_replan_day, Some(9));
    assert_eq!(
        view.replan_requested, None,
        "a re-plan carries out the order"
    );
}

#[test]
fn learned_days_and_links_read_only_their_kinds() {
    let forecast = |day: u32| {
        decision_with(
            "forecast",
            serde_json::json!({ "day": day, "cumulative": [], "target": 10 }),
            serde_json::json!({ "forecast": null, "deadline_day": null }),
        )
    };
    let decisions = [
        forecast(0),
        forecast(2),
        decision("traffic_split", serde_json::json!({})),
    ];
    assert_eq!(
        learned_days(&decisions, "optimization")
            .into_iter()
            .collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert!(learned_days(&decisions, "strategy").is_empty());
}

#[test]
fn observations_link_the_latest_approving_review_of_each_variant_and_the_channels_decisions() {
    use crate::agents::decisions::{ReviewChoice, ReviewInputs};
    use crate::domain::compliance::{Jurisdiction, Message, MessageChannel};
    let review = |variant: &str, approved: bool| {
        decision_with(
            "review",
            crate::agents::ledger::json(ReviewInputs {
                variant: variant.to_owned(),
                message: Message::advert(MessageChannel::Sms, format!("text of {variant}")),
                send_at: "2026-09-01T09:00:00+09:00".parse().expect("a time"),
                jurisdictions: vec![Jurisdiction::Kr],
                consent: None,
            }),
            crate::agents::ledger::json(ReviewChoice {
                approved,
                risk: 0,
                fixable: false,
                fixes: Vec::new(),
            }),
        )
    };
    let approved_b = review("b", true);
    // Names `b`, but its choice does not say whether it approved.
    let unreadable_b = decision_with(
        "review",
        serde_json::json!({ "variant": "b", "step": "review/2/b" }),
        serde_json::json!({ "risk": 0 }),
    );
    let experiment = decision("experiment", serde_json::json!({ "arms": [] }));
    let split = |channel: &str| {
        decision_with(
            "traffic_split",
            serde_json::json!({ "channel": channel, "day": 0, "arms": [], "step": "split" }),
            serde_json::json!({}),
        )
    };
    let (sms_split, email_split) = (split("sms"), split("email"));
    let decisions = [
        review("a", true),
        approved_b.clone(),
        review("b", false),
        review("c", true),
        unreadable_b,
        experiment.clone(),
        sms_split.clone(),
        email_split,
    ];
    let start: chrono::DateTime<chrono::Utc> = "2026-09-01T00:00:00Z".parse().expect("a time");
    let observation = |variant: &str| Observation {
        campaign: "kr_students".into(),
        channel: Channel::Sms,
        segment: None,
        variant: variant.to_owned(),
        window_start: start,
        window_end: start + chrono::Duration::days(1),
        impressions: 1000,
        clicks: 50,
        conversions: 3,
        spend: 10.0,
        revenue: 0.0,
    };
    let links = Links::of(&decisions);
    let (b, d) = (observation("b"), observation("d"));
    assert_eq!(
        links.of_channel(Channel::Sms),
        vec![experiment.id, sms_split.id]
    );
    assert_eq!(
        links.approvals([&b, &d, &b]),
        vec![approved_b.id],
        "each approval once; `d` has none"
    );
    assert_eq!(
        Links::default().of_channel(Channel::Sms),
        Vec::<DecisionId>::new()
    );
    assert_eq!(Links::default().approvals([&b]), Vec::<DecisionId>::new());
}

fn observation_outcome(day: u32, variant: &str, conversions: i64) -> Record {
    let start: chrono::DateTime<chrono::Utc> = "2026-09-01T00:00:00Z".parse().expect("a time");
    let observation = Observation {
        campaign: "kr_students".into(),
        channel: Channel::Sms,
        segment: None,
        variant: variant.to_owned(),
        window_start: start,
        window_end: start + chrono::Duration::days(1),
        impressions: 1000,
        clicks: 50,
        conversions,
        spend: 10.0,
        revenue: 0.0,
    };
    Record::Outcome(Outcome {
        id: OutcomeId::new(),
        schema_version: SCHEMA_VERSION,
        tenant: "acme".into(),
        campaign: Some("kr_students".into()),
        decisions: Vec::new(),
        correlation_id: None,
        kind: OBSERVATION_OUTCOME.to_owned(),
        metrics: serde_json::to_value(ObservationMetrics { day, observation }).expect("json"),
        observed_at: start + chrono::Duration::days(1),
        recorded_at: None,
    })
}

#[test]
fn the_optimizer_counts_a_days_observations_even_when_they_sort_before_its_experiment() {
    // Stamped with the end of their window in campaign time, day 0's observations come before
    // the experiment decision in time order; they were taken in before day 0's decisions.
    let goal = goal();
    let forecast = |day: u32| {
        Record::Decision(decision_with(
            "forecast",
            serde_json::json!({ "day": day, "cumulative": [], "target": 10 }),
            serde_json::json!({ "forecast": null, "deadline_day": null }),
        ))
    };
    let records = vec![
        observation_outcome(0, "a", 6),
        Record::Decision(decision(
            "experiment",
            serde_json::json!({ "arms": [arm("a")] }),
        )),
        forecast(0),
        observation_outcome(1, "a", 4),
        forecast(1),
        // Day 2 was recorded but not learned from: it is folded when its batch comes again.
        observation_outcome(2, "a", 9),
    ];
    let state = ExperimentState::rebuild(&goal, &records, "optimization").expect("an experiment");
    assert_eq!(state.experiment.progress().conversions, 10);
    assert_eq!(state.folded.len(), 2);
    assert_eq!(
        state
            .experiment
            .seen_days
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn decisions_of_one_clock_tick_are_rebuilt_in_the_order_they_were_recorded() {
    // The set-up's experiment and the first budget move share a campaign time; the knowledge
    // base may list the move first. The move came after, and the rebuilt budget is the move's,
    // with its reason as why the mix is not the plan's.
    let goal = goal();
    let now = chrono::Utc::now();
    let mut experiment = decision(
        "experiment",
        serde_json::json!({ "arms": [arm("a")], "daily": { "sms": 100.0, "push": 50.0 } }),
    );
    experiment.recorded_at = Some(now);
    let mut moved = decision_with(
        "allocation",
        serde_json::json!({ "day": 0, "before": { "sms": 100.0, "push": 50.0 } }),
        serde_json::json!({ "daily": { "sms": 120.0, "push": 30.0 } }),
    );
    moved.reason = "moved 20.00 USD".into();
    moved.recorded_at = Some(now + chrono::Duration::milliseconds(1));
    moved.decided_at = experiment.decided_at;
    let records = vec![Record::Decision(moved), Record::Decision(experiment)];
    let state = ExperimentState::rebuild(&goal, &records, "optimization").expect("an experiment");
    assert_eq!(state.experiment.daily[&Channel::Sms], 120.0);
    assert_eq!(state.experiment.planned[&Channel::Sms], 100.0);
    let mix = state.mix();
    assert_eq!(mix.why.as_deref(), Some("moved 20.00 USD"));
    assert_eq!(
        mix.channels
            .iter()
            .map(|c| (c.channel, c.planned, c.daily))
            .collect::<Vec<_>>(),
        vec![(Channel::Sms, 100.0, 120.0), (Channel::Push, 50.0, 30.0)]
    );
}

#[test]
fn an_ordered_re_exploration_is_repeated_by_a_rebuild() {
    let goal = goal();
    let forecast = Record::Decision(decision_with(
        "forecast",
        serde_json::json!({ "day": 0, "cumulative": [], "target": 10 }),
        serde_json::json!({ "forecast": null, "deadline_day": null }),
    ));
    let mut records = vec![
        Record::Decision(decision(
            "experiment",
            serde_json::json!({ "arms": [arm("a")] }),
        )),
        observation_outcome(0, "a", 40),
        forecast,
    ];
    let before = ExperimentState::rebuild(&goal, &records, "optimization").expect("an experiment");
    records.push(Record::Decision(decision_with(
        "reexplore",
        serde_json::json!({ "why": "re-plan", "keep": 0.1 }),
        serde_json::json!("reexplore"),
    )));
    let after = ExperimentState::rebuild(&goal, &records, "optimization").expect("an experiment");
    let stats = |s: &ExperimentState| s.experiment.arms.get("a").expect("arm a").stats;
    assert_eq!(stats(&before).successes, 40);
    assert!(
        stats(&after).successes < stats(&before).successes,
        "{:?} → {:?}",
        stats(&before),
        stats(&after)
    );
    assert_eq!(
        after.experiment.progress().conversions,
        40,
        "re-opening keeps the count of conversions"
    );
}

#[test]
fn a_bred_generation_waits_until_it_joins_and_retired_arms_keep_their_evidence() {
    let goal = goal();
    let forecast = Record::Decision(decision_with(
        "forecast",
        serde_json::json!({ "day": 0, "cumulative": [], "target": 10 }),
        serde_json::json!({ "forecast": null, "deadline_day": null }),
    ));
    let cell = serde_json::json!({ "channel": "sms", "segment": "students", "language": "ko", "format": "kr_sms" });
    let bred = decision_with(
        "genetic_step",
        serde_json::json!({ "day": 7, "cells": [] }),
        serde_json::json!({ "bred": [{ "cell": cell, "combinations": [[
            { "dimension": "template", "index": 0, "value": "{message}" },
            { "dimension": "message", "index": 1, "value": "m1" },
        ]] }] }),
    );
    let mut records = vec![
        Record::Decision(decision(
            "experiment",
            serde_json::json!({ "arms": [arm("a"), arm("b")] }),
        )),
        observation_outcome(0, "a", 6),
        forecast,
        Record::Decision(bred.clone()),
    ];
    let waiting = ExperimentState::rebuild(&goal, &records, "optimization").expect("an experiment");
    let generation = waiting.bred.as_ref().expect("a generation waiting to join");
    assert_eq!((generation.day, generation.decision), (7, bred.id));
    assert_eq!(generation.bred[0].combinations.len(), 1);

    let mut joined = arm("c");
    joined["format"] = "kr_sms".into();
    joined["language"] = "ko".into();
    records.push(Record::Decision(decision_with(
        "arms_joined",
        serde_json::json!({ "day": 8, "generation": bred.id, "creatives": null, "max_live": 2 }),
        serde_json::json!({
            "joined": [joined],
            "retired": [{ "variant": "a", "conversions": 6, "trials": 50, "share": null }],
        }),
    )));
    let state = ExperimentState::rebuild(&goal, &records, "optimization").expect("an experiment");
    assert_eq!(state.bred, None, "a joined generation is not written again");
    let arms = &state.experiment.arms;
    assert_eq!(arms["a"].retired, Some(8));
    assert_eq!(
        arms["a"].stats.successes, 6,
        "a retired arm keeps its evidence"
    );
    assert!(!arms["a"].live_on(Channel::Sms));
    assert!(arms["b"].live_on(Channel::Sms) && arms["c"].live_on(Channel::Sms));
    let cell_of_c = arms["c"]
        .arm
        .as_ref()
        .and_then(|a| a.cell())
        .expect("c's cell");
    assert_eq!(cell_of_c.to_string(), "students/kr_sms/ko");
}

#[test]
fn every_kind_is_visited_once_under_its_own_name() {
    struct Names(Vec<&'static str>);
    impl KindVisitor for Names {
        fn visit<K>(&mut self)
        where
            K: DecisionKind,
            K::Inputs: DeserializeOwned,
            K::Choice: DeserializeOwned,
        {
            self.0.push(K::KIND);
        }
    }
    let mut names = Names(Vec::new());
    kinds::every_kind(&mut names);
    let distinct: std::collections::BTreeSet<_> = names.0.iter().collect();
    assert_eq!(names.0.len(), 32);
    assert_eq!(distinct.len(), names.0.len(), "{:?}", names.0);
    assert_eq!(
        names.0,
        kinds::kind_names(),
        "the visitor and the list agree"
    );
    let unknown = decision("pacing_pause", serde_json::json!("pause"));
    assert_eq!(decodes_as_its_kind(&unknown), None);
    let broken = decision("forecast", serde_json::json!({}));
    assert_eq!(
        decodes_as_its_kind(&broken),
        Some(false),
        "forecast inputs need a day"
    );
}

#[test]
fn an_erased_subject_has_no_consent_whatever_order_the_decisions_come_in() {
    let record = |subject: &str| {
        serde_json::json!({
            "subject": subject, "channel": "sms", "purpose": "marketing",
            "granted_at": "2026-03-01T09:00:00Z", "source": "web_form"
        })
    };
    let consent = |subject: &str| decision_with("consent", record(subject), record(subject));
    let erasure = decision_with(
        "erasure",
        serde_json::json!({ "subject": "subject:a", "requested_by": "dpo" }),
        serde_json::json!({ "channels": ["sms"] }),
    );
    let kept = consent("subject:b");
    for order in [
        vec![consent("subject:a"), erasure.clone(), kept.clone()],
        vec![erasure.clone(), consent("subject:a"), kept.clone()],
    ] {
        let ledger = consent_ledger(&order);
        assert_eq!(ledger.len(), 1, "{ledger:?}");
        assert!(ledger.keys().all(|(subject, _)| subject == "subject:b"));
    }
}

#[test]
fn the_creatives_sent_are_the_last_approved_reviews_with_their_headlines() {
    let review = |variant: &str, text: &str, approved: bool| {
        decision_with(
            "review",
            serde_json::json!({
                "variant": variant,
                "message": { "channel": "search", "text": text },
                "send_at": "2026-09-01T09:00:00+09:00",
                "jurisdictions": ["KR"],
                "consent": null
            }),
            serde_json::json!({ "approved": approved }),
        )
    };
    let creatives = decision(
        "creatives",
        serde_json::json!([
            { "id": "a", "text": "first", "subject": null, "headline": "Spring sale" },
            { "id": "b", "text": "other", "subject": null, "headline": null }
        ]),
    );
    let decisions = [
        creatives,
        review("a", "[광고] first", false),
        review("b", "(광고) other", true),
        // A revision's review of `a` approves its fixed text; `b` is blocked on a later round.
        review("a", "(광고) first", true),
        review("b", "(광고) other", false),
    ];
    let approved = approved_creatives(&decisions);
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved["a"].message.text, "(광고) first");
    assert_eq!(approved["a"].headline.as_deref(), Some("Spring sale"));
}

#[test]
fn a_campaigns_history_holds_its_days_budgets_markers_and_standings() {
    let start: chrono::DateTime<chrono::Utc> = "2026-09-01T00:00:00Z".parse().expect("a time");
    let mut goal = goal();
    goal.start = Some(start);
    let at = |day: i64, record: Decision| {
        Record::Decision(Decision {
            decided_at: start + chrono::Duration::days(day) + chrono::Duration::hours(1),
            ..record
        })
    };
    let forecast = |day: u32| {
        at(
            i64::from(day),
            decision_with(
                "forecast",
                serde_json::json!({ "day": day, "cumulative": [], "target": 10 }),
                serde_json::json!({ "forecast": null, "deadline_day": null }),
            ),
        )
    };
    let drift = |reexplore: bool| {
        at(
            1,
            decision(
                "drift",
                // Keeping all the evidence, so that the standings below count every day.
                serde_json::json!({ "reexplore": reexplore, "watched": "sms", "explore_until": 5, "keep": 1.0 }),
            ),
        )
    };
    let records = vec![
        at(
            0,
            decision(
                "experiment",
                serde_json::json!({ "arms": [arm("a")], "daily": { "sms": 100.0 } }),
            ),
        ),
        observation_outcome(0, "a", 6),
        forecast(0),
        observation_outcome(1, "a", 4),
        forecast(1),
        // Made after learning day 1: in force from day 2.
        at(
            1,
            decision_with(
                "allocation",
                serde_json::json!({ "day": 1, "before": { "sms": 100.0 } }),
                serde_json::json!({ "daily": { "sms": 80.0 } }),
            ),
        ),
        // Only a drift that re-opened exploration changed course.
        drift(false),
        drift(true),
    ];
    let history = CampaignHistory::of(&goal, &records, "optimization");
    assert_eq!(history.cumulative, vec![6.0, 10.0]);
    let sms = |spend: f64| BTreeMap::from([(Channel::Sms, spend)]);
    assert_eq!(
        history.spend,
        BTreeMap::from([(0, sms(10.0)), (1, sms(10.0))])
    );
    assert_eq!(history.budgets_on(0), Some(&sms(100.0)));
    assert_eq!(history.budgets_on(1), Some(&sms(100.0)));
    assert_eq!(history.budgets_on(9), Some(&sms(80.0)));
    assert_eq!(
        history
            .markers
            .iter()
            .map(|m| (m.day, m.kind))
            .collect::<Vec<_>>(),
        vec![(Some(1), "drift")]
    );
    assert_eq!(history.standings.len(), 1);
    let a = &history.standings[0];
    assert_eq!((a.variant.as_str(), a.stats.successes), ("a", 10));
    assert!(!a.retired);
}
