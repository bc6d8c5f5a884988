//! People in the loop: how much a campaign may do without a person (its [`Autonomy`]), which of its
//! decisions wait for one ([`ApprovalPolicy`] and the `*_waits` rules), what an amended answer may
//! change ([`amend_buys`], [`amend_budget`], [`amend_creatives`]) and when the record of answers earns the proposal to
//! stop asking ([`earned_autonomy`]).
//!
//! Pure rules only: who answers, where a request is kept and when it expires are the agents'
//! business. A rule answers `Some(why)` when the decision must wait, with the reason a person
//! reads in the request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::campaign::{Buy, Channel};
use super::optimization::moved;

/// How much a campaign does without a person.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// Every order to a channel (each day's buys) and every budget change waits for a person.
    Manual,
    /// Only the risky decisions wait: a budget move above the policy's share or onto a channel
    /// that had no budget, a re-plan, spending ahead of the budget's pace, a creative whose
    /// compliance risk is above the policy's or whose product is in a sensitive category.
    #[default]
    Supervised,
    /// Nothing waits; everything is still recorded.
    Autonomous,
}

impl Autonomy {
    pub fn as_str(self) -> &'static str {
        match self {
            Autonomy::Manual => "manual",
            Autonomy::Supervised => "supervised",
            Autonomy::Autonomous => "autonomous",
        }
    }
}

/// What a request asks a person to approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// A day's buys: the orders to the channels.
    Buys,
    /// Budget moved between channels.
    BudgetMove,
    /// A new plan, with its budget per channel.
    Replan,
    /// To stop asking for one kind of decision on one campaign (earned autonomy).
    Autonomy,
    /// Creatives compliance approved but found risky, before they are sent.
    Creatives,
}

impl ApprovalKind {
    pub const ALL: [ApprovalKind; 5] = [
        ApprovalKind::Buys,
        ApprovalKind::BudgetMove,
        ApprovalKind::Replan,
        ApprovalKind::Autonomy,
        ApprovalKind::Creatives,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Buys => "buys",
            ApprovalKind::BudgetMove => "budget_move",
            ApprovalKind::Replan => "replan",
            ApprovalKind::Autonomy => "autonomy",
            ApprovalKind::Creatives => "creatives",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What applies when nobody answers in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// As if rejected: what was already approved goes on.
    Reject,
    /// The campaign is paused until an operator resumes it.
    Hold,
}

/// How long a kind of request waits, on the wall clock, and what applies after.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// Minutes a person has to answer; 0 expires the request at the campaign's next tick.
    pub after_minutes: u32,
    pub on_expiry: OnExpiry,
}

/// The `[approvals]` table: thresholds of `supervised`, expiries and the earned-autonomy bar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// Under `supervised`, a budget move waits when it moves more than this share of the day's
    /// budget (0–1).
    pub budget_move_share: f64,
    /// Under `supervised`, a day's buys wait when they take the spend more than this share ahead
    /// of the budget's even pace to the deadline (0.1: 10 % ahead).
    pub ahead_of_pace: f64,
    /// Under `manual` and `supervised`, a creative compliance approved waits when its risk score
    /// (0–99) is above this.
    pub creative_risk: u8,
    /// Product categories whose every creative waits under `manual` and `supervised`.
    pub sensitive_categories: Vec<String>,
    pub buys: Expiry,
    pub budget_move: Expiry,
    pub replan: Expiry,
    pub autonomy: Expiry,
    pub creatives: Expiry,
    /// How many of the latest answers of a kind earned autonomy looks at.
    pub earned_window: u32,
    /// The share of those approved unchanged past which campaignd proposes to stop asking.
    pub earned_bar: f64,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        let reject = |hours: u32| Expiry {
            after_minutes: hours * 60,
            on_expiry: OnExpiry::Reject,
        };
        ApprovalPolicy {
            budget_move_share: 0.15,
            ahead_of_pace: 0.1,
            creative_risk: 25,
            sensitive_categories: [
                "health_food",
                "dietary_supplement",
                "alcohol",
                "pharmaceutical",
                "financial",
            ]
            .map(str::to_owned)
            .to_vec(),
            buys: reject(12),
            budget_move: reject(24),
            replan: Expiry {
                after_minutes: 48 * 60,
                on_expiry: OnExpiry::Hold,
            },
            autonomy: reject(7 * 24),
            creatives: reject(24),
            earned_window: 20,
            earned_bar: 0.9,
        }
    }
}

