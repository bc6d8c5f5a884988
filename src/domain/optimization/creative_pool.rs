//! The creative space the genetic search breeds in: every dimension and level the approved
//! variants use, each variant as a genome over it, scored by its posterior mean. The next
//! generation is bred every drift window, from a seed that depends on the campaign and the day.

use std::collections::BTreeMap;

use super::experiment::Experiment;
use super::genetic::{CreativeSpace, Dimension, Genome};
use super::thompson::decision_seed;

/// The space and the scored generation of an experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct CreativePool {
    /// Dimension → its levels, in the order the arms first use them (as the decision records it).
    pub levels: BTreeMap<String, Vec<String>>,
    /// The same, as the genetic search takes it (dimensions in name order).
    pub space: CreativeSpace,
    /// Every started arm's genome and posterior mean, in variant id order. A dimension an arm does
    /// not use counts as its first level.
    pub scored: Vec<(Genome, f64)>,
}

pub fn creative_pool(exp: &Experiment) -> CreativePool {
    let mut dims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for state in exp.arms.values() {
        for level in state.arm.iter().flat_map(|a| &a.levels) {
            let levels = dims.entry(level.dimension.to_string()).or_default();
            if !levels.iter().any(|v| **v == *level.value) {
                levels.push(level.value.to_string());
            }
        }
    }
    let space = CreativeSpace {
        dimensions: dims
            .iter()
            .map(|(name, levels)| Dimension {
                name: name.clone(),
                levels: levels.clone(),
            })
            .collect(),
    };
    let scored = exp
        .arms
        .values()
        .filter_map(|state| {
            let arm = state.arm.as_ref()?;
            let genes = dims
                .iter()
                .map(|(name, levels)| {
                    arm.levels
                        .iter()
                        .find(|l| *l.dimension == **name)
                        .and_then(|l| levels.iter().position(|v| **v == *l.value))
                        .unwrap_or(0)
                })
                .collect();
            Some((Genome(genes), state.stats.posterior_mean()))
        })
        .collect();
    CreativePool {
        levels: dims,
        space,
        scored,
    }
}

/// Whether a new generation is bred on `day`: every `window_days` (at least 1), never on day 0.
pub fn genetic_due(day: u32, window_days: u32) -> bool {
    day > 0 && day.is_multiple_of(window_days.max(1))
}

/// The seed of a campaign's genetic step on `day`.
pub fn genetic_seed(campaign: &str, day: u32) -> u64 {
    decision_seed(campaign, u64::from(day) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{Channel, test_goal};
    use crate::domain::content::LevelChoice;
    use crate::domain::optimization::experiment::Arm;
    use crate::domain::optimization::experiment::tests::{arm, seen};

    fn with_levels(variant: &str, levels: &[(&str, &str)]) -> Arm {
        Arm {
            levels: levels
                .iter()
                .enumerate()
                .map(|(index, (d, v))| LevelChoice {
                    dimension: (*d).into(),
                    index,
                    value: (*v).into(),
                })
                .collect(),
            ..arm(Channel::Sms, variant)
        }
    }

    #[test]
    fn the_space_holds_every_level_used_and_each_arm_is_a_genome_over_it() {
        let mut exp = Experiment::new(test_goal(&["sms"]));
        exp.set_arms(&[
            with_levels("a", &[("offer", "10% off"), ("cta", "Buy")]),
            with_levels("b", &[("offer", "free shipping"), ("cta", "Buy")]),
            with_levels("c", &[("offer", "10% off")]),
        ]);
        exp.fold(0, &seen("a", Channel::Sms, 9, 98));
        // Observed but never started: no genome.
        exp.fold(0, &seen("ghost", Channel::Sms, 1, 10));
        let pool = creative_pool(&exp);
        assert_eq!(pool.levels["offer"], vec!["10% off", "free shipping"]);
        assert_eq!(pool.levels["cta"], vec!["Buy"]);
        let names: Vec<&str> = pool
            .space
            .dimensions
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, vec!["cta", "offer"]);
        let genomes: Vec<&Genome> = pool.scored.iter().map(|(g, _)| g).collect();
        assert_eq!(
            genomes,
            vec![
                &Genome(vec![0, 0]),
                &Genome(vec![0, 1]),
                &Genome(vec![0, 0])
            ]
        );
        // Posterior means: (1 + 9) / (2 + 98) for a, 1/2 for the untried ones.
        assert!((pool.scored[0].1 - 0.1).abs() < 1e-12);
        assert_eq!(pool.scored[1].1, 0.5);
        assert_eq!(
            pool.space.features(&pool.scored[1].0),
            vec![
                ("cta".to_owned(), "Buy".to_owned()),
                ("offer".to_owned(), "free shipping".to_owned())
            ]
        );
    }

    #[test]
    fn a_generation_is_bred_every_window_and_its_seed_depends_on_the_day() {
        assert!(!genetic_due(0, 7));
        assert!(!genetic_due(6, 7));
        assert!(genetic_due(7, 7) && genetic_due(14, 7));
        assert!(genetic_due(3, 0), "a zero window counts as one day");
        assert_eq!(genetic_seed("spring", 7), decision_seed("spring", 7 << 32));
        assert_ne!(genetic_seed("spring", 7), genetic_seed("spring", 14));
    }
}
