//! The creative spaces the genetic search breeds in, one per content cell (segment × format ×
//! language, see [`CreativeCell`]), and the bound on each cell's live arms.
//!
//! A cell's space holds every level its arms use; each arm is a genome over it, scored by its
//! conversion rate shrunk toward the cell's (an untried arm scores the cell's rate, not the
//! uniform prior's 0.5, which would make it the fittest). Cells are never pooled: that would put a
//! call to action written for one format beside another format's template, or one segment's
//! message in another's copy. Only combinations no arm of the cell already is go to content.
//!
//! When a generation joins, the cell's arms with the smallest traffic shares (the probability of
//! being best) are retired until the cell has at most its bound of live arms. A
//! retired arm keeps its evidence, still counts as a parent, and is never bought again.

use std::collections::{BTreeMap, BTreeSet};

use super::experiment::Experiment;
use super::genetic::{CreativeSpace, Dimension, GeneticError, GeneticMix, Genome, genetic_step};
use super::thompson::{ArmStats, decision_seed};
use crate::domain::content::playbook::TEMPLATE_DIMENSION;
use crate::domain::content::{CreativeCell, LevelChoice};

/// One cell's space and its scored arms.
#[derive(Clone, Debug, PartialEq)]
pub struct CreativePool {
    pub cell: CreativeCell,
    /// Dimension → its levels, in the order the arms first use them, each with the index content
    /// gave it.
    pub levels: BTreeMap<String, Vec<LevelChoice>>,
    /// The same, as the genetic search takes it (dimensions in name order).
    pub space: CreativeSpace,
    /// Every arm of the cell, live or retired, in variant id order: its id, genome and fitness.
    /// A dimension an arm does not use counts as its first level.
    pub scored: Vec<(String, Genome, f64)>,
    /// The cell's evidence, summed over its arms.
    pub evidence: ArmStats,
    /// The dimensions each template fills (by its level position), as its arms show them.
    fills: BTreeMap<usize, BTreeSet<usize>>,
}

/// One arm of a cell as its pool reads it: id, levels and evidence.
type CellArm<'a> = (&'a str, &'a [LevelChoice], ArmStats);

/// The pools of every cell of `exp` whose arms carry their cell, in cell order.
pub fn creative_pools(exp: &Experiment) -> Vec<CreativePool> {
    let mut cells: BTreeMap<CreativeCell, Vec<CellArm>> = BTreeMap::new();
    for (id, state) in &exp.arms {
        let Some(arm) = &state.arm else { continue };
        let Some(cell) = arm.cell() else { continue };
        cells
            .entry(cell)
            .or_default()
            .push((id.as_str(), &arm.levels, state.stats));
    }
    cells
        .into_iter()
        .map(|(cell, arms)| pool_of(cell, &arms))
        .collect()
}

fn pool_of(cell: CreativeCell, arms: &[CellArm]) -> CreativePool {
    let mut levels: BTreeMap<String, Vec<LevelChoice>> = BTreeMap::new();
    for level in arms.iter().flat_map(|(_, levels, _)| levels.iter()) {
        let known = levels.entry(level.dimension.to_string()).or_default();
        if !known.iter().any(|l| l.value == level.value) {
            known.push(level.clone());
        }
    }
    let space = CreativeSpace {
        dimensions: levels
            .iter()
            .map(|(name, known)| Dimension {
                name: name.clone(),
                levels: known.iter().map(|l| l.value.to_string()).collect(),
            })
            .collect(),
    };
    let evidence = arms.iter().fold(ArmStats::default(), |total, (_, _, s)| {
        ArmStats::new(
            total.successes.saturating_add(s.successes),
            total.trials.saturating_add(s.trials),
        )
    });
    let template = levels.keys().position(|d| d == TEMPLATE_DIMENSION);
    let mut fills: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let scored = arms
        .iter()
        .map(|(id, arm_levels, stats)| {
            let genes: Vec<usize> = levels
                .iter()
                .map(|(name, known)| {
                    arm_levels
                        .iter()
                        .find(|l| *l.dimension == **name)
                        .and_then(|l| known.iter().position(|k| k.value == l.value))
                        .unwrap_or(0)
                })
                .collect();
            if let Some(gene) = template.and_then(|t| genes.get(t)) {
                let used = levels
                    .keys()
                    .enumerate()
                    .filter(|(_, name)| arm_levels.iter().any(|l| *l.dimension == ***name))
                    .map(|(i, _)| i);
                fills.entry(*gene).or_default().extend(used);
            }
            ((*id).to_owned(), Genome(genes), fitness(*stats, evidence))
        })
        .collect();
    CreativePool {
        cell,
        levels,
        space,
        scored,
        evidence,
        fills,
    }
}