impl ApprovalPolicy {
    pub fn expiry(&self, kind: ApprovalKind) -> Expiry {
        match kind {
            ApprovalKind::Buys => self.buys,
            ApprovalKind::BudgetMove => self.budget_move,
            ApprovalKind::Replan => self.replan,
            ApprovalKind::Autonomy => self.autonomy,
            ApprovalKind::Creatives => self.creatives,
        }
    }

    /// Every value out of range, as (key under `[approvals]`, what is wrong).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let share = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !share(self.budget_move_share) {
            out.push((
                "budget_move_share",
                format!(
                    "must be a share from 0 to 1, got {}",
                    self.budget_move_share
                ),
            ));
        }
        if !(self.ahead_of_pace.is_finite() && (0.0..=10.0).contains(&self.ahead_of_pace)) {
            out.push((
                "ahead_of_pace",
                format!("must be from 0 to 10, got {}", self.ahead_of_pace),
            ));
        }
        if !share(self.earned_bar) || self.earned_bar == 0.0 {
            out.push((
                "earned_bar",
                format!(
                    "must be a share above 0, at most 1, got {}",
                    self.earned_bar
                ),
            ));
        }
        if self.creative_risk > 99 {
            out.push((
                "creative_risk",
                format!(
                    "must be from 0 to 99 (a compliance risk score; 100 is blocked), got {}",
                    self.creative_risk
                ),
            ));
        }
        if let Some(bad) = self
            .sensitive_categories
            .iter()
            .find(|c| c.trim().is_empty() || c.trim() != c.as_str())
        {
            out.push((
                "sensitive_categories",
                format!("`{bad}` is not a product category (empty, or spaces around it)"),
            ));
        }
        if !(1..=1000).contains(&self.earned_window) {
            out.push((
                "earned_window",
                format!("must be from 1 to 1000, got {}", self.earned_window),
            ));
        }
        for kind in ApprovalKind::ALL {
            // A year: longer is a request nobody is expected to answer.
            if self.expiry(kind).after_minutes > 366 * 24 * 60 {
                out.push((
                    kind.as_str(),
                    format!(
                        "after_minutes must be at most 527040 (a year), got {}",
                        self.expiry(kind).after_minutes
                    ),
                ));
            }
        }
        out
    }
}

/// Whether a day's buys wait: always under `manual`; under `supervised` when they take the spend
/// ahead of the even pace (`spent` so far plus `today`'s against `allowed`, the budget's share of
/// the days passed including today).
pub fn buys_wait(
    autonomy: Autonomy,
    spent: f64,
    today: f64,
    allowed: f64,
    policy: &ApprovalPolicy,
) -> Option<String> {
    match autonomy {
        Autonomy::Manual => Some("under manual autonomy every day's buys wait for a person".into()),
        Autonomy::Autonomous => None,
        Autonomy::Supervised => {
            let bar = allowed * (1.0 + policy.ahead_of_pace);
            (today > 0.0 && spent + today > bar).then(|| {
                format!(
                    "these buys take the spend to {:.0}, more than {:.0} % ahead of the even pace ({:.0} by the end of today)",
                    spent + today,
                    policy.ahead_of_pace * 100.0,
                    allowed
                )
            })
        }
    }
}

/// Whether a budget move from `before` to `after` (daily budgets per channel) waits: any move
/// under `manual`; under `supervised` a move of more than the policy's share of the day's budget,
/// or one that funds a channel which had none.
pub fn budget_move_waits(
    autonomy: Autonomy,
    before: &BTreeMap<Channel, f64>,
    after: &BTreeMap<Channel, f64>,
    policy: &ApprovalPolicy,
) -> Option<String> {
    let moved = moved(before, after);
    let total: f64 = before.values().sum();
    let share = if total > 0.0 { moved / total } else { 1.0 };
    match autonomy {
        Autonomy::Autonomous => None,
        Autonomy::Manual => (moved > 0.0)
            .then(|| "under manual autonomy every budget change waits for a person".into()),
        Autonomy::Supervised => {
            let funded: Vec<String> = after
                .iter()
                .filter(|(c, v)| **v > 0.0 && before.get(c).copied().unwrap_or(0.0) <= 0.0)
                .map(|(c, _)| c.to_string())
                .collect();
            if !funded.is_empty() {
                Some(format!(
                    "it funds {} which had no budget",
                    funded.join(", ")
                ))
            } else if share > policy.budget_move_share {
                Some(format!(
                    "it moves {:.0} % of the day's budget, above the {:.0} % a supervised campaign moves alone",
                    share * 100.0,
                    policy.budget_move_share * 100.0
                ))
            } else {
                None
            }
        }
    }
}

