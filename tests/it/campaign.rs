//! The five agents at work on a real runtime, a real sled knowledge base and the built-in market
//! simulator, on a manual clock so campaign days pass in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use campaignd::agents::compliance::{ReviewItem, ReviewVariants, Reviews};
use campaignd::agents::content::{Blocked, ReviseVariants};
use campaignd::agents::ledger;
use campaignd::agents::messages::RecordConsent;
use campaignd::agents::messages::{GOAL_ACHIEVED, Pause, Resume};
use campaignd::agents::messages::{OBSERVATIONS_RECORDED, ObservationsRecorded};
use campaignd::agents::optimization::GetProgress;
use campaignd::agents::projection;
use campaignd::agents::{self};
use campaignd::campaign::ingest::ItemResult;
use campaignd::campaign::{CampaignLoop, LoopOptions};
use campaignd::domain::campaign::{CampaignGoal, Channel};
use campaignd::domain::compliance::segment_subject;
use campaignd::domain::compliance::{ConsentRecord, Message, MessageChannel, Sender};
use campaignd::domain::content::message_of;
use campaignd::kb::{KnowledgeBase, Record, Scope};
use campaignd::market::DriftEvent;
use campaignd::protocol::{CampaignId, Origin};
use campaignd::runtime::{
    Agent, AgentError, AgentSpec, AgentState, Clock, Context, HandleRequest, Routes, Runtime,
    Services, StartContext, SupervisionPolicy,
};

use crate::support::{
    Process, agent_specs, campaignd, embedded_settings, example_campaigns_turn, kr_goal,
    kr_goal_toml, open_kb, scratch_kb, sim_start, us_goal, wait_until, write,
};

const DAY: Duration = Duration::from_secs(86_400);

struct Harness {
    runtime: Runtime,
    kb: KnowledgeBase,
    clock: Clock,
    _dir: tempfile::TempDir,
}

/// The agents of `registry` on a runtime with a scratch knowledge base, a manual clock at
/// [`sim_start`], and `services` besides the knowledge base.
async fn harness_with(
    registry: campaignd::runtime::Registry,
    specs: Vec<AgentSpec>,
    services: Services,
) -> Harness {
    let (dir, kb) = scratch_kb();
    let clock = Clock::manual(sim_start());
    let runtime = Runtime::builder(registry)
        .agents(specs)
        .services(services.with(kb.clone()))
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    Harness {
        runtime,
        kb,
        clock,
        _dir: dir,
    }
}

/// The five agents as shipped.
async fn harness() -> Harness {
    harness_with(
        agents::registry().runtime().clone(),
        agent_specs(),
        Services::new(),
    )
    .await
}

fn options() -> LoopOptions {
    LoopOptions::new(
        42,
        campaignd::domain::strategy::StrategyPlaybook::embedded().unwrap(),
    )
}

/// A campaign loop over `goals` on the harness's runtime and knowledge base.
fn campaign_loop_for(h: &Harness, goals: Vec<CampaignGoal>, options: LoopOptions) -> CampaignLoop {
    CampaignLoop::new(h.runtime.clone(), h.kb.clone(), goals, options)
}

/// Runs days until every campaign is finished or `days` have passed; returns the days run.
async fn run_days(h: &Harness, campaign_loop: &mut CampaignLoop, days: u32) -> u32 {
    for day in 0..days {
        let reports = campaign_loop.step().await;
        for report in &reports {
            assert!(report.error.is_none(), "{report:?}");
        }
        if campaign_loop.finished() {
            return day + 1;
        }
        h.clock.advance(DAY).unwrap();
        // Let the optimizer fold the day's batch before the next tick asks for progress.
        tokio::task::yield_now().await;
    }
    days
}

fn decisions(h: &Harness, goal: &CampaignGoal) -> Vec<campaignd::kb::Decision> {
    h.kb.decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .unwrap()
        .records
}