/// An arm's rate shrunk toward its cell's: (s + 1) / (n + 1/p̄), a prior worth one conversion at
/// the cell's rate p̄. 0 while the cell has no conversion.
fn fitness(arm: ArmStats, cell: ArmStats) -> f64 {
    if cell.successes == 0 {
        return 0.0;
    }
    let prior_trials = cell.trials as f64 / cell.successes as f64;
    (arm.successes as f64 + 1.0) / (arm.trials as f64 + prior_trials)
}

impl CreativePool {
    /// What a genome is as a variant: its template and the levels that template fills, each as
    /// (dimension position, level position). Two genomes that differ only in a dimension their
    /// template leaves out are the same variant.
    fn written(&self, genome: &Genome) -> Vec<(usize, usize)> {
        let template = self.levels.keys().position(|d| d == TEMPLATE_DIMENSION);
        let fills = template
            .and_then(|t| genome.0.get(t))
            .and_then(|gene| self.fills.get(gene));
        genome
            .0
            .iter()
            .enumerate()
            .filter(|(dim, _)| Some(*dim) == template || fills.is_none_or(|f| f.contains(dim)))
            .map(|(dim, &level)| (dim, level))
            .collect()
    }

    fn choices(&self, written: &[(usize, usize)]) -> Vec<LevelChoice> {
        let dims: Vec<&Vec<LevelChoice>> = self.levels.values().collect();
        let mut choices: Vec<LevelChoice> = written
            .iter()
            .filter_map(|&(dim, level)| dims.get(dim).and_then(|l| l.get(level)).cloned())
            .collect();
        // The template first, as content writes a variant's levels.
        choices.sort_by_key(|l| &*l.dimension != TEMPLATE_DIMENSION);
        choices
    }

    /// Why `bred` (what [`CreativePool::breed`] answered) holds nothing, if it does not.
    pub fn unbred(&self, bred: &[Vec<LevelChoice>]) -> Option<&'static str> {
        if self.evidence.successes == 0 {
            Some("no conversion yet")
        } else if bred.is_empty() {
            Some("every child is an arm already")
        } else {
            None
        }
    }

    /// The `n` fittest arms, fittest first (ties by id): id and fitness.
    pub fn fittest(&self, n: usize) -> Vec<(&str, f64)> {
        let mut ranked: Vec<(&str, f64)> = self
            .scored
            .iter()
            .map(|(id, _, fitness)| (id.as_str(), *fitness))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked.truncate(n);
        ranked
    }

    /// The next generation of the cell, bred from its scored arms: the combinations of `size`
    /// children that no arm of the cell already is, each once, in breeding order. None while the
    /// cell has no conversion to tell its arms apart.
    pub fn breed(
        &self,
        size: usize,
        mix: GeneticMix,
        seed: u64,
    ) -> Result<Vec<Vec<LevelChoice>>, GeneticError> {
        if self.evidence.successes == 0 {
            return Ok(Vec::new());
        }
        let scored: Vec<(Genome, f64)> = self
            .scored
            .iter()
            .map(|(_, genome, fitness)| (genome.clone(), *fitness))
            .collect();
        let children = genetic_step(&self.space, &scored, size, mix, seed)?;
        let mut seen: BTreeSet<Vec<(usize, usize)>> =
            scored.iter().map(|(g, _)| self.written(g)).collect();
        Ok(children
            .iter()
            .map(|child| self.written(child))
            .filter(|written| seen.insert(written.clone()))
            .map(|written| self.choices(&written))
            .collect())
    }
}

/// The arms of `cell` to retire so that, with `joined` (new, never retired) in it, it has at most
/// `max_live` live arms: the smallest traffic shares first (a variant never split yet counts as
/// the largest: it has not had its chance), then the lower posterior mean, then the later id. A
/// channel's declared winner is never retired.
pub fn retirements(
    exp: &Experiment,
    cell: &CreativeCell,
    joined: &BTreeSet<&str>,
    max_live: usize,
) -> Vec<String> {
    let mut live: Vec<(&str, f64, f64)> = exp
        .arms
        .iter()
        .filter(|(id, state)| {
            state.live_on(cell.channel)
                && !joined.contains(id.as_str())
                && state.arm.as_ref().and_then(|a| a.cell()).as_ref() == Some(cell)
        })
        .map(|(id, state)| {
            let share = exp.shares.get(id).copied().unwrap_or(f64::INFINITY);
            (id.as_str(), share, state.stats.posterior_mean())
        })
        .collect();
    let room = max_live.saturating_sub(joined.len());
    if live.len() <= room {
        return Vec::new();
    }
    live.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then(a.2.total_cmp(&b.2))
            .then(b.0.cmp(a.0))
    });
    let winner = exp.winners.get(&cell.channel).map(String::as_str);
    let excess = live.len() - room;
    live.iter()
        .filter(|(id, _, _)| Some(*id) != winner)
        .take(excess)
        .map(|(id, _, _)| (*id).to_owned())
        .collect()
}