/// Whether a re-plan waits: under `manual` and `supervised` it does (it sets a new budget per
/// channel and restarts exploration).
pub fn replan_waits(autonomy: Autonomy) -> Option<String> {
    (autonomy != Autonomy::Autonomous).then(|| {
        format!(
            "a re-plan sets a new budget per channel; under {} autonomy it waits for a person",
            autonomy.as_str()
        )
    })
}

/// Whether a creative compliance approved with `risk` for a product of `category` waits: under
/// `manual` and `supervised`, when the category is sensitive or the risk is above the policy's.
pub fn creative_waits(
    autonomy: Autonomy,
    risk: u8,
    category: &str,
    policy: &ApprovalPolicy,
) -> Option<String> {
    if autonomy == Autonomy::Autonomous {
        return None;
    }
    if policy.sensitive_categories.iter().any(|c| c == category) {
        Some(format!(
            "the product category `{category}` is sensitive: its creatives wait for a person"
        ))
    } else if risk > policy.creative_risk {
        Some(format!(
            "its compliance risk {risk} is above {}, the most a {} campaign sends alone",
            policy.creative_risk,
            autonomy.as_str()
        ))
    } else {
        None
    }
}

/// Why an amendment is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AmendError {
    #[error("{0}")]
    OutOfBounds(String),
    #[error("a {0} request cannot be amended: approve or reject it as proposed")]
    NotAmendable(&'static str),
}

/// A day's buys with their total cut to `spend`, each buy in proportion. `spend` must be from 0 to
/// the proposed total: a person may buy less than proposed, never more.
pub fn amend_buys(proposed: &[Buy], spend: f64) -> Result<Vec<Buy>, AmendError> {
    let total: f64 = proposed.iter().map(|b| b.spend).sum();
    if !spend.is_finite() || spend < 0.0 || spend > total + 1e-9 {
        return Err(AmendError::OutOfBounds(format!(
            "`spend` must be from 0 to the proposed {total:.2}, got {spend}"
        )));
    }
    let scale = if total > 0.0 { spend / total } else { 0.0 };
    Ok(proposed
        .iter()
        .map(|b| Buy {
            spend: b.spend * scale,
            ..b.clone()
        })
        .collect())
}

/// A budget move amended to `daily`: every channel of the proposal, each between what it had and
/// what was proposed, and the day's total at most the proposal's.
pub fn amend_budget(
    before: &BTreeMap<Channel, f64>,
    proposed: &BTreeMap<Channel, f64>,
    daily: &BTreeMap<Channel, f64>,
) -> Result<BTreeMap<Channel, f64>, AmendError> {
    let mut out = BTreeMap::new();
    for (channel, wanted) in proposed {
        let had = before.get(channel).copied().unwrap_or(0.0);
        let (low, high) = (had.min(*wanted), had.max(*wanted));
        let Some(value) = daily.get(channel).copied() else {
            return Err(AmendError::OutOfBounds(format!(
                "`daily` must give every channel of the proposal; {channel} is missing (between {low:.2} and {high:.2})"
            )));
        };
        if !value.is_finite() || value < low - 1e-9 || value > high + 1e-9 {
            return Err(AmendError::OutOfBounds(format!(
                "{channel} must be between {low:.2} (what it had) and {high:.2} (the proposal), got {value}"
            )));
        }
        out.insert(*channel, value);
    }
    if let Some(extra) = daily.keys().find(|c| !proposed.contains_key(c)) {
        return Err(AmendError::OutOfBounds(format!(
            "{extra} is not a channel of the proposal"
        )));
    }
    let (total, cap): (f64, f64) = (out.values().sum(), proposed.values().sum());
    if total > cap + 1e-6 {
        return Err(AmendError::OutOfBounds(format!(
            "the amended day's budget {total:.2} is above the proposal's {cap:.2}"
        )));
    }
    Ok(out)
}