fn kinds(decisions: &[campaignd::kb::Decision]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in decisions {
        *out.entry(format!("{}:{}", d.agent, d.kind)).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_on_the_simulator_reaches_its_goal_with_a_trace_from_goal_to_allocations() {
    let h = harness().await;
    let goal = kr_goal("kr_reach", 150, 40);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], options());
    run_days(&h, &mut campaign_loop, 40).await;
    let all = decisions(&h, &goal);
    let counts = kinds(&all);
    assert!(
        counts.contains_key("orchestrator:goal_achieved"),
        "{counts:?}"
    );
    // The simulator delivers the split it is given: no day raises a sample-ratio alarm.
    assert!(
        !counts.contains_key("optimization:sample_ratio_mismatch"),
        "{counts:?}"
    );
    for kind in [
        "orchestrator:sub_goals",
        "strategy:plan",
        "content:creatives",
        "compliance:review",
        "optimization:experiment",
        "optimization:traffic_split",
        "optimization:forecast",
        "orchestrator:phase",
    ] {
        assert!(counts.contains_key(kind), "missing {kind}: {counts:?}");
    }
    // Every decision carries inputs, a reason and the campaign's correlation id.
    let correlation = ledger::campaign_correlation(&goal);
    for d in &all {
        assert!(!d.reason.is_empty(), "{d:?}");
        assert!(d.causation_id.is_some());
        assert_eq!(d.correlation_id, correlation, "{}", d.kind);
    }
    // The trace of that correlation id runs from the goal's sub-goals to every allocation change.
    let trace =
        h.kb.trace(&Scope::tenant(goal.tenant.clone()), correlation)
            .unwrap();
    let traced: Vec<&campaignd::kb::Decision> = trace
        .records
        .iter()
        .filter_map(Record::as_decision)
        .collect();
    for kind in ["sub_goals", "plan", "goal_achieved"] {
        assert!(
            traced.iter().any(|d| d.kind == kind),
            "{kind} not in the trace"
        );
    }
    let changes: Vec<_> = all
        .iter()
        .filter(|d| d.kind == "allocation" || d.kind == "traffic_split")
        .collect();
    assert!(!changes.is_empty());
    for change in changes {
        assert!(traced.iter().any(|d| d.id == change.id));
    }
    // Outcomes are linked to the decisions that produced them.
    let outcome = trace
        .records
        .iter()
        .filter_map(Record::as_outcome)
        .next()
        .unwrap();
    assert!(!outcome.decisions.is_empty());
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_forecast_misses_its_deadline_is_replanned_and_the_weak_channel_loses_budget()
 {
    let h = harness().await;
    // Far more than the budget can buy by the deadline, and SMS converting at a third of its prior.
    let goal = kr_goal("kr_late", 5000, 30);
    let mut opts = options();
    opts.channel_bias
        .insert((goal.id.clone(), Channel::Sms), 0.3);
    opts.channel_bias
        .insert((goal.id.clone(), Channel::Search), 1.0);
    opts.max_days = Some(12);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], opts);
    run_days(&h, &mut campaign_loop, 12).await;
    let all = decisions(&h, &goal);
    let replan = all
        .iter()
        .find(|d| d.agent.as_str() == "orchestrator" && d.kind == "replan")
        .unwrap_or_else(|| panic!("no replan: {:?}", kinds(&all)));
    assert!(
        replan.reason.contains("the forecast misses the deadline"),
        "{}",
        replan.reason
    );
    let plans: Vec<_> = all.iter().filter(|d| d.kind == "plan").collect();
    assert!(plans.len() >= 2, "{:?}", kinds(&all));
    let second = plans.get(1).unwrap();
    assert!(
        second.reason.contains("sms under-delivered"),
        "{}",
        second.reason
    );
    let share = |d: &campaignd::kb::Decision, channel: &str| {
        d.choice["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == channel)
            .and_then(|c| c["share"].as_f64())
            .unwrap()
    };
    assert!(
        share(second, "sms") < share(plans.first().unwrap(), "sms"),
        "{}",
        second.reason
    );
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_follows_the_stronger_channel_paced_with_each_move_recording_its_posterior() {
    let h = harness().await;
    // Search converts at 1.5 times its prior, SMS at 0.3: the budget should go to search, but
    // never more than 20 % of a day's budget at once. The target is not reached in the 20 days
    // run. The draws are seeded, so the run is the same every time.
    // Autonomous: the moves are the optimizer's alone (under supervised the large ones wait).
    let mut goal = kr_goal("kr_budget", 400, 60);
    goal.autonomy = campaignd::domain::approval::Autonomy::Autonomous;
    let mut opts = options();
    opts.channel_bias
        .insert((goal.id.clone(), Channel::Sms), 0.3);
    opts.channel_bias
        .insert((goal.id.clone(), Channel::Search), 1.5);
    opts.max_days = Some(20);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], opts);
    run_days(&h, &mut campaign_loop, 20).await;
    // Queued behind the last day's learning: once it answers, every decision is recorded.
    let standing = h
        .runtime
        .client(Origin::Runtime)
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone())
        .request("optimization", GetProgress { goal: goal.clone() })
        .await
        .unwrap();
    let all = decisions(&h, &goal);
    let moves: Vec<_> = all
        .iter()
        .filter(|d| d.kind == "allocation" && d.inputs.get("day").is_some())
        .collect();
    assert!(moves.len() >= 2, "{:?}", kinds(&all));
    let money = |v: &serde_json::Value, channel: &str| v[channel].as_f64().unwrap_or(0.0);
    for m in &moves {
        let (before, after) = (&m.inputs["before"], &m.choice["daily"]);
        let total: f64 = ["sms", "search"].iter().map(|c| money(before, c)).sum();
        let moved: f64 = ["sms", "search"]
            .iter()
            .map(|c| (money(after, c) - money(before, c)).abs())
            .sum::<f64>()
            / 2.0;
        assert!(
            moved <= 0.2 * total + 1e-6,
            "{moved} of {total}: {}",
            m.reason
        );
        let posterior = m.inputs["posterior"].as_array().expect("the posterior");
        assert_eq!(posterior.len(), 2, "{}", m.inputs);
        for p in posterior {
            let (low, mean, high) = (
                p["low"].as_f64().unwrap(),
                p["mean"].as_f64().unwrap(),
                p["high"].as_f64().unwrap(),
            );
            assert!(low < mean && mean < high, "{p}");
        }
        assert_eq!(m.inputs["pacing"]["max_move"], 0.2);
        assert!(m.inputs["seed"].is_u64());
        assert!(
            m.reason.contains(" USD"),
            "money with its currency: {}",
            m.reason
        );
    }
    let last = moves.last().unwrap();
    assert!(
        money(&last.choice["daily"], "search") > money(&moves[0].inputs["before"], "search"),
        "search gained: {}",
        last.reason
    );
    // What the orchestrator shows of the mix: the plan's and today's budgets, and why. A re-plan
    // starts the mix from its plan again.
    let search = standing
        .mix
        .channels
        .iter()
        .find(|c| c.channel == Channel::Search)
        .expect("search in the mix");
    match standing.mix.decision {
        // The budget moved since the latest plan: the mix names that move and shows its budget.
        Some(id) => {
            let shown = all.iter().find(|d| d.id == id).expect("a recorded move");
            assert_eq!(shown.kind, "allocation");
            assert_eq!(standing.mix.why.as_deref(), Some(shown.reason.as_str()));
            assert_eq!(search.daily, money(&shown.choice["daily"], "search"));
        }
        None => {
            assert_eq!(standing.mix.why, None);
            assert_eq!(search.daily, search.planned, "{:?}", kinds(&all));
        }
    }
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_drift_reopens_exploration() {
    let h = harness().await;
    let mut goal = kr_goal("kr_drift", 100_000, 60);
    goal.budget.total = 60_000.0;
    let mut opts = options();
    opts.drift.insert(
        goal.id.clone(),
        vec![DriftEvent {
            from_day: 8,
            channel: Some(Channel::Search),
            variant: None,
            cvr_multiplier: 0.1,
        }],
    );
    opts.max_days = Some(20);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], opts);
    run_days(&h, &mut campaign_loop, 20).await;
    let all = decisions(&h, &goal);
    let drift = all
        .iter()
        .find(|d| d.kind == "drift")
        .unwrap_or_else(|| panic!("no drift decision: {:?}", kinds(&all)));
    assert_eq!(drift.agent.as_str(), "optimization");
    assert_eq!(drift.choice["reexplore"], true);
    assert!(
        drift.reason.contains("exploration re-opened"),
        "{}",
        drift.reason
    );
    assert!(
        drift.reason.starts_with("drift on search, watching ")
            && (drift.reason.contains(": the rate fell ")
                || drift
                    .reason
                    .contains(": the daily rate stayed below the baseline's")),
        "reads as a sentence: {}",
        drift.reason
    );
    let day = drift.inputs["step"]
        .as_str()
        .and_then(|s| s.split('/').nth(2))
        .and_then(|d| d.parse::<u32>().ok())
        .unwrap();
    assert!(
        day >= 8,
        "drift detected on day {day}, before it was injected"
    );
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

