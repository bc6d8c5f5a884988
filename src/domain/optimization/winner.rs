//! When a channel has a winner: its leading variant beats the runner-up significantly at the
//! playbook's `alpha`, with both holding at least the sample that `power` needs to tell their
//! rates apart. Until a channel has one, the stabilize phase does not concentrate its traffic
//! (the buys weigh it as optimize does), so a campaign near its goal never bets its budget on a
//! lead that chance could have made.

use serde::{Deserialize, Serialize};

use super::experiment::Experiment;
use super::stats::{sample_size_per_arm, two_proportion_z_test};
use super::thompson::ArmStats;
use crate::domain::campaign::Channel;

/// A significant leader of a channel, and the evidence for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Winner {
    pub channel: Channel,
    pub variant: String,
    pub runner_up: String,
    pub leader: ArmStats,
    pub second: ArmStats,
    /// The two-proportion z-test's two-sided p-value.
    pub p_value: f64,
    /// Trials each arm needs to tell the two rates apart at `alpha` with `power`.
    pub needed: u64,
}

/// The winner of `channel` in `exp`, if its leader (the highest observed rate) beats the
/// runner-up at `alpha` and both have the sample `power` needs for their difference.
pub fn winner(exp: &Experiment, channel: Channel, alpha: f64, power: f64) -> Option<Winner> {
    let mut ranked: Vec<(&str, ArmStats)> = exp
        .arms
        .iter()
        .filter(|(_, s)| s.live_on(channel))
        .map(|(id, s)| (id.as_str(), s.stats))
        .filter(|(_, s)| s.trials > 0)
        .collect();
    ranked.sort_by(|a, b| b.1.rate().total_cmp(&a.1.rate()).then(a.0.cmp(b.0)));
    let [(variant, leader), (runner_up, second), ..] = ranked[..] else {
        return None;
    };
    let test = two_proportion_z_test(second, leader).ok()?;
    let needed = sample_size_per_arm(second.rate(), leader.rate(), alpha, power).ok()?;
    let significant = test.z > 0.0 && test.significant(alpha);
    (significant && leader.trials >= needed && second.trials >= needed).then(|| Winner {
        channel,
        variant: variant.to_owned(),
        runner_up: runner_up.to_owned(),
        leader,
        second,
        p_value: test.p_value,
        needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::test_goal;
    use crate::domain::optimization::experiment::tests::arm;

    fn experiment(a: ArmStats, b: ArmStats) -> Experiment {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[arm(Channel::Sms, "a"), arm(Channel::Sms, "b")]);
        for (id, stats) in [("a", a), ("b", b)] {
            if let Some(state) = exp.arms.get_mut(id) {
                state.stats = stats;
            }
        }
        exp
    }

    #[test]
    fn a_lead_is_a_win_only_when_significant_on_enough_trials() {
        // 5 % against 4 % needs 6 745 trials each at α = 0.05 and 80 % power.
        let enough = experiment(ArmStats::new(400, 10_000), ArmStats::new(500, 10_000));
        let won = winner(&enough, Channel::Sms, 0.05, 0.8).expect("b wins");
        assert_eq!((won.variant.as_str(), won.runner_up.as_str()), ("b", "a"));
        assert_eq!(won.needed, 6745);
        assert!(won.p_value < 0.05);
        // The same rates on 3 000 trials each: significant or not, too few to call.
        let few = experiment(ArmStats::new(120, 3_000), ArmStats::new(150, 3_000));
        assert_eq!(winner(&few, Channel::Sms, 0.05, 0.8), None);
        // Enough trials but rates too close to tell apart at this sample.
        let close = experiment(ArmStats::new(490, 10_000), ArmStats::new(500, 10_000));
        assert_eq!(winner(&close, Channel::Sms, 0.05, 0.8), None);
        // One arm alone is no contest.
        let mut alone = enough.clone();
        alone.arms.remove("a");
        assert_eq!(winner(&alone, Channel::Sms, 0.05, 0.8), None);
    }
}
