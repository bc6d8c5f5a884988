//! Which combinations of creative levels a first round tests: the full factorial when it is small,
//! otherwise the standard L18 orthogonal array (one two-level and seven three-level factors in 18
//! runs, every pair of columns balanced), or a seeded sample when the dimensions do not fit L18.
//!
//! Pure and deterministic: the same level counts and seed always give the same design. Nothing here
//! knows what a level means.

use std::collections::BTreeSet;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The standard Taguchi L18 (2¹ × 3⁷), levels from 0. Column 0 has two levels, columns 1–7 three.
pub const L18: [[u8; 8]; 18] = [
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 1, 1, 1, 1, 1],
    [0, 0, 2, 2, 2, 2, 2, 2],
    [0, 1, 0, 0, 1, 1, 2, 2],
    [0, 1, 1, 1, 2, 2, 0, 0],
    [0, 1, 2, 2, 0, 0, 1, 1],
    [0, 2, 0, 1, 0, 2, 1, 2],
    [0, 2, 1, 2, 1, 0, 2, 0],
    [0, 2, 2, 0, 2, 1, 0, 1],
    [1, 0, 0, 2, 2, 1, 1, 0],
    [1, 0, 1, 0, 0, 2, 2, 1],
    [1, 0, 2, 1, 1, 0, 0, 2],
    [1, 1, 0, 1, 2, 0, 2, 1],
    [1, 1, 1, 2, 0, 1, 0, 2],
    [1, 1, 2, 0, 1, 2, 1, 0],
    [1, 2, 0, 2, 1, 2, 0, 1],
    [1, 2, 1, 0, 2, 0, 1, 2],
    [1, 2, 2, 1, 0, 1, 2, 0],
];

/// How a design was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesignKind {
    /// Every combination.
    FullFactorial,
    /// Rows of the L18 array.
    L18,
    /// A seeded random sample of distinct combinations.
    Sample,
    /// Combinations the genetic search bred from the cell's results.
    Bred,
}

/// A set of runs: each run picks one level index per dimension, in the dimensions' order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Design {
    pub kind: DesignKind,
    pub runs: Vec<Vec<usize>>,
}

/// The full factorial's size, or `None` when it does not fit in a `usize`.
pub fn factorial_size(levels: &[usize]) -> Option<usize> {
    levels.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n))
}