/// One Korean SMS variant, written by hand.
fn sms_variant(text: &str) -> campaignd::domain::content::Variant {
    campaignd::domain::content::Variant {
        id: "university_students/kr_sms/ko/0.0.0".to_owned(),
        channel: Channel::Sms,
        format: campaignd::domain::channel::Format::KrSms,
        segment: "university_students".to_owned(),
        language: "ko".to_owned(),
        levels: Vec::new(),
        creative: campaignd::domain::channel::Creative {
            text: text.to_owned(),
            headline: None,
            subject: None,
            path: None,
        },
        measures: Vec::new(),
        warnings: Vec::new(),
    }
}

fn kst(at: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(at).unwrap()
}

async fn grant(h: &Harness, goal: &CampaignGoal, night: bool, withdrawn: bool) {
    let mut record = ConsentRecord::new(
        segment_subject(goal, "university_students"),
        MessageChannel::Sms,
        "marketing",
    );
    record.granted_at = Some(sim_start() - chrono::Duration::days(30));
    record.source = Some("signup_form".to_owned());
    record.text_hash = Some("abc".to_owned());
    record.night_consent = night;
    if withdrawn {
        record.withdrawn_at = Some(sim_start() - chrono::Duration::days(1));
    }
    h.runtime
        .client(Origin::Runtime)
        .request(
            "compliance",
            RecordConsent {
                tenant: goal.tenant.clone(),
                records: vec![record],
            },
        )
        .await
        .unwrap();
}

fn sender() -> Sender {
    Sender {
        business_name: Some("ABC마트".to_owned()),
        contact: Some("02-1234-5678".to_owned()),
        opt_out_number: Some("0801234567".to_owned()),
        postal_address: None,
    }
}