/// The creatives of a request a person approves: a non-empty subset of the proposed `held`
/// variants (to send none, reject the request).
pub fn amend_creatives(held: &[String], approved: &[String]) -> Result<Vec<String>, AmendError> {
    if approved.is_empty() {
        return Err(AmendError::OutOfBounds(
            "`variants` must name at least one of the request's creatives; to send none, reject it"
                .to_owned(),
        ));
    }
    if let Some(unknown) = approved.iter().find(|v| !held.contains(v)) {
        return Err(AmendError::OutOfBounds(format!(
            "`{unknown}` is not one of the request's creatives ({})",
            held.join(", ")
        )));
    }
    Ok(held
        .iter()
        .filter(|v| approved.contains(v))
        .cloned()
        .collect())
}

/// How a request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    Rejected,
    /// Nobody answered in time; the request's `on_expiry` applied.
    Expired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
            Verdict::Expired => "expired",
        }
    }
}

/// One past answer, for earned autonomy: its verdict and whether the approval amended the
/// proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PastAnswer {
    pub verdict: Verdict,
    pub amended: bool,
}

/// The share of the latest `window` answers (oldest first in `answers`) approved unchanged, and
/// whether it clears the bar: only a full window counts, so three lucky yeses earn nothing.
pub fn earned_autonomy(answers: &[PastAnswer], policy: &ApprovalPolicy) -> Option<f64> {
    let window = policy.earned_window as usize;
    if answers.len() < window || window == 0 {
        return None;
    }
    let recent = &answers[answers.len() - window..];
    let unchanged = recent
        .iter()
        .filter(|a| a.verdict == Verdict::Approved && !a.amended)
        .count();
    let share = unchanged as f64 / window as f64;
    (share >= policy.earned_bar).then_some(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(pairs: &[(Channel, f64)]) -> BTreeMap<Channel, f64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_risky_or_sensitive_creative_waits_unless_autonomous() {
        let p = ApprovalPolicy::default();
        assert!(creative_waits(Autonomy::Supervised, 25, "general", &p).is_none());
        let why = creative_waits(Autonomy::Supervised, 30, "general", &p).unwrap();
        assert!(why.contains("30") && why.contains("25"), "{why}");
        assert!(creative_waits(Autonomy::Manual, 45, "general", &p).is_some());
        let why = creative_waits(Autonomy::Supervised, 0, "health_food", &p).unwrap();
        assert!(why.contains("health_food"), "{why}");
        assert!(creative_waits(Autonomy::Autonomous, 99, "health_food", &p).is_none());
    }

    #[test]
    fn creatives_are_amended_to_a_subset_of_those_held() {
        let held = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(
            amend_creatives(&held, &["c".to_owned(), "a".to_owned()]).unwrap(),
            ["a", "c"]
        );
        assert!(amend_creatives(&held, &[]).is_err());
        let err = amend_creatives(&held, &["d".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("`d`"), "{err}");
    }

    #[test]
    fn manual_waits_for_every_buy_and_move_autonomous_for_none() {
        let p = ApprovalPolicy::default();
        assert!(buys_wait(Autonomy::Manual, 0.0, 1.0, 100.0, &p).is_some());
        assert!(buys_wait(Autonomy::Autonomous, 0.0, 1e9, 1.0, &p).is_none());
        let before = daily(&[(Channel::Search, 100.0), (Channel::Sms, 100.0)]);
        let after = daily(&[(Channel::Search, 99.0), (Channel::Sms, 101.0)]);
        assert!(budget_move_waits(Autonomy::Manual, &before, &after, &p).is_some());
        assert!(budget_move_waits(Autonomy::Manual, &before, &before, &p).is_none());
        assert!(budget_move_waits(Autonomy::Autonomous, &before, &after, &p).is_none());
        assert!(replan_waits(Autonomy::Supervised).is_some());
        assert!(replan_waits(Autonomy::Autonomous).is_none());
    }

    #[test]
    fn supervised_waits_only_for_a_large_move_or_a_newly_funded_channel() {
        let p = ApprovalPolicy::default();
        let before = daily(&[(Channel::Search, 100.0), (Channel::Sms, 100.0)]);
        let small = daily(&[(Channel::Search, 85.0), (Channel::Sms, 115.0)]);
        assert!(budget_move_waits(Autonomy::Supervised, &before, &small, &p).is_none());
        let large = daily(&[(Channel::Search, 60.0), (Channel::Sms, 140.0)]);
        let why = budget_move_waits(Autonomy::Supervised, &before, &large, &p).unwrap();
        assert!(why.contains("20 %") && why.contains("15 %"), "{why}");
        let before = daily(&[(Channel::Search, 200.0), (Channel::Sms, 0.0)]);
        let funded = daily(&[(Channel::Search, 190.0), (Channel::Sms, 10.0)]);
        let why = budget_move_waits(Autonomy::Supervised, &before, &funded, &p).unwrap();
        assert!(why.contains("sms"), "{why}");
    }

    #[test]
    fn supervised_buys_wait_only_ahead_of_pace() {
        let p = ApprovalPolicy::default();
        assert!(buys_wait(Autonomy::Supervised, 500.0, 100.0, 600.0, &p).is_none());
        assert!(buys_wait(Autonomy::Supervised, 500.0, 160.0, 600.0, &p).is_none());
        let why = buys_wait(Autonomy::Supervised, 500.0, 200.0, 600.0, &p).unwrap();
        assert!(why.contains("10 % ahead"), "{why}");
    }

    #[test]
    fn amended_buys_scale_down_never_up() {
        let buy = |v: &str, s: f64| Buy {
            channel: Channel::Search,
            segment: "s".into(),
            variant: v.into(),
            spend: s,
        };
        let proposed = [buy("a", 30.0), buy("b", 10.0)];
        let cut = amend_buys(&proposed, 20.0).unwrap();
        assert_eq!(cut[0].spend, 15.0);
        assert_eq!(cut[1].spend, 5.0);
        assert!(amend_buys(&proposed, 40.0).is_ok());
        for bad in [40.5, -1.0, f64::NAN, f64::INFINITY] {
            let err = amend_buys(&proposed, bad).unwrap_err();
            assert!(err.to_string().contains("`spend`"), "{err}");
        }
    }

    #[test]
    fn an_amended_budget_stays_between_the_old_and_the_proposed() {
        let before = daily(&[(Channel::Search, 100.0), (Channel::Sms, 100.0)]);
        let proposed = daily(&[(Channel::Search, 60.0), (Channel::Sms, 140.0)]);
        let half = daily(&[(Channel::Search, 80.0), (Channel::Sms, 120.0)]);
        assert_eq!(amend_budget(&before, &proposed, &half).unwrap(), half);
        let past = daily(&[(Channel::Search, 50.0), (Channel::Sms, 140.0)]);
        let err = amend_budget(&before, &proposed, &past).unwrap_err();
        assert!(
            err.to_string().contains("search must be between 60.00"),
            "{err}"
        );
        let missing = daily(&[(Channel::Search, 80.0)]);
        assert!(amend_budget(&before, &proposed, &missing).is_err());
        let extra = daily(&[
            (Channel::Search, 80.0),
            (Channel::Sms, 120.0),
            (Channel::Email, 1.0),
        ]);
        assert!(amend_budget(&before, &proposed, &extra).is_err());
    }

    #[test]
    fn autonomy_is_earned_only_over_a_full_window_past_the_bar() {
        let p = ApprovalPolicy {
            earned_window: 10,
            earned_bar: 0.9,
            ..ApprovalPolicy::default()
        };
        let yes = PastAnswer {
            verdict: Verdict::Approved,
            amended: false,
        };
        let amended = PastAnswer {
            amended: true,
            ..yes
        };
        let no = PastAnswer {
            verdict: Verdict::Rejected,
            amended: false,
        };
        assert_eq!(earned_autonomy(&[yes; 9], &p), None);
        assert_eq!(earned_autonomy(&[yes; 10], &p), Some(1.0));
        let mut answers = vec![no, no];
        answers.extend([yes; 8]);
        answers.push(amended);
        answers.push(yes);
        // The latest ten: eight yeses, an amended one, a yes: 9 of 10, at the bar.
        assert_eq!(earned_autonomy(&answers, &p), Some(0.9));
        answers.push(amended);
        assert_eq!(earned_autonomy(&answers, &p), None);
    }

    #[test]
    fn the_default_policy_is_valid_and_absurd_values_are_named() {
        assert!(ApprovalPolicy::default().problems().is_empty());
        let bad = ApprovalPolicy {
            budget_move_share: 1.5,
            earned_bar: 0.0,
            earned_window: 0,
            ..ApprovalPolicy::default()
        };
        let keys: Vec<&str> = bad.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["budget_move_share", "earned_bar", "earned_window"]);
    }
}