/// Chooses the runs for dimensions with `levels[i]` levels each (every entry ≥ 1): all of them when
/// there are at most `max_runs`; else L18 when it fits and `max_runs` ≥ 18; else a seeded sample of
/// `max_runs` distinct runs.
pub fn design(levels: &[usize], max_runs: usize, seed: u64) -> Design {
    let max_runs = max_runs.max(1);
    if levels.contains(&0) {
        return Design {
            kind: DesignKind::FullFactorial,
            runs: Vec::new(),
        };
    }
    let total = factorial_size(levels);
    if let Some(total) = total.filter(|&t| t <= max_runs) {
        return Design {
            kind: DesignKind::FullFactorial,
            runs: (0..total).map(|i| decode(i, levels)).collect(),
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if max_runs >= L18.len()
        && let Some(runs) = l18_runs(levels, &mut rng)
    {
        return Design {
            kind: DesignKind::L18,
            runs,
        };
    }
    Design {
        kind: DesignKind::Sample,
        runs: sample_runs(levels, total, max_runs, &mut rng),
    }
}

/// Mixed-radix decoding: run number → level per dimension (last dimension varies fastest).
fn decode(mut index: usize, levels: &[usize]) -> Vec<usize> {
    let mut run = vec![0; levels.len()];
    for (slot, &n) in run.iter_mut().zip(levels).rev() {
        *slot = index % n;
        index /= n;
    }
    run
}

/// Maps dimensions onto L18 columns: one two-level dimension on the two-level column, the rest on
/// the three-level columns (a two-level dimension there uses level 2 as a repeat of level 0, the
/// usual dummy-level treatment). Single-level dimensions need no column. Which three-level column
/// each dimension takes, and how each column's levels are labelled, are shuffled by the seed: any such
/// choice keeps the array orthogonal.
fn l18_runs(levels: &[usize], rng: &mut ChaCha8Rng) -> Option<Vec<Vec<usize>>> {
    if levels.iter().any(|&n| n > 3) {
        return None;
    }
    let varying: Vec<usize> = (0..levels.len()).filter(|&d| levels[d] > 1).collect();
    let two_level_column_user = varying.iter().copied().find(|&d| levels[d] == 2);
    let needed = varying.len() - usize::from(two_level_column_user.is_some());
    if needed > 7 {
        return None;
    }
    // With few dimensions, some column choices project two L18 rows onto the same combination.
    // Try a bounded number of seeded assignments and keep the first with the most distinct runs.
    let mut best: Vec<Vec<usize>> = Vec::new();
    for _ in 0..ASSIGNMENT_TRIES {
        let mut three_level_columns: Vec<usize> = (1..8).collect();
        three_level_columns.shuffle(rng);
        let mut free = three_level_columns.into_iter();
        let mut column_of = vec![None; levels.len()];
        for &d in &varying {
            column_of[d] = if Some(d) == two_level_column_user {
                Some(0)
            } else {
                free.next()
            };
        }
        let mut relabel = [[0usize, 1, 2]; 8];
        relabel[0][..2].shuffle(rng);
        for labels in relabel.iter_mut().skip(1) {
            labels.shuffle(rng);
        }
        let mut seen = BTreeSet::new();
        let mut runs = Vec::with_capacity(L18.len());
        for row in &L18 {
            let run: Vec<usize> = (0..levels.len())
                .map(|d| match column_of[d] {
                    Some(column) => relabel[column][usize::from(row[column])] % levels[d],
                    None => 0,
                })
                .collect();
            // A repeated combination would be the same creative twice.
            if seen.insert(run.clone()) {
                runs.push(run);
            }
        }
        if runs.len() > best.len() {
            best = runs;
        }
        if best.len() == L18.len() {
            break;
        }
    }
    Some(best)
}

/// How many column assignments to try for distinct runs.
const ASSIGNMENT_TRIES: usize = 40;

/// `count` distinct runs drawn with a seeded generator, in a stable order.
fn sample_runs(
    levels: &[usize],
    total: Option<usize>,
    count: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<usize>> {
    use rand::RngExt;
    let mut seen = BTreeSet::new();
    let mut runs = Vec::with_capacity(count);
    let wanted = total.map_or(count, |t| t.min(count));
    // Bounded: with huge spaces a repeat is rare; with small ones `wanted` is reachable quickly.
    let mut attempts = 0usize;
    while runs.len() < wanted && attempts < wanted.saturating_mul(50).max(1000) {
        attempts += 1;
        let run: Vec<usize> = levels.iter().map(|&n| rng.random_range(0..n)).collect();
        if seen.insert(run.clone()) {
            runs.push(run);
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l18_is_balanced_on_every_pair_of_columns() {
        for a in 0..8 {
            for b in (a + 1)..8 {
                let mut counts = std::collections::BTreeMap::new();
                for row in &L18 {
                    *counts.entry((row[a], row[b])).or_insert(0) += 1;
                }
                let expected_pairs = if a == 0 { 6 } else { 9 };
                assert_eq!(counts.len(), expected_pairs, "columns {a},{b}");
                let expected_count = 18 / expected_pairs;
                assert!(
                    counts.values().all(|&c| c == expected_count),
                    "columns {a},{b}: {counts:?}"
                );
            }
        }
    }

    #[test]
    fn small_spaces_are_enumerated_in_full() {
        let design = design(&[2, 3], 18, 1);
        assert_eq!(design.kind, DesignKind::FullFactorial);
        assert_eq!(design.runs.len(), 6);
        assert_eq!(design.runs[0], vec![0, 0]);
        assert_eq!(design.runs[5], vec![1, 2]);
    }

    #[test]
    fn large_spaces_use_l18_deterministically() {
        let levels = [2, 3, 3, 3, 3];
        let one = design(&levels, 18, 7);
        assert_eq!(one.kind, DesignKind::L18);
        assert_eq!(one.runs.len(), 18);
        assert_eq!(one, design(&levels, 18, 7));
        // Each three-level dimension shows each level six times.
        for d in 1..5 {
            for level in 0..3 {
                assert_eq!(one.runs.iter().filter(|r| r[d] == level).count(), 6);
            }
        }
        assert_ne!(
            one.runs,
            design(&levels, 18, 8).runs,
            "another seed relabels the design"
        );
    }

    #[test]
    fn three_dimensions_get_eighteen_distinct_runs() {
        for seed in 0..20 {
            let design = design(&[3, 3, 3], 18, seed);
            assert_eq!(design.kind, DesignKind::L18);
            let distinct: BTreeSet<_> = design.runs.iter().collect();
            assert_eq!(distinct.len(), 18, "seed {seed}");
            // Every pair of dimensions still sees all nine combinations.
            for (a, b) in [(0, 1), (0, 2), (1, 2)] {
                let pairs: BTreeSet<_> = design.runs.iter().map(|r| (r[a], r[b])).collect();
                assert_eq!(pairs.len(), 9, "seed {seed}");
            }
        }
    }

    #[test]
    fn dimensions_beyond_l18_fall_back_to_a_distinct_sample() {
        let design = design(&[5, 5, 5], 18, 3);
        assert_eq!(design.kind, DesignKind::Sample);
        assert_eq!(design.runs.len(), 18);
        let distinct: BTreeSet<_> = design.runs.iter().collect();
        assert_eq!(distinct.len(), 18);
        assert!(design.runs.iter().all(|r| r.iter().all(|&l| l < 5)));
    }

    #[test]
    fn huge_spaces_do_not_overflow() {
        let levels = vec![1000; 20];
        assert_eq!(factorial_size(&levels), None);
        assert_eq!(design(&levels, 10, 1).runs.len(), 10);
    }
}