async fn review(
    h: &Harness,
    goal: &CampaignGoal,
    variant: &campaignd::domain::content::Variant,
    send_at: chrono::DateTime<chrono::FixedOffset>,
    round: u32,
) -> Reviews {
    let message: Message = message_of(variant, &sender(), "general");
    h.runtime
        .client(Origin::Runtime)
        .request(
            "compliance",
            ReviewVariants {
                goal: goal.clone(),
                items: vec![ReviewItem {
                    variant: variant.id.clone(),
                    segment: variant.segment.clone(),
                    message,
                    send_at,
                }],
                round,
                batch: String::new(),
            },
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_labelled_sms_is_fixed_to_the_legal_label_and_approved() {
    let h = harness().await;
    let goal = kr_goal("kr_label", 100, 30);
    grant(&h, &goal, false, false).await;
    let variant = sms_variant("[광고]ABC마트 학생 멤버십 전 구매 10% 할인! 무료거부 0801234567");
    let at = kst("2026-09-02T10:00:00+09:00");
    let first = review(&h, &goal, &variant, at, 0).await;
    let verdict = &first.verdicts[0].verdict;
    assert!(!verdict.approved);
    assert!(verdict.has_finding("KR-AD-LABEL"), "{verdict:?}");
    let revised = h
        .runtime
        .client(Origin::Runtime)
        .request(
            "content",
            ReviseVariants {
                goal: goal.clone(),
                blocked: vec![Blocked {
                    variant: variant.clone(),
                    send_at: at,
                    findings: verdict.findings.clone(),
                    fixable: verdict.fixable,
                }],
                round: 1,
                batch: String::new(),
            },
        )
        .await
        .unwrap();
    let fixed = revised.variants.first().expect("the variant was revised");
    assert!(
        fixed.creative.text.starts_with("(광고)"),
        "{}",
        fixed.creative.text
    );
    assert!(
        !fixed.creative.text.contains("[광고]"),
        "{}",
        fixed.creative.text
    );
    let second = review(&h, &goal, fixed, at, 1).await;
    assert!(
        second.verdicts[0].verdict.approved,
        "{:?}",
        second.verdicts[0].verdict
    );
    // Both verdicts are decisions with their reasons.
    let reviews: Vec<_> = decisions(&h, &goal)
        .into_iter()
        .filter(|d| d.kind == "review")
        .collect();
    assert_eq!(reviews.len(), 2);
    let blocked = reviews
        .iter()
        .find(|d| projection::step_of(d).is_some_and(|s| s.starts_with("review/0/")))
        .unwrap();
    assert!(blocked.reason.contains("KR-AD-LABEL"), "{}", blocked.reason);
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_send_without_night_consent_is_rescheduled_and_a_withdrawn_consent_blocks() {
    let h = harness().await;
    let goal = kr_goal("kr_night", 100, 30);
    grant(&h, &goal, false, false).await;
    let variant = sms_variant("(광고)ABC마트 학생 멤버십 전 구매 10% 할인! 무료거부 0801234567");
    let night = kst("2026-09-02T21:30:00+09:00");
    let first = review(&h, &goal, &variant, night, 0).await;
    let verdict = &first.verdicts[0].verdict;
    assert!(!verdict.approved, "{verdict:?}");
    assert!(verdict.has_finding("KR-NIGHT"), "{verdict:?}");
    let revised = h
        .runtime
        .client(Origin::Runtime)
        .request(
            "content",
            ReviseVariants {
                goal: goal.clone(),
                blocked: vec![Blocked {
                    variant: variant.clone(),
                    send_at: night,
                    findings: verdict.findings.clone(),
                    fixable: verdict.fixable,
                }],
                round: 1,
                batch: String::new(),
            },
        )
        .await
        .unwrap();
    let moved = revised
        .reschedule
        .get(&variant.id)
        .copied()
        .expect("rescheduled");
    assert_eq!(moved, kst("2026-09-03T08:00:00+09:00"));
    let again = review(&h, &goal, &revised.variants[0], moved, 1).await;
    assert!(
        again.verdicts[0].verdict.approved,
        "{:?}",
        again.verdicts[0].verdict
    );

    // A withdrawal recorded in the ledger blocks the same message at a legal hour, with no fix.
    grant(&h, &goal, false, true).await;
    let withdrawn = review(&h, &goal, &variant, kst("2026-09-02T10:00:00+09:00"), 2).await;
    let verdict = &withdrawn.verdicts[0].verdict;
    assert!(!verdict.approved, "{verdict:?}");
    assert!(!verdict.fixable, "{verdict:?}");
    assert!(verdict.has_finding("KR-OPTIN"), "{verdict:?}");
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

/// Stands in for compliance and fails every review, so supervision isolates it.
struct BrokenCompliance;

impl Agent for BrokenCompliance {
    const NAME: &'static str = "compliance";

    async fn start(_ctx: StartContext) -> Result<Self, AgentError> {
        Ok(BrokenCompliance)
    }
    fn routes(routes: &mut Routes<Self>) {
        routes.request::<ReviewVariants>();
    }
}

impl HandleRequest<ReviewVariants> for BrokenCompliance {
    async fn handle_request(
        &mut self,
        _ctx: &Context,
        _request: campaignd::protocol::Envelope<ReviewVariants>,
    ) -> Result<Reviews, AgentError> {
        Err(AgentError::msg("rule engine unavailable"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_compliance_isolated_nothing_is_approved_or_bought() {
    let mut registry = agents::registry().runtime().clone();
    registry.register::<BrokenCompliance>("compliance");
    let mut specs = agent_specs();
    for spec in &mut specs {
        if spec.name.as_str() == "compliance" {
            spec.supervision = SupervisionPolicy {
                max_restarts: 0,
                ..SupervisionPolicy::default()
            };
        }
    }
    let h = harness_with(registry, specs, Services::new()).await;
    let goal = kr_goal("kr_closed", 100, 30);
    let mut opts = options();
    opts.audience_consent = false;
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], opts);
    for _ in 0..5 {
        for report in campaign_loop.step().await {
            let tick = report.tick.expect("the orchestrator answers");
            assert!(tick.buys.is_empty(), "{tick:?}");
            assert!(tick.held.is_some());
        }
        h.clock.advance(DAY).unwrap();
        // Compliance fails its first review and is isolated at once; every later tick must find
        // the orchestrator told (by the agent_isolated event), not racing the event.
        wait_until(
            "compliance isolated and the orchestrator done with its mailbox",
            Duration::from_secs(5),
            || {
                h.runtime
                    .agent_status("compliance")
                    .is_some_and(|s| s.state == AgentState::Isolated)
                    && h.runtime
                        .agent_status("orchestrator")
                        .is_some_and(|s| s.in_flight == 0)
            },
        )
        .await;
    }
    let status = h.runtime.agent_status("compliance").unwrap();
    assert_eq!(format!("{:?}", status.state).to_lowercase(), "isolated");
    let all = decisions(&h, &goal);
    assert!(
        all.iter()
            .all(|d| d.kind != "setup" && d.kind != "experiment")
    );
    assert!(all.iter().all(|d| d.kind != "review"));
    let holds: Vec<_> = all.iter().filter(|d| d.kind == "hold").collect();
    assert!(holds.len() >= 2, "{:?}", kinds(&all));
    assert!(
        holds
            .iter()
            .any(|d| d.reason.contains("compliance is isolated"))
    );
    let outcomes =
        h.kb.by_campaign(&ledger::scope(&goal), &goal.id)
            .unwrap()
            .records
            .into_iter()
            .filter(|r| r.as_outcome().is_some())
            .count();
    assert_eq!(outcomes, 0, "nothing was sent, so nothing was observed");
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_campaigns_never_see_another_clients_guidelines_creatives_or_decisions() {
    let h = harness().await;
    let kr = kr_goal("kr_tenant", 100_000, 30);
    let us = us_goal("us_tenant", 100_000, 30);
    let mut opts = options();
    opts.max_days = Some(3);
    let mut campaign_loop = campaign_loop_for(&h, vec![kr.clone(), us.clone()], opts);
    run_days(&h, &mut campaign_loop, 3).await;
    let kr_decisions = decisions(&h, &kr);
    let us_decisions = decisions(&h, &us);
    assert!(!kr_decisions.is_empty() && !us_decisions.is_empty());
    // Scoped to its own tenant, a campaign's query finds nothing of the other's.
    assert!(
        h.kb.by_campaign(&Scope::tenant(us.tenant.clone()), &kr.id)
            .unwrap()
            .records
            .is_empty()
    );
    assert!(
        h.kb.by_campaign(&Scope::tenant(kr.tenant.clone()), &us.id)
            .unwrap()
            .records
            .is_empty()
    );
    for d in &kr_decisions {
        assert_eq!(d.tenant, kr.tenant);
    }
    for d in &us_decisions {
        assert_eq!(d.tenant, us.tenant);
    }
    // Creatives carry their own brand only.
    let creatives = |ds: &[campaignd::kb::Decision]| {
        ds.iter()
            .find(|d| d.kind == "creatives")
            .map(|d| d.choice.to_string())
            .unwrap()
    };
    let kr_text = creatives(&kr_decisions);
    let us_text = creatives(&us_decisions);
    assert!(
        !us_text.contains("ACME") && !us_text.contains("ABC마트"),
        "{us_text}"
    );
    assert!(!kr_text.contains("Globex"), "{kr_text}");
    // The content agent resolves a voice only from the campaign's own organization.
    let foreign = campaignd::domain::brand::TenantFile::from_toml_str(
        "acme",
        &std::fs::read_to_string("config/tenants/acme.toml").unwrap(),
    )
    .unwrap()
    .voice_for(&us.tenant, &us.id);
    assert!(foreign.is_err());
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_pause_and_resume_a_campaign() {
    let h = harness().await;
    let goal = kr_goal("kr_pause", 100_000, 30);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], options());
    run_days(&h, &mut campaign_loop, 2).await;
    let operator = h.runtime.operator("ops");
    operator
        .command(
            "orchestrator",
            Pause {
                campaign: goal.id.clone(),
                why: "budget review".to_owned(),
            },
        )
        .await
        .unwrap();
    let paused = campaign_loop.step().await;
    let tick = paused[0].tick.as_ref().unwrap();
    assert!(tick.buys.is_empty());
    assert!(
        tick.held
            .as_deref()
            .is_some_and(|h| h.starts_with("paused")),
        "{tick:?}"
    );
    operator
        .command(
            "orchestrator",
            Resume {
                campaign: goal.id.clone(),
                why: "compliance revived".into(),
            },
        )
        .await
        .unwrap();
    let resumed = campaign_loop.step().await;
    assert!(!resumed[0].tick.as_ref().unwrap().buys.is_empty());
    let all = decisions(&h, &goal);
    let pause = all.iter().find(|d| d.kind == "pause").unwrap();
    assert!(pause.reason.contains("budget review"), "{}", pause.reason);
    assert!(all.iter().any(|d| d.kind == "resume"));
    // A goal-achieved subscriber is not required: publishing to a topic nobody follows is fine.
    let _ = GOAL_ACHIEVED;
    let _: BTreeSet<CampaignId> = BTreeSet::new();
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

/// Starts the real binary in `base` (its config, campaigns and data live there).
fn start_daemon(base: &std::path::Path) -> Process {
    Process::spawn(
        campaignd()
            .args(["--config", "campaignd.toml", "run", "--log-format", "json"])
            .current_dir(base),
        None,
    )
}

/// Waits for `count` campaign days to be logged, each within a minute of the one before.
fn wait_days(daemon: &Process, count: usize) {
    for day in 1..=count {
        daemon.wait_for_lines(
            &format!("campaign day {day} of {count}"),
            day,
            Duration::from_secs(60),
            |line| line.contains("campaign day"),
        );
    }
}

/// Every decision of the campaign, read through the library once the daemon has let go of the kb.
fn recorded(base: &std::path::Path, goal: &CampaignGoal) -> Vec<campaignd::kb::Decision> {
    let kb = open_kb(&base.join("data/kb"));
    let found = kb
        .decisions_by_campaign(&ledger::scope(goal), &goal.id)
        .unwrap();
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    found.records
}

fn observed_days(decisions: &[campaignd::kb::Decision]) -> BTreeSet<u32> {
    decisions
        .iter()
        .filter(|d| d.kind == "forecast")
        .filter_map(|d| projection::step_of(d)?.rsplit('/').next()?.parse().ok())
        .collect()
}

#[test]
fn the_daemon_killed_mid_campaign_resumes_without_losing_or_repeating_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let goal = kr_goal("kr_kill", 100_000, 60);
    write(
        base,
        "campaigns/kr_kill.toml",
        &kr_goal_toml("kr_kill", 100_000, 60),
    );
    write(
        base,
        "campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = \"data\"\ncampaigns_dir = \"campaigns\"\nagents_dir = \"agents\"\n\
             [api]\nlisten = \"127.0.0.1:0\"\n\
             [clock]\nmode = \"accelerated\"\nfactor = 432000.0\nstart = {}\n",
            sim_start().to_rfc3339().replace("+00:00", "Z")
        ),
    );

    // First run: killed without warning after a few campaign days, mid-way through the next.
    let mut first = start_daemon(base);
    wait_days(&first, 4);
    // Not a wait for anything: the kill is meant to land at some point inside the next day.
    std::thread::sleep(Duration::from_millis(90));
    first.kill();
    let before = recorded(base, &goal);
    let days_before = observed_days(&before);
    assert!(days_before.len() >= 3, "{:?}", kinds(&before));

    // Second run on the same data dir, stopped cleanly after a few more days.
    let mut second = start_daemon(base);
    wait_days(&second, 3);
    assert!(second.is_running(), "the restarted daemon exited");
    let status = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let after = recorded(base, &goal);

    // Nothing acknowledged before the kill is lost.
    let after_ids: BTreeSet<_> = after.iter().map(|d| d.id).collect();
    for d in &before {
        assert!(
            after_ids.contains(&d.id),
            "lost {} {:?}",
            d.kind,
            projection::step_of(d)
        );
    }
    // Nothing is decided twice: one decision per campaign step.
    let mut steps = BTreeSet::new();
    for d in &after {
        let step = format!("{}:{}", d.agent, projection::step_of(d).unwrap_or_default());
        assert!(steps.insert(step.clone()), "decided twice: {step}");
    }
    assert_eq!(
        after.iter().filter(|d| d.kind == "sub_goals").count(),
        1,
        "planned once"
    );
    // The campaign went on from where it stopped: more days, none skipped.
    let days_after = observed_days(&after);
    assert!(
        days_after.len() > days_before.len(),
        "{days_before:?} → {days_after:?}"
    );
    let last = *days_after.iter().next_back().unwrap();
    let first_day = *days_after.iter().next().unwrap();
    assert_eq!(
        days_after.len() as u32,
        last - first_day + 1,
        "a day was skipped: {days_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_us_email_and_social_campaign_reaches_its_goal_with_approved_emails() {
    let h = harness().await;
    let goal = us_goal("us_reach", 200, 40);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], options());
    run_days(&h, &mut campaign_loop, 40).await;
    let all = decisions(&h, &goal);
    assert!(
        all.iter().any(|d| d.kind == "goal_achieved"),
        "{:?}",
        kinds(&all)
    );
    let approved_email = all.iter().any(|d| {
        d.kind == "review"
            && d.inputs["message"]["channel"] == "email"
            && d.choice["approved"] == true
    });
    assert!(approved_email, "no email variant was approved");
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

/// The embedded example campaigns (the ones `campaignd run` starts on a fresh machine), loaded the
/// way the daemon loads them, on a runtime that carries the same settings.
async fn example_harness() -> (Harness, Vec<CampaignGoal>) {
    let settings = embedded_settings();
    let campaigns = settings.campaigns.clone();
    // Three campaigns with up to 216 variants are slow in a debug build on a busy machine: a
    // timeout would only make the day run again.
    let specs: Vec<AgentSpec> = agent_specs()
        .into_iter()
        .map(|mut spec| {
            spec.request_timeout = Duration::from_secs(120);
            spec
        })
        .collect();
    let services = Services::new().with(std::sync::Arc::new(settings));
    let h = harness_with(agents::registry().runtime().clone(), specs, services).await;
    (h, campaigns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_campaign_buys_and_observes_on_every_day_after_its_first() {
    let _turn = example_campaigns_turn().await;
    let (h, campaigns) = example_harness().await;
    assert_eq!(campaigns.len(), 3);
    let mut options = options();
    // Five days each: once the first two are done, the month until us_email_social starts costs
    // nothing.
    options.max_days = Some(5);
    let mut campaign_loop = campaign_loop_for(&h, campaigns.clone(), options);
    let mut days_run: BTreeMap<CampaignId, Vec<(u32, usize, usize)>> = BTreeMap::new();
    let mut errors = Vec::new();
    for _ in 0..36 {
        if campaign_loop.finished() {
            break;
        }
        for report in campaign_loop.step().await {
            // A day that could not complete (a timeout on a loaded machine) is run again.
            if let Some(error) = &report.error {
                errors.push(format!("{} day {}: {error}", report.campaign, report.day));
                continue;
            }
            let buys = report.tick.as_ref().map_or(0, |t| t.buys.len());
            let observed = report.ingest.as_ref().map_or(0, |i| {
                i.items
                    .iter()
                    .filter(|i| matches!(i, ItemResult::Recorded(_)))
                    .count()
            });
            days_run
                .entry(report.campaign.clone())
                .or_default()
                .push((report.day, buys, observed));
        }
        h.clock.advance(DAY).unwrap();
        tokio::task::yield_now().await;
    }
    // Drained: the optimizer has learned from the last batch.
    h.runtime.shutdown(Duration::from_secs(5)).await;
    for goal in &campaigns {
        let days = days_run.get(&goal.id).cloned().unwrap_or_default();
        assert_eq!(days.len(), 5, "{}: {days:?} {errors:?}", goal.id);
        for &(day, buys, observed) in days.iter().skip(1) {
            assert!(buys > 0 && observed > 0, "{} day {day}: {days:?}", goal.id);
        }
        let forecasts = decisions(&h, goal)
            .iter()
            .filter(|d| d.kind == "forecast")
            .count();
        assert_eq!(forecasts, 5, "{}: {forecasts} forecasts", goal.id);
        // The simulated audience opted in before the first send, so every channel of every example
        // has approved variants in the experiment (acme_spring_push's push variants were once all
        // blocked for a consent dated after the first send).
        let arms: BTreeSet<String> = decisions(&h, goal)
            .iter()
            .filter(|d| d.kind == "experiment")
            .filter_map(|d| d.choice["arms"].as_array().cloned())
            .flatten()
            .filter_map(|a| a["channel"].as_str().map(str::to_owned))
            .collect();
        for &channel in &goal.channels {
            assert!(
                arms.contains(channel.as_str()),
                "{}: no approved variant on {channel}: {arms:?}",
                goal.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_follows_reloaded_campaigns_added_removed_and_changed_before_their_start() {
    let (h, campaigns) = example_harness().await;
    // Months before any example starts: nothing is ticked, only the lists change.
    h.clock
        .set("2026-01-01T00:00:00Z".parse().unwrap())
        .unwrap();
    let mut settings = embedded_settings();
    // acme_spring_push has no start date: it would start at once.
    settings.campaigns.retain(|g| g.start.is_some());
    let live = campaignd::settings::LiveSettings::new(std::sync::Arc::new(settings.clone()));
    let mut campaign_loop =
        campaign_loop_for(&h, Vec::new(), options()).with_settings(live.clone());
    assert!(campaign_loop.step().await.is_empty(), "nothing has started");
    let ids = |l: &CampaignLoop| {
        l.campaigns()
            .into_iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    };
    let all: Vec<String> = campaigns
        .iter()
        .filter(|g| g.start.is_some())
        .map(|g| g.id.to_string())
        .collect();
    assert_eq!(all, ["kr_students_signups", "us_email_social"]);
    assert_eq!(ids(&campaign_loop), all);

    let mut changed = settings.clone();
    changed
        .campaigns
        .retain(|g| g.id.as_str() != "us_email_social");
    let kr = changed
        .campaigns
        .iter_mut()
        .find(|g| g.id.as_str() == "kr_students_signups")
        .unwrap();
    kr.target += 100;
    let new_target = kr.target;
    live.replace(std::sync::Arc::new(changed));
    campaign_loop.step().await;
    assert_eq!(ids(&campaign_loop), ["kr_students_signups"]);
    let kr = campaign_loop
        .board()
        .get(&CampaignId::from("kr_students_signups"))
        .unwrap();
    assert_eq!(
        kr.goal.target, new_target,
        "a goal changed before its start is taken"
    );

    live.replace(std::sync::Arc::new(settings));
    campaign_loop.step().await;
    assert_eq!(
        ids(&campaign_loop),
        all,
        "a campaign added back is ticked again"
    );
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_batch_for_a_day_already_learned_from_is_counted_once() {
    let h = harness().await;
    let goal = kr_goal("late_batch", 100_000, 60);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], options());
    run_days(&h, &mut campaign_loop, 3).await;
    let client = h
        .runtime
        .client(Origin::Runtime)
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone());
    let conversions = || async {
        client
            .request("optimization", GetProgress { goal: goal.clone() })
            .await
            .unwrap()
            .progress
            .conversions
    };
    let before = conversions().await;
    let arm = decisions(&h, &goal)
        .iter()
        .filter(|d| d.kind == "experiment")
        .find_map(|d| d.choice["arms"].get(0).cloned())
        .expect("the experiment has arms");
    let observation = serde_json::from_value(serde_json::json!({
        "campaign": goal.id, "channel": arm["channel"], "variant": arm["variant"],
        "window_start": sim_start(), "window_end": sim_start() + chrono::Duration::days(1),
        "impressions": 1000, "clicks": 100, "conversions": 7, "spend": 10.0,
    }))
    .unwrap();
    // Day 0 was learned from; this is a second export of it, as its own outcome.
    let late = ObservationsRecorded {
        goal: goal.clone(),
        day: 0,
        observations: vec![observation],
        outcomes: vec![campaignd::kb::OutcomeId(uuid::Uuid::now_v7())],
    };
    client.publish(OBSERVATIONS_RECORDED, late.clone()).unwrap();
    assert_eq!(conversions().await, before + 7, "the late batch is counted");
    client.publish(OBSERVATIONS_RECORDED, late).unwrap();
    assert_eq!(conversions().await, before + 7, "and counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bred_generation_is_written_reviewed_and_joined_before_it_is_bought() {
    let h = harness().await;
    // Out of reach in the 16 days run, so the optimizer breeds on days 7 and 14 and each
    // generation joins at the next tick. Five messages and four calls to action are more
    // combinations per cell than content writes at first: there is something new to breed.
    let toml = kr_goal_toml("kr_bred", 100_000, 60).replace(
        r#"messages = ["학생증 하나로 가입 끝", "새 학기 쇼핑을 가볍게"]"#,
        r#"messages = ["학생증 하나로 가입 끝", "새 학기 쇼핑을 가볍게", "매장과 온라인 모두 적용", "가입비 없는 학생 혜택", "친구와 함께 받는 혜택"]
calls_to_action = ["지금 가입하세요", "가입하고 시작하기", "혜택 확인하기", "오늘 가입하기"]"#,
    );
    let goal: CampaignGoal = toml::from_str(&toml).unwrap();
    let mut opts = options();
    opts.max_days = Some(16);
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], opts);
    let mut bought: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for _ in 0..16 {
        for report in campaign_loop.step().await {
            assert!(report.error.is_none(), "{report:?}");
            for buy in report.tick.iter().flat_map(|t| &t.buys) {
                bought
                    .entry(buy.variant.clone())
                    .or_default()
                    .insert(report.day);
            }
        }
        h.clock.advance(DAY).unwrap();
        tokio::task::yield_now().await;
    }
    h.runtime.shutdown(Duration::from_secs(5)).await;
    let all = decisions(&h, &goal);
    let bred: Vec<_> = all
        .iter()
        .filter(|d| d.kind == "genetic_step")
        .filter(|d| d.choice["bred"].as_array().is_some_and(|b| !b.is_empty()))
        .collect();
    assert!(!bred.is_empty(), "no generation bred: {:?}", kinds(&all));
    let joins: Vec<_> = all.iter().filter(|d| d.kind == "arms_joined").collect();
    assert!(!joins.is_empty(), "no generation joined: {:?}", kinds(&all));
    // Every variant bought was approved by compliance: a bred variant compliance blocks never
    // reaches the market.
    let approved: BTreeSet<&str> = all
        .iter()
        .filter(|d| d.kind == "review" && d.choice["approved"] == true)
        .filter_map(|d| d.inputs["variant"].as_str())
        .collect();
    for variant in bought.keys() {
        assert!(
            approved.contains(variant.as_str()),
            "{variant} bought unapproved"
        );
    }
    let mut joined_any = false;
    for join in joins {
        let day = join.inputs["day"].as_u64().unwrap() as u32;
        // The generation the join names was bred before it, and content wrote it from that step.
        let generation = join.inputs["generation"].as_str().unwrap();
        assert!(
            bred.iter().any(|d| d.id.to_string() == generation),
            "{join:?}"
        );
        if let Some(creatives) = join.inputs["creatives"].as_str() {
            let written = all.iter().find(|d| d.id.to_string() == creatives).unwrap();
            assert_eq!(written.inputs["bred_by"].as_str(), Some(generation));
        }
        for arm in join.choice["joined"].as_array().unwrap() {
            joined_any = true;
            let variant = arm["variant"].as_str().unwrap();
            assert!(approved.contains(variant), "{variant} joined unapproved");
            // Format and language come with every bred arm: it is bred again in its own cell.
            assert!(
                arm["format"].is_string() && arm["language"].is_string(),
                "{arm}"
            );
            let days = bought.get(variant).cloned().unwrap_or_default();
            assert!(
                days.iter().all(|&d| d >= day),
                "{variant} bought before day {day}: {days:?}"
            );
        }
        for retired in join.choice["retired"].as_array().unwrap() {
            let variant = retired["variant"].as_str().unwrap();
            let days = bought.get(variant).cloned().unwrap_or_default();
            assert!(
                days.iter().all(|&d| d < day),
                "{variant} bought after it retired on day {day}: {days:?}"
            );
        }
    }
    assert!(joined_any, "every bred variant was blocked");
    let bought_bred = bought.keys().any(|v| {
        all.iter()
            .filter(|d| d.kind == "arms_joined")
            .flat_map(|d| d.choice["joined"].as_array().cloned().unwrap_or_default())
            .any(|a| a["variant"] == v.as_str())
    });
    assert!(bought_bred, "no bred variant was bought");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generation_is_bred_once_the_goal_is_met() {
    let h = harness().await;
    let short = kr_goal("bred_short", 100_000, 60);
    let met = kr_goal("bred_met", 500, 60);
    let mut campaign_loop = campaign_loop_for(&h, vec![short.clone(), met.clone()], options());
    run_days(&h, &mut campaign_loop, 2).await;
    // Day 7's batch, a breeding day: one campaign still short of its target, one past it.
    for (goal, conversions) in [(&short, 5), (&met, 1_000)] {
        let client = h
            .runtime
            .client(Origin::Runtime)
            .with_tenant(goal.tenant.clone())
            .with_campaign(goal.id.clone());
        let arm = decisions(&h, goal)
            .iter()
            .filter(|d| d.kind == "experiment")
            .find_map(|d| d.choice["arms"].get(0).cloned())
            .expect("the experiment has arms");
        let start = sim_start() + chrono::Duration::days(7);
        let observation = serde_json::from_value(serde_json::json!({
            "campaign": goal.id, "channel": arm["channel"], "variant": arm["variant"],
            "window_start": start, "window_end": start + chrono::Duration::days(1),
            "impressions": 100_000, "clicks": 10_000, "conversions": conversions, "spend": 10.0,
        }))
        .unwrap();
        let batch = ObservationsRecorded {
            goal: goal.clone(),
            day: 7,
            observations: vec![observation],
            outcomes: vec![campaignd::kb::OutcomeId(uuid::Uuid::now_v7())],
        };
        client.publish(OBSERVATIONS_RECORDED, batch).unwrap();
        // Queued behind the batch's learning.
        client
            .request("optimization", GetProgress { goal: goal.clone() })
            .await
            .unwrap();
    }
    let bred_on_7 = |goal: &CampaignGoal| {
        decisions(&h, goal)
            .iter()
            .any(|d| d.kind == "genetic_step" && d.inputs["day"] == 7)
    };
    assert!(bred_on_7(&short), "{:?}", kinds(&decisions(&h, &short)));
    assert!(!bred_on_7(&met), "{:?}", kinds(&decisions(&h, &met)));
    h.runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_spends_past_the_budget_stops_the_buys_with_a_budget_cap() {
    // Results come from outside (no simulator), and a platform reports spending the whole budget
    // on day 0, far over the day's share: day 1's buys are cut to nothing, and the cut is recorded.
    let h = harness().await;
    let mut goal = kr_goal("kr_cap", 1_000_000, 10);
    goal.autonomy = campaignd::domain::approval::Autonomy::Autonomous;
    let mut opts = options();
    opts.simulate = false;
    let mut campaign_loop = campaign_loop_for(&h, vec![goal.clone()], opts);
    let day0 = campaign_loop.step().await;
    let buys = day0[0]
        .tick
        .as_ref()
        .map(|t| t.buys.clone())
        .unwrap_or_default();
    assert!(!buys.is_empty(), "{day0:?}");
    let buy = &buys[0];
    let start = goal.start.expect("a start");
    let overspent = campaignd::market::Observation {
        campaign: goal.id.clone(),
        channel: buy.channel,
        segment: Some(buy.segment.clone()),
        variant: buy.variant.clone(),
        window_start: start,
        window_end: start + chrono::Duration::days(1),
        impressions: 100_000,
        clicks: 2_000,
        conversions: 10,
        spend: goal.budget.total,
        revenue: 0.0,
    };
    let client = h
        .runtime
        .client(Origin::Runtime)
        .with_tenant(goal.tenant.clone())
        .with_campaign(goal.id.clone());
    let batch = campaignd::campaign::ingest::Batch {
        goal: goal.clone(),
        day: 0,
        observations: vec![overspent],
    };
    campaignd::campaign::ingest::ingest(&h.kb, &client, None, batch)
        .await
        .expect("the batch is ingested");
    h.clock.advance(DAY).unwrap();
    tokio::task::yield_now().await;

    // The batch's event reaches the optimizer before the tick asks it for progress (one mailbox).
    let day1 = campaign_loop.step().await.remove(0);
    let tick = day1.tick.as_ref().expect("day 1 ticked");
    assert!(tick.buys.is_empty(), "{:?}", tick.buys);
    let all = decisions(&h, &goal);
    let caps: Vec<_> = all.iter().filter(|d| d.kind == "budget_cap").collect();
    assert_eq!(caps.len(), 1, "{:?}", kinds(&all));
    let cap = caps[0];
    assert_eq!(cap.agent.as_str(), "orchestrator");
    assert_eq!(cap.inputs["day"], 1);
    assert_eq!(cap.inputs["total"], goal.budget.total);
    assert!(cap.inputs["planned"].as_f64().unwrap() > 0.0, "{cap:?}");
    assert_eq!(cap.choice["allowed"], 0.0);
    assert!(cap.reason.contains("past the budget"), "{}", cap.reason);
}