/// Whether a new generation is bred on `day`: every `window_days` (at least 1), never on day 0.
pub fn genetic_due(day: u32, window_days: u32) -> bool {
    day > 0 && day.is_multiple_of(window_days.max(1))
}

/// The seed of a cell's genetic step on `day`.
pub fn genetic_seed(campaign: &str, cell: &CreativeCell, day: u32) -> u64 {
    decision_seed(&format!("{campaign}/{cell}"), u64::from(day) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{Channel, test_goal};
    use crate::domain::channel::Format;
    use crate::domain::optimization::experiment::Arm;
    use crate::domain::optimization::experiment::tests::{arm, seen};

    fn level(dimension: &str, index: usize, value: &str) -> LevelChoice {
        LevelChoice {
            dimension: dimension.into(),
            index,
            value: value.into(),
        }
    }

    /// An SMS arm of the students' Korean cell with the given template, message and offer.
    fn sms(variant: &str, template: usize, message: usize, offer: Option<usize>) -> Arm {
        let templates = ["{message}", "{offer}! {message}"];
        let messages = ["m0", "m1", "m2"];
        let mut levels = vec![level("template", template, templates[template])];
        levels.push(level("message", message, messages[message]));
        if let Some(offer) = offer {
            levels.push(level("offer", offer, ["10%", "free"][offer]));
        }
        Arm {
            levels,
            format: Some(Format::KrSms),
            language: Some("ko".to_owned()),
            ..arm(Channel::Sms, variant)
        }
    }

    fn cell() -> CreativeCell {
        CreativeCell {
            channel: Channel::Sms,
            segment: "students".into(),
            language: "ko".into(),
            format: Format::KrSms,
        }
    }

    fn experiment() -> Experiment {
        let mut exp = Experiment::new(test_goal(&["sms", "push"]));
        exp.set_arms(&[
            sms("a", 0, 0, None),
            sms("b", 1, 1, Some(0)),
            sms("c", 1, 2, Some(1)),
            // Another cell: an LMS of the same cell, and a push arm of its own.
            Arm {
                format: Some(Format::KrLms),
                ..sms("d", 0, 2, None)
            },
            Arm {
                format: Some(Format::Push),
                channel: Channel::Push,
                ..sms("p", 0, 0, None)
            },
            // Recorded before cells were kept: never bred from.
            arm(Channel::Sms, "old"),
        ]);
        exp.fold(0, &seen("a", Channel::Sms, 10, 1000));
        exp.fold(0, &seen("b", Channel::Sms, 30, 1000));
        exp
    }

    #[test]
    fn each_cell_is_its_own_space_and_an_lms_is_written_in_the_sms_cell() {
        let pools = creative_pools(&experiment());
        let cells: Vec<String> = pools.iter().map(|p| p.cell.to_string()).collect();
        assert_eq!(cells, vec!["students/kr_sms/ko", "students/push/ko"]);
        let sms = &pools[0];
        let ids: Vec<&str> = sms.scored.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c", "d"]);
        let names: Vec<&str> = sms
            .space
            .dimensions
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, vec!["message", "offer", "template"]);
        // Levels keep content's index: m2 is message 2 though it is the third seen.
        assert_eq!(sms.levels["message"][2].index, 2);
        assert_eq!(sms.evidence, ArmStats::new(40, 2000));
    }

    #[test]
    fn fitness_shrinks_toward_the_cells_rate_so_untried_arms_are_not_the_fittest() {
        let sms = &creative_pools(&experiment())[0];
        let fit: BTreeMap<&str, f64> = sms
            .scored
            .iter()
            .map(|(id, _, f)| (id.as_str(), *f))
            .collect();
        // Cell rate 2 %: a prior of 50 trials. b: 31 / 1050, a: 11 / 1050, untried: 1 / 50.
        assert!((fit["b"] - 31.0 / 1050.0).abs() < 1e-12);
        assert!((fit["a"] - 11.0 / 1050.0).abs() < 1e-12);
        assert!((fit["c"] - 0.02).abs() < 1e-12);
        assert!(fit["b"] > fit["c"] && fit["c"] > fit["a"]);
    }

    #[test]
    fn a_generation_holds_only_new_combinations_each_once_with_the_template_first() {
        let exp = experiment();
        let sms = &creative_pools(&exp)[0];
        let known: BTreeSet<Vec<(String, String)>> = exp
            .arms
            .values()
            .filter_map(|s| s.arm.as_ref())
            .map(|a| {
                a.levels
                    .iter()
                    .map(|l| (l.dimension.to_string(), l.value.to_string()))
                    .collect()
            })
            .collect();
        let mut all = BTreeSet::new();
        for seed in 0..20 {
            let bred = sms.breed(12, GeneticMix::default(), seed).unwrap();
            assert_eq!(bred, sms.breed(12, GeneticMix::default(), seed).unwrap());
            for combination in bred {
                assert_eq!(&*combination[0].dimension, "template");
                let text: Vec<(String, String)> = combination
                    .iter()
                    .map(|l| (l.dimension.to_string(), l.value.to_string()))
                    .collect();
                assert!(!known.contains(&text), "{text:?} is an arm already");
                // A template without {offer} is never given one.
                let with_offer = combination.iter().any(|l| &*l.dimension == "offer");
                assert_eq!(with_offer, &*combination[0].value == "{offer}! {message}");
                all.insert(text);
            }
        }
        assert!(all.len() > 3, "the search finds new combinations: {all:?}");
    }

    #[test]
    fn a_cell_without_a_conversion_is_not_bred() {
        let pools = creative_pools(&experiment());
        assert_eq!(pools[1].cell.channel, Channel::Push);
        assert!(
            pools[1]
                .breed(12, GeneticMix::default(), 1)
                .unwrap()
                .is_empty()
        );
        assert_eq!(pools[1].unbred(&[]), Some("no conversion yet"));
        let sms = &pools[0];
        assert_eq!(sms.unbred(&[]), Some("every child is an arm already"));
        let bred = sms.breed(12, GeneticMix::default(), 1).unwrap();
        assert!(!bred.is_empty() && sms.unbred(&bred).is_none());
        let fittest = sms.fittest(2);
        assert_eq!(fittest.len(), 2);
        assert!(fittest[0].1 >= fittest[1].1, "{fittest:?}");
    }

    #[test]
    fn retiring_keeps_the_bound_takes_the_smallest_shares_and_spares_the_winner_and_the_new() {
        let mut exp = experiment();
        exp.shares = BTreeMap::from([
            ("a".to_owned(), 0.1),
            ("b".to_owned(), 0.6),
            ("c".to_owned(), 0.05),
        ]);
        let joined = BTreeSet::from(["n1", "n2"]);
        // Four live arms in the cell and two new ones, at most four live: two go. d was never
        // split (an even share counts as more than any split share here), so c and a go.
        assert_eq!(retirements(&exp, &cell(), &joined, 4), vec!["c", "a"]);
        assert!(retirements(&exp, &cell(), &joined, 6).is_empty());
        // The declared winner stays even with the smallest share.
        exp.winners.insert(Channel::Sms, "c".to_owned());
        assert_eq!(retirements(&exp, &cell(), &joined, 4), vec!["a", "b"]);
        // A retired arm is not live: it is not counted again, and no longer bought.
        exp.retire(["a"], 7);
        assert_eq!(exp.arms["a"].retired, Some(7));
        assert!(exp.arms_of(Channel::Sms).iter().all(|(id, _)| id != "a"));
        assert_eq!(retirements(&exp, &cell(), &joined, 4), vec!["b"]);
        // Its evidence stays, and it is still a parent.
        assert_eq!(exp.arms["a"].stats, ArmStats::new(10, 1000));
        assert!(
            creative_pools(&exp)[0]
                .scored
                .iter()
                .any(|(id, _, _)| id == "a")
        );
    }

    #[test]
    fn a_generation_is_bred_every_window_and_its_seed_depends_on_the_cell_and_day() {
        assert!(!genetic_due(0, 7));
        assert!(!genetic_due(6, 7));
        assert!(genetic_due(7, 7) && genetic_due(14, 7));
        assert!(genetic_due(3, 0), "a zero window counts as one day");
        let push = CreativeCell {
            channel: Channel::Push,
            format: Format::Push,
            ..cell()
        };
        assert_ne!(
            genetic_seed("spring", &cell(), 7),
            genetic_seed("spring", &cell(), 14)
        );
        assert_ne!(
            genetic_seed("spring", &cell(), 7),
            genetic_seed("spring", &push, 7)
        );
    }
}
